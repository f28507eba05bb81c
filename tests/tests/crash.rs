//! Durability under `kill -9` (issue: durable leases, crash test).
//!
//! A relay in the client namespace runs DORA for fresh clients as fast as the server answers
//! while the test kills the `xdhcp` process with SIGKILL at random moments, 20 times, restarting
//! it each time on the same state directory (`durability = "fsync"`). Every ACK the relay saw is
//! recorded. At the end the server is started once more and every recorded client asks for its
//! address back (INIT-REBOOT REQUEST, RFC 2131 §4.3.2): each must get an ACK for exactly that
//! address — not a NAK, not silence — and no address may ever have been ACKed to two clients.
//!
//! The longer soak is `cargo xtask soak` (same scenario, more rounds).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use xdhcp_tests::frames::{DHCPDISCOVER, DHCPREQUEST, bootrequest};
use xdhcp_tests::netns::{ChildGuard, VethOptions, VethPair};
use xdhcp_tests::{require_root, xdhcp_bin};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const DHCPOFFER: u8 = 2;
const DHCPACK: u8 = 5;

/// Kill rounds (the issue asks for at least 20 in the test suite).
fn rounds() -> usize {
    std::env::var("XDHCP_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

struct StateDir(PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Addresses in the pool of [`config`] (10.78.1.0 - 10.78.200.255).
const POOL: usize = 200 * 256;

fn config(state: &Path) -> String {
    format!(
        "durability = \"fsync\"\nstate_dir = \"{}\"\nlease_time = 3600\nserver_id = \"10.78.0.1\"\n\n[[subnet]]\nnetwork = \"10.78.0.0/16\"\nranges = [\"10.78.1.0-10.78.200.255\"]\n",
        state.display()
    )
}

fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0x78, b[0], b[1], b[2], b[3]]
}

/// A relayed request with options 50 (requested address) and, when selecting, 54 (server id).
fn request(chaddr: [u8; 6], xid: u32, want: Ipv4Addr, server: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = bootrequest(DHCPREQUEST, chaddr, xid, Ipv4Addr::UNSPECIFIED, RELAY);
    m.truncate(243); // header + cookie + option 53
    m.extend_from_slice(&[50, 4]);
    m.extend_from_slice(&want.octets());
    if let Some(s) = server {
        m.extend_from_slice(&[54, 4]);
        m.extend_from_slice(&s.octets());
    }
    m.push(255);
    m.resize(300, 0);
    m
}

/// (message type, xid, yiaddr, chaddr, server id) of a BOOTREPLY.
type Reply = (u8, u32, Ipv4Addr, [u8; 6], Option<Ipv4Addr>);

fn parse(b: &[u8]) -> Option<Reply> {
    if b.len() < 240 || b[0] != 2 || b[236..240] != [99, 130, 83, 99] {
        return None;
    }
    let xid = u32::from_be_bytes(b[4..8].try_into().ok()?);
    let yiaddr = Ipv4Addr::new(b[16], b[17], b[18], b[19]);
    let chaddr: [u8; 6] = b[28..34].try_into().ok()?;
    let (mut mtype, mut sid) = (0, None);
    let mut i = 240;
    while i < b.len() {
        match b[i] {
            0 => i += 1,
            255 => break,
            code => {
                let len = usize::from(*b.get(i + 1)?);
                let v = b.get(i + 2..i + 2 + len)?;
                match (code, len) {
                    (53, 1) => mtype = v[0],
                    (54, 4) => sid = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
                    _ => {}
                }
                i += 2 + len;
            }
        }
    }
    Some((mtype, xid, yiaddr, chaddr, sid))
}

/// Send `msgs` (xid -> payload) and collect replies until every xid answered or `wait` passed.
fn exchange(
    sock: &UdpSocket,
    msgs: &[(u32, Vec<u8>)],
    wait: Duration,
) -> HashMap<u32, (u8, Ipv4Addr, [u8; 6], Option<Ipv4Addr>)> {
    let to = SocketAddrV4::new(SERVER, 67);
    for (_, m) in msgs {
        let _ = sock.send_to(m, to);
    }
    let mut got = HashMap::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1500];
    while got.len() < msgs.len() && Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf)
            && let Some((t, xid, yi, ch, sid)) = parse(&buf[..n])
            && msgs.iter().any(|(x, _)| *x == xid)
        {
            got.insert(xid, (t, yi, ch, sid));
        }
    }
    got
}

/// What the relay saw acknowledged: client number -> address, and every (address, client) ACK.
#[derive(Default)]
struct Seen {
    acked: HashMap<u32, Ipv4Addr>,
    holder: HashMap<Ipv4Addr, u32>,
    double: Vec<(Ipv4Addr, u32, u32)>,
}

