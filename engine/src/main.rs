//! The `xdhcp` command: `xdhcp run --iface IFACE ...` serves DHCPv4 on an interface;
//! `xdhcp check-config FILE` validates a configuration and prints what it would serve.
//!
//! `run` wires the pieces together: look the interface up, check privileges (each failure says
//! how to fix it), build the configuration (file, or zero-config from the interface's own
//! subnet), the lease tables and the engine. For `--io xdp` it then loads and attaches the XDP
//! program — which passes every frame to the kernel while its socket map is empty (fail-open) —
//! opens the AF_XDP sockets of every rx queue in a bind mode that suits the attach mode (generic
//! XDP gets copy mode), puts them into the map and starts the workers. SIGINT/SIGTERM detach the
//! program first (frames fall back to the kernel), then the workers drain what is already queued
//! and stop, and a summary line is logged.

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use xdhcp::config::{self, Durability, ServerConfig, ZeroConfig};
use xdhcp::journal::{Journal, JournalConfig, JournalStats, OfflineWriter, files};
use xdhcp::lease::LeaseTables;
use xdhcp::leasefile;
use xdhcp::loader::{self, LoadOptions, Loader, XdpMode};
use xdhcp::netif::{self, Interface};
use xdhcp::socket::{PacketPath, PortGuard};
use xdhcp::worker::{self, DhcpHandler, FrameHandler, IoStats, Plan, WorkerConfig, Workers};
use xdhcp::xsk::{self, BindMode, QueueConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "xdhcp",
    version,
    about = "Kernel-bypass DHCPv4 server (XDP + AF_XDP)"
)]
struct Cli {
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve DHCPv4 on an interface.
    Run(RunArgs),
    /// Validate a configuration file and print a summary of what it serves.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Move leases in and out of the state directory (ISC dhcpd and Kea formats).
    #[command(subcommand)]
    Leases(LeasesCmd),
}

#[derive(Debug, Subcommand)]
enum LeasesCmd {
    /// Import an ISC dhcpd.leases or Kea lease4 CSV file into the state directory (xdhcp must
    /// not be running on it). Streams the file; prints what was skipped and why.
    Import {
        /// `isc` (dhcpd.leases) or `kea` (Kea memfile lease4 CSV).
        #[arg(long)]
        format: leasefile::Format,
        /// The configuration whose subnets decide which addresses are served.
        #[arg(short, long)]
        config: PathBuf,
        /// State directory (default: the configuration's `state_dir`).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// The lease file.
        file: PathBuf,
    },
    /// Write every lease of the state directory as a Kea lease4 CSV (also while xdhcp runs;
    /// nothing is changed).
    Export {
        /// Only `kea` for now.
        #[arg(long, default_value = "kea")]
        format: leasefile::Format,
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// The packet I/O backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Io {
    /// XDP steering + AF_XDP sockets (kernel bypass).
    #[default]
    Xdp,
    /// AF_PACKET sockets through the kernel (works everywhere; the baseline).
    Socket,
}

/// `--durability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DurabilityArg {
    Fsync,
    None,
}

/// How AF_XDP sockets bind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum XskMode {
    /// Zero-copy if the driver supports it, otherwise copy.
    #[default]
    Auto,
    Copy,
    ZeroCopy,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Interface to serve (see `ip link`).
    #[arg(short, long)]
    iface: String,
    /// Configuration file; without it, serve the interface's own IPv4 subnet.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// How to attach the XDP program.
    #[arg(long, value_enum, default_value_t = XdpMode::Auto)]
    xdp_mode: XdpMode,
    /// Packet I/O: AF_XDP (kernel bypass) or kernel packet sockets.
    #[arg(long, value_enum, default_value_t = Io::Xdp)]
    io: Io,
    /// Worker threads (default: one per usable CPU).
    #[arg(short, long)]
    workers: Option<u32>,
    /// Lease time in seconds when serving without a configuration file.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    lease_time: u32,
    /// Directory for lease state (overrides the configuration's `state_dir`; default
    /// /var/lib/xdhcp).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Lease durability (overrides the configuration's `durability`): `fsync` sends an ACK only
    /// once its lease is on disk; `none` journals without waiting (a crash may lose the last
    /// moments).
    #[arg(long, value_enum)]
    durability: Option<DurabilityArg>,
    /// Start even though journal files are damaged: keep every valid record (damaged files are
    /// kept as *.corrupt). Without it, damage other than a torn last write stops start-up.
    #[arg(long)]
    salvage: bool,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value_t = XskMode::Auto)]
    xsk_mode: XskMode,
    /// UMEM frames (2 KiB each) per rx queue: half receive, half shared out for replies. ACKs
    /// wait in their TX frames until the journal's fsync, so at high rates with a slow disk
    /// raise this if `io_dropped` grows.
    #[arg(long, default_value_t = 8192)]
    umem_frames: u32,
    /// Pin worker i to the i-th usable CPU.
    #[arg(long)]
    pin_cpus: bool,
    /// Seconds between statistics log lines (0 = only at exit).
    #[arg(long, default_value_t = 10)]
    stats_interval: u64,
}

