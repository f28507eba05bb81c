//! Two workers on a two-queue veth (issue 3 §5): both serve, and every frame of a client is
//! handled by the worker the steering predicts.
//!
//! Sockets and workers are wired as `xdhcp run --workers 2` wires them (`Plan::new(2,
//! rx_queues)`, one `open_queue` per served queue, sockets dealt to workers by `plan.workers`),
//! with the XDP program attached in native mode (what `--xdp-mode auto` gets on veth, and the
//! mode in which veth counts per-queue XDP statistics). The handler is the real `DhcpHandler`
//! (no journal), wrapped only to record which `(xid, chaddr)` each worker saw.
//!
//! # Steering frames onto a chosen rx queue
//!
//! A veth delivers a frame to the peer's rx queue with the index of the tx queue it was sent on.
//! On the client end the tx queue of an `AF_PACKET` send is picked by XPS from the sending CPU
//! (packet sockets cache no queue: they have no route), so the test maps `tx-0` to one CPU and
//! `tx-1` to another (`/sys/class/net/cli0/queues/tx-N/xps_cpus`) and pins its sending thread to
//! the CPU of the queue it wants before each burst. Nothing here depends on a flow hash, so the
//! queue of every frame is known. `ethtool -S srv0` (`rx_queue_N_xdp_redirect`, counted by the
//! veth driver itself) confirms independently that each queue received exactly the frames sent
//! on it — without that the test could not tell "steering works" from "everything went to
//! queue 0".
//!
//! # What is asserted
//!
//! 200 clients, half sending on queue 0, half on queue 1, run DISCOVER, REQUEST and two renewals
//! on their queue (as RSS keeps one flow on one queue), then one renewal on the other queue.
//! - every DISCOVER gets an OFFER and every REQUEST and renewal an ACK for the offered address;
//! - both workers handled frames and sent OFFERs and ACKs;
//! - every frame was handled exactly once, by the worker the test predicts: the socket slot is
//!   `worker_for_chaddr(chaddr, per_queue)` on the frame's rx queue (the XSKMAP layout of
//!   `xdhcp_common`), the worker is the plan's owner of `(queue, slot)`. The frame's queue is
//!   encoded in its xid, so the prediction never looks at what the engine did;
//! - so a client is served by one worker throughout — also its renewal that arrives on the other
//!   queue (as a unicast renewal hashes to another RSS queue than the broadcast DISCOVER on a
//!   real NIC): the plan gives every worker the same chaddr slot on every queue.
//!
//! Needs root, two usable CPUs, ethtool and `XDHCP_EBPF_OBJECT`; under `CI=true` a missing
//! requirement fails the test.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use xdhcp::config::{ZeroConfig, zero_config};
use xdhcp::dhcp::{self, msg};
use xdhcp::lease::{LeaseTables, Secs};
use xdhcp::loader::{LoadOptions, Loader, XdpMode};
use xdhcp::worker::{DhcpHandler, FrameHandler, Plan, WorkerConfig, Workers};
use xdhcp::xsk::{self, BindMode, QueueConfig, open_queue};
use xdhcp_common::{Counter, worker_for_chaddr};
use xdhcp_tests::frames::{self, BROADCAST_MAC, ETH_P_IPV4, Ipv4Fields};
use xdhcp_tests::netns::{NetNs, VethOptions, VethPair};
use xdhcp_tests::raw::RawSocket;
use xdhcp_tests::{ebpf_object, missing, require_root};

const TEST: &str = "two_queues_two_workers_pin_each_client";
const SRV_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 40, 1);
/// A /23: 509 leasable addresses for 200 clients.
const PREFIX: u8 = 23;
const CLIENTS: u16 = 200;
const QUEUES: u32 = 2;
const WORKERS: u32 = 2;
/// How long a phase may take to collect all its replies.
const PHASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Offsets in an untagged frame with a 20-byte IPv4 header (the only kind this test sends).
const XID: usize = 14 + 20 + 8 + 4;
const CHADDR: usize = 14 + 20 + 8 + 28;

/// The phases every client runs, in order. The xid of a frame encodes `(phase, queue, client)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Discover = 0,
    Request = 1,
    Renew1 = 2,
    Renew2 = 3,
    /// A renewal sent on the client's *other* queue.
    RenewOther = 4,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Discover,
        Phase::Request,
        Phase::Renew1,
        Phase::Renew2,
        Phase::RenewOther,
    ];

    fn from_code(c: u32) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| *p as u32 == c)
    }

    /// The reply this phase expects.
    fn reply(self) -> u8 {
        match self {
            Phase::Discover => msg::OFFER,
            _ => msg::ACK,
        }
    }
}

