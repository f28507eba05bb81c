//! xdhcp's XDP program: steer DHCPv4 frames that are for us into AF_XDP sockets, pass the rest.
//!
//! Why it looks like this:
//!
//! - **Fail open.** Anything the program does not positively recognise as "DHCPv4 to a server on
//!   this box" is `XDP_PASS`ed, untouched. A parse it cannot finish, a fragment, a third VLAN tag,
//!   a queue with no socket bound: all go to the kernel, which is what would have happened without
//!   xdhcp. Every verdict has its own per-CPU counter (`xdhcp_common::Counter`) so the operator can
//!   see *why* a frame was passed, and nothing is ever formatted per frame on the fast path.
//! - **Spread clients, pin each one.** Broadcast DHCP and everything from one relay hash to one RSS
//!   queue, so one socket per queue would put a power-cut storm on one core. Several worker sockets
//!   share the queue's UMEM instead, and the worker is `worker_for_chaddr(chaddr)`: a client's
//!   DISCOVER, REQUEST, RENEW and RELEASE always reach the same worker, different clients spread.
//! - **Verifier-friendly parsing.** Every read goes through [`load`], which proves
//!   `data + offset + len <= data_end` right before the access; offsets are bounded (at most two
//!   VLAN tags, IHL at most 60 bytes), so the verifier can follow them.
//!
//! Debug events (`aya-log`) are emitted only on the rare slow path "steered but no socket bound"
//! — a misconfiguration, not traffic-driven — and are off unless the loader turns them on
//! (`AYA_LOG_LEVEL` global, 0 by default in xdhcp).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, XskMap},
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use xdhcp_common::{
    COUNTER_COUNT, Counter, MAX_LOCAL_ADDRS, MAX_WORKERS_PER_QUEUE, SteerConfig, XSKS_ENTRIES,
    local_addr_key, worker_for_chaddr, xsk_key,
};

// Map statics are named exactly like the ABI constants (`MAP_XSKS` = "XSKS", ...): the `#[map]`
// macro names a map after its static. The loader looks each one up by the constant and fails
// loudly if a name ever drifts.

/// AF_XDP sockets, keyed by `xsk_key(rx_queue, worker)`.
#[map]
static XSKS: XskMap = XskMap::with_max_entries(XSKS_ENTRIES, 0);

/// One `SteerConfig`, written by the loader before attaching.
#[map]
static CONFIG: Array<SteerConfig> = Array::with_max_entries(1, 0);

/// One `u64` per `Counter`, per CPU (no atomics on the fast path).
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);

/// Our unicast addresses (`local_addr_key`); unicast DHCP to them is steered.
#[map]
static LOCAL_ADDRS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_LOCAL_ADDRS, 0);

/// The kernel refuses GPL-only helpers to programs without a GPL-compatible licence; the object
/// declares "Dual MIT/GPL" (the source itself is MIT, see LICENSE).
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

const ETH_HLEN: usize = 14;
const ETH_P_IPV4: u16 = 0x0800;
/// IEEE 802.1Q customer tag.
const ETH_P_8021Q: u16 = 0x8100;
/// IEEE 802.1ad service tag (QinQ outer tag).
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_HLEN: usize = 4;
/// QinQ at most: a third tag is passed (counted as `PassVlan`).
const MAX_VLAN_TAGS: usize = 2;
const IPV4_MIN_HLEN: usize = 20;
/// Largest IPv4 datagram steered: above any jumbo MTU an XDP buffer can hold; anything larger
/// is not a frame this program can see whole, so it is passed as malformed.
const MAX_IPV4_TOTAL_LEN: usize = 16 * 1024;
const IPPROTO_UDP: u8 = 17;
const UDP_HLEN: usize = 8;
/// RFC 2131 §4.1: "DHCP messages from a client to a server are sent to the 'DHCP server' port
/// (67)".
const DHCP_SERVER_PORT: u16 = 67;
/// RFC 2131 §2 (figure 1): op, htype, hlen, hops (4), xid (4), secs, flags (4), ciaddr, yiaddr,
/// siaddr, giaddr (16) precede `chaddr`.
const BOOTP_CHADDR_OFFSET: usize = 28;
/// Bytes of chaddr the worker hash reads (an Ethernet address).
const CHADDR_HASH_LEN: usize = 6;

#[xdp]
pub fn xdhcp(ctx: XdpContext) -> u32 {
    count(Counter::Seen);
    match classify(&ctx) {
        Ok(key) => redirect(&ctx, key),
        Err(reason) => {
            count(reason);
            xdp_action::XDP_PASS
        }
    }
}

/// Redirects to `XSKS[key]`; with no socket there the frame falls back to the kernel.
#[inline(always)]
fn redirect(ctx: &XdpContext, key: u32) -> u32 {
    // The low two bits of `flags` are the action returned when `XSKS[key]` is empty: XDP_PASS,
    // so a queue without a bound worker still reaches the kernel (fail-open).
    match XSKS.redirect(key, u64::from(xdp_action::XDP_PASS)) {
        Ok(action) => {
            count(Counter::Redirected);
            action
        }
        Err(_) => {
            count(Counter::PassNoSocket);
            debug!(
                ctx,
                "no AF_XDP socket at XSKS[{}] (rx queue {}): passed to the kernel",
                key,
                ctx.rx_queue_index()
            );
            xdp_action::XDP_PASS
        }
    }
}

