//! The state directory: which files exist, recovery from them, snapshots, salvage.
//!
//! ```text
//! DIR/lock                     flock'ed by the running xdhcp (one server per directory)
//! DIR/journal-<seq>.xdj        segments, appended in seq order (16 hex digits)
//! DIR/snapshot-<seq>.xds       every lease as of some moment after segment seq-1 was closed:
//!                              recovery = newest complete snapshot S, then segments >= S
//! DIR/*.tmp                    a snapshot being written (renamed when complete; else deleted)
//! ```

use super::JournalError;
use super::format::{self, FileKind, HEADER_LEN, Header, Record, Scan};
use crate::lease::{LeaseError, LeaseInfo, LeaseTables, Secs};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("journal-{seq:016x}.xdj"))
}

pub fn snapshot_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("snapshot-{seq:016x}.xds"))
}

fn parse_name(name: &str) -> Option<(FileKind, u64)> {
    let (kind, rest) = if let Some(r) = name.strip_prefix("journal-") {
        (FileKind::Segment, r.strip_suffix(".xdj")?)
    } else {
        (
            FileKind::Snapshot,
            name.strip_prefix("snapshot-")?.strip_suffix(".xds")?,
        )
    };
    (rest.len() == 16)
        .then(|| u64::from_str_radix(rest, 16).ok())
        .flatten()
        .map(|seq| (kind, seq))
}

/// The files found in a state directory, sorted by sequence number.
#[derive(Debug, Default)]
pub struct Listing {
    pub segments: Vec<u64>,
    pub snapshots: Vec<u64>,
    pub temporaries: Vec<PathBuf>,
}

impl Listing {
    pub fn read(dir: &Path) -> io::Result<Listing> {
        let mut l = Listing::default();
        for e in fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                l.temporaries.push(e.path());
            } else if let Some((kind, seq)) = parse_name(name) {
                match kind {
                    FileKind::Segment => l.segments.push(seq),
                    FileKind::Snapshot => l.snapshots.push(seq),
                }
            }
        }
        l.segments.sort_unstable();
        l.snapshots.sort_unstable();
        Ok(l)
    }

    /// The next free sequence number.
    pub fn next_seq(&self) -> u64 {
        let s = self.segments.last().copied().unwrap_or(0);
        let n = self.snapshots.last().copied().unwrap_or(0);
        s.max(n) + 1
    }
}

/// fsync a directory so that a create, rename or unlink in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What start-up found and did.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The snapshot recovery started from.
    pub snapshot: Option<PathBuf>,
    /// Segments replayed after it.
    pub segments: usize,
    /// Records read (snapshot + segments).
    pub records: u64,
    /// Records that set a lease.
    pub applied: u64,
    /// Records older than what an address already held (normal: workers interleave).
    pub superseded: u64,
    /// Records for addresses the current configuration does not serve (dropped).
    pub not_in_pool: u64,
    /// Bytes of a torn tail cut off the last segment (a crash during a write).
    pub torn_bytes: u64,
    /// Bytes skipped by `--salvage` in damaged files.
    pub salvaged_bytes: u64,
    /// Leases bound (not expired) after recovery.
    pub bound: u64,
    pub elapsed: Duration,
}

fn open_body(path: &Path, kind: FileKind) -> Result<(Header, Vec<u8>), JournalError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| JournalError::io(path, e))?;
    let header = Header::decode(&data, kind).map_err(|why| JournalError::Corrupt {
        path: path.to_owned(),
        offset: 0,
        why,
    })?;
    data.drain(..HEADER_LEN);
    Ok((header, data))
}

/// Apply one decoded record to the tables, counting the outcome.
fn apply(tables: &LeaseTables, rec: Record, now: Secs, r: &mut Recovery) {
    let Record::Lease(mut info) = rec else { return };
    r.records += 1;
    let Some(subnet) = tables.subnet_of(info.addr) else {
        r.not_in_pool += 1;
        return;
    };
    info.subnet = subnet;
    match tables.restore(info, now) {
        Ok(()) => r.applied += 1,
        Err(LeaseError::Superseded) => r.superseded += 1,
        Err(_) => r.not_in_pool += 1,
    }
}

/// How [`recover`] may treat the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Start-up of the server that owns the directory: cut torn tails off, remove leftovers.
    Owner,
    /// Start-up with `--salvage`: as `Owner`, and rewrite damaged files from their valid records.
    Salvage,
    /// Another process reads (export, possibly while a server runs): change nothing; a torn
    /// tail is skipped, not cut.
    ReadOnly,
}

