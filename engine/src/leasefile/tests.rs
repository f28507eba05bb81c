//! Readers on real files (captured from ISC dhcpd 4.4.3 and Kea 2.2.0 serving dhclient, udhcpc,
//! dhcpcd and perfdhcp in the shared harness) and on hand-written edge cases whose line numbers
//! the tests name; import into tables; Kea round trips; robustness on random input.

use super::*;
use crate::config::{ServerConfig, SubnetId};
use crate::lease::store::{MemStore, replay};
use crate::lease::{LeaseInfo, NullStore};
use proptest::prelude::*;
use std::io::{Cursor, Read};
use std::path::Path;

const ISC_CLIENTS: &str = include_str!("../../tests/fixtures/leases/isc-clients.leases");
const ISC_HEX_EPOCH: &str = include_str!("../../tests/fixtures/leases/isc-hex-epoch.leases");
const ISC_PERFDHCP: &str = include_str!("../../tests/fixtures/leases/isc-perfdhcp.leases");
const ISC_EDGE: &str = include_str!("../../tests/fixtures/leases/isc-edge.leases");
const KEA_CLIENTS: &str = include_str!("../../tests/fixtures/leases/kea-clients.csv");
const KEA_PERFDHCP: &str = include_str!("../../tests/fixtures/leases/kea-perfdhcp.csv");
const KEA_EDGE: &str = include_str!("../../tests/fixtures/leases/kea-edge.csv");

/// The harness's subnet (subnet 0) and the edge cases' (subnet 1).
const CONFIG: &str = include_str!("../../tests/fixtures/leases/config.toml");

const HARNESS: SubnetId = SubnetId(0);
const EDGE: SubnetId = SubnetId(1);

fn config() -> ServerConfig {
    crate::config::parse(CONFIG, Path::new("t.toml")).expect("test config")
}

fn tables() -> LeaseTables {
    LeaseTables::new(&config(), 2)
}

