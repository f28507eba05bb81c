//! Real DHCP clients against the engine running in this process, through both I/O backends
//! (AF_XDP with the XDP program attached, and `--io socket` over AF_PACKET): issue 3 §5.
//!
//! These tests follow whole lease lifecycles and load with clients we did not write, and check the outcome in the lease tables, not only in the
//! clients' own output:
//!
//! - busybox udhcpc: bind, renew (SIGUSR1), release (SIGUSR2) — Bound, Bound with a later
//!   expiry, Released.
//! - ISC dhclient: bind, then `dhclient -r` — Bound, Released.
//! - dhcpcd: bind, renew (SIGUSR1, as `-N`), release (SIGALRM, as `-k`) — Bound, later expiry,
//!   Released. Signals rather than `-N`/`-k`: the control socket lives in the scratch
//!   `/run/dhcpcd` bind-mounted in the daemon's private mount namespace, which a second
//!   `ip netns exec` cannot see.
//! - perfdhcp as a relay agent: ~3000 DORA exchanges for 2000 clients; >= 90 % complete and no
//!   client holds two addresses (and no address two clients).
//! - XDP only: ping and UDP to another port still reach the host's stack while the program is
//!   attached (only DHCP is steered to the workers).
//!
//! Needs root, busybox, dhclient, dhcpcd, perfdhcp, ethtool and (XDP) `XDHCP_EBPF_OBJECT`; under
//! `CI=true` a missing requirement fails the test.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use xdhcp::config::{ZeroConfig, zero_config};
use xdhcp::lease::{LeaseInfo, LeaseState, LeaseTables};
use xdhcp::loader::{Loader, XdpMode};
use xdhcp::socket::PacketPath;
use xdhcp::worker::{DhcpHandler, Plan, unix_now};
use xdhcp::xsk::{BindMode, QueueConfig, open_queue};
use xdhcp_common::Counter;
use xdhcp_tests::netns::{VethOptions, VethPair};
use xdhcp_tests::{attach_xdp, ebpf_object, missing, require_root, spawn_workers};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Io {
    Xdp,
    Socket,
}

/// `true` if every program in `tools` can be found; otherwise see [`missing`].
fn tools_present(test: &str, tools: &[&str]) -> bool {
    for tool in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join(tool).is_file());
        if !found {
            missing(
                test,
                &format!("needs {tool}; `cargo xtask setup` installs it"),
            );
            return false;
        }
    }
    true
}

/// A private scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("xdhcp-e2e-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    /// Writes an executable script `name` and returns its path.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = self.0.join(name);
        std::fs::write(&p, body).expect("write script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// What a test body gets: the namespaces and the running engine's lease tables.
struct Ctx<'a> {
    net: &'a VethPair,
    tables: &'a LeaseTables,
    /// XDP `Redirected` counter, read on demand (XDP path only).
    loader: Option<&'a Loader>,
}

