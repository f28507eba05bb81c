//! AF_XDP sockets of one rx queue sharing one UMEM, and the per-batch datapath of one socket.
//!
//! # Sharing a queue between workers
//!
//! The XDP program spreads one rx queue over up to 16 sockets (`XSKS` key = `queue * 16 +
//! worker_for_chaddr(..)`). All sockets of a queue are bound to the same `(ifindex, queue)`;
//! the first registers the UMEM and owns the fill and completion rings, the others bind with
//! `XDP_SHARED_UMEM` pointing at it. On the same device and queue the kernel then shares the
//! *buffer pool* — and with it the one fill ring and the one completion ring — between all of
//! them (kernel `xsk_bind`: "Share the buffer pool with the other socket"; a sharing socket may not
//! set up its own fill/completion rings nor pass bind flags). Each socket still has its own RX
//! and TX ring.
//!
//! Both shared rings are single-producer/single-consumer towards the kernel, so userspace must
//! serialise its side: `QueueShared::rings` is a mutex taken **once per batch** by the worker
//! that ran the batch, to (1) put the batch's RX frames back on the fill ring, (2) drain the
//! completion ring, routing each finished TX frame to the return bucket of the socket that owns
//! it (see [`super::umem`]: TX frames are partitioned per socket), and (3) pull its own bucket into
//! its private free list. Taking TX frames and reading RX frames needs no lock at all.
//!
//! # Wake-ups
//!
//! Sockets are bound with `XDP_USE_NEED_WAKEUP` (inherited by the sharing sockets from the pool).
//! The kernel then only processes the TX ring when poked, and says so with the TX ring's
//! `XDP_RING_NEED_WAKEUP` flag (always set in copy mode, where `sendto` runs the transmit
//! itself); the driver sets the fill ring's flag when it ran dry and needs a `recvfrom`/`poll` to
//! resume receiving (zero-copy). We make the syscall only when the flag is set. A TX kick that
//! returns `EAGAIN`/`EBUSY`/`ENOBUFS` is not an error: the kernel took part of the ring (copy
//! mode sends at most a budget per call) or is busy; the socket remembers that TX work is
//! pending and kicks again on its next turn.

use super::ring::{self, CompletionRing, FillRing, RxRing, TxRing};
use super::sys;
use super::umem::{FrameLayout, FreeList, LayoutError, Umem};
use crate::journal::Fate;
use crate::worker::{Job, Tx};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, PoisonError};

/// How to bind: let the kernel choose (zero-copy if the driver can, else copy), or force one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindMode {
    /// No mode flag: the kernel tries zero-copy and falls back to copy (`xp_assign_dev`).
    /// Binding once with no flag avoids retrying on a socket whose first bind failed half-way.
    #[default]
    Auto,
    /// `XDP_COPY`: always works where an XDP program can run (generic or native).
    Copy,
    /// `XDP_ZEROCOPY`: fails unless the driver supports AF_XDP zero-copy.
    ZeroCopy,
}

impl BindMode {
    fn flag(self) -> u16 {
        match self {
            BindMode::Auto => 0,
            BindMode::Copy => libc::XDP_COPY,
            BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
        }
    }
}

/// Parameters of one queue's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    pub ifindex: u32,
    pub queue: u32,
    /// Worker sockets sharing the queue (1..=16).
    pub sockets: u32,
    /// UMEM frames for the whole queue.
    pub frames: u32,
    pub frame_size: u32,
    /// Entries of each socket's RX and TX ring (power of two).
    pub ring_size: u32,
    pub bind: BindMode,
}

impl QueueConfig {
    /// Modest defaults: 4096 frames of 2 KiB (8 MiB of UMEM per queue), rings of 2048.
    pub fn new(ifindex: u32, queue: u32, sockets: u32) -> Self {
        QueueConfig {
            ifindex,
            queue,
            sockets,
            frames: 4096,
            frame_size: 2048,
            ring_size: 2048,
            bind: BindMode::Auto,
        }
    }
}

