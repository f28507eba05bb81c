//! One shard's private state: its clients' index, their expiry timers, its blocks and its FIFOs
//! of freed addresses. Everything here sits behind the shard's one lock.
//!
//! WHY a compact index of our own: the map from (client, subnet) to slot stores only a 32-bit
//! tag of a keyed hash and the slot number, packed in one `u64`, not the 32-byte
//! [`ClientKey`](super::ClientKey): the slot already holds the key, so a hit is confirmed
//! against the slot (which the operation locks anyway). Linear probing over that one array makes
//! a lookup a single cache miss (a general-purpose map keeps control bytes and entries apart:
//! two dependent misses, which dominate a lookup in a 10 M-lease table), and costs 12-25 bytes
//! per client (with its filter, see [`Index`]) instead of ~50-95 for a
//! `HashMap<(ClientKey, SubnetId), u32>`. That is what lets 10 M leases fit in 150 B each. The
//! hash is keyed per process, so clients cannot aim for one bucket.
//!
//! WHY a timing wheel (plus a heap) with lazy deletion for expiry: expiry must never scan the
//! table. Timers due within [`WHEEL`] seconds of the sweep cursor sit in per-second buckets
//! (pushing one is an append: no cache miss, unlike a sift-up in a million-entry heap); later
//! ones wait in a binary heap and move into the wheel as the cursor approaches. Each timed slot
//! has at most one *live* timer, recognised by the slot's generation counter; a renewal that
//! pushes the expiry later does not queue anything (the old timer fires, sees the later expiry,
//! and re-queues itself once, in the sweeper rather than on the packet path); a change to an
//! earlier time queues a new timer and bumps the generation. Stale timers are dropped when they
//! surface; if they pile up anyway (releases long before expiry), they are compacted, O(n) once
//! per doubling.
//!
//! WHY FIFOs of freed addresses: RFC 2131 §4.3.1 asks the server to prefer giving a client its
//! previous address; that only works if freed addresses are not handed to someone else at once.
//! Freed (expired, released, out-of-probation) addresses are appended to the FIFO of the shard of
//! their last client and handed out oldest-first, only after never-used addresses. Entries are
//! validated lazily (slot still free with the same free-time stamp), so taking an address back
//! out of the middle (its client returned) costs nothing; stale entries are compacted away like
//! stale timers.

use super::space::{Slot, Space, lock, st};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Below this many entries the timers or a FIFO are never compacted.
const COMPACT_MIN: usize = 1024;

/// Seconds covered by the timing wheel (one bucket per second). Offer holds and probations
/// fall inside; lease ends beyond it start in the heap.
pub(super) const WHEEL: u32 = 4096;

/// (client, subnet) -> slot index: linear probing, tombstone-free (backward-shift deletion).
///
/// A bucket is `tag << 32 | (slot + 1)`, 0 = empty, where `tag` is the high half of the keyed
/// hash; the home bucket is the tag's top bits, so growing never needs the original key.
///
/// WHY a filter and a pending batch in front of the buckets: on a table of a million clients
/// the bucket array (8 bytes x 2^21) is far larger than the caches, and a new client (every
/// DISCOVER of a fresh one) costs a cache miss to learn that it is absent, and another to insert
/// it: together the largest single cost of a lease in `benches/benches/pipeline.rs`. A blocked
/// Bloom filter of 4 bits per bucket (one 64-bit word per lookup, 1/16 of the buckets' size,
/// so it mostly stays cached) answers "absent" without touching the buckets; new entries wait
/// in a small pending batch and are inserted [`PENDING`] at a time, so their misses overlap
/// instead of stalling one after the other. An insertion is thus a few stores, with the filter
/// word and bits its lookup already computed ([`Probe`]); whether the buckets must grow, and
/// whether the filter is due for a rebuild, is decided once per batch, when it is flushed.
/// Deletions leave their filter bits set (the filter only ever says "maybe"); the filter is
/// rebuilt from the entries after as many insertions as there are buckets (amortised O(1))
/// and on growth.
///
/// WHY the filter is shared atomics: a worker handling a batch of frames prefetches each
/// client's filter word *before* it decides on the first of them (`LeaseTables::prefetch`, no
/// lock), and later reads it to decide whether to prefetch the client's bucket too
/// ([`BucketsAt`]), so the batch's cache misses overlap instead of stalling each decision in
/// turn. The filter keeps its size for the index's lifetime (it is sized for the expected
/// entries; if the index grows past that, it only says "maybe" more often), so the lock-free
/// reader never sees it replaced. Writes happen under the shard lock only, as plain loads and
/// stores.
pub(super) struct Index {
    buckets: Box<[u64]>,
    /// 32 - log2(buckets.len()).
    shift: u32,
    /// Entries in `buckets` plus pending ones.
    len: usize,
    /// The most entries `buckets` may hold (the load limit, precomputed); checked when the
    /// pending batch is flushed, the only time `buckets` fills.
    grow_at: usize,
    /// Blocked Bloom filter over the tags of every entry inserted since the last rebuild.
    filter: Filter,
    /// Where `buckets` is, for lock-free prefetches.
    located: Arc<BucketsAt>,
    /// Insertions since the filter was last rebuilt.
    filter_adds: usize,
    /// Entries not yet in `buckets` (packed like buckets); `pending[..npending]`.
    pending: [u64; PENDING],
    npending: usize,
}

