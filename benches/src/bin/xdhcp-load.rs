//! `xdhcp-load`: DHCPv4 load generator (and AF_XDP echo responder) for benchmarking xdhcp and
//! other servers. See `xdhcp_benches::load` for the design and benches/README.md for figures.
//!
//! ```text
//! xdhcp-load run --iface cli0 --clients 100000                     # direct clients, max speed
//! xdhcp-load run --iface cli0 --relay 10.213.0.2 --server 10.213.0.1 --option82
//! xdhcp-load run --iface cli0 --avalanche --clients 1000000 --time-scale 0.05
//! xdhcp-load echo --iface srv0                                      # on the other end
//! ```
//!
//! Prints a human summary on stderr and one `RESULT k=v ...` line on stdout.

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use xdhcp::xsk::{AttachMode, BindMode};
use xdhcp_benches::load::client::{Config, Generator, Pace, Relay};
use xdhcp_benches::load::io::{Io, IoKind};
use xdhcp_benches::load::run::{self, Limits};

#[derive(Debug, Parser)]
#[command(
    name = "xdhcp-load",
    about = "DHCPv4 load generator over AF_XDP or AF_PACKET"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Emulate clients doing DORA (and optionally renew / release) against a server.
    Run(RunArgs),
    /// Reflect every DHCP frame back to its sender through AF_XDP (the link's ceiling).
    Echo(EchoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Attach {
    Native,
    Skb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bind {
    Auto,
    Copy,
    ZeroCopy,
}

#[derive(Debug, Args)]
struct IoArgs {
    /// Interface to send and receive on (the clients' side of the link).
    #[arg(short, long)]
    iface: String,
    /// AF_XDP (with a small redirect XDP program) or AF_PACKET (sendmmsg/recvmmsg).
    #[arg(long, value_enum, default_value_t = IoKind::Xdp)]
    io: IoKind,
    /// How to attach the redirect program (AF_XDP only).
    #[arg(long, value_enum, default_value_t = Attach::Native)]
    xdp_mode: Attach,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value_t = Bind::Auto)]
    xsk_mode: Bind,
    /// UMEM frames per queue (half receive, half transmit).
    #[arg(long, default_value_t = 8192)]
    umem_frames: u32,
}

