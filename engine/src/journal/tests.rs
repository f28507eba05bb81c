use super::format::{self, FileKind, HEADER_LEN, Header, Record};
use super::*;
use crate::config::{Durability, ServerConfig, SubnetId};
use crate::lease::tests::{bind, client, config, ip, subnet};
use crate::lease::{LeaseInfo, LeaseState, LeaseTables};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

const T0: Secs = 1_000_000;

/// A fresh directory under the system temp dir, removed on drop (also on panic).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "xdhcp-journal-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn cfg() -> ServerConfig {
    config(vec![subnet(
        0,
        "10.1.0.0",
        16,
        &[("10.1.0.1", "10.1.3.254")],
    )])
}

fn tables() -> Arc<LeaseTables> {
    Arc::new(LeaseTables::new(&cfg(), 4))
}

fn jcfg(dir: &TempDir, lanes: usize) -> JournalConfig {
    JournalConfig::new(&dir.0, Durability::Fsync, lanes)
}

/// Wait until `lane`'s `ticket` is decided.
fn settle(j: &Journal, lane: usize, ticket: u64) -> Fate {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let f = j.gate(lane).expect("lane").fate(ticket);
        if f != Fate::Pending || Instant::now() > deadline {
            return f;
        }
        j.notify();
        thread::sleep(Duration::from_millis(1));
    }
}

/// Every lease of `t` by address (state as of `now`).
fn leases(t: &LeaseTables, now: Secs) -> HashMap<Ipv4Addr, (LeaseState, Secs, String)> {
    let mut out = Vec::new();
    let mut cur = Some(0);
    while let Some(c) = cur {
        cur = t.records(c, 1 << 20, &mut out);
    }
    out.into_iter()
        .filter_map(|l| {
            l.state_at(now)
                .map(|s| (l.addr, (s, l.expires, format!("{:?}", l.client))))
        })
        .collect()
}

use std::net::Ipv4Addr;

#[test]
fn header_and_records_round_trip_and_reject_damage() {
    let h = Header {
        kind: FileKind::Segment,
        seq: 7,
        created: 42,
    };
    let enc = h.encode();
    assert_eq!(Header::decode(&enc, FileKind::Segment), Ok(h));
    assert!(Header::decode(&enc, FileKind::Snapshot).is_err());
    let mut bad = enc;
    bad[20] ^= 1;
    assert!(Header::decode(&bad, FileKind::Segment).is_err());
    assert!(Header::decode(&enc[..10], FileKind::Segment).is_err());

    let rec = LeaseInfo {
        addr: ip("10.1.0.9"),
        subnet: SubnetId(0),
        client: client(9),
        state: LeaseState::Bound,
        expires: T0 + 100,
        version: 3,
    };
    let mut buf = Vec::new();
    format::encode_lease(&mut buf, &rec);
    format::encode_end(&mut buf, 1);
    assert!(buf.len() <= 2 * format::MAX_RECORD);
    let (first, used) = format::decode(&buf).expect("valid").expect("whole");
    assert_eq!(first, Record::Lease(rec));
    assert_eq!(
        format::decode(&buf[used..])
            .expect("valid")
            .expect("whole")
            .0,
        Record::End { count: 1 }
    );
    // Any single flipped bit is caught.
    for i in 0..used {
        let mut b = buf.clone();
        b[i] ^= 0x10;
        assert!(
            !matches!(format::decode(&b), Ok(Some((r, _))) if r == Record::Lease(rec)),
            "flip at byte {i} went unnoticed"
        );
    }
    // A cut record asks for more bytes.
    assert_eq!(format::decode(&buf[..used - 1]), Ok(None));
}

