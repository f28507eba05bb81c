//! Loader tests: the sample files, golden diagnostics (exact `file:line:column` and help), and
//! the invariants the runtime model promises.

use super::*;
use std::net::Ipv4Addr;
use std::path::PathBuf;

const SINGLE_LAN: &str = include_str!("../../config/single-lan.toml");
const ISP: &str = include_str!("../../config/isp.toml");

fn ok(text: &str) -> ServerConfig {
    match parse(text, Path::new("t.toml")) {
        Ok(c) => c,
        Err(e) => panic!("unexpected error:\n{e}"),
    }
}

/// The rendered error for `text`.
fn err(text: &str) -> String {
    match parse(text, Path::new("t.toml")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn kinds(text: &str) -> Vec<ErrorKind> {
    parse(text, Path::new("t.toml"))
        .unwrap_err()
        .diagnostics()
        .iter()
        .map(|d| d.kind)
        .collect()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A valid one-subnet file the golden tests break in one place each.
const LAN: &str = r#"server_id = "10.0.0.1"

[[subnet]]
network = "10.0.0.0/24"
routers = ["10.0.0.1"]
ranges = ["10.0.0.10-10.0.0.99", "10.0.0.150-10.0.0.199"]
"#;

#[test]
fn base_lan_is_valid() {
    let c = ok(LAN);
    assert_eq!(c.subnets.len(), 1);
    assert_eq!(c.default_subnet, Some(SubnetId(0)));
}

// ------------------------------------------------------------------------------ samples

#[test]
fn single_lan_sample_parses_into_the_expected_model() {
    let c = parse(SINGLE_LAN, Path::new("engine/config/single-lan.toml")).unwrap();
    assert!(c.authoritative);
    assert_eq!((c.offer_hold, c.decline_probation), (30, 86_400));
    assert_eq!(c.durability, Durability::Fsync);
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/xdhcp"));
    assert_eq!(c.default_subnet, Some(SubnetId(0)));
    let s = &c.subnets[0];
    assert_eq!(s.server_id, ip("192.168.1.1"));
    // The exclusion is carved out of the one configured range.
    assert_eq!(
        s.ranges,
        vec![
            AddrRange {
                start: ip("192.168.1.100"),
                end: ip("192.168.1.199")
            },
            AddrRange {
                start: ip("192.168.1.201"),
                end: ip("192.168.1.249")
            },
        ]
    );
    assert!(!s.in_pool(ip("192.168.1.200")));
    assert_eq!(
        s.lease,
        LeaseTimes {
            default: 3600,
            min: 300,
            max: 86_400,
            t1_permille: 500,
            t2_permille: 875
        }
    );
    // Global [options] inherited, derived 1 and 28 present.
    assert_eq!(s.options.get(1), Some(&[255, 255, 255, 0][..]));
    assert_eq!(s.options.get(28), Some(&[192, 168, 1, 255][..]));
    assert_eq!(s.options.get(6), Some(&[192, 168, 1, 1, 9, 9, 9, 9][..]));
    assert_eq!(s.options.get(15), Some(&b"home.example"[..]));
    assert_eq!(s.options.get(119), Some(&b"\x04home\x07example\x00"[..]));
    assert_eq!(s.options.get(42), Some(&[192, 168, 1, 1][..]));
    let nas = s
        .reservation(KeyRef::Mac([0x00, 0x11, 0x32, 0xab, 0xcd, 0xef]))
        .unwrap();
    assert_eq!(nas.address, Some(ip("192.168.1.21")));
    assert_eq!(nas.options.get(12), Some(&b"nas"[..]));
    assert_eq!(nas.options.get(6), Some(&[9, 9, 9, 9][..]));
}

#[test]
fn isp_sample_parses_into_the_expected_model() {
    let c = parse(ISP, Path::new("engine/config/isp.toml")).unwrap();
    assert_eq!(c.decline_probation, 3600);
    assert_eq!(c.default_subnet, None);
    // Sorted by address, ids follow the order.
    let nets: Vec<String> = c.subnets.iter().map(|s| s.network.to_string()).collect();
    assert_eq!(
        nets,
        [
            "10.50.0.0/24",
            "10.200.0.0/16",
            "100.64.0.0/22",
            "100.64.4.0/24",
            "198.51.100.128/25"
        ]
    );
    for (i, s) in c.subnets.iter().enumerate() {
        assert_eq!(s.id, SubnetId(i as u32));
    }

    // giaddr selection and the shared network (primary first, as declared).
    let olt = c.subnet_containing(ip("100.64.0.1")).unwrap();
    assert_eq!(olt, SubnetId(2));
    assert_eq!(c.candidates(olt), &[SubnetId(2), SubnetId(3)]);
    assert_eq!(c.candidates(SubnetId(3)), &[SubnetId(2), SubnetId(3)]);
    assert_eq!(c.candidates(SubnetId(4)), &[SubnetId(4)]);
    assert_eq!(
        c.shared_networks,
        vec![SharedNetwork {
            name: "olt-1".into(),
            subnets: vec![SubnetId(2), SubnetId(3)]
        }]
    );
    assert_eq!(c.subnet_containing(ip("192.0.2.10")), None);
    assert_eq!(c.server_addresses(), [ip("10.200.0.1"), ip("192.0.2.10")]);

    // Relayed subnets inherit the global server id; the direct one has its own.
    assert_eq!(c.subnets[2].server_id, ip("192.0.2.10"));
    assert_eq!(c.subnets[1].server_id, ip("10.200.0.1"));

    // Option 121 for OLT 1: default route + 10.255/16, both via 100.64.0.1.
    assert_eq!(
        c.subnets[2].options.get(121),
        Some(&[0, 100, 64, 0, 1, 16, 10, 255, 100, 64, 0, 1][..])
    );
    // Option 82 reservations (text and hex).
    let olt1 = &c.subnets[2];
    assert_eq!(
        olt1.reservation(KeyRef::CircuitId(b"olt1-pon3/ont17"))
            .unwrap()
            .address,
        Some(ip("100.64.0.5"))
    );
    assert_eq!(
        olt1.reservation(KeyRef::RemoteId(&[0x00, 0x11, 0xaa, 0x22, 0xbb, 0x33]))
            .unwrap()
            .address,
        Some(ip("100.64.0.6"))
    );
    assert!(
        olt1.reservation(KeyRef::CircuitId(b"olt1-pon3/ont18"))
            .is_none()
    );
    let biz = &c.subnets[4];
    assert_eq!(biz.lease.default, 86_400);
    assert_eq!(biz.lease.max, 604_800);
    assert_eq!(biz.lease.min, 600);
    let acme = biz
        .reservation(KeyRef::CircuitId(b"bng2 xe-1/2/0:1042"))
        .unwrap();
    assert_eq!(acme.options.get(12), Some(&b"acme-gw"[..]));
    assert!(
        biz.reservation(KeyRef::ClientId(&[1, 0, 0x16, 0x3e, 0x5a, 1, 2]))
            .is_some()
    );

    // QinQ: links select the direct subnet, VLAN-pair reservations.
    let qinq = &c.subnets[1];
    assert_eq!(c.subnet_for_link(Some(100), Some(2002)), Some(SubnetId(1)));
    assert_eq!(c.subnet_for_link(Some(100), None), Some(SubnetId(1)));
    assert_eq!(c.subnet_for_link(Some(100), Some(2999)), None);
    assert_eq!(c.subnet_for_link(None, None), None);
    assert_eq!(
        qinq.reservation(KeyRef::Vlan {
            outer: 100,
            inner: Some(2001)
        })
        .unwrap()
        .address,
        Some(ip("10.200.0.21"))
    );
    assert_eq!(
        qinq.ranges,
        vec![AddrRange {
            start: ip("10.200.1.0"),
            end: ip("10.200.254.255")
        }]
    );

    // PXE: generic options and the BOOTP fields of the reservation.
    let pxe = &c.subnets[0];
    assert_eq!(pxe.options.get(150), Some(&[10, 50, 0, 5][..]));
    assert_eq!(pxe.options.get(43), Some(&[1, 4, 10, 50, 0, 5][..]));
    assert_eq!(pxe.next_server, Some(ip("10.50.0.5")));
    let host = pxe
        .reservation(KeyRef::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]))
        .unwrap();
    assert_eq!(host.filename.as_deref(), Some(&b"pxelinux.0"[..]));
    assert_eq!(host.server_name.as_deref(), Some(&b"tftp.isp.example"[..]));

    // Every subnet got the global search list (RFC 3397 labels).
    let mut search = Vec::new();
    encode_domain_name("isp.example", &mut search).unwrap();
    encode_domain_name("customers.isp.example", &mut search).unwrap();
    assert!(
        c.subnets
            .iter()
            .all(|s| s.options.get(119) == Some(&search[..]))
    );
}

#[test]
fn load_reads_files_and_reports_unreadable_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    assert_eq!(
        load(&dir.join("isp.toml")).unwrap(),
        parse(ISP, Path::new("x")).unwrap()
    );
    let missing = dir.join("does-not-exist.toml");
    let e = load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().starts_with(&format!(
        "{}: error: cannot read the configuration: ",
        missing.display()
    )));
}

