//! A raw `AF_PACKET` socket that sends and receives whole frames in batches
//! (`sendmmsg`/`recvmmsg`): the load generator's fallback where no XDP program can be attached
//! on its side of the link.
//!
//! Unlike [`PacketSocket`](super::PacketSocket) (the server's `--io socket` backend, filtered to
//! requests to port 67 and one frame per syscall), this socket sees every frame on the interface
//! and amortises a syscall over up to [`MMSG_BATCH`] frames, which is what lets one core
//! generate a few hundred thousand frames per second through the kernel. Frames it sent itself
//! are not looped back (`PACKET_IGNORE_OUTGOING`). The kernel strips an outer VLAN tag before a
//! packet socket sees a frame (see `packet`), so a receiver must not rely on tags here.

use super::packet;
use super::sys::{self, cvt};
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Frames per `sendmmsg`/`recvmmsg` call.
pub const MMSG_BATCH: usize = 64;
/// Bytes per frame buffer (an Ethernet frame of MTU 1500 with two tags fits).
const FRAME: usize = 2048;

/// Batched raw frame I/O on one interface. See the module docs.
#[derive(Debug)]
pub struct BatchPacketSocket {
    fd: OwnedFd,
    ifindex: u32,
    /// `MMSG_BATCH` TX buffers followed by `MMSG_BATCH` RX buffers.
    bufs: Vec<u8>,
    lens: [usize; MMSG_BATCH],
}

impl BatchPacketSocket {
    /// Open and bind on `ifindex`, receiving every protocol.
    ///
    /// # Errors
    /// `EPERM` without CAP_NET_RAW; `ENODEV` for a missing interface.
    pub fn open(ifindex: u32) -> io::Result<BatchPacketSocket> {
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?;
        let raw = fd.as_raw_fd();
        packet::ignore_outgoing(raw)?;
        // Deep socket buffers: a burst of replies must not be dropped before we read it.
        let _ = sys::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &(16 << 20_i32));
        let _ = sys::setsockopt(raw, libc::SOL_SOCKET, libc::SO_SNDBUF, &(16 << 20_i32));
        packet::bind_all(raw, ifindex)?;
        Ok(BatchPacketSocket {
            fd,
            ifindex,
            bufs: vec![0; 2 * MMSG_BATCH * FRAME],
            lens: [0; MMSG_BATCH],
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Write up to `max` (at most [`MMSG_BATCH`]) frames with `write(buf) -> Some(len)` (`None`
    /// stops) and send them with one `sendmmsg`. Returns the number the kernel accepted; frames
    /// it did not take (socket buffer full) are lost, as on a wire.
    ///
    /// # Errors
    /// `sendmmsg` failures other than `EAGAIN`/`ENOBUFS`/`EINTR`.
    pub fn send<F>(&mut self, max: usize, mut write: F) -> io::Result<usize>
    where
        F: FnMut(&mut [u8]) -> Option<usize>,
    {
        let max = max.min(MMSG_BATCH);
        let mut n = 0;
        while n < max {
            let buf = &mut self.bufs[n * FRAME..(n + 1) * FRAME];
            match write(buf) {
                Some(len) if len > 0 && len <= FRAME => {
                    self.lens[n] = len;
                    n += 1;
                }
                _ => break,
            }
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: iovec and mmsghdr are plain C structs; all-zero is valid.
        let mut iov: [libc::iovec; MMSG_BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MMSG_BATCH] = unsafe { zeroed() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..n {
            // SAFETY: `i * FRAME + FRAME <= bufs.len()`, so the pointer stays inside `bufs`.
            iov[i].iov_base = unsafe { base.add(i * FRAME) }.cast();
            iov[i].iov_len = self.lens[i];
            msgs[i].msg_hdr.msg_iov = &raw mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `msgs[..n]` point to `iov[..n]`, which point into `bufs`; all live and not
        // otherwise borrowed for the call. A bound packet socket needs no destination address.
        let r = cvt(unsafe {
            libc::sendmmsg(self.fd(), msgs.as_mut_ptr(), n as u32, libc::MSG_DONTWAIT)
        });
        match r {
            Ok(sent) => Ok(sent as usize),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR)
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Receive up to `max` (at most [`MMSG_BATCH`]) waiting frames with one `recvmmsg`, without
    /// blocking, and call `read(frame)` for each. Returns the number received.
    ///
    /// # Errors
    /// `recvmmsg` failures other than `EAGAIN`/`EINTR`.
    pub fn recv<F>(&mut self, max: usize, mut read: F) -> io::Result<usize>
    where
        F: FnMut(&[u8]),
    {
        let max = max.clamp(1, MMSG_BATCH);
        // SAFETY: iovec and mmsghdr are plain C structs; all-zero is valid.
        let mut iov: [libc::iovec; MMSG_BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MMSG_BATCH] = unsafe { zeroed() };
        let rx_base = MMSG_BATCH * FRAME;
        let base = self.bufs.as_mut_ptr();
        for i in 0..max {
            // SAFETY: `rx_base + (i + 1) * FRAME <= bufs.len()`: inside `bufs`.
            iov[i].iov_base = unsafe { base.add(rx_base + i * FRAME) }.cast();
            iov[i].iov_len = FRAME;
            msgs[i].msg_hdr.msg_iov = &raw mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `msgs[..max]` point to `iov[..max]`, which point to disjoint FRAME-byte slices
        // of `bufs`, exclusively borrowed for the call; no timeout pointer.
        let r = cvt(unsafe {
            libc::recvmmsg(
                self.fd(),
                msgs.as_mut_ptr(),
                max as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        });
        let n = match r {
            Ok(n) => n as usize,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        for (i, m) in msgs.iter().enumerate().take(n) {
            let len = (m.msg_len as usize).min(FRAME);
            let at = rx_base + i * FRAME;
            read(&self.bufs[at..at + len]);
        }
        Ok(n)
    }
}

const _: () = assert!(size_of::<libc::mmsghdr>() >= size_of::<libc::msghdr>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_round_trip() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must run as root"
            );
            return;
        }
        // Loopback delivers what is sent on it back to packet sockets bound to it; a frame
        // with an unused ethertype keeps the stack out of it.
        let lo = sys::if_nametoindex("lo").expect("lo");
        let mut tx = BatchPacketSocket::open(lo).expect("open");
        let mut rx = BatchPacketSocket::open(lo).expect("open");
        let mut i = 0u8;
        let sent = tx
            .send(8, |b| {
                i += 1;
                b[..12].fill(0);
                b[12..14].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental
                b[14..20].copy_from_slice(b"xdhcp!");
                b[20] = i;
                Some(60)
            })
            .expect("send");
        assert_eq!(sent, 8);
        let mut seen = Vec::new();
        for _ in 0..200 {
            rx.recv(64, |f| {
                if f.len() == 60 && &f[14..20] == b"xdhcp!" {
                    seen.push(f[20]);
                }
            })
            .expect("recv");
            if seen.len() == 8 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=8).collect::<Vec<u8>>());
    }
}