/// `(phase, queue, client)` packed into a BOOTP xid, so every frame names its own rx queue.
fn xid(phase: Phase, queue: u32, client: u16) -> u32 {
    0x4d00_0000 | (phase as u32) << 20 | queue << 16 | u32::from(client)
}

fn unpack_xid(x: u32) -> Option<(Phase, u32, u16)> {
    if x >> 24 != 0x4d {
        return None;
    }
    let phase = Phase::from_code((x >> 20) & 0xf)?;
    Some((phase, (x >> 16) & 0xf, (x & 0xffff) as u16))
}

fn chaddr(client: u16) -> [u8; 6] {
    let [hi, lo] = client.to_be_bytes();
    [0x02, 0x6d, 0x71, 0x00, hi, lo]
}

/// The queue client `c` sends its own flow on (independent of the chaddr hash).
fn home_queue(c: u16) -> u32 {
    u32::from(c) % QUEUES
}

fn queue_for(phase: Phase, c: u16) -> u32 {
    match phase {
        Phase::RenewOther => (home_queue(c) + 1) % QUEUES,
        _ => home_queue(c),
    }
}

// ---------------------------------------------------------------------------------------------
// The engine, recording which frames each worker saw

/// `DhcpHandler` plus a per-worker log of the `(xid, chaddr)` of every frame handed to it.
///
/// Without a lease journal: durability decides *when* an ACK leaves, not *which worker* handles
/// a frame, and every reply here must leave at once for the lockstep phases.
struct Recorder {
    inner: DhcpHandler,
}

#[derive(Clone, Default)]
struct Seen {
    engine: dhcp::Stats,
    frames: Vec<(u32, [u8; 6])>,
}

impl FrameHandler for Recorder {
    type Stats = Seen;

    fn handle(&self, rx: &[u8], tx: &mut [u8], now: Secs, seen: &mut Seen) -> Option<usize> {
        let x = rx
            .get(XID..XID + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok());
        let c = rx
            .get(CHADDR..CHADDR + 6)
            .and_then(|b| <[u8; 6]>::try_from(b).ok());
        if let (Some(x), Some(c)) = (x, c) {
            seen.frames.push((u32::from_be_bytes(x), c));
        }
        self.inner.handle(rx, tx, now, &mut seen.engine)
    }

    fn merge(into: &mut Seen, from: &Seen) {
        DhcpHandler::merge(&mut into.engine, &from.engine);
        into.frames.extend_from_slice(&from.frames);
    }

    fn summary(s: &Seen) -> String {
        DhcpHandler::summary(&s.engine)
    }

    fn housekeeping(&self, now: Secs) -> usize {
        self.inner.housekeeping(now)
    }
}

// ---------------------------------------------------------------------------------------------
// Client frames and replies (built and parsed here, independently of the engine's wire code)

/// A BOOTREQUEST frame from `chaddr` with DHCP `options` (after option 53), 300-byte BOOTP.
fn request_frame(
    eth_dst: [u8; 6],
    ip: (Ipv4Addr, Ipv4Addr),
    chaddr: [u8; 6],
    xid: u32,
    ciaddr: Ipv4Addr,
    msg_type: u8,
    options: &[u8],
) -> Vec<u8> {
    let mut m = vec![0u8; 236];
    m[0] = 1; // BOOTREQUEST
    m[1] = 1; // Ethernet
    m[2] = 6;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[12..16].copy_from_slice(&ciaddr.octets());
    m[28..34].copy_from_slice(&chaddr);
    m.extend_from_slice(&[99, 130, 83, 99, 53, 1, msg_type]);
    m.extend_from_slice(options);
    m.push(255);
    m.resize(m.len().max(300), 0);
    let seg = frames::udp(68, 67, &m);
    let pkt = frames::ipv4(&Ipv4Fields::udp(ip.0, ip.1), &seg);
    frames::ethernet(eth_dst, chaddr, &[], ETH_P_IPV4, &pkt)
}

/// What a client remembers between phases.
#[derive(Clone, Copy, Debug)]
struct Lease {
    addr: Ipv4Addr,
    server_id: Ipv4Addr,
}