#[test]
fn scan_tells_a_torn_tail_from_damage_in_the_middle() {
    let mut body = Vec::new();
    for v in 1..=5 {
        format::encode_lease(
            &mut body,
            &LeaseInfo {
                addr: ip("10.1.0.1"),
                subnet: SubnetId(0),
                client: client(v),
                state: LeaseState::Bound,
                expires: T0,
                version: v,
            },
        );
    }
    let rec_len = body.len() / 5;
    let mut n = 0;
    let clean = format::scan(&body, |_| n += 1);
    assert_eq!(
        (clean.good, clean.torn, clean.corrupt),
        (body.len(), 0, None)
    );
    assert_eq!(n, 5);

    let torn = format::scan(&body[..body.len() - 3], |_| {});
    assert_eq!(torn.good, 4 * rec_len);
    // Counted up to its last non-zero byte (zeros after it are preallocated space).
    assert!(torn.torn > 0 && torn.torn <= rec_len - 3, "{torn:?}");
    assert_eq!(torn.corrupt, None);
    // Preallocated zeros after the records are free space, not damage.
    let mut padded = body.clone();
    padded.resize(body.len() + 4096, 0);
    let free = format::scan(&padded, |_| {});
    assert_eq!((free.good, free.torn, free.corrupt), (body.len(), 0, None));

    let mut mid = body.clone();
    mid[rec_len + 10] ^= 0xff;
    let damaged = format::scan(&mid, |_| {});
    assert_eq!(damaged.good, rec_len);
    assert_eq!(damaged.corrupt.map(|c| c.0), Some(rec_len));
    let (kept, skipped) = format::salvage(&mid);
    assert_eq!(kept.len(), 4);
    assert_eq!(skipped, rec_len);
}

/// Bind `n` clients and journal each binding on lane `c % lanes`; returns the tickets.
fn bind_and_push(j: &Journal, t: &LeaseTables, n: u32, now: Secs) -> Vec<(usize, u64)> {
    (0..n)
        .map(|c| {
            let a = Ipv4Addr::from(u32::from(ip("10.1.0.1")) + c);
            let l = bind(t, c, a, 3600, now).expect("bind");
            let lane = c as usize % j.lanes();
            (lane, j.push(lane, l).expect("pushed"))
        })
        .collect()
}

#[test]
fn acknowledged_leases_survive_a_restart() {
    let dir = TempDir::new("restart");
    let t = tables();
    let (j, r) = Journal::open(jcfg(&dir, 2), Arc::clone(&t), T0).expect("open");
    assert_eq!((r.records, r.bound), (0, 0));
    let tickets = bind_and_push(&j, &t, 500, T0);
    for &(lane, ticket) in &tickets {
        assert_eq!(settle(&j, lane, ticket), Fate::Send);
    }
    let s = j.stats();
    assert_eq!(s.records, 500);
    assert!(s.batches >= 1 && s.batches <= 500);
    let before = leases(&t, T0);
    j.shutdown();
    drop(j);

    let t2 = tables();
    let (j2, r2) = Journal::open(jcfg(&dir, 2), Arc::clone(&t2), T0 + 10).expect("reopen");
    assert_eq!(r2.records, 500);
    assert_eq!(r2.bound, 500);
    assert_eq!(leases(&t2, T0 + 10), before);
    // A second server on the same directory is refused.
    assert!(matches!(
        Journal::open(jcfg(&dir, 1), tables(), T0),
        Err(JournalError::Locked { .. })
    ));
    j2.shutdown();
}

#[test]
fn replay_keeps_the_newest_change_whatever_order_the_lanes_wrote_in() {
    let dir = TempDir::new("order");
    let t = tables();
    let (j, _) = Journal::open(jcfg(&dir, 2), Arc::clone(&t), T0).expect("open");
    let a = ip("10.1.0.50");
    let held = bind(&t, 1, a, 3600, T0).expect("bind 1");
    let released = t.release(&client(1), a, T0 + 1).expect("release");
    let rebound = bind(&t, 2, a, 3600, T0 + 2).expect("bind 2");
    assert!(held.version < released.version && released.version < rebound.version);
    // The newest change reaches the disk FIRST (lane 0 before lane 1 in one batch, or an
    // earlier batch).
    let t2 = j.push(0, rebound).expect("push");
    assert_eq!(settle(&j, 0, t2), Fate::Send);
    let t1a = j.push(1, held).expect("push");
    let t1b = j.push(1, released).expect("push");
    assert_eq!(settle(&j, 1, t1a), Fate::Send);
    assert_eq!(settle(&j, 1, t1b), Fate::Send);
    j.shutdown();
    drop(j);

    let t3 = tables();
    let (j3, r) = Journal::open(jcfg(&dir, 2), Arc::clone(&t3), T0 + 3).expect("reopen");
    assert_eq!(r.superseded, 2);
    let now = t3.by_addr(a).expect("lease");
    assert_eq!((now.client, now.state), (client(2), LeaseState::Bound));
    j3.shutdown();
}

