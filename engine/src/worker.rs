//! Worker threads: one per core, each driving its sockets in a loop
//! `rx batch -> handler -> tx batch -> recycle`.
//!
//! The loop is written once, generic over two small traits, so both I/O backends and every
//! engine run through the same code:
//! * [`FrameHandler`] — the engine: one received Ethernet frame in, at most one reply frame
//!   written into the TX buffer it is given. `dhcp::Server` implements it (see `crate::dhcp`);
//!   tests use an echo handler.
//! * [`Datapath`] — a source of frame batches: an AF_XDP socket ([`crate::xsk::XskSocket`]) or
//!   a packet socket ([`crate::socket::PacketPath`]).
//!
//! # Idle behaviour
//!
//! A busy worker never sleeps: it polls its rings back to back (AF_XDP needs no syscall per
//! packet). After [`WorkerConfig::spin`] consecutive empty rounds it blocks in `poll(2)` on its
//! sockets with a timeout ([`WorkerConfig::idle_ms`]), so an idle server costs no CPU and wakes
//! on the first frame; the timeout bounds how late it notices the stop flag. If TX work is still
//! pending (a kick that returned `EAGAIN`) it only naps for a millisecond.
//!
//! # Statistics
//!
//! Counters are plain integers owned by the worker (no atomics on the hot path). About once a
//! second the worker copies them into its slot of a [`StatsBoard`] (one uncontended mutex per
//! worker); the main thread merges the slots for its periodic log line and the exit summary.

use crate::config::ServerConfig;
use crate::dhcp::{self, Link, Server, Verdict};
use crate::journal::{Fate, Journal};
use crate::lease::{LeaseTables, Secs};
use crate::wire::DropReason;
use crate::xsk::{self, XskSocket};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The engine as the datapath sees it: a pure function of (frame, time) with per-worker
/// counters. Implementations must not block, allocate or panic on any input.
pub trait FrameHandler: Send + Sync + 'static {
    /// Per-worker counters, owned by one thread and merged for logging.
    type Stats: Default + Clone + Send + 'static;

    /// Handle one received Ethernet frame. Write the reply frame (if any) into `tx` from byte 0
    /// and return its length; `None` = no reply.
    fn handle(&self, rx: &[u8], tx: &mut [u8], now: Secs, stats: &mut Self::Stats)
    -> Option<usize>;

    /// Add `from` into `into`.
    fn merge(into: &mut Self::Stats, from: &Self::Stats);

    /// One-line human summary of merged counters, for the periodic log line.
    fn summary(stats: &Self::Stats) -> String;

    /// Periodic maintenance (lease expiry) with a bounded amount of work; called about once a
    /// second from the housekeeping thread, never from a worker. Returns the work done.
    fn housekeeping(&self, _now: Secs) -> usize {
        0
    }

    /// [`Self::handle`] for worker `lane`, which may ask the datapath to hold the reply until a
    /// journal ticket is durable ([`Tx::Hold`]). The default never holds.
    fn handle_tx(
        &self,
        _lane: usize,
        rx: &[u8],
        tx: &mut [u8],
        now: Secs,
        stats: &mut Self::Stats,
    ) -> Tx {
        self.handle(rx, tx, now, stats).map_or(Tx::None, Tx::Send)
    }

    /// [`Self::handle_tx`] for every job of a received batch, setting each job's `out`. The
    /// default handles them one by one; a handler that can overlap the batch's memory
    /// accesses (see [`DhcpHandler`]) overrides it. The replies must be those `handle_tx`
    /// would give for the frames in order.
    fn handle_batch(&self, lane: usize, jobs: &mut [Job<'_>], now: Secs, stats: &mut Self::Stats) {
        for job in jobs.iter_mut() {
            job.out = self.handle_tx(lane, job.rx, job.tx, now, stats);
        }
    }

    /// Whether worker `lane`'s held reply with `ticket` may go (see [`Tx::Hold`]).
    fn fate(&self, _lane: usize, _ticket: u64) -> Fate {
        Fate::Send
    }

    /// Worker `lane` finished a batch (the journal's committer is woken here, once per batch).
    fn batch_done(&self, _lane: usize) {}
}

/// One received frame of a batch, the TX buffer for its reply, and what the handler decided.
#[derive(Debug)]
pub struct Job<'a> {
    pub rx: &'a [u8],
    /// A whole TX frame; the reply is written from byte 0.
    pub tx: &'a mut [u8],
    /// Set by the handler ([`Tx::None`] until then).
    pub out: Tx,
}

impl<'a> Job<'a> {
    pub fn new(rx: &'a [u8], tx: &'a mut [u8]) -> Self {
        Job {
            rx,
            tx,
            out: Tx::None,
        }
    }

    /// A placeholder (empty buffers) for fixed-size job arrays.
    pub fn empty() -> Self {
        Job::new(&[], &mut [])
    }
}

