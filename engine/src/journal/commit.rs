//! The committer thread: drain the lanes, write one batch, fsync, publish the tickets.

use super::{Journal, RETRY_INTERVAL, Segment, format};
use crate::config::Durability;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub(super) struct Committer<'a> {
    pub j: &'a Journal,
    pub segment: Segment,
    /// Bytes written since the last snapshot was started.
    pub since_snapshot: u64,
    pub to_snapshot: mpsc::Sender<u64>,
    pub buf: Vec<u8>,
    /// A block of zeros for preallocating segments.
    pub zeros: Vec<u8>,
    /// Highest ticket taken from each lane in the current batch (0 = none).
    pub popped: Vec<u64>,
}

impl Committer<'_> {
    pub fn run(mut self) {
        let mut last_retry = Instant::now();
        loop {
            let stopping = self.j.stop.load(Ordering::Acquire);
            let n = self.gather();
            if !self.j.available() && last_retry.elapsed() >= RETRY_INTERVAL {
                last_retry = Instant::now();
                self.probe();
            }
            if n == 0 {
                if stopping {
                    break;
                }
                self.maybe_snapshot();
                let nap = if self.j.available() {
                    Duration::from_millis(50)
                } else {
                    Duration::from_millis(100)
                };
                thread::park_timeout(nap);
                continue;
            }
            if !self.j.available() {
                self.settle(false, n);
                continue;
            }
            let started = Instant::now();
            match self.write() {
                Ok(()) => {
                    let us = started.elapsed().as_micros() as u64;
                    self.j
                        .counters
                        .max_commit_us
                        .fetch_max(us, Ordering::Relaxed);
                    self.settle(true, n);
                }
                Err(e) => {
                    self.fail(&e);
                    last_retry = Instant::now();
                    self.settle(false, n);
                }
            }
            self.maybe_snapshot();
        }
    }

    /// Move queued records into the batch buffer; returns how many.
    fn gather(&mut self) -> usize {
        self.buf.clear();
        self.popped.iter_mut().for_each(|p| *p = 0);
        let max = self.j.cfg.max_batch;
        let mut n = 0;
        for (i, lane) in self.j.lanes.iter().enumerate() {
            while n < max {
                let Some((ticket, rec)) = lane.queue.pop() else {
                    break;
                };
                format::encode_lease(&mut self.buf, &rec);
                self.popped[i] = ticket;
                n += 1;
            }
        }
        n
    }

    /// One write at the end of the segment and, for `fsync` durability, one `fdatasync`.
    fn write(&mut self) -> io::Result<()> {
        let seg = &mut self.segment;
        self.j.fault(super::Op::Write)?;
        seg.reserve(self.buf.len() as u64, &self.zeros)?;
        seg.file.write_all_at(&self.buf, seg.len)?;
        if self.j.cfg.durability == Durability::Fsync {
            self.j.fault(super::Op::Sync)?;
            seg.file.sync_data()?;
        }
        seg.len += self.buf.len() as u64;
        self.since_snapshot += self.buf.len() as u64;
        Ok(())
    }

    /// Publish the batch's outcome to the lanes and the counters.
    fn settle(&mut self, ok: bool, n: usize) {
        for (lane, &t) in self.j.lanes.iter().zip(&self.popped) {
            if t == 0 {
                continue;
            }
            let g = &lane.gate;
            if ok {
                g.durable.store(t, Ordering::Release);
            } else {
                g.lost.store(t, Ordering::Release);
            }
        }
        let c = &self.j.counters;
        let n = n as u64;
        if ok {
            c.records.fetch_add(n, Ordering::Relaxed);
            c.batches.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            c.max_batch.fetch_max(n, Ordering::Relaxed);
        } else {
            c.failed_records.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A write or fsync failed: the batch is lost (its ACKs are never sent) and the journal
    /// refuses records until [`Self::probe`] has cut the segment back to its last good length
    /// (so no later batch lands after garbage) and proved the disk writable.
    fn fail(&mut self, e: &io::Error) {
        self.j.counters.failures.fetch_add(1, Ordering::Relaxed);
        self.j.available.store(false, Ordering::Relaxed);
        tracing::error!(
            error = %e,
            segment = self.segment.seq,
            "journal: write failed; NOT acknowledging lease changes (no ACK, no OFFER) until the disk accepts writes again; retrying every {}s",
            RETRY_INTERVAL.as_secs()
        );
    }

    /// While unavailable: restore the segment to its good length and prove the disk takes a
    /// write and an fsync again (a no-op record), then accept records again.
    fn probe(&mut self) {
        let seg = &mut self.segment;
        let mut nop = Vec::with_capacity(format::RECORD_HEADER);
        format::encode_nop(&mut nop);
        let r = self
            .j
            .fault(super::Op::Write)
            .and_then(|()| seg.file.set_len(seg.len))
            .and_then(|()| {
                seg.allocated = seg.len;
                seg.file.write_all_at(&nop, seg.len)
            })
            .and_then(|()| self.j.fault(super::Op::Sync))
            .and_then(|()| seg.file.sync_data());
        match r {
            Ok(()) => {
                seg.len += nop.len() as u64;
                self.j.available.store(true, Ordering::Relaxed);
                tracing::warn!(
                    segment = seg.seq,
                    "journal: disk accepts writes again; acknowledging leases"
                );
            }
            Err(e) => tracing::debug!(error = %e, "journal: disk still refuses writes"),
        }
    }

    /// Start a snapshot when enough was written since the last one (or one was asked for) and
    /// none is running: switch to a new segment `k`, let the snapshot thread write `snapshot-k`.
    fn maybe_snapshot(&mut self) {
        let asked = self.j.compact_now.load(Ordering::Relaxed);
        let due = asked || self.since_snapshot >= self.j.cfg.compact_bytes;
        if !due || !self.j.available() || self.j.snapshot_busy.load(Ordering::Acquire) {
            return;
        }
        let seq = self.segment.seq + 1;
        let created = self
            .j
            .fault(super::Op::Create)
            .and_then(|()| Segment::create(&self.j.cfg.dir, seq));
        match created {
            Ok(s) => {
                self.segment = s;
                self.j.counters.segment.store(seq, Ordering::Relaxed);
                self.since_snapshot = 0;
                self.j.compact_now.store(false, Ordering::Relaxed);
                self.j.snapshot_busy.store(true, Ordering::Release);
                if self.to_snapshot.send(seq).is_err() {
                    self.j.snapshot_busy.store(false, Ordering::Release);
                }
            }
            Err(e) => {
                // Keep appending to the current segment; try again after more records.
                self.since_snapshot = self.j.cfg.compact_bytes / 2;
                self.j.compact_now.store(false, Ordering::Relaxed);
                tracing::error!(error = %e, seq, "journal: could not start a new segment for a snapshot");
            }
        }
    }
}
