//! The project's load generator (`xdhcp-load`'s library: generator, AF_XDP port, redirect
//! program) against the engine over a veth pair, both through AF_XDP: issue 5 §1.
//!
//! Proves, end to end on a real link: the generator's hand-assembled XDP program steers the
//! server's replies into its AF_XDP socket; a few thousand direct clients all complete DORA; a
//! relay with option 82 completes DORA, renew and release; every address the generator saw
//! ACKed is bound to that very client in the server's lease table (and released ones are not);
//! no address went to two clients — checked from the outside by the generator and from the
//! inside by the table. The batched AF_PACKET fallback is exercised the same way.
//!
//! Needs root and `XDHCP_EBPF_OBJECT`; under `CI=true` a missing requirement fails the test.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use xdhcp::config::{ZeroConfig, zero_config};
use xdhcp::lease::{ClientKey, LeaseState, LeaseTables};
use xdhcp::loader::XdpMode;
use xdhcp::worker::{DhcpHandler, Plan};
use xdhcp::xsk::{AttachMode, BindMode, QueueConfig, open_queue};
use xdhcp_benches::load::client::{Config, Generator, Pace, Relay};
use xdhcp_benches::load::io::{Io, IoKind};
use xdhcp_benches::load::run::{Limits, run};
use xdhcp_tests::netns::{VethOptions, VethPair};
use xdhcp_tests::{attach_xdp, ebpf_object, require_root, spawn_workers};

const SRV: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 1);
const CLI: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 2);
const PREFIX: u8 = 16;

/// Removes the journal directory on drop.
struct StateDir(PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `body` in the client namespace while the engine serves `srv0` through AF_XDP with two
/// workers; returns the engine's lease tables for checks afterwards.
fn with_engine(test: &str, body: impl FnOnce(&VethPair) + Send) -> Option<Arc<LeaseTables>> {
    if !require_root(test) {
        return None;
    }
    let object = ebpf_object(test)?;
    let net = VethPair::new(
        "lgen",
        &VethOptions {
            srv_addr: Some(format!("{SRV}/{PREFIX}")),
            cli_addr: Some(format!("{CLI}/{PREFIX}")),
            ..VethOptions::default()
        },
    )
    .expect("veth pair");
    let state = StateDir(std::env::temp_dir().join(format!("xdhcp-{test}-{}", std::process::id())));
    let tables = net
        .srv
        .enter(|| {
            let iface = xdhcp::netif::lookup(VethPair::SRV_IF).expect("srv0");
            let cfg = Arc::new(
                zero_config(&ZeroConfig {
                    addr: SRV,
                    prefix: PREFIX,
                    lease_time: 600,
                    state_dir: state.0.clone(),
                })
                .expect("zero config"),
            );
            let tables = Arc::new(LeaseTables::new(&cfg, 4));
            let handler = Arc::new(DhcpHandler::new(cfg, Arc::clone(&tables), iface.mac, SRV));
            let plan = Plan::new(2, iface.rx_queues);
            let mut qc = QueueConfig::new(iface.ifindex, 0, plan.per_queue);
            qc.bind = BindMode::Copy;
            let sockets = open_queue(&qc).expect("AF_XDP sockets");
            let (mut loader, _) = attach_xdp(&object, &sockets, XdpMode::Auto, SRV);
            let stop = Arc::new(AtomicBool::new(false));
            let mut workers = spawn_workers(Arc::clone(&handler), sockets, &stop);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                net.cli.enter(|| body(&net)).expect("enter cli");
            }));
            assert_eq!(workers.stop_and_join(), 0, "no worker panicked");
            loader.detach().expect("detach");
            if let Err(p) = result {
                std::panic::resume_unwind(p);
            }
            tables
        })
        .expect("enter srv");
    Some(tables)
}