/// Entries batched before they are inserted into the buckets.
pub(super) const PENDING: usize = 32;

impl Index {
    /// Grow past this load (7/10): probes stay short with linear probing.
    const LOAD_NUM: usize = 7;
    const LOAD_DEN: usize = 10;

    pub fn with_capacity(entries: usize) -> Index {
        let want = (entries * Self::LOAD_DEN / Self::LOAD_NUM + 1)
            .next_power_of_two()
            .max(16);
        Index::with_buckets(want.min(1 << 32))
    }

    fn with_buckets(n: usize) -> Index {
        // 64 filter bits per 16 buckets.
        Index::with_shared(n, Filter::new((n / 16).max(1)), Arc::default())
    }

    /// An index of `n` buckets with the lock-free readers' handles of an earlier one.
    fn with_shared(n: usize, filter: Filter, located: Arc<BucketsAt>) -> Index {
        let buckets = vec![0u64; n].into_boxed_slice();
        let shift = 32 - n.trailing_zeros();
        located.set(&buckets, shift);
        Index {
            buckets,
            shift,
            len: 0,
            grow_at: if n < (1 << 32) {
                n * Self::LOAD_NUM / Self::LOAD_DEN
            } else {
                usize::MAX
            },
            filter,
            located,
            filter_adds: 0,
            pending: [0; PENDING],
            npending: 0,
        }
    }

    /// Where the buckets are, for lock-free prefetches.
    pub fn located(&self) -> &Arc<BucketsAt> {
        &self.located
    }

    /// The part of a hash the index keeps (and can compare).
    pub fn tag(h: u64) -> u32 {
        (h >> 32) as u32
    }

    fn home(&self, tag: u32) -> usize {
        // shift is 32 - log2(n) >= 0; for n = 2^32 the whole tag is the index.
        (u64::from(tag) >> self.shift) as usize
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    fn pack(tag: u32, slot: u32) -> u64 {
        (u64::from(tag) << 32) | (u64::from(slot) + 1)
    }

    /// The filter, for lock-free prefetches.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    fn filter_add(&mut self, tag: u32) {
        self.filter.add(tag);
    }

