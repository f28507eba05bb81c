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
/// Number of entries in [`MAP_XSKS`].
pub const XSKS_ENTRIES: u32 = MAX_QUEUES * MAX_WORKERS_PER_QUEUE;

/// Name of the global the program's `aya-log` statements read their level from. The loader
/// overrides it at load time (0 = off, the default for xdhcp; 4 = debug events on).
pub const GLOBAL_LOG_LEVEL: &str = "AYA_LOG_LEVEL";

/// The `XSKS` key of worker `worker` on rx queue `queue`, or `None` when either is out of range.
///
/// A queue's workers occupy a contiguous block of [`MAX_WORKERS_PER_QUEUE`] keys, so the program
/// never redirects a frame to a socket bound to another queue (the kernel would drop it).
#[inline(always)]
pub const fn xsk_key(queue: u32, worker: u32) -> Option<u32> {
    if queue >= MAX_QUEUES || worker >= MAX_WORKERS_PER_QUEUE {
        None
    } else {
        Some(queue * MAX_WORKERS_PER_QUEUE + worker)
    }
}

/// The [`MAP_LOCAL_ADDRS`] key of an IPv4 address: its four octets in network order, read as a
/// native-endian `u32` (exactly the bytes of the IPv4 header's address field).
#[inline(always)]
pub const fn local_addr_key(octets: [u8; 4]) -> u32 {
    u32::from_ne_bytes(octets)
}

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

impl SteerConfig {
    /// Whether [`STEER_VLAN`] is set.
    #[inline(always)]
    pub const fn steer_vlan(&self) -> bool {
        self.flags & STEER_VLAN != 0
    }
}

#[cfg(feature = "user")]
// SAFETY: SteerConfig is repr(C), has no padding (size asserted above) and every bit pattern is valid.
unsafe impl aya::Pod for SteerConfig {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_indexed_in_order() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as u32, i as u32, "{}", c.name());
        }
    }

    #[test]
    fn xsk_keys_stay_inside_their_queue_block() {
        assert_eq!(xsk_key(0, 0), Some(0));
        assert_eq!(xsk_key(2, 3), Some(2 * MAX_WORKERS_PER_QUEUE + 3));
        assert_eq!(
            xsk_key(MAX_QUEUES - 1, MAX_WORKERS_PER_QUEUE - 1),
            Some(XSKS_ENTRIES - 1)
        );
        assert_eq!(xsk_key(MAX_QUEUES, 0), None);
        assert_eq!(xsk_key(0, MAX_WORKERS_PER_QUEUE), None);
        assert_eq!(xsk_key(u32::MAX, u32::MAX), None);
    }

    #[test]
    fn worker_for_chaddr_is_in_range_and_spreads() {
        assert_eq!(worker_for_chaddr(&[0; 6], 0), 0);
        let mut seen = [0u32; 4];
        for i in 0..=255u8 {
            let w = worker_for_chaddr(&[0x02, 0, 0, 0, 0, i], 4);
            assert!(w < 4);
            seen[w as usize] += 1;
        }
        // 256 addresses over 4 workers: every worker gets a fair share (FNV-1a mixes the last byte).
        assert!(seen.iter().all(|&n| n >= 32), "{seen:?}");
    }

    #[test]
    fn local_addr_key_is_the_header_bytes() {
        let key = local_addr_key([10, 0, 0, 1]);
        assert_eq!(key.to_ne_bytes(), [10, 0, 0, 1]);
    }
}