/// Builds the veth pair (`srv0` = `srv`, `cli0` = `cli` if given), starts the engine on `srv0`
/// through `io` (two workers), runs `body`, stops the workers and checks none panicked.
///
/// Returns `false` if the test was skipped (see [`missing`]).
fn with_engine(
    test: &str,
    io: Io,
    tools: &[&str],
    srv: (Ipv4Addr, u8),
    cli: Option<String>,
    body: impl FnOnce(&Ctx<'_>) + Send,
) -> bool {
    if !require_root(test) || !tools_present(test, tools) {
        return false;
    }
    let object = match io {
        Io::Xdp => match ebpf_object(test) {
            Some(o) => Some(o),
            None => return false,
        },
        Io::Socket => None,
    };
    let (srv_ip, prefix) = srv;
    let net = VethPair::new(
        "e2e",
        &VethOptions {
            srv_addr: Some(format!("{srv_ip}/{prefix}")),
            cli_addr: cli,
            ..VethOptions::default()
        },
    )
    .expect("veth pair");
    // A kernel UDP socket sending over veth leaves the UDP checksum CHECKSUM_PARTIAL (veth
    // never fills it in); the frame reaches XDP with the pseudo-header sum only, and the wire
    // layer rightly drops it as UdpBadChecksum. Real NICs compute it; here we make the client
    // end compute it in software. (Raw-socket clients such as udhcpc's DISCOVER are not
    // affected, but renewals and perfdhcp go through UDP sockets.)
    net.cli
        .run("ethtool", &["-K", VethPair::CLI_IF, "tx", "off"])
        .expect("ethtool -K cli0 tx off");

    net.srv
        .enter(|| {
            let iface = xdhcp::netif::lookup(VethPair::SRV_IF).expect("srv0");
            let state = std::env::temp_dir().join(format!("xdhcp-{test}-{}", std::process::id()));
            let cfg = Arc::new(
                zero_config(&ZeroConfig {
                    addr: srv_ip,
                    prefix,
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
                srv_ip,
            ));
            let stop = Arc::new(AtomicBool::new(false));
            let (mut workers, loader) = match io {
                Io::Xdp => {
                    let plan = Plan::new(2, iface.rx_queues);
                    let mut qc = QueueConfig::new(iface.ifindex, 0, plan.per_queue);
                    qc.bind = BindMode::Copy;
                    let sockets = open_queue(&qc).expect("AF_XDP sockets");
                    let object = object.as_deref().expect("object");
                    let (loader, _) = attach_xdp(object, &sockets, XdpMode::Auto, srv_ip);
                    (
                        spawn_workers(Arc::clone(&handler), sockets, &stop),
                        Some(loader),
                    )
                }
                Io::Socket => {
                    let paths = PacketPath::open_many(iface.ifindex, 2).expect("packet sockets");
                    (spawn_workers(Arc::clone(&handler), paths, &stop), None)
                }
            };
            // Run the body; stop the workers even if it panics, then re-raise.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                body(&Ctx {
                    net: &net,
                    tables: &tables,
                    loader: loader.as_ref(),
                });
            }));
            let total = {
                let panicked = workers.stop_and_join();
                let total = workers.board().total::<DhcpHandler>();
                assert_eq!(panicked, 0, "no worker panicked");
                total
            };
            eprintln!(
                "{test}: io {:?}\n{test}: engine {:?}",
                total.io, total.engine
            );
            if let Err(p) = result {
                std::panic::resume_unwind(p);
            }
        })
        .expect("enter srv");
    true
}

