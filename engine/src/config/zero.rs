//! Zero-config mode: serve the interface's own subnet when no file is given.
//!
//! Modelled on dnsmasq's common default: lease every address of the interface's subnet
//! except the network address, the broadcast address and the interface's own address; tell
//! clients the interface is their router; identify the server by that same address. The
//! lease time comes from `--lease-time` and is also the ceiling, so a client cannot ask for
//! more than the operator chose; shorter requests are honoured down to two minutes (dnsmasq's
//! floor), so short-lived test clients still work.

use super::error::ConfigError;
use super::model::{
    AddrRange, Durability, Ipv4Net, LeaseTimes, OptionSet, ServerConfig, Subnet, SubnetId,
};
use super::options::is_unicast;
use super::validate::{
    DEFAULT_DECLINE_PROBATION, DEFAULT_OFFER_HOLD, DEFAULT_T1_PERMILLE, DEFAULT_T2_PERMILLE,
};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The interface facts zero-config mode needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZeroConfig {
    /// The interface's IPv4 address.
    pub addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// `--lease-time` in seconds.
    pub lease_time: u32,
    /// Where the lease journal lives.
    pub state_dir: PathBuf,
}

/// The shortest lease a client may ask for in zero-config mode (seconds).
pub const ZERO_CONFIG_MIN_LEASE: u32 = 120;
/// The largest subnet zero-config mode serves on its own (a /16: 65 534 addresses). Larger
/// interface prefixes are usually a mistake to lease out wholesale; write a config instead.
pub const ZERO_CONFIG_MIN_PREFIX: u8 = 16;

