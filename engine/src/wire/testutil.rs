//! Test helpers: frame builders with an independent checksum implementation, crafted BOOTP
//! messages, the captured fixtures. Test-only (`#[cfg(test)]`); other modules' tests may use it
//! (`crate::wire::testutil`).

use super::VlanTag;
use std::net::Ipv4Addr;

/// Real frames captured from real clients (see `engine/tests/fixtures/README.md`).
pub mod fixtures {
    pub const DHCLIENT_DISCOVER: &[u8] =
        include_bytes!("../../tests/fixtures/dhclient-discover.bin");
    pub const DHCLIENT_REQUEST: &[u8] = include_bytes!("../../tests/fixtures/dhclient-request.bin");
    pub const UDHCPC_DISCOVER: &[u8] = include_bytes!("../../tests/fixtures/udhcpc-discover.bin");
    pub const UDHCPC_REQUEST: &[u8] = include_bytes!("../../tests/fixtures/udhcpc-request.bin");
    pub const DHCPCD_DISCOVER: &[u8] = include_bytes!("../../tests/fixtures/dhcpcd-discover.bin");
    pub const DHCPCD_REQUEST: &[u8] = include_bytes!("../../tests/fixtures/dhcpcd-request.bin");
    /// Relayed (giaddr set, unicast to :67) with option 82.
    pub const PERFDHCP_DISCOVER: &[u8] =
        include_bytes!("../../tests/fixtures/perfdhcp-discover.bin");
    /// Relayed with option 82.
    pub const PERFDHCP_REQUEST: &[u8] = include_bytes!("../../tests/fixtures/perfdhcp-request.bin");
    /// Relayed, no option 82.
    pub const PERFDHCP_PLAIN_DISCOVER: &[u8] =
        include_bytes!("../../tests/fixtures/perfdhcp-plain-discover.bin");
    pub const PERFDHCP_PLAIN_REQUEST: &[u8] =
        include_bytes!("../../tests/fixtures/perfdhcp-plain-request.bin");
    /// Server replies (dnsmasq): to port 68, or to the relay at port 67.
    pub const DNSMASQ_OFFER: &[u8] = include_bytes!("../../tests/fixtures/dnsmasq-offer.bin");
    pub const DNSMASQ_ACK: &[u8] = include_bytes!("../../tests/fixtures/dnsmasq-ack.bin");
    pub const DNSMASQ_OFFER_RELAYED: &[u8] =
        include_bytes!("../../tests/fixtures/dnsmasq-offer-relayed.bin");
    pub const DNSMASQ_ACK_RELAYED: &[u8] =
        include_bytes!("../../tests/fixtures/dnsmasq-ack-relayed.bin");

    /// Every client-sent fixture.
    pub const REQUESTS: [(&str, &[u8]); 10] = [
        ("dhclient-discover", DHCLIENT_DISCOVER),
        ("dhclient-request", DHCLIENT_REQUEST),
        ("udhcpc-discover", UDHCPC_DISCOVER),
        ("udhcpc-request", UDHCPC_REQUEST),
        ("dhcpcd-discover", DHCPCD_DISCOVER),
        ("dhcpcd-request", DHCPCD_REQUEST),
        ("perfdhcp-discover", PERFDHCP_DISCOVER),
        ("perfdhcp-request", PERFDHCP_REQUEST),
        ("perfdhcp-plain-discover", PERFDHCP_PLAIN_DISCOVER),
        ("perfdhcp-plain-request", PERFDHCP_PLAIN_REQUEST),
    ];
}

/// RFC 1071 checksum over the concatenation of `parts`, written independently of
/// `wire::checksum` (byte-pair accumulation over a flattened copy, u32 with end-around carry).
/// Returns the value to store; over data that includes a correct checksum it returns 0.
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let flat: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < flat.len() {
        let hi = u32::from(flat[i]);
        let lo = u32::from(*flat.get(i + 1).unwrap_or(&0));
        sum += (hi << 8) | lo;
        if sum > 0xffff {
            sum = (sum & 0xffff) + 1;
        }
        i += 2;
    }
    !(sum as u16)
}

/// An IPv4 header (checksum filled) for a payload of `payload_len` bytes.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload_len: usize,
    options: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 20 + options.len();
    let total = (ihl + payload_len) as u16;
    let mut h = vec![0x40 | (ihl / 4) as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(options);
    let c = inet_checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// A UDP datagram with its checksum (pseudo-header included).
pub fn udp_datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut d = Vec::new();
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let mut c = inet_checksum(&[
        &src.octets(),
        &dst.octets(),
        &[0, 17],
        &len.to_be_bytes(),
        &d,
    ]);
    if c == 0 {
        c = 0xffff;
    }
    d[6..8].copy_from_slice(&c.to_be_bytes());
    d
}