/// One window of `n` fresh clients: DISCOVER, then REQUEST for what was offered.
fn dora_window(sock: &UdpSocket, first: u32, n: u32, seen: &mut Seen) {
    let discovers: Vec<(u32, Vec<u8>)> = (first..first + n)
        .map(|c| {
            (
                c,
                bootrequest(DHCPDISCOVER, mac(c), c, Ipv4Addr::UNSPECIFIED, RELAY),
            )
        })
        .collect();
    let offers = exchange(sock, &discovers, Duration::from_millis(300));
    let requests: Vec<(u32, Vec<u8>)> = offers
        .iter()
        .filter(|(_, (t, ..))| *t == DHCPOFFER)
        .map(|(&c, &(_, yi, _, sid))| (c, request(mac(c), c, yi, sid)))
        .collect();
    for (c, (t, yi, ch, _)) in exchange(sock, &requests, Duration::from_millis(300)) {
        if t != DHCPACK || ch != mac(c) {
            continue;
        }
        seen.acked.insert(c, yi);
        if let Some(&other) = seen.holder.get(&yi)
            && other != c
        {
            seen.double.push((yi, other, c));
        }
        seen.holder.insert(yi, c);
    }
}

/// Start `xdhcp run --io IO` on the server end with `how` (`--config FILE`, or `--state-dir DIR`
/// for the zero-config mode), its log appended to `log`.
fn start(net: &VethPair, bin: &Path, io: &str, how: [&Path; 2], log: &Path) -> ChildGuard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut cmd = net.srv.cmd(bin);
    cmd.args(["run", "--iface", VethPair::SRV_IF, "--io", io])
        .args(how)
        .args(["--workers", "2", "--stats-interval", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    net.srv.spawn(&mut cmd).expect("start xdhcp")
}

/// xorshift: reproducible random kill moments without a dependency (seed printed).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// What both tests need: the namespaces, a state directory (removed on drop), the server's log
/// file and the relay's socket (UDP 67 on the client end).
struct Bed {
    /// `--io` of the server: `socket`, or `xdp` (ACKs held in AF_XDP TX frames).
    io: &'static str,
    net: VethPair,
    state: StateDir,
    log: PathBuf,
    sock: UdpSocket,
    bin: PathBuf,
}

impl Bed {
    /// `None` when the test must skip (not root, no binary; a failure under CI).
    fn new(test: &str, io: &'static str) -> Option<Bed> {
        if !require_root(test) {
            return None;
        }
        let bin = xdhcp_bin(test)?;
        let net = VethPair::new(
            test,
            &VethOptions {
                srv_addr: Some(format!("{SERVER}/16")),
                cli_addr: Some(format!("{RELAY}/16")),
                ..VethOptions::default()
            },
        )
        .expect("veth pair");
        if io == "xdp" {
            // The relay's kernel UDP socket leaves partial checksums on a veth, which the AF_XDP
            // path counts as bad (README: checksum offload on veth).
            net.cli
                .run("ethtool", &["-K", VethPair::CLI_IF, "tx", "off"])
                .expect("ethtool -K cli0 tx off");
        }
        let state =
            StateDir(std::env::temp_dir().join(format!("xdhcp-{test}-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&state.0);
        std::fs::create_dir_all(&state.0).expect("state dir");
        let log = state.0.join("xdhcp.log");
        let sock = net
            .cli
            .enter(|| UdpSocket::bind(SocketAddrV4::new(RELAY, 67)))
            .expect("enter cli")
            .expect("bind relay port");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        Some(Bed {
            io,
            net,
            state,
            log,
            sock,
            bin,
        })
    }

    fn start(&self, how: [&Path; 2]) -> ChildGuard {
        start(&self.net, &self.bin, self.io, how, &self.log)
    }
}

#[test]
fn acked_leases_survive_kill_9_and_no_address_is_given_twice() {
    let Some(bed) = Bed::new("crash", "socket") else {
        return;
    };
    let cfg = bed.state.0.join("xdhcp.toml");
    std::fs::write(&cfg, config(&bed.state.0.join("leases"))).expect("config");
    let (sock, log) = (&bed.sock, &bed.log);

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("crash test seed {seed}");
    let mut seen = Seen::default();
    let mut next_client = 1u32;
    // New clients one life may take: every life must find free addresses, however fast the
    // server binds (a fast one filled the whole pool by the 17th of 20 lives).
    let per_life = POOL / rounds().max(1);
    for round in 0..rounds() {
        let mut server = bed.start([Path::new("--config"), &cfg]);
        // Serve for a random while (at least until the first ACK of this life, at most
        // `per_life` new leases), then SIGKILL in the middle of whatever it is doing.
        let life = Duration::from_millis(100 + next(&mut seed) % 700);
        let before = seen.acked.len();
        let born = Instant::now();
        while ((born.elapsed() < life && seen.acked.len() - before < per_life)
            || seen.acked.len() == before)
            && born.elapsed() < Duration::from_secs(20)
        {
            if let Ok(Some(status)) = server.child().try_wait() {
                panic!(
                    "round {round}: xdhcp exited ({status}): {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            dora_window(sock, next_client, 32, &mut seen);
            next_client += 32;
        }
        assert!(
            seen.acked.len() > before,
            "round {round}: the restarted server acknowledged nothing; log: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        if let Ok(Some(status)) = server.child().try_wait() {
            panic!(
                "round {round}: xdhcp exited by itself ({status}); see {}",
                log.display()
            );
        }
        drop(server); // SIGKILL + reap
    }
    assert!(
        seen.double.is_empty(),
        "addresses ACKed to two clients: {:?}",
        seen.double
    );

    // Final life: every client gets its address back.
    let server = bed.start([Path::new("--config"), &cfg]);
    let lost = lost_leases(sock, &seen);
    let out = server.stop(Duration::from_secs(5)).expect("stop");
    let log_text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged leases lost after {} kills (client, address, reply type/address): {:?}\nlog tail: {}",
        lost.len(),
        seen.acked.len(),
        rounds(),
        &lost[..lost.len().min(10)],
        &log_text[log_text.len().saturating_sub(3000)..]
    );
    eprintln!(
        "crash test: {} kills, {} leases acknowledged, all restored ({:?})",
        rounds(),
        seen.acked.len(),
        out.status
    );
}

/// A lease that did not come back: client, address, and the reply's type and address if any.
type Lost = (u32, Ipv4Addr, Option<(u8, Ipv4Addr)>);

/// Every client of `seen` asks for its address back (INIT-REBOOT); returns those that did not
/// get an ACK for exactly it.
fn lost_leases(sock: &UdpSocket, seen: &Seen) -> Vec<Lost> {
    let mut lost = Vec::new();
    let clients: Vec<(u32, Ipv4Addr)> = seen.acked.iter().map(|(&c, &a)| (c, a)).collect();
    for chunk in clients.chunks(64) {
        let msgs: Vec<(u32, Vec<u8>)> = chunk
            .iter()
            .map(|&(c, a)| (c, request(mac(c), c, a, None)))
            .collect();
        // The first chunk may race the start-up: retry what is unanswered for a while.
        let mut answers = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while answers.len() < msgs.len() && Instant::now() < deadline {
            let pending: Vec<(u32, Vec<u8>)> = msgs
                .iter()
                .filter(|(c, _)| !answers.contains_key(c))
                .cloned()
                .collect();
            answers.extend(exchange(sock, &pending, Duration::from_millis(300)));
        }
        for &(c, a) in chunk {
            match answers.get(&c) {
                Some(&(DHCPACK, yi, ..)) if yi == a => {}
                other => lost.push((c, a, other.map(|o| (o.0, o.1)))),
            }
        }
    }
    lost
}

/// Issue 4 §1: without a configuration file (serving the interface's own subnet) the leases
/// are journaled in `--state-dir` too, and a restart restores them; served through AF_XDP, so
/// the held-ACK path of the XDP datapath runs here too.
#[test]
fn zero_config_mode_restores_leases_after_a_restart() {
    // Through AF_XDP: the ACKs wait for the journal in TX frames (`XskSocket::release_held`).
    let Some(bed) = Bed::new("crashz", "xdp") else {
        return;
    };
    let (sock, log) = (&bed.sock, &bed.log);
    let leases = bed.state.0.join("leases");
    let how = [Path::new("--state-dir"), leases.as_path()];
    let mut seen = Seen::default();
    let server = bed.start(how);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next_client = 1;
    while seen.acked.len() < 100 && Instant::now() < deadline {
        dora_window(sock, next_client, 32, &mut seen);
        next_client += 32;
    }
    assert!(
        seen.acked.len() >= 100,
        "zero-config served {} clients; log: {}",
        seen.acked.len(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    server.stop(Duration::from_secs(5)).expect("stop");
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        text.contains("io=\"xdp\"") && text.contains("durability=Fsync"),
        "served through AF_XDP with the fsync journal: {text}"
    );
    let server = bed.start(how);
    let lost = lost_leases(sock, &seen);
    server.stop(Duration::from_secs(5)).expect("stop");
    assert!(
        lost.is_empty(),
        "{} of {} leases lost across a restart: {:?}\nlog: {}",
        lost.len(),
        seen.acked.len(),
        &lost[..lost.len().min(10)],
        std::fs::read_to_string(log).unwrap_or_default()
    );
    assert!(seen.double.is_empty(), "{:?}", seen.double);
}
