//! [`LeaseTables`]: the operations of the contract in `mod.rs`, over the address space
//! (`space.rs`) and the shards (`shard.rs`).
//!
//! # Ownership and locking (why this cannot deadlock or double-allocate)
//!
//! * A client belongs to shard `hash64(client) % shards`. Every operation for a client runs
//!   under that shard's lock (one exception below); the shard holds the client's index
//!   entries, its timers and the FIFO of addresses its clients freed.
//! * Every address has one slot, a cache line with its own lock. The slot is the single
//!   source of truth for "who holds this address": an index entry is only a hint that is
//!   confirmed against the slot.
//! * A slot that is offered, bound or declined (and not past its expiry) is changed only under
//!   its client's shard lock. A free slot (never used, expired, released, out of probation, or
//!   past its expiry) may be taken by any shard, under the slot lock. Both rules meet in the
//!   slot lock, so two clients can never both get an address: whoever locks the slot second
//!   sees it held. Never-used slots are first claimed in their block's atomic bitmap (CAS),
//!   then locked and re-checked (see `Space::take_pristine`).
//! * The exception: the client's own REQUEST binds its held offer or lease under the slot
//!   lock alone when the new expiry is not earlier (`LeaseTables::rebind`, the usual REQUEST).
//!   That change needs nothing the shard lock protects: the client stays indexed on the slot,
//!   its live timer is kept (it re-queues itself when it fires, as for any renewal), and the
//!   offered-to-bound move is counted in an atomic beside the shard. Every operation under the
//!   shard lock reads and changes a slot within one hold of the slot lock, so it sees the slot
//!   before or after such a bind, never halfway; the slot stays the client's held lease either
//!   way, so no decision made under the shard lock changes.
//! * Lock order: shard locks first (one, or two in ascending index order when a shard steals
//!   freed addresses from another), then at most one slot lock at a time, then leaf locks
//!   (a shard's mailbox) that are never held while taking another lock. Index cleanups aimed at
//!   a shard whose lock we do not hold go through its mailbox instead of a lock.
//!
//! The locks are dashmap's word lock (`dashmap::RwLock`, used only exclusively; see
//! `space::Lock`): the per-shard and per-slot locks are uncontended in the intended
//! deployment (the XDP program steers a client to one worker, and each shard allocates from
//! its own blocks), where it costs one compare-and-swap each way; under contention it spins
//! briefly, then parks the thread (`parking_lot_core`) instead of burning a core that the
//! worker needs. Not std's `Mutex`, which costs the same atomics plus a poisoning check of the
//! process's panic count on every lock and unlock, for a state we ignore anyway (see
//! `space::lock`): with it a lease cost ~50 instructions more in the tables (offer + bind,
//! callgrind, `pipeline/dora/direct`: the checks, and a guard twice the size to pass around).
//! Spin locks would need `unsafe` cells (forbidden outside `xsk`). dashmap's map itself is not
//! used: it would add a second, global hash of clients for what the slot array already is.
//!
//! # Cost per operation
//!
//! A new client's offer + bind touches: its shard (cache-hot on its worker), one word of the
//! shard's index filter (the client is absent, so the bucket array is not read), one slot (one
//! miss; never-used slots are taken in address order, so mostly hot), and the insertion of its
//! index entry, batched with other new clients' so the bucket misses overlap (`shard.rs`). The
//! REQUEST that follows finds its slot by address and, when the slot is already the client's
//! offered lease, touches neither the index nor the shard (see the exception above). When a
//! freed address is reused, the previous holder's index bucket is touched too. Timers for
//! offer holds are appended to a wheel bucket. Nothing scans. A worker prefetches the filter word, and for a client that may be known its
//! home bucket and the slot of the address it names, for a whole batch before deciding
//! ([`LeaseTables::prefetch`], [`LookupHint`], [`LeaseTables::prefetch_addr`]).

use super::shard::{BucketsAt, Filter, Index, Probe, Shard, recycled_valid};
use super::space::{
    self, BLOCK_BITS, BlockOwner, Guard, Lock, NEVER, Slot, Space, deadline, fl, lock, passed,
    split, st, stamp,
};
use super::{
    BindRequest, ClientKey, LeaseError, LeaseInfo, LeaseState, OfferRequest, Secs, TableStats,
};
use crate::config::{ServerConfig, SubnetId};
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Drain a shard's mailbox during an operation once it holds this many entries.
const MAILBOX_DRAIN: usize = 1024;

/// One shard's lock and mailbox, padded so that neighbouring shards' locks do not share a
/// cache line.
#[repr(align(128))]
struct ShardCell {
    state: Lock<Shard>,
    /// The index filter of `state`, readable without the lock ([`LeaseTables::prefetch`]).
    filter: Filter,
    /// Where the index buckets of `state` are ([`LeaseTables::prefetch`]).
    buckets: Arc<BucketsAt>,
    /// Index entries (keyed hash, slot) other shards found stale: "re-check and drop".
    mailbox: Lock<Vec<(u64, u32)>>,
    mailbox_len: AtomicUsize,
    /// Offers of this shard's clients that their REQUEST bound without the shard lock
    /// ([`LeaseTables::rebind`]): moved from `offered` to `bound` in the counts of `state`.
    offers_bound: AtomicI64,
}

/// The lease tables: see the module docs of `lease` for the contract.
pub struct LeaseTables {
    space: Space,
    shards: Box<[ShardCell]>,
    /// Per-process random keys of the index hash.
    seed: [u64; 2],
    sweep_cursor: AtomicUsize,
}

/// Shard locks held by one operation: the client's shard, and at most one more.
struct Ctx<'a> {
    s: usize,
    /// `shards[s]`.
    cell: &'a ShardCell,
    /// The operation's time (0 when it has none: lookups never queue timers).
    now: Secs,
    me: Guard<'a, Shard>,
    other: Option<(usize, Guard<'a, Shard>)>,
}

type Taken<'a> = (Guard<'a, Slot>, u32);

/// A client lookup to come ([`LeaseTables::prefetch`]).
#[derive(Clone, Copy)]
pub struct LookupHint<'a> {
    cell: &'a ShardCell,
    /// The client's index hash and filter word and bits (computed once, in
    /// [`LeaseTables::prefetch`]).
    probe: Probe<'a>,
}

impl core::fmt::Debug for LookupHint<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LookupHint")
            .field("h", &self.probe.h)
            .finish()
    }
}

impl LookupHint<'_> {
    /// Second step, once the filter word has had time to arrive: prefetch the client's home
    /// bucket of the index if the filter says the client may be there (a client that holds
    /// or held a lease; for a new one the bucket is not read, and fetching it would only
    /// take memory bandwidth).
    pub fn prefetch_bucket(&self) {
        if self.probe.may_be_present() {
            self.cell.buckets.prefetch(self.probe.h);
        }
    }
}

/// What [`LeaseTables::reoffer`] found.
enum Reoffer {
    /// The client's lease, offered again.
    Offered(LeaseInfo),
    /// The client has no lease in the subnet.
    Absent,
    /// It has one that cannot be offered (declined, or a reservation's).
    Refused,
}

/// Memory use of the tables, for benchmarks and capacity planning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// Bytes held by slots, blocks, maps, indexes, timers and FIFOs.
    pub total_bytes: usize,
    /// Leasable addresses (each has a preallocated slot).
    pub addresses: u64,
    /// Entries in the client indexes.
    pub indexed_clients: u64,
    /// `total_bytes / addresses`: the cost of one lease when the pool is full.
    pub bytes_per_address: f64,
}

