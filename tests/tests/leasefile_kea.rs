//! Lease file import / export against the real thing (issue 4 §6).
//!
//! - `kea-dhcp4` (Kea 2.2, Debian's) starts with a lease file written by
//!   [`xdhcp::leasefile::export_kea`] as its memfile, in a network namespace of its own with no
//!   interfaces configured; its `lease_cmds` hook answers `lease4-get-all` on a control socket,
//!   and every lease must be there as written, with nothing discarded or flagged in its log.
//! - `kea-lfc` (Kea's lease file cleanup) rewrites an export the way Kea compacts its own files;
//!   reading its output back gives the same leases (no root needed).
//! - A 1 M-line import of each format runs with a counting allocator: the peak memory the
//!   import allocates does not grow with the file.
//!
//! Needs root (namespace), `kea-dhcp4` with the lease_cmds hook and `kea-lfc` (`cargo xtask
//! setup` installs kea-dhcp4-server); under `CI=true` a missing requirement fails the test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write as _};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xdhcp::config::{ServerConfig, SubnetId};
use xdhcp::lease::{ClientKey, LeaseRecord, LeaseState, LeaseStore, LeaseTables, Secs};
use xdhcp::leasefile::{ExportSkip, Format, KEA_HEADER, export_kea, free_record, import};
use xdhcp_tests::netns::NetNs;
use xdhcp_tests::{missing, require_root};

// ------------------------------------------------------------------------ counting allocator

/// The system allocator, counting live bytes per thread (a test measures its own thread only,
/// whatever other tests do in parallel).
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn note(delta: i64) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// adds bookkeeping in thread-local `Cell`s (const-initialised, so touching them never
// allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (hence from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as i64));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`, and `new_size` is the caller's valid size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result and the most bytes it held allocated at once (this thread).
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, i64) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    (r, PEAK.with(Cell::get) - base)
}

// ------------------------------------------------------------------------ shared set-up

const CONFIG: &str = include_str!("../../engine/tests/fixtures/leases/config.toml");

fn config() -> ServerConfig {
    xdhcp::config::parse(CONFIG, Path::new("leasefile.toml")).expect("test config")
}

fn now() -> Secs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0x5e, b[0], b[1], b[2], b[3]]
}

fn rec(
    addr: Ipv4Addr,
    subnet: SubnetId,
    client: ClientKey,
    state: LeaseState,
    expires: Secs,
) -> LeaseRecord {
    LeaseRecord {
        client,
        state,
        expires,
        ..free_record(addr, subnet)
    }
}

/// A journal-like sequence: 1500 bound clients (hardware and type-1 client ids), then every
/// other state, an infinite lease, an address bound and later freed, and three records Kea
/// cannot take (an offer, a DUID client without hardware address, a hashed long id).
fn records(now: Secs) -> Vec<LeaseRecord> {
    let (lan, edge) = (SubnetId(0), SubnetId(1));
    let base = u32::from(Ipv4Addr::new(10, 213, 1, 0));
    let mut v = Vec::new();
    for i in 0..1500u32 {
        let m = mac(i);
        let key = if i % 3 == 0 {
            let mut id = vec![1];
            id.extend_from_slice(&m);
            ClientKey::from_client_id(&id)
        } else {
            ClientKey::from_hw(1, &m)
        };
        let expires = now + 600 + Secs::from(i);
        v.push(rec(
            Ipv4Addr::from(base + i),
            lan,
            key,
            LeaseState::Bound,
            expires,
        ));
    }
    let a = |d: u8| Ipv4Addr::new(192, 168, 5, d);
    let hw = |n: u32| ClientKey::from_hw(1, &mac(10_000 + n));
    v.extend([
        rec(a(10), edge, hw(1), LeaseState::Bound, u64::from(u32::MAX)),
        rec(a(11), edge, hw(2), LeaseState::Expired, now - 100),
        rec(a(12), edge, hw(3), LeaseState::Released, now - 50),
        rec(a(13), edge, hw(4), LeaseState::Declined, now + 86_400),
        rec(
            a(14),
            edge,
            xdhcp::leasefile::anonymous_key(),
            LeaseState::Declined,
            now + 3600,
        ),
        rec(a(15), edge, hw(5), LeaseState::Bound, now + 3600),
        free_record(a(15), edge),
        rec(a(16), edge, hw(6), LeaseState::Bound, now - 10),
        rec(a(17), edge, hw(7), LeaseState::Offered, now + 30),
        rec(
            a(18),
            edge,
            ClientKey::from_client_id(&[255, 0, 0, 0, 1, 0, 1, 0xab, 0xcd]),
            LeaseState::Bound,
            now + 3600,
        ),
        rec(
            a(19),
            edge,
            ClientKey::from_client_id(&[255; 64]),
            LeaseState::Bound,
            now + 3600,
        ),
    ]);
    v
}