/// Build the configuration that serves `z.addr/z.prefix`.
///
/// # Errors
/// [`ConfigError::ZeroConfig`] when the prefix leaves no address to lease (/31, /32), is
/// wider than a /16, the interface address is not a usable host address of its subnet, or the
/// lease time is zero.
pub fn zero_config(z: &ZeroConfig) -> Result<ServerConfig, ConfigError> {
    let fail = |reason: String, help: &str| ConfigError::ZeroConfig {
        addr: z.addr,
        prefix: z.prefix,
        reason,
        help: help.to_string(),
    };
    let write_config = "write a configuration file with explicit ranges and pass it with --config \
                        (see engine/config/single-lan.toml)";
    let Some(net) = Ipv4Net::containing(z.addr, z.prefix) else {
        return Err(fail(
            format!("/{} is not a prefix length", z.prefix),
            write_config,
        ));
    };
    if z.prefix > 30 {
        return Err(fail(
            format!("a /{} subnet has no address left to lease", z.prefix),
            "give the interface a /30 or shorter prefix, or write a configuration file with \
             explicit ranges and pass it with --config",
        ));
    }
    if z.prefix < ZERO_CONFIG_MIN_PREFIX {
        return Err(fail(
            format!(
                "a /{} subnet is larger than the /{ZERO_CONFIG_MIN_PREFIX} zero-config serves on its own",
                z.prefix
            ),
            write_config,
        ));
    }
    if !is_unicast(z.addr) || z.addr == net.addr || z.addr == net.broadcast() {
        return Err(fail(
            format!("{} is not a host address of {net}", z.addr),
            "give the interface a unicast host address of its subnet",
        ));
    }
    if z.lease_time == 0 {
        return Err(fail(
            "the lease time is zero".into(),
            "pass --lease-time 1 or more (seconds)",
        ));
    }

    // Pool: the subnet's host addresses around the interface's own.
    let (first, last, own) = (
        u32::from(net.addr) + 1,
        u32::from(net.broadcast()) - 1,
        u32::from(z.addr),
    );
    let mut ranges = Vec::with_capacity(2);
    if own > first {
        ranges.push(AddrRange {
            start: Ipv4Addr::from(first),
            end: Ipv4Addr::from(own - 1),
        });
    }
    if own < last {
        ranges.push(AddrRange {
            start: Ipv4Addr::from(own + 1),
            end: Ipv4Addr::from(last),
        });
    }

    let mut options = OptionSet::default();
    // RFC 2132 §3.3 subnet mask, §3.5 router, §5.3 broadcast address.
    options.set(1, net.netmask().octets());
    options.set(3, z.addr.octets());
    options.set(28, net.broadcast().octets());

    let id = SubnetId(0);
    Ok(ServerConfig {
        subnets: vec![Subnet {
            id,
            network: net,
            ranges,
            excluded: Vec::new(),
            server_id: z.addr,
            lease: LeaseTimes {
                default: z.lease_time,
                min: ZERO_CONFIG_MIN_LEASE.min(z.lease_time),
                max: z.lease_time,
                t1_permille: DEFAULT_T1_PERMILLE,
                t2_permille: DEFAULT_T2_PERMILLE,
            },
            options,
            reservations: Vec::new(),
            shared_network: None,
            links: Vec::new(),
            filename: None,
            server_name: None,
            next_server: None,
        }],
        shared_networks: Vec::new(),
        authoritative: true,
        offer_hold: DEFAULT_OFFER_HOLD,
        decline_probation: DEFAULT_DECLINE_PROBATION,
        default_subnet: Some(id),
        durability: Durability::Fsync,
        state_dir: z.state_dir.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zc(addr: [u8; 4], prefix: u8, lease_time: u32) -> Result<ServerConfig, ConfigError> {
        zero_config(&ZeroConfig {
            addr: Ipv4Addr::from(addr),
            prefix,
            lease_time,
            state_dir: PathBuf::from("/tmp/xdhcp-test"),
        })
    }

    fn range(a: [u8; 4], b: [u8; 4]) -> AddrRange {
        AddrRange {
            start: a.into(),
            end: b.into(),
        }
    }

    #[test]
    fn slash24_pool_surrounds_the_interface_address() {
        let cfg = zc([192, 168, 1, 1], 24, 3600).unwrap();
        let s = &cfg.subnets[0];
        assert_eq!(
            s.network,
            Ipv4Net {
                addr: [192, 168, 1, 0].into(),
                prefix: 24
            }
        );
        // .1 is ours and the lowest host: one range above it.
        assert_eq!(s.ranges, vec![range([192, 168, 1, 2], [192, 168, 1, 254])]);
        assert_eq!(s.pool_size(), 253);
        assert_eq!(s.server_id, Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(s.options.get(1), Some(&[255, 255, 255, 0][..]));
        assert_eq!(s.options.get(3), Some(&[192, 168, 1, 1][..]));
        assert_eq!(s.options.get(28), Some(&[192, 168, 1, 255][..]));
        assert_eq!(
            s.lease,
            LeaseTimes {
                default: 3600,
                min: 120,
                max: 3600,
                t1_permille: 500,
                t2_permille: 875
            }
        );
        assert_eq!(cfg.default_subnet, Some(SubnetId(0)));
        assert_eq!(cfg.subnet_for_link(None, None), Some(SubnetId(0)));
        assert_eq!(cfg.subnet_for_link(Some(7), None), None);
        assert!(!s.in_pool(Ipv4Addr::new(192, 168, 1, 1)));
        assert!(s.in_pool(Ipv4Addr::new(192, 168, 1, 254)));
        assert!(!s.in_pool(Ipv4Addr::new(192, 168, 1, 255)));
    }

    #[test]
    fn slash16_with_interface_in_the_middle_splits_the_pool() {
        let cfg = zc([172, 16, 40, 7], 16, 600).unwrap();
        let s = &cfg.subnets[0];
        assert_eq!(
            s.ranges,
            vec![
                range([172, 16, 0, 1], [172, 16, 40, 6]),
                range([172, 16, 40, 8], [172, 16, 255, 254])
            ]
        );
        assert_eq!(s.pool_size(), 65_533);
        assert_eq!(s.options.get(1), Some(&[255, 255, 0, 0][..]));
        assert_eq!(s.lease.max, 600);
        assert_eq!(s.lease.min, 120);
        assert_eq!(
            cfg.subnet_containing(Ipv4Addr::new(172, 16, 200, 1)),
            Some(SubnetId(0))
        );
        assert_eq!(cfg.subnet_containing(Ipv4Addr::new(172, 17, 0, 1)), None);
    }

    #[test]
    fn slash30_leaves_the_one_other_host() {
        let cfg = zc([10, 9, 9, 2], 30, 30).unwrap();
        let s = &cfg.subnets[0];
        assert_eq!(s.ranges, vec![range([10, 9, 9, 1], [10, 9, 9, 1])]);
        // A lease shorter than the two-minute floor lowers the floor with it.
        assert_eq!((s.lease.min, s.lease.default, s.lease.max), (30, 30, 30));
    }

    #[test]
    fn slash31_and_32_are_refused_with_a_fix() {
        for prefix in [31, 32] {
            let err = zc([10, 0, 0, 0], prefix, 3600).unwrap_err();
            let text = err.to_string();
            assert_eq!(
                text,
                format!(
                    "error: cannot serve 10.0.0.0/{prefix} without a configuration file: a \
                     /{prefix} subnet has no address left to lease\n  help: give the interface a \
                     /30 or shorter prefix, or write a configuration file with explicit ranges \
                     and pass it with --config"
                )
            );
        }
    }

    #[test]
    fn other_refusals() {
        assert!(
            zc([10, 0, 0, 0], 24, 3600)
                .unwrap_err()
                .to_string()
                .contains("not a host address")
        );
        assert!(
            zc([10, 0, 0, 255], 24, 3600)
                .unwrap_err()
                .to_string()
                .contains("not a host address")
        );
        assert!(
            zc([10, 0, 0, 1], 8, 3600)
                .unwrap_err()
                .to_string()
                .contains("larger than the /16")
        );
        assert!(
            zc([10, 0, 0, 1], 33, 3600)
                .unwrap_err()
                .to_string()
                .contains("not a prefix length")
        );
        assert!(
            zc([10, 0, 0, 1], 24, 0)
                .unwrap_err()
                .to_string()
                .contains("lease time is zero")
        );
        assert!(zc([127, 0, 0, 1], 24, 60).is_err());
    }
}