    fn maybe_present(&self, tag: u32) -> bool {
        self.filter.may_hold(tag)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Heap bytes: buckets and filter.
    pub fn bytes(&self) -> usize {
        (self.buckets.len() + self.filter.words.len()) * std::mem::size_of::<u64>()
    }

    /// Slots stored under the probe's tag: at most 4 (more only after a 32-bit tag collision
    /// of several of a shard's clients in one subnet, or stale entries; the rest are reached
    /// after those are cleaned up).
    ///
    /// The filter check is inlined into the caller and the probe kept out of line: a new
    /// client (every fresh DISCOVER) stops at the filter, and a call would cost more than it.
    #[inline]
    pub fn candidates(&self, p: &Probe<'_>) -> ([u32; 4], usize) {
        if !p.may_be_present() {
            return ([0u32; 4], 0);
        }
        self.probe(p.h)
    }

    /// [`Self::candidates`] past the filter.
    #[inline(never)]
    fn probe(&self, h: u64) -> ([u32; 4], usize) {
        let tag = Self::tag(h);
        let mut out = [0u32; 4];
        let mut n = 0;
        let mut i = self.home(tag);
        loop {
            let e = self.buckets[i];
            if e == 0 {
                break;
            }
            if (e >> 32) as u32 == tag && n < out.len() {
                out[n] = (e as u32).wrapping_sub(1);
                n += 1;
            }
            i = (i + 1) & self.mask();
        }
        for &e in &self.pending[..self.npending] {
            if (e >> 32) as u32 == tag && n < out.len() {
                out[n] = (e as u32).wrapping_sub(1);
                n += 1;
            }
        }
        (out, n)
    }

    /// Add the entry (probe's hash, slot). Inlined: it is the filter bits and an append to the
    /// pending batch, reusing the filter word and bits the lookup before it computed
    /// ([`Probe`]); growth and filter rebuilds are decided when the batch is flushed.
    #[inline(always)]
    pub fn insert(&mut self, p: &Probe<'_>, slot: u32) {
        debug_assert!(self.filter.holds(p.word), "a probe of another index");
        Filter::set(p.word, p.bits);
        self.pending[self.npending] = Self::pack(Self::tag(p.h), slot);
        self.npending += 1;
        self.len += 1;
        if self.npending == PENDING {
            self.flush();
        }
    }

    /// Insert the pending entries into the buckets, growing them first if the entries would
    /// pass the load limit. The probes of different entries do not depend on each other, so
    /// their cache misses overlap.
    #[inline(never)]
    fn flush(&mut self) {
        if self.len > self.grow_at {
            self.grow();
        }
        let mask = self.mask();
        for k in 0..self.npending {
            let e = self.pending[k];
            let mut i = self.home((e >> 32) as u32);
            while self.buckets[i] != 0 {
                i = (i + 1) & mask;
            }
            self.buckets[i] = e;
        }
        self.filter_adds += self.npending;
        self.npending = 0;
        if self.filter_adds > self.buckets.len() {
            self.rebuild_filter();
        }
    }

    /// Recompute the filter from the entries (dropping the bits of removed ones).
    #[cold]
    #[inline(never)]
    fn rebuild_filter(&mut self) {
        self.filter.clear();
        for k in 0..self.buckets.len() {
            let e = self.buckets[k];
            if e != 0 {
                self.filter_add((e >> 32) as u32);
            }
        }
        for k in 0..self.npending {
            self.filter_add((self.pending[k] >> 32) as u32);
        }
        self.filter_adds = 0;
    }

    /// Tests: [`Self::insert`] from the hash alone.
    #[cfg(test)]
    pub fn insert_hash(&mut self, h: u64, slot: u32) {
        let filter = self.filter.clone();
        self.insert(&filter.probe(h), slot);
    }

    /// Tests: [`Self::candidates`] from the hash alone.
    #[cfg(test)]
    pub fn candidates_of(&self, h: u64) -> ([u32; 4], usize) {
        self.candidates(&self.filter.probe(h))
    }

    /// Remove the entry (h, slot) if present.
    pub fn remove(&mut self, h: u64, slot: u32) {
        let tag = Self::tag(h);
        let want = Self::pack(tag, slot);
        if let Some(k) = self.pending[..self.npending]
            .iter()
            .position(|&e| e == want)
        {
            self.npending -= 1;
            self.pending[k] = self.pending[self.npending];
            self.len -= 1;
            return;
        }
        if !self.maybe_present(tag) {
            return;
        }
        let mask = self.mask();
        let mut i = self.home(tag);
        loop {
            let e = self.buckets[i];
            if e == 0 {
                return;
            }
            if e == want {
                break;
            }
            i = (i + 1) & mask;
        }
        // Backward-shift deletion: pull later entries of the cluster into the hole when
        // their home is not between the hole and their position.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let e = self.buckets[j];
            if e == 0 {
                break;
            }
            let home = self.home((e >> 32) as u32);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = e;
                hole = j;
            }
        }
        self.buckets[hole] = 0;
        self.len -= 1;
    }

    /// Double the buckets (more than once if need be) until every entry, pending ones
    /// included, fits under the load limit. The pending entries stay pending (the caller,
    /// [`Self::flush`], inserts them next).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let mut n = self.buckets.len() * 2;
        while n < (1 << 32) && self.len > n * Self::LOAD_NUM / Self::LOAD_DEN {
            n *= 2;
        }
        // The filter and the bucket locator are kept (see the type docs): lock-free readers
        // hold them.
        let mut next = Index::with_shared(n, self.filter.clone(), Arc::clone(&self.located));
        for &e in self.buckets.iter().filter(|&&e| e != 0) {
            let mut i = next.home((e >> 32) as u32);
            while next.buckets[i] != 0 {
                i = (i + 1) & next.mask();
            }
            next.buckets[i] = e;
        }
        next.len = self.len;
        next.pending = self.pending;
        next.npending = self.npending;
        next.rebuild_filter();
        *self = next;
    }
}