/// Tables that are only read (imports use `subnet_of`), built once for the property tests.
fn shared_tables() -> &'static LeaseTables {
    static T: std::sync::OnceLock<LeaseTables> = std::sync::OnceLock::new();
    T.get_or_init(tables)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn utc(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Secs {
    unix_time(y, mo, d, h, mi, s).unwrap()
}

fn hw(bytes: &[u8]) -> ClientKey {
    ClientKey::from_hw(1, bytes)
}

fn entries(format: Format, text: &str) -> Vec<Entry> {
    Reader::new(format, Cursor::new(text.as_bytes()))
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
}

fn leases(format: Format, text: &str) -> Vec<Imported> {
    entries(format, text)
        .into_iter()
        .filter_map(|e| match e {
            Entry::Lease(l) => Some(l),
            _ => None,
        })
        .collect()
}

fn skips(format: Format, text: &str) -> Vec<(u64, SkipKind)> {
    entries(format, text)
        .into_iter()
        .filter_map(|e| match e {
            Entry::Skip(s) => Some((s.line, s.reason.kind())),
            _ => None,
        })
        .collect()
}

fn import_text(format: Format, text: &str, t: &LeaseTables, now: Secs) -> (ImportReport, MemStore) {
    let mut store = MemStore::default();
    let report = import(
        format,
        Cursor::new(text.as_bytes()),
        t,
        now,
        &mut store,
        &mut |_| {},
    )
    .expect("import");
    (report, store)
}

fn rec(
    addr: &str,
    subnet: SubnetId,
    client: ClientKey,
    state: LeaseState,
    expires: Secs,
) -> LeaseRecord {
    record(ip(addr), subnet, client, state, expires)
}

/// Export then import again (at `now`).
fn kea_round_trip(records: &[LeaseRecord], now: Secs) -> (ExportReport, Vec<LeaseRecord>) {
    let mut csv = Vec::new();
    let er = export_kea(records.iter().copied(), now, &mut |_| None, &mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let (report, store) = import_text(Format::Kea, &text, shared_tables(), now);
    assert_eq!(report.skipped, 0, "{report}\n{text}");
    (er, store.records)
}

// ------------------------------------------------------------------------ dates and helpers

#[test]
fn dates_match_dhcpd_epoch_comments_and_the_calendar() {
    // isc-hex-epoch.leases: `starts epoch 1795438459; # Mon Nov 23 12:54:19 2026` (TZ=UTC).
    assert_eq!(utc(2026, 11, 23, 12, 54, 19), 1_795_438_459);
    assert_eq!(utc(1970, 1, 1, 0, 0, 0), 0);
    assert_eq!(utc(2000, 2, 29, 23, 59, 59), 951_868_799);
    assert_eq!(
        unix_time(2100, 2, 29, 0, 0, 0),
        None,
        "2100 is not a leap year"
    );
    assert_eq!(unix_time(2026, 13, 1, 0, 0, 0), None);
    assert_eq!(unix_time(2026, 4, 31, 0, 0, 0), None);
    assert_eq!(unix_time(2026, 1, 1, 24, 0, 0), None);
    assert_eq!(unix_time(1969, 12, 31, 0, 0, 0), None);
    for t in [0, 951_868_799, 1_795_438_459, u64::from(u32::MAX)] {
        let (y, mo, d, h, mi, s) = civil(t);
        assert_eq!(unix_time(y, mo, d, h, mi, s), Some(t));
    }
}

#[test]
fn hex_forms_of_dhcpd_and_kea() {
    assert_eq!(
        parse_hex(b"2:0:0:a:b:c", 16),
        Some(vec![2, 0, 0, 10, 11, 12])
    );
    assert_eq!(
        parse_hex(b"020000aabbcc", 16),
        Some(vec![2, 0, 0, 0xaa, 0xbb, 0xcc])
    );
    assert_eq!(parse_hex(b"02:", 16), None);
    assert_eq!(parse_hex(b"123:4", 16), None);
    assert_eq!(parse_hex(b"abc", 16), None);
    assert_eq!(parse_hex(b"01:02:03", 2), None);
}

#[test]
fn format_names_parse() {
    assert_eq!("dhcpd".parse::<Format>(), Ok(Format::Isc));
    assert_eq!("KEA".parse::<Format>(), Ok(Format::Kea));
    assert!("dnsmasq".parse::<Format>().unwrap_err().contains("isc"));
}

// ------------------------------------------------------------------------ ISC, real files

#[test]
fn isc_real_clients_file_reads_every_lease_in_order() {
    let all = entries(Format::Isc, ISC_CLIENTS);
    assert!(
        matches!(&all[0], Entry::Ignored { line: 5, keyword } if keyword == "authoring-byte-order")
    );
    assert!(matches!(&all[1], Entry::Ignored { line: 7, keyword } if keyword == "server-duid"));
    let l = leases(Format::Isc, ISC_CLIENTS);
    assert_eq!(
        l.len(),
        7,
        "dhclient: bind, renew, release; udhcpc, dhcpcd: bind, release"
    );
    assert!(skips(Format::Isc, ISC_CLIENTS).is_empty());
    // dhclient: no uid, keyed by hardware address.
    let dhclient = hw(&[0x02, 0x13, 0xa5, 0x9e, 0x65, 0x01]);
    assert_eq!(
        l[0],
        Imported {
            line: 9,
            addr: ip("10.213.1.0"),
            client: Some(dhclient),
            hwaddr: HwAddr::new(1, &[0x02, 0x13, 0xa5, 0x9e, 0x65, 0x01]),
            expires: utc(2026, 11, 23, 12, 54, 14),
            state: Some(LeaseState::Bound),
            hostname: None,
        }
    );
    assert_eq!(
        (l[1].state, l[1].expires),
        (Some(LeaseState::Bound), utc(2026, 11, 23, 12, 54, 27))
    );
    // After DHCPRELEASE dhcpd writes `binding state free` and keeps the client.
    assert_eq!(
        (l[2].state, l[2].client),
        (Some(LeaseState::Expired), Some(dhclient))
    );
    // udhcpc sends option 61 (type 1 + MAC): the uid, octal-escaped, is the key.
    let udhcpc = ClientKey::from_client_id(&[1, 0x02, 0x13, 0x47, 0xb4, 0xb0, 0x02]);
    assert_eq!(l[3].client, Some(udhcpc));
    assert_eq!(l[3].hostname.as_deref(), Some("hb-udhcpc"));
    assert_eq!(l[3].addr, ip("10.213.1.1"));
}

#[test]
fn isc_hex_uids_and_epoch_dates_give_the_same_keys() {
    let l = leases(Format::Isc, ISC_HEX_EPOCH);
    assert_eq!(l.len(), 5);
    assert_eq!(l[0].expires, 1_795_438_489);
    assert_eq!(l[0].client, Some(hw(&[0x02, 0x13, 0xfc, 0xeb, 0x5a, 0x01])));
    // `uid 01:02:13:73:44:28:02;` (lease-id-format hex).
    let udhcpc = ClientKey::from_client_id(&[1, 0x02, 0x13, 0x73, 0x44, 0x28, 0x02]);
    assert_eq!(l[3].client, Some(udhcpc));
    assert_eq!(l[3].state, Some(LeaseState::Bound));
}

#[test]
fn isc_import_replays_to_what_dhcpd_ended_with() {
    let t = tables();
    let now = utc(2026, 11, 23, 12, 54, 10);
    let (report, store) = import_text(Format::Isc, ISC_CLIENTS, &t, now);
    assert_eq!(
        (report.entries, report.imported, report.skipped),
        (7, 7, 0),
        "{report}"
    );
    assert_eq!(report.ignored.get("server-duid"), Some(&1));
    assert_eq!((report.lines, report.bytes), (73, ISC_CLIENTS.len() as u64));
    assert_eq!(replay(&t, &store.records, now), 7);
    // Every client released: each address is free but remembers its client.
    for (a, key) in [
        ("10.213.1.0", hw(&[0x02, 0x13, 0xa5, 0x9e, 0x65, 0x01])),
        (
            "10.213.1.1",
            ClientKey::from_client_id(&[1, 0x02, 0x13, 0x47, 0xb4, 0xb0, 0x02]),
        ),
        ("10.213.1.2", hw(&[0x02, 0x13, 0xee, 0x74, 0x49, 0x03])),
    ] {
        let info = t.by_addr(ip(a)).expect(a);
        assert_eq!(
            (info.client, info.state, info.subnet),
            (key, LeaseState::Expired, HARNESS),
            "{a}"
        );
        assert!(!info.is_active(now));
    }
    assert_eq!(t.stats().bound, 0);
}

#[test]
fn isc_and_kea_files_of_the_same_perfdhcp_run_agree() {
    // perfdhcp's simulated clients send option 61 = 01 + MAC; both servers saw the same 299.
    let now = utc(2026, 11, 23, 12, 55, 0);
    let t1 = tables();
    let (r1, isc) = import_text(Format::Isc, ISC_PERFDHCP, &t1, now);
    let isc = isc.records;
    let t2 = tables();
    let (r2, kea) = import_text(Format::Kea, KEA_PERFDHCP, &t2, now);
    let kea = kea.records;
    assert_eq!((r1.imported, r1.bound, r1.skipped), (299, 299, 0), "{r1}");
    assert_eq!((r2.imported, r2.bound, r2.skipped), (299, 299, 0), "{r2}");
    let keys = |v: &[LeaseRecord]| {
        let mut k: Vec<_> = v
            .iter()
            .map(|r| (r.addr, r.client.as_bytes().to_vec()))
            .collect();
        k.sort();
        k
    };
    // Same clients; the addresses each server chose may differ, so compare the client sets.
    let mut a: Vec<_> = keys(&isc).into_iter().map(|x| x.1).collect();
    let mut b: Vec<_> = keys(&kea).into_iter().map(|x| x.1).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(
        isc.iter()
            .all(|r| r.client.is_client_id() && r.client.as_bytes()[0] == 1)
    );
    assert_eq!(replay(&t1, &isc, now), 299);
    assert_eq!(t1.stats().bound, 299);
}

// ------------------------------------------------------------------------ ISC, edge cases

#[test]
fn isc_edge_cases_read_as_documented_in_the_fixture() {
    let noon = utc(2026, 11, 23, 12, 0, 0);
    let all = entries(Format::Isc, ISC_EDGE);
    let ignored: Vec<_> = all
        .iter()
        .filter_map(|e| match e {
            Entry::Ignored { line, keyword } => Some((*line, keyword.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        ignored,
        [
            (2, "authoring-byte-order"),
            (3, "server-duid"),
            (4, "failover"),
            (8, "host")
        ]
    );
    let l = leases(Format::Isc, ISC_EDGE);
    let by = |a: &str| {
        l.iter()
            .find(|x| x.addr == ip(a))
            .unwrap_or_else(|| panic!("{a}"))
    };
    // Escaped strings, nested `on` block, `set` with quotes and braces, 1-digit hex octets.
    assert_eq!(
        *by("192.168.5.10"),
        Imported {
            line: 9,
            addr: ip("192.168.5.10"),
            client: Some(ClientKey::from_client_id(&[1, 2, 0, 0, 10, 11, 12])),
            hwaddr: HwAddr::new(1, &[2, 0, 0, 10, 11, 12]),
            expires: NEVER,
            state: Some(LeaseState::Bound),
            hostname: Some("host,one".into()),
        }
    );
    let b = by("192.168.5.11");
    assert_eq!(
        (b.expires, b.state),
        (1_795_433_600, Some(LeaseState::Bound))
    );
    assert_eq!(
        b.client,
        Some(ClientKey::from_client_id(&[1, 2, 0, 0, 0, 0, 0x11]))
    );
    assert_eq!(b.hwaddr.map(|h| h.htype), Some(6), "token-ring");
    // Abandoned without a client: a decline by nobody in particular.
    let b = by("192.168.5.12");
    assert_eq!(
        (b.state, b.client, b.expires),
        (Some(LeaseState::Declined), None, noon)
    );
    assert_eq!(by("192.168.5.13").state, Some(LeaseState::Released));
    // A free (backup) pool address with no client: free, forgotten.
    assert_eq!(
        (by("192.168.5.14").state, by("192.168.5.14").client),
        (None, None)
    );
    // No `binding state` (dhcpd 2 format) and an empty uid: active, keyed by hardware.
    let b = by("192.168.5.21");
    assert_eq!(
        (b.state, b.client),
        (Some(LeaseState::Bound), Some(hw(&[2, 0, 0, 0, 0, 0x21])))
    );
    assert_eq!(by("192.168.5.24").state, Some(LeaseState::Expired));
    assert_eq!(by("10.99.0.1").line, 68);
    assert_eq!(l.len(), 8);

    assert_eq!(
        skips(Format::Isc, ISC_EDGE),
        [
            (42, SkipKind::BadDate),
            (49, SkipKind::BadHwAddr),
            (53, SkipKind::UnknownState),
            (56, SkipKind::NoClient),
            (60, SkipKind::BadAddress),
            (66, SkipKind::Syntax),
            (81, SkipKind::BadClientId),
            (83, SkipKind::Syntax),
            (84, SkipKind::Truncated),
            (91, SkipKind::Truncated),
        ]
    );
}

#[test]
fn isc_edge_import_reports_each_skip_with_its_line() {
    let noon = utc(2026, 11, 23, 12, 0, 0);
    let t = tables();
    let (report, store) = import_text(Format::Isc, ISC_EDGE, &t, noon + 60);
    assert_eq!(report.skipped_for(SkipKind::NotInConfig), 1);
    assert_eq!(report.skips[&SkipKind::NotInConfig].examples[0].line, 68);
    assert_eq!(report.imported, 7);
    assert_eq!(report.skipped, 11);
    // 5.21 was active until noon: it arrives expired, remembered for its client.
    assert_eq!(
        report.expired_on_arrival, 3,
        "5.11 and 5.21 ended, 5.12's probation too"
    );
    let r21 = store
        .records
        .iter()
        .find(|r| r.addr == ip("192.168.5.21"))
        .unwrap();
    assert_eq!((r21.state, r21.subnet), (LeaseState::Expired, EDGE));
    let text = report.to_string();
    for needle in [
        "line 42 (192.168.5.15): bad date in `ends`",
        "line 84 (192.168.5.23): entry cut off before its end",
        "line 68 (10.99.0.1): address is in no range",
        "imported 7:",
        "ignored statements: authoring-byte-order x1 failover x1 host x1 server-duid x1",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
}

#[test]
fn later_free_entries_supersede_earlier_bindings() {
    // An address bound to a client, then listed free without a client (a rewritten dhcpd
    // file or a Kea deletion row): replay must end with it free, not still bound.
    let isc = "lease 192.168.5.30 {\n ends never;\n binding state active;\n hardware ethernet 02:00:00:00:00:30;\n}\n\
               lease 192.168.5.30 {\n ends 1 2026/11/23 12:00:00;\n binding state free;\n}\n";
    let t = tables();
    let now = utc(2026, 11, 23, 13, 0, 0);
    let (report, store) = import_text(Format::Isc, isc, &t, now);
    assert_eq!((report.imported, report.bound, report.free), (2, 1, 1));
    assert_eq!(store.records[1], free_record(ip("192.168.5.30"), EDGE));
    replay(&t, &store.records, now);
    assert_eq!(t.by_addr(ip("192.168.5.30")), None);
    assert_eq!(t.stats().bound, 0);

    let kea = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n\
               192.168.5.31,02:00:00:00:00:31,,3600,1795443600,2,0,0,,0,\n\
               192.168.5.31,02:00:00:00:00:31,,0,1795440000,2,0,0,,0,\n";
    let t = tables();
    let (_, store) = import_text(Format::Kea, kea, &t, 1_795_440_000);
    replay(&t, &store.records, 1_795_440_000);
    assert_eq!(t.by_addr(ip("192.168.5.31")), None);
}

#[test]
fn expired_leases_are_never_resurrected() {
    let isc = "lease 192.168.5.40 {\n ends epoch 1000;\n binding state active;\n hardware ethernet 02:00:00:00:00:40;\n}\n";
    let t = tables();
    let (report, store) = import_text(Format::Isc, isc, &t, 2000);
    assert_eq!(
        (report.expired_on_arrival, report.expired, report.bound),
        (1, 1, 0)
    );
    assert_eq!(store.records[0].state, LeaseState::Expired);
    replay(&t, &store.records, 2000);
    let info = t.by_addr(ip("192.168.5.40")).unwrap();
    assert_eq!(
        (info.state, info.client),
        (LeaseState::Expired, hw(&[2, 0, 0, 0, 0, 0x40]))
    );
    // Replaying later (the journal at the next start) does not bring it back either.
    let t2 = tables();
    replay(&t2, &store.records, 1500);
    assert!(!t2.by_addr(ip("192.168.5.40")).unwrap().is_active(1500));
}

// ------------------------------------------------------------------------ Kea

#[test]
fn kea_real_clients_file_releases_are_deletions() {
    let l = leases(Format::Kea, KEA_CLIENTS);
    assert_eq!(l.len(), 9);
    let dhclient = hw(&[0x02, 0x13, 0x87, 0x47, 0x32, 0x01]);
    assert_eq!(
        l[0],
        Imported {
            line: 2,
            addr: ip("10.213.1.0"),
            client: Some(dhclient),
            hwaddr: HwAddr::new(1, &[0x02, 0x13, 0x87, 0x47, 0x32, 0x01]),
            expires: 1_795_438_513,
            state: Some(LeaseState::Bound),
            hostname: None,
        }
    );
    // Kea 2.2 deletes a released lease: a row with valid_lifetime 0.
    assert_eq!((l[2].state, l[2].client), (None, Some(dhclient)));
    assert_eq!(
        l[3].client,
        Some(ClientKey::from_client_id(&[
            1, 2, 0x13, 0x93, 0xb6, 0xf8, 2
        ]))
    );
    assert_eq!(l[3].hostname.as_deref(), Some("hb-udhcpc"));
    let t = tables();
    let now = 1_795_438_500;
    let (report, store) = import_text(Format::Kea, KEA_CLIENTS, &t, now);
    assert_eq!(
        (report.imported, report.free, report.skipped),
        (9, 3, 0),
        "{report}"
    );
    replay(&t, &store.records, now);
    for a in ["10.213.1.0", "10.213.1.1", "10.213.1.2"] {
        assert_eq!(t.by_addr(ip(a)), None, "{a} was released");
    }
}

#[test]
fn kea_edge_cases_read_as_documented_in_the_fixture() {
    let l = leases(Format::Kea, KEA_EDGE);
    let by = |a: &str| {
        l.iter()
            .find(|x| x.addr == ip(a))
            .unwrap_or_else(|| panic!("{a}"))
    };
    let b = by("192.168.5.10");
    assert_eq!(b.hostname.as_deref(), Some("host,one"));
    assert_eq!(
        b.client,
        Some(ClientKey::from_client_id(&[1, 2, 0, 0, 10, 11, 12]))
    );
    assert_eq!(
        (b.state, b.expires, b.line),
        (Some(LeaseState::Bound), 1_795_438_800, 2)
    );
    let b = by("192.168.5.11");
    assert_eq!(
        (b.expires, b.client),
        (NEVER, Some(hw(&[2, 0, 0, 0, 0, 0x11]))),
        "infinite"
    );
    assert_eq!(b.hostname.as_deref(), Some("a&b&#xzz"));
    let b = by("192.168.5.12");
    assert_eq!(
        (b.state, b.client, b.hwaddr),
        (Some(LeaseState::Declined), None, None)
    );
    assert_eq!(by("192.168.5.13").state, Some(LeaseState::Expired));
    assert_eq!(by("192.168.5.14").state, None);
    // A repeated header of the older schema (no `state`) is adopted; CRLF is tolerated.
    assert_eq!(by("192.168.5.23").hostname.as_deref(), Some("old-schema"));
    assert_eq!(by("192.168.5.24").hostname.as_deref(), Some("crlf"));
    assert_eq!(by("192.168.5.24").state, Some(LeaseState::Bound));
    assert_eq!(l.len(), 8);
    assert_eq!(
        skips(Format::Kea, KEA_EDGE),
        [
            (8, SkipKind::Columns),
            (9, SkipKind::BadAddress),
            (10, SkipKind::BadHwAddr),
            (11, SkipKind::BadClientId),
            (12, SkipKind::BadNumber),
            (13, SkipKind::UnknownState),
            (14, SkipKind::NoClient),
            (19, SkipKind::Truncated),
        ]
    );
    assert!(
        entries(Format::Kea, KEA_EDGE)
            .iter()
            .any(|e| matches!(e, Entry::Ignored { line: 16, keyword } if keyword == "header"))
    );
}

#[test]
fn kea_infiniband_rows_keep_their_client_id() {
    // Kea stores up to 20 hardware address bytes (InfiniBand); xdhcp keys such clients by
    // option 61, which RFC 4390 makes mandatory for them.
    let hw20 = vec!["aa"; 20].join(":");
    let text = format!(
        "{KEA_HEADER}\n192.168.5.90,{hw20},ff:00:00:00:01:02,3600,1795438800,2,0,0,,0,\n\
         192.168.5.91,{hw20},,3600,1795438800,2,0,0,,0,\n"
    );
    let l = leases(Format::Kea, &text);
    assert_eq!(l.len(), 1);
    assert_eq!(
        (l[0].hwaddr, l[0].client),
        (
            None,
            Some(ClientKey::from_client_id(&[0xff, 0, 0, 0, 1, 2]))
        )
    );
    assert_eq!(skips(Format::Kea, &text), [(3, SkipKind::BadHwAddr)]);
}

#[test]
fn kea_headers_are_checked_before_any_row() {
    let err = |text: &str| match KeaReader::new(Cursor::new(text.as_bytes())) {
        Ok(_) => panic!("accepted {text:?}"),
        Err(e) => (e.kind(), e.to_string()),
    };
    let (kind, msg) = err(
        "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len\n",
    );
    assert_eq!(kind, io::ErrorKind::InvalidData);
    assert!(msg.contains("lease6"), "{msg}");
    let (_, msg) = err("\n\naddress,hwaddr,client_id,valid_lifetime,subnet_id\n");
    assert!(
        msg.starts_with("line 3:") && msg.contains("no `expire` column"),
        "{msg}"
    );
    let (_, msg) = err("10.0.0.1,02:00:00:00:00:01,,3600,1795438800,1,0,0,,0,\n");
    assert!(msg.contains("no `address` column"), "{msg}");
    assert_eq!(
        entries(Format::Kea, "").len(),
        0,
        "an empty file is an empty lease set"
    );
    assert_eq!(entries(Format::Kea, KEA_HEADER).len(), 0);
}

#[test]
fn every_skip_reason_is_reachable_and_rendered() {
    let t = tables();
    let now = utc(2026, 11, 23, 12, 0, 0);
    let mut seen = std::collections::BTreeSet::new();
    let long = format!(
        "{KEA_HEADER}\n192.168.5.50,{},,1,1,1,0,0,,0,\n",
        "a".repeat(MAX_LINE + 10)
    );
    for (format, text) in [
        (Format::Isc, ISC_EDGE),
        (Format::Kea, KEA_EDGE),
        (Format::Kea, long.as_str()),
    ] {
        let (report, _) = import_text(format, text, &t, now);
        for (kind, g) in &report.skips {
            seen.insert(*kind);
            assert!(g.count >= 1 && !g.examples.is_empty());
            assert!(!g.examples[0].to_string().is_empty());
        }
    }
    let all = [
        SkipKind::Syntax,
        SkipKind::BadAddress,
        SkipKind::BadDate,
        SkipKind::BadHwAddr,
        SkipKind::BadClientId,
        SkipKind::BadNumber,
        SkipKind::UnknownState,
        SkipKind::NoClient,
        SkipKind::Truncated,
        SkipKind::LineTooLong,
        SkipKind::Columns,
        SkipKind::NotInConfig,
    ];
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), all);
}

#[test]
fn report_keeps_only_the_first_examples() {
    let mut text = String::from(KEA_HEADER);
    text.push('\n');
    for i in 0..100 {
        text.push_str(&format!("192.168.5.{i},bad,,1,1,1,0,0,,0,\n"));
    }
    let (report, _) = import_text(Format::Kea, &text, &tables(), 0);
    let g = &report.skips[&SkipKind::BadHwAddr];
    assert_eq!((g.count, g.examples.len()), (100, EXAMPLES));
    assert_eq!(g.examples[0].line, 2);
}

#[test]
fn kea_round_trip_of_real_and_edge_files_is_identical() {
    for (name, text, now) in [
        ("kea-perfdhcp", KEA_PERFDHCP, 1_795_440_000),
        ("kea-clients", KEA_CLIENTS, 1_795_438_500),
        ("kea-edge", KEA_EDGE, 1_795_436_000),
        ("isc-perfdhcp", ISC_PERFDHCP, 1_795_440_000),
        ("isc-clients", ISC_CLIENTS, 1_795_438_450),
    ] {
        let format = if name.starts_with("kea") {
            Format::Kea
        } else {
            Format::Isc
        };
        let a = import_text(format, text, &tables(), now).1.records;
        let (er, b) = kea_round_trip(&a, now);
        assert_eq!(er.skipped, 0, "{name}: {er:?}");
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn export_writes_kea_rows_for_every_state() {
    let now = 1_795_430_000;
    let mac = [0x02, 0, 0, 0, 0, 0x60];
    let cid_mac = ClientKey::from_client_id(&[1, 2, 0, 0, 0, 0, 0x61]);
    let duid = ClientKey::from_client_id(&[255, 0, 0, 0, 1, 0, 4, 0xaa, 0xbb]);
    let long = ClientKey::from_client_id(&[255; 40]);
    let records = [
        rec(
            "192.168.5.60",
            EDGE,
            hw(&mac),
            LeaseState::Bound,
            now + 3600,
        ),
        rec("192.168.5.61", EDGE, cid_mac, LeaseState::Bound, NEVER),
        rec(
            "192.168.5.62",
            EDGE,
            hw(&mac),
            LeaseState::Released,
            now - 10,
        ),
        rec(
            "192.168.5.63",
            EDGE,
            anonymous_key(),
            LeaseState::Declined,
            now + 86_400,
        ),
        free_record(ip("192.168.5.64"), EDGE),
        rec(
            "192.168.5.65",
            EDGE,
            hw(&mac),
            LeaseState::Offered,
            now + 30,
        ),
        rec("192.168.5.66", EDGE, duid, LeaseState::Bound, now + 3600),
        rec("192.168.5.67", EDGE, long, LeaseState::Bound, now + 3600),
        rec("10.213.1.9", HARNESS, duid, LeaseState::Bound, now + 60),
    ];
    let mut out = Vec::new();
    let mut asked = 0;
    let report = export_kea(
        records,
        now,
        &mut |r| {
            asked += 1;
            (r.addr == ip("10.213.1.9")).then(|| HwAddr::new(1, &[2, 0, 0, 0, 0, 0x99]).unwrap())
        },
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines,
        [
            KEA_HEADER,
            "192.168.5.60,02:00:00:00:00:60,,3600,1795433600,2,0,0,,0,",
            "192.168.5.61,02:00:00:00:00:61,01:02:00:00:00:00:61,4294967295,6090397295,2,0,0,,0,",
            "192.168.5.62,02:00:00:00:00:60,,3600,1795429990,2,0,0,,2,",
            "192.168.5.63,,,86400,1795516400,2,0,0,,1,",
            "192.168.5.64,,,0,0,2,0,0,,1,",
            "10.213.1.9,02:00:00:00:00:99,ff:00:00:00:01:00:04:aa:bb,60,1795430060,1,0,0,,0,",
        ]
    );
    assert_eq!((report.written, report.deleted, report.skipped), (5, 1, 3));
    assert_eq!(
        report.examples,
        [
            (ip("192.168.5.65"), ExportSkip::Offered),
            (ip("192.168.5.66"), ExportSkip::NoHwAddr),
            (ip("192.168.5.67"), ExportSkip::HashedClientId),
        ]
    );
    assert_eq!(
        asked, 3,
        "asked for the client-id clients only (5.61, 5.66, 10.213.1.9)"
    );
}

// ------------------------------------------------------------------------ streaming

/// A synthetic file of `n` entries produced on the fly: nothing of it exists in memory.
struct Synth {
    format: Format,
    n: u64,
    i: u64,
    pending: Vec<u8>,
    pos: usize,
}

impl Synth {
    fn new(format: Format, n: u64) -> Self {
        let mut s = Synth {
            format,
            n,
            i: 0,
            pending: Vec::new(),
            pos: 0,
        };
        if format == Format::Kea {
            s.pending = format!("{KEA_HEADER}\n").into_bytes();
        }
        s
    }
    fn addr(i: u64) -> Ipv4Addr {
        // 10.213.1.0 .. 10.213.255.254, cycling: later entries supersede earlier ones.
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 213, 1, 0)) + (i % 65_000) as u32)
    }
}

impl Read for Synth {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.pending.len() {
            if self.i == self.n {
                return Ok(0);
            }
            let (a, m) = (Self::addr(self.i), (self.i as u32).to_be_bytes());
            self.pending.clear();
            self.pos = 0;
            let line = match self.format {
                Format::Kea => format!(
                    "{a},02:00:{:02x}:{:02x}:{:02x}:{:02x},,3600,{},1,0,0,h{},0,\n",
                    m[0],
                    m[1],
                    m[2],
                    m[3],
                    1_795_440_000 + self.i,
                    self.i
                ),
                Format::Isc => format!(
                    "lease {a} {{\n  starts 1 2026/11/23 12:00:00;\n  ends epoch {};\n  binding state active;\n  hardware ethernet 02:00:{:02x}:{:02x}:{:02x}:{:02x};\n}}\n",
                    1_795_440_000 + self.i,
                    m[0],
                    m[1],
                    m[2],
                    m[3]
                ),
            };
            self.pending.extend_from_slice(line.as_bytes());
            self.i += 1;
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Counts what it is given and keeps nothing.
#[derive(Default)]
struct CountingStore {
    records: u64,
    batches: u64,
    largest: usize,
    last: Option<LeaseRecord>,
    syncs: u64,
}

impl LeaseStore for CountingStore {
    fn append(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        self.records += records.len() as u64;
        self.batches += 1;
        self.largest = self.largest.max(records.len());
        self.last = records.last().copied();
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        Ok(())
    }
}

#[test]
fn large_imports_stream_in_batches_with_progress() {
    // 200 k Kea rows and 200 k ISC lines here (the 1 M-line memory measurement lives in
    // tests/tests/leasefile_kea.rs, in its own process with a counting allocator).
    let t = tables();
    for (format, n, lines) in [
        (Format::Kea, 200_000u64, 200_001u64),
        (Format::Isc, 33_334, 200_005),
    ] {
        let mut store = CountingStore::default();
        let mut calls = Vec::new();
        let reader = io::BufReader::new(Synth::new(format, n));
        let report = import(format, reader, &t, 1_795_440_000, &mut store, &mut |b| {
            calls.push(b)
        })
        .unwrap();
        assert_eq!((report.imported, report.skipped), (n, 0), "{report}");
        assert_eq!(store.records, n);
        assert_eq!(store.largest, BATCH, "records go out in fixed-size batches");
        assert_eq!(store.syncs, 1);
        assert!(
            report.lines >= lines - 1 && report.lines <= lines,
            "{}",
            report.lines
        );
        let last = n - 1;
        assert_eq!(store.last.unwrap().addr, Synth::addr(last));
        assert_eq!(store.last.unwrap().expires, 1_795_440_000 + last);
        // Progress: increasing, at least every 256 KiB, ending at the byte count.
        assert!(calls.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(calls.last(), Some(&report.bytes));
        assert!(calls.len() as u64 >= report.bytes / PROGRESS_EVERY);
    }
}

#[test]
fn a_file_without_newlines_does_not_grow_memory() {
    // 64 MiB of one ISC "word" and of one CSV "line": the readers keep at most their caps.
    struct Endless(u64);
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(b'x');
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let mut isc = IscReader::new(io::BufReader::new(Endless(64 << 20)));
    assert!(matches!(isc.next(), Some(Ok(Entry::Ignored { .. }))));
    assert!(isc.next().is_none());
    assert!(isc.tok.capacity() <= 2 * MAX_TOKEN);
    let mut text = format!("{KEA_HEADER}\n").into_bytes();
    text.extend_from_slice(b"1");
    let kea = KeaReader::new(io::BufReader::new(
        Cursor::new(text).chain(Endless(64 << 20)),
    ))
    .unwrap();
    let mut kea = kea;
    match kea.next() {
        Some(Ok(Entry::Skip(s))) => assert_eq!((s.line, s.reason), (2, SkipReason::LineTooLong)),
        other => panic!("{other:?}"),
    }
    assert!(kea.buf.capacity() <= 2 * MAX_LINE);
}

#[test]
fn progress_bar_takes_the_import_callbacks() {
    // Not a terminal here, so indicatif draws nothing; the callback must still accept every
    // position, past the end and for an unknown size, without panicking.
    for total in [0, KEA_PERFDHCP.len() as u64] {
        let mut cb = progress_bar(total);
        let r = import(
            Format::Kea,
            Cursor::new(KEA_PERFDHCP),
            &tables(),
            0,
            &mut NullStore,
            &mut cb,
        )
        .unwrap();
        assert_eq!(r.bytes, KEA_PERFDHCP.len() as u64);
        cb(r.bytes + 1);
    }
}

#[test]
fn store_errors_stop_the_import() {
    struct Full;
    impl LeaseStore for Full {
        fn append(&mut self, _: &[LeaseRecord]) -> io::Result<()> {
            Err(io::Error::other("disk full"))
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let e = import(
        Format::Kea,
        Cursor::new(KEA_PERFDHCP),
        &tables(),
        0,
        &mut Full,
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "disk full");
    // A null store accepts everything.
    let r = import(
        Format::Kea,
        Cursor::new(KEA_PERFDHCP),
        &tables(),
        0,
        &mut NullStore,
        &mut |_| {},
    );
    assert_eq!(r.unwrap().imported, 299);
}

#[test]
fn read_errors_surface_with_what_was_read_so_far() {
    struct Broken(Cursor<&'static [u8]>);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("EIO")),
                n => Ok(n),
            }
        }
    }
    let r = io::BufReader::new(Broken(Cursor::new(ISC_CLIENTS.as_bytes())));
    let items: Vec<_> = IscReader::new(r).collect();
    assert!(items.last().unwrap().is_err());
    assert_eq!(
        items
            .iter()
            .filter(|e| matches!(e, Ok(Entry::Lease(_))))
            .count(),
        7
    );
}

// ------------------------------------------------------------------------ robustness

fn drain(format: Format, bytes: &[u8]) -> (u64, u64) {
    let Ok(rd) = Reader::new(format, Cursor::new(bytes)) else {
        return (0, 0);
    };
    let mut n = 0u64;
    let mut max_line = 0;
    let total_lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    for e in rd {
        let e = e.expect("reading from memory cannot fail");
        let line = match &e {
            Entry::Lease(l) => l.line,
            Entry::Skip(s) => s.line,
            Entry::Ignored { line, .. } => *line,
        };
        assert!(
            line >= 1 && line <= total_lines,
            "line {line} of {total_lines}"
        );
        max_line = max_line.max(line);
        n += 1;
        assert!(n <= bytes.len() as u64 + 1, "no progress");
    }
    (n, max_line)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        drain(Format::Isc, &bytes);
        drain(Format::Kea, &bytes);
        let mut with_header = format!("{KEA_HEADER}\n").into_bytes();
        with_header.extend_from_slice(&bytes);
        drain(Format::Kea, &with_header);
    }

    #[test]
    fn damaged_real_files_never_panic(
        which in 0usize..4,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let (format, text) = [
            (Format::Isc, ISC_CLIENTS),
            (Format::Isc, ISC_EDGE),
            (Format::Kea, KEA_CLIENTS),
            (Format::Kea, KEA_EDGE),
        ][which];
        let mut bytes = text.as_bytes().to_vec();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        drain(format, &bytes);
        // And through import, which also maps to records.
        let mut store = MemStore::default();
        let _ = import(format, Cursor::new(&bytes), shared_tables(), 1_795_438_500, &mut store, &mut |_| {});
        for r in &store.records {
            prop_assert!(r.state_at(1_795_438_500) != Some(LeaseState::Bound) || r.expires > 1_795_438_500);
        }
    }

    #[test]
    fn export_then_import_is_identity_for_exportable_records(
        picks in proptest::collection::vec((0u32..190, 0u8..5, 0u64..200_000, any::<[u8; 6]>(), any::<bool>()), 1..64),
    ) {
        let now = 1_795_430_000;
        let records: Vec<LeaseRecord> = picks
            .iter()
            .map(|&(off, st, dt, mac, cid)| {
                let addr = Ipv4Addr::from(u32::from(ip("192.168.5.10")) + off);
                let key = if cid {
                    let mut id = vec![1];
                    id.extend_from_slice(&mac);
                    ClientKey::from_client_id(&id)
                } else {
                    hw(&mac)
                };
                match st {
                    0 => record(addr, EDGE, key, LeaseState::Bound, now + 1 + dt),
                    1 => record(addr, EDGE, key, LeaseState::Expired, now - dt),
                    2 => record(addr, EDGE, key, LeaseState::Declined, now + 1 + dt),
                    3 => record(addr, EDGE, anonymous_key(), LeaseState::Declined, now + 1 + dt),
                    _ => free_record(addr, EDGE),
                }
            })
            .collect();
        let (er, back) = kea_round_trip(&records, now);
        prop_assert_eq!(er.skipped, 0);
        prop_assert_eq!(back, records);
    }
}

#[test]
fn records_have_the_tables_shape() {
    // `to_record` and the tables agree on subnets; a record restores as it was built.
    let t = tables();
    let e = Imported {
        line: 1,
        addr: ip("192.168.5.77"),
        client: Some(hw(&[2, 0, 0, 0, 0, 0x77])),
        hwaddr: None,
        expires: 5000,
        state: Some(LeaseState::Bound),
        hostname: None,
    };
    let (r, late) = to_record(&e, &t, 1000).unwrap();
    assert!(!late);
    t.restore(r, 1000).unwrap();
    let info: LeaseInfo = t.by_addr(e.addr).unwrap();
    assert_eq!(
        (info.client, info.state, info.expires, info.subnet),
        (r.client, r.state, 5000, EDGE)
    );
}
