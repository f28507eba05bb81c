//! Thin, checked wrappers over the Linux system calls xdhcp needs: AF_XDP socket options and
//! ring mappings, poll/sendto/recvfrom wake-ups, packet sockets, interface queries, memlock and
//! CPU affinity.
//!
//! Every call goes through `cvt`, which turns the C convention (`-1` + `errno`) into
//! `io::Error`. Nothing outside `xsk/` calls `libc` directly; the safe functions here are what the
//! rest of the crate sees.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};

/// Return values that signal failure with `-1` (and `errno`).
pub(crate) trait SysRet: Copy {
    fn is_minus_one(self) -> bool;
}

impl SysRet for libc::c_int {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

impl SysRet for libc::ssize_t {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

/// The one place where `-1` becomes an `io::Error` (read from `errno` immediately).
pub(crate) fn cvt<T: SysRet>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Plain-old-data types the kernel may fill in (`getsockopt`) or read (`setsockopt`).
///
/// # Safety
/// Implementors must be `#[repr(C)]` (or primitive), contain no pointers the kernel could
/// misinterpret, and be valid for every bit pattern.
pub(crate) unsafe trait Pod: Copy + 'static {}

// SAFETY: primitive integers are valid for every bit pattern.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: repr(C) struct of u64 fields (uapi `struct xdp_mmap_offsets`), any bits valid.
unsafe impl Pod for libc::xdp_mmap_offsets {}
// SAFETY: repr(C) struct of u64 fields (uapi `struct xdp_statistics`), any bits valid.
unsafe impl Pod for libc::xdp_statistics {}
// SAFETY: repr(C) struct of one u32 (uapi `struct xdp_options`).
unsafe impl Pod for libc::xdp_options {}
// SAFETY: repr(C) struct of u64/u32 fields (uapi `struct xdp_umem_reg`), any bits valid.
unsafe impl Pod for libc::xdp_umem_reg {}
// SAFETY: repr(C) { u16 len; u8 pad[6]; *filter } — the kernel reads `len` entries behind the
// pointer; callers keep the program alive for the call (see `PacketSocket::attach_filter`).
unsafe impl Pod for libc::sock_fprog {}

/// `setsockopt(fd, level, name, &value)`.
pub(crate) fn setsockopt<T: Pod>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live reference to `size_of::<T>()` readable bytes of a Pod type; the
    // kernel only reads them during the call.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            ptr::from_ref(value).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `getsockopt(fd, level, name)` into a zeroed `T`; fails unless the kernel wrote all of it.
pub(crate) fn getsockopt<T: Pod>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` points to `len` writable bytes; the kernel writes at most `len` bytes and
    // updates `len`.
    cvt(unsafe { libc::getsockopt(fd, level, name, value.as_mut_ptr().cast(), &raw mut len) })?;
    if len as usize != size_of::<T>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "getsockopt({level}, {name}) returned {len} bytes, expected {}",
                size_of::<T>()
            ),
        ));
    }
    // SAFETY: zero-initialised and then (fully) written by the kernel; T is Pod so every bit
    // pattern is valid.
    Ok(unsafe { value.assume_init() })
}

/// `socket(domain, ty | SOCK_CLOEXEC, protocol)` as an owned descriptor.
pub(crate) fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    protocol: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) })?;
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bind(2)` of an AF_XDP socket to its queue. The kernel frees the queue of a closed socket
/// asynchronously (its buffer pool goes in deferred work), so a bind right after a previous
/// socket on the same queue closed (a restart, a test's next phase) can see `EBUSY` for a
/// moment: retried for up to half a second before it counts as "queue in use".
pub(crate) fn bind_xdp(fd: RawFd, addr: &libc::sockaddr_xdp) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        match bind(fd, addr) {
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// `bind(fd, &addr)` for a Pod socket address type.
pub(crate) fn bind<T: Copy>(fd: RawFd, addr: &T) -> io::Result<()> {
    // SAFETY: `addr` is a live reference to a complete sockaddr_* structure of the family the
    // socket was created with; the kernel only reads `size_of::<T>()` bytes.
    cvt(unsafe {
        libc::bind(
            fd,
            ptr::from_ref(addr).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A shared memory mapping (`mmap`), unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; concurrent access to its contents is
// coordinated by the users (ring protocol / frame ownership), not by the mapping itself.
unsafe impl Send for Mmap {}
// SAFETY: as above; `&Mmap` only hands out raw pointers.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Anonymous private read/write memory, pre-faulted (the UMEM).
    pub(crate) fn anonymous(len: usize) -> io::Result<Mmap> {
        Self::map(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    }

    /// A shared mapping of `len` bytes of `fd` at `offset` (AF_XDP ring pages).
    pub(crate) fn of_fd(fd: RawFd, len: usize, offset: u64) -> io::Result<Mmap> {
        let offset = libc::off_t::try_from(offset).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "mmap offset overflows off_t")
        })?;
        Self::map(len, libc::MAP_SHARED | libc::MAP_POPULATE, fd, offset)
    }

    fn map(len: usize, flags: libc::c_int, fd: RawFd, offset: libc::off_t) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr = NULL); it aliases no Rust object.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Mmap { ptr, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping created by `Mmap::map` and not yet unmapped;
        // every pointer derived from it is owned by a value that holds this `Mmap` alive.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The system page size (the largest AF_XDP chunk in aligned mode).
pub fn page_size() -> u32 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(n).unwrap_or(4096)
}

/// `poll(2)`; an interrupted wait counts as "nothing ready".
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd entries.
    match cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) }) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`: asks the kernel to process an AF_XDP TX ring.
pub(crate) fn kick_tx(fd: RawFd) -> io::Result<()> {
    // SAFETY: a zero-length send with NULL buffer and address is valid for AF_XDP sockets.
    cvt(unsafe { libc::sendto(fd, ptr::null(), 0, libc::MSG_DONTWAIT, ptr::null(), 0) })?;
    Ok(())
}

/// `recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)`: asks the driver to refill from the fill
/// ring (zero-copy `need_wakeup`).
pub(crate) fn wake_rx(fd: RawFd) -> io::Result<()> {
    // SAFETY: a zero-length receive with NULL buffer and address is valid for AF_XDP sockets.
    cvt(unsafe {
        libc::recvfrom(
            fd,
            ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    })?;
    Ok(())
}

/// Current and maximum `RLIMIT_MEMLOCK` in bytes (`u64::MAX` = unlimited).
pub fn memlock_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &raw mut lim) })?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raise `RLIMIT_MEMLOCK` to its hard maximum (raising the maximum itself needs
/// CAP_SYS_RESOURCE, which we do not assume). Returns the new soft limit.
pub fn raise_memlock() -> io::Result<u64> {
    let (cur, max) = memlock_limit()?;
    if cur >= max {
        return Ok(cur);
    }
    let lim = libc::rlimit {
        rlim_cur: max,
        rlim_max: max,
    };
    // SAFETY: `lim` is a valid rlimit read-only for the call.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const lim) })?;
    Ok(max)
}

/// CPUs this thread may run on.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    cvt(unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) })?;
    let max = 8 * size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET only reads the set; `cpu` < CPU_SETSIZE.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pin the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= 8 * size_of::<libc::cpu_set_t>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cpu index out of range",
        ));
    }
    // SAFETY: all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 = calling thread.
    cvt(unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) })?;
    Ok(())
}

/// One entry of `getifaddrs(3)` that xdhcp cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfAddr {
    /// An IPv4 address with its netmask.
    V4 {
        name: String,
        addr: Ipv4Addr,
        netmask: Ipv4Addr,
    },
    /// The link-layer entry: interface index and hardware address.
    Link {
        name: String,
        ifindex: u32,
        mac: Vec<u8>,
    },
}

/// All IPv4 and link-layer interface addresses in the caller's network namespace.
pub fn interface_addrs() -> io::Result<Vec<IfAddr>> {
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    cvt(unsafe { libc::getifaddrs(&raw mut head) })?;
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list returned by getifaddrs, alive until
        // freeifaddrs below.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr is non-null and points to at least a sockaddr header.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        match family {
            libc::AF_INET => {
                // SAFETY: family AF_INET means ifa_addr is a sockaddr_in.
                let sin = unsafe { ptr::read_unaligned(ifa.ifa_addr.cast::<libc::sockaddr_in>()) };
                let netmask = if ifa.ifa_netmask.is_null() {
                    Ipv4Addr::BROADCAST
                } else {
                    // SAFETY: the netmask of an AF_INET entry is a sockaddr_in.
                    let m =
                        unsafe { ptr::read_unaligned(ifa.ifa_netmask.cast::<libc::sockaddr_in>()) };
                    Ipv4Addr::from(u32::from_be(m.sin_addr.s_addr))
                };
                out.push(IfAddr::V4 {
                    name,
                    addr: Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    netmask,
                });
            }
            libc::AF_PACKET => {
                // SAFETY: family AF_PACKET means ifa_addr is a sockaddr_ll.
                let sll = unsafe { ptr::read_unaligned(ifa.ifa_addr.cast::<libc::sockaddr_ll>()) };
                let n = usize::from(sll.sll_halen).min(sll.sll_addr.len());
                out.push(IfAddr::Link {
                    name,
                    ifindex: u32::try_from(sll.sll_ifindex).unwrap_or(0),
                    mac: sll.sll_addr[..n].to_vec(),
                });
            }
            _ => {}
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// `if_nametoindex(3)`: `None` when there is no such interface.
pub fn if_nametoindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    // SAFETY: ifreq is a plain C struct/union; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// MTU of an interface (`SIOCGIFMTU`).
pub fn interface_mtu(name: &str) -> io::Result<u32> {
    let mut req = ifreq_for(name)?;
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    // SAFETY: SIOCGIFMTU reads ifr_name and writes ifr_mtu inside `req`, which is valid and
    // exclusively borrowed for the call.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &raw mut req) })?;
    // SAFETY: the kernel filled the ifru_mtu member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative MTU"))
}

/// uapi `struct ethtool_channels`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

/// Number of receive queues from `ETHTOOL_GCHANNELS` (rx + combined channels).
pub fn interface_rx_channels(name: &str) -> io::Result<u32> {
    let mut req = ifreq_for(name)?;
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    req.ifr_ifru.ifru_data = (&raw mut ch).cast();
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    // SAFETY: SIOCETHTOOL with ETHTOOL_GCHANNELS writes one ethtool_channels through ifru_data,
    // which points to `ch`, alive and exclusively borrowed for the call.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &raw mut req) })?;
    Ok(ch.rx_count + ch.combined_count)
}

/// Packet-socket constants not (reliably) exported by `libc`.
pub(crate) mod packet {
    pub const PACKET_AUXDATA: libc::c_int = 8;
    pub const PACKET_FANOUT: libc::c_int = 18;
    pub const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
    pub const PACKET_FANOUT_HASH: u32 = 0;
    pub const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
    pub const PACKET_OUTGOING: u8 = 4;
    pub const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
    pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
    pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
    pub const ETH_P_ALL: u16 = 0x0003;
    pub const ETH_P_8021Q: u16 = 0x8100;

    /// uapi `struct tpacket_auxdata`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct TpacketAuxdata {
        pub tp_status: u32,
        pub tp_len: u32,
        pub tp_snaplen: u32,
        pub tp_mac: u16,
        pub tp_net: u16,
        pub tp_vlan_tci: u16,
        pub tp_vlan_tpid: u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvt_maps_minus_one_to_errno() {
        // SAFETY: close(-1) is harmless and fails with EBADF.
        let r = cvt(unsafe { libc::close(-1) });
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
        assert_eq!(cvt(0i32).unwrap(), 0);
        assert_eq!(cvt(5isize).unwrap(), 5);
    }

    #[test]
    fn loopback_is_found() {
        let idx = if_nametoindex("lo").expect("lo exists in every namespace");
        let addrs = interface_addrs().unwrap();
        assert!(
            addrs
                .iter()
                .any(|a| matches!(a, IfAddr::Link { name, ifindex, .. }
            if name == "lo" && *ifindex == idx))
        );
        assert!(interface_mtu("lo").unwrap() >= 1280);
        assert!(if_nametoindex("no-such-if0").is_none());
        assert!(interface_mtu("").is_err());
    }

    #[test]
    fn anonymous_mapping_is_writable() {
        let m = Mmap::anonymous(4096).unwrap();
        // SAFETY: the mapping is 4096 writable bytes owned by `m`.
        unsafe { m.as_ptr().add(4095).write(7) };
        // SAFETY: as above, reading back the byte just written.
        assert_eq!(unsafe { m.as_ptr().add(4095).read() }, 7);
        assert_eq!(m.len(), 4096);
        assert!(Mmap::anonymous(0).is_err());
    }
}
