//! The address space: every leasable address has one fixed slot, and slots are grouped in
//! power-of-two blocks that shards own.
//!
//! WHY blocks: the DDHCP design (a range cut into equal power-of-two blocks, each block free or
//! claimed by one owner) lets owners hand out addresses without talking to each other. Here the
//! owners are the shards of one node: a shard allocates from its own blocks without coordination
//! and claims an unowned block with one compare-and-swap on the block's owner word. The same word
//! can later say "owned by remote node N" ([`BlockOwner::Remote`]) when a multi-node DDHCP mode
//! exchanges blocks between servers; nothing else in the tables has to change for that, because
//! block ownership only decides who may take *never used* addresses from the block.
//!
//! WHY a lock per slot, one cache line each: the slot array is preallocated once, and a slot
//! may be touched by any shard (a client asks for a specific address, a lease lapses and another
//! client's shard takes it, a shard steals when it has nothing left). Without `unsafe` (the crate
//! forbids it outside `xsk`) data that changes hands at run time needs its own lock. Putting the
//! lock, the client key, the expiry, the state and the address in one 64-byte line makes every
//! lease access a single cache miss (a lock elsewhere would be a second, dependent one: the
//! locked instruction must finish before the slot is read), and neighbouring leases served by
//! different cores never share a line. The lock is uncontended in the intended deployment (the
//! XDP program steers each client to one worker, and each worker mostly touches its own blocks).
//!
//! WHY bitmaps: each block keeps an atomic 64-bit map of its *pristine* (never handed out) slots
//! (taking one is a compare-and-swap, then the slot's lock) and each
//! subnet keeps one bit per block saying "this block may still have pristine slots". Pristine
//! slots only ever decrease, so both maps are monotonic, and a scan cursor that skips all-zero
//! words never has to look back: finding a pristine address anywhere in a subnet is O(1)
//! amortised however full the pool is. Addresses that were used and freed again are not found
//! through these maps but through per-shard FIFOs (see `shard.rs`).

use super::ClientKey;
use crate::config::{ServerConfig, SubnetId};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// log2 of the block size.
pub const BLOCK_BITS: u32 = 6;
/// Addresses per block. 64 makes a block's free map one `u64` (`trailing_zeros` finds a free
/// slot) and keeps the per-block header (owner, map, subnet) at 1 byte per address.
pub const BLOCK_SIZE: usize = 1 << BLOCK_BITS;
const OFF_MASK: u32 = (1 << BLOCK_BITS) - 1;

/// Upper bound on slots (dynamic addresses plus fixed reservations). Keeps slot numbers in a
/// `u32` with room to spare; 2^28 slots would already be ~11 GiB of slots.
pub const MAX_SLOTS: u64 = 1 << 28;

/// Who may hand out the never-used addresses of a block (the DDHCP block state, one node).
///
/// Encoded in one `AtomicU32` per block so that a claim is a single compare-and-swap:
/// `u32::MAX` = unclaimed, high bit set = remote node, otherwise the shard number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOwner {
    /// Nobody yet; the first shard that runs out of addresses claims it.
    Unclaimed,
    /// A shard of this node.
    Shard(u32),
    /// Another server of a multi-node (DDHCP) deployment: this node never hands out the block's
    /// unused addresses. Single-node mode never produces it; it is the seam for that mode.
    /// Node ids are 31 bits (`0..0x7fff_ffff`).
    Remote(u32),
}

impl BlockOwner {
    const UNCLAIMED: u32 = u32::MAX;
    const REMOTE: u32 = 1 << 31;

    fn encode(self) -> u32 {
        match self {
            BlockOwner::Unclaimed => Self::UNCLAIMED,
            BlockOwner::Shard(s) => s & !Self::REMOTE,
            BlockOwner::Remote(n) => Self::REMOTE | n.min(Self::REMOTE - 2),
        }
    }