#[test]
fn snapshots_replace_old_segments_and_recovery_matches() {
    let dir = TempDir::new("snapshot");
    let t = tables();
    let mut c = jcfg(&dir, 1);
    c.compact_bytes = 4096;
    let (j, _) = Journal::open(c.clone(), Arc::clone(&t), T0).expect("open");
    let tickets = bind_and_push(&j, &t, 300, T0);
    for &(lane, ticket) in &tickets {
        assert_eq!(settle(&j, lane, ticket), Fate::Send);
    }
    // Let the snapshot thread finish (triggered by the 4 KiB threshold).
    let deadline = Instant::now() + Duration::from_secs(10);
    while j.stats().snapshots == 0 && Instant::now() < deadline {
        j.notify();
        thread::sleep(Duration::from_millis(5));
    }
    assert!(j.stats().snapshots >= 1, "{:?}", j.stats());
    // More changes after the snapshot: a release and 10 more leases.
    let gone = t
        .release(&client(0), ip("10.1.0.1"), T0 + 1)
        .expect("release");
    let tk = j.push(0, gone).expect("push");
    assert_eq!(settle(&j, 0, tk), Fate::Send);
    let before = leases(&t, T0 + 1);
    j.shutdown();
    drop(j);
    let l = files::Listing::read(&dir.0).expect("list");
    assert!(!l.snapshots.is_empty());
    let snap = *l.snapshots.last().expect("snapshot");
    assert!(
        l.segments.iter().all(|&s| s >= snap),
        "segments before the snapshot were removed: {l:?}"
    );

    // A crash right after a snapshot's rename leaves the files it replaces: they are ignored
    // (the snapshot covers them) and removed at start-up.
    let stale = files::segment_path(&dir.0, 0);
    fs::write(&stale, b"garbage that must never be read").expect("stale");
    let t2 = tables();
    let (j2, r) = Journal::open(c, Arc::clone(&t2), T0 + 1).expect("reopen");
    assert!(!stale.exists());
    assert!(r.snapshot.is_some());
    assert_eq!(leases(&t2, T0 + 1), before);
    assert_eq!(
        t2.by_addr(ip("10.1.0.1")).map(|l| l.state),
        Some(LeaseState::Released)
    );
    j2.shutdown();
}

fn last_segment(dir: &TempDir) -> PathBuf {
    let l = files::Listing::read(&dir.0).expect("list");
    files::segment_path(&dir.0, *l.segments.last().expect("segment"))
}

/// Journal 20 leases in one run, stop, and return the newest non-empty segment.
fn journal_twenty(dir: &TempDir) -> PathBuf {
    let t = tables();
    let (j, _) = Journal::open(jcfg(dir, 1), Arc::clone(&t), T0).expect("open");
    let tickets = bind_and_push(&j, &t, 20, T0);
    let &(lane, last) = tickets.last().expect("tickets");
    assert_eq!(settle(&j, lane, last), Fate::Send);
    j.shutdown();
    last_segment(dir)
}

