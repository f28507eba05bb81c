//! Builders for the Ethernet frames the tests feed to the XDP program and the engine.
//!
//! Independent of the engine's `wire` module on purpose: a test oracle that shares code with the
//! thing under test cannot catch that code's mistakes.

use std::net::Ipv4Addr;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// An Ethernet frame: `dst`, `src`, then each `(tpid, vid)` tag in order, then `ethertype` and
/// `payload`.
pub fn ethernet(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * tags.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header fields the tests vary.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Fields {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// Flags (3 bits) and fragment offset (13 bits), host order.
    pub flags_frag: u16,
    /// Header length in 32-bit words (5 = no options); options are zero-filled.
    pub ihl: u8,
    pub ttl: u8,
}

impl Ipv4Fields {
    pub fn udp(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Self {
            src,
            dst,
            protocol: IPPROTO_UDP,
            flags_frag: 0,
            ihl: 5,
            ttl: 64,
        }
    }
}

/// An IPv4 packet with a correct header checksum and total length.
pub fn ipv4(fields: &Ipv4Fields, payload: &[u8]) -> Vec<u8> {
    let hlen = usize::from(fields.ihl.max(5)) * 4;
    let total = (hlen + payload.len()) as u16;
    let mut p = vec![0u8; hlen];
    p[0] = 0x40 | (fields.ihl & 0x0f);
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[6..8].copy_from_slice(&fields.flags_frag.to_be_bytes());
    p[8] = fields.ttl;
    p[9] = fields.protocol;
    p[12..16].copy_from_slice(&fields.src.octets());
    p[16..20].copy_from_slice(&fields.dst.octets());
    let sum = checksum(&p[..hlen]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A UDP datagram (checksum 0 = none, allowed for IPv4 by RFC 768).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// DHCP message types (RFC 2132 §9.6).
pub const DHCPDISCOVER: u8 = 1;
pub const DHCPREQUEST: u8 = 3;
pub const DHCPRELEASE: u8 = 7;

/// A BOOTREQUEST carrying a DHCP message (RFC 2131 §2): fixed 236-byte header, magic cookie,
/// option 53, end, padded to the 300-byte BOOTP minimum.
pub fn bootrequest(
    msg_type: u8,
    chaddr: [u8; 6],
    xid: u32,
    ciaddr: Ipv4Addr,
    giaddr: Ipv4Addr,
) -> Vec<u8> {
    let mut m = vec![0u8; 236];
    m[0] = 1; // op = BOOTREQUEST
    m[1] = 1; // htype = Ethernet
    m[2] = 6; // hlen
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[12..16].copy_from_slice(&ciaddr.octets());
    m[24..28].copy_from_slice(&giaddr.octets());
    m[28..34].copy_from_slice(&chaddr);
    m.extend_from_slice(&[99, 130, 83, 99]); // magic cookie
    m.extend_from_slice(&[53, 1, msg_type, 255]);
    m.resize(300, 0);
    m
}

/// A complete DHCP frame as a client (or relay) would send it.
#[derive(Clone, Debug)]
pub struct DhcpFrame {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub tags: Vec<(u16, u16)>,
    pub ip: Ipv4Fields,
    pub src_port: u16,
    pub dst_port: u16,
    pub msg_type: u8,
    pub chaddr: [u8; 6],
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
}

impl DhcpFrame {
    /// A broadcast DHCPDISCOVER from `chaddr` (0.0.0.0:68 -> 255.255.255.255:67).
    pub fn discover(chaddr: [u8; 6]) -> Self {
        Self {
            eth_dst: BROADCAST_MAC,
            eth_src: chaddr,
            tags: Vec::new(),
            ip: Ipv4Fields::udp(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
            src_port: 68,
            dst_port: 67,
            msg_type: DHCPDISCOVER,
            chaddr,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
        }
    }

    /// A DHCPDISCOVER relayed by `relay` (giaddr) to `server` (67 -> 67, unicast).
    pub fn relayed(chaddr: [u8; 6], relay: Ipv4Addr, server: Ipv4Addr) -> Self {
        Self {
            eth_dst: [0x02, 0, 0, 0, 0, 0x01],
            eth_src: [0x02, 0, 0, 0, 0, 0xee],
            ip: Ipv4Fields::udp(relay, server),
            src_port: 67,
            giaddr: relay,
            ..Self::discover(chaddr)
        }
    }

    /// A renewing client's unicast DHCPREQUEST from `client` to `server` (RFC 2131 §4.4.5).
    pub fn renew(chaddr: [u8; 6], client: Ipv4Addr, server: Ipv4Addr) -> Self {
        Self {
            eth_dst: [0x02, 0, 0, 0, 0, 0x01],
            ip: Ipv4Fields::udp(client, server),
            msg_type: DHCPREQUEST,
            ciaddr: client,
            ..Self::discover(chaddr)
        }
    }

    /// Adds VLAN tags, outermost first.
    pub fn tagged(mut self, tags: &[(u16, u16)]) -> Self {
        self.tags = tags.to_vec();
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let msg = bootrequest(
            self.msg_type,
            self.chaddr,
            0x1234_5678,
            self.ciaddr,
            self.giaddr,
        );
        let seg = udp(self.src_port, self.dst_port, &msg);
        let pkt = ipv4(&self.ip, &seg);
        ethernet(self.eth_dst, self.eth_src, &self.tags, ETH_P_IPV4, &pkt)
    }
}

/// An ARP request (who-has `target` tell `sender`).
pub fn arp_request(sender_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    a.extend_from_slice(&sender_mac);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    ethernet(BROADCAST_MAC, sender_mac, &[], ETH_P_ARP, &a)
}

/// A minimal IPv6 UDP frame (a DHCPv6 Solicit to ff02::1:2, port 547).
pub fn ipv6_udp(src_mac: [u8; 6]) -> Vec<u8> {
    let seg = udp(546, 547, &[1, 0, 0, 1]);
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    h.extend_from_slice(&[IPPROTO_UDP, 1]);
    h.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
    h.extend_from_slice(&seg);
    ethernet([0x33, 0x33, 0, 1, 0, 2], src_mac, &[], ETH_P_IPV6, &h)
}
