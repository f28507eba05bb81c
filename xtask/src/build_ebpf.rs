//! `cargo xtask build-ebpf`: build the XDP program into an object file.
//!
//! The program is its own cargo workspace (`xdp-ebpf/`, excluded from the top-level one) built
//! with nightly for `bpfel-unknown-none` with `-Z build-std=core`; rustc hands the bitcode to
//! bpf-linker, which emits the ELF object aya loads.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::{
    setup::{self, Needs},
    util::{exec, rustup_cargo, workspace_root},
};

pub const TARGET: &str = "bpfel-unknown-none";

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Build the dev profile instead of release (the kernel's verifier wants optimised code;
    /// the dev profile is optimised too, but without LTO).
    #[arg(long)]
    pub dev: bool,
}

/// Builds the object and returns its path.
pub fn run(opts: &Options) -> anyhow::Result<PathBuf> {
    setup::ensure(Needs::Toolchain)?;
    let dir = workspace_root().join("xdp-ebpf");
    let target_dir = dir.join("target");
    let profile = if opts.dev { "dev" } else { "release" };
    exec(
        rustup_cargo("nightly")
            .current_dir(&dir)
            .args([
                "build",
                "--target",
                TARGET,
                "-Z",
                "build-std=core",
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            // Host flags from the environment do not apply to the BPF target.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
    )
    .context("building the XDP program (xdp-ebpf/)")?;
    let object = target_dir
        .join(TARGET)
        .join(if opts.dev { "debug" } else { "release" })
        .join("xdhcp");
    let len = std::fs::metadata(&object)
        .with_context(|| format!("the build did not produce {}", object.display()))?
        .len();
    eprintln!("build-ebpf: {} ({len} bytes)", object.display());
    Ok(object)
}