/// Why the AF_XDP sockets of a queue could not be set up. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    #[error("UMEM layout: {0}")]
    Layout(#[from] LayoutError),
    #[error("cannot allocate {bytes} bytes of UMEM: {source}")]
    Alloc { bytes: usize, source: io::Error },
    #[error(
        "cannot create an AF_XDP socket: {0} (needs a kernel with CONFIG_XDP_SOCKETS and \
         CAP_NET_RAW; run as root)"
    )]
    Socket(io::Error),
    #[error(
        "registering {bytes} bytes of UMEM refused: {source}; the locked-memory limit is too \
         small: raise RLIMIT_MEMLOCK (`ulimit -l unlimited`, systemd LimitMEMLOCK=infinity; \
         current soft limit {limit}) or grant CAP_IPC_LOCK"
    )]
    Memlock {
        bytes: usize,
        limit: String,
        source: io::Error,
    },
    #[error("setting up AF_XDP ring '{what}' failed: {source}")]
    Ring {
        what: &'static str,
        source: io::Error,
    },
    #[error(
        "binding AF_XDP socket to ifindex {ifindex} queue {queue} ({mode:?}) failed: {source}{hint}"
    )]
    Bind {
        ifindex: u32,
        queue: u32,
        mode: BindMode,
        hint: &'static str,
        source: io::Error,
    },
}

fn bind_hint(err: &io::Error, mode: BindMode, shared: bool) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(524 /* ENOTSUPP */) if mode == BindMode::ZeroCopy => {
            "; the driver has no AF_XDP zero-copy support: use copy mode"
        }
        Some(libc::EBUSY) => {
            "; another AF_XDP socket already uses this queue (is another xdhcp running?)"
        }
        Some(libc::EINVAL) if shared => "; the kernel refused to share the UMEM on this queue",
        Some(libc::EINVAL) => "; queue index beyond the device's queues, or the device is down",
        Some(libc::ENODEV) | Some(libc::ENXIO) => "; no such interface (or it went away)",
        _ => "",
    }
}

/// Counters of one socket's datapath. Plain integers: owned by the worker thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames taken from the RX ring.
    pub rx_frames: u64,
    /// Replies placed on the TX ring.
    pub tx_frames: u64,
    /// RX descriptors outside the RX pool / UMEM (never expected).
    pub bad_desc: u64,
    /// Requests not answered because no TX frame was free.
    pub no_tx_frame: u64,
    /// `sendto` kicks issued.
    pub tx_kicks: u64,
    /// Kicks answered with EAGAIN/EBUSY/ENOBUFS (retried later).
    pub tx_kick_retries: u64,
    /// Kicks failing otherwise (e.g. ENETDOWN).
    pub tx_kick_errors: u64,
    /// `recvfrom` wake-ups for the fill ring.
    pub fill_wakeups: u64,
    /// Completions naming no TX frame, or more than the owner can hold (never expected).
    pub stray_completions: u64,
    /// Held replies never sent because their journal batch failed.
    pub held_dropped: u64,
}

impl XskStats {
    /// Add `other` into `self`.
    pub fn merge(&mut self, other: &XskStats) {
        self.rx_frames += other.rx_frames;
        self.tx_frames += other.tx_frames;
        self.bad_desc += other.bad_desc;
        self.no_tx_frame += other.no_tx_frame;
        self.tx_kicks += other.tx_kicks;
        self.tx_kick_retries += other.tx_kick_retries;
        self.tx_kick_errors += other.tx_kick_errors;
        self.fill_wakeups += other.fill_wakeups;
        self.stray_completions += other.stray_completions;
        self.held_dropped += other.held_dropped;
    }
}

/// Statistics the kernel keeps for a socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Dropped for reasons other than invalid descriptors (e.g. frame too big).
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    /// RX ring full: the worker did not keep up.
    pub rx_ring_full: u64,
    /// Fill ring empty: no frame to receive into.
    pub rx_fill_ring_empty: u64,
    pub tx_ring_empty: u64,
}

