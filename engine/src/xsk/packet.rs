//! The AF_PACKET socket behind `--io socket`: whole Ethernet frames in and out through the
//! kernel, so the same frame-level engine runs where XDP cannot attach, and as the baseline that
//! shows what kernel bypass gains.
//!
//! Three kernel behaviours shape it:
//! * **VLAN tags are stripped before packet sockets see the frame.** `__netif_receive_skb_core`
//!   untags the outer 802.1Q/802.1ad header into `skb->vlan_tci` (hardware offload on most NICs,
//!   software on veth), so the bytes we read start with the inner ethertype. We ask for
//!   `PACKET_AUXDATA` and put the tag back from `tp_vlan_tci`/`tp_vlan_tpid`, so the engine sees
//!   the frame as it was on the wire (and answers on the right VLAN). The socket must be bound to
//!   `ETH_P_ALL`: protocol-specific packet taps run after the tag has been cleared.
//! * **A classic BPF filter runs on the untagged bytes**: it accepts IPv4 UDP to port 67 behind
//!   zero, one or two remaining tags, first fragments only, so the worker never wakes for other
//!   traffic. The socket is created with protocol 0 (receives nothing) and bound only after the
//!   filter is attached, so no unfiltered frame slips in.
//! * **Checksums may be unfinished.** A frame sent through a kernel UDP socket over veth (a
//!   relay, or a client renewing over UDP, on the same host) still carries checksum-offload
//!   state (`CHECKSUM_PARTIAL`): its UDP checksum field holds only the pseudo-header sum, because
//!   no NIC ever finished it. The kernel flags such frames with `TP_STATUS_CSUMNOTREADY`; we
//!   finish the checksum in place ([`complete_udp_checksum`]) so the engine sees a valid frame.
//! * **Our own transmissions loop back to `ETH_P_ALL` taps**; `PACKET_IGNORE_OUTGOING` (4.20+)
//!   stops that, and [`RecvMeta::outgoing`] catches it on older kernels.

use super::sys::{self, cvt, packet as k};
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr;

/// Bytes kept free in front of a received frame so a stripped VLAN tag can be reinserted without
/// moving the whole frame (only the 12 MAC address bytes move).
pub const HEADROOM: usize = 4;

/// What [`PacketSocket::recv`] learned about a received frame. The frame is
/// `buf[offset..offset + len]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecvMeta {
    pub offset: usize,
    pub len: usize,
    /// The kernel had stripped an outer VLAN tag; it was put back.
    pub vlan_restored: bool,
    /// The kernel had not finished the UDP checksum (offload); it was computed here.
    pub checksum_completed: bool,
    /// The frame was longer than the buffer (it is cut; drop it).
    pub truncated: bool,
    /// A frame we (or another local socket) sent, looped back to the tap.
    pub outgoing: bool,
}

/// A raw `AF_PACKET` socket on one interface, filtered to DHCP server traffic.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

/// Ask the kernel not to loop our own transmissions back to `raw`. Old kernels without
/// `PACKET_IGNORE_OUTGOING` are tolerated (see `RecvMeta::outgoing`).
pub(super) fn ignore_outgoing(raw: RawFd) -> io::Result<()> {
    match sys::setsockopt(raw, libc::SOL_PACKET, k::PACKET_IGNORE_OUTGOING, &1i32) {
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(()),
        other => other,
    }
}

/// Bind packet socket `raw` to `ifindex`, every protocol.
pub(super) fn bind_all(raw: RawFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is a plain C struct; all-zero is valid and the fields that matter
    // are set below.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = k::ETH_P_ALL.to_be();
    sll.sll_ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    sys::bind(raw, &sll)
}

