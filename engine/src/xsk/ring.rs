//! The four AF_XDP rings, typed and transactional.
//!
//! Every ring is a single-producer / single-consumer array shared with the kernel: a `producer`
//! and a `consumer` index (free-running `u32`, wrapping), a `flags` word (`XDP_RING_NEED_WAKEUP`)
//! and `size` (a power of two) descriptors. Userspace *produces* on the fill and TX rings and
//! *consumes* the RX and completion rings; the kernel does the opposite.
//!
//! The types make the wrong move unrepresentable: a [`FillRing`] only takes frame addresses, a
//! [`TxRing`] only takes `xdp_desc`, and only the consumer rings can be read. Writes go through
//! a [`Writer`] (reserve -> write -> `commit`; dropping it without `commit` publishes nothing)
//! and reads through a [`Reader`] (peek -> `release`; dropping it without `release` consumes
//! nothing), so a descriptor is never half-published.
//!
//! Memory ordering follows libxdp's `xsk.h`: the producer writes descriptors, then stores the
//! producer index with Release; the consumer loads the producer index with Acquire before reading
//! descriptors and stores its consumer index with Release after it has copied them out.

use super::sys::{self, Mmap};
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Entries a producer may still write: `size - (prod - cons)` in wrapping arithmetic.
#[inline]
pub(crate) const fn free_entries(size: u32, prod: u32, cons: u32) -> u32 {
    size.wrapping_sub(prod.wrapping_sub(cons))
}

/// Entries a consumer may still read: `prod - cons` in wrapping arithmetic.
#[inline]
pub(crate) const fn filled_entries(prod: u32, cons: u32) -> u32 {
    prod.wrapping_sub(cons)
}

/// The memory of one ring: either a kernel mapping or (tests) a heap buffer that plays the
/// kernel's part.
struct RingMem<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    size: u32,
    _backing: Backing,
    _marker: PhantomData<T>,
}

enum Backing {
    Mapped(#[expect(dead_code, reason = "held only to keep the mapping alive")] Mmap),
    #[cfg(test)]
    Heap(#[expect(dead_code, reason = "held only to keep the buffer alive")] Box<[u64]>),
}

// SAFETY: the ring memory is owned by this value (mapping or heap buffer) and the indices are
// atomics; moving the owner to another thread is sound. Rings are not `Sync`: one side of a
// ring is driven by exactly one thread at a time (`&mut self` on every operation).
unsafe impl<T: Send> Send for RingMem<T> {}

impl<T: Copy> RingMem<T> {
    /// Map a ring of `size` entries of a socket at mmap page offset `pgoff`, using the kernel's
    /// offsets for this ring.
    fn map(fd: RawFd, off: &libc::xdp_ring_offset, size: u32, pgoff: u64) -> io::Result<Self> {
        if !size.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ring size must be a power of two",
            ));
        }
        let bytes = off.desc as usize + size as usize * size_of::<T>();
        let map = Mmap::of_fd(fd, bytes, pgoff)?;
        for (o, align) in [
            (off.producer, align_of::<AtomicU32>()),
            (off.consumer, align_of::<AtomicU32>()),
            (off.flags, align_of::<AtomicU32>()),
            (off.desc, align_of::<T>()),
        ] {
            if !(o as usize).is_multiple_of(align) || o as usize + size_of::<u32>() > bytes {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "misaligned AF_XDP ring offsets",
                ));
            }
        }
        let base = map.as_ptr();
        // SAFETY: the offsets were checked to lie inside the `bytes`-long mapping and to be
        // aligned for their types (above); the mapping is non-null.
        unsafe {
            Ok(RingMem {
                producer: NonNull::new_unchecked(base.add(off.producer as usize).cast()),
                consumer: NonNull::new_unchecked(base.add(off.consumer as usize).cast()),
                flags: NonNull::new_unchecked(base.add(off.flags as usize).cast()),
                descs: NonNull::new_unchecked(base.add(off.desc as usize).cast()),
                size,
                _backing: Backing::Mapped(map),
                _marker: PhantomData,
            })
        }
    }

    /// A heap-backed ring for unit tests: word 0 = producer, word 1 = consumer, word 2 = flags,
    /// descriptors from byte 64.
    #[cfg(test)]
    fn heap(size: u32) -> Self {
        assert!(size.is_power_of_two());
        assert!(align_of::<T>() <= 8);
        let words = 8 + (size as usize * size_of::<T>()).div_ceil(8);
        let mut buf = vec![0u64; words].into_boxed_slice();
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `buf` has room for the 64-byte header and `size` entries; u64 alignment covers
        // AtomicU32 and T (asserted); the box is kept alive in `_backing`.
        unsafe {
            RingMem {
                producer: NonNull::new_unchecked(base.cast()),
                consumer: NonNull::new_unchecked(base.add(4).cast()),
                flags: NonNull::new_unchecked(base.add(8).cast()),
                descs: NonNull::new_unchecked(base.add(64).cast()),
                size,
                _backing: Backing::Heap(buf),
                _marker: PhantomData,
            }
        }
    }

    #[inline]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into memory owned by `self` (see constructors), aligned, and only ever
        // accessed atomically.
        unsafe { self.producer.as_ref() }
    }

    #[inline]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    #[inline]
    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    #[inline]
    fn write(&mut self, idx: u32, value: T) {
        let slot = (idx & (self.size - 1)) as usize;
        // SAFETY: `slot < size`, so the pointer stays inside the descriptor array; the slot is
        // reserved for this producer (outside the consumer's window) until the index is published.
        unsafe { self.descs.as_ptr().add(slot).write(value) }
    }

    #[inline]
    fn read(&self, idx: u32) -> T {
        let slot = (idx & (self.size - 1)) as usize;
        // SAFETY: `slot < size`; the entry was published by the producer (acquire on the
        // producer index) and is not reused until our consumer index passes it.
        unsafe { self.descs.as_ptr().add(slot).read() }
    }
}