/// What a Kea row says, as compared here: hwaddr, client id, state, subnet id, expire.
type Row = (String, String, u32, u32, u64);

/// The rows Kea should end with after replaying the export (a later row for an address wins;
/// deletions remove), read straight from the CSV text.
fn expected_rows(csv: &str) -> BTreeMap<Ipv4Addr, Row> {
    let mut m = BTreeMap::new();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(KEA_HEADER));
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 11, "{l}");
        let addr: Ipv4Addr = f[0].parse().unwrap();
        if f[3] == "0" {
            m.remove(&addr);
            continue;
        }
        m.insert(
            addr,
            (
                f[1].to_owned(),
                f[2].to_owned(),
                f[9].parse().unwrap(),
                f[5].parse().unwrap(),
                f[4].parse().unwrap(),
            ),
        );
    }
    m
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> io::Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "xdhcp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p)?;
        Ok(Scratch(p))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `name` on `PATH` or in the sbin directories (not on an ordinary user's `PATH`).
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Kea's lease_cmds hook library, wherever the distribution put it.
fn lease_cmds_hook() -> Option<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/lib/kea/hooks"),
        PathBuf::from("/usr/lib64/kea/hooks"),
    ];
    if let Ok(rd) = std::fs::read_dir("/usr/lib") {
        dirs.extend(rd.flatten().map(|e| e.path().join("kea/hooks")));
    }
    dirs.into_iter()
        .map(|d| d.join("libdhcp_lease_cmds.so"))
        .find(|p| p.is_file())
}

/// The Kea configuration serving xdhcp's subnets with the ids the export uses (index + 1).
fn kea_config(cfg: &ServerConfig, dir: &Scratch, leases: &Path, hook: Option<&Path>) -> String {
    let subnets: Vec<String> = cfg
        .subnets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let pools: Vec<String> = s
                .ranges
                .iter()
                .map(|r| format!(r#"{{ "pool": "{} - {}" }}"#, r.start, r.end))
                .collect();
            format!(
                r#"{{ "id": {}, "subnet": "{}/{}", "pools": [ {} ] }}"#,
                i + 1,
                s.network.addr,
                s.network.prefix,
                pools.join(", ")
            )
        })
        .collect();
    let hooks = hook.map_or(String::new(), |h| {
        format!(
            r#""control-socket": {{ "socket-type": "unix", "socket-name": "{}" }},
  "hooks-libraries": [ {{ "library": "{}" }} ],"#,
            dir.path("ctrl.sock").display(),
            h.display()
        )
    });
    format!(
        r#"{{ "Dhcp4": {{
  "interfaces-config": {{ "interfaces": [] }},
  {hooks}
  "lease-database": {{ "type": "memfile", "persist": true, "lfc-interval": 0, "name": "{}" }},
  "subnet4": [ {} ],
  "loggers": [ {{ "name": "kea-dhcp4", "severity": "INFO",
                 "output_options": [ {{ "output": "{}" }} ] }} ]
}} }}"#,
        leases.display(),
        subnets.join(",\n    "),
        dir.path("kea.log").display()
    )
}

fn export(records: &[LeaseRecord], now: Secs) -> (xdhcp::leasefile::ExportReport, String) {
    let mut out = Vec::new();
    let report = export_kea(records.iter().copied(), now, &mut |_| None, &mut out).unwrap();
    (report, String::from_utf8(out).unwrap())
}

/// A store that keeps the last record per address (what replay ends with).
#[derive(Default)]
struct LastByAddr(BTreeMap<Ipv4Addr, LeaseRecord>);