/// What a handler wants done with the TX frame it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tx {
    /// No reply (the frame goes back to the pool).
    None,
    /// Send the first `len` bytes now.
    Send(usize),
    /// Send the first `len` bytes once the journal made `ticket` durable; never if its batch
    /// failed (RFC 2131 §4.3.2: the binding is committed before the DHCPACK leaves).
    Hold { len: usize, ticket: u64 },
}

/// Timers one housekeeping pass may run (lease expiry); bounded so a pass stays short even
/// when many leases expire at once.
pub const EXPIRE_BUDGET: usize = 65_536;

/// Frames of a batch prepared before the first is answered ([`DhcpHandler`]'s `handle_batch`):
/// enough to overlap the lease table misses of a batch, few enough that the prepared frames
/// (a few hundred bytes each, on the stack) stay in L1.
pub const PREPARE_AHEAD: usize = 16;

/// How far ahead of the decisions the second prefetch step runs (see `handle_batch`).
const TOUCH_AHEAD: usize = 8;

/// Cache lines of a received frame prefetched before it is parsed: 448 bytes from its start
/// cover a typical DHCP request with its headers (dhclient's DISCOVER is 342 bytes, 380 with
/// a relay's option 82) at any alignment; the rare longer request reads the rest on demand.
const FRAME_LINES: usize = 7;

/// The DHCP engine as a [`FrameHandler`]: [`dhcp::Server`] plus the link it answers on.
///
/// Durability: a [`Verdict`] may carry a lease `commit` (ACK, RELEASE, DECLINE). With a
/// [`Journal`] attached ([`DhcpHandler::with_journal`]) the record goes to the worker's lane and,
/// for `durability = "fsync"`, the ACK is held until the record is on disk ([`Tx::Hold`]). A
/// change the journal refuses (unavailable, queue full) is not acknowledged, and while the
/// journal is unavailable OFFERs are withheld too (`Stats::withheld`; see `crate::journal`).
/// Without a journal replies leave at once.
pub struct DhcpHandler {
    server: Server,
    link: Link,
    journal: Option<Arc<Journal>>,
}

impl DhcpHandler {
    /// Serve `cfg` from `tables`, replying from `mac`; `addr` is the interface's own IPv4
    /// address (`UNSPECIFIED` if none), used to pick the subnet of untagged direct requests
    /// (resolved once, see [`Server::with_home_link`]).
    pub fn new(
        cfg: Arc<ServerConfig>,
        tables: Arc<LeaseTables>,
        mac: [u8; 6],
        addr: Ipv4Addr,
    ) -> Self {
        let link = Link { mac, addr };
        DhcpHandler {
            server: Server::new(cfg, tables).with_home_link(&link),
            link,
            journal: None,
        }
    }

    /// Journal every lease change (one lane per worker index).
    #[must_use]
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// What the datapath does with a verdict of worker `lane`: journal its commit and send,
    /// hold or withhold the reply (see the type docs).
    fn dispatch(&self, lane: usize, verdict: Verdict, stats: &mut dhcp::Stats) -> Tx {
        let Some(j) = &self.journal else {
            return match verdict {
                Verdict::Reply { len, .. } => Tx::Send(len),
                Verdict::NoReply { .. } | Verdict::Drop(_) => Tx::None,
            };
        };
        let holds = j.holds_replies();
        match verdict {
            Verdict::Drop(_) => Tx::None,
            Verdict::NoReply { commit } => {
                if j.push(lane, commit).is_none() {
                    stats.withheld += 1;
                }
                Tx::None
            }
            Verdict::Reply {
                len,
                commit: None,
                msg,
            } => {
                if holds && msg == dhcp::msg::OFFER && !j.available() {
                    stats.withheld += 1;
                    Tx::None
                } else {
                    Tx::Send(len)
                }
            }
            Verdict::Reply {
                len,
                commit: Some(rec),
                ..
            } => match (j.push(lane, rec), holds) {
                (Some(ticket), true) => Tx::Hold { len, ticket },
                (None, true) => {
                    stats.withheld += 1;
                    Tx::None
                }
                (_, false) => Tx::Send(len),
            },
        }
    }

    /// One-line lease table summary for logs.
    pub fn lease_summary(&self) -> String {
        let t = self.server.leases().stats();
        format!(
            "{} bound, {} offered, {} declined, {} free of {}",
            t.bound, t.offered, t.declined, t.free, t.addresses
        )
    }
}

impl FrameHandler for DhcpHandler {
    type Stats = dhcp::Stats;

    #[inline]
    fn handle(
        &self,
        rx: &[u8],
        tx: &mut [u8],
        now: Secs,
        stats: &mut dhcp::Stats,
    ) -> Option<usize> {
        // The entry without a worker lane (tests, benches): with a journal attached, a lease
        // change cannot be journaled from here (each lane has exactly one producer, its worker),
        // so it is not acknowledged.
        match self.server.handle(rx, tx, &self.link, now, stats) {
            Verdict::Reply {
                len, commit: None, ..
            } => Some(len),
            Verdict::Reply { len, .. } if self.journal.is_none() => Some(len),
            Verdict::Reply { .. } => {
                stats.withheld += 1;
                None
            }
            Verdict::NoReply { .. } | Verdict::Drop(_) => None,
        }
    }