impl KernelStats {
    /// `getsockopt(XDP_STATISTICS)` of an AF_XDP socket.
    ///
    /// # Errors
    /// `getsockopt` failure.
    pub fn read(fd: RawFd) -> io::Result<KernelStats> {
        let s: libc::xdp_statistics = sys::getsockopt(fd, libc::SOL_XDP, libc::XDP_STATISTICS)?;
        Ok(KernelStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty: s.rx_fill_ring_empty_descs,
            tx_ring_empty: s.tx_ring_empty_descs,
        })
    }
}

/// The state every socket of a queue shares.
struct QueueShared {
    umem: Umem,
    rings: Mutex<SharedRings>,
    zerocopy: bool,
    ifindex: u32,
    queue: u32,
}

/// The fill and completion rings of a queue, and the per-socket buckets of finished TX frames.
struct SharedRings {
    fill: FillRing,
    comp: CompletionRing,
    /// `returned[s]`: completed TX frames of socket `s`, waiting for it to take them.
    returned: Vec<Vec<u64>>,
    stray: u64,
}

/// Largest batch one [`XskSocket::process_batch`] call handles.
pub const MAX_BATCH: u32 = 256;

/// Frames handed to the handler at once by [`XskSocket::process_batch`] (the worker's default
/// batch): enough for the handler to overlap their memory accesses.
pub const JOBS: usize = 64;

/// One worker's AF_XDP socket.
pub struct XskSocket {
    shared: Arc<QueueShared>,
    layout: FrameLayout,
    slot: u32,
    rx: RxRing,
    tx: TxRing,
    free: FreeList,
    /// RX frames of the current batch, to go back to the fill ring under the queue lock.
    rx_stash: Vec<u64>,
    /// Replies waiting for the journal: (ticket, TX frame, length), oldest first. Bounded by
    /// this socket's TX partition (a frame is either free, held, on the TX ring or in flight).
    held: VecDeque<(u64, u64, u32)>,
    tx_pending: bool,
    stats: XskStats,
    // Declared last: dropped after the rings unmap (drop order is declaration order).
    fd: OwnedFd,
}

impl std::fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskSocket")
            .field("ifindex", &self.shared.ifindex)
            .field("queue", &self.shared.queue)
            .field("slot", &self.slot)
            .field("fd", &self.fd.as_raw_fd())
            .field("zerocopy", &self.shared.zerocopy)
            .finish()
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Open the sockets of one rx queue: `cfg.sockets` AF_XDP sockets bound to `(ifindex, queue)`
/// sharing one UMEM; socket `i` is the one the XDP program reaches with worker index `i`.
///
/// # Errors
/// See [`XskError`]; each variant carries the fix in its message.
pub fn open_queue(cfg: &QueueConfig) -> Result<Vec<XskSocket>, XskError> {
    let Primary {
        layout,
        umem,
        rx,
        tx,
        fill,
        comp,
        zerocopy,
        fd: primary,
    } = open_primary(cfg)?;
    let pfd = primary.as_raw_fd();
    let ring_size = cfg.ring_size.max(64).next_power_of_two();

    let returned = (0..cfg.sockets)
        .map(|_| Vec::with_capacity(layout.tx_per_worker() as usize))
        .collect();
    let shared = Arc::new(QueueShared {
        umem,
        rings: Mutex::new(SharedRings {
            fill,
            comp,
            returned,
            stray: 0,
        }),
        zerocopy,
        ifindex: cfg.ifindex,
        queue: cfg.queue,
    });

    let mut sockets = Vec::with_capacity(cfg.sockets as usize);
    sockets.push(XskSocket::new(
        Arc::clone(&shared),
        layout,
        0,
        rx,
        tx,
        primary,
    ));
    for slot in 1..cfg.sockets {
        let fd = sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0).map_err(XskError::Socket)?;
        let (rx, tx, _) = socket_rings(fd.as_raw_fd(), ring_size)?;
        // Same device and queue as the primary: the kernel shares its pool (fill/completion).
        // No mode flags are allowed on a sharing bind; it inherits the primary's.
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_SHARED_UMEM,
            sxdp_ifindex: cfg.ifindex,
            sxdp_queue_id: cfg.queue,
            sxdp_shared_umem_fd: pfd as u32,
        };
        sys::bind_xdp(fd.as_raw_fd(), &addr).map_err(|source| XskError::Bind {
            ifindex: cfg.ifindex,
            queue: cfg.queue,
            mode: cfg.bind,
            hint: bind_hint(&source, cfg.bind, true),
            source,
        })?;
        sockets.push(XskSocket::new(
            Arc::clone(&shared),
            layout,
            slot,
            rx,
            tx,
            fd,
        ));
    }
    Ok(sockets)
}

