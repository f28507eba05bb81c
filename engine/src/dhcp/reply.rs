//! Writing OFFER / ACK / NAK frames: the BOOTP fixed fields of RFC 2131 §4.3.1 table 3 and the
//! option list, in the order and within the size the client asked for.
//!
//! Option order in every reply:
//! 1. 53 message type, 54 server identifier: clients and relays look for them first;
//! 2. for a lease: 51 lease time, 58 T1, 59 T2 (RFC 2131 table 3: 51 is a MUST in OFFER/ACK;
//!    T1/T2 are always sent so every client renews on the server's schedule);
//! 3. echoes: 61 client identifier (RFC 6842 §3: "If the 'client identifier' option is present
//!    in a message received from a client, the server MUST return the 'client identifier'
//!    option, unaltered, in its response message") and 118 subnet selection (RFC 3011 §2);
//! 4. configured options: in the order of the client's parameter request list (55) when it
//!    sent one, and then only those it asked for; every configured option in code order when
//!    it did not (RFC 2131 §4.3.1 lets the server supply parameters unasked);
//! 5. 82 relay agent information, last (RFC 3046 §2.2).
//!
//! Everything from step 4 is best effort within the client's maximum message size (option 57,
//! 576 octets by default, RFC 2131 §2): an option that does not fit is left out and the next
//! one is tried, while room for the step-5 echo is kept back. Steps 1-3 and 5 are required; if
//! they do not fit the reply is dropped as [`DropReason::ReplyTooLarge`](crate::wire::DropReason).
//! Steps 1 and 2 are written as one constant byte template with the values patched in place:
//! one room check and a few wide stores for what every reply carries.

use super::destination::{Destination, ReplyKind, destination};
use super::facts::Facts;
use super::index::OptIndex;
use crate::config::{OptionSet, Reservation, Subnet};
use crate::wire::{
    BootpReply, DEFAULT_TTL, EmitError, ID_OPTIONS, LEASE_OPTIONS, ReplyHeaders, ReplyWriter,
    Request, SERVER_PORT, opt,
};
use std::net::Ipv4Addr;

/// Longest `sname` / `file` value that leaves the terminating NUL (RFC 2131 §2).
const SNAME_MAX: usize = 63;
const FILE_MAX: usize = 127;

/// Options the decision computes or echoes itself and never copies from the configuration,
/// so a misconfigured value can neither duplicate nor contradict them (RFC 2131 table 3).
pub(crate) const fn is_protocol_option(code: u8) -> bool {
    matches!(
        code,
        opt::PAD
            | opt::END
            | opt::REQUESTED_IP
            | opt::LEASE_TIME
            | opt::OVERLOAD
            | opt::MESSAGE_TYPE
            | opt::SERVER_ID
            | opt::PARAMETER_REQUEST_LIST
            | opt::MAX_MESSAGE_SIZE
            | opt::RENEWAL_TIME
            | opt::REBINDING_TIME
            | opt::CLIENT_ID
            | opt::RELAY_AGENT_INFO
            | opt::SUBNET_SELECTION
    )
}

/// Lease timers sent with a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timers {
    pub lease: u32,
    pub t1: u32,
    pub t2: u32,
}

impl Timers {
    /// RFC 2131 §4.3.1: "IF the client has requested a specific lease in the DHCPDISCOVER
    /// message (regardless of whether the client has an assigned network address), the server
    /// may choose either to return the requested lease (if the lease is acceptable to local
    /// policy) or select another lease." Here: the requested time bounded by the subnet's
    /// min/max, else the subnet's default. (A client that already holds a lease and asks for
    /// nothing is offered the default again rather than its remaining time, as ISC dhcpd and
    /// Kea do: its REQUEST extends the lease to that length anyway.)
    /// T1/T2 (RFC 2131 §4.4.5, by default 0.5 and 0.875 of the lease) come from the configured
    /// per-mille fractions and are kept ordered T1 <= T2 <= lease whatever the configuration
    /// says.
    pub(crate) fn for_subnet(subnet: &Subnet, requested: Option<u32>) -> Timers {
        let lt = &subnet.lease;
        let lease = match requested {
            Some(r) => r.max(lt.min.min(lt.max)).min(lt.max),
            None => lt.default,
        };
        let frac = |permille: u16| -> u32 {
            let v = u64::from(lease) * u64::from(permille.min(1000)) / 1000;
            u32::try_from(v).unwrap_or(lease)
        };
        let t2 = frac(lt.t2_permille);
        let t1 = frac(lt.t1_permille).min(t2);
        Timers { lease, t1, t2 }
    }
}

