//! Durable leases: an append-only journal with group commit, background snapshots, recovery.
//!
//! RFC 2131 §4.3.2: the server "commits the binding for the client to persistent storage" before
//! it sends the DHCPACK. xdhcp keeps that promise without a per-lease fsync:
//!
//! ```text
//!  worker 0 ──push(record)──▶ lane 0 ─┐                      ┌─▶ lane 0 gate: durable = t
//!  worker 1 ──push(record)──▶ lane 1 ─┼─▶ committer thread ──┤   (workers release held ACKs
//!     (ACK frame held in the TX       │   one write + one    └─▶ lane 1 gate    with ticket <= t)
//!      path with its ticket)          ┘   fdatasync per batch
//! ```
//!
//! * Each worker owns a **lane** (a bounded queue). Pushing a record returns a **ticket** (the
//!   lane's sequence number); the ACK frame waits in the datapath with that ticket.
//! * The **committer** drains every lane into one buffer, writes it at the end of the current
//!   segment and calls `fdatasync` once — the group commit. It never waits to fill a batch: a
//!   batch is whatever arrived during the previous write, so under load batches grow and the
//!   fsync cost per lease falls, and when idle a lease waits for one fsync. A batch holds at most
//!   [`JournalConfig::max_batch`] records. Then it publishes, per lane, the highest durable
//!   ticket ([`Gate`]); workers send the held ACKs up to it.
//! * **Ordering.** Records from different lanes interleave in the file in no particular order;
//!   each carries its address's change counter (`LeaseInfo::version`) and replay keeps the
//!   newest per address, so the order does not matter.
//! * **Compaction.** When the segments since the last snapshot pass
//!   [`JournalConfig::compact_bytes`], the committer starts a new segment `k` and a background
//!   thread writes `snapshot-k` from the live tables (one slot lock at a time, workers keep
//!   serving), then deletes the older files. A snapshot may be *newer* than some records after it;
//!   versions make that harmless.
//! * **Recovery** ([`files::recover`]): newest complete snapshot, then the later segments. A torn
//!   tail of the last segment is cut off; damage elsewhere stops start-up unless `--salvage`.
//! * **Disk faults.** A failed write or fsync fails the whole batch: its ACKs are never sent
//!   (clients retransmit), the segment is cut back to its last good length, the journal turns
//!   *unavailable* (a counter and a log line), and the committer retries every
//!   [`RETRY_INTERVAL`] until a write + fsync succeeds. While unavailable, lease changes are not
//!   acknowledged at all — new leases, renewals and rebinds alike, because an ACK promises that
//!   the new expiry is on disk; clients keep their current lease until it runs out and retry.
//!   OFFERs are withheld too so that clients turn to a peer server if there is one.
//!
//! `durability = "none"` writes the same journal without fsync and without holding ACKs: leases
//! survive a clean restart, a crash may lose the last moments.

mod commit;
pub mod files;
pub mod format;
#[cfg(test)]
mod tests;

pub use files::{Recovery, SnapshotStats};

use crate::config::Durability;
use crate::lease::{LeaseRecord, LeaseStore, LeaseTables, Secs};
use commit::Committer;
use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use files::Listing;
use format::{FileKind, HEADER_LEN, Header};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

/// How often an unavailable journal tries to write again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Errors that stop start-up (serving-time faults are counted, not returned).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: damaged at byte {offset}: {why}\n  help: valid, acknowledged leases may follow the damage, so xdhcp will not cut it off by itself. \
         Start once with `--salvage` to keep every valid record (the damaged file is kept as *.corrupt), or restore the state directory from a backup"
        , path.display()
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    #[error(
        "{}: another xdhcp is using this state directory\n  help: stop it, or give this one its own --state-dir",
        path.display()
    )]
    Locked { path: PathBuf },
}

impl JournalError {
    pub fn io(path: &Path, source: io::Error) -> Self {
        let hint = match source.kind() {
            io::ErrorKind::PermissionDenied => {
                " (help: run as root or give the state directory to the xdhcp user)"
            }
            io::ErrorKind::ReadOnlyFilesystem => " (help: the state directory must be writable)",
            io::ErrorKind::StorageFull => " (help: free space on the state directory's disk)",
            _ => "",
        };
        JournalError::Io {
            path: path.to_owned(),
            source: io::Error::new(source.kind(), format!("{source}{hint}")),
        }
    }
}

