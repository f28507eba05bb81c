//! A real DHCP client (busybox udhcpc) gets a lease from the engine running in this process,
//! through each I/O backend: AF_XDP (XDP program attached, copy mode, two workers sharing the
//! queue) and `--io socket` (AF_PACKET, two workers in a fanout group).
//!
//! Proves the datapath glue end to end — worker loop, `DhcpHandler`, zero-config from the
//! interface address, TX of whole reply frames — with a client we did not write. The `xdhcp`
//! binary runs the same code; `xsk_echo.rs` covers the AF_XDP mechanics in more detail.
//!
//! Needs root, busybox and (XDP) `XDHCP_EBPF_OBJECT`; under `CI=true` a missing requirement
//! fails the test.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use xdhcp::config::{ZeroConfig, zero_config};
use xdhcp::dhcp::msg;
use xdhcp::lease::LeaseTables;
use xdhcp::loader::{LoadOptions, Loader, XdpMode};
use xdhcp::socket::PacketPath;
use xdhcp::worker::{Datapath, DhcpHandler, Plan, WorkerConfig, Workers};
use xdhcp::xsk::{BindMode, QueueConfig, open_queue};
use xdhcp_common::Counter;
use xdhcp_tests::netns::{VethOptions, VethPair};
use xdhcp_tests::{ebpf_object, missing, require_root};

const SRV_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 9, 1);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Io {
    Xdp,
    Socket,
}

fn busybox_present(test: &str) -> bool {
    let ok = std::process::Command::new("busybox")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        missing(
            test,
            "needs busybox (udhcpc); `cargo xtask setup` installs it",
        );
    }
    ok
}

fn workers_for<D: Datapath + 'static>(
    handler: &Arc<DhcpHandler>,
    paths: Vec<D>,
    stop: &Arc<AtomicBool>,
) -> Workers<xdhcp::dhcp::Stats> {
    let assignments = paths
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut c = WorkerConfig::new(i);
            c.idle_ms = 10;
            (c, vec![p])
        })
        .collect();
    Workers::spawn(Arc::clone(handler), assignments, Arc::clone(stop)).expect("spawn workers")
}

fn udhcpc_gets_a_lease(test: &str, io: Io) {
    if !require_root(test) || !busybox_present(test) {
        return;
    }
    let object = match io {
        Io::Xdp => match ebpf_object(test) {
            Some(o) => Some(o),
            None => return,
        },
        Io::Socket => None,
    };
    let net = VethPair::new(
        "wudh",
        &VethOptions {
            srv_addr: Some(format!("{SRV_IP}/24")),
            ..VethOptions::default()
        },
    )
    .expect("veth pair");

    net.srv
        .enter(|| {
            let iface = xdhcp::netif::lookup(VethPair::SRV_IF).expect("srv0");
            assert_eq!(iface.primary_ipv4(), Some((SRV_IP, 24)));
            let state = std::env::temp_dir().join(format!("xdhcp-{test}-{}", std::process::id()));
            let cfg = Arc::new(
                zero_config(&ZeroConfig {
                    addr: SRV_IP,
                    prefix: 24,
                    lease_time: 600,
                    state_dir: state,
                })
                .expect("zero config"),
            );
            let tables = Arc::new(LeaseTables::new(&cfg, 4));
            let handler = Arc::new(DhcpHandler::new(
                cfg,
                Arc::clone(&tables),
                iface.mac,
                SRV_IP,
            ));
            let stop = Arc::new(AtomicBool::new(false));

            let (mut workers, loader) = match io {
                Io::Xdp => {
                    let plan = Plan::new(2, iface.rx_queues);
                    let mut qc = QueueConfig::new(iface.ifindex, 0, plan.per_queue);
                    qc.bind = BindMode::Copy;
                    let sockets = open_queue(&qc).expect("AF_XDP sockets");
                    let mut opts = LoadOptions::new(VethPair::SRV_IF);
                    opts.mode = XdpMode::Auto;
                    opts.workers_per_queue = plan.per_queue;
                    opts.local_addrs = vec![SRV_IP];
                    let object = object.as_deref().expect("object");
                    let mut loader = Loader::prepare(object, &opts).expect("load XDP program");
                    for s in &sockets {
                        loader
                            .register_socket(s.queue(), s.slot(), s)
                            .expect("register");
                    }
                    loader.attach().expect("attach");
                    (workers_for(&handler, sockets, &stop), Some(loader))
                }
                Io::Socket => {
                    let paths = PacketPath::open_many(iface.ifindex, 2).expect("packet sockets");
                    (workers_for(&handler, paths, &stop), None)
                }
            };

            let out = net
                .cli
                .output(
                    "busybox",
                    &[
                        "udhcpc",
                        "-f",
                        "-q",
                        "-n",
                        "-i",
                        VethPair::CLI_IF,
                        "-s",
                        "/bin/true",
                        "-t",
                        "6",
                        "-T",
                        "1",
                    ],
                )
                .expect("run udhcpc");
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let redirected = loader
                .as_ref()
                .map(|l| l.counters().expect("counters").get(Counter::Redirected));
            assert_eq!(workers.stop_and_join(), 0, "no worker panicked");
            let total = workers.board().total::<DhcpHandler>();

            eprintln!("{test}: udhcpc said: {}", log.trim());
            eprintln!("{test}: io {:?}, redirected {redirected:?}", total.io);
            assert!(
                out.status.success(),
                "udhcpc failed: {log}\nengine: {:?}",
                total.engine
            );
            assert!(log.contains("lease of 10.213.9."), "udhcpc output: {log}");
            assert!(
                log.contains(&format!("obtained from {SRV_IP}")),
                "udhcpc output: {log}"
            );
            let e = &total.engine;
            assert!(e.replies[msg::OFFER as usize] >= 1, "{e:?}");
            assert!(e.replies[msg::ACK as usize] >= 1, "{e:?}");
            assert!(
                total.io.tx >= 2,
                "OFFER and ACK went out through the datapath: {:?}",
                total.io
            );
            assert_eq!(tables.stats().bound, 1, "exactly one lease bound");
            if let Some(r) = redirected {
                assert!(
                    r >= 2,
                    "DISCOVER and REQUEST were steered by XDP (redirected = {r})"
                );
            }
        })
        .expect("enter srv");
}

#[test]
fn udhcpc_lease_through_af_xdp() {
    udhcpc_gets_a_lease("udhcpc_lease_through_af_xdp", Io::Xdp);
}

#[test]
fn udhcpc_lease_through_packet_socket() {
    udhcpc_gets_a_lease("udhcpc_lease_through_packet_socket", Io::Socket);
}