    fn decode(w: u32) -> Self {
        if w == Self::UNCLAIMED {
            BlockOwner::Unclaimed
        } else if w & Self::REMOTE != 0 {
            BlockOwner::Remote(w & !Self::REMOTE)
        } else {
            BlockOwner::Shard(w)
        }
    }
}

/// Stored slot states (see [`super::LeaseState`]; `FREE` = no client: pristine or vacant).
pub(super) mod st {
    pub const FREE: u8 = 0;
    pub const OFFERED: u8 = 1;
    pub const BOUND: u8 = 2;
    pub const EXPIRED: u8 = 3;
    pub const RELEASED: u8 = 4;
    pub const DECLINED: u8 = 5;
}

/// Slot flags, fixed at construction.
pub(super) mod fl {
    /// Network, broadcast or excluded address: never leased, not counted.
    pub const BLOCKED: u8 = 1;
    /// A reservation's fixed address: only `fixed` requests may take it.
    pub const RESERVED: u8 = 2;
    /// A reservation's address outside every dynamic range (implies `RESERVED`).
    pub const FIXED_ONLY: u8 = 4;
}

/// Expiry value meaning "never" (RFC 2131 §3.3: lease time 0xffffffff is infinite).
pub(super) const NEVER: u32 = u32::MAX;

/// `now + secs` as a stored expiry (u32 Unix seconds, saturating; good until 2106).
pub(super) fn deadline(now: u64, secs: u32) -> u32 {
    if secs == u32::MAX {
        return NEVER;
    }
    now.saturating_add(u64::from(secs))
        .min(u64::from(NEVER - 1)) as u32
}

/// `now` as a stored timestamp.
pub(super) fn stamp(now: u64) -> u32 {
    now.min(u64::from(NEVER - 1)) as u32
}

/// Whether a stored expiry has passed at `now`.
pub(super) fn passed(expires: u32, now: u64) -> bool {
    expires != NEVER && u64::from(expires) <= now
}

/// One address's lease: 52 bytes, 64 with its lock (asserted in tests), the bulk of the
/// per-lease memory.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    /// Current or last client (meaningless when `state == FREE`).
    pub client: ClientKey,
    /// End of hold / lease / probation while timed; the time it became free otherwise (the FIFO
    /// entry's stamp); `NEVER` = infinite.
    pub expires: u32,
    /// The address (host order) and its subnet: fixed, kept here so that a lease is read from
    /// one cache line.
    pub addr: u32,
    pub subnet: u32,
    /// Bumped on every change a journal record describes (bind, offer, release, decline,
    /// supersede), so replay keeps the newest record of an address whatever order records from
    /// different workers reached the disk in (see `journal`).
    pub version: u32,
    /// Bumped whenever a new expiry timer is queued for this slot, so older timers are ignored.
    pub generation: u16,
    pub state: u8,
    pub flags: u8,
}

/// A slot and its lock, alone in a cache line.
#[repr(align(64))]
pub(super) struct SlotCell(pub Lock<Slot>);

impl Slot {
    fn empty(addr: u32, subnet: u32, flags: u8) -> Slot {
        Slot {
            client: ClientKey::NONE,
            expires: 0,
            addr,
            subnet,
            version: 0,
            generation: 0,
            state: st::FREE,
            flags,
        }
    }

    /// Offered, bound or declined: has a timer.
    pub fn is_timed(&self) -> bool {
        matches!(self.state, st::OFFERED | st::BOUND | st::DECLINED)
    }

    /// Offered or bound to someone, and not lapsed.
    pub fn is_held(&self, now: u64) -> bool {
        matches!(self.state, st::OFFERED | st::BOUND) && !passed(self.expires, now)
    }

    /// In probation (declined, not lapsed).
    pub fn in_probation(&self, now: u64) -> bool {
        self.state == st::DECLINED && !passed(self.expires, now)
    }

    /// Handed out dynamically when free (not blocked, not a reservation).
    pub fn is_dynamic(&self) -> bool {
        self.flags & (fl::BLOCKED | fl::RESERVED) == 0
    }
}

