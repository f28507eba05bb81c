//! UMEM: the packet memory one rx queue's sockets share, and how its frames are divided.
//!
//! # Layout and ownership
//!
//! The UMEM of a queue is `frames` chunks of `frame_size` bytes (aligned mode: a frame's address
//! is `index * frame_size`, and any address inside a chunk names the chunk). It is split in two:
//!
//! * the **RX pool** — the first half. These frames circulate fill ring -> kernel -> some
//!   worker's RX ring -> (that worker, for one batch) -> fill ring. Because every socket on the
//!   queue shares one fill ring, the kernel may hand any RX-pool frame to any worker: RX frames
//!   belong to the queue, not to a worker.
//! * **TX partitions** — the rest, cut into one equal slice per worker socket. A worker writes its
//!   replies only into frames of its own slice, kept in its private [`FreeList`]; they come back
//!   through the shared completion ring and are routed to their owner by address
//!   ([`FrameLayout::tx_owner`]). A worker that falls behind can therefore never starve the
//!   others of TX frames, and taking a TX frame needs no lock.
//!
//! Every frame is at any time in exactly one place: fill ring, kernel, one worker's RX batch,
//! one worker's free list, TX ring, completion ring, or the per-worker return bucket of the
//! queue. That invariant is what makes handing out `&[u8]` / `&mut [u8]` over frames sound.

use super::sys::Mmap;
use std::io;

/// Smallest chunk size the kernel accepts in aligned mode.
pub const MIN_FRAME_SIZE: u32 = 2048;

/// How a queue's UMEM frames are divided between the RX pool and per-worker TX partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLayout {
    frame_size: u32,
    frames: u32,
    rx_frames: u32,
    workers: u32,
    tx_per_worker: u32,
}

/// Why a [`FrameLayout`] cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("frame size {0} must be a power of two between 2048 and the page size")]
    FrameSize(u32),
    #[error("{workers} worker sockets need at least {need} UMEM frames, got {frames}")]
    TooFewFrames {
        frames: u32,
        workers: u32,
        need: u32,
    },
    #[error("worker sockets per queue must be 1..={max}, got {got}")]
    Workers { got: u32, max: u32 },
}

/// Minimum TX frames per worker: one full batch of replies.
pub const MIN_TX_PER_WORKER: u32 = 64;

impl FrameLayout {
    /// Divide `frames` frames of `frame_size` bytes between the RX pool (half) and `workers` TX
    /// partitions.
    ///
    /// # Errors
    /// A frame size the kernel would refuse, zero or too many workers, or too few frames for
    /// each worker to have [`MIN_TX_PER_WORKER`] TX frames.
    pub fn new(frames: u32, frame_size: u32, workers: u32) -> Result<Self, LayoutError> {
        if !frame_size.is_power_of_two() || !(MIN_FRAME_SIZE..=page_size()).contains(&frame_size) {
            return Err(LayoutError::FrameSize(frame_size));
        }
        let max = xdhcp_common::MAX_WORKERS_PER_QUEUE;
        if workers == 0 || workers > max {
            return Err(LayoutError::Workers { got: workers, max });
        }
        let need = 2 * MIN_TX_PER_WORKER * workers;
        if frames < need {
            return Err(LayoutError::TooFewFrames {
                frames,
                workers,
                need,
            });
        }
        let rx_frames = frames / 2;
        let tx_per_worker = (frames - rx_frames) / workers;
        Ok(FrameLayout {
            frame_size,
            frames,
            rx_frames,
            workers,
            tx_per_worker,
        })
    }

    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    pub fn frames(&self) -> u32 {
        self.frames
    }

    pub fn rx_frames(&self) -> u32 {
        self.rx_frames
    }

    pub fn workers(&self) -> u32 {
        self.workers
    }

    pub fn tx_per_worker(&self) -> u32 {
        self.tx_per_worker
    }

    /// UMEM size in bytes.
    pub fn bytes(&self) -> usize {
        self.frames as usize * self.frame_size as usize
    }

    /// Address of the chunk containing `addr` (aligned mode: mask off the offset).
    #[inline]
    pub fn chunk(&self, addr: u64) -> u64 {
        addr & !u64::from(self.frame_size - 1)
    }