const DEFAULT_STATE_DIR: &str = "/var/lib/xdhcp";
const FRAME_SIZE: u32 = 2048;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run(&args, cli.verbose),
        Command::CheckConfig { file } => check_config(&file),
        Command::Leases(cmd) => leases(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdhcp: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn leases(cmd: LeasesCmd) -> anyhow::Result<()> {
    let load = |config: &Path, state_dir: Option<PathBuf>| -> anyhow::Result<_> {
        let mut cfg = config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(d) = state_dir {
            cfg.state_dir = d;
        }
        let tables = LeaseTables::new(&cfg, 8);
        Ok((cfg, tables))
    };
    let now = worker::unix_now();
    match cmd {
        LeasesCmd::Import {
            format,
            config,
            state_dir,
            file,
        } => {
            let (cfg, tables) = load(&config, state_dir)?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let total = f.metadata().map(|m| m.len()).unwrap_or(0);
            let mut sink = OfflineWriter::open(&cfg.state_dir)
                .map_err(|e| anyhow::anyhow!("lease state: {e}"))?;
            let mut progress = leasefile::progress_bar(total);
            let report = leasefile::import(
                format,
                std::io::BufReader::with_capacity(1 << 20, f),
                &tables,
                now,
                &mut sink,
                &mut progress,
            )
            .with_context(|| format!("importing {}", file.display()))?;
            println!("{}: {report}", file.display());
            println!(
                "imported into {}; start xdhcp with this state directory to serve them",
                cfg.state_dir.display()
            );
            Ok(())
        }
        LeasesCmd::Export {
            format,
            config,
            state_dir,
            output,
        } => {
            if format != leasefile::Format::Kea {
                bail!("export writes Kea lease4 CSV only (--format kea)");
            }
            let (cfg, tables) = load(&config, state_dir)?;
            let (r, _) = files::recover(&cfg.state_dir, &tables, now, files::Access::ReadOnly)
                .map_err(|e| anyhow::anyhow!("lease state: {e}"))?;
            let mut records = Vec::new();
            let mut cursor = Some(0);
            let out: Box<dyn std::io::Write> = match &output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            // Stream the tables in chunks: never a second copy of every lease.
            let chunks = std::iter::from_fn(|| {
                let from = cursor?;
                records.clear();
                cursor = tables.records(from, 1 << 16, &mut records);
                Some(std::mem::take(&mut records))
            })
            .flatten();
            let report = leasefile::export_kea(chunks, now, &mut |_| None, out)
                .context("writing the export")?;
            eprintln!(
                "exported {} leases ({} deletion rows) of {} restored; {} skipped{}",
                report.written,
                report.deleted,
                r.applied,
                report.skipped,
                report
                    .examples
                    .first()
                    .map(|(a, why)| format!(" (e.g. {a}: {why:?})"))
                    .unwrap_or_default()
            );
            Ok(())
        }
    }
}

fn check_config(file: &Path) -> anyhow::Result<()> {
    let cfg = config::load(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}: OK", file.display());
    print!("{}", describe(&cfg));
    Ok(())
}

/// Human summary of a configuration (check-config output, startup log).
fn describe(cfg: &ServerConfig) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let pool: u64 = cfg.subnets.iter().map(|s| s.pool_size()).sum();
    let reservations: usize = cfg.subnets.iter().map(|s| s.reservations.len()).sum();
    let _ = writeln!(
        out,
        "{} subnet(s), {} dynamic address(es), {} reservation(s), {} shared network(s), authoritative: {}",
        cfg.subnets.len(),
        pool,
        reservations,
        cfg.shared_networks.len(),
        cfg.authoritative
    );
    for s in &cfg.subnets {
        let links = if s.links.is_empty() {
            String::new()
        } else {
            let l: Vec<String> = s
                .links
                .iter()
                .map(|l| match (l.outer, l.inner) {
                    (None, _) => "untagged".to_owned(),
                    (Some(o), None) => format!("vlan {o}"),
                    (Some(o), Some(i)) => format!("vlan {o}.{i}"),
                })
                .collect();
            format!(", links: {}", l.join(" "))
        };
        let ranges: Vec<String> = s
            .ranges
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end))
            .collect();
        let _ = writeln!(
            out,
            "  {}/{}: server-id {}, pool {} [{}], lease {}s (min {}s, max {}s), {} reservation(s){}",
            s.network.addr,
            s.network.prefix,
            s.server_id,
            s.pool_size(),
            ranges.join(", "),
            s.lease.default,
            s.lease.min,
            s.lease.max,
            s.reservations.len(),
            links
        );
    }
    out
}