    #[inline]
    fn handle_tx(
        &self,
        lane: usize,
        rx: &[u8],
        tx: &mut [u8],
        now: Secs,
        stats: &mut dhcp::Stats,
    ) -> Tx {
        let verdict = self.server.handle(rx, tx, &self.link, now, stats);
        self.dispatch(lane, verdict, stats)
    }

    /// Prepare up to [`PREPARE_AHEAD`] frames, then respond to each (see [`dhcp::Prepared`]
    /// for why): the same replies as `handle_tx` one by one, with the new clients' lease
    /// table misses overlapped.
    fn handle_batch(&self, lane: usize, jobs: &mut [Job<'_>], now: Secs, stats: &mut dhcp::Stats) {
        // Filled in place for each chunk (`prepare_into` writes whatever `respond` reads).
        let mut prepared: [dhcp::Prepared<'_, '_>; PREPARE_AHEAD] = Default::default();
        for chunk in jobs.chunks_mut(PREPARE_AHEAD) {
            // The frames themselves: written by the NIC (or the kernel, in copy mode), they
            // are often not in this core's cache; ask for all of them before parsing the first.
            for job in chunk.iter() {
                crate::cpu::prefetch_lines::<FRAME_LINES>(job.rx);
            }
            for (p, job) in prepared.iter_mut().zip(chunk.iter()) {
                self.server.prepare_into(job.rx, &self.link, stats, p);
            }
            // The second prefetch step reads each frame's filter word, so it runs a few frames
            // behind the first (whose prefetch has arrived by then) and a few ahead of the
            // decision that needs the bucket: the first TOUCH_AHEAD now, the rest while
            // responding.
            let prepared = &prepared[..chunk.len()];
            for p in prepared.iter().take(TOUCH_AHEAD) {
                self.server.touch(p);
            }
            for (i, (p, job)) in prepared.iter().zip(chunk.iter_mut()).enumerate() {
                if let Some(ahead) = prepared.get(i + TOUCH_AHEAD) {
                    self.server.touch(ahead);
                }
                let verdict = self.server.respond(p, job.tx, &self.link, now, stats);
                job.out = self.dispatch(lane, verdict, stats);
            }
        }
    }

    fn fate(&self, lane: usize, ticket: u64) -> Fate {
        self.journal
            .as_ref()
            .and_then(|j| j.gate(lane))
            .map_or(Fate::Send, |g| g.fate(ticket))
    }

    fn batch_done(&self, _lane: usize) {
        if let Some(j) = &self.journal {
            j.notify();
        }
    }

    fn merge(into: &mut dhcp::Stats, from: &dhcp::Stats) {
        into.merge(from);
    }

    fn summary(s: &dhcp::Stats) -> String {
        use dhcp::msg;
        let rq = |c: u8| s.requests[dhcp::Stats::slot(c)];
        let rp = |c: u8| s.replies[dhcp::Stats::slot(c)];
        format!(
            "frames {} | discover {} request {} release {} decline {} inform {} | offer {} ack {} nak {} | \
             dropped {}{} | commits {} withheld {}",
            s.frames,
            rq(msg::DISCOVER),
            rq(msg::REQUEST),
            rq(msg::RELEASE),
            rq(msg::DECLINE),
            rq(msg::INFORM),
            rp(msg::OFFER),
            rp(msg::ACK),
            rp(msg::NAK),
            s.total_drops(),
            drop_detail(s),
            s.commits,
            s.withheld
        )
    }

    fn housekeeping(&self, now: Secs) -> usize {
        self.server.leases().expire(now, EXPIRE_BUDGET)
    }
}

/// ` (Reason n, ...)` for the non-zero drop counters, most frequent first (at most 4).
fn drop_detail(s: &dhcp::Stats) -> String {
    let mut v: Vec<(u64, DropReason)> = DropReason::ALL
        .iter()
        .map(|&r| (s.dropped(r), r))
        .filter(|&(n, _)| n > 0)
        .collect();
    if v.is_empty() {
        return String::new();
    }
    v.sort_by_key(|&(n, _)| std::cmp::Reverse(n));
    let parts: Vec<String> = v
        .iter()
        .take(4)
        .map(|(n, r)| format!("{r:?} {n}"))
        .collect();
    format!(" ({})", parts.join(", "))
}

/// I/O counters common to both backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Frames received.
    pub rx: u64,
    /// Replies handed to the kernel for transmission.
    pub tx: u64,
    /// Received frames dropped by the datapath itself (no TX buffer free, truncated, invalid).
    pub rx_dropped: u64,
    /// Replies the kernel refused (counted, not retried: DHCP clients retransmit).
    pub tx_errors: u64,
    /// TX kicks answered with EAGAIN/EBUSY/ENOBUFS (retried).
    pub tx_retries: u64,
    /// Wake-up syscalls made (TX kicks, fill-ring wake-ups).
    pub wakeups: u64,
    /// Held replies (ACKs) never sent because their journal batch failed.
    pub held_dropped: u64,
}

