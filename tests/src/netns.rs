//! Throw-away network namespaces and veth pairs, removed even when a test panics.
//!
//! Every network test runs inside namespaces it creates itself: nothing is added to the root
//! namespace, eth0 is never touched, and traffic stays on the veth pair. The guards here make
//! that cheap to get right:
//!
//! - [`NetNs`]: one namespace with a unique name (`xdhcp-<tag>-<pid>-<n>`), loopback up. On drop
//!   it ends the processes still running inside it (by pid, from `ip netns pids`) and deletes it,
//!   which also destroys every interface in it. Drop runs during unwinding, so a failing
//!   assertion cleans up too. Namespaces left by a test process that was SIGKILLed are swept by
//!   the next [`NetNs::new`] (their pid is dead).
//! - [`VethPair`]: two namespaces, `srv` and `cli`, joined by a veth pair created directly inside
//!   them (interface names `srv0` / `cli0` can be fixed because they live in private
//!   namespaces). Options for MTU, queue count (multi-queue veth) and addresses.
//! - [`NetNs::cmd`] / [`NetNs::run`] / [`NetNs::spawn`]: run a program inside the namespace
//!   (`ip netns exec`); [`ChildGuard`] kills a spawned process on drop.
//! - [`NetNs::enter`]: run a closure on a thread that has joined the namespace (`setns`), for code
//!   that must open sockets or look up interfaces there (AF_XDP sockets, `BPF_PROG_TEST_RUN`
//!   with an ingress interface, the engine's loader).
//!
//! Example (needs root):
//!
//! ```no_run
//! use xdhcp_tests::netns::{VethOptions, VethPair};
//! let net = VethPair::new("demo", &VethOptions { srv_addr: Some("10.213.0.1/24".into()),
//!     cli_addr: Some("10.213.0.2/24".into()), ..VethOptions::default() })?;
//! net.cli.run("ping", &["-c1", "-W1", "10.213.0.1"])?;
//! # anyhow::Ok(())
//! ```

use std::{
    ffi::OsStr,
    fs::File,
    os::fd::AsRawFd,
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::Duration,
};

use anyhow::{Context as _, bail};