/// The producer side of a ring (fill, TX).
pub(crate) struct ProducerRing<T> {
    mem: RingMem<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> ProducerRing<T> {
    fn new(mem: RingMem<T>) -> Self {
        let cached_prod = mem.producer().load(Ordering::Relaxed);
        let cached_cons = mem.consumer().load(Ordering::Acquire);
        ProducerRing {
            mem,
            cached_prod,
            cached_cons,
        }
    }

    /// Number of free entries, refreshing the consumer index when the cache says fewer than
    /// `want` are free.
    fn free(&mut self, want: u32) -> u32 {
        let free = free_entries(self.mem.size, self.cached_prod, self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.mem.consumer().load(Ordering::Acquire);
        free_entries(self.mem.size, self.cached_prod, self.cached_cons)
    }

    /// Reserve up to `want` entries. Nothing is visible to the kernel until [`Writer::commit`].
    pub(crate) fn writer(&mut self, want: u32) -> Writer<'_, T> {
        let cap = self.free(want).min(want);
        Writer {
            start: self.cached_prod,
            cap,
            len: 0,
            ring: self,
        }
    }

    /// Publish as many of `items` as there is room for, in order; returns how many.
    pub(crate) fn publish<I>(&mut self, items: I) -> u32
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let items = items.into_iter();
        let mut w = self.writer(u32::try_from(items.len()).unwrap_or(u32::MAX));
        for item in items {
            if w.push(item).is_err() {
                break;
            }
        }
        w.commit()
    }

    /// Whether the kernel asked to be woken up (`XDP_RING_NEED_WAKEUP`).
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.mem.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries published but not yet consumed by the kernel.
    pub(crate) fn in_flight(&self) -> u32 {
        filled_entries(
            self.cached_prod,
            self.mem.consumer().load(Ordering::Acquire),
        )
    }
}

impl Writer<'_, libc::xdp_desc> {
    /// Queue the first `len` bytes of TX frame `frame` for sending. When the reservation is
    /// full the frame goes back to `free` and `false` is returned.
    #[inline]
    pub(crate) fn send_frame(
        &mut self,
        free: &mut super::umem::FreeList,
        frame: u64,
        len: u32,
    ) -> bool {
        let d = libc::xdp_desc {
            addr: frame,
            len,
            options: 0,
        };
        if self.push(d).is_err() {
            let _ = free.push(frame);
            return false;
        }
        true
    }
}

