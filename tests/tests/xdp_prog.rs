//! `BPF_PROG_TEST_RUN` fixtures on the compiled XDP program: frame in, action and counter out.
//!
//! Needs root and the object from `cargo xtask build-ebpf` (`XDHCP_EBPF_OBJECT`, set by
//! `cargo xtask test`); under `CI=true` a missing requirement fails the test.
//!
//! How a redirect is observed: a test run does not deliver frames, but `bpf_redirect_map` still
//! looks the XSKMAP slot up. With an AF_XDP socket in the slot the program returns
//! `XDP_REDIRECT`; with the slot empty it returns its fallback `XDP_PASS` and counts
//! `PassNoSocket`. So "steered" is asserted both ways, and the *key* is asserted by occupying
//! exactly one slot. Every run also checks the accounting invariant: `Seen` +1 and exactly one
//! verdict counter +1, and that the program never modified the frame.
//!
//! The second half attaches the program for real to a veth pair in throw-away namespaces, native
//! and generic: ping and other UDP keep working, injected frames (QinQ included) get the same
//! verdicts live, the attach errors and the unprivileged error say how to fix them, and the
//! aya-log debug events arrive only when enabled.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    os::fd::OwnedFd,
    time::Duration,
};

use xdhcp::loader::{LoadOptions, Loader, XdpCounters, XdpMode};
use xdhcp_common::{Counter, MAX_QUEUES, worker_for_chaddr, xsk_key};
use xdhcp_tests::{
    bpf::{XDP_PASS, XDP_REDIRECT, action_name, xdp_test_run},
    ebpf_object,
    frames::{
        DHCPREQUEST, DhcpFrame, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, IPPROTO_TCP, Ipv4Fields,
        arp_request, bootrequest, ethernet, ipv4, ipv6_udp, udp,
    },
    netns::{NetNs, VethOptions, VethPair},
    raw::RawSocket,
    require_root, xsk_socket,
};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 50);
const MAC: [u8; 6] = [0x02, 0x13, 0x00, 0x00, 0x00, 0x01];

/// The program, loaded (not attached) with one worker per queue and `SERVER` as a local address.
fn prepare(test: &str, customize: impl FnOnce(&mut LoadOptions)) -> Option<Loader> {
    if !require_root(test) {
        return None;
    }
    let object = ebpf_object(test)?;
    let mut opts = LoadOptions::new("unused");
    opts.local_addrs = vec![SERVER];
    customize(&mut opts);
    Some(
        Loader::prepare(&object, &opts)
            .unwrap_or_else(|e| panic!("{test}: loading the XDP program: {e:#}")),
    )
}

/// Runs `frame` once and returns the action and the one verdict counter it bumped.
fn run(loader: &Loader, frame: &[u8], queue: Option<(u32, u32)>) -> (u32, Counter) {
    let before = loader.counters().expect("counters");
    let out = xdp_test_run(loader.program_fd().expect("program fd"), frame, queue)
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN on a {}-byte frame: {e}", frame.len()));
    let delta = loader.counters().expect("counters").since(&before);
    assert_eq!(out.frame, frame, "the program must never modify a frame");
    (out.action, single_verdict(&delta))
}

/// Asserts `Seen` == 1 and exactly one verdict counter == 1; returns that counter.
fn single_verdict(delta: &XdpCounters) -> Counter {
    assert_eq!(delta.get(Counter::Seen), 1, "one frame seen: {delta}");
    let bumped: Vec<Counter> = delta
        .iter()
        .filter(|&(c, v)| c != Counter::Seen && v != 0)
        .map(|(c, _)| c)
        .collect();
    assert_eq!(bumped.len(), 1, "exactly one verdict per frame: {delta}");
    assert_eq!(delta.get(bumped[0]), 1, "{delta}");
    bumped[0]
}

/// Occupies the XSKMAP slots of `workers` on `queue` with fresh AF_XDP sockets.
fn occupy(loader: &mut Loader, queue: u32, workers: impl IntoIterator<Item = u32>) -> Vec<OwnedFd> {
    workers
        .into_iter()
        .map(|w| {
            let sock = xsk_socket().expect("AF_XDP socket");
            loader
                .register_socket(queue, w, &sock)
                .expect("register socket");
            sock
        })
        .collect()
}