impl PacketSocket {
    /// Open, filter and bind a packet socket on `ifindex`. With `fanout = Some(group)`, sockets
    /// opened with the same group share the traffic by flow hash (`PACKET_FANOUT_HASH`), so one
    /// client (one flow) always reaches the same socket.
    ///
    /// # Errors
    /// `EPERM` without CAP_NET_RAW; `ENODEV` for a missing interface; filter/option failures.
    pub fn open(ifindex: u32, fanout: Option<u16>) -> io::Result<PacketSocket> {
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?;
        let raw = fd.as_raw_fd();
        let prog = dhcp_filter();
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr().cast_mut(),
        };
        // `prog` outlives the call; the kernel copies the program.
        sys::setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)?;
        sys::setsockopt(raw, libc::SOL_PACKET, k::PACKET_AUXDATA, &1i32)?;
        ignore_outgoing(raw)?;
        bind_all(raw, ifindex)?;
        if let Some(group) = fanout {
            let arg =
                u32::from(group) | ((k::PACKET_FANOUT_HASH | k::PACKET_FANOUT_FLAG_DEFRAG) << 16);
            sys::setsockopt(raw, libc::SOL_PACKET, k::PACKET_FANOUT, &arg)?;
        }
        Ok(PacketSocket { fd, ifindex })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Receive one frame without blocking into `buf[HEADROOM..]`, restoring a stripped VLAN tag.
    /// `Ok(None)` when no frame is waiting.
    ///
    /// # Errors
    /// `recvmsg` failures other than `EAGAIN`/`EINTR`; a `buf` not longer than [`HEADROOM`].
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<RecvMeta>> {
        if buf.len() <= HEADROOM + 14 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "receive buffer too small",
            ));
        }
        let cap = buf.len() - HEADROOM;
        let mut iov = libc::iovec {
            iov_base: buf[HEADROOM..].as_mut_ptr().cast(),
            iov_len: cap,
        };
        // Room for one tpacket_auxdata cmsg (CMSG_SPACE(20) = 40 on 64-bit), u64-aligned.
        let mut control = [0u64; 8];
        // SAFETY: sockaddr_ll and msghdr are plain C structs; all-zero is valid.
        let mut from: libc::sockaddr_ll = unsafe { zeroed() };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>() as _;
        // SAFETY: `msg` points to live, writable buffers of the sizes it states (iov -> buf,
        // control, from), all exclusively borrowed for the call.
        let n = match cvt(unsafe {
            libc::recvmsg(
                self.fd(),
                &raw mut msg,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        }) {
            Ok(n) => n as usize,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut aux: Option<k::TpacketAuxdata> = None;
        // SAFETY: CMSG_LEN is pure arithmetic on its argument.
        let aux_cmsg_len =
            unsafe { libc::CMSG_LEN(size_of::<k::TpacketAuxdata>() as u32) } as usize;
        // SAFETY: `msg` was filled by a successful recvmsg; CMSG_FIRSTHDR/NXTHDR stay within
        // `msg_control[..msg_controllen]` and return NULL at the end.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
        while !cmsg.is_null() {
            // SAFETY: non-null cmsg headers returned by CMSG_*HDR lie inside `control`.
            let hdr = unsafe { ptr::read_unaligned(cmsg) };
            if hdr.cmsg_level == libc::SOL_PACKET
                && hdr.cmsg_type == k::PACKET_AUXDATA
                && hdr.cmsg_len as usize >= aux_cmsg_len
            {
                // SAFETY: the cmsg carries a whole tpacket_auxdata (length checked above);
                // CMSG_DATA points at it inside `control`; read unaligned.
                aux = Some(unsafe {
                    ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<k::TpacketAuxdata>())
                });
            }
            // SAFETY: `cmsg` is a valid header of `msg` (see above).
            cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
        }
        let truncated = n > cap || msg.msg_flags & libc::MSG_TRUNC != 0;
        let len = n.min(cap);
        let mut meta = RecvMeta {
            offset: HEADROOM,
            len,
            vlan_restored: false,
            checksum_completed: false,
            truncated,
            outgoing: from.sll_pkttype == k::PACKET_OUTGOING,
        };
        if let Some(aux) = aux
            && aux.tp_status & k::TP_STATUS_CSUMNOTREADY != 0
            && !truncated
        {
            let frame = &mut buf[HEADROOM..HEADROOM + len];
            meta.checksum_completed = complete_udp_checksum(frame, usize::from(aux.tp_net));
        }
        if let Some(aux) = aux
            && aux.tp_status & k::TP_STATUS_VLAN_VALID != 0
            && len >= 12
        {
            let tpid = if aux.tp_status & k::TP_STATUS_VLAN_TPID_VALID != 0 {
                aux.tp_vlan_tpid
            } else {
                k::ETH_P_8021Q
            };
            restore_vlan(buf, tpid, aux.tp_vlan_tci);
            meta.offset = 0;
            meta.len = len + 4;
            meta.vlan_restored = true;
        }
        Ok(Some(meta))
    }

    /// Send one whole Ethernet frame out of the interface.
    ///
    /// # Errors
    /// `sendto` failures (`EAGAIN`/`ENOBUFS` when the device queue is full, `ENETDOWN`).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame shorter than Ethernet",
            ));
        }
        // SAFETY: plain C struct; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = k::ETH_P_ALL.to_be();
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: `frame` and `sll` are live for the call and their lengths are passed.
        let n = cvt(unsafe {
            libc::sendto(
                self.fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        if n as usize != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short packet send",
            ));
        }
        Ok(())
    }
}

