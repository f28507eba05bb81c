//! UDP header view (RFC 768).
//!
//! The UDP length must fit in the IPv4 payload. A UDP length shorter than the IPv4 payload is
//! accepted and the payload cut to it, as Linux does (`__udp4_lib_rcv` trims the datagram): the
//! checksum covers exactly the UDP length, so nothing unchecked reaches the DHCP parser. The
//! destination port is checked before the checksum so that stray traffic costs no summing.

use super::{DropReason, checksum, ipv4};

/// Field offsets of the UDP header.
mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const HEADER_LEN: usize = 8;
}

/// UDP header length.
pub(crate) const HEADER_LEN: usize = field::HEADER_LEN;
/// The DHCP server port (RFC 2131 §4.1).
pub const SERVER_PORT: u16 = 67;
/// The DHCP client port (RFC 2131 §4.1).
pub const CLIENT_PORT: u16 = 68;

/// The parts of a validated UDP header the DHCP layer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub src_port: u16,
    pub dst_port: u16,
}

/// Big-endian u16 at the constant offset `at` of the header.
fn be16(h: &[u8; field::HEADER_LEN], at: usize) -> u16 {
    u16::from_be_bytes([h[at], h[at + 1]])
}

/// RFC 768 pseudo-header sum: source, destination, zero + protocol, UDP length.
/// Unfolded (below 2^19), to be passed as the `initial` value of [`checksum::sum`].
pub(super) fn pseudo_header_sum(ip_src: [u8; 4], ip_dst: [u8; 4], udp_len: u16) -> u32 {
    let words = |a: [u8; 4]| {
        u32::from(u16::from_be_bytes([a[0], a[1]])) + u32::from(u16::from_be_bytes([a[2], a[3]]))
    };
    words(ip_src) + words(ip_dst) + u32::from(ipv4::PROTO_UDP) + u32::from(udp_len)
}

/// Validate the UDP header at the start of `l4` (the IPv4 payload) and return it with the
/// UDP payload.
#[inline(always)]
pub(crate) fn parse<'a>(ip: &ipv4::Header, l4: &'a [u8]) -> Result<(Header, &'a [u8]), DropReason> {
    let Some(h) = l4.first_chunk::<{ field::HEADER_LEN }>() else {
        return Err(DropReason::UdpBadLength);
    };
    let len = be16(h, field::LENGTH.start);
    let ulen = usize::from(len);
    if ulen < field::HEADER_LEN || ulen > l4.len() {
        return Err(DropReason::UdpBadLength);
    }
    let (datagram, payload) = (&l4[..ulen], &l4[field::HEADER_LEN..ulen]);
    let hdr = Header {
        src_port: be16(h, field::SRC_PORT.start),
        dst_port: be16(h, field::DST_PORT.start),
    };
    if hdr.dst_port != SERVER_PORT {
        return Err(DropReason::NotDhcpPort);
    }
    // RFC 768: an all-zero checksum means the sender computed none.
    if be16(h, field::CHECKSUM.start) != 0 {
        // The pseudo header: the two addresses as one word (they are adjacent in the IPv4
        // header), then zero + protocol and the UDP length (see `pseudo_header_sum`).
        let s = checksum::sum_with(
            u32::from(ipv4::PROTO_UDP) + u32::from(len),
            ip.addrs,
            datagram,
        );
        if s != 0xffff {
            return Err(DropReason::UdpBadChecksum);
        }
    }
    Ok((hdr, payload))
}

/// Write the UDP ports; length and checksum are left at zero (set by the reply writer, or by
/// [`finish`]).
#[inline]
pub(crate) fn emit(h: &mut [u8; field::HEADER_LEN], src_port: u16, dst_port: u16) {
    h[field::SRC_PORT].copy_from_slice(&src_port.to_be_bytes());
    h[field::DST_PORT].copy_from_slice(&dst_port.to_be_bytes());
    h[field::LENGTH].fill(0);
    h[field::CHECKSUM].fill(0);
}