/// Tuning; [`JournalConfig::new`] has the defaults.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    pub dir: PathBuf,
    pub durability: Durability,
    /// One lane per worker.
    pub lanes: usize,
    /// Records a lane buffers before pushes fail (the ACK is dropped, counted; the client
    /// retransmits).
    pub lane_capacity: usize,
    /// Records per write + fsync at most.
    pub max_batch: usize,
    /// Start a snapshot when the segments since the last one exceed this many bytes.
    pub compact_bytes: u64,
    /// Start-up: keep the valid records of damaged files instead of refusing to start.
    pub salvage: bool,
    /// Fault injection for tests: asked before every write, fsync and segment creation; an
    /// error it returns acts as if the disk had returned it.
    pub faults: Option<FaultHook>,
}

/// A disk operation of the committer, for [`JournalConfig::faults`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Write,
    Sync,
    Create,
}

/// See [`JournalConfig::faults`].
#[derive(Clone)]
pub struct FaultHook(pub Arc<dyn Fn(Op) -> io::Result<()> + Send + Sync>);

impl std::fmt::Debug for FaultHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultHook")
    }
}

impl JournalConfig {
    pub fn new(dir: impl Into<PathBuf>, durability: Durability, lanes: usize) -> Self {
        JournalConfig {
            dir: dir.into(),
            durability,
            lanes: lanes.max(1),
            lane_capacity: 1 << 16,
            max_batch: 1 << 16,
            compact_bytes: 256 << 20,
            salvage: false,
            faults: None,
        }
    }
}

/// A lease record waiting in a lane, with its ticket.
type Entry = (u64, LeaseRecord);

/// Where a worker's held replies stand: tickets `<= durable` are on disk; tickets `<= lost`
/// never will be (their batch failed). Both only grow, batch by batch in ticket order, so a
/// ticket above `lost` and at most `durable` was in a successful batch. A ticket under both marks
/// (a worker that looks late) counts as lost: dropping an ACK is safe (the client retransmits),
/// sending one that may not be on disk is not.
#[derive(Debug, Default)]
pub struct Gate {
    durable: CachePadded<AtomicU64>,
    lost: CachePadded<AtomicU64>,
}

/// A held reply's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Pending,
    Send,
    Drop,
}

impl Gate {
    pub fn fate(&self, ticket: u64) -> Fate {
        if ticket <= self.lost.load(Ordering::Acquire) {
            Fate::Drop
        } else if ticket <= self.durable.load(Ordering::Acquire) {
            Fate::Send
        } else {
            Fate::Pending
        }
    }
}

struct Lane {
    queue: ArrayQueue<Entry>,
    /// Tickets handed out (single producer: the lane's worker).
    next: CachePadded<AtomicU64>,
    gate: Gate,
}

/// Counters (monotonic, read with [`Journal::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    pub records: u64,
    pub batches: u64,
    pub bytes: u64,
    /// Largest batch so far.
    pub max_batch: u64,
    /// Slowest write + fsync so far (µs).
    pub max_commit_us: u64,
    /// Records whose batch failed (their ACKs were not sent).
    pub failed_records: u64,
    /// Write or fsync failures (each turns the journal unavailable until a retry succeeds).
    pub failures: u64,
    /// Pushes refused because a lane was full or the journal unavailable.
    pub refused: u64,
    pub snapshots: u64,
    /// Duration of the last snapshot (ms) and its leases.
    pub last_snapshot_ms: u64,
    pub last_snapshot_leases: u64,
    pub segment: u64,
    pub available: bool,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    batches: AtomicU64,
    bytes: AtomicU64,
    max_batch: AtomicU64,
    max_commit_us: AtomicU64,
    failed_records: AtomicU64,
    failures: AtomicU64,
    refused: AtomicU64,
    snapshots: AtomicU64,
    last_snapshot_ms: AtomicU64,
    last_snapshot_leases: AtomicU64,
    segment: AtomicU64,
}

/// The journal: lanes for the workers, a committer thread, a snapshot thread.
pub struct Journal {
    cfg: JournalConfig,
    lanes: Box<[Lane]>,
    available: AtomicBool,
    stop: AtomicBool,
    committer: OnceLock<Thread>,
    counters: Counters,
    threads: Mutex<Vec<JoinHandle<()>>>,
    compact_now: AtomicBool,
    snapshot_busy: AtomicBool,
    /// Held for the process's life: one xdhcp per state directory.
    _lock: File,
}

