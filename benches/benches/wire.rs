//! `wire/parse`: validating a received frame (Ethernet .. DHCP options) on real client captures.
//!
//! Run: `cargo bench -p xdhcp-benches --bench wire`. Inputs are the captured frames stored as
//! fixtures in `engine/tests/fixtures/` (see the README there), so the cost is that of real
//! clients' option sets, not of a synthetic minimal frame.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const FIXTURES: &[(&str, &[u8])] = &[
    (
        "dhclient_discover",
        include_bytes!("../../engine/tests/fixtures/dhclient-discover.bin"),
    ),
    (
        "udhcpc_discover",
        include_bytes!("../../engine/tests/fixtures/udhcpc-discover.bin"),
    ),
    (
        "dhcpcd_request",
        include_bytes!("../../engine/tests/fixtures/dhcpcd-request.bin"),
    ),
    (
        "perfdhcp_relayed_opt82",
        include_bytes!("../../engine/tests/fixtures/perfdhcp-discover.bin"),
    ),
];

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire/parse");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in FIXTURES {
        assert!(
            xdhcp::wire::parse(frame).is_ok(),
            "fixture {name} must parse"
        );
        g.bench_function(*name, |b| {
            b.iter(|| xdhcp::wire::parse(black_box(frame)).is_ok())
        });
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