// ------------------------------------------------------------------------------ golden errors

#[test]
fn golden_syntax_error() {
    assert_eq!(
        err("server_id = \n"),
        "t.toml:1:13: error: invalid TOML: string values must be quoted, expected literal string\n  \
         help: fix the TOML syntax (see https://toml.io/en/v1.0.0)"
    );
}

#[test]
fn golden_unknown_key_suggests_the_near_miss() {
    let text = LAN.replace("ranges =", "rangs =");
    assert_eq!(
        err(&text),
        "t.toml:6:1: error: unknown key `rangs`\n  help: did you mean `ranges`?"
    );
    assert_eq!(
        err("[options]\nfoo = 1\n"),
        "t.toml:2:1: error: unknown key `foo`\n  help: remove it or fix the spelling; keys allowed \
         here: `dns_servers`, `ntp_servers`, `domain_name`, `domain_search`, `option`"
    );
}

#[test]
fn golden_wrong_type() {
    let text = format!("{LAN}lease_time = \"1h\"\n");
    assert_eq!(
        err(&text),
        "t.toml:7:14: error: expected an integer, found string \"1h\"\n  help: write a whole number \
         without quotes, e.g. `3600`"
    );
}

#[test]
fn golden_missing_key() {
    assert_eq!(
        err("server_id = \"10.0.0.1\"\n[[subnet]]\nranges = []\n"),
        "t.toml:2:1: error: missing required key `network`\n  help: add `network = \"10.0.0.0/24\"` \
         to this table"
    );
}

