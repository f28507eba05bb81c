//! `cargo xtask bench compare`: xdhcp side by side with Kea, dnsmasq and ISC dhcpd, in one run.
//!
//! ```text
//!  [xdhcp-bc-<pid>-srv]                               [xdhcp-bc-<pid>-cli]
//!    srv0 10.213.0.1/12  <======== veth ========>  cli0 10.213.0.2/12
//!    server under test (one at a time, fresh)        xdhcp-load (AF_XDP, direct clients)
//!    or `xdhcp-load echo` (the ceiling)              perfdhcp (relay 10.213.0.2)
//! ```
//!
//! Why it is built this way:
//! * **Same slot, interleaved.** Every server runs in the same namespace on the same veth, with
//!   the same pool (10.213.1.0 - 10.213.255.254) and lease time, started fresh (empty lease
//!   file on the same disk, under the results directory) for each measurement; with `--reps`
//!   the servers take turns, so drift of a shared machine spreads over all of them.
//! * **Two generators.** xdhcp's own generator (`xdhcp-load`: direct clients, RFC 2131
//!   retransmission, HDR latency, duplicate check) and Kea's perfdhcp in relay mode, the tool
//!   people know; both print their figures into one table with one set of keys.
//! * **The ceiling.** `xdhcp-load echo` reflects every frame through AF_XDP on the server end:
//!   the most a DHCP server on this veth pair could answer with the same generator.
//! * **Nothing outside.** The namespaces are unique per run (`xdhcp-bc-<pid>`), removed by an
//!   RAII guard on every exit path, and namespaces left by a run that was killed are removed at
//!   the start of the next one (their pid no longer exists). eth0 and the root namespace are
//!   never touched.
//!
//! Results go to `target/bench-compare/<stamp>/`: `report.md` (machine, versions, exact
//! commands, table, ratios), `throughput.svg`, `avalanche.svg`, the raw output of every run.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, bail};

use crate::{
    bench, build,
    setup::{self, Needs},
    util::{self, cargo, exec, target_dir, workspace_root},
};

/// `cargo xtask bench [compare ...] [-- CRITERION-ARGS]`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCmd {
    #[command(subcommand)]
    sub: Option<BenchSub>,
    #[command(flatten)]
    criterion: bench::Options,
}

#[derive(Debug, clap::Subcommand)]
enum BenchSub {
    /// xdhcp (XDP and socket paths) vs Kea, dnsmasq and ISC dhcpd, driven by xdhcp-load and
    /// perfdhcp, plus the AF_XDP echo ceiling, in throw-away namespaces (root).
    Compare(Options),
}

pub fn dispatch(cmd: &BenchCmd) -> anyhow::Result<()> {
    match &cmd.sub {
        Some(BenchSub::Compare(o)) => run(o),
        None => bench::run(&cmd.criterion),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Clients per xdhcp-load run (each does one DORA; must fit the 65279-address pool).
    #[arg(long, default_value_t = 20_000)]
    pub clients: u32,
    /// Exchanges xdhcp-load keeps outstanding.
    #[arg(long, default_value_t = 512)]
    pub window: u32,
    /// Rounds over all servers (interleaved).
    #[arg(long, default_value_t = 1)]
    pub reps: u32,
    /// Seconds of each perfdhcp flood run and of each step of the rate searches.
    #[arg(long, default_value_t = 3)]
    pub perfdhcp_secs: u32,
    /// Skip the searches for the highest rate with <= 1 % loss (only the closed-loop and flood
    /// runs then).
    #[arg(long)]
    pub no_search: bool,
    /// Clients in the avalanche against xdhcp (the issue's goal is 1000000; the default is
    /// smaller so the command finishes in minutes on a small machine). 0 skips it.
    #[arg(long, default_value_t = 100_000)]
    pub avalanche_clients: u32,
    /// RFC 2131 retransmission delays are multiplied by this in the avalanche.
    #[arg(long, default_value_t = 0.05)]
    pub time_scale: f64,
    /// Servers, in order: xdhcp-xdp-w1, xdhcp-xdp-w2, xdhcp-xdp-w1-nosync, xdhcp-socket, kea,
    /// dnsmasq, iscdhcpd.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "xdhcp-xdp-w1,xdhcp-xdp-w2,xdhcp-xdp-w1-nosync,xdhcp-socket,kea,dnsmasq,iscdhcpd"
    )]
    pub servers: Vec<String>,
    /// Skip the perfdhcp runs.
    #[arg(long)]
    pub no_perfdhcp: bool,
    /// Results directory (default target/bench-compare/<stamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

const SRV_IP: &str = "10.213.0.1";
const CLI_IP: &str = "10.213.0.2";
const PREFIX: u32 = 12;
const NETMASK: &str = "255.240.0.0";
const NET: &str = "10.208.0.0";
const POOL_START: &str = "10.213.1.0";
const POOL_END: &str = "10.213.255.254";
const LEASE_TIME: u32 = 3600;
/// Row name of the AF_XDP echo responder.
const CEILING: &str = "afxdp-echo (ceiling)";
/// About 1.05 M addresses for the avalanche (the /12 without the two link addresses).
const AVALANCHE_RANGES: &str = r#"["10.208.0.10-10.212.255.254", "10.213.1.0-10.223.255.254"]"#;

// ---- the test bed ---------------------------------------------------------------------------

/// Two namespaces and the veth pair; removed (with every process in them) on drop.
struct Bed {
    srv: String,
    cli: String,
}

const NS_PREFIX: &str = "xdhcp-bc-";

