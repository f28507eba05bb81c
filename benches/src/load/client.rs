//! The emulated clients: one small state machine per client, driven without I/O.
//!
//! [`Generator`] is sans-IO like the engine's decision: the caller passes the time in, hands it
//! every received frame ([`Generator::on_frame`]) and asks it for the next frame to transmit
//! ([`Generator::poll_transmit`]). That is what lets the unit tests run thousands of clients
//! against the engine's `Server::handle` in memory, and the binary drive the same code over
//! AF_XDP or AF_PACKET.
//!
//! Per client (RFC 2131 §4.4, figure 5): INIT --DISCOVER--> SELECTING --OFFER/REQUEST-->
//! REQUESTING --ACK--> BOUND, then optionally RENEWING (unicast REQUEST with ciaddr, §4.4.5) and
//! RELEASE (§4.4.6). A NAK sends the client back to INIT.
//!
//! Retransmission (RFC 2131 §4.1): "the client SHOULD delay 4 seconds before the first
//! retransmission, doubling to a maximum of 64 seconds, randomized by ±1 s". [`backoff`]
//! implements exactly that, multiplied by a time scale so tests and short benchmark runs can
//! compress it. Without it an "avalanche" (every client of a rebooted access network starting at
//! once) is unrealistically harsh: real clients spread their retries out, and a server that drops
//! the first wave converges only because they do.
//!
//! Duplicate detection: every ACK records address -> client; an ACK that gives a client an
//! address another client still holds (bound, not released) is a duplicate. That is the safety
//! property a DHCP server must never violate, checked here from the outside for any server.

use super::frame::{self, Kind, Path, Request, msg};
use hdrhistogram::Histogram;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use xdhcp::wire::{VlanTag, VlanTags};

const SEC: u64 = 1_000_000_000;

/// How new exchanges are started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Keep at most this many exchanges outstanding, starting a new one as soon as one
    /// completes ("as fast as possible", closed loop).
    Window(u32),
    /// Start this many exchanges per second (open loop).
    Rate(f64),
    /// Start every client at once; only retransmission backoff spreads them out.
    Avalanche,
}

/// Relay-agent emulation: requests leave from `giaddr:67` to `server:67` (RFC 2131 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relay {
    pub giaddr: Ipv4Addr,
    /// Our (the relay's) MAC: Ethernet source of relayed requests.
    pub mac: [u8; 6],
    pub server: Ipv4Addr,
    pub server_mac: [u8; 6],
    /// Add option 82 (circuit-id = client index, remote-id = client MAC).
    pub option82: bool,
}

/// What the generator does.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub clients: u32,
    /// Second byte of every client MAC (`02:PP:ii:ii:ii:ii`), so two runs can be told apart.
    pub mac_prefix: u8,
    /// Outer S-VLAN (802.1ad) for every client, making the inner tag a QinQ C-VLAN.
    pub svlan: Option<u16>,
    /// C-VLAN (802.1Q) of client 0; clients spread over `vlan_count` consecutive ids.
    pub vlan: Option<u16>,
    pub vlan_count: u16,
    pub relay: Option<Relay>,
    /// Ask servers to broadcast replies (BOOTP broadcast flag).
    pub broadcast: bool,
    pub pace: Pace,
    pub renew: bool,
    pub release: bool,
    /// Echo mode: the "server" reflects requests; a request coming back completes the exchange.
    pub echo: bool,
    /// Multiplier on RFC 2131 retransmission delays (1.0 = real time).
    pub time_scale: f64,
    /// Transmissions of one message before the client gives up on the exchange.
    pub max_tries: u32,
    /// Stop starting exchanges after this long (ns); clients that finish start over until then.
    /// `None`: every client does its sequence once.
    pub duration_ns: Option<u64>,
    /// Seed for xids and jitter.
    pub seed: u64,
}

