//! Test bed for the decision: a configuration with every kind of subnet and reservation,
//! requests built with dhcproto's owned `Message` (an encoder independent of ours) wrapped in
//! Ethernet / IPv4 / UDP, and replies checked (lengths, checksums) and decoded with dhcproto.

use super::{Link, Server, Stats, Verdict};
use crate::config::{
    AddrRange, Durability, Ipv4Net, LeaseTimes, LinkMatch, OptionSet, Reservation, ReservationKey,
    ServerConfig, SharedNetwork, Subnet, SubnetId,
};
use crate::lease::{LeaseTables, Secs};
use crate::wire::VlanTag;
use crate::wire::testutil::{FrameSpec, frame, inet_checksum};
use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use dhcproto::{Decodable, Encodable};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Our MAC on the test link.
pub const SERVER_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x01];
/// A relay agent's MAC (the router in front of relayed subnets).
pub const RELAY_MAC: [u8; 6] = [0x02, 0x7e, 0, 0, 0, 0x99];
/// Start of time in the tests.
pub const T0: Secs = 1_700_000_000;

pub const fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// A test MAC numbered `n`.
pub fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0xcc, b[0], b[1], b[2], b[3]]
}

pub mod ids {
    use super::*;
    /// Subnet 0: direct, untagged (default subnet), reservations by MAC and client id.
    pub const LAN: SubnetId = SubnetId(0);
    /// Subnet 1: relayed via giaddr 10.1.0.1, reservations by circuit id and remote id.
    pub const RELAYED: SubnetId = SubnetId(1);
    /// Subnet 2: direct on 802.1Q VLAN 100, a dynamic VLAN reservation with its own options.
    pub const VLAN100: SubnetId = SubnetId(2);
    /// Subnet 3: direct on QinQ 200/30, a fixed-address VLAN reservation.
    pub const QINQ: SubnetId = SubnetId(3);
    /// Subnets 4 and 5: one shared network behind giaddr 10.4.0.1; 4 has only two addresses.
    pub const SHARED_A: SubnetId = SubnetId(4);
    pub const SHARED_B: SubnetId = SubnetId(5);
    /// Subnet 6: a relayed subnet with a large option set (option 57 tests), giaddr 10.6.0.1.
    pub const BIG: SubnetId = SubnetId(6);
}

pub const MAC_RESERVED: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];
pub const CLIENT_ID_RESERVED: &[u8] = &[0xff, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03];
pub const CIRCUIT_RESERVED: &[u8] = b"eth0/1/1:100";
pub const REMOTE_RESERVED: &[u8] = b"cpe-42";

fn lease_times() -> LeaseTimes {
    LeaseTimes {
        default: 3600,
        min: 600,
        max: 7200,
        t1_permille: 500,
        t2_permille: 875,
    }
}

fn v4list(a: &[Ipv4Addr]) -> Vec<u8> {
    a.iter().flat_map(|x| x.octets()).collect()
}

/// Standard options for a /24 whose router is `.1`.
fn std_options(net: [u8; 3], dns: Ipv4Addr) -> OptionSet {
    let mut o = OptionSet::default();
    o.set(1, vec![255, 255, 255, 0]);
    o.set(3, v4list(&[ip(net[0], net[1], net[2], 1)]));
    o.set(6, v4list(&[dns]));
    o.set(15, b"example.net".to_vec());
    o.set(28, v4list(&[ip(net[0], net[1], net[2], 255)]));
    o.set(42, v4list(&[ip(net[0], net[1], net[2], 123)]));
    o
}

fn subnet(id: SubnetId, net: [u8; 3], server_id: Ipv4Addr) -> Subnet {
    Subnet {
        id,
        network: Ipv4Net {
            addr: ip(net[0], net[1], net[2], 0),
            prefix: 24,
        },
        ranges: vec![AddrRange {
            start: ip(net[0], net[1], net[2], 100),
            end: ip(net[0], net[1], net[2], 199),
        }],
        excluded: vec![],
        server_id,
        lease: lease_times(),
        options: std_options(net, ip(10, 0, 0, 53)),
        reservations: vec![],
        links: vec![],
        ..Subnet::default()
    }
}

fn reservation(key: ReservationKey, address: Option<Ipv4Addr>) -> Reservation {
    Reservation {
        key,
        address,
        options: OptionSet::default(),
        filename: None,
        server_name: None,
        next_server: None,
    }
}

