//! Writing a reply frame straight into a TX buffer.
//!
//! The reply is built in place: [`ReplyWriter::new`] lays down Ethernet (with the request's
//! VLAN tags), IPv4 and UDP headers and an empty BOOTP header, [`ReplyWriter::bootp`] fills the
//! fixed fields, each `option*` call appends an option, and [`ReplyWriter::finish`] writes END,
//! pads, and sets every length and checksum in one place. Nothing is allocated and no byte is
//! copied twice; a buffer that is too small (or a reply that would exceed the client's maximum
//! message size) is reported as [`EmitError::NoRoom`], never a panic. Each option is written
//! whole or not at all, so after a `NoRoom` the caller may skip that option and go on.
//!
//! Cost matters here: every OFFER and ACK goes through this. So `new` zeroes the fixed BOOTP
//! header with one constant-size store and `bootp` writes only the fields (and names that are
//! set); fixed-size options are constant-size stores, and the decision writes its leading
//! options (53, 54, 51, 58, 59) as one template (`options_fixed`). The UDP checksum is not one
//! pass over the ~300-byte datagram: `finish` sums the headers and the 44 bytes of BOOTP
//! fields, skips `sname`/`file` when empty and the PAD after END (zeros add nothing), and takes
//! blocks of options whose sum was computed once in advance (a subnet's configured options,
//! see `dhcp/optcache.rs`) as one number, placed by RFC 1071 §2(B) at an even or odd offset
//! (see `run_sum`). The options before such a block (or before END) are summed as one
//! constant-size window when they fit in the 60 option bytes of a minimal message, which `new`
//! zeroes in advance (see `SUM_WINDOW`); that zeroing is also a short reply's PAD. So nothing
//! may be written past the options but zeros. The pseudo header's two addresses are not
//! summed again either: `ipv4::emit` returns their sum, taken while it wrote them into the
//! IPv4 header. In debug builds `finish` checks its result against the whole-datagram
//! computation of `udp::finish`, and `ipv4::finish` its header checksum against the whole
//! header's.

use super::dhcp::{BOOTREPLY, MAGIC_COOKIE, MIN_MAX_MESSAGE_SIZE, field, opt};
use super::{Request, VlanTags, checksum, ether, ipv4, udp};
use std::net::Ipv4Addr;

/// The reply does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EmitError {
    /// The TX buffer, or the client's maximum DHCP message size, is too small for what was
    /// asked. The frame is not valid until a later `finish` succeeds.
    #[error("reply does not fit in the TX buffer or in the client's maximum message size")]
    NoRoom,
}

/// TTL used when the caller has no reason to pick another (RFC 1700 default for IP).
pub const DEFAULT_TTL: u8 = 64;

/// RFC 1542 §3.1.1 / RFC 951: a BOOTP message is at least 300 octets (some relays and
/// clients drop shorter ones), so replies are padded to this.
pub const MIN_BOOTP_LEN: usize = 300;

/// IPv4 (no options) + UDP header bytes counted by option 57 (RFC 2132 §9.10).
const IP_UDP_LEN: usize = ipv4::HEADER_LEN + udp::HEADER_LEN;

/// Longest BOOTP message that still fits in one IPv4 datagram.
const MAX_BOOTP_LEN: usize = u16::MAX as usize - IP_UDP_LEN;

/// Maximum length of one option instance's value.
const MAX_OPTION_CHUNK: usize = 255;

/// Addresses and ports of the reply frame; the decision fills these per RFC 2131 §4.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeaders {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    /// Usually the request's tags: `request.l2.vlan_tags()`.
    pub vlans: VlanTags,
    pub ip_src: Ipv4Addr,
    pub ip_dst: Ipv4Addr,
    pub udp_src: u16,
    pub udp_dst: u16,
    /// IPv4 TTL; [`DEFAULT_TTL`] unless there is a reason otherwise.
    pub ttl: u8,
}

/// The BOOTP fixed fields of a reply (RFC 2131 §4.3.1 table 3). `op` is always BOOTREPLY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootpReply<'s> {
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    /// Server host name, at most 63 bytes (the field is a NUL-terminated string).
    pub sname: &'s [u8],
    /// Boot file name, at most 127 bytes.
    pub file: &'s [u8],
}

impl BootpReply<'static> {
    /// The fields RFC 2131 table 3 copies from the client's message: htype, hlen, xid, flags,
    /// giaddr, chaddr. hops, secs, ciaddr, yiaddr, siaddr are 0 and sname/file empty; set the
    /// ones the reply needs (`BootpReply { yiaddr, ..BootpReply::for_request(req) }`).
    pub fn for_request(req: &Request<'_>) -> Self {
        BootpReply {
            htype: req.htype,
            hlen: req.hlen,
            hops: 0,
            xid: req.xid,
            secs: 0,
            flags: req.flags,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            sname: &[],
            file: &[],
        }
    }
}

