//! `cargo xtask build`: the XDP object, then the engine (release) with the object embedded.
//!
//! The engine's `build.rs` copies the file named by `XDHCP_EBPF_OBJECT` into its `OUT_DIR`;
//! without it the engine embeds an empty placeholder and refuses to start.

use std::path::PathBuf;

use crate::{
    build_ebpf,
    util::{cargo, exec, target_dir},
};

/// Env var the engine's build script reads the object path from.
pub const ENV_OBJECT: &str = "XDHCP_EBPF_OBJECT";

#[derive(Debug, clap::Args)]
pub struct Options {}

/// Builds everything and returns the path of the `xdhcp` binary.
pub fn run(_opts: &Options) -> anyhow::Result<PathBuf> {
    let object = build_ebpf::run(&build_ebpf::Options { dev: false })?;
    exec(
        cargo()
            .args(["build", "--release", "--package", "xdhcp", "--bin", "xdhcp"])
            .env(ENV_OBJECT, &object),
    )?;
    let bin = target_dir().join("release/xdhcp");
    eprintln!("build: {}", bin.display());
    Ok(bin)
}