/// What to write.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReplySpec<'c> {
    pub kind: ReplyKind,
    /// The subnet whose options, server identifier and BOOTP defaults apply.
    pub subnet: &'c Subnet,
    /// That subnet's options, indexed.
    pub options: &'c OptIndex,
    /// The client's reservation, whose options and BOOTP fields override the subnet's.
    pub host: Option<&'c Reservation>,
    pub yiaddr: Ipv4Addr,
    /// `ciaddr` of the reply (table 3: the request's ciaddr in an ACK to RENEW/REBIND/INFORM).
    pub ciaddr: Ipv4Addr,
    /// Lease timers for OFFER / lease ACK.
    pub timers: Option<Timers>,
    /// Option 56 text for a NAK.
    pub message: &'static [u8],
}

/// A reply written into the TX buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    /// Frame length.
    pub len: usize,
    /// The request's option 82 did not fit and was left out (RFC 3046 §2.2).
    pub echo_omitted: bool,
}

/// Write the reply to `req` into `tx`.
pub(crate) fn write(
    req: &Request<'_>,
    facts: &Facts<'_>,
    link_mac: [u8; 6],
    spec: &ReplySpec<'_>,
    tx: &mut [u8],
) -> Result<Written, EmitError> {
    let dest: Destination = destination(req, spec.kind, spec.yiaddr);
    let headers = ReplyHeaders {
        eth_dst: dest.mac,
        eth_src: link_mac,
        // The reply leaves on the same line (S-tag / C-tag) the request came from.
        vlans: req.l2.vlan_tags(),
        ip_src: spec.subnet.server_id,
        ip_dst: dest.ip,
        udp_src: SERVER_PORT,
        udp_dst: dest.port,
        ttl: DEFAULT_TTL,
    };
    let nak = spec.kind == ReplyKind::Nak;
    // Each value is read just before it is written (here and below): fewer values held at
    // once, fewer kept on the stack.
    // RFC 2132 §9.10: the client's maximum message size bounds the reply (never below 576,
    // enforced by both the parser and the writer).
    let max = facts.max_message_size;
    let mut w = ReplyWriter::with_bootp(tx, &headers, max, || {
        let mut bootp = fixed_fields(req, spec, dest.flags);
        // Usually nothing is configured for booting: then siaddr, sname and file stay empty
        // without looking at each source. RFC 2131 table 3: a NAK MUST NOT use file/sname.
        let s = spec.subnet;
        if !nak
            && (spec.host.is_some()
                || s.next_server.is_some()
                || s.server_name.is_some()
                || s.filename.is_some())
        {
            (bootp.siaddr, bootp.sname, bootp.file) = boot_fields(spec);
        }
        bootp
    })?;

    // Borrowed, not copied: the relay facts are several words and most replies never look.
    let relay = facts.relay.as_ref();
    // RFC 5107: a relay agent that adds the server identifier override sub-option (11) wants
    // its own address in option 54 of our replies, so that renewals come back through it; the
    // frame itself still leaves from our address on the subnet.
    let server_id = relay
        .and_then(|r| r.server_id_override)
        .unwrap_or(spec.subnet.server_id);
    let msg_type = match spec.kind {
        ReplyKind::Offer => super::stats::msg::OFFER,
        ReplyKind::Ack | ReplyKind::InformAck => super::stats::msg::ACK,
        ReplyKind::Nak => super::stats::msg::NAK,
    };
    // Steps 1 and 2 (53, 54 and, for a lease, 51, 58, 59) as one constant template with the
    // values patched in place: one room check, a few wide stores.
    let ids = |o: &mut [u8]| {
        o[2] = msg_type;
        o[5..9].copy_from_slice(&server_id.octets());
    };
    // Only an OFFER or a lease's ACK carries lease times (RFC 2131 table 3).
    if let (Some(t), ReplyKind::Offer | ReplyKind::Ack) = (spec.timers, spec.kind) {
        w.options_fixed(&LEASE_OPTIONS, |o| {
            ids(o);
            o[11..15].copy_from_slice(&t.lease.to_be_bytes());
            o[17..21].copy_from_slice(&t.t1.to_be_bytes());
            o[23..27].copy_from_slice(&t.t2.to_be_bytes());
        })?;
    } else {
        // Only 53 and 54: the template's first two options.
        w.options_fixed(&ID_OPTIONS, |o| ids(o))?;
    }
    if let Some(id) = facts.client_id {
        put_client_id(&mut w, id)?;
    }
    if let Some(sel) = facts.subnet_selection {
        // RFC 3011 §2: "Servers configured to support this option MUST return an identical
        // copy of the option to any client that sends it, regardless of whether or not the
        // client requests the option in a parameter request list."
        w.option_ipv4(opt::SUBNET_SELECTION, sel)?;
    }

    // RFC 3046 §2.2: "If a server is unable to copy a full Relay Agent Information field into
    // a response, it SHALL send the response without the Relay Information Field, and SHOULD
    // increment an error counter." Otherwise room for the echo is kept back from the
    // configured options, which are best effort.
    let echo = relay.filter(|r| encoded_len(r.raw.len()) <= w.remaining());
    let tail = echo.map_or(0, |r| encoded_len(r.raw.len()));

    if nak {
        // RFC 2131 table 3: a NAK carries no configuration; option 56 "SHOULD" explain.
        if !spec.message.is_empty() && encoded_len(spec.message.len()) + tail <= w.remaining() {
            w.option(opt::MESSAGE, spec.message)?;
        }
    } else {
        let host_opts = spec.host.map(|h| &h.options);
        put_configured(&mut w, facts, spec.options, host_opts, tail);
    }

    if let Some(r) = echo {
        // RFC 3046 §2.2: "DHCP servers claiming to support the Relay Agent Information option
        // SHALL echo the entire contents of the Relay Agent Information option in all replies.
        // Servers SHOULD copy the Relay Agent Information option as the last DHCP option in
        // the response."
        w.option(opt::RELAY_AGENT_INFO, r.raw)?;
    }
    Ok(Written {
        len: w.finish()?,
        echo_omitted: relay.is_some() && echo.is_none(),
    })
}

