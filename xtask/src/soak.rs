//! `cargo xtask soak [--rounds N]`: the crash test (`tests/tests/crash.rs`) with many more
//! `kill -9` rounds than the test suite's 20: relayed DORA load, SIGKILL at random moments,
//! restart on the same state directory, and at the end every acknowledged lease must come back
//! to its client with no address given twice. Root.

use crate::{
    build::ENV_OBJECT,
    build_ebpf,
    setup::{self, Needs},
    test::{ENV_BIN, build_binary},
    util::{cargo, exec},
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Kill/restart rounds.
    #[arg(long, default_value_t = 500)]
    pub rounds: u32,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    setup::ensure(Needs::All)?;
    let object = build_ebpf::run(&build_ebpf::Options { dev: false })?;
    let bin = build_binary(&object)?;
    exec(
        cargo()
            .args([
                "test",
                "-p",
                "xdhcp-tests",
                "--test",
                "crash",
                "--",
                "--nocapture",
            ])
            .env(ENV_OBJECT, &object)
            .env(ENV_BIN, &bin)
            .env("XDHCP_CRASH_ROUNDS", opts.rounds.to_string())
            .env("CI", "true"),
    )
}
