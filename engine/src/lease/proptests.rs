//! Property test: random interleavings of offer / bind / release / decline / expiry (with time
//! moving forward) across several shards and clients, checked against a deliberately simple
//! oracle: a map from address to (client, state, expiry) with the contract's rules written out
//! directly, no blocks, shards, indexes, timers or FIFOs.
//!
//! Where the contract leaves a choice (which free address to offer) the oracle checks that the
//! choice is legal (free, in the first candidate subnet that has a free address, not in
//! probation); everything else must match exactly.

use super::tests::{client, config, ip, reservation, subnet};
use super::*;
use crate::config::SubnetId;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

const CLIENTS: u32 = 7;
const T0: u64 = 5_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Blocked,
    Dynamic,
    Reserved,
    FixedOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MState {
    Free,
    Offered,
    Bound,
    /// Released or expired: free, remembered.
    Released,
    Declined,
}

#[derive(Clone, Copy, Debug)]
struct MSlot {
    subnet: u32,
    kind: Kind,
    client: Option<u32>,
    state: MState,
    expires: u64,
}

/// What both sides must agree on for an address at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Free,
    Remembered(u32),
    Held(u32, LeaseState, u64),
    Probation(u32, u64),
}

struct Model {
    slots: BTreeMap<u32, MSlot>,
    current: HashMap<(u32, u32), u32>,
    now: u64,
}

fn a32(s: &str) -> u32 {
    u32::from(ip(s))
}

impl MSlot {
    fn held(&self, now: u64) -> bool {
        matches!(self.state, MState::Offered | MState::Bound) && self.expires > now
    }
    fn probation(&self, now: u64) -> bool {
        self.state == MState::Declined && self.expires > now
    }
    fn free(&self, now: u64) -> bool {
        !self.held(now) && !self.probation(now)
    }
    fn view(&self, now: u64) -> View {
        match (self.state, self.client) {
            (MState::Offered, Some(c)) if self.held(now) => {
                View::Held(c, LeaseState::Offered, self.expires)
            }
            (MState::Bound, Some(c)) if self.held(now) => {
                View::Held(c, LeaseState::Bound, self.expires)
            }
            (MState::Offered | MState::Bound | MState::Released, Some(c)) => View::Remembered(c),
            (MState::Declined, Some(c)) if self.probation(now) => View::Probation(c, self.expires),
            _ => View::Free,
        }
    }
}

fn table_view(info: Option<LeaseInfo>, now: u64) -> View {
    let Some(i) = info else { return View::Free };
    let c = (0..CLIENTS)
        .find(|&c| client(c) == i.client)
        .expect("known client");
    match i.state_at(now) {
        Some(s @ (LeaseState::Offered | LeaseState::Bound)) => View::Held(c, s, i.expires),
        Some(LeaseState::Expired | LeaseState::Released) => View::Remembered(c),
        Some(LeaseState::Declined) => View::Probation(c, i.expires),
        None => View::Free,
    }
}

/// Subnet 0: 10.0.0.1-.12, .5 excluded, .7 reserved for client 0, .100 reserved (outside the
/// range) for client 1. Subnet 1: 10.0.1.1-.6.
fn cfg() -> crate::config::ServerConfig {
    let mut s0 = subnet(0, "10.0.0.0", 24, &[("10.0.0.1", "10.0.0.12")]);
    s0.excluded = vec![ip("10.0.0.5")];
    s0.reservations = vec![reservation(1, "10.0.0.7"), reservation(2, "10.0.0.100")];
    let s1 = subnet(1, "10.0.1.0", 24, &[("10.0.1.1", "10.0.1.6")]);
    config(vec![s0, s1])
}

/// Addresses the operations pick from (including unknown ones).
fn universe() -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = (0..=13).map(|h| Ipv4Addr::new(10, 0, 0, h)).collect();
    v.extend((0..=7).map(|h| Ipv4Addr::new(10, 0, 1, h)));
    v.push(ip("10.0.0.100"));
    v.push(ip("192.0.2.1"));
    v
}

