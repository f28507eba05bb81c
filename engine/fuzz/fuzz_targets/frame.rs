//! Fuzz target `frame`: hostile frames -> `Server::handle` -> (if a reply) a sane reply frame.
//!
//! Input layout (so that one input can drive a whole exchange and reach the stateful paths:
//! SELECTING after an OFFER, RENEW after an ACK, RELEASE, DECLINE ...):
//!
//! ```text
//! byte 0        : seconds to advance the clock between frames (x 16)
//! then repeated : u16 big-endian length, that many bytes of Ethernet frame
//! ```
//!
//! A length running past the end takes the rest of the input as the last frame, so any byte
//! string is a valid input. Every input gets fresh lease tables (tiny pools, so exhaustion,
//! probation and reuse are reachable) and a configuration with every selection path: a
//! default untagged subnet, 802.1Q and QinQ links, a relayed subnet, a shared network and
//! reservations of every key kind.
//!
//! Checked for every reply: the frame re-parses with `wire::parse` once turned back into a
//! request (op and UDP port flipped), so Ethernet, IPv4 (header checksum, lengths), UDP length
//! and the whole option area are well formed; the UDP checksum is verified here; the reply
//! keeps the request's xid, chaddr and VLAN tags, carries OFFER / ACK / NAK, echoes option 82
//! whole (or leaves it out and counts that, RFC 3046 §2.2), and fits the client's maximum
//! message size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use xdhcp::config::{
    AddrRange, Durability, Ipv4Net, LeaseTimes, LinkMatch, OptionSet, Reservation, ReservationKey,
    ServerConfig, SharedNetwork, Subnet, SubnetId,
};
use xdhcp::dhcp::{Link, Server, Stats, Verdict};
use xdhcp::lease::LeaseTables;
use xdhcp::wire::{self, MessageType};

const NOW: u64 = 1_700_000_000;

fn subnet(id: u32, net: [u8; 3], links: Vec<LinkMatch>) -> Subnet {
    let a = |d| Ipv4Addr::new(net[0], net[1], net[2], d);
    let mut options = OptionSet::default();
    options.set(1, vec![255, 255, 255, 0]);
    options.set(3, a(1).octets().to_vec());
    options.set(6, vec![10, 0, 0, 53, 10, 0, 0, 54]);
    options.set(15, b"fuzz.example".to_vec());
    options.set(28, a(255).octets().to_vec());
    options.set(
        121,
        vec![24, 192, 168, 1, a(1).octets()[0], net[1], net[2], 1],
    );
    options.set(119, vec![b'x'; 300]);
    Subnet {
        id: SubnetId(id),
        network: Ipv4Net {
            addr: a(0),
            prefix: 24,
        },
        ranges: vec![AddrRange {
            start: a(100),
            end: a(107),
        }],
        excluded: vec![a(103)],
        server_id: a(1),
        lease: LeaseTimes {
            default: 600,
            min: 60,
            max: 3600,
            t1_permille: 500,
            t2_permille: 875,
        },
        options,
        reservations: Vec::new(),
        shared_network: None,
        links,
        filename: Some(b"boot.efi".to_vec().into()),
        server_name: None,
        next_server: None,
    }
}

fn reservation(key: ReservationKey, address: Option<Ipv4Addr>) -> Reservation {
    let mut options = OptionSet::default();
    options.set(15, b"host.example".to_vec());
    Reservation {
        key,
        address,
        options,
        filename: Some(b"host.efi".to_vec().into()),
        server_name: Some(b"tftp".to_vec().into()),
        next_server: Some(Ipv4Addr::new(10, 0, 0, 5)),
    }
}

fn config() -> ServerConfig {
    let mut lan = subnet(
        0,
        [10, 0, 0],
        vec![LinkMatch {
            outer: None,
            inner: None,
        }],
    );
    lan.reservations = vec![
        reservation(
            ReservationKey::Mac([2, 0, 0, 0, 0, 1]),
            Some(Ipv4Addr::new(10, 0, 0, 50)),
        ),
        reservation(
            ReservationKey::ClientId(vec![1, 2, 0, 0, 0, 0, 2].into()),
            None,
        ),
    ];
    let mut relayed = subnet(1, [10, 1, 0], Vec::new());
    relayed.reservations = vec![
        reservation(
            ReservationKey::CircuitId(b"c1".to_vec().into()),
            Some(Ipv4Addr::new(10, 1, 0, 50)),
        ),
        reservation(ReservationKey::RemoteId(b"r1".to_vec().into()), None),
    ];
    let mut vlan = subnet(
        2,
        [10, 2, 0],
        vec![LinkMatch {
            outer: Some(100),
            inner: None,
        }],
    );
    vlan.reservations = vec![reservation(
        ReservationKey::Vlan {
            outer: 100,
            inner: None,
        },
        Some(Ipv4Addr::new(10, 2, 0, 50)),
    )];
    let mut qinq = subnet(
        3,
        [10, 3, 0],
        vec![LinkMatch {
            outer: Some(200),
            inner: Some(30),
        }],
    );
    qinq.reservations = vec![reservation(
        ReservationKey::Vlan {
            outer: 200,
            inner: Some(30),
        },
        None,
    )];
    let mut sa = subnet(4, [10, 4, 0], Vec::new());
    sa.shared_network = Some(0);
    let mut sb = subnet(5, [10, 5, 0], Vec::new());
    sb.shared_network = Some(0);
    let mut subnets = vec![lan, relayed, vlan, qinq, sa, sb];
    for s in &mut subnets {
        s.reservations.sort_by(|a, b| a.key.cmp(&b.key));
    }
    ServerConfig {
        subnets,
        shared_networks: vec![SharedNetwork {
            name: "seg".into(),
            subnets: vec![SubnetId(4), SubnetId(5)],
        }],
        authoritative: true,
        offer_hold: 30,
        decline_probation: 120,
        default_subnet: Some(SubnetId(0)),
        durability: Durability::None,
        state_dir: PathBuf::from("/nonexistent"),
    }
}

