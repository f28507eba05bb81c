//! A minimal XDP program, assembled here, that hands DHCP frames (UDP port 67 or 68) on an
//! interface to the AF_XDP socket of their rx queue: the *client* side of a test link, where the
//! load generator must see OFFERs and ACKs (to port 68, or to the relay's port 67).
//!
//! # Why hand-assembled
//!
//! The server's program (`xdp-ebpf/`) steers only requests addressed to the server, by design.
//! The generator's side needs the opposite filter, and building a second BPF object would make
//! the benchmark depend on the nightly toolchain and bpf-linker. The program is about four dozen
//! instructions, so it is written out below, loaded with `BPF_PROG_LOAD` and attached with a
//! `bpf_link` (`BPF_LINK_CREATE`, Linux 5.9+), which detaches it when the link closes: dropping
//! [`RedirectProgram`] — also on a panic — leaves the interface as it was.
//!
//! What it does, per frame: Ethernet with up to two VLAN tags (0x8100 / 0x88a8), IPv4 with a
//! 20-byte header (IHL 5: DHCP servers send no IP options), UDP destination 67 or 68 ->
//! `bpf_redirect_map(xsks, rx_queue_index, XDP_PASS)`; anything else (ARP above all: the kernel
//! must still answer for a relay address) -> `XDP_PASS`. A queue without a socket falls back to
//! `XDP_PASS` too (the flags argument of `bpf_redirect_map`, Linux 5.3+).

use super::sys::cvt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_PASS: i32 = 2;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const BPF_PSEUDO_MAP_FD: u8 = 1;