fn fixed_of(c: u32) -> Option<(SubnetId, Ipv4Addr)> {
    match c {
        0 => Some((SubnetId(0), ip("10.0.0.7"))),
        1 => Some((SubnetId(0), ip("10.0.0.100"))),
        _ => None,
    }
}

impl Model {
    fn new() -> Model {
        let mut slots = BTreeMap::new();
        let mut put = |a: u32, subnet: u32, kind: Kind| {
            slots.insert(
                a,
                MSlot {
                    subnet,
                    kind,
                    client: None,
                    state: MState::Free,
                    expires: 0,
                },
            );
        };
        for h in 1..=12u32 {
            let a = a32("10.0.0.0") + h;
            let kind = match h {
                5 => Kind::Blocked,
                7 => Kind::Reserved,
                _ => Kind::Dynamic,
            };
            put(a, 0, kind);
        }
        put(a32("10.0.0.100"), 0, Kind::FixedOnly);
        for h in 1..=6u32 {
            put(a32("10.0.1.0") + h, 1, Kind::Dynamic);
        }
        Model {
            slots,
            current: HashMap::new(),
            now: T0,
        }
    }

    fn addresses(&self) -> u64 {
        self.slots
            .values()
            .filter(|s| s.kind != Kind::Blocked)
            .count() as u64
    }

    /// The client's indexed lease in a subnet, if it is still the client's.
    fn current_of(&self, c: u32, sn: u32) -> Option<u32> {
        let a = *self.current.get(&(c, sn))?;
        let s = &self.slots[&a];
        let vacant =
            s.state == MState::Free || (s.state == MState::Declined && !s.probation(self.now));
        (s.client == Some(c) && !vacant).then_some(a)
    }

    /// Give `a` to `c` and make it the client's lease in its subnet.
    fn assign(&mut self, c: u32, a: u32, state: MState, expires: u64) {
        let sn = self.slots[&a].subnet;
        if let Some(old) = self.current_of(c, sn)
            && old != a
        {
            let now = self.now;
            let o = self.slots.get_mut(&old).expect("slot");
            if matches!(o.state, MState::Offered | MState::Bound) {
                o.state = MState::Released;
                o.expires = now;
            }
        }
        let s = self.slots.get_mut(&a).expect("slot");
        s.client = Some(c);
        s.state = state;
        s.expires = expires;
        self.current.insert((c, sn), a);
    }

    fn info(&self, a: u32) -> (Ipv4Addr, LeaseState, u64) {
        let s = &self.slots[&a];
        let st = match s.state {
            MState::Offered => LeaseState::Offered,
            MState::Bound => LeaseState::Bound,
            MState::Declined => LeaseState::Declined,
            _ => LeaseState::Released,
        };
        (Ipv4Addr::from(a), st, s.expires)
    }

    /// Keep a held lease (extending an offer's hold), or offer the address anew.
    fn reoffer(&mut self, c: u32, a: u32, until: u64) {
        let now = self.now;
        let s = self.slots[&a];
        if s.held(now) {
            let expires = if s.state == MState::Offered {
                s.expires.max(until)
            } else {
                s.expires
            };
            self.assign(c, a, s.state, expires);
        } else {
            self.assign(c, a, MState::Offered, until);
        }
    }

