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
//! Cost matters here: every OFFER and ACK goes through this. So the decision's writer
//! (`ReplyWriter::with_bootp`) stores each header byte once: the headers, the BOOTP fields and
//! the zeros of `sname`/`file` and of the first option bytes as constant-size stores, with the
//! client's size limit known from the start; fixed-size options are constant-size stores, and
//! the decision writes its leading options (53, 54, 51, 58, 59) as one template
//! (`options_fixed`). The writer's offsets count from the IPv4 header, so everything after it
//! sits at a constant offset. Its state is a few words, and the rare paths work on a copy
//! (`detached`), so that on the usual path it stays in registers.
//!
//! The UDP checksum is not one pass over the ~300-byte datagram: `finish` reads back only the
//! IPv4 header from its TTL on, the UDP header and the 44 bytes of BOOTP fields (one run of
//! whole words that holds the pseudo header's addresses and protocol, see `HEAD_RUN`), skips
//! `sname`/`file` (zero, or summed once when written) and the PAD after END (zeros add
//! nothing), and takes blocks of options whose sum was computed once in advance (a subnet's
//! configured options, see `dhcp/optcache.rs`) as one number, placed by RFC 1071 §2(B) at an
//! even or odd offset (see `run_sum`). The options before such a block (or before END) are
//! summed as one constant-size window when they fit in the 60 option bytes of a minimal
//! message, which the constructor zeroes in advance (see `SUM_WINDOW`); that zeroing is also a
//! short reply's PAD. So nothing may be written past the options but zeros. The IPv4 header
//! checksum is summed from the 20 bytes written, plus the total length (`ipv4::finish`). In
//! debug builds `finish` checks its result against the whole-datagram computation of
//! `udp::finish`, and `ipv4::finish` its header checksum against the whole header's.

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
    /// Every field zero (and op BOOTREPLY once written): what [`ReplyWriter::new`] writes.
    pub const BLANK: BootpReply<'static> = BootpReply {
        htype: 0,
        hlen: 0,
        hops: 0,
        xid: 0,
        secs: 0,
        flags: 0,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        chaddr: [0; 16],
        sname: &[],
        file: &[],
    };

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

