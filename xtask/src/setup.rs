//! `cargo xtask setup`: install what building and testing xdhcp need, idempotently.
//!
//! Three parts, each checked first and done only when missing, so a second run takes well under
//! a second:
//!
//! 1. Debian packages for the tests (real DHCP clients and servers, capture tools, bpftool).
//!    Their packaged services are kept from starting during the install (policy-rc.d) and
//!    stopped/disabled afterwards: the tests start their own copies inside namespaces.
//! 2. The nightly toolchain's `rust-src` (the BPF target is built with `-Z build-std=core`).
//! 3. `bpf-linker`, built against the nightly toolchain's *own* LLVM (rustc emits bitcode for that
//!    exact LLVM). A persistent prefix `~/.local/share/xdhcp/llvm/lib` holds symlinks to the
//!    toolchain's `libLLVM.so.*-rust-*`; bpf-linker's build puts that prefix in its rpath. When a
//!    new nightly changes the soname, `ldd` shows the old binary broken and it is rebuilt.

use std::{
    fs,
    io::Write as _,
    os::unix,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::util::{self, exec, exec_output};

/// Debian packages the tests need.
const PACKAGES: &[&str] = &[
    "kea-dhcp4-server",
    "kea-admin", // perfdhcp
    "dnsmasq",
    "isc-dhcp-server",
    "isc-dhcp-client",
    "dhcpcd-base",
    "busybox",
    "tshark",
    "tcpdump",
    "iproute2",
    "bpftool",
    "ethtool",
];

/// Packaged DHCP services the packages above may start.
const SERVICES: &[&str] = &[
    "kea-dhcp4-server",
    "kea-dhcp6-server",
    "kea-dhcp-ddns-server",
    "kea-ctrl-agent",
    "dnsmasq",
    "isc-dhcp-server",
];

const NIGHTLY: &str = "nightly";
const BPF_LINKER_VERSION: &str = "0.13.0";

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Rebuild bpf-linker even if it looks healthy.
    #[arg(long)]
    pub force_bpf_linker: bool,
}

/// What a command needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Nightly rust-src and bpf-linker (building the XDP program).
    Toolchain,
    /// Everything (running and testing).
    All,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    install_packages()?;
    ensure_rust_src()?;
    if opts.force_bpf_linker {
        build_bpf_linker()?;
    } else {
        ensure_bpf_linker()?;
    }
    eprintln!("setup: ok");
    Ok(())
}

/// Runs the parts of the set-up `needs` asks for, only if something is missing.
pub fn ensure(needs: Needs) -> anyhow::Result<()> {
    if needs == Needs::All && !missing_packages()?.is_empty() {
        install_packages()?;
    }
    ensure_rust_src()?;
    ensure_bpf_linker()
}

fn missing_packages() -> anyhow::Result<Vec<&'static str>> {
    // One dpkg-query for all: it exits 1 when some package is unknown, so read stdout only.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Status}\n"])
        .args(PACKAGES)
        .stderr(Stdio::null())
        .output()
        .context("running dpkg-query (is this a Debian system?)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.ends_with(" install ok installed"))
        .filter_map(|l| l.split_whitespace().next())
        .map(|p| p.split(':').next().unwrap_or(p))
        .collect();
    Ok(PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect())
}

