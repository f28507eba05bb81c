//! Writing a reply frame straight into a TX buffer.
//!
//! The reply is built in place: [`ReplyWriter::new`] lays down Ethernet (with the request's
//! VLAN tags), IPv4 and UDP headers and an empty BOOTP header, [`ReplyWriter::bootp`] fills the
//! fixed fields, each `option*` call appends an option, and [`ReplyWriter::finish`] writes END,
//! pads, and sets every length and checksum in one place. Nothing is allocated and no byte is
//! copied twice; a buffer that is too small (or a reply that would exceed the client's maximum
//! message size) is reported as [`EmitError::NoRoom`], never a panic. Each option is written
//! whole or not at all, so after a `NoRoom` the caller may skip that option and go on.

use super::dhcp::{BOOTREPLY, MAGIC_COOKIE, MIN_MAX_MESSAGE_SIZE, field, opt};
use super::{Request, VlanTags, ether, ipv4, udp};
use std::net::Ipv4Addr;

/// The reply does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EmitError {
    /// The TX buffer, or the client's maximum DHCP message size, is too small for what was
    /// asked. The frame is not valid until a later `finish` succeeds.
    #[error("reply does not fit in the TX buffer or in the client's maximum message size")]
    NoRoom,
}

/// TTL used when the caller has no reason to pick another (RFC 1700 default for IP).
pub const DEFAULT_TTL: u8 = 64;

/// RFC 1542 §3.1.1 / RFC 951: a BOOTP message is at least 300 octets (some relays and
/// clients drop shorter ones), so replies are padded to this.
pub const MIN_BOOTP_LEN: usize = 300;

/// IPv4 (no options) + UDP header bytes counted by option 57 (RFC 2132 §9.10).
const IP_UDP_LEN: usize = ipv4::HEADER_LEN + udp::HEADER_LEN;

/// Longest BOOTP message that still fits in one IPv4 datagram.
const MAX_BOOTP_LEN: usize = u16::MAX as usize - IP_UDP_LEN;

/// Maximum length of one option instance's value.
const MAX_OPTION_CHUNK: usize = 255;

/// Addresses and ports of the reply frame; the decision fills these per RFC 2131 §4.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeaders {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    /// Usually the request's tags: `request.l2.vlan_tags()`.
    pub vlans: VlanTags,
    pub ip_src: Ipv4Addr,
    pub ip_dst: Ipv4Addr,
    pub udp_src: u16,
    pub udp_dst: u16,
    /// IPv4 TTL; [`DEFAULT_TTL`] unless there is a reason otherwise.
    pub ttl: u8,
}

/// The BOOTP fixed fields of a reply (RFC 2131 §4.3.1 table 3). `op` is always BOOTREPLY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootpReply<'s> {
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    /// Server host name, at most 63 bytes (the field is a NUL-terminated string).
    pub sname: &'s [u8],
    /// Boot file name, at most 127 bytes.
    pub file: &'s [u8],
}

impl BootpReply<'static> {
    /// The fields RFC 2131 table 3 copies from the client's message: htype, hlen, xid, flags,
    /// giaddr, chaddr. hops, secs, ciaddr, yiaddr, siaddr are 0 and sname/file empty; set the
    /// ones the reply needs (`BootpReply { yiaddr, ..BootpReply::for_request(req) }`).
    pub fn for_request(req: &Request<'_>) -> Self {
        BootpReply {
            htype: req.htype,
            hlen: req.hlen,
            hops: 0,
            xid: req.xid,
            secs: 0,
            flags: req.flags,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            sname: &[],
            file: &[],
        }
    }
}

/// Append option `code` with `value` to `out` exactly as [`ReplyWriter::option`] writes it
/// (split into consecutive instances past 255 bytes, RFC 3396 §5; nothing for PAD and END),
/// for [`ReplyWriter::option_encoded`].
pub(crate) fn encode_option(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    if code == opt::PAD || code == opt::END {
        return;
    }
    let mut chunks = value.chunks(MAX_OPTION_CHUNK);
    // An empty value is still one instance with length 0.
    let first = chunks.next().unwrap_or(&[]);
    for chunk in core::iter::once(first).chain(chunks) {
        out.push(code);
        // chunks of at most 255 bytes.
        out.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(chunk);
    }
}

