//! Loads xdhcp's XDP program (aya), configures its maps, attaches it, and owns it.
//!
//! The program and its maps are defined by `xdp-ebpf/` and the ABI crate `xdhcp_common`; this
//! module is their only userspace owner. Its job, in order:
//!
//! 1. refuse to start without the privileges or the object, with the fix in the message;
//! 2. load the object embedded at build time (`cargo xtask build` sets `XDHCP_EBPF_OBJECT`, see
//!    `engine/build.rs`), write `CONFIG` and `LOCAL_ADDRS` *before* the program sees a frame;
//! 3. attach to the interface in the requested mode (`auto` tries native XDP and falls back to
//!    generic/skb with a log line, because a router's NIC may simply lack driver support);
//! 4. hand the AF_XDP workers `register_socket` for the `XSKS` map and the stats code `counters`;
//! 5. detach when dropped: the link is owned here, so a crash or a clean exit both leave the
//!    interface as it was (fail-open: without the program every frame goes to the kernel).
//!
//! Errors use `anyhow` with context (this is the operator-facing edge of the engine, like `main`):
//! every failure the operator can fix says what to do.

use std::{
    collections::BTreeSet,
    fmt, fs, io,
    net::Ipv4Addr,
    os::fd::{AsFd, BorrowedFd},
    sync::Mutex,
};

use anyhow::{Context as _, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, XskMap},
    programs::{Link as _, ProgramError, Xdp, XdpError, XdpMode as AyaXdpMode, xdp::XdpLink},
};
use xdhcp_common::{
    COUNTER_COUNT, Counter, GLOBAL_LOG_LEVEL, MAP_CONFIG, MAP_COUNTERS, MAP_LOCAL_ADDRS, MAP_XSKS,
    MAX_LOCAL_ADDRS, MAX_QUEUES, MAX_WORKERS_PER_QUEUE, PROG_NAME, STEER_VLAN, SteerConfig,
    local_addr_key, xsk_key,
};

/// The XDP object embedded at build time (empty when built without `cargo xtask build`).
static EMBEDDED_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdhcp.bpf.o"));

/// The error for an engine built without its XDP program.
const NO_OBJECT: &str =
    "this xdhcp was built without its XDP program; build it with `cargo xtask build`";

/// `aya_log_common::Level::Debug`: the level the program's debug events are logged at.
const AYA_LOG_LEVEL_DEBUG: u8 = 4;
/// Below `Level::Error` (1): every `aya-log` statement in the program is disabled.
const AYA_LOG_LEVEL_OFF: u8 = 0;

/// Drains the aya-log ring buffer into the `log` facade.
type DebugFlush = Box<dyn FnMut() + Send>;

/// How to attach the program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpMode {
    /// Native (driver) XDP if the driver supports it, otherwise generic (skb) XDP.
    #[default]
    Auto,
    /// Native (driver) XDP only; fail if the driver refuses.
    Native,
    /// Generic XDP, run by the kernel's network stack (works on every interface, slower).
    Skb,
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Skb => "skb",
        })
    }
}

/// What to load and where to attach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Interface to attach to (by name, in the caller's network namespace).
    pub iface: String,
    pub mode: XdpMode,
    /// AF_XDP worker sockets per rx queue (0..=[`MAX_WORKERS_PER_QUEUE`]); 0 steers nothing.
    pub workers_per_queue: u32,
    /// Our unicast addresses (server identifiers, interface addresses): renewing clients and
    /// relay agents send DHCP to them (RFC 2131 §4.1), so unicast UDP/67 to them is steered.
    pub local_addrs: Vec<Ipv4Addr>,
    /// Steer 802.1Q / 802.1ad (QinQ) tagged frames too.
    pub steer_vlan: bool,
    /// Enable the program's `aya-log` debug events (drained by [`Loader::flush_debug_events`]).
    ///
    /// They go to the `log` facade's logger *as installed when the loader is prepared*
    /// (aya-log binds it then): set up logging (tracing-subscriber bridges `log`) first.
    pub debug_events: bool,
}

