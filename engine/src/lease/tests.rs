//! Unit tests: every transition and error of the lease tables, memory layout, the 99.9 %-full
//! pool, persistence round trip, and a multi-threaded no-double-allocation stress test.

use super::shard::{Index, Recycled, Timer};
use super::space::{Slot, SlotCell};
use super::store::{MemStore, replay};
use super::*;
use crate::config::{
    AddrRange, Durability, Ipv4Net, OptionSet, Reservation, ReservationKey, ServerConfig, Subnet,
    SubnetId,
};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

pub(crate) fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

pub(crate) fn subnet(id: u32, net: &str, prefix: u8, ranges: &[(&str, &str)]) -> Subnet {
    Subnet {
        id: SubnetId(id),
        network: Ipv4Net {
            addr: ip(net),
            prefix,
        },
        ranges: ranges
            .iter()
            .map(|&(a, b)| AddrRange {
                start: ip(a),
                end: ip(b),
            })
            .collect(),
        server_id: ip(net),
        ..Subnet::default()
    }
}

pub(super) fn reservation(mac: u8, addr: &str) -> Reservation {
    Reservation {
        key: ReservationKey::Mac([2, 0, 0, 0, 0, mac]),
        address: Some(ip(addr)),
        options: OptionSet::default(),
        filename: None,
        server_name: None,
        next_server: None,
    }
}

pub(crate) fn config(subnets: Vec<Subnet>) -> ServerConfig {
    ServerConfig {
        subnets,
        shared_networks: Vec::new(),
        authoritative: true,
        offer_hold: 30,
        decline_probation: 600,
        default_subnet: None,
        durability: Durability::None,
        state_dir: std::path::PathBuf::from("/nonexistent"),
    }
}

pub(crate) fn client(n: u32) -> ClientKey {
    let b = n.to_be_bytes();
    ClientKey::from_hw(1, &[2, 0, b[0], b[1], b[2], b[3]])
}

const S0: SubnetId = SubnetId(0);
const S1: SubnetId = SubnetId(1);
const T0: Secs = 1_000_000;

fn offer(t: &LeaseTables, c: u32, now: Secs) -> Result<LeaseInfo, LeaseError> {
    t.offer(
        &OfferRequest {
            client: client(c),
            subnets: &[S0],
            requested: None,
            fixed: None,
            hold: 30,
        },
        now,
    )
}

fn offer_req(t: &LeaseTables, c: u32, requested: &str, now: Secs) -> Result<LeaseInfo, LeaseError> {
    t.offer(
        &OfferRequest {
            client: client(c),
            subnets: &[S0],
            requested: Some(ip(requested)),
            fixed: None,
            hold: 30,
        },
        now,
    )
}

pub(crate) fn bind(
    t: &LeaseTables,
    c: u32,
    addr: Ipv4Addr,
    lease: u32,
    now: Secs,
) -> Result<LeaseInfo, LeaseError> {
    t.bind(
        &BindRequest {
            client: client(c),
            subnet: S0,
            addr,
            lease,
            fixed: false,
        },
        now,
    )
}

/// 10.0.0.0/24, range .0-.99, .10 excluded, .20 reserved (mac 1), .200 reserved outside
/// the range (mac 2).
fn small() -> ServerConfig {
    let mut s = subnet(0, "10.0.0.0", 24, &[("10.0.0.0", "10.0.0.99")]);
    s.excluded = vec![ip("10.0.0.10")];
    s.reservations = vec![reservation(1, "10.0.0.20"), reservation(2, "10.0.0.200")];
    config(vec![s])
}

/// One subnet with `n` dynamic addresses starting at 10.1.0.1.
fn pool(n: u32) -> ServerConfig {
    let start = u32::from(ip("10.1.0.1"));
    let end = Ipv4Addr::from(start + n - 1).to_string();
    config(vec![subnet(
        0,
        "10.0.0.0",
        8,
        &[("10.1.0.1", end.as_str())],
    )])
}

fn check_sum(t: &LeaseTables) {
    let s = t.stats();
    assert_eq!(
        s.free + s.offered + s.bound + s.declined,
        s.addresses,
        "{s:?}"
    );
}

#[test]
fn layout_fits_the_memory_budget() {
    use std::mem::size_of;
    assert_eq!(size_of::<ClientKey>(), 32);
    assert_eq!(size_of::<Slot>(), 52);
    // Lock + slot in exactly one cache line.
    assert_eq!(size_of::<SlotCell>(), 64);
    assert_eq!(std::mem::align_of::<SlotCell>(), 64);
    assert_eq!(size_of::<Timer>(), 12);
    assert_eq!(size_of::<Recycled>(), 8);
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LeaseTables>();
}

