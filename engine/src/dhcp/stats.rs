//! Per-worker counters.
//!
//! Each worker owns one [`Stats`] and passes it to every [`super::Server::handle`] call, so
//! counting is a plain `+= 1` on memory only that core touches: no atomics, no false sharing.
//! A metrics task periodically asks each worker for a copy and [`Stats::merge`]s them.

use crate::wire::DropReason;

/// Slots in the per-message-type arrays: index = DHCP message type code (RFC 2132 §9.6)
/// for DISCOVER (1) ..= INFORM (8); slot 0 counts any other code.
pub const MESSAGE_SLOTS: usize = 9;

/// DHCP message type codes (RFC 2132 §9.6), for indexing [`Stats`] arrays.
pub mod msg {
    pub const DISCOVER: u8 = 1;
    pub const OFFER: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const DECLINE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const NAK: u8 = 6;
    pub const RELEASE: u8 = 7;
    pub const INFORM: u8 = 8;
}

/// Plain counters of one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to `handle`.
    pub frames: u64,
    /// Parsed requests by DHCP message type ([`Stats::slot`]).
    pub requests: [u64; MESSAGE_SLOTS],
    /// Replies written by DHCP message type (OFFER, ACK, NAK).
    pub replies: [u64; MESSAGE_SLOTS],
    /// Frames not answered, by [`DropReason`] (`reason as usize`).
    pub drops: [u64; DropReason::COUNT],
    /// Lease changes handed to the caller for persistence (ACK, RELEASE, DECLINE).
    pub commits: u64,
    /// Replies not sent because the lease change could not be journaled (journal unavailable
    /// or its queue full); counted by the worker, not by the decision.
    pub withheld: u64,
    /// Replies sent without the request's option 82 because it did not fit (RFC 3046 §2.2:
    /// the server "SHOULD increment an error counter").
    pub relay_echo_omitted: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            frames: 0,
            requests: [0; MESSAGE_SLOTS],
            replies: [0; MESSAGE_SLOTS],
            drops: [0; DropReason::COUNT],
            commits: 0,
            withheld: 0,
            relay_echo_omitted: 0,
        }
    }
}

impl Stats {
    /// Array slot for a message type code.
    #[inline]
    pub const fn slot(code: u8) -> usize {
        if code as usize >= 1 && (code as usize) < MESSAGE_SLOTS {
            code as usize
        } else {
            0
        }
    }

    /// Count of drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Total frames not answered.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Add another worker's counters into these.
    pub fn merge(&mut self, other: &Stats) {
        self.frames += other.frames;
        for (a, b) in self.requests.iter_mut().zip(other.requests) {
            *a += b;
        }
        for (a, b) in self.replies.iter_mut().zip(other.replies) {
            *a += b;
        }
        for (a, b) in self.drops.iter_mut().zip(other.drops) {
            *a += b;
        }
        self.commits += other.commits;
        self.withheld += other.withheld;
        self.relay_echo_omitted += other.relay_echo_omitted;
    }

    #[inline]
    pub(crate) fn drop(&mut self, reason: DropReason) {
        // `COUNT` is derived from the last variant, so the index is always in bounds.
        if let Some(c) = self.drops.get_mut(reason as usize) {
            *c += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_every_counter() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        a.frames = 3;
        a.requests[Stats::slot(msg::DISCOVER)] = 2;
        b.requests[Stats::slot(msg::DISCOVER)] = 5;
        b.requests[Stats::slot(200)] = 1;
        b.replies[Stats::slot(msg::OFFER)] = 4;
        a.drop(DropReason::NoSubnet);
        b.drop(DropReason::NoSubnet);
        b.drop(DropReason::ReplyTooLarge);
        b.commits = 7;
        b.relay_echo_omitted = 2;
        b.frames = 9;
        a.merge(&b);
        assert_eq!(a.frames, 12);
        assert_eq!(a.requests[1], 7);
        assert_eq!(a.requests[0], 1);
        assert_eq!(a.replies[2], 4);
        assert_eq!(a.dropped(DropReason::NoSubnet), 2);
        assert_eq!(a.dropped(DropReason::ReplyTooLarge), 1);
        assert_eq!(a.total_drops(), 3);
        assert_eq!(a.commits, 7);
        assert_eq!(a.relay_echo_omitted, 2);
    }

    #[test]
    fn slots() {
        assert_eq!(Stats::slot(0), 0);
        assert_eq!(Stats::slot(1), 1);
        assert_eq!(Stats::slot(8), 8);
        assert_eq!(Stats::slot(9), 0);
        assert_eq!(Stats::slot(255), 0);
    }
}
