//! `BPF_PROG_TEST_RUN` for XDP programs: frame in, action out, without any traffic.
//!
//! aya 0.14 does not expose test runs for XDP, so this is the raw `bpf(2)` command. Without
//! `BPF_F_TEST_XDP_LIVE_FRAMES` the kernel runs the program once on a copy of the frame and
//! reports its return value; a redirect is *not* performed, but `bpf_redirect_map` still looks
//! the key up, so `XDP_REDIRECT` comes back only when the XSKMAP slot holds a socket (otherwise
//! the program's fallback flag, `XDP_PASS`, is returned).

use std::{io, os::fd::AsRawFd as _, os::fd::BorrowedFd};

/// `XDP_ABORTED`..`XDP_REDIRECT` (linux/bpf.h `enum xdp_action`).
pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The `test` member of `union bpf_attr` (linux/bpf.h), up to `batch_size`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

const _: () = assert!(std::mem::size_of::<TestRunAttr>() == 80);

/// `struct xdp_md` (linux/bpf.h), the XDP context a test run may pass in.
///
/// `data` must be 0 and `data_end` the frame length; `ingress_ifindex`, when non-zero, names an
/// interface *of the calling thread's network namespace* (see `NetNs::enter`) and
/// `rx_queue_index` must be below its real rx queue count.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpMd {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

/// What a test run returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value (an XDP action).
    pub action: u32,
    /// The frame after the program ran.
    pub frame: Vec<u8>,
}

/// Runs the XDP program `prog` once on `frame`, with `queue` = (ingress ifindex, rx queue) if
/// given (default: loopback, queue 0).
///
/// # Errors
/// The kernel refused the run: `EINVAL` for frames shorter than an Ethernet header or a bad
/// context, `EPERM` without CAP_BPF/CAP_SYS_ADMIN.
pub fn xdp_test_run(
    prog: BorrowedFd<'_>,
    frame: &[u8],
    queue: Option<(u32, u32)>,
) -> io::Result<TestRun> {
    let len =
        u32::try_from(frame.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut out = vec![0u8; frame.len() + 256];
    let ctx = queue.map(|(ifindex, rxq)| XdpMd {
        data_end: len,
        ingress_ifindex: ifindex,
        rx_queue_index: rxq,
        ..XdpMd::default()
    });
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: len,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ..TestRunAttr::default()
    };
    if let Some(ctx) = ctx.as_ref() {
        attr.ctx_in = std::ptr::from_ref(ctx) as u64;
        attr.ctx_size_in = std::mem::size_of::<XdpMd>() as u32;
    }
    // SAFETY: `attr` is a valid `bpf_attr.test` prefix whose pointers (`frame`, `out`, `ctx`)
    // are live for the duration of the call with the sizes given; the kernel writes at most
    // `data_size_out` bytes into `out` and updates `attr` in place.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            std::ptr::from_mut(&mut attr),
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    out.truncate((attr.data_size_out as usize).min(out.len()));
    Ok(TestRun {
        action: attr.retval,
        frame: out,
    })
}

/// The name of an XDP action, for assertion messages.
pub fn action_name(action: u32) -> &'static str {
    match action {
        XDP_ABORTED => "XDP_ABORTED",
        XDP_DROP => "XDP_DROP",
        XDP_PASS => "XDP_PASS",
        XDP_TX => "XDP_TX",
        XDP_REDIRECT => "XDP_REDIRECT",
        _ => "unknown",
    }
}
