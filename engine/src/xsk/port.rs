//! One AF_XDP socket with its own UMEM, for programs that *originate* traffic: the load
//! generator (`xdhcp-load`) and the echo responder that measures a link's AF_XDP ceiling.
//!
//! # Why not [`XskSocket`](super::XskSocket)
//!
//! A server's socket only ever transmits a reply to a frame it just received, so
//! `XskSocket::process_batch` pairs each RX frame with one TX frame and recycles both in one batch,
//! and it shares its fill/completion rings with the other sockets of the queue. A generator
//! transmits on its own schedule — thousands of DISCOVERs before the first OFFER comes back —
//! and receives independently. So this port keeps TX and RX apart:
//!
//! * [`XskPort::send`] takes free TX frames, lets the caller write each one, publishes them in
//!   one commit and kicks the kernel once per batch;
//! * [`XskPort::recv`] hands each received frame to the caller and puts it straight back on the
//!   fill ring, also once per batch.
//!
//! The UMEM layout is the engine's [`FrameLayout`] with one worker: the first half of the frames
//! circulates through the fill ring, the second half are TX frames kept in a private
//! [`FreeList`] and returned through the completion ring. The same ownership invariant as the
//! server's holds: every frame is in exactly one place (fill ring / kernel / RX batch / free
//! list / TX ring / completion ring), which is what makes the slices handed out sound.
//!
//! Rings are the engine's typed, transactional rings (`ring`): nothing is published that was
//! not committed. Frames reach the socket only through an XDP program that redirects into an
//! XSKMAP; [`super::redirect`] provides a minimal one for the generator's side of a link.

use super::ring::{CompletionRing, FillRing, RxRing, TxRing};
use super::socket::{BindMode, KernelStats, Primary, QueueConfig, XskError, open_primary};
use super::sys;
use super::umem::{FrameLayout, FreeList, Umem};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// Largest batch one [`XskPort::send`] or [`XskPort::recv`] call handles.
pub const PORT_BATCH: u32 = 256;

/// Parameters of an [`XskPort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    pub ifindex: u32,
    pub queue: u32,
    /// UMEM frames: half receive, half transmit.
    pub frames: u32,
    pub frame_size: u32,
    /// Entries of the RX and TX rings (rounded up to a power of two).
    pub ring_size: u32,
    pub bind: BindMode,
}

impl PortConfig {
    /// 8192 frames of 2 KiB (16 MiB), rings of 4096: deep enough for a generator to keep
    /// several batches in flight while the kernel transmits.
    pub fn new(ifindex: u32, queue: u32) -> Self {
        PortConfig {
            ifindex,
            queue,
            frames: 8192,
            frame_size: 2048,
            ring_size: 4096,
            bind: BindMode::Auto,
        }
    }
}

/// Counters of one port. Plain integers: owned by the thread driving the port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_frames: u64,
    pub tx_frames: u64,
    /// RX descriptors outside the RX pool (never expected).
    pub bad_desc: u64,
    /// `send` found no free TX frame (the kernel has not completed earlier ones yet).
    pub tx_full: u64,
    pub tx_kicks: u64,
    /// Kicks answered with EAGAIN/EBUSY/ENOBUFS (retried on the next call).
    pub tx_kick_retries: u64,
    pub tx_kick_errors: u64,
    pub fill_wakeups: u64,
    /// Completions naming a frame that is not a TX frame, or a double return.
    pub stray_completions: u64,
}

/// A single AF_XDP socket with a private UMEM. See the module docs.
pub struct XskPort {
    umem: Umem,
    layout: FrameLayout,
    fill: FillRing,
    comp: CompletionRing,
    rx: RxRing,
    tx: TxRing,
    free: FreeList,
    /// Received frames to go back on the fill ring (only non-empty if the fill ring was full).
    refill: Vec<u64>,
    zerocopy: bool,
    stats: PortStats,
    // Declared last: dropped after the rings unmap.
    fd: OwnedFd,
}

impl std::fmt::Debug for XskPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskPort")
            .field("fd", &self.fd.as_raw_fd())
            .field("zerocopy", &self.zerocopy)
            .field("layout", &self.layout)
            .finish()
    }
}

impl AsFd for XskPort {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl XskPort {
    /// Create the socket, register a fresh UMEM, map the four rings, bind to
    /// `(ifindex, queue)` with need_wakeup, and hand the RX half of the frames to the kernel.
    ///
    /// # Errors
    /// See [`XskError`]; each variant carries the fix in its message.
    pub fn open(cfg: &PortConfig) -> Result<XskPort, XskError> {
        let queue = QueueConfig {
            ifindex: cfg.ifindex,
            queue: cfg.queue,
            sockets: 1,
            frames: cfg.frames,
            frame_size: cfg.frame_size,
            ring_size: cfg.ring_size,
            bind: cfg.bind,
        };
        let Primary {
            layout,
            umem,
            rx,
            tx,
            fill,
            comp,
            zerocopy,
            fd,
        } = open_primary(&queue)?;
        Ok(XskPort {
            umem,
            layout,
            fill,
            comp,
            rx,
            tx,
            free: FreeList::full(layout.tx_addrs(0)),
            refill: Vec::with_capacity(PORT_BATCH as usize),
            zerocopy,
            stats: PortStats::default(),
            fd,
        })
    }

    /// The socket descriptor (to insert into an XSKMAP, or to `poll`).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether the kernel bound the socket in zero-copy mode.
    pub fn zerocopy(&self) -> bool {
        self.zerocopy
    }

