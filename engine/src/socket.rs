//! `--io socket`: the kernel-socket backend. Same engine, same worker loop, same whole-frame
//! semantics as AF_XDP — only the frames travel through an `AF_PACKET` socket.
//!
//! It exists for two reasons: hosts where no XDP program can attach (old kernels, some virtual
//! NICs, containers without CAP_BPF), and as the baseline that measures what kernel bypass buys.
//! Because it reads whole Ethernet frames (VLAN tags restored from `PACKET_AUXDATA`, see
//! [`crate::xsk::packet`]) and writes whole reply frames, relays, broadcasts and VLANs behave
//! exactly as on the XDP path.
//!
//! With several workers the sockets join one `PACKET_FANOUT_HASH` group: the kernel spreads
//! frames by flow hash, so one client (one flow) stays on one worker. All direct broadcasts share
//! one flow (`0.0.0.0:68 -> 255.255.255.255:67`), so unlike the XDP path (chaddr hash) this
//! backend only spreads relayed traffic — one more reason it is the baseline.
//!
//! The kernel itself also sees every frame: a unicast request (renewal, relay) to a port nobody
//! listens on would make it send ICMP port-unreachable. [`PortGuard`] binds UDP port 67 and
//! discards what arrives there, so it does not.

use crate::journal::Fate;
use crate::worker::{BatchFn, Datapath, FateFn, IoStats, Job, Tx};
use crate::xsk::packet::{HEADROOM, PacketSocket};
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

/// Size of the reply buffer handed to the engine (same as an AF_XDP frame).
pub const TX_BUF: usize = 2048;
/// Receive buffer: a jumbo frame plus the VLAN headroom; longer frames are dropped as truncated.
pub const RX_BUF: usize = HEADROOM + 9216;
/// Replies one socket holds for the journal at most; a reply beyond that is dropped (counted as
/// `held_dropped`; the client retransmits). At one fsync per batch this is far more than a
/// batch of one worker.
pub const MAX_HELD: usize = 8192;

/// One worker's packet socket and buffers.
#[derive(Debug)]
pub struct PacketPath {
    sock: PacketSocket,
    rx: Box<[u8]>,
    tx: Box<[u8]>,
    /// Replies waiting for the journal: (ticket, frame), oldest first.
    held: VecDeque<(u64, Vec<u8>)>,
    /// Buffers of sent held replies, reused so the steady state does not allocate.
    spare: Vec<Vec<u8>>,
    stats: IoStats,
}

impl PacketPath {
    /// Open a filtered packet socket on `ifindex`; with `fanout = Some(group)` it shares the
    /// traffic with the other sockets of the group.
    ///
    /// # Errors
    /// See [`PacketSocket::open`].
    pub fn open(ifindex: u32, fanout: Option<u16>) -> io::Result<PacketPath> {
        Ok(PacketPath {
            sock: PacketSocket::open(ifindex, fanout)?,
            rx: vec![0; RX_BUF].into_boxed_slice(),
            tx: vec![0; TX_BUF].into_boxed_slice(),
            held: VecDeque::new(),
            spare: Vec::new(),
            stats: IoStats::default(),
        })
    }

    fn send(&mut self, len: usize) {
        match self.tx.get(..len) {
            Some(reply) if len > 0 => match self.sock.send(reply) {
                Ok(()) => self.stats.tx += 1,
                Err(_) => self.stats.tx_errors += 1,
            },
            _ => self.stats.tx_errors += 1,
        }
    }

    /// Open `n` sockets on `ifindex` in one fanout group (none when `n == 1`).
    ///
    /// # Errors
    /// As [`PacketPath::open`].
    pub fn open_many(ifindex: u32, n: usize) -> io::Result<Vec<PacketPath>> {
        // Fanout group ids are per network namespace; the pid keeps two servers apart.
        let group = (n > 1).then(|| (std::process::id() & 0xffff) as u16);
        (0..n).map(|_| PacketPath::open(ifindex, group)).collect()
    }
}

impl Datapath for PacketPath {
    fn process(&mut self, budget: u32, handle: &mut BatchFn<'_>) -> u32 {
        let mut n = 0;
        while n < budget {
            let meta = match self.sock.recv(&mut self.rx) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => {
                    self.stats.rx_dropped += 1;
                    break;
                }
            };
            n += 1;
            self.stats.rx += 1;
            if meta.truncated || meta.outgoing {
                self.stats.rx_dropped += 1;
                continue;
            }
            let Some(frame) = self.rx.get(meta.offset..meta.offset + meta.len) else {
                self.stats.rx_dropped += 1;
                continue;
            };
            // One frame per batch: the socket has one receive buffer (this fallback path is
            // not built for speed).
            let mut job = Job::new(frame, &mut self.tx);
            handle(std::slice::from_mut(&mut job));
            match job.out {
                Tx::None => {}
                Tx::Send(len) => self.send(len),
                Tx::Hold { len, ticket } => match self.tx.get(..len) {
                    Some(reply) if len > 0 && self.held.len() < MAX_HELD => {
                        let mut buf = self.spare.pop().unwrap_or_default();
                        buf.clear();
                        buf.extend_from_slice(reply);
                        self.held.push_back((ticket, buf));
                    }
                    _ => self.stats.held_dropped += 1,
                },
            }
        }
        n
    }

    fn release(&mut self, fate: &FateFn<'_>) -> u32 {
        let mut sent = 0;
        while let Some((ticket, _)) = self.held.front() {
            match fate(*ticket) {
                Fate::Pending => break,
                f => {
                    let Some((_, buf)) = self.held.pop_front() else {
                        break;
                    };
                    if f == Fate::Send {
                        match self.sock.send(&buf) {
                            Ok(()) => {
                                self.stats.tx += 1;
                                sent += 1;
                            }
                            Err(_) => self.stats.tx_errors += 1,
                        }
                    } else {
                        self.stats.held_dropped += 1;
                    }
                    self.spare.push(buf);
                }
            }
        }
        sent
    }

    fn poll_fd(&self) -> RawFd {
        self.sock.fd()
    }

    fn busy(&self) -> bool {
        !self.held.is_empty()
    }

    fn io_stats(&self) -> IoStats {
        self.stats
    }
}

/// Holds UDP port 67 so the kernel does not answer unicast DHCP with ICMP port-unreachable
/// while the packet sockets serve it. Datagrams queued on it are never read; its receive buffer
/// is made as small as the kernel allows so they cost (almost) nothing.
#[derive(Debug)]
pub struct PortGuard {
    sock: UdpSocket,
}

impl PortGuard {
    /// Bind `0.0.0.0:67`.
    ///
    /// # Errors
    /// `EADDRINUSE` when another DHCP server is running; `EACCES` without
    /// CAP_NET_BIND_SERVICE.
    pub fn bind() -> io::Result<PortGuard> {
        let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67))?;
        // Best effort: the kernel clamps to its minimum.
        let _ =
            crate::xsk::sys::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &1i32);
        Ok(PortGuard { sock })
    }

    /// The local address held.
    ///
    /// # Errors
    /// `getsockname` failure.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.sock.local_addr()
    }
}
