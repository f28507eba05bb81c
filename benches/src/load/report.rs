//! The result of a run: one machine-readable `RESULT key=value ...` line — the same keys for
//! every server under test, so `cargo xtask bench compare` can put xdhcp, Kea, dnsmasq and ISC
//! dhcpd (and perfdhcp's runs, converted to these keys) in one table — and a human summary.

use super::client::{Config, Pace, Stats};
use std::fmt::Write as _;

/// Everything a run reports, computed once from the generator's [`Stats`].
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub label: String,
    pub io: String,
    pub mode: String,
    pub clients: u32,
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// 100 × (started − completed) / started.
    pub loss_pct: f64,
    /// Sustained rate: completed exchanges per second between the moments 10 % and 90 % of all
    /// completions were reached (the slope of the convergence curve). Unlike the overall rate it
    /// does not depend on a few stragglers waiting out a 4 s retransmission.
    pub exch_per_s: f64,
    /// Completed exchanges per second between the first transmission and the last completion.
    pub overall_per_s: f64,
    /// First transmission to last completion, seconds.
    pub elapsed_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    pub retransmits: u64,
    pub stray: u64,
    pub duplicates: u64,
    pub tx_frames: u64,
    pub rx_frames: u64,
    pub renews: u64,
    pub renew_p99_us: u64,
    pub releases: u64,
    /// Seconds until 50 %, 90 %, 99 % and 100 % of the clients had completed (avalanche).
    pub t50_s: Option<f64>,
    pub t90_s: Option<f64>,
    pub t99_s: Option<f64>,
    pub converge_s: Option<f64>,
}

fn mode(cfg: &Config) -> String {
    let pace = match cfg.pace {
        Pace::Window(w) => format!("window{w}"),
        Pace::Rate(r) => format!("rate{r:.0}"),
        Pace::Avalanche => "avalanche".to_owned(),
    };
    let mut m = pace;
    if cfg.echo {
        m.push_str("+echo");
    }
    if cfg.relay.is_some() {
        m.push_str("+relay");
    }
    if cfg.renew {
        m.push_str("+renew");
    }
    if cfg.release {
        m.push_str("+release");
    }
    m
}

impl Summary {
    pub fn new(label: &str, io: &str, cfg: &Config, s: &Stats) -> Summary {
        let first = s.first_tx.unwrap_or(0);
        let elapsed_ns = s.last_done.saturating_sub(first);
        let elapsed_s = elapsed_ns as f64 / 1e9;
        let overall_per_s = if elapsed_ns > 0 {
            s.completed as f64 / elapsed_s
        } else {
            0.0
        };
        let sample = |frac: f64| {
            let want = (s.completed as f64 * frac).ceil() as u64;
            s.progress
                .iter()
                .find(|&&(_, done)| done >= want.max(1))
                .copied()
        };
        let exch_per_s = match (sample(0.1), sample(0.9)) {
            (Some((t1, c1)), Some((t2, c2))) if t2 > t1 && c2 > c1 => {
                (c2 - c1) as f64 / ((t2 - t1) as f64 / 1e9)
            }
            _ => overall_per_s,
        };
        let loss_pct = if s.exchanges_started > 0 {
            100.0 * (s.exchanges_started.saturating_sub(s.completed)) as f64
                / s.exchanges_started as f64
        } else {
            100.0
        };
        let at = |pct: u64| {
            let want = (u64::from(cfg.clients) * pct).div_ceil(100).max(1);
            s.progress
                .iter()
                .find(|&&(_, done)| done >= want)
                .map(|&(t, _)| t.saturating_sub(first) as f64 / 1e9)
        };
        let converge_s =
            (s.completed >= u64::from(cfg.clients) && cfg.clients > 0).then_some(elapsed_s);
        Summary {
            label: label.to_owned(),
            io: io.to_owned(),
            mode: mode(cfg),
            clients: cfg.clients,
            started: s.exchanges_started,
            completed: s.completed,
            failed: s.failed,
            loss_pct,
            exch_per_s,
            overall_per_s,
            elapsed_s,
            p50_us: s.dora_us.value_at_quantile(0.5),
            p99_us: s.dora_us.value_at_quantile(0.99),
            max_us: s.dora_us.max(),
            offers: s.offers,
            acks: s.acks,
            naks: s.naks,
            retransmits: s.retransmits,
            stray: s.stray,
            duplicates: s.duplicates,
            tx_frames: s.tx_frames,
            rx_frames: s.rx_frames,
            renews: s.renews_completed,
            renew_p99_us: s.renew_us.value_at_quantile(0.99),
            releases: s.releases,
            t50_s: at(50),
            t90_s: at(90),
            t99_s: at(99),
            converge_s,
        }
    }

