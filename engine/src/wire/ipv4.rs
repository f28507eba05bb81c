//! IPv4 header view (RFC 791).
//!
//! Only what a DHCP server needs: addresses, a verified header checksum and the payload cut to
//! the datagram's total length. Fragments are refused outright: a DHCP message fits in one
//! datagram (RFC 2131 §2: clients must accept 576-octet datagrams; relays and clients do not
//! fragment), and reassembly would need per-flow state and memory an attacker controls.
//! IP options are skipped, not interpreted (RFC 1122 §3.2.1.8 lets a host ignore unknown ones).

use super::{DropReason, checksum};
use std::net::Ipv4Addr;

/// Field offsets of the IPv4 header.
mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
}

/// Header length of the IPv4 header xdhcp writes (no options).
pub(crate) const HEADER_LEN: usize = field::HEADER_LEN;
/// The source and destination addresses, one run (as the UDP pseudo header holds them).
pub(crate) const ADDRS: core::ops::Range<usize> = field::SRC.start..field::DST.end;
/// The TTL; the protocol follows it.
pub(crate) const TTL: usize = field::TTL;
/// IP protocol number of UDP.
pub(crate) const PROTO_UDP: u8 = 17;
/// Version 4, IHL 5: the first byte of a header without options.
const VER_IHL_NO_OPTIONS: u8 = 0x45;
/// More-fragments flag.
const FLAG_MF: u16 = 0x2000;
/// Don't-fragment flag.
const FLAG_DF: u16 = 0x4000;
/// Fragment offset mask.
const FRAG_OFFSET: u16 = 0x1fff;

/// The parts of a validated IPv4 header the upper layers use: the two addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Source then destination address, the eight bytes as they lie in the header. Kept
    /// together because the UDP pseudo header sums them as one word (RFC 768).
    pub addrs: [u8; 8],
}

impl Header {
    /// A header with these addresses.
    #[cfg(test)]
    pub const fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        let ([a, b, c, d], [e, f, g, h]) = (src.octets(), dst.octets());
        Header {
            addrs: [a, b, c, d, e, f, g, h],
        }
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let [a, b, c, d, ..] = self.addrs;
        Ipv4Addr::new(a, b, c, d)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let [.., e, f, g, h] = self.addrs;
        Ipv4Addr::new(e, f, g, h)
    }
}

/// Validate the IPv4 header at the start of `l3` and return it with the payload, cut to the
/// header's total length (bytes beyond it are Ethernet padding and are ignored).
///
/// Almost every header is version 4 without options (first byte 0x45): that case is checked
/// here on the fixed 20 bytes, where every offset and length is a constant; a header with
/// options (or a bad first byte) goes to [`parse_other`].
#[inline(always)]
pub(crate) fn parse(l3: &[u8]) -> Result<(Header, &[u8]), DropReason> {
    // One length check; the fixed fields below are constant-index reads of this array.
    let Some((fixed, after)) = l3.split_first_chunk::<{ field::HEADER_LEN }>() else {
        return Err(DropReason::Ipv4Malformed);
    };
    if fixed[field::VER_IHL] != VER_IHL_NO_OPTIONS {
        return parse_other(l3);
    }
    let total = usize::from(be16(fixed, field::TOTAL_LEN.start));
    let Some(payload) = total
        .checked_sub(field::HEADER_LEN)
        .and_then(|n| after.get(..n))
    else {
        return Err(DropReason::Ipv4BadLength);
    };
    // RFC 1071: the one's complement sum over a correct header, checksum included, is
    // 0xffff. Summing the fixed-size array lets the compiler unroll it into a few additions.
    check_rest(fixed, checksum::sum_array(0, fixed))?;
    Ok((header(fixed), payload))
}

/// [`parse`] of a header whose first byte is not 0x45: options (IHL > 5), or malformed. Out
/// of line: DHCP clients and relays do not send IP options.
#[cold]
#[inline(never)]
fn parse_other(l3: &[u8]) -> Result<(Header, &[u8]), DropReason> {
    let Some(fixed) = l3.first_chunk::<{ field::HEADER_LEN }>() else {
        return Err(DropReason::Ipv4Malformed);
    };
    let version = fixed[field::VER_IHL] >> 4;
    let ihl = usize::from(fixed[field::VER_IHL] & 0x0f) * 4;
    if version != 4 || ihl < field::HEADER_LEN || ihl > l3.len() {
        return Err(DropReason::Ipv4Malformed);
    }
    let total = usize::from(be16(fixed, field::TOTAL_LEN.start));
    if total < ihl || total > l3.len() {
        return Err(DropReason::Ipv4BadLength);
    }
    check_rest(fixed, checksum::sum(0, l3.get(..ihl).unwrap_or(&[])))?;
    Ok((header(fixed), l3.get(ihl..total).unwrap_or(&[])))
}