/// Addresses of a test frame.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub vlans: Vec<VlanTag>,
    pub ip_src: Ipv4Addr,
    pub ip_dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

impl Default for FrameSpec {
    /// A client broadcast: 0.0.0.0:68 -> 255.255.255.255:67.
    fn default() -> Self {
        FrameSpec {
            eth_dst: [0xff; 6],
            eth_src: [0x02, 0, 0, 0, 0, 0x42],
            vlans: Vec::new(),
            ip_src: Ipv4Addr::UNSPECIFIED,
            ip_dst: Ipv4Addr::BROADCAST,
            sport: 68,
            dport: 67,
        }
    }
}

/// Wrap a BOOTP message in UDP / IPv4 / Ethernet (with `spec.vlans`).
pub fn frame(spec: &FrameSpec, bootp: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&spec.eth_dst);
    f.extend_from_slice(&spec.eth_src);
    for t in &spec.vlans {
        f.extend_from_slice(&t.tpid.to_be_bytes());
        f.extend_from_slice(&t.tci.to_be_bytes());
    }
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let udp = udp_datagram(spec.ip_src, spec.ip_dst, spec.sport, spec.dport, bootp);
    f.extend_from_slice(&ipv4_header(spec.ip_src, spec.ip_dst, 17, udp.len(), &[]));
    f.extend_from_slice(&udp);
    f
}

/// A BOOTREQUEST (htype 1, hlen 6, chaddr 02:00:00:00:00:42, xid 0x01020304) with the given
/// `sname`, `file` and options-field bytes (after the cookie; give END yourself).
pub fn bootp(sname: &[u8], file: &[u8], options: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = 1;
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    m[28..34].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
    m[44..44 + sname.len()].copy_from_slice(sname);
    m[108..108 + file.len()].copy_from_slice(file);
    m[236..240].copy_from_slice(&super::MAGIC_COOKIE);
    m.extend_from_slice(options);
    m
}

/// `bootp(&[], &[], options)` wrapped in a default client broadcast frame.
pub fn request_frame(options: &[u8]) -> Vec<u8> {
    frame(&FrameSpec::default(), &bootp(&[], &[], options))
}

/// Offsets of an untagged or tagged frame: (IPv4 start, UDP start, UDP end), if it looks sane.
fn layout(f: &[u8]) -> Option<(usize, usize, usize)> {
    let mut off = 12;
    while matches!(f.get(off..off + 2)?, [0x81, 0x00] | [0x88, 0xa8]) {
        off += 4;
    }
    let ip = off + 2;
    let ihl = usize::from(f.get(ip)? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*f.get(ip + 2)?, *f.get(ip + 3)?]));
    let udp = ip + ihl;
    let end = ip + total;
    (ihl >= 20 && udp + 8 <= end && end <= f.len()).then_some((ip, udp, end))
}

/// Recompute the IPv4 header and UDP checksums of `f` in place (after editing the payload),
/// setting the UDP length to the IPv4 payload. Does nothing if the frame's layout is broken.
pub fn refix_checksums(f: &mut [u8]) {
    let Some((ip, udp, end)) = layout(f) else {
        return;
    };
    let ulen = ((end - udp) as u16).to_be_bytes();
    f[udp + 4..udp + 6].copy_from_slice(&ulen);
    f[udp + 6..udp + 8].fill(0);
    let (src, dst) = (f[ip + 12..ip + 16].to_vec(), f[ip + 16..ip + 20].to_vec());
    let mut c = inet_checksum(&[&src, &dst, &[0, 17], &ulen, &f[udp..end]]);
    if c == 0 {
        c = 0xffff;
    }
    f[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
    f[ip + 10..ip + 12].fill(0);
    let c = inet_checksum(&[&f[ip..udp]]);
    f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
}

/// Offset of the BOOTP message in a sane frame.
pub fn bootp_offset(f: &[u8]) -> Option<usize> {
    layout(f).map(|(_, udp, _)| udp + 8)
}

/// Insert VLAN tags after the MAC addresses of an untagged frame.
pub fn with_vlans(untagged: &[u8], tags: &[VlanTag]) -> Vec<u8> {
    let mut f = untagged[..12].to_vec();
    for t in tags {
        f.extend_from_slice(&t.tpid.to_be_bytes());
        f.extend_from_slice(&t.tci.to_be_bytes());
    }
    f.extend_from_slice(&untagged[12..]);
    f
}

/// Deterministic xorshift64* generator for the byte-flip tests (no extra dependency).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
