//! A lock-free cache of encoded option blocks: (subnet, parameter request list) -> the bytes
//! of the configured options a reply carries.
//!
//! WHY: the configured options of a reply depend only on the subnet's options and on the
//! client's parameter request list (option 55), and a population of clients sends a handful of
//! distinct lists (one per operating system / DHCP client). Walking the list, looking each code
//! up and copying each option costs several hundred instructions per packet; copying one
//! cached block costs a few dozen. The decision shares one `Server` between worker cores, so
//! the cache must be shared too, without a lock on the packet path and without `unsafe`.
//!
//! HOW: a fixed table of entries, each guarded by a sequence counter (a seqlock made of
//! atomics only, so it is plain safe Rust): a writer makes the counter odd, stores the key and
//! the block, and makes it even again; a reader copies the block out and keeps it only if the
//! counter was even and unchanged around the copy (RFC-free, but the classic construction;
//! the fences follow Boehm, "Can seqlocks get along with programming language memory
//! models?", 2012). A reader never waits; a writer that finds the entry busy simply does not
//! cache. Entries are direct-mapped by a hash of the key; a colliding key overwrites.
//!
//! A hit is the usual reply's path, so it is kept short: the key is a few whole-word loads
//! from the list with no loop ([`Key`]), three of its words are mixed by one multiplication
//! and compared (all five for lists longer than 16 codes), the entry's index is the hash
//! masked (no division, and a disabled cache is simply one without entries), and a block of up
//! to 64 bytes is copied as a fixed run of words.
//! That copy runs past the block; what it writes there is zeros (`put` stores zeros past every
//! block, and a copy torn by a racing writer is zeroed before it is given up), because the
//! reply writer sums the bytes past its options as zeros (`wire/emit.rs`, its checksum
//! window).
//!
//! What is cached is exactly what the uncached path writes when nothing has to be left out for
//! lack of room, so a hit is used only when the whole block fits (then the best-effort
//! per-option path would have written every option too): replies are byte-for-byte the same
//! with or without the cache.
//!
//! Beside each block its checksum contribution is kept (`ReplyWriter::block_sum`, computed
//! once when the block is stored), so the reply's UDP checksum does not sum the block's bytes
//! again per packet. It is read under the same sequence counter as the block, so a reader
//! never pairs a block with another block's sum.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Longest parameter request list that is cached (longer lists take the uncached path).
pub(crate) const MAX_LIST: usize = 32;
/// Largest cached block in bytes.
pub(crate) const MAX_BLOCK: usize = 256;
/// Blocks up to this long are copied with a fixed number of word stores.
const SHORT_BLOCK: usize = 64;
/// Words of a key ([`Key`]).
const KEY_WORDS: usize = 5;
const BLOCK_WORDS: usize = MAX_BLOCK / 8;
/// Entries in a server's cache (a power of two): distinct (subnet, list) pairs in use at once.
pub(crate) const DEFAULT_ENTRIES: usize = 256;

/// One cached block. Every field is an atomic: readers may race with a writer and detect it.
#[repr(align(64))]
struct Entry {
    /// Even: stable; odd: being written.
    seq: AtomicU32,
    /// Block length in bytes (low 16 bits) and its block sum (high 16 bits).
    len_sum: AtomicU32,
    /// The [`Key`] of the block.
    key: [AtomicU64; KEY_WORDS],
    data: [AtomicU64; BLOCK_WORDS],
}