/// The one race of the lock-free pristine map, forced: an allocator has cleared a slot's bit
/// but not yet locked the slot, and a request for that very address takes it meanwhile (it sees
/// a free slot with a clear bit). The allocator must notice and move on to the next slot.
#[test]
fn pristine_allocation_yields_to_a_request_that_won_the_slot() {
    use super::space::{Space, lock, st};
    let space = Arc::new(Space::new(&pool(2)));
    let first = space.locate(ip("10.1.0.1")).expect("slot");
    let held = lock(space.cell(first));
    let allocator = {
        let space = Arc::clone(&space);
        std::thread::spawn(move || space.take_pristine(0).map(|(_, slot)| slot))
    };
    while space.pristine_map(0) & 1 != 0 {
        std::thread::yield_now();
    }
    // The allocator cleared bit 0 and now waits for the lock we hold: take the slot first.
    let mut held = held;
    held.state = st::BOUND;
    drop(held);
    let got = allocator.join().expect("allocator");
    assert_eq!(got, space.locate(ip("10.1.0.2")));
    assert_eq!(space.pristine_map(0), 0);
}

/// The index keeps a 32-bit tag of each client's hash: two clients of a shard whose tags
/// collide must both stay indexed (told apart by their slots).
#[test]
fn clients_with_colliding_index_tags_are_both_found() {
    let t = LeaseTables::new(&pool(64), 1);
    let mut seen: HashMap<u32, u32> = HashMap::new();
    let (a, b) = (0..u32::MAX)
        .find_map(|c| {
            seen.insert(t.index_tag(&client(c), 0), c)
                .map(|prev| (prev, c))
        })
        .expect("a 32-bit collision among at most 2^32 clients");
    let la = bind(&t, a, ip("10.1.0.1"), 100, T0).expect("bind a");
    let lb = bind(&t, b, ip("10.1.0.2"), 100, T0).expect("bind b");
    assert_eq!(t.indexed(), 2);
    assert_eq!(t.by_client(&client(a), SubnetId(0)), Some(la));
    assert_eq!(t.by_client(&client(b), SubnetId(0)), Some(lb));
    // Moving one of them leaves the other alone.
    bind(&t, a, ip("10.1.0.3"), 100, T0).expect("move a");
    assert_eq!(t.by_client(&client(b), SubnetId(0)), Some(lb));
    assert_eq!(
        t.by_client(&client(a), SubnetId(0)).map(|i| i.addr),
        Some(ip("10.1.0.3"))
    );
    assert_eq!(t.indexed(), 2);
}

#[test]
fn full_pool_costs_under_150_bytes_per_lease() {
    let t = LeaseTables::new(&pool(65_536), 4);
    for c in 0..65_536 {
        let o = offer(&t, c, T0).expect("free address");
        bind(&t, c, o.addr, 3600, T0).expect("bind");
    }
    let s = t.stats();
    assert_eq!((s.bound, s.free), (65_536, 0));
    let m = t.memory_estimate();
    assert_eq!(m.addresses, 65_536);
    assert_eq!(m.indexed_clients, 65_536);
    assert!(m.bytes_per_address <= 150.0, "{m:?}");
}

#[test]
fn never_hands_out_network_excluded_or_reserved_addresses() {
    let t = LeaseTables::new(&small(), 3);
    // 100 range addresses - network .0 - excluded .10 = 98 (incl. reserved .20) + fixed .200.
    assert_eq!(t.stats().addresses, 99);
    let mut got = HashSet::new();
    for c in 0..97 {
        let o = offer(&t, c, T0).expect("free address");
        assert!(got.insert(o.addr), "{} offered twice", o.addr);
        assert_eq!(o.state, LeaseState::Offered);
        assert_eq!(o.expires, T0 + 30);
    }
    for bad in ["10.0.0.0", "10.0.0.10", "10.0.0.20", "10.0.0.200"] {
        assert!(!got.contains(&ip(bad)), "{bad} was offered");
    }
    assert_eq!(offer(&t, 1000, T0), Err(LeaseError::PoolExhausted));
    let s = t.stats();
    assert_eq!((s.offered, s.free), (97, 2));
}

#[test]
fn offer_is_stable_for_the_same_client_and_extends_the_hold() {
    let t = LeaseTables::new(&small(), 2);
    let a = offer(&t, 1, T0).expect("offer");
    let b = offer(&t, 1, T0 + 10).expect("offer again");
    assert_eq!(a.addr, b.addr);
    assert_eq!(b.expires, T0 + 40);
    assert_eq!(t.by_client(&client(1), S0), Some(b));
    assert_eq!(t.by_addr(a.addr), Some(b));
    // A bound lease is returned as bound, not turned back into an offer.
    bind(&t, 1, a.addr, 3600, T0 + 11).expect("bind");
    let c = offer(&t, 1, T0 + 12).expect("offer while bound");
    assert_eq!(
        (c.addr, c.state, c.expires),
        (a.addr, LeaseState::Bound, T0 + 3611)
    );
    assert_eq!(t.stats().offered, 0);
}

#[test]
fn requested_address_is_used_only_when_free_and_in_the_pool() {
    let t = LeaseTables::new(&small(), 2);
    assert_eq!(
        offer_req(&t, 1, "10.0.0.50", T0).expect("offer").addr,
        ip("10.0.0.50")
    );
    // Taken by client 1: client 2 gets something else.
    let o = offer_req(&t, 2, "10.0.0.50", T0).expect("offer");
    assert_ne!(o.addr, ip("10.0.0.50"));
    for bad in [
        "10.0.0.10",
        "10.0.0.20",
        "10.0.0.200",
        "10.0.0.0",
        "192.168.1.1",
    ] {
        let o = offer_req(&t, 3, bad, T0).expect("offer");
        assert_ne!(o.addr, ip(bad));
    }
    // An existing lease beats the requested address.
    let o = offer_req(&t, 1, "10.0.0.60", T0).expect("offer");
    assert_eq!(o.addr, ip("10.0.0.50"));
}