impl BootpReply<'_> {
    /// Both names must keep their terminating NUL (RFC 2131 §2).
    #[inline]
    fn check_names(&self) -> Result<(), EmitError> {
        if self.sname.len() >= field::SNAME.len() || self.file.len() >= field::FILE.len() {
            return Err(EmitError::NoRoom);
        }
        Ok(())
    }

    /// The 44 bytes before `sname`, as one constant-size array (stored with a few wide
    /// stores).
    #[inline(always)]
    fn head(&self) -> [u8; field::SNAME.start] {
        let mut head = [0u8; field::SNAME.start];
        head[field::OP] = BOOTREPLY;
        head[field::HTYPE] = self.htype;
        head[field::HLEN] = self.hlen;
        head[field::HOPS] = self.hops;
        head[field::XID].copy_from_slice(&self.xid.to_be_bytes());
        head[field::SECS].copy_from_slice(&self.secs.to_be_bytes());
        head[field::FLAGS].copy_from_slice(&self.flags.to_be_bytes());
        head[field::CIADDR].copy_from_slice(&self.ciaddr.octets());
        head[field::YIADDR].copy_from_slice(&self.yiaddr.octets());
        head[field::SIADDR].copy_from_slice(&self.siaddr.octets());
        head[field::GIADDR].copy_from_slice(&self.giaddr.octets());
        head[field::CHADDR].copy_from_slice(&self.chaddr);
        head
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

/// Copy `sname` and `file` (checked by `BootpReply::check_names`) into the zeroed `sname` and
/// `file` fields, `names`, and return the fields' checksum contribution. Rare (a boot server
/// is configured), so out of line, and given the two names only: a call taking the whole
/// `BootpReply` would make the caller store it in memory.
#[cold]
#[inline(never)]
fn put_names(names: &mut [u8; NAMES.end - NAMES.start], sname: &[u8], file: &[u8]) -> u32 {
    let (s, f) = names.split_at_mut(field::SNAME.len());
    if let (Some(s), Some(f)) = (s.get_mut(..sname.len()), f.get_mut(..file.len())) {
        s.copy_from_slice(sname);
        f.copy_from_slice(file);
    }
    // The fields start at an even offset of the UDP datagram (8 + 44): no swap.
    checksum::sum(0, names)
}

/// The writer's offsets count from the start of the IPv4 header (after the Ethernet header and
/// its VLAN tags), so that everything after it sits at a constant offset: the UDP header, the
/// BOOTP message, its cookie and its first option. WHY: one base for every address (no
/// per-access `ip_off +`), and constant offsets the compiler folds into the stores.
const UDP_AT: usize = ipv4::HEADER_LEN;
const BOOTP_AT: usize = IP_UDP_LEN;
const COOKIE_AT: usize = BOOTP_AT + field::COOKIE.start;
const OPTIONS_AT: usize = BOOTP_AT + field::OPTIONS;
/// The end of a minimal (300-byte) BOOTP message.
const MIN_END: usize = BOOTP_AT + MIN_BOOTP_LEN;

/// The largest IPv4 datagram a client accepts, which (offsets counting from the IPv4 header)
/// is the end of its reply: its maximum message size (option 57) when it gave one, never
/// below the 576 octets every client accepts (RFC 2131 §2). As a `u16`, never past the
/// largest IPv4 datagram either.
///
/// RFC 2132 §9.10 does not say whether the value counts the IP and UDP headers; ISC dhcpd and
/// dnsmasq take it as the whole IP datagram, and so does this (it is the reading under which
/// a reply is never too long for the client).
#[inline]
fn datagram_limit(max_message_size: Option<u16>) -> usize {
    usize::from(
        max_message_size
            .unwrap_or(MIN_MAX_MESSAGE_SIZE)
            .max(MIN_MAX_MESSAGE_SIZE),
    )
}

/// RFC 768 UDP header fields that `finish` sets (the rest is written by `udp::emit`).
const UDP_LENGTH: core::ops::Range<usize> = UDP_AT + 4..UDP_AT + 6;
const UDP_CHECKSUM: core::ops::Range<usize> = UDP_AT + 6..UDP_AT + 8;

/// The bytes `finish` reads back for the UDP checksum, one run of whole words: the IPv4 header
/// from its TTL on, the UDP header and the BOOTP fields before `sname`. Of the IPv4 fields,
/// the RFC 768 pseudo header holds the protocol (the low byte of the TTL's word) and both
/// addresses; the header checksum is still zero then, and the TTL is taken out again
/// ([`ttl_out`]).
///
/// WHY from the TTL rather than the addresses: 64 bytes are eight words added in one chain;
/// the 60 from the addresses on are a chain of 56 and a separate 4-byte tail.
const HEAD_RUN: core::ops::Range<usize> = ipv4::TTL..BOOTP_AT + field::SNAME.start;

/// What [`HEAD_RUN`] counts that the UDP checksum must not: the TTL, the high byte of its
/// word. As a starting sum: RFC 1624 §3, in one's complement arithmetic, adding the complement
/// of a value subtracts it.
const fn ttl_out(ttl: u8) -> u32 {
    0xffff - ((ttl as u32) << 8)
}

/// The BOOTP `sname` and `file` fields, as one run.
const NAMES: core::ops::Range<usize> = BOOTP_AT + field::SNAME.start..BOOTP_AT + field::FILE.end;

/// RFC 1071 partial sums for [`ReplyWriter::finish`].
///
/// WHY partial sums instead of one [`checksum::sum`] over the datagram: most of a reply's
/// ~300 bytes need no summing at all. `sname` and `file` (192 bytes) are zero unless
/// configured (and then summed once, when written), PAD is zero, and the configured-option
/// block is the same for every client of a (subnet, parameter request list) pair, so its sum
/// is computed once beside the block (see `dhcp/optcache.rs`) and added as one number.
/// `finish` sums only the pseudo header's addresses, the UDP header and the 44 bytes of BOOTP
/// fields before `sname` ([`HEAD_RUN`]), and the option bytes that were not pre-summed.
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
/// cached block); a constant-size array is a fixed chain of additions. The constructor zeroes
/// these bytes (a short reply's PAD) and every write stores exactly its own bytes (a fill of
/// `options_with_sum` only zeros past them), so past the last option written the window holds
/// zeros, which add nothing. The window stays inside the frame: a frame is never shorter
/// than the minimum message, and nothing is written past a frame.
const SUM_WINDOW: usize = MIN_BOOTP_LEN - field::COOKIE.start;

/// Writes one reply frame into a TX buffer. See the module docs.
///
/// WHY so few fields: the writer lives across the whole reply, and each field is a value the
/// compiler keeps in a register or stores and reloads around every call.
#[derive(Debug)]
pub struct ReplyWriter<'b> {
    /// The frame from the IPv4 header on; every offset below counts from its start.
    buf: &'b mut [u8],
    /// Bytes before the IPv4 header: Ethernet and VLAN tags.
    l2_len: usize,
    /// Next option byte.
    pos: usize,
    /// End allowed now (exclusive): the buffer's end, lowered by the client's maximum message
    /// size. The IPv4 datagram is what option 57 counts, so this is also that size.
    end: usize,
    /// Option bytes before this offset are already added into `acc`.
    summed_to: usize,
    /// Partial sum ([`run_sum`]) of the UDP datagram's bytes that `finish` does not read
    /// back: the option bytes before `summed_to` and the names (`sname`, `file`) when set;
    /// started with [`ttl_out`].
    acc: u32,
}