impl Journal {
    /// Lock `cfg.dir` (creating it), rebuild `tables` from it, and start the committer and
    /// snapshot threads. Always starts a fresh segment.
    ///
    /// # Errors
    /// Unusable directory, another xdhcp holding it, damaged files (see [`JournalError`]).
    pub fn open(
        cfg: JournalConfig,
        tables: Arc<LeaseTables>,
        now: Secs,
    ) -> Result<(Arc<Journal>, Recovery), JournalError> {
        let dir = cfg.dir.clone();
        let lock = lock_dir(&dir)?;
        let access = if cfg.salvage {
            files::Access::Salvage
        } else {
            files::Access::Owner
        };
        let (recovery, listing) = files::recover(&dir, &tables, now, access)?;
        let seq = listing.next_seq();
        let segment = Segment::create(&dir, seq).map_err(|e| JournalError::io(&dir, e))?;
        let lanes = (0..cfg.lanes)
            .map(|_| Lane {
                queue: ArrayQueue::new(cfg.lane_capacity.max(1)),
                next: CachePadded::new(AtomicU64::new(0)),
                gate: Gate::default(),
            })
            .collect();
        let since_snapshot = segments_bytes(&dir, &listing);
        let journal = Arc::new(Journal {
            cfg,
            lanes,
            available: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            committer: OnceLock::new(),
            counters: Counters::default(),
            threads: Mutex::new(Vec::new()),
            compact_now: AtomicBool::new(false),
            snapshot_busy: AtomicBool::new(false),
            _lock: lock,
        });
        journal.counters.segment.store(seq, Ordering::Relaxed);
        let (to_snapshot, snapshots) = mpsc::channel::<u64>();
        let j = Arc::clone(&journal);
        let t = Arc::clone(&tables);
        let snap = thread::Builder::new()
            .name("xdhcp-snapshot".into())
            .spawn(move || j.snapshot_loop(&t, &snapshots))
            .map_err(|e| JournalError::io(&dir, e))?;
        let j = Arc::clone(&journal);
        let commit = thread::Builder::new()
            .name("xdhcp-journal".into())
            .spawn(move || {
                Committer {
                    j: &j,
                    segment,
                    since_snapshot,
                    to_snapshot,
                    buf: Vec::new(),
                    zeros: vec![0; 1 << 20],
                    popped: vec![0; j.lanes.len()],
                }
                .run()
            })
            .map_err(|e| JournalError::io(&dir, e))?;
        let _ = journal.committer.set(commit.thread().clone());
        let mut threads = journal
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        threads.push(commit);
        threads.push(snap);
        drop(threads);
        Ok((journal, recovery))
    }

    fn fault(&self, op: Op) -> io::Result<()> {
        self.cfg.faults.as_ref().map_or(Ok(()), |f| (f.0)(op))
    }

    /// Whether ACKs must wait for their ticket (`durability = "fsync"`).
    pub fn holds_replies(&self) -> bool {
        self.cfg.durability == Durability::Fsync
    }

    /// False while the disk refuses writes (see the module docs).
    pub fn available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Queue `rec` on `lane`. Returns its ticket, or `None` when the lane is full or the journal
    /// unavailable: then the change must not be acknowledged.
    ///
    /// Only that lane's worker may call this: the committer publishes the last ticket it took
    /// from a lane as durable, which is only right if tickets enter the queue in order (one
    /// producer).
    pub fn push(&self, lane: usize, rec: LeaseRecord) -> Option<u64> {
        let l = self.lanes.get(lane)?;
        if !self.available() {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let ticket = l.next.load(Ordering::Relaxed) + 1;
        if l.queue.push((ticket, rec)).is_err() {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        l.next.store(ticket, Ordering::Relaxed);
        Some(ticket)
    }

    /// Wake the committer (call once per batch of pushes, not per record).
    pub fn notify(&self) {
        if let Some(t) = self.committer.get() {
            t.unpark();
        }
    }

    pub fn gate(&self, lane: usize) -> Option<&Gate> {
        self.lanes.get(lane).map(|l| &l.gate)
    }

    /// Ask for a snapshot now (tests, operators' signal).
    pub fn request_snapshot(&self) {
        self.compact_now.store(true, Ordering::Relaxed);
        self.notify();
    }

    pub fn stats(&self) -> JournalStats {
        let c = &self.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JournalStats {
            records: r(&c.records),
            batches: r(&c.batches),
            bytes: r(&c.bytes),
            max_batch: r(&c.max_batch),
            max_commit_us: r(&c.max_commit_us),
            failed_records: r(&c.failed_records),
            failures: r(&c.failures),
            refused: r(&c.refused),
            snapshots: r(&c.snapshots),
            last_snapshot_ms: r(&c.last_snapshot_ms),
            last_snapshot_leases: r(&c.last_snapshot_leases),
            segment: r(&c.segment),
            available: self.available(),
        }
    }

    /// Commit everything queued, stop the threads (an unfinished snapshot is abandoned; the
    /// segments it would have replaced stay). Call after the workers stopped.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.notify();
        let threads: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for t in threads {
            if t.join().is_err() {
                tracing::error!("journal thread panicked");
            }
        }
    }

    fn snapshot_loop(&self, tables: &LeaseTables, seqs: &mpsc::Receiver<u64>) {
        while let Ok(seq) = seqs.recv() {
            let stop = || self.stop.load(Ordering::Relaxed);
            match files::write_snapshot(&self.cfg.dir, seq, tables, &stop) {
                Ok(Some(s)) => {
                    let c = &self.counters;
                    c.snapshots.fetch_add(1, Ordering::Relaxed);
                    c.last_snapshot_ms
                        .store(s.elapsed.as_millis() as u64, Ordering::Relaxed);
                    c.last_snapshot_leases.store(s.leases, Ordering::Relaxed);
                    tracing::info!(
                        seq,
                        leases = s.leases,
                        bytes = s.bytes,
                        ms = s.elapsed.as_millis() as u64,
                        "journal: snapshot written, older segments removed"
                    );
                }
                Ok(None) => tracing::info!(seq, "journal: snapshot abandoned at shutdown"),
                Err(e) => {
                    tracing::error!(seq, error = %e, "journal: snapshot failed; will retry after more records")
                }
            }
            // The committer may start another.
            self.snapshot_busy.store(false, Ordering::Release);
        }
    }
}

fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
    let path = dir.join("lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| JournalError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(JournalError::Locked { path }),
        Err(fs::TryLockError::Error(e)) => Err(JournalError::io(&path, e)),
    }
}

