//! Embeds the XDP object built by `cargo xtask build-ebpf`, or an empty placeholder.
//!
//! The BPF program needs nightly, `-Z build-std` and bpf-linker; none of that may be required for
//! a plain `cargo build`, `cargo test` or `cargo clippy` of the engine. So the object is built by
//! xtask, which passes its path in `XDHCP_EBPF_OBJECT`; without it an empty file is embedded and
//! the loader refuses it at run time with a message that says how to build the real thing (the
//! pattern of aya's `test/integration-test/build.rs`).

use std::{env, fs, path::PathBuf};

const ENV_OBJECT: &str = "XDHCP_EBPF_OBJECT";

fn main() -> Result<(), String> {
    println!("cargo::rerun-if-env-changed={ENV_OBJECT}");
    let out_dir = env::var_os("OUT_DIR").ok_or("cargo did not set OUT_DIR")?;
    let dest = PathBuf::from(out_dir).join("xdhcp.bpf.o");

    match env::var_os(ENV_OBJECT).filter(|v| !v.is_empty()) {
        Some(src) => {
            let src = PathBuf::from(src);
            println!("cargo::rerun-if-changed={}", src.display());
            // A path that is set but wrong is a broken build, not "build without XDP": say so.
            fs::copy(&src, &dest).map_err(|e| {
                format!(
                    "{ENV_OBJECT}={} cannot be copied into the build ({e}); \
                     run `cargo xtask build-ebpf` or unset {ENV_OBJECT}",
                    src.display()
                )
            })?;
        }
        None => {
            // Only rewrite when needed, so an unchanged placeholder keeps its timestamp.
            if fs::metadata(&dest).map(|m| m.len() != 0).unwrap_or(true) {
                fs::write(&dest, []).map_err(|e| format!("writing {}: {e}", dest.display()))?;
            }
        }
    }
    Ok(())
}