/// The checks after the lengths, in order: the header checksum (`sum` is the header's
/// one's-complement sum), no fragment, UDP.
#[inline(always)]
fn check_rest(fixed: &[u8; field::HEADER_LEN], sum: u32) -> Result<(), DropReason> {
    if sum != 0xffff {
        return Err(DropReason::Ipv4BadChecksum);
    }
    let flags_frag = be16(fixed, field::FLAGS_FRAG.start);
    if flags_frag & (FLAG_MF | FRAG_OFFSET) != 0 {
        return Err(DropReason::Ipv4Fragment);
    }
    if fixed[field::PROTOCOL] != PROTO_UDP {
        return Err(DropReason::NotUdp);
    }
    Ok(())
}

/// The fields the upper layers use.
#[inline(always)]
fn header(fixed: &[u8; field::HEADER_LEN]) -> Header {
    let mut addrs = [0; 8];
    addrs.copy_from_slice(&fixed[field::SRC.start..field::DST.end]);
    Header { addrs }
}

/// Big-endian u16 at the constant offset `at` of the fixed header.
fn be16(h: &[u8; field::HEADER_LEN], at: usize) -> u16 {
    u16::from_be_bytes([h[at], h[at + 1]])
}

/// Write a 20-byte IPv4 header carrying UDP, with total length and checksum left at zero for
/// [`finish`].
#[inline]
pub(crate) fn emit(out: &mut [u8; field::HEADER_LEN], src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) {
    let mut h = [0u8; field::HEADER_LEN];
    h[field::VER_IHL] = VER_IHL_NO_OPTIONS;
    h[field::TOS] = 0;
    // RFC 6864 §4.1: an atomic datagram (DF set, never fragmented) may carry any ID.
    h[field::IDENT].fill(0);
    h[field::FLAGS_FRAG].copy_from_slice(&FLAG_DF.to_be_bytes());
    h[field::TTL] = ttl;
    h[field::PROTOCOL] = PROTO_UDP;
    h[field::SRC].copy_from_slice(&src.octets());
    h[field::DST].copy_from_slice(&dst.octets());
    *out = h;
}