#[test]
fn fixed_addresses_inside_and_outside_ranges() {
    let t = LeaseTables::new(&small(), 2);
    let fixed = |c: u32, a: &str| OfferRequest {
        client: client(c),
        subnets: &[S0],
        requested: None,
        fixed: Some((S0, ip(a))),
        hold: 30,
    };
    let o = t
        .offer(&fixed(1, "10.0.0.200"), T0)
        .expect("fixed offer outside range");
    assert_eq!((o.addr, o.state), (ip("10.0.0.200"), LeaseState::Offered));
    assert_eq!(
        t.by_addr(ip("10.0.0.200")).map(|i| i.client),
        Some(client(1))
    );
    assert_eq!(
        t.offer(&fixed(2, "10.0.0.200"), T0),
        Err(LeaseError::TakenByOther)
    );
    let b = BindRequest {
        client: client(1),
        subnet: S0,
        addr: ip("10.0.0.200"),
        lease: 60,
        fixed: true,
    };
    assert_eq!(t.bind(&b, T0).expect("bind fixed").state, LeaseState::Bound);
    // Without `fixed`, an address outside the ranges is not in the pool.
    assert_eq!(
        bind(&t, 3, ip("10.0.0.200"), 60, T0),
        Err(LeaseError::NotInPool)
    );
    // A reservation inside a range is refused to dynamic requests...
    assert_eq!(
        bind(&t, 3, ip("10.0.0.20"), 60, T0),
        Err(LeaseError::TakenByOther)
    );
    // ...and given to the fixed one.
    let o = t.offer(&fixed(4, "10.0.0.20"), T0).expect("fixed in range");
    assert_eq!(o.addr, ip("10.0.0.20"));
    assert_eq!(
        t.offer(&fixed(4, "10.0.0.201"), T0),
        Err(LeaseError::NotInPool)
    );
    assert_eq!(
        t.offer(
            &OfferRequest {
                fixed: Some((S1, ip("10.0.0.20"))),
                ..fixed(4, "10.0.0.20")
            },
            T0
        ),
        Err(LeaseError::NotInPool)
    );
    // The reservation wins over the client's earlier dynamic lease, which is released.
    let d = bind(&t, 5, ip("10.0.0.30"), 600, T0).expect("dynamic");
    let f = t.offer(&fixed(5, "10.0.0.201"), T0);
    assert_eq!(f, Err(LeaseError::NotInPool));
    let mut s = small();
    s.subnets[0].reservations.push(reservation(5, "10.0.0.210"));
    let t2 = LeaseTables::new(&s, 2);
    bind(&t2, 5, d.addr, 600, T0).expect("dynamic");
    t2.offer(&fixed(5, "10.0.0.210"), T0).expect("fixed");
    assert_eq!(
        t2.by_addr(d.addr).map(|i| i.state),
        Some(LeaseState::Released)
    );
    assert_eq!(
        t2.by_client(&client(5), S0).map(|i| i.addr),
        Some(ip("10.0.0.210"))
    );
    check_sum(&t);
    check_sum(&t2);
}

#[test]
fn bind_rules() {
    let t = LeaseTables::new(&small(), 3);
    let a = ip("10.0.0.40");
    // Free address.
    assert_eq!(
        bind(&t, 1, a, 100, T0).expect("free").state,
        LeaseState::Bound
    );
    // Bound to 1: others refused, 1 renews.
    assert_eq!(bind(&t, 2, a, 100, T0 + 1), Err(LeaseError::TakenByOther));
    assert_eq!(
        bind(&t, 1, a, 100, T0 + 50).expect("renew").expires,
        T0 + 150
    );
    // Offered to 3: others refused.
    let o = offer(&t, 3, T0).expect("offer");
    assert_eq!(bind(&t, 2, o.addr, 100, T0), Err(LeaseError::TakenByOther));
    assert_eq!(
        bind(&t, 3, o.addr, 100, T0).expect("own offer").state,
        LeaseState::Bound
    );
    // Past its expiry the address is free, even though expire() never ran.
    assert_eq!(
        bind(&t, 2, a, 100, T0 + 150).expect("expired lease").client,
        client(2)
    );
    assert_eq!(t.by_client(&client(1), S0), None);
    // Not in a range / wrong subnet / excluded / network address / unknown.
    for bad in ["10.0.0.150", "10.0.0.10", "10.0.0.0", "172.16.0.1"] {
        assert_eq!(
            bind(&t, 4, ip(bad), 100, T0),
            Err(LeaseError::NotInPool),
            "{bad}"
        );
    }
    let wrong = BindRequest {
        client: client(4),
        subnet: S1,
        addr: ip("10.0.0.41"),
        lease: 1,
        fixed: false,
    };
    assert_eq!(t.bind(&wrong, T0), Err(LeaseError::NotInPool));
    // Declined: in probation for everybody.
    bind(&t, 5, ip("10.0.0.42"), 100, T0).expect("bind");
    t.decline(&client(5), ip("10.0.0.42"), 600, T0)
        .expect("decline");
    assert_eq!(
        bind(&t, 5, ip("10.0.0.42"), 100, T0),
        Err(LeaseError::InProbation)
    );
    assert_eq!(
        bind(&t, 6, ip("10.0.0.42"), 100, T0 + 599),
        Err(LeaseError::InProbation)
    );
    assert_eq!(
        bind(&t, 6, ip("10.0.0.42"), 100, T0 + 600)
            .expect("after probation")
            .client,
        client(6)
    );
    check_sum(&t);
}