/// Where an index's bucket array is (its address and the shift that gives a tag's home
/// bucket), for lock-free prefetches of a known client's bucket ([`BucketsAt::prefetch`]).
/// Written under the shard lock when the index is built or grows; a reader may see the two
/// values of different generations, which only makes its prefetch useless: the address is
/// never dereferenced, and a prefetch never faults.
#[derive(Debug, Default)]
pub(super) struct BucketsAt {
    base: AtomicUsize,
    shift: AtomicU32,
}

impl BucketsAt {
    fn set(&self, buckets: &[u64], shift: u32) {
        self.base
            .store(buckets.as_ptr() as usize, Ordering::Relaxed);
        self.shift.store(shift, Ordering::Relaxed);
    }

    /// Prefetch the home bucket of `h` (where its lookup starts probing).
    pub fn prefetch(&self, h: u64) {
        let base = self.base.load(Ordering::Relaxed);
        let shift = self.shift.load(Ordering::Relaxed);
        let home = (u64::from(Index::tag(h)) >> shift.min(63)) as usize;
        let at = base.wrapping_add(home.wrapping_mul(std::mem::size_of::<u64>()));
        crate::cpu::prefetch_at(at);
    }
}

/// The index's blocked Bloom filter: one `u64` word per lookup, three bits per tag. Shared
/// (`Arc`) between the index, which writes it under the shard lock, and lock-free readers that
/// only prefetch a word or read it as a hint ([`Probe`]).
#[derive(Clone)]
pub(super) struct Filter {
    words: Arc<[AtomicU64]>,
}

impl Filter {
    /// `words` must be a power of two.
    fn new(words: usize) -> Filter {
        Filter {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Where the hash `h` is looked for and inserted: its filter word and the three bits it
    /// sets there. The tag (the high half of `h`, a keyed hash) is already uniform: the word
    /// comes from a multiplicative remix (independent of the home bucket), the bits from the
    /// tag's low 18 bits.
    pub fn probe(&self, h: u64) -> Probe<'_> {
        let (word, bits) = self.locate(Index::tag(h));
        Probe { h, word, bits }
    }

    /// The filter word and bits of `tag`: what [`Self::probe`] finds for every hash with
    /// this tag (the index keeps only tags, so adding and testing by tag must agree with it).
    fn locate(&self, tag: u32) -> (&AtomicU64, u64) {
        let i = (u64::from(tag).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
            & (self.words.len() - 1);
        let bit = |k: u32| 1u64 << ((tag >> (6 * k)) & 63);
        // `i` is masked to the power-of-two length.
        (&self.words[i], bit(0) | bit(1) | bit(2))
    }

    /// Whether `tag` may have been added (no false negatives).
    fn may_hold(&self, tag: u32) -> bool {
        let (word, bits) = self.locate(tag);
        Self::all_set(word, bits)
    }

    /// Whether every one of `bits` is set in `word`.
    fn all_set(word: &AtomicU64, bits: u64) -> bool {
        word.load(Ordering::Relaxed) & bits == bits
    }

    /// Set `bits` in `word`. Only the holder of the shard lock writes, so a plain load and
    /// store (no locked read-modify-write) cannot lose another writer's bits.
    fn set(word: &AtomicU64, bits: u64) {
        word.store(word.load(Ordering::Relaxed) | bits, Ordering::Relaxed);
    }

    fn add(&self, tag: u32) {
        let (word, bits) = self.locate(tag);
        Self::set(word, bits);
    }

    /// Whether `word` is one of this filter's words.
    fn holds(&self, word: &AtomicU64) -> bool {
        self.words
            .as_ptr_range()
            .contains(&std::ptr::from_ref(word))
    }

    fn clear(&self) {
        for w in self.words.iter() {
            w.store(0, Ordering::Relaxed);
        }
    }
}

/// A hash's place in a shard's index filter ([`Filter::probe`]), computed once and used by
/// every step that needs it: the prefetch of the word (`LeaseTables::prefetch`, without the
/// lock), the lookup ([`Index::candidates`]) and the insertion that follows a miss
/// ([`Index::insert`]). It stays valid for the filter's lifetime: the filter keeps its size,
/// and rebuilds only rewrite its words.
#[derive(Clone, Copy, Debug)]
pub(super) struct Probe<'a> {
    /// The keyed hash of (client, subnet).
    pub h: u64,
    word: &'a AtomicU64,
    bits: u64,
}

impl Probe<'_> {
    /// The filter word (to prefetch).
    pub fn word(&self) -> &AtomicU64 {
        self.word
    }

