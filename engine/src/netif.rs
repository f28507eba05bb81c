//! What xdhcp needs to know about the interface it serves: index, MAC, IPv4 addresses, MTU and
//! number of rx queues — all read in the caller's network namespace.
//!
//! Addresses come from `getifaddrs(3)` (namespace-correct by construction). The queue count
//! comes from `/sys/class/net/IF/queues/rx-*`, but sysfs shows the namespace of whoever mounted
//! it (`ip netns exec` remounts it; a bare `setns` does not), so it is trusted only when its
//! `ifindex` matches; otherwise `ETHTOOL_GCHANNELS` is asked, and failing both, one queue is
//! assumed (every device has at least one, and a missed queue only falls back to the kernel).

use crate::xsk::sys::{self, IfAddr};
use std::net::Ipv4Addr;
use std::path::Path;

/// An interface as xdhcp uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// IPv4 addresses with prefix lengths, in the kernel's order (primary first).
    pub ipv4: Vec<(Ipv4Addr, u8)>,
    pub mtu: u32,
    /// Receive queues (>= 1).
    pub rx_queues: u32,
}

impl Interface {
    /// The first (primary) IPv4 address and its prefix.
    pub fn primary_ipv4(&self) -> Option<(Ipv4Addr, u8)> {
        self.ipv4.first().copied()
    }
}

/// Why an interface cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NetifError {
    #[error("no such interface '{0}' (see `ip link`)")]
    NotFound(String),
    #[error(
        "interface '{0}' has no Ethernet (6-byte) hardware address; xdhcp serves Ethernet links"
    )]
    NotEthernet(String),
    #[error("reading the addresses of '{name}': {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
}

/// Look up `name` in the current network namespace.
///
/// # Errors
/// [`NetifError::NotFound`] (with the hint to run `ip link`), a non-Ethernet device, or a
/// failing `getifaddrs`/`ioctl`.
pub fn lookup(name: &str) -> Result<Interface, NetifError> {
    let ifindex = sys::if_nametoindex(name).ok_or_else(|| NetifError::NotFound(name.to_owned()))?;
    let io = |source| NetifError::Io {
        name: name.to_owned(),
        source,
    };
    let addrs = sys::interface_addrs().map_err(io)?;
    let mut mac = None;
    let mut ipv4 = Vec::new();
    for a in addrs {
        match a {
            IfAddr::Link {
                ifindex: i, mac: m, ..
            } if i == ifindex => {
                if let Ok(m) = <[u8; 6]>::try_from(m.as_slice()) {
                    mac = Some(m);
                }
            }
            IfAddr::V4 {
                name: n,
                addr,
                netmask,
            } if n == name => {
                ipv4.push((addr, prefix_len(netmask)));
            }
            _ => {}
        }
    }
    let mac = mac.ok_or_else(|| NetifError::NotEthernet(name.to_owned()))?;
    let mtu = sys::interface_mtu(name).map_err(io)?;
    Ok(Interface {
        name: name.to_owned(),
        ifindex,
        mac,
        ipv4,
        mtu,
        rx_queues: rx_queues(name, ifindex),
    })
}

/// Prefix length of a netmask (leading one bits; a non-contiguous mask counts its leading ones).
pub fn prefix_len(netmask: Ipv4Addr) -> u8 {
    u32::from(netmask).leading_ones() as u8
}

fn rx_queues(name: &str, ifindex: u32) -> u32 {
    let dir = Path::new("/sys/class/net").join(name);
    let same_ns = std::fs::read_to_string(dir.join("ifindex"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        == Some(ifindex);
    if same_ns && let Some(n) = count_rx_queues(&dir.join("queues")) {
        return n;
    }
    match sys::interface_rx_channels(name) {
        Ok(n) if n > 0 => n,
        _ => 1,
    }
}

/// Number of `rx-N` entries in a sysfs `queues` directory.
fn count_rx_queues(dir: &Path) -> Option<u32> {
    let n = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|s| s.starts_with("rx-")))
        .count();
    (n > 0).then_some(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_says_how_to_look() {
        let e = lookup("nosuchif0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no such interface 'nosuchif0' (see `ip link`)"
        );
    }

    #[test]
    fn loopback_is_described() {
        let lo = lookup("lo").unwrap();
        assert!(lo.ifindex > 0);
        assert_eq!(lo.mac, [0; 6]);
        assert!(lo.mtu >= 1280);
        assert!(lo.rx_queues >= 1);
        if let Some((addr, prefix)) = lo.primary_ipv4() {
            assert!(addr.is_loopback());
            assert_eq!(prefix, 8);
        }
    }

    #[test]
    fn prefix_lengths() {
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 255, 0)), 24);
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 0, 0)), 16);
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 255, 255)), 32);
        assert_eq!(prefix_len(Ipv4Addr::new(0, 0, 0, 0)), 0);
        assert_eq!(prefix_len(Ipv4Addr::new(255, 255, 255, 252)), 30);
    }

    #[test]
    fn counts_rx_queue_dirs() {
        let dir = std::env::temp_dir().join(format!("xdhcp-netif-{}", std::process::id()));
        for d in ["rx-0", "rx-1", "tx-0"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        assert_eq!(count_rx_queues(&dir), Some(2));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(count_rx_queues(&dir), None);
    }
}
