//! The generator against the engine's sans-IO server, in memory: every frame the generator
//! writes goes through `Server::handle`, every reply back through `Generator::on_frame`. Proves
//! the frames are ones a strict server answers (direct, relayed with option 82, QinQ), the state
//! machine completes DORA + renew + release, pacing and retransmission work (a lossy "wire"
//! drops frames on purpose), and duplicate detection fires when a "server" misbehaves.

use super::client::{Config, Generator, Pace, Relay};
use super::frame::{self, msg};
use super::report::Summary;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use xdhcp::dhcp::{Link, Server, Stats, Verdict};
use xdhcp::lease::LeaseTables;

const SRV: Ipv4Addr = Ipv4Addr::new(10, 50, 0, 1);
const SRV_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 60, 0, 1);
const RELAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

fn server(extra: &str) -> Server {
    let text = format!(
        r#"
authoritative = true
durability = "none"
state_dir = "/nonexistent"
lease_time = 3600

[[subnet]]
network = "10.50.0.0/16"
server_id = "10.50.0.1"
ranges = ["10.50.1.0-10.50.255.254"]

[[subnet]]
network = "10.60.0.0/16"
server_id = "10.50.0.1"
routers = ["10.60.0.1"]
ranges = ["10.60.1.0-10.60.255.254"]
{extra}
"#
    );
    let cfg = xdhcp::config::parse(&text, Path::new("test.toml")).expect("valid config");
    let tables = Arc::new(LeaseTables::new(&cfg, 2));
    Server::new(Arc::new(cfg), tables)
}

/// Run the generator against `srv` with a simulated clock; `drop_every` > 0 drops every n-th
/// request on the "wire". Returns the generator at the end.
fn drive(mut lg: Generator, srv: &Server, drop_every: u64, max_steps: u64) -> Generator {
    let link = Link {
        mac: SRV_MAC,
        addr: SRV,
    };
    let mut stats = Stats::default();
    let mut now: u64 = 0;
    let mut sent = 0u64;
    let mut rx = vec![0u8; 2048];
    let mut tx = vec![0u8; 2048];
    for _ in 0..max_steps {
        if lg.finished(now) {
            break;
        }
        let mut any = false;
        while let Some(n) = lg.poll_transmit(now, &mut rx) {
            any = true;
            sent += 1;
            if drop_every > 0 && sent.is_multiple_of(drop_every) {
                continue;
            }
            if let Verdict::Reply { len, .. } =
                srv.handle(&rx[..n], &mut tx, &link, now / 1_000_000_000, &mut stats)
            {
                lg.on_frame(&tx[..len], now + 50_000);
            }
        }
        // 100 µs per step when busy; jump 10 ms when idle (timers).
        now += if any { 100_000 } else { 10_000_000 };
    }
    lg
}

fn assert_unique(lg: &Generator) {
    let mut seen = std::collections::HashMap::new();
    for (c, a) in lg.bound() {
        if let Some(other) = seen.insert(a, c) {
            panic!("{a} bound to clients {other} and {c}");
        }
    }
}

#[test]
fn direct_dora_renew_release_against_the_engine() {
    let srv = server("");
    let mut cfg = Config::new(3000);
    cfg.renew = true;
    cfg.pace = Pace::Window(64);
    let lg = drive(Generator::new(cfg), &srv, 0, 100_000);
    let s = lg.stats();
    assert_eq!(s.completed, 3000, "{s:?}");
    assert_eq!(s.renews_completed, 3000);
    assert_eq!(s.offers, 3000);
    assert_eq!(s.acks, 6000);
    assert_eq!(
        (s.naks, s.duplicates, s.failed, s.retransmits),
        (0, 0, 0, 0)
    );
    assert_eq!(lg.bound().count(), 3000);
    assert_unique(&lg);
    for (_, a) in lg.bound() {
        assert_eq!(
            a.octets()[..2],
            [10, 50],
            "direct clients get the link's subnet"
        );
    }
    let sum = Summary::new("engine", "memory", lg.config(), s);
    assert_eq!(sum.loss_pct, 0.0);
    assert!(sum.p50_us >= 50 && sum.p99_us >= sum.p50_us);

    // Release frees every address.
    let mut cfg = Config::new(500);
    cfg.mac_prefix = 0x11;
    cfg.release = true;
    let lg = drive(Generator::new(cfg), &srv, 0, 100_000);
    assert_eq!(lg.stats().completed, 500);
    assert_eq!(lg.stats().releases, 500);
    assert_eq!(lg.bound().count(), 0);
}

