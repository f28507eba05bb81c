//! Zero-copy views over the frames xdhcp receives and the replies it writes.
//!
//! CONTRACT (the decision in `dhcp/` is written against exactly this surface):
//!
//! * [`parse`] validates a whole received Ethernet frame — untagged, 802.1Q or 802.1ad/QinQ,
//!   IPv4 (IHL with options, no fragments, header checksum), UDP (length vs frame, checksum if
//!   non-zero), BOOTP fixed header (hlen <= 16, magic cookie) and the options (every length,
//!   RFC 3396 concatenation, option overload 52 into `file`/`sname`, no loops) — and returns a
//!   [`Request`] that borrows the frame. After `parse` succeeds no accessor can panic.
//! * Errors are a [`DropReason`]: a `Copy` enum the caller counts, never formats per packet.
//! * [`ReplyWriter`] writes a reply frame straight into a caller-supplied TX buffer: L2 (with
//!   the same VLAN tags), IPv4, UDP, BOOTP header, options; `finish` fills lengths and checksums
//!   in one place and returns the frame length. It never panics on a short buffer: it reports
//!   [`EmitError::NoRoom`].

mod dhcp;
mod emit;
mod ether;
mod ipv4;
mod udp;

pub use dhcp::{DhcpOptions, MessageType, OptRef, RelayAgentInfo};
pub use emit::{EmitError, ReplyHeaders, ReplyWriter};
pub use ether::{L2Header, VlanTag};

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
    /// hlen > 16.
    BadHlen,
    /// Magic cookie missing or wrong.
    BadCookie,
    /// An option's length runs past the end of its area.
    OptionTruncated,
    /// Option overload (52) malformed, repeated inside an overloaded field, or looping.
    BadOverload,
    /// No END option and the area is not padded out.
    OptionsUnterminated,
    /// No DHCP message type (53): plain BOOTP is not served.
    NoMessageType,
    /// A fixed-size option (50, 51, 53, 54, 57, 118, ...) has the wrong length.
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
pub fn parse(frame: &[u8]) -> Result<Request<'_>, DropReason> {
    let (l2, l3) = ether::parse(frame)?;
    let (ip, l4) = ipv4::parse(l3)?;
    let (udp, payload) = udp::parse(&ip, l4)?;
    dhcp::parse(l2, &ip, &udp, payload)
}

/// Internet checksum (RFC 1071) helpers shared by parse and emit.
pub(crate) mod checksum {
    /// One's-complement sum of `data` folded into 16 bits, starting from `initial`.
    pub fn sum(initial: u32, data: &[u8]) -> u32 {
        let mut acc = initial as u64;
        let mut chunks = data.chunks_exact(2);
        for c in &mut chunks {
            acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            acc += u64::from(*last) << 8;
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u32
    }
    /// Final complement.
    pub fn finish(sum: u32) -> u16 {
        !(sum as u16)
    }
}