impl Entry {
    fn new() -> Entry {
        Entry {
            seq: AtomicU32::new(0),
            len_sum: AtomicU32::new(0),
            // Word 0 of a real key is never 0 (it carries `1 << 63`), so empty entries miss.
            key: std::array::from_fn(|_| AtomicU64::new(0)),
            data: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// See the module docs.
pub(crate) struct OptCache {
    entries: Box<[Entry]>,
    /// `entries.len() - 1` (a power of two less one), or 0 without entries: an entry's index
    /// is a hash masked with it, and a disabled cache's lookups find no entry at index 0.
    mask: usize,
}

impl core::fmt::Debug for OptCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OptCache")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// The key of (`id`, `list`): five words that name the pair exactly, computed without a loop.
///
/// Word 0 holds a marker bit (so that an empty entry never matches), the list's length and
/// `id`. The list's bytes are covered by whole little-endian 8-byte loads: its first 8 bytes
/// (word 1) and its last 8 (word 2, overlapping word 1 for lists of 9 to 15 codes), and for
/// lists longer than 16 bytes 8..16, and longer than 24 bytes 16..24 (words 3 and 4, zero
/// otherwise). For one length those loads cover every byte, so equal keys mean equal lists.
/// A list shorter than 8 bytes is one zero-padded word, in words 1 and 2.
///
/// WHY this shape: clients send lists of about 8 to 16 codes, for which a key is two loads
/// and its comparison three word compares, straight-line (words 3 and 4 are computed and
/// compared only for longer lists); a key made of the list's zero-padded words needs a loop
/// and a shifted tail, and cost most of a cache hit.
#[derive(Clone, Copy, Debug)]
struct Key<'l> {
    /// Words 0 to 2.
    short: [u64; 3],
    /// The list, read again for words 3 and 4.
    list: &'l [u8],
}

impl<'l> Key<'l> {
    /// The key of (`id`, `list`); `None` when the list is too long to cache.
    #[inline(always)]
    fn of(id: u32, list: &'l [u8]) -> Option<Key<'l>> {
        let n = list.len();
        if n > MAX_LIST {
            return None;
        }
        let head = (1 << 63) | ((n as u64) << 32) | u64::from(id);
        let (first, last) = match (list.first_chunk::<8>(), list.last_chunk::<8>()) {
            (Some(first), Some(last)) => (u64::from_le_bytes(*first), u64::from_le_bytes(*last)),
            _ => {
                let w = short_word(list);
                (w, w)
            }
        };
        Some(Key {
            short: [head, first, last],
            list,
        })
    }

    /// Words 3 and 4: what `first` and `last` do not cover of a list longer than 16 codes,
    /// zero otherwise.
    #[inline]
    fn middle(&self) -> [u64; 2] {
        let word = |at: usize| {
            self.list
                .get(at..)
                .and_then(|w| w.first_chunk::<8>())
                .filter(|_| self.list.len() > at + 8)
                .map_or(0, |w| u64::from_le_bytes(*w))
        };
        [word(8), word(16)]
    }

    /// All five words.
    fn words(&self) -> [u64; KEY_WORDS] {
        let ([head, first, last], [m1, m2]) = (self.short, self.middle());
        [head, first, last, m1, m2]
    }

    /// Whether `stored` (an entry's key) is this key. Word 0 holds the list's length, so
    /// when it is equal the words past a list of at most 16 codes are zero in both keys and
    /// are not compared.
    #[inline(always)]
    fn matches(&self, stored: &[AtomicU64; KEY_WORDS]) -> bool {
        let word = |i: usize| stored[i].load(Ordering::Relaxed);
        let [head, first, last] = self.short;
        word(0) == head
            && word(1) == first
            && word(2) == last
            && (self.list.len() <= 16 || {
                let [m1, m2] = self.middle();
                word(3) == m1 && word(4) == m2
            })
    }

    /// The words that decide short lists, combined and mixed by one multiplication (FxHash's
    /// constant, as the server's other indices hash; the index is taken from the product's
    /// high half, which every input bit reaches). Longer lists that share these words differ
    /// in the comparison. The last word is rotated so that a list of exactly 8 codes, whose
    /// first and last words are the same, does not cancel out.
    #[inline]
    fn hash(&self) -> u64 {
        let [head, first, last] = self.short;
        (head ^ first ^ last.rotate_left(29)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
    }
}

/// A list shorter than 8 bytes as one zero-padded little-endian word: two overlapping 4-byte
/// loads from 4 bytes on, byte by byte below.
#[inline]
fn short_word(list: &[u8]) -> u64 {
    match (list.first_chunk::<4>(), list.last_chunk::<4>()) {
        (Some(lo), Some(hi)) => {
            u64::from(u32::from_le_bytes(*lo))
                | u64::from(u32::from_le_bytes(*hi)) << (8 * (list.len() - 4))
        }
        _ => list
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
    }
}

/// Copy `data`'s words into the whole 8-byte chunks of `dst`, as many as both have; returns
/// the rest of `dst` (shorter than a word). Inlined, so a fixed-size `dst` is a fixed run of
/// stores.
#[inline(always)]
fn copy_words<'o>(dst: &'o mut [u8], data: &[AtomicU64]) -> &'o mut [u8] {
    let mut chunks = dst.chunks_exact_mut(8);
    for (chunk, word) in (&mut chunks).zip(data) {
        chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
    }
    chunks.into_remainder()
}

impl OptCache {
    /// A cache of `entries` entries (rounded up to a power of two); 0 disables caching.
    pub(crate) fn new(entries: usize) -> OptCache {
        let n = if entries == 0 {
            0
        } else {
            entries.next_power_of_two()
        };
        OptCache {
            entries: (0..n).map(|_| Entry::new()).collect(),
            mask: n.saturating_sub(1),
        }
    }

    #[inline]
    fn entry(&self, hash: u64) -> Option<&Entry> {
        self.entries.get((hash >> 32) as usize & self.mask)
    }

    /// The cached block of (`id`, `list`), if its length is at most `room`: copied into the
    /// front of `out` (which must hold `room` bytes), its length and block sum returned. On a
    /// miss (or a block longer than `room`) `None` is returned. Either way `out` may have been
    /// written past what is returned (up to 64 bytes, or the next multiple of 8, that fit),
    /// but only with zeros: the reply writer counts on the bytes past its options being zero
    /// (its checksum window, `wire/emit.rs`).
    pub(crate) fn get(
        &self,
        id: u32,
        list: &[u8],
        room: usize,
        out: &mut [u8],
    ) -> Option<(usize, u16)> {
        let key = Key::of(id, list)?;
        let e = self.entry(key.hash())?;
        let s1 = e.seq.load(Ordering::Acquire);
        if s1 & 1 != 0 {
            return None;
        }
        if !key.matches(&e.key) {
            return None;
        }
        let len_sum = e.len_sum.load(Ordering::Relaxed);
        let len = (len_sum & 0xffff) as usize;
        if len > room {
            return None;
        }
        // The words past a block are stored as zeros (`put`), so copying whole words past
        // `len` writes zeros there.
        let copied = if let (true, Some(first)) =
            (len <= SHORT_BLOCK, out.first_chunk_mut::<SHORT_BLOCK>())
        {
            // The usual short block: a fixed run of word copies, no loop.
            copy_words(first, &e.data);
            SHORT_BLOCK
        } else if len > MAX_BLOCK {
            // Never stored (`put`), but a length read while a writer raced is not trusted.
            return None;
        } else if let Some(whole) = out.get_mut(..len.div_ceil(8) * 8) {
            // Whole words with constant-size stores.
            copy_words(whole, &e.data);
            whole.len()
        } else {
            let tail = copy_words(out.get_mut(..len)?, &e.data);
            if let Some(word) = e.data.get(len / 8)
                && !tail.is_empty()
            {
                let w = word.load(Ordering::Relaxed).to_le_bytes();
                tail.copy_from_slice(&w[..tail.len()]);
            }
            len
        };
        // The copy is valid only if no writer touched the entry meanwhile.
        fence(Ordering::Acquire);
        if e.seq.load(Ordering::Relaxed) != s1 {
            // A writer raced the copy: zeros, not a mix of two blocks, where it went.
            if let Some(torn) = out.get_mut(..copied) {
                torn.fill(0);
            }
            return None;
        }
        Some((len, (len_sum >> 16) as u16))
    }

    /// Remember `block` and its block sum `sum` for (`id`, `list`). Skipped when the list or
    /// the block is too long, or when another writer holds the entry.
    pub(crate) fn put(&self, id: u32, list: &[u8], block: &[u8], sum: u16) {
        if block.len() > MAX_BLOCK {
            return;
        }
        let Some(k) = Key::of(id, list) else {
            return;
        };
        let Some(e) = self.entry(k.hash()) else {
            return;
        };
        let s = e.seq.load(Ordering::Relaxed);
        if s & 1 != 0
            || e.seq
                .compare_exchange(s, s.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // Readers that see any of the stores below also see the odd counter.
        fence(Ordering::Release);
        for (a, b) in e.key.iter().zip(k.words()) {
            a.store(b, Ordering::Relaxed);
        }
        e.len_sum
            .store(block.len() as u32 | u32::from(sum) << 16, Ordering::Relaxed);
        // The block zero-padded to whole words, and zeros past it (see `get`).
        let mut chunks = block.chunks(8);
        for word in &e.data {
            let mut b = [0u8; 8];
            if let Some(chunk) = chunks.next() {
                b[..chunk.len()].copy_from_slice(chunk);
            }
            word.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        e.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn block_for(id: u32, list: &[u8]) -> Vec<u8> {
        // Deterministic content derived from the key, of a key-dependent length.
        let n = (usize::from(list.iter().copied().fold(0u8, u8::wrapping_add)) + id as usize)
            % MAX_BLOCK;
        (0..n)
            .map(|i| (i as u8) ^ (id as u8) ^ list.len() as u8)
            .collect()
    }

    #[test]
    fn keys_name_every_byte_of_every_list_length() {
        let list: Vec<u8> = (1..=MAX_LIST as u8 + 1).collect();
        for n in 0..=MAX_LIST {
            let l = &list[..n];
            let k = Key::of(9, l).expect("short enough").words();
            // The definition, from the zero-padded list.
            let mut padded = [0u8; MAX_LIST];
            padded[..n].copy_from_slice(l);
            let word = |at: usize| u64::from_le_bytes(padded[at..at + 8].try_into().unwrap());
            let last = if n >= 8 {
                u64::from_le_bytes(l[n - 8..].try_into().unwrap())
            } else {
                word(0)
            };
            let middle = |at: usize| if n > at + 8 { word(at) } else { 0 };
            assert_eq!(
                k,
                [
                    (1 << 63) | ((n as u64) << 32) | 9,
                    word(0),
                    last,
                    middle(8),
                    middle(16)
                ],
                "length {n}"
            );
            // Any one byte changed changes the key.
            for i in 0..n {
                let mut other = l.to_vec();
                other[i] ^= 0x80;
                assert_ne!(
                    Key::of(9, &other).map(|k| k.words()),
                    Some(k),
                    "length {n} byte {i}"
                );
            }
        }
        assert!(Key::of(9, &list).is_none());
    }

    #[test]
    fn hit_after_put_and_misses_otherwise() {
        let c = OptCache::new(16);
        let mut out = [0u8; MAX_BLOCK];
        let list = [1, 3, 6, 15, 28, 42];
        assert_eq!(c.get(0, &list, MAX_BLOCK, &mut out), None);
        let block = [1u8, 4, 255, 255, 0, 0, 3, 4, 10, 0, 0, 1, 7];
        c.put(0, &list, &block, 0xbeef);
        assert_eq!(
            c.get(0, &list, MAX_BLOCK, &mut out),
            Some((block.len(), 0xbeef))
        );
        assert_eq!(&out[..block.len()], &block);
        // Another subnet, another list, a prefix of the list: misses.
        assert_eq!(c.get(1, &list, MAX_BLOCK, &mut out), None);
        assert_eq!(c.get(0, &[1, 3, 6], MAX_BLOCK, &mut out), None);
        assert_eq!(c.get(0, &list[..5], MAX_BLOCK, &mut out), None);
        // Not enough room: no hit.
        assert_eq!(c.get(0, &list, block.len() - 1, &mut out), None);
        // An empty block is a valid answer (nothing configured that was asked for).
        c.put(2, &[99], &[], 0);
        assert_eq!(c.get(2, &[99], 0, &mut out), Some((0, 0)));
    }

    #[test]
    fn lookups_compare_every_byte_of_every_list_length() {
        // `get` hashes and compares the list's words itself; it must find exactly what `put`
        // stored through `key`, for whole words, a tail, and lists shorter than a word.
        let list: Vec<u8> = (1..=MAX_LIST as u8).collect();
        let mut out = [0u8; MAX_BLOCK];
        for n in 0..=MAX_LIST {
            let c = OptCache::new(64);
            let l = &list[..n];
            c.put(3, l, &[n as u8; 5], n as u16);
            assert_eq!(
                c.get(3, l, MAX_BLOCK, &mut out),
                Some((5, n as u16)),
                "len {n}"
            );
            assert_eq!(&out[..5], &[n as u8; 5]);
            for i in 0..n {
                let mut other = l.to_vec();
                other[i] ^= 0x80;
                assert_eq!(
                    c.get(3, &other, MAX_BLOCK, &mut out),
                    None,
                    "len {n} byte {i}"
                );
            }
            if n > 0 {
                assert_eq!(c.get(3, &l[..n - 1], MAX_BLOCK, &mut out), None, "len {n}");
            }
            assert_eq!(c.get(4, l, MAX_BLOCK, &mut out), None, "len {n}");
        }
    }

    #[test]
    fn too_long_lists_and_blocks_are_not_cached_and_disabled_cache_never_hits() {
        let c = OptCache::new(4);
        let mut out = [0u8; MAX_BLOCK + 8];
        let long = [7u8; MAX_LIST + 1];
        c.put(0, &long, &[1, 2], 0);
        assert_eq!(c.get(0, &long, MAX_BLOCK, &mut out), None);
        c.put(0, &[1], &[0u8; MAX_BLOCK + 1], 0);
        assert_eq!(c.get(0, &[1], MAX_BLOCK + 8, &mut out), None);
        let off = OptCache::new(0);
        off.put(0, &[1], &[1, 1, 1], 0);
        assert_eq!(off.get(0, &[1], MAX_BLOCK, &mut out), None);
    }

    #[test]
    fn a_colliding_key_replaces_the_entry() {
        // One entry: every key maps to it.
        let c = OptCache::new(1);
        let mut out = [0u8; MAX_BLOCK];
        c.put(0, &[1], &[1, 1, 1], 1);
        c.put(0, &[2], &[2, 2], 2);
        assert_eq!(c.get(0, &[1], MAX_BLOCK, &mut out), None);
        assert_eq!(c.get(0, &[2], MAX_BLOCK, &mut out), Some((2, 2)));
        assert_eq!(&out[..2], &[2, 2]);
    }

    #[test]
    fn past_the_block_only_zeros_are_written() {
        // The reply writer's checksum window needs zeros past the options: a short block
        // stored where a longer one was must not copy the longer one's tail along.
        let c = OptCache::new(1);
        let mut out = [0u8; MAX_BLOCK];
        c.put(0, &[1], &[0xee; 100], 1);
        c.put(0, &[2], &[7; 13], 2);
        assert_eq!(c.get(0, &[2], MAX_BLOCK, &mut out), Some((13, 2)));
        assert_eq!(&out[..13], &[7; 13]);
        assert!(out[13..].iter().all(|&b| b == 0));
        // A long block copied in whole words: its last word is zero-padded.
        c.put(0, &[3], &[9; 77], 3);
        let mut out = [0u8; MAX_BLOCK];
        assert_eq!(c.get(0, &[3], MAX_BLOCK, &mut out), Some((77, 3)));
        assert!(out[77..].iter().all(|&b| b == 0));
    }

    #[test]
    fn concurrent_writers_never_let_a_reader_see_a_torn_block() {
        // Four threads hammer ONE entry with different keys; every hit must return exactly
        // the block of the key asked for, and hit or miss nothing but zeros past it.
        let c = Arc::new(OptCache::new(1));
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    let mut out = [0u8; MAX_BLOCK];
                    let mut hits = 0u32;
                    for i in 0..20_000u32 {
                        let list: Vec<u8> = (0..(i % 9) as u8).map(|b| b ^ t as u8).collect();
                        let want = block_for(t, &list);
                        let sum = want.len() as u16 ^ 0x5a5a;
                        out.fill(0);
                        let got = c.get(t, &list, MAX_BLOCK, &mut out);
                        if let Some((n, s)) = got {
                            assert_eq!(&out[..n], &want[..], "thread {t} iteration {i}");
                            assert_eq!(s, sum, "thread {t} iteration {i}");
                            hits += 1;
                        }
                        let past = &out[got.map_or(0, |(n, _)| n)..];
                        assert!(past.iter().all(|&b| b == 0), "thread {t} iteration {i}");
                        c.put(t, &list, &want, sum);
                    }
                    hits
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no torn block");
        }
    }
}