/// The BOOTP fixed fields of the reply but siaddr, sname and file (RFC 2131 table 3): those
/// of the request it copies, `flags` (see `destination`), and for all but a NAK, whose are 0,
/// ciaddr and yiaddr.
#[inline(always)]
fn fixed_fields(req: &Request<'_>, spec: &ReplySpec<'_>, flags: u16) -> BootpReply<'static> {
    let mut bootp = BootpReply::for_request(req);
    bootp.flags = flags;
    if spec.kind != ReplyKind::Nak {
        bootp.ciaddr = spec.ciaddr;
        bootp.yiaddr = spec.yiaddr;
    }
    bootp
}

/// siaddr, sname and file of a reply that is not a NAK: the reservation's, else the subnet's.
/// Out of line: usually nothing is configured for booting (and the caller does not come here).
#[cold]
#[inline(never)]
fn boot_fields<'c>(spec: &ReplySpec<'c>) -> (Ipv4Addr, &'c [u8], &'c [u8]) {
    let (s, host) = (spec.subnet, spec.host);
    // RFC 2131 §2: siaddr is the "IP address of next server to use in bootstrap".
    let siaddr = host
        .and_then(|h| h.next_server)
        .or(s.next_server)
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let sname = bootp_field(
        host.and_then(|h| h.server_name.as_deref()),
        s.server_name.as_deref(),
        SNAME_MAX,
    );
    let file = bootp_field(
        host.and_then(|h| h.filename.as_deref()),
        s.filename.as_deref(),
        FILE_MAX,
    );
    (siaddr, sname, file)
}