/// RFC 1071 sum over `parts`, complemented (0 over data that includes a correct checksum).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut hi: Option<u8> = None;
    for p in parts {
        for &b in *p {
            match hi.take() {
                Some(h) => sum += u64::from(u16::from_be_bytes([h, b])),
                None => hi = Some(b),
            }
        }
    }
    if let Some(h) = hi {
        sum += u64::from(h) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Check a reply frame written for `req`; returns whether the request's option 82 was left out.
fn check_reply(req: &wire::Request<'_>, reply: &[u8]) -> bool {
    let l2 = 14 + 4 * req.l2.vlans().len();
    assert!(reply.len() >= l2 + 20 + 8 + 300, "reply too short");
    assert_eq!(
        &reply[l2 - 2..l2],
        &[0x08, 0x00],
        "IPv4 ethertype after the tags"
    );
    for (i, t) in req.l2.vlans().iter().enumerate() {
        let o = 12 + 4 * i;
        assert_eq!(u16::from_be_bytes([reply[o], reply[o + 1]]), t.tpid);
        assert_eq!(u16::from_be_bytes([reply[o + 2], reply[o + 3]]), t.tci);
    }
    let ip = &reply[l2..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_eq!(total, ip.len(), "IPv4 total length = frame");
    let udp = &ip[20..];
    let ulen = u16::from_be_bytes([udp[4], udp[5]]);
    assert_eq!(usize::from(ulen), udp.len());
    assert_eq!(
        checksum(&[&ip[12..20], &[0, 17], &ulen.to_be_bytes(), udp]),
        0,
        "UDP checksum"
    );
    // RFC 2131 §2 / RFC 2132 §9.10: the datagram never exceeds what the client accepts.
    let max = req.options.max_message_size().unwrap_or(576);
    assert!(
        total <= usize::from(max.max(576)),
        "reply {total} > max message size {max}"
    );

    // Turn it back into a request and let the real parser check everything above L4.
    let mut copy = reply.to_vec();
    let u = l2 + 20;
    copy[u + 2..u + 4].copy_from_slice(&67u16.to_be_bytes());
    copy[u + 6..u + 8].fill(0);
    copy[u + 8] = 1;
    let back = wire::parse(&copy).unwrap_or_else(|e| panic!("reply does not re-parse: {e:?}"));
    assert_eq!(back.xid, req.xid);
    assert_eq!(back.chaddr, req.chaddr);
    assert_eq!(back.giaddr, req.giaddr);
    assert!(matches!(
        back.options.message_type(),
        MessageType::Offer | MessageType::Ack | MessageType::Nak
    ));
    // RFC 3046 §2.2: option 82 comes back whole, or (when it cannot fit) not at all.
    match (req.options.relay_agent(), back.options.relay_agent()) {
        (Some(r), Some(echo)) => {
            assert_eq!(echo.raw(), r.raw());
            false
        }
        (Some(_), None) => true,
        (None, echo) => {
            assert!(echo.is_none(), "option 82 invented");
            false
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = config();
    let tables = Arc::new(LeaseTables::new(&cfg, 2));
    let server = Server::new(Arc::new(cfg), tables.clone());
    let link = Link {
        mac: [2, 0x5e, 0, 0, 0, 1],
        addr: Ipv4Addr::new(10, 0, 0, 1),
    };
    let mut stats = Stats::default();
    let mut tx = [0u8; 1600];
    let mut now = NOW;
    let mut frames = 0u64;
    while !rest.is_empty() && frames < 16 {
        let frame = match rest {
            [a, b, tail @ ..] if usize::from(u16::from_be_bytes([*a, *b])) <= tail.len() => {
                let (f, t) = tail.split_at(usize::from(u16::from_be_bytes([*a, *b])));
                rest = t;
                f
            }
            _ => core::mem::take(&mut rest),
        };
        frames += 1;
        let omitted_before = stats.relay_echo_omitted;
        let v = server.handle(frame, &mut tx, &link, now, &mut stats);
        match v {
            Verdict::Reply { len, commit, .. } => {
                let req = wire::parse(frame).expect("answered frames parse");
                let omitted = check_reply(&req, &tx[..len]);
                assert_eq!(
                    stats.relay_echo_omitted - omitted_before,
                    u64::from(omitted)
                );
                if let Some(c) = commit {
                    // The ACK's lease is what the tables hold.
                    assert_eq!(tables.by_addr(c.addr), Some(c));
                }
            }
            Verdict::NoReply { commit } => {
                assert!(wire::parse(frame).is_ok());
                assert_eq!(
                    tables.by_addr(commit.addr).map(|l| l.state),
                    Some(commit.state)
                );
            }
            Verdict::Drop(_) => {}
        }
        now += u64::from(step) * 16;
        let _ = tables.expire(now, 16);
    }
    let replies: u64 = stats.replies.iter().sum();
    assert_eq!(stats.frames, frames);
    assert_eq!(
        replies + stats.total_drops(),
        frames,
        "every frame counted once"
    );
});
