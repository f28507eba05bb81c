//! Shared by the benchmarks (each bench includes it with `mod common;`): one DHCP server
//! configuration and one client-frame builder, so every benchmark feeds the same frames.
#![allow(dead_code, reason = "each benchmark uses a different subset")]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use xdhcp::config::{
    AddrRange, Durability, Ipv4Net, OptionSet, Reservation, ReservationKey, ServerConfig, Subnet,
    SubnetId,
};
use xdhcp::lease::LeaseTables;
use xdhcp::worker::DhcpHandler;

pub const NOW: u64 = 1_700_000_000;
pub const BATCH: usize = 4096;
/// Addresses in the pool: 10.0.0.10 .. 10.15.240.9 (~2^20).
pub const POOL: u32 = (1 << 20) - 4096;
pub const SERVER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const GIADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const RELAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

pub fn v4(a: &[Ipv4Addr]) -> Vec<u8> {
    a.iter().flat_map(|x| x.octets()).collect()
}

pub fn config() -> ServerConfig {
    let mut options = OptionSet::default();
    options.set(1, vec![255, 240, 0, 0]);
    options.set(3, v4(&[SERVER_ID]));
    options.set(
        6,
        v4(&[Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(10, 0, 0, 54)]),
    );
    options.set(15, b"access.example.net".to_vec());
    options.set(28, v4(&[Ipv4Addr::new(10, 15, 255, 255)]));
    options.set(42, v4(&[Ipv4Addr::new(10, 0, 0, 123)]));
    let start = u32::from(Ipv4Addr::new(10, 0, 0, 10));
    // 1000 circuit-id reservations (10.15.250.0 + i, outside the pool) that the benchmark
    // clients never match: the relayed variant still probes the index for every request.
    let fixed0 = u32::from(Ipv4Addr::new(10, 15, 250, 0));
    let mut reservations: Vec<Reservation> = (0..1000u32)
        .map(|i| Reservation {
            key: ReservationKey::CircuitId(format!("olt-1/port-{i}").into_bytes().into()),
            address: Some(Ipv4Addr::from(fixed0 + i)),
            options: OptionSet::default(),
            filename: None,
            server_name: None,
            next_server: None,
        })
        .collect();
    reservations.sort_by(|a, b| a.key.cmp(&b.key));
    ServerConfig {
        subnets: vec![Subnet {
            id: SubnetId(0),
            network: Ipv4Net {
                addr: Ipv4Addr::new(10, 0, 0, 0),
                prefix: 12,
            },
            ranges: vec![AddrRange {
                start: Ipv4Addr::from(start),
                end: Ipv4Addr::from(start + POOL - 1),
            }],
            server_id: SERVER_ID,
            options,
            reservations,
            ..Subnet::default()
        }],
        shared_networks: Vec::new(),
        authoritative: true,
        offer_hold: 30,
        decline_probation: 600,
        default_subnet: Some(SubnetId(0)),
        durability: Durability::None,
        state_dir: PathBuf::from("/nonexistent"),
    }
}

/// The worker's handler over the same configuration (no journal), answering as `SERVER_MAC` /
/// `SERVER_ID`.
pub fn handler() -> DhcpHandler {
    let cfg = config();
    let tables = Arc::new(LeaseTables::new(&cfg, 1));
    DhcpHandler::new(Arc::new(cfg), tables, SERVER_MAC, SERVER_ID)
}

// ---- frame building (outside the timed sections) ---------------------------------------------

/// RFC 1071 checksum.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for p in parts {
        for &b in *p {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(hi) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[derive(Clone, Copy)]
pub enum Kind {
    Discover,
    /// SELECTING: options 50 and 54.
    Request(Ipv4Addr),
    /// INIT-REBOOT (RFC 2131 §4.3.2): option 50 only, ciaddr 0 (a client rebooting with a
    /// lease it remembers).
    InitReboot(Ipv4Addr),
    Inform(Ipv4Addr),
}

/// Client `n`'s hardware address (also the tail of its client identifier, option 61).
pub fn client_hw(n: u32) -> [u8; 6] {
    let [a, b, c, d] = n.to_be_bytes();
    [0x02, 0xcc, a, b, c, d]
}

/// A client's frame, as dhclient-like clients send it.
pub fn frame(n: u32, kind: Kind, relayed: bool) -> Vec<u8> {
    let hw = client_hw(n);
    let mut b = vec![0u8; 240];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[3] = u8::from(relayed);
    b[4..8].copy_from_slice(&(n ^ 0x5a5a_5a5a).to_be_bytes());
    if let Kind::Inform(ci) = kind {
        b[12..16].copy_from_slice(&ci.octets());
    }
    if relayed {
        b[24..28].copy_from_slice(&GIADDR.octets());
    }
    b[28..34].copy_from_slice(&hw);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    let t = match kind {
        Kind::Discover => 1,
        Kind::Request(_) | Kind::InitReboot(_) => 3,
        Kind::Inform(_) => 8,
    };
    b.extend_from_slice(&[53, 1, t]);
    b.extend_from_slice(&[61, 7, 1]);
    b.extend_from_slice(&hw);
    if let Kind::Request(a) | Kind::InitReboot(a) = kind {
        b.extend_from_slice(&[50, 4]);
        b.extend_from_slice(&a.octets());
    }
    if let Kind::Request(_) = kind {
        b.extend_from_slice(&[54, 4]);
        b.extend_from_slice(&SERVER_ID.octets());
    }
    b.extend_from_slice(&[57, 2, 0x05, 0xdc]);
    b.extend_from_slice(&[55, 9, 1, 3, 6, 15, 28, 42, 51, 58, 59]);
    b.extend_from_slice(&[12, 8]);
    b.extend_from_slice(b"host-abc");
    if relayed {
        let circuit = format!("olt-9/port-{n}");
        let remote = b"cpe-remote-id";
        let len = 2 + circuit.len() + 2 + remote.len();
        b.extend_from_slice(&[82, len as u8, 1, circuit.len() as u8]);
        b.extend_from_slice(circuit.as_bytes());
        b.extend_from_slice(&[2, remote.len() as u8]);
        b.extend_from_slice(remote);
    }
    b.push(255);
    let (src, dst, sport, eth_src, eth_dst) = match (relayed, kind) {
        (true, _) => (GIADDR, SERVER_ID, 67u16, RELAY_MAC, SERVER_MAC),
        (false, Kind::Inform(ci)) => (ci, SERVER_ID, 68, hw, SERVER_MAC),
        (false, _) => (
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            68,
            hw,
            [0xff; 6],
        ),
    };
    let ulen = (8 + b.len()) as u16;
    let mut udp = Vec::with_capacity(usize::from(ulen));
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&67u16.to_be_bytes());
    udp.extend_from_slice(&ulen.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&b);
    let c = checksum(&[
        &src.octets(),
        &dst.octets(),
        &[0, 17],
        &ulen.to_be_bytes(),
        &udp,
    ]);
    udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(20 + ulen).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::with_capacity(14 + ip.len() + udp.len());
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&udp);
    f
}

/// `yiaddr` of a reply frame (untagged).
pub fn yiaddr(reply: &[u8]) -> Ipv4Addr {
    let o = 14 + 20 + 8 + 16;
    Ipv4Addr::new(reply[o], reply[o + 1], reply[o + 2], reply[o + 3])
}