/// Set the total length and the header checksum of a header written by [`emit`], whose two
/// fields must still be zero.
///
/// WHY the header is read back rather than its sum carried over from [`emit`]: the reply
/// writer would keep that sum across the whole reply (a value stored and reloaded), and its
/// fold costs as much as summing the 20 bytes again. The stored zeros add nothing, and the
/// length is added as a number before it is stored (RFC 1071 §2(A): the sum is commutative).
#[inline]
pub(crate) fn finish(h: &mut [u8; field::HEADER_LEN], total_len: u16) {
    debug_assert_eq!(h[field::TOTAL_LEN], [0, 0], "length still zero");
    debug_assert_eq!(h[field::CHECKSUM], [0, 0], "checksum still zero");
    let c = checksum::finish(checksum::sum_array(u32::from(total_len), h));
    h[field::TOTAL_LEN].copy_from_slice(&total_len.to_be_bytes());
    h[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    // The whole-header computation this one stands for must agree.
    debug_assert_eq!(checksum::sum_array(0, h), 0xffff, "IPv4 header checksum");
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{inet_checksum, ipv4_header};
    use super::*;

    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut p = ipv4_header(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            PROTO_UDP,
            payload.len(),
            &[],
        );
        p.extend_from_slice(payload);
        p
    }

    fn refix(p: &mut [u8]) {
        let ihl = usize::from(p[0] & 0x0f) * 4;
        p[10] = 0;
        p[11] = 0;
        let c = inet_checksum(&[&p[..ihl]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn valid_with_padding() {
        let mut p = packet(&[1, 2, 3, 4]);
        p.extend_from_slice(&[0; 20]); // Ethernet padding
        let (h, payload) = parse(&p).unwrap();
        assert_eq!(h.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(h.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(payload, &[1, 2, 3, 4]);
    }

    #[test]
    fn options_skipped() {
        // Router alert option (RFC 2113), IHL 6.
        let mut p = ipv4_header(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            PROTO_UDP,
            2,
            &[0x94, 0x04, 0, 0],
        );
        p.extend_from_slice(&[9, 9]);
        let (_, payload) = parse(&p).unwrap();
        assert_eq!(payload, &[9, 9]);
    }

    #[test]
    fn malformed() {
        let good = packet(&[0; 8]);
        assert_eq!(parse(&good[..19]).unwrap_err(), DropReason::Ipv4Malformed);
        let mut p = good.clone();
        p[0] = 0x65; // version 6
        assert_eq!(parse(&p).unwrap_err(), DropReason::Ipv4Malformed);
        let mut p = good.clone();
        p[0] = 0x44; // IHL 4
        assert_eq!(parse(&p).unwrap_err(), DropReason::Ipv4Malformed);
        let mut p = good.clone();
        p[0] = 0x4f; // IHL 15 = 60 bytes > 28-byte packet
        assert_eq!(parse(&p).unwrap_err(), DropReason::Ipv4Malformed);
    }

    #[test]
    fn bad_length() {
        let good = packet(&[0; 8]);
        let mut p = good.clone();
        p[2..4].copy_from_slice(&29u16.to_be_bytes()); // one past the end
        refix(&mut p);
        assert_eq!(parse(&p).unwrap_err(), DropReason::Ipv4BadLength);
        let mut p = good.clone();
        p[2..4].copy_from_slice(&19u16.to_be_bytes()); // shorter than the header
        refix(&mut p);
        assert_eq!(parse(&p).unwrap_err(), DropReason::Ipv4BadLength);
        // every truncation of a valid packet beyond the header is a length error
        for n in 20..good.len() {
            assert_eq!(parse(&good[..n]).unwrap_err(), DropReason::Ipv4BadLength);
        }
    }

    #[test]
    fn bad_checksum() {
        let mut p = packet(&[0; 8]);
        p[8] ^= 1; // TTL changed, checksum not updated
        assert_eq!(parse(&p).unwrap_err(), DropReason::Ipv4BadChecksum);
    }

    #[test]
    fn fragments() {
        for ff in [0x2000u16, 0x0001, 0x3fff, 0x0100] {
            let mut p = packet(&[0; 8]);
            p[6..8].copy_from_slice(&ff.to_be_bytes());
            refix(&mut p);
            assert_eq!(parse(&p).unwrap_err(), DropReason::Ipv4Fragment, "{ff:#x}");
        }
        let mut p = packet(&[0; 8]);
        p[6..8].copy_from_slice(&FLAG_DF.to_be_bytes());
        refix(&mut p);
        assert!(parse(&p).is_ok());
    }

    #[test]
    fn not_udp() {
        let mut p = packet(&[0; 8]);
        p[9] = 6;
        refix(&mut p);
        assert_eq!(parse(&p).unwrap_err(), DropReason::NotUdp);
    }

    #[test]
    fn emit_finish_checksum_independent() {
        let mut buf = [0xaau8; 28];
        let h: &mut [u8; 20] = buf.first_chunk_mut().unwrap();
        emit(h, Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::BROADCAST, 64);
        finish(h, 28);
        assert_eq!(inet_checksum(&[&buf[..20]]), 0, "header sums to zero");
        let (h, payload) = parse(&buf).unwrap();
        assert_eq!(h.src(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(h.dst(), Ipv4Addr::BROADCAST);
        assert_eq!(payload.len(), 8);
    }

    /// Addresses whose sums carry in different ways (zero, all ones, mixed).
    const EDGE_ADDRS: [Ipv4Addr; 4] = [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(192, 0, 2, 255),
        Ipv4Addr::BROADCAST,
    ];

    #[test]
    fn finish_equals_the_whole_header_checksum() {
        // The header read back plus the total length must give the checksum of the whole
        // header, including where the additions carry (all-ones addresses, TTL, length).
        let addrs = EDGE_ADDRS;
        for src in addrs {
            for dst in addrs {
                for ttl in [0, 1, 64, 255] {
                    for len in [20u16, 328, 576, 0xffff] {
                        let mut buf = [0x55u8; 20];
                        emit(&mut buf, src, dst, ttl);
                        finish(&mut buf, len);
                        assert_eq!(inet_checksum(&[&buf]), 0, "{src} {dst} {ttl} {len}");
                        let total = u16::from_be_bytes([buf[2], buf[3]]);
                        assert_eq!((total, buf[8], buf[9]), (len, ttl, PROTO_UDP));
                        assert_eq!(&buf[ADDRS], [src.octets(), dst.octets()].concat());
                    }
                }
            }
        }
    }
}
