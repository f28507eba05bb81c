//! The generator's event loop, and the AF_XDP echo responder that measures a link's ceiling.

use super::client::Generator;
use super::io::Io;
use super::report::Summary;
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Frames per send / receive call.
const BATCH: u32 = 256;

/// Limits of one run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Stop starting exchanges after this long.
    pub duration: Option<Duration>,
    /// After every exchange has been started (or `duration` is over), wait at most this long
    /// for the outstanding ones; what is still missing then counts as lost.
    pub drain: Duration,
}

/// Drive `lg` over `io` until every client finished, or the limits end the run.
pub fn run(lg: &mut Generator, io: &mut Io, limits: Limits, stop: &AtomicBool) {
    let t0 = Instant::now();
    let mut drain_from: Option<u64> = None;
    let drain_ns = limits.drain.as_nanos() as u64;
    let duration_ns = limits.duration.map(|d| d.as_nanos() as u64);
    loop {
        let now = t0.elapsed().as_nanos() as u64;
        let rx = io.recv(BATCH, |f| lg.on_frame(f, now));
        let now = t0.elapsed().as_nanos() as u64;
        let tx = io.send(BATCH, |b| lg.poll_transmit(now, b));
        if stop.load(Ordering::Relaxed) {
            lg.stop_starting();
        }
        if drain_from.is_none() {
            let time_up = duration_ns.is_some_and(|d| now >= d);
            if time_up {
                lg.stop_starting();
            }
            if time_up || lg.all_started() {
                drain_from = Some(now);
            }
        }
        if lg.finished(now) {
            break;
        }
        if drain_from.is_some_and(|d| now.saturating_sub(d) > drain_ns) {
            break;
        }
        if rx == 0 && tx == 0 {
            io.flush();
            // Nothing to do this instant: sleep until a frame arrives (or 1 ms, for timers and
            // pacing). Spinning would take the CPU the server under test needs.
            io.wait(1);
        }
    }
    io.finish(Duration::from_secs(1));
}

/// Run and summarise.
pub fn run_and_report(
    lg: &mut Generator,
    io: &mut Io,
    limits: Limits,
    label: &str,
    stop: &AtomicBool,
) -> Summary {
    run(lg, io, limits, stop);
    Summary::new(label, io.describe(), lg.config(), lg.stats())
}

/// The MAC of `addr` on the local link: send it one empty UDP datagram (the kernel resolves it
/// with ARP) and read the neighbour table.
///
/// # Errors
/// No answer within two seconds (no route, or nobody has that address).
pub fn resolve_mac(addr: Ipv4Addr) -> anyhow::Result<[u8; 6]> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    // Port 9 (discard): the datagram itself is irrelevant, only the ARP exchange matters.
    let _ = sock.send_to(&[], (addr, 9));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(mac) = neighbour(addr) {
            return Ok(mac);
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "cannot resolve the MAC of {addr}: no ARP answer (give --server-mac, or check that \
                 the interface has an address in the server's subnet)"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
        let _ = sock.send_to(&[], (addr, 9));
    }
}

fn neighbour(addr: Ipv4Addr) -> Option<[u8; 6]> {
    // thread-self: a thread that entered another network namespace (setns) sees that
    // namespace's table there; /proc/net follows the process's main thread.
    let table = std::fs::read_to_string("/proc/thread-self/net/arp")
        .or_else(|_| std::fs::read_to_string("/proc/net/arp"))
        .ok()?;
    let want = addr.to_string();
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // IP address, HW type, Flags (0x2 = complete), HW address, Mask, Device
        if f.len() >= 4 && f[0] == want && f[2] != "0x0" {
            parse_mac(f[3])
        } else {
            None
        }
    })
}

/// `aa:bb:cc:dd:ee:ff` -> bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Counters of the echo responder.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoStats {
    pub frames: u64,
}

/// Reflect every DHCP frame arriving on `io` back to its sender (Ethernet addresses swapped;
/// the rest untouched) until `stop` is set. This is the least work an AF_XDP program can do per
/// frame on this link: the ceiling a DHCP server on the same path is compared with.
pub fn echo(io: &mut Io, mac: [u8; 6], stop: &Arc<AtomicBool>) -> EchoStats {
    let mut stash: Vec<(usize, [u8; 2048])> = Vec::with_capacity(BATCH as usize);
    let mut pending = 0usize;
    let mut st = EchoStats::default();
    while !stop.load(Ordering::Relaxed) {
        let n = io.recv(BATCH, |f| {
            if pending < BATCH as usize && f.len() <= 2048 && f.len() >= 14 {
                if stash.len() <= pending {
                    stash.push((0, [0u8; 2048]));
                }
                let (len, buf) = &mut stash[pending];
                buf[..f.len()].copy_from_slice(f);
                buf[..6].copy_from_slice(&f[6..12]);
                buf[6..12].copy_from_slice(&mac);
                *len = f.len();
                pending += 1;
            }
        });
        let mut next = 0usize;
        while next < pending {
            let sent = io.send(BATCH, |b| {
                let (len, buf) = stash.get(next)?;
                if next >= pending {
                    return None;
                }
                b.get_mut(..*len)?.copy_from_slice(&buf[..*len]);
                next += 1;
                Some(*len)
            });
            if sent == 0 {
                // TX full: let the kernel finish some.
                io.flush();
                break;
            }
        }
        st.frames += next as u64;
        pending = 0;
        if n == 0 {
            io.flush();
            io.wait(10);
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:10:0a:ff:00:01"),
            Some([2, 0x10, 0x0a, 0xff, 0, 1])
        );
        assert_eq!(parse_mac("02:10:0a:ff:00"), None);
        assert_eq!(parse_mac("02:10:0a:ff:00:01:02"), None);
        assert_eq!(parse_mac("zz:10:0a:ff:00:01"), None);
    }
}