/// The first socket of a queue with everything it owns: the UMEM, its fill and completion
/// rings (already holding the whole RX pool), its own RX and TX rings, bound to the queue.
/// Shared by [`open_queue`] (which adds sockets sharing the UMEM) and the generator's
/// [`super::XskPort`] (a single socket).
pub(super) struct Primary {
    pub layout: FrameLayout,
    pub umem: Umem,
    pub rx: RxRing,
    pub tx: TxRing,
    pub fill: FillRing,
    pub comp: CompletionRing,
    pub zerocopy: bool,
    // Last: whoever destructures this must keep the descriptor alive past the rings.
    pub fd: OwnedFd,
}

/// Create a socket, register a fresh UMEM for `cfg`, map its four rings, bind it to
/// `(ifindex, queue)` with need_wakeup, and hand the whole RX pool to the kernel.
pub(super) fn open_primary(cfg: &QueueConfig) -> Result<Primary, XskError> {
    let layout = FrameLayout::new(cfg.frames, cfg.frame_size, cfg.sockets)?;
    let umem = Umem::new(layout).map_err(|source| XskError::Alloc {
        bytes: layout.bytes(),
        source,
    })?;
    let ring_size = cfg.ring_size.max(64).next_power_of_two();
    // Fill and completion rings hold every frame of the queue, so neither can overflow.
    let fc_size = layout.frames().next_power_of_two();

    let fd = sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0).map_err(XskError::Socket)?;
    let pfd = fd.as_raw_fd();
    let reg = libc::xdp_umem_reg {
        addr: umem.base() as u64,
        len: layout.bytes() as u64,
        chunk_size: layout.frame_size(),
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    sys::setsockopt(pfd, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg).map_err(|source| match source
        .raw_os_error()
    {
        Some(libc::EPERM) | Some(libc::ENOMEM) | Some(libc::ENOBUFS) => XskError::Memlock {
            bytes: layout.bytes(),
            limit: match sys::memlock_limit() {
                Ok((cur, _)) if cur == u64::MAX => "unlimited".to_owned(),
                Ok((cur, _)) => format!("{} KiB", cur / 1024),
                Err(_) => "unknown".to_owned(),
            },
            source,
        },
        _ => XskError::Ring {
            what: "UMEM registration",
            source,
        },
    })?;
    let ring_err = |what| move |source| XskError::Ring { what, source };
    sys::setsockopt(pfd, libc::SOL_XDP, libc::XDP_UMEM_FILL_RING, &fc_size)
        .map_err(ring_err("fill size"))?;
    sys::setsockopt(pfd, libc::SOL_XDP, libc::XDP_UMEM_COMPLETION_RING, &fc_size)
        .map_err(ring_err("completion size"))?;
    let (rx, tx, off) = socket_rings(pfd, ring_size)?;
    let mut fill = ring::map_fill(pfd, &off, fc_size).map_err(ring_err("fill mmap"))?;
    let comp = ring::map_completion(pfd, &off, fc_size).map_err(ring_err("completion mmap"))?;

    let addr = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_USE_NEED_WAKEUP | cfg.bind.flag(),
        sxdp_ifindex: cfg.ifindex,
        sxdp_queue_id: cfg.queue,
        sxdp_shared_umem_fd: 0,
    };
    sys::bind_xdp(pfd, &addr).map_err(|source| XskError::Bind {
        ifindex: cfg.ifindex,
        queue: cfg.queue,
        mode: cfg.bind,
        hint: bind_hint(&source, cfg.bind, false),
        source,
    })?;
    let opts: libc::xdp_options =
        sys::getsockopt(pfd, libc::SOL_XDP, libc::XDP_OPTIONS).map_err(ring_err("XDP_OPTIONS"))?;

    // Hand the whole RX pool to the kernel.
    fill.publish(layout.rx_addrs());
    Ok(Primary {
        layout,
        umem,
        rx,
        tx,
        fill,
        comp,
        zerocopy: opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
        fd,
    })
}