#[test]
fn binding_a_new_address_frees_the_previous_one_in_the_subnet() {
    let t = LeaseTables::new(&small(), 2);
    bind(&t, 1, ip("10.0.0.40"), 100, T0).expect("first");
    bind(&t, 1, ip("10.0.0.41"), 100, T0 + 1).expect("second");
    let old = t.by_addr(ip("10.0.0.40")).expect("remembered");
    assert_eq!((old.state, old.client), (LeaseState::Released, client(1)));
    assert_eq!(
        t.by_client(&client(1), S0).map(|i| i.addr),
        Some(ip("10.0.0.41"))
    );
    let s = t.stats();
    assert_eq!((s.bound, s.offered), (1, 0));
    // The freed address can go to someone else at once.
    assert_eq!(
        bind(&t, 2, ip("10.0.0.40"), 100, T0 + 2)
            .expect("free")
            .client,
        client(2)
    );
}

#[test]
fn release_rules_and_the_address_returns_to_its_client() {
    let t = LeaseTables::new(&small(), 2);
    let a = offer(&t, 1, T0).expect("offer").addr;
    bind(&t, 1, a, 100, T0).expect("bind");
    assert_eq!(t.release(&client(2), a, T0), Err(LeaseError::NoLease));
    assert_eq!(
        t.release(&client(1), ip("10.0.0.150"), T0),
        Err(LeaseError::NoLease)
    );
    assert_eq!(
        t.release(&client(1), ip("10.0.0.41"), T0),
        Err(LeaseError::NoLease)
    );
    let r = t.release(&client(1), a, T0 + 5).expect("release");
    assert_eq!((r.state, r.expires), (LeaseState::Released, T0 + 5));
    assert_eq!(t.stats().bound, 0);
    // Other clients get other addresses (never-used ones first)...
    for c in 10..20 {
        assert_ne!(offer(&t, c, T0 + 6).expect("offer").addr, a);
    }
    // ...and client 1 gets its address back.
    assert_eq!(
        t.by_client(&client(1), S0).map(|i| i.state),
        Some(LeaseState::Released)
    );
    assert_eq!(offer(&t, 1, T0 + 7).expect("offer").addr, a);
    // Releasing an offer works too.
    assert_eq!(
        t.release(&client(1), a, T0 + 8)
            .expect("release offer")
            .state,
        LeaseState::Released
    );
    check_sum(&t);
}

#[test]
fn declined_addresses_stay_out_for_the_probation() {
    // Four addresses: one declined, three offered, then exhaustion until probation ends.
    let t = LeaseTables::new(&pool(4), 2);
    let a = offer(&t, 1, T0).expect("offer").addr;
    assert_eq!(t.decline(&client(2), a, 100, T0), Err(LeaseError::NoLease));
    let d = t.decline(&client(1), a, 100, T0).expect("decline");
    assert_eq!((d.state, d.expires), (LeaseState::Declined, T0 + 100));
    assert_eq!(t.stats().declined, 1);
    assert_eq!(
        t.by_client(&client(1), SubnetId(0)).map(|i| i.state),
        Some(LeaseState::Declined)
    );
    // The decliner gets a different address; nobody gets the declined one.
    let mut got = HashMap::new();
    for c in 1..4 {
        let o = offer(&t, c, T0 + 1).expect("offer");
        assert_ne!(o.addr, a);
        bind(&t, c, o.addr, 1000, T0 + 1).expect("bind");
        got.insert(c, o.addr);
    }
    assert_eq!(offer(&t, 9, T0 + 99), Err(LeaseError::PoolExhausted));
    assert_eq!(bind(&t, 9, a, 10, T0 + 99), Err(LeaseError::InProbation));
    // Probation over: free again, and no longer the decliner's.
    assert_eq!(offer(&t, 9, T0 + 100).expect("after probation").addr, a);
    assert_eq!(
        t.by_client(&client(1), SubnetId(0)).map(|i| i.addr),
        Some(got[&1])
    );
    assert_eq!(
        t.decline(&client(1), a, 100, T0 + 100),
        Err(LeaseError::NoLease)
    );
    check_sum(&t);
}