    /// `RESULT k=v ...` on one line; absent values are `-`. Labels never contain spaces.
    pub fn result_line(&self) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let label: String = self
            .label
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        format!(
            "RESULT tool=xdhcp-load label={label} io={} mode={} clients={} started={} \
             completed={} failed={} loss_pct={:.3} exch_per_s={:.0} overall_per_s={:.0} elapsed_s={:.3} \
             p50_us={} \
             p99_us={} max_us={} offers={} acks={} naks={} retransmits={} stray={} dup_addrs={} \
             tx_frames={} rx_frames={} renews={} renew_p99_us={} releases={} t50_s={} t90_s={} \
             t99_s={} converge_s={}",
            self.io,
            self.mode,
            self.clients,
            self.started,
            self.completed,
            self.failed,
            self.loss_pct,
            self.exch_per_s,
            self.overall_per_s,
            self.elapsed_s,
            self.p50_us,
            self.p99_us,
            self.max_us,
            self.offers,
            self.acks,
            self.naks,
            self.retransmits,
            self.stray,
            self.duplicates,
            self.tx_frames,
            self.rx_frames,
            self.renews,
            self.renew_p99_us,
            self.releases,
            opt(self.t50_s),
            opt(self.t90_s),
            opt(self.t99_s),
            opt(self.converge_s),
        )
    }

    /// A few lines for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} of {} exchanges completed in {:.3} s; sustained {:.0} exchanges/s (overall \
             {:.0}/s) ({}, {}), loss {:.2} %",
            self.label,
            self.completed,
            self.started,
            self.elapsed_s,
            self.exch_per_s,
            self.overall_per_s,
            self.mode,
            self.io,
            self.loss_pct
        );
        let _ = writeln!(
            s,
            "  latency first DISCOVER -> ACK: p50 {} µs, p99 {} µs, max {} µs",
            self.p50_us, self.p99_us, self.max_us
        );
        let _ = writeln!(
            s,
            "  frames: {} sent, {} received; offers {}, acks {}, naks {}, retransmits {}, stray {}, \
             failed clients {}",
            self.tx_frames,
            self.rx_frames,
            self.offers,
            self.acks,
            self.naks,
            self.retransmits,
            self.stray,
            self.failed
        );
        if self.renews > 0 || self.releases > 0 {
            let _ = writeln!(
                s,
                "  renewals {} (p99 {} µs), releases {}",
                self.renews, self.renew_p99_us, self.releases
            );
        }
        if let (Some(a), Some(b), Some(c)) = (self.t50_s, self.t90_s, self.t99_s) {
            let _ = writeln!(
                s,
                "  convergence: 50 % after {a:.2} s, 90 % after {b:.2} s, 99 % after {c:.2} s, \
                 all: {}",
                self.converge_s
                    .map_or_else(|| "never".to_owned(), |t| format!("{t:.2} s"))
            );
        }
        let _ = writeln!(
            s,
            "  duplicate addresses (one address ACKed to two clients): {}",
            self.duplicates
        );
        s
    }
}

/// Parse a `RESULT k=v ...` line into pairs (for tools that read the generator's output).
pub fn parse_result_line(line: &str) -> Option<Vec<(&str, &str)>> {
    let rest = line.trim().strip_prefix("RESULT ")?;
    Some(
        rest.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::client::{Config, Generator};
    use super::*;

    #[test]
    fn result_line_round_trips_and_names_every_key_once() {
        let g = Generator::new(Config::new(10));
        let s = Summary::new("xdhcp xdp", "afxdp", g.config(), g.stats());
        let line = s.result_line();
        let kv = parse_result_line(&line).expect("a RESULT line");
        let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        assert_eq!(get("label"), Some("xdhcp_xdp"));
        assert_eq!(get("clients"), Some("10"));
        assert_eq!(get("completed"), Some("0"));
        assert_eq!(
            get("loss_pct"),
            Some("100.000"),
            "nothing started counts as all lost"
        );
        assert_eq!(get("converge_s"), Some("-"));
        let mut keys: Vec<_> = kv.iter().map(|(k, _)| *k).collect();
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate key in {line}");
        assert!(s.human().contains("duplicate addresses"));
    }
}
