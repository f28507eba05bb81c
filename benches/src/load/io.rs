//! Moving the generator's frames: AF_XDP (preferred) or batched AF_PACKET (fallback).
//!
//! AF_XDP needs an XDP program on the generator's interface to steer the replies into the
//! socket; [`xdhcp::xsk::RedirectProgram`] is attached for the life of the [`Io`] (and detached
//! on drop). One [`XskPort`] is opened per rx queue, because a server's reply may arrive on any
//! of them (veth delivers on the queue the server transmitted on); requests leave through the
//! port of queue 0.

use anyhow::Context as _;
use xdhcp::netif::Interface;
use xdhcp::xsk::{
    AttachMode, BatchPacketSocket, BindMode, PortConfig, RedirectProgram, XskPort, sys,
};

/// Which kernel interface carries the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IoKind {
    /// AF_XDP sockets fed by a small redirect program (copy or zero-copy).
    Xdp,
    /// A raw packet socket with sendmmsg/recvmmsg.
    Packet,
}

/// An open I/O backend.
pub enum Io {
    Xdp {
        ports: Vec<XskPort>,
        // Declared after the ports, so dropped after them: closing a socket removes it from the
        // map (redirects to its slot then fall back to XDP_PASS), then the link's closing
        // detaches the program.
        prog: RedirectProgram,
    },
    Packet(Box<BatchPacketSocket>),
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Io::Xdp { ports, .. } => write!(f, "Io::Xdp({} ports)", ports.len()),
            Io::Packet(s) => write!(f, "Io::Packet({})", s.ifindex()),
        }
    }
}

impl Io {
    /// Open the backend on `iface`.
    ///
    /// # Errors
    /// Missing privileges, an interface that refuses XDP, memlock limits (see the messages).
    pub fn open(
        iface: &Interface,
        kind: IoKind,
        attach: AttachMode,
        bind: BindMode,
        frames: u32,
    ) -> anyhow::Result<Io> {
        match kind {
            IoKind::Packet => Ok(Io::Packet(Box::new(
                BatchPacketSocket::open(iface.ifindex)
                    .with_context(|| format!("packet socket on {}", iface.name))?,
            ))),
            IoKind::Xdp => {
                let _ = sys::raise_memlock();
                let queues = iface.rx_queues.max(1);
                let mut prog = RedirectProgram::load(queues)?;
                let mut ports = Vec::with_capacity(queues as usize);
                for q in 0..queues {
                    let mut cfg = PortConfig::new(iface.ifindex, q);
                    cfg.bind = bind;
                    cfg.frames = frames;
                    let port = XskPort::open(&cfg)
                        .with_context(|| format!("AF_XDP socket on {} queue {q}", iface.name))?;
                    prog.register(q, port.fd())?;
                    ports.push(port);
                }
                prog.attach(iface.ifindex, attach)?;
                Ok(Io::Xdp { ports, prog })
            }
        }
    }

    /// "afxdp-copy", "afxdp-zc" or "packet".
    pub fn describe(&self) -> &'static str {
        match self {
            Io::Xdp { ports, .. } if ports.first().is_some_and(XskPort::zerocopy) => "afxdp-zc",
            Io::Xdp { .. } => "afxdp-copy",
            Io::Packet(_) => "packet",
        }
    }

    /// Receive what is waiting (up to `max` per queue); returns the number of frames.
    pub fn recv(&mut self, max: u32, mut read: impl FnMut(&[u8])) -> u32 {
        match self {
            Io::Xdp { ports, .. } => ports.iter_mut().map(|p| p.recv(max, &mut read)).sum(),
            Io::Packet(s) => s.recv(max as usize, read).map_or(0, |n| n as u32),
        }
    }

    /// Send up to `max` frames written by `write`; returns the number sent.
    pub fn send(&mut self, max: u32, write: impl FnMut(&mut [u8]) -> Option<usize>) -> u32 {
        match self {
            Io::Xdp { ports, .. } => ports.first_mut().map_or(0, |p| p.send(max, write)),
            Io::Packet(s) => s.send(max as usize, write).map_or(0, |n| n as u32),
        }
    }

    /// Push out TX frames still queued in the kernel's view.
    pub fn flush(&mut self) {
        if let Io::Xdp { ports, .. } = self {
            for p in ports {
                p.flush();
            }
        }
    }

    /// Flush and wait (at most `limit`) until the kernel has taken every queued TX frame: at the
    /// end of a run, frames still on a ring when the socket closes are never sent — the last
    /// RELEASEs, which get no answer, would be lost without anyone noticing.
    pub fn finish(&mut self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            self.flush();
            let queued: u32 = match self {
                Io::Xdp { ports, .. } => ports.iter().map(XskPort::tx_in_flight).sum(),
                Io::Packet(_) => 0,
            };
            if queued == 0 || std::time::Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Wait up to `timeout_ms` for a frame to arrive.
    pub fn wait(&self, timeout_ms: i32) {
        let mut fds: Vec<libc::pollfd> = match self {
            Io::Xdp { ports, .. } => ports.iter().map(|p| pollfd(p.fd())).collect(),
            Io::Packet(s) => vec![pollfd(s.fd())],
        };
        let _ = sys::poll(&mut fds, timeout_ms);
    }

    /// Kernel drop counters of the AF_XDP sockets (rx ring full, fill ring empty), if any.
    pub fn kernel_drops(&self) -> Option<(u64, u64)> {
        match self {
            Io::Xdp { ports, .. } => Some(ports.iter().fold((0, 0), |acc, p| {
                let k = p.kernel_stats().unwrap_or_default();
                (
                    acc.0 + k.rx_ring_full + k.rx_dropped,
                    acc.1 + k.rx_fill_ring_empty,
                )
            })),
            Io::Packet(_) => None,
        }
    }
}

fn pollfd(fd: std::os::fd::RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