    pub fn stats(&self) -> PortStats {
        self.stats
    }

    /// TX frames available to [`send`](Self::send) right now (after reaping completions).
    pub fn tx_free(&mut self) -> usize {
        self.reap_completions();
        self.free.len()
    }

    /// Frames placed on the TX ring that the kernel has not consumed yet.
    pub fn tx_in_flight(&self) -> u32 {
        self.tx.in_flight()
    }

    /// The kernel's counters for this socket.
    ///
    /// # Errors
    /// `getsockopt` failure.
    pub fn kernel_stats(&self) -> io::Result<KernelStats> {
        KernelStats::read(self.fd())
    }

    /// Transmit up to `max` frames: for each free TX frame call `write(frame)`, which writes a
    /// frame into the whole-frame buffer and returns its length, or `None` to stop. All frames
    /// written are published in one commit and the kernel is kicked once. Returns the number
    /// queued (fewer than asked when TX frames or ring slots run out: call again later).
    pub fn send<F>(&mut self, max: u32, mut write: F) -> u32
    where
        F: FnMut(&mut [u8]) -> Option<usize>,
    {
        self.reap_completions();
        let max = max.min(PORT_BATCH);
        let frame_size = self.layout.frame_size();
        let mut tx = self.tx.writer(max);
        while tx.remaining() > 0 {
            let Some(frame) = self.free.pop() else {
                self.stats.tx_full += 1;
                break;
            };
            let Some(ptr) = self.umem.ptr(frame, frame_size) else {
                let _ = self.free.push(frame);
                break;
            };
            // SAFETY: `frame` came from the free list: a TX frame that is neither on the TX
            // ring nor with the kernel (it came back through the completion ring, or was never
            // sent), so this is the only reference to its `frame_size` bytes, which lie inside
            // the UMEM (checked by `ptr`). The slice lives only for the `write` call.
            let buf = unsafe { std::slice::from_raw_parts_mut(ptr, frame_size as usize) };
            match write(buf) {
                Some(len) if len > 0 && len <= frame_size as usize => {
                    if !tx.send_frame(&mut self.free, frame, len as u32) {
                        break;
                    }
                }
                _ => {
                    let _ = self.free.push(frame);
                    break;
                }
            }
        }
        let n = tx.commit();
        self.stats.tx_frames += u64::from(n);
        if n > 0 || self.tx.in_flight() > 0 {
            self.kick_tx();
        }
        n
    }

    /// Receive up to `max` frames, calling `read(frame)` for each, then give the frames back to
    /// the kernel. Returns the number received.
    pub fn recv<F>(&mut self, max: u32, mut read: F) -> u32
    where
        F: FnMut(&[u8]),
    {
        let mut rx = self.rx.reader(max.clamp(1, PORT_BATCH));
        let n = rx.len();
        for desc in rx.by_ref() {
            let chunk = self.layout.chunk(desc.addr);
            if !self.layout.is_rx(chunk) {
                self.stats.bad_desc += 1;
                continue;
            }
            if let Some(ptr) = self.umem.ptr(desc.addr, desc.len) {
                // SAFETY: the kernel passed this RX-pool frame to us through the RX ring and will
                // not write it until we put it back on the fill ring (below, after the call);
                // `desc.addr..+desc.len` lies inside one UMEM frame (checked by `ptr`).
                let buf = unsafe { std::slice::from_raw_parts(ptr, desc.len as usize) };
                read(buf);
            } else {
                self.stats.bad_desc += 1;
            }
            // Room for PORT_BATCH entries was reserved; a full Vec would only grow (never lose).
            self.refill.push(chunk);
        }
        rx.release();
        self.stats.rx_frames += u64::from(n);
        self.refill_rx();
        n
    }

    /// Give received frames back to the fill ring; wake the driver if it asked.
    fn refill_rx(&mut self) {
        if self.refill.is_empty() {
            return;
        }
        let n = self.fill.publish(self.refill.iter().copied()) as usize;
        self.refill.drain(..n);
        if n > 0 && self.fill.needs_wakeup() {
            self.stats.fill_wakeups += 1;
            // Errors (EAGAIN, ENETDOWN) are retried implicitly on the next batch.
            let _ = sys::wake_rx(self.fd());
        }
    }

    /// Move finished TX frames from the completion ring back to the free list.
    fn reap_completions(&mut self) {
        let mut r = self.comp.reader(u32::MAX);
        for addr in r.by_ref() {
            let chunk = self.layout.chunk(addr);
            if self.layout.tx_owner(chunk) != Some(0) || self.free.push(chunk).is_err() {
                self.stats.stray_completions += 1;
            }
        }
        r.release();
    }

    /// Poke the kernel to transmit, if it asked for it (always in copy mode).
    fn kick_tx(&mut self) {
        if !self.tx.needs_wakeup() {
            return;
        }
        match sys::kick_tx(self.fd()) {
            Ok(()) => self.stats.tx_kicks += 1,
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS) => self.stats.tx_kick_retries += 1,
                _ => self.stats.tx_kick_errors += 1,
            },
        }
    }

    /// Kick the kernel for TX frames still on the ring (call when idle so they drain).
    pub fn flush(&mut self) {
        if self.tx.in_flight() > 0 {
            self.kick_tx();
        }
        self.reap_completions();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_leave_half_the_frames_for_tx() {
        let c = PortConfig::new(1, 0);
        let l = FrameLayout::new(c.frames, c.frame_size, 1).expect("layout");
        assert_eq!(l.rx_frames(), 4096);
        assert_eq!(l.tx_per_worker(), 4096);
    }
}