impl LoadOptions {
    /// Defaults: auto mode, one worker per queue, no local addresses, VLAN steering on, debug
    /// events off.
    pub fn new(iface: impl Into<String>) -> Self {
        Self {
            iface: iface.into(),
            mode: XdpMode::Auto,
            workers_per_queue: 1,
            local_addrs: Vec::new(),
            steer_vlan: true,
            debug_events: false,
        }
    }
}

/// The program's per-verdict counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpCounters([u64; COUNTER_COUNT as usize]);

impl XdpCounters {
    /// The value of one counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize]
    }

    /// `(counter, value)` in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.iter().map(|&c| (c, self.get(c)))
    }

    /// `self - earlier`, counter by counter (saturating: counters only grow, but a reader may
    /// race a CPU's increment).
    pub fn since(&self, earlier: &XdpCounters) -> XdpCounters {
        let mut out = [0; COUNTER_COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self.0[i].saturating_sub(earlier.0[i]);
        }
        XdpCounters(out)
    }
}

impl fmt::Display for XdpCounters {
    /// `seen=10 redirected=7 ...`, zero counters omitted except `seen`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (c, v) in self.iter() {
            if v == 0 && c != Counter::Seen {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{}={v}", c.name())?;
        }
        Ok(())
    }
}

/// The loaded (and, after [`Loader::attach`], attached) XDP program with its maps.
///
/// Dropping it detaches the program from the interface.
pub struct Loader {
    // Field order is drop order: detach first, then close the maps and the program.
    link: Option<XdpLink>,
    attached: Option<XdpMode>,
    opts: LoadOptions,
    xsks: XskMap<MapData>,
    counters: PerCpuArray<MapData, u64>,
    local_addrs: BpfHashMap<MapData, u32, u8>,
    // Behind a Mutex only so that `Loader` is `Sync` (`&Loader` can go to the stats thread).
    debug_flush: Option<Mutex<DebugFlush>>,
    ebpf: Ebpf,
}

impl fmt::Debug for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("iface", &self.opts.iface)
            .field("attached", &self.attached)
            .field("workers_per_queue", &self.opts.workers_per_queue)
            .finish_non_exhaustive()
    }
}

impl Loader {
    /// Loads the embedded program, configures it and attaches it to `opts.iface`.
    ///
    /// # Errors
    /// Missing privileges, an engine built without its XDP program, a verifier rejection, an
    /// unknown interface or an attach the kernel refuses; each message says how to fix it.
    pub fn load(opts: &LoadOptions) -> anyhow::Result<Self> {
        let mut loader = Self::prepare(embedded_object()?, opts)?;
        loader.attach()?;
        Ok(loader)
    }

    /// Loads `object` into the kernel and configures its maps, without attaching it anywhere.
    ///
    /// For tests (`BPF_PROG_TEST_RUN` on [`Loader::program_fd`]) and for callers that need the
    /// maps before the program sees traffic; [`Loader::attach`] finishes the job.
    ///
    /// # Errors
    /// As [`Loader::load`], minus the attach errors.
    pub fn prepare(object: &[u8], opts: &LoadOptions) -> anyhow::Result<Self> {
        if object.is_empty() {
            bail!(NO_OBJECT);
        }
        if opts.workers_per_queue > MAX_WORKERS_PER_QUEUE {
            bail!(
                "{} workers per rx queue requested; the XDP program supports at most {MAX_WORKERS_PER_QUEUE}",
                opts.workers_per_queue
            );
        }
        check_privileges()?;

        let level = if opts.debug_events {
            AYA_LOG_LEVEL_DEBUG
        } else {
            AYA_LOG_LEVEL_OFF
        };
        let mut ebpf = EbpfLoader::new()
            .override_global(GLOBAL_LOG_LEVEL, &level, false)
            .load(object)
            .map_err(|e| explain_permission(anyhow!(e), "creating the XDP program's maps"))?;

        // The reader is set up even with events off, so a flush would show any event the level
        // override failed to silence (the tests rely on that).
        let debug_flush = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(mut logger) => {
                let flush: DebugFlush = Box::new(move || logger.flush());
                Some(Mutex::new(flush))
            }
            Err(e) if opts.debug_events => {
                return Err(e).context("setting up the XDP program's debug events (aya-log)");
            }
            Err(_) => None,
        };