/// Capability bits (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The effective capability mask from `/proc/self/status` text.
fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Names of the capabilities `io` needs that `eff` lacks.
fn missing_caps(eff: u64, io: Io) -> Vec<&'static str> {
    let has = |c: u32| eff & (1u64 << c) != 0;
    let mut missing = Vec::new();
    if !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    if io == Io::Xdp {
        if !has(CAP_NET_ADMIN) {
            missing.push("CAP_NET_ADMIN");
        }
        // Kernels before 5.8 have no CAP_BPF; CAP_SYS_ADMIN covers BPF there.
        if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
            missing.push("CAP_BPF");
        }
    }
    missing
}

fn check_privileges(io: Io, umem_bytes: u64) -> anyhow::Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let eff = cap_eff(&status).context("no CapEff line in /proc/self/status")?;
    let missing = missing_caps(eff, io);
    if !missing.is_empty() {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "xdhcp".into());
        bail!(
            "missing capabilities: {}\n  help: run as root (`sudo xdhcp run ...`), or grant them once: \
             `sudo setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep {exe}`{}",
            missing.join(", "),
            if io == Io::Xdp {
                "; `--io socket` needs only CAP_NET_RAW"
            } else {
                ""
            }
        );
    }
    if io == Io::Xdp && eff & (1u64 << CAP_IPC_LOCK) == 0 {
        // Without CAP_IPC_LOCK the UMEM is charged against RLIMIT_MEMLOCK.
        let _ = xsk::sys::raise_memlock();
        let (cur, _) = xsk::sys::memlock_limit().context("reading RLIMIT_MEMLOCK")?;
        if cur < umem_bytes {
            bail!(
                "locked-memory limit is {} KiB but the AF_XDP UMEM needs {} KiB\n  help: raise \
                 RLIMIT_MEMLOCK (`ulimit -l unlimited`, systemd `LimitMEMLOCK=infinity`), grant \
                 CAP_IPC_LOCK, or lower --umem-frames",
                cur / 1024,
                umem_bytes.div_ceil(1024)
            );
        }
    }
    Ok(())
}