/// The reported state of a stored one: a table indexed by the state's number (stored states
/// are 0..=5), one load where a `match` cost a chain of compares (twice per lease, in `info`).
fn lease_state(s: u8) -> LeaseState {
    // RELEASED, and FREE (FREE slots are never reported).
    const BY_STATE: [LeaseState; 8] = {
        let mut t = [LeaseState::Released; 8];
        t[st::OFFERED as usize] = LeaseState::Offered;
        t[st::BOUND as usize] = LeaseState::Bound;
        t[st::EXPIRED as usize] = LeaseState::Expired;
        t[st::DECLINED as usize] = LeaseState::Declined;
        t
    };
    BY_STATE[usize::from(s & 7)]
}

/// A slot's new state and expiry: a change a journal record describes, so the version moves
/// on. Returns the previous state.
#[inline(always)]
fn restamp(m: &mut Slot, state: u8, expires: u32) -> u8 {
    let from = m.state;
    m.version = m.version.wrapping_add(1);
    m.state = state;
    m.expires = expires;
    from
}

/// Whether `req` may bind the slot at all: an address of its subnet that is not blocked, and a
/// reservation's address outside the ranges only for its host (`req.fixed`).
fn bindable(sl: &Slot, req: &BindRequest) -> bool {
    sl.subnet == req.subnet.0
        && sl.flags & fl::BLOCKED == 0
        && (sl.flags & fl::FIXED_ONLY == 0 || req.fixed)
}