    /// Whether the filter says the hash may have entries (false: it has none).
    pub fn may_be_present(&self) -> bool {
        Filter::all_set(self.word, self.bits)
    }
}

/// An expiry timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Timer {
    pub at: u32,
    pub slot: u32,
    pub generation: u16,
}

/// A shard's timers: a one-second timing wheel over `[cursor, cursor + WHEEL)` and a min-heap
/// for later ones. Every second before `cursor` has been swept.
pub(super) struct Timers {
    /// A fixed-size array, so that filing a timer needs no bounds check.
    wheel: Box<[Vec<Timer>; WHEEL as usize]>,
    in_wheel: usize,
    cursor: u64,
    later: BinaryHeap<Reverse<Timer>>,
}

impl Timers {
    fn new() -> Timers {
        Timers {
            // Built on the heap: the array is 96 KiB.
            wheel: vec![Vec::new(); WHEEL as usize]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("WHEEL buckets")),
            in_wheel: 0,
            cursor: 0,
            later: BinaryHeap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.in_wheel + self.later.len()
    }

    fn bucket(at: u64) -> usize {
        (at % u64::from(WHEEL)) as usize
    }

    /// Queue a timer at an operation's time `now` (`t.at >= now` except for clock steps).
    /// Inlined: on the packet path (an offer hold) this is an append to a wheel bucket.
    #[inline]
    pub fn push(&mut self, t: Timer, now: u64) {
        // Nothing in the wheel: the cursor may skip straight to the present (not past it, and
        // not past the earliest waiting timer).
        if self.in_wheel == 0 && self.cursor < now {
            self.skip_to(now);
        }
        self.file(t);
    }

    #[inline(never)]
    fn skip_to(&mut self, now: u64) {
        let first = self
            .later
            .peek()
            .map_or(u64::MAX, |Reverse(l)| u64::from(l.at));
        self.cursor = self.cursor.max(now.min(first));
        self.migrate();
    }

    #[inline(always)]
    fn file(&mut self, t: Timer) {
        let at = u64::from(t.at);
        if at < self.cursor + u64::from(WHEEL) {
            // Already past the cursor (a clock step): due in the current bucket.
            self.wheel[Self::bucket(at.max(self.cursor))].push(t);
            self.in_wheel += 1;
        } else {
            self.later.push(Reverse(t));
        }
    }

    /// Move heap timers that now fall inside the wheel into it.
    fn migrate(&mut self) {
        let end = self.cursor + u64::from(WHEEL);
        while let Some(&Reverse(t)) = self.later.peek() {
            if u64::from(t.at) >= end {
                break;
            }
            self.later.pop();
            self.wheel[Self::bucket(u64::from(t.at).max(self.cursor))].push(t);
            self.in_wheel += 1;
        }
    }