fn build_config(args: &RunArgs, iface: &Interface) -> anyhow::Result<ServerConfig> {
    let mut cfg = match &args.config {
        Some(path) => config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => {
            let Some((addr, prefix)) = iface.primary_ipv4() else {
                bail!(
                    "interface '{}' has no IPv4 address, and without --config xdhcp serves the \
                     interface's own subnet\n  help: give it one (`ip addr add 192.0.2.1/24 dev {}`) \
                     or pass --config FILE",
                    iface.name,
                    iface.name
                );
            };
            let z = ZeroConfig {
                addr,
                prefix,
                lease_time: args.lease_time,
                state_dir: args
                    .state_dir
                    .clone()
                    .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            };
            config::zero_config(&z).map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    if let Some(dir) = &args.state_dir {
        cfg.state_dir.clone_from(dir);
    }
    match args.durability {
        Some(DurabilityArg::Fsync) => cfg.durability = Durability::Fsync,
        Some(DurabilityArg::None) => cfg.durability = Durability::None,
        None => {}
    }
    Ok(cfg)
}

fn default_workers() -> u32 {
    xsk::sys::allowed_cpus()
        .map(|c| c.len())
        .ok()
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1) as u32
}

fn run(args: &RunArgs, verbose: u8) -> anyhow::Result<()> {
    let iface = netif::lookup(&args.iface)?;
    let workers = args.workers.unwrap_or_else(default_workers).max(1);
    let plan = Plan::new(workers, iface.rx_queues);
    let umem_bytes = u64::from(plan.queues) * u64::from(args.umem_frames) * u64::from(FRAME_SIZE);
    check_privileges(args.io, umem_bytes)?;

    let cfg = Arc::new(build_config(args, &iface)?);
    let shards = (workers as usize * 8).next_power_of_two();
    let tables = Arc::new(LeaseTables::new(&cfg, shards));
    let journal = open_journal(&cfg, &tables, workers as usize, args.salvage)?;
    let link_addr = iface
        .primary_ipv4()
        .map_or(Ipv4Addr::UNSPECIFIED, |(a, _)| a);
    let handler = Arc::new(
        DhcpHandler::new(Arc::clone(&cfg), tables, iface.mac, link_addr)
            .with_journal(Arc::clone(&journal)),
    );
    let cpus = if args.pin_cpus {
        xsk::sys::allowed_cpus().unwrap_or_default()
    } else {
        Vec::new()
    };
    let worker_cfg = |i: usize| {
        let mut c = WorkerConfig::new(i);
        c.cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
        c
    };
    let stop = Arc::new(AtomicBool::new(false));
    let pool: u64 = cfg.subnets.iter().map(|s| s.pool_size()).sum();
    let subnets: Vec<String> = cfg
        .subnets
        .iter()
        .map(|s| format!("{}/{}", s.network.addr, s.network.prefix))
        .collect();

    match args.io {
        Io::Xdp => {
            if iface.rx_queues > plan.queues {
                warn!(
                    queues = iface.rx_queues,
                    served = plan.queues,
                    "more rx queues than the XDP program steers; DHCP on the others goes to the kernel"
                );
            }
            if (plan.workers.len() as u32) < workers {
                warn!(
                    requested = workers,
                    used = plan.workers.len(),
                    "the XDP program steers to at most {} sockets per rx queue; using that many workers",
                    plan.per_queue
                );
            }
            // Attach first: until a socket is in the map the program passes DHCP to the kernel
            // (fail-open), and knowing the mode lets generic XDP get copy-mode sockets.
            let mut opts = LoadOptions::new(&iface.name);
            opts.mode = args.xdp_mode;
            opts.workers_per_queue = plan.per_queue;
            opts.local_addrs = local_addrs(&cfg, &iface);
            opts.debug_events = verbose >= 2;
            let mut loader = Loader::prepare(loader::embedded_object()?, &opts)?;
            let mode = loader.attach()?;
            let bind = match (args.xsk_mode, mode) {
                (XskMode::Copy, _) | (XskMode::Auto, XdpMode::Skb) => BindMode::Copy,
                (XskMode::ZeroCopy, _) => BindMode::ZeroCopy,
                (XskMode::Auto, _) => BindMode::Auto,
            };
            let mut queues = Vec::with_capacity(plan.queues as usize);
            for q in 0..plan.queues {
                let mut qc = QueueConfig::new(iface.ifindex, q, plan.per_queue);
                qc.frames = args.umem_frames;
                qc.frame_size = FRAME_SIZE;
                qc.bind = bind;
                let sockets = xsk::open_queue(&qc)
                    .with_context(|| format!("{}: rx queue {q}", iface.name))?;
                queues.push(sockets.into_iter().map(Some).collect::<Vec<_>>());
            }
            let zerocopy = queues.iter().flatten().flatten().all(|s| s.zerocopy());

            for s in queues.iter().flatten().flatten() {
                loader.register_socket(s.queue(), s.slot(), s)?;
            }
            let mut assignments = Vec::with_capacity(plan.workers.len());
            for (i, list) in plan.workers.iter().enumerate() {
                let paths: Vec<_> = list
                    .iter()
                    .filter_map(|&(q, s)| {
                        queues
                            .get_mut(q as usize)
                            .and_then(|v| v.get_mut(s as usize))
                            .and_then(Option::take)
                    })
                    .collect();
                assignments.push((worker_cfg(i), paths));
            }
            let mut set = Workers::spawn(Arc::clone(&handler), assignments, Arc::clone(&stop))?;
            info!(
                iface = %iface.name,
                io = "xdp",
                xdp = %mode,
                bind = if zerocopy { "zero-copy" } else { "copy" },
                queues = plan.queues,
                workers = set.len(),
                sockets_per_queue = plan.per_queue,
                subnets = %subnets.join(" "),
                pool,
                "xdhcp serving"
            );
            let signal = supervise(
                &handler,
                &set,
                Some(&mut loader),
                &journal,
                args.stats_interval,
            )?;
            // Detach first: from here on frames go to the kernel; then drain what is queued.
            match loader.detach() {
                Ok(()) => info!(iface = %iface.name, "XDP program detached"),
                Err(e) => warn!(error = %format!("{e:#}"), "detaching the XDP program failed"),
            }
            finish(&handler, &mut set, &journal, signal)
        }
        Io::Socket => {
            let guard = match PortGuard::bind() {
                Ok(g) => Some(g),
                Err(e) => {
                    warn!(
                        error = %e,
                        "cannot hold UDP port 67 (another DHCP server running?); the kernel may answer \
                         unicast DHCP with ICMP port-unreachable"
                    );
                    None
                }
            };
            let paths = PacketPath::open_many(iface.ifindex, workers as usize)
                .with_context(|| format!("opening packet sockets on {}", iface.name))?;
            let assignments = paths
                .into_iter()
                .enumerate()
                .map(|(i, p)| (worker_cfg(i), vec![p]))
                .collect();
            let mut set = Workers::spawn(Arc::clone(&handler), assignments, Arc::clone(&stop))?;
            info!(
                iface = %iface.name,
                io = "socket",
                workers = set.len(),
                subnets = %subnets.join(" "),
                pool,
                "xdhcp serving"
            );
            let signal = supervise(&handler, &set, None, &journal, args.stats_interval)?;
            let r = finish(&handler, &mut set, &journal, signal);
            drop(guard);
            r
        }
    }
}

/// Lock the state directory, rebuild the leases from it and start the committer.
fn open_journal(
    cfg: &ServerConfig,
    tables: &Arc<LeaseTables>,
    lanes: usize,
    salvage: bool,
) -> anyhow::Result<Arc<Journal>> {
    let mut jc = JournalConfig::new(&cfg.state_dir, cfg.durability, lanes);
    jc.salvage = salvage;
    let (journal, r) = Journal::open(jc, Arc::clone(tables), worker::unix_now())
        .map_err(|e| anyhow::anyhow!("lease state: {e}"))?;
    info!(
        dir = %cfg.state_dir.display(),
        durability = ?cfg.durability,
        snapshot = %r.snapshot.as_deref().map_or("-".into(), |p| p.display().to_string()),
        segments = r.segments,
        records = r.records,
        superseded = r.superseded,
        not_in_pool = r.not_in_pool,
        torn_bytes = r.torn_bytes,
        bound = r.bound,
        ms = r.elapsed.as_millis() as u64,
        "leases restored"
    );
    if r.not_in_pool > 0 {
        warn!(
            records = r.not_in_pool,
            "lease records for addresses the configuration no longer serves were dropped"
        );
    }
    Ok(journal)
}

fn journal_summary(s: &JournalStats) -> String {
    format!(
        "{} records in {} batches (max {}, slowest {} us){}{}",
        s.records,
        s.batches,
        s.max_batch,
        s.max_commit_us,
        if s.available { "" } else { ", UNAVAILABLE" },
        if s.failures + s.refused > 0 {
            format!(
                ", {} failures, {} records lost, {} refused",
                s.failures, s.failed_records, s.refused
            )
        } else {
            String::new()
        }
    )
}

/// Addresses unicast DHCP is sent to: our interface addresses and every server identifier.
fn local_addrs(cfg: &ServerConfig, iface: &Interface) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = iface
        .ipv4
        .iter()
        .map(|&(a, _)| a)
        .chain(cfg.subnets.iter().map(|s| s.server_id))
        .collect();
    v.sort_unstable();
    v.dedup();
    v.retain(|a| !a.is_unspecified());
    v
}