pub(super) struct Block {
    owner: AtomicU32,
    pub subnet: u32,
    /// Bit i set = slot i was never handed out (and may be).
    pristine: AtomicU64,
    pub slots: [SlotCell; BLOCK_SIZE],
}

impl Block {
    fn new(subnet: u32, pristine: u64, slot: impl Fn(usize) -> Slot) -> Block {
        Block {
            owner: AtomicU32::new(BlockOwner::UNCLAIMED),
            subnet,
            pristine: AtomicU64::new(pristine),
            slots: std::array::from_fn(|off| SlotCell(Lock::new(slot(off)))),
        }
    }
}

/// Per-subnet allocation state shared by all shards.
pub(super) struct Pool {
    /// The subnet's claimable (range) blocks are `first_block .. first_block + nblocks`.
    first_block: u32,
    nblocks: u32,
    /// Blocks below this index are already claimed (monotonic).
    claim_cursor: AtomicU32,
    /// One bit per range block: may still have pristine slots (monotonic 1 -> 0).
    summary: Box<[AtomicU64]>,
    /// Summary words below this index are all zero (monotonic).
    summary_cursor: AtomicU32,
}

impl Pool {
    /// Whether `block` is one of this subnet's range (claimable) blocks.
    pub fn contains(&self, block: usize) -> bool {
        (self.first_block as usize..(self.first_block + self.nblocks) as usize).contains(&block)
    }
}

struct RangeEntry {
    start: u32,
    end: u32,
    first_slot: u32,
}

pub(super) struct Space {
    pub blocks: Box<[Block]>,
    pub pools: Box<[Pool]>,
    /// Sorted, non-overlapping.
    ranges: Box<[RangeEntry]>,
    /// (address, slot), sorted by address.
    fixed: Box<[(u32, u32)]>,
    /// Leasable addresses (dynamic + reserved).
    pub addresses: u64,
    /// Ranges left out because they overlapped an earlier one or exceeded [`MAX_SLOTS`].
    pub skipped_ranges: usize,
}

/// The lock of a slot, a shard or a mailbox: dashmap's word lock, only ever taken exclusively
/// (see `table.rs`, "Ownership and locking", for why not std's `Mutex`). One word, so a slot
/// and its lock still fill one cache line.
pub(super) type Lock<T> = dashmap::RwLock<T>;
/// A held [`Lock`].
pub(super) type Guard<'a, T> = dashmap::RwLockWriteGuard<'a, T>;

/// Lock exclusively. Nothing is poisoned by a panic: every critical section here leaves its
/// data consistent at each step that can unwind (none is expected to), so the data stays
/// usable.
pub(super) fn lock<T>(m: &Lock<T>) -> Guard<'_, T> {
    m.write()
}

pub(super) fn split(slot: u32) -> (usize, usize) {
    ((slot >> BLOCK_BITS) as usize, (slot & OFF_MASK) as usize)
}

/// The subnet's own network or broadcast address (never leased).
fn is_special(net: crate::config::Ipv4Net, a: u32) -> bool {
    // RFC 3021: a /31 has no network or broadcast address; a /32 is a single host.
    if net.prefix >= 31 {
        return false;
    }
    a == u32::from(net.addr) || a == u32::from(net.broadcast())
}