impl Bed {
    fn new() -> anyhow::Result<Bed> {
        remove_stale_namespaces();
        let tag = format!("{NS_PREFIX}{}", std::process::id());
        let bed = Bed {
            srv: format!("{tag}-srv"),
            cli: format!("{tag}-cli"),
        };
        for ns in [&bed.srv, &bed.cli] {
            exec(Command::new("ip").args(["netns", "add", ns]))?;
        }
        let ip = |args: &[&str]| exec(Command::new("ip").args(args));
        ip(&[
            "-n", &bed.srv, "link", "add", "srv0", "type", "veth", "peer", "name", "cli0", "netns",
            &bed.cli,
        ])?;
        ip(&[
            "-n",
            &bed.srv,
            "addr",
            "add",
            &format!("{SRV_IP}/{PREFIX}"),
            "dev",
            "srv0",
        ])?;
        ip(&[
            "-n",
            &bed.cli,
            "addr",
            "add",
            &format!("{CLI_IP}/{PREFIX}"),
            "dev",
            "cli0",
        ])?;
        for (ns, dev) in [(&bed.srv, "srv0"), (&bed.cli, "cli0")] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            // Frames from kernel UDP sockets (perfdhcp, Kea's replies) over veth otherwise carry
            // unfinished checksums, which xdhcp's XDP path rightly drops (see README callouts).
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        Ok(bed)
    }

    fn srv(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.srv]).arg(program);
        c
    }

    fn cli(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.cli]).arg(program);
        c
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for ns in [&self.srv, &self.cli] {
            remove_namespace(ns);
        }
    }
}

fn remove_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status();
}

/// Namespaces of earlier runs whose xtask process is gone (killed before its guard ran).
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            eprintln!("compare: removing stale namespace {name}");
            remove_namespace(name);
        }
    }
}

// ---- servers ------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Server {
    Xdhcp {
        io: &'static str,
        workers: u32,
        fsync: bool,
    },
    Kea,
    Dnsmasq,
    Dhcpd,
    /// `xdhcp-load echo`: the AF_XDP ceiling of the link.
    Echo,
}

fn server_by_name(name: &str) -> anyhow::Result<Server> {
    Ok(match name {
        "xdhcp-xdp-w1" => Server::Xdhcp {
            io: "xdp",
            workers: 1,
            fsync: true,
        },
        "xdhcp-xdp-w2" => Server::Xdhcp {
            io: "xdp",
            workers: 2,
            fsync: true,
        },
        "xdhcp-xdp-w1-nosync" => Server::Xdhcp {
            io: "xdp",
            workers: 1,
            fsync: false,
        },
        "xdhcp-socket" => Server::Xdhcp {
            io: "socket",
            workers: 1,
            fsync: true,
        },
        "kea" => Server::Kea,
        "dnsmasq" => Server::Dnsmasq,
        "iscdhcpd" => Server::Dhcpd,
        other => bail!(
            "unknown server '{other}' (xdhcp-xdp-w1, xdhcp-xdp-w2, xdhcp-xdp-w1-nosync, \
             xdhcp-socket, kea, dnsmasq, iscdhcpd)"
        ),
    })
}

struct Bins {
    xdhcp: PathBuf,
    load: PathBuf,
}

/// A started server; stopped (TERM, then KILL) on drop.
struct Running {
    child: Child,
    name: String,
}

impl Running {
    fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.child.id())
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!("compare: {} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a process (all threads), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

struct Ctx<'a> {
    bed: &'a Bed,
    bins: &'a Bins,
    dir: PathBuf,
    commands: Vec<String>,
    seq: u32,
}