/// Frames the program must steer (name, frame), all from `MAC`.
fn for_us() -> Vec<(&'static str, Vec<u8>)> {
    let discover = DhcpFrame::discover(MAC);
    let mut with_options = discover.clone();
    with_options.ip.ihl = 6;
    let mut padded = discover.build();
    padded.extend_from_slice(&[0; 18]); // trailing Ethernet padding / FCS-like bytes
    vec![
        ("broadcast DISCOVER, untagged", discover.build()),
        (
            "802.1Q",
            discover.clone().tagged(&[(ETH_P_8021Q, 100)]).build(),
        ),
        (
            "QinQ 802.1ad + 802.1Q",
            discover
                .clone()
                .tagged(&[(ETH_P_8021AD, 10), (ETH_P_8021Q, 200)])
                .build(),
        ),
        (
            "double 802.1Q",
            discover
                .clone()
                .tagged(&[(ETH_P_8021Q, 10), (ETH_P_8021Q, 20)])
                .build(),
        ),
        (
            "relayed to a local address",
            DhcpFrame::relayed(MAC, RELAY, SERVER).build(),
        ),
        (
            "relayed, QinQ",
            DhcpFrame::relayed(MAC, RELAY, SERVER)
                .tagged(&[(ETH_P_8021AD, 7), (ETH_P_8021Q, 8)])
                .build(),
        ),
        (
            "unicast RENEW to a local address",
            DhcpFrame::renew(MAC, CLIENT, SERVER).build(),
        ),
        ("IPv4 options (IHL 6)", with_options.build()),
        ("trailing padding after the datagram", padded),
    ]
}

#[test]
fn dhcp_for_us_is_steered_and_falls_back_without_a_socket() {
    let Some(mut loader) = prepare("dhcp_for_us_is_steered", |_| {}) else {
        return;
    };
    for (name, frame) in for_us() {
        let (action, counter) = run(&loader, &frame, None);
        assert_eq!(
            (action_name(action), counter),
            ("XDP_PASS", Counter::PassNoSocket),
            "{name}: no socket bound"
        );
    }
    let _socks = occupy(&mut loader, 0, [0]);
    for (name, frame) in for_us() {
        let (action, counter) = run(&loader, &frame, None);
        assert_eq!(
            (action_name(action), counter),
            ("XDP_REDIRECT", Counter::Redirected),
            "{name}"
        );
    }
}

