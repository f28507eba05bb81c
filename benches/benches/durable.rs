//! Durable leases (issue 4 §2, §3, §7): what the journal costs, how fast start-up restores, how a
//! snapshot affects serving.
//!
//! Run: `cargo bench -p xdhcp-benches --bench durable -- --warm-up-time 1 --measurement-time 5`
//! (`-- --test` runs each once, quickly).
//!
//! * `durable/dora/*`: one element = one new client's lease (DISCOVER -> OFFER, REQUEST -> ACK)
//!   through `DhcpHandler::handle_tx`, exactly as a worker runs it: requests in batches of 64,
//!   the ACKs held until the journal's gate releases them, the clock stopped only when the last
//!   ACK of the run was released. Same frames, same run, four set-ups: `no_journal` (the engine
//!   alone), `none` (journal written, nothing held), `fsync_tmpfs` (/dev/shm) and `fsync_disk`
//!   (target/, on the machine's real disk). Issue 4's goal: `fsync_disk` keeps >= 70 % of the
//!   no-fsync throughput.
//! * `durable/recover/1m`: start-up with 1 M bound leases in the state directory (one snapshot
//!   plus one segment of 64 k records): building the tables plus `Journal::open` (recovery).
//!   Goal: <= 1 s.
//! * `compaction` (printed, not a criterion group): with 1 M leases bound, one thread serves new
//!   clients in batches of 64 while a snapshot of the 1 M leases is written; the worst and the
//!   99th-percentile batch latency (request in -> ACK released) with and without the snapshot
//!   running.
//!
//! Figures are recorded in benches/README.md.

mod common;

use common::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::VecDeque;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdhcp::config::{Durability, ServerConfig, SubnetId};
use xdhcp::dhcp::Stats;
use xdhcp::journal::{Fate, Journal, JournalConfig};
use xdhcp::lease::{BindRequest, ClientKey, LeaseInfo, LeaseTables};
use xdhcp::worker::{DhcpHandler, FrameHandler, Tx};

/// Worker batch: requests handled between two gate checks.
const WORKER_BATCH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    NoJournal,
    Journal(Durability, Disk),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disk {
    Tmpfs,
    Real,
}

fn state_dir(disk: Disk, tag: &str) -> PathBuf {
    let base = match disk {
        Disk::Tmpfs => PathBuf::from("/dev/shm"),
        Disk::Real => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
    };
    base.join(format!("xdhcp-bench-{tag}-{}", std::process::id()))
}

/// A server (handler + optional journal) and the worker-side state of one bench run.
struct Bed {
    setup: Setup,
    handler: DhcpHandler,
    journal: Option<Arc<Journal>>,
    dir: Option<PathBuf>,
    stats: Stats,
    tx: Vec<u8>,
    used: u32,
    next: u32,
}

impl Bed {
    fn new(setup: Setup, cfg: ServerConfig, tag: &str) -> Bed {
        let cfg = Arc::new(cfg);
        let tables = Arc::new(LeaseTables::new(&cfg, 1));
        let handler =
            DhcpHandler::new(Arc::clone(&cfg), Arc::clone(&tables), SERVER_MAC, SERVER_ID);
        let (handler, journal, dir) = match setup {
            Setup::NoJournal => (handler, None, None),
            Setup::Journal(durability, disk) => {
                let dir = state_dir(disk, tag);
                let _ = std::fs::remove_dir_all(&dir);
                let (j, _) = Journal::open(JournalConfig::new(&dir, durability, 1), tables, NOW)
                    .expect("journal");
                (handler.with_journal(Arc::clone(&j)), Some(j), Some(dir))
            }
        };
        Bed {
            setup,
            handler,
            journal,
            dir,
            stats: Stats::default(),
            tx: vec![0u8; 2048],
            used: 0,
            next: 0,
        }
    }