/// Wait for SIGINT/SIGTERM; meanwhile run lease expiry every second and log statistics every
/// `interval` seconds. Returns the signal's name.
fn supervise(
    handler: &DhcpHandler,
    workers: &Workers<<DhcpHandler as FrameHandler>::Stats>,
    mut loader: Option<&mut Loader>,
    journal: &Journal,
    interval: u64,
) -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_log = Instant::now();
        let mut last_io = IoStats::default();
        loop {
            tokio::select! {
                _ = term.recv() => return Ok("SIGTERM"),
                _ = int.recv() => return Ok("SIGINT"),
                _ = tick.tick() => {
                    if workers.exited() > 0 {
                        return Ok("worker exit");
                    }
                    handler.housekeeping(worker::unix_now());
                    if let Some(l) = loader.as_deref_mut() {
                        l.flush_debug_events();
                    }
                    if interval > 0 && last_log.elapsed() >= Duration::from_secs(interval) {
                        let secs = last_log.elapsed().as_secs_f64();
                        last_log = Instant::now();
                        let total = workers.board().total::<DhcpHandler>();
                        let xdp = loader.as_deref().and_then(|l| l.counters().ok()).map(|c| c.to_string());
                        info!(
                            rx_per_s = ((total.io.rx - last_io.rx) as f64 / secs).round(),
                            tx_per_s = ((total.io.tx - last_io.tx) as f64 / secs).round(),
                            rx = total.io.rx,
                            tx = total.io.tx,
                            io_dropped = total.io.rx_dropped,
                            tx_errors = total.io.tx_errors,
                            engine = %DhcpHandler::summary(&total.engine),
                            leases = %handler.lease_summary(),
                            journal = %journal_summary(&journal.stats()),
                            xdp = xdp.as_deref().unwrap_or("-"),
                            "stats"
                        );
                        last_io = total.io;
                    }
                }
            }
        }
    })
}