/// Rebuild `tables` from the directory: newest complete snapshot, then every later segment in
/// order. A torn tail of the LAST segment is cut off (counted, logged); damage anywhere else
/// stops start-up with [`JournalError::Corrupt`] unless `Access::Salvage`, which keeps every
/// valid record of the damaged file (the original is kept beside it as `*.corrupt`).
pub fn recover(
    dir: &Path,
    tables: &LeaseTables,
    now: Secs,
    access: Access,
) -> Result<(Recovery, Listing), JournalError> {
    let started = Instant::now();
    let mut r = Recovery::default();
    let salvage = access == Access::Salvage;
    let listing = Listing::read(dir).map_err(|e| JournalError::io(dir, e))?;
    if access != Access::ReadOnly {
        for t in &listing.temporaries {
            let _ = fs::remove_file(t);
        }
    }
    // Newest snapshot first; one that is incomplete is an error (it was renamed into place
    // only after its end record was synced, so damage, not a crash).
    let base = listing.snapshots.last().copied();
    if let Some(seq) = base {
        let path = snapshot_path(dir, seq);
        let (header, body) = open_body(&path, FileKind::Snapshot)?;
        let mut complete = None;
        let scan = format::scan(&body, |rec| match rec {
            Record::End { count } => complete = Some(count),
            lease => apply(tables, lease, now, &mut r),
        });
        if scan.corrupt.is_some() || scan.torn > 0 || complete.is_none() {
            if !salvage {
                return Err(JournalError::Corrupt {
                    path,
                    offset: (HEADER_LEN + scan.good) as u64,
                    why: scan
                        .corrupt
                        .map_or("snapshot has no end record", |(_, why)| why)
                        .into(),
                });
            }
            salvage_file(&path, header, &body, tables, now, &mut r)?;
        }
        r.snapshot = Some(path);
    }
    let from = base.unwrap_or(0);
    if access != Access::ReadOnly {
        // A crash between a snapshot's rename and the removal of what it replaces leaves
        // older files behind: they are covered by the snapshot.
        if let Err(e) = remove_covered(dir, &listing, from) {
            tracing::warn!(dir = %dir.display(), error = %e, "journal: could not remove files a snapshot replaced");
        }
    }
    let live: Vec<u64> = listing
        .segments
        .iter()
        .copied()
        .filter(|&s| s >= from)
        .collect();
    for (i, &seq) in live.iter().enumerate() {
        let path = segment_path(dir, seq);
        let last = i + 1 == live.len();
        let (header, body) = match open_body(&path, FileKind::Segment) {
            Ok(b) => b,
            // A crash right after creating the newest segment can leave it shorter than its
            // header: nothing was ever acknowledged from it.
            Err(JournalError::Corrupt { .. }) if last && file_len(&path) < HEADER_LEN as u64 => {
                r.torn_bytes += file_len(&path);
                if access != Access::ReadOnly {
                    fs::remove_file(&path).map_err(|e| JournalError::io(&path, e))?;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let scan: Scan = format::scan(&body, |rec| apply(tables, rec, now, &mut r));
        r.segments += 1;
        if let Some((offset, why)) = scan.corrupt {
            if !salvage {
                return Err(JournalError::Corrupt {
                    path,
                    offset: (HEADER_LEN + offset) as u64,
                    why: why.into(),
                });
            }
            // The valid prefix is applied already; salvage re-applies it harmlessly (versions).
            salvage_file(&path, header, &body, tables, now, &mut r)?;
        } else if scan.torn > 0 {
            if !last && !salvage {
                return Err(JournalError::Corrupt {
                    path,
                    offset: (HEADER_LEN + scan.good) as u64,
                    why: "a closed segment ends in a partial record".into(),
                });
            }
            r.torn_bytes += scan.torn as u64;
            if access == Access::ReadOnly {
                // A running server may be writing it right now.
                continue;
            }
            tracing::warn!(
                file = %path.display(),
                bytes = scan.torn,
                "journal: cut off a torn tail (a crash interrupted the last write; nothing in it was acknowledged)"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| JournalError::io(&path, e))?;
            f.set_len((HEADER_LEN + scan.good) as u64)
                .and_then(|()| f.sync_all())
                .map_err(|e| JournalError::io(&path, e))?;
        }
    }
    r.bound = tables.stats().bound;
    r.elapsed = started.elapsed();
    Ok((r, listing))
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Keep the damaged original as `<name>.corrupt`, apply every valid record in it, and rewrite it
/// from those records so the next start needs no `--salvage`.
fn salvage_file(
    path: &Path,
    header: Header,
    body: &[u8],
    tables: &LeaseTables,
    now: Secs,
    r: &mut Recovery,
) -> Result<(), JournalError> {
    let (records, skipped) = format::salvage(body);
    let mut aside = path.as_os_str().to_owned();
    aside.push(".corrupt");
    fs::copy(path, &aside).map_err(|e| JournalError::io(path, e))?;
    tracing::warn!(
        file = %path.display(),
        kept = records.len(),
        skipped_bytes = skipped,
        copy = %Path::new(&aside).display(),
        "salvage: applied every valid record of a damaged file; the original is kept"
    );
    r.salvaged_bytes += skipped as u64;
    let mut out = Vec::with_capacity(body.len());
    let mut count = 0u64;
    for rec in records {
        if let Record::Lease(l) = rec {
            format::encode_lease(&mut out, &l);
            count += 1;
        }
        apply(tables, rec, now, r);
    }
    if header.kind == FileKind::Snapshot {
        format::encode_end(&mut out, count);
    }
    let rewrite = || -> io::Result<()> {
        let mut f = Staged::create(path, header.kind, header.seq)?;
        f.write(&out)?;
        f.install().map(|_| ())
    };
    rewrite().map_err(|e| JournalError::io(path, e))
}

/// A file written as `<path>.tmp` and renamed into place only once complete and synced, so a
/// crash never leaves a half-written file under its real name (recovery deletes `*.tmp`).
struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    w: BufWriter<File>,
}

impl Staged {
    /// Create the temporary file and write the header.
    fn create(path: &Path, kind: FileKind, seq: u64) -> io::Result<Staged> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let header = Header {
            kind,
            seq,
            created: crate::worker::unix_now(),
        };
        w.write_all(&header.encode())?;
        Ok(Staged {
            tmp,
            path: path.to_owned(),
            w,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)
    }

    /// Sync, rename into place, sync the directory. Returns the file's size.
    fn install(self) -> io::Result<u64> {
        let file = self
            .w
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        fs::rename(&self.tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(bytes)
    }

    /// Give up: remove the temporary file.
    fn abandon(self) {
        drop(self.w);
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Remove the segments and snapshots older than snapshot `seq`, which covers them.
fn remove_covered(dir: &Path, listing: &Listing, seq: u64) -> io::Result<()> {
    for s in listing.segments.iter().filter(|&&s| s < seq) {
        fs::remove_file(segment_path(dir, *s))?;
    }
    for s in listing.snapshots.iter().filter(|&&s| s < seq) {
        fs::remove_file(snapshot_path(dir, *s))?;
    }
    Ok(())
}

/// What one snapshot wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotStats {
    pub leases: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Slots read per table pass of a snapshot: small, so a worker waits for at most one slot lock
/// the snapshot holds.
const SNAPSHOT_CHUNK: u32 = 4096;

/// Write `snapshot-<seq>` from the live tables (workers keep serving: one slot lock at a time),
/// then delete the segments and snapshots it replaces. `stop` aborts between chunks.
pub fn write_snapshot(
    dir: &Path,
    seq: u64,
    tables: &LeaseTables,
    stop: &dyn Fn() -> bool,
) -> io::Result<Option<SnapshotStats>> {
    let started = Instant::now();
    let mut f = Staged::create(&snapshot_path(dir, seq), FileKind::Snapshot, seq)?;
    let mut chunk: Vec<LeaseInfo> = Vec::with_capacity(SNAPSHOT_CHUNK as usize);
    let mut buf = Vec::with_capacity(SNAPSHOT_CHUNK as usize * format::MAX_RECORD);
    let mut cursor = Some(0);
    let mut leases = 0u64;
    while let Some(from) = cursor {
        if stop() {
            f.abandon();
            return Ok(None);
        }
        chunk.clear();
        buf.clear();
        cursor = tables.records(from, SNAPSHOT_CHUNK, &mut chunk);
        for l in &chunk {
            format::encode_lease(&mut buf, l);
        }
        leases += chunk.len() as u64;
        f.write(&buf)?;
    }
    buf.clear();
    format::encode_end(&mut buf, leases);
    f.write(&buf)?;
    let bytes = f.install()?;
    // Everything before `seq` is now covered by the snapshot.
    remove_covered(dir, &Listing::read(dir)?, seq)?;
    sync_dir(dir)?;
    Ok(Some(SnapshotStats {
        leases,
        bytes,
        elapsed: started.elapsed(),
    }))
}