impl Space {
    pub fn new(cfg: &ServerConfig) -> Space {
        let mut blocks: Vec<Block> = Vec::new();
        let mut pools = Vec::with_capacity(cfg.subnets.len());
        let mut accepted: BTreeMap<u32, u32> = BTreeMap::new();
        let mut ranges = Vec::new();
        let mut skipped_ranges = 0;
        let mut addresses = 0u64;
        let mut slots_used = 0u64;

        for (sid, subnet) in cfg.subnets.iter().enumerate() {
            let first_block = blocks.len() as u32;
            let reserved: Vec<u32> = {
                let mut v: Vec<u32> = subnet
                    .reservations
                    .iter()
                    .filter_map(|r| r.address.map(u32::from))
                    .collect();
                v.sort_unstable();
                v
            };
            for r in &subnet.ranges {
                let (start, end) = (u32::from(r.start), u32::from(r.end));
                let blocks_needed = (u64::from(end - start.min(end)) >> BLOCK_BITS) + 1;
                let overlaps = start > end
                    || accepted
                        .range(..=end)
                        .next_back()
                        .is_some_and(|(_, &e)| e >= start);
                if overlaps || slots_used + (blocks_needed << BLOCK_BITS) > MAX_SLOTS {
                    skipped_ranges += 1;
                    continue;
                }
                accepted.insert(start, end);
                slots_used += blocks_needed << BLOCK_BITS;
                ranges.push(RangeEntry {
                    start,
                    end,
                    first_slot: (blocks.len() as u32) << BLOCK_BITS,
                });
                let mut base = u64::from(start);
                while base <= u64::from(end) {
                    let n = (u64::from(end) - base + 1).min(BLOCK_SIZE as u64) as usize;
                    let mut pristine = 0u64;
                    let mut flags = [fl::BLOCKED; BLOCK_SIZE];
                    for (off, f) in flags.iter_mut().enumerate().take(n) {
                        let a = base as u32 + off as u32;
                        if is_special(subnet.network, a)
                            || subnet.excluded.binary_search(&Ipv4Addr::from(a)).is_ok()
                        {
                            *f = fl::BLOCKED;
                        } else if reserved.binary_search(&a).is_ok() {
                            *f = fl::RESERVED;
                            addresses += 1;
                        } else {
                            *f = 0;
                            pristine |= 1 << off;
                            addresses += 1;
                        }
                    }
                    let b = base as u32;
                    blocks.push(Block::new(sid as u32, pristine, |off| {
                        Slot::empty(b.wrapping_add(off as u32), sid as u32, flags[off])
                    }));
                    base += BLOCK_SIZE as u64;
                }
            }
            let nblocks = blocks.len() as u32 - first_block;
            let words = (nblocks as usize).div_ceil(64);
            let summary: Box<[AtomicU64]> = (0..words).map(|_| AtomicU64::new(0)).collect();
            for i in 0..nblocks {
                let b = &blocks[(first_block + i) as usize];
                if b.pristine.load(Ordering::Relaxed) != 0 {
                    summary[(i / 64) as usize].fetch_or(1 << (i % 64), Ordering::Relaxed);
                }
            }
            pools.push(Pool {
                first_block,
                nblocks,
                claim_cursor: AtomicU32::new(0),
                summary,
                summary_cursor: AtomicU32::new(0),
            });
        }
        ranges.sort_unstable_by_key(|r| r.start);

        // Reservation addresses outside every range get slots of their own, packed into
        // "fixed" blocks per subnet (never claimed, never allocated dynamically).
        let in_range = |ranges: &[RangeEntry], a: u32| {
            let i = ranges.partition_point(|r| r.start <= a);
            i > 0 && a <= ranges[i - 1].end
        };
        let mut fixed: Vec<(u32, u32)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (sid, subnet) in cfg.subnets.iter().enumerate() {
            let mut mine: Vec<u32> = subnet
                .reservations
                .iter()
                .filter_map(|r| r.address.map(u32::from))
                .filter(|&a| !in_range(&ranges, a) && seen.insert(a))
                .collect();
            mine.sort_unstable();
            for chunk in mine.chunks(BLOCK_SIZE) {
                if slots_used + BLOCK_SIZE as u64 > MAX_SLOTS {
                    break;
                }
                slots_used += BLOCK_SIZE as u64;
                for (off, &a) in chunk.iter().enumerate() {
                    fixed.push((a, ((blocks.len() as u32) << BLOCK_BITS) + off as u32));
                    addresses += 1;
                }
                blocks.push(Block::new(sid as u32, 0, |off| match chunk.get(off) {
                    Some(&a) => Slot::empty(a, sid as u32, fl::RESERVED | fl::FIXED_ONLY),
                    None => Slot::empty(0, sid as u32, fl::BLOCKED),
                }));
            }
        }
        fixed.sort_unstable();

        Space {
            blocks: blocks.into_boxed_slice(),
            pools: pools.into_boxed_slice(),
            ranges: ranges.into_boxed_slice(),
            fixed: fixed.into_boxed_slice(),
            addresses,
            skipped_ranges,
        }
    }

