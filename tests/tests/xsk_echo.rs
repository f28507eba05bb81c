//! AF_XDP datapath end to end on a veth pair: the real XDP program steers DHCP frames into
//! two AF_XDP sockets sharing one UMEM on queue 0, two worker threads answer them through the
//! generic worker loop with an echo handler, and the echoes arrive back in the client namespace.
//!
//! Proves: frames flow rx -> handler -> tx -> wire in copy mode; the shared fill/completion
//! rings keep working across many batches (more frames than one TX partition holds); each
//! client's frames land on the worker `worker_for_chaddr` names; other traffic (ARP, ICMP)
//! still reaches the kernel while the program is attached.
//!
//! Needs root and `XDHCP_EBPF_OBJECT` (`cargo xtask test`); under `CI=true` a missing
//! requirement fails the test.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use xdhcp::lease::Secs;
use xdhcp::loader::XdpMode;
use xdhcp::worker::{FrameHandler, Plan};
use xdhcp::xsk::{BindMode, PacketSocket, QueueConfig, open_queue};
use xdhcp_common::{Counter, worker_for_chaddr};
use xdhcp_tests::frames::DhcpFrame;
use xdhcp_tests::netns::{VethOptions, VethPair};
use xdhcp_tests::{attach_xdp, ebpf_object, require_root, spawn_workers};

const SRV_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 7, 1);
/// Offset of chaddr in an untagged DHCP frame: Ethernet 14 + IPv4 20 + UDP 8 + 28.
const CHADDR: usize = 14 + 20 + 8 + 28;

/// Sends every frame back to its sender (destination = original source, source = `mac`) and
/// records the chaddr it saw, per worker.
struct Echo {
    mac: [u8; 6],
}

impl FrameHandler for Echo {
    type Stats = Vec<[u8; 6]>;

    fn handle(
        &self,
        rx: &[u8],
        tx: &mut [u8],
        _now: Secs,
        seen: &mut Self::Stats,
    ) -> Option<usize> {
        let chaddr: [u8; 6] = rx.get(CHADDR..CHADDR + 6)?.try_into().ok()?;
        seen.push(chaddr);
        let n = rx.len();
        tx.get_mut(..n)?.copy_from_slice(rx);
        tx[..6].copy_from_slice(&rx[6..12]);
        tx[6..12].copy_from_slice(&self.mac);
        Some(n)
    }

    fn merge(into: &mut Self::Stats, from: &Self::Stats) {
        into.extend_from_slice(from);
    }

    fn summary(s: &Self::Stats) -> String {
        format!("{} frames", s.len())
    }
}

fn chaddr(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0xaa, b[0], b[1], b[2], b[3]]
}

fn echo_roundtrip(test: &str, mode: XdpMode, frames: u32) {
    if !require_root(test) {
        return;
    }
    let Some(object) = ebpf_object(test) else {
        return;
    };
    let net = VethPair::new(
        "xske",
        &VethOptions {
            srv_addr: Some(format!("{SRV_IP}/24")),
            cli_addr: Some("10.213.7.2/24".into()),
            ..VethOptions::default()
        },
    )
    .expect("veth pair");

    net.srv
        .enter(|| {
            let iface = xdhcp::netif::lookup(VethPair::SRV_IF).expect("srv0");
            assert_eq!(iface.rx_queues, 1, "a default veth has one rx queue");
            let plan = Plan::new(2, iface.rx_queues);
            assert_eq!(plan.per_queue, 2, "two workers share queue 0");

            let mut cfg = QueueConfig::new(iface.ifindex, 0, plan.per_queue);
            cfg.bind = BindMode::Copy;
            cfg.frames = 512; // 128 TX frames per socket: the test sends more than that
            let sockets = open_queue(&cfg).expect("AF_XDP sockets on srv0 queue 0");
            assert!(!sockets[0].zerocopy(), "veth has no zero-copy");

            let (mut loader, attached) = attach_xdp(&object, &sockets, mode, SRV_IP);
            if mode != XdpMode::Auto {
                assert_eq!(attached, mode);
            }

            let stop = Arc::new(AtomicBool::new(false));
            let mut workers = spawn_workers(Arc::new(Echo { mac: iface.mac }), sockets, &stop);

            // Client side: send DISCOVERs from `frames` different chaddrs, collect the echoes.
            let sent: HashSet<[u8; 6]> = (0..frames).map(chaddr).collect();
            let got = net
                .cli
                .enter(|| {
                    let cli = xdhcp::netif::lookup(VethPair::CLI_IF).expect("cli0");
                    let sock = PacketSocket::open(cli.ifindex, None).expect("packet socket");
                    let mut got = HashSet::new();
                    let mut buf = vec![0u8; 4096];
                    for i in 0..frames {
                        sock.send(&DhcpFrame::discover(chaddr(i)).build())
                            .expect("send");
                        if i % 32 == 31 {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        drain(&sock, &mut buf, &iface.mac, &mut got);
                    }
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while got.len() < frames as usize && Instant::now() < deadline {
                        drain(&sock, &mut buf, &iface.mac, &mut got);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    got
                })
                .expect("enter cli");
            assert_eq!(
                got.len(),
                sent.len(),
                "every DHCP frame came back through AF_XDP TX"
            );
            assert_eq!(got, sent);

            // Other traffic still reaches the kernel while the program is attached.
            net.cli
                .run(
                    "busybox",
                    &["ping", "-c", "2", "-W", "2", &SRV_IP.to_string()],
                )
                .expect("ping across the XDP interface");

            let counters = loader.counters().expect("counters");
            assert!(
                counters.get(Counter::Redirected) >= u64::from(frames),
                "{counters}"
            );
            assert_eq!(counters.get(Counter::PassNoSocket), 0, "{counters}");

            assert_eq!(workers.stop_and_join(), 0, "no worker panicked");
            let snaps = workers.board().snapshots();
            let mut total = 0;
            for (w, snap) in snaps.iter().enumerate() {
                assert!(
                    !snap.engine.is_empty(),
                    "worker {w} served nobody: {snaps:?}"
                );
                for c in &snap.engine {
                    assert_eq!(
                        worker_for_chaddr(c, 2),
                        w as u32,
                        "chaddr {c:02x?} reached the wrong worker"
                    );
                }
                assert_eq!(snap.io.rx, snap.engine.len() as u64);
                assert_eq!(
                    snap.io.tx,
                    snap.engine.len() as u64,
                    "every echo was queued"
                );
                total += snap.engine.len();
            }
            assert_eq!(total, frames as usize);
            loader.detach().expect("detach");
        })
        .expect("enter srv");
}

fn drain(sock: &PacketSocket, buf: &mut [u8], srv_mac: &[u8; 6], got: &mut HashSet<[u8; 6]>) {
    while let Ok(Some(meta)) = sock.recv(buf) {
        let f = &buf[meta.offset..meta.offset + meta.len];
        if f.len() >= CHADDR + 6 && &f[6..12] == srv_mac {
            let c: [u8; 6] = f[CHADDR..CHADDR + 6].try_into().expect("6 bytes");
            assert_eq!(&f[..6], &c, "echo addressed to the sender");
            got.insert(c);
        }
    }
}

#[test]
fn xsk_echo_two_workers_native_or_auto() {
    echo_roundtrip("xsk_echo_two_workers_native_or_auto", XdpMode::Auto, 300);
}

#[test]
fn xsk_echo_two_workers_skb() {
    echo_roundtrip("xsk_echo_two_workers_skb", XdpMode::Skb, 300);
}
