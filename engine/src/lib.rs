//! xdhcp: a kernel-bypass DHCPv4 engine.
//!
//! Read the README's architecture section first. In one paragraph: the XDP program
//! (`xdp-ebpf/`) steers DHCP frames into AF_XDP sockets; one `worker` per core pulls a batch of
//! frames from its socket (`xsk`) and hands each to the sans-IO `dhcp::Server`, which parses
//! it (`wire`), decides with the shared, sharded [`lease::LeaseTables`], and writes zero or one
//! reply frame straight into a TX buffer. [`config`] turns the operator's TOML into the validated
//! runtime model the decision reads.
//!
//! Only `xsk` (and `cpu`'s prefetch hint) may use `unsafe`.
#![deny(unsafe_code)]

pub mod config;
pub mod cpu;
pub mod dhcp;
pub mod journal;
pub mod lease;
pub mod leasefile;
pub mod loader;
pub mod netif;
pub mod socket;
pub mod wire;
pub mod worker;
pub mod xsk;
