//! `cargo xtask`: the project's build and test entry points (aya's xtask layout).
//!
//! One module per subcommand, each with its clap `Options` and a `run()`; every external command
//! goes through [`util::exec`], which names the command in the error when it fails. Commands that
//! need tools call [`setup::ensure`] first, which runs the (idempotent) set-up only when something
//! is missing, so `cargo xtask test` works on a fresh machine and is quick on a prepared one.

mod bench;
mod build;
mod build_ebpf;
mod compare;
mod demo;
mod run;
mod setup;
mod soak;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Build, run and test xdhcp"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what building and testing need (Debian packages, nightly rust-src, bpf-linker).
    Setup(setup::Options),
    /// Build the XDP program (nightly, bpfel-unknown-none, bpf-linker).
    BuildEbpf(build_ebpf::Options),
    /// Build the XDP program, then the engine with it embedded (release).
    Build(build::Options),
    /// Set up, build, and run `xdhcp run --iface IFACE` (root).
    Run(run::Options),
    /// Set up, build the XDP program, and run every test in the workspace (root; what CI runs).
    Test(test::Options),
    /// Real DHCP clients (dhclient, udhcpc, dhcpcd) get leases from xdhcp in throw-away namespaces.
    Demo(demo::Options),
    /// Run the criterion benchmarks of the engine core; `bench compare`: xdhcp vs Kea, dnsmasq,
    /// ISC dhcpd side by side (root).
    Bench(compare::BenchCmd),
    /// Crash soak: kill -9 xdhcp under load many times; every acknowledged lease must survive.
    Soak(soak::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(opts) => setup::run(&opts),
        Command::BuildEbpf(opts) => build_ebpf::run(&opts).map(|_| ()),
        Command::Build(opts) => build::run(&opts).map(|_| ()),
        Command::Run(opts) => run::run(&opts),
        Command::Test(opts) => test::run(&opts),
        Command::Demo(opts) => demo::run(&opts),
        Command::Bench(opts) => compare::dispatch(&opts),
        Command::Soak(opts) => soak::run(&opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