#[test]
fn golden_duplicate_key() {
    let text = format!("{LAN}routers = [\"10.0.0.2\"]\n");
    assert_eq!(
        err(&text),
        "t.toml:7:1: error: this key is already set in this table\n  help: remove one of the two definitions"
    );
}

#[test]
fn golden_network_with_host_bits() {
    let text = LAN.replace("10.0.0.0/24", "10.0.0.7/24");
    assert_eq!(
        err(&text),
        "t.toml:4:11: error: network 10.0.0.7/24 has host bits set\n  help: did you mean \"10.0.0.0/24\"?"
    );
}

#[test]
fn golden_range_outside_subnet() {
    let text = LAN.replace("10.0.0.150-10.0.0.199", "10.0.1.150-10.0.1.199");
    assert_eq!(
        err(&text),
        "t.toml:6:34: error: range 10.0.1.150-10.0.1.199 is not inside subnet 10.0.0.0/24\n  help: use \
         addresses from 10.0.0.1 to 10.0.0.254, or move it to the [[subnet]] it belongs to"
    );
}

#[test]
fn golden_range_reversed() {
    let text = LAN.replace("10.0.0.10-10.0.0.99", "10.0.0.99-10.0.0.10");
    assert_eq!(
        err(&text),
        "t.toml:6:11: error: range start 10.0.0.99 is after its end 10.0.0.10\n  help: write the lower \
         address first: \"10.0.0.10-10.0.0.99\""
    );
}

#[test]
fn golden_range_overlap() {
    let text = LAN.replace("10.0.0.150-10.0.0.199", "10.0.0.90-10.0.0.199");
    assert_eq!(
        err(&text),
        "t.toml:6:34: error: range 10.0.0.90-10.0.0.199 overlaps range 10.0.0.10-10.0.0.99 (line 6)\n  \
         help: ranges of one subnet must not share addresses: shorten one or merge them"
    );
}

#[test]
fn golden_range_includes_broadcast() {
    let text = LAN.replace("10.0.0.150-10.0.0.199", "10.0.0.150-10.0.0.255");
    assert_eq!(
        err(&text),
        "t.toml:6:34: error: range 10.0.0.150-10.0.0.255 includes the broadcast address 10.0.0.255\n  \
         help: end the range at 10.0.0.254 or earlier"
    );
}

#[test]
fn golden_subnet_overlap() {
    let text = format!(
        "{LAN}\n[[subnet]]\nnetwork = \"10.0.0.128/25\"\n\n[[subnet]]\nnetwork = \"192.168.0.0/24\"\n"
    );
    assert_eq!(
        err(&text),
        "t.toml:9:11: error: subnet 10.0.0.128/25 overlaps subnet 10.0.0.0/24 (line 4)\n  help: subnets \
         must not share addresses: fix the network address or prefix length"
    );
}

#[test]
fn golden_duplicate_reservation_key() {
    let text = format!(
        "{LAN}[[subnet.reservation]]\nmac = \"00:11:22:33:44:55\"\n\n[[subnet.reservation]]\n\
         mac = \"00-11-22-33-44-55\"\naddress = \"10.0.0.5\"\n"
    );
    assert_eq!(
        err(&text),
        "t.toml:11:7: error: mac 00:11:22:33:44:55 is already reserved (line 8)\n  help: reserve each \
         identifier once per subnet or shared network: merge or remove one of the two"
    );
}

