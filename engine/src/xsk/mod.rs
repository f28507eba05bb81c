//! AF_XDP (and the few other raw kernel interfaces xdhcp needs): the only module allowed
//! `unsafe`.
//!
//! Why write the rings here instead of using a crate: the `xdp` crate (0.8) binds every socket
//! with `sxdp_shared_umem_fd = 0`, so it cannot put several sockets on one queue sharing one
//! UMEM — and that is how xdhcp spreads one busy rx queue (all broadcasts and every relay land on
//! one RSS queue) over several cores. `xdpilone` can, but its EUPL licence does not fit ours. The
//! kernel interface is small: four rings of two indices and an array, so it is written here once,
//! typed and transactional (`ring`), with the frame ownership rules in [`umem`] and the
//! queue-sharing protocol in [`socket`].
//!
//! Layout:
//! * [`sys`] — one helper (`sys::cvt`) turning `-1` into `io::Error`, and thin safe wrappers
//!   for every syscall (socket options, mmap, poll, wake-ups, interface queries, affinity).
//! * `ring` — `FillRing`, `CompletionRing`, `RxRing`, `TxRing`: reserve -> write -> commit,
//!   peek -> release; dropping an uncommitted transaction rolls it back.
//! * [`umem`] — the packet memory and its division into an RX pool and per-socket TX partitions.
//! * [`socket`] — opening a queue's sockets (shared UMEM, copy/zero-copy, need_wakeup) and the
//!   per-batch datapath `XskSocket::process_batch`.
//! * [`packet`] — the AF_PACKET socket behind `--io socket`.
//! * [`port`], [`redirect`], [`batch`] — for traffic *generators* (`xdhcp-load`): one AF_XDP
//!   socket with free-running TX and RX, a hand-assembled XDP program that redirects DHCP
//!   frames to it, and a batched AF_PACKET fallback.
//!
//! Everything exported is safe to call; every `unsafe` block below states the invariant it
//! relies on in a `// SAFETY:` comment.
#![expect(
    unsafe_code,
    reason = "AF_XDP rings and UMEM are memory shared with the kernel; syscalls need FFI"
)]

pub mod batch;
pub mod packet;
pub mod port;
pub mod redirect;
pub(crate) mod ring;
pub mod socket;
pub mod sys;
pub mod umem;

pub use batch::BatchPacketSocket;
pub use packet::{PacketSocket, RecvMeta};
pub use port::{PortConfig, PortStats, XskPort};
pub use redirect::{AttachMode, RedirectProgram};
pub use socket::{BindMode, KernelStats, QueueConfig, XskError, XskSocket, XskStats, open_queue};
pub use umem::{FrameLayout, FreeList, LayoutError};
