//! Property test: random interleavings of DISCOVER / REQUEST (all states) / RELEASE / DECLINE /
//! time advance / expiry for many clients, through `Server::handle` on sharded tables.
//!
//! Invariants checked after every step:
//! * no address is ever ACKed (or offered) to a client while another client's binding on it
//!   is still running (released / declined bindings end when the server accepted that);
//! * a declined address is neither offered nor ACKed before its probation ends;
//! * every ACK's `commit` is exactly what the tables now hold for that address (Bound, this
//!   client, expiring `now + granted lease`), and the ACK frame says the same;
//! * every frame is counted exactly once (a reply or a drop reason).
//!
//! Then the same frames are replayed through a second server in batches of random sizes, each
//! batch prepared whole before any of it is answered (`Server::prepare` / `Server::respond`,
//! as a worker does): every verdict and every reply byte must be the same as one by one.

use super::testkit::*;
use super::{Verdict, msg};
use crate::config::{AddrRange, ServerConfig, SubnetId};
use crate::lease::{ClientKey, LeaseState, Secs};
use dhcproto::v4::{self, DhcpOption, MessageType};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::Ipv4Addr;

const CLIENTS: usize = 12;
const POOL: u8 = 8;
const LAN_SID: Ipv4Addr = ip(10, 0, 0, 1);
const RELAY_SID: Ipv4Addr = ip(192, 0, 2, 1);
const GIADDR: Ipv4Addr = ip(10, 1, 0, 1);

#[derive(Clone, Debug)]
enum Op {
    Discover(usize),
    /// REQUEST selecting our last offer to this client.
    Select(usize),
    /// REQUEST selecting another server.
    SelectOther(usize),
    /// INIT-REBOOT for pool address `idx`.
    InitReboot(usize, u8),
    /// RENEWING / REBINDING the client's last ACKed address.
    Renew(usize, bool),
    Release(usize),
    Decline(usize),
    Advance(u32),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CLIENTS;
    prop_oneof![
        4 => c.clone().prop_map(Op::Discover),
        4 => c.clone().prop_map(Op::Select),
        1 => c.clone().prop_map(Op::SelectOther),
        2 => (c.clone(), 0..POOL + 2).prop_map(|(c, i)| Op::InitReboot(c, i)),
        2 => (c.clone(), any::<bool>()).prop_map(|(c, b)| Op::Renew(c, b)),
        1 => c.clone().prop_map(Op::Release),
        1 => c.prop_map(Op::Decline),
        2 => (0u32..2500).prop_map(Op::Advance),
        1 => Just(Op::Expire),
    ]
}

/// One simulated client.
#[derive(Clone, Debug, Default)]
struct Client {
    offered: Option<(Ipv4Addr, Ipv4Addr)>,
    acked: Option<Ipv4Addr>,
}

fn hw(c: usize) -> [u8; 6] {
    mac(1000 + c as u32)
}

/// Clients 0..6 sit on the LAN, 6..12 behind the relay; odd clients send option 61.
fn relayed(c: usize) -> bool {
    c >= CLIENTS / 2
}

fn key(c: usize) -> ClientKey {
    if c % 2 == 1 {
        ClientKey::from_client_id(&client_id(c))
    } else {
        ClientKey::from_hw(1, &hw(c))
    }
}

fn client_id(c: usize) -> Vec<u8> {
    vec![0, 0xab, c as u8, 1, 2]
}

fn base(c: usize, t: MessageType) -> v4::Message {
    let mut m = request(t, hw(c));
    if c % 2 == 1 {
        m.opts_mut()
            .insert(DhcpOption::ClientIdentifier(client_id(c)));
    }
    if relayed(c) {
        m.set_giaddr(GIADDR);
    }
    m
}

fn path(c: usize) -> Path {
    if relayed(c) {
        Path::Relay(GIADDR)
    } else {
        Path::Broadcast(vec![])
    }
}

fn pool_addr(c: usize, idx: u8) -> Ipv4Addr {
    let net = if relayed(c) { 1 } else { 0 };
    // idx >= POOL lies outside the range (and for POOL + 1, outside every subnet of ours).
    if idx == POOL + 1 {
        return ip(10, 9, 9, 9);
    }
    ip(10, net, 0, 100 + idx)
}

/// A binding as the test saw it: (client, start, end).
type Binding = (usize, Secs, Secs);

#[derive(Default)]
struct Model {
    clients: Vec<Client>,
    bindings: HashMap<Ipv4Addr, Vec<Binding>>,
    probation: HashMap<Ipv4Addr, Secs>,
}

impl Model {
    fn check_free_for(
        &self,
        c: usize,
        a: Ipv4Addr,
        now: Secs,
        what: &str,
    ) -> Result<(), TestCaseError> {
        if let Some(bs) = self.bindings.get(&a) {
            for &(o, start, end) in bs {
                prop_assert!(
                    o == c || end <= now,
                    "{what} of {a} to client {c} at {now} while client {o} holds it [{start}, {end})"
                );
            }
        }
        if let Some(&until) = self.probation.get(&a) {
            prop_assert!(
                now >= until,
                "{what} of declined {a} at {now} (probation until {until})"
            );
        }
        Ok(())
    }