#[test]
fn expire_respects_its_budget_and_updates_counts() {
    let t = LeaseTables::new(&pool(64), 3);
    for c in 0..10 {
        offer(&t, c, T0).expect("offer");
    }
    assert_eq!(t.stats().offered, 10);
    assert_eq!(t.expire(T0 + 29, 100), 0, "nothing due yet");
    assert_eq!(t.expire(T0 + 30, 3), 3);
    let mut total = 3;
    loop {
        let n = t.expire(T0 + 30, 3);
        assert!(n <= 3);
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 10);
    let s = t.stats();
    assert_eq!((s.offered, s.free), (0, 64));
    assert_eq!(
        t.by_client(&client(0), SubnetId(0)).map(|i| i.state),
        Some(LeaseState::Expired)
    );
}

#[test]
fn renewal_does_not_expire_early() {
    let t = LeaseTables::new(&pool(8), 1);
    let a = offer(&t, 1, T0).expect("offer").addr;
    bind(&t, 1, a, 100, T0).expect("bind");
    bind(&t, 1, a, 100, T0 + 90).expect("renew");
    t.expire(T0 + 150, 100);
    assert_eq!(t.by_addr(a).map(|i| i.state), Some(LeaseState::Bound));
    t.expire(T0 + 190, 100);
    assert_eq!(t.by_addr(a).map(|i| i.state), Some(LeaseState::Expired));
    assert_eq!(t.stats().bound, 0);
}

/// Timers beyond the wheel's horizon (they start in the heap), clock jumps over many empty
/// seconds, and an offer hold queued after a long lease (the wheel must not run late).
#[test]
fn long_leases_and_clock_jumps_expire_on_time() {
    let t = LeaseTables::new(&pool(4), 1);
    let a = offer(&t, 1, T0).expect("offer").addr;
    bind(&t, 1, a, 100_000, T0).expect("day-long lease");
    let b = offer(&t, 2, T0 + 5).expect("offer").addr;
    t.expire(T0 + 40, 100); // the hold of `b` ends, the lease of `a` does not
    assert_eq!(t.by_addr(b).map(|i| i.state), Some(LeaseState::Expired));
    assert_eq!(t.by_addr(a).map(|i| i.state), Some(LeaseState::Bound));
    t.expire(T0 + 99_999, 100);
    assert_eq!(t.by_addr(a).map(|i| i.state), Some(LeaseState::Bound));
    t.expire(T0 + 100_000, 100);
    assert_eq!(t.by_addr(a).map(|i| i.state), Some(LeaseState::Expired));
    // After a long idle jump, a short hold still ends on time.
    let c = offer(&t, 3, T0 + 1_000_000).expect("offer").addr;
    bind(&t, 3, c, 50_000, T0 + 1_000_000).expect("lease");
    let d = offer(&t, 4, T0 + 1_000_001).expect("offer").addr;
    assert_eq!(t.expire(T0 + 1_000_029, 100), 0);
    assert_eq!(
        t.expire(T0 + 1_000_031, 100),
        2,
        "both the hold of d and c's first timer"
    );
    assert_eq!(t.by_addr(d).map(|i| i.state), Some(LeaseState::Expired));
    assert_eq!(t.by_addr(c).map(|i| i.state), Some(LeaseState::Bound));
    assert_eq!(t.stats().bound, 1);
}

#[test]
fn lapsed_leases_are_reused_without_the_sweeper() {
    let t = LeaseTables::new(&pool(1), 4);
    let a = offer(&t, 1, T0).expect("offer").addr;
    bind(&t, 1, a, 100, T0).expect("bind");
    assert_eq!(offer(&t, 2, T0 + 99), Err(LeaseError::PoolExhausted));
    let o = offer(&t, 2, T0 + 100).expect("lapsed lease reused");
    assert_eq!((o.addr, o.client), (a, client(2)));
    assert_eq!(t.by_client(&client(1), SubnetId(0)), None);
    assert_eq!(t.by_addr(a).map(|i| i.client), Some(client(2)));
    check_sum(&t);
}

#[test]
fn freed_addresses_are_reused_oldest_first_after_never_used_ones() {
    // One shard makes the FIFO order fully observable.
    let t = LeaseTables::new(&pool(6), 1);
    let mut addr = HashMap::new();
    for c in 0..4 {
        let o = offer(&t, c, T0).expect("offer");
        bind(&t, c, o.addr, 1000, T0).expect("bind");
        addr.insert(c, o.addr);
    }
    t.release(&client(0), addr[&0], T0 + 10).expect("release");
    t.release(&client(1), addr[&1], T0 + 20).expect("release");
    // Two never-used addresses left: they go first.
    let n1 = offer(&t, 10, T0 + 30).expect("offer").addr;
    let n2 = offer(&t, 11, T0 + 30).expect("offer").addr;
    for n in [n1, n2] {
        assert!(!addr.values().any(|a| *a == n));
    }
    // Then the address free the longest (client 0's), not the just-freed one.
    assert_eq!(offer(&t, 12, T0 + 31).expect("offer").addr, addr[&0]);
    // Client 1 still gets its own back.
    assert_eq!(offer(&t, 1, T0 + 32).expect("offer").addr, addr[&1]);
    assert_eq!(offer(&t, 13, T0 + 33), Err(LeaseError::PoolExhausted));
    // Expiry behaves like release: the lease that expired first is reused first.
    let t = LeaseTables::new(&pool(3), 1);
    let a = offer(&t, 1, T0).expect("offer").addr;
    bind(&t, 1, a, 10, T0).expect("bind");
    let b = offer(&t, 2, T0).expect("offer").addr;
    bind(&t, 2, b, 20, T0).expect("bind");
    let c = offer(&t, 3, T0).expect("offer").addr;
    bind(&t, 3, c, 3000, T0).expect("bind");
    assert_eq!(offer(&t, 4, T0 + 25).expect("offer").addr, a);
    assert_eq!(offer(&t, 5, T0 + 25).expect("offer").addr, b);
}