/// Put a VLAN tag back into a frame received at `buf[HEADROOM..]`: the 12 address bytes move
/// 4 bytes to the front and the tag fills the gap, so the frame starts at `buf[0]`.
pub fn restore_vlan(buf: &mut [u8], tpid: u16, tci: u16) {
    if buf.len() < HEADROOM + 12 {
        return;
    }
    buf.copy_within(HEADROOM..HEADROOM + 12, 0);
    buf[12..14].copy_from_slice(&tpid.to_be_bytes());
    buf[14..16].copy_from_slice(&tci.to_be_bytes());
}

/// Compute the UDP checksum of the IPv4/UDP packet whose IPv4 header starts at `net` in
/// `frame`, and store it. Returns `false` (frame untouched) unless it is a well-formed,
/// unfragmented IPv4 UDP packet lying wholly inside `frame`.
pub fn complete_udp_checksum(frame: &mut [u8], net: usize) -> bool {
    let Some(ip) = frame.get(net..net + 20) else {
        return false;
    };
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4
        || ihl < 20
        || ip[9] != 17
        || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0
    {
        return false;
    }
    let (src, dst) = (
        [ip[12], ip[13], ip[14], ip[15]],
        [ip[16], ip[17], ip[18], ip[19]],
    );
    let l4 = net + ihl;
    let Some(udp_len) = frame
        .get(l4 + 4..l4 + 6)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    else {
        return false;
    };
    if udp_len < 8 {
        return false;
    }
    let Some(seg) = frame.get_mut(l4..l4 + udp_len) else {
        return false;
    };
    seg[6] = 0;
    seg[7] = 0;
    let mut sum: u32 = 0;
    for pair in [src, dst].iter().flat_map(|a| a.chunks(2)) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum += 17 + udp_len as u32;
    let mut chunks = seg.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // RFC 768: a computed checksum of zero is transmitted as all ones.
    let csum = match !(sum as u16) {
        0 => 0xffff,
        c => c,
    };
    seg[6..8].copy_from_slice(&csum.to_be_bytes());
    true
}

// Classic BPF opcodes (linux/filter.h).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MSH: u16 = 0xa0;
const BPF_JEQ: u16 = 0x10;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Conditional jump from instruction `at` to absolute targets `t` / `f`.
const fn jump(code: u16, k: u32, at: usize, t: usize, f: usize) -> libc::sock_filter {
    libc::sock_filter {
        code: BPF_JMP | code | BPF_K,
        jt: (t - at - 1) as u8,
        jf: (f - at - 1) as u8,
        k,
    }
}

/// Snap length returned on accept: whole frames.
const ACCEPT_LEN: u32 = 0x0004_0000;