fn finish(
    handler: &DhcpHandler,
    set: &mut Workers<<DhcpHandler as FrameHandler>::Stats>,
    journal: &Journal,
    signal: &str,
) -> anyhow::Result<()> {
    let panicked = set.stop_and_join();
    journal.shutdown();
    for (i, w) in set.board().snapshots().iter().enumerate() {
        tracing::debug!(
            worker = i,
            rx = w.io.rx,
            tx = w.io.tx,
            dropped = w.io.rx_dropped,
            "worker totals"
        );
    }
    let total = set.board().total::<DhcpHandler>();
    info!(
        signal,
        rx = total.io.rx,
        tx = total.io.tx,
        io_dropped = total.io.rx_dropped,
        tx_errors = total.io.tx_errors,
        engine = %DhcpHandler::summary(&total.engine),
        leases = %handler.lease_summary(),
        held_dropped = total.io.held_dropped,
        journal = %journal_summary(&journal.stats()),
        "xdhcp stopped"
    );
    if panicked > 0 {
        bail!("{panicked} worker thread(s) panicked; see the log above");
    }
    if signal == "worker exit" {
        bail!("a worker thread exited unexpectedly; see the log above");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capeff_is_parsed_and_checked() {
        let status = "Name:\txdhcp\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        let eff = cap_eff(status).unwrap();
        assert_eq!(eff, 0x1fffeffffff);
        assert!(missing_caps(eff, Io::Xdp).is_empty());
        assert_eq!(missing_caps(0, Io::Socket), vec!["CAP_NET_RAW"]);
        assert_eq!(
            missing_caps(0, Io::Xdp),
            vec!["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_BPF"]
        );
        let sys_admin_only = (1 << CAP_NET_RAW) | (1 << CAP_NET_ADMIN) | (1 << CAP_SYS_ADMIN);
        assert!(
            missing_caps(sys_admin_only, Io::Xdp).is_empty(),
            "CAP_SYS_ADMIN covers BPF"
        );
        assert_eq!(cap_eff("Name: x\n"), None);
    }

    #[test]
    fn cli_parses_the_documented_flags() {
        let cli = Cli::try_parse_from([
            "xdhcp",
            "run",
            "--iface",
            "eth1",
            "--config",
            "x.toml",
            "--xdp-mode",
            "skb",
            "--io",
            "socket",
            "--workers",
            "3",
            "--lease-time",
            "600",
            "--state-dir",
            "/tmp/s",
            "-v",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.iface, "eth1");
        assert_eq!(a.xdp_mode, XdpMode::Skb);
        assert_eq!(a.io, Io::Socket);
        assert_eq!(a.workers, Some(3));
        assert_eq!(a.lease_time, 600);
        assert_eq!(cli.verbose, 1);
        assert!(
            Cli::try_parse_from(["xdhcp", "run"]).is_err(),
            "--iface is required"
        );
        assert!(Cli::try_parse_from(["xdhcp", "run", "-i", "x", "--lease-time", "0"]).is_err());
        let c = Cli::try_parse_from(["xdhcp", "check-config", "f.toml"]).unwrap();
        assert!(matches!(c.command, Command::CheckConfig { .. }));
    }
}