#[test]
fn a_torn_tail_is_cut_off_and_counted() {
    let dir = TempDir::new("torn");
    let seg = journal_twenty(&dir);
    let data = fs::read(&seg).expect("read");
    assert!(
        data.len() > HEADER_LEN + 20 * 30,
        "the segment is preallocated"
    );
    let len = (HEADER_LEN + format::scan(&data[HEADER_LEN..], |_| {}).good) as u64;
    // A crash in the middle of writing a record (into the preallocated zeros).
    let mut partial = Vec::new();
    format::encode_lease(
        &mut partial,
        &LeaseInfo {
            addr: ip("10.1.0.200"),
            subnet: SubnetId(0),
            client: client(200),
            state: LeaseState::Bound,
            expires: T0 + 3600,
            version: 1,
        },
    );
    let f = OpenOptions::new().write(true).open(&seg).expect("open");
    f.write_all_at(&partial[..partial.len() / 2], len)
        .expect("write");
    drop(f);
    let t = tables();
    let (j, r) = Journal::open(jcfg(&dir, 1), Arc::clone(&t), T0).expect("recovers");
    assert_eq!(r.torn_bytes, (partial.len() / 2) as u64);
    assert_eq!(r.bound, 20);
    assert_eq!(fs::metadata(&seg).expect("meta").len(), len);
    assert!(t.by_addr(ip("10.1.0.200")).is_none());
    j.shutdown();
}

#[test]
fn damage_in_the_middle_stops_start_up_unless_salvaged() {
    let dir = TempDir::new("corrupt");
    let seg = journal_twenty(&dir);
    let mut data = fs::read(&seg).expect("read");
    data[HEADER_LEN + 5 * 40 + 3] ^= 0x55;
    fs::write(&seg, &data).expect("write");
    let err = Journal::open(jcfg(&dir, 1), tables(), T0)
        .err()
        .expect("refuses to start");
    let msg = err.to_string();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{msg}");
    assert!(msg.contains("--salvage"), "{msg}");

    let mut c = jcfg(&dir, 1);
    c.salvage = true;
    let t = tables();
    let (j, r) = Journal::open(c, Arc::clone(&t), T0).expect("salvages");
    assert!(r.salvaged_bytes > 0);
    assert!(r.bound >= 18, "{r:?}");
    let mut aside = seg.as_os_str().to_owned();
    aside.push(".corrupt");
    assert!(Path::new(&aside).exists());
    j.shutdown();
    drop(j);
    // The salvaged directory starts cleanly next time.
    let (j, r) = Journal::open(jcfg(&dir, 1), tables(), T0).expect("clean now");
    assert_eq!(r.bound as usize, leases(&t, T0).len());
    j.shutdown();
}

#[test]
fn expired_leases_are_not_resurrected() {
    let dir = TempDir::new("expired");
    let t = tables();
    let (j, _) = Journal::open(jcfg(&dir, 1), Arc::clone(&t), T0).expect("open");
    let short = bind(&t, 1, ip("10.1.0.7"), 60, T0).expect("bind");
    let long = bind(&t, 2, ip("10.1.0.8"), 7200, T0).expect("bind");
    j.push(0, short).expect("push");
    let tk = j.push(0, long).expect("push");
    assert_eq!(settle(&j, 0, tk), Fate::Send);
    j.shutdown();
    drop(j);
    let t2 = tables();
    let (j2, r) = Journal::open(jcfg(&dir, 1), Arc::clone(&t2), T0 + 120).expect("reopen");
    assert_eq!(r.bound, 1);
    let l = t2.by_addr(ip("10.1.0.7")).expect("remembered");
    assert_eq!(l.state_at(T0 + 120), Some(LeaseState::Expired));
    assert!(!l.is_active(T0 + 120));
    j2.shutdown();
}

#[test]
fn a_failing_disk_loses_no_acknowledged_lease_and_recovers_by_itself() {
    for (kind, op) in [
        (io::ErrorKind::StorageFull, Op::Write),
        (io::ErrorKind::ReadOnlyFilesystem, Op::Write),
        (io::ErrorKind::PermissionDenied, Op::Write),
        (io::ErrorKind::Other, Op::Sync),
    ] {
        disk_fault(kind, op);
    }
}