/// The standard test configuration (authoritative).
pub fn config() -> ServerConfig {
    use ids::*;
    let mut lan = subnet(LAN, [10, 0, 0], ip(10, 0, 0, 1));
    lan.links = vec![LinkMatch {
        outer: None,
        inner: None,
    }];
    let mut by_mac = reservation(ReservationKey::Mac(MAC_RESERVED), Some(ip(10, 0, 0, 50)));
    by_mac.filename = Some(b"pxelinux.0".to_vec().into());
    by_mac.server_name = Some(b"boot.example".to_vec().into());
    by_mac.next_server = Some(ip(10, 0, 0, 5));
    by_mac.options.set(6, v4list(&[ip(9, 9, 9, 9)]));
    let by_id = reservation(
        ReservationKey::ClientId(CLIENT_ID_RESERVED.to_vec().into()),
        Some(ip(10, 0, 0, 51)),
    );
    lan.reservations = vec![by_mac, by_id];
    lan.filename = Some(b"default.efi".to_vec().into());

    let mut relayed = subnet(RELAYED, [10, 1, 0], ip(192, 0, 2, 1));
    relayed.reservations = vec![
        reservation(
            ReservationKey::CircuitId(CIRCUIT_RESERVED.to_vec().into()),
            Some(ip(10, 1, 0, 50)),
        ),
        reservation(
            ReservationKey::RemoteId(REMOTE_RESERVED.to_vec().into()),
            Some(ip(10, 1, 0, 51)),
        ),
    ];

    let mut vlan = subnet(VLAN100, [10, 2, 0], ip(10, 2, 0, 1));
    vlan.links = vec![LinkMatch {
        outer: Some(100),
        inner: None,
    }];
    let mut vr = reservation(
        ReservationKey::Vlan {
            outer: 100,
            inner: None,
        },
        None,
    );
    vr.options.set(15, b"vlan100.example".to_vec());
    vlan.reservations = vec![vr];

    let mut qinq = subnet(QINQ, [10, 3, 0], ip(10, 3, 0, 1));
    qinq.links = vec![
        LinkMatch {
            outer: Some(200),
            inner: Some(30),
        },
        LinkMatch {
            outer: Some(200),
            inner: Some(31),
        },
    ];
    qinq.reservations = vec![reservation(
        ReservationKey::Vlan {
            outer: 200,
            inner: Some(30),
        },
        Some(ip(10, 3, 0, 50)),
    )];

    let mut sa = subnet(SHARED_A, [10, 4, 0], ip(192, 0, 2, 1));
    sa.ranges = vec![AddrRange {
        start: ip(10, 4, 0, 10),
        end: ip(10, 4, 0, 11),
    }];
    sa.shared_network = Some(0);
    let mut sb = subnet(SHARED_B, [10, 5, 0], ip(192, 0, 2, 1));
    sb.shared_network = Some(0);

    let mut big = subnet(BIG, [10, 6, 0], ip(192, 0, 2, 1));
    // 20 options of 60 bytes: ~1.2 KB, far more than 576 bytes allow.
    for code in 160..180u8 {
        big.options.set(code, vec![code; 60]);
    }
    big.options.set(121, vec![24, 10, 9, 9, 10, 6, 0, 1]);

    let mut subnets = vec![lan, relayed, vlan, qinq, sa, sb, big];
    for s in &mut subnets {
        s.reservations.sort_by(|a, b| a.key.cmp(&b.key));
    }
    ServerConfig {
        subnets,
        shared_networks: vec![SharedNetwork {
            name: "segment".into(),
            subnets: vec![SHARED_A, SHARED_B],
        }],
        authoritative: true,
        offer_hold: 30,
        decline_probation: 600,
        default_subnet: Some(LAN),
        durability: Durability::None,
        state_dir: std::env::temp_dir(),
    }
}

/// A decoded, checked reply frame.
#[derive(Clone, Debug)]
pub struct Reply {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    /// (TPID, TCI), outermost first.
    pub vlans: Vec<(u16, u16)>,
    pub ip_src: Ipv4Addr,
    pub ip_dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    /// IPv4 total length.
    pub ip_len: usize,
    pub msg: v4::Message,
    /// Option codes in wire order (PAD excluded, END included).
    pub codes: Vec<u8>,
}