#[test]
fn golden_duplicate_reserved_address() {
    let text = format!(
        "{LAN}[[subnet.reservation]]\ncircuit_id = \"port-1\"\naddress = \"10.0.0.5\"\n\n\
         [[subnet.reservation]]\ncircuit_id = \"port-2\"\naddress = \"10.0.0.5\"\n"
    );
    assert_eq!(
        err(&text),
        "t.toml:13:11: error: address 10.0.0.5 is already reserved for another host (line 9)\n  help: \
         give each reservation its own address"
    );
}

#[test]
fn golden_reservation_outside_subnet() {
    let text = format!("{LAN}[[subnet.reservation]]\nvlan = [100, 7]\naddress = \"10.9.0.5\"\n");
    assert_eq!(
        err(&text),
        "t.toml:9:11: error: reserved address 10.9.0.5 is not inside subnet 10.0.0.0/24\n  help: use an \
         address of 10.0.0.0/24, or move the reservation to the [[subnet]] that contains 10.9.0.5"
    );
}

#[test]
fn golden_reservation_with_two_identifiers() {
    let text =
        format!("{LAN}[[subnet.reservation]]\nmac = \"00:11:22:33:44:55\"\nremote_id = \"x\"\n");
    assert_eq!(
        err(&text),
        "t.toml:9:13: error: reservation has both `mac` and `remote_id`\n  help: a reservation matches on \
         one identifier: split it into two reservations"
    );
}

#[test]
fn golden_min_lease_above_max() {
    let text = LAN.replace(
        "routers",
        "min_lease_time = 7200\nmax_lease_time = 3600\nrouters",
    );
    assert_eq!(
        err(&text),
        "t.toml:5:18: error: min_lease_time (7200) is greater than max_lease_time (3600)\n  help: make \
         min_lease_time <= max_lease_time"
    );
}

#[test]
fn golden_lease_time_outside_bounds_blames_the_subnet_not_the_global() {
    let text = format!(
        "max_lease_time = 7200\n{}",
        LAN.replace("routers", "lease_time = 9000\nrouters")
    );
    assert_eq!(
        err(&text),
        "t.toml:6:14: error: lease_time (9000) is outside min_lease_time..max_lease_time (60..7200)\n  \
         help: set lease_time within the bounds or change max_lease_time"
    );
}

#[test]
fn golden_t1_not_below_t2() {
    let text = format!("t1_percent = 90\n{LAN}");
    assert_eq!(
        err(&text),
        "t.toml:1:14: error: t1_percent (90) must be below t2_percent (87.5)\n  help: clients renew at T1 \
         and rebind at T2 (RFC 2131 §4.4.5); e.g. t1_percent = 50, t2_percent = 87.5"
    );
}

#[test]
fn golden_reserved_option_code() {
    let text = format!("{LAN}[[subnet.option]]\ncode = 51\nu32 = 600\n");
    assert_eq!(
        err(&text),
        "t.toml:8:8: error: option 51 cannot be configured\n  help: set the lease with `lease_time` / \
         `min_lease_time` / `max_lease_time`"
    );
}

#[test]
fn golden_bad_option_values() {
    let text = format!("{LAN}[[subnet.option]]\ncode = 43\nhex = \"0a0\"\n");
    assert_eq!(
        err(&text),
        "t.toml:9:7: error: invalid hex for option 43: `0a0` is not hex bytes\n  help: write bytes as \
         \"0a000001\", \"0x0a000001\" or \"0a:00:00:01\""
    );
    let text = format!("{LAN}[[subnet.option]]\ncode = 26\nu8 = 1500\n");
    assert_eq!(
        err(&text),
        "t.toml:9:6: error: a u8 value must be between 0 and 255, not 1500\n  help: use `u16` or `u32` \
         for larger numbers"
    );
    let text = format!("{LAN}[[subnet.option]]\ncode = 26\n");
    assert_eq!(
        err(&text),
        "t.toml:7:1: error: option 26 has no value\n  help: add one of `hex`, `ip`, `text`, `u8`, `u16`, \
         `u32` or `bool`"
    );
}

#[test]
fn golden_duplicate_option() {
    let text = format!(
        "{LAN}dns_servers = [\"10.0.0.1\"]\n[[subnet.option]]\ncode = 6\nip = [\"10.0.0.2\"]\n"
    );
    assert_eq!(
        err(&text),
        "t.toml:9:8: error: option 6 is already set in this [[subnet]] (line 7)\n  help: set each option \
         once per table: remove one of the two"
    );
}