/// Set the length and checksum of the UDP datagram that is exactly `datagram` (header + payload).
pub(crate) fn finish(datagram: &mut [u8], ip_src: [u8; 4], ip_dst: [u8; 4]) -> Option<()> {
    let len = u16::try_from(datagram.len()).ok()?;
    if datagram.len() < field::HEADER_LEN {
        return None;
    }
    datagram[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    datagram[field::CHECKSUM].fill(0);
    let s = pseudo_header_sum(ip_src, ip_dst, len);
    let mut c = checksum::finish(checksum::sum(s, datagram));
    // RFC 768: a computed checksum of zero is transmitted as all ones.
    if c == 0 {
        c = 0xffff;
    }
    datagram[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{inet_checksum, udp_datagram};
    use super::*;
    use std::net::Ipv4Addr;

    const IP: ipv4::Header = ipv4::Header::new(
        Ipv4Addr::new(10, 1, 2, 3),
        Ipv4Addr::new(255, 255, 255, 255),
    );

    fn dgram(dst_port: u16, payload: &[u8]) -> Vec<u8> {
        udp_datagram(IP.src(), IP.dst(), 68, dst_port, payload)
    }

    #[test]
    fn valid() {
        let d = dgram(67, b"hello");
        let (h, p) = parse(&IP, &d).unwrap();
        assert_eq!((h.src_port, h.dst_port), (68, 67));
        assert_eq!(p, b"hello");
    }

    #[test]
    fn zero_checksum_accepted() {
        let mut d = dgram(67, b"odd");
        d[6] = 0;
        d[7] = 0;
        assert!(parse(&IP, &d).is_ok());
    }

    #[test]
    fn shorter_udp_length_trims() {
        let mut d = dgram(67, b"abcd");
        d.extend_from_slice(b"junk");
        let (_, p) = parse(&IP, &d).unwrap();
        assert_eq!(p, b"abcd");
    }

    #[test]
    fn bad_length() {
        let d = dgram(67, b"abcd");
        for n in 0..8 {
            assert_eq!(parse(&IP, &d[..n]).unwrap_err(), DropReason::UdpBadLength);
        }
        // length field beyond the IPv4 payload
        for n in 8..d.len() {
            assert_eq!(parse(&IP, &d[..n]).unwrap_err(), DropReason::UdpBadLength);
        }
        let mut short = d.clone();
        short[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(parse(&IP, &short).unwrap_err(), DropReason::UdpBadLength);
    }

    #[test]
    fn bad_checksum() {
        let mut d = dgram(67, b"abcd");
        d[9] ^= 0x40;
        assert_eq!(parse(&IP, &d).unwrap_err(), DropReason::UdpBadChecksum);
        // the pseudo-header counts: same bytes from another source address fail
        let d = dgram(67, b"abcd");
        let other = ipv4::Header::new(Ipv4Addr::new(10, 1, 2, 4), IP.dst());
        assert_eq!(parse(&other, &d).unwrap_err(), DropReason::UdpBadChecksum);
    }

    #[test]
    fn wrong_port() {
        for port in [68, 0, 547, 6767] {
            assert_eq!(
                parse(&IP, &dgram(port, b"x")).unwrap_err(),
                DropReason::NotDhcpPort
            );
        }
    }

    #[test]
    fn finish_matches_independent_checksum() {
        for payload in [&b""[..], b"a", b"ab", b"odd-length payload"] {
            let mut d = vec![0u8; 8 + payload.len()];
            d[8..].copy_from_slice(payload);
            emit(d.first_chunk_mut().unwrap(), 67, 68);
            finish(&mut d, IP.src().octets(), IP.dst().octets()).unwrap();
            let reference = udp_datagram(IP.src(), IP.dst(), 67, 68, payload);
            assert_eq!(d, reference);
            let pseudo = [
                &IP.src().octets()[..],
                &IP.dst().octets(),
                &[0, 17],
                &(d.len() as u16).to_be_bytes(),
                &d,
            ];
            assert_eq!(inet_checksum(&pseudo), 0);
        }
        let mut tiny = [0u8; 7];
        assert!(finish(&mut tiny, [0; 4], [0; 4]).is_none());
    }
}