        let mut config: Array<MapData, SteerConfig> = take_map(&mut ebpf, MAP_CONFIG)?;
        let steer = SteerConfig {
            workers_per_queue: opts.workers_per_queue,
            flags: if opts.steer_vlan { STEER_VLAN } else { 0 },
        };
        config
            .set(0, steer, 0)
            .context("writing the XDP program's CONFIG map")?;
        let xsks: XskMap<MapData> = take_map(&mut ebpf, MAP_XSKS)?;
        let counters: PerCpuArray<MapData, u64> = take_map(&mut ebpf, MAP_COUNTERS)?;
        let local_addrs: BpfHashMap<MapData, u32, u8> = take_map(&mut ebpf, MAP_LOCAL_ADDRS)?;

        let program: &mut Xdp = ebpf
            .program_mut(PROG_NAME)
            .with_context(|| format!("the XDP object has no program named {PROG_NAME:?}"))?
            .try_into()
            .with_context(|| format!("{PROG_NAME:?} in the XDP object is not an XDP program"))?;
        program
            .load()
            .map_err(|e| explain_permission(anyhow!(e), "loading the XDP program (verifier)"))?;

        let mut loader = Loader {
            link: None,
            attached: None,
            opts: opts.clone(),
            xsks,
            counters,
            local_addrs,
            debug_flush,
            ebpf,
        };
        loader.set_local_addrs(&opts.local_addrs)?;
        Ok(loader)
    }

    /// Attaches the program to `iface` in `mode` (see [`XdpMode`]); returns the mode obtained.
    ///
    /// # Errors
    /// Unknown interface, or the kernel refused (message with the likely cause and fix). Fails
    /// if already attached.
    pub fn attach(&mut self) -> anyhow::Result<XdpMode> {
        if self.link.is_some() {
            bail!("the XDP program is already attached to {}", self.opts.iface);
        }
        let iface = self.opts.iface.clone();
        let mode = match self.opts.mode {
            XdpMode::Native => {
                self.attach_as(&iface, XdpMode::Native)?;
                XdpMode::Native
            }
            XdpMode::Skb => {
                self.attach_as(&iface, XdpMode::Skb)?;
                XdpMode::Skb
            }
            XdpMode::Auto => match self.attach_as(&iface, XdpMode::Native) {
                Ok(()) => XdpMode::Native,
                Err(native) => {
                    tracing::warn!(
                        iface = %iface,
                        reason = %format!("{native:#}"),
                        "native XDP refused; falling back to generic (skb) XDP"
                    );
                    self.attach_as(&iface, XdpMode::Skb)
                        .with_context(|| format!("native XDP was refused first: {native:#}"))?;
                    XdpMode::Skb
                }
            },
        };
        tracing::info!(iface = %iface, mode = %mode, "XDP program attached");
        self.attached = Some(mode);
        Ok(mode)
    }

    fn attach_as(&mut self, iface: &str, mode: XdpMode) -> anyhow::Result<()> {
        let aya_mode = match mode {
            XdpMode::Native | XdpMode::Auto => AyaXdpMode::Driver,
            XdpMode::Skb => AyaXdpMode::Skb,
        };
        let program = self.program_mut()?;
        let id = program
            .attach(iface, aya_mode)
            .map_err(|e| explain_attach(e, iface, mode))?;
        let link = program
            .take_link(id)
            .context("taking ownership of the XDP link")?;
        self.link = Some(link);
        Ok(())
    }

    /// Detaches the program (also done on drop). Frames go to the kernel from here on.
    ///
    /// # Errors
    /// The kernel refused to detach (the program stays attached until the process exits).
    pub fn detach(&mut self) -> anyhow::Result<()> {
        if let Some(link) = self.link.take() {
            self.attached = None;
            link.detach()
                .with_context(|| format!("detaching the XDP program from {}", self.opts.iface))?;
        }
        Ok(())
    }

    /// The mode the program is attached in (`Native` or `Skb`), `None` if not attached.
    pub fn attached_mode(&self) -> Option<XdpMode> {
        self.attached
    }

    /// The options this loader was prepared with.
    pub fn options(&self) -> &LoadOptions {
        &self.opts
    }

    /// Puts the AF_XDP socket `fd` of `worker` on rx queue `queue` into the `XSKS` map.
    ///
    /// `worker` must be below `workers_per_queue` to ever receive a frame (the program hashes
    /// chaddr into `0..workers_per_queue`); the socket must be bound to `queue` of this interface
    /// (the kernel drops frames redirected to a socket bound elsewhere).
    ///
    /// # Errors
    /// `queue` or `worker` out of range, or the kernel refused the socket (not an AF_XDP socket).
    pub fn register_socket(
        &mut self,
        queue: u32,
        worker: u32,
        fd: impl AsFd,
    ) -> anyhow::Result<()> {
        let key = checked_key(queue, worker, self.opts.workers_per_queue)?;
        self.xsks.set(key, fd.as_fd(), 0).with_context(|| {
            format!("putting the AF_XDP socket of queue {queue} worker {worker} into {MAP_XSKS}")
        })
    }

    /// Removes a worker's socket; that worker's clients then fall back to the kernel.
    ///
    /// # Errors
    /// Out of range, or the map refused.
    pub fn unregister_socket(&mut self, queue: u32, worker: u32) -> anyhow::Result<()> {
        let key = checked_key(queue, worker, MAX_WORKERS_PER_QUEUE)?;
        self.xsks
            .unset(key)
            .with_context(|| format!("removing queue {queue} worker {worker} from {MAP_XSKS}"))
    }

    /// Replaces the set of local addresses unicast DHCP is steered for.
    ///
    /// # Errors
    /// More than [`MAX_LOCAL_ADDRS`] addresses, or a map update failed.
    pub fn set_local_addrs(&mut self, addrs: &[Ipv4Addr]) -> anyhow::Result<()> {
        let wanted: BTreeSet<u32> = addrs.iter().map(|a| local_addr_key(a.octets())).collect();
        if wanted.len() > MAX_LOCAL_ADDRS as usize {
            bail!(
                "{} local addresses given; the XDP program holds at most {MAX_LOCAL_ADDRS}",
                wanted.len()
            );
        }
        let stale: Vec<u32> = self
            .local_addrs
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !wanted.contains(k))
            .collect();
        for key in stale {
            self.local_addrs
                .remove(&key)
                .context("removing a local address from the XDP program")?;
        }
        for key in wanted {
            self.local_addrs
                .insert(key, 1, 0)
                .context("adding a local address to the XDP program")?;
        }
        self.opts.local_addrs = addrs.to_vec();
        Ok(())
    }

    /// The program's counters, summed over CPUs.
    ///
    /// # Errors
    /// The map read failed (should not happen while the loader lives).
    pub fn counters(&self) -> anyhow::Result<XdpCounters> {
        let mut out = [0u64; COUNTER_COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let per_cpu = self
                .counters
                .get(&(i as u32), 0)
                .with_context(|| format!("reading XDP counter {i}"))?;
            *slot = per_cpu.iter().fold(0u64, |acc, v| acc.wrapping_add(*v));
        }
        Ok(XdpCounters(out))
    }

    /// Drains the program's pending debug events into the `log` facade (bridged to `tracing` by
    /// tracing-subscriber). There are none unless [`LoadOptions::debug_events`] was set. Call it
    /// from a slow periodic task, never from a worker.
    pub fn flush_debug_events(&mut self) {
        if let Some(flush) = self.debug_flush.as_mut() {
            // A poisoned lock only means an earlier flush panicked; the logger is still usable.
            let flush = flush
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            flush();
        }
    }

    /// The loaded program's fd (for `BPF_PROG_TEST_RUN` in tests, or bpftool-style inspection).
    ///
    /// # Errors
    /// The program is not loaded (cannot happen after a successful `prepare`).
    pub fn program_fd(&self) -> anyhow::Result<BorrowedFd<'_>> {
        let program: &Xdp = self
            .ebpf
            .program(PROG_NAME)
            .context("the XDP program is gone")?
            .try_into()
            .context("not an XDP program")?;
        Ok(program
            .fd()
            .context("the XDP program is not loaded")?
            .as_fd())
    }

    fn program_mut(&mut self) -> anyhow::Result<&mut Xdp> {
        Ok(self
            .ebpf
            .program_mut(PROG_NAME)
            .context("the XDP program is gone")?
            .try_into()?)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        if self.link.is_some() {
            match self.detach() {
                Ok(()) => tracing::info!(iface = %self.opts.iface, "XDP program detached"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "XDP detach failed"),
            }
        }
    }
}