#[test]
fn shared_network_falls_through_to_the_next_subnet() {
    let cfg = config(vec![
        subnet(0, "10.0.0.0", 24, &[("10.0.0.1", "10.0.0.2")]),
        subnet(1, "10.0.1.0", 24, &[("10.0.1.1", "10.0.1.9")]),
    ]);
    let t = LeaseTables::new(&cfg, 2);
    let req = |c| OfferRequest {
        client: client(c),
        subnets: &[S0, S1],
        requested: None,
        fixed: None,
        hold: 30,
    };
    let a = t.offer(&req(1), T0).expect("offer");
    let b = t.offer(&req(2), T0).expect("offer");
    let c = t.offer(&req(3), T0).expect("offer");
    assert_eq!((a.subnet, b.subnet, c.subnet), (S0, S0, S1));
    // The client's lease in the second subnet is found again.
    assert_eq!(t.offer(&req(3), T0 + 1).expect("again").addr, c.addr);
    assert_eq!(t.by_client(&client(3), S1).map(|i| i.addr), Some(c.addr));
    assert_eq!(t.by_client(&client(3), S0), None);
    // Unknown subnets are ignored, no candidates at all is exhaustion.
    let none = OfferRequest {
        subnets: &[SubnetId(7)],
        ..req(4)
    };
    assert_eq!(t.offer(&none, T0), Err(LeaseError::PoolExhausted));
}

#[test]
fn infinite_leases_never_expire() {
    let t = LeaseTables::new(&pool(2), 2);
    let a = offer(&t, 1, T0).expect("offer").addr;
    let l = bind(&t, 1, a, u32::MAX, T0).expect("bind");
    assert_eq!(l.expires, u64::from(u32::MAX));
    t.expire(Secs::from(u32::MAX) - 1, 1000);
    assert_eq!(
        bind(&t, 2, a, 10, Secs::from(u32::MAX) - 1),
        Err(LeaseError::TakenByOther)
    );
    assert!(l.is_active(Secs::from(u32::MAX) + 5));
}

#[test]
fn state_at_reads_a_stored_lease_at_a_time() {
    let mut i = LeaseInfo {
        addr: ip("10.0.0.1"),
        subnet: S0,
        client: client(1),
        state: LeaseState::Bound,
        expires: 100,
        version: 1,
    };
    assert_eq!(i.state_at(99), Some(LeaseState::Bound));
    assert_eq!(i.state_at(100), Some(LeaseState::Expired));
    i.state = LeaseState::Declined;
    assert_eq!(i.state_at(99), Some(LeaseState::Declined));
    assert_eq!(i.state_at(100), None);
    i.state = LeaseState::Released;
    assert_eq!(i.state_at(1000), Some(LeaseState::Released));
}

#[test]
fn blocks_are_claimed_per_shard_and_ceded_blocks_are_never_used() {
    let t = LeaseTables::new(&pool(1024), 4);
    assert_eq!(t.block_owner(ip("10.1.0.1")), Some(BlockOwner::Unclaimed));
    // Hand the last block to a remote node (multi-node seam).
    let last = ip("10.1.4.0"); // 10.1.0.1 + 1023
    assert!(t.cede_block(last, 7));
    assert_eq!(t.block_owner(last), Some(BlockOwner::Remote(7)));
    assert!(!t.cede_block(last, 8));
    let mut offered = HashSet::new();
    for c in 0..2000 {
        match offer(&t, c, T0) {
            Ok(o) => {
                // While the pool has unclaimed blocks, a client's address comes from a block of
                // its own shard.
                if c < 300 {
                    assert_eq!(
                        t.block_owner(o.addr),
                        Some(BlockOwner::Shard(t.shard_of(&client(c)) as u32))
                    );
                }
                assert!(offered.insert(o.addr));
            }
            Err(e) => assert_eq!(e, LeaseError::PoolExhausted),
        }
    }
    assert_eq!(offered.len(), 1024 - 64);
    assert!(!offered.contains(&last));
    assert!(
        !t.cede_block(ip("10.1.0.1"), 7),
        "claimed blocks cannot be ceded"
    );
    // A ceded block's addresses are not ours: requests for them are refused.
    assert_eq!(bind(&t, 5000, last, 10, T0), Err(LeaseError::TakenByOther));
}

