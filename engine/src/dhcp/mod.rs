//! The sans-IO DHCPv4 decision: one received frame in, zero or one reply frame out.
//!
//! CONTRACT:
//! ```text
//! Server::new(Arc<ServerConfig>, Arc<LeaseTables>) -> Server        (Send + Sync)
//! server.handle(rx: &[u8], tx: &mut [u8], &Link, now: Secs, &mut Stats) -> Verdict
//! ```
//! `handle` parses `rx` with `wire::parse`, decides per RFC 2131 / 2132, updates the lease
//! tables, and writes the reply into `tx` with `wire::ReplyWriter`. It reads no clock, does no
//! syscall and does not allocate.