fn segments_bytes(dir: &Path, l: &Listing) -> u64 {
    let from = l.snapshots.last().copied().unwrap_or(0);
    l.segments
        .iter()
        .filter(|&&s| s >= from)
        .map(|&s| {
            fs::metadata(files::segment_path(dir, s))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

/// Bytes a segment is extended by, with zeros, ahead of its records.
///
/// WHY: an `fdatasync` after an append must also commit the new file size (an ext4 journal
/// transaction); after an overwrite of already-written blocks it only flushes data — measured
/// here 210-240 µs vs 133-140 µs per 64 KiB batch. So the committer writes zeros a chunk ahead
/// and the records overwrite them; one fsync per chunk pays for the size change. Readers treat
/// trailing zeros as free space ([`format::scan`]).
const PREALLOCATE: u64 = 1 << 20;

/// The segment being appended to.
struct Segment {
    file: File,
    seq: u64,
    /// Bytes known good (header + committed batches); a failed write is cut back to this.
    len: u64,
    /// File length: `len` plus the zeros written ahead ([`PREALLOCATE`]).
    allocated: u64,
}

impl Segment {
    /// Make sure the next `bytes` overwrite zeros already in the file.
    fn reserve(&mut self, bytes: u64, zeros: &[u8]) -> io::Result<()> {
        let need = self.len + bytes;
        if need <= self.allocated {
            return Ok(());
        }
        let target = need.div_ceil(PREALLOCATE) * PREALLOCATE;
        let mut at = self.allocated.max(self.len);
        while at < target {
            let n = (target - at).min(zeros.len() as u64) as usize;
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        self.allocated = target;
        Ok(())
    }
}

impl Segment {
    fn create(dir: &Path, seq: u64) -> io::Result<Segment> {
        let path = files::segment_path(dir, seq);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)?;
        let header = Header {
            kind: FileKind::Segment,
            seq,
            created: crate::worker::unix_now(),
        };
        file.write_all_at(&header.encode(), 0)?;
        file.sync_all()?;
        files::sync_dir(dir)?;
        Ok(Segment {
            file,
            seq,
            len: HEADER_LEN as u64,
            allocated: HEADER_LEN as u64,
        })
    }
}

/// Appends records to a new segment of a state directory while no server runs (imports). The
/// records replay after everything already there.
pub struct OfflineWriter {
    segment: Segment,
    buf: Vec<u8>,
    _lock: File,
}

impl OfflineWriter {
    /// Lock `dir` and start a new segment in it.
    ///
    /// # Errors
    /// As [`Journal::open`] (without recovery: the files are not read).
    pub fn open(dir: &Path) -> Result<OfflineWriter, JournalError> {
        let lock = lock_dir(dir)?;
        let listing = Listing::read(dir).map_err(|e| JournalError::io(dir, e))?;
        let segment =
            Segment::create(dir, listing.next_seq()).map_err(|e| JournalError::io(dir, e))?;
        Ok(OfflineWriter {
            segment,
            buf: Vec::new(),
            _lock: lock,
        })
    }
}

impl LeaseStore for OfflineWriter {
    fn append(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        self.buf.clear();
        for r in records {
            format::encode_lease(&mut self.buf, r);
        }
        self.segment
            .file
            .write_all_at(&self.buf, self.segment.len)?;
        self.segment.len += self.buf.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.segment.file.sync_data()
    }
}
