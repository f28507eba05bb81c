//! The ABI shared by the XDP program (`xdp-ebpf`) and userspace (`engine`).
//!
//! Everything both sides must agree on lives here and only here: map names, the steering
//! configuration, counter indices. Types are `#[repr(C)]`, contain no `bool` and no implicit
//! padding, and their sizes are asserted at compile time so that a change on one side cannot
//! silently disagree with the other.
#![no_std]

/// Name of the `XskMap` the program redirects DHCP frames into.
///
/// Key = `rx_queue_index * MAX_WORKERS_PER_QUEUE + worker`, where `worker` is chosen by a hash of
/// the client hardware address (so one client always lands on one worker).
pub const MAP_XSKS: &str = "XSKS";
/// Name of the one-element `Array<SteerConfig>`.
pub const MAP_CONFIG: &str = "CONFIG";
/// Name of the `PerCpuArray<u64>` of counters indexed by [`Counter`].
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Name of the `HashMap<u32 /* IPv4, network order */, u8>` of unicast addresses that are ours
/// (server identifiers / interface addresses); unicast DHCP to them is steered too.
pub const MAP_LOCAL_ADDRS: &str = "LOCAL_ADDRS";
/// Name of the XDP program in the object.
pub const PROG_NAME: &str = "xdhcp";

/// Upper bound on AF_XDP sockets (workers) bound to one rx queue.
pub const MAX_WORKERS_PER_QUEUE: u32 = 16;
/// Upper bound on rx queues the program steers (XSKMAP size = this * MAX_WORKERS_PER_QUEUE).
pub const MAX_QUEUES: u32 = 64;
/// Maximum number of addresses in [`MAP_LOCAL_ADDRS`].
pub const MAX_LOCAL_ADDRS: u32 = 256;

/// Steering configuration written by userspace before attaching.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerConfig {
    /// Number of worker sockets per rx queue (1..=MAX_WORKERS_PER_QUEUE). 0 = steer nothing
    /// (everything passes to the kernel).
    pub workers_per_queue: u32,
    /// Bit flags, see `STEER_*`.
    pub flags: u32,
}

/// Steer frames with 802.1Q / 802.1ad tags too (otherwise only untagged frames).
pub const STEER_VLAN: u32 = 1 << 0;

const _: () = assert!(core::mem::size_of::<SteerConfig>() == 8);

/// Per-CPU counters kept by the XDP program, one slot per verdict reason.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Frames seen by the program.
    Seen = 0,
    /// DHCP frames redirected to an AF_XDP socket.
    Redirected = 1,
    /// Passed: not IPv4 (ARP, IPv6, ...).
    PassNotIpv4 = 2,
    /// Passed: IPv4 but not UDP.
    PassNotUdp = 3,
    /// Passed: UDP to a port other than 67.
    PassOtherPort = 4,
    /// Passed: IPv4 fragment (DHCP is never fragmented; the kernel reassembles if it must).
    PassFragment = 5,
    /// Passed: frame shorter than its headers claim, or malformed headers.
    PassMalformed = 6,
    /// Passed: UDP/67 but addressed to someone else (not broadcast, not one of ours).
    PassNotForUs = 7,
    /// Passed: steering disabled (no workers configured).
    PassNoWorkers = 8,
    /// Passed: VLAN-tagged but VLAN steering disabled, or more than two tags.
    PassVlan = 9,
    /// Redirect to the XSKMAP failed (no socket on that queue): fell back to the kernel.
    PassNoSocket = 10,
}

/// Number of counter slots.
pub const COUNTER_COUNT: u32 = 11;

impl Counter {
    /// All counters, in index order.
    pub const ALL: [Counter; COUNTER_COUNT as usize] = [
        Counter::Seen,
        Counter::Redirected,
        Counter::PassNotIpv4,
        Counter::PassNotUdp,
        Counter::PassOtherPort,
        Counter::PassFragment,
        Counter::PassMalformed,
        Counter::PassNotForUs,
        Counter::PassNoWorkers,
        Counter::PassVlan,
        Counter::PassNoSocket,
    ];

    /// Stable snake_case name, used for metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Seen => "seen",
            Counter::Redirected => "redirected",
            Counter::PassNotIpv4 => "pass_not_ipv4",
            Counter::PassNotUdp => "pass_not_udp",
            Counter::PassOtherPort => "pass_other_port",
            Counter::PassFragment => "pass_fragment",
            Counter::PassMalformed => "pass_malformed",
            Counter::PassNotForUs => "pass_not_for_us",
            Counter::PassNoWorkers => "pass_no_workers",
            Counter::PassVlan => "pass_vlan",
            Counter::PassNoSocket => "pass_no_socket",
        }
    }
}

/// Worker index for a client hardware address: FNV-1a over the first `len` bytes of chaddr,
/// reduced modulo `workers`. The XDP program and userspace (tests, the socket backend) use this
/// one function so a client's frames always reach the same worker.
#[inline(always)]
pub fn worker_for_chaddr(chaddr: &[u8; 6], workers: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < 6 {
        h ^= chaddr[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    if workers == 0 { 0 } else { h % workers }
}

#[cfg(feature = "user")]
// SAFETY: SteerConfig is repr(C), has no padding (size asserted above) and every bit pattern is valid.
unsafe impl aya::Pod for SteerConfig {}