/// The object embedded at build time.
///
/// # Errors
/// The engine was built without `cargo xtask build` (the placeholder is empty).
pub fn embedded_object() -> anyhow::Result<&'static [u8]> {
    if EMBEDDED_OBJECT.is_empty() {
        bail!(NO_OBJECT);
    }
    Ok(EMBEDDED_OBJECT)
}

fn checked_key(queue: u32, worker: u32, workers: u32) -> anyhow::Result<u32> {
    if worker >= workers.max(1) {
        bail!("worker {worker} is out of range: {workers} worker(s) per rx queue configured");
    }
    xsk_key(queue, worker).with_context(|| {
        format!(
            "queue {queue} / worker {worker} out of range (the XDP program steers at most \
             {MAX_QUEUES} rx queues and {MAX_WORKERS_PER_QUEUE} workers per queue)"
        )
    })
}

fn take_map<T>(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).with_context(|| {
        format!("the XDP object has no map {name:?}: it was built from another version of xdp-ebpf")
    })?;
    T::try_from(map).with_context(|| format!("map {name:?} in the XDP object has the wrong type"))
}

// Capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Fails early, with the fix, when the process cannot load and attach XDP programs.
fn check_privileges() -> anyhow::Result<()> {
    let Some(eff) = effective_capabilities() else {
        // No /proc (unusual): let the kernel say no, explain_permission adds the hint.
        return Ok(());
    };
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "loading the XDP program needs root or the capabilities CAP_BPF and CAP_NET_ADMIN \
         (missing: {}); run it as root (sudo) or grant them: \
         `sudo setcap cap_bpf,cap_net_admin,cap_net_raw,cap_ipc_lock+ep path/to/xdhcp`",
        missing.join(", ")
    )
}