/// Size and map a socket's own RX and TX rings.
fn socket_rings(
    fd: RawFd,
    size: u32,
) -> Result<(RxRing, TxRing, libc::xdp_mmap_offsets), XskError> {
    let err = |what| move |source| XskError::Ring { what, source };
    sys::setsockopt(fd, libc::SOL_XDP, libc::XDP_RX_RING, &size).map_err(err("rx size"))?;
    sys::setsockopt(fd, libc::SOL_XDP, libc::XDP_TX_RING, &size).map_err(err("tx size"))?;
    let off = ring::mmap_offsets(fd).map_err(err("mmap offsets"))?;
    let rx = ring::map_rx(fd, &off, size).map_err(err("rx mmap"))?;
    let tx = ring::map_tx(fd, &off, size).map_err(err("tx mmap"))?;
    Ok((rx, tx, off))
}

impl XskSocket {
    fn new(
        shared: Arc<QueueShared>,
        layout: FrameLayout,
        slot: u32,
        rx: RxRing,
        tx: TxRing,
        fd: OwnedFd,
    ) -> Self {
        XskSocket {
            shared,
            layout,
            slot,
            rx,
            tx,
            free: FreeList::full(layout.tx_addrs(slot)),
            rx_stash: Vec::with_capacity(MAX_BATCH as usize),
            held: VecDeque::with_capacity(layout.tx_per_worker() as usize),
            tx_pending: false,
            stats: XskStats::default(),
            fd,
        }
    }