#[test]
fn everything_else_passes_with_its_reason() {
    let Some(mut loader) = prepare("everything_else_passes", |_| {}) else {
        return;
    };
    // Every slot of queue 0 occupied: a frame wrongly steered would come back XDP_REDIRECT.
    let _socks = occupy(&mut loader, 0, [0]);

    let discover = DhcpFrame::discover(MAC);
    let udp_to = |port: u16| {
        let mut f = discover.clone();
        f.dst_port = port;
        f.build()
    };
    let tcp_to_67 = {
        let mut seg = udp(68, 67, &[0; 300]); // the bytes of a port-67 header, but protocol TCP
        seg.truncate(20);
        let ip = ipv4(
            &Ipv4Fields {
                protocol: IPPROTO_TCP,
                ..Ipv4Fields::udp(CLIENT, SERVER)
            },
            &seg,
        );
        ethernet([0xff; 6], MAC, &[], ETH_P_IPV4, &ip)
    };
    let with_ip = |edit: &dyn Fn(&mut DhcpFrame)| {
        let mut f = discover.clone();
        edit(&mut f);
        f.build()
    };
    let with_bytes = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut f = discover.build();
        edit(&mut f);
        f
    };
    let cases: Vec<(&str, Vec<u8>, Counter)> = vec![
        (
            "ARP",
            arp_request(MAC, CLIENT, SERVER),
            Counter::PassNotIpv4,
        ),
        ("IPv6 (DHCPv6)", ipv6_udp(MAC), Counter::PassNotIpv4),
        (
            "802.1Q-tagged ARP",
            ethernet([0xff; 6], MAC, &[(ETH_P_8021Q, 5)], 0x0806, &[0; 28]),
            Counter::PassNotIpv4,
        ),
        ("UDP to port 53", udp_to(53), Counter::PassOtherPort),
        (
            "UDP to port 68 (a server reply)",
            udp_to(68),
            Counter::PassOtherPort,
        ),
        ("TCP to port 67", tcp_to_67, Counter::PassNotUdp),
        (
            "more-fragments set",
            with_ip(&|f| f.ip.flags_frag = 0x2000),
            Counter::PassFragment,
        ),
        (
            "non-zero fragment offset",
            with_ip(&|f| f.ip.flags_frag = 0x0010),
            Counter::PassFragment,
        ),
        (
            "don't-fragment is fine but unicast to a stranger",
            with_ip(&|f| {
                f.ip.flags_frag = 0x4000;
                f.ip.dst = Ipv4Addr::new(192, 0, 2, 1);
            }),
            Counter::PassNotForUs,
        ),
        (
            "unicast to another server",
            DhcpFrame::relayed(MAC, RELAY, Ipv4Addr::new(10, 213, 0, 2)).build(),
            Counter::PassNotForUs,
        ),
        (
            "subnet broadcast is not ours",
            with_ip(&|f| f.ip.dst = Ipv4Addr::new(10, 213, 0, 255)),
            Counter::PassNotForUs,
        ),
        (
            "IHL 4 (< 20 bytes)",
            with_bytes(&|f| f[14] = 0x44),
            Counter::PassMalformed,
        ),
        (
            "IHL 0",
            with_bytes(&|f| f[14] = 0x40),
            Counter::PassMalformed,
        ),
        (
            "version 6 under ethertype IPv4",
            with_bytes(&|f| f[14] = 0x65),
            Counter::PassMalformed,
        ),
        (
            "IHL 15 beyond a short datagram",
            with_bytes(&|f| {
                f[14] = 0x4f;
                f.truncate(14 + 60);
                f[16..18].copy_from_slice(&60u16.to_be_bytes());
            }),
            Counter::PassMalformed,
        ),
        (
            "total length beyond the frame",
            with_bytes(&|f| f[16..18].copy_from_slice(&2000u16.to_be_bytes())),
            Counter::PassMalformed,
        ),
        (
            "total length below IHL + UDP",
            with_bytes(&|f| f[16..18].copy_from_slice(&27u16.to_be_bytes())),
            Counter::PassMalformed,
        ),
        (
            "total length 65535",
            with_bytes(&|f| f[16..18].copy_from_slice(&u16::MAX.to_be_bytes())),
            Counter::PassMalformed,
        ),
        (
            "datagram ends before chaddr",
            with_bytes(&|f| {
                f.truncate(14 + 20 + 8 + 30);
                f[16..18].copy_from_slice(&58u16.to_be_bytes());
            }),
            Counter::PassMalformed,
        ),
        (
            "three VLAN tags",
            discover
                .clone()
                .tagged(&[(ETH_P_8021AD, 1), (ETH_P_8021Q, 2), (ETH_P_8021Q, 3)])
                .build(),
            Counter::PassVlan,
        ),
        (
            "VLAN tag on IPv6",
            ethernet(
                [0x33; 6],
                MAC,
                &[(ETH_P_8021Q, 5)],
                0x86dd,
                &ipv6_udp(MAC)[14..],
            ),
            Counter::PassNotIpv4,
        ),
    ];
    for (name, frame, expected) in cases {
        let (action, counter) = run(&loader, &frame, None);
        assert_eq!(
            (action_name(action), counter),
            ("XDP_PASS", expected),
            "{name}"
        );
    }
}