/// Writes one reply frame into a TX buffer. See the module docs.
#[derive(Debug)]
pub struct ReplyWriter<'b> {
    buf: &'b mut [u8],
    ip_off: usize,
    bootp_off: usize,
    /// Next option byte (absolute offset in `buf`).
    pos: usize,
    /// End of the usable buffer for the BOOTP message (absolute, exclusive).
    buf_end: usize,
    /// End allowed by the client's maximum message size (absolute, exclusive).
    limit_end: usize,
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
}

impl<'b> ReplyWriter<'b> {
    /// Start a reply in `buf`: L2 (with `h.vlans`), IPv4, UDP and an empty BOOTREPLY header with
    /// the magic cookie. The DHCP message is limited to a 576-octet IP datagram (RFC 2131 §2)
    /// until [`limit`](Self::limit) raises it.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if `buf` cannot hold the headers plus a minimal 300-byte BOOTP
    /// message.
    pub fn new(buf: &'b mut [u8], h: &ReplyHeaders) -> Result<Self, EmitError> {
        let ip_off = ether::emit(buf, &h.eth_dst, &h.eth_src, &h.vlans).ok_or(EmitError::NoRoom)?;
        let udp_off = ip_off + ipv4::HEADER_LEN;
        let bootp_off = udp_off + udp::HEADER_LEN;
        if buf.len() < bootp_off + MIN_BOOTP_LEN {
            return Err(EmitError::NoRoom);
        }
        let ip = buf.get_mut(ip_off..).ok_or(EmitError::NoRoom)?;
        ipv4::emit(ip, h.ip_src, h.ip_dst, h.ttl).ok_or(EmitError::NoRoom)?;
        let u = buf.get_mut(udp_off..).ok_or(EmitError::NoRoom)?;
        udp::emit(u, h.udp_src, h.udp_dst).ok_or(EmitError::NoRoom)?;
        let fixed = buf
            .get_mut(bootp_off..bootp_off + field::OPTIONS)
            .ok_or(EmitError::NoRoom)?;
        fixed.fill(0);
        fixed[field::OP] = BOOTREPLY;
        fixed[field::COOKIE].copy_from_slice(&MAGIC_COOKIE);
        let buf_end = buf.len().min(bootp_off + MAX_BOOTP_LEN);
        Ok(ReplyWriter {
            buf,
            ip_off,
            bootp_off,
            pos: bootp_off + field::OPTIONS,
            buf_end,
            limit_end: bootp_off + usize::from(MIN_MAX_MESSAGE_SIZE) - IP_UDP_LEN,
            ip_src: h.ip_src,
            ip_dst: h.ip_dst,
        })
    }

    /// Write the BOOTP fixed fields (op is BOOTREPLY).
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if `sname` is longer than 63 bytes or `file` longer than 127:
    /// both fields must keep a terminating NUL (RFC 2131 §2).
    pub fn bootp(&mut self, r: &BootpReply<'_>) -> Result<(), EmitError> {
        if r.sname.len() >= field::SNAME.len() || r.file.len() >= field::FILE.len() {
            return Err(EmitError::NoRoom);
        }
        let off = self.bootp_off;
        let f = self
            .buf
            .get_mut(off..off + field::OPTIONS)
            .ok_or(EmitError::NoRoom)?;
        f[field::OP] = BOOTREPLY;
        f[field::HTYPE] = r.htype;
        f[field::HLEN] = r.hlen;
        f[field::HOPS] = r.hops;
        f[field::XID].copy_from_slice(&r.xid.to_be_bytes());
        f[field::SECS].copy_from_slice(&r.secs.to_be_bytes());
        f[field::FLAGS].copy_from_slice(&r.flags.to_be_bytes());
        f[field::CIADDR].copy_from_slice(&r.ciaddr.octets());
        f[field::YIADDR].copy_from_slice(&r.yiaddr.octets());
        f[field::SIADDR].copy_from_slice(&r.siaddr.octets());
        f[field::GIADDR].copy_from_slice(&r.giaddr.octets());
        f[field::CHADDR].copy_from_slice(&r.chaddr);
        // Both names are usually empty: then only the zero fill (no general copy).
        let sname = &mut f[field::SNAME];
        sname.fill(0);
        if !r.sname.is_empty() {
            sname[..r.sname.len()].copy_from_slice(r.sname);
        }
        let file = &mut f[field::FILE];
        file.fill(0);
        if !r.file.is_empty() {
            file[..r.file.len()].copy_from_slice(r.file);
        }
        Ok(())
    }