    fn offer(
        &mut self,
        c: u32,
        subnets: &[u32],
        requested: Option<Ipv4Addr>,
        fixed: Option<(SubnetId, Ipv4Addr)>,
        hold: u32,
        got: Result<LeaseInfo, LeaseError>,
    ) -> Result<(), TestCaseError> {
        let now = self.now;
        let until = now + u64::from(hold);
        let got_triple = got.map(|i| (i.addr, i.state, i.expires));
        if let Some((sid, addr)) = fixed {
            let a = u32::from(addr);
            let want = match self.slots.get(&a).copied() {
                None => Err(LeaseError::NotInPool),
                Some(s) if s.subnet != sid.0 || s.kind == Kind::Blocked => {
                    Err(LeaseError::NotInPool)
                }
                Some(s) if s.probation(now) => Err(LeaseError::InProbation),
                Some(s) if s.held(now) && s.client != Some(c) => Err(LeaseError::TakenByOther),
                Some(_) => {
                    self.reoffer(c, a, until);
                    Ok(self.info(a))
                }
            };
            prop_assert_eq!(got_triple, want);
            return Ok(());
        }
        for &sn in subnets {
            if let Some(a) = self.current_of(c, sn) {
                let s = self.slots[&a];
                if s.state == MState::Declined
                    || (matches!(s.kind, Kind::Reserved | Kind::FixedOnly) && !s.held(now))
                {
                    continue;
                }
                self.reoffer(c, a, until);
                prop_assert_eq!(got_triple, Ok(self.info(a)), "existing lease");
                return Ok(());
            }
        }
        if let Some(r) = requested
            && let Some(s) = self.slots.get(&u32::from(r)).copied()
            && s.kind == Kind::Dynamic
            && subnets.contains(&s.subnet)
            && (s.free(now) || s.client == Some(c) && s.held(now))
        {
            self.reoffer(c, u32::from(r), until);
            prop_assert_eq!(got_triple, Ok(self.info(u32::from(r))), "requested");
            return Ok(());
        }
        let first_with_free = subnets.iter().copied().find(|&sn| {
            self.slots
                .values()
                .any(|s| s.subnet == sn && s.kind == Kind::Dynamic && s.free(now))
        });
        match (first_with_free, got) {
            (None, got) => prop_assert_eq!(got, Err(LeaseError::PoolExhausted)),
            (Some(sn), Ok(i)) => {
                let a = u32::from(i.addr);
                let s = self.slots.get(&a).copied();
                prop_assert!(s.is_some(), "unknown address {}", i.addr);
                let s = s.expect("checked");
                prop_assert_eq!(s.subnet, sn, "not the first subnet with room");
                prop_assert_eq!(s.kind, Kind::Dynamic, "{} is not dynamic", i.addr);
                prop_assert!(!s.probation(now), "{} offered in probation", i.addr);
                prop_assert!(s.free(now), "{} offered while held: {:?}", i.addr, s);
                prop_assert_eq!((i.state, i.expires), (LeaseState::Offered, until));
                self.assign(c, a, MState::Offered, until);
            }
            (Some(_), Err(e)) => prop_assert!(false, "offer failed with {e} but the pool has room"),
        }
        Ok(())
    }

    fn bind(
        &mut self,
        c: u32,
        sn: u32,
        addr: Ipv4Addr,
        lease: u32,
        fixed: bool,
    ) -> Result<(Ipv4Addr, LeaseState, u64), LeaseError> {
        let now = self.now;
        let a = u32::from(addr);
        let s = self.slots.get(&a).copied().ok_or(LeaseError::NotInPool)?;
        if s.subnet != sn || s.kind == Kind::Blocked || (s.kind == Kind::FixedOnly && !fixed) {
            return Err(LeaseError::NotInPool);
        }
        if s.probation(now) {
            return Err(LeaseError::InProbation);
        }
        let mine = s.held(now) && s.client == Some(c);
        if s.held(now) && !mine {
            return Err(LeaseError::TakenByOther);
        }
        if s.kind == Kind::Reserved && !fixed && !mine {
            return Err(LeaseError::TakenByOther);
        }
        self.assign(c, a, MState::Bound, now + u64::from(lease));
        Ok(self.info(a))
    }

    fn release(&mut self, c: u32, addr: Ipv4Addr) -> Result<LeaseState, LeaseError> {
        let now = self.now;
        let s = self
            .slots
            .get_mut(&u32::from(addr))
            .ok_or(LeaseError::NoLease)?;
        if s.client != Some(c)
            || !matches!(s.state, MState::Offered | MState::Bound | MState::Released)
        {
            return Err(LeaseError::NoLease);
        }
        if matches!(s.state, MState::Offered | MState::Bound) {
            s.expires = now;
        }
        s.state = MState::Released;
        Ok(LeaseState::Released)
    }

