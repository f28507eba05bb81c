//! `xdhcp-load`: a DHCPv4 load generator that emulates many clients over AF_XDP or AF_PACKET.
//!
//! Why the project has its own: perfdhcp (Kea's tool) tops out near 50 k DISCOVER/s on one core
//! and can only act as one relay; xdhcp must be measured well beyond that, from the same
//! generator for every server, with realistic client behaviour (VLAN tags, relays with option
//! 82, RFC 2131 retransmission backoff in an avalanche) and an outside check that no address is
//! given to two clients.
//!
//! * [`frame`] — requests written with the engine's `ReplyWriter`, replies parsed.
//! * [`client`] — the sans-IO [`client::Generator`]: per-client state machines, pacing, timers,
//!   statistics, duplicate detection.
//! * [`report`] — the `RESULT k=v ...` line and the human summary.
//! * [`io`] — AF_XDP (with a redirect program) or batched AF_PACKET.
//! * [`run`] — the loop that joins them, and the AF_XDP echo responder.

pub mod client;
pub mod frame;
pub mod io;
pub mod report;
pub mod run;

#[cfg(test)]
mod tests;