fn effective_capabilities() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Adds the privilege hint to an EPERM/EACCES coming out of a load step.
fn explain_permission(err: anyhow::Error, what: &str) -> anyhow::Error {
    match errno_in(err.as_ref()) {
        Some(libc::EPERM) | Some(libc::EACCES) => err.context(format!(
            "{what}: permission denied; run as root or with CAP_BPF and CAP_NET_ADMIN"
        )),
        _ => err.context(what.to_owned()),
    }
}

/// Turns an attach failure into an operator-facing error with the likely cause and the fix.
fn explain_attach(err: ProgramError, iface: &str, mode: XdpMode) -> anyhow::Error {
    if let ProgramError::UnknownInterface { .. } = err {
        let known = known_interfaces();
        return anyhow!(
            "no such interface {iface:?} in this network namespace{}",
            if known.is_empty() {
                String::new()
            } else {
                format!(" (interfaces: {})", known.join(", "))
            }
        );
    }
    let errno = match &err {
        ProgramError::XdpError(XdpError::NetlinkError(nl)) => nl.raw_os_error(),
        other => errno_in(other),
    };
    let native = mode != XdpMode::Skb;
    let hint = match errno {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "permission denied: attaching XDP needs root or CAP_NET_ADMIN".to_owned()
        }
        Some(libc::ERANGE) if native => format!(
            "the MTU is too large for native XDP on {iface}: on a veth the peer's MTU must be at \
             most about 3500 bytes; lower it (`ip link set dev PEER mtu 1500`) or use \
             `--xdp-mode skb`"
        ),
        Some(libc::EOPNOTSUPP) if native => format!(
            "the driver of {iface} does not support native XDP; use `--xdp-mode skb` (or `auto`)"
        ),
        Some(libc::EBUSY) | Some(libc::EEXIST) => format!(
            "another XDP program is already attached to {iface} (see `ip -d link show {iface}`; \
             if it is stale, remove it with `ip link set dev {iface} xdp off`)"
        ),
        _ if native => "the kernel refused native XDP; try `--xdp-mode skb`".to_owned(),
        _ => "the kernel refused generic XDP".to_owned(),
    };
    anyhow::Error::new(err).context(format!(
        "attaching the XDP program to {iface} in {} mode failed: {hint}",
        if native { "native" } else { "skb" }
    ))
}