/// The disk refuses `op` with `kind` for a while (the real ENOSPC case is in
/// tests/tests/disk_full.rs, on a small tmpfs).
fn disk_fault(kind: io::ErrorKind, op: Op) {
    let dir = TempDir::new("faults");
    let broken = Arc::new(AtomicBool::new(false));
    let b = Arc::clone(&broken);
    let mut c = jcfg(&dir, 1);
    c.faults = Some(FaultHook(Arc::new(move |o| {
        if b.load(Ordering::Relaxed) && o == op {
            Err(io::Error::from(kind))
        } else {
            Ok(())
        }
    })));
    let t = tables();
    let (j, _) = Journal::open(c.clone(), Arc::clone(&t), T0).expect("open");
    let ok = bind(&t, 1, ip("10.1.0.1"), 3600, T0).expect("bind");
    let tk = j.push(0, ok).expect("push");
    assert_eq!(settle(&j, 0, tk), Fate::Send);

    broken.store(true, Ordering::Relaxed);
    let lost = bind(&t, 2, ip("10.1.0.2"), 3600, T0).expect("bind");
    let tk = j.push(0, lost).expect("push");
    assert_eq!(
        settle(&j, 0, tk),
        Fate::Drop,
        "{kind:?}: a failed batch is never acknowledged"
    );
    assert!(!j.available());
    let s = j.stats();
    assert_eq!((s.failures, s.failed_records), (1, 1));
    // While unavailable nothing is accepted.
    let refused = bind(&t, 3, ip("10.1.0.3"), 3600, T0).expect("bind");
    assert_eq!(j.push(0, refused), None);
    assert_eq!(j.stats().refused, 1);

    // The disk comes back: within a retry interval the journal accepts records again.
    broken.store(false, Ordering::Relaxed);
    let deadline = Instant::now() + RETRY_INTERVAL * 5;
    while !j.available() && Instant::now() < deadline {
        j.notify();
        thread::sleep(Duration::from_millis(20));
    }
    assert!(j.available(), "recovers by itself");
    let again = bind(&t, 2, ip("10.1.0.2"), 3600, T0 + 5).expect("renew");
    let tk = j.push(0, again).expect("push");
    assert_eq!(settle(&j, 0, tk), Fate::Send);
    j.shutdown();
    drop(j);

    let t2 = tables();
    let (j2, r) = Journal::open(c, Arc::clone(&t2), T0 + 6).expect("reopen");
    assert_eq!(r.bound, 2);
    assert_eq!(r.torn_bytes, 0, "the failed batch left nothing behind");
    assert_eq!(
        t2.by_addr(ip("10.1.0.1")).map(|l| l.client),
        Some(client(1))
    );
    assert_eq!(
        t2.by_addr(ip("10.1.0.2")).map(|l| l.client),
        Some(client(2))
    );
    assert!(t2.by_addr(ip("10.1.0.3")).is_none());
    j2.shutdown();
}

#[test]
fn durability_none_does_not_hold_and_still_restores_after_a_clean_stop() {
    let dir = TempDir::new("none");
    let mut c = jcfg(&dir, 1);
    c.durability = Durability::None;
    let t = tables();
    let (j, _) = Journal::open(c.clone(), Arc::clone(&t), T0).expect("open");
    assert!(!j.holds_replies());
    bind_and_push(&j, &t, 10, T0);
    j.shutdown();
    drop(j);
    let (j2, r) = Journal::open(c, tables(), T0).expect("reopen");
    assert_eq!(r.bound, 10);
    j2.shutdown();
}

#[test]
fn offline_writer_appends_records_that_replay_last() {
    let dir = TempDir::new("offline");
    let seg_before = journal_twenty(&dir);
    {
        let mut w = OfflineWriter::open(&dir.0).expect("offline");
        let rec = LeaseInfo {
            addr: ip("10.1.0.1"),
            subnet: SubnetId(0),
            client: client(77),
            state: LeaseState::Bound,
            expires: T0 + 999,
            version: 0,
        };
        w.append(&[rec]).expect("append");
        w.sync().expect("sync");
    }
    assert_ne!(last_segment(&dir), seg_before);
    let t = tables();
    let (j, _) = Journal::open(jcfg(&dir, 1), Arc::clone(&t), T0).expect("open");
    assert_eq!(
        t.by_addr(ip("10.1.0.1")).map(|l| l.client),
        Some(client(77))
    );
    j.shutdown();
}