    /// The next timer due at `now`, if any (earliest second first; any order within one).
    pub fn pop_due(&mut self, now: u64) -> Option<Timer> {
        loop {
            if self.cursor > now {
                return None;
            }
            if let Some(t) = self.wheel[Self::bucket(self.cursor)].pop() {
                self.in_wheel -= 1;
                return Some(t);
            }
            // This second is done: the next one, or straight to the next heap timer (or the
            // present) when the wheel is empty. At most WHEEL empty buckets are stepped over
            // before a non-empty one, since every wheel timer lies within WHEEL of the cursor.
            if self.in_wheel == 0 {
                let first = self
                    .later
                    .peek()
                    .map_or(u64::MAX, |Reverse(l)| u64::from(l.at));
                self.cursor = (self.cursor + 1).max(first.min(now + 1));
            } else {
                self.cursor += 1;
            }
            self.migrate();
        }
    }

    /// Keep only timers for which `keep` holds.
    fn retain(&mut self, mut keep: impl FnMut(&Timer) -> bool) {
        let mut n = 0;
        for b in self.wheel.iter_mut() {
            b.retain(&mut keep);
            n += b.len();
            if b.is_empty() {
                b.shrink_to(16);
            }
        }
        self.in_wheel = n;
        let mut v = std::mem::take(&mut self.later).into_vec();
        v.retain(|Reverse(t)| keep(t));
        self.later = BinaryHeap::from(v);
    }

    fn memory(&self) -> usize {
        use std::mem::size_of;
        self.wheel.len() * size_of::<Vec<Timer>>()
            + self
                .wheel
                .iter()
                .map(|b| b.capacity() * size_of::<Timer>())
                .sum::<usize>()
            + self.later.capacity() * size_of::<Reverse<Timer>>()
    }
}

/// A freed address and the time it became free (must equal the slot's `expires` to be valid).
#[derive(Clone, Copy, Debug)]
pub(super) struct Recycled {
    pub slot: u32,
    pub stamp: u32,
}

/// A shard's view of one subnet.
#[derive(Default)]
pub(super) struct ShardPool {
    /// Blocks this shard claimed that may still have pristine slots (top = current).
    pub own: Vec<u32>,
    /// Freed addresses whose last client belongs to this shard, oldest first.
    pub fifo: VecDeque<Recycled>,
    fifo_compact_at: usize,
}

/// Per-state counts contributed by operations run under this shard's lock (they may be
/// negative per shard; the sum over shards is exact).
///
/// Kept per stored state, indexed by the state's number, so that accounting a move (twice per
/// lease on the packet path) is two indexed updates rather than two branches on the state;
/// the free states are summed when read.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counts {
    /// Indexed by `state & 7` (stored states are 0..=5).
    by_state: [i64; 8],
}

impl Counts {
    fn get(&self, state: u8) -> i64 {
        self.by_state[usize::from(state & 7)]
    }

    /// Free slots: never used, vacant, expired or released.
    pub fn free(&self) -> i64 {
        self.get(st::FREE) + self.get(st::EXPIRED) + self.get(st::RELEASED)
    }

    pub fn offered(&self) -> i64 {
        self.get(st::OFFERED)
    }

    pub fn bound(&self) -> i64 {
        self.get(st::BOUND)
    }

    pub fn declined(&self) -> i64 {
        self.get(st::DECLINED)
    }

    /// Start with `n` never-used slots.
    pub fn set_free(&mut self, n: i64) {
        self.by_state[usize::from(st::FREE)] = n;
    }

    /// Account one slot moving from `from` to `to` (stored states).
    #[inline(always)]
    pub fn moved(&mut self, from: u8, to: u8) {
        self.by_state[usize::from(from & 7)] -= 1;
        self.by_state[usize::from(to & 7)] += 1;
    }
}

pub(super) struct Shard {
    pub index: Index,
    pub timers: Timers,
    /// Compact the timers past this many (the sweeper does, when its budget allows).
    timers_compact_at: usize,
    /// Twice `timers_compact_at` (precomputed for the per-operation check): past this many,
    /// the operations compact them themselves.
    timers_tidy_at: usize,
    pub pools: Box<[ShardPool]>,
    pub counts: Counts,
    /// A subnet whose FIFO grew past its compaction mark (compacted when no block is locked).
    pub fifo_to_compact: Option<u32>,
}