/// The reservation's value of a BOOTP string field, else the subnet's. A value that cannot
/// keep its terminating NUL is left out rather than truncated: a truncated boot file name is
/// worse than none.
fn bootp_field<'a>(host: Option<&'a [u8]>, subnet: Option<&'a [u8]>, max: usize) -> &'a [u8] {
    host.or(subnet).filter(|v| v.len() <= max).unwrap_or(&[])
}

/// Bytes an option of `len` value bytes takes, RFC 3396 splitting included.
#[inline]
const fn encoded_len(len: usize) -> usize {
    if len <= 255 {
        len + 2
    } else {
        len + 2 * len.div_ceil(255)
    }
}

/// Echo the client identifier (option 61) unaltered (RFC 6842 §3), joined if it was split.
/// The code is the constant 61, not the request's: the write needs no check for PAD or END.
#[inline]
fn put_client_id(w: &mut ReplyWriter<'_>, id: crate::wire::OptRef<'_>) -> Result<(), EmitError> {
    match id.contiguous() {
        Some(v) => w.option(opt::CLIENT_ID, v),
        None => w.detached(|w| put_joined(w, id)),
    }
}

/// [`put_client_id`] for a split value (RFC 3396), rare: out of line, with its buffer.
#[cold]
#[inline(never)]
fn put_joined(w: &mut ReplyWriter<'_>, id: crate::wire::OptRef<'_>) -> Result<(), EmitError> {
    // Joined here: a client identifier has no business being longer than this, and RFC 6842
    // asks for it "unaltered", which a joined copy is.
    let mut buf = [0u8; 1024];
    let v = id.copy_into(&mut buf);
    if v.len() < id.len() {
        return Err(EmitError::NoRoom);
    }
    w.option(opt::CLIENT_ID, v)
}

/// A 256-bit set of option codes already written.
#[derive(Default)]
struct CodeSet([u64; 4]);

impl CodeSet {
    /// Insert `code`; returns whether it was new.
    fn insert(&mut self, code: u8) -> bool {
        let (word, bit) = (usize::from(code >> 6), 1u64 << (code & 63));
        let new = self.0[word] & bit == 0;
        self.0[word] |= bit;
        new
    }
}

