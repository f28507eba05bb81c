//! `cargo xtask run --iface IFACE [-- ARGS]`: set up, build, and serve DHCP on IFACE.
//!
//! Replaces itself with `xdhcp run --iface IFACE ARGS...` (exec), so Ctrl-C and SIGTERM reach
//! xdhcp directly and it can detach its XDP program and drain before exiting.

use std::{os::unix::process::CommandExt as _, process::Command};

use anyhow::bail;

use crate::{
    build,
    setup::{self, Needs},
    util,
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Interface to serve.
    #[arg(long)]
    pub iface: String,
    /// More arguments for `xdhcp run` (after `--`), e.g. `-- --config site.toml --workers 2`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    setup::ensure(Needs::All)?;
    let bin = build::run(&build::Options {})?;
    if !util::is_root() {
        eprintln!(
            "run: not root; xdhcp needs root or CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK"
        );
    }
    let err = Command::new(&bin)
        .args(["run", "--iface", &opts.iface])
        .args(&opts.args)
        .exec();
    bail!("could not start {}: {err}", bin.display())
}