/// The frame client `c` sends in `phase` on `queue`.
fn client_frame(
    phase: Phase,
    queue: u32,
    c: u16,
    lease: Option<Lease>,
    srv_mac: [u8; 6],
) -> Vec<u8> {
    let x = xid(phase, queue, c);
    let bcast = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    match (phase, lease) {
        (Phase::Discover, _) => request_frame(
            BROADCAST_MAC,
            bcast,
            chaddr(c),
            x,
            Ipv4Addr::UNSPECIFIED,
            msg::DISCOVER,
            &[],
        ),
        // RFC 2131 §4.3.2 SELECTING: broadcast, ciaddr 0, 'requested IP' and 'server id' set.
        (Phase::Request, Some(l)) => {
            let mut opts = vec![50, 4];
            opts.extend_from_slice(&l.addr.octets());
            opts.extend_from_slice(&[54, 4]);
            opts.extend_from_slice(&l.server_id.octets());
            request_frame(
                BROADCAST_MAC,
                bcast,
                chaddr(c),
                x,
                Ipv4Addr::UNSPECIFIED,
                msg::REQUEST,
                &opts,
            )
        }
        // RFC 2131 §4.3.2 RENEWING: unicast to the server, ciaddr = the lease, no 50/54.
        (_, Some(l)) => request_frame(
            srv_mac,
            (l.addr, l.server_id),
            chaddr(c),
            x,
            l.addr,
            msg::REQUEST,
            &[],
        ),
        (_, None) => panic!("client {c} has no lease before {phase:?}"),
    }
}

/// A BOOTREPLY: `(xid, chaddr, yiaddr, message type, server id)`.
type Reply = (u32, [u8; 6], Ipv4Addr, u8, Option<Ipv4Addr>);

fn parse_reply(f: &[u8]) -> Option<Reply> {
    if f.get(12..14)? != ETH_P_IPV4.to_be_bytes() || *f.get(23)? != frames::IPPROTO_UDP {
        return None;
    }
    let ihl = usize::from(f.get(14)? & 0x0f) * 4;
    let udp = 14 + ihl;
    if f.get(udp + 2..udp + 4)? != 68u16.to_be_bytes() && f.get(udp + 2..udp + 4)? != [0, 67] {
        return None;
    }
    let b = f.get(udp + 8..)?;
    if *b.first()? != 2 || b.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let x = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
    let yiaddr = Ipv4Addr::from(<[u8; 4]>::try_from(b.get(16..20)?).ok()?);
    let ch: [u8; 6] = b.get(28..34)?.try_into().ok()?;
    let (mut mtype, mut sid) = (None, None);
    let mut i = 240;
    while let Some(&code) = b.get(i) {
        match code {
            0 => i += 1,
            255 => break,
            _ => {
                let len = usize::from(*b.get(i + 1)?);
                let val = b.get(i + 2..i + 2 + len)?;
                match (code, len) {
                    (53, 1) => mtype = Some(val[0]),
                    (54, 4) => sid = Some(Ipv4Addr::new(val[0], val[1], val[2], val[3])),
                    _ => {}
                }
                i += 2 + len;
            }
        }
    }
    Some((x, ch, yiaddr, mtype?, sid))
}

// ---------------------------------------------------------------------------------------------
// Queue steering on the client end

/// Two CPUs this process may run on, one per queue.
fn two_cpus() -> Option<[usize; 2]> {
    let cpus = xsk::sys::allowed_cpus().ok()?;
    match cpus.as_slice() {
        [a, b, ..] if *b < 64 => Some([*a, *b]),
        _ => None,
    }
}

/// XPS on `cli0`: frames sent from `cpus[q]` leave on tx queue `q` (so arrive on srv0 rx `q`).
fn steer_tx_queues_by_cpu(cli: &NetNs, cpus: [usize; 2]) {
    for (q, cpu) in cpus.iter().enumerate() {
        let path = format!("/sys/class/net/{}/queues/tx-{q}/xps_cpus", VethPair::CLI_IF);
        let mask = format!("{:x}", 1u64 << cpu);
        cli.run("sh", &["-c", &format!("echo {mask} > {path}")])
            .unwrap_or_else(|e| panic!("setting {path} = {mask}: {e:#}"));
        let back = cli.run("cat", &[&path]).expect("read xps_cpus");
        assert_eq!(
            u64::from_str_radix(&back.trim().replace(',', ""), 16).ok(),
            Some(1u64 << cpu),
            "{path} reads back {back:?}"
        );
    }
}