    /// Bound the DHCP message by the client's maximum message size (option 57).
    ///
    /// RFC 2132 §9.10 does not say whether the value counts the IP and UDP headers; ISC dhcpd
    /// and dnsmasq take it as the whole IP datagram, and so does this (it is the reading under
    /// which a reply is never too long for the client). Values below the legal minimum of 576
    /// are raised to 576. The limit only ever applies together with the buffer's own size.
    pub fn limit(&mut self, max_message_size: u16) {
        let datagram = usize::from(max_message_size.max(MIN_MAX_MESSAGE_SIZE));
        self.limit_end = self.bootp_off + datagram - IP_UDP_LEN;
    }

    /// Absolute end of the BOOTP message allowed now.
    fn end(&self) -> usize {
        self.buf_end.min(self.limit_end)
    }

    /// Bytes still available for options (END is already accounted for).
    pub fn remaining(&self) -> usize {
        self.end().saturating_sub(self.pos + 1)
    }

    /// Reserve `value_len` bytes of value plus the code/length headers of as many instances as
    /// RFC 3396 splitting needs, and call `fill(chunk, value_offset)` for each instance's value.
    fn put_split(
        &mut self,
        code: u8,
        value_len: usize,
        mut fill: impl FnMut(&mut [u8], usize),
    ) -> Result<(), EmitError> {
        if code == opt::PAD || code == opt::END {
            // Framing bytes, not options; END is written by `finish`.
            return Ok(());
        }
        let chunks = value_len.div_ceil(MAX_OPTION_CHUNK).max(1);
        let need = value_len + 2 * chunks;
        // + 1: END must still fit after this option.
        if self.pos + need + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        let mut done = 0;
        for _ in 0..chunks {
            let n = (value_len - done).min(MAX_OPTION_CHUNK);
            let at = self.pos;
            let out = self.buf.get_mut(at..at + 2 + n).ok_or(EmitError::NoRoom)?;
            out[0] = code;
            // n <= 255 by construction.
            out[1] = u8::try_from(n).unwrap_or(u8::MAX);
            fill(&mut out[2..], done);
            done += n;
            self.pos = at + 2 + n;
        }
        Ok(())
    }

    /// Append option `code` with `value`; a value longer than 255 bytes is split into
    /// consecutive instances (RFC 3396 §5). PAD and END are ignored (`finish` writes END).
    ///
    /// # Errors
    /// [`EmitError::NoRoom`]; nothing is written then.
    pub fn option(&mut self, code: u8, value: &[u8]) -> Result<(), EmitError> {
        self.put_split(code, value.len(), |out, off| {
            out.copy_from_slice(&value[off..off + out.len()]);
        })
    }

    /// Append options already encoded by [`encode_option`] (one or several, whole): the
    /// configured options of a subnet are encoded once and copied into every reply, which
    /// saves re-deriving their headers and RFC 3396 split per packet.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`]; nothing is written then.
    pub(crate) fn option_encoded(&mut self, encoded: &[u8]) -> Result<(), EmitError> {
        let at = self.pos;
        // + 1: END must still fit after these options.
        if at + encoded.len() + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        self.buf
            .get_mut(at..at + encoded.len())
            .ok_or(EmitError::NoRoom)?
            .copy_from_slice(encoded);
        self.pos = at + encoded.len();
        Ok(())
    }