#[test]
fn golden_shared_network_names_unknown_subnet() {
    // The declaration comes last: TOML keys after a header belong to that table.
    let text = format!(
        "{LAN}\n[[shared_network]]\nname = \"olt-1\"\nsubnets = [\"10.0.0.0/24\", \"10.9.0.0/24\"]\n"
    );
    assert_eq!(
        err(&text),
        "t.toml:10:27: error: shared network `olt-1` lists \"10.9.0.0/24\", but no [[subnet]] has that \
         network\n  help: write the `network` of an existing [[subnet]] exactly, or add that subnet"
    );
}

#[test]
fn golden_server_id_off_link_for_direct_subnet() {
    let text = LAN.replace("server_id = \"10.0.0.1\"", "server_id = \"192.0.2.10\"");
    assert_eq!(
        err(&text),
        "t.toml:4:11: error: subnet 10.0.0.0/24 serves direct clients, but the global server_id \
         192.0.2.10 (line 1) is not on it\n  help: add server_id = this server's address on 10.0.0.0/24 \
         to this [[subnet]], or drop `default` (untagged direct clients) if the subnet is only reached \
         through relays (default = false)"
    );
    // Explicitly relayed-only: the same server id is fine.
    ok(&text.replace("routers", "default = false\nrouters"));
}

#[test]
fn golden_missing_server_id() {
    let text = LAN.replace("server_id = \"10.0.0.1\"\n", "");
    assert_eq!(
        err(&text),
        "t.toml:2:1: error: subnet 10.0.0.0/24 has no server_id\n  help: set `server_id` to this \
         server's address (on the subnet for direct clients, the address relays forward to \
         otherwise), here or at the top"
    );
}

#[test]
fn golden_router_inside_range() {
    let text = LAN.replace("routers = [\"10.0.0.1\"]", "routers = [\"10.0.0.50\"]");
    assert_eq!(
        err(&text),
        "t.toml:5:12: error: router 10.0.0.50 is inside the dynamic range 10.0.0.10-10.0.0.99\n  help: \
         add \"10.0.0.50\" to `exclude`, or move the range so it leaves 10.0.0.50 out"
    );
    // Excluding it is the fix.
    ok(&text.replace("routers", "exclude = [\"10.0.0.50\"]\nrouters"));
}

#[test]
fn golden_router_off_link() {
    let text = LAN.replace("routers = [\"10.0.0.1\"]", "routers = [\"10.0.1.1\"]");
    assert_eq!(
        err(&text),
        "t.toml:5:12: error: router 10.0.1.1 is not inside subnet 10.0.0.0/24\n  help: clients can only \
         reach an on-link gateway; use an address of 10.0.0.0/24"
    );
}

#[test]
fn golden_classless_routes_without_default_route() {
    let text = format!("{LAN}classless_routes = [\"10.8.0.0/16 via 10.0.0.1\"]\n");
    assert_eq!(
        err(&text),
        "t.toml:7:20: error: classless_routes has no default route, so clients that use it lose \
         `routers`\n  help: add \"0.0.0.0/0 via <router>\": RFC 3442 clients ignore option 3 when \
         option 121 is present"
    );
    let text = format!(
        "{LAN}classless_routes = [\"10.8.0.1/16 via 10.0.0.1\", \"0.0.0.0/0 via 10.0.0.1\"]\n"
    );
    assert_eq!(
        err(&text),
        "t.toml:7:21: error: route destination 10.8.0.1/16 has host bits set\n  help: did you mean \
         \"10.8.0.0/16 via 10.0.0.1\"?"
    );
}

#[test]
fn golden_link_claimed_by_two_subnets() {
    let text = format!(
        "{}\n[[subnet]]\nnetwork = \"10.1.0.0/24\"\nserver_id = \"10.1.0.1\"\nvlan = [100, 7]\n",
        LAN.replace("routers", "links = [[100, 7]]\nrouters")
    );
    assert_eq!(
        err(&text),
        "t.toml:12:8: error: link [100, 7] is already served by subnet 10.0.0.0/24 (line 5)\n  help: a \
         link maps to one subnet: put both subnets in one shared network, or remove the link from one \
         of them"
    );
    // In one shared network the link is legitimately shared.
    let shared = text
        .replace("vlan =", "shared_network = \"x\"\nvlan =")
        .replace("links =", "shared_network = \"x\"\nlinks =");
    let c = ok(&shared);
    assert_eq!(
        c.candidates(c.subnet_for_link(Some(100), Some(7)).unwrap()),
        &[SubnetId(0), SubnetId(1)]
    );
}

