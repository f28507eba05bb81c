//! `cargo xtask demo [-- XDHCP-RUN-ARGS]`: real DHCP clients get leases from xdhcp, in
//! throw-away namespaces.
//!
//! ```text
//!  [xdhcp-demo-<pid>-srv]                        [xdhcp-demo-<pid>-cli]
//!    srv0 10.213.77.1/24  <===== veth =====>  cli0 ── macvlan d-dhclient / d-udhcpc / d-dhcpcd
//!    xdhcp run --iface srv0                              (one MAC each, one client each)
//! ```
//!
//! Nothing touches the root namespace; the namespaces (and every process in them) are removed on
//! the way out, also on error. The table at the end shows the lease each client got, then
//! xdhcp's own summary. (Renew and release with each client are covered by the tests in
//! `tests/`; here the clients do not even configure the address.)

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{
    build,
    setup::{self, Needs},
    util::{self, exec, exec_output},
};

const SRV_ADDR: &str = "10.213.77.1/24";
const CLIENTS: [&str; 3] = ["dhclient", "udhcpc", "dhcpcd"];

#[derive(Debug, clap::Args)]
pub struct Options {
    /// More arguments for `xdhcp run` (after `--`), e.g. `-- --io socket` or `-- --xdp-mode skb`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    if !util::is_root() {
        bail!("the demo creates network namespaces: run it as root");
    }
    setup::ensure(Needs::All)?;
    let bin = build::run(&build::Options {})?;
    let dir = std::env::temp_dir().join(format!("xdhcp-demo-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = demo(&bin, &dir, &opts.args);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn demo(bin: &Path, dir: &Path, args: &[String]) -> anyhow::Result<()> {
    let tag = format!("xdhcp-demo-{}", std::process::id());
    let srv = Netns::new(format!("{tag}-srv"))?;
    let cli = Netns::new(format!("{tag}-cli"))?;
    ip(&[
        "-n", &srv.0, "link", "add", "srv0", "type", "veth", "peer", "name", "cli0", "netns",
        &cli.0,
    ])?;
    ip(&["-n", &srv.0, "addr", "add", SRV_ADDR, "dev", "srv0"])?;
    ip(&["-n", &srv.0, "link", "set", "srv0", "up"])?;
    ip(&["-n", &cli.0, "link", "set", "cli0", "up"])?;

    let log_path = dir.join("xdhcp.log");
    let log = fs::File::create(&log_path)?;
    eprintln!(
        "demo: xdhcp run --iface srv0 {} (in {})",
        args.join(" "),
        srv.0
    );
    let mut server = Command::new("ip")
        .args(["netns", "exec", &srv.0])
        .arg(bin)
        .args(["run", "--iface", "srv0", "--lease-time", "600"])
        // The demo's own lease journal, removed with the rest of its files.
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting xdhcp")?;
    wait_until_serving(&mut server, &log_path)?;

    let mut rows = Vec::new();
    for (i, client) in CLIENTS.iter().enumerate() {
        let iface = format!("d-{client}");
        let mac = format!("02:13:77:00:00:{:02x}", i + 1);
        ip(&[
            "-n", &cli.0, "link", "add", &iface, "link", "cli0", "address", &mac, "type",
            "macvlan", "mode", "bridge",
        ])?;
        ip(&["-n", &cli.0, "link", "set", &iface, "up"])?;
        let got = lease(&cli, client, &iface, dir).unwrap_or_else(|e| format!("FAILED: {e:#}"));
        rows.push((*client, mac, got));
    }

    // SIGINT: xdhcp detaches its program, drains, and prints its summary.
    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.try_wait()?.is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();

    println!();
    println!("{:<10} {:<19} lease", "client", "MAC");
    for (client, mac, got) in &rows {
        println!("{client:<10} {mac:<19} {got}");
    }
    println!();
    println!("xdhcp log ({}):", log_path.display());
    print!("{}", fs::read_to_string(&log_path).unwrap_or_default());
    if rows.iter().any(|(_, _, got)| got.starts_with("FAILED")) {
        bail!("not every client got a lease");
    }
    Ok(())
}

fn wait_until_serving(server: &mut Child, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains("serving") {
            return Ok(());
        }
        if let Some(status) = server.try_wait()? {
            bail!("xdhcp exited ({status}) before serving:\n{text}");
        }
        if Instant::now() > deadline {
            bail!("xdhcp did not report serving within 15 s:\n{text}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Runs one client until it holds a lease and returns the address it got.
fn lease(cli: &Netns, client: &str, iface: &str, dir: &Path) -> anyhow::Result<String> {
    let out = |prog: &str, args: &[&str]| -> anyhow::Result<String> {
        let o = Command::new("timeout")
            .args(["30", "ip", "netns", "exec", &cli.0, prog])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {prog}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if !o.status.success() {
            bail!(
                "{prog} {} failed ({}): {}",
                args.join(" "),
                o.status,
                text.trim()
            );
        }
        Ok(text)
    };
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    match client {
        "udhcpc" => {
            // -q: quit once bound; the default script would configure the address: /bin/true.
            let text = out(
                "busybox",
                &[
                    "udhcpc",
                    "-i",
                    iface,
                    "-n",
                    "-q",
                    "-t",
                    "5",
                    "-T",
                    "2",
                    "-s",
                    "/bin/true",
                ],
            )?;
            after(&text, "lease of ").context("udhcpc printed no lease")
        }
        "dhclient" => {
            let (lf, pf) = (path("dhclient.leases"), path("dhclient.pid"));
            let common = ["-4", "-v", "-sf", "/bin/true", "-lf", &lf, "-pf", &pf];
            let text = out("dhclient", &[&common[..], &["-1", iface]].concat())?;
            // It stays in the background to renew; the namespace's removal ends it.
            after(&text, "bound to ").context("dhclient printed no lease")
        }
        "dhcpcd" => {
            let conf = path("dhcpcd.conf");
            fs::write(
                &conf,
                "ipv4only\nnoarp\nnoipv4ll\nnogateway\nnohook resolv.conf\n",
            )?;
            let text = out(
                "dhcpcd",
                &["-f", &conf, "-4", "-1", "-B", "-t", "20", iface],
            )?;
            let got = after(&text, "leased ").context("dhcpcd printed no lease")?;
            // dhcpcd keeps lease files in the root filesystem: leave nothing behind.
            let _ =
                fs::remove_file(PathBuf::from("/var/lib/dhcpcd").join(format!("{iface}.lease")));
            Ok(got)
        }
        other => bail!("unknown client {other}"),
    }
}

/// The word after `marker` in `text` (`"lease of 10.0.0.2 obtained"` -> `10.0.0.2`).
fn after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest.split_whitespace()
        .next()
        .map(|w| w.trim_end_matches(',').to_owned())
}

/// A namespace removed (after killing what runs in it) on drop.
struct Netns(String);

impl Netns {
    fn new(name: String) -> anyhow::Result<Self> {
        ip(&["netns", "add", &name])?;
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"])?;
        exec_output(Command::new("ip").args([
            "netns",
            "exec",
            &ns.0,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]))?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for signal in ["-TERM", "-KILL"] {
            let pids = exec_output(Command::new("ip").args(["netns", "pids", &self.0]))
                .unwrap_or_default();
            if pids.trim().is_empty() {
                break;
            }
            for pid in pids.split_whitespace() {
                let _ = Command::new("kill")
                    .args([signal, pid])
                    .stderr(Stdio::null())
                    .status();
            }
            thread::sleep(Duration::from_millis(300));
        }
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    exec(Command::new("ip").args(args))
}