    /// The socket descriptor (to insert into the `XSKS` map).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The rx queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.shared.queue
    }

    /// This socket's worker index within its queue (the XDP program's `worker_for_chaddr`).
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Whether the kernel bound the queue in zero-copy mode.
    pub fn zerocopy(&self) -> bool {
        self.shared.zerocopy
    }

    /// Datapath counters so far.
    pub fn stats(&self) -> XskStats {
        let mut s = self.stats;
        if self.slot == 0 {
            let g = self
                .shared
                .rings
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            s.stray_completions += g.stray;
        }
        s
    }

    /// Whether TX work or frame recycling is outstanding (the worker should not sleep long).
    pub fn busy(&self) -> bool {
        self.tx_pending || !self.rx_stash.is_empty() || !self.held.is_empty()
    }

    /// The kernel's counters for this socket.
    ///
    /// # Errors
    /// `getsockopt` failure.
    pub fn kernel_stats(&self) -> io::Result<KernelStats> {
        KernelStats::read(self.fd())
    }

    /// One batch: take up to `budget` received frames, hand them to `handle` in jobs of up to
    /// [`JOBS`] frames, each with a free TX frame of this socket, queue the replies it wrote
    /// ([`Tx::Send`]) or hold them ([`Tx::Hold`], see [`Self::release_held`]), and recycle.
    /// Returns the number of frames received.
    ///
    /// Each job sees its received frame and a whole TX frame (`frame_size` bytes); the slices
    /// live only for the call. A request that finds no free TX frame is dropped (counted)
    /// without reaching `handle`: the client retransmits.
    pub fn process_batch<F>(&mut self, budget: u32, mut handle: F) -> u32
    where
        F: FnMut(&mut [Job<'_>]),
    {
        if self.tx_pending {
            self.kick_tx();
        }
        let budget = budget.clamp(1, MAX_BATCH);
        let frame_size = self.layout.frame_size();
        let umem = &self.shared.umem;
        let mut rx = self.rx.reader(budget);
        let received = rx.len();
        let mut sent = 0;
        if received > 0 {
            let mut tx = self.tx.writer(received);
            let mut jobs: [Job<'_>; JOBS] = std::array::from_fn(|_| Job::empty());
            let mut frames = [0u64; JOBS];
            loop {
                let mut n = 0;
                for desc in rx.by_ref() {
                    let chunk = self.layout.chunk(desc.addr);
                    if !self.layout.is_rx(chunk) {
                        self.stats.bad_desc += 1;
                        continue;
                    }
                    // The stash has room for MAX_BATCH >= received entries: never reallocates.
                    self.rx_stash.push(chunk);
                    let Some(rx_ptr) = umem.ptr(desc.addr, desc.len) else {
                        self.stats.bad_desc += 1;
                        continue;
                    };
                    // Each job may queue one descriptor.
                    if tx.remaining() as usize <= n {
                        self.stats.no_tx_frame += 1;
                        continue;
                    }
                    let Some(frame) = self.free.pop() else {
                        self.stats.no_tx_frame += 1;
                        continue;
                    };
                    let Some(tx_ptr) = umem.ptr(frame, frame_size) else {
                        // Our own partition is always inside the UMEM; keep the frame regardless.
                        let _ = self.free.push(frame);
                        continue;
                    };
                    // SAFETY: `rx_ptr..+desc.len` lies inside one UMEM frame (checked by `ptr`).
                    // The kernel handed this frame to us through our RX ring and does not touch
                    // it until it is back on the fill ring (after this loop); no other socket
                    // sees it. Nothing else references it while the job lives (until `handle`
                    // returns and the job's result is read below).
                    let rx_buf = unsafe { std::slice::from_raw_parts(rx_ptr, desc.len as usize) };
                    // SAFETY: `frame` came from this socket's free list: it belongs to this
                    // socket's TX partition (disjoint from the RX pool and other sockets'
                    // partitions), is neither on the TX ring nor in the kernel, and was popped
                    // once, so no other job of this batch has it; this is the only reference to
                    // those `frame_size` bytes (inside the UMEM, checked by `ptr`) while the job
                    // lives.
                    let tx_buf =
                        unsafe { std::slice::from_raw_parts_mut(tx_ptr, frame_size as usize) };
                    jobs[n] = Job::new(rx_buf, tx_buf);
                    frames[n] = frame;
                    n += 1;
                    if n == JOBS {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
                handle(&mut jobs[..n]);
                for (job, &frame) in jobs[..n].iter_mut().zip(&frames) {
                    match std::mem::replace(job, Job::empty()).out {
                        Tx::Send(len) if len > 0 && len <= frame_size as usize => {
                            tx.send_frame(&mut self.free, frame, len as u32);
                        }
                        // Room: the held queue was sized for the whole TX partition.
                        Tx::Hold { len, ticket } if len > 0 && len <= frame_size as usize => {
                            self.held.push_back((ticket, frame, len as u32));
                        }
                        _ => {
                            let _ = self.free.push(frame);
                        }
                    }
                }
            }
            rx.release();
            sent = tx.commit();
        } else {
            drop(rx);
        }
        self.stats.rx_frames += u64::from(received);
        self.stats.tx_frames += u64::from(sent);
        if sent > 0 {
            self.kick_tx();
        }
        self.recycle();
        received
    }

    /// Send the held replies whose tickets became durable and free those whose batch failed, in
    /// ticket order, stopping at the first still pending. Returns the replies sent.
    pub fn release_held(&mut self, fate: impl Fn(u64) -> Fate) -> u32 {
        if self.held.is_empty() {
            return 0;
        }
        let mut tx = self.tx.writer(self.held.len() as u32);
        while let Some(&(ticket, frame, len)) = self.held.front() {
            match fate(ticket) {
                Fate::Pending => break,
                Fate::Drop => {
                    self.held.pop_front();
                    let _ = self.free.push(frame);
                    self.stats.held_dropped += 1;
                }
                Fate::Send => {
                    let d = libc::xdp_desc {
                        addr: frame,
                        len,
                        options: 0,
                    };
                    if tx.push(d).is_err() {
                        break;
                    }
                    self.held.pop_front();
                }
            }
        }
        let sent = tx.commit();
        self.stats.tx_frames += u64::from(sent);
        if sent > 0 {
            self.kick_tx();
        }
        sent
    }

    /// Poke the kernel to transmit, if it asked for it.
    fn kick_tx(&mut self) {
        if self.tx.in_flight() == 0 {
            self.tx_pending = false;
            return;
        }
        if self.tx.needs_wakeup() {
            match sys::kick_tx(self.fd()) {
                Ok(()) => self.stats.tx_kicks += 1,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS) => {
                        self.stats.tx_kick_retries += 1
                    }
                    _ => self.stats.tx_kick_errors += 1,
                },
            }
        }
        self.tx_pending = self.tx.in_flight() > 0;
    }

    /// Under the queue lock (once): RX frames back to the fill ring, completions to their owners,
    /// our returned TX frames into our free list. Skipped when there is nothing to do.
    fn recycle(&mut self) {
        let all_free = self.free.len() == self.layout.tx_per_worker() as usize;
        if self.rx_stash.is_empty() && all_free {
            return;
        }
        let wake = {
            let mut guard = self
                .shared
                .rings
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let g = &mut *guard;
            let n = g.fill.publish(self.rx_stash.iter().copied()) as usize;
            self.rx_stash.drain(..n);

            let mut r = g.comp.reader(u32::MAX);
            for addr in r.by_ref() {
                let addr = self.layout.chunk(addr);
                match self
                    .layout
                    .tx_owner(addr)
                    .and_then(|o| g.returned.get_mut(o as usize))
                {
                    Some(bucket) if bucket.len() < bucket.capacity() => bucket.push(addr),
                    _ => g.stray += 1,
                }
            }
            r.release();
            if let Some(mine) = g.returned.get_mut(self.slot as usize) {
                self.free.take_from(mine);
            }
            n > 0 && g.fill.needs_wakeup()
        };
        if wake {
            self.stats.fill_wakeups += 1;
            // Errors here (EAGAIN, ENETDOWN) are retried implicitly at the next batch.
            let _ = sys::wake_rx(self.fd());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_flags() {
        assert_eq!(BindMode::Auto.flag(), 0);
        assert_eq!(BindMode::Copy.flag(), libc::XDP_COPY);
        assert_eq!(BindMode::ZeroCopy.flag(), libc::XDP_ZEROCOPY);
    }

    #[test]
    fn hints_name_the_fix() {
        let e = io::Error::from_raw_os_error(libc::EOPNOTSUPP);
        assert!(bind_hint(&e, BindMode::ZeroCopy, false).contains("copy mode"));
        assert_eq!(bind_hint(&e, BindMode::Copy, false), "");
        let e = io::Error::from_raw_os_error(libc::EBUSY);
        assert!(bind_hint(&e, BindMode::Auto, true).contains("another"));
    }

    #[test]
    fn stats_merge_adds_every_field() {
        let one = XskStats {
            rx_frames: 1,
            tx_frames: 2,
            bad_desc: 3,
            no_tx_frame: 4,
            tx_kicks: 5,
            tx_kick_retries: 6,
            tx_kick_errors: 7,
            fill_wakeups: 8,
            stray_completions: 9,
            held_dropped: 10,
        };
        let mut sum = one;
        sum.merge(&one);
        assert_eq!(
            sum,
            XskStats {
                rx_frames: 2,
                tx_frames: 4,
                bad_desc: 6,
                no_tx_frame: 8,
                tx_kicks: 10,
                tx_kick_retries: 12,
                tx_kick_errors: 14,
                fill_wakeups: 16,
                stray_completions: 18,
                held_dropped: 20,
            }
        );
    }

    #[test]
    fn open_on_missing_interface_fails_cleanly() {
        // ifindex 0 never exists; needs CAP_NET_RAW for the socket itself.
        let cfg = QueueConfig::new(0, 0, 2);
        match open_queue(&cfg) {
            Err(XskError::Bind { source, .. }) => {
                assert!(
                    matches!(
                        source.raw_os_error(),
                        Some(libc::ENODEV) | Some(libc::EINVAL)
                    ),
                    "{source}"
                )
            }
            Err(XskError::Socket(e)) if e.raw_os_error() == Some(libc::EPERM) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI must run as root: {e}"
                );
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
}