#[test]
fn golden_two_default_subnets() {
    let text = format!(
        "{}\n[[subnet]]\nnetwork = \"10.1.0.0/24\"\nserver_id = \"10.1.0.1\"\ndefault = true\n",
        LAN.replace("routers", "default = true\nrouters")
    );
    assert_eq!(
        err(&text),
        "t.toml:12:11: error: subnet 10.1.0.0/24 is also marked default (subnet 10.0.0.0/24, line 5)\n  \
         help: only one subnet can take untagged direct requests: remove one `default = true`"
    );
}

#[test]
fn golden_exclude_that_removes_nothing() {
    let text = LAN.replace("routers", "exclude = [\"10.0.0.120\"]\nrouters");
    assert_eq!(
        err(&text),
        "t.toml:5:12: error: exclude 10.0.0.120-10.0.0.120 removes nothing: it is in no range of this \
         subnet\n  help: remove it, or correct the address"
    );
}

#[test]
fn golden_relative_state_dir_and_bad_durability() {
    let text = format!("state_dir = \"leases\"\ndurability = \"sync\"\n{LAN}");
    assert_eq!(
        err(&text),
        "t.toml:1:13: error: state_dir \"leases\" is not an absolute path\n  help: write an absolute path, \
         e.g. \"/var/lib/xdhcp\"\n\
         t.toml:2:14: error: durability must be \"fsync\" or \"none\", not \"sync\"\n  help: use \"fsync\" \
         (an ACK leaves only once the lease is on disk) or \"none\" (faster; leases since the last sync \
         are lost on a crash)"
    );
}

// ------------------------------------------------------------------------------ behaviour

#[test]
fn every_independent_problem_is_reported_in_file_order() {
    let text = format!(
        "{}[[subnet.reservation]]\nmac = \"00:11:22:33:44\"\n",
        LAN.replace("10.0.0.10-10.0.0.99", "10.0.0.99-10.0.0.10")
            .replace("10.0.0.1\"]", "10.0.1.1\"]")
    );
    assert_eq!(
        kinds(&text),
        [
            ErrorKind::RouterOffLink,
            ErrorKind::RangeReversed,
            ErrorKind::InvalidValue
        ]
    );
    let lines: Vec<usize> = parse(&text, Path::new("t.toml"))
        .unwrap_err()
        .diagnostics()
        .iter()
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, [5, 6, 8]);
}

#[test]
fn global_lease_errors_are_reported_once_not_per_subnet() {
    let text = format!(
        "min_lease_time = 900\nmax_lease_time = 600\n{LAN}\n[[subnet]]\nnetwork = \"10.1.0.0/24\"\n"
    );
    assert_eq!(kinds(&text), [ErrorKind::LeaseTimeOrder]);
}