impl Ctx<'_> {
    fn record(&mut self, cmd: &Command) {
        let mut s = cmd.get_program().to_string_lossy().into_owned();
        for a in cmd.get_args() {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        self.commands.push(s);
    }

    /// Start `server` fresh in the server namespace, in its own directory; wait until ready.
    fn start(&mut self, server: &Server, name: &str, pool_ranges: &str) -> anyhow::Result<Running> {
        self.seq += 1;
        let dir = self.dir.join(format!("{:02}-{name}", self.seq));
        fs::create_dir_all(dir.join("lease"))?;
        let log = fs::File::create(dir.join("server.log"))?;
        let mut cmd = match server {
            Server::Xdhcp { io, workers, fsync } => {
                let cfg = dir.join("xdhcp.toml");
                fs::write(
                    &cfg,
                    format!(
                        "authoritative = true\ndurability = \"{}\"\nstate_dir = \"{}\"\n\
                         lease_time = {LEASE_TIME}\n\n[[subnet]]\nnetwork = \"{NET}/{PREFIX}\"\n\
                         server_id = \"{SRV_IP}\"\nrouters = [\"{SRV_IP}\"]\nranges = {pool_ranges}\n",
                        if *fsync { "fsync" } else { "none" },
                        dir.join("lease").display()
                    ),
                )?;
                let mut c = self.bed.srv(&self.bins.xdhcp);
                c.args(["run", "--iface", "srv0", "--config"])
                    .arg(&cfg)
                    .args(["--io", io, "--workers", &workers.to_string()])
                    .args(["--stats-interval", "0"]);
                c
            }
            Server::Echo => {
                let mut c = self.bed.srv(&self.bins.load);
                c.args(["echo", "--iface", "srv0"]);
                c
            }
            Server::Kea => {
                let cfg = dir.join("kea-dhcp4.json");
                fs::write(
                    &cfg,
                    format!(
                        r#"{{ "Dhcp4": {{
  "interfaces-config": {{ "interfaces": [ "srv0" ], "dhcp-socket-type": "raw" }},
  "lease-database": {{ "type": "memfile", "persist": true, "lfc-interval": 0,
                      "name": "{lease}" }},
  "authoritative": true,
  "valid-lifetime": {LEASE_TIME},
  "renew-timer": {t1},
  "rebind-timer": {t2},
  "subnet4": [ {{ "id": 1, "subnet": "{NET}/{PREFIX}",
                 "pools": [ {{ "pool": "{POOL_START} - {POOL_END}" }} ],
                 "option-data": [ {{ "name": "routers", "data": "{SRV_IP}" }} ] }} ],
  "loggers": [ {{ "name": "kea-dhcp4", "severity": "WARN",
                 "output_options": [ {{ "output": "{klog}" }} ] }} ]
}} }}
"#,
                        lease = dir.join("lease/kea-leases4.csv").display(),
                        t1 = LEASE_TIME / 2,
                        t2 = LEASE_TIME * 7 / 8,
                        klog = dir.join("kea.log").display()
                    ),
                )?;
                let mut c = self.bed.srv("kea-dhcp4");
                c.arg("-c").arg(&cfg);
                c.env("KEA_PIDFILE_DIR", &dir).env("KEA_LOCKFILE_DIR", &dir);
                c
            }
            Server::Dnsmasq => {
                fs::write(dir.join("lease/dnsmasq.leases"), "")?;
                let mut c = self.bed.srv("dnsmasq");
                c.args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--user=root",
                    "--group=root",
                    "--port=0",
                    "--no-resolv",
                    "--no-hosts",
                    "--interface=srv0",
                    "--bind-interfaces",
                    "--dhcp-authoritative",
                    "--no-ping",
                    "--quiet-dhcp",
                    "--dhcp-lease-max=1000000",
                ])
                .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
                .arg(format!(
                    "--dhcp-leasefile={}",
                    dir.join("lease/dnsmasq.leases").display()
                ))
                .arg(format!(
                    "--dhcp-range={POOL_START},{POOL_END},{NETMASK},{LEASE_TIME}"
                ))
                .arg(format!("--dhcp-option=option:router,{SRV_IP}"));
                c
            }
            Server::Dhcpd => {
                let cfg = dir.join("dhcpd.conf");
                // ping-check off: by default dhcpd pings every address before offering it
                // (about 1 s per new client), which would measure the ping, not the server.
                fs::write(
                    &cfg,
                    format!(
                        "authoritative;\nddns-update-style none;\nping-check false;\n\
                         default-lease-time {LEASE_TIME};\nmax-lease-time {LEASE_TIME};\n\
                         subnet {NET} netmask {NETMASK} {{\n  range {POOL_START} {POOL_END};\n  \
                         option routers {SRV_IP};\n}}\n"
                    ),
                )?;
                let leases = dir.join("lease/dhcpd.leases");
                fs::write(&leases, "")?;
                let mut c = self.bed.srv("dhcpd");
                c.args(["-4", "-f", "-cf"])
                    .arg(&cfg)
                    .arg("-lf")
                    .arg(&leases)
                    .arg("-pf")
                    .arg(dir.join("dhcpd.pid"))
                    .arg("srv0");
                c
            }
        };
        self.record(&cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let mut running = Running {
            child,
            name: name.to_owned(),
        };
        let ready_log = matches!(server, Server::Xdhcp { .. } | Server::Echo);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if !running.alive() {
                let log = fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                bail!("{name} exited during start-up:\n{}", tail(&log, 20));
            }
            let ready = if ready_log {
                let log = fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                log.contains("xdhcp serving") || log.contains("reflecting DHCP frames")
            } else {
                self.bed
                    .srv("ss")
                    .args(["-Hlun", "sport = :67"])
                    .output()
                    .is_ok_and(|o| !o.stdout.is_empty())
            };
            if ready {
                thread::sleep(Duration::from_millis(300));
                return Ok(running);
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} was not ready within 20 s (log: {})",
                    dir.join("server.log").display()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// One xdhcp-load run from the client namespace; returns its RESULT keys.
    fn load(&mut self, label: &str, extra: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
        let mut cmd = self.bed.cli(&self.bins.load);
        cmd.args(["run", "--iface", "cli0", "--label", label])
            .args(extra);
        self.record(&cmd);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .context("running xdhcp-load")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        fs::write(
            self.dir
                .join(format!("{:02}-{label}-xdhcp-load.txt", self.seq)),
            format!("{stderr}{stdout}"),
        )?;
        eprint!("{stderr}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .with_context(|| format!("xdhcp-load printed no RESULT line: {}", tail(&stderr, 10)))?;
        Ok(keys(line))
    }

    /// One perfdhcp run (relay mode, from 10.213.0.2) in its unlimited-rate mode.
    fn perfdhcp(&mut self, label: &str, secs: u32) -> anyhow::Result<BTreeMap<String, String>> {
        self.perfdhcp_at(label, secs, None)
    }

    /// One perfdhcp run at `rate` exchanges/s (`None`: unlimited).
    fn perfdhcp_at(
        &mut self,
        label: &str,
        secs: u32,
        rate: Option<f64>,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let mut cmd = self.bed.cli("perfdhcp");
        cmd.args(["-4", "-l", "cli0", "-R", "60000", "-p", &secs.to_string()]);
        if let Some(r) = rate {
            cmd.args(["-r", &format!("{r:.0}")]);
        }
        cmd.arg(SRV_IP);
        self.record(&cmd);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .context("running perfdhcp")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(
            self.dir
                .join(format!("{:02}-{label}-perfdhcp.txt", self.seq)),
            &text,
        )?;
        Ok(perfdhcp_keys(&text, secs))
    }

    /// The highest offered rate a server sustains with <= 1 % loss: double the rate from 1000/s
    /// until a step fails, then bisect twice between the last good and the first bad rate. Each
    /// step runs against a fresh server for `secs` seconds. Returns the best passing step (its
    /// measured rate) and every step for the report.
    fn search(
        &mut self,
        server: &Server,
        name: &str,
        pool: &str,
        secs: u32,
        tool: &str,
        prefix: u8,
    ) -> anyhow::Result<(Option<Row>, Vec<Step>)> {
        let mut steps = Vec::new();
        let mut best: Option<Row> = None;
        let mut good = 0.0f64;
        let mut bad = f64::INFINITY;
        let mut rate = 1000.0f64;
        let mut bisects = 0;
        loop {
            let srv = self.start(server, name, pool)?;
            let t0 = srv.cpu_ticks();
            let w = Instant::now();
            let kv = if tool == "perfdhcp" {
                self.perfdhcp_at(name, secs, Some(rate))?
            } else {
                let clients = ((rate * f64::from(secs)) as u32).clamp(1000, 60_000);
                let mut args: Vec<String> = vec![
                    "--rate".into(),
                    format!("{rate:.0}"),
                    "--duration".into(),
                    secs.to_string(),
                    "--clients".into(),
                    clients.to_string(),
                    "--time-scale".into(),
                    "0.1".into(),
                    "--drain".into(),
                    "1.5".into(),
                    "--mac-prefix".into(),
                    prefix.to_string(),
                ];
                if matches!(server, Server::Echo) {
                    args.push("--echo".into());
                }
                self.load(&format!("{name}-r{rate:.0}"), &args)?
            };
            let cpu = cpu_pct(srv.cpu_ticks() - t0, w.elapsed());
            drop(srv);
            let row = Row {
                server: name.to_owned(),
                driver: format!("{tool} <=1% loss"),
                kv,
                srv_cpu_pct: Some(cpu),
            };
            let loss = row_loss(&row);
            let achieved = row.f("exch_per_s").unwrap_or(0.0);
            let pass = loss <= 1.0 && achieved >= 0.9 * rate;
            eprintln!(
                "compare: {name} {tool} at {rate:.0}/s: {achieved:.0}/s, loss {loss:.2} % -> {}",
                if pass { "ok" } else { "over" }
            );
            steps.push(Step {
                server: name.to_owned(),
                tool: tool.to_owned(),
                offered: rate,
                achieved,
                loss,
                pass,
            });
            if pass {
                good = rate;
                if best
                    .as_ref()
                    .is_none_or(|b| b.f("exch_per_s").unwrap_or(0.0) < achieved)
                {
                    best = Some(row);
                }
            } else {
                bad = bad.min(rate);
            }
            if bad.is_infinite() {
                if rate >= 4_000_000.0 {
                    break;
                }
                rate *= 2.0;
            } else if good == 0.0 && rate > 150.0 {
                // Not even 1000/s: go down until something passes.
                rate /= 2.0;
            } else if bisects < 2 && good > 0.0 {
                bisects += 1;
                rate = (good * bad).sqrt();
            } else {
                break;
            }
        }
        Ok((best, steps))
    }
}

/// One step of a rate search.
#[derive(Clone, Debug)]
struct Step {
    server: String,
    tool: String,
    offered: f64,
    achieved: f64,
    loss: f64,
    pass: bool,
}

/// Loss for the <= 1 % criterion: for xdhcp-load, exchanges that needed a retransmission or
/// never completed; for perfdhcp, its drops.
fn row_loss(r: &Row) -> f64 {
    let started = r.f("started").unwrap_or(0.0);
    if started <= 0.0 {
        return 100.0;
    }
    match r.kv.get("tool").map(String::as_str) {
        Some("xdhcp-load") => {
            let lost =
                started - r.f("completed").unwrap_or(0.0) + r.f("retransmits").unwrap_or(0.0);
            // Several retransmissions of one exchange can exceed the exchanges started.
            (100.0 * lost / started).min(100.0)
        }
        _ => r.f("loss_pct").unwrap_or(100.0),
    }
}

/// `RESULT k=v ...` -> map.
fn keys(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// perfdhcp's report -> the generator's keys (what it has: rate, drops, avg/max delay).
fn perfdhcp_keys(text: &str, secs: u32) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut section = "";
    let mut v: BTreeMap<String, f64> = BTreeMap::new();
    for l in text.lines() {
        let l = l.trim();
        if let Some(r) = l.strip_prefix("Rate:") {
            if let Some(x) = r.split_whitespace().next() {
                m.insert("exch_per_s".to_owned(), x.to_owned());
            }
        } else if l.contains("DISCOVER-OFFER") {
            section = "do";
        } else if l.contains("REQUEST-ACK") {
            section = "ra";
        } else if let Some((k, rest)) = l.split_once(':') {
            let num = rest
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok());
            if let Some(x) = num {
                v.insert(format!("{section}_{}", k.replace(' ', "_")), x);
            }
        }
    }
    let get = |k: &str| v.get(k).copied().unwrap_or(0.0);
    let do_sent = get("do_sent_packets");
    let ra_rcvd = get("ra_received_packets");
    if do_sent > 0.0 {
        m.insert(
            "loss_pct".into(),
            format!("{:.3}", 100.0 * (1.0 - ra_rcvd / do_sent)),
        );
    }
    m.insert("completed".into(), format!("{ra_rcvd:.0}"));
    m.insert("started".into(), format!("{do_sent:.0}"));
    m.insert(
        "avg_us".into(),
        format!(
            "{:.0}",
            (get("do_avg_delay") + get("ra_avg_delay")) * 1000.0
        ),
    );
    m.insert(
        "max_us".into(),
        format!(
            "{:.0}",
            (get("do_max_delay") + get("ra_max_delay")) * 1000.0
        ),
    );
    m.insert("elapsed_s".into(), secs.to_string());
    m.insert("tool".into(), "perfdhcp".into());
    m
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---- the run ------------------------------------------------------------------------------

/// One measured row of the table.
#[derive(Clone, Debug)]
struct Row {
    server: String,
    driver: String,
    kv: BTreeMap<String, String>,
    /// Server CPU during the run, % of one core.
    srv_cpu_pct: Option<f64>,
}

impl Row {
    fn f(&self, k: &str) -> Option<f64> {
        self.kv.get(k).and_then(|v| v.parse().ok())
    }
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    if !util::is_root() {
        bail!(
            "the comparison creates network namespaces and attaches XDP programs: run it as root"
        );
    }
    if o.clients == 0 || o.clients > 65_000 {
        bail!("--clients must be 1..=65000 (the comparison pool has 65279 addresses)");
    }
    let servers: Vec<(String, Server)> = o
        .servers
        .iter()
        .map(|n| server_by_name(n).map(|s| (n.clone(), s)))
        .collect::<anyhow::Result<_>>()?;
    setup::ensure(Needs::All)?;
    let xdhcp = build::run(&build::Options {})?;
    // Same XDHCP_EBPF_OBJECT as the engine build, so the shared library is not rebuilt.
    let object = crate::build_ebpf::run(&crate::build_ebpf::Options { dev: false })?;
    exec(
        cargo()
            .args([
                "build",
                "--release",
                "--package",
                "xdhcp-benches",
                "--bin",
                "xdhcp-load",
            ])
            .env(build::ENV_OBJECT, &object),
    )?;
    let bins = Bins {
        xdhcp,
        load: target_dir().join("release/xdhcp-load"),
    };
    let stamp = stamp();
    let dir = o
        .out
        .clone()
        .unwrap_or_else(|| target_dir().join("bench-compare").join(&stamp));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("compare: results in {}", dir.display());

    let bed = Bed::new()?;
    let mut ctx = Ctx {
        bed: &bed,
        bins: &bins,
        dir: dir.clone(),
        commands: Vec::new(),
        seq: 0,
    };
    let pool = format!("[\"{POOL_START}-{POOL_END}\"]");
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let load_args = |prefix: u8| -> Vec<String> {
        vec![
            "--clients".into(),
            o.clients.to_string(),
            "--window".into(),
            o.window.to_string(),
            "--mac-prefix".into(),
            prefix.to_string(),
        ]
    };
    for rep in 0..o.reps {
        eprintln!("compare: round {} of {}", rep + 1, o.reps);
        // The ceiling: the same generator against an AF_XDP echo on the server end.
        {
            let srv = ctx.start(&Server::Echo, "echo", &pool)?;
            let t0 = srv.cpu_ticks();
            let w = Instant::now();
            let mut args = load_args(0x30);
            args.push("--echo".into());
            let kv = ctx.load("ceiling", &args)?;
            rows.push(Row {
                server: CEILING.into(),
                driver: "xdhcp-load window".into(),
                kv,
                srv_cpu_pct: Some(cpu_pct(srv.cpu_ticks() - t0, w.elapsed())),
            });
        }
        if !o.no_search {
            let (best, s) = ctx.search(
                &Server::Echo,
                CEILING,
                &pool,
                o.perfdhcp_secs,
                "xdhcp-load",
                0x31,
            )?;
            rows.extend(best);
            steps.extend(s);
        }
        for (i, (name, server)) in servers.iter().enumerate() {
            let prefix = 0x40 + 2 * i as u8;
            {
                let srv = ctx.start(server, name, &pool)?;
                let t0 = srv.cpu_ticks();
                let w = Instant::now();
                let kv = ctx.load(name, &load_args(prefix))?;
                rows.push(Row {
                    server: name.clone(),
                    driver: "xdhcp-load window".into(),
                    kv,
                    srv_cpu_pct: Some(cpu_pct(srv.cpu_ticks() - t0, w.elapsed())),
                });
            }
            if !o.no_search {
                let (best, s) = ctx.search(
                    server,
                    name,
                    &pool,
                    o.perfdhcp_secs,
                    "xdhcp-load",
                    prefix + 1,
                )?;
                rows.extend(best);
                steps.extend(s);
            }
            if !o.no_perfdhcp {
                let srv = ctx.start(server, name, &pool)?;
                let t0 = srv.cpu_ticks();
                let w = Instant::now();
                let kv = ctx.perfdhcp(name, o.perfdhcp_secs)?;
                rows.push(Row {
                    server: name.clone(),
                    driver: "perfdhcp flood".into(),
                    kv,
                    srv_cpu_pct: Some(cpu_pct(srv.cpu_ticks() - t0, w.elapsed())),
                });
                drop(srv);
                if !o.no_search {
                    let (best, s) =
                        ctx.search(server, name, &pool, o.perfdhcp_secs, "perfdhcp", 0)?;
                    rows.extend(best);
                    steps.extend(s);
                }
            }
        }
    }
    let mut avalanche = None;
    if o.avalanche_clients > 0 {
        let server = Server::Xdhcp {
            io: "xdp",
            workers: 1,
            fsync: true,
        };
        let srv = ctx.start(&server, "xdhcp-xdp-w1-avalanche", AVALANCHE_RANGES)?;
        let t0 = srv.cpu_ticks();
        let w = Instant::now();
        let csv = dir.join("avalanche.csv");
        let args: Vec<String> = vec![
            "--avalanche".into(),
            "--clients".into(),
            o.avalanche_clients.to_string(),
            "--time-scale".into(),
            o.time_scale.to_string(),
            "--max-tries".into(),
            "10".into(),
            "--mac-prefix".into(),
            "80".into(),
            "--progress-csv".into(),
            csv.display().to_string(),
        ];
        let kv = ctx.load("avalanche", &args)?;
        let row = Row {
            server: "xdhcp-xdp-w1".into(),
            driver: format!("xdhcp-load avalanche {}", o.avalanche_clients),
            kv,
            srv_cpu_pct: Some(cpu_pct(srv.cpu_ticks() - t0, w.elapsed())),
        };
        drop(srv);
        avalanche = Some((row, fs::read_to_string(&csv).unwrap_or_default()));
    }
    let commands = std::mem::take(&mut ctx.commands);
    drop(bed);

    let report = Report {
        o,
        rows: &rows,
        avalanche: avalanche.as_ref(),
        steps: &steps,
        commands: &commands,
        wall: started.elapsed(),
        dir: &dir,
    };
    let table = report.table();
    println!("{table}");
    println!("{}", report.ratios());
    fs::write(dir.join("throughput.svg"), report.throughput_svg())?;
    if let Some((_, csv)) = &avalanche {
        fs::write(dir.join("avalanche.svg"), avalanche_svg(csv))?;
    }
    fs::write(dir.join("report.md"), report.markdown(&table))?;
    eprintln!("compare: report {}", dir.join("report.md").display());
    Ok(())
}

fn cpu_pct(ticks: u64, wall: Duration) -> f64 {
    // USER_HZ is 100 on every Linux architecture that matters here.
    100.0 * (ticks as f64 / 100.0) / wall.as_secs_f64().max(1e-3)
}

fn stamp() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y%m%d-%H%M%S"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty());
    out.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string()
    })
}