/// A reservation on a producer ring. Dropping it without [`commit`](Writer::commit) rolls the
/// reservation back: nothing written is published.
#[must_use = "a Writer publishes nothing unless committed"]
pub(crate) struct Writer<'a, T: Copy> {
    ring: &'a mut ProducerRing<T>,
    start: u32,
    cap: u32,
    len: u32,
}

impl<T: Copy> Writer<'_, T> {
    /// Append one entry; gives it back when the reservation is full.
    #[inline]
    pub(crate) fn push(&mut self, value: T) -> Result<(), T> {
        if self.len == self.cap {
            return Err(value);
        }
        self.ring
            .mem
            .write(self.start.wrapping_add(self.len), value);
        self.len += 1;
        Ok(())
    }

    /// Entries that can still be pushed.
    pub(crate) fn remaining(&self) -> u32 {
        self.cap - self.len
    }

    /// Publish the pushed entries to the kernel; returns how many.
    pub(crate) fn commit(self) -> u32 {
        let n = self.len;
        if n > 0 {
            self.ring.cached_prod = self.start.wrapping_add(n);
            // Release: descriptor writes above become visible before the new index.
            self.ring
                .mem
                .producer()
                .store(self.ring.cached_prod, Ordering::Release);
        }
        n
    }
}

/// The consumer side of a ring (RX, completion).
pub(crate) struct ConsumerRing<T> {
    mem: RingMem<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> ConsumerRing<T> {
    fn new(mem: RingMem<T>) -> Self {
        let cached_cons = mem.consumer().load(Ordering::Relaxed);
        let cached_prod = mem.producer().load(Ordering::Acquire);
        ConsumerRing {
            mem,
            cached_prod,
            cached_cons,
        }
    }

    /// Peek at up to `max` published entries. Nothing is consumed until [`Reader::release`].
    pub(crate) fn reader(&mut self, max: u32) -> Reader<'_, T> {
        let mut avail = filled_entries(self.cached_prod, self.cached_cons);
        if avail < max {
            // Acquire: descriptors written before the kernel's index store are visible.
            self.cached_prod = self.mem.producer().load(Ordering::Acquire);
            avail = filled_entries(self.cached_prod, self.cached_cons);
        }
        // A corrupted index can claim more than `size` entries; never read past one lap.
        let len = avail.min(max).min(self.mem.size);
        Reader {
            start: self.cached_cons,
            len,
            next: 0,
            ring: self,
        }
    }
}

/// Entries peeked from a consumer ring. Dropping it without [`release`](Reader::release)
/// consumes nothing.
#[must_use = "a Reader consumes nothing unless released"]
pub(crate) struct Reader<'a, T: Copy> {
    ring: &'a mut ConsumerRing<T>,
    start: u32,
    len: u32,
    next: u32,
}

impl<T: Copy> Reader<'_, T> {
    /// Number of entries available in this reader.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Give the ring back the entries returned by `next` so far; returns how many.
    pub(crate) fn release(self) -> u32 {
        let n = self.next;
        if n > 0 {
            self.ring.cached_cons = self.start.wrapping_add(n);
            // Release: our reads of the entries happen before the kernel may overwrite them.
            self.ring
                .mem
                .consumer()
                .store(self.ring.cached_cons, Ordering::Release);
        }
        n
    }
}

impl<T: Copy> Iterator for Reader<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.next == self.len {
            return None;
        }
        let v = self.ring.mem.read(self.start.wrapping_add(self.next));
        self.next += 1;
        Some(v)
    }
}

/// Userspace -> kernel: frames the kernel may receive into (UMEM addresses).
pub(crate) type FillRing = ProducerRing<u64>;
/// Kernel -> userspace: frames whose transmission finished (UMEM addresses).
pub(crate) type CompletionRing = ConsumerRing<u64>;
/// Kernel -> userspace: received frames.
pub(crate) type RxRing = ConsumerRing<libc::xdp_desc>;
/// Userspace -> kernel: frames to transmit.
pub(crate) type TxRing = ProducerRing<libc::xdp_desc>;