impl Config {
    pub fn new(clients: u32) -> Self {
        Config {
            clients,
            mac_prefix: 0x10,
            svlan: None,
            vlan: None,
            vlan_count: 1,
            relay: None,
            broadcast: false,
            pace: Pace::Window(256),
            renew: false,
            release: false,
            echo: false,
            time_scale: 1.0,
            max_tries: 5,
            duration_ns: None,
            seed: 0x5eed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not started (or waiting to start over).
    Idle,
    Selecting,
    Requesting,
    Bound,
    Renewing,
    /// Finished its sequence (bound, or released).
    Done,
    /// Gave up after `max_tries`.
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Client {
    state: State,
    /// A transmission is queued.
    queued: bool,
    tries: u8,
    xid: u32,
    /// Timer generation: a timer whose `epoch` differs is stale.
    epoch: u32,
    /// Offered, then bound address (0 = none).
    addr: u32,
    server: u32,
    /// When the current exchange started (first DISCOVER, or first renew REQUEST).
    started: u64,
    released: bool,
}

/// Counters and latency histograms of a run.
#[derive(Debug)]
pub struct Stats {
    pub exchanges_started: u64,
    /// DORA (or echo) exchanges completed by an ACK (echo).
    pub completed: u64,
    pub renews_started: u64,
    pub renews_completed: u64,
    pub releases: u64,
    pub failed: u64,
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    /// Replies that matched no outstanding transaction (late duplicates after a retransmit,
    /// other runs' clients).
    pub stray: u64,
    pub tx_frames: u64,
    pub rx_frames: u64,
    pub retransmits: u64,
    /// Addresses ACKed to a client while another client held them.
    pub duplicates: u64,
    /// First duplicate seen: (address, holder, newcomer).
    pub first_duplicate: Option<(Ipv4Addr, u32, u32)>,
    /// Time of the first transmission and of the last completion (ns).
    pub first_tx: Option<u64>,
    pub last_done: u64,
    /// DISCOVER -> ACK (or request -> echo), µs, from the first transmission.
    pub dora_us: Histogram<u64>,
    /// Renew REQUEST -> ACK, µs.
    pub renew_us: Histogram<u64>,
    /// (time ns, completed) samples every 1 % of clients: the convergence curve.
    pub progress: Vec<(u64, u64)>,
}

impl Stats {
    fn new() -> Self {
        // 1 µs .. 1 h at 3 significant digits: constant bounds the crate accepts.
        let h = || Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid constant bounds");
        Stats {
            exchanges_started: 0,
            completed: 0,
            renews_started: 0,
            renews_completed: 0,
            releases: 0,
            failed: 0,
            offers: 0,
            acks: 0,
            naks: 0,
            stray: 0,
            tx_frames: 0,
            rx_frames: 0,
            retransmits: 0,
            duplicates: 0,
            first_duplicate: None,
            first_tx: None,
            last_done: 0,
            dora_us: h(),
            renew_us: h(),
            progress: Vec::new(),
        }
    }
}

/// RFC 2131 §4.1 retransmission delay before transmission `tries + 1`: 4 s doubling to 64 s,
/// plus uniform jitter in [-1 s, +1 s], all scaled. `rand` is a uniform u64.
pub fn backoff(tries: u32, time_scale: f64, rand: u64) -> u64 {
    let base = 4u64 << tries.min(4); // 4, 8, 16, 32, 64
    let jitter = (rand % 2001) as f64 / 1000.0 - 1.0; // -1.000 ..= +1.000 s
    let secs = (base.min(64) as f64 + jitter) * time_scale;
    (secs.max(0.0) * SEC as f64) as u64
}

/// splitmix64: xids and jitter without a dependency.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The load generator. See the module docs.
#[derive(Debug)]
pub struct Generator {
    cfg: Config,
    clients: Vec<Client>,
    /// Clients with a transmission due, in order.
    txq: VecDeque<u32>,
    /// Retransmission timers: (deadline ns, client, epoch).
    timers: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// Next never-started client.
    next_new: u32,
    /// Clients waiting to start over (duration mode).
    again: VecDeque<u32>,
    outstanding: u32,
    tokens: f64,
    last_pace: u64,
    /// Address -> client holding it.
    owner: HashMap<u32, u32>,
    /// Server MAC learned from replies (for unicast renew/release in direct mode).
    server_mac: Option<[u8; 6]>,
    rng: u64,
    next_progress: u64,
    stats: Stats,
}

impl Generator {
    pub fn new(cfg: Config) -> Self {
        let n = cfg.clients as usize;
        let idle = Client {
            state: State::Idle,
            queued: false,
            tries: 0,
            xid: 0,
            epoch: 0,
            addr: 0,
            server: 0,
            started: 0,
            released: false,
        };
        let server_mac = cfg.relay.map(|r| r.server_mac);
        let rng = mix(cfg.seed);
        let step = (u64::from(cfg.clients) / 100).max(1);
        Generator {
            clients: vec![idle; n],
            txq: VecDeque::with_capacity(n.min(1 << 20)),
            timers: BinaryHeap::with_capacity(n.min(1 << 20)),
            next_new: 0,
            again: VecDeque::new(),
            outstanding: 0,
            tokens: 0.0,
            last_pace: 0,
            owner: HashMap::with_capacity(n),
            server_mac,
            rng,
            next_progress: step,
            stats: Stats::new(),
            cfg,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Client `i`'s MAC: `02:PP:` + the index, big-endian.
    pub fn mac(&self, i: u32) -> [u8; 6] {
        let b = i.to_be_bytes();
        [0x02, self.cfg.mac_prefix, b[0], b[1], b[2], b[3]]
    }

    fn index_of(&self, chaddr: &[u8; 6]) -> Option<u32> {
        if chaddr[0] != 0x02 || chaddr[1] != self.cfg.mac_prefix {
            return None;
        }
        let i = u32::from_be_bytes([chaddr[2], chaddr[3], chaddr[4], chaddr[5]]);
        (i < self.cfg.clients).then_some(i)
    }

    fn rand(&mut self) -> u64 {
        self.rng = mix(self.rng);
        self.rng
    }

    /// Every client has finished (or failed) and nothing more will start.
    pub fn finished(&self, now: u64) -> bool {
        let starting_over = self.cfg.duration_ns.is_some_and(|d| now < d);
        self.outstanding == 0
            && self.txq.is_empty()
            && self.next_new >= self.cfg.clients
            && (self.again.is_empty() || !starting_over)
    }

    /// Every client has been started once and none will start over (no duration, or it ended).
    pub fn all_started(&self) -> bool {
        self.next_new >= self.cfg.clients && self.cfg.duration_ns.is_none_or(|d| d == 0)
    }

    /// Exchanges (or renewals) waiting for a reply.
    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }

    /// Stop starting new exchanges (the run's time is up); outstanding ones may still finish.
    pub fn stop_starting(&mut self) {
        self.next_new = self.cfg.clients;
        self.again.clear();
        self.cfg.duration_ns = Some(0);
    }

    /// Addresses currently held (bound and not released), by client; for checks and tests.
    pub fn bound(&self) -> impl Iterator<Item = (u32, Ipv4Addr)> + '_ {
        self.clients
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.addr != 0
                    && !c.released
                    && matches!(c.state, State::Bound | State::Renewing | State::Done)
            })
            .map(|(i, c)| (i as u32, Ipv4Addr::from(c.addr)))
    }

    fn start(&mut self, i: u32, now: u64) {
        let c = &mut self.clients[i as usize];
        c.state = State::Selecting;
        c.tries = 0;
        c.addr = 0;
        c.server = 0;
        c.released = false;
        c.started = now;
        self.rng = mix(self.rng ^ u64::from(i));
        c.xid = self.rng as u32;
        self.outstanding += 1;
        self.stats.exchanges_started += 1;
        self.enqueue(i);
    }

    fn enqueue(&mut self, i: u32) {
        let c = &mut self.clients[i as usize];
        if !c.queued {
            c.queued = true;
            self.txq.push_back(i);
        }
    }

    /// Start new exchanges as the pace allows (called from `poll_transmit`).
    fn pace(&mut self, now: u64) {
        if self.cfg.duration_ns.is_some_and(|d| now >= d) {
            return;
        }
        let mut budget = match self.cfg.pace {
            Pace::Avalanche => u64::MAX,
            Pace::Window(w) => u64::from(w.saturating_sub(self.outstanding)),
            Pace::Rate(r) => {
                let dt = now.saturating_sub(self.last_pace) as f64 / SEC as f64;
                self.last_pace = now;
                // At most one second of credit, so a stall does not become a burst.
                self.tokens = (self.tokens + r * dt).min(r.max(1.0));
                self.tokens as u64
            }
        };
        // Only start what the queue will send soon: keeps an avalanche's queue from holding
        // every client at once (they are started as the link takes them).
        budget = budget.min(1024u64.saturating_sub(self.txq.len() as u64));
        let mut started = 0u64;
        while started < budget {
            let i = if self.next_new < self.cfg.clients {
                self.next_new += 1;
                self.next_new - 1
            } else if let Some(i) = self.again.pop_front() {
                i
            } else {
                break;
            };
            self.start(i, now);
            started += 1;
        }
        if let Pace::Rate(_) = self.cfg.pace {
            self.tokens -= started as f64;
        }
    }

    /// Fire due retransmission timers.
    fn timers(&mut self, now: u64) {
        while let Some(&Reverse((at, i, epoch))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let max_tries = self.cfg.max_tries;
            let c = &mut self.clients[i as usize];
            if c.epoch != epoch
                || !matches!(
                    c.state,
                    State::Selecting | State::Requesting | State::Renewing
                )
            {
                continue;
            }
            if u32::from(c.tries) >= max_tries {
                // RFC 2131 §4.4.1 leaves the number of retries to the client; give up.
                c.state = State::Failed;
                self.outstanding -= 1;
                self.stats.failed += 1;
                continue;
            }
            self.stats.retransmits += 1;
            self.enqueue(i);
        }
    }

    /// Write the next due frame into `buf` (a whole TX frame); `None` when nothing is due now.
    pub fn poll_transmit(&mut self, now: u64, buf: &mut [u8]) -> Option<usize> {
        if self.txq.is_empty() {
            self.timers(now);
            self.pace(now);
        }
        while let Some(i) = self.txq.pop_front() {
            self.clients[i as usize].queued = false;
            if let Some(n) = self.write(i, now, buf) {
                self.stats.tx_frames += 1;
                self.stats.first_tx.get_or_insert(now);
                return Some(n);
            }
        }
        None
    }

    fn path(&self, i: u32, unicast: bool) -> Path {
        let mac = self.mac(i);
        let mut tags = [VlanTag::default(); 2];
        let mut n = 0;
        if let Some(s) = self.cfg.svlan {
            tags[n] = VlanTag::s_tag(s);
            n += 1;
        }
        if let Some(v) = self.cfg.vlan {
            let spread = u32::from(self.cfg.vlan_count.max(1));
            let vid = (u32::from(v) + i % spread).min(4094) as u16;
            tags[n] = VlanTag::c_tag(vid);
            n += 1;
        }
        let vlans = VlanTags::new(&tags[..n]).unwrap_or_default();
        let c = &self.clients[i as usize];
        match self.cfg.relay {
            Some(r) => Path {
                eth_src: r.mac,
                eth_dst: r.server_mac,
                vlans,
                ip_src: r.giaddr,
                ip_dst: r.server,
                udp_src: 67,
                udp_dst: 67,
                giaddr: r.giaddr,
                hops: 1,
            },
            // RFC 2131 §4.4.5: RENEWING is unicast from the client's address to the server.
            None if unicast && c.addr != 0 && c.server != 0 => Path {
                eth_src: mac,
                eth_dst: self.server_mac.unwrap_or([0xff; 6]),
                vlans,
                ip_src: Ipv4Addr::from(c.addr),
                ip_dst: Ipv4Addr::from(c.server),
                udp_src: 68,
                udp_dst: 67,
                giaddr: Ipv4Addr::UNSPECIFIED,
                hops: 0,
            },
            None => Path::broadcast(mac, vlans),
        }
    }

    fn write(&mut self, i: u32, now: u64, buf: &mut [u8]) -> Option<usize> {
        let c = self.clients[i as usize];
        let (kind, unicast, expect_reply) = match c.state {
            State::Selecting => (Kind::Discover, false, true),
            State::Requesting => (
                Kind::Select {
                    requested: Ipv4Addr::from(c.addr),
                    server: Ipv4Addr::from(c.server),
                },
                false,
                true,
            ),
            State::Renewing => (
                Kind::Renew {
                    ciaddr: Ipv4Addr::from(c.addr),
                },
                true,
                true,
            ),
            // A queued RELEASE: the client is Bound and flagged released.
            State::Bound if c.released => (
                Kind::Release {
                    ciaddr: Ipv4Addr::from(c.addr),
                    server: Ipv4Addr::from(c.server),
                },
                true,
                false,
            ),
            _ => return None,
        };
        let secs = (now.saturating_sub(c.started) / SEC).min(u64::from(u16::MAX)) as u16;
        let mac = self.mac(i);
        let req = Request {
            kind,
            xid: c.xid,
            chaddr: mac,
            secs,
            broadcast: self.cfg.broadcast,
            option82: self
                .cfg
                .relay
                .filter(|r| r.option82)
                .map(|_| (i.to_be_bytes(), mac)),
        };
        let path = self.path(i, unicast);
        let n = frame::write_request(buf, &path, &req).ok()?;
        if expect_reply {
            let r = self.rand();
            let tries = u32::from(c.tries);
            let at = now + backoff(tries, self.cfg.time_scale, r);
            let cl = &mut self.clients[i as usize];
            cl.tries = cl.tries.saturating_add(1);
            cl.epoch = cl.epoch.wrapping_add(1);
            let epoch = cl.epoch;
            self.timers.push(Reverse((at, i, epoch)));
        } else {
            // The RELEASE is out: the client is done with this address.
            self.finish_release(i, now);
        }
        Some(n)
    }

    fn finish_release(&mut self, i: u32, now: u64) {
        let c = &mut self.clients[i as usize];
        if self.owner.get(&c.addr) == Some(&i) {
            self.owner.remove(&c.addr);
        }
        c.state = State::Done;
        self.stats.releases += 1;
        self.outstanding -= 1;
        self.done(i, now);
    }

    /// A client finished its sequence: start over later in duration mode.
    fn done(&mut self, i: u32, now: u64) {
        if self.cfg.duration_ns.is_some_and(|d| now < d) {
            self.clients[i as usize].state = State::Idle;
            self.again.push_back(i);
        }
    }

    /// Account for one received frame.
    pub fn on_frame(&mut self, f: &[u8], now: u64) {
        self.stats.rx_frames += 1;
        let Some(r) = frame::parse_reply(f) else {
            return;
        };
        let Some(i) = self.index_of(&r.chaddr) else {
            return;
        };
        let c = self.clients[i as usize];
        if r.xid != c.xid {
            self.stats.stray += 1;
            return;
        }
        if self.cfg.echo {
            if r.op == 1 && c.state == State::Selecting {
                self.complete(i, now, r.yiaddr, false);
            } else {
                self.stats.stray += 1;
            }
            return;
        }
        if r.op != 2 {
            return;
        }
        if self.server_mac.is_none() {
            self.server_mac = Some(r.eth_src);
        }
        match (r.msg_type, c.state) {
            (msg::OFFER, State::Selecting) => {
                self.stats.offers += 1;
                let cl = &mut self.clients[i as usize];
                cl.state = State::Requesting;
                cl.tries = 0;
                cl.addr = u32::from(r.yiaddr);
                cl.server = u32::from(r.server_id);
                if cl.server == 0 {
                    cl.server = self.cfg.relay.map_or(0, |x| u32::from(x.server));
                }
                self.enqueue(i);
            }
            (msg::ACK, State::Requesting) => {
                self.stats.acks += 1;
                self.complete(i, now, r.yiaddr, false);
            }
            (msg::ACK, State::Renewing) => {
                self.stats.acks += 1;
                self.complete(i, now, r.yiaddr, true);
            }
            (msg::NAK, State::Requesting | State::Renewing) => {
                // RFC 2131 §4.4.1: on NAK the client restarts in INIT.
                // The exchange goes on (its latency keeps counting from the first DISCOVER).
                self.stats.naks += 1;
                let x = self.rand() as u32;
                let cl = &mut self.clients[i as usize];
                cl.state = State::Selecting;
                cl.tries = 0;
                cl.addr = 0;
                cl.server = 0;
                cl.epoch = cl.epoch.wrapping_add(1);
                cl.xid = x;
                self.enqueue(i);
            }
            _ => self.stats.stray += 1,
        }
    }

    fn complete(&mut self, i: u32, now: u64, yiaddr: Ipv4Addr, renew: bool) {
        let started = self.clients[i as usize].started;
        let us = (now.saturating_sub(started) / 1000).max(1);
        self.stats.last_done = now;
        if renew {
            self.stats.renews_completed += 1;
            let _ = self.stats.renew_us.record(us);
        } else {
            self.stats.completed += 1;
            let _ = self.stats.dora_us.record(us);
            if self.stats.completed >= self.next_progress {
                self.stats.progress.push((now, self.stats.completed));
                self.next_progress += (u64::from(self.cfg.clients) / 100).max(1);
            }
        }
        if !self.cfg.echo {
            self.record_owner(i, u32::from(yiaddr));
        }
        let cl = &mut self.clients[i as usize];
        cl.addr = u32::from(yiaddr);
        cl.tries = 0;
        cl.epoch = cl.epoch.wrapping_add(1);
        if self.cfg.renew && !renew && !self.cfg.echo {
            cl.state = State::Renewing;
            cl.started = now;
            self.stats.renews_started += 1;
            self.enqueue(i);
        } else if self.cfg.release && !self.cfg.echo {
            cl.state = State::Bound;
            cl.released = true;
            self.enqueue(i);
        } else {
            cl.state = State::Done;
            self.outstanding -= 1;
            self.done(i, now);
        }
    }

    /// RFC 2131 §4.3.1 safety from the outside: no address held by two clients.
    fn record_owner(&mut self, i: u32, addr: u32) {
        let old = self.clients[i as usize].addr;
        if old != 0 && old != addr && self.owner.get(&old) == Some(&i) {
            self.owner.remove(&old);
        }
        if let Some(&holder) = self.owner.get(&addr)
            && holder != i
        {
            let h = self.clients[holder as usize];
            let holds = h.addr == addr
                && !h.released
                && matches!(
                    h.state,
                    State::Bound | State::Renewing | State::Done | State::Requesting
                );
            if holds {
                self.stats.duplicates += 1;
                self.stats
                    .first_duplicate
                    .get_or_insert((Ipv4Addr::from(addr), holder, i));
            }
        }
        self.owner.insert(addr, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_rfc2131() {
        // Zero jitter at rand % 2001 == 1000.
        let mid = 1000;
        let secs = |t| backoff(t, 1.0, mid) / SEC;
        assert_eq!(
            [secs(0), secs(1), secs(2), secs(3), secs(4), secs(9)],
            [4, 8, 16, 32, 64, 64]
        );
        // Jitter stays within ±1 s.
        for r in [0, 1, 999, 1000, 2000, 123_456_789] {
            let d = backoff(0, 1.0, r);
            assert!((3 * SEC..=5 * SEC).contains(&d), "{d}");
        }
        // Scaled: 1/100 of the real delays.
        assert_eq!(backoff(2, 0.01, mid), 160_000_000);
    }

    #[test]
    fn macs_round_trip_to_indices() {
        let g = Generator::new(Config::new(1000));
        for i in [0, 1, 255, 256, 999] {
            assert_eq!(g.index_of(&g.mac(i)), Some(i));
        }
        assert_eq!(g.index_of(&g.mac(1000)), None, "beyond the clients");
        let mut other = g.mac(5);
        other[1] ^= 1;
        assert_eq!(g.index_of(&other), None, "another run's prefix");
    }
}
