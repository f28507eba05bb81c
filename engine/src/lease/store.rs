//! Persistence seam: what the tables hand to a durable store, and how they are rebuilt from it.
//!
//! WHY this shape: every state change a client can observe (bind, release, decline) returns a
//! [`LeaseInfo`] that already is the whole record (address, subnet, client,
//! state, expiry), so the decision can collect the records of a batch of packets and hand them
//! to [`LeaseStore::append`] before the ACKs leave (RFC 2131 §4.3.2's "the server MUST commit
//! the binding to persistent storage" before responding is what `Durability::Fsync` asks for).
//! Start-up replays the records in order through
//! [`LeaseTables::restore`]; a later record for an address replaces
//! an earlier one, so an append-only journal replays correctly without compaction. The journal
//! itself (file format, fsync batching, rotation) is a separate piece of work built on this
//! trait.

use super::{LeaseInfo, LeaseTables, Secs};
use std::io;

/// One persisted lease change. The tables' answers are records as they are.
pub type LeaseRecord = LeaseInfo;

/// A durable sink for lease records.
pub trait LeaseStore: Send {
    /// Append records in the order the tables produced them.
    ///
    /// # Errors
    /// Any I/O error; the caller must not acknowledge the leases of a failed batch.
    fn append(&mut self, records: &[LeaseRecord]) -> io::Result<()>;

    /// Make everything appended so far durable.
    ///
    /// # Errors
    /// Any I/O error (the appended records may be lost).
    fn sync(&mut self) -> io::Result<()>;
}

/// Keeps nothing (`durability = "none"`, tests, benchmarks).
#[derive(Clone, Copy, Debug, Default)]
pub struct NullStore;

impl LeaseStore for NullStore {
    fn append(&mut self, _records: &[LeaseRecord]) -> io::Result<()> {
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Keeps records in memory (tests; a reference for real stores).
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    pub records: Vec<LeaseRecord>,
    pub syncs: usize,
}

impl LeaseStore for MemStore {
    fn append(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        self.records.extend_from_slice(records);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        Ok(())
    }
}

/// Replay records (oldest first) into fresh tables. Returns how many were applied; records
/// for addresses the current configuration no longer has are skipped.
pub fn replay<'a>(
    tables: &LeaseTables,
    records: impl IntoIterator<Item = &'a LeaseRecord>,
    now: Secs,
) -> usize {
    records
        .into_iter()
        .filter(|r| tables.restore(**r, now).is_ok())
        .count()
}