impl<'b> ReplyWriter<'b> {
    /// Start a reply in `buf`: L2 (with `h.vlans`), IPv4, UDP and an empty BOOTREPLY header with
    /// the magic cookie, for [`bootp`](Self::bootp) to fill. The DHCP message is limited to a
    /// 576-octet IP datagram (RFC 2131 §2) until [`limit`](Self::limit) raises it.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if `buf` cannot hold the headers plus a minimal 300-byte BOOTP
    /// message.
    #[inline]
    pub fn new(buf: &'b mut [u8], h: &ReplyHeaders) -> Result<Self, EmitError> {
        Self::with_bootp(buf, h, None, || BootpReply::BLANK)
    }

    /// [`new`](Self::new) with the BOOTP fixed fields written at once (op is BOOTREPLY): each
    /// header byte is stored once, where `new` and [`bootp`](Self::bootp) zero the fields and
    /// then write them. `bootp` gives the fields; it is called once the Ethernet, IPv4 and UDP
    /// headers are written, so that the values of both are not all held at once (the ones
    /// that do not fit in registers are stored on the stack and read back). The reply is
    /// bounded by the client's maximum message size `max_message_size` (option 57, see
    /// `datagram_limit`), as [`limit`](Self::limit) would.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if `buf` cannot hold the headers plus a minimal 300-byte BOOTP
    /// message, or if `sname` is longer than 63 bytes or `file` longer than 127: both fields
    /// must keep a terminating NUL (RFC 2131 §2).
    #[inline(always)]
    pub fn with_bootp<'r>(
        buf: &'b mut [u8],
        h: &ReplyHeaders,
        max_message_size: Option<u16>,
        bootp: impl FnOnce() -> BootpReply<'r>,
    ) -> Result<Self, EmitError> {
        let l2_len = ether::emit(buf, &h.eth_dst, &h.eth_src, h.vlans).ok_or(EmitError::NoRoom)?;
        let buf = buf.get_mut(l2_len..).ok_or(EmitError::NoRoom)?;
        // IPv4, UDP and the minimal BOOTP message as one constant-size borrow, split at
        // constant offsets: one bounds check for all of them.
        let frame: &mut [u8; MIN_END] = buf.first_chunk_mut().ok_or(EmitError::NoRoom)?;
        // (The splits cannot fail: their sizes are constants.)
        let (ip, rest) = frame
            .split_first_chunk_mut::<{ ipv4::HEADER_LEN }>()
            .ok_or(EmitError::NoRoom)?;
        ipv4::emit(ip, h.ip_src, h.ip_dst, h.ttl);
        let (u, msg) = rest
            .split_first_chunk_mut::<{ udp::HEADER_LEN }>()
            .ok_or(EmitError::NoRoom)?;
        udp::emit(u, h.udp_src, h.udp_dst);
        let (fixed, options) = msg
            .split_first_chunk_mut::<{ field::OPTIONS }>()
            .ok_or(EmitError::NoRoom)?;
        let (head, rest) = fixed
            .split_first_chunk_mut::<{ field::SNAME.start }>()
            .ok_or(EmitError::NoRoom)?;
        let (names, cookie) = rest
            .split_first_chunk_mut::<{ NAMES.end - NAMES.start }>()
            .ok_or(EmitError::NoRoom)?;
        let cookie: &mut [u8; 4] = cookie.try_into().map_err(|_| EmitError::NoRoom)?;
        let options: &mut [u8; MIN_BOOTP_LEN - field::OPTIONS] =
            options.try_into().map_err(|_| EmitError::NoRoom)?;
        let r = bootp();
        *head = r.head();
        // Usually both names are empty: then they are zeros, which the checksum skips.
        *names = [0; NAMES.end - NAMES.start];
        let names_sum = if r.sname.is_empty() && r.file.is_empty() {
            0
        } else {
            r.check_names()?;
            put_names(names, r.sname, r.file)
        };
        *cookie = MAGIC_COOKIE;
        // The first 60 option bytes are zeroed in advance: the PAD of a short reply, and the
        // zeros past END of the checksum window (see `SUM_WINDOW`).
        *options = [0; MIN_BOOTP_LEN - field::OPTIONS];
        let end = buf.len().min(datagram_limit(max_message_size));
        Ok(ReplyWriter {
            buf,
            l2_len,
            pos: OPTIONS_AT,
            end,
            summed_to: COOKIE_AT,
            acc: ttl_out(h.ttl) + names_sum,
        })
    }

    /// Write the BOOTP fixed fields (op is BOOTREPLY) over the ones written so far.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if `sname` is longer than 63 bytes or `file` longer than 127:
    /// both fields must keep a terminating NUL (RFC 2131 §2).
    pub fn bootp(&mut self, r: &BootpReply<'_>) -> Result<(), EmitError> {
        r.check_names()?;
        let f: &mut [u8; NAMES.end - BOOTP_AT] = self
            .buf
            .get_mut(BOOTP_AT..)
            .and_then(|f| f.first_chunk_mut())
            .ok_or(EmitError::NoRoom)?;
        let (head, names) = f
            .split_first_chunk_mut::<{ field::SNAME.start }>()
            .ok_or(EmitError::NoRoom)?;
        let names: &mut [u8; NAMES.end - NAMES.start] =
            names.try_into().map_err(|_| EmitError::NoRoom)?;
        *head = r.head();
        // The names' sum is in `acc` (see there): the old names' is taken out. RFC 1624 §3: in
        // one's complement arithmetic, adding the complement of a value subtracts it.
        let old = checksum::sum(0, names);
        *names = [0; NAMES.end - NAMES.start];
        self.acc += (0xffff - old) + put_names(names, r.sname, r.file);
        Ok(())
    }

    /// Bound the DHCP message by the client's maximum message size (option 57), as the IP
    /// datagram's size (see `datagram_limit`). Values below the legal minimum of 576 are
    /// raised to 576. The limit only ever applies together with the buffer's own size.
    #[inline]
    pub fn limit(&mut self, max_message_size: u16) {
        self.end = self.buf.len().min(datagram_limit(Some(max_message_size)));
    }

    /// Bytes still available for options (END is already accounted for).
    #[inline]
    pub fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos + 1)
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
        if self.pos + need + 1 > self.end {
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
            if at + len + 1 > self.end {
                return Err(EmitError::NoRoom);
            }
            let out = self.buf.get_mut(at..at + len).ok_or(EmitError::NoRoom)?;
            out[0] = code;
            out[1] = n;
            crate::cpu::copy_short(&mut out[2..], value);
            self.pos = at + len;
            return Ok(());
        }
        // Rare (a split value, or PAD / END): out of line, on a copy (see `detached`).
        self.detached(|w| {
            w.put_split(code, value.len(), |out, off| {
                out.copy_from_slice(&value[off..off + out.len()]);
            })
        })
    }

    /// Run `f`, an out-of-line (rare) path that appends plain options, on a copy of this
    /// writer, and take the copy's position back (`f` must neither append pre-summed blocks
    /// nor call [`Self::limit`]: see [`Self::detached_summed`]).
    ///
    /// WHY: a writer whose address is passed to a call that is not inlined must live in
    /// memory for the whole reply, so that every field read or update on the usual path is a
    /// load or store. Given a copy instead, the usual path's writer stays in registers, and
    /// only the rare path pays for the copy. Only what the path can change is taken back: a
    /// field the compiler sees unchanged keeps what it knew about it (on the usual path, where
    /// the pre-summed bytes end is a constant, and the end still bounds what it bounded).
    #[inline(always)]
    pub(crate) fn detached<R>(&mut self, f: impl FnOnce(&mut ReplyWriter<'_>) -> R) -> R {
        let mut w = self.copy();
        let r = f(&mut w);
        let (pos, rest) = (w.pos, (w.end, w.summed_to, w.acc));
        debug_assert_eq!(
            rest,
            (self.end, self.summed_to, self.acc),
            "a detached path appends plain options only"
        );
        self.pos = pos;
        r
    }

    /// [`Self::detached`] for a path that may also append pre-summed blocks: their sums are
    /// taken back too.
    #[inline(always)]
    pub(crate) fn detached_summed<R>(&mut self, f: impl FnOnce(&mut ReplyWriter<'_>) -> R) -> R {
        let mut w = self.copy();
        let r = f(&mut w);
        let (end, taken) = (w.end, (w.pos, w.summed_to, w.acc));
        debug_assert_eq!(end, self.end, "no limit in a detached path");
        (self.pos, self.summed_to, self.acc) = taken;
        r
    }

    /// A copy of this writer over the same buffer, for [`Self::detached`].
    #[inline(always)]
    fn copy(&mut self) -> ReplyWriter<'_> {
        ReplyWriter {
            buf: &mut *self.buf,
            l2_len: self.l2_len,
            pos: self.pos,
            end: self.end,
            summed_to: self.summed_to,
            acc: self.acc,
        }
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
        if at + encoded.len() + 1 > self.end {
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
        if at + N + 1 > self.end {
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
        if at + 2 + N + 1 > self.end {
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
        if from == COOKIE_AT
            && to <= COOKIE_AT + SUM_WINDOW
            && let Some(window) = self
                .buf
                .get(COOKIE_AT..)
                .and_then(|w| w.first_chunk::<SUM_WINDOW>())
        {
            // The cookie is at an even offset of the datagram: no swap.
            return checksum::sum_array(0, window);
        }
        run_sum(Self::odd(from), self.buf.get(from..to).unwrap_or(&[]))
    }

    /// The bytes from `at` to `pos` have the block sum `sum`, and `before` is the
    /// [`Self::pending_sum`] of the bytes written before them: add both, `sum` swapped when the
    /// block starts at an odd offset of the UDP datagram (RFC 1071 §2(B), see [`run_sum`]).
    #[inline]
    fn presummed(&mut self, before: u32, at: usize, sum: u16) {
        self.acc += before + Self::placed(Self::odd(at), sum);
        self.summed_to = self.pos;
    }

    /// A block sum computed as if at an even offset, as it counts at an `odd` or even one.
    #[inline]
    fn placed(odd: bool, sum: u16) -> u32 {
        u32::from(if odd { sum.swap_bytes() } else { sum })
    }

    /// Whether offset `at` is at an odd offset of the UDP datagram.
    #[inline]
    fn odd(at: usize) -> bool {
        (at - UDP_AT) & 1 == 1
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
        let pos = self.pos;
        if pos + 1 > self.end {
            return Err(EmitError::NoRoom);
        }
        *self.buf.get_mut(pos).ok_or(EmitError::NoRoom)? = opt::END;
        // The option bytes not summed yet, through END (the PAD after it adds nothing).
        let pending = if self.summed_to == pos {
            // Only END is left (the usual case after a pre-summed block): a byte at an even
            // offset is the high byte of its network-order word.
            Self::placed(Self::odd(pos), u16::from(opt::END) << 8)
        } else {
            self.pending_sum(pos + 1)
        };
        // RFC 2131 §4.1: the rest of a short message is PAD (0), which the constructor
        // stored and no write went past (see `SUM_WINDOW`).
        let end = (pos + 1).max(MIN_END);
        debug_assert!(
            self.buf
                .get(pos + 1..end)
                .is_some_and(|pad| pad.iter().all(|&b| b == opt::PAD)),
            "PAD after END"
        );
        // Offsets count from the IPv4 header: `end` is the datagram's length (at most
        // 65535, as `end` never passes `self.end`).
        let ip_total = u16::try_from(end).map_err(|_| EmitError::NoRoom)?;
        let udp_len = ip_total - UDP_AT as u16;
        // The IPv4 header, the UDP header and the BOOTP fields before `sname` as one
        // constant-size borrow: one bounds check for every length and checksum written below.
        let l3: &mut [u8; HEAD_RUN.end] = self.buf.first_chunk_mut().ok_or(EmitError::NoRoom)?;
        // UDP checksum (RFC 768) over the pseudo header, the UDP header and the BOOTP message
        // (partial sums, see `run_sum`), summed before the lengths are stored: the UDP length
        // counts twice (pseudo header and UDP header), and the stored zeros add nothing. The
        // partial sums stay unfolded (a handful of 16-bit numbers) and become the starting
        // value of the head run's sum: one fold for all.
        let acc = self.acc + pending + 2 * u32::from(udp_len);
        let head = l3
            .last_chunk::<{ HEAD_RUN.end - HEAD_RUN.start }>()
            .ok_or(EmitError::NoRoom)?;
        let mut c = checksum::finish(checksum::sum_array(acc, head));
        // RFC 768: a computed checksum of zero is transmitted as all ones.
        if c == 0 {
            c = 0xffff;
        }
        let (ip, _) = l3
            .split_first_chunk_mut::<{ ipv4::HEADER_LEN }>()
            .ok_or(EmitError::NoRoom)?;
        // IPv4 total length and header checksum (RFC 791).
        ipv4::finish(ip, ip_total);
        l3[UDP_LENGTH].copy_from_slice(&udp_len.to_be_bytes());
        l3[UDP_CHECKSUM].copy_from_slice(&c.to_be_bytes());
        if cfg!(debug_assertions) {
            // The whole-datagram computation this one stands for must agree (the pseudo
            // header's addresses read back from the IPv4 header).
            let addr = |at: usize| -> [u8; 4] {
                self.buf
                    .get(at..at + 4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or_default()
            };
            let (src, dst) = (addr(ipv4::ADDRS.start), addr(ipv4::ADDRS.start + 4));
            let datagram = self.buf.get_mut(UDP_AT..end).ok_or(EmitError::NoRoom)?;
            udp::finish(datagram, src, dst).ok_or(EmitError::NoRoom)?;
            debug_assert_eq!(datagram[6..8], c.to_be_bytes(), "UDP checksum");
        }
        Ok(self.l2_len + end)
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
                            htype: 1,
                            hlen: 6,
                            xid: 0x1234_5678,
                            yiaddr: Ipv4Addr::new(10, 0, 0, 77),
                            chaddr: [2, 0xcc, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                            ..BootpReply::BLANK
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

    fn fields<'s>(sname: &'s [u8], file: &'s [u8]) -> BootpReply<'s> {
        BootpReply {
            htype: 1,
            hlen: 6,
            hops: 0,
            xid: 0xdead_beef,
            secs: 0,
            flags: 0x8000,
            ciaddr: Ipv4Addr::new(10, 0, 0, 9),
            yiaddr: Ipv4Addr::new(10, 0, 0, 77),
            siaddr: Ipv4Addr::new(10, 0, 0, 5),
            giaddr: Ipv4Addr::new(10, 0, 0, 2),
            chaddr: [2, 0xcc, 0, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9],
            sname,
            file,
        }
    }

    #[test]
    fn fields_written_at_once_or_rewritten_give_the_same_frame() {
        // `with_bootp` (fields and limit given up front) must write what `new`, `limit` and
        // `bootp` write; `bootp` may be called again with other names, whose sum it replaces
        // (RFC 1624 §3 subtraction); whatever the buffer held before.
        let names: [(&[u8], &[u8]); 4] = [
            (b"", b""),
            (b"srv", b""),
            (b"", b"boot/pxelinux.0"),
            (&[0xff; 63], &[0xfe; 127]),
        ];
        for (sname, file) in names {
            for max in [None, Some(400), Some(1500)] {
                let write = |how: u8, out: &mut [u8]| -> usize {
                    let h = headers(VlanTags::NONE);
                    let mut w = if how == 0 {
                        ReplyWriter::with_bootp(out, &h, max, || fields(sname, file)).unwrap()
                    } else {
                        let mut w = ReplyWriter::new(out, &h).unwrap();
                        if let Some(m) = max {
                            w.limit(m);
                        }
                        if how == 2 {
                            // Other names first, replaced below.
                            w.bootp(&fields(b"other", &[0x11; 100])).unwrap();
                        }
                        w.bootp(&fields(sname, file)).unwrap();
                        w
                    };
                    w.option_u8(opt::MESSAGE_TYPE, 2).unwrap();
                    // Fills up to the limit: the same limit in every writer.
                    while w.option(200, &[0xab; 40]).is_ok() {}
                    w.finish().unwrap()
                };
                let mut frames = [[0x55u8; 1600], [0xaau8; 1600], [0x33u8; 1600]];
                let lens: Vec<usize> = frames
                    .iter_mut()
                    .zip(0..)
                    .map(|(f, how)| write(how, f))
                    .collect();
                for (f, &n) in frames.iter().zip(&lens) {
                    assert_eq!(&f[..n], &frames[0][..lens[0]], "{max:?}");
                    assert!(udp_checksum_ok(&f[..n], 14), "{max:?}");
                }
                let k = sname.len().min(3);
                assert_eq!(
                    &frames[0][14 + BOOTP_AT + field::SNAME.start..][..k],
                    &sname[..k]
                );
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