    fn decline(
        &mut self,
        c: u32,
        addr: Ipv4Addr,
        probation: u32,
    ) -> Result<(Ipv4Addr, LeaseState, u64), LeaseError> {
        let now = self.now;
        let s = self
            .slots
            .get_mut(&u32::from(addr))
            .ok_or(LeaseError::NoLease)?;
        let ok = s.client == Some(c)
            && (matches!(s.state, MState::Offered | MState::Bound | MState::Released)
                || s.state == MState::Declined && s.expires > now);
        if !ok {
            return Err(LeaseError::NoLease);
        }
        s.state = MState::Declined;
        s.expires = now + u64::from(probation);
        Ok(self.info(u32::from(addr)))
    }

    fn stats(&self) -> TableStats {
        let now = self.now;
        let count = |f: &dyn Fn(&MSlot) -> bool| {
            self.slots
                .values()
                .filter(|s| s.kind != Kind::Blocked && f(s))
                .count() as u64
        };
        let offered = count(&|s| s.state == MState::Offered && s.held(now));
        let bound = count(&|s| s.state == MState::Bound && s.held(now));
        let declined = count(&|s| s.probation(now));
        TableStats {
            addresses: self.addresses(),
            free: self.addresses() - offered - bound - declined,
            offered,
            bound,
            declined,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Offer {
        c: u32,
        subnets: u8,
        requested: Option<usize>,
        fixed: bool,
        hold: u32,
    },
    /// DORA's REQUEST: bind what the client was offered / holds.
    BindCurrent {
        c: u32,
        sn: u32,
        lease: u32,
    },
    Bind {
        c: u32,
        sn: u32,
        a: usize,
        lease: u32,
        fixed: bool,
    },
    Release {
        c: u32,
        a: Option<usize>,
    },
    Decline {
        c: u32,
        a: Option<usize>,
        probation: u32,
    },
    Advance(u64),
    Expire(usize),
    ExpireAll,
}

/// Short times mostly, sometimes past the timing wheel's horizon (shard::WHEEL = 4096 s).
fn secs() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 1u32..300, 1 => 3_000u32..12_000]
}

fn op() -> impl Strategy<Value = Op> {
    let n = universe().len();
    prop_oneof![
        5 => (0..CLIENTS, 0u8..3, proptest::option::of(0..n), proptest::bool::weighted(0.15), 1u32..60)
            .prop_map(|(c, subnets, requested, fixed, hold)| Op::Offer { c, subnets, requested, fixed, hold }),
        4 => (0..CLIENTS, 0u32..2, secs()).prop_map(|(c, sn, lease)| Op::BindCurrent { c, sn, lease }),
        2 => (0..CLIENTS, 0u32..2, 0..n, secs(), proptest::bool::weighted(0.2))
            .prop_map(|(c, sn, a, lease, fixed)| Op::Bind { c, sn, a, lease, fixed }),
        2 => (0..CLIENTS, proptest::option::weighted(0.3, 0..n)).prop_map(|(c, a)| Op::Release { c, a }),
        1 => (0..CLIENTS, proptest::option::weighted(0.3, 0..n), secs())
            .prop_map(|(c, a, probation)| Op::Decline { c, a, probation }),
        3 => prop_oneof![9 => 0u64..80, 1 => 1_000u64..5_000].prop_map(Op::Advance),
        2 => (0usize..6).prop_map(Op::Expire),
        1 => Just(Op::ExpireAll),
    ]
}