impl LeaseStore for LastByAddr {
    fn append(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        for r in records {
            self.0.insert(r.addr, *r);
        }
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ------------------------------------------------------------------------ real Kea

#[test]
fn kea_dhcp4_loads_every_exported_lease() {
    const T: &str = "kea_dhcp4_loads_every_exported_lease";
    if !require_root(T) {
        return;
    }
    let (Some(kea), Some(hook)) = (program("kea-dhcp4"), lease_cmds_hook()) else {
        missing(
            T,
            "needs kea-dhcp4 and its lease_cmds hook (apt-get install kea-dhcp4-server)",
        );
        return;
    };
    let cfg = config();
    let now = now();
    let recs = records(now);
    let (report, csv) = export(&recs, now);
    assert_eq!(
        (report.written, report.deleted, report.skipped),
        (1507, 1, 3),
        "{report:?}"
    );
    assert_eq!(
        report.examples.iter().map(|e| e.1).collect::<Vec<_>>(),
        [
            ExportSkip::Offered,
            ExportSkip::NoHwAddr,
            ExportSkip::HashedClientId
        ]
    );
    let want = expected_rows(&csv);
    assert_eq!(want.len(), 1506, "1500 + 5.10..5.14 and 5.16; 5.15 deleted");

    let dir = Scratch::new("kea-load").unwrap();
    let leases = dir.path("leases4.csv");
    std::fs::write(&leases, &csv).unwrap();
    let conf = dir.path("kea-dhcp4.json");
    std::fs::write(&conf, kea_config(&cfg, &dir, &leases, Some(&hook))).unwrap();

    // Its own namespace: with no interfaces Kea opens no DHCP socket anyway, but nothing it
    // might do can reach a real network.
    let ns = NetNs::new("keaload").unwrap();
    let mut cmd = ns.cmd("env");
    cmd.arg(format!("KEA_PIDFILE_DIR={}", dir.0.display()))
        .arg(format!("KEA_LOCKFILE_DIR={}", dir.0.display()))
        .arg(&kea)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = ns.spawn(&mut cmd).unwrap();

    let sock = dir.path("ctrl.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Ok(Some(status)) = guard.child().try_wait() {
            let log = std::fs::read_to_string(dir.path("kea.log")).unwrap_or_default();
            panic!("kea-dhcp4 exited ({status}) during start-up:\n{log}");
        }
        if let Ok(mut s) = UnixStream::connect(&sock) {
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(br#"{ "command": "lease4-get-all" }"#).unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no control socket from kea-dhcp4 after 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = guard.stop(Duration::from_secs(5)).unwrap();
    let log = std::fs::read_to_string(dir.path("kea.log")).unwrap_or_default();
    for bad in ["LOAD_ROW_ERROR", "SANITY_FAIL", " ERROR ", " FATAL "] {
        assert!(
            !log.contains(bad),
            "Kea complained ({bad}):\n{log}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(log.contains("DHCPSRV_MEMFILE_LEASE_FILE_LOAD"), "{log}");

    let v: serde_json::Value = serde_json::from_str(&answer).expect("JSON from Kea");
    assert_eq!(v["result"], 0, "{answer:.300}");
    let mut got = BTreeMap::new();
    for l in v["arguments"]["leases"].as_array().expect("leases") {
        let addr: Ipv4Addr = l["ip-address"].as_str().unwrap().parse().unwrap();
        let n = |k: &str| l[k].as_u64().unwrap_or_else(|| panic!("{k} in {l}"));
        let row: Row = (
            l["hw-address"].as_str().unwrap_or("").to_owned(),
            l["client-id"].as_str().unwrap_or("").to_owned(),
            n("state") as u32,
            n("subnet-id") as u32,
            n("cltt") + n("valid-lft"),
        );
        got.insert(addr, row);
    }
    assert_eq!(
        got.len(),
        want.len(),
        "Kea holds a different number of leases"
    );
    for (addr, w) in &want {
        assert_eq!(got.get(addr), Some(w), "{addr}");
    }
    // Spot checks of the mapping itself.
    let a = |d: u8| Ipv4Addr::new(192, 168, 5, d);
    assert_eq!(
        got[&a(10)].4 - u64::from(u32::MAX),
        now,
        "infinite: cltt = now"
    );
    assert_eq!(
        (got[&a(11)].2, got[&a(12)].2, got[&a(13)].2, got[&a(16)].2),
        (2, 2, 1, 2)
    );
    assert_eq!(
        (&got[&a(14)].0[..], &got[&a(14)].1[..]),
        ("", ""),
        "anonymous decline"
    );
    assert!(!got.contains_key(&a(15)), "freed after binding: deleted");
}

#[test]
fn kea_lfc_compacts_an_export_to_the_same_leases() {
    const T: &str = "kea_lfc_compacts_an_export_to_the_same_leases";
    let Some(lfc) = program("kea-lfc") else {
        missing(T, "needs kea-lfc (apt-get install kea-dhcp4-server)");
        return;
    };
    let cfg = config();
    let tables = LeaseTables::new(&cfg, 2);
    let now = now();
    let (_, csv) = export(&records(now), now);
    let dir = Scratch::new("kea-lfc").unwrap();
    let input = dir.path("leases4.csv.1");
    std::fs::write(&input, &csv).unwrap();
    std::fs::write(
        dir.path("kea-dhcp4.json"),
        kea_config(&cfg, &dir, &dir.path("leases4.csv"), None),
    )
    .unwrap();
    // kea-lfc reads previous (-x) + input (-i), writes output (-o), then renames it through
    // the finish file (-f) to the previous file: the result is at -x.
    let prev = dir.path("leases4.csv.2");
    let out = Command::new(&lfc)
        .arg("-4")
        .arg("-x")
        .arg(&prev)
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(dir.path("leases4.csv.output"))
        .arg("-f")
        .arg(dir.path("leases4.csv.completed"))
        .arg("-p")
        .arg(dir.path("lfc.pid"))
        .arg("-c")
        .arg(dir.path("kea-dhcp4.json"))
        .env("KEA_LOCKFILE_DIR", &dir.0)
        .env("KEA_PIDFILE_DIR", &dir.0)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "kea-lfc: {out:?}");
    let compacted = std::fs::read_to_string(&prev).expect("kea-lfc output");
    assert!(compacted.starts_with(KEA_HEADER), "{compacted:.200}");

    // What our reader makes of our export, and of Kea's rewrite of it: the same leases.
    let read = |text: &str| {
        let mut s = LastByAddr::default();
        let r = import(
            Format::Kea,
            text.as_bytes(),
            &tables,
            now,
            &mut s,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(r.skipped, 0, "{r}");
        s.0.retain(|_, r| r.state_at(now).is_some());
        s.0
    };
    let ours = read(&csv);
    let kea = read(&compacted);
    assert_eq!(ours.len(), 1506);
    assert_eq!(kea, ours);
}

// ------------------------------------------------------------------------ streaming

/// A file of `n` entries produced on the fly: nothing of it exists in memory at once.
struct Synth {
    format: Format,
    n: u64,
    i: u64,
    pending: Vec<u8>,
    pos: usize,
}

impl Synth {
    fn new(format: Format, n: u64) -> Self {
        let pending = match format {
            Format::Kea => format!("{KEA_HEADER}\n").into_bytes(),
            Format::Isc => b"authoring-byte-order little-endian;\n".to_vec(),
        };
        Synth {
            format,
            n,
            i: 0,
            pending,
            pos: 0,
        }
    }
}

impl Read for Synth {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.pending.len() {
            if self.i == self.n {
                return Ok(0);
            }
            // 10.213.1.0 onwards, cycling: later entries supersede earlier ones.
            let a =
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 213, 1, 0)) + (self.i % 65_000) as u32);
            let m = mac(self.i as u32);
            let exp = 1_795_440_000 + self.i;
            self.pending.clear();
            self.pos = 0;
            let _ = match self.format {
                Format::Kea => writeln!(
                    self.pending,
                    "{a},{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x},,3600,{exp},1,0,0,host-{},0,",
                    m[0], m[1], m[2], m[3], m[4], m[5], self.i
                ),
                Format::Isc => write!(
                    self.pending,
                    "lease {a} {{\n  ends epoch {exp};\n  binding state active;\n  \
                     hardware ethernet {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x};\n  \
                     client-hostname \"host-{}\";\n}}\n",
                    m[0], m[1], m[2], m[3], m[4], m[5], self.i
                ),
            };
            self.i += 1;
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Counts records and keeps none.
#[derive(Default)]
struct Count(u64);

impl LeaseStore for Count {
    fn append(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        self.0 += records.len() as u64;
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn million_line_imports_stream_in_constant_memory() {
    let tables = LeaseTables::new(&config(), 2);
    // (format, entries for ~10 k lines, entries for ~1 M lines); ISC leases take 6 lines.
    for (format, small, large) in [
        (Format::Kea, 10_000, 1_000_000),
        (Format::Isc, 1_700, 170_000),
    ] {
        let run = |n: u64| {
            peak_of(|| {
                let mut sink = Count::default();
                let mut calls = 0u64;
                let r = import(
                    format,
                    BufReader::new(Synth::new(format, n)),
                    &tables,
                    1_795_439_000,
                    &mut sink,
                    &mut |_| calls += 1,
                )
                .unwrap();
                (r, sink.0, calls)
            })
        };
        let ((r_small, _, _), peak_small) = run(small);
        let ((r, stored, calls), peak) = run(large);
        assert_eq!(
            (r.imported, r.bound, r.skipped, stored),
            (large, large, 0, large),
            "{r}"
        );
        assert!(r.lines >= 1_000_000, "{} lines", r.lines);
        assert!(
            calls >= r.bytes / (256 * 1024),
            "progress every 256 KiB: {calls} calls"
        );
        assert_eq!(r_small.imported, small);
        eprintln!(
            "{format}: {} lines, {} MiB: peak {peak} B allocated (vs {peak_small} B for {} lines)",
            r.lines,
            r.bytes >> 20,
            r_small.lines
        );
        // The same small working set for 100x the input: no per-lease state is kept.
        assert!(peak < 256 * 1024, "{format}: {peak} B");
        assert!(
            peak <= peak_small + 16 * 1024,
            "{format}: {peak} B vs {peak_small} B"
        );
    }
}