/// Prefix of every namespace these guards create.
const PREFIX: &str = "xdhcp-";
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace owned by the test; deleted (with everything in it) on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `xdhcp-<tag>-<pid>-<n>` with loopback up and IPv6 off (no RS/DAD chatter).
    ///
    /// # Errors
    /// `ip netns add` failed (not root?).
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        sweep_stale();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{tag}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        // From here on the guard owns it: an error below still deletes it.
        let ns = NetNs { name };
        ns.run("ip", &["link", "set", "lo", "up"])?;
        for key in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            ns.run("sysctl", &["-qw", key])?;
        }
        Ok(ns)
    }

    /// The namespace's name (for `ip -n NAME ...`, `ip netns exec NAME ...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program` inside the namespace (`ip netns exec NAME program`).
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `program args...` inside the namespace and returns its stdout.
    ///
    /// # Errors
    /// It could not be started or exited non-zero (the error carries its stderr).
    pub fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .cmd(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting {program} in {}", self.name))?;
        check_output(&out, &format!("{program} {}", args.join(" ")), &self.name)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `program args...` inside the namespace and returns its output, whatever its status.
    ///
    /// # Errors
    /// It could not be started.
    pub fn output(&self, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        self.cmd(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting {program} in {}", self.name))
    }

    /// Starts `cmd` (typically from [`NetNs::cmd`]) and returns a guard that kills it on drop.
    ///
    /// # Errors
    /// It could not be started.
    pub fn spawn(&self, cmd: &mut Command) -> anyhow::Result<ChildGuard> {
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {cmd:?} in {}", self.name))?;
        Ok(ChildGuard { child: Some(child) })
    }

    /// Runs `f` on a new thread that has joined this namespace, and returns its result.
    ///
    /// Sockets opened and interfaces looked up inside `f` belong to the namespace; the calling
    /// thread's namespace is never changed. A panic in `f` is propagated.
    ///
    /// # Errors
    /// The namespace could not be joined.
    pub fn enter<F, R>(&self, f: F) -> anyhow::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let path = Path::new("/run/netns").join(&self.name);
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        thread::scope(|s| {
            let handle = s.spawn(move || -> anyhow::Result<R> {
                // SAFETY: `file` is an open nsfs file for the duration of the call, and setns
                // only changes this (scoped, short-lived) thread's network namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(std::io::Error::last_os_error()).context("setns(CLONE_NEWNET)");
                }
                Ok(f())
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// The index of `iface` in this namespace.
    ///
    /// # Errors
    /// No such interface.
    pub fn ifindex(&self, iface: &str) -> anyhow::Result<u32> {
        let out = self.run("cat", &[&format!("/sys/class/net/{iface}/ifindex")])?;
        out.trim()
            .parse()
            .with_context(|| format!("ifindex of {iface} in {}: {out:?}", self.name))
    }

    /// Ends the processes running inside the namespace (TERM, then KILL after a grace period).
    pub fn kill_all(&self) {
        for signal in [libc::SIGTERM, libc::SIGKILL] {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: kill(2) on a pid `ip netns pids` reported inside our own namespace.
                unsafe { libc::kill(pid, signal) };
            }
            thread::sleep(Duration::from_millis(300));
        }
    }

    fn pids(&self) -> Vec<i32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .filter(|&p: &i32| p > 1 && p != std::process::id() as i32)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.kill_all();
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: could not delete netns {}: {e:#}", self.name);
        }
    }
}

/// How to build a [`VethPair`].
#[derive(Clone, Debug)]
pub struct VethOptions {
    pub mtu: u32,
    /// rx and tx queues on each end (a multi-queue veth delivers a frame to the rx queue the
    /// sender used).
    pub queues: u32,
    /// Address with prefix (`"10.213.0.1/24"`) for `srv0`, if any.
    pub srv_addr: Option<String>,
    /// Address with prefix for `cli0`, if any.
    pub cli_addr: Option<String>,
}

impl Default for VethOptions {
    fn default() -> Self {
        Self {
            mtu: 1500,
            queues: 1,
            srv_addr: None,
            cli_addr: None,
        }
    }
}

/// Two namespaces joined by a veth pair: `srv0` in `srv`, `cli0` in `cli`. Both removed on drop.
#[derive(Debug)]
pub struct VethPair {
    // Dropped in order: cli first, then srv (deleting either destroys the pair).
    pub cli: NetNs,
    pub srv: NetNs,
}

impl VethPair {
    /// Interface name of the server end (inside `srv`).
    pub const SRV_IF: &'static str = "srv0";
    /// Interface name of the client end (inside `cli`).
    pub const CLI_IF: &'static str = "cli0";

    /// Creates both namespaces and the pair, sets MTU and addresses and brings both ends up.
    ///
    /// # Errors
    /// Any `ip` command failed (everything created so far is removed).
    pub fn new(tag: &str, opts: &VethOptions) -> anyhow::Result<Self> {
        let srv = NetNs::new(&format!("{tag}-s"))?;
        let cli = NetNs::new(&format!("{tag}-c"))?;
        let q = opts.queues.max(1).to_string();
        let mtu = opts.mtu.to_string();
        // Created inside `srv`, peer moved straight into `cli`: never visible in the root ns.
        ip(&[
            "-n",
            srv.name(),
            "link",
            "add",
            Self::SRV_IF,
            "mtu",
            &mtu,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            Self::CLI_IF,
            "netns",
            cli.name(),
            "mtu",
            &mtu,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ])?;
        let pair = VethPair { cli, srv };
        for (ns, iface, addr) in [
            (&pair.srv, Self::SRV_IF, &opts.srv_addr),
            (&pair.cli, Self::CLI_IF, &opts.cli_addr),
        ] {
            if let Some(addr) = addr {
                ip(&["-n", ns.name(), "addr", "add", addr, "dev", iface])?;
            }
            ip(&["-n", ns.name(), "link", "set", iface, "up"])?;
        }
        Ok(pair)
    }
}

/// A child process killed (SIGKILL) and reaped on drop, unless it has already exited.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    /// The child, e.g. to read its pid or take its stdout.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("present until drop")
    }

    /// Sends SIGTERM and waits up to `grace` for it to exit, then SIGKILL; returns its output.
    ///
    /// # Errors
    /// Waiting failed.
    pub fn stop(mut self, grace: Duration) -> anyhow::Result<Output> {
        let mut child = self.child.take().expect("present until drop");
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid; it has not been reaped yet (we hold it).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        Ok(child.wait_with_output()?)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2 installed? `cargo xtask setup`)")?;
    check_output(
        &out,
        &format!("ip {}", args.join(" ")),
        "the root namespace",
    )
}

fn check_output(out: &Output, what: &str, where_: &str) -> anyhow::Result<()> {
    if !out.status.success() {
        bail!(
            "`{what}` in {where_} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Deletes `xdhcp-*-<pid>-<n>` namespaces whose creating process no longer exists.
fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let mut parts = rest.rsplitn(3, '-');
        let (Some(_n), Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let ns = NetNs { name };
            drop(ns);
        }
    }
}