/// Append option `code` with `value` to `out` exactly as [`ReplyWriter::option`] writes it
/// (split into consecutive instances past 255 bytes, RFC 3396 §5; nothing for PAD and END),
/// for [`ReplyWriter::option_encoded`].
pub(crate) fn encode_option(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    if code == opt::PAD || code == opt::END {
        return;
    }
    let mut chunks = value.chunks(MAX_OPTION_CHUNK);
    // An empty value is still one instance with length 0.
    let first = chunks.next().unwrap_or(&[]);
    for chunk in core::iter::once(first).chain(chunks) {
        out.push(code);
        // chunks of at most 255 bytes.
        out.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(chunk);
    }
}

/// Options 53 (message type), 54 (server identifier), 51 (lease time), 58 (T1) and 59 (T2)
/// with zero values: the leading options of every reply that carries a lease, as one template
/// for [`ReplyWriter::options_fixed`] to store and patch (the first 9 bytes, 53 and 54, lead
/// every other reply).
#[rustfmt::skip]
pub(crate) const LEASE_OPTIONS: [u8; 27] = [
    opt::MESSAGE_TYPE, 1, 0,
    opt::SERVER_ID, 4, 0, 0, 0, 0,
    opt::LEASE_TIME, 4, 0, 0, 0, 0,
    opt::RENEWAL_TIME, 4, 0, 0, 0, 0,
    opt::REBINDING_TIME, 4, 0, 0, 0, 0,
];

/// The first two options of [`LEASE_OPTIONS`] (53 and 54), which lead every other reply.
pub(crate) const ID_OPTIONS: [u8; 9] = match LEASE_OPTIONS.first_chunk::<9>() {
    Some(ids) => *ids,
    None => [0; 9],
};

/// RFC 768 UDP header fields that `finish` sets (the rest is written by `udp::emit`).
const UDP_LENGTH: core::ops::Range<usize> = 4..6;
const UDP_CHECKSUM: core::ops::Range<usize> = 6..8;

/// RFC 1071 partial sums for [`ReplyWriter::finish`].
///
/// WHY partial sums instead of one [`checksum::sum`] over the datagram: most of a reply's
/// ~300 bytes need no summing at all. `sname` and `file` (192 bytes) are zero unless
/// configured, PAD is zero, and the configured-option block is the same for every client of a
/// (subnet, parameter request list) pair, so its sum is computed once beside the block (see
/// `dhcp/optcache.rs`) and added as one number. `finish` sums only the UDP header and the
/// 44 bytes of BOOTP fields before `sname`, and the option bytes that were not pre-summed.
///
/// Every run is summed with [`checksum::sum`] (network order, folded to 16 bits) and the
/// partial sums are added in a `u32`. RFC 1071 §2(B): the sum is independent of byte order,
/// so a run that starts at an odd offset of the datagram, whose bytes sit in swapped halves
/// of the 16-bit words, contributes its own sum byte-swapped ([`run_sum`]).
fn run_sum(odd: bool, run: &[u8]) -> u32 {
    ReplyWriter::placed(odd, checksum::sum(0, run) as u16)
}

/// Option bytes, from the magic cookie on, summed as one constant-size array when the options
/// not pre-summed end inside them: the 64 bytes up to the 300-byte minimum message.
///
/// WHY: summing a run of variable length costs a dispatch on its length and tail (~45
/// instructions for the ~36 bytes of cookie, leading options and client identifier before a
/// cached block); a constant-size array is a fixed chain of additions. `new` zeroes these
/// bytes (a short reply's PAD) and every write stores exactly its own bytes (a fill of
/// `options_with_sum` only zeros past them), so past the last option written the window holds
/// zeros, which add nothing. The window stays inside the frame: a frame is never shorter
/// than the minimum message, and nothing is written past a frame.
const SUM_WINDOW: usize = MIN_BOOTP_LEN - field::COOKIE.start;

/// Writes one reply frame into a TX buffer. See the module docs.
#[derive(Debug)]
pub struct ReplyWriter<'b> {
    buf: &'b mut [u8],
    /// Start of the IPv4 header (after the VLAN tags); the BOOTP message follows at a
    /// constant distance ([`Self::bootp_off`]). Fewer fields: fewer stores and reloads.
    ip_off: usize,
    /// Next option byte (absolute offset in `buf`).
    pos: usize,
    /// End allowed now: [`Self::buf_end`], lowered by the client's maximum message size
    /// (absolute, exclusive).
    end: usize,
    /// Whether `sname` / `file` may hold non-zero bytes (else `finish` skips them).
    names: bool,
    /// Option bytes before this offset are already added into `acc` (absolute).
    summed_to: usize,
    /// Partial sum ([`run_sum`]) of the option bytes before `summed_to`, started with the
    /// UDP pseudo header (RFC 768) but its length: the two IPv4 addresses (summed when
    /// `ipv4::emit` wrote them) and the protocol.
    acc: u32,
    /// Sum of the IPv4 header as `ipv4::emit` wrote it, for `ipv4::finish`.
    ip_sum: u32,
}