impl Reply {
    pub fn mtype(&self) -> MessageType {
        self.msg.opts().msg_type().expect("reply has option 53")
    }
    pub fn opt(&self, code: OptionCode) -> Option<&DhcpOption> {
        self.msg.opts().get(code)
    }
    pub fn has(&self, code: u8) -> bool {
        self.codes.contains(&code)
    }
    pub fn u32_opt(&self, code: u8) -> Option<u32> {
        match self.msg.opts().get(OptionCode::from(code))? {
            DhcpOption::AddressLeaseTime(v) | DhcpOption::Renewal(v) | DhcpOption::Rebinding(v) => {
                Some(*v)
            }
            _ => None,
        }
    }
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        match self.opt(OptionCode::ServerIdentifier)? {
            DhcpOption::ServerIdentifier(a) => Some(*a),
            _ => None,
        }
    }
    pub fn dns(&self) -> Option<Vec<Ipv4Addr>> {
        match self.opt(OptionCode::DomainNameServer)? {
            DhcpOption::DomainNameServer(a) => Some(a.clone()),
            _ => None,
        }
    }
    pub fn domain(&self) -> Option<String> {
        match self.opt(OptionCode::DomainName)? {
            DhcpOption::DomainName(a) => Some(a.clone()),
            _ => None,
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Check and decode a reply frame: Ethernet (+tags), IPv4 (checksum, lengths), UDP (checksum,
/// length), then the DHCP message with dhcproto, plus the raw option order.
pub fn decode(f: &[u8]) -> Reply {
    let eth_dst: [u8; 6] = f[0..6].try_into().unwrap();
    let eth_src: [u8; 6] = f[6..12].try_into().unwrap();
    let mut off = 12;
    let mut vlans = Vec::new();
    while matches!(be16(f, off), 0x8100 | 0x88a8) {
        vlans.push((be16(f, off), be16(f, off + 2)));
        off += 4;
    }
    assert_eq!(be16(f, off), 0x0800, "ethertype");
    let ipo = off + 2;
    assert_eq!(f[ipo], 0x45, "IPv4 without options");
    let ip_len = usize::from(be16(f, ipo + 2));
    assert_eq!(ipo + ip_len, f.len(), "IPv4 total length = frame");
    assert_eq!(
        inet_checksum(&[&f[ipo..ipo + 20]]),
        0,
        "IPv4 header checksum"
    );
    assert_eq!(f[ipo + 9], 17, "UDP");
    assert_eq!(be16(f, ipo + 6) & 0x3fff, 0, "not a fragment");
    let src: [u8; 4] = f[ipo + 12..ipo + 16].try_into().unwrap();
    let dst: [u8; 4] = f[ipo + 16..ipo + 20].try_into().unwrap();
    let u = ipo + 20;
    let ulen = be16(f, u + 4);
    assert_eq!(usize::from(ulen), ip_len - 20, "UDP length");
    assert_ne!(be16(f, u + 6), 0, "UDP checksum present");
    assert_eq!(
        inet_checksum(&[&src, &dst, &[0, 17], &ulen.to_be_bytes(), &f[u..]]),
        0,
        "UDP checksum"
    );
    let bootp = &f[u + 8..];
    assert!(bootp.len() >= 300, "BOOTP message padded to 300 bytes");
    let msg = v4::Message::from_bytes(bootp).expect("dhcproto decodes the reply");
    // Walk the options field for the order (replies never use overload).
    let mut codes = Vec::new();
    let mut i = 240;
    while i < bootp.len() {
        let c = bootp[i];
        if c == 0 {
            i += 1;
            continue;
        }
        codes.push(c);
        if c == 255 {
            break;
        }
        i += 2 + usize::from(bootp[i + 1]);
    }
    assert_eq!(codes.last(), Some(&255), "END present");
    Reply {
        eth_dst,
        eth_src,
        vlans,
        ip_src: Ipv4Addr::from(src),
        ip_dst: Ipv4Addr::from(dst),
        sport: be16(f, u),
        dport: be16(f, u + 2),
        ip_len,
        msg,
        codes,
    }
}

/// A request message from the client with hardware address `hw`.
pub fn request(mtype: MessageType, hw: [u8; 6]) -> v4::Message {
    let z = Ipv4Addr::UNSPECIFIED;
    let xid = u32::from_be_bytes([hw[2], hw[3], hw[4], hw[5]]) ^ 0x5a5a_0000;
    let mut m = v4::Message::new_with_id(xid, z, z, z, z, &hw);
    m.opts_mut().insert(DhcpOption::MessageType(mtype));
    m
}

/// How a request reaches the server.
#[derive(Clone, Debug)]
pub enum Path {
    /// Client broadcast from 0.0.0.0 on the direct link (with these VLAN tags).
    Broadcast(Vec<VlanTag>),
    /// Client unicast from its address `ciaddr` to the server id `to` (RENEWING).
    Unicast { from: Ipv4Addr, to: Ipv4Addr },
    /// Client broadcast from its configured address (REBINDING, INFORM).
    BroadcastFrom(Ipv4Addr),
    /// Relayed by the agent at `giaddr` (frame from `RELAY_MAC` to port 67 from port 67).
    Relay(Ipv4Addr),
}

/// Wrap a message in a frame as it would arrive over `path`.
pub fn frame_of(m: &v4::Message, path: &Path) -> Vec<u8> {
    let bytes = m.to_vec().expect("dhcproto encodes the request");
    // The frame's source MAC: chaddr for Ethernet clients, a fixed one otherwise.
    let hw: [u8; 6] = m
        .chaddr()
        .get(..6)
        .and_then(|c| c.try_into().ok())
        .unwrap_or([0x02, 0xee, 0, 0, 0, 1]);
    let spec = match path {
        Path::Broadcast(tags) => FrameSpec {
            eth_src: hw,
            vlans: tags.clone(),
            ..FrameSpec::default()
        },
        Path::Unicast { from, to } => FrameSpec {
            eth_dst: SERVER_MAC,
            eth_src: hw,
            ip_src: *from,
            ip_dst: *to,
            ..FrameSpec::default()
        },
        Path::BroadcastFrom(from) => FrameSpec {
            eth_src: hw,
            ip_src: *from,
            ..FrameSpec::default()
        },
        Path::Relay(giaddr) => FrameSpec {
            eth_dst: SERVER_MAC,
            eth_src: RELAY_MAC,
            vlans: Vec::new(),
            ip_src: *giaddr,
            ip_dst: ip(192, 0, 2, 1),
            sport: 67,
            dport: 67,
        },
    };
    frame(&spec, &bytes)
}

/// A server with fresh tables, its counters, a clock and a TX buffer.
pub struct Env {
    pub server: Server,
    pub stats: Stats,
    pub now: Secs,
    pub link: Link,
    pub tx: Vec<u8>,
}

impl Env {
    pub fn new(config: ServerConfig) -> Env {
        Env::with_shards(config, 4)
    }

    pub fn with_shards(config: ServerConfig, shards: usize) -> Env {
        let tables = Arc::new(LeaseTables::new(&config, shards));
        let link = Link {
            mac: SERVER_MAC,
            addr: ip(10, 0, 0, 1),
        };
        Env {
            // Homed on the link, as a worker's server is; a test that moves `link` afterwards
            // exercises the per-frame lookup instead.
            server: Server::new(Arc::new(config), tables).with_home_link(&link),
            stats: Stats::default(),
            now: T0,
            link,
            tx: vec![0u8; 2048],
        }
    }

    /// Run one frame through `handle`; decode the reply if there is one.
    pub fn send(&mut self, frame: &[u8]) -> (Verdict, Option<Reply>) {
        let v = self
            .server
            .handle(frame, &mut self.tx, &self.link, self.now, &mut self.stats);
        let reply = match v {
            Verdict::Reply { len, .. } => Some(decode(&self.tx[..len])),
            _ => None,
        };
        (v, reply)
    }

    /// Send `m` over `path`.
    pub fn exchange(&mut self, m: &v4::Message, path: &Path) -> (Verdict, Option<Reply>) {
        self.send(&frame_of(m, path))
    }

    /// Like [`exchange`](Self::exchange), but the reply must exist.
    pub fn reply(&mut self, m: &v4::Message, path: &Path) -> (Verdict, Reply) {
        let (v, r) = self.exchange(m, path);
        (
            v,
            r.unwrap_or_else(|| panic!("expected a reply, got {v:?}")),
        )
    }

    /// DISCOVER + REQUEST (SELECTING) for `hw` over `path`; returns the ACKed address.
    pub fn dora(&mut self, hw: [u8; 6], path: &Path) -> Ipv4Addr {
        let mut d = request(MessageType::Discover, hw);
        if let Path::Relay(g) = path {
            d.set_giaddr(*g);
        }
        let (_, offer) = self.reply(&d, path);
        assert_eq!(offer.mtype(), MessageType::Offer);
        let yiaddr = offer.msg.yiaddr();
        let mut r = request(MessageType::Request, hw);
        r.set_giaddr(d.giaddr());
        r.opts_mut().insert(DhcpOption::RequestedIpAddress(yiaddr));
        r.opts_mut()
            .insert(DhcpOption::ServerIdentifier(offer.server_id().unwrap()));
        let (v, ack) = self.reply(&r, path);
        assert_eq!(ack.mtype(), MessageType::Ack, "{v:?}");
        assert_eq!(ack.msg.yiaddr(), yiaddr);
        yiaddr
    }
}