#[test]
fn truncated_frames_pass_at_every_length() {
    let Some(mut loader) = prepare("truncated_frames_pass", |_| {}) else {
        return;
    };
    let _socks = occupy(&mut loader, 0, [0]);
    let bases = [
        ("untagged", DhcpFrame::discover(MAC).build(), 14),
        (
            "QinQ",
            DhcpFrame::discover(MAC)
                .tagged(&[(ETH_P_8021AD, 1), (ETH_P_8021Q, 2)])
                .build(),
            22,
        ),
        (
            "relayed",
            DhcpFrame::relayed(MAC, RELAY, SERVER).build(),
            14,
        ),
    ];
    for (name, full, l3) in bases {
        // The kernel refuses test frames shorter than an Ethernet header; runts never reach XDP.
        for len in 14..full.len() {
            let (action, counter) = run(&loader, &full[..len], None);
            assert_eq!(
                (action, counter),
                (XDP_PASS, Counter::PassMalformed),
                "{name} cut at {len}"
            );
        }
        // Truncated *consistently* (IPv4 total length fixed up): steered exactly when chaddr's
        // first six bytes are inside the datagram.
        let chaddr_end = l3 + 20 + 8 + 28 + 6;
        for len in (l3 + 20)..full.len() {
            let mut f = full[..len].to_vec();
            let total = (len - l3) as u16;
            f[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            // Below that: no room for the UDP header (total length < IHL + 8) or no chaddr.
            let expected = if len >= chaddr_end {
                (XDP_REDIRECT, Counter::Redirected)
            } else {
                (XDP_PASS, Counter::PassMalformed)
            };
            assert_eq!(
                run(&loader, &f, None),
                expected,
                "{name} with total length {total}"
            );
        }
    }
}

#[test]
fn vlan_steering_can_be_turned_off() {
    let Some(mut loader) = prepare("vlan_steering_can_be_turned_off", |o| o.steer_vlan = false)
    else {
        return;
    };
    let _socks = occupy(&mut loader, 0, [0]);
    let discover = DhcpFrame::discover(MAC);
    assert_eq!(
        run(&loader, &discover.build(), None),
        (XDP_REDIRECT, Counter::Redirected)
    );
    let tagged = discover.tagged(&[(ETH_P_8021Q, 100)]).build();
    assert_eq!(run(&loader, &tagged, None), (XDP_PASS, Counter::PassVlan));
}

#[test]
fn zero_workers_steers_nothing() {
    let Some(mut loader) = prepare("zero_workers_steers_nothing", |o| o.workers_per_queue = 0)
    else {
        return;
    };
    let _socks = occupy(&mut loader, 0, [0]);
    assert_eq!(
        run(&loader, &DhcpFrame::discover(MAC).build(), None),
        (XDP_PASS, Counter::PassNoWorkers)
    );
}

#[test]
fn local_addresses_can_be_replaced() {
    let Some(mut loader) = prepare("local_addresses_can_be_replaced", |_| {}) else {
        return;
    };
    let _socks = occupy(&mut loader, 0, [0]);
    let other = Ipv4Addr::new(10, 213, 0, 2);
    let to_server = DhcpFrame::renew(MAC, CLIENT, SERVER).build();
    let to_other = DhcpFrame::renew(MAC, CLIENT, other).build();
    assert_eq!(run(&loader, &to_server, None).1, Counter::Redirected);
    assert_eq!(run(&loader, &to_other, None).1, Counter::PassNotForUs);
    loader.set_local_addrs(&[other]).expect("set local addrs");
    assert_eq!(run(&loader, &to_server, None).1, Counter::PassNotForUs);
    assert_eq!(run(&loader, &to_other, None).1, Counter::Redirected);
}

/// The worker is `worker_for_chaddr(chaddr, workers)`: with only worker `w`'s slot occupied, a
/// client is redirected exactly when it hashes to `w`, whatever its VLAN tags or relay.
#[test]
fn the_worker_is_chosen_by_chaddr() {
    const WORKERS: u32 = 4;
    let Some(mut loader) = prepare("the_worker_is_chosen_by_chaddr", |o| {
        o.workers_per_queue = WORKERS
    }) else {
        return;
    };
    let clients: Vec<[u8; 6]> = (0..48u8)
        .map(|i| [0x02, 0x13, 0xab, i.wrapping_mul(37), i, 0x5a ^ i])
        .collect();
    let mut used = [false; WORKERS as usize];
    for w in 0..WORKERS {
        let socks = occupy(&mut loader, 0, [w]);
        for chaddr in &clients {
            let expected = worker_for_chaddr(chaddr, WORKERS);
            used[expected as usize] = true;
            for frame in [
                DhcpFrame::discover(*chaddr).build(),
                DhcpFrame::discover(*chaddr)
                    .tagged(&[(ETH_P_8021AD, 3), (ETH_P_8021Q, 4)])
                    .build(),
                DhcpFrame::relayed(*chaddr, RELAY, SERVER).build(),
            ] {
                let got = run(&loader, &frame, None);
                let want = if expected == w {
                    (XDP_REDIRECT, Counter::Redirected)
                } else {
                    (XDP_PASS, Counter::PassNoSocket)
                };
                assert_eq!(
                    got, want,
                    "chaddr {chaddr:02x?} hashes to worker {expected}, only worker {w} bound"
                );
            }
        }
        loader.unregister_socket(0, w).expect("unregister");
        drop(socks);
    }
    assert!(
        used.iter().all(|&u| u),
        "48 clients spread over all {WORKERS} workers: {used:?}"
    );
}

/// The rx queue selects the key block: frames on queue q only reach sockets registered for q.
/// Uses a 4-queue (and a 65-queue) veth in a throw-away namespace as the ingress device.
#[test]
fn the_rx_queue_selects_the_key_block() {
    let Some(mut loader) = prepare("the_rx_queue_selects_the_key_block", |o| {
        o.workers_per_queue = 2
    }) else {
        return;
    };
    let ns = NetNs::new("xdpq").expect("netns");
    for (name, queues) in [("q4", 4), ("qmany", MAX_QUEUES + 1)] {
        let q = queues.to_string();
        let peer = format!("{name}p");
        ns.run(
            "ip",
            &[
                "link",
                "add",
                name,
                "numrxqueues",
                &q,
                "numtxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
            ],
        )
        .expect("multi-queue veth");
    }
    let q4 = ns.ifindex("q4").expect("ifindex");
    let qmany = ns.ifindex("qmany").expect("ifindex");
    let frame = DhcpFrame::discover(MAC).build();
    let w = worker_for_chaddr(&MAC, 2);
    assert!(xsk_key(2, w).is_some());

    let socks = occupy(&mut loader, 2, [w]);
    let results = ns
        .enter(|| {
            [(q4, 2), (q4, 1), (q4, 0), (q4, 3)]
                .map(|(ifindex, rxq)| run(&loader, &frame, Some((ifindex, rxq))))
        })
        .expect("enter netns");
    assert_eq!(
        results[0],
        (XDP_REDIRECT, Counter::Redirected),
        "queue 2, socket on queue 2"
    );
    for r in &results[1..] {
        assert_eq!(
            *r,
            (XDP_PASS, Counter::PassNoSocket),
            "other queues have no socket"
        );
    }
    drop(socks);
    loader.unregister_socket(2, w).expect("unregister");

    // A queue beyond the XSKMAP's key space is passed, never aliased onto another queue's block.
    let _all: Vec<_> = (0..MAX_QUEUES)
        .map(|q| occupy(&mut loader, q, [0, 1]))
        .collect();
    let beyond = ns
        .enter(|| run(&loader, &frame, Some((qmany, MAX_QUEUES))))
        .expect("enter netns");
    assert_eq!(beyond, (XDP_PASS, Counter::PassNoSocket));
}

/// Hostile input: thousands of mutated frames. The program never aborts or drops, never
/// modifies a frame, and accounts each one exactly once (asserted inside `run`).
#[test]
fn mutated_frames_never_abort_and_are_counted_once() {
    let Some(mut loader) = prepare("mutated_frames_never_abort", |o| o.workers_per_queue = 3)
    else {
        return;
    };
    let _socks = occupy(&mut loader, 0, [0, 1, 2]);
    let seeds: Vec<Vec<u8>> = for_us().into_iter().map(|(_, f)| f).collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let before = loader.counters().expect("counters");
    let mut runs = 0u64;
    for i in 0..3000usize {
        let mut f = seeds[i % seeds.len()].clone();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % f.len();
            // Bias mutations towards the headers, where the parser makes its decisions.
            let at = if next() % 2 == 0 { at % 64 } else { at };
            f[at] = next() as u8;
        }
        if next() % 4 == 0 {
            let len = 14 + (next() as usize) % (f.len() - 13);
            f.truncate(len);
        }
        let (action, _) = run(&loader, &f, None);
        assert!(
            action == XDP_PASS || action == XDP_REDIRECT,
            "frame {i}: {}",
            action_name(action)
        );
        runs += 1;
    }
    let total = loader.counters().expect("counters").since(&before);
    let verdicts: u64 = total
        .iter()
        .filter(|&(c, _)| c != Counter::Seen)
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total.get(Counter::Seen), runs);
    assert_eq!(verdicts, runs, "{total}");
}

