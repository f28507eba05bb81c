//! Zero-copy views over the frames xdhcp receives and the replies it writes.
//!
//! CONTRACT (the decision in `dhcp/` is written against exactly this surface):
//!
//! * [`parse`] validates a whole received Ethernet frame — untagged, 802.1Q or 802.1ad/QinQ,
//!   IPv4 (IHL with options, no fragments, header checksum), UDP (length vs frame, checksum if
//!   non-zero), BOOTP fixed header (hlen <= 16, magic cookie) and the options (every length,
//!   RFC 3396 concatenation, option overload 52 into `file`/`sname`, no loops) — and returns a
//!   [`Request`] that borrows the frame. After `parse` succeeds no accessor can panic.
//!   [`parse_into`] does the same into the caller's record, which saves copying the request
//!   (the per-packet path uses it).
//! * Errors are a [`DropReason`]: a `Copy` enum the caller counts, never formats per packet.
//! * [`ReplyWriter`] writes a reply frame straight into a caller-supplied TX buffer: L2 (with
//!   the same VLAN tags), IPv4, UDP, BOOTP header, options; `finish` fills lengths and checksums
//!   in one place and returns the frame length. It never panics on a short buffer: it reports
//!   [`EmitError::NoRoom`].

//!
//! # Why it is built this way
//!
//! * **Borrowed views, one pass, no heap.** A worker parses millions of frames per second out of
//!   an AF_XDP UMEM; copying a message into an owned structure (dhcproto's `Message` is a
//!   `BTreeMap` of `Vec`s) would cost more than the whole decision. [`parse`] walks every byte
//!   once and returns a `Copy` [`Request`] that points into the frame; [`parse_into`] writes it
//!   in place, each field stored once. Option values are
//!   [`OptRef`]s: a slice in the usual single-instance case, a walk over the instances when a
//!   sender split a long option (RFC 3396). See `dhcp.rs` for the option table design.
//! * **Checked before used.** Every length a sender controls (Ethernet tags, IHL, IPv4 total
//!   length, UDP length, hlen, each option length, the overload areas) is compared with the bytes
//!   actually present before anything is read through it, and all reads go through `get`, so no
//!   input can make the parser index out of bounds. The first failing check names the
//!   [`DropReason`]; a hostile frame costs one counter increment.
//! * **Layered like the wire.** `ether` → `ipv4` → `udp` → `dhcp`, each returning its header and
//!   the payload for the next; each layer's tests run without the others. Field offsets live in
//!   one private `field` module per layer.
//! * **Replies written in place.** [`ReplyWriter`] writes into the TX frame directly and finishes
//!   lengths and checksums in one place (`finish`), so a reply can never leave with a stale
//!   length; it reports [`EmitError::NoRoom`] instead of panicking on a short buffer.
//! * **dhcproto only in tests.** Its borrowed decoder trusts `hlen` and only checks for 240
//!   bytes, so it never sees untrusted input here; the tests use its owned `Message` as an
//!   independent encoder/decoder to cross-check ours.

mod dhcp;
mod emit;
mod ether;
mod ipv4;
mod udp;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

pub use dhcp::{
    BOOTREPLY, BOOTREQUEST, DhcpOptions, Fragments, HTYPE_ETHERNET, MAGIC_COOKIE,
    MIN_MAX_MESSAGE_SIZE, MessageType, OptRef, RelayAgentInfo, SubOptions, opt,
};
pub use emit::{BootpReply, DEFAULT_TTL, EmitError, MIN_BOOTP_LEN, ReplyHeaders, ReplyWriter};
pub(crate) use emit::{ID_OPTIONS, LEASE_OPTIONS, encode_option};
pub use ether::{L2Header, TPID_8021AD, TPID_8021Q, VlanTag, VlanTags};
pub use udp::{CLIENT_PORT, SERVER_PORT};

use std::net::Ipv4Addr;