    fn bind(&mut self, c: usize, a: Ipv4Addr, now: Secs, end: Secs) {
        let v = self.bindings.entry(a).or_default();
        match v.iter_mut().find(|(o, _, e)| *o == c && *e > now) {
            Some(b) => b.2 = end,
            None => v.push((c, now, end)),
        }
    }

    fn end(&mut self, c: usize, a: Ipv4Addr, now: Secs) {
        if let Some(v) = self.bindings.get_mut(&a) {
            for b in v.iter_mut().filter(|b| b.0 == c && b.2 > now) {
                b.2 = now;
            }
        }
    }
}

/// What the one-by-one run saw, for the batched replay.
enum Event {
    /// A frame, its verdict and the reply bytes.
    Frame(Vec<u8>, Verdict, Vec<u8>),
    Advance(Secs),
    Expire(Secs),
}

/// Replay `log` through a fresh server with the same configuration, preparing batches of the
/// sizes in `cuts` (cycled) before responding to them.
fn replay(
    log: &[Event],
    cfg: ServerConfig,
    shards: usize,
    cuts: &[usize],
) -> Result<(), TestCaseError> {
    let mut env = Env::with_shards(cfg, shards);
    let mut cut = cuts.iter().copied().cycle();
    let mut i = 0;
    while i < log.len() {
        let frames: Vec<&Event> = log[i..]
            .iter()
            .take(cut.next().unwrap_or(1).max(1))
            .take_while(|e| matches!(e, Event::Frame(..)))
            .collect();
        if frames.is_empty() {
            match log[i] {
                Event::Advance(now) => env.now = now,
                Event::Expire(now) => {
                    let _ = env.server.leases().expire(now, 64);
                }
                Event::Frame(..) => unreachable!("taken above"),
            }
            i += 1;
            continue;
        }
        i += frames.len();
        let prepared: Vec<_> = frames
            .iter()
            .map(|e| match e {
                Event::Frame(f, ..) => env.server.prepare(f, &env.link, &mut env.stats),
                _ => unreachable!("frames only"),
            })
            .collect();
        for (p, e) in prepared.iter().zip(&frames) {
            let Event::Frame(_, want, bytes) = e else {
                unreachable!("frames only");
            };
            let got = env
                .server
                .respond(p, &mut env.tx, &env.link, env.now, &mut env.stats);
            prop_assert_eq!(got, *want, "batched verdict");
            if let Verdict::Reply { len, .. } = got {
                prop_assert_eq!(&env.tx[..len], &bytes[..], "batched reply bytes");
            }
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>, shards: usize, cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut cfg = config();
    for s in [0usize, 1] {
        let net = s as u8;
        cfg.subnets[s].ranges = vec![AddrRange {
            start: ip(10, net, 0, 100),
            end: ip(10, net, 0, 100 + POOL - 1),
        }];
        cfg.subnets[s].reservations.clear();
    }
    cfg.decline_probation = 1000;
    let mut env = Env::with_shards(cfg.clone(), shards);
    let mut log = Vec::new();
    let mut m = Model {
        clients: vec![Client::default(); CLIENTS],
        ..Model::default()
    };
    let mut frames = 0u64;

    for op in ops {
        let now = env.now;
        let (c, msg) = match op {
            Op::Advance(s) => {
                env.now += Secs::from(s);
                log.push(Event::Advance(env.now));
                continue;
            }
            Op::Expire => {
                let _ = env.server.leases().expire(env.now, 64);
                log.push(Event::Expire(env.now));
                continue;
            }
            Op::Discover(c) => (c, base(c, MessageType::Discover)),
            Op::Select(c) => {
                let Some((a, sid)) = m.clients[c].offered else {
                    continue;
                };
                let mut r = base(c, MessageType::Request);
                r.opts_mut().insert(DhcpOption::RequestedIpAddress(a));
                r.opts_mut().insert(DhcpOption::ServerIdentifier(sid));
                (c, r)
            }
            Op::SelectOther(c) => {
                let mut r = base(c, MessageType::Request);
                r.opts_mut()
                    .insert(DhcpOption::RequestedIpAddress(pool_addr(c, 0)));
                r.opts_mut()
                    .insert(DhcpOption::ServerIdentifier(ip(10, 77, 0, 1)));
                (c, r)
            }
            Op::InitReboot(c, i) => {
                let mut r = base(c, MessageType::Request);
                r.opts_mut()
                    .insert(DhcpOption::RequestedIpAddress(pool_addr(c, i)));
                (c, r)
            }
            Op::Renew(c, _) | Op::Release(c) | Op::Decline(c) if m.clients[c].acked.is_none() => {
                continue;
            }
            Op::Renew(c, _) => {
                let mut r = base(c, MessageType::Request);
                r.set_giaddr(Ipv4Addr::UNSPECIFIED);
                r.set_ciaddr(m.clients[c].acked.unwrap_or(Ipv4Addr::UNSPECIFIED));
                (c, r)
            }
            Op::Release(c) => {
                let mut r = base(c, MessageType::Release);
                r.set_giaddr(Ipv4Addr::UNSPECIFIED);
                r.set_ciaddr(m.clients[c].acked.unwrap_or(Ipv4Addr::UNSPECIFIED));
                (c, r)
            }
            Op::Decline(c) => {
                let mut r = base(c, MessageType::Decline);
                let a = m.clients[c].acked.unwrap_or(Ipv4Addr::UNSPECIFIED);
                r.opts_mut().insert(DhcpOption::RequestedIpAddress(a));
                (c, r)
            }
        };
        // RENEWING is unicast to the server (broadcast = REBINDING), RELEASE unicast too.
        let p = match (&op, m.clients[c].acked) {
            (Op::Renew(_, true), Some(a)) => Path::BroadcastFrom(a),
            (Op::Renew(..) | Op::Release(_), Some(a)) => Path::Unicast {
                from: a,
                to: if relayed(c) { RELAY_SID } else { LAN_SID },
            },
            _ => path(c),
        };
        frames += 1;
        let frame = frame_of(&msg, &p);
        let (v, reply) = env.send(&frame);
        let bytes = match v {
            Verdict::Reply { len, .. } => env.tx[..len].to_vec(),
            _ => Vec::new(),
        };
        log.push(Event::Frame(frame, v, bytes));
        match (v, reply) {
            (Verdict::Reply { commit, .. }, Some(r)) => match r.mtype() {
                MessageType::Offer => {
                    let a = r.msg.yiaddr();
                    m.check_free_for(c, a, now, "OFFER")?;
                    let held = env.server.leases().by_addr(a);
                    prop_assert!(
                        held.is_some_and(|l| l.client == key(c)
                            && matches!(l.state, LeaseState::Offered | LeaseState::Bound)),
                        "offered {a} not held for client {c}: {held:?}"
                    );
                    m.clients[c].offered = Some((a, r.server_id().unwrap_or(LAN_SID)));
                }
                MessageType::Ack => {
                    let a = r.msg.yiaddr();
                    m.check_free_for(c, a, now, "ACK")?;
                    let lease = r.u32_opt(51).unwrap_or(0);
                    let commit = commit.ok_or_else(|| TestCaseError::fail("ACK without commit"))?;
                    let table = env.server.leases().by_addr(a);
                    prop_assert_eq!(Some(commit), table, "commit matches the table");
                    prop_assert_eq!(commit.addr, a);
                    prop_assert_eq!(commit.client, key(c));
                    prop_assert_eq!(commit.state, LeaseState::Bound);
                    prop_assert_eq!(commit.expires, now + Secs::from(lease));
                    let sub = if relayed(c) { SubnetId(1) } else { SubnetId(0) };
                    prop_assert_eq!(commit.subnet, sub);
                    // A client holds one address: a new ACK ends its previous binding.
                    if let Some(old) = m.clients[c].acked
                        && old != a
                    {
                        m.end(c, old, now);
                    }
                    m.bind(c, a, now, commit.expires);
                    m.clients[c].acked = Some(a);
                    m.clients[c].offered = None;
                }
                MessageType::Nak => {
                    prop_assert!(commit.is_none());
                    prop_assert_eq!(r.msg.yiaddr(), Ipv4Addr::UNSPECIFIED);
                    m.clients[c].offered = None;
                }
                t => prop_assert!(false, "unexpected reply {t:?}"),
            },
            (Verdict::NoReply { commit }, None) => {
                prop_assert_eq!(commit.client, key(c));
                match commit.state {
                    LeaseState::Released => {}
                    LeaseState::Declined => {
                        prop_assert_eq!(commit.expires, now + 1000);
                        m.probation.insert(commit.addr, commit.expires);
                    }
                    s => prop_assert!(false, "RELEASE/DECLINE left {s:?}"),
                }
                m.end(c, commit.addr, now);
                m.clients[c].acked = None;
            }
            (Verdict::Drop(_), None) => {}
            (v, r) => prop_assert!(false, "verdict {v:?} with reply {r:?}"),
        }
        let s = &env.stats;
        let replies: u64 = s.replies.iter().sum();
        prop_assert_eq!(s.frames, frames);
        prop_assert_eq!(
            replies + s.total_drops(),
            frames,
            "every frame counted once"
        );
        prop_assert_eq!(
            s.replies[usize::from(msg::OFFER)]
                + s.replies[usize::from(msg::ACK)]
                + s.replies[usize::from(msg::NAK)],
            replies
        );
    }
    replay(&log, cfg, shards, cuts)
}

proptest! {
    // 96 cases by default; PROPTEST_CASES=n for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_address_is_ever_bound_to_two_clients(
        ops in proptest::collection::vec(op(), 1..160),
        shards in 1usize..6,
        cuts in proptest::collection::vec(1usize..24, 1..8),
    ) {
        run(ops, shards, &cuts)?;
    }
}