#[test]
fn more_error_classes() {
    let cases: &[(String, ErrorKind)] = &[
        (
            LAN.replace("10.0.0.0/24", "10.0.0.0/31"),
            ErrorKind::OutOfBounds,
        ),
        (
            LAN.replace("10.0.0.0/24", "10.0.0.0"),
            ErrorKind::InvalidValue,
        ),
        (
            LAN.replace("10.0.0.10-10.0.0.99", "10.0.0.0-10.0.0.99"),
            ErrorKind::SpecialAddress,
        ),
        (format!("{LAN}routers2 = 1\n"), ErrorKind::UnknownKey),
        (
            format!("{LAN}[[subnet.reservation]]\naddress = \"10.0.0.5\"\n"),
            ErrorKind::ReservationKey,
        ),
        (
            format!("{LAN}[[subnet.reservation]]\nclient_id = \"01\"\n"),
            ErrorKind::InvalidValue,
        ),
        (
            format!("{LAN}[[subnet.reservation]]\nvlan = [0]\n"),
            ErrorKind::OutOfBounds,
        ),
        (
            format!("{LAN}[[subnet.reservation]]\nvlan = []\n"),
            ErrorKind::InvalidValue,
        ),
        (
            format!(
                "{LAN}[[subnet.reservation]]\nmac = \"00:11:22:33:44:55\"\naddress = \"10.0.0.1\"\n"
            ),
            ErrorKind::AddressConflict,
        ),
        (
            format!(
                "{LAN}[[subnet.reservation]]\nmac = \"00:11:22:33:44:55\"\naddress = \"10.0.0.255\"\n"
            ),
            ErrorKind::SpecialAddress,
        ),
        (format!("{LAN}dns_servers = []\n"), ErrorKind::EmptyList),
        (
            format!("{LAN}dns_servers = [\"224.0.0.1\"]\n"),
            ErrorKind::InvalidValue,
        ),
        (
            format!("{LAN}domain_search = [\"a..b\"]\n"),
            ErrorKind::InvalidValue,
        ),
        (
            format!("{LAN}filename = \"{}\"\n", "x".repeat(128)),
            ErrorKind::OutOfBounds,
        ),
        (
            format!("{LAN}server_name = \"{}\"\n", "x".repeat(64)),
            ErrorKind::OutOfBounds,
        ),
        (
            format!("{LAN}links = [[1, 2, 3]]\n"),
            ErrorKind::InvalidValue,
        ),
        (
            format!("{LAN}links = [[5], [5]]\n"),
            ErrorKind::LinkConflict,
        ),
        (
            format!("{LAN}t2_percent = 87.55\n"),
            ErrorKind::InvalidValue,
        ),
        (format!("{LAN}t2_percent = 100\n"), ErrorKind::OutOfBounds),
        (format!("{LAN}lease_time = 0\n"), ErrorKind::OutOfBounds),
        (format!("offer_hold = -1\n{LAN}"), ErrorKind::OutOfBounds),
        (
            format!("{LAN}[[subnet.option]]\ncode = 255\nu8 = 1\n"),
            ErrorKind::OutOfBounds,
        ),
        (
            format!("{LAN}[[subnet.option]]\ncode = 66\ntext = \"a\"\nhex = \"00\"\n"),
            ErrorKind::BadOption,
        ),
        (
            format!(
                "{LAN}[[subnet.option]]\ncode = 66\ntext = \"{}\"\n",
                "x".repeat(256)
            ),
            ErrorKind::BadOption,
        ),
        (
            format!("{LAN}broadcast_address = \"10.1.0.255\"\n"),
            ErrorKind::InvalidValue,
        ),
        (
            LAN.replace("server_id = \"10.0.0.1\"", "server_id = \"10.0.0.50\""),
            ErrorKind::AddressConflict,
        ),
        (
            format!("{LAN}[[shared_network]]\nname = \"a\"\n"),
            ErrorKind::EmptyList,
        ),
        (
            format!(
                "{LAN}shared_network = \"a\"\n[[shared_network]]\nname = \"a\"\n[[shared_network]]\nname = \"a\"\n"
            ),
            ErrorKind::SharedNetworkConflict,
        ),
        (
            format!(
                "{LAN}shared_network = \"b\"\n[[shared_network]]\nname = \"a\"\nsubnets = [\"10.0.0.0/24\"]\n"
            ),
            ErrorKind::SharedNetworkConflict,
        ),
        (
            format!(
                "{LAN}[[subnet.reservation]]\nmac = \"00:11:22:33:44:55\"\nrouters = [\"10.0.0.2\"]\nclassless_routes = [\"10.9.0.0/16 via 10.0.0.2\"]\n"
            ),
            ErrorKind::MissingDefaultRoute,
        ),
        (
            format!("{LAN}classless_routes = [\"0.0.0.0/0 via 192.0.2.1\"]\n"),
            ErrorKind::RouterOffLink,
        ),
        ("subnet = 5\n".to_string(), ErrorKind::WrongType),
    ];
    for (text, kind) in cases {
        let got = parse(text, Path::new("t.toml")).map(|_| ()).unwrap_err();
        assert_eq!(got.diagnostics()[0].kind, *kind, "{got}\n---\n{text}");
        // Every diagnostic renders as file:line:col + help.
        for line in got.to_string().lines().step_by(2) {
            assert!(
                line.starts_with("t.toml:") && line.contains(": error: "),
                "{line}"
            );
        }
    }
}

#[test]
fn reservation_in_a_shared_network_must_be_unique_across_members() {
    let text = format!(
        "{LAN}shared_network = \"s\"\n[[subnet.reservation]]\nremote_id = \"cpe-9\"\n\n\
         [[subnet]]\nnetwork = \"10.1.0.0/24\"\nshared_network = \"s\"\n[[subnet.reservation]]\nremote_id = \"cpe-9\"\n"
    );
    assert_eq!(kinds(&text), [ErrorKind::DuplicateReservation]);
    // In unrelated subnets the same identifier may be reserved in each.
    ok(&text.replace("shared_network = \"s\"\n", ""));
}