#[test]
fn nearly_full_pool_still_allocates_its_last_addresses() {
    // 8192 addresses, 4 shards: fill to 99.9 % and beyond, from clients of every shard.
    const N: u32 = 8192;
    let t = LeaseTables::new(&pool(N), 4);
    let mut holder = HashMap::new();
    for c in 0..N - 8 {
        let o = offer(&t, c, T0).expect("offer");
        bind(&t, c, o.addr, 10_000, T0).expect("bind");
        holder.insert(c, o.addr);
    }
    for c in N..N + 8 {
        let o = offer(&t, c, T0).expect("one of the last free addresses");
        bind(&t, c, o.addr, 10_000, T0).expect("bind");
    }
    assert_eq!(offer(&t, 99_999, T0), Err(LeaseError::PoolExhausted));
    // Free 8 scattered addresses (their clients spread over the shards); new clients, whatever
    // their shard, must find them (own FIFO or stolen from another shard).
    for c in (0..N - 8).step_by(1000).take(8) {
        t.release(&client(c), holder[&c], T0 + 1).expect("release");
    }
    let mut got = HashSet::new();
    for c in 2 * N..2 * N + 8 {
        let o = offer(&t, c, T0 + 2).expect("freed address");
        assert!(got.insert(o.addr));
    }
    assert_eq!(offer(&t, 99_999, T0 + 2), Err(LeaseError::PoolExhausted));
    let s = t.stats();
    assert_eq!((s.free, s.bound + s.offered), (0, u64::from(N)));
}

#[test]
fn restore_rebuilds_the_tables_from_records() {
    let cfg = small();
    let t = LeaseTables::new(&cfg, 3);
    let mut store = MemStore::default();
    let mut log = |r: Result<LeaseInfo, LeaseError>| {
        let r = r.expect("operation");
        store.append(&[r]).expect("append");
    };
    for c in 0..20 {
        let o = offer(&t, c, T0).expect("offer");
        log(bind(&t, c, o.addr, 1000 + c, T0));
    }
    log(t.release(
        &client(3),
        t.by_client(&client(3), S0).expect("lease").addr,
        T0 + 1,
    ));
    log(t.decline(
        &client(4),
        t.by_client(&client(4), S0).expect("lease").addr,
        500,
        T0 + 1,
    ));
    log(bind(&t, 5, ip("10.0.0.90"), 1000, T0 + 2)); // moves client 5
    log(bind(&t, 6, ip("10.0.0.91"), 5, T0 + 2)); // moves client 6; short lease
    store.sync().expect("sync");
    assert_eq!(store.syncs, 1);

    let now = T0 + 10; // client 6's lease has lapsed by now
    let r = LeaseTables::new(&cfg, 2); // a different shard count is fine
    assert_eq!(replay(&r, &store.records, now), store.records.len());
    for c in 0..20 {
        let want = t
            .by_client(&client(c), S0)
            .map(|i| (i.addr, i.state_at(now)));
        let got = r
            .by_client(&client(c), S0)
            .map(|i| (i.addr, i.state_at(now)));
        assert_eq!(got, want, "client {c}");
    }
    for host in 0..=255u8 {
        let a = Ipv4Addr::new(10, 0, 0, host);
        let want = t
            .by_addr(a)
            .and_then(|i| i.state_at(now).map(|s| (i.client, s)));
        let got = r
            .by_addr(a)
            .and_then(|i| i.state_at(now).map(|s| (i.client, s)));
        assert_eq!(got, want, "{a}");
    }
    assert_eq!(
        r.by_addr(ip("10.0.0.91")).map(|i| i.state),
        Some(LeaseState::Expired)
    );
    t.expire(now, usize::MAX);
    assert_eq!(r.stats(), t.stats());
    // Records for addresses the configuration no longer has are refused.
    let mut gone = store.records[0];
    gone.addr = ip("192.0.2.1");
    assert_eq!(r.restore(gone, now), Err(LeaseError::NotInPool));
    assert!(NullStore.append(&store.records).is_ok());
}

