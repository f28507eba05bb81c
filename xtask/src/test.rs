//! `cargo xtask test [-- CARGO-TEST-ARGS]`: the README's (and CI's) test command.
//!
//! Sets up, checks fmt and clippy, runs a short fuzz and the pipeline bench's self-check (no
//! allocation per packet), builds the XDP object, then runs `cargo test --workspace` with the
//! object's path in `XDHCP_EBPF_OBJECT` (embedded by the engine's build script, loaded by the
//! root tests in `tests/`). Run it as root: the namespace and BPF tests skip with a note otherwise, and under
//! `CI=true` they fail instead of skipping.

use crate::{
    build::ENV_OBJECT,
    build_ebpf,
    setup::{self, Needs},
    util::{self, cargo, exec},
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Extra arguments for `cargo test` (after `--`), e.g. `-- -p xdhcp-tests` or
    /// `-- --test xdp_prog -- --nocapture`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Seconds of coverage-guided fuzzing of `engine/fuzz` (frame -> verdict -> reply) per run.
const FUZZ_SECS: &str = "30";

pub fn run(opts: &Options) -> anyhow::Result<()> {
    setup::ensure(Needs::All)?;
    let root = util::workspace_root();
    // Style gates first: they are cheap and a red one should not wait for the long tests.
    exec(cargo().args(["fmt", "--all", "--", "--check"]))?;
    exec(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // A short fuzz run of the network-facing parser + decision (installs cargo-fuzz if
    // missing). It runs before the tests so that cargo test's summary closes the output.
    exec(
        std::process::Command::new("sh")
            .arg(root.join("engine/fuzz/ci.sh"))
            .arg(FUZZ_SECS),
    )?;
    if opts.args.is_empty() {
        // The pipeline bench's self-check: the per-packet path makes no heap allocation
        // (counting allocator), and every benchmark runs once (release build, a few seconds).
        exec(cargo().args([
            "bench",
            "-p",
            "xdhcp-benches",
            "--bench",
            "pipeline",
            "--",
            "--test",
        ]))?;
    }
    let object = build_ebpf::run(&build_ebpf::Options { dev: false })?;
    if !util::is_root() {
        eprintln!(
            "test: not root; the tests in tests/ need root and will {}",
            if std::env::var_os("CI").is_some() {
                "fail (CI is set)"
            } else {
                "be skipped"
            }
        );
    }
    let bin = build_binary(&object)?;
    exec(
        cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(&opts.args)
            .env(ENV_OBJECT, &object)
            .env(ENV_BIN, &bin)
            .env(
                "RUST_BACKTRACE",
                std::env::var_os("RUST_BACKTRACE").unwrap_or_else(|| "1".into()),
            ),
    )
}

/// Env var naming the `xdhcp` binary for the tests that run it as a process.
pub const ENV_BIN: &str = "XDHCP_BIN";

/// Build the `xdhcp` binary for the tests that run it as a process (crash recovery): the test
/// profile's, so it shares the tests' build of the library.
pub fn build_binary(object: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    exec(
        cargo()
            .args(["build", "-p", "xdhcp", "--bin", "xdhcp"])
            .env(ENV_OBJECT, object),
    )?;
    Ok(util::target_dir().join("debug/xdhcp"))
}