impl Shard {
    pub fn new(subnets: usize, expected_leases: usize) -> Shard {
        let mut shard = Shard {
            index: Index::with_capacity(expected_leases),
            timers: Timers::new(),
            timers_compact_at: 0,
            timers_tidy_at: 0,
            pools: (0..subnets)
                .map(|_| ShardPool {
                    fifo_compact_at: COMPACT_MIN,
                    ..ShardPool::default()
                })
                .collect(),
            counts: Counts::default(),
            fifo_to_compact: None,
        };
        shard.set_timers_mark(expected_leases);
        shard
    }

    /// Set the timers' compaction marks for `live` live timers.
    fn set_timers_mark(&mut self, live: usize) {
        self.timers_compact_at = COMPACT_MIN.max(live.saturating_mul(2));
        self.timers_tidy_at = self.timers_compact_at.saturating_mul(2);
    }

    /// Remove the index entry (h, slot) if present.
    pub fn index_remove(&mut self, h: u64, slot: u32) {
        self.index.remove(h, slot);
    }

    /// Add the entry (probe's hash, slot); the probe must come from this shard's filter.
    #[inline(always)]
    pub fn index_insert(&mut self, p: &Probe<'_>, slot: u32) {
        self.index.insert(p, slot);
    }

    /// Slots indexed under the probe's hash (see [`Index::candidates`]).
    #[inline]
    pub fn index_candidates(&self, p: &Probe<'_>) -> ([u32; 4], usize) {
        self.index.candidates(p)
    }

    /// Queue a timer; `now` is the operation's time.
    #[inline]
    pub fn schedule(&mut self, at: u32, slot: u32, generation: u16, now: u64) {
        self.timers.push(
            Timer {
                at,
                slot,
                generation,
            },
            now,
        );
    }

    /// Append a freed slot to the subnet's FIFO.
    pub fn recycle(&mut self, subnet: u32, slot: u32, stamp: u32) {
        let Some(p) = self.pools.get_mut(subnet as usize) else {
            return;
        };
        p.fifo.push_back(Recycled { slot, stamp });
        if p.fifo.len() > p.fifo_compact_at {
            self.fifo_to_compact = Some(subnet);
        }
    }

    /// Whether the heap has grown past its compaction mark.
    pub fn timers_oversized(&self) -> bool {
        self.timers.len() > self.timers_compact_at
    }

    /// Whether the heap has grown past twice its compaction mark, where operations compact
    /// it rather than wait for the sweeper. Inlined into every operation's housekeeping
    /// check.
    #[inline(always)]
    pub fn timers_overgrown(&self) -> bool {
        self.timers.len() > self.timers_tidy_at
    }

    /// Drop timers that can no longer fire (generation moved on, or no longer timed). Locks
    /// one slot at a time; call with no slot locked. O(n), once per doubling.
    pub fn compact_timers(&mut self, space: &Space) {
        self.timers.retain(|t| {
            let sl = lock(space.cell(t.slot));
            sl.generation == t.generation && sl.is_timed()
        });
        self.set_timers_mark(self.timers.len());
    }

    /// Drop FIFO entries whose slot was taken again. Call with no slot locked.
    pub fn compact_fifo(&mut self, space: &Space, subnet: u32) {
        let Some(p) = self.pools.get_mut(subnet as usize) else {
            return;
        };
        p.fifo
            .retain(|r| recycled_valid(&lock(space.cell(r.slot)), *r));
        p.fifo_compact_at = COMPACT_MIN.max(p.fifo.len() * 2);
    }

    /// Heap bytes owned by this shard.
    pub fn memory(&self) -> usize {
        use std::mem::size_of;
        self.index.bytes()
            + self.timers.memory()
            + self
                .pools
                .iter()
                .map(|p| {
                    size_of::<ShardPool>()
                        + p.own.capacity() * 4
                        + p.fifo.capacity() * size_of::<Recycled>()
                })
                .sum::<usize>()
    }
}

/// A FIFO entry still names a free, dynamically leasable slot freed at `stamp`. (FIFO slots
/// were all used once, so none is pristine.)
pub(super) fn recycled_valid(sl: &Slot, r: Recycled) -> bool {
    sl.is_dynamic()
        && matches!(sl.state, st::FREE | st::EXPIRED | st::RELEASED)
        && sl.expires == r.stamp
}