    /// The slot of an address: in a dynamic range, or a reservation's fixed address.
    pub fn locate(&self, addr: Ipv4Addr) -> Option<u32> {
        let a = u32::from(addr);
        let i = self.ranges.partition_point(|r| r.start <= a);
        if i > 0 {
            let r = &self.ranges[i - 1];
            if a <= r.end {
                return Some(r.first_slot + (a - r.start));
            }
        }
        self.fixed
            .binary_search_by_key(&a, |e| e.0)
            .ok()
            .map(|i| self.fixed[i].1)
    }

    pub fn subnet_of(&self, slot: u32) -> u32 {
        self.blocks[split(slot).0].subnet
    }

    /// The slot's lock (and data).
    pub fn cell(&self, slot: u32) -> &Lock<Slot> {
        let (b, off) = split(slot);
        &self.blocks[b].slots[off].0
    }

    pub fn owner(&self, block: usize) -> BlockOwner {
        BlockOwner::decode(self.blocks[block].owner.load(Ordering::Acquire))
    }

    /// Take a slot that is `FREE` (its lock held by the caller) out of the pristine map.
    /// Returns false when it cannot be ours: pristine in a block owned by another node, or
    /// its pristine bit was just taken by a concurrent allocation (which will find the slot
    /// taken when it gets the lock, and move on).
    pub fn unpristine(&self, slot: u32) -> bool {
        let (b, off) = split(slot);
        let block = &self.blocks[b];
        let bit = 1u64 << off;
        if block.pristine.load(Ordering::Acquire) & bit == 0 {
            return true;
        }
        if matches!(self.owner(b), BlockOwner::Remote(_)) {
            return false;
        }
        let before = block.pristine.fetch_and(!bit, Ordering::AcqRel);
        if before == bit {
            self.clear_summary(b);
        }
        before & bit != 0
    }

    /// Take a slot out of the pristine map unconditionally (restoring a persisted lease: the
    /// record wins over block ownership).
    pub fn force_unpristine(&self, slot: u32) {
        let (b, off) = split(slot);
        let bit = 1u64 << off;
        if self.blocks[b].pristine.fetch_and(!bit, Ordering::AcqRel) == bit {
            self.clear_summary(b);
        }
    }

    fn clear_summary(&self, block: usize) {
        let b = &self.blocks[block];
        let pool = &self.pools[b.subnet as usize];
        let i = block as u32 - pool.first_block;
        if i < pool.nblocks {
            pool.summary[(i / 64) as usize].fetch_and(!(1u64 << (i % 64)), Ordering::AcqRel);
        }
    }

    /// Take the lowest pristine slot of `block` (CAS on the map), returned locked for the
    /// caller to assign; `None` when the block has none left or belongs to another node.
    pub fn take_pristine(&self, block: u32) -> Option<(Guard<'_, Slot>, u32)> {
        if matches!(self.owner(block as usize), BlockOwner::Remote(_)) {
            return None;
        }
        self.take_pristine_own(block)
    }

