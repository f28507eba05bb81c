//! Lease tables: who holds which address, shared by all worker cores without a global lock.
//!
//! CONTRACT (the decision in `dhcp/` is written against exactly this surface; internals are
//! free):
//!
//! ```text
//! LeaseTables::new(&ServerConfig, shards) -> LeaseTables            (Send + Sync, share via Arc)
//! tables.by_client(&ClientKey, SubnetId)          -> Option<LeaseInfo>
//! tables.by_addr(Ipv4Addr)                         -> Option<LeaseInfo>
//! tables.offer(&OfferRequest, now)                 -> Result<LeaseInfo, LeaseError>
//! tables.bind(&BindRequest, now)                   -> Result<LeaseInfo, LeaseError>
//! tables.release(&ClientKey, Ipv4Addr, now)        -> Result<LeaseInfo, LeaseError>
//! tables.decline(&ClientKey, Ipv4Addr, probation, now) -> Result<LeaseInfo, LeaseError>
//! tables.expire(now, budget)                       -> usize   (work done; no full scans)
//! tables.stats()                                   -> TableStats
//! ```
//!
//! Time is a parameter (`now`, Unix seconds); nothing here reads a clock, does I/O, or allocates
//! on the per-packet path once a client's entry exists.

//! Extensions beyond that surface (additions only): [`LeaseTables::restore`] and the
//! [`store`] module (persistence seam), [`LeaseTables::memory_estimate`],
//! [`LeaseTables::shard_of`], [`LeaseInfo::state_at`], and the multi-node seam
//! ([`BlockOwner`], [`LeaseTables::block_owner`], [`LeaseTables::cede_block`]).
//!
//! Design in one paragraph (details in `space.rs`, `shard.rs`, `table.rs`): every leasable
//! address has a preallocated slot, one 64-byte cache line holding its lock, client key,
//! expiry and state; slots come in blocks of 64 that shards claim with a CAS (the DDHCP block
//! model inside one node) and allocate from without coordination; a client belongs to one
//! shard, which keeps its index entry, its expiry timers (timing wheel + heap) and a FIFO of the
//! addresses its clients freed. Never-used addresses are found through monotonic bitmaps and
//! freed ones through the FIFOs, so allocation is O(1) amortised however full the pool is.
//!
//! Memory per lease: 64 B slot + ~1 B block header + 11-23 B index entry (8 B at load
//! 0.35-0.7) + 12-24 B per pending timer + 8 B per FIFO entry of a freed address: ~95-105 B
//! measured on a full 1 M pool (`memory_estimate`, `benches/benches/lease.rs`), so 10 M leases
//! take ~1 GiB, within the 150 B/lease budget.

mod client;
#[cfg(test)]
mod proptests;
mod shard;
mod space;
pub mod store;
mod table;
#[cfg(test)]
pub(crate) mod tests;

pub use client::ClientKey;
pub use space::{BLOCK_SIZE, BlockOwner, MAX_SLOTS};
pub use store::{LeaseRecord, LeaseStore, NullStore};
pub use table::{LeaseTables, LookupHint, MemoryEstimate};

use crate::config::SubnetId;
use std::net::Ipv4Addr;

/// Unix time in seconds. The decision passes it in; tables never read a clock.
pub type Secs = u64;

/// State of one address's lease (RFC 2131 §4.3 and the seed notes' reserved / bound / expired).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaseState {
    /// Held for a client by an OFFER until `expires` (short hold).
    Offered,
    /// Bound by an ACK until `expires`.
    Bound,
    /// Lease time ran out; the address is free but remembers its last client, who gets it back
    /// first.
    Expired,
    /// Released by the client; free, remembers its last client.
    Released,
    /// DECLINEd (in use by someone unknown): out of the pool until `expires` (probation).
    Declined,
}

/// A copy of one lease, as returned by the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    pub addr: Ipv4Addr,
    pub subnet: SubnetId,
    pub client: ClientKey,
    pub state: LeaseState,
    /// End of the offer hold, lease, or probation.
    pub expires: Secs,
    /// The address's change counter when this copy was taken (monotonic per address; 0 =
    /// unversioned, e.g. an imported record, which replay applies in file order).
    pub version: u32,
}

impl LeaseInfo {
    /// The state at time `now`: an offer or lease whose `expires` has passed is `Expired` (free,
    /// still remembered for its client); a probation that has passed is `None` (free, forgotten).
    /// `expires == u32::MAX` never passes (RFC 2131 §3.3 infinite lease).
    pub fn state_at(&self, now: Secs) -> Option<LeaseState> {
        let passed = self.expires != u64::from(u32::MAX) && self.expires <= now;
        match self.state {
            LeaseState::Offered | LeaseState::Bound if passed => Some(LeaseState::Expired),
            LeaseState::Declined if passed => None,
            s => Some(s),
        }
    }

    /// Offered or bound and not yet expired at `now`.
    pub fn is_active(&self, now: Secs) -> bool {
        matches!(
            self.state_at(now),
            Some(LeaseState::Offered | LeaseState::Bound)
        )
    }
}

/// Ask for an address to offer.
#[derive(Clone, Copy, Debug)]
pub struct OfferRequest<'a> {
    pub client: ClientKey,
    /// Candidate subnets in preference order (one, or all of a shared network).
    pub subnets: &'a [SubnetId],
    /// Option 50: used when free and in a candidate subnet's pool.
    pub requested: Option<Ipv4Addr>,
    /// Fixed address from a reservation: always this one (never taken from another client).
    pub fixed: Option<(SubnetId, Ipv4Addr)>,
    /// Offer hold time in seconds.
    pub hold: u32,
}

/// Bind an address (REQUEST -> ACK).
#[derive(Clone, Copy, Debug)]
pub struct BindRequest {
    pub client: ClientKey,
    pub subnet: SubnetId,
    pub addr: Ipv4Addr,
    /// Granted lease time in seconds.
    pub lease: u32,
    /// The address is this client's reserved fixed address (may lie outside the pools).
    pub fixed: bool,
}

/// Why a table operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("no free address in the candidate subnets")]
    PoolExhausted,
    #[error("address is not in a dynamic range of the subnet")]
    NotInPool,
    #[error("address is leased, offered or reserved for another client")]
    TakenByOther,
    #[error("address is declined and in probation")]
    InProbation,
    #[error("the client holds no lease on that address")]
    NoLease,
    /// Restore only: the address already holds a newer version than the record's.
    #[error("a newer record of this address was already restored")]
    Superseded,
}

/// Counts for metrics and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub addresses: u64,
    pub free: u64,
    pub offered: u64,
    pub bound: u64,
    pub declined: u64,
}