/// The addresses the pool of `srv/prefix` serves (every host address but the server's).
fn pool(srv: Ipv4Addr, prefix: u8) -> impl Iterator<Item = Ipv4Addr> {
    let mask = u32::MAX << (32 - prefix);
    let net = u32::from(srv) & mask;
    let bcast = net | !mask;
    (net + 1..bcast)
        .map(Ipv4Addr::from)
        .filter(move |a| *a != srv)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// udhcpc: bind, renew, release

const UDHCPC_SRV: Ipv4Addr = Ipv4Addr::new(10, 213, 21, 1);

fn udhcpc_lifecycle(test: &str, io: Io) {
    let dir = TempDir::new(test);
    let events = dir.0.join("events");
    // busybox passes the event as $1 and the lease in the environment ($ip, $mask = prefix
    // length). Log every event, configure the address on bound/renew, remove it on deconfig.
    let script = dir.script(
        "udhcpc.sh",
        &format!(
            "#!/bin/sh\n\
             echo \"$1 $ip\" >> {ev}\n\
             case \"$1\" in\n\
             bound|renew) ip addr flush dev \"$interface\"; \
             ip addr add \"$ip/${{mask:-24}}\" dev \"$interface\" ;;\n\
             deconfig) ip addr flush dev \"$interface\" ;;\n\
             esac\n\
             exit 0\n",
            ev = events.display()
        ),
    );
    let script = script.to_str().expect("utf-8 path").to_owned();
    with_engine(
        test,
        io,
        &["busybox", "ip", "ethtool"],
        (UDHCPC_SRV, 24),
        None,
        |ctx| {
            let mut child = ctx
                .net
                .cli
                .spawn(
                    ctx.net
                        .cli
                        .cmd("busybox")
                        .args(["udhcpc", "-f", "-R", "-i", VethPair::CLI_IF, "-s"])
                        .arg(&script)
                        .args(["-t", "5", "-T", "1", "-A", "1"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                )
                .expect("start udhcpc");
            // `ip netns exec` execs the program: the child's pid is udhcpc's.
            let pid = i32::try_from(child.child().id()).expect("pid");
            let lines = || read(&events).lines().map(str::to_owned).collect::<Vec<_>>();

            // Bind.
            let addr: Ipv4Addr = wait_for(Duration::from_secs(15), || {
                lines()
                    .iter()
                    .find_map(|l| l.strip_prefix("bound ")?.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("udhcpc never bound; events: {:?}", lines()));
            let bound = ctx.tables.by_addr(addr).expect("lease in the table");
            assert_eq!(
                bound.state_at(unix_now()),
                Some(LeaseState::Bound),
                "{bound:?}"
            );
            assert_eq!(ctx.tables.stats().bound, 1);
            let on_if = ctx
                .net
                .cli
                .run("ip", &["-4", "-o", "addr", "show", "dev", VethPair::CLI_IF])
                .expect("ip addr");
            assert!(on_if.contains(&format!("{addr}/24")), "{on_if}");

            // Renew (SIGUSR1: unicast REQUEST with ciaddr). Wait a second first, so the new
            // expiry is measurably later.
            thread::sleep(Duration::from_millis(1100));
            // SAFETY: kill(2) on our own, not yet reaped child.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
            wait_for(Duration::from_secs(10), || {
                lines()
                    .iter()
                    .any(|l| l.starts_with("renew "))
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("udhcpc never renewed; events: {:?}", lines()));
            let renewed = ctx.tables.by_addr(addr).expect("lease in the table");
            assert_eq!(renewed.state_at(unix_now()), Some(LeaseState::Bound));
            assert_eq!(renewed.client, bound.client, "same client");
            assert!(
                renewed.expires > bound.expires,
                "renewal extended the lease: {bound:?} -> {renewed:?}"
            );
            assert!(
                lines().iter().any(|l| l == &format!("renew {addr}")),
                "renewed the same address: {:?}",
                lines()
            );

            // Release (SIGUSR2: RELEASE, then deconfig).
            let before = lines().len();
            // SAFETY: as above.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR2) }, 0);
            let released = wait_for(Duration::from_secs(10), || {
                ctx.tables
                    .by_addr(addr)
                    .filter(|l| l.state == LeaseState::Released)
            })
            .unwrap_or_else(|| {
                panic!(
                    "lease not released: {:?}; events: {:?}",
                    ctx.tables.by_addr(addr),
                    lines()
                )
            });
            assert_eq!(released.client, bound.client);
            assert_eq!(ctx.tables.stats().bound, 0);
            wait_for(Duration::from_secs(5), || {
                lines()[before..]
                    .iter()
                    .any(|l| l.starts_with("deconfig"))
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("no deconfig after release; events: {:?}", lines()));
            drop(child.stop(Duration::from_secs(2)));
        },
    );
}

#[test]
fn udhcpc_bind_renew_release_xdp() {
    udhcpc_lifecycle("udhcpc_bind_renew_release_xdp", Io::Xdp);
}

#[test]
fn udhcpc_bind_renew_release_socket() {
    udhcpc_lifecycle("udhcpc_bind_renew_release_socket", Io::Socket);
}

// ---------------------------------------------------------------------------------------------
// dhclient: bind, release

const DHCLIENT_SRV: Ipv4Addr = Ipv4Addr::new(10, 213, 22, 1);

fn dhclient_lifecycle(test: &str, io: Io) {
    let dir = TempDir::new(test);
    let events = dir.0.join("events");
    // dhclient-script protocol: $reason, $interface, $new_ip_address, $new_subnet_mask. Never
    // touches resolv.conf or routes.
    let script = dir.script(
        "dhclient.sh",
        &format!(
            "#!/bin/sh\n\
             echo \"$reason $new_ip_address\" >> {ev}\n\
             case \"$reason\" in\n\
             BOUND|RENEW|REBIND|REBOOT) ip addr flush dev \"$interface\"; \
             ip addr add \"$new_ip_address/$new_subnet_mask\" dev \"$interface\" ;;\n\
             RELEASE|EXPIRE|FAIL|STOP) ip addr flush dev \"$interface\" ;;\n\
             esac\n\
             exit 0\n",
            ev = events.display()
        ),
    );
    let conf = dir.0.join("dhclient.conf");
    std::fs::write(&conf, "timeout 20;\nretry 5;\ninitial-interval 1;\n").expect("conf");
    let leases = dir.0.join("leases");
    let pidfile = dir.0.join("pid");
    let args: Vec<String> = [
        "-4".as_ref(),
        "-v".as_ref(),
        "-cf".as_ref(),
        conf.as_os_str(),
        "-sf".as_ref(),
        script.as_os_str(),
        "-lf".as_ref(),
        leases.as_os_str(),
        "-pf".as_ref(),
        pidfile.as_os_str(),
    ]
    .iter()
    .map(|s| s.to_str().expect("utf-8 path").to_owned())
    .collect();
    with_engine(
        test,
        io,
        &["dhclient", "ip", "ethtool"],
        (DHCLIENT_SRV, 24),
        None,
        |ctx| {
            let log = dir.0.join("dhclient.log");
            let run = |extra: &[&str]| {
                let out = std::fs::File::create(&log).expect("log");
                let mut c = ctx.net.cli.cmd("dhclient");
                c.args(&args)
                    .args(extra)
                    .arg(VethPair::CLI_IF)
                    .stdin(Stdio::null())
                    .stdout(out.try_clone().expect("dup"))
                    .stderr(out);
                let mut g = ctx.net.cli.spawn(&mut c).expect("start dhclient");
                // `-1` without `-d`: returns once bound (the daemon stays) or after the timeout.
                let status = wait_for(Duration::from_secs(25), || {
                    g.child().try_wait().expect("wait")
                })
                .unwrap_or_else(|| panic!("dhclient {extra:?} hung: {}", read(&log)));
                (status, read(&log))
            };

            let (status, out) = run(&["-1"]);
            assert!(status.success(), "dhclient failed: {out}");
            let addr: Ipv4Addr = read(&events)
                .lines()
                .find_map(|l| l.strip_prefix("BOUND ")?.trim().parse().ok())
                .unwrap_or_else(|| panic!("no BOUND event: {:?}\n{out}", read(&events)));
            assert!(
                out.contains(&format!("bound to {addr}")),
                "dhclient output: {out}"
            );
            let bound = ctx.tables.by_addr(addr).expect("lease in the table");
            assert_eq!(
                bound.state_at(unix_now()),
                Some(LeaseState::Bound),
                "{bound:?}"
            );
            assert_eq!(ctx.tables.stats().bound, 1);

            // `-r`: stops the daemon (pid file) and sends a RELEASE.
            let (status, out) = run(&["-r"]);
            assert!(status.success(), "dhclient -r failed: {out}");
            let released = wait_for(Duration::from_secs(5), || {
                ctx.tables
                    .by_addr(addr)
                    .filter(|l| l.state == LeaseState::Released)
            })
            .unwrap_or_else(|| {
                panic!(
                    "lease not released: {:?}\n{out}\nevents: {}",
                    ctx.tables.by_addr(addr),
                    read(&events)
                )
            });
            assert_eq!(released.client, bound.client);
            assert_eq!(ctx.tables.stats().bound, 0);
            assert!(
                read(&events).lines().any(|l| l.starts_with("RELEASE")),
                "script saw RELEASE: {}",
                read(&events)
            );
        },
    );
}

#[test]
fn dhclient_bind_release_xdp() {
    dhclient_lifecycle("dhclient_bind_release_xdp", Io::Xdp);
}

#[test]
fn dhclient_bind_release_socket() {
    dhclient_lifecycle("dhclient_bind_release_socket", Io::Socket);
}

// ---------------------------------------------------------------------------------------------
// dhcpcd: bind, renew, release

const DHCPCD_SRV: Ipv4Addr = Ipv4Addr::new(10, 213, 24, 1);

fn dhcpcd_lifecycle(test: &str, io: Io) {
    let dir = TempDir::new(test);
    let events = dir.0.join("events");
    // dhcpcd configures the address itself; the script (in place of dhcpcd-run-hooks, so no
    // resolv.conf or route hooks run) only logs `$reason $new_ip_address`.
    let script = dir.script(
        "dhcpcd.sh",
        &format!(
            "#!/bin/sh\necho \"$reason $new_ip_address\" >> {}\nexit 0\n",
            events.display()
        ),
    );
    let conf = dir.0.join("dhcpcd.conf");
    // No ARP probe/announce (saves seconds), no IPv4LL fallback, no default route.
    std::fs::write(&conf, "ipv4only\nnoarp\nnoipv4ll\nnogateway\n").expect("conf");
    // dhcpcd keeps its DUID, leases and control socket in /var/lib/dhcpcd and /run/dhcpcd.
    // `ip netns exec` runs the command in a private mount namespace, so bind-mounting scratch
    // directories over both keeps this dhcpcd apart from any other one on the machine.
    let (lib, run) = (dir.0.join("lib"), dir.0.join("run"));
    for d in [&lib, &run] {
        std::fs::create_dir_all(d).expect("state dir");
    }
    let log = dir.0.join("dhcpcd.log");
    with_engine(
        test,
        io,
        &["dhcpcd", "ip", "ethtool"],
        (DHCPCD_SRV, 24),
        None,
        |ctx| {
            let out = std::fs::File::create(&log).expect("log");
            let mut cmd = ctx.net.cli.cmd("sh");
            cmd.arg("-c")
                .arg(
                    // The mount points may not exist yet: /run is a tmpfs, and a machine
                    // on which dhcpcd never ran has no /run/dhcpcd.
                    "mkdir -p /var/lib/dhcpcd /run/dhcpcd \
                     && mount --bind \"$0\" /var/lib/dhcpcd && mount --bind \"$1\" /run/dhcpcd \
                     && shift && exec \"$@\"",
                )
                .arg(&lib)
                .arg(&run)
                .arg("dhcpcd")
                .arg("-f")
                .arg(&conf)
                .arg("-c")
                .arg(&script)
                .args(["-4", "-B", "-d", "-t", "15", VethPair::CLI_IF])
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("dup"))
                .stderr(out);
            let mut child = ctx.net.cli.spawn(&mut cmd).expect("start dhcpcd");
            // `sh -c ... exec dhcpcd`: the child's pid is dhcpcd's (the privsep master, which
            // handles the signals).
            let pid = i32::try_from(child.child().id()).expect("pid");
            let lines = || read(&events).lines().map(str::to_owned).collect::<Vec<_>>();
            let diag = || format!("events: {:?}\nlog: {}", lines(), read(&log));

            let addr: Ipv4Addr = wait_for(Duration::from_secs(20), || {
                lines()
                    .iter()
                    .find_map(|l| l.strip_prefix("BOUND ")?.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("dhcpcd never bound; {}", diag()));
            let bound = ctx.tables.by_addr(addr).expect("lease in the table");
            assert_eq!(
                bound.state_at(unix_now()),
                Some(LeaseState::Bound),
                "{bound:?}"
            );
            assert_eq!(ctx.tables.stats().bound, 1);

            // SIGUSR1: renew (what `dhcpcd -N` asks over the control socket).
            thread::sleep(Duration::from_millis(1100));
            // SAFETY: kill(2) on our own, not yet reaped child.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
            wait_for(Duration::from_secs(10), || {
                lines()
                    .iter()
                    .any(|l| l.starts_with("RENEW "))
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("dhcpcd never renewed; {}", diag()));
            let renewed = ctx.tables.by_addr(addr).expect("lease in the table");
            assert_eq!(renewed.state_at(unix_now()), Some(LeaseState::Bound));
            assert_eq!(renewed.client, bound.client, "same client");
            assert!(
                renewed.expires > bound.expires,
                "renewal extended the lease: {bound:?} -> {renewed:?}"
            );

            // SIGALRM: release and exit (what `dhcpcd -k` asks).
            // SAFETY: as above.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGALRM) }, 0);
            let released = wait_for(Duration::from_secs(10), || {
                ctx.tables
                    .by_addr(addr)
                    .filter(|l| l.state == LeaseState::Released)
            })
            .unwrap_or_else(|| {
                panic!(
                    "lease not released: {:?}; {}",
                    ctx.tables.by_addr(addr),
                    diag()
                )
            });
            assert_eq!(released.client, bound.client);
            assert_eq!(ctx.tables.stats().bound, 0);
            let exited = wait_for(Duration::from_secs(5), || {
                child.child().try_wait().expect("wait")
            });
            assert!(
                exited.is_some(),
                "dhcpcd exited after releasing; {}",
                diag()
            );
        },
    );
}

#[test]
fn dhcpcd_bind_renew_release_xdp() {
    dhcpcd_lifecycle("dhcpcd_bind_renew_release_xdp", Io::Xdp);
}

#[test]
fn dhcpcd_bind_renew_release_socket() {
    dhcpcd_lifecycle("dhcpcd_bind_renew_release_socket", Io::Socket);
}

// perfdhcp as a relay: load, and no address bound twice

/// A /20: 4093 leasable addresses, room for perfdhcp's 2000 clients.
const PERF_SRV: Ipv4Addr = Ipv4Addr::new(10, 213, 32, 1);
const PERF_PREFIX: u8 = 20;
/// The relay (cli0) address: in the served subnet, so giaddr selects it.
const PERF_RELAY: Ipv4Addr = Ipv4Addr::new(10, 213, 47, 254);
const PERF_CLIENTS: usize = 2000;

/// `(sent, received)` of perfdhcp's statistics block `name` (e.g. `REQUEST-ACK`).
fn perf_stats(out: &str, name: &str) -> Option<(u64, u64)> {
    let block = out.split(&format!("Statistics for: {name}")).nth(1)?;
    let field = |key: &str| -> Option<u64> {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))?
            .trim()
            .parse()
            .ok()
    };
    Some((field("sent packets:")?, field("received packets:")?))
}

fn perfdhcp_relay_load(test: &str, io: Io) {
    with_engine(
        test,
        io,
        &["perfdhcp", "ethtool"],
        (PERF_SRV, PERF_PREFIX),
        Some(format!("{PERF_RELAY}/{PERF_PREFIX}")),
        |ctx| {
            let clients = PERF_CLIENTS.to_string();
            let server = PERF_SRV.to_string();
            let mut cmd = ctx.net.cli.cmd("perfdhcp");
            cmd.args([
                "-4",
                "-l",
                VethPair::CLI_IF,
                "-R",
                &clients,
                "-r",
                "500",
                "-p",
                "6",
                &server,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut g = ctx.net.cli.spawn(&mut cmd).expect("start perfdhcp");
            let status = wait_for(Duration::from_secs(30), || {
                g.child().try_wait().expect("wait")
            });
            let out = g.stop(Duration::from_secs(1)).expect("perfdhcp output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let status = status.unwrap_or_else(|| panic!("perfdhcp hung: {text}"));
            // Exit code 3: some packets were lost; anything else non-zero is a failure.
            assert!(
                status.success() || status.code() == Some(3),
                "perfdhcp failed ({status}): {text}"
            );
            let (sent, received) = perf_stats(&text, "REQUEST-ACK")
                .unwrap_or_else(|| panic!("no REQUEST-ACK statistics: {text}"));
            eprintln!("{test}: REQUEST-ACK sent {sent} received {received}");
            assert!(sent >= 1000, "perfdhcp sent few REQUESTs: {text}");
            assert!(
                received * 10 >= sent * 9,
                "only {received} of {sent} REQUESTs ACKed: {text}"
            );

            // No client holds two addresses and no address two clients.
            let now = unix_now();
            let bound: Vec<LeaseInfo> = pool(PERF_SRV, PERF_PREFIX)
                .filter_map(|a| ctx.tables.by_addr(a))
                .filter(|l| l.state_at(now) == Some(LeaseState::Bound))
                .collect();
            let mut per_client: HashMap<_, Vec<Ipv4Addr>> = HashMap::new();
            for l in &bound {
                per_client.entry(l.client).or_default().push(l.addr);
            }
            let doubles: Vec<_> = per_client.values().filter(|v| v.len() > 1).collect();
            assert!(doubles.is_empty(), "clients bound twice: {doubles:?}");
            let addrs: HashSet<Ipv4Addr> = bound.iter().map(|l| l.addr).collect();
            assert_eq!(addrs.len(), bound.len(), "an address listed twice");
            assert!(
                bound.len() as u64 >= received.min(PERF_CLIENTS as u64) * 9 / 10,
                "only {} leases bound after {received} ACKs",
                bound.len()
            );
            assert!(bound.len() <= PERF_CLIENTS, "more leases than clients");
            assert_eq!(
                ctx.tables.stats().bound,
                per_client.len() as u64,
                "bound count == distinct clients"
            );
            for l in &bound {
                let mine = ctx
                    .tables
                    .by_client(&l.client, l.subnet)
                    .expect("by_client");
                assert_eq!(mine.addr, l.addr, "by_client and by_addr agree");
            }
            if let Some(loader) = ctx.loader {
                let r = loader
                    .counters()
                    .expect("counters")
                    .get(Counter::Redirected);
                assert!(r >= sent, "relayed DHCP was steered by XDP ({r} < {sent})");
            }
        },
    );
}

#[test]
fn perfdhcp_relay_load_xdp() {
    perfdhcp_relay_load("perfdhcp_relay_load_xdp", Io::Xdp);
}

#[test]
fn perfdhcp_relay_load_socket() {
    perfdhcp_relay_load("perfdhcp_relay_load_socket", Io::Socket);
}

// ---------------------------------------------------------------------------------------------
// XDP attached: other traffic still reaches the kernel stack

const PASS_SRV: Ipv4Addr = Ipv4Addr::new(10, 213, 23, 1);
const PASS_CLI: Ipv4Addr = Ipv4Addr::new(10, 213, 23, 200);
const ECHO_PORT: u16 = 7007;

#[test]
fn ping_and_udp_pass_while_xdp_attached() {
    let test = "ping_and_udp_pass_while_xdp_attached";
    with_engine(
        test,
        Io::Xdp,
        &["busybox", "ethtool"],
        (PASS_SRV, 24),
        Some(format!("{PASS_CLI}/24")),
        |ctx| {
            // ICMP: answered by the server namespace's kernel (XDP_PASS).
            let ping = ctx
                .net
                .cli
                .output(
                    "busybox",
                    &["ping", "-c", "3", "-W", "1", &PASS_SRV.to_string()],
                )
                .expect("run ping");
            assert!(
                ping.status.success(),
                "ping failed: {}{}",
                String::from_utf8_lossy(&ping.stdout),
                String::from_utf8_lossy(&ping.stderr)
            );

            // UDP to another port: an echo socket in the server namespace (this thread is
            // inside it, and threads it spawns inherit it).
            let echo = UdpSocket::bind((PASS_SRV, ECHO_PORT)).expect("bind echo");
            echo.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let server = thread::spawn(move || {
                let mut buf = [0u8; 256];
                for _ in 0..3 {
                    let Ok((n, from)) = echo.recv_from(&mut buf) else {
                        return;
                    };
                    let _ = echo.send_to(&buf[..n], from);
                }
            });
            let replies = ctx
                .net
                .cli
                .enter(|| {
                    let s = UdpSocket::bind((PASS_CLI, 0)).expect("bind client");
                    s.set_read_timeout(Some(Duration::from_secs(2)))
                        .expect("timeout");
                    let mut got = Vec::new();
                    let mut buf = [0u8; 256];
                    for i in 0..3u8 {
                        let msg = [b'x', b'd', i];
                        s.send_to(&msg, (PASS_SRV, ECHO_PORT)).expect("send");
                        if let Ok((n, _)) = s.recv_from(&mut buf) {
                            got.push(buf[..n].to_vec());
                        }
                    }
                    got
                })
                .expect("enter cli");
            server.join().expect("echo thread");
            assert_eq!(
                replies,
                (0..3u8).map(|i| vec![b'x', b'd', i]).collect::<Vec<_>>(),
                "every UDP datagram was echoed"
            );
            let counters = ctx.loader.expect("xdp").counters().expect("counters");
            assert_eq!(
                counters.get(Counter::Redirected),
                0,
                "nothing but DHCP is redirected"
            );
        },
    );
}