fn errno_in(err: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(code) = io.raw_os_error()
        {
            return Some(code);
        }
        cur = e.source();
    }
    None
}

/// Interface names of the calling thread's network namespace (`/proc/thread-self/net/dev`:
/// unlike `/sys/class/net`, it follows `setns`, so it is right inside `ip netns exec` and in
/// threads that joined a namespace).
fn known_interfaces() -> Vec<String> {
    let mut names: Vec<String> = fs::read_to_string("/proc/thread-self/net/dev")
        .map(|dev| {
            dev.lines()
                .skip(2)
                .filter_map(|l| l.split_once(':'))
                .map(|(name, _)| name.trim().to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_object_is_refused_with_the_fix() {
        let err = Loader::prepare(&[], &LoadOptions::new("lo")).unwrap_err();
        assert!(format!("{err:#}").contains("cargo xtask build"), "{err:#}");
    }

    #[test]
    fn too_many_workers_are_refused() {
        let mut opts = LoadOptions::new("lo");
        opts.workers_per_queue = MAX_WORKERS_PER_QUEUE + 1;
        let err = Loader::prepare(b"not empty", &opts).unwrap_err();
        assert!(format!("{err}").contains("at most"), "{err}");
    }

    #[test]
    fn socket_keys_are_range_checked() {
        assert_eq!(checked_key(1, 2, 4).unwrap(), MAX_WORKERS_PER_QUEUE + 2);
        assert!(checked_key(0, 4, 4).is_err());
        assert!(checked_key(MAX_QUEUES, 0, 4).is_err());
        // workers_per_queue 0 (steering off) still accepts worker 0.
        assert_eq!(checked_key(0, 0, 0).unwrap(), 0);
    }

    #[test]
    fn counters_display_and_delta() {
        let mut a = XdpCounters::default();
        a.0[Counter::Seen as usize] = 10;
        a.0[Counter::Redirected as usize] = 7;
        a.0[Counter::PassNotIpv4 as usize] = 3;
        assert_eq!(a.to_string(), "seen=10 redirected=7 pass_not_ipv4=3");
        let mut b = a;
        b.0[Counter::Seen as usize] = 12;
        b.0[Counter::PassOtherPort as usize] = 2;
        let d = b.since(&a);
        assert_eq!(d.get(Counter::Seen), 2);
        assert_eq!(d.get(Counter::PassOtherPort), 2);
        assert_eq!(d.get(Counter::Redirected), 0);
        assert_eq!(XdpCounters::default().to_string(), "seen=0");
    }

    #[test]
    fn errno_is_found_through_the_source_chain() {
        let err = ProgramError::SyscallError(aya::sys::SyscallError {
            call: "bpf_link_create",
            io_error: io::Error::from_raw_os_error(libc::ERANGE),
        });
        assert_eq!(errno_in(&err), Some(libc::ERANGE));
        let msg = format!("{:#}", explain_attach(err, "veth0", XdpMode::Native));
        assert!(
            msg.contains("--xdp-mode skb") && msg.contains("MTU"),
            "{msg}"
        );
    }

    #[test]
    fn mode_names_match_the_cli() {
        use clap::ValueEnum as _;
        for (mode, name) in [
            (XdpMode::Auto, "auto"),
            (XdpMode::Native, "native"),
            (XdpMode::Skb, "skb"),
        ] {
            assert_eq!(mode.to_string(), name);
            assert_eq!(XdpMode::from_str(name, false).unwrap(), mode);
        }
    }
}