/// `rx_queue_N_<stat>` of `ethtool -S srv0`, per queue.
fn veth_queue_stat(srv: &NetNs, stat: &str) -> Vec<u64> {
    let out = srv
        .run("ethtool", &["-S", VethPair::SRV_IF])
        .expect("ethtool -S srv0");
    (0..QUEUES)
        .map(|q| {
            let key = format!("rx_queue_{q}_{stat}:");
            out.lines()
                .find_map(|l| l.trim().strip_prefix(&key)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key} in ethtool -S srv0:\n{out}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The client side: phases in lockstep, a receiver thread collecting replies

/// Sets the flag when dropped (also while unwinding).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs every phase for every client from the `cli` namespace; returns the leases.
fn run_clients(cli: &NetNs, cpus: [usize; 2], srv_mac: [u8; 6]) -> HashMap<u16, Lease> {
    cli.enter(|| {
        let tx = RawSocket::open(VethPair::CLI_IF).expect("raw socket on cli0");
        let rx = RawSocket::open(VethPair::CLI_IF).expect("raw socket on cli0");
        // Room for a whole phase of replies (and our own looped-back frames) even if the
        // receiver thread is not scheduled while the workers answer a burst.
        rx.set_recv_buffer(16 << 20).expect("SO_RCVBUFFORCE");
        let replies: Mutex<HashMap<u32, Reply>> = Mutex::new(HashMap::new());
        let done = AtomicBool::new(false);
        thread::scope(|s| {
            // However this thread leaves the scope (a failed assertion too), the receiver stops.
            let _stop_receiver = SetOnDrop(&done);
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let got = rx
                        .recv_matching(Duration::from_millis(50), |f| parse_reply(f).is_some())
                        .expect("recv");
                    if let Some(r) = got.as_deref().and_then(parse_reply) {
                        let dup = replies.lock().expect("lock").insert(r.0, r);
                        assert!(dup.is_none(), "two replies with xid {:#x}", r.0);
                    }
                }
            });
            let mut leases: HashMap<u16, Lease> = HashMap::new();
            for phase in Phase::ALL {
                for (q, &cpu) in cpus.iter().enumerate() {
                    let q = q as u32;
                    xsk::sys::pin_current_thread(cpu).expect("pin the sending thread");
                    for c in (0..CLIENTS).filter(|&c| queue_for(phase, c) == q) {
                        let f = client_frame(phase, q, c, leases.get(&c).copied(), srv_mac);
                        tx.send(&f).expect("send");
                    }
                }
                let deadline = Instant::now() + PHASE_TIMEOUT;
                let want = |c: u16| xid(phase, queue_for(phase, c), c);
                loop {
                    let unanswered: Vec<u16> = {
                        let r = replies.lock().expect("lock");
                        (0..CLIENTS)
                            .filter(|&c| !r.contains_key(&want(c)))
                            .collect()
                    };
                    if unanswered.is_empty() {
                        break;
                    }
                    if Instant::now() >= deadline {
                        panic!(
                            "{phase:?}: no reply for {} of {CLIENTS} clients (e.g. {:?})",
                            unanswered.len(),
                            &unanswered[..unanswered.len().min(8)]
                        );
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                let r = replies.lock().expect("lock");
                for c in 0..CLIENTS {
                    let (_, ch, yiaddr, mtype, sid) = r[&want(c)];
                    assert_eq!(ch, chaddr(c), "{phase:?}: reply for client {c}");
                    assert_eq!(
                        mtype,
                        phase.reply(),
                        "{phase:?}: client {c} got type {mtype}"
                    );
                    match leases.get(&c) {
                        None => {
                            let server_id = sid.expect("OFFER carries option 54");
                            leases.insert(
                                c,
                                Lease {
                                    addr: yiaddr,
                                    server_id,
                                },
                            );
                        }
                        Some(l) => {
                            assert_eq!(yiaddr, l.addr, "{phase:?}: client {c} keeps its address")
                        }
                    }
                }
            }
            leases
        })
    })
    .expect("enter cli")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn two_queues_two_workers_pin_each_client() {
    if !require_root(TEST) {
        return;
    }
    let Some(object) = ebpf_object(TEST) else {
        return;
    };
    let Some(cpus) = two_cpus() else {
        missing(
            TEST,
            "needs two CPUs to steer frames onto two tx queues (XPS)",
        );
        return;
    };
    let net = VethPair::new(
        "mq",
        &VethOptions {
            queues: QUEUES,
            srv_addr: Some(format!("{SRV_IP}/{PREFIX}")),
            ..VethOptions::default()
        },
    )
    .expect("veth pair");
    let ethtool_works = net
        .srv
        .output("ethtool", &["-S", VethPair::SRV_IF])
        .is_ok_and(|o| o.status.success());
    if !ethtool_works {
        missing(TEST, "needs ethtool; `cargo xtask setup` installs it");
        return;
    }
    steer_tx_queues_by_cpu(&net.cli, cpus);

    net.srv
        .enter(|| {
            let iface = xdhcp::netif::lookup(VethPair::SRV_IF).expect("srv0");
            assert_eq!(iface.rx_queues, QUEUES, "srv0 has {QUEUES} rx queues");
            // As `xdhcp run --workers 2` plans it.
            let plan = Plan::new(WORKERS, iface.rx_queues);
            assert_eq!(plan.queues, QUEUES, "every queue is served: {plan:?}");
            assert_eq!(plan.workers.len(), WORKERS as usize, "{plan:?}");
            // Which worker drives the socket in slot `s` of queue `q`.
            let owner: HashMap<(u32, u32), usize> = plan
                .workers
                .iter()
                .enumerate()
                .flat_map(|(w, socks)| socks.iter().map(move |&qs| (qs, w)))
                .collect();
            assert_eq!(owner.len() as u32, plan.sockets(), "{plan:?}");

            let state = std::env::temp_dir().join(format!("xdhcp-{TEST}-{}", std::process::id()));
            let cfg = Arc::new(
                zero_config(&ZeroConfig {
                    addr: SRV_IP,
                    prefix: PREFIX,
                    lease_time: 600,
                    state_dir: state,
                })
                .expect("zero config"),
            );
            let tables = Arc::new(LeaseTables::new(&cfg, 16));
            let handler = Arc::new(Recorder {
                inner: DhcpHandler::new(cfg, tables, iface.mac, SRV_IP),
            });

            let mut opts = LoadOptions::new(VethPair::SRV_IF);
            opts.mode = XdpMode::Native;
            opts.workers_per_queue = plan.per_queue;
            opts.local_addrs = vec![SRV_IP];
            let mut loader = Loader::prepare(&object, &opts).expect("load XDP program");
            assert_eq!(loader.attach().expect("attach"), XdpMode::Native);
            let mut queues: Vec<Vec<Option<xsk::XskSocket>>> = (0..plan.queues)
                .map(|q| {
                    let mut qc = QueueConfig::new(iface.ifindex, q, plan.per_queue);
                    qc.bind = BindMode::Copy;
                    let socks = open_queue(&qc)
                        .unwrap_or_else(|e| panic!("AF_XDP sockets on srv0 queue {q}: {e}"));
                    socks.into_iter().map(Some).collect()
                })
                .collect();
            for s in queues.iter().flatten().flatten() {
                loader
                    .register_socket(s.queue(), s.slot(), s)
                    .expect("register");
            }
            let assignments = plan
                .workers
                .iter()
                .enumerate()
                .map(|(i, list)| {
                    let mut c = WorkerConfig::new(i);
                    c.idle_ms = 10;
                    let paths = list
                        .iter()
                        .map(|&(q, s)| queues[q as usize][s as usize].take().expect("once"))
                        .collect::<Vec<_>>();
                    (c, paths)
                })
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            let mut workers =
                Workers::spawn(Arc::clone(&handler), assignments, stop).expect("spawn workers");
            let redirect_before = veth_queue_stat(&net.srv, "xdp_redirect");

            let started = Instant::now();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_clients(&net.cli, cpus, iface.mac)
            }));
            let elapsed = started.elapsed();
            assert_eq!(workers.stop_and_join(), 0, "no worker panicked");
            let snaps = workers.board().snapshots();
            let counters = loader.counters().expect("counters");
            let leases = match result {
                Ok(l) => l,
                Err(p) => {
                    for (w, s) in snaps.iter().enumerate() {
                        eprintln!(
                            "{TEST}: worker {w}: {:?}; {}",
                            s.io,
                            DhcpHandler::summary(&s.engine.engine)
                        );
                    }
                    eprintln!(
                        "{TEST}: XDP {counters}\n{}",
                        net.srv
                            .run("ethtool", &["-S", VethPair::SRV_IF])
                            .unwrap_or_default()
                    );
                    std::panic::resume_unwind(p)
                }
            };
            loader.detach().expect("detach");

            // Every client holds its own address.
            let mut addrs: Vec<Ipv4Addr> = leases.values().map(|l| l.addr).collect();
            addrs.sort_unstable();
            addrs.dedup();
            assert_eq!(addrs.len(), usize::from(CLIENTS), "one address per client");

            // Frames per queue as sent, per phase and client.
            let sent_on = |q: u32| {
                Phase::ALL
                    .iter()
                    .map(|&p| (0..CLIENTS).filter(|&c| queue_for(p, c) == q).count() as u64)
                    .sum::<u64>()
            };
            let sent: Vec<u64> = (0..QUEUES).map(sent_on).collect();
            let total_sent: u64 = sent.iter().sum();

            // The veth driver's own count: each rx queue redirected exactly what was sent on it.
            let redirect_after = veth_queue_stat(&net.srv, "xdp_redirect");
            let redirected: Vec<u64> = redirect_after
                .iter()
                .zip(&redirect_before)
                .map(|(a, b)| a - b)
                .collect();
            assert_eq!(
                redirected, sent,
                "frames redirected per srv0 rx queue == frames sent per cli0 tx queue"
            );
            assert_eq!(counters.get(Counter::Redirected), total_sent, "{counters}");
            assert_eq!(counters.get(Counter::PassNoSocket), 0, "{counters}");

            // Each frame handled once, by the predicted worker.
            let mut handled_by: HashMap<u32, usize> = HashMap::new();
            let mut workers_of: HashMap<u16, Vec<(Phase, usize)>> = HashMap::new();
            for (w, snap) in snaps.iter().enumerate() {
                let e = &snap.engine.engine;
                eprintln!(
                    "{TEST}: worker {w}: {} frames, {}",
                    snap.engine.frames.len(),
                    DhcpHandler::summary(e)
                );
                assert!(
                    !snap.engine.frames.is_empty(),
                    "worker {w} served nobody (both must serve)"
                );
                assert!(
                    e.replies[dhcp::Stats::slot(msg::OFFER)] > 0
                        && e.replies[dhcp::Stats::slot(msg::ACK)] > 0,
                    "worker {w} sent OFFERs and ACKs: {}",
                    DhcpHandler::summary(e)
                );
                assert_eq!(
                    e.total_drops(),
                    0,
                    "worker {w}: {}",
                    DhcpHandler::summary(e)
                );
                for &(x, ch) in &snap.engine.frames {
                    let (phase, q, c) = unpack_xid(x)
                        .unwrap_or_else(|| panic!("worker {w} saw a foreign xid {x:#x}"));
                    assert_eq!(ch, chaddr(c), "xid {x:#x} carries client {c}'s chaddr");
                    let slot = worker_for_chaddr(&ch, plan.per_queue);
                    let want = owner[&(q, slot)];
                    assert_eq!(
                        w, want,
                        "client {c} {phase:?} on rx queue {q} (slot {slot}) was handled by \
                         worker {w}, predicted {want}"
                    );
                    assert!(
                        handled_by.insert(x, w).is_none(),
                        "xid {x:#x} handled twice"
                    );
                    workers_of.entry(c).or_default().push((phase, w));
                }
            }
            assert_eq!(
                handled_by.len() as u64,
                total_sent,
                "every frame handled once"
            );

            // A client's frames stay on one worker, also the renewal that arrived on the other
            // queue: the plan gives every worker the same slot on every queue.
            assert!(
                (0..plan.per_queue).all(|s| (1..QUEUES).all(|q| owner[&(q, s)] == owner[&(0, s)])),
                "the plan must give each worker one slot on every queue: {plan:?}"
            );
            assert_eq!(workers_of.len(), usize::from(CLIENTS));
            for (c, seen) in &workers_of {
                let mut ws: Vec<usize> = seen.iter().map(|&(_, w)| w).collect();
                ws.sort_unstable();
                ws.dedup();
                assert_eq!(ws.len(), 1, "client {c} moved between workers: {seen:?}");
            }
            eprintln!(
                "{TEST}: {CLIENTS} clients, {total_sent} frames (per queue {sent:?}) in {elapsed:?}"
            );
        })
        .expect("enter srv");
}