fn run(shards: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let t = LeaseTables::new(&cfg(), shards);
    let mut m = Model::new();
    let uni = universe();
    prop_assert_eq!(t.stats(), m.stats());
    for op in ops {
        let now = m.now;
        match *op {
            Op::Offer {
                c,
                subnets,
                requested,
                fixed,
                hold,
            } => {
                let sns: &[u32] = match subnets {
                    0 => &[0],
                    1 => &[1],
                    _ => &[0, 1],
                };
                let ids: Vec<SubnetId> = sns.iter().map(|&s| SubnetId(s)).collect();
                let requested = requested.map(|i| uni[i]);
                let fixed = if fixed { fixed_of(c) } else { None };
                let req = OfferRequest {
                    client: client(c),
                    subnets: &ids,
                    requested,
                    fixed,
                    hold,
                };
                let got = t.offer(&req, now);
                m.offer(c, sns, requested, fixed, hold, got)?;
            }
            Op::BindCurrent { c, sn, lease } => {
                if let Some(a) = m.current_of(c, sn) {
                    let addr = Ipv4Addr::from(a);
                    let fixed = fixed_of(c).is_some_and(|(_, f)| f == addr);
                    let req = BindRequest {
                        client: client(c),
                        subnet: SubnetId(sn),
                        addr,
                        lease,
                        fixed,
                    };
                    let got = t.bind(&req, now).map(|i| (i.addr, i.state, i.expires));
                    prop_assert_eq!(
                        got,
                        m.bind(c, sn, addr, lease, fixed),
                        "bind current {}",
                        addr
                    );
                }
            }
            Op::Bind {
                c,
                sn,
                a,
                lease,
                fixed,
            } => {
                let addr = uni[a];
                let req = BindRequest {
                    client: client(c),
                    subnet: SubnetId(sn),
                    addr,
                    lease,
                    fixed,
                };
                let got = t.bind(&req, now).map(|i| (i.addr, i.state, i.expires));
                prop_assert_eq!(got, m.bind(c, sn, addr, lease, fixed), "bind {}", addr);
            }
            Op::Release { c, a } => {
                let addr = a
                    .map(|i| uni[i])
                    .or_else(|| m.current_of(c, 0).map(Ipv4Addr::from));
                if let Some(addr) = addr {
                    let got = t.release(&client(c), addr, now).map(|i| i.state);
                    prop_assert_eq!(got, m.release(c, addr), "release {}", addr);
                }
            }
            Op::Decline { c, a, probation } => {
                let addr = a
                    .map(|i| uni[i])
                    .or_else(|| m.current_of(c, 1).map(Ipv4Addr::from));
                if let Some(addr) = addr {
                    let got = t
                        .decline(&client(c), addr, probation, now)
                        .map(|i| (i.addr, i.state, i.expires));
                    prop_assert_eq!(got, m.decline(c, addr, probation), "decline {}", addr);
                }
            }
            Op::Advance(dt) => m.now += dt,
            Op::Expire(budget) => {
                let done = t.expire(now, budget);
                prop_assert!(done <= budget, "expire did {done} > {budget}");
            }
            Op::ExpireAll => {
                t.expire(now, usize::MAX);
                prop_assert_eq!(t.stats(), m.stats(), "stats after a full sweep");
            }
        }
        check(&t, &m)?;
    }
    t.expire(m.now, usize::MAX);
    prop_assert_eq!(t.stats(), m.stats(), "final stats");
    Ok(())
}

/// The table agrees with the oracle on every address and every (client, subnet).
fn check(t: &LeaseTables, m: &Model) -> Result<(), TestCaseError> {
    let now = m.now;
    let mut held: HashMap<(u32, u32), Ipv4Addr> = HashMap::new();
    for (&a, s) in &m.slots {
        let addr = Ipv4Addr::from(a);
        let got = table_view(t.by_addr(addr), now);
        prop_assert_eq!(got, s.view(now), "by_addr({})", addr);
        if let View::Held(c, _, _) = got
            && let Some(prev) = held.insert((c, s.subnet), addr)
        {
            prop_assert!(
                false,
                "client {c} holds {prev} and {addr} in subnet {}",
                s.subnet
            );
        }
    }
    for c in 0..CLIENTS {
        for sn in 0..2 {
            let want = m
                .current_of(c, sn)
                .map_or(View::Free, |a| m.slots[&a].view(now));
            let got = table_view(t.by_client(&client(c), SubnetId(sn)), now);
            prop_assert_eq!(got, want, "by_client({}, {})", c, sn);
        }
    }
    let s = t.stats();
    prop_assert_eq!(
        s.free + s.offered + s.bound + s.declined,
        s.addresses,
        "{:?}",
        s
    );
    prop_assert_eq!(s.addresses, m.addresses());
    Ok(())
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=n for a longer campaign.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn tables_match_the_oracle(shards in 1usize..5, ops in proptest::collection::vec(op(), 1..160)) {
        run(shards, &ops)?;
    }
}
