//! The journal on a disk that really fills up (issue 4 §5), and on one mounted read-only.
//!
//! A 4 MiB tmpfs is mounted for the state directory (removed on drop, also on panic). Leases are
//! journaled until the disk is filled by another file: from then on no change is acknowledged
//! (the gate drops the held ACKs, new records are refused), and once the file is removed the
//! journal resumes by itself. After a restart exactly the acknowledged leases are back. Other
//! fault kinds (EACCES, EIO on fsync, EROFS while running) are injected in the unit tests:
//! a tmpfs with files open for writing cannot be remounted read-only, so here read-only is
//! checked at start-up, where it must be a clear error.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdhcp::config::{AddrRange, Durability, Ipv4Net, ServerConfig, Subnet, SubnetId};
use xdhcp::journal::{Fate, Journal, JournalConfig, RETRY_INTERVAL};
use xdhcp::lease::{BindRequest, ClientKey, LeaseTables};
use xdhcp_tests::require_root;

const NOW: u64 = 1_700_000_000;

/// A small tmpfs mounted on a fresh directory; unmounted and removed on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let p = std::env::temp_dir().join(format!("xdhcp-diskfull-{}", std::process::id()));
        let _ = Command::new("umount").arg("-l").arg(&p).status();
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mount point");
        let d = SmallDisk(p);
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            &d.0,
        );
        d
    }

    fn remount(&self, mode: &str) {
        run("mount", &["-o", &format!("remount,{mode}")], &self.0);
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &str, args: &[&str], path: &Path) {
    let ok = Command::new(cmd)
        .args(args)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{cmd} {args:?} {} failed", path.display());
}

fn config() -> ServerConfig {
    ServerConfig {
        subnets: vec![Subnet {
            id: SubnetId(0),
            network: Ipv4Net {
                addr: Ipv4Addr::new(10, 9, 0, 0),
                prefix: 16,
            },
            ranges: vec![AddrRange {
                start: Ipv4Addr::new(10, 9, 0, 1),
                end: Ipv4Addr::new(10, 9, 255, 254),
            }],
            server_id: Ipv4Addr::new(10, 9, 0, 1),
            ..Subnet::default()
        }],
        shared_networks: Vec::new(),
        authoritative: true,
        offer_hold: 30,
        decline_probation: 600,
        default_subnet: Some(SubnetId(0)),
        durability: Durability::Fsync,
        state_dir: PathBuf::from("/nonexistent"),
    }
}

fn client(n: u32) -> ClientKey {
    let b = n.to_be_bytes();
    ClientKey::from_hw(1, &[0x02, 0x09, b[0], b[1], b[2], b[3]])
}

fn addr(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 9, 0, 10)) + n)
}

/// Bind client `n` and journal it; wait for the verdict.
fn lease(j: &Journal, t: &LeaseTables, n: u32) -> Option<Fate> {
    let l = t
        .bind(
            &BindRequest {
                client: client(n),
                subnet: SubnetId(0),
                addr: addr(n),
                lease: 3600,
                fixed: false,
            },
            NOW,
        )
        .expect("bind");
    let ticket = j.push(0, l)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        j.notify();
        let f = j.gate(0).expect("lane").fate(ticket);
        if f != Fate::Pending || Instant::now() > deadline {
            return Some(f);
        }
        std::thread::sleep(Duration::from_micros(20));
    }
}

#[test]
fn a_full_disk_stops_acks_and_serving_resumes_when_space_returns() {
    if !require_root("disk_full") {
        return;
    }
    let disk = SmallDisk::mount("4m");
    let state = disk.0.join("state");
    let cfg = JournalConfig::new(&state, Durability::Fsync, 1);
    let t = Arc::new(LeaseTables::new(&config(), 2));
    let (j, _) = Journal::open(cfg.clone(), Arc::clone(&t), NOW).expect("open");
    let mut acked = Vec::new();
    for n in 0..200 {
        assert_eq!(lease(&j, &t, n), Some(Fate::Send));
        acked.push(n);
    }

    // Fill the disk with something else.
    let filler = disk.0.join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    let chunk = vec![0xa5u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    drop(f);

    // Changes go on until the segment's last page is full; from the first failure on nothing
    // is acknowledged.
    let mut n = 200;
    let failed = loop {
        // Records first fill the segment's preallocated space (1 MiB, ~30 k records).
        assert!(n < 100_000, "the disk never filled: {:?}", j.stats());
        match lease(&j, &t, n) {
            Some(Fate::Send) => acked.push(n),
            Some(Fate::Drop) => break n,
            other => panic!("client {n}: {other:?}"),
        }
        n += 1;
    };
    assert!(!j.available());
    assert_eq!(lease(&j, &t, failed + 1), None, "refused while unavailable");
    let s = j.stats();
    assert!(
        s.failures >= 1 && s.failed_records >= 1 && s.refused >= 1,
        "{s:?}"
    );

    // Space comes back: the journal resumes by itself.
    std::fs::remove_file(&filler).expect("rm filler");
    let deadline = Instant::now() + RETRY_INTERVAL * 10;
    while !j.available() && Instant::now() < deadline {
        j.notify();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(j.available(), "resumed: {:?}", j.stats());
    for n in failed + 2..failed + 50 {
        assert_eq!(lease(&j, &t, n), Some(Fate::Send));
        acked.push(n);
    }
    j.shutdown();
    drop(j);

    // Exactly the acknowledged leases come back.
    let t2 = Arc::new(LeaseTables::new(&config(), 2));
    let (j2, r) = Journal::open(cfg.clone(), Arc::clone(&t2), NOW).expect("reopen");
    assert_eq!(r.bound as usize, acked.len(), "{r:?}");
    for &n in &acked {
        assert_eq!(t2.by_addr(addr(n)).map(|l| l.client), Some(client(n)));
    }
    assert!(
        t2.by_addr(addr(failed)).is_none(),
        "the failed batch left nothing"
    );
    j2.shutdown();
    drop(j2);

    // A read-only state directory is a clear start-up error.
    disk.remount("ro");
    let err = Journal::open(cfg, Arc::new(LeaseTables::new(&config(), 2)), NOW)
        .err()
        .expect("read-only refused")
        .to_string();
    disk.remount("rw");
    assert!(err.contains("writable"), "{err}");
}