    /// [`Self::take_pristine`] from a block the caller's shard claimed, which never belongs to
    /// another node (a claimed block's owner never changes), so its owner is not read. Inlined:
    /// once per new client's offer, where the call itself cost about a quarter of the work
    /// (measured with callgrind, `pipeline/dora/direct`).
    #[inline(always)]
    pub fn take_pristine_own(&self, block: u32) -> Option<(Guard<'_, Slot>, u32)> {
        let b = block as usize;
        let blk = &self.blocks[b];
        let map = &blk.pristine;
        let mut w = map.load(Ordering::Acquire);
        while w != 0 {
            let bit = w & w.wrapping_neg();
            match map.compare_exchange_weak(w, w & !bit, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    if w == bit {
                        self.clear_summary(b);
                    }
                    let off = bit.trailing_zeros();
                    let g = lock(&blk.slots[off as usize].0);
                    // A request for this very address may have taken it between our CAS
                    // and our lock (it saw the bit already clear): then try the next one.
                    if g.state == st::FREE {
                        return Some((g, (block << BLOCK_BITS) | off));
                    }
                    w = map.load(Ordering::Acquire);
                }
                Err(now) => w = now,
            }
        }
        None
    }

    /// Claim the next unclaimed block of `subnet` for `shard` (one CAS on the owner word).
    /// O(1) amortised: the cursor only moves forward.
    pub fn claim(&self, subnet: u32, shard: usize) -> Option<u32> {
        let pool = &self.pools[subnet as usize];
        let me = BlockOwner::Shard(shard as u32).encode();
        loop {
            let c = pool.claim_cursor.load(Ordering::Acquire);
            if c >= pool.nblocks {
                return None;
            }
            let b = pool.first_block + c;
            let won = self.blocks[b as usize]
                .owner
                .compare_exchange(
                    BlockOwner::UNCLAIMED,
                    me,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
            let _ =
                pool.claim_cursor
                    .compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Relaxed);
            if won {
                return Some(b);
            }
        }
    }

    /// Any pristine slot of `subnet`, whoever owns its block (remote blocks excepted). O(1)
    /// amortised: all-zero summary words are skipped for good.
    pub fn take_pristine_anywhere(&self, subnet: u32) -> Option<(Guard<'_, Slot>, u32)> {
        let pool = &self.pools[subnet as usize];
        let words = pool.summary.len() as u32;
        let mut w = pool.summary_cursor.load(Ordering::Acquire);
        while w < words {
            let bits = pool.summary[w as usize].load(Ordering::Acquire);
            if bits == 0 {
                let _ = pool.summary_cursor.compare_exchange(
                    w,
                    w + 1,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                w += 1;
                continue;
            }
            let bit = bits.trailing_zeros();
            let block = pool.first_block + w * 64 + bit;
            if let Some(found) = self.take_pristine(block) {
                return Some(found);
            }
            // Emptied meanwhile, or remote: never pristine again for us.
            pool.summary[w as usize].fetch_and(!(1u64 << bit), Ordering::AcqRel);
        }
        None
    }

    /// The pristine map of a block (tests).
    #[cfg(test)]
    pub fn pristine_map(&self, block: usize) -> u64 {
        self.blocks[block].pristine.load(Ordering::Acquire)
    }

    /// Hand an unclaimed block to a remote node (multi-node seam). Fails if a shard (or another
    /// node) already owns it.
    pub fn set_remote(&self, block: usize, node: u32) -> bool {
        let ok = self.blocks[block]
            .owner
            .compare_exchange(
                BlockOwner::UNCLAIMED,
                BlockOwner::Remote(node).encode(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if ok {
            self.clear_summary(block);
        }
        ok
    }

    /// Bytes held by the address space (slots, blocks, maps, lookup tables).
    pub fn memory(&self) -> usize {
        use std::mem::size_of;
        self.blocks.len() * size_of::<Block>()
            + self
                .pools
                .iter()
                .map(|p| size_of::<Pool>() + p.summary.len() * 8)
                .sum::<usize>()
            + self.ranges.len() * size_of::<RangeEntry>()
            + self.fixed.len() * 8
    }
}

/// Parse a [`SubnetId`] into a pool index, if it names one.
pub(super) fn pool_index(space: &Space, id: SubnetId) -> Option<u32> {
    ((id.0 as usize) < space.pools.len()).then_some(id.0)
}