impl LeaseTables {
    /// Build empty tables for every dynamic range and fixed reservation of `cfg`, with `shards`
    /// shards (0 is taken as 1).
    ///
    /// Ranges that overlap an earlier range (the validator rejects those) or would take the
    /// table past [`super::MAX_SLOTS`] addresses are left out; [`Self::skipped_ranges`] counts
    /// them.
    pub fn new(cfg: &ServerConfig, shards: usize) -> LeaseTables {
        let n = shards.max(1);
        let space = Space::new(cfg);
        let subnets = space.pools.len();
        // Preallocate index and heap for an even share of a full pool (+25 %), so that the
        // hot path does not rehash.
        let share = (space.addresses as usize).div_ceil(n);
        let expected = share + share / 4;
        let shards: Box<[ShardCell]> = (0..n)
            .map(|_| {
                let shard = Shard::new(subnets, expected);
                ShardCell {
                    filter: shard.index.filter().clone(),
                    buckets: Arc::clone(shard.index.located()),
                    state: Lock::new(shard),
                    mailbox: Lock::new(Vec::new()),
                    mailbox_len: AtomicUsize::new(0),
                    offers_bound: AtomicI64::new(0),
                }
            })
            .collect();
        lock(&shards[0].state)
            .counts
            .set_free(space.addresses as i64);
        LeaseTables {
            space,
            shards,
            seed: {
                // std's RandomState draws its keys from the OS once per process.
                let r = std::collections::hash_map::RandomState::new();
                [r.hash_one(0x5eed_u64), r.hash_one(0xcafe_u64)]
            },
            sweep_cursor: AtomicUsize::new(0),
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The shard that owns `client`: `client.hash64() % shards`. The datapath steers a client
    /// to the worker of this shard so that shard locks stay uncontended. Inlined for the one
    /// shard case; the hash is a call.
    #[inline]
    pub fn shard_of(&self, client: &ClientKey) -> usize {
        match self.shards.len() {
            // One shard (a single worker): nothing to hash.
            1 => 0,
            n => Self::shard_by_hash(client, n),
        }
    }

    #[inline(never)]
    fn shard_by_hash(client: &ClientKey, n: usize) -> usize {
        (client.hash64() % n as u64) as usize
    }

    /// Ranges of the configuration that were left out (see [`Self::new`]).
    pub fn skipped_ranges(&self) -> usize {
        self.space.skipped_ranges
    }

    /// The lease of `client` in `subnet`, in any state, as stored: an offer or lease whose
    /// `expires` has passed is still reported as offered / bound until the sweeper or another
    /// operation handles it; use [`LeaseInfo::state_at`] to read it at a given time.
    pub fn by_client(&self, client: &ClientKey, subnet: SubnetId) -> Option<LeaseInfo> {
        let sn = space::pool_index(&self.space, subnet)?;
        let mut ctx = self.lock_one(self.shard_of(client), 0);
        let (g, _) = self.lookup(&mut ctx, client, sn)?;
        Some(self.info(&g))
    }

    /// A hint that `client` is about to be looked up in `subnet`: prefetch the first thing
    /// the lookup reads, the client's word of its shard's index filter, without any lock, and
    /// return the hint for the second step ([`LookupHint::prefetch_bucket`]). A worker gives
    /// the hints of a whole received batch before deciding on the first, so the batch's cache
    /// misses overlap (see `shard.rs`, "WHY the filter is shared atomics", and `crate::cpu`).
    /// Changes nothing. `None` for a subnet the tables do not know.
    pub fn prefetch(&self, client: &ClientKey, subnet: SubnetId) -> Option<LookupHint<'_>> {
        let sn = space::pool_index(&self.space, subnet)?;
        let cell = &self.shards[self.shard_of(client)];
        let probe = cell.filter.probe(self.idx_hash(client, sn));
        crate::cpu::prefetch(probe.word());
        Some(LookupHint { cell, probe })
    }

    /// A hint that `addr` is about to be looked at (a request names it): prefetch its slot.
    /// Changes nothing.
    pub fn prefetch_addr(&self, addr: Ipv4Addr) {
        if let Some(slot) = self.space.locate(addr) {
            crate::cpu::prefetch(self.space.cell(slot));
        }
    }

    /// Who holds or last held `addr` (stored state, see [`Self::by_client`]); `None` for an
    /// address nobody holds or remembers, or that the tables do not know.
    pub fn by_addr(&self, addr: Ipv4Addr) -> Option<LeaseInfo> {
        let slot = self.space.locate(addr)?;
        let g = lock(self.space.cell(slot));
        let sl = &g;
        (sl.state != st::FREE).then(|| self.info(sl))
    }

    /// Choose an address to offer and hold it for `req.hold` seconds.
    ///
    /// Order (RFC 2131 §4.3.1): the reservation's fixed address; else the client's current or
    /// previous address in a candidate subnet (unless it declined it); else the requested
    /// address (option 50) if it is free in a candidate pool; else a never-used address, else
    /// the address that has been free the longest. A client keeps a bound lease as is (the
    /// answer says `Bound`).
    ///
    /// # Errors
    /// `PoolExhausted` when no candidate subnet has a free address; for a fixed address,
    /// `NotInPool` (unknown address or wrong subnet), `TakenByOther`, `InProbation`.
    pub fn offer(&self, req: &OfferRequest<'_>, now: Secs) -> Result<LeaseInfo, LeaseError> {
        let s = self.shard_of(&req.client);
        // The usual case: the first candidate subnet has a free address in the client's own
        // shard (or the client has a lease to offer again).
        match self.offer_from(s, 0, req, 0, now) {
            Err(LeaseError::PoolExhausted) => self.offer_further(s, req, now),
            r => r,
        }
    }

    /// The rest of [`Self::offer`] once the client's shard had nothing in the first candidate
    /// subnet. Subnets in preference order; each is exhausted (the shard's own resources,
    /// then freed addresses of the other shards) before the next is tried.
    #[inline(never)]
    fn offer_further(
        &self,
        s: usize,
        req: &OfferRequest<'_>,
        now: Secs,
    ) -> Result<LeaseInfo, LeaseError> {
        for i in 0..req.subnets.len().max(1) {
            // The own shard (k = 0, already tried for the first subnet), then the others.
            for k in usize::from(i == 0)..self.shards.len() {
                match self.offer_from(s, k, req, i, now) {
                    Err(LeaseError::PoolExhausted) => {}
                    r => return r,
                }
            }
        }
        Err(LeaseError::PoolExhausted)
    }

    /// One attempt of [`Self::offer`] in the `i`-th candidate subnet: with the client's shard
    /// `s` alone (`k == 0`), else also holding shard `s + k` to take its freed addresses (both
    /// locks acquired in index order). `PoolExhausted`: nothing free there (see
    /// [`Self::offer_in`]).
    fn offer_from(
        &self,
        s: usize,
        k: usize,
        req: &OfferRequest<'_>,
        i: usize,
        now: Secs,
    ) -> Result<LeaseInfo, LeaseError> {
        let mut ctx = if k == 0 {
            self.lock_one(s, now)
        } else {
            self.lock_pair(s, (s + k) % self.shards.len(), now)
        };
        let r = self.offer_in(&mut ctx, req, i, now);
        self.tidy(&mut ctx);
        r
    }

    /// Bind `req.addr` to the client for `req.lease` seconds (REQUEST -> ACK). A different
    /// lease the client held in the same subnet is released.
    ///
    /// # Errors
    /// `NotInPool` (not in a range of the subnet, unless it is a fixed reservation and
    /// `req.fixed`), `TakenByOther` (offered or bound to another client, or reserved),
    /// `InProbation` (declined).
    pub fn bind(&self, req: &BindRequest, now: Secs) -> Result<LeaseInfo, LeaseError> {
        let slot = self.space.locate(req.addr).ok_or(LeaseError::NotInPool)?;
        let until = deadline(now, req.lease);
        if let Some(info) = self.rebind(req, slot, until, now) {
            return Ok(info);
        }
        let mut ctx = self.lock_one(self.shard_of(&req.client), now);
        let r = self.bind_in(&mut ctx, req, slot, until, now);
        self.tidy(&mut ctx);
        r
    }

    /// The client gives `addr` back (RFC 2131 §4.3.4). The address stays remembered for it.
    ///
    /// # Errors
    /// `NoLease` unless the client is the address's current or last holder (and it is not in
    /// probation).
    pub fn release(
        &self,
        client: &ClientKey,
        addr: Ipv4Addr,
        now: Secs,
    ) -> Result<LeaseInfo, LeaseError> {
        let slot = self.space.locate(addr).ok_or(LeaseError::NoLease)?;
        let mut ctx = self.lock_one(self.shard_of(client), now);
        let r = {
            let mut g = lock(self.space.cell(slot));
            let sl = *g;
            if sl.client != *client
                || !matches!(
                    sl.state,
                    st::OFFERED | st::BOUND | st::EXPIRED | st::RELEASED
                )
            {
                Err(LeaseError::NoLease)
            } else {
                if matches!(sl.state, st::OFFERED | st::BOUND) {
                    let t = stamp(now);
                    g.expires = t;
                    ctx.me.counts.moved(sl.state, st::RELEASED);
                    if sl.is_dynamic() {
                        ctx.me.recycle(sl.subnet, slot, t);
                    }
                }
                g.state = st::RELEASED;
                g.version = g.version.wrapping_add(1);
                Ok(self.info(&g))
            }
        };
        self.tidy(&mut ctx);
        r
    }

    /// The client reports `addr` in use by someone else (RFC 2131 §4.3.3): the address leaves
    /// the pool for `probation` seconds and is never offered meanwhile; afterwards it is free
    /// and no longer remembered for this client.
    ///
    /// # Errors
    /// `NoLease` unless the client is the address's current or last holder.
    pub fn decline(
        &self,
        client: &ClientKey,
        addr: Ipv4Addr,
        probation: u32,
        now: Secs,
    ) -> Result<LeaseInfo, LeaseError> {
        let slot = self.space.locate(addr).ok_or(LeaseError::NoLease)?;
        let mut ctx = self.lock_one(self.shard_of(client), now);
        let r = {
            let mut g = lock(self.space.cell(slot));
            let sl = *g;
            let lapsed_probation = sl.state == st::DECLINED && !sl.in_probation(now);
            if sl.client != *client
                || lapsed_probation
                || !matches!(
                    sl.state,
                    st::OFFERED | st::BOUND | st::EXPIRED | st::RELEASED | st::DECLINED
                )
            {
                Err(LeaseError::NoLease)
            } else {
                self.assign(
                    &mut ctx,
                    &mut g,
                    slot,
                    client,
                    st::DECLINED,
                    deadline(now, probation),
                );
                Ok(self.info(&g))
            }
        };
        self.tidy(&mut ctx);
        r
    }

    /// Run due expiry timers (offer holds, leases, probations), at most `budget` units of work
    /// (one unit = one timer or one mailbox entry), starting at a different shard each call.
    /// Returns the work done. Correctness never depends on this running: every operation treats
    /// a passed `expires` as expired; this only moves freed addresses into the FIFOs early and
    /// keeps the stored counts current.
    pub fn expire(&self, now: Secs, budget: usize) -> usize {
        let n = self.shards.len();
        let start = self.sweep_cursor.fetch_add(1, Ordering::Relaxed) % n;
        let mut done = 0;
        for k in 0..n {
            if done >= budget {
                break;
            }
            let s = (start + k) % n;
            let mut ctx = self.lock_one(s, now);
            done += self.drain_mailbox(s, &mut ctx.me, budget - done);
            done += self.sweep(s, &mut ctx.me, now, budget - done, None);
            // Compaction is O(heap); only when the rest of the budget pays for it.
            let rest = budget.saturating_sub(done);
            if ctx.me.timers_oversized() && rest >= ctx.me.timers.len() {
                done += ctx.me.timers.len();
                ctx.me.compact_timers(&self.space);
            }
        }
        done
    }

    /// Counts by stored state (see [`Self::by_client`]); `free + offered + bound + declined ==
    /// addresses` whenever no operation is in flight.
    pub fn stats(&self) -> TableStats {
        let mut free = 0i64;
        let (mut offered, mut bound, mut declined) = (0i64, 0i64, 0i64);
        for cell in self.shards.iter() {
            let c = lock(&cell.state).counts;
            let rebound = cell.offers_bound.load(Ordering::Relaxed);
            free += c.free();
            offered += c.offered() - rebound;
            bound += c.bound() + rebound;
            declined += c.declined();
        }
        TableStats {
            addresses: self.space.addresses,
            free: free.max(0) as u64,
            offered: offered.max(0) as u64,
            bound: bound.max(0) as u64,
            declined: declined.max(0) as u64,
        }
    }

    /// Rebuild one lease from a persisted record at start-up (persistence seam: replay the
    /// journal's records in order; a later record for an address replaces an earlier one).
    /// An offer or lease whose time has passed comes back as expired (free, remembered for its
    /// client); a probation that has passed comes back as a free address.
    ///
    /// Records carry the address's change counter ([`LeaseInfo::version`]): a record older
    /// than what the slot already holds is skipped (`Superseded`), so records may be replayed in
    /// any order per address — workers' records reach the journal interleaved, and a snapshot may
    /// be newer than the journal records after it. Version 0 (imports) always applies.
    ///
    /// # Errors
    /// `NotInPool` when the current configuration has no such address in that subnet (the
    /// record is dropped); `Superseded` (see above).
    pub fn restore(&self, rec: LeaseInfo, now: Secs) -> Result<(), LeaseError> {
        let slot = self.space.locate(rec.addr).ok_or(LeaseError::NotInPool)?;
        let sn = self.space.subnet_of(slot);
        if sn != rec.subnet.0 {
            return Err(LeaseError::NotInPool);
        }
        let key = &rec.client;
        let exp = rec.expires.min(u64::from(NEVER)) as u32;
        let lapsed = passed(exp, now);
        let state = match rec.state {
            LeaseState::Offered if lapsed => st::EXPIRED,
            LeaseState::Offered => st::OFFERED,
            LeaseState::Bound if lapsed => st::EXPIRED,
            LeaseState::Bound => st::BOUND,
            LeaseState::Declined if lapsed => st::FREE,
            LeaseState::Declined => st::DECLINED,
            LeaseState::Expired => st::EXPIRED,
            LeaseState::Released => st::RELEASED,
        };
        let mut ctx = self.lock_one(self.shard_of(key), now);
        {
            let mut g = lock(self.space.cell(slot));
            let sl = *g;
            if sl.flags & fl::BLOCKED != 0 {
                return Err(LeaseError::NotInPool);
            }
            if rec.version != 0 && rec.version <= sl.version {
                return Err(LeaseError::Superseded);
            }
            self.space.force_unpristine(slot);
            if matches!(state, st::OFFERED | st::BOUND | st::DECLINED) {
                self.assign(&mut ctx, &mut g, slot, key, state, exp);
            } else {
                if sl.state != st::FREE && sl.client != *key {
                    self.forget(&mut ctx, &sl.client, sn, slot);
                }
                let m = &mut *g;
                m.generation = m.generation.wrapping_add(1);
                m.client = *key;
                m.state = state;
                m.expires = exp;
                ctx.me.counts.moved(sl.state, state);
                if sl.is_dynamic() {
                    ctx.me.recycle(sn, slot, exp);
                }
            }
            if rec.version != 0 {
                g.version = rec.version;
            }
        }
        if state == st::FREE {
            let h = self.idx_hash(key, sn);
            ctx.me.index_remove(h, slot);
        } else if matches!(rec.state, LeaseState::Offered | LeaseState::Bound) {
            // The client's newest lease when the record was written (one per subnet).
            self.index_as_current(&mut ctx, key, sn, slot, now);
        } else {
            // Released / expired / declined records may concern an older address: never
            // displace a lease the client holds in the subnet.
            let holds_other = self
                .lookup(&mut ctx, key, sn)
                .is_some_and(|(g, s)| s != slot && g.is_held(now));
            if !holds_other {
                self.index_as_current(&mut ctx, key, sn, slot, now);
            }
        }
        self.tidy(&mut ctx);
        Ok(())
    }

    /// The subnet whose ranges (or reservations) hold `addr` in the current configuration;
    /// `None` when the tables have no slot for it (imports and restores skip such records).
    pub fn subnet_of(&self, addr: Ipv4Addr) -> Option<SubnetId> {
        let slot = self.space.locate(addr)?;
        Some(SubnetId(self.space.subnet_of(slot)))
    }

    /// Number of slot positions, the bound of [`Self::records`]' cursor.
    pub fn slot_count(&self) -> u32 {
        (self.space.blocks.len() as u32) << BLOCK_BITS
    }

    /// Copy the leases of slots `from..` into `out` (appended), locking one slot at a time, until
    /// `max` slots were visited; returns the cursor to continue from, `None` at the end. This is
    /// how a snapshot reads the tables while workers keep serving: no lock is held between slots.
    ///
    /// Every slot that remembers a client is reported: bound, released, expired and declined
    /// leases as they are, and an offer hold as `Expired` (an offer is never persisted, but the
    /// address is remembered for the client it was offered to). Free, never-used and blocked
    /// slots are not.
    pub fn records(&self, from: u32, max: u32, out: &mut Vec<LeaseInfo>) -> Option<u32> {
        let end = self.slot_count();
        let stop = from.saturating_add(max).min(end);
        for slot in from..stop {
            let sl = *lock(self.space.cell(slot));
            if sl.state == st::FREE || sl.flags & fl::BLOCKED != 0 {
                continue;
            }
            let mut info = self.info(&sl);
            if info.state == LeaseState::Offered {
                info.state = LeaseState::Expired;
            }
            out.push(info);
        }
        (stop < end).then_some(stop)
    }

    /// Memory held by the tables now.
    pub fn memory_estimate(&self) -> MemoryEstimate {
        let mut total = self.space.memory() + std::mem::size_of::<Self>();
        let mut indexed = 0u64;
        for cell in self.shards.iter() {
            let sh = lock(&cell.state);
            total += std::mem::size_of::<ShardCell>() + sh.memory();
            total += lock(&cell.mailbox).capacity() * 16;
            indexed += sh.index.len() as u64;
        }
        MemoryEstimate {
            total_bytes: total,
            addresses: self.space.addresses,
            indexed_clients: indexed,
            bytes_per_address: total as f64 / self.space.addresses.max(1) as f64,
        }
    }

    /// Owner of the block that holds `addr` (multi-node seam; `None` for unknown addresses and
    /// fixed reservations outside the ranges, which belong to no block owner).
    pub fn block_owner(&self, addr: Ipv4Addr) -> Option<BlockOwner> {
        let slot = self.space.locate(addr)?;
        let b = split(slot).0;
        let pool = &self.space.pools[self.space.blocks[b].subnet as usize];
        pool.contains(b).then(|| self.space.owner(b))
    }

    /// Multi-node seam: mark the still unclaimed block containing `addr` as owned by remote
    /// node `node`, so this node never hands out its unused addresses. Returns false when the
    /// block is already owned (by a shard or another node) or `addr` is in no block.
    pub fn cede_block(&self, addr: Ipv4Addr, node: u32) -> bool {
        let Some(slot) = self.space.locate(addr) else {
            return false;
        };
        let b = split(slot).0;
        let pool = &self.space.pools[self.space.blocks[b].subnet as usize];
        pool.contains(b) && self.space.set_remote(b, node)
    }

    // ---- internals ------------------------------------------------------------------------

    /// Keyed hash of (client, subnet) for the index: four folded 64x64->128 multiplies over
    /// the fixed-size key (the foldhash/wyhash construction). The keys are secret per process,
    /// so clients cannot pick identifiers that pile into one bucket.
    fn idx_hash(&self, key: &ClientKey, subnet: u32) -> u64 {
        fn fold(a: u64, b: u64) -> u64 {
            let p = u128::from(a) * u128::from(b);
            (p as u64) ^ ((p >> 64) as u64)
        }
        let [w0, w1, w2, w3] = key.words();
        let [k0, k1] = self.seed;
        let a = fold(w0 ^ k0, w1 ^ k1 ^ u64::from(subnet));
        let b = fold(w2 ^ k1, w3 ^ k0);
        fold(a ^ 0x243f_6a88_85a3_08d3, b ^ k1.rotate_left(32))
    }

    /// Whether the slot's current client would be indexed under `h`: the index keeps only a
    /// tag of the hash, so two clients whose tags collide are told apart by the slot, never by
    /// the rest of the hash.
    fn indexed_under(&self, sl: &Slot, h: u64) -> bool {
        Index::tag(self.idx_hash(&sl.client, sl.subnet)) == Index::tag(h)
    }

    #[cfg(test)]
    pub(super) fn index_tag(&self, key: &ClientKey, subnet: u32) -> u32 {
        Index::tag(self.idx_hash(key, subnet))
    }

    #[cfg(test)]
    pub(super) fn indexed(&self) -> usize {
        self.shards.iter().map(|c| lock(&c.state).index.len()).sum()
    }

    fn info(&self, sl: &Slot) -> LeaseInfo {
        LeaseInfo {
            addr: Ipv4Addr::from(sl.addr),
            subnet: SubnetId(sl.subnet),
            client: sl.client,
            state: lease_state(sl.state),
            expires: u64::from(sl.expires),
            version: sl.version,
        }
    }

    fn lock_one(&self, s: usize, now: Secs) -> Ctx<'_> {
        let cell = &self.shards[s];
        Ctx {
            s,
            cell,
            now,
            me: lock(&cell.state),
            other: None,
        }
    }