#[cfg(test)]
mod tests {
    use super::{Index, PENDING};

    /// The filter must never hide an entry: every entry is found right after its insertion
    /// (pending or flushed), across flushes, filter rebuilds and growth, and after removals of
    /// others; removed entries are gone even though their filter bits may stay.
    #[test]
    fn filter_and_pending_batch_never_hide_an_entry() {
        let mut ix = Index::with_capacity(0);
        let h = |i: u32| u64::from(i.wrapping_mul(0x9e37_79b9) ^ 0x5bd1_e995) << 32;
        let n = 5_000u32;
        for i in 0..n {
            ix.insert_hash(h(i), i);
            // Removed so far (below): 0 ..= (i - 1) / 3.
            let gone = |j: u32| i > 0 && j <= (i - 1) / 3;
            for j in [i, i / 2, i.saturating_sub(PENDING as u32)] {
                let (c, k) = ix.candidates_of(h(j));
                assert_eq!(
                    c[..k].contains(&j),
                    !gone(j),
                    "entry {j} after inserting {i}"
                );
            }
            if i % 3 == 0 {
                ix.remove(h(i / 3), i / 3);
                let (c, k) = ix.candidates_of(h(i / 3));
                assert!(!c[..k].contains(&(i / 3)), "removed {}", i / 3);
            }
        }
        let mut found = 0;
        for j in 0..n {
            let (c, k) = ix.candidates_of(h(j));
            let here = c[..k].contains(&j);
            // i / 3 for i = 0, 3, 6, ... removes exactly 0..=n/3 (every j below n/3 + 1).
            assert_eq!(here, j > (n - 1) / 3, "entry {j}");
            found += usize::from(here);
        }
        assert_eq!(ix.len(), found);
    }

    /// The buckets never pass the load limit of 7/10: they grow when a flush of the pending
    /// batch would take them past it, straight to the size that fits, and not before.
    #[test]
    fn index_grows_past_seven_tenths_load() {
        let mut ix = Index::with_capacity(0);
        assert_eq!(ix.buckets(), 16);
        let h = |i: u32| u64::from(i.wrapping_mul(0x9e37_79b9)) << 32;
        let batch = PENDING as u32;
        for i in 0..batch - 1 {
            ix.insert_hash(h(i), i);
        }
        assert_eq!(ix.buckets(), 16, "the entries wait in the pending batch");
        ix.insert_hash(h(batch - 1), batch - 1);
        assert_eq!(
            ix.buckets(),
            64,
            "32 entries need 64 buckets (64 * 7 / 10 = 44)"
        );
        let mut sizes = vec![];
        for i in batch..20 * batch {
            ix.insert_hash(h(i), i);
            assert!(
                (ix.len() - ix.npending) * 10 <= ix.buckets() * 7,
                "load after {i}"
            );
            if (i + 1) % batch == 0 {
                // The smallest power of two that holds the entries under the limit.
                let want = (ix.len() * 10).div_ceil(7).next_power_of_two().max(16);
                assert_eq!(ix.buckets(), want, "{} entries", i + 1);
                sizes.push(ix.buckets());
            }
        }
        assert_eq!(
            sizes.last(),
            Some(&1024),
            "640 entries: 1024 buckets hold 716"
        );
        for i in 0..20 * batch {
            let (c, k) = ix.candidates_of(h(i));
            assert!(c[..k].contains(&i), "entry {i} after growth");
        }
    }

    /// A miss on an empty region costs no bucket access: the filter answers for most absent
    /// tags (checked through the false-positive rate of a filled index).
    #[test]
    fn filter_rejects_most_absent_tags() {
        let mut ix = Index::with_capacity(10_000);
        let h = |i: u32| u64::from(i.wrapping_mul(0x9e37_79b9)) << 32;
        for i in 0..7_000 {
            ix.insert_hash(h(i), i);
        }
        let absent = (7_000..17_000u32)
            .filter(|&i| ix.maybe_present(Index::tag(h(i))))
            .count();
        assert!(absent < 1_000, "false positives: {absent} of 10000");
    }
}