/// How to attach the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Driver (native) mode; veth supports it.
    Native,
    /// Generic (skb) mode: works on every device, slower.
    Skb,
}

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Insn {
    code: u8,
    /// dst register in the low nibble, src in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

// Opcodes (uapi `bpf.h` / `bpf_common.h`).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const LDX_H: u8 = 0x69; // BPF_LDX | BPF_MEM | BPF_H
const LDX_B: u8 = 0x71; // BPF_LDX | BPF_MEM | BPF_B
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const ADD_K: u8 = 0x07; // BPF_ALU64 | BPF_ADD | BPF_K
const JGT_X: u8 = 0x2d; // BPF_JMP | BPF_JGT | BPF_X
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JA: u8 = 0x05; // BPF_JMP | BPF_JA
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_DW | BPF_IMM

/// Little-endian load of two big-endian wire bytes `[a, b]` gives `b << 8 | a`.
const fn wire16(a: u8, b: u8) -> i32 {
    ((b as i32) << 8) | a as i32
}

/// A tiny assembler: jumps name a label; `finish` resolves them (offsets count instructions
/// after the jump).
struct Asm {
    code: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn new(labels: usize) -> Self {
        Asm {
            code: Vec::with_capacity(40),
            labels: vec![None; labels],
            fixups: Vec::new(),
        }
    }
    fn op(&mut self, i: Insn) {
        self.code.push(i);
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, label: usize) {
        self.fixups.push((self.code.len(), label));
        self.code.push(insn(code, dst, src, 0, imm));
    }
    fn label(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }
    fn finish(mut self) -> Vec<Insn> {
        for &(at, label) in &self.fixups {
            // Every label used is placed by `program`; a missing one is a bug caught by the
            // unit test below (and by the verifier).
            let target = self.labels[label].unwrap_or(at + 1);
            self.code[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        self.code
    }
}

/// The program; `map_fd` is patched into the `ld_imm64` that loads the XSKMAP.
fn program(map_fd: RawFd) -> Vec<Insn> {
    const VLAN1: usize = 0;
    const VLAN2: usize = 1;
    const IP: usize = 2;
    const PASS: usize = 3;
    const REDIRECT: usize = 4;
    let (r0, r1, r2, r3, r4, r5, r6) = (0, 1, 2, 3, 4, 5, 6);
    let mut a = Asm::new(5);
    a.op(insn(MOV_X, r6, r1, 0, 0)); // r6 = ctx
    a.op(insn(LDX_W, r2, r6, 0, 0)); // r2 = data
    a.op(insn(LDX_W, r3, r6, 4, 0)); // r3 = data_end
    // Ethernet header: 14 bytes, ethertype at 12.
    a.op(insn(MOV_X, r4, r2, 0, 0));
    a.op(insn(ADD_K, r4, 0, 0, 14));
    a.jump(JGT_X, r4, r3, 0, PASS);
    a.op(insn(LDX_H, r5, r2, 12, 0));
    a.jump(JEQ_K, r5, 0, wire16(0x81, 0x00), VLAN1);
    a.jump(JEQ_K, r5, 0, wire16(0x88, 0xa8), VLAN1);
    a.jump(JA, 0, 0, 0, IP);
    // One tag: advance the "Ethernet header" by 4 bytes and look again.
    a.label(VLAN1);
    a.op(insn(ADD_K, r2, 0, 0, 4));
    a.op(insn(MOV_X, r4, r2, 0, 0));
    a.op(insn(ADD_K, r4, 0, 0, 14));
    a.jump(JGT_X, r4, r3, 0, PASS);
    a.op(insn(LDX_H, r5, r2, 12, 0));
    a.jump(JEQ_K, r5, 0, wire16(0x81, 0x00), VLAN2);
    a.jump(JA, 0, 0, 0, IP);
    a.label(VLAN2);
    a.op(insn(ADD_K, r2, 0, 0, 4));
    a.op(insn(MOV_X, r4, r2, 0, 0));
    a.op(insn(ADD_K, r4, 0, 0, 14));
    a.jump(JGT_X, r4, r3, 0, PASS);
    a.op(insn(LDX_H, r5, r2, 12, 0));
    // IPv4, IHL 5, UDP, destination port 67 or 68.
    a.label(IP);
    a.jump(JNE_K, r5, 0, wire16(0x08, 0x00), PASS);
    a.op(insn(MOV_X, r4, r2, 0, 0));
    a.op(insn(ADD_K, r4, 0, 0, 14 + 20 + 8));
    a.jump(JGT_X, r4, r3, 0, PASS);
    a.op(insn(LDX_B, r5, r2, 14, 0));
    a.jump(JNE_K, r5, 0, 0x45, PASS);
    a.op(insn(LDX_B, r5, r2, 14 + 9, 0));
    a.jump(JNE_K, r5, 0, 17, PASS);
    a.op(insn(LDX_H, r5, r2, 14 + 20 + 2, 0));
    a.jump(JEQ_K, r5, 0, wire16(0, 68), REDIRECT);
    a.jump(JEQ_K, r5, 0, wire16(0, 67), REDIRECT);
    a.label(PASS);
    a.op(insn(MOV_K, r0, 0, 0, XDP_PASS));
    a.op(insn(EXIT, 0, 0, 0, 0));
    a.label(REDIRECT);
    a.op(insn(LDX_W, r2, r6, 16, 0)); // r2 = ctx->rx_queue_index
    a.op(insn(LD_IMM64, r1, BPF_PSEUDO_MAP_FD, 0, map_fd));
    a.op(insn(0, 0, 0, 0, 0));
    a.op(insn(MOV_K, r3, 0, 0, XDP_PASS));
    a.op(insn(CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP));
    a.op(insn(EXIT, 0, 0, 0, 0));
    a.finish()
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapUpdateAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// `bpf(cmd, attr, sizeof attr)` returning a new descriptor.
///
/// # Safety
/// `attr` must be the attribute structure the kernel expects for `cmd` (a prefix of
/// `union bpf_attr`), and every pointer inside it must be valid for the call.
unsafe fn bpf_fd<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: per this function's contract; the kernel reads (and for some commands writes)
    // at most `size_of::<T>()` bytes of `attr`, which is exclusively borrowed.
    let fd = cvt(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            size_of::<T>() as libc::c_uint,
        ) as libc::ssize_t
    })?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf() returned a bad descriptor"))?;
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The redirect program loaded and (once [`attach`](Self::attach)ed) attached to one interface.
#[derive(Debug)]
pub struct RedirectProgram {
    // Declared first: the link is dropped (detaching the program) before the program and map.
    link: Option<OwnedFd>,
    prog: OwnedFd,
    map: OwnedFd,
    queues: u32,
}

impl RedirectProgram {
    /// Create an XSKMAP with `queues` entries and load the program against it. The verifier
    /// log is returned in the error if the kernel refuses the program.
    ///
    /// # Errors
    /// `EPERM` without CAP_BPF/CAP_SYS_ADMIN (run as root); a kernel without XSKMAP.
    pub fn load(queues: u32) -> io::Result<RedirectProgram> {
        let queues = queues.max(1);
        let mut m = MapCreateAttr {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: queues,
            ..MapCreateAttr::default()
        };
        m.map_name[..9].copy_from_slice(b"load_xsks");
        // SAFETY: MapCreateAttr is the BPF_MAP_CREATE prefix of `union bpf_attr`; no pointers.
        let map = unsafe { bpf_fd(BPF_MAP_CREATE, &mut m) }
            .map_err(|e| io::Error::new(e.kind(), format!("creating the XSKMAP: {e}")))?;
        let code = program(map.as_raw_fd());
        let license = c"GPL";
        let mut log = vec![0u8; 64 * 1024];
        let mut p = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: code.len() as u32,
            insns: code.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            ..ProgLoadAttr::default()
        };
        p.prog_name[..10].copy_from_slice(b"load_redir");
        // SAFETY: ProgLoadAttr is the BPF_PROG_LOAD prefix of `union bpf_attr`; `insns`,
        // `license` and `log_buf` point to live buffers of the sizes given (`code`, the C
        // string, `log`), all of which outlive the call.
        let prog = unsafe { bpf_fd(BPF_PROG_LOAD, &mut p) }.map_err(|e| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            io::Error::new(
                e.kind(),
                format!(
                    "loading the redirect program: {e}\n{}",
                    String::from_utf8_lossy(&log[..end])
                ),
            )
        })?;
        Ok(RedirectProgram {
            link: None,
            prog,
            map,
            queues,
        })
    }

    /// Put AF_XDP socket `xsk_fd` into the map slot of rx queue `queue`.
    ///
    /// # Errors
    /// A queue beyond the map, or a descriptor that is not a bound AF_XDP socket.
    pub fn register(&self, queue: u32, xsk_fd: RawFd) -> io::Result<()> {
        if queue >= self.queues {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("queue {queue} beyond the map's {} entries", self.queues),
            ));
        }
        let key: u32 = queue;
        let value: u32 = xsk_fd as u32;
        let mut u = MapUpdateAttr {
            map_fd: self.map.as_raw_fd() as u32,
            key: std::ptr::from_ref(&key) as u64,
            value: std::ptr::from_ref(&value) as u64,
            ..MapUpdateAttr::default()
        };
        // SAFETY: MapUpdateAttr is the BPF_MAP_UPDATE_ELEM prefix of `union bpf_attr`; `key`
        // and `value` point to live u32s (the map's key and value sizes) for the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_ELEM,
                std::ptr::from_mut(&mut u).cast::<libc::c_void>(),
                size_of::<MapUpdateAttr>() as libc::c_uint,
            )
        };
        cvt(ret as libc::ssize_t).map(drop)
    }

    /// Attach to `ifindex` through a bpf_link; detached when this value is dropped.
    ///
    /// # Errors
    /// `EBUSY` if another XDP program is attached; `EOPNOTSUPP` for native mode on a driver
    /// without XDP support (use [`AttachMode::Skb`]).
    pub fn attach(&mut self, ifindex: u32, mode: AttachMode) -> io::Result<()> {
        let mut l = LinkCreateAttr {
            prog_fd: self.prog.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: match mode {
                AttachMode::Native => XDP_FLAGS_DRV_MODE,
                AttachMode::Skb => XDP_FLAGS_SKB_MODE,
            },
        };
        // SAFETY: LinkCreateAttr is the BPF_LINK_CREATE prefix of `union bpf_attr`; no pointers.
        let link = unsafe { bpf_fd(BPF_LINK_CREATE, &mut l) }.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("attaching the redirect program to ifindex {ifindex} ({mode:?}): {e}"),
            )
        })?;
        self.link = Some(link);
        Ok(())
    }

    /// Detach now (also done on drop).
    pub fn detach(&mut self) {
        self.link = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_resolve_inside_the_program() {
        let code = program(7);
        assert!(code.len() < 64);
        for (i, ins) in code.iter().enumerate() {
            let class = ins.code & 0x07;
            if class == 0x05 && ins.code != CALL && ins.code != EXIT {
                let target = i as i64 + 1 + i64::from(ins.off);
                assert!(
                    (0..code.len() as i64).contains(&target),
                    "jump at {i} leaves the program"
                );
                assert!(target > i as i64, "jump at {i} goes backwards");
            }
        }
        // The map load carries the descriptor, and both paths end in EXIT.
        assert!(code.iter().any(|i| i.code == LD_IMM64 && i.imm == 7));
        assert_eq!(code.last().map(|i| i.code), Some(EXIT));
    }

    #[test]
    fn wire_order_constants() {
        // Bytes 0x08 0x00 (IPv4) read as a little-endian u16.
        assert_eq!(wire16(0x08, 0x00), 0x0008);
        assert_eq!(wire16(0, 67), 0x4300);
    }

    #[test]
    fn the_kernel_verifier_accepts_the_program() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must run as root"
            );
            return;
        }
        let p = RedirectProgram::load(2).expect("verifier accepts the program");
        assert!(p.register(2, 0).is_err(), "queue beyond the map");
    }
}