/// Decides whether the frame is DHCPv4 for us. `Ok(key)`: steer to `XSKS[key]`; `Err(counter)`:
/// pass, counted under `counter`.
#[inline(always)]
fn classify(ctx: &XdpContext) -> Result<u32, Counter> {
    let cfg = match CONFIG.get(0) {
        Some(cfg) => *cfg,
        None => SteerConfig::default(),
    };

    // Ethernet II, then up to two VLAN tags (802.1ad S-tag and/or 802.1Q C-tag, in any order
    // switches actually send).
    let mut ethertype = load_be16(ctx, 12).ok_or(Counter::PassMalformed)?;
    let mut l3 = ETH_HLEN;
    let mut tags = 0;
    while tags < MAX_VLAN_TAGS && is_vlan(ethertype) {
        if !cfg.steer_vlan() {
            return Err(Counter::PassVlan);
        }
        // The tag is TCI (2 bytes) then the encapsulated ethertype (2 bytes).
        ethertype = load_be16(ctx, l3 + 2).ok_or(Counter::PassMalformed)?;
        l3 += VLAN_HLEN;
        tags += 1;
    }
    if is_vlan(ethertype) {
        return Err(Counter::PassVlan);
    }
    if ethertype != ETH_P_IPV4 {
        return Err(Counter::PassNotIpv4);
    }

    // IPv4 (RFC 791 §3.1).
    let ver_ihl = load_u8(ctx, l3).ok_or(Counter::PassMalformed)?;
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ver_ihl >> 4 != 4 || ihl < IPV4_MIN_HLEN {
        return Err(Counter::PassMalformed);
    }
    // The fixed header must be in the frame before any of its fields is read.
    let fixed = load_bytes::<IPV4_MIN_HLEN>(ctx, l3).ok_or(Counter::PassMalformed)?;
    let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    // More-fragments set or a non-zero fragment offset: a DHCP message is never fragmented in
    // practice, and reassembly is the kernel's job.
    if u16::from_be_bytes([fixed[6], fixed[7]]) & 0x3fff != 0 {
        return Err(Counter::PassFragment);
    }
    if fixed[9] != IPPROTO_UDP {
        return Err(Counter::PassNotUdp);
    }
    // The datagram must fit its own header and the frame must hold all of it (trailing Ethernet
    // padding is fine, a short frame is not).
    // (`MAX_IPV4_TOTAL_LEN` also keeps `data + l3 + total_len` in the range the verifier allows
    // for packet-pointer arithmetic.)
    if total_len < ihl + UDP_HLEN
        || total_len > MAX_IPV4_TOTAL_LEN
        || ctx.data() + l3 + total_len > ctx.data_end()
    {
        return Err(Counter::PassMalformed);
    }
    let dst = [fixed[16], fixed[17], fixed[18], fixed[19]];

    // UDP (RFC 768).
    let l4 = l3 + ihl;
    let dst_port = load_be16(ctx, l4 + 2).ok_or(Counter::PassMalformed)?;
    if dst_port != DHCP_SERVER_PORT {
        return Err(Counter::PassOtherPort);
    }

    // For us? RFC 2131 §4.1: clients without an address broadcast to 255.255.255.255; renewing
    // clients unicast to the server identifier and relay agents unicast to the server address
    // (§4.1, giaddr), both of which are in LOCAL_ADDRS.
    if dst != [0xff; 4] {
        // SAFETY: the value is a plain u8 and is only tested for presence, never read.
        let ours = unsafe { LOCAL_ADDRS.get(local_addr_key(dst)) }.is_some();
        if !ours {
            return Err(Counter::PassNotForUs);
        }
    }

    let workers = if cfg.workers_per_queue > MAX_WORKERS_PER_QUEUE {
        MAX_WORKERS_PER_QUEUE
    } else {
        cfg.workers_per_queue
    };
    if workers == 0 {
        return Err(Counter::PassNoWorkers);
    }

    let chaddr = load_bytes::<CHADDR_HASH_LEN>(ctx, l4 + UDP_HLEN + BOOTP_CHADDR_OFFSET)
        .ok_or(Counter::PassMalformed)?;
    let worker = worker_for_chaddr(&chaddr, workers);
    // A queue index beyond MAX_QUEUES has no key block: pass rather than alias another queue's
    // socket (the kernel would drop a frame redirected to a socket bound to another queue).
    xsk_key(ctx.rx_queue_index(), worker).ok_or(Counter::PassNoSocket)
}

#[inline(always)]
fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

/// Bumps this CPU's slot of `counter`.
#[inline(always)]
fn count(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: `slot` points at this CPU's u64 for this index in a per-CPU array; XDP runs
        // with preemption disabled, so nothing else touches it concurrently.
        unsafe { *slot += 1 };
    }
}

/// `N` bytes of the frame at `offset`, or `None` if the frame is shorter.
#[inline(always)]
fn load_bytes<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<[u8; N]> {
    let start = ctx.data();
    // The check the verifier needs, immediately before the access.
    if start + offset + N > ctx.data_end() {
        return None;
    }
    // SAFETY: `[start + offset, start + offset + N)` lies inside the packet (checked above);
    // `[u8; N]` has alignment 1, so an unaligned address is fine.
    Some(unsafe { *((start + offset) as *const [u8; N]) })
}

#[inline(always)]
fn load_u8(ctx: &XdpContext, offset: usize) -> Option<u8> {
    load_bytes::<1>(ctx, offset).map(|b| b[0])
}

#[inline(always)]
fn load_be16(ctx: &XdpContext, offset: usize) -> Option<u16> {
    load_bytes::<2>(ctx, offset).map(u16::from_be_bytes)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable by construction (no indexing without a prior check, no arithmetic that can
    // overflow on a bounded offset); the verifier rejects a program whose panic path is reachable
    // through an unbounded loop, so a spin here is never executed.
    loop {}
}