/// mmap page offsets of the rings (uapi `if_xdp.h`).
const PGOFF_RX_RING: u64 = 0;
const PGOFF_TX_RING: u64 = 0x8000_0000;
const PGOFF_FILL_RING: u64 = 0x1_0000_0000;
const PGOFF_COMPLETION_RING: u64 = 0x1_8000_0000;

pub(crate) fn map_fill(fd: RawFd, off: &libc::xdp_mmap_offsets, size: u32) -> io::Result<FillRing> {
    Ok(ProducerRing::new(RingMem::map(
        fd,
        &off.fr,
        size,
        PGOFF_FILL_RING,
    )?))
}

pub(crate) fn map_completion(
    fd: RawFd,
    off: &libc::xdp_mmap_offsets,
    size: u32,
) -> io::Result<CompletionRing> {
    Ok(ConsumerRing::new(RingMem::map(
        fd,
        &off.cr,
        size,
        PGOFF_COMPLETION_RING,
    )?))
}

pub(crate) fn map_rx(fd: RawFd, off: &libc::xdp_mmap_offsets, size: u32) -> io::Result<RxRing> {
    Ok(ConsumerRing::new(RingMem::map(
        fd,
        &off.rx,
        size,
        PGOFF_RX_RING,
    )?))
}

pub(crate) fn map_tx(fd: RawFd, off: &libc::xdp_mmap_offsets, size: u32) -> io::Result<TxRing> {
    Ok(ProducerRing::new(RingMem::map(
        fd,
        &off.tx,
        size,
        PGOFF_TX_RING,
    )?))
}