#[test]
fn relayed_qinq_with_option82_gets_the_relay_subnet() {
    let srv = server("");
    let mut cfg = Config::new(1000);
    cfg.relay = Some(Relay {
        giaddr: RELAY,
        mac: RELAY_MAC,
        server: SRV,
        server_mac: SRV_MAC,
        option82: true,
    });
    cfg.svlan = Some(10);
    cfg.vlan = Some(100);
    cfg.vlan_count = 50;
    cfg.pace = Pace::Rate(100_000.0);
    let lg = drive(Generator::new(cfg), &srv, 0, 100_000);
    let s = lg.stats();
    assert_eq!(s.completed, 1000, "{s:?}");
    for (_, a) in lg.bound() {
        assert_eq!(a.octets()[..2], [10, 60], "giaddr selects the subnet");
    }
    assert_unique(&lg);
}

#[test]
fn avalanche_with_loss_converges_through_backoff() {
    let srv = server("");
    let mut cfg = Config::new(2000);
    cfg.pace = Pace::Avalanche;
    cfg.time_scale = 0.01; // 40 ms first retransmission
    cfg.max_tries = 8;
    // Every 7th request is lost on the wire.
    let lg = drive(Generator::new(cfg), &srv, 7, 1_000_000);
    let s = lg.stats();
    assert_eq!(s.completed, 2000, "{s:?}");
    assert!(s.retransmits > 0, "losses are recovered by retransmission");
    assert_eq!(s.failed, 0);
    assert_eq!(s.duplicates, 0);
    assert!(!s.progress.is_empty());
    let sum = Summary::new("avalanche", "memory", lg.config(), s);
    assert!(sum.converge_s.is_some());
    assert!(sum.t50_s <= sum.t99_s);
    // A retransmitted exchange waited at least the scaled 4 s - 1 s.
    assert!(sum.max_us >= 30_000, "{}", sum.max_us);
}

#[test]
fn a_server_that_gives_one_address_twice_is_caught() {
    // A fake server: OFFER and ACK 10.50.9.9 to everybody.
    let mut lg = Generator::new(Config::new(3));
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let mut now = 0;
    for _ in 0..10 {
        while let Some(n) = lg.poll_transmit(now, &mut buf) {
            let req = xdhcp::wire::parse(&buf[..n]).expect("valid request");
            let mt = match u8::from(req.options.message_type()) {
                msg::DISCOVER => msg::OFFER,
                _ => msg::ACK,
            };
            let len = fake_reply(&mut out, &req, mt, Ipv4Addr::new(10, 50, 9, 9));
            lg.on_frame(&out[..len], now);
        }
        now += 1_000_000;
    }
    let s = lg.stats();
    assert_eq!(s.completed, 3);
    assert_eq!(s.duplicates, 2, "clients 2 and 3 got client 1's address");
    let (a, holder, newcomer) = s.first_duplicate.expect("recorded");
    assert_eq!(a, Ipv4Addr::new(10, 50, 9, 9));
    assert_ne!(holder, newcomer);
}

#[test]
fn echo_mode_counts_reflected_requests() {
    let mut cfg = Config::new(100);
    cfg.echo = true;
    let mut lg = Generator::new(cfg);
    let mut buf = vec![0u8; 2048];
    let mut now = 0;
    while !lg.finished(now) && now < 1_000_000_000 {
        while let Some(n) = lg.poll_transmit(now, &mut buf) {
            let f = &mut buf[..n];
            let src: [u8; 6] = f[6..12].try_into().expect("6 bytes");
            f[6..12].copy_from_slice(&SRV_MAC);
            f[..6].copy_from_slice(&src);
            lg.on_frame(f, now + 1000);
        }
        now += 100_000;
    }
    assert_eq!(lg.stats().completed, 100);
    assert_eq!(lg.stats().offers, 0);
    assert_eq!(lg.bound().count(), 0, "echo binds nothing");
}

fn fake_reply(out: &mut [u8], req: &xdhcp::wire::Request<'_>, mt: u8, yi: Ipv4Addr) -> usize {
    use xdhcp::wire::{BootpReply, ReplyHeaders, ReplyWriter, opt};
    let h = ReplyHeaders {
        eth_dst: req.l2.src,
        eth_src: SRV_MAC,
        vlans: req.l2.vlan_tags(),
        ip_src: SRV,
        ip_dst: yi,
        udp_src: 67,
        udp_dst: 68,
        ttl: 64,
    };
    let mut w = ReplyWriter::new(out, &h).expect("room");
    w.bootp(&BootpReply {
        yiaddr: yi,
        ..BootpReply::for_request(req)
    })
    .expect("room");
    w.option_u8(opt::MESSAGE_TYPE, mt).expect("room");
    w.option_ipv4(opt::SERVER_ID, SRV).expect("room");
    let n = w.finish().expect("room");
    assert!(frame::parse_reply(&out[..n]).is_some());
    n
}