/// Threads race offer / bind / release / decline / requested-address grabs over a small pool
/// through 4 shards. Each thread keeps a ledger of what it believes its clients hold; a global
/// owner table catches any address two clients hold at once.
#[test]
fn concurrent_clients_never_share_an_address() {
    use std::sync::atomic::{AtomicU64, Ordering};
    const THREADS: u32 = 4;
    const CLIENTS: u32 = 48; // per thread
    const N: u32 = 160; // fewer addresses than clients: exhaustion and contention
    let t = Arc::new(LeaseTables::new(&pool(N), 4));
    let base = u32::from(ip("10.1.0.1"));
    let owner: Arc<Vec<AtomicU64>> = Arc::new((0..N).map(|_| AtomicU64::new(0)).collect());
    let handles: Vec<_> = (0..THREADS)
        .map(|th| {
            let t = Arc::clone(&t);
            let owner = Arc::clone(&owner);
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(th);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut held: HashMap<u32, Ipv4Addr> = HashMap::new();
                let claim = |c: u32, a: Ipv4Addr| {
                    let i = (u32::from(a) - base) as usize;
                    let me = u64::from(c) + 1;
                    let prev =
                        owner[i].compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire);
                    assert!(
                        prev.is_ok() || prev == Err(me),
                        "{a} held by {prev:?} and {me}"
                    );
                };
                let unclaim = |c: u32, a: Ipv4Addr| {
                    let i = (u32::from(a) - base) as usize;
                    assert_eq!(owner[i].swap(0, Ordering::AcqRel), u64::from(c) + 1);
                };
                for _ in 0..20_000 {
                    let c = th * 1000 + (next() % u64::from(CLIENTS)) as u32;
                    match next() % 5 {
                        0 | 1 => {
                            let want = Ipv4Addr::from(base + (next() % u64::from(N)) as u32);
                            let req = OfferRequest {
                                client: client(c),
                                subnets: &[SubnetId(0)],
                                requested: Some(want),
                                fixed: None,
                                hold: u32::MAX,
                            };
                            if let Ok(o) = t.offer(&req, T0) {
                                if let Some(&old) = held.get(&c)
                                    && old != o.addr
                                {
                                    panic!("client {c} offered {} while holding {old}", o.addr);
                                }
                                claim(c, o.addr);
                                held.insert(c, o.addr);
                            }
                        }
                        2 => {
                            if let Some(&a) = held.get(&c) {
                                bind(&t, c, a, u32::MAX, T0).expect("bind own offer");
                            } else {
                                let a = Ipv4Addr::from(base + (next() % u64::from(N)) as u32);
                                if bind(&t, c, a, u32::MAX, T0).is_ok() {
                                    claim(c, a);
                                    held.insert(c, a);
                                }
                            }
                        }
                        3 => {
                            if let Some(a) = held.remove(&c) {
                                unclaim(c, a);
                                t.release(&client(c), a, T0).expect("release own");
                            }
                        }
                        _ => {
                            if let Some(a) = held.remove(&c) {
                                if next() % 8 == 0 {
                                    unclaim(c, a);
                                    t.decline(&client(c), a, 0, T0).expect("decline own");
                                } else {
                                    held.insert(c, a);
                                }
                            }
                        }
                    }
                    if let Some(&a) = held.get(&c) {
                        assert_eq!(t.by_addr(a).map(|i| i.client), Some(client(c)));
                    }
                }
                held
            })
        })
        .collect();
    let mut all = HashMap::new();
    for h in handles {
        for (c, a) in h.join().expect("thread") {
            assert!(all.insert(a, c).is_none(), "{a} held twice");
        }
    }
    for (a, c) in &all {
        let i = t.by_addr(*a).expect("held");
        assert_eq!(i.client, client(*c));
        assert!(i.is_active(T0));
    }
    let s = t.stats();
    assert_eq!(s.offered + s.bound, all.len() as u64);
    check_sum(&t);
}

mod index {
    use super::Index;
    use proptest::prelude::*;

    /// Tags that share home buckets and sit at both ends of the table (clusters wrap around).
    const TAGS: [u32; 6] = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

    proptest! {
        #[test]
        fn index_matches_a_multiset(ops in proptest::collection::vec((any::<bool>(), 0..TAGS.len(), 0u32..40), 1..400)) {
            let mut ix = Index::with_capacity(0);
            let mut model: Vec<(u32, u32)> = Vec::new();
            for (insert, t, slot) in ops {
                let tag = TAGS[t];
                let h = (u64::from(tag) << 32) | u64::from(slot); // low half is ignored
                if insert && !model.contains(&(tag, slot)) {
                    ix.insert_hash(h, slot);
                    model.push((tag, slot));
                } else if !insert {
                    ix.remove(h, slot);
                    model.retain(|&e| e != (tag, slot));
                }
                prop_assert_eq!(ix.len(), model.len());
                for &tag in &TAGS {
                    let mut want: Vec<u32> =
                        model.iter().filter(|e| e.0 == tag).map(|e| e.1).collect();
                    let (got, n) = ix.candidates_of(u64::from(tag) << 32);
                    let mut got = got[..n].to_vec();
                    got.sort_unstable();
                    want.sort_unstable();
                    want.truncate(4.min(want.len()));
                    if want.len() < 4 {
                        prop_assert_eq!(got, want, "tag {:#x}", tag);
                    } else {
                        prop_assert_eq!(got.len(), 4);
                    }
                }
            }
        }
    }

    #[test]
    fn index_grows_and_keeps_everything() {
        let mut ix = Index::with_capacity(0);
        let start = ix.buckets();
        let h = |i: u32| u64::from(i.wrapping_mul(0x9e37_79b9)) << 32;
        for i in 0..10_000 {
            ix.insert_hash(h(i), i);
        }
        assert!(ix.buckets() > start);
        assert!(ix.len() * 10 <= ix.buckets() * 7);
        for i in 0..10_000 {
            let (c, n) = ix.candidates_of(h(i));
            assert!(c[..n].contains(&i), "{i}");
        }
        for i in (0..10_000).step_by(2) {
            ix.remove(h(i), i);
        }
        for i in 0..10_000 {
            let (c, n) = ix.candidates_of(h(i));
            assert_eq!(c[..n].contains(&i), i % 2 == 1, "{i}");
        }
    }
}