/// Kernel ring offsets of a socket whose rings have been sized.
pub(crate) fn mmap_offsets(fd: RawFd) -> io::Result<libc::xdp_mmap_offsets> {
    sys::getsockopt(fd, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's side of a heap ring, for tests.
    fn kernel_produce<T: Copy>(ring: &mut ConsumerRing<T>, values: &[T]) {
        let prod = ring.mem.producer().load(Ordering::Relaxed);
        let cons = ring.mem.consumer().load(Ordering::Relaxed);
        assert!(free_entries(ring.mem.size, prod, cons) as usize >= values.len());
        for (i, v) in values.iter().enumerate() {
            ring.mem.write(prod.wrapping_add(i as u32), *v);
        }
        ring.mem
            .producer()
            .store(prod.wrapping_add(values.len() as u32), Ordering::Release);
    }

    fn kernel_consume<T: Copy>(ring: &ProducerRing<T>, max: u32) -> Vec<T> {
        let prod = ring.mem.producer().load(Ordering::Acquire);
        let cons = ring.mem.consumer().load(Ordering::Relaxed);
        let n = filled_entries(prod, cons).min(max);
        let out = (0..n)
            .map(|i| ring.mem.read(cons.wrapping_add(i)))
            .collect();
        ring.mem
            .consumer()
            .store(cons.wrapping_add(n), Ordering::Release);
        out
    }

    fn set_indices<T: Copy>(mem: &RingMem<T>, v: u32) {
        mem.producer().store(v, Ordering::Relaxed);
        mem.consumer().store(v, Ordering::Relaxed);
    }

    #[test]
    fn index_arithmetic_wraps() {
        assert_eq!(free_entries(8, 0, 0), 8);
        assert_eq!(free_entries(8, 8, 0), 0);
        assert_eq!(free_entries(8, 5, 3), 6);
        // producer wrapped past u32::MAX, consumer not yet
        assert_eq!(free_entries(8, 2, u32::MAX - 1), 4);
        assert_eq!(filled_entries(2, u32::MAX - 1), 4);
        assert_eq!(filled_entries(u32::MAX, u32::MAX), 0);
        assert_eq!(filled_entries(3, 3), 0);
    }

    #[test]
    fn publish_takes_what_fits_in_order() {
        let mut ring = ProducerRing::new(RingMem::<u64>::heap(4));
        assert_eq!(ring.publish([1u64, 2, 3, 4, 5, 6]), 4);
        assert_eq!(kernel_consume(&ring, 8), vec![1, 2, 3, 4]);
        assert_eq!(ring.publish([7u64, 8]), 2);
        assert_eq!(kernel_consume(&ring, 8), vec![7, 8]);
    }

    #[test]
    fn writer_publishes_only_on_commit() {
        let mut ring = ProducerRing::new(RingMem::<u64>::heap(4));
        {
            let mut w = ring.writer(3);
            assert_eq!(w.push(10), Ok(()));
            assert_eq!(w.push(11), Ok(()));
            // dropped: rolled back
        }
        assert!(kernel_consume(&ring, 8).is_empty());
        let mut w = ring.writer(8);
        assert_eq!(w.remaining(), 4);
        for v in 20..24 {
            assert_eq!(w.push(v), Ok(()));
        }
        assert_eq!(w.push(99), Err(99), "full reservation gives the value back");
        assert_eq!(w.commit(), 4);
        assert_eq!(ring.in_flight(), 4);
        assert_eq!(
            ring.writer(1).remaining(),
            0,
            "ring full until the kernel consumes"
        );
        assert_eq!(kernel_consume(&ring, 2), vec![20, 21]);
        assert_eq!(ring.in_flight(), 2);
        let mut w = ring.writer(4);
        assert_eq!(w.remaining(), 2);
        w.push(30).unwrap();
        w.push(31).unwrap();
        w.commit();
        assert_eq!(kernel_consume(&ring, 8), vec![22, 23, 30, 31]);
    }

    #[test]
    fn reader_consumes_only_on_release() {
        let mut ring = ConsumerRing::new(RingMem::<u64>::heap(4));
        kernel_produce(&mut ring, &[1, 2, 3]);
        {
            let r = ring.reader(8);
            assert_eq!(r.len(), 3);
            assert_eq!(r.collect::<Vec<_>>(), vec![1, 2, 3]);
            // dropped without release
        }
        let mut r = ring.reader(2);
        assert_eq!(r.next(), Some(1));
        assert_eq!(r.release(), 1, "only entries actually taken are released");
        let r = ring.reader(8);
        assert_eq!(r.collect::<Vec<_>>(), vec![2, 3]);
        let mut r = ring.reader(8);
        while r.next().is_some() {}
        r.release();
        assert_eq!(ring.reader(8).len(), 0);
        assert_eq!(ring.mem.consumer().load(Ordering::Relaxed), 3);
    }

    #[test]
    fn rings_work_across_u32_wrap() {
        let mem = RingMem::<u64>::heap(8);
        set_indices(&mem, u32::MAX - 5);
        let mut prod = ProducerRing::new(mem);
        let mut next = 0u64;
        let mut seen = Vec::new();
        for round in 0..10 {
            let mut w = prod.writer(5);
            while w.push(next).is_ok() {
                next += 1;
            }
            w.commit();
            seen.extend(kernel_consume(&prod, 3 + round % 4));
        }
        seen.extend(kernel_consume(&prod, 64));
        assert_eq!(
            seen,
            (0..next).collect::<Vec<_>>(),
            "FIFO order kept across the wrap"
        );
        assert!(
            prod.mem.producer().load(Ordering::Relaxed) < 100,
            "indices wrapped"
        );

        let mem = RingMem::<libc::xdp_desc>::heap(4);
        set_indices(&mem, u32::MAX - 1);
        let mut cons = ConsumerRing::new(mem);
        let mut got = Vec::new();
        for i in 0..6u64 {
            kernel_produce(
                &mut cons,
                &[libc::xdp_desc {
                    addr: i * 2048,
                    len: 60 + i as u32,
                    options: 0,
                }],
            );
            let mut r = cons.reader(1);
            got.push(r.next().map(|d| (d.addr, d.len)));
            r.release();
        }
        assert_eq!(
            got,
            (0..6u64)
                .map(|i| Some((i * 2048, 60 + i as u32)))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn corrupted_producer_never_reads_past_one_lap() {
        let mut ring = ConsumerRing::new(RingMem::<u64>::heap(4));
        ring.mem.producer().store(1000, Ordering::Release);
        assert_eq!(ring.reader(64).len(), 4);
    }

    #[test]
    fn need_wakeup_flag_is_read() {
        let ring = ProducerRing::new(RingMem::<u64>::heap(4));
        assert!(!ring.needs_wakeup());
        ring.mem
            .flags()
            .store(libc::XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
        assert!(ring.needs_wakeup());
    }
}