/// Why a received frame was not answered. Every malformed-input class has its own reason.
/// Stable indices (`as usize`) so counters can be arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Frame shorter than the Ethernet header.
    EthTruncated,
    /// Not IPv4 (after up to two VLAN tags).
    NotIpv4,
    /// More than two VLAN tags.
    TooManyVlans,
    /// IPv4 header truncated, bad version, IHL < 5 or IHL beyond the frame.
    Ipv4Malformed,
    /// IPv4 total length larger than the frame or smaller than the header.
    Ipv4BadLength,
    /// IPv4 header checksum wrong.
    Ipv4BadChecksum,
    /// IPv4 fragment (MF set or offset != 0).
    Ipv4Fragment,
    /// Not UDP.
    NotUdp,
    /// UDP header truncated or UDP length inconsistent with the IPv4 payload.
    UdpBadLength,
    /// UDP checksum present and wrong.
    UdpBadChecksum,
    /// UDP destination port is not 67.
    NotDhcpPort,
    /// BOOTP message shorter than 240 bytes (fixed header + cookie).
    BootpTruncated,
    /// op != BOOTREQUEST.
    NotBootRequest,
    /// hlen > 16, or hlen != 6 for Ethernet (htype 1).
    BadHlen,
    /// Magic cookie missing or wrong.
    BadCookie,
    /// An option's length runs past the end of its area.
    OptionTruncated,
    /// Option overload (52) malformed (length != 1, value not 1..=3), or present inside an
    /// overloaded field (which would loop).
    BadOverload,
    /// No END option where RFC 2131 §4.1 requires one (every area, when option overload is used).
    OptionsUnterminated,
    /// No DHCP message type (53): plain BOOTP is not served.
    NoMessageType,
    /// A fixed-size option (50, 51, 53, 54, 57, 118, ...) has the wrong length, a client
    /// identifier is shorter than 2 bytes, or option 82 is split or its sub-options malformed.
    BadOptionLength,
    // ---- reasons used by the decision layer (dhcp/) ----
    /// Message type not handled by a server (OFFER, ACK, NAK, ... sent to us).
    UnexpectedMessageType,
    /// No subnet serves this request (unknown giaddr / link / selection).
    NoSubnet,
    /// Pool exhausted for this client.
    PoolExhausted,
    /// REQUEST selecting another server: our offer was withdrawn.
    OtherServerSelected,
    /// Request that RFC 2131 says to ignore (e.g. INIT-REBOOT for an unknown client, non-authoritative).
    Ignored,
    /// RELEASE / DECLINE processed; no reply is ever sent for them.
    NoReplyNeeded,
    /// TX buffer too small for the reply.
    ReplyTooLarge,
}

impl DropReason {
    /// Number of variants (size of a counter array).
    pub const COUNT: usize = DropReason::ReplyTooLarge as usize + 1;

    /// Every reason, in index order. The array type pins its length to [`Self::COUNT`], so a new
    /// reason cannot be left out of counter reports.
    pub const ALL: [DropReason; DropReason::COUNT] = {
        use DropReason::*;
        [
            EthTruncated,
            NotIpv4,
            TooManyVlans,
            Ipv4Malformed,
            Ipv4BadLength,
            Ipv4BadChecksum,
            Ipv4Fragment,
            NotUdp,
            UdpBadLength,
            UdpBadChecksum,
            NotDhcpPort,
            BootpTruncated,
            NotBootRequest,
            BadHlen,
            BadCookie,
            OptionTruncated,
            BadOverload,
            OptionsUnterminated,
            NoMessageType,
            BadOptionLength,
            UnexpectedMessageType,
            NoSubnet,
            PoolExhausted,
            OtherServerSelected,
            Ignored,
            NoReplyNeeded,
            ReplyTooLarge,
        ]
    };
}

/// A validated DHCP request frame, borrowing the receive buffer.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Ethernet addresses and the VLAN tags (kept for the reply).
    pub l2: L2Header,
    pub ip_src: Ipv4Addr,
    pub ip_dst: Ipv4Addr,
    pub udp_src: u16,
    pub udp_dst: u16,
    /// BOOTP fixed header fields.
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
    /// chaddr, all 16 bytes as received; only the first `hlen` are meaningful.
    pub chaddr: [u8; 16],
    /// The parsed options (message type is guaranteed present).
    pub options: DhcpOptions<'a>,
}

