//! The sans-IO DHCPv4 decision: one received frame in, zero or one reply frame out.
//!
//! CONTRACT:
//! ```text
//! Server::new(Arc<ServerConfig>, Arc<LeaseTables>) -> Server        (Send + Sync)
//!   [.with_home_link(&Link)]                       (optional: precomputes for that link)
//! server.handle(rx: &[u8], tx: &mut [u8], &Link, now: Secs, &mut Stats) -> Verdict
//!   = server.respond(&server.prepare(rx, &Link, &mut Stats), tx, &Link, now, &mut Stats)
//! ```
//! `handle` parses `rx` with `wire::parse_into` (into the prepared record), decides per
//! RFC 2131 / 2132, updates the lease tables, and writes the reply into `tx` with
//! `wire::ReplyWriter`. It reads no clock, does no syscall and does not allocate. A worker
//! with a batch calls the two halves in two passes (`prepare_into` for several frames, then
//! `respond` to each): [`Prepared`] says why, and a property test (`prop_tests.rs`) holds both
//! ways to byte-identical replies.
//!
//! # Why it is shaped like this
//!
//! * **Sans-IO.** Time is a parameter and the only side effects are the lease tables and the
//!   bytes written into `tx`, so the whole protocol is unit-tested frame in / frame out, fuzzed,
//!   and benchmarked without a NIC; the datapath (AF_XDP workers) and the tests drive the very
//!   same function. This is the smoltcp `dhcpv4` socket / quiche model.
//! * **Everything per-configuration is precomputed.** [`Server::new`] builds hash indices of the
//!   reservations (per subnet and per identifier kind), a longest-prefix index from addresses
//!   to subnets, a VLAN-pair index for direct links and the shared-network candidate lists
//!   (with the kinds of reservation each list holds, so that a request that cannot match one
//!   skips the lookup), so a packet costs a few probes whatever the configuration's size.
//!   [`Server::with_home_link`] resolves the one answer that depends on the link alone (the
//!   subnet of its address) for the link a server serves.
//! * **Every non-answer is counted.** Malformed input and protocol-level silence alike end as a
//!   [`DropReason`] in the caller's [`Stats`]; nothing is formatted or logged per packet.
//! * **Durability seam.** RFC 2131 §3.1 step 4: "The server selected in the DHCPREQUEST message
//!   commits the binding for the client to persistent storage and responds with a DHCPACK".
//!   A lease change that must reach the disk comes back as `commit` in the [`Verdict`]: ACKs
//!   (the caller holds the ACK frame until the journal has it) and RELEASE / DECLINE (no frame,
//!   but the change still has to be journalled). OFFERs are not committed: an offer hold is a
//!   few seconds and losing it on a crash is harmless.
//!
//! # Client states (RFC 2131 §4.3.2)
//!
//! | message | state | answer |
//! |---|---|---|
//! | DISCOVER | | OFFER (reservation's fixed address, the client's current or previous one, option 50, a free one); no address: `PoolExhausted` |
//! | REQUEST with option 54 | SELECTING | ours: bind -> ACK, or NAK; not ours: withdraw our offer, `OtherServerSelected` |
//! | REQUEST, no 54, ciaddr 0, option 50 | INIT-REBOOT | the client's own address: ACK; otherwise see *Authoritative mode* |
//! | REQUEST, no 54, ciaddr set, unicast | RENEWING | the client's own address: extend, ACK; otherwise see *Authoritative mode* |
//! | REQUEST, no 54, ciaddr set, broadcast | REBINDING | as RENEWING, subnet taken from the link and ciaddr checked against it |
//! | RELEASE | | release, `NoReply { commit }` (server id must be ours if present) |
//! | DECLINE | | probation for `decline_probation` seconds, `NoReply { commit }` |
//! | INFORM | | ACK with options only (no lease, yiaddr 0), to ciaddr |
//!
//! # Authoritative mode
//!
//! RFC 2131 §4.3.2 (INIT-REBOOT): "If the DHCP server detects that the client is on the wrong
//! net [...] then the server SHOULD send a DHCPNAK message to the client. If the network is
//! correct, then the DHCP server should check if the client's notion of its IP address is
//! correct. If not, then the server SHOULD send a DHCPNAK message to the client. If the DHCP
//! server has no record of this client, then it MUST remain silent". And §3.2: "Servers
//! SHOULD NOT respond if their information is not guaranteed to be accurate."
//!
//! xdhcp applies one rule to INIT-REBOOT, RENEWING and REBINDING requests for an address the
//! client does not hold with us:
//! * **authoritative** (the only server for its subnets; ISC dhcpd `authoritative`, Kea's
//!   default): our tables are accurate by definition, so the address is bound for the client
//!   if it is free and in the pool (clients keep their address across a server restart that
//!   lost state, as with dhcpd and Kea); otherwise NAK (wrong network, somebody else's,
//!   reserved for another host, declined, not in a pool).
//! * **non-authoritative**: NAK only when we hold a *current record of this client* that
//!   contradicts the request (an active offer or lease on another address, or a fixed
//!   reservation for another address, or the client asks for an address on another network
//!   while we hold such a record); with no such record stay silent ([`DropReason::Ignored`]).
//!   A non-authoritative server thus never NAKs an address it knows nothing about.
//!
//! A REQUEST in SELECTING state that names us (option 54) is always answered, ACK or NAK:
//! the client chose this server (RFC 2131 §3.1 step 4: "If the selected server is unable to
//! satisfy the DHCPREQUEST message (e.g., the requested network address has been allocated),
//! the server SHOULD respond with a DHCPNAK message.").

mod destination;
mod facts;
mod index;
mod optcache;
mod reply;
mod server;
mod stats;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use destination::{Destination, FLAG_BROADCAST, ReplyKind, destination};
pub use server::{Prepared, Server};
pub use stats::{MESSAGE_SLOTS, Stats, msg};

use crate::lease::LeaseInfo;
use crate::wire::DropReason;
use std::net::Ipv4Addr;

/// The interface a frame arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Our MAC on that interface: the Ethernet source of every reply.
    pub mac: [u8; 6],
    /// Our IPv4 address on that interface, or `UNSPECIFIED`. For an untagged direct request
    /// that matches no configured link, the subnet containing this address serves it.
    pub addr: Ipv4Addr,
}

/// What the caller must do with the frame it passed to [`Server::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Nothing to send and nothing to persist; count the reason (already counted in `Stats`).
    Drop(DropReason),
    /// RELEASE or DECLINE changed a lease: persist `commit`; nothing is sent.
    NoReply {
        /// The lease as it is now (released, or declined until the end of its probation).
        commit: LeaseInfo,
    },
    /// Send the first `len` bytes of `tx`.
    Reply {
        /// Frame length in `tx`.
        len: usize,
        /// `Some` for an ACK that bound or extended a lease: make it durable before sending
        /// (when the configuration asks for durability).
        commit: Option<LeaseInfo>,
        /// The DHCP message type written (`msg::OFFER`, `msg::ACK`, `msg::NAK`).
        msg: u8,
    },
}