impl IoArgs {
    fn open(&self) -> anyhow::Result<(Io, xdhcp::netif::Interface)> {
        let iface = xdhcp::netif::lookup(&self.iface)?;
        let attach = match self.xdp_mode {
            Attach::Native => AttachMode::Native,
            Attach::Skb => AttachMode::Skb,
        };
        let bind = match self.xsk_mode {
            Bind::Auto => BindMode::Auto,
            Bind::Copy => BindMode::Copy,
            Bind::ZeroCopy => BindMode::ZeroCopy,
        };
        let io = Io::open(&iface, self.io, attach, bind, self.umem_frames)?;
        Ok((io, iface))
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    io: IoArgs,
    /// Number of distinct clients (MAC addresses 02:PP:<index>).
    #[arg(short = 'n', long, default_value_t = 10_000)]
    clients: u32,
    /// Second MAC byte of the clients (tell runs apart).
    #[arg(long, default_value_t = 0x10)]
    mac_prefix: u8,
    /// Start this many exchanges per second (default: as fast as --window allows).
    #[arg(long)]
    rate: Option<f64>,
    /// Exchanges outstanding at once when running as fast as possible.
    #[arg(long, default_value_t = 512)]
    window: u32,
    /// Start every client at once; RFC 2131 backoff (4 s doubling to 64 s, ±1 s) spreads the
    /// retries.
    #[arg(long, conflicts_with = "rate")]
    avalanche: bool,
    /// Multiply RFC 2131 retransmission delays by this (0.01 = 40 ms first retry).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Transmissions of one message before a client gives up.
    #[arg(long, default_value_t = 5)]
    max_tries: u32,
    /// After DORA, renew once (unicast REQUEST with ciaddr).
    #[arg(long)]
    renew: bool,
    /// Finally release the address.
    #[arg(long)]
    release: bool,
    /// Keep clients cycling (DORA [renew] [release] again) for this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds to wait for outstanding exchanges once all have started (default: one
    /// retransmission round, 5 s × time-scale + 1 s, or the whole RFC backoff schedule in an
    /// avalanche).
    #[arg(long)]
    drain: Option<f64>,
    /// Act as a relay agent with this giaddr (must be an address of --iface's subnet that the
    /// server can reach; replies come back to it on port 67).
    #[arg(long, requires = "server")]
    relay: Option<Ipv4Addr>,
    /// The server's address (relay mode).
    #[arg(long)]
    server: Option<Ipv4Addr>,
    /// The server's MAC (relay mode; default: resolved with ARP).
    #[arg(long)]
    server_mac: Option<String>,
    /// Add option 82 (circuit-id = client index, remote-id = client MAC) in relay mode.
    #[arg(long, requires = "relay")]
    option82: bool,
    /// Tag every client frame with this 802.1Q C-VLAN (clients spread over --vlan-count ids).
    #[arg(long)]
    vlan: Option<u16>,
    #[arg(long, default_value_t = 1, requires = "vlan")]
    vlan_count: u16,
    /// Add an outer 802.1ad S-VLAN (QinQ, with --vlan as the inner tag).
    #[arg(long, requires = "vlan")]
    svlan: Option<u16>,
    /// Set the BOOTP broadcast flag (servers broadcast their replies).
    #[arg(long)]
    broadcast: bool,
    /// Echo mode: the other end reflects requests (`xdhcp-load echo`); measures the ceiling.
    #[arg(long)]
    echo: bool,
    /// Label in the RESULT line (e.g. the server under test).
    #[arg(long, default_value = "server")]
    label: String,
    /// Write the convergence curve (seconds since the first request, completed exchanges; one
    /// row per 1 % of the clients) to this CSV file.
    #[arg(long)]
    progress_csv: Option<std::path::PathBuf>,
    /// Seed for transaction ids and jitter.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
}

#[derive(Debug, Args)]
struct EchoArgs {
    #[command(flatten)]
    io: IoArgs,
    /// Stop after this many seconds and print the count (default: run until killed).
    #[arg(long)]
    seconds: Option<f64>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Run(a) => run(&a),
        Command::Echo(a) => echo(&a),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdhcp-load: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(a: &RunArgs) -> anyhow::Result<()> {
    if a.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if !a.time_scale.is_finite() || a.time_scale <= 0.0 {
        bail!("--time-scale must be positive");
    }
    let (mut io, iface) = a.io.open()?;
    let mut cfg = Config::new(a.clients);
    cfg.mac_prefix = a.mac_prefix;
    cfg.pace = if a.avalanche {
        Pace::Avalanche
    } else if let Some(r) = a.rate {
        if !r.is_finite() || r <= 0.0 {
            bail!("--rate must be positive");
        }
        Pace::Rate(r)
    } else {
        Pace::Window(a.window.max(1))
    };
    cfg.renew = a.renew;
    cfg.release = a.release;
    cfg.echo = a.echo;
    cfg.time_scale = a.time_scale;
    cfg.max_tries = a.max_tries.max(1);
    cfg.vlan = a.vlan;
    cfg.vlan_count = a.vlan_count;
    cfg.svlan = a.svlan;
    cfg.broadcast = a.broadcast;
    cfg.seed = a.seed;
    cfg.duration_ns = a.duration.map(|d| (d * 1e9) as u64);
    if let Some(giaddr) = a.relay {
        let server = a.server.context("--relay needs --server")?;
        let server_mac = match &a.server_mac {
            Some(s) => run::parse_mac(s).with_context(|| format!("--server-mac {s}"))?,
            None => run::resolve_mac(server)?,
        };
        cfg.relay = Some(Relay {
            giaddr,
            mac: iface.mac,
            server,
            server_mac,
            option82: a.option82,
        });
    }
    let drain = a.drain.unwrap_or(if a.avalanche {
        // Every retry of the schedule (4 + 8 + 16 + 32 + 64 + 64 ... s) plus slack.
        let schedule: f64 = (0..cfg.max_tries)
            .map(|t| f64::from(4u32 << t.min(4)))
            .sum();
        (schedule + 2.0) * a.time_scale + 2.0
    } else {
        // One retransmission round: the first retry comes after 4 s ± 1 s (scaled).
        5.0 * a.time_scale + 1.0
    });
    let limits = Limits {
        duration: a.duration.map(Duration::from_secs_f64),
        drain: Duration::from_secs_f64(drain.max(0.0)),
    };
    let stop = AtomicBool::new(false);
    let mut lg = Generator::new(cfg);
    eprintln!(
        "xdhcp-load: {} clients on {} ({}), {:?}",
        a.clients,
        iface.name,
        io.describe(),
        lg.config().pace
    );
    let summary = run::run_and_report(&mut lg, &mut io, limits, &a.label, &stop);
    eprint!("{}", summary.human());
    if let Some((full, empty)) = io.kernel_drops() {
        eprintln!("  AF_XDP kernel drops: rx ring full {full}, fill ring empty {empty}");
    }
    println!("{}", summary.result_line());
    if let Some(path) = &a.progress_csv {
        let first = lg.stats().first_tx.unwrap_or(0);
        let mut csv = String::from("seconds,completed\n");
        for &(t, done) in &lg.stats().progress {
            csv.push_str(&format!(
                "{:.6},{done}\n",
                t.saturating_sub(first) as f64 / 1e9
            ));
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    if summary.duplicates > 0 {
        let (addr, a1, a2) = lg
            .stats()
            .first_duplicate
            .unwrap_or((Ipv4Addr::UNSPECIFIED, 0, 0));
        bail!(
            "{} duplicate addresses, first {addr} (clients {a1} and {a2})",
            summary.duplicates
        );
    }
    Ok(())
}

fn echo(a: &EchoArgs) -> anyhow::Result<()> {
    let (mut io, iface) = a.io.open()?;
    // No signal handling (that would need `unsafe` outside engine/src/xsk): SIGTERM simply ends
    // the responder; `--seconds` ends it with a count.
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(s) = a.seconds {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(s));
            stop.store(true, Ordering::Relaxed);
        });
    }
    eprintln!(
        "xdhcp-load echo: reflecting DHCP frames on {} ({})",
        iface.name,
        io.describe()
    );
    let st = run::echo(&mut io, iface.mac, &stop);
    println!("ECHO frames={}", st.frames);
    Ok(())
}
