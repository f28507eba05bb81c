//! `cargo xtask bench [-- CRITERION-ARGS]`: the criterion benchmarks of the engine core
//! (`benches/`). They need neither root nor the XDP program.

use crate::util::{cargo, exec};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Arguments for criterion (after `--`), e.g. `-- wire/parse` to run one group.
    #[arg(last = true)]
    pub args: Vec<String>,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.args(["bench", "--package", "xdhcp-benches"]);
    if !opts.args.is_empty() {
        cmd.arg("--").args(&opts.args);
    }
    exec(&mut cmd)
}