    /// Append an option whose value has a size known at compile time (at most 255 bytes):
    /// the fixed-size fields every reply carries (message type, server identifier, timers)
    /// are written with constant-size stores instead of a general copy.
    fn option_array<const N: usize>(&mut self, code: u8, v: [u8; N]) -> Result<(), EmitError> {
        const { assert!(N <= MAX_OPTION_CHUNK) };
        if code == opt::PAD || code == opt::END {
            return Ok(());
        }
        let at = self.pos;
        // + 1: END must still fit after this option.
        if at + 2 + N + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        let out = self.buf.get_mut(at..at + 2 + N).ok_or(EmitError::NoRoom)?;
        out[0] = code;
        out[1] = N as u8;
        out[2..].copy_from_slice(&v);
        self.pos = at + 2 + N;
        Ok(())
    }

    /// Let `fill` write whole, already encoded options straight into the frame: it gets the
    /// bytes still available for options and returns how many it filled, or `None` to write
    /// nothing (whatever it put in the buffer is then not part of the reply).
    pub(crate) fn options_with(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Option<usize> {
        let at = self.pos;
        let room = self.remaining();
        let n = fill(self.buf.get_mut(at..at + room)?)?;
        if n > room {
            return None;
        }
        self.pos = at + n;
        Some(n)
    }

    /// Where the next option will be written, for [`Self::options_since`].
    pub(crate) fn mark(&self) -> usize {
        self.pos
    }

    /// The option bytes written since `mark`.
    pub(crate) fn options_since(&self, mark: usize) -> &[u8] {
        self.buf.get(mark..self.pos).unwrap_or(&[])
    }

    /// Append a one-byte option.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_u8(&mut self, code: u8, v: u8) -> Result<(), EmitError> {
        self.option_array(code, [v])
    }

    /// Append a 16-bit option (network byte order).
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_u16(&mut self, code: u8, v: u16) -> Result<(), EmitError> {
        self.option_array(code, v.to_be_bytes())
    }

    /// Append a 32-bit option (network byte order), e.g. lease, T1 and T2 times.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_u32(&mut self, code: u8, v: u32) -> Result<(), EmitError> {
        self.option_array(code, v.to_be_bytes())
    }

    /// Append an address option (e.g. subnet mask, server identifier).
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_ipv4(&mut self, code: u8, v: Ipv4Addr) -> Result<(), EmitError> {
        self.option_array(code, v.octets())
    }

    /// Append an address-list option (routers, DNS servers, ...), split past 255 bytes.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`].
    pub fn option_ipv4_list(&mut self, code: u8, v: &[Ipv4Addr]) -> Result<(), EmitError> {
        self.put_split(code, v.len() * 4, |out, off| {
            for (i, b) in out.iter_mut().enumerate() {
                let k = off + i;
                *b = v.get(k / 4).map_or(0, |a| a.octets()[k % 4]);
            }
        })
    }

    /// Write END, pad the BOOTP message to 300 bytes, set IPv4 total length and header
    /// checksum, UDP length and checksum. Returns the frame length.
    ///
    /// # Errors
    /// [`EmitError::NoRoom`] if the options written so far exceed a limit set afterwards.
    pub fn finish(self) -> Result<usize, EmitError> {
        if self.pos + 1 > self.end() {
            return Err(EmitError::NoRoom);
        }
        let buf = self.buf;
        *buf.get_mut(self.pos).ok_or(EmitError::NoRoom)? = opt::END;
        let mut end = self.pos + 1;
        let min_end = self.bootp_off + MIN_BOOTP_LEN;
        if end < min_end {
            // RFC 2131 §4.1: the remainder is PAD (0).
            buf.get_mut(end..min_end)
                .ok_or(EmitError::NoRoom)?
                .fill(opt::PAD);
            end = min_end;
        }
        let ip_total = u16::try_from(end - self.ip_off).map_err(|_| EmitError::NoRoom)?;
        let udp_off = self.ip_off + ipv4::HEADER_LEN;
        let datagram = buf.get_mut(udp_off..end).ok_or(EmitError::NoRoom)?;
        udp::finish(datagram, self.ip_src.octets(), self.ip_dst.octets())
            .ok_or(EmitError::NoRoom)?;
        let ip = buf.get_mut(self.ip_off..end).ok_or(EmitError::NoRoom)?;
        ipv4::finish(ip, ip_total).ok_or(EmitError::NoRoom)?;
        Ok(end)
    }
}