/// Where one configured option's bytes come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// A reservation's value, encoded while written.
    Value(&'a [u8]),
    /// The subnet's option, encoded once in advance ([`OptIndex::encoded`]).
    Encoded(&'a [u8]),
}

/// Write the configured options (reservation first, then subnet) the client gets.
///
/// The usual case is a cache hit: one parameter request list, no reservation options, and the
/// (subnet, list) block in the block cache (see `optcache`), copied whole. Everything else,
/// filling the cache included, is [`put_configured_slow`], kept out of line and given a copy
/// of the writer (`ReplyWriter::detached_summed`), so that the hot path stays small and its
/// writer in registers.
#[inline]
fn put_configured(
    w: &mut ReplyWriter<'_>,
    facts: &Facts<'_>,
    subnet: &OptIndex,
    host: Option<&OptionSet>,
    tail: usize,
) {
    let host = host.filter(|h| !h.is_empty());
    if host.is_none()
        && let Some(list) = facts.prl.and_then(|prl| prl.contiguous())
    {
        // The result depends on (subnet, list) alone: taken from the block cache when it
        // fits whole (see the first arm of `put_configured_slow`, which fills the cache).
        let (cache, id) = subnet.cache();
        let room = w.remaining().saturating_sub(tail);
        if w.options_with_sum(|dst| cache.get(id, list, room, dst))
            .is_some()
        {
            return;
        }
    }
    w.detached_summed(|w| put_configured_slow(w, facts, subnet, host, tail));
}

/// [`put_configured`] without the block cache's hit (`host`: non-empty reservation options).
#[inline(never)]
fn put_configured_slow(
    w: &mut ReplyWriter<'_>,
    facts: &Facts<'_>,
    subnet: &OptIndex,
    host: Option<&OptionSet>,
    tail: usize,
) {
    let lookup = |code: u8| -> Option<Source<'_>> {
        if let Some(v) = host.and_then(|h| h.get(code)) {
            return (!is_protocol_option(code)).then_some(Source::Value(v));
        }
        // Protocol options are never encoded into the subnet's table.
        subnet.encoded(code).map(Source::Encoded)
    };
    let put = |w: &mut ReplyWriter<'_>, code: u8, src: Source<'_>| {
        // Best effort: an option that does not fit (with the echo still to come) is left out.
        // Neither write can fail: the size was checked against `remaining` just before.
        match src {
            Source::Value(v) => {
                if encoded_len(v.len()) + tail <= w.remaining() {
                    let _ = w.option(code, v);
                }
            }
            Source::Encoded(e) => {
                if e.len() + tail <= w.remaining() {
                    let _ = w.option_encoded(e);
                }
            }
        }
    };
    match facts.prl {
        Some(prl) if host.is_none() && prl.contiguous().is_some() => {
            // The block cache's case (see `put_configured`), which missed or whose block did
            // not fit: the general arm below specialised to one list and no reservation
            // options, so every value is the subnet's pre-encoded option (same order, same
            // RFC 3442 rule, same best effort). A complete block fills the cache.
            let list = prl.contiguous().unwrap_or(&[]);
            let (cache, id) = subnet.cache();
            let mut sent = CodeSet::default();
            let mark = w.mark();
            let mut complete = true;
            let mut put = |w: &mut ReplyWriter<'_>, e: &[u8]| {
                if e.len() + tail <= w.remaining() {
                    // Cannot fail: the size was checked just above.
                    let _ = w.option_encoded(e);
                } else {
                    complete = false;
                }
            };
            let route = subnet
                .encoded(opt::CLASSLESS_STATIC_ROUTE)
                .filter(|_| list.contains(&opt::CLASSLESS_STATIC_ROUTE));
            for &code in list {
                if code == opt::ROUTER
                    && let Some(r) = route
                    && sent.insert(opt::CLASSLESS_STATIC_ROUTE)
                {
                    put(w, r);
                }
                if let Some(e) = subnet.encoded(code)
                    && sent.insert(code)
                {
                    put(w, e);
                }
            }
            // Only a block that nothing was left out of is the list's whole answer.
            if complete {
                let block = w.options_since(mark);
                cache.put(id, list, block, ReplyWriter::block_sum(block));
            }
        }
        Some(prl) => {
            // The list as one slice: the usual single instance borrowed, a split one (RFC 3396)
            // joined on the stack. A list has at most 254 distinct codes; longer (hostile)
            // lists are cut, which only drops repetitions.
            let mut joined: [u8; 256];
            let list: &[u8] = match prl.contiguous() {
                Some(l) => l,
                None => {
                    joined = [0; 256];
                    prl.copy_into(&mut joined)
                }
            };
            // RFC 2131 §4.3.1: "The server MUST supply as many of the requested parameters as
            // possible and MUST omit any parameters it cannot provide. The server MUST include
            // each requested parameter only once"; RFC 2132 §9.8: "The client MAY list the
            // options in order of preference", so the list's order is kept.
            // RFC 3442: "If the DHCP server returns both a Classless Static Routes option and a
            // Router option, the DHCP client MUST ignore the Router option", and "The Classless
            // Static Routes option code MUST appear in the parameter request list prior to both
            // the Router option code and the Static Routes option code, if present." So when
            // both are asked for and configured, 121 goes out first, ahead of 3's position.
            let mut sent = CodeSet::default();
            let route = lookup(opt::CLASSLESS_STATIC_ROUTE)
                .filter(|_| list.contains(&opt::CLASSLESS_STATIC_ROUTE));
            for &code in list {
                if code == opt::ROUTER
                    && let Some(v) = route
                    && sent.insert(opt::CLASSLESS_STATIC_ROUTE)
                {
                    put(w, opt::CLASSLESS_STATIC_ROUTE, v);
                }
                if let Some(v) = lookup(code)
                    && sent.insert(code)
                {
                    put(w, code, v);
                }
            }
        }
        None if host.is_none() => {
            // No list and no reservation options: the subnet's whole block, encoded in code
            // order in advance, in one copy when it fits (the usual case); otherwise option by
            // option, exactly as below.
            let (all, sum) = subnet.all_encoded();
            if all.len() + tail <= w.remaining() {
                let _ = w.option_encoded_summed(all, sum);
            } else {
                for (code, _) in subnet.iter() {
                    if let Some(v) = lookup(code) {
                        put(w, code, v);
                    }
                }
            }
        }
        None => {
            // No list: every configured option, merged in code order, reservation values
            // replacing the subnet's for the same code.
            let mut sent = CodeSet::default();
            let mut s = subnet.iter().peekable();
            let mut h = host.into_iter().flat_map(OptionSet::iter).peekable();
            loop {
                let next = match (s.peek(), h.peek()) {
                    (None, None) => break,
                    (Some(_), None) => s.next(),
                    (None, Some(_)) => h.next(),
                    (Some(&(sc, _)), Some(&(hc, _))) => {
                        if sc < hc {
                            s.next()
                        } else {
                            if sc == hc {
                                s.next();
                            }
                            h.next()
                        }
                    }
                };
                if let Some((code, _)) = next
                    && let Some(v) = lookup(code)
                    && sent.insert(code)
                {
                    put(w, code, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ipv4Net, LeaseTimes, SubnetId};

    fn subnet(lease: LeaseTimes) -> Subnet {
        Subnet {
            id: SubnetId(0),
            network: Ipv4Net {
                addr: Ipv4Addr::new(10, 0, 0, 0),
                prefix: 24,
            },
            ranges: vec![],
            excluded: vec![],
            server_id: Ipv4Addr::new(10, 0, 0, 1),
            lease,
            reservations: vec![],
            links: vec![],
            ..Subnet::default()
        }
    }

    #[test]
    fn timers_clamp_and_fractions() {
        let s = subnet(LeaseTimes {
            default: 3600,
            min: 600,
            max: 7200,
            t1_permille: 500,
            t2_permille: 875,
        });
        assert_eq!(
            Timers::for_subnet(&s, None),
            Timers {
                lease: 3600,
                t1: 1800,
                t2: 3150
            }
        );
        assert_eq!(Timers::for_subnet(&s, Some(10)).lease, 600);
        assert_eq!(Timers::for_subnet(&s, Some(100_000)).lease, 7200);
        assert_eq!(Timers::for_subnet(&s, Some(1000)).lease, 1000);
        let t = Timers::for_subnet(&s, Some(7200));
        assert_eq!((t.t1, t.t2), (3600, 6300));
    }

    #[test]
    fn timers_stay_ordered_with_odd_config() {
        let s = subnet(LeaseTimes {
            default: u32::MAX,
            min: 9000,
            max: 100,
            t1_permille: 900,
            t2_permille: 2000,
        });
        let t = Timers::for_subnet(&s, None);
        assert_eq!(t.lease, u32::MAX);
        assert!(t.t1 <= t.t2 && t.t2 <= t.lease);
        // min > max: the max wins, no panic.
        assert_eq!(Timers::for_subnet(&s, Some(5)).lease, 100);
    }

    #[test]
    fn encoded_len_counts_split_headers() {
        assert_eq!(encoded_len(0), 2);
        assert_eq!(encoded_len(4), 6);
        assert_eq!(encoded_len(255), 257);
        assert_eq!(encoded_len(256), 260);
        assert_eq!(encoded_len(510), 514);
    }

    #[test]
    fn code_set() {
        let mut s = CodeSet::default();
        assert!(s.insert(0));
        assert!(s.insert(255));
        assert!(s.insert(64));
        assert!(!s.insert(64));
        assert!(!s.insert(255));
    }
}