impl Request<'_> {
    /// The BOOTP broadcast flag (RFC 2131 §2, figure 2).
    pub fn broadcast_flag(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    /// chaddr truncated to hlen.
    pub fn hwaddr(&self) -> &[u8] {
        &self.chaddr[..usize::from(self.hlen.min(16))]
    }
}

/// Parse and validate one received frame. See the module docs for what is checked.
///
/// # Errors
/// The first [`DropReason`] that applies.
///
/// The request is built in a local and copied out (184 bytes, two `memcpy` calls on the
/// per-packet path, ~57 instructions): a caller with a place for it should use
/// [`parse_into`]. Always inlined: ~10 instructions a packet fewer than a call.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Result<Request<'_>, DropReason> {
    let mut out = Err(DropReason::EthTruncated);
    parse_into(frame, &mut out);
    out
}

/// [`parse`] into `out`: the request, or the first [`DropReason`] that applies.
///
/// WHY: a [`Request`] is 184 bytes; returned by value it is copied into the result and
/// again into the caller's record (a `memcpy` call each). Written in place, each field is
/// stored once and the options are walked straight into the request's table.
#[inline]
pub fn parse_into<'a>(frame: &'a [u8], out: &mut Result<Request<'a>, DropReason>) {
    if let Err(reason) = parse_layers(frame, out) {
        *out = Err(reason);
    }
}

/// The layers in wire order; `out` holds the request once the BOOTP header passed.
#[inline(always)]
fn parse_layers<'a>(
    frame: &'a [u8],
    out: &mut Result<Request<'a>, DropReason>,
) -> Result<(), DropReason> {
    let (l2, l3) = ether::parse(frame)?;
    let (ip, l4) = ipv4::parse(l3)?;
    let (udp, payload) = udp::parse(&ip, l4)?;
    dhcp::parse_into(l2, &ip, &udp, payload, out)
}

/// Internet checksum (RFC 1071) helpers shared by parse and emit.
pub(crate) mod checksum {
    /// `a + b + carry` with the carry out: the two-step form LLVM turns into one `adc`.
    #[inline(always)]
    fn adc(a: u64, b: u64, carry: bool) -> (u64, bool) {
        let (s, c1) = a.overflowing_add(b);
        let (s, c2) = s.overflowing_add(u64::from(carry));
        (s, c1 | c2)
    }

    /// Add the `N / 8` little-endian 64-bit words of `block` to `acc` in one carry chain;
    /// returns the sum and the carry out of the last word.
    #[inline(always)]
    fn add_words<const N: usize>(acc: u64, block: &[u8; N]) -> (u64, bool) {
        let (mut s, mut c) = (acc, false);
        let mut i = 0;
        while i + 8 <= N {
            let w = [
                block[i],
                block[i + 1],
                block[i + 2],
                block[i + 3],
                block[i + 4],
                block[i + 5],
                block[i + 6],
                block[i + 7],
            ];
            (s, c) = adc(s, u64::from_le_bytes(w), c);
            i += 8;
        }
        (s, c)
    }

    /// Fold a 64-bit one's-complement sum into 16 bits with end-around carries. The result is
    /// 0 only for 0: a carry folded back in never leaves zero behind.
    #[inline(always)]
    fn fold(x: u64) -> u16 {
        let (s, c) = (x as u32).overflowing_add((x >> 32) as u32);
        // Cannot overflow: after a carry out, `s` is at most 2^32 - 2.
        let y = s + u32::from(c);
        let (s, c) = (y as u16).overflowing_add((y >> 16) as u16);
        s + u16::from(c)
    }