    /// Lock shards `s` (the client's) and `t` in ascending index order.
    fn lock_pair(&self, s: usize, t: usize, now: Secs) -> Ctx<'_> {
        let cell = &self.shards[s];
        let (me, other) = if s < t {
            let me = lock(&cell.state);
            (me, lock(&self.shards[t].state))
        } else {
            let other = lock(&self.shards[t].state);
            (lock(&cell.state), other)
        };
        Ctx {
            s,
            cell,
            now,
            me,
            other: Some((t, other)),
        }
    }

    /// Drop `key`'s index entry for `slot` (the slot is going to another client): directly if
    /// we hold the key's shard, else through its mailbox (no lock-order question).
    fn forget(&self, ctx: &mut Ctx<'_>, key: &ClientKey, subnet: u32, slot: u32) {
        let u = self.shard_of(key);
        let h = self.idx_hash(key, subnet);
        if u == ctx.s {
            ctx.me.index_remove(h, slot);
        } else if let Some((t, o)) = ctx.other.as_mut()
            && *t == u
        {
            o.index_remove(h, slot);
        } else {
            let cell = &self.shards[u];
            lock(&cell.mailbox).push((h, slot));
            cell.mailbox_len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Re-check up to `budget` mailbox entries of shard `s` and drop those still stale.
    fn drain_mailbox(&self, s: usize, sh: &mut Shard, budget: usize) -> usize {
        let cell = &self.shards[s];
        if cell.mailbox_len.load(Ordering::Relaxed) == 0 || budget == 0 {
            return 0;
        }
        let batch: Vec<(u64, u32)> = {
            let mut mb = lock(&cell.mailbox);
            let keep = mb.len().saturating_sub(budget);
            let batch = mb.split_off(keep);
            cell.mailbox_len.store(mb.len(), Ordering::Relaxed);
            batch
        };
        for &(h, slot) in &batch {
            let still_valid = {
                let g = lock(self.space.cell(slot));
                let sl = &g;
                sl.state != st::FREE && self.shard_of(&sl.client) == s && self.indexed_under(sl, h)
            };
            if !still_valid {
                sh.index_remove(h, slot);
            }
        }
        batch.len()
    }

    /// Housekeeping after an operation, with no slot locked: compact an overgrown FIFO or
    /// heap (amortised O(1)), drain an overfull mailbox. Inlined with its checks (see
    /// [`Self::tidy_shard`]).
    #[inline(always)]
    fn tidy(&self, ctx: &mut Ctx<'_>) {
        self.tidy_shard(ctx.cell, ctx.s, &mut ctx.me);
        if let Some((t, o)) = ctx.other.as_mut() {
            self.tidy_shard(&self.shards[*t], *t, o);
        }
    }

    /// The check is inlined into every operation and the work kept out of line: on the packet
    /// path there is almost never anything to do, and a call with its register saves cost
    /// more than the three comparisons. `cell` is `shards[s]`.
    #[inline(always)]
    fn tidy_shard(&self, cell: &ShardCell, s: usize, sh: &mut Shard) {
        if sh.fifo_to_compact.is_some()
            || sh.timers_overgrown()
            || cell.mailbox_len.load(Ordering::Relaxed) >= MAILBOX_DRAIN
        {
            self.tidy_shard_now(s, sh);
        }
    }

    /// The work of [`Self::tidy_shard`], when its check found some.
    #[cold]
    #[inline(never)]
    fn tidy_shard_now(&self, s: usize, sh: &mut Shard) {
        if let Some(sn) = sh.fifo_to_compact.take() {
            sh.compact_fifo(&self.space, sn);
        }
        if sh.timers_overgrown() {
            sh.compact_timers(&self.space);
        }
        if self.shards[s].mailbox_len.load(Ordering::Relaxed) >= MAILBOX_DRAIN {
            self.drain_mailbox(s, sh, usize::MAX);
        }
    }

    /// Give the locked slot to `key` in a timed state (offered, bound, declined). The caller
    /// holds `key`'s shard as `ctx.me` and has checked that the slot is free or already the
    /// key's. Inlined (twice per lease on the packet path): the call's register saves cost
    /// more than many of its steps.
    #[inline(always)]
    fn assign(
        &self,
        ctx: &mut Ctx<'_>,
        m: &mut Slot,
        slot: u32,
        key: &ClientKey,
        state: u8,
        expires: u32,
    ) {
        // Fields read in place: a copy of the whole slot first cost more than the steps.
        let held_by_someone = m.state != st::FREE;
        let same = held_by_someone && m.client == *key;
        if held_by_someone && !same {
            let (old, subnet) = (m.client, m.subnet);
            self.forget(ctx, &old, subnet, slot);
        }
        let own_timer = same && m.is_timed();
        m.client = *key;
        self.retime(ctx, m, slot, state, expires, own_timer);
    }

    /// The rest of [`Self::assign`] once the slot names its new client: the new state and
    /// expiry, and a timer unless `own_timer` (the slot was already timed for this same client,
    /// so it has a live timer in this shard, at or before its current expiry; a later expiry
    /// needs no new timer, as the old one re-queues itself when it fires; an earlier one or a
    /// fresh hold does). Called directly when the caller already knows the slot is the
    /// client's held lease (the usual REQUEST after our OFFER), which saves comparing keys.
    #[inline(always)]
    fn retime(
        &self,
        ctx: &mut Ctx<'_>,
        m: &mut Slot,
        slot: u32,
        state: u8,
        expires: u32,
        own_timer: bool,
    ) {
        if !own_timer || expires < m.expires {
            m.generation = m.generation.wrapping_add(1);
            if expires != NEVER {
                ctx.me.schedule(expires, slot, m.generation, ctx.now);
            }
        }
        let from = restamp(m, state, expires);
        ctx.me.counts.moved(from, state);
    }

    /// Assign, then make the slot the client's indexed lease in `subnet`.
    #[expect(
        clippy::too_many_arguments,
        reason = "internal helper; all are distinct inputs"
    )]
    fn finish_new(
        &self,
        ctx: &mut Ctx<'_>,
        mut g: Guard<'_, Slot>,
        slot: u32,
        key: &ClientKey,
        subnet: u32,
        state: u8,
        expires: u32,
        now: Secs,
    ) -> LeaseInfo {
        self.assign(ctx, &mut g, slot, key, state, expires);
        let info = self.info(&g);
        drop(g);
        self.index_as_current(ctx, key, subnet, slot, now);
        info
    }

    /// The client's indexed slot in `subnet`, confirmed against the slot and returned locked.
    /// Stale entries met on the way are dropped.
    fn lookup<'a>(&'a self, ctx: &mut Ctx<'a>, key: &ClientKey, subnet: u32) -> Option<Taken<'a>> {
        let p = ctx.cell.filter.probe(self.idx_hash(key, subnet));
        self.lookup_probed(ctx, key, subnet, &p)
    }

    /// [`Self::lookup`] with the probe of (key, subnet) already computed.
    fn lookup_probed<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        key: &ClientKey,
        subnet: u32,
        p: &Probe<'_>,
    ) -> Option<Taken<'a>> {
        let h = p.h;
        let (cands, n) = ctx.me.index_candidates(p);
        for &slot in &cands[..n] {
            let g = lock(self.space.cell(slot));
            let sl = &g;
            let sub = sl.subnet;
            if sl.state != st::FREE && sl.client == *key && sub == subnet {
                return Some((g, slot));
            }
            let stale = sl.state == st::FREE || !self.indexed_under(sl, h);
            drop(g);
            if stale {
                ctx.me.index_remove(h, slot);
            }
        }
        None
    }

    /// Make `slot` the client's one indexed lease in `subnet` (a client holds one address per
    /// network, RFC 2131 §4.3.1). Another lease of the client in the subnet that is still offered
    /// or bound is released; a declined one stays in probation. Call with no slot locked.
    fn index_as_current(
        &self,
        ctx: &mut Ctx<'_>,
        key: &ClientKey,
        subnet: u32,
        slot: u32,
        now: Secs,
    ) {
        let p = ctx.cell.filter.probe(self.idx_hash(key, subnet));
        let h = p.h;
        let (cands, n) = ctx.me.index_candidates(&p);
        let mut present = false;
        for &old in &cands[..n] {
            if old == slot {
                present = true;
                continue;
            }
            let mut g = lock(self.space.cell(old));
            let sl = *g;
            let sub = sl.subnet;
            let drop_entry = if sl.state != st::FREE && sl.client == *key && sub == subnet {
                if matches!(sl.state, st::OFFERED | st::BOUND) {
                    let t = stamp(now);
                    restamp(&mut g, st::RELEASED, t);
                    ctx.me.counts.moved(sl.state, st::RELEASED);
                    if sl.is_dynamic() {
                        ctx.me.recycle(subnet, old, t);
                    }
                }
                true
            } else {
                // Stale, unless it is another client whose hash collides with ours.
                sl.state == st::FREE || !self.indexed_under(&sl, h)
            };
            drop(g);
            if drop_entry {
                ctx.me.index_remove(h, old);
            }
        }
        if !present {
            ctx.me.index_insert(&p, slot);
        }
    }

    /// Run due timers of shard `s` (locked as `sh`): at most `budget` timers, stopping early
    /// once a freed address lands in subnet `want`'s FIFO. Returns the timers processed.
    fn sweep(
        &self,
        s: usize,
        sh: &mut Shard,
        now: Secs,
        budget: usize,
        want: Option<u32>,
    ) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(t) = sh.timers.pop_due(now) else {
                break;
            };
            done += 1;
            let mut g = lock(self.space.cell(t.slot));
            let sl = *g;
            if sl.generation != t.generation || !sl.is_timed() || self.shard_of(&sl.client) != s {
                continue; // stale timer
            }
            if !passed(sl.expires, now) {
                // Renewed since: wait for the new expiry.
                if sl.expires != NEVER {
                    sh.schedule(sl.expires, t.slot, sl.generation, now);
                }
                continue;
            }
            let subnet = sl.subnet;
            // Offer hold or lease over: free, remembered. Probation over: free, forgotten.
            let next = if sl.state == st::DECLINED {
                st::FREE
            } else {
                st::EXPIRED
            };
            g.state = next;
            sh.counts.moved(sl.state, next);
            drop(g);
            if next == st::FREE {
                sh.index_remove(self.idx_hash(&sl.client, subnet), t.slot);
            }
            if sl.is_dynamic() {
                sh.recycle(subnet, t.slot, sl.expires);
                if want == Some(subnet) {
                    break;
                }
            }
        }
        done
    }

    /// The oldest freed address of `subnet` in shard `s`'s FIFO, running the shard's due
    /// timers if the FIFO is empty (so a lapsed lease is found even if `expire` never ran).
    fn take_recycled<'a>(
        &'a self,
        s: usize,
        sh: &mut Shard,
        subnet: u32,
        now: Secs,
    ) -> Option<Taken<'a>> {
        loop {
            while let Some(r) = sh.pools[subnet as usize].fifo.pop_front() {
                let g = lock(self.space.cell(r.slot));
                if recycled_valid(&g, r) {
                    return Some((g, r.slot));
                }
            }
            if self.sweep(s, sh, now, usize::MAX, Some(subnet)) == 0
                || sh.pools[subnet as usize].fifo.is_empty()
            {
                return None;
            }
        }
    }

    /// A free address of `subnet` from this shard's own resources, in order of preference:
    /// its blocks' never-used addresses, a newly claimed block, never-used addresses anywhere
    /// in the subnet, then its clients' freed addresses, oldest first. The usual case, a
    /// never-used address of the current block, is inlined; the rest is a call.
    #[inline(always)]
    fn take_local<'a>(&'a self, ctx: &mut Ctx<'a>, subnet: u32, now: Secs) -> Option<Taken<'a>> {
        if let Some(&b) = ctx.me.pools[subnet as usize].own.last()
            && let Some(t) = self.space.take_pristine_own(b)
        {
            return Some(t);
        }
        self.take_local_further(ctx, subnet, now)
    }

    /// [`Self::take_local`] past its first step (which it repeats: one load).
    #[inline(never)]
    fn take_local_further<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        subnet: u32,
        now: Secs,
    ) -> Option<Taken<'a>> {
        let sp = subnet as usize;
        while let Some(&b) = ctx.me.pools[sp].own.last() {
            if let Some(t) = self.space.take_pristine_own(b) {
                return Some(t);
            }
            ctx.me.pools[sp].own.pop();
        }
        while let Some(b) = self.space.claim(subnet, ctx.s) {
            if let Some(t) = self.space.take_pristine_own(b) {
                ctx.me.pools[sp].own.push(b);
                return Some(t);
            }
        }
        if let Some(t) = self.space.take_pristine_anywhere(subnet) {
            return Some(t);
        }
        let s = ctx.s;
        self.take_recycled(s, &mut ctx.me, subnet, now)
    }

    /// One attempt at an offer: fixed address, the client's lease, the requested address, then
    /// a new address from the `i`-th candidate subnet (stealing from `ctx.other` if held).
    /// `PoolExhausted`: nothing free there, try elsewhere (no other outcome is that error:
    /// a fixed address is refused as not in the pool, taken or in probation).
    fn offer_in<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        req: &OfferRequest<'_>,
        i: usize,
        now: Secs,
    ) -> Result<LeaseInfo, LeaseError> {
        let key = &req.client;
        let until = deadline(now, req.hold);
        if let Some((sid, addr)) = req.fixed {
            return self.offer_fixed(ctx, key, sid, addr, until, now);
        }
        let new_in = *req.subnets.get(i).ok_or(LeaseError::PoolExhausted)?;
        // The probe of (client, new_in) when the client has no entry there at all (a new
        // client): the new address is then indexed without probing the index again.
        let mut absent_in_new = None;
        // RFC 2131 §4.3.1: the client's current address, else its previous one. The first
        // candidate (often the only one) is looked at before the loop over the others, whose
        // setup cost more than a new client's lookup.
        let (&first, others) = req.subnets.split_first().ok_or(LeaseError::PoolExhausted)?;
        if let Some(info) = self.reoffer_in(ctx, key, first, new_in, &mut absent_in_new, until, now)
        {
            return Ok(info);
        }
        for &sid in others {
            if let Some(info) =
                self.reoffer_in(ctx, key, sid, new_in, &mut absent_in_new, until, now)
            {
                return Ok(info);
            }
        }
        // ... else the requested address, if valid and available.
        if let Some(addr) = req.requested
            && let Some(info) = self.offer_requested(ctx, key, req.subnets, addr, until, now)
        {
            return Ok(info);
        }
        // ... else a new address from the pool.
        let sn = space::pool_index(&self.space, new_in).ok_or(LeaseError::PoolExhausted)?;
        let taken = match ctx.other.as_mut() {
            None => self.take_local(ctx, sn, now),
            Some((t, o)) => {
                let t = *t;
                self.take_recycled(t, o, sn, now)
            }
        };
        let (mut g, slot) = taken.ok_or(LeaseError::PoolExhausted)?;
        let Some(p) = absent_in_new else {
            return Ok(self.finish_new(ctx, g, slot, key, sn, st::OFFERED, until, now));
        };
        // The lookup above found no entry of the client in `sn`, and nothing since added one
        // (we hold its shard): there is no other lease to release, so the new address is
        // simply indexed (what `index_as_current` would do, without its probe).
        self.assign(ctx, &mut g, slot, key, st::OFFERED, until);
        let info = self.info(&g);
        drop(g);
        ctx.me.index_insert(&p, slot);
        Ok(info)
    }

    /// One step of [`Self::offer_in`]: [`Self::reoffer`] in candidate subnet `sid`, noting the
    /// probe in `absent_in_new` when the client has no lease in `new_in`.
    #[expect(
        clippy::too_many_arguments,
        reason = "internal helper; all are distinct inputs"
    )]
    #[inline(always)]
    fn reoffer_in<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        key: &ClientKey,
        sid: SubnetId,
        new_in: SubnetId,
        absent_in_new: &mut Option<Probe<'a>>,
        until: u32,
        now: Secs,
    ) -> Option<LeaseInfo> {
        let sn = space::pool_index(&self.space, sid)?;
        let p = ctx.cell.filter.probe(self.idx_hash(key, sn));
        match self.reoffer(ctx, key, sn, &p, until, now) {
            Reoffer::Offered(info) => return Some(info),
            Reoffer::Absent if sid == new_in => *absent_in_new = Some(p),
            Reoffer::Absent | Reoffer::Refused => {}
        }
        None
    }

    /// The client's lease in `subnet` offered again: kept as is while offered or bound,
    /// re-held if expired or released. Declined addresses and reservations (without a
    /// `fixed` request) are not re-offered.
    /// `p` is the probe of (key, subnet).
    ///
    /// Inlined up to the filter check, which answers for a new client (every fresh
    /// DISCOVER); the rest is a call, so that it does not weigh on the registers of the
    /// new client's path.
    #[inline(always)]
    fn reoffer<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        key: &ClientKey,
        subnet: u32,
        p: &Probe<'_>,
        until: u32,
        now: Secs,
    ) -> Reoffer {
        if !p.may_be_present() {
            return Reoffer::Absent;
        }
        self.reoffer_indexed(ctx, key, subnet, p, until, now)
    }

    /// [`Self::reoffer`] past the filter.
    #[inline(never)]
    fn reoffer_indexed<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        key: &ClientKey,
        subnet: u32,
        p: &Probe<'_>,
        until: u32,
        now: Secs,
    ) -> Reoffer {
        let Some((mut g, slot)) = self.lookup_probed(ctx, key, subnet, p) else {
            return Reoffer::Absent;
        };
        let sl = *g;
        if sl.state == st::DECLINED {
            return Reoffer::Refused;
        }
        if sl.is_held(now) {
            if sl.state == st::OFFERED && until > sl.expires {
                g.expires = until;
            }
            return Reoffer::Offered(self.info(&g));
        }
        if sl.flags & fl::RESERVED != 0 {
            return Reoffer::Refused;
        }
        self.assign(ctx, &mut g, slot, key, st::OFFERED, until);
        Reoffer::Offered(self.info(&g))
    }

    #[inline(never)]
    fn offer_fixed(
        &self,
        ctx: &mut Ctx<'_>,
        key: &ClientKey,
        sid: SubnetId,
        addr: Ipv4Addr,
        until: u32,
        now: Secs,
    ) -> Result<LeaseInfo, LeaseError> {
        let slot = self.space.locate(addr).ok_or(LeaseError::NotInPool)?;
        let mut g = lock(self.space.cell(slot));
        let sl = *g;
        if sl.subnet != sid.0 || sl.flags & fl::BLOCKED != 0 {
            return Err(LeaseError::NotInPool);
        }
        if sl.in_probation(now) {
            return Err(LeaseError::InProbation);
        }
        if sl.is_held(now) {
            if sl.client != *key {
                return Err(LeaseError::TakenByOther);
            }
            if sl.state == st::OFFERED && until > sl.expires {
                g.expires = until;
            }
            let info = self.info(&g);
            drop(g);
            self.index_as_current(ctx, key, sid.0, slot, now);
            return Ok(info);
        }
        if sl.state == st::FREE && !self.space.unpristine(slot) {
            return Err(LeaseError::TakenByOther);
        }
        Ok(self.finish_new(ctx, g, slot, key, sid.0, st::OFFERED, until, now))
    }

    #[inline(never)]
    fn offer_requested(
        &self,
        ctx: &mut Ctx<'_>,
        key: &ClientKey,
        subnets: &[SubnetId],
        addr: Ipv4Addr,
        until: u32,
        now: Secs,
    ) -> Option<LeaseInfo> {
        let slot = self.space.locate(addr)?;
        let g = lock(self.space.cell(slot));
        let sl = *g;
        let sn = sl.subnet;
        if !subnets.iter().any(|s| s.0 == sn) || !sl.is_dynamic() || sl.in_probation(now) {
            return None;
        }
        if sl.is_held(now) {
            if sl.client != *key {
                return None;
            }
            let info = self.info(&sl);
            drop(g);
            self.index_as_current(ctx, key, sn, slot, now);
            return Some(info);
        }
        if sl.state == st::FREE && !self.space.unpristine(slot) {
            return None;
        }
        Some(self.finish_new(ctx, g, slot, key, sn, st::OFFERED, until, now))
    }

    /// The usual REQUEST, under the slot lock alone: the slot is already the client's offered
    /// or bound lease in the subnet, and the new expiry is not earlier. Then binding changes
    /// nothing but the slot and a count: the client stays indexed on it (by the invariant
    /// every `index_as_current` keeps, it is the client's only held lease there), and its live
    /// timer, at or before the current expiry, re-queues itself when it fires (see
    /// [`Self::retime`]). So neither the shard's index nor its timers are touched, and the
    /// shard lock is not needed (see the module docs, "Ownership and locking"). Re-indexing
    /// would also cost a probe of the client's index bucket, cold by the time the REQUEST
    /// arrives (a cache miss per lease on a large table). `None`: anything else, for
    /// [`Self::bind_in`].
    #[inline(always)]
    fn rebind(&self, req: &BindRequest, slot: u32, until: u32, now: Secs) -> Option<LeaseInfo> {
        let mut g = lock(self.space.cell(slot));
        let sl = &*g;
        if !(bindable(sl, req) && sl.is_held(now) && sl.client == req.client && until >= sl.expires)
        {
            return None;
        }
        let from = restamp(&mut g, st::BOUND, until);
        let info = self.info(&g);
        drop(g);
        if from == st::OFFERED {
            let cell = &self.shards[self.shard_of(&req.client)];
            cell.offers_bound.fetch_add(1, Ordering::Relaxed);
        }
        Some(info)
    }

    /// [`Self::bind`] under the client's shard lock, for whatever [`Self::rebind`] left.
    fn bind_in(
        &self,
        ctx: &mut Ctx<'_>,
        req: &BindRequest,
        slot: u32,
        until: u32,
        now: Secs,
    ) -> Result<LeaseInfo, LeaseError> {
        let key = &req.client;
        let mut g = lock(self.space.cell(slot));
        let sl = *g;
        let subnet = sl.subnet;
        if !bindable(&sl, req) {
            return Err(LeaseError::NotInPool);
        }
        if sl.in_probation(now) {
            return Err(LeaseError::InProbation);
        }
        let mine = sl.is_held(now) && sl.client == *key;
        if sl.is_held(now) && !mine {
            return Err(LeaseError::TakenByOther);
        }
        if sl.flags & fl::RESERVED != 0 && !req.fixed && !mine {
            return Err(LeaseError::TakenByOther);
        }
        if sl.state == st::FREE && !self.space.unpristine(slot) {
            return Err(LeaseError::TakenByOther);
        }
        if mine {
            // The client's own lease, left by `rebind` for an earlier expiry than before (it
            // needs a new timer) or because it changed meanwhile. `mine`: offered or bound
            // (so timed) to this very client.
            self.retime(ctx, &mut g, slot, st::BOUND, until, true);
            return Ok(self.info(&g));
        }
        Ok(self.finish_new(ctx, g, slot, key, subnet, st::BOUND, until, now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bind, client, config, ip, subnet};
    use super::*;

    /// The table behind `lease_state` reports every stored state as itself (FREE, never
    /// reported, as released; out-of-range numbers too, though none is ever stored).
    #[test]
    fn stored_states_are_reported_as_themselves() {
        assert_eq!(lease_state(st::OFFERED), LeaseState::Offered);
        assert_eq!(lease_state(st::BOUND), LeaseState::Bound);
        assert_eq!(lease_state(st::EXPIRED), LeaseState::Expired);
        assert_eq!(lease_state(st::RELEASED), LeaseState::Released);
        assert_eq!(lease_state(st::DECLINED), LeaseState::Declined);
        assert_eq!(lease_state(st::FREE), LeaseState::Released);
        assert_eq!(lease_state(u8::MAX), LeaseState::Released);
    }

    /// Tables over one subnet, 10.0.0.0/24 with 10.0.0.1 - 10.0.0.99, in one shard.
    fn one_small_subnet() -> LeaseTables {
        LeaseTables::new(
            &config(vec![subnet(
                0,
                "10.0.0.0",
                24,
                &[("10.0.0.1", "10.0.0.99")],
            )]),
            1,
        )
    }

    /// The REQUEST for the client's own offer skips re-indexing (`bind_in`): the client stays
    /// indexed exactly once, on the bound address, and a bind elsewhere in the subnet still
    /// releases the old lease through `index_as_current`.
    #[test]
    fn binding_the_own_offer_keeps_exactly_one_indexed_lease() {
        let t = one_small_subnet();
        let now = 1_000_000;
        let c = client(7);
        let req = OfferRequest {
            client: c,
            subnets: &[SubnetId(0)],
            requested: None,
            fixed: None,
            hold: 30,
        };
        let a = t.offer(&req, now).expect("offer").addr;
        let offered = t.by_addr(a).expect("offered");
        let bound = bind(&t, 7, a, 3600, now).expect("bind own offer");
        assert_eq!(bound.state, LeaseState::Bound);
        assert_eq!(
            bound.version,
            offered.version + 1,
            "every change bumps the version"
        );
        assert_eq!(t.indexed(), 1);
        assert_eq!(t.by_client(&c, SubnetId(0)).map(|l| l.addr), Some(a));
        // Renewal: still the own lease, still one entry.
        let renewed = bind(&t, 7, a, 7200, now + 10).expect("renew");
        assert_eq!(renewed.version, bound.version + 1);
        assert_eq!(t.indexed(), 1);
        // Another free address of the subnet: the old lease is released (one per subnet).
        let b = ip("10.0.0.50");
        assert_ne!(a, b);
        bind(&t, 7, b, 3600, now + 20).expect("bind elsewhere");
        assert_eq!(t.by_client(&c, SubnetId(0)).map(|l| l.addr), Some(b));
        assert_eq!(t.by_addr(a).map(|l| l.state), Some(LeaseState::Released));
        assert_eq!(t.indexed(), 1);
        // And the offer path finds the bound lease again (current address first).
        assert_eq!(t.offer(&req, now + 30).map(|l| l.addr), Ok(b));
    }

    /// The usual REQUEST binds the client's own offer under the slot lock alone (`rebind`): it
    /// completes while another thread holds the client's shard, and the stats count it as
    /// bound. A REQUEST that shortens the lease needs a new timer, so it takes the shard lock,
    /// and the lease still ends on time.
    #[test]
    fn binding_the_own_offer_needs_no_shard_lock() {
        let t = one_small_subnet();
        let now = 1_000_000;
        let req = OfferRequest {
            client: client(7),
            subnets: &[SubnetId(0)],
            requested: None,
            fixed: None,
            hold: 30,
        };
        let a = t.offer(&req, now).expect("offer").addr;
        let bound = std::thread::scope(|s| {
            let shard = lock(&t.shards[0].state);
            let (tx, rx) = std::sync::mpsc::channel();
            let tables = &t;
            s.spawn(move || tx.send(bind(tables, 7, a, 3600, now)));
            let got = rx.recv_timeout(std::time::Duration::from_secs(30));
            // Let a bind that waits for the shard finish before failing.
            drop(shard);
            got.expect("bound without the shard lock")
        });
        assert_eq!(bound.map(|l| l.state), Ok(LeaseState::Bound));
        let s = t.stats();
        assert_eq!((s.offered, s.bound), (0, 1));
        // Shorter than what is left: re-timed under the shard lock.
        let short = bind(&t, 7, a, 10, now + 1).expect("renew shorter");
        assert_eq!(short.expires, now + 11);
        t.expire(now + 10, 100);
        assert_eq!(t.by_addr(a).map(|l| l.state), Some(LeaseState::Bound));
        t.expire(now + 11, 100);
        assert_eq!(t.by_addr(a).map(|l| l.state), Some(LeaseState::Expired));
        let s = t.stats();
        assert_eq!((s.offered, s.bound, s.free), (0, 0, s.addresses));
    }
}