// ---- reporting ----------------------------------------------------------------------------

struct Report<'a> {
    o: &'a Options,
    rows: &'a [Row],
    avalanche: Option<&'a (Row, String)>,
    steps: &'a [Step],
    commands: &'a [String],
    wall: Duration,
    dir: &'a Path,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

impl Report<'_> {
    /// (server, driver) -> rows, in first-seen order.
    fn groups(&self) -> Vec<(String, String, Vec<&Row>)> {
        let mut out: Vec<(String, String, Vec<&Row>)> = Vec::new();
        for r in self.rows {
            match out
                .iter_mut()
                .find(|(s, d, _)| *s == r.server && *d == r.driver)
            {
                Some(g) => g.2.push(r),
                None => out.push((r.server.clone(), r.driver.clone(), vec![r])),
            }
        }
        out
    }

    fn med(rows: &[&Row], k: &str) -> Option<f64> {
        median(rows.iter().filter_map(|r| r.f(k)).collect())
    }

    fn rate(&self, server: &str, driver: &str) -> Option<f64> {
        self.groups()
            .into_iter()
            .find(|(s, d, _)| s == server && d == driver)
            .and_then(|(_, _, rows)| Self::med(&rows, "exch_per_s"))
    }

    fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "| server | generator, mode | DORA/s (median of {}) | loss % | p50 µs | p99 µs | max µs | dup addrs | server CPU % |",
            self.o.reps
        );
        let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
        let fmt =
            |v: Option<f64>, d: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.d$}"));
        for (s, d, rows) in self.groups() {
            let p50 = Self::med(&rows, "p50_us");
            let avg = Self::med(&rows, "avg_us");
            let _ = writeln!(
                t,
                "| {s} | {d} | {} | {} | {} | {} | {} | {} | {} |",
                fmt(Self::med(&rows, "exch_per_s"), 0),
                fmt(median(rows.iter().map(|r| row_loss(r)).collect()), 2),
                match (p50, avg) {
                    (Some(p), _) => format!("{p:.0}"),
                    (None, Some(a)) => format!("avg {a:.0}"),
                    _ => "-".into(),
                },
                fmt(Self::med(&rows, "p99_us"), 0),
                fmt(Self::med(&rows, "max_us"), 0),
                fmt(Self::med(&rows, "dup_addrs"), 0),
                fmt(
                    median(rows.iter().filter_map(|r| r.srv_cpu_pct).collect()),
                    0
                ),
            );
        }
        t
    }

    fn ratios(&self) -> String {
        let mut t = String::from(
            "Ratios (same generator, same run; '<=1% loss' = highest offered rate sustained with \
             at most 1 % of exchanges retransmitted or lost):\n",
        );
        let best_xdhcp = |driver: &str| {
            ["xdhcp-xdp-w1", "xdhcp-xdp-w2"]
                .iter()
                .filter_map(|s| self.rate(s, driver).map(|r| (*s, r)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        };
        for driver in [
            "xdhcp-load <=1% loss",
            "perfdhcp <=1% loss",
            "xdhcp-load window",
            "perfdhcp flood",
        ] {
            if let (Some((s, x)), Some(k)) = (best_xdhcp(driver), self.rate("kea", driver)) {
                let _ = writeln!(
                    t,
                    "  {s} / kea ({driver}): {x:.0} / {k:.0} = {:.1}x (goal >= 30x)",
                    x / k
                );
            }
        }
        for driver in ["xdhcp-load <=1% loss", "xdhcp-load window"] {
            if let (Some((s, x)), Some(c)) = (best_xdhcp(driver), self.rate(CEILING, driver)) {
                let _ = writeln!(
                    t,
                    "  {s} / AF_XDP echo ceiling ({driver}): {x:.0} / {c:.0} = {:.0} % (goal >= 80 %)",
                    100.0 * x / c
                );
            }
        }
        for driver in ["xdhcp-load <=1% loss", "xdhcp-load window"] {
            let r = |s: &str| self.rate(s, driver);
            if let (Some(a), Some(b)) = (r("xdhcp-xdp-w1"), r("xdhcp-xdp-w2")) {
                let _ = writeln!(
                    t,
                    "  2 workers / 1 worker ({driver}): {b:.0} / {a:.0} = {:.2}x",
                    b / a
                );
            }
            if let (Some(a), Some(b)) = (r("xdhcp-xdp-w1"), r("xdhcp-xdp-w1-nosync")) {
                let _ = writeln!(
                    t,
                    "  fsync / no fsync, 1 worker ({driver}): {a:.0} / {b:.0} = {:.0} %",
                    100.0 * a / b
                );
            }
            if let (Some(a), Some(b)) = (r("xdhcp-xdp-w1"), r("xdhcp-socket")) {
                let _ = writeln!(
                    t,
                    "  XDP / socket path ({driver}): {a:.0} / {b:.0} = {:.2}x",
                    a / b
                );
            }
        }
        if let Some((row, _)) = self.avalanche {
            let _ = writeln!(
                t,
                "  avalanche of {} clients: {} completed, 50 % after {} s, 99 % after {} s, all after {} s, {} retransmits, {} duplicates",
                self.o.avalanche_clients,
                row.kv.get("completed").map_or("-", String::as_str),
                row.kv.get("t50_s").map_or("-", String::as_str),
                row.kv.get("t99_s").map_or("-", String::as_str),
                row.kv.get("converge_s").map_or("-", String::as_str),
                row.kv.get("retransmits").map_or("-", String::as_str),
                row.kv.get("dup_addrs").map_or("-", String::as_str),
            );
        }
        t
    }

    fn steps_table(&self) -> String {
        let mut t = String::from(
            "| server | generator | offered /s | achieved /s | loss % | within 1 % |\n|---|---|---:|---:|---:|---|\n",
        );
        for s in self.steps {
            let _ = writeln!(
                t,
                "| {} | {} | {:.0} | {:.0} | {:.2} | {} |",
                s.server,
                s.tool,
                s.offered,
                s.achieved,
                s.loss,
                if s.pass { "yes" } else { "no" }
            );
        }
        t
    }

    fn throughput_svg(&self) -> String {
        let groups = self.groups();
        let bars: Vec<(String, f64)> = groups
            .iter()
            .map(|(s, d, rows)| {
                (
                    format!("{s} · {d}"),
                    Self::med(rows, "exch_per_s").unwrap_or(0.0),
                )
            })
            .collect();
        bar_svg("Sustained DORA exchanges per second", &bars)
    }

    fn markdown(&self, table: &str) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "# xdhcp bench compare — {}\n", self.dir.display());
        let _ = writeln!(
            m,
            "Generated by `cargo xtask bench compare` in {:.0} s. Every server ran fresh in the \
             same namespace on the same veth pair (srv0 {SRV_IP}/{PREFIX} ↔ cli0 {CLI_IP}), pool \
             {POOL_START} - {POOL_END}, lease time {LEASE_TIME} s, lease files on the same disk \
             (under this directory). xdhcp-load: {} direct clients, {} outstanding, AF_XDP. \
             perfdhcp: relay mode from {CLI_IP}, flood and paced (search), {} s per run.\n",
            self.wall.as_secs_f64(),
            self.o.clients,
            self.o.window,
            self.o.perfdhcp_secs
        );
        let _ = writeln!(m, "## Machine\n\n```\n{}```\n", machine());
        let _ = writeln!(m, "## Versions\n\n```\n{}```\n", versions());
        let _ = writeln!(m, "## Results\n\n{table}\n```\n{}```\n", self.ratios());
        let _ = writeln!(m, "![throughput](throughput.svg)\n");
        if !self.steps.is_empty() {
            let _ = writeln!(m, "## Rate searches\n\n{}", self.steps_table());
        }
        if self.avalanche.is_some() {
            let _ = writeln!(
                m,
                "## Avalanche\n\n{} clients start at once against xdhcp (XDP, 1 worker, fsync), \
                 retransmitting per RFC 2131 §4.1 (4 s doubling to 64 s, ±1 s) scaled by {}.\n\n\
                 ![avalanche](avalanche.svg)\n",
                self.o.avalanche_clients, self.o.time_scale
            );
        }
        let _ = writeln!(
            m,
            "## Notes\n\n\
             * Modes. `xdhcp-load window`: {} clients, each one DORA, at most {} exchanges \
             outstanding, real RFC 2131 retransmission (4 s): a server that drops frames pays \
             for it in the rate, as it would with real clients. `<=1% loss`: the highest offered \
             rate (doubling from 1000/s, then two bisections; fresh server per step; {} s per \
             step) at which at most 1 % of exchanges needed a retransmission (xdhcp-load, \
             retransmission after 0.4 s) or were dropped (perfdhcp); the DORA/s shown is the rate \
             measured at that step. `perfdhcp flood`: perfdhcp without -r; its drops are largely \
             its own (it saturates near 10 k/s on this machine).\n\
             * DORA/s for xdhcp-load is the sustained rate (slope between 10 % and 90 % of \
             completions); perfdhcp's is its `Rate:` line. Loss for xdhcp-load counts exchanges \
             retransmitted or never completed; for perfdhcp 1 - ACKs / DISCOVERs sent. perfdhcp \
             has no percentiles: its column shows the sum of its average DISCOVER-OFFER and \
             REQUEST-ACK delays (and of the maxima).\n\
             * server CPU % is the server process's user + system time over the run, in % of one \
             core. The machine has 2 cores: generator and server share them (and anything else \
             running), so every figure here is a floor, not a NIC-limited maximum.\n\
             * `xdhcp-xdp-w1-nosync` runs with `durability = \"none\"`; all other xdhcp rows \
             fsync every ACKed lease before sending the ACK (group commit). Kea's memfile does \
             not fsync; dnsmasq rewrites its lease file; ISC dhcpd fsyncs its lease file.\n",
            self.o.clients, self.o.window, self.o.perfdhcp_secs
        );
        let _ = writeln!(m, "## Commands\n\n```");
        for c in self.commands {
            let _ = writeln!(m, "{c}");
        }
        let _ = writeln!(
            m,
            "```\n\nRaw output of every run: the `NN-*.txt` files here."
        );
        m
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        })
        .unwrap_or_else(|e| format!("({cmd}: {e})"))
}