impl<'b> ReplyWriter<'b> {
    /// Start a reply in `buf`: L2 (with `h.vlans`), IPv4, UDP and an empty BOOTREPLY header with
    /// the magic cookie. The DHCP message is limited to a 576-octet IP datagram (RFC 2131 §2)
    /// until [`limit`](Self::limit) raises it.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if `buf` cannot hold the headers plus a minimal 300-byte BOOTP
    /// message.
    #[inline(always)]
    pub fn new(buf: &'b mut [u8], h: &ReplyHeaders) -> Result<Self, EmitError> {
        let ip_off = ether::emit(buf, &h.eth_dst, &h.eth_src, h.vlans).ok_or(EmitError::NoRoom)?;
        let udp_off = ip_off + ipv4::HEADER_LEN;
        let bootp_off = udp_off + udp::HEADER_LEN;
        if buf.len() < bootp_off + MIN_BOOTP_LEN {
            return Err(EmitError::NoRoom);
        }
        // IPv4, UDP and the minimal BOOTP message as one constant-size borrow, split at
        // constant offsets: one bounds check for all three.
        let l3: &mut [u8; IP_UDP_LEN + MIN_BOOTP_LEN] = buf
            .get_mut(ip_off..)
            .and_then(|f| f.first_chunk_mut())
            .ok_or(EmitError::NoRoom)?;
        let (ip, rest) = l3
            .split_first_chunk_mut::<{ ipv4::HEADER_LEN }>()
            .ok_or(EmitError::NoRoom)?;
        let (ip_sum, addr_sum) =
            ipv4::emit(ip, h.ip_src, h.ip_dst, h.ttl).ok_or(EmitError::NoRoom)?;
        let (u, fixed) = rest
            .split_first_chunk_mut::<{ udp::HEADER_LEN }>()
            .ok_or(EmitError::NoRoom)?;
        udp::emit(u, h.udp_src, h.udp_dst).ok_or(EmitError::NoRoom)?;
        // One constant-size fill for the whole fixed header, so `bootp` only writes the
        // fields and the names it is given, and for the first 60 option bytes: the PAD of a
        // short reply, and the zeros past END of the checksum window (see `SUM_WINDOW`).
        // Three constant-size stores around the cookie: one 300-byte fill would be a call.
        let msg: &mut [u8; MIN_BOOTP_LEN] = fixed.try_into().map_err(|_| EmitError::NoRoom)?;
        let (fixed, options) = msg
            .split_first_chunk_mut::<{ field::OPTIONS }>()
            .ok_or(EmitError::NoRoom)?;
        let (before_cookie, cookie) = fixed
            .split_first_chunk_mut::<{ field::COOKIE.start }>()
            .ok_or(EmitError::NoRoom)?;
        *before_cookie = [0; field::COOKIE.start];
        before_cookie[field::OP] = BOOTREPLY;
        cookie.copy_from_slice(&MAGIC_COOKIE);
        options.fill(0);
        let buf_end = buf.len().min(bootp_off + MAX_BOOTP_LEN);
        let limit_end = bootp_off + usize::from(MIN_MAX_MESSAGE_SIZE) - IP_UDP_LEN;
        Ok(ReplyWriter {
            buf,
            ip_off,
            pos: bootp_off + field::OPTIONS,
            end: buf_end.min(limit_end),
            names: false,
            summed_to: bootp_off + field::COOKIE.start,
            acc: addr_sum + u32::from(ipv4::PROTO_UDP),
            ip_sum,
        })
    }

    /// Write the BOOTP fixed fields (op is BOOTREPLY).
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if `sname` is longer than 63 bytes or `file` longer than 127:
    /// both fields must keep a terminating NUL (RFC 2131 §2).
    pub fn bootp(&mut self, r: &BootpReply<'_>) -> Result<(), EmitError> {
        if r.sname.len() >= field::SNAME.len() || r.file.len() >= field::FILE.len() {
            return Err(EmitError::NoRoom);
        }
        let off = self.bootp_off();
        let f: &mut [u8; field::OPTIONS] = self
            .buf
            .get_mut(off..)
            .and_then(|f| f.first_chunk_mut())
            .ok_or(EmitError::NoRoom)?;
        // The 44 bytes before `sname` as one constant-size array.
        let mut head = [0u8; field::SNAME.start];
        head[field::OP] = BOOTREPLY;
        head[field::HTYPE] = r.htype;
        head[field::HLEN] = r.hlen;
        head[field::HOPS] = r.hops;
        head[field::XID].copy_from_slice(&r.xid.to_be_bytes());
        head[field::SECS].copy_from_slice(&r.secs.to_be_bytes());
        head[field::FLAGS].copy_from_slice(&r.flags.to_be_bytes());
        head[field::CIADDR].copy_from_slice(&r.ciaddr.octets());
        head[field::YIADDR].copy_from_slice(&r.yiaddr.octets());
        head[field::SIADDR].copy_from_slice(&r.siaddr.octets());
        head[field::GIADDR].copy_from_slice(&r.giaddr.octets());
        head[field::CHADDR].copy_from_slice(&r.chaddr);
        f[..field::SNAME.start].copy_from_slice(&head);
        // Both names are usually empty: `new` zeroed them, so then nothing is written (and
        // `finish` need not sum them).
        if self.names {
            f[field::SNAME.start..field::FILE.end].fill(0);
        }
        if !r.sname.is_empty() {
            f[field::SNAME][..r.sname.len()].copy_from_slice(r.sname);
        }
        if !r.file.is_empty() {
            f[field::FILE][..r.file.len()].copy_from_slice(r.file);
        }
        self.names = !r.sname.is_empty() || !r.file.is_empty();
        Ok(())
    }