// ---------------------------------------------------------------------------------------------
// Attached for real, on a veth pair in throw-away namespaces.

const SRV_ADDR: &str = "10.213.0.1/24";
const CLI_ADDR: &str = "10.213.0.2/24";
const SRV_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);

/// Sends `payload` in one UDP datagram from `cli` to `SRV_IP:port`; returns what `srv` received.
fn udp_across(net: &VethPair, port: u16, payload: &[u8]) -> Option<Vec<u8>> {
    let server = net
        .srv
        .enter(move || {
            let sock =
                UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).expect("bind");
            sock.set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
            sock
        })
        .expect("enter srv");
    net.cli
        .enter(move || {
            let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
            sock.send_to(payload, SocketAddrV4::new(SRV_IP, port))
                .expect("send");
        })
        .expect("enter cli");
    let mut buf = [0u8; 1500];
    server.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

/// With the program attached (native, then generic), ping and UDP keep working across the veth,
/// DHCP to a queue without a worker socket still reaches the kernel, and every frame is
/// accounted for.
#[test]
fn attached_program_keeps_ping_and_udp_working() {
    let test = "attached_program_keeps_ping_and_udp_working";
    if !require_root(test) {
        return;
    }
    let Some(object) = ebpf_object(test) else {
        return;
    };
    for mode in [XdpMode::Native, XdpMode::Skb] {
        let opts_net = VethOptions {
            srv_addr: Some(SRV_ADDR.into()),
            cli_addr: Some(CLI_ADDR.into()),
            ..VethOptions::default()
        };
        let net = VethPair::new("xdpa", &opts_net).expect("veth pair");
        let mut opts = LoadOptions::new(VethPair::SRV_IF);
        opts.mode = mode;
        opts.local_addrs = vec![SRV_IP];
        let mut loader = Loader::prepare(&object, &opts).expect("load");
        let got = net.srv.enter(|| loader.attach()).expect("enter srv");
        assert_eq!(got.expect("attach"), mode, "{mode}");
        let shown = net
            .srv
            .run("ip", &["-d", "link", "show", VethPair::SRV_IF])
            .expect("ip link");
        let flag = if mode == XdpMode::Native {
            "xdp "
        } else {
            "xdpgeneric"
        };
        assert!(
            shown.contains(flag),
            "{mode}: `ip -d link` shows no {flag}: {shown}"
        );

        let before = loader.counters().expect("counters");
        let ping = net
            .cli
            .output("busybox", &["ping", "-c", "3", "-W", "2", "10.213.0.1"])
            .expect("ping");
        assert!(
            ping.status.success(),
            "{mode}: ping failed: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
        let probe = b"xdhcp fail-open probe";
        assert_eq!(
            udp_across(&net, 5353, probe).as_deref(),
            Some(&probe[..]),
            "{mode}: UDP/5353"
        );
        // A unicast DHCPREQUEST to our address, but no worker socket: fail-open to the kernel.
        let request = bootrequest(
            DHCPREQUEST,
            MAC,
            7,
            Ipv4Addr::new(10, 213, 0, 2),
            Ipv4Addr::UNSPECIFIED,
        );
        assert_eq!(
            udp_across(&net, 67, &request).as_deref(),
            Some(&request[..]),
            "{mode}: UDP/67"
        );
        let d = loader.counters().expect("counters").since(&before);
        assert!(
            d.get(Counter::PassNotUdp) >= 3,
            "{mode}: 3 ICMP echo requests: {d}"
        );
        assert!(d.get(Counter::PassOtherPort) >= 1, "{mode}: UDP/5353: {d}");
        assert!(
            d.get(Counter::PassNoSocket) >= 1,
            "{mode}: UDP/67 without a socket: {d}"
        );
        assert_eq!(d.get(Counter::Redirected), 0, "{mode}: {d}");
        let verdicts: u64 = d
            .iter()
            .filter(|&(c, _)| c != Counter::Seen)
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            verdicts,
            d.get(Counter::Seen),
            "{mode}: one verdict per frame: {d}"
        );

        // Detach on drop: the interface is left without XDP.
        drop(loader);
        let shown = net
            .srv
            .run("ip", &["-d", "link", "show", VethPair::SRV_IF])
            .expect("ip link");
        assert!(
            !shown.contains("prog/xdp"),
            "{mode}: still attached after drop: {shown}"
        );
    }
}