    /// Addresses of the RX pool, in order.
    pub fn rx_addrs(&self) -> impl ExactSizeIterator<Item = u64> + use<> {
        let fs = u64::from(self.frame_size);
        (0..self.rx_frames).map(move |i| u64::from(i) * fs)
    }

    /// Addresses of worker `w`'s TX partition (empty when `w` is out of range).
    pub fn tx_addrs(&self, w: u32) -> impl Iterator<Item = u64> + use<> {
        let fs = u64::from(self.frame_size);
        let n = if w < self.workers {
            u64::from(self.tx_per_worker)
        } else {
            0
        };
        let first = u64::from(self.rx_frames) + u64::from(w) * u64::from(self.tx_per_worker);
        (first..first + n).map(move |i| i * fs)
    }

    /// Whether `addr` lies in the RX pool.
    #[inline]
    pub fn is_rx(&self, addr: u64) -> bool {
        addr < u64::from(self.rx_frames) * u64::from(self.frame_size)
    }

    /// Which worker's TX partition `addr` belongs to (`None`: RX pool, the unused tail, or
    /// outside the UMEM).
    #[inline]
    pub fn tx_owner(&self, addr: u64) -> Option<u32> {
        let idx = addr / u64::from(self.frame_size);
        let rel = idx.checked_sub(u64::from(self.rx_frames))?;
        let w = rel / u64::from(self.tx_per_worker);
        (w < u64::from(self.workers)).then_some(w as u32)
    }

    /// Whether `len` bytes at `addr` lie inside one frame of the UMEM.
    #[inline]
    pub fn in_bounds(&self, addr: u64, len: u32) -> bool {
        let fs = u64::from(self.frame_size);
        addr / fs < u64::from(self.frames) && (addr % fs) + u64::from(len) <= fs
    }
}

fn page_size() -> u32 {
    super::sys::page_size()
}

/// A worker's free TX frames: a fixed-capacity stack that never allocates after creation and
/// refuses a frame it cannot hold (which would mean a frame was returned twice).
#[derive(Debug)]
pub struct FreeList {
    frames: Vec<u64>,
}

impl FreeList {
    /// A full free list holding `addrs`.
    pub fn full(addrs: impl Iterator<Item = u64>) -> FreeList {
        let frames: Vec<u64> = addrs.collect();
        FreeList { frames }
    }

    /// An empty list with room for `cap` frames.
    pub fn with_capacity(cap: usize) -> FreeList {
        FreeList {
            frames: Vec::with_capacity(cap),
        }
    }

    #[inline]
    pub fn pop(&mut self) -> Option<u64> {
        self.frames.pop()
    }

    /// Return a frame; `Err` if the list is already full (a double return).
    #[inline]
    pub fn push(&mut self, addr: u64) -> Result<(), u64> {
        if self.frames.len() == self.frames.capacity() {
            return Err(addr);
        }
        self.frames.push(addr);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Move every frame of `from` into this list (stops when full).
    pub fn take_from(&mut self, from: &mut Vec<u64>) -> usize {
        let room = self.frames.capacity() - self.frames.len();
        let n = room.min(from.len());
        self.frames.extend(from.drain(from.len() - n..));
        n
    }
}

/// The memory region itself.
pub struct Umem {
    map: Mmap,
    layout: FrameLayout,
}

impl Umem {
    /// Allocate (and pre-fault) the UMEM for `layout`.
    ///
    /// # Errors
    /// `mmap` failure (out of memory).
    pub fn new(layout: FrameLayout) -> io::Result<Umem> {
        Ok(Umem {
            map: Mmap::anonymous(layout.bytes())?,
            layout,
        })
    }