    /// Bound the DHCP message by the client's maximum message size (option 57).
    ///
    /// RFC 2132 §9.10 does not say whether the value counts the IP and UDP headers; ISC dhcpd
    /// and dnsmasq take it as the whole IP datagram, and so does this (it is the reading under
    /// which a reply is never too long for the client). Values below the legal minimum of 576
    /// are raised to 576. The limit only ever applies together with the buffer's own size.
    pub fn limit(&mut self, max_message_size: u16) {
        let datagram = usize::from(max_message_size.max(MIN_MAX_MESSAGE_SIZE));
        self.end = self.buf_end().min(self.bootp_off() + datagram - IP_UDP_LEN);
    }

    /// Absolute end of the BOOTP message allowed now.
    #[inline]
    fn end(&self) -> usize {
        self.end
    }

    /// Bytes still available for options (END is already accounted for).
    #[inline]
    pub fn remaining(&self) -> usize {
        self.end().saturating_sub(self.pos + 1)
    }

    /// Reserve `value_len` bytes of value plus the code/length headers of as many instances as
    /// RFC 3396 splitting needs, and call `fill(chunk, value_offset)` for each instance's value.
    fn put_split(
        &mut self,
        code: u8,
        value_len: usize,
        mut fill: impl FnMut(&mut [u8], usize),
    ) -> Result<(), EmitError> {
        if code == opt::PAD || code == opt::END {
            // Framing bytes, not options; END is written by `finish`.
            return Ok(());
        }
        let chunks = value_len.div_ceil(MAX_OPTION_CHUNK).max(1);
        let need = value_len + 2 * chunks;
        // + 1: END must still fit after this option.
        if self.pos + need + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        let mut done = 0;
        for _ in 0..chunks {
            let n = (value_len - done).min(MAX_OPTION_CHUNK);
            let at = self.pos;
            let out = self.buf.get_mut(at..at + 2 + n).ok_or(EmitError::NoRoom)?;
            out[0] = code;
            // n <= 255 by construction.
            out[1] = u8::try_from(n).unwrap_or(u8::MAX);
            fill(&mut out[2..], done);
            done += n;
            self.pos = at + 2 + n;
        }
        Ok(())
    }

    /// Append option `code` with `value`; a value longer than 255 bytes is split into
    /// consecutive instances (RFC 3396 §5). PAD and END are ignored (`finish` writes END).
    ///
    /// # Errors
    /// [`EmitError::NoRoom`]; nothing is written then.
    // Always inlined: nearly every reply echoes a client identifier through here, and the
    // call (register saves and restores) cost as much as the short copy itself.
    #[inline(always)]
    pub fn option(&mut self, code: u8, value: &[u8]) -> Result<(), EmitError> {
        if let Ok(n) = u8::try_from(value.len())
            && code != opt::PAD
            && code != opt::END
        {
            // The usual single instance: one check, one copy.
            let at = self.pos;
            let len = 2 + value.len();
            // + 1: END must still fit after this option.
            if at + len + 1 > self.end() {
                return Err(EmitError::NoRoom);
            }
            let out = self.buf.get_mut(at..at + len).ok_or(EmitError::NoRoom)?;
            out[0] = code;
            out[1] = n;
            crate::cpu::copy_short(&mut out[2..], value);
            self.pos = at + len;
            return Ok(());
        }
        self.put_split(code, value.len(), |out, off| {
            out.copy_from_slice(&value[off..off + out.len()]);
        })
    }

    /// Append options already encoded by [`encode_option`] (one or several, whole): the
    /// configured options of a subnet are encoded once and copied into every reply, which
    /// saves re-deriving their headers and RFC 3396 split per packet.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`]; nothing is written then.
    pub(crate) fn option_encoded(&mut self, encoded: &[u8]) -> Result<(), EmitError> {
        let at = self.pos;
        // + 1: END must still fit after these options.
        if at + encoded.len() + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        self.buf
            .get_mut(at..at + encoded.len())
            .ok_or(EmitError::NoRoom)?
            .copy_from_slice(encoded);
        self.pos = at + encoded.len();
        Ok(())
    }

    /// [`Self::option_encoded`] for a block whose [`Self::block_sum`] is `sum`, computed once
    /// when the block was built: `finish` then does not sum its bytes again.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`]; nothing is written then.
    pub(crate) fn option_encoded_summed(
        &mut self,
        encoded: &[u8],
        sum: u16,
    ) -> Result<(), EmitError> {
        let at = self.pos;
        // Before the block is written: see `pending_sum`.
        let before = self.pending_sum(at);
        self.option_encoded(encoded)?;
        self.presummed(before, at, sum);
        Ok(())
    }