/// The attach errors an operator can hit say what to do.
#[test]
fn attach_errors_say_how_to_fix_them() {
    let test = "attach_errors_say_how_to_fix_them";
    if !require_root(test) {
        return;
    }
    let Some(object) = ebpf_object(test) else {
        return;
    };
    // Native XDP on a veth refuses a peer MTU above ~3500.
    let net = VethPair::new(
        "xdpe",
        &VethOptions {
            mtu: 9000,
            ..VethOptions::default()
        },
    )
    .expect("veth pair");

    let attach = |iface: &str, mode: XdpMode| {
        let mut opts = LoadOptions::new(iface);
        opts.mode = mode;
        let mut loader = Loader::prepare(&object, &opts).expect("load");
        let r = net.srv.enter(|| loader.attach()).expect("enter srv");
        (loader, r)
    };

    let (_l, r) = attach("nosuch0", XdpMode::Skb);
    let msg = format!("{:#}", r.expect_err("unknown interface"));
    assert!(
        msg.contains("no such interface \"nosuch0\"") && msg.contains(VethPair::SRV_IF),
        "{msg}"
    );

    let (_l, r) = attach(VethPair::SRV_IF, XdpMode::Native);
    let msg = format!("{:#}", r.expect_err("native XDP with MTU 9000"));
    assert!(
        msg.contains("MTU") && msg.contains("--xdp-mode skb"),
        "{msg}"
    );

    let (mut auto, r) = attach(VethPair::SRV_IF, XdpMode::Auto);
    assert_eq!(r.expect("auto falls back to skb"), XdpMode::Skb);
    let msg = format!(
        "{:#}",
        net.srv
            .enter(|| auto.attach())
            .expect("enter")
            .expect_err("twice")
    );
    assert!(msg.contains("already attached"), "{msg}");

    // A second program on the same interface (another xdhcp, or a stale one) is refused.
    let (_l, r) = attach(VethPair::SRV_IF, XdpMode::Skb);
    let msg = format!("{:#}", r.expect_err("second program"));
    assert!(
        msg.contains("another XDP program is already attached"),
        "{msg}"
    );
}