#[test]
fn precedence_defaults_and_generic_encodings() {
    let text = r#"server_id = "192.0.2.1"
lease_time = 1800
t1_percent = 40
[options]
dns_servers = ["192.0.2.53"]
domain_name = "global.example"
  [[options.option]]
  code = 252
  text = "http://wpad/wpad.dat"

[[subnet]]
network = "10.0.0.0/24"
default = false
domain_name = "local.example"
broadcast_address = "10.0.0.255"
ranges = ["10.0.0.5"]
  [[subnet.option]]
  code = 26
  u16 = 1492
  [[subnet.option]]
  code = 19
  bool = false
  [[subnet.option]]
  code = 24
  u32 = 600
  [[subnet.option]]
  code = 80
  hex = ""
  [[subnet.reservation]]
  client_id = "0x01aabbccddeeff"
"#;
    let c = ok(text);
    let s = &c.subnets[0];
    assert_eq!(c.default_subnet, None);
    assert_eq!(s.server_id, ip("192.0.2.1"));
    assert_eq!(
        s.lease,
        LeaseTimes {
            default: 1800,
            min: 60,
            max: 86_400,
            t1_permille: 400,
            t2_permille: 875
        }
    );
    assert_eq!(
        s.ranges,
        vec![AddrRange {
            start: ip("10.0.0.5"),
            end: ip("10.0.0.5")
        }]
    );
    assert_eq!(s.options.get(6), Some(&[192, 0, 2, 53][..]));
    assert_eq!(s.options.get(15), Some(&b"local.example"[..]));
    assert_eq!(s.options.get(252), Some(&b"http://wpad/wpad.dat"[..]));
    assert_eq!(s.options.get(26), Some(&[0x05, 0xd4][..]));
    assert_eq!(s.options.get(19), Some(&[0][..]));
    assert_eq!(s.options.get(24), Some(&[0, 0, 2, 0x58][..]));
    assert_eq!(s.options.get(80), Some(&[][..]));
    assert_eq!(s.options.get(28), Some(&[10, 0, 0, 255][..]));
    let codes: Vec<u8> = s.options.iter().map(|(c, _)| c).collect();
    assert_eq!(codes, [1, 6, 15, 19, 24, 26, 28, 80, 252]);
    let r = s
        .reservation(KeyRef::ClientId(&[1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]))
        .unwrap();
    assert_eq!(r.address, None);
    assert!(r.options.is_empty());
}

#[test]
fn a_long_lease_time_raises_the_default_ceiling() {
    let c = ok(&format!("lease_time = 172800\n{LAN}"));
    assert_eq!(
        (c.subnets[0].lease.min, c.subnets[0].lease.max),
        (60, 172_800)
    );
    let c = ok(&format!("lease_time = 30\n{LAN}"));
    assert_eq!(
        (c.subnets[0].lease.min, c.subnets[0].lease.max),
        (30, 86_400)
    );
}

#[test]
fn reservations_are_sorted_for_binary_search() {
    let mut text = LAN.to_string();
    for (i, k) in [
        "vlan = [9, 1]",
        "mac = \"ff:00:00:00:00:01\"",
        "remote_id = \"b\"",
        "mac = \"00:00:00:00:00:02\"",
        "circuit_id = \"a\"",
        "vlan = [9]",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "[[subnet.reservation]]\n{k}\naddress = \"10.0.0.{}\"\n",
            200 + i
        ));
    }
    let c = ok(&text);
    let s = &c.subnets[0];
    assert!(s.reservations.windows(2).all(|w| w[0].key < w[1].key));
    for r in &s.reservations {
        assert_eq!(
            s.reservation(r.key.as_key_ref()).map(|x| x.address),
            Some(r.address)
        );
    }
    assert_eq!(
        s.reservation(KeyRef::Vlan {
            outer: 9,
            inner: None
        })
        .unwrap()
        .address,
        Some(ip("10.0.0.205"))
    );
    assert!(
        s.reservation(KeyRef::Vlan {
            outer: 9,
            inner: Some(2)
        })
        .is_none()
    );
}

#[test]
fn subnet_lookup_by_address_over_many_subnets() {
    let mut text = String::from("server_id = \"192.0.2.1\"\n");
    // Written out of order on purpose.
    for i in [7u8, 3, 250, 0, 128] {
        text.push_str(&format!(
            "[[subnet]]\nnetwork = \"10.{i}.0.0/16\"\nranges = [\"10.{i}.1.1-10.{i}.1.100\"]\n"
        ));
    }
    let c = ok(&text);
    assert!(
        c.subnets
            .windows(2)
            .all(|w| u32::from(w[0].network.addr) < u32::from(w[1].network.addr))
    );
    for i in [7u8, 3, 250, 0, 128] {
        let id = c.subnet_containing(Ipv4Addr::new(10, i, 200, 9)).unwrap();
        assert_eq!(c.subnet(id).network.addr, Ipv4Addr::new(10, i, 0, 0));
        assert!(c.subnet(id).in_pool(Ipv4Addr::new(10, i, 1, 50)));
    }
    assert_eq!(c.subnet_containing(Ipv4Addr::new(10, 4, 0, 1)), None);
    assert_eq!(c.subnet_containing(Ipv4Addr::new(9, 255, 255, 255)), None);
    assert_eq!(c.subnet_containing(Ipv4Addr::new(11, 0, 0, 0)), None);
}