    /// Append whole options encoded at compile-time size `N` (e.g. message type, server
    /// identifier and timers as one template): `template` is stored, then `patch` writes the
    /// values into it in place. One room check and a few wide stores of a constant instead of
    /// a store per option (or an array assembled byte by byte on the stack and copied).
    /// The template must hold whole options, never PAD or END, and `patch` only their values.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`]; nothing is written then.
    #[inline]
    pub(crate) fn options_fixed<const N: usize>(
        &mut self,
        template: &[u8; N],
        patch: impl FnOnce(&mut [u8; N]),
    ) -> Result<(), EmitError> {
        let at = self.pos;
        // + 1: END must still fit after these options.
        if at + N + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        let out: &mut [u8; N] = self
            .buf
            .get_mut(at..)
            .and_then(|o| o.first_chunk_mut())
            .ok_or(EmitError::NoRoom)?;
        *out = *template;
        patch(out);
        self.pos = at + N;
        Ok(())
    }

    /// Append an option whose value has a size known at compile time (at most 255 bytes):
    /// the fixed-size fields every reply carries (message type, server identifier, timers)
    /// are written with constant-size stores instead of a general copy.
    fn option_array<const N: usize>(&mut self, code: u8, v: [u8; N]) -> Result<(), EmitError> {
        const { assert!(N <= MAX_OPTION_CHUNK) };
        if code == opt::PAD || code == opt::END {
            return Ok(());
        }
        let at = self.pos;
        // + 1: END must still fit after this option.
        if at + 2 + N + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        let out = self.buf.get_mut(at..at + 2 + N).ok_or(EmitError::NoRoom)?;
        out[0] = code;
        out[1] = N as u8;
        out[2..].copy_from_slice(&v);
        self.pos = at + 2 + N;
        Ok(())
    }

    /// Let `fill` write whole, already encoded options straight into the frame: it gets the
    /// bytes still available for options and returns how many it filled and their
    /// [`Self::block_sum`], or `None` to write nothing. Past what it fills (everywhere, when
    /// it returns `None`) it may store only zeros: the bytes past the options must stay zero
    /// (see [`SUM_WINDOW`]).
    pub(crate) fn options_with_sum(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Option<(usize, u16)>,
    ) -> Option<usize> {
        let at = self.pos;
        let room = self.remaining();
        // Before the block is written: see `pending_sum`.
        let before = self.pending_sum(at);
        let out = self.buf.get_mut(at..at + room)?;
        let (n, sum) = fill(out)?;
        if n > room {
            // Not a fill that keeps its word: nothing of it stays (see `SUM_WINDOW`).
            out.fill(0);
            return None;
        }
        self.pos = at + n;
        self.presummed(before, at, sum);
        Some(n)
    }

    /// The option bytes written but not summed yet, from `summed_to` up to `to`: as the
    /// constant-size window ([`SUM_WINDOW`]) when they start at the cookie and end inside
    /// it, as a run otherwise. Called before anything is written at `to` (a block, or after
    /// END), so that the window holds nothing past `to` but zeros.
    #[inline(always)]
    fn pending_sum(&self, to: usize) -> u32 {
        let from = self.summed_to;
        if from == to {
            // Nothing pending (a block right after another): no call for an empty run.
            return 0;
        }
        let cookie = self.bootp_off() + field::COOKIE.start;
        if from == cookie
            && to <= cookie + SUM_WINDOW
            && let Some(window) = self
                .buf
                .get(cookie..)
                .and_then(|w| w.first_chunk::<SUM_WINDOW>())
        {
            // The cookie is at an even offset of the datagram: no swap.
            return checksum::sum_array(0, window);
        }
        run_sum(self.odd(from), self.buf.get(from..to).unwrap_or(&[]))
    }

    /// The bytes from `at` to `pos` have the block sum `sum`, and `before` is the
    /// [`Self::pending_sum`] of the bytes written before them: add both, `sum` swapped when the
    /// block starts at an odd offset of the UDP datagram (RFC 1071 §2(B), see [`run_sum`]).
    #[inline]
    fn presummed(&mut self, before: u32, at: usize, sum: u16) {
        self.acc += before + Self::placed(self.odd(at), sum);
        self.summed_to = self.pos;
    }

    /// A block sum computed as if at an even offset, as it counts at an `odd` or even one.
    #[inline]
    fn placed(odd: bool, sum: u16) -> u32 {
        u32::from(if odd { sum.swap_bytes() } else { sum })
    }

    /// Whether absolute offset `at` is at an odd offset of the UDP datagram.
    #[inline]
    fn odd(&self, at: usize) -> bool {
        (at - self.udp_off()) & 1 == 1
    }

    #[inline]
    fn udp_off(&self) -> usize {
        self.ip_off + ipv4::HEADER_LEN
    }

    #[inline]
    fn bootp_off(&self) -> usize {
        self.ip_off + IP_UDP_LEN
    }

    /// End of the usable buffer for the BOOTP message (absolute, exclusive).
    #[inline]
    fn buf_end(&self) -> usize {
        self.buf.len().min(self.bootp_off() + MAX_BOOTP_LEN)
    }