    pub fn layout(&self) -> &FrameLayout {
        &self.layout
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// Pointer to `len` bytes at `addr`, or `None` if they do not lie inside one frame.
    #[inline]
    pub(crate) fn ptr(&self, addr: u64, len: u32) -> Option<*mut u8> {
        if !self.layout.in_bounds(addr, len) {
            return None;
        }
        // SAFETY: `in_bounds` guarantees `addr + len <= frames * frame_size == map.len()`.
        Some(unsafe { self.map.as_ptr().add(addr as usize) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn layout_partitions_are_disjoint_and_cover_owners() {
        for workers in 1..=16 {
            let l = FrameLayout::new(4096, 2048, workers).unwrap();
            let mut seen = HashSet::new();
            for a in l.rx_addrs() {
                assert!(l.is_rx(a));
                assert_eq!(l.tx_owner(a), None);
                assert!(seen.insert(a));
            }
            assert_eq!(seen.len(), 2048);
            for w in 0..workers {
                let mut n = 0;
                for a in l.tx_addrs(w) {
                    assert!(!l.is_rx(a));
                    assert_eq!(l.tx_owner(a), Some(w), "addr {a:#x}");
                    assert_eq!(l.tx_owner(a + 100), Some(w), "offset inside the frame");
                    assert!(l.in_bounds(a, 2048));
                    assert!(seen.insert(a), "frame {a:#x} in two partitions");
                    n += 1;
                }
                assert_eq!(n, l.tx_per_worker());
                assert!(n >= MIN_TX_PER_WORKER);
            }
            assert_eq!(l.tx_addrs(workers).count(), 0);
            assert!(seen.len() <= 4096);
        }
    }

    #[test]
    fn layout_rejects_bad_parameters() {
        assert_eq!(
            FrameLayout::new(4096, 3000, 1),
            Err(LayoutError::FrameSize(3000))
        );
        assert_eq!(
            FrameLayout::new(4096, 1024, 1),
            Err(LayoutError::FrameSize(1024))
        );
        assert!(matches!(
            FrameLayout::new(4096, 2048, 0),
            Err(LayoutError::Workers { .. })
        ));
        assert!(matches!(
            FrameLayout::new(4096, 2048, 17),
            Err(LayoutError::Workers { .. })
        ));
        assert!(matches!(
            FrameLayout::new(100, 2048, 1),
            Err(LayoutError::TooFewFrames { .. })
        ));
        assert!(FrameLayout::new(128, 2048, 1).is_ok());
    }

    #[test]
    fn owners_outside_the_umem_are_none() {
        let l = FrameLayout::new(4096, 2048, 3).unwrap();
        // 2048 tx frames / 3 = 682 each, 2 frames of tail unused
        assert_eq!(l.tx_per_worker(), 682);
        let tail = (2048 + 3 * 682) as u64 * 2048;
        assert_eq!(l.tx_owner(tail), None);
        assert_eq!(l.tx_owner(u64::MAX), None);
        assert!(l.in_bounds(tail, 1), "the tail is still UMEM memory");
        assert!(!l.in_bounds(4096 * 2048, 1));
        assert!(!l.in_bounds(2048 - 10, 11), "crosses a frame boundary");
        assert_eq!(l.chunk(5 * 2048 + 256), 5 * 2048);
    }

    #[test]
    fn free_list_refuses_double_return() {
        let l = FrameLayout::new(256, 2048, 2).unwrap();
        let mut fl = FreeList::full(l.tx_addrs(1));
        let n = fl.len();
        let a = fl.pop().unwrap();
        let b = fl.pop().unwrap();
        assert_ne!(a, b);
        assert_eq!(fl.push(a), Ok(()));
        assert_eq!(fl.push(b), Ok(()));
        assert_eq!(
            fl.push(b),
            Err(b),
            "a full list means a frame came back twice"
        );
        assert_eq!(fl.len(), n);

        let mut empty = FreeList::with_capacity(4);
        assert!(empty.is_empty());
        let mut bucket = vec![1, 2, 3, 4, 5, 6];
        assert_eq!(empty.take_from(&mut bucket), 4);
        assert_eq!(bucket.len(), 2);
        assert_eq!(empty.len(), 4);
    }

    #[test]
    fn umem_pointers_are_bounds_checked() {
        let l = FrameLayout::new(128, 2048, 1).unwrap();
        let u = Umem::new(l).unwrap();
        assert!(u.ptr(0, 2048).is_some());
        assert!(u.ptr(127 * 2048, 2048).is_some());
        assert!(u.ptr(128 * 2048, 1).is_none());
        assert!(u.ptr(100, 2048).is_none());
        assert_eq!(u.layout().bytes(), 128 * 2048);
        assert!(!u.base().is_null());
    }
}