impl IoStats {
    pub fn merge(&mut self, o: &IoStats) {
        self.rx += o.rx;
        self.tx += o.tx;
        self.rx_dropped += o.rx_dropped;
        self.tx_errors += o.tx_errors;
        self.tx_retries += o.tx_retries;
        self.wakeups += o.wakeups;
        self.held_dropped += o.held_dropped;
    }
}

/// The callback a [`Datapath`] calls with a batch of received frames, each with a TX buffer;
/// it sets every job's `out`.
pub type BatchFn<'a> = dyn FnMut(&mut [Job<'_>]) + 'a;

/// A held reply's fate by ticket (see [`Datapath::release`]).
pub type FateFn<'a> = dyn Fn(u64) -> Fate + 'a;

/// A source of frame batches driven by one worker.
pub trait Datapath: Send {
    /// Receive up to `budget` frames, call `handle` with them (in batches, each frame with its
    /// own TX buffer), transmit the replies, and recycle buffers. Returns the number of frames
    /// received (0 = idle).
    fn process(&mut self, budget: u32, handle: &mut BatchFn<'_>) -> u32;

    /// Send held replies ([`Tx::Hold`]) that became durable and free those that never will,
    /// oldest first. Returns the replies sent.
    fn release(&mut self, fate: &FateFn<'_>) -> u32;

    /// Descriptor to `poll(2)` for readability when idle.
    fn poll_fd(&self) -> RawFd;

    /// Work is pending that needs another turn soon (TX not yet taken by the kernel, frames
    /// not yet recycled).
    fn busy(&self) -> bool;

    /// Counters so far.
    fn io_stats(&self) -> IoStats;
}

impl Datapath for XskSocket {
    fn process(&mut self, budget: u32, handle: &mut BatchFn<'_>) -> u32 {
        XskSocket::process_batch(self, budget, handle)
    }

    fn release(&mut self, fate: &FateFn<'_>) -> u32 {
        XskSocket::release_held(self, fate)
    }

    fn poll_fd(&self) -> RawFd {
        self.fd()
    }

    fn busy(&self) -> bool {
        XskSocket::busy(self)
    }

    fn io_stats(&self) -> IoStats {
        let s = self.stats();
        IoStats {
            rx: s.rx_frames,
            tx: s.tx_frames,
            rx_dropped: s.no_tx_frame + s.bad_desc,
            held_dropped: s.held_dropped,
            tx_errors: s.tx_kick_errors,
            tx_retries: s.tx_kick_retries,
            wakeups: s.tx_kicks + s.fill_wakeups,
        }
    }
}

/// Tuning of one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Worker number (thread name `xdhcp-wN`, stats slot).
    pub index: usize,
    /// Pin the thread to this CPU.
    pub cpu: Option<usize>,
    /// Frames per batch.
    pub batch: u32,
    /// Empty rounds before blocking in `poll`.
    pub spin: u32,
    /// `poll` timeout when idle (ms); bounds the reaction time to the stop flag.
    pub idle_ms: i32,
}

impl WorkerConfig {
    pub fn new(index: usize) -> Self {
        WorkerConfig {
            index,
            cpu: None,
            batch: 64,
            spin: 128,
            idle_ms: 50,
        }
    }
}

/// What a worker last published.
#[derive(Clone, Debug, Default)]
pub struct Snapshot<S> {
    pub io: IoStats,
    pub engine: S,
}

/// One published [`Snapshot`] per worker.
#[derive(Debug)]
pub struct StatsBoard<S> {
    slots: Vec<Mutex<Snapshot<S>>>,
}

impl<S: Default + Clone> StatsBoard<S> {
    pub fn new(workers: usize) -> Self {
        StatsBoard {
            slots: (0..workers)
                .map(|_| Mutex::new(Snapshot::default()))
                .collect(),
        }
    }

    fn publish(&self, index: usize, io: IoStats, engine: &S) {
        if let Some(slot) = self.slots.get(index) {
            let mut g = slot.lock().unwrap_or_else(PoisonError::into_inner);
            g.io = io;
            g.engine.clone_from(engine);
        }
    }

    /// Per-worker snapshots, in worker order.
    pub fn snapshots(&self) -> Vec<Snapshot<S>> {
        self.slots
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }

    /// All workers merged.
    pub fn total<H: FrameHandler<Stats = S>>(&self) -> Snapshot<S> {
        let mut total = Snapshot::<S>::default();
        for s in self.snapshots() {
            total.io.merge(&s.io);
            H::merge(&mut total.engine, &s.engine);
        }
        total
    }
}

/// Current Unix time in whole seconds.
pub fn unix_now() -> Secs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How long a stopping worker keeps draining its RX rings and pending TX.
pub const DRAIN_TIME: Duration = Duration::from_millis(200);

/// Run one worker until `stop` is set, then drain: keep handling what is already queued (RX)
/// and pushing out pending TX for at most [`DRAIN_TIME`].
pub fn run<H: FrameHandler, D: Datapath>(
    cfg: WorkerConfig,
    handler: &H,
    paths: &mut [D],
    stop: &AtomicBool,
    board: &StatsBoard<H::Stats>,
) {
    if let Some(cpu) = cfg.cpu {
        match xsk::sys::pin_current_thread(cpu) {
            Ok(()) => tracing::debug!(worker = cfg.index, cpu, "pinned"),
            Err(e) => {
                tracing::warn!(worker = cfg.index, cpu, error = %e, "could not pin worker to its CPU")
            }
        }
    }
    let mut stats = H::Stats::default();
    let mut pollfds: Vec<libc::pollfd> = paths
        .iter()
        .map(|p| libc::pollfd {
            fd: p.poll_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut idle = 0u32;
    let mut rounds = 0u32;
    let mut last_publish = Instant::now();
    let publish = |paths: &[D], stats: &H::Stats| {
        let mut io = IoStats::default();
        for p in paths {
            io.merge(&p.io_stats());
        }
        board.publish(cfg.index, io, stats);
    };

    while !stop.load(Ordering::Relaxed) {
        let got = round(cfg, handler, paths, &mut stats);
        rounds = rounds.wrapping_add(1);
        if got == 0 {
            idle = idle.saturating_add(1);
            if idle >= cfg.spin {
                let timeout = if paths.iter().any(Datapath::busy) {
                    1
                } else {
                    cfg.idle_ms
                };
                if let Err(e) = xsk::sys::poll(&mut pollfds, timeout) {
                    tracing::warn!(worker = cfg.index, error = %e, "poll failed");
                    std::thread::sleep(Duration::from_millis(timeout.max(1) as u64));
                }
            }
        } else {
            idle = 0;
        }
        if (got == 0 || rounds.is_multiple_of(1024))
            && last_publish.elapsed() >= Duration::from_secs(1)
        {
            publish(paths, &stats);
            last_publish = Instant::now();
        }
    }

    // Drain: what the kernel already queued for us is answered; pending TX is pushed out.
    let deadline = Instant::now() + DRAIN_TIME;
    while Instant::now() < deadline {
        let got = round(cfg, handler, paths, &mut stats);
        if got == 0 && !paths.iter().any(Datapath::busy) {
            break;
        }
        if got == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    publish(paths, &stats);
}

/// One round over a worker's datapaths: send the held replies that became durable, then handle
/// one batch from each. Returns the frames received.
fn round<H: FrameHandler, D: Datapath>(
    cfg: WorkerConfig,
    handler: &H,
    paths: &mut [D],
    stats: &mut H::Stats,
) -> u32 {
    let lane = cfg.index;
    let now = unix_now();
    let mut got = 0;
    for p in paths.iter_mut() {
        p.release(&|t| handler.fate(lane, t));
        got += p.process(cfg.batch, &mut |jobs| {
            handler.handle_batch(lane, jobs, now, stats)
        });
    }
    if got > 0 {
        handler.batch_done(lane);
    }
    got
}

/// A set of running worker threads and their published counters.
pub struct Workers<S> {
    handles: Vec<JoinHandle<()>>,
    board: Arc<StatsBoard<S>>,
    stop: Arc<AtomicBool>,
}

impl<S: Default + Clone + Send + 'static> Workers<S> {
    /// Start one thread per entry of `assignments`, each running [`run`] over its datapaths.
    ///
    /// # Errors
    /// The OS refused to create a thread (already started threads are stopped and joined).
    pub fn spawn<H, D>(
        handler: Arc<H>,
        assignments: Vec<(WorkerConfig, Vec<D>)>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Workers<S>>
    where
        H: FrameHandler<Stats = S>,
        D: Datapath + 'static,
    {
        let board = Arc::new(StatsBoard::new(assignments.len()));
        let mut set = Workers {
            handles: Vec::with_capacity(assignments.len()),
            board,
            stop,
        };
        for (cfg, mut paths) in assignments {
            let handler = Arc::clone(&handler);
            let stop = Arc::clone(&set.stop);
            let board = Arc::clone(&set.board);
            let spawned = std::thread::Builder::new()
                .name(format!("xdhcp-w{}", cfg.index))
                .spawn(move || run(cfg, &*handler, &mut paths, &stop, &board));
            match spawned {
                Ok(h) => set.handles.push(h),
                Err(e) => {
                    set.stop_and_join();
                    return Err(e);
                }
            }
        }
        Ok(set)
    }

    /// The published counters.
    pub fn board(&self) -> &StatsBoard<S> {
        &self.board
    }

    /// Worker threads that have exited (before [`Workers::stop_and_join`] this means one
    /// died: a worker only returns once the stop flag is set).
    pub fn exited(&self) -> usize {
        self.handles.iter().filter(|h| h.is_finished()).count()
    }

    /// Number of worker threads.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Set the stop flag and wait for every worker to drain and exit. Returns how many
    /// workers panicked (0 in a healthy run).
    pub fn stop_and_join(&mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let mut panicked = 0;
        for h in self.handles.drain(..) {
            if h.join().is_err() {
                panicked += 1;
            }
        }
        panicked
    }
}

impl<S> Drop for Workers<S> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// How worker threads map onto an interface's rx queues.
///
/// The XDP program sends a frame to socket `hash(chaddr) % workers_per_queue` of the queue it
/// arrived on. Every worker `w` drives slot `w` of *every* queue, so a client lands on the same
/// worker whichever queue its frames arrive on — its broadcast DISCOVER and its unicast renewal
/// hash to different RSS queues on a real NIC, but to the same chaddr slot. With `W` workers
/// there are `min(W, 16)` sockets per queue (16 = the XDP program's limit; more workers are left
/// unused, logged), all of a queue's sockets sharing its UMEM; a worker polls `Q` sockets.
///
/// On a single-queue device (veth, most virtual NICs) all workers share queue 0 — exactly the
/// case the shared-UMEM design exists for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Queues served (the device's, capped at the XDP program's `MAX_QUEUES`).
    pub queues: u32,
    /// Sockets per queue (`workers_per_queue` for the XDP program).
    pub per_queue: u32,
    /// For each worker thread, the `(queue, slot)` sockets it drives.
    pub workers: Vec<Vec<(u32, u32)>>,
}

impl Plan {
    pub fn new(workers: u32, queues: u32) -> Plan {
        let queues = queues.clamp(1, xdhcp_common::MAX_QUEUES);
        let per_queue = workers.clamp(1, xdhcp_common::MAX_WORKERS_PER_QUEUE);
        let out = (0..per_queue)
            .map(|w| (0..queues).map(|q| (q, w)).collect())
            .collect();
        Plan {
            queues,
            per_queue,
            workers: out,
        }
    }

    /// Total sockets.
    pub fn sockets(&self) -> u32 {
        self.queues * self.per_queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicU32;

    /// Echo handler: swaps MAC addresses and returns the frame.
    struct Echo {
        calls: AtomicU32,
    }

    impl FrameHandler for Echo {
        type Stats = u64;
        fn handle(&self, rx: &[u8], tx: &mut [u8], _now: Secs, stats: &mut u64) -> Option<usize> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            *stats += 1;
            if rx.len() < 14 || rx.len() > tx.len() {
                return None;
            }
            tx[..rx.len()].copy_from_slice(rx);
            tx[..6].copy_from_slice(&rx[6..12]);
            tx[6..12].copy_from_slice(&rx[..6]);
            Some(rx.len())
        }
        fn merge(into: &mut u64, from: &u64) {
            *into += from;
        }
        fn summary(s: &u64) -> String {
            format!("{s} frames")
        }
    }

    /// An in-memory datapath: a queue of frames in, the replies out.
    struct Fake {
        inbox: Vec<Vec<u8>>,
        outbox: Vec<Vec<u8>>,
        held: std::collections::VecDeque<(u64, Vec<u8>)>,
        fd: RawFd,
        stats: IoStats,
    }

    impl Datapath for Fake {
        fn process(&mut self, budget: u32, handle: &mut BatchFn<'_>) -> u32 {
            let n = (budget as usize).min(self.inbox.len());
            let frames: Vec<Vec<u8>> = self.inbox.drain(..n).collect();
            let mut txs = vec![[0u8; 2048]; n];
            let mut jobs: Vec<Job<'_>> = frames
                .iter()
                .zip(txs.iter_mut())
                .map(|(f, tx)| Job::new(f, tx))
                .collect();
            handle(&mut jobs);
            for job in &jobs {
                self.stats.rx += 1;
                match job.out {
                    Tx::Send(len) => {
                        self.outbox.push(job.tx[..len].to_vec());
                        self.stats.tx += 1;
                    }
                    Tx::Hold { len, ticket } => {
                        self.held.push_back((ticket, job.tx[..len].to_vec()))
                    }
                    Tx::None => {}
                }
            }
            n as u32
        }
        fn release(&mut self, fate: &FateFn<'_>) -> u32 {
            let mut sent = 0;
            while let Some(&(t, _)) = self.held.front() {
                let f = fate(t);
                if f == Fate::Pending {
                    break;
                }
                let (_, frame) = self.held.pop_front().expect("front");
                if f == Fate::Send {
                    self.outbox.push(frame);
                    sent += 1;
                } else {
                    self.stats.held_dropped += 1;
                }
            }
            sent
        }
        fn poll_fd(&self) -> RawFd {
            self.fd
        }
        fn busy(&self) -> bool {
            !self.held.is_empty()
        }
        fn io_stats(&self) -> IoStats {
            self.stats
        }
    }

    #[test]
    fn worker_answers_then_drains_and_stops() {
        let handler = Echo {
            calls: AtomicU32::new(0),
        };
        let mut frame = vec![0u8; 60];
        frame[..6].copy_from_slice(&[1; 6]);
        frame[6..12].copy_from_slice(&[2; 6]);
        let mut paths = vec![Fake {
            inbox: vec![frame.clone(); 150],
            outbox: vec![],
            held: Default::default(),
            fd: -1,
            stats: IoStats::default(),
        }];
        // stop already set: the worker must still drain what is queued, then exit
        let stop = AtomicBool::new(true);
        let board = StatsBoard::new(1);
        let mut cfg = WorkerConfig::new(0);
        cfg.batch = 64;
        run(cfg, &handler, &mut paths, &stop, &board);
        assert_eq!(paths[0].outbox.len(), 150);
        assert_eq!(&paths[0].outbox[0][..6], &[2; 6]);
        assert_eq!(&paths[0].outbox[0][6..12], &[1; 6]);
        let total = board.total::<Echo>();
        assert_eq!(total.engine, 150);
        assert_eq!(total.io.rx, 150);
        assert_eq!(total.io.tx, 150);
        assert_eq!(handler.calls.load(Ordering::Relaxed), 150);
    }

    /// Holds every reply with ticket = frame's first byte; the gate is two fixed marks.
    struct Holder {
        durable: u64,
        lost: u64,
    }

    impl FrameHandler for Holder {
        type Stats = u64;
        fn handle(&self, _: &[u8], _: &mut [u8], _: Secs, _: &mut u64) -> Option<usize> {
            None
        }
        fn handle_tx(&self, _: usize, rx: &[u8], tx: &mut [u8], _: Secs, n: &mut u64) -> Tx {
            *n += 1;
            tx[..rx.len()].copy_from_slice(rx);
            Tx::Hold {
                len: rx.len(),
                ticket: u64::from(rx[0]),
            }
        }
        fn fate(&self, _: usize, t: u64) -> Fate {
            if t <= self.lost {
                Fate::Drop
            } else if t <= self.durable {
                Fate::Send
            } else {
                Fate::Pending
            }
        }
        fn merge(into: &mut u64, from: &u64) {
            *into += from;
        }
        fn summary(s: &u64) -> String {
            format!("{s}")
        }
    }

    /// `DhcpHandler::handle_batch` (prepare ahead, staggered prefetch steps, respond) gives
    /// byte for byte what `handle_tx` gives frame by frame, over a batch longer than
    /// `PREPARE_AHEAD` and `TOUCH_AHEAD` in which clients come back (DISCOVER then
    /// INIT-REBOOT, a second DISCOVER), relayed and malformed frames are mixed in.
    #[test]
    fn batched_handling_answers_like_one_by_one() {
        use crate::dhcp::testkit::{Path, config, frame_of, ip, mac, request};
        use dhcproto::v4::{DhcpOption, MessageType};
        let mut frames = Vec::new();
        for c in 0..24u32 {
            let hw = mac(c);
            let relayed = c % 3 == 2;
            let path = if relayed {
                Path::Relay(ip(10, 1, 0, 1))
            } else {
                Path::Broadcast(vec![])
            };
            let mut d = request(MessageType::Discover, hw);
            if relayed {
                d.set_giaddr(ip(10, 1, 0, 1));
            }
            frames.push(frame_of(&d, &path));
            let mut r = request(MessageType::Request, hw);
            let net = if relayed { 1 } else { 0 };
            r.opts_mut().insert(DhcpOption::RequestedIpAddress(ip(
                10,
                net,
                0,
                100 + c as u8,
            )));
            if relayed {
                r.set_giaddr(ip(10, 1, 0, 1));
            }
            frames.push(frame_of(&r, &path));
            if c % 5 == 0 {
                frames.push(frame_of(&d, &path));
                frames.push(vec![0xde; 30 + c as usize]);
            }
        }
        let handler = || {
            let cfg = config();
            let tables = Arc::new(LeaseTables::new(&cfg, 2));
            DhcpHandler::new(
                Arc::new(cfg),
                tables,
                [0x02, 0x5e, 0, 0, 0, 1],
                ip(10, 0, 0, 1),
            )
        };
        let (one, batched) = (handler(), handler());
        let (mut s1, mut s2) = (dhcp::Stats::default(), dhcp::Stats::default());
        let mut want = Vec::new();
        for f in &frames {
            let mut tx = vec![0u8; 2048];
            let out = one.handle_tx(0, f, &mut tx, 1_700_000_000, &mut s1);
            let bytes = match out {
                Tx::Send(len) => tx[..len].to_vec(),
                _ => Vec::new(),
            };
            want.push((out, bytes));
        }
        let mut txs = vec![vec![0u8; 2048]; frames.len()];
        let mut jobs: Vec<Job<'_>> = frames
            .iter()
            .zip(txs.iter_mut())
            .map(|(f, tx)| Job::new(f, tx))
            .collect();
        batched.handle_batch(0, &mut jobs, 1_700_000_000, &mut s2);
        for (i, (job, (out, bytes))) in jobs.iter().zip(&want).enumerate() {
            assert_eq!(job.out, *out, "frame {i}");
            if let Tx::Send(len) = job.out {
                assert_eq!(&job.tx[..len], &bytes[..], "frame {i}");
            }
        }
        let sent = want
            .iter()
            .filter(|(o, _)| matches!(o, Tx::Send(_)))
            .count();
        assert!(sent >= 48, "offers and ACKs were sent ({sent})");
        assert_eq!(s1.frames, s2.frames);
        assert_eq!(s1.total_drops(), s2.total_drops());
        assert!(s1.total_drops() >= 5, "the malformed frames were dropped");
    }

    #[test]
    fn held_replies_leave_only_when_durable_and_in_order() {
        let frames: Vec<Vec<u8>> = (1..=10u8).map(|t| vec![t; 60]).collect();
        let mut paths = vec![Fake {
            inbox: frames,
            outbox: vec![],
            held: Default::default(),
            fd: -1,
            stats: IoStats::default(),
        }];
        let handler = Holder {
            durable: 7,
            lost: 3,
        };
        let stop = AtomicBool::new(true);
        let board = StatsBoard::new(1);
        run(WorkerConfig::new(0), &handler, &mut paths, &stop, &board);
        let sent: Vec<u8> = paths[0].outbox.iter().map(|f| f[0]).collect();
        assert_eq!(sent, vec![4, 5, 6, 7], "durable, not lost, in ticket order");
        assert_eq!(
            paths[0].stats.held_dropped, 3,
            "tickets of the failed batch"
        );
        assert_eq!(paths[0].held.len(), 3, "8..=10 still wait for the disk");
    }

    #[test]
    fn workers_stop_when_flag_set_while_idle() {
        let paths = vec![Fake {
            inbox: vec![],
            outbox: vec![],
            held: Default::default(),
            fd: -1,
            stats: IoStats::default(),
        }];
        let stop = Arc::new(AtomicBool::new(false));
        let mut cfg = WorkerConfig::new(0);
        cfg.spin = 1;
        cfg.idle_ms = 5;
        let mut w = Workers::spawn(
            Arc::new(Echo {
                calls: AtomicU32::new(0),
            }),
            vec![(cfg, paths)],
            Arc::clone(&stop),
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        std::thread::sleep(Duration::from_millis(30));
        let t = Instant::now();
        assert_eq!(w.stop_and_join(), 0);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "worker noticed the stop flag"
        );
        assert!(stop.load(Ordering::Relaxed));
        assert!(w.is_empty());
    }

    #[test]
    fn plan_shares_one_queue_between_workers() {
        let p = Plan::new(2, 1);
        assert_eq!(p.per_queue, 2);
        assert_eq!(p.workers, vec![vec![(0, 0)], vec![(0, 1)]]);
        let p = Plan::new(1, 1);
        assert_eq!(p.workers, vec![vec![(0, 0)]]);
        let p = Plan::new(40, 1);
        assert_eq!(p.per_queue, 16, "capped at the XDP program's limit");
        assert_eq!(p.workers.len(), 16);
    }

    #[test]
    fn plan_covers_every_queue_once_per_slot() {
        for workers in 1..=20 {
            for queues in 1..=9 {
                let p = Plan::new(workers, queues);
                let all: Vec<(u32, u32)> = p.workers.iter().flatten().copied().collect();
                let set: HashSet<_> = all.iter().copied().collect();
                assert_eq!(
                    all.len(),
                    set.len(),
                    "a socket driven twice ({workers}w/{queues}q)"
                );
                assert_eq!(set.len() as u32, p.sockets());
                for q in 0..queues {
                    for s in 0..p.per_queue {
                        assert!(set.contains(&(q, s)), "queue {q} slot {s} unserved");
                    }
                }
                assert!(p.workers.len() as u32 <= workers);
                assert!(p.workers.iter().all(|w| !w.is_empty()));
                let (min, max) = p.workers.iter().fold((usize::MAX, 0), |(a, b), w| {
                    (a.min(w.len()), b.max(w.len()))
                });
                assert!(max - min <= 1, "unbalanced: {p:?}");
                // A client (one chaddr slot) meets the same worker on every queue.
                for (w, list) in p.workers.iter().enumerate() {
                    assert!(list.iter().all(|&(_, s)| s as usize == w), "{p:?}");
                }
            }
        }
    }

    #[test]
    fn drop_reason_table_is_in_index_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        let mut s = dhcp::Stats::default();
        assert_eq!(drop_detail(&s), "");
        s.drops[DropReason::NoSubnet as usize] = 3;
        s.drops[DropReason::BadCookie as usize] = 7;
        assert_eq!(drop_detail(&s), " (BadCookie 7, NoSubnet 3)");
        assert!(DhcpHandler::summary(&s).contains("dropped 10 (BadCookie 7, NoSubnet 3)"));
    }

    #[test]
    fn unix_now_is_recent() {
        assert!(unix_now() > 1_700_000_000);
    }
}