    /// The checksum contribution of `block` when it starts at an even offset, as
    /// [`Self::option_encoded_summed`] and [`Self::options_with_sum`] take it: computed once
    /// for a block that is copied into many replies.
    pub(crate) fn block_sum(block: &[u8]) -> u16 {
        checksum::sum(0, block) as u16
    }

    /// Where the next option will be written, for [`Self::options_since`].
    pub(crate) fn mark(&self) -> usize {
        self.pos
    }

    /// The option bytes written since `mark`.
    pub(crate) fn options_since(&self, mark: usize) -> &[u8] {
        self.buf.get(mark..self.pos).unwrap_or(&[])
    }

    /// Append a one-byte option.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_u8(&mut self, code: u8, v: u8) -> Result<(), EmitError> {
        self.option_array(code, [v])
    }

    /// Append a 16-bit option (network byte order).
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_u16(&mut self, code: u8, v: u16) -> Result<(), EmitError> {
        self.option_array(code, v.to_be_bytes())
    }

    /// Append a 32-bit option (network byte order), e.g. lease, T1 and T2 times.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_u32(&mut self, code: u8, v: u32) -> Result<(), EmitError> {
        self.option_array(code, v.to_be_bytes())
    }

    /// Append an address option (e.g. subnet mask, server identifier).
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_ipv4(&mut self, code: u8, v: Ipv4Addr) -> Result<(), EmitError> {
        self.option_array(code, v.octets())
    }

    /// Append an address-list option (routers, DNS servers, ...), split past 255 bytes.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_ipv4_list(&mut self, code: u8, v: &[Ipv4Addr]) -> Result<(), EmitError> {
        self.put_split(code, v.len() * 4, |out, off| {
            for (i, b) in out.iter_mut().enumerate() {
                let k = off + i;
                *b = v.get(k / 4).map_or(0, |a| a.octets()[k % 4]);
            }
        })
    }

    /// Write END, pad the BOOTP message to 300 bytes, set IPv4 total length and header
    /// checksum, UDP length and checksum. Returns the frame length.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if the options written so far exceed a limit set afterwards.
    #[inline]
    pub fn finish(self) -> Result<usize, EmitError> {
        if self.pos + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        let udp_off = self.udp_off();
        let (bootp_off, pos) = (self.bootp_off(), self.pos);
        *self.buf.get_mut(pos).ok_or(EmitError::NoRoom)? = opt::END;
        // The option bytes not summed yet, through END (the PAD after it adds nothing).
        let pending = if self.summed_to == pos {
            // Only END is left (the usual case after a pre-summed block): a byte at an even
            // offset is the high byte of its network-order word.
            Self::placed(self.odd(pos), u16::from(opt::END) << 8)
        } else {
            self.pending_sum(pos + 1)
        };
        // RFC 2131 §4.1: the rest of a short message is PAD (0), which `new` stored and no
        // write went past (see `SUM_WINDOW`).
        let end = (pos + 1).max(bootp_off + MIN_BOOTP_LEN);
        debug_assert!(
            self.buf
                .get(pos + 1..end)
                .is_some_and(|pad| pad.iter().all(|&b| b == opt::PAD)),
            "PAD after END"
        );
        let buf = &mut *self.buf;
        let ip_total = u16::try_from(end - self.ip_off).map_err(|_| EmitError::NoRoom)?;
        let udp_len = u16::try_from(end - udp_off).map_err(|_| EmitError::NoRoom)?;

        // UDP checksum (RFC 768) over the pseudo header, the UDP header and the BOOTP message
        // (partial sums, see `run_sum`). The partial sums stay unfolded (a handful of 16-bit
        // numbers) and become the starting value of the header's sum: one fold for all. The
        // pseudo header but its length is in `acc` from the start.
        let mut acc = self.acc + pending + u32::from(udp_len);
        if self.names {
            let names = buf
                .get(bootp_off + field::SNAME.start..bootp_off + field::FILE.end)
                .ok_or(EmitError::NoRoom)?;
            acc += checksum::sum(0, names);
        }
        // The IPv4 header, the UDP header and the BOOTP fields before `sname` as one
        // constant-size borrow: one bounds check for every length and checksum written below.
        let l3: &mut [u8; ipv4::HEADER_LEN + udp::HEADER_LEN + field::SNAME.start] = buf
            .get_mut(self.ip_off..)
            .and_then(|h| h.first_chunk_mut())
            .ok_or(EmitError::NoRoom)?;
        let (ip, head) = l3
            .split_first_chunk_mut::<{ ipv4::HEADER_LEN }>()
            .ok_or(EmitError::NoRoom)?;
        let head: &mut [u8; udp::HEADER_LEN + field::SNAME.start] =
            head.try_into().map_err(|_| EmitError::NoRoom)?;
        head[UDP_LENGTH].copy_from_slice(&udp_len.to_be_bytes());
        head[UDP_CHECKSUM].fill(0);
        let mut c = checksum::finish(checksum::sum_array(acc, head));
        // RFC 768: a computed checksum of zero is transmitted as all ones.
        if c == 0 {
            c = 0xffff;
        }
        head[UDP_CHECKSUM].copy_from_slice(&c.to_be_bytes());
        // IPv4 total length and header checksum (RFC 791).
        ipv4::finish(ip, ip_total, self.ip_sum).ok_or(EmitError::NoRoom)?;
        if cfg!(debug_assertions) {
            // The whole-datagram computation this one stands for must agree (the pseudo
            // header's addresses read back from the IPv4 header).
            let addr = |at: usize| -> [u8; 4] {
                let a = self.ip_off + at;
                self.buf
                    .get(a..a + 4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or_default()
            };
            let (src, dst) = (addr(12), addr(16));
            let datagram = self.buf.get_mut(udp_off..end).ok_or(EmitError::NoRoom)?;
            udp::finish(datagram, src, dst).ok_or(EmitError::NoRoom)?;
            debug_assert_eq!(datagram[UDP_CHECKSUM], c.to_be_bytes(), "UDP checksum");
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::super::VlanTag;
    use super::super::testutil::inet_checksum;
    use super::*;

    fn headers(vlans: VlanTags) -> ReplyHeaders {
        ReplyHeaders {
            eth_dst: [2, 0, 0, 0, 0, 9],
            eth_src: [2, 0, 0, 0, 0, 1],
            vlans,
            ip_src: Ipv4Addr::new(10, 0, 0, 1),
            ip_dst: Ipv4Addr::new(10, 0, 0, 77),
            udp_src: 67,
            udp_dst: 68,
            ttl: DEFAULT_TTL,
        }
    }

    /// The UDP checksum of `frame` checked from scratch (RFC 768 pseudo header + datagram).
    fn udp_checksum_ok(frame: &[u8], ip_off: usize) -> bool {
        let ip = &frame[ip_off..ip_off + 20];
        let udp = &frame[ip_off + 20..];
        let len = u16::from_be_bytes([udp[4], udp[5]]);
        assert_eq!(usize::from(len), udp.len());
        inet_checksum(&[&ip[12..20], &[0, 17], &len.to_be_bytes(), udp]) == 0
            && inet_checksum(&[ip]) == 0
    }

    #[test]
    fn presummed_blocks_at_odd_and_even_offsets_give_the_same_frame() {
        // A block summed once (as the option cache does) must add up wherever it lands: at
        // even and odd offsets (RFC 1071 §2(B)), after and before other options, with and
        // without names, tagged or not (the IP offset moves by 4 per tag). The options
        // before it are summed as the window when they end inside it (`lead` up to 55) and as
        // a run when they do not, and so are the options of a reply without a block.
        let block: Vec<u8> = [
            &[1u8, 4, 255, 255, 255, 0][..],
            &[3, 4, 10, 0, 0, 1],
            &[15, 7],
            b"example",
            &[42, 4, 10, 0, 0, 123],
        ]
        .concat();
        let sum = ReplyWriter::block_sum(&block);
        let tagged = VlanTags::new(&[VlanTag {
            tpid: super::super::TPID_8021Q,
            tci: 100,
        }])
        .unwrap();
        for vlans in [VlanTags::NONE, tagged] {
            for lead in (0..6usize).chain(50..60).chain([100]) {
                for names in [false, true] {
                    let write = |summed: bool, out: &mut [u8]| -> usize {
                        let mut w = ReplyWriter::new(out, &headers(vlans)).unwrap();
                        let mut b = BootpReply {
                            yiaddr: Ipv4Addr::new(10, 0, 0, 77),
                            ..BootpReply {
                                htype: 1,
                                hlen: 6,
                                hops: 0,
                                xid: 0x1234_5678,
                                secs: 0,
                                flags: 0,
                                ciaddr: Ipv4Addr::UNSPECIFIED,
                                yiaddr: Ipv4Addr::UNSPECIFIED,
                                siaddr: Ipv4Addr::UNSPECIFIED,
                                giaddr: Ipv4Addr::UNSPECIFIED,
                                chaddr: [2, 0xcc, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                                sname: &[],
                                file: &[],
                            }
                        };
                        if names {
                            b.sname = b"srv";
                            b.file = b"boot/pxelinux.0";
                        }
                        w.bootp(&b).unwrap();
                        w.option_u8(opt::MESSAGE_TYPE, 2).unwrap();
                        // `lead` value bytes shift the block's parity and offset.
                        w.option(12, &[b'h'; 100][..lead]).unwrap();
                        if summed {
                            w.option_encoded_summed(&block, sum).unwrap();
                            // A second pre-summed block right after the first.
                            w.options_with_sum(|dst| {
                                dst[..block.len()].copy_from_slice(&block);
                                Some((block.len(), sum))
                            })
                            .unwrap();
                        } else {
                            w.option_encoded(&block).unwrap();
                            w.option_encoded(&block).unwrap();
                        }
                        if !names {
                            // With names the blocks come last: END right after them.
                            w.option(61, &[1, 2, 0xcc, 0, 0, 0, 1][..lead % 7 + 1])
                                .unwrap();
                        }
                        w.finish().unwrap()
                    };
                    let (mut a, mut b) = ([0x55u8; 1500], [0xaau8; 1500]);
                    let la = write(true, &mut a);
                    let lb = write(false, &mut b);
                    assert_eq!(&a[..la], &b[..lb], "lead {lead} names {names}");
                    let ip_off = 14 + vlans.wire_len();
                    assert!(udp_checksum_ok(&a[..la], ip_off), "lead {lead}");
                }
            }
        }
    }

    #[test]
    fn options_ending_inside_and_past_the_window_sum_right() {
        // Without a pre-summed block every option is summed in `finish`: as the window while
        // END is inside it (the zeros `new` stored after it add nothing), as a run past it.
        // Whatever the buffer held before, the frame and its checksum are the same.
        for lead in 0..=SUM_WINDOW + 4 {
            let write = |out: &mut [u8]| -> usize {
                let mut w = ReplyWriter::new(out, &headers(VlanTags::NONE)).unwrap();
                w.option_u8(opt::MESSAGE_TYPE, 6).unwrap();
                w.option(12, &[b'h'; SUM_WINDOW + 4][..lead]).unwrap();
                w.finish().unwrap()
            };
            let (mut a, mut b) = ([0x55u8; 700], [0xaau8; 700]);
            let (la, lb) = (write(&mut a), write(&mut b));
            // 240 fixed bytes, 53 (3 bytes), 12 (2 + lead) and END; at least 300.
            assert_eq!(
                la,
                42 + MIN_BOOTP_LEN.max(field::OPTIONS + 6 + lead),
                "lead {lead}"
            );
            assert_eq!(&a[..la], &b[..lb], "lead {lead}");
            assert!(udp_checksum_ok(&a[..la], 14), "lead {lead}");
        }
    }

    #[test]
    fn patched_template_equals_the_options_written_one_by_one() {
        // `options_fixed` (a constant template patched in place) must write exactly what the
        // general per-option calls write, at even and odd offsets, tagged or not, in front
        // of a pre-summed block (whose sum then covers a run that includes the template).
        const T: [u8; 27] = LEASE_OPTIONS;
        let block = [1u8, 4, 255, 255, 255, 0, 3, 4, 10, 0, 0, 1];
        let sum = ReplyWriter::block_sum(&block);
        let tagged = VlanTags::new(&[VlanTag {
            tpid: super::super::TPID_8021AD,
            tci: 7,
        }])
        .unwrap();
        let sid = Ipv4Addr::new(192, 0, 2, 254);
        let (lease, t1, t2): (u32, u32, u32) = (0xfedc_ba98, 0x7f00_0001, 0xffff_ffff);
        for vlans in [VlanTags::NONE, tagged] {
            for lead in 0..3usize {
                for timers in [false, true] {
                    let write = |template: bool, out: &mut [u8]| -> usize {
                        let mut w = ReplyWriter::new(out, &headers(vlans)).unwrap();
                        w.option(12, &[b'h'; 2][..lead]).unwrap();
                        if template && timers {
                            w.options_fixed(&T, |o| {
                                o[2] = 5;
                                o[5..9].copy_from_slice(&sid.octets());
                                o[11..15].copy_from_slice(&lease.to_be_bytes());
                                o[17..21].copy_from_slice(&t1.to_be_bytes());
                                o[23..27].copy_from_slice(&t2.to_be_bytes());
                            })
                            .unwrap();
                        } else if template {
                            let ids = &ID_OPTIONS;
                            w.options_fixed(ids, |o| {
                                o[2] = 5;
                                o[5..9].copy_from_slice(&sid.octets());
                            })
                            .unwrap();
                        } else {
                            w.option_u8(opt::MESSAGE_TYPE, 5).unwrap();
                            w.option_ipv4(opt::SERVER_ID, sid).unwrap();
                            if timers {
                                w.option_u32(opt::LEASE_TIME, lease).unwrap();
                                w.option_u32(opt::RENEWAL_TIME, t1).unwrap();
                                w.option_u32(opt::REBINDING_TIME, t2).unwrap();
                            }
                        }
                        w.option_encoded_summed(&block, sum).unwrap();
                        w.finish().unwrap()
                    };
                    let (mut a, mut b) = ([0x55u8; 700], [0xaau8; 700]);
                    let la = write(true, &mut a);
                    let lb = write(false, &mut b);
                    assert_eq!(&a[..la], &b[..lb], "lead {lead} timers {timers}");
                    assert!(udp_checksum_ok(&a[..la], 14 + vlans.wire_len()));
                }
            }
        }
    }

    #[test]
    fn run_sums_match_rfc1071_for_every_length_and_parity() {
        let data: Vec<u8> = (0..70u32).map(|i| (i * 37 + 11) as u8).collect();
        for start in 0..2 {
            for len in 0..data.len() - start {
                let run = &data[start..start + len];
                let want = !inet_checksum(&[run]);
                assert_eq!(run_sum(false, run) as u16, want, "len {len}");
                // At an odd offset the same bytes are shifted by one: their sum is swapped.
                let mut shifted = vec![0u8];
                shifted.extend_from_slice(run);
                let want_odd = !inet_checksum(&[&shifted]);
                assert_eq!(run_sum(true, run) as u16, want_odd, "odd len {len}");
            }
        }
    }
}