/// The socket filter: IPv4 UDP to port 67, not a non-first fragment, behind 0, 1 or 2 tags left
/// in the data (the kernel already took the outer one, if any, into metadata).
pub fn dhcp_filter() -> Vec<libc::sock_filter> {
    const IP0: usize = 9; // IPv4 at offset 14
    const IP1: usize = 16; // at 18
    const IP2: usize = 23; // at 22
    const ACCEPT: usize = 30;
    const DROP: usize = 31;
    let mut p = vec![
        stmt(BPF_LD | BPF_H | BPF_ABS, 12),
        jump(BPF_JEQ, 0x0800, 1, IP0, 2),
        jump(BPF_JEQ, 0x8100, 2, 4, 3),
        jump(BPF_JEQ, 0x88a8, 3, 4, DROP),
        stmt(BPF_LD | BPF_H | BPF_ABS, 16),
        jump(BPF_JEQ, 0x0800, 5, IP1, 6),
        jump(BPF_JEQ, 0x8100, 6, 7, DROP),
        stmt(BPF_LD | BPF_H | BPF_ABS, 20),
        jump(BPF_JEQ, 0x0800, 8, IP2, DROP),
    ];
    for (start, base) in [(IP0, 14u32), (IP1, 18), (IP2, 22)] {
        debug_assert_eq!(p.len(), start);
        p.extend([
            stmt(BPF_LD | BPF_B | BPF_ABS, base + 9), // IPv4 protocol
            jump(BPF_JEQ, 17, start + 1, start + 2, DROP), // UDP?
            stmt(BPF_LD | BPF_H | BPF_ABS, base + 6), // flags + fragment offset
            jump(BPF_JSET, 0x1fff, start + 3, DROP, start + 4), // non-first fragment: drop
            stmt(BPF_LDX | BPF_B | BPF_MSH, base),    // X = IHL * 4
            stmt(BPF_LD | BPF_H | BPF_IND, base + 2), // UDP destination port
            jump(BPF_JEQ, 67, start + 6, ACCEPT, DROP),
        ]);
    }
    debug_assert_eq!(p.len(), ACCEPT);
    p.push(stmt(BPF_RET | BPF_K, ACCEPT_LEN));
    p.push(stmt(BPF_RET | BPF_K, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal classic-BPF interpreter for the opcodes `dhcp_filter` uses (out-of-bounds loads
    /// reject, as in the kernel).
    fn run(prog: &[libc::sock_filter], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let load = |off: usize, n: usize| -> Option<u32> {
            pkt.get(off..off + n)
                .map(|b| b.iter().fold(0u32, |acc, &v| (acc << 8) | u32::from(v)))
        };
        loop {
            let ins = prog[pc];
            pc += 1;
            match ins.code {
                c if c == BPF_LD | BPF_H | BPF_ABS => match load(ins.k as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_B | BPF_ABS => match load(ins.k as usize, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_H | BPF_IND => match load(ins.k as usize + x as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LDX | BPF_B | BPF_MSH => match load(ins.k as usize, 1) {
                    Some(v) => x = (v & 0xf) * 4,
                    None => return 0,
                },
                c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                    pc += usize::from(if a == ins.k { ins.jt } else { ins.jf })
                }
                c if c == BPF_JMP | BPF_JSET | BPF_K => {
                    pc += usize::from(if a & ins.k != 0 { ins.jt } else { ins.jf })
                }
                c if c == BPF_RET | BPF_K => return ins.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    /// Ethernet + `tags` + IPv4 (with `opts` option bytes) + UDP to `dport`.
    fn frame(tags: &[u16], proto: u8, dport: u16, frag: u16, opts: usize) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend([2, 0, 0, 0, 0, 1]);
        for &t in tags {
            f.extend(t.to_be_bytes());
            f.extend(100u16.to_be_bytes());
        }
        f.extend(0x0800u16.to_be_bytes());
        let ihl = 5 + opts / 4;
        f.push(0x40 | ihl as u8);
        f.extend([0, 0, 0, 0, 0]);
        f.extend(frag.to_be_bytes());
        f.extend([64, proto, 0, 0]);
        f.extend([0; 8]);
        f.extend(vec![1; opts]);
        f.extend(68u16.to_be_bytes());
        f.extend(dport.to_be_bytes());
        f.extend([0, 8, 0, 0]);
        f
    }

    #[test]
    fn filter_accepts_dhcp_behind_up_to_two_tags() {
        let p = dhcp_filter();
        assert_eq!(run(&p, &frame(&[], 17, 67, 0, 0)), ACCEPT_LEN);
        assert_eq!(run(&p, &frame(&[0x8100], 17, 67, 0, 0)), ACCEPT_LEN);
        assert_eq!(run(&p, &frame(&[0x88a8, 0x8100], 17, 67, 0, 0)), ACCEPT_LEN);
        assert_eq!(
            run(&p, &frame(&[], 17, 67, 0x4000, 8)),
            ACCEPT_LEN,
            "DF set, IP options"
        );
        assert_eq!(
            run(&p, &frame(&[], 17, 67, 0x2000, 0)),
            ACCEPT_LEN,
            "first fragment"
        );
    }

    #[test]
    fn filter_rejects_everything_else() {
        let p = dhcp_filter();
        assert_eq!(run(&p, &frame(&[], 17, 68, 0, 0)), 0, "client port");
        assert_eq!(run(&p, &frame(&[], 6, 67, 0, 0)), 0, "TCP");
        assert_eq!(
            run(&p, &frame(&[], 17, 67, 0x0010, 0)),
            0,
            "non-first fragment"
        );
        assert_eq!(
            run(&p, &frame(&[0x8100, 0x8100, 0x8100], 17, 67, 0, 0)),
            0,
            "three tags"
        );
        let mut arp = frame(&[], 17, 67, 0, 0);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(run(&p, &arp), 0, "ARP");
        let full = frame(&[], 17, 67, 0, 0);
        assert_eq!(run(&p, &full[..36]), 0, "truncated before the UDP port");
        assert_eq!(run(&p, &[]), 0);
    }

    #[test]
    fn udp_checksum_is_completed() {
        // A DHCP DISCOVER captured from udhcpc (valid checksum), then damaged the way
        // checksum offload leaves it: the field holds something else.
        let mut f = frame(&[], 17, 67, 0, 0);
        f.extend([0x63, 0x82, 0x53, 0x63, 53, 1, 1, 255, 0]); // odd length on purpose
        let udp_len = (f.len() - 34) as u16;
        f[38..40].copy_from_slice(&udp_len.to_be_bytes());
        assert!(complete_udp_checksum(&mut f, 14));
        let good = u16::from_be_bytes([f[40], f[41]]);
        assert_ne!(good, 0);
        // Verify: the one's-complement sum over pseudo-header + segment is 0xffff.
        let mut sum: u32 = 17 + u32::from(udp_len);
        for c in f[26..34].chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        let seg = &f[34..];
        for c in seg.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff, "checksum verifies");
        f[40] ^= 0x5a;
        assert!(complete_udp_checksum(&mut f, 14));
        assert_eq!(
            u16::from_be_bytes([f[40], f[41]]),
            good,
            "recomputed identically"
        );
        // Not touched: TCP, fragments, lengths past the frame, wrong offset.
        let mut tcp = frame(&[], 6, 67, 0, 0);
        let before = tcp.clone();
        assert!(!complete_udp_checksum(&mut tcp, 14));
        assert_eq!(tcp, before);
        let mut frag = frame(&[], 17, 67, 0x2000, 0);
        assert!(!complete_udp_checksum(&mut frag, 14));
        let mut long = f.clone();
        long[38..40].copy_from_slice(&2000u16.to_be_bytes());
        assert!(!complete_udp_checksum(&mut long, 14));
        assert!(!complete_udp_checksum(&mut f.clone(), 200));
    }

    #[test]
    fn vlan_is_restored_in_front_of_the_ethertype() {
        let mut buf = vec![0u8; 64];
        let untagged: Vec<u8> = (1..=14).collect(); // dst(6) src(6) type(2)
        buf[HEADROOM..HEADROOM + 14].copy_from_slice(&untagged);
        restore_vlan(&mut buf, 0x8100, 0x2064);
        assert_eq!(&buf[..12], &untagged[..12]);
        assert_eq!(&buf[12..16], &[0x81, 0x00, 0x20, 0x64]);
        assert_eq!(&buf[16..18], &untagged[12..14]);
        let mut short = [0u8; 8];
        restore_vlan(&mut short, 0x8100, 1);
        assert_eq!(short, [0; 8], "too short: untouched");
    }

    #[test]
    fn open_on_loopback_and_missing_interface() {
        match PacketSocket::open(u32::MAX >> 1, None) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI must run as root"
                );
                return;
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}"),
            Ok(_) => panic!("bound to a missing interface"),
        }
        let lo = sys::if_nametoindex("lo").unwrap();
        let s = PacketSocket::open(lo, Some(0x7ff0)).expect("packet socket on lo");
        assert_eq!(s.ifindex(), lo);
        let mut buf = [0u8; 2048];
        // Nothing addressed to UDP/67 on lo in this test: the filter keeps the socket silent
        // (another test in this process could send, so only check that recv does not block).
        let _ = s.recv(&mut buf).unwrap();
        assert!(s.send(&[0u8; 4]).is_err());
    }
}
