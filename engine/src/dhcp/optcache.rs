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
const KEY_WORDS: usize = 1 + MAX_LIST / 8;
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
}

impl core::fmt::Debug for OptCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OptCache")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// A key: (`id`, `list`) as words, how many of them are in use (the rest are zero, here and
/// in a stored key of the same list length, which word 0 holds), and their hash.
struct Key {
    words: [u64; KEY_WORDS],
    // Only the tests look: `put` stores every word, the unused ones zero.
    #[cfg_attr(not(test), allow(dead_code))]
    used: usize,
    hash: u64,
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

/// FxHash-style mixing of one word (as the server's other indices hash).
#[inline]
fn mix(h: u64, w: u64) -> u64 {
    (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

/// Word 0 of the key of (`id`, `list`): a marker bit (so that an empty entry never matches),
/// the list's length and `id`.
#[inline]
fn head_word(id: u32, list: &[u8]) -> u64 {
    (1 << 63) | ((list.len() as u64) << 32) | u64::from(id)
}

/// Call `f` with each word of `list` after word 0: whole little-endian 8-byte words, then the
/// rest zero-padded as a whole word would be. The one definition of the key's words, for
/// [`key`] (which stores them) and [`OptCache::get`] (which hashes and compares them straight
/// from the list, without building a key on the stack: that copy was most of a lookup).
#[inline(always)]
fn list_words(list: &[u8], mut f: impl FnMut(u64)) {
    let mut rest = list;
    while let Some((chunk, more)) = rest.split_first_chunk::<8>() {
        f(u64::from_le_bytes(*chunk));
        rest = more;
    }
    let tail = rest.len();
    if tail != 0 {
        // The last 8 bytes of the list, shifted so that only the tail remains; a list
        // shorter than a word is gathered byte by byte.
        f(match list.last_chunk::<8>() {
            Some(last) => u64::from_le_bytes(*last) >> (8 * (8 - tail)),
            None => rest
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
        });
    }
}

/// The key of (`id`, `list`); `None` when the list is too long to cache.
fn key(id: u32, list: &[u8]) -> Option<Key> {
    if list.len() > MAX_LIST {
        return None;
    }
    let mut words = [0u64; KEY_WORDS];
    let first = head_word(id, list);
    words[0] = first;
    let mut hash = mix(0, first);
    let mut used = 1;
    list_words(list, |w| {
        if let Some(slot) = words.get_mut(used) {
            *slot = w;
        }
        hash = mix(hash, w);
        used += 1;
    });
    Some(Key { words, used, hash })
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
        }
    }

    #[inline]
    fn entry(&self, hash: u64) -> Option<&Entry> {
        if self.entries.is_empty() {
            return None;
        }
        let i = (hash >> 32) as usize & (self.entries.len() - 1);
        self.entries.get(i)
    }

    /// The cached block of (`id`, `list`), if its length is at most `room`: copied into the
    /// front of `out` (which must hold `room` bytes), its length and block sum returned. On a
    /// miss (or a block longer than `room`) `None` is returned. Either way `out` may have been
    /// written past what is returned (up to 64 bytes, or the next multiple of 8, that fit).
    pub(crate) fn get(
        &self,
        id: u32,
        list: &[u8],
        room: usize,
        out: &mut [u8],
    ) -> Option<(usize, u16)> {
        if list.len() > MAX_LIST {
            return None;
        }
        // The key's words are hashed, and then compared, straight from the list (as `key`
        // builds them).
        let first = head_word(id, list);
        let mut hash = mix(0, first);
        list_words(list, |w| hash = mix(hash, w));
        let e = self.entry(hash)?;
        let s1 = e.seq.load(Ordering::Acquire);
        if s1 & 1 != 0 {
            return None;
        }
        // Words past the list's are zero in a stored key of the same length (which word 0
        // compares), so they need no comparing.
        let mut stored = e.key.iter();
        let mut same = stored
            .next()
            .is_some_and(|a| a.load(Ordering::Relaxed) == first);
        list_words(list, |w| {
            same &= stored
                .next()
                .is_some_and(|a| a.load(Ordering::Relaxed) == w);
        });
        if !same {
            return None;
        }
        let len_sum = e.len_sum.load(Ordering::Relaxed);
        let len = (len_sum & 0xffff) as usize;
        if len > MAX_BLOCK || len > room {
            return None;
        }
        let words = len.div_ceil(8);
        if let (true, Some(first)) = (len <= SHORT_BLOCK, out.first_chunk_mut::<SHORT_BLOCK>()) {
            // The usual short block: a fixed run of word copies, no loop (the words past
            // `len` land in the room after the block, which is not part of the reply).
            copy_words(first, &e.data);
        } else if let Some(whole) = out.get_mut(..words * 8) {
            // Whole words with constant-size stores, the last one past `len` when it fits.
            copy_words(whole, &e.data);
        } else {
            let tail = copy_words(out.get_mut(..len)?, &e.data);
            if let Some(word) = e.data.get(len / 8)
                && !tail.is_empty()
            {
                let w = word.load(Ordering::Relaxed).to_le_bytes();
                tail.copy_from_slice(&w[..tail.len()]);
            }
        }
        // The copy is valid only if no writer touched the entry meanwhile.
        fence(Ordering::Acquire);
        (e.seq.load(Ordering::Relaxed) == s1).then_some((len, (len_sum >> 16) as u16))
    }

    /// Remember `block` and its block sum `sum` for (`id`, `list`). Skipped when the list or
    /// the block is too long, or when another writer holds the entry.
    pub(crate) fn put(&self, id: u32, list: &[u8], block: &[u8], sum: u16) {
        if block.len() > MAX_BLOCK {
            return;
        }
        let Some(k) = key(id, list) else {
            return;
        };
        let Some(e) = self.entry(k.hash) else {
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
        for (a, &b) in e.key.iter().zip(&k.words) {
            a.store(b, Ordering::Relaxed);
        }
        e.len_sum
            .store(block.len() as u32 | u32::from(sum) << 16, Ordering::Relaxed);
        for (word, chunk) in e.data.iter().zip(block.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
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
    fn keys_are_the_zero_padded_list_for_every_length() {
        let list: Vec<u8> = (1..=MAX_LIST as u8 + 1).collect();
        for n in 0..=MAX_LIST {
            let Key { words: k, used, .. } = key(9, &list[..n]).expect("short enough");
            let mut padded = [0u8; MAX_LIST];
            padded[..n].copy_from_slice(&list[..n]);
            assert_eq!(k[0], (1 << 63) | ((n as u64) << 32) | 9);
            for (i, w) in k[1..].iter().enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(&padded[i * 8..i * 8 + 8]);
                assert_eq!(*w, u64::from_le_bytes(b), "length {n} word {i}");
            }
            assert_eq!(used, 1 + n.div_ceil(8), "length {n}");
        }
        assert!(key(9, &list).is_none());
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
    fn concurrent_writers_never_let_a_reader_see_a_torn_block() {
        // Four threads hammer ONE entry with different keys; every hit must return exactly
        // the block of the key asked for.
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
                        if let Some((n, s)) = c.get(t, &list, MAX_BLOCK, &mut out) {
                            assert_eq!(&out[..n], &want[..], "thread {t} iteration {i}");
                            assert_eq!(s, sum, "thread {t} iteration {i}");
                            hits += 1;
                        }
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