/// Without privileges the loader says which capabilities are missing and how to get them.
/// Re-runs this test binary as `nobody` with no capabilities (setpriv).
#[test]
fn unprivileged_load_says_how_to_fix_it() {
    const CHILD: &str = "XDHCP_TEST_UNPRIVILEGED_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let err = Loader::prepare(
            b"\x7fELF not checked before privileges",
            &LoadOptions::new("lo"),
        )
        .expect_err("nobody cannot load BPF");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("CAP_BPF") && msg.contains("CAP_NET_ADMIN") && msg.contains("setcap"),
            "{msg}"
        );
        return;
    }
    if !require_root("unprivileged_load_says_how_to_fix_it") {
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(exe)
        .args([
            "--exact",
            "unprivileged_load_says_how_to_fix_it",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fixtures again, live: injected raw on the peer (`AF_PACKET`, so VLAN tags stay in the
/// frame as a switch would send them) and classified by the attached program, natively and in
/// generic mode. No worker socket is bound, so "steered" shows as `PassNoSocket`.
///
/// (Tags are injected raw because this kernel has no 802.1Q module for VLAN interfaces.)
#[test]
fn injected_frames_are_classified_live() {
    let test = "injected_frames_are_classified_live";
    if !require_root(test) {
        return;
    }
    let Some(object) = ebpf_object(test) else {
        return;
    };
    let mut cases: Vec<(String, Vec<u8>, Counter)> = for_us()
        .into_iter()
        .map(|(n, f)| (n.to_owned(), f, Counter::PassNoSocket))
        .collect();
    let mut other_port = DhcpFrame::discover(MAC);
    other_port.dst_port = 53;
    let mut fragment = DhcpFrame::discover(MAC);
    fragment.ip.flags_frag = 0x2000;
    cases.extend([
        (
            "ARP".to_owned(),
            arp_request(MAC, CLIENT, SRV_IP),
            Counter::PassNotIpv4,
        ),
        (
            "UDP/53".to_owned(),
            other_port.build(),
            Counter::PassOtherPort,
        ),
        (
            "fragment".to_owned(),
            fragment.build(),
            Counter::PassFragment,
        ),
        (
            "three tags".to_owned(),
            DhcpFrame::discover(MAC)
                .tagged(&[(ETH_P_8021AD, 1), (ETH_P_8021Q, 2), (ETH_P_8021Q, 3)])
                .build(),
            Counter::PassVlan,
        ),
        (
            "not for us".to_owned(),
            DhcpFrame::relayed(MAC, RELAY, Ipv4Addr::new(10, 213, 0, 9)).build(),
            Counter::PassNotForUs,
        ),
    ]);
    for mode in [XdpMode::Native, XdpMode::Skb] {
        let net = VethPair::new(
            "xdpi",
            &VethOptions {
                srv_addr: Some(SRV_ADDR.into()),
                ..VethOptions::default()
            },
        )
        .expect("veth pair");
        let mut opts = LoadOptions::new(VethPair::SRV_IF);
        opts.mode = mode;
        opts.local_addrs = vec![SRV_IP];
        let mut loader = Loader::prepare(&object, &opts).expect("load");
        net.srv
            .enter(|| loader.attach())
            .expect("enter")
            .expect("attach");
        let raw = net
            .cli
            .enter(|| RawSocket::open(VethPair::CLI_IF))
            .expect("enter")
            .expect("raw socket");
        for (name, frame, expected) in &cases {
            let before = loader.counters().expect("counters");
            raw.send(frame).expect("send");
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            let delta = loop {
                let d = loader.counters().expect("counters").since(&before);
                if d.get(Counter::Seen) >= 1 || std::time::Instant::now() > deadline {
                    break d;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            assert_eq!(single_verdict(&delta), *expected, "{mode}: {name}");
        }
    }
}

/// `debug_events` turns on the program's aya-log events; they arrive through the `log` facade
/// when the loader flushes them. Off by default: the loader drains the ring buffer either way, so
/// an event the level override failed to silence would show up here.
#[test]
fn debug_events_reach_the_log_facade_only_when_enabled() {
    use std::sync::Mutex;

    static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    struct Capture;
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            RECORDS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(record.args().to_string());
        }
        fn flush(&self) {}
    }
    let taken = |marker: &str| -> Vec<String> {
        let mut all = RECORDS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mine, rest): (Vec<String>, Vec<String>) =
            all.drain(..).partition(|r| r.contains(marker));
        *all = rest;
        mine
    };

    // Before loading: aya-log binds the global logger when the loader sets up its reader. Only
    // this test installs a logger in this process.
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Trace);
    for enabled in [false, true] {
        let Some(mut loader) = prepare("debug_events_reach_the_log_facade", |o| {
            o.debug_events = enabled
        }) else {
            return;
        };
        assert_eq!(
            run(&loader, &DhcpFrame::discover(MAC).build(), None),
            (XDP_PASS, Counter::PassNoSocket)
        );
        loader.flush_debug_events();
        let events = taken("no AF_XDP socket at XSKS[0]");
        if enabled {
            assert_eq!(
                events.len(),
                1,
                "one debug event per socketless steer: {events:?}"
            );
            assert!(events[0].contains("rx queue 0"), "{events:?}");
        } else {
            assert!(
                events.is_empty(),
                "debug events are off by default: {events:?}"
            );
        }
    }
}