fn install_packages() -> anyhow::Result<()> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        return Ok(());
    }
    if !util::is_root() {
        bail!(
            "Debian packages missing: {}; run `cargo xtask setup` as root (it runs apt-get)",
            missing.join(" ")
        );
    }
    eprintln!("setup: installing {}", missing.join(" "));
    // Keep packaged daemons from starting during the install (unless a policy already exists).
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let created_policy = !policy.exists();
    if created_policy {
        fs::write(policy, "#!/bin/sh\nexit 101\n").context("writing /usr/sbin/policy-rc.d")?;
        exec(Command::new("chmod").args(["+x", "/usr/sbin/policy-rc.d"]))?;
    }
    let result = apt_install(&missing);
    if created_policy {
        let _ = fs::remove_file(policy);
    }
    result?;
    stop_services();
    Ok(())
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    // tshark asks whether non-root users may capture; answer before it can prompt.
    let mut debconf = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .spawn()
        .context("running debconf-set-selections")?;
    if let Some(stdin) = debconf.stdin.as_mut() {
        stdin.write_all(b"wireshark-common wireshark-common/install-setuid boolean false\n")?;
    }
    debconf.wait()?;
    exec(
        Command::new("apt-get")
            .args(["update", "-qq"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Stops and disables the packaged DHCP services, with whatever init system the machine has.
fn stop_services() {
    let systemd = Path::new("/run/systemd/system").exists();
    for svc in SERVICES {
        let mut cmd = if systemd {
            let mut c = Command::new("systemctl");
            c.args(["disable", "--now", svc]);
            c
        } else {
            let script = Path::new("/etc/init.d").join(svc);
            if !script.exists() {
                continue;
            }
            let mut c = Command::new(script);
            c.arg("stop");
            c
        };
        // Best effort: a service that is absent or already stopped is what we want.
        let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn ensure_rust_src() -> anyhow::Result<()> {
    let toolchains = exec_output(Command::new("rustup").args(["toolchain", "list"]))?;
    if !toolchains.lines().any(|l| l.starts_with(NIGHTLY)) {
        eprintln!("setup: installing the nightly toolchain (BPF target only)");
        return exec(Command::new("rustup").args([
            "toolchain",
            "install",
            NIGHTLY,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]));
    }
    let installed = exec_output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        NIGHTLY,
        "--installed",
    ]))?;
    if !installed
        .lines()
        .any(|l| l.trim() == "rust-src" || l.starts_with("rust-src"))
    {
        eprintln!("setup: adding rust-src to the nightly toolchain");
        exec(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            NIGHTLY,
        ]))?;
    }
    Ok(())
}

/// The nightly toolchain's libLLVM: (path, file name = soname, LLVM major version).
fn nightly_llvm() -> anyhow::Result<(PathBuf, String, u32)> {
    let sysroot =
        exec_output(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))?;
    let lib = Path::new(sysroot.trim()).join("lib");
    let name = fs::read_dir(&lib)
        .with_context(|| format!("listing {}", lib.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so.") && n.contains("-rust-"))
        .with_context(|| format!("no libLLVM.so.*-rust-* in {}", lib.display()))?;
    // libLLVM.so.22.1-rust-1.97.0-nightly -> 22
    let major = name
        .trim_start_matches("libLLVM.so.")
        .split(['.', '-'])
        .next()
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("cannot read the LLVM version from {name}"))?;
    Ok((lib.join(&name), name, major))
}

fn llvm_prefix() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| util::home().join(".local/share"))
        .join("xdhcp/llvm")
}

fn bpf_linker_path() -> PathBuf {
    util::cargo_home().join("bin/bpf-linker")
}

/// `None` if bpf-linker is healthy, otherwise why it must be (re)built.
fn bpf_linker_problem() -> anyhow::Result<Option<String>> {
    let bin = bpf_linker_path();
    if !bin.exists() {
        return Ok(Some(format!("{} is not installed", bin.display())));
    }
    let (_, soname, _) = nightly_llvm()?;
    let ldd = exec_output(Command::new("ldd").arg(&bin))?;
    if ldd.contains("not found") {
        return Ok(Some(format!(
            "it does not load (ldd: {})",
            ldd.trim().replace('\n', "; ")
        )));
    }
    if !ldd.contains(&format!("{soname} => ")) {
        return Ok(Some(format!(
            "it is not linked against the nightly toolchain's {soname}"
        )));
    }
    Ok(None)
}

fn ensure_bpf_linker() -> anyhow::Result<()> {
    match bpf_linker_problem()? {
        None => Ok(()),
        Some(why) => {
            eprintln!("setup: building bpf-linker: {why}");
            build_bpf_linker()
        }
    }
}

fn build_bpf_linker() -> anyhow::Result<()> {
    let (llvm, soname, major) = nightly_llvm()?;
    let prefix = llvm_prefix();
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    for link in [lib.join("libLLVM.so"), lib.join(&soname)] {
        // Replace whatever an older toolchain left there.
        let _ = fs::remove_file(&link);
        unix::fs::symlink(&llvm, &link)
            .with_context(|| format!("symlinking {}", link.display()))?;
    }
    eprintln!(
        "setup: cargo install bpf-linker {BPF_LINKER_VERSION} against LLVM {major} ({}), a few minutes",
        llvm.display()
    );
    exec(
        util::cargo()
            .args([
                "install",
                "bpf-linker",
                "--force",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args([
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ])
            .env("LLVM_PREFIX", &prefix),
    )?;
    match bpf_linker_problem()? {
        None => Ok(()),
        Some(why) => bail!("bpf-linker was rebuilt but is still unusable: {why}"),
    }
}