    fn close(&mut self) {
        if let Some(j) = self.journal.take() {
            j.shutdown();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// Time `iters` fresh-client DORAs, ACKs released by the journal.
    fn dora(&mut self, iters: u64, tag: &str) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        let mut held: VecDeque<u64> = VecDeque::with_capacity(BATCH);
        let mut sent = 0usize;
        while left > 0 {
            let n = left.min(BATCH as u64) as usize;
            left -= n as u64;
            if self.used as usize + n > (POOL as usize) * 9 / 10 {
                total += self.drain(&mut held, &mut sent);
                self.close();
                *self = Bed::new(self.setup, config(), tag);
            }
            let first = self.next;
            self.next += n as u32;
            self.used += n as u32;
            let discovers: Vec<Vec<u8>> = (first..first + n as u32)
                .map(|c| frame(c, Kind::Discover, false))
                .collect();
            let mut offered = Vec::with_capacity(n);
            let t = Instant::now();
            for f in &discovers {
                if let Tx::Send(len) =
                    self.handler
                        .handle_tx(0, black_box(f), &mut self.tx, NOW, &mut self.stats)
                {
                    offered.push(yiaddr(&self.tx[..len]));
                }
            }
            total += t.elapsed();
            assert_eq!(offered.len(), n, "{:?}", self.stats);
            let requests: Vec<Vec<u8>> = (first..first + n as u32)
                .zip(&offered)
                .map(|(c, &a)| frame(c, Kind::Request(a), false))
                .collect();
            let t = Instant::now();
            for chunk in requests.chunks(WORKER_BATCH) {
                for f in chunk {
                    match self.handler.handle_tx(
                        0,
                        black_box(f),
                        &mut self.tx,
                        NOW,
                        &mut self.stats,
                    ) {
                        Tx::Send(_) => sent += 1,
                        Tx::Hold { ticket, .. } => held.push_back(ticket),
                        Tx::None => {}
                    }
                }
                self.handler.batch_done(0);
                sent += release(&self.handler, &mut held);
            }
            total += t.elapsed();
        }
        // A worker never waits for the disk between batches; the run ends when its last ACK
        // has left.
        total += self.drain(&mut held, &mut sent);
        assert_eq!(
            sent as u64, iters,
            "every REQUEST was ACKed: {:?}",
            self.stats
        );
        total
    }

    /// Wait until every held ACK is released; returns the time it took.
    fn drain(&self, held: &mut VecDeque<u64>, sent: &mut usize) -> Duration {
        let t = Instant::now();
        while !held.is_empty() {
            std::thread::yield_now();
            *sent += release(&self.handler, held);
        }
        t.elapsed()
    }
}

/// Send (count) the held ACKs whose tickets are durable.
fn release(h: &DhcpHandler, held: &mut VecDeque<u64>) -> usize {
    let mut n = 0;
    while let Some(&t) = held.front() {
        match h.fate(0, t) {
            Fate::Pending => break,
            Fate::Send => n += 1,
            Fate::Drop => panic!("a journal batch failed during the benchmark"),
        }
        held.pop_front();
    }
    n
}

fn dora(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable/dora");
    g.throughput(Throughput::Elements(1));
    for (name, setup) in [
        ("no_journal", Setup::NoJournal),
        ("none", Setup::Journal(Durability::None, Disk::Real)),
        (
            "fsync_tmpfs",
            Setup::Journal(Durability::Fsync, Disk::Tmpfs),
        ),
        ("fsync_disk", Setup::Journal(Durability::Fsync, Disk::Real)),
    ] {
        let mut bed = Bed::new(setup, config(), name);
        g.bench_function(name, |b| b.iter_custom(|iters| bed.dora(iters, name)));
        bed.close();
    }
    g.finish();
}

/// A /11 with `leases` of its ~2 M addresses bound to clients 0.., for the 1 M-lease cases.
fn big_tables(leases: u32) -> (ServerConfig, Arc<LeaseTables>) {
    let mut cfg = config();
    let s = &mut cfg.subnets[0];
    s.network.prefix = 11;
    let start = u32::from(s.ranges[0].start);
    s.ranges[0].end = Ipv4Addr::from(start + (2 << 20) - 8192);
    s.options.set(1, vec![255, 224, 0, 0]);
    // The reservations of `config()` lie inside the wider range: not needed here.
    s.reservations.clear();
    let tables = Arc::new(LeaseTables::new(&cfg, 2));
    for c in 0..leases {
        bind_client(&tables, start, c, 86_400, NOW);
    }
    (cfg, tables)
}

/// Bind client `c` to the `c`-th address from `start`.
fn bind_client(tables: &LeaseTables, start: u32, c: u32, lease: u32, now: u64) -> LeaseInfo {
    let b = c.to_be_bytes();
    tables
        .bind(
            &BindRequest {
                client: ClientKey::from_hw(1, &[0x02, 0xdd, b[0], b[1], b[2], b[3]]),
                subnet: SubnetId(0),
                addr: Ipv4Addr::from(start + c),
                lease,
                fixed: false,
            },
            now,
        )
        .expect("bind")
}

fn recover(c: &mut Criterion) {
    const LEASES: u32 = 1 << 20;
    let dir = state_dir(Disk::Real, "recover");
    let _ = std::fs::remove_dir_all(&dir);
    let (cfg, tables) = big_tables(LEASES);
    {
        // One snapshot of everything, then 64 k renewals in a segment after it.
        let (j, _) = Journal::open(
            JournalConfig::new(&dir, Durability::Fsync, 1),
            Arc::clone(&tables),
            NOW,
        )
        .expect("journal");
        j.request_snapshot();
        while j.stats().snapshots == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let start = u32::from(cfg.subnets[0].ranges[0].start);
        let mut last = 0;
        for c in 0..65_536u32 {
            let l = bind_client(&tables, start, c, 90_000, NOW + 1);
            while j.push(0, l).is_none() {
                j.notify();
                std::thread::yield_now();
            }
            last += 1;
        }
        j.notify();
        while j.gate(0).expect("lane").fate(last) == Fate::Pending {
            std::thread::sleep(Duration::from_millis(1));
        }
        j.shutdown();
    }
    drop(tables);
    let mut g = c.benchmark_group("durable/recover");
    g.sample_size(10);
    g.bench_function("1m", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let tables = Arc::new(LeaseTables::new(&cfg, 2));
                let (j, r) = Journal::open(
                    JournalConfig::new(&dir, Durability::Fsync, 1),
                    Arc::clone(&tables),
                    NOW + 2,
                )
                .expect("recover");
                total += t.elapsed();
                assert_eq!(r.bound, u64::from(LEASES));
                j.shutdown();
                drop(j);
                // Each start adds an (empty) segment; keep the directory as it was.
                remove_empty_segments(&dir);
            }
            total
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn remove_empty_segments(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let empty = e.metadata().is_ok_and(|m| m.len() <= 40);
        if empty && p.extension().is_some_and(|x| x == "xdj") {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Batch latencies (µs) of a worker serving fresh clients for `dur`, ACKs released by `j`.
fn serve_for(bed: &mut Bed, dur: Duration, first: u32) -> Vec<u64> {
    let mut lat = Vec::new();
    let mut held = VecDeque::new();
    let started = Instant::now();
    let mut c = first;
    while started.elapsed() < dur {
        let t = Instant::now();
        let discovers: Vec<Vec<u8>> = (c..c + WORKER_BATCH as u32)
            .map(|n| frame(n, Kind::Discover, false))
            .collect();
        let mut offered = Vec::new();
        for f in &discovers {
            if let Tx::Send(len) = bed
                .handler
                .handle_tx(0, f, &mut bed.tx, NOW, &mut bed.stats)
            {
                offered.push(yiaddr(&bed.tx[..len]));
            }
        }
        for (n, a) in (c..).zip(offered) {
            let f = frame(n, Kind::Request(a), false);
            if let Tx::Hold { ticket, .. } =
                bed.handler
                    .handle_tx(0, &f, &mut bed.tx, NOW, &mut bed.stats)
            {
                held.push_back(ticket);
            }
        }
        bed.handler.batch_done(0);
        while !held.is_empty() {
            release(&bed.handler, &mut held);
            std::thread::yield_now();
        }
        lat.push(t.elapsed().as_micros() as u64);
        c += WORKER_BATCH as u32;
    }
    lat
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(0)
}

/// Worst reply latency while a snapshot of 1 M leases is written (printed).
fn compaction(_c: &mut Criterion) {
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let (cfg, tables) = big_tables(1 << 20);
    let dir = state_dir(Disk::Real, "compaction");
    let _ = std::fs::remove_dir_all(&dir);
    let (j, _) = Journal::open(
        JournalConfig::new(&dir, Durability::Fsync, 1),
        Arc::clone(&tables),
        NOW,
    )
    .expect("journal");
    let mut bed = Bed {
        setup: Setup::Journal(Durability::Fsync, Disk::Real),
        handler: DhcpHandler::new(Arc::new(cfg), Arc::clone(&tables), SERVER_MAC, SERVER_ID)
            .with_journal(Arc::clone(&j)),
        journal: Some(Arc::clone(&j)),
        dir: Some(dir),
        stats: Stats::default(),
        tx: vec![0u8; 2048],
        used: 0,
        next: 0,
    };
    let mut quiet = serve_for(&mut bed, Duration::from_secs(2), 1 << 24);
    j.request_snapshot();
    let started = Instant::now();
    let mut during = Vec::new();
    let mut c = 1 << 25;
    while j.stats().snapshots == 0 && started.elapsed() < Duration::from_secs(60) {
        during.extend(serve_for(&mut bed, Duration::from_millis(100), c));
        c += 1 << 16;
    }
    let s = j.stats();
    println!(
        "compaction: snapshot of {} leases took {} ms; batch of {WORKER_BATCH} DORAs (request in -> \
         ACK released): without snapshot p99 {} us max {} us ({} batches); during snapshot p99 {} us \
         max {} us ({} batches)",
        s.last_snapshot_leases,
        s.last_snapshot_ms,
        percentile(&mut quiet, 0.99),
        quiet.iter().max().copied().unwrap_or(0),
        quiet.len(),
        percentile(&mut during, 0.99),
        during.iter().max().copied().unwrap_or(0),
        during.len(),
    );
    bed.close();
}

criterion_group!(benches, dora, recover, compaction);
criterion_main!(benches);