/// Drive `cfg` over `kind` on cli0 until done; returns the generator.
fn generate(cfg: Config, kind: IoKind) -> Generator {
    let iface = xdhcp::netif::lookup(VethPair::CLI_IF).expect("cli0");
    let mut io = Io::open(&iface, kind, AttachMode::Native, BindMode::Copy, 4096)
        .expect("generator I/O on cli0");
    let mut g = Generator::new(cfg);
    let limits = Limits {
        duration: None,
        drain: Duration::from_secs(5),
    };
    run(&mut g, &mut io, limits, &AtomicBool::new(false));
    g
}

/// Every address the generator holds is bound to that client in the table; none twice.
fn check_against_table(g: &Generator, tables: &LeaseTables) -> usize {
    let mut seen = HashMap::new();
    let mut n = 0;
    for (c, addr) in g.bound() {
        assert!(seen.insert(addr, c).is_none(), "{addr} held by two clients");
        let lease = tables
            .by_addr(addr)
            .expect("the ACKed lease is in the table");
        assert_eq!(lease.state, LeaseState::Bound, "{addr}");
        assert_eq!(
            lease.client,
            ClientKey::from_hw(1, &g.mac(c)),
            "{addr} is bound to the client that was ACKed"
        );
        n += 1;
    }
    n
}

#[test]
fn loadgen_thousands_of_clients_complete_without_duplicates() {
    let test = "loadgen_thousands_of_clients_complete_without_duplicates";
    let mut direct: Option<Generator> = None;
    let mut relayed: Option<Generator> = None;
    let mut packet: Option<Generator> = None;
    let tables = with_engine(test, |_| {
        // 1. Direct clients over AF_XDP, as fast as a window of 256 allows.
        let mut cfg = Config::new(4000);
        cfg.pace = Pace::Window(256);
        cfg.mac_prefix = 0x51;
        direct = Some(generate(cfg, IoKind::Xdp));

        // 2. A relay with option 82: DORA, renew, release, paced.
        let cli = xdhcp::netif::lookup(VethPair::CLI_IF).expect("cli0");
        let server_mac = xdhcp_benches::load::run::resolve_mac(SRV).expect("ARP for the server");
        let mut cfg = Config::new(1000);
        cfg.mac_prefix = 0x52;
        cfg.pace = Pace::Rate(20_000.0);
        cfg.renew = true;
        cfg.release = true;
        cfg.relay = Some(Relay {
            giaddr: CLI,
            mac: cli.mac,
            server: SRV,
            server_mac,
            option82: true,
        });
        relayed = Some(generate(cfg, IoKind::Xdp));

        // 3. The AF_PACKET fallback (the AF_XDP generator's program is detached by now).
        let mut cfg = Config::new(1000);
        cfg.mac_prefix = 0x53;
        packet = Some(generate(cfg, IoKind::Packet));
    });
    let Some(tables) = tables else {
        return;
    };
    let direct = direct.expect("ran");
    let s = direct.stats();
    assert_eq!(
        s.completed, 4000,
        "every direct client completed DORA: {s:?}"
    );
    assert_eq!((s.failed, s.duplicates, s.naks), (0, 0, 0), "{s:?}");
    assert_eq!(s.offers, 4000);
    assert_eq!(check_against_table(&direct, &tables), 4000);

    let relayed = relayed.expect("ran");
    let s = relayed.stats();
    assert_eq!(s.completed, 1000, "{s:?}");
    assert_eq!(s.renews_completed, 1000, "{s:?}");
    assert_eq!(s.releases, 1000);
    assert_eq!((s.failed, s.duplicates), (0, 0));
    assert_eq!(relayed.bound().count(), 0, "all released");

    let packet = packet.expect("ran");
    let s = packet.stats();
    assert_eq!(s.completed, 1000, "AF_PACKET fallback: {s:?}");
    assert_eq!(s.duplicates, 0);
    assert_eq!(check_against_table(&packet, &tables), 1000);

    // Inside view: the table holds exactly the direct and packet clients' leases, and no
    // address of a released relay client is still bound to it.
    assert_eq!(tables.stats().bound, 5000);
}