    /// One's-complement sum of `data` folded into 16 bits, starting from `initial`.
    ///
    /// RFC 1071 §2(B): the one's-complement sum is independent of byte order and of the word
    /// size ("the sum of 16-bit integers can be computed in either byte order", and 64-bit
    /// words can be added with end-around carry and folded afterwards). So `data` is read as
    /// little-endian 64-bit words (the host order on the targets xdhcp runs on, no byte
    /// swaps) and added with carry, 128 bytes per step in one `adc` chain whose last carry
    /// is counted, then 64, 32, 16 and 8 bytes and a 4/2/1-byte tail at even offsets; the
    /// sum is folded to 16 bits and swapped into network order once at the end. This runs
    /// over every received and every sent datagram (about 2 instructions per 16 bytes here,
    /// where summing 16-bit words costs about one per byte), so it is worth the care. (128
    /// bytes a step rather than 64 halves the loop's own instructions: ~8 fewer on a
    /// 300-byte request.)
    ///
    /// `initial` may be any unfolded network-order partial sum below 2^32. A byte swap of a
    /// 16-bit word is a multiplication by 256 modulo 0xffff (RFC 1071 §2(B) again), so
    /// `initial << 8` is its little-endian counterpart and is simply added in. The result is
    /// in 0..=0xffff and is 0 only when `initial` and every byte are 0, as with the
    /// textbook 16-bit loop.
    #[inline]
    pub fn sum(initial: u32, data: &[u8]) -> u32 {
        sum_inline(initial, 0, data)
    }

    /// [`sum`] with `words` added in: eight bytes read as one little-endian word, as
    /// [`sum`] reads `data` (the UDP pseudo header's two addresses, taken from the IPv4
    /// header in one load instead of as four network-order words to swap and add).
    #[inline(always)]
    pub fn sum_with(initial: u32, words: [u8; 8], data: &[u8]) -> u32 {
        sum_inline(initial, u64::from_le_bytes(words), data)
    }

    /// [`sum`] over a fixed-size array (an IPv4 header), always inlined so that the compiler
    /// unrolls it into a few additions for the known length.
    #[inline(always)]
    pub fn sum_array<const N: usize>(initial: u32, data: &[u8; N]) -> u32 {
        sum_inline(initial, 0, data)
    }

    /// Add the first `N` bytes of `rest` (if it has them) into `acc`, counting the carry out,
    /// and advance `rest`. Returns whether it did.
    #[inline(always)]
    fn step<const N: usize>(acc: &mut u64, carries: &mut u64, rest: &mut &[u8]) -> bool {
        let Some((block, tail)) = rest.split_first_chunk::<N>() else {
            return false;
        };
        let (s, c) = add_words(*acc, block);
        (*acc, *carries, *rest) = (s, *carries + u64::from(c), tail);
        true
    }

    /// [`sum`] of `data` with `initial` (network order, unfolded) and `first` (a
    /// little-endian word, see [`sum_with`]) added in.
    #[inline(always)]
    fn sum_inline(initial: u32, first: u64, data: &[u8]) -> u32 {
        let mut acc: u64 = first;
        // Carries out of `acc`, each worth 2^64 ≡ 1: fewer than 2^58 for any slice.
        let mut carries: u64 = 0;
        let mut rest = data;
        while step::<128>(&mut acc, &mut carries, &mut rest) {}
        step::<64>(&mut acc, &mut carries, &mut rest);
        step::<32>(&mut acc, &mut carries, &mut rest);
        step::<16>(&mut acc, &mut carries, &mut rest);
        step::<8>(&mut acc, &mut carries, &mut rest);
        // Below 2^41 in all: the tail (< 2^33) and `initial` in little-endian form (< 2^40).
        let mut small = u64::from(initial) << 8;
        if let Some((w, tail)) = rest.split_first_chunk::<4>() {
            small += u64::from(u32::from_le_bytes(*w));
            rest = tail;
        }
        if let Some((w, tail)) = rest.split_first_chunk::<2>() {
            small += u64::from(u16::from_le_bytes(*w));
            rest = tail;
        }
        // An odd last byte is the high byte of a zero-padded network-order word, i.e. the
        // low byte of a little-endian one.
        if let [last] = rest {
            small += u64::from(*last);
        }
        let (s, c) = acc.overflowing_add(carries + small);
        // Cannot overflow: after a carry out, `s` is below 2^64 - 1.
        let le = fold(s + u64::from(c));
        // The little-endian sum is the byte-swapped network-order sum (RFC 1071 §2(B)).
        u32::from(le.swap_bytes())
    }

    /// Final complement.
    pub fn finish(sum: u32) -> u16 {
        !(sum as u16)
    }
}
