//! Shared helpers for xdhcp's integration tests (`tests/tests/*.rs`): tests that need root,
//! network namespaces, the compiled XDP object and real DHCP clients.
//!
//! - [`netns`]: [`netns::NetNs`] and [`netns::VethPair`] RAII guards (unique names, torn down even
//!   on panic), running commands and closures inside a namespace.
//! - [`bpf`]: `BPF_PROG_TEST_RUN` for the XDP program.
//! - [`frames`]: builders for DHCP, ARP, IPv6, VLAN-tagged frames (independent of the engine's
//!   parser, so it can serve as an oracle).
//! - [`raw`]: an `AF_PACKET` socket to inject hand-built frames on an interface and read replies.
//! - [`xsk_socket`]: a bare AF_XDP socket, enough to occupy an XSKMAP slot.
//! - [`spawn_workers`]: the engine's worker threads over a set of datapaths, one each.
//! - [`attach_xdp`]: the XDP program on the veth pair's server end, steering to sockets.
//! - [`require_root`] / [`ebpf_object`]: the skip-or-fail policy below.
//!
//! # Skip or fail
//!
//! These tests need root and, for the XDP ones, the object built by `cargo xtask build-ebpf`
//! (`cargo xtask test` builds it and passes its path in `XDHCP_EBPF_OBJECT`). When a requirement
//! is missing, a test calls [`require_root`] / [`ebpf_object`], which
//! - under `CI=true` **panic** (the test fails: CI must never skip silently);
//! - otherwise print a `SKIP` note to stderr and return `None`/`false`, so a plain
//!   `cargo test` as an ordinary user still passes the rest.

pub mod bpf;
pub mod frames;
pub mod netns;
pub mod raw;

use std::{
    io::{self, Write as _},
    os::fd::{FromRawFd as _, OwnedFd},
    path::PathBuf,
};

/// Env var naming the compiled XDP object (set by `cargo xtask test`).
pub const ENV_OBJECT: &str = "XDHCP_EBPF_OBJECT";

/// `true` under CI (`CI` set to anything but `""`, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Reports a missing requirement: panics under CI, otherwise prints a skip note.
///
/// # Panics
/// Under CI, always (that is the point).
pub fn missing(test: &str, what: &str) {
    if in_ci() {
        panic!("{test}: {what} (CI=true: tests that need it must run, never skip)");
    }
    // Straight to fd 2: the test harness captures `eprintln!`, and a skip must be visible.
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {test}: {what} (run `cargo xtask test` as root to run it)"
    );
}

/// `true` if running as root; otherwise see [`missing`].
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    missing(test, "needs root (network namespaces, BPF)");
    false
}

/// The bytes of the compiled XDP object named by `XDHCP_EBPF_OBJECT`; otherwise see [`missing`].
///
/// # Panics
/// Under CI when the variable is unset or the file unreadable.
pub fn ebpf_object(test: &str) -> Option<Vec<u8>> {
    let Some(path) = std::env::var_os(ENV_OBJECT)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
    else {
        missing(
            test,
            &format!("needs the XDP object ({ENV_OBJECT} is not set)"),
        );
        return None;
    };
    match std::fs::read(&path) {
        Ok(bytes) if !bytes.is_empty() => Some(bytes),
        Ok(_) => {
            missing(test, &format!("{ENV_OBJECT}={} is empty", path.display()));
            None
        }
        Err(e) => {
            missing(
                test,
                &format!("cannot read {ENV_OBJECT}={}: {e}", path.display()),
            );
            None
        }
    }
}

/// Env var naming the built `xdhcp` binary (set by `cargo xtask test`).
pub const ENV_BIN: &str = "XDHCP_BIN";

/// The `xdhcp` binary named by `XDHCP_BIN`, for tests that run it as a separate process (to
/// kill it, say); otherwise see [`missing`].
///
/// # Panics
/// Under CI when the variable is unset or names no file.
pub fn xdhcp_bin(test: &str) -> Option<PathBuf> {
    match std::env::var_os(ENV_BIN).map(PathBuf::from) {
        Some(p) if p.is_file() => Some(p),
        Some(p) => {
            missing(test, &format!("{ENV_BIN}={} is not a file", p.display()));
            None
        }
        None => {
            missing(
                test,
                &format!("needs the xdhcp binary ({ENV_BIN} is not set)"),
            );
            None
        }
    }
}

/// A new, unbound AF_XDP socket.
///
/// The kernel accepts it into an XSKMAP slot, which is all a `BPF_PROG_TEST_RUN` needs for
/// `bpf_redirect_map` to find the slot occupied and return `XDP_REDIRECT` (a test run never
/// delivers the frame). Real workers use the engine's `xsk` module.
///
/// # Errors
/// `socket(2)` failed (no AF_XDP support, or no privileges).
pub fn xsk_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the fd is checked before use.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Load the XDP program on the veth pair's server end (`srv0`) in `mode`, register `sockets`
/// (one rx queue, `sockets.len()` workers on it) and attach it: what every AF_XDP test does
/// before it starts workers. `local` is the server's own address (unicast renewals to it are
/// steered too). Returns the loader (detach it at the end) and the mode it attached in.
///
/// # Panics
/// Loading, registering or attaching fails.
pub fn attach_xdp(
    object: &[u8],
    sockets: &[xdhcp::xsk::XskSocket],
    mode: xdhcp::loader::XdpMode,
    local: std::net::Ipv4Addr,
) -> (xdhcp::loader::Loader, xdhcp::loader::XdpMode) {
    let mut opts = xdhcp::loader::LoadOptions::new(netns::VethPair::SRV_IF);
    opts.mode = mode;
    opts.workers_per_queue = u32::try_from(sockets.len()).expect("a few sockets");
    opts.local_addrs = vec![local];
    let mut loader = xdhcp::loader::Loader::prepare(object, &opts).expect("load XDP program");
    for s in sockets {
        loader
            .register_socket(s.queue(), s.slot(), s)
            .expect("register");
    }
    let attached = loader.attach().expect("attach");
    (loader, attached)
}

/// One engine worker per datapath (worker `i` drives `paths[i]`), polling every 10 ms when idle
/// so that tests stop quickly.
///
/// # Panics
/// The OS refused to create a thread.
pub fn spawn_workers<H, D>(
    handler: std::sync::Arc<H>,
    paths: Vec<D>,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> xdhcp::worker::Workers<H::Stats>
where
    H: xdhcp::worker::FrameHandler,
    D: xdhcp::worker::Datapath + 'static,
{
    let assignments = paths
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut c = xdhcp::worker::WorkerConfig::new(i);
            c.idle_ms = 10;
            (c, vec![p])
        })
        .collect();
    xdhcp::worker::Workers::spawn(handler, assignments, std::sync::Arc::clone(stop))
        .expect("spawn workers")
}