fn machine() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "kernel: {}", sh("uname", &["-srm"]).trim());
    let cpu = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("?", |(_, v)| v.trim());
    let _ = writeln!(s, "cpu: {model}, {} online", sh("nproc", &[]).trim());
    let mem = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let _ = writeln!(s, "{}", mem.lines().next().unwrap_or("").trim());
    let _ = writeln!(
        s,
        "load before the report: {}",
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let df = sh("df", &["-hT", &target_dir().display().to_string()]);
    let _ = writeln!(s, "results disk:\n{}", df.trim_end());
    s
}

fn versions() -> String {
    let first = |s: String| {
        s.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let mut s = String::new();
    let root = workspace_root();
    let rev = sh(
        "git",
        &[
            "-C",
            &root.display().to_string(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let dirty = !sh(
        "git",
        &["-C", &root.display().to_string(), "status", "--porcelain"],
    )
    .trim()
    .is_empty();
    let _ = writeln!(
        s,
        "xdhcp: {}{}",
        rev.trim(),
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "rustc: {}", first(sh("rustc", &["-V"])));
    let _ = writeln!(s, "kea-dhcp4: {}", first(sh("kea-dhcp4", &["-V"])));
    let _ = writeln!(s, "perfdhcp: {}", first(sh("perfdhcp", &["-v"])));
    let _ = writeln!(s, "dnsmasq: {}", first(sh("dnsmasq", &["--version"])));
    let _ = writeln!(s, "dhcpd: {}", first(sh("dhcpd", &["--version"])));
    s
}

/// A horizontal bar chart, written by hand (no plotting dependency).
fn bar_svg(title: &str, bars: &[(String, f64)]) -> String {
    let max = bars.iter().map(|b| b.1).fold(1.0, f64::max);
    let (left, width, row) = (330.0, 420.0, 26.0);
    let h = 50.0 + row * bars.len() as f64 + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="860" height="{h:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15">{}</text>"#,
        esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 40.0 + row * i as f64;
        let w = width * v / max;
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text><rect x="{left}" y="{:.0}" width="{w:.1}" height="18" fill="#3b7dd8"/><text x="{:.0}" y="{:.0}">{v:.0}</text>"##,
            left - 8.0,
            y + 13.0,
            esc(label),
            y,
            left + w + 6.0,
            y + 13.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The avalanche's convergence curve (completed clients over time) from xdhcp-load's CSV.
fn avalanche_svg(csv: &str) -> String {
    let pts: Vec<(f64, f64)> = csv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (a, b) = l.split_once(',')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    let tmax = pts.iter().map(|p| p.0).fold(1e-3, f64::max);
    let cmax = pts.iter().map(|p| p.1).fold(1.0, f64::max);
    let (x0, y0, w, h) = (70.0, 30.0, 700.0, 300.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="820" height="380" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="18" font-size="15">Avalanche: clients bound over time</text>"#
    );
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="black"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{:.0}" stroke="black"/>"#,
        y0 + h,
        x0 + w,
        y0 + h,
        y0 + h
    );
    let _ = writeln!(
        s,
        r#"<text x="{x0}" y="{:.0}">0</text><text x="{:.0}" y="{:.0}" text-anchor="end">{tmax:.2} s</text><text x="{:.0}" y="{:.0}" text-anchor="end">{cmax:.0}</text>"#,
        y0 + h + 16.0,
        x0 + w,
        y0 + h + 16.0,
        x0 - 4.0,
        y0 + 10.0
    );
    let mut path = format!("M{x0:.1},{:.1}", y0 + h);
    for (t, c) in &pts {
        let _ = write!(
            path,
            " L{:.1},{:.1}",
            x0 + w * t / tmax,
            y0 + h - h * c / cmax
        );
    }
    let _ = writeln!(
        s,
        r##"<path d="{path}" fill="none" stroke="#d83b3b" stroke-width="2"/>"##
    );
    s.push_str("</svg>\n");
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfdhcp_report_is_converted() {
        let text = "Rate: 7161.89 4-way exchanges/second\n***Statistics for: DISCOVER-OFFER***\n\
                    sent packets: 1000\nreceived packets: 900\ndrops: 100\navg delay: 3.475 ms\n\
                    max delay: 38.729 ms\n***Statistics for: REQUEST-ACK***\nsent packets: 900\n\
                    received packets: 800\navg delay: 20.425 ms\nmax delay: 296.105 ms\n";
        let k = perfdhcp_keys(text, 5);
        assert_eq!(k["exch_per_s"], "7161.89");
        assert_eq!(k["loss_pct"], "20.000");
        assert_eq!(k["completed"], "800");
        assert_eq!(k["avg_us"], "23900");
        assert_eq!(k["max_us"], "334834");
    }

    #[test]
    fn result_lines_become_maps() {
        let k = keys("RESULT tool=xdhcp-load label=x exch_per_s=123 converge_s=-");
        assert_eq!(k["exch_per_s"], "123");
        assert_eq!(k["converge_s"], "-");
        assert!(!k.contains_key("RESULT"));
    }

    #[test]
    fn svg_is_well_formed_enough() {
        let s = bar_svg("t <x>", &[("a & b".into(), 10.0), ("c".into(), 0.0)]);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("a &amp; b") && s.contains("t &lt;x&gt;"));
        let a = avalanche_svg("seconds,completed\n0.5,10\n1.0,20\n");
        assert!(a.contains(" L"));
    }
}
