//! The generator's frames: client requests written with the engine's own
//! [`ReplyWriter`](xdhcp::wire::ReplyWriter), and a small parser for server replies.
//!
//! # Why reuse the reply writer for requests
//!
//! A BOOTREQUEST has exactly the layout of a BOOTREPLY except `op`, so the engine's writer (L2
//! with VLAN tags, IPv4, UDP, fixed header, options, lengths and checksums finished in one
//! place) writes it; [`write_request`] then sets `op` to BOOTREQUEST and patches the UDP
//! checksum incrementally (RFC 1624 eqn. 3) instead of summing the datagram again. The unit
//! tests feed every request kind through `xdhcp::wire::parse`, which checks every length and
//! both checksums, so the generator cannot drift from what a strict server accepts.
//!
//! # Why a separate reply parser
//!
//! `xdhcp::wire::parse` is a *server's* parser: it accepts only BOOTREQUESTs to port 67. The
//! generator needs the other direction (OFFER/ACK/NAK to port 68, or to a relay's port 67) and
//! only a handful of fields, so [`parse_reply`] reads just those, every read through `get`
//! (no input can make it panic). It does not verify checksums: replies come over a veth from a
//! server under test, and a corrupted reply would show up as a lost exchange anyway.

use std::net::Ipv4Addr;
use xdhcp::wire::{
    BOOTREQUEST, BootpReply, DEFAULT_TTL, EmitError, HTYPE_ETHERNET, ReplyHeaders, ReplyWriter,
    TPID_8021AD, TPID_8021Q, VlanTags, opt,
};

/// DHCP message types (RFC 2132 §9.6) the generator sends or expects.
pub mod msg {
    pub const DISCOVER: u8 = 1;
    pub const OFFER: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const ACK: u8 = 5;
    pub const NAK: u8 = 6;
    pub const RELEASE: u8 = 7;
}

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// BOOTP fixed header up to and including the magic cookie.
const BOOTP_FIXED: usize = 240;

/// Where a request goes: L2/L3/L4 addressing, relay fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub vlans: VlanTags,
    pub ip_src: Ipv4Addr,
    pub ip_dst: Ipv4Addr,
    pub udp_src: u16,
    pub udp_dst: u16,
    /// Relay address (RFC 2131 §4.1: set by a relay agent), or unspecified.
    pub giaddr: Ipv4Addr,
    pub hops: u8,
}

impl Path {
    /// A client on the link with no address yet: from 0.0.0.0:68 to the broadcast address
    /// (RFC 2131 §4.1), Ethernet broadcast.
    pub fn broadcast(mac: [u8; 6], vlans: VlanTags) -> Path {
        Path {
            eth_src: mac,
            eth_dst: [0xff; 6],
            vlans,
            ip_src: Ipv4Addr::UNSPECIFIED,
            ip_dst: Ipv4Addr::BROADCAST,
            udp_src: 68,
            udp_dst: 67,
            giaddr: Ipv4Addr::UNSPECIFIED,
            hops: 0,
        }
    }
}

/// What a request says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// RFC 2131 §4.4.1: INIT state.
    Discover,
    /// SELECTING: requested address (50) and the chosen server (54), ciaddr 0.
    Select {
        requested: Ipv4Addr,
        server: Ipv4Addr,
    },
    /// RENEWING: ciaddr set, no 50/54 (RFC 2131 §4.3.2 table 4).
    Renew { ciaddr: Ipv4Addr },
    /// RFC 2131 §4.4.6: ciaddr and server identifier; no reply is expected.
    Release { ciaddr: Ipv4Addr, server: Ipv4Addr },
}

/// One request to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    pub xid: u32,
    pub chaddr: [u8; 6],
    pub secs: u16,
    /// BOOTP broadcast flag: ask the server to broadcast the reply.
    pub broadcast: bool,
    /// Relay agent information (RFC 3046): circuit-id (sub-option 1) and remote-id (2).
    pub option82: Option<([u8; 4], [u8; 6])>,
}

/// Parameter request list of a typical client (subnet mask, router, DNS, domain, lease time,
/// server id, T1, T2).
const PRL: [u8; 8] = [1, 3, 6, 15, 51, 54, 58, 59];

/// Write `req` along `path` into `buf`; returns the frame length.
///
/// # Errors
/// [`EmitError::NoRoom`] if `buf` is too small.
pub fn write_request(buf: &mut [u8], path: &Path, req: &Request) -> Result<usize, EmitError> {
    let h = ReplyHeaders {
        eth_dst: path.eth_dst,
        eth_src: path.eth_src,
        vlans: path.vlans,
        ip_src: path.ip_src,
        ip_dst: path.ip_dst,
        udp_src: path.udp_src,
        udp_dst: path.udp_dst,
        ttl: DEFAULT_TTL,
    };
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&req.chaddr);
    let ciaddr = match req.kind {
        Kind::Renew { ciaddr } | Kind::Release { ciaddr, .. } => ciaddr,
        Kind::Discover | Kind::Select { .. } => Ipv4Addr::UNSPECIFIED,
    };
    let mut w = ReplyWriter::new(buf, &h)?;
    w.bootp(&BootpReply {
        htype: HTYPE_ETHERNET,
        hlen: 6,
        hops: path.hops,
        xid: req.xid,
        secs: req.secs,
        flags: if req.broadcast { 0x8000 } else { 0 },
        ciaddr,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: path.giaddr,
        chaddr,
        sname: &[],
        file: &[],
    })?;
    match req.kind {
        Kind::Discover => {
            w.option_u8(opt::MESSAGE_TYPE, msg::DISCOVER)?;
            w.option(opt::PARAMETER_REQUEST_LIST, &PRL)?;
        }
        Kind::Select { requested, server } => {
            w.option_u8(opt::MESSAGE_TYPE, msg::REQUEST)?;
            w.option_ipv4(opt::REQUESTED_IP, requested)?;
            w.option_ipv4(opt::SERVER_ID, server)?;
            w.option(opt::PARAMETER_REQUEST_LIST, &PRL)?;
        }
        Kind::Renew { .. } => {
            w.option_u8(opt::MESSAGE_TYPE, msg::REQUEST)?;
            w.option(opt::PARAMETER_REQUEST_LIST, &PRL)?;
        }
        Kind::Release { server, .. } => {
            w.option_u8(opt::MESSAGE_TYPE, msg::RELEASE)?;
            w.option_ipv4(opt::SERVER_ID, server)?;
        }
    }
    if let Some((circuit, remote)) = req.option82 {
        // RFC 3046 §2.0: sub-option 1 (circuit-id), sub-option 2 (remote-id); the relay
        // appends option 82 last.
        let mut v = [0u8; 2 + 4 + 2 + 6];
        v[0] = 1;
        v[1] = 4;
        v[2..6].copy_from_slice(&circuit);
        v[6] = 2;
        v[7] = 6;
        v[8..14].copy_from_slice(&remote);
        w.option(opt::RELAY_AGENT_INFO, &v)?;
    }
    let len = w.finish()?;
    let ip_off = ETH_LEN + path.vlans.wire_len();
    let bootp_off = ip_off + IP_LEN + UDP_LEN;
    let csum_off = ip_off + IP_LEN + 6;
    // `finish` succeeded, so the frame holds the whole BOOTP header: these reads are in bounds.
    let old_word = u16::from_be_bytes([buf[bootp_off], buf[bootp_off + 1]]);
    buf[bootp_off] = BOOTREQUEST;
    let new_word = u16::from_be_bytes([buf[bootp_off], buf[bootp_off + 1]]);
    let old_csum = u16::from_be_bytes([buf[csum_off], buf[csum_off + 1]]);
    if old_csum != 0 {
        let c = csum_replace(old_csum, old_word, new_word);
        buf[csum_off..csum_off + 2].copy_from_slice(&c.to_be_bytes());
    }
    Ok(len)
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word changed from `old` to `new`:
/// `HC' = ~(~HC + ~m + m')`. A UDP checksum of 0 means "none" (RFC 768), so 0 is sent as 0xffff.
pub fn csum_replace(check: u16, old: u16, new: u16) -> u16 {
    let mut s = u32::from(!check) + u32::from(!old) + u32::from(new);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    match !(s as u16) {
        0 => 0xffff,
        c => c,
    }
}

/// The fields of a server reply (or of an echoed request) the generator uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub eth_src: [u8; 6],
    /// BOOTP op: 2 for a server reply, 1 for an echoed request.
    pub op: u8,
    pub xid: u32,
    pub yiaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Option 53 (0 if absent).
    pub msg_type: u8,
    /// Option 54 (unspecified if absent).
    pub server_id: Ipv4Addr,
    /// Option 51 (0 if absent).
    pub lease_time: u32,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parse a DHCP frame arriving at the generator: Ethernet (up to two VLAN tags), IPv4, UDP to
/// port 67 or 68, BOOTP with the magic cookie; options 53, 54 and 51 from the options field.
/// `None` for anything else.
pub fn parse_reply(f: &[u8]) -> Option<Reply> {
    let eth_src: [u8; 6] = f.get(6..12)?.try_into().ok()?;
    let mut l3 = ETH_LEN;
    let mut ethertype = be16(f, 12)?;
    for _ in 0..2 {
        if ethertype == TPID_8021Q || ethertype == TPID_8021AD {
            ethertype = be16(f, l3 + 2)?;
            l3 += 4;
        }
    }
    if ethertype != 0x0800 {
        return None;
    }
    let vihl = *f.get(l3)?;
    if vihl >> 4 != 4 || *f.get(l3 + 9)? != 17 {
        return None;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let total = usize::from(be16(f, l3 + 2)?);
    if ihl < IP_LEN || total < ihl + UDP_LEN || l3 + total > f.len() {
        return None;
    }
    let udp = l3 + ihl;
    let dport = be16(f, udp + 2)?;
    if dport != 67 && dport != 68 {
        return None;
    }
    let bootp = f.get(udp + UDP_LEN..l3 + total)?;
    if bootp.len() < BOOTP_FIXED || bootp.get(236..240)? != xdhcp::wire::MAGIC_COOKIE {
        return None;
    }
    let mut r = Reply {
        eth_src,
        op: bootp[0],
        xid: be32(bootp, 4)?,
        yiaddr: Ipv4Addr::from(be32(bootp, 16)?),
        chaddr: bootp.get(28..34)?.try_into().ok()?,
        msg_type: 0,
        server_id: Ipv4Addr::UNSPECIFIED,
        lease_time: 0,
    };
    let mut at = BOOTP_FIXED;
    while let Some(&code) = bootp.get(at) {
        match code {
            opt::PAD => at += 1,
            opt::END => break,
            _ => {
                let len = usize::from(*bootp.get(at + 1)?);
                let v = bootp.get(at + 2..at + 2 + len)?;
                match (code, len) {
                    (opt::MESSAGE_TYPE, 1) => r.msg_type = v[0],
                    (opt::SERVER_ID, 4) => r.server_id = Ipv4Addr::from(be32(v, 0)?),
                    (opt::LEASE_TIME, 4) => r.lease_time = be32(v, 0)?,
                    _ => {}
                }
                at += 2 + len;
            }
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdhcp::wire::{MessageType, VlanTag};

    const CHADDR: [u8; 6] = [0x02, 0x10, 0, 0, 1, 2];
    const SRV: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

    fn direct() -> Path {
        Path::broadcast(CHADDR, VlanTags::default())
    }

    fn req(kind: Kind) -> Request {
        Request {
            kind,
            xid: 0xdead_beef,
            chaddr: CHADDR,
            secs: 3,
            broadcast: false,
            option82: None,
        }
    }

    #[test]
    fn every_request_kind_passes_the_engine_parser() {
        let kinds = [
            (Kind::Discover, MessageType::Discover),
            (
                Kind::Select {
                    requested: Ipv4Addr::new(10, 9, 0, 50),
                    server: SRV,
                },
                MessageType::Request,
            ),
            (
                Kind::Renew {
                    ciaddr: Ipv4Addr::new(10, 9, 0, 50),
                },
                MessageType::Request,
            ),
            (
                Kind::Release {
                    ciaddr: Ipv4Addr::new(10, 9, 0, 50),
                    server: SRV,
                },
                MessageType::Release,
            ),
        ];
        for (kind, mt) in kinds {
            let mut buf = [0u8; 2048];
            let n = write_request(&mut buf, &direct(), &req(kind)).expect("fits");
            let p = xdhcp::wire::parse(&buf[..n])
                .unwrap_or_else(|e| panic!("{kind:?} rejected by the engine parser: {e:?}"));
            assert_eq!(p.options.message_type(), mt);
            assert_eq!(p.xid, 0xdead_beef);
            assert_eq!(p.hwaddr(), &CHADDR);
            assert_eq!(p.secs, 3);
            match kind {
                Kind::Select { requested, server } => {
                    assert_eq!(p.options.requested_ip(), Some(requested));
                    assert_eq!(p.options.server_id(), Some(server));
                    assert_eq!(p.ciaddr, Ipv4Addr::UNSPECIFIED);
                }
                Kind::Renew { ciaddr } => {
                    assert_eq!(p.ciaddr, ciaddr);
                    assert_eq!(p.options.server_id(), None);
                }
                Kind::Release { ciaddr, server } => {
                    assert_eq!(p.ciaddr, ciaddr);
                    assert_eq!(p.options.server_id(), Some(server));
                }
                Kind::Discover => assert!(p.options.parameter_request_list().is_some()),
            }
        }
    }

    #[test]
    fn relayed_qinq_request_carries_giaddr_tags_and_option82() {
        let path = Path {
            eth_src: [0x02, 0, 0, 0, 0, 2],
            eth_dst: [0x02, 0, 0, 0, 0, 1],
            vlans: VlanTags::new(&[VlanTag::s_tag(10), VlanTag::c_tag(200)]).expect("2 tags"),
            ip_src: Ipv4Addr::new(10, 9, 0, 2),
            ip_dst: SRV,
            udp_src: 67,
            udp_dst: 67,
            giaddr: Ipv4Addr::new(10, 9, 0, 2),
            hops: 1,
        };
        let mut r = req(Kind::Discover);
        r.option82 = Some(([0, 0, 0, 7], CHADDR));
        r.broadcast = true;
        let mut buf = [0u8; 2048];
        let n = write_request(&mut buf, &path, &r).expect("fits");
        let p = xdhcp::wire::parse(&buf[..n]).expect("engine parser accepts it");
        assert_eq!(p.giaddr, path.giaddr);
        assert_eq!(p.hops, 1);
        assert!(p.broadcast_flag());
        assert_eq!(p.l2.outer_vid(), Some(10));
        assert_eq!(p.l2.inner_vid(), Some(200));
        let ra = p.options.relay_agent().expect("option 82");
        assert_eq!(ra.circuit_id(), Some(&[0, 0, 0, 7][..]));
        assert_eq!(ra.remote_id(), Some(&CHADDR[..]));
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        let mut buf = [0u8; 100];
        assert_eq!(
            write_request(&mut buf, &direct(), &req(Kind::Discover)),
            Err(EmitError::NoRoom)
        );
    }

    /// A reply as a server writes it, with the engine's writer.
    fn offer(vlans: VlanTags, yiaddr: Ipv4Addr) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let h = ReplyHeaders {
            eth_dst: CHADDR,
            eth_src: [0x02, 0, 0, 0, 0, 1],
            vlans,
            ip_src: SRV,
            ip_dst: yiaddr,
            udp_src: 67,
            udp_dst: 68,
            ttl: 64,
        };
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&CHADDR);
        let mut w = ReplyWriter::new(&mut buf, &h).expect("room");
        w.bootp(&BootpReply {
            htype: 1,
            hlen: 6,
            hops: 0,
            xid: 42,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            sname: &[],
            file: &[],
        })
        .expect("room");
        w.option_u8(opt::MESSAGE_TYPE, msg::OFFER).expect("room");
        w.option_ipv4(opt::SERVER_ID, SRV).expect("room");
        w.option_u32(opt::LEASE_TIME, 3600).expect("room");
        let n = w.finish().expect("room");
        buf.truncate(n);
        buf
    }

    #[test]
    fn replies_parse_with_and_without_tags() {
        let yi = Ipv4Addr::new(10, 9, 0, 77);
        for vlans in [
            VlanTags::default(),
            VlanTags::new(&[VlanTag::c_tag(5)]).expect("1 tag"),
            VlanTags::new(&[VlanTag::s_tag(5), VlanTag::c_tag(6)]).expect("2 tags"),
        ] {
            let f = offer(vlans, yi);
            let r = parse_reply(&f).expect("parses");
            assert_eq!(r.op, 2);
            assert_eq!(r.msg_type, msg::OFFER);
            assert_eq!(r.xid, 42);
            assert_eq!(r.yiaddr, yi);
            assert_eq!(r.chaddr, CHADDR);
            assert_eq!(r.server_id, SRV);
            assert_eq!(r.lease_time, 3600);
            assert_eq!(r.eth_src, [0x02, 0, 0, 0, 0, 1]);
        }
    }

    #[test]
    fn truncated_or_foreign_frames_are_rejected_without_panic() {
        let f = offer(VlanTags::default(), Ipv4Addr::new(10, 9, 0, 77));
        for n in 0..f.len() {
            // Cut inside the headers or the fixed part: never a reply (and never a panic);
            // cut inside the options: the fixed part still parses.
            let r = parse_reply(&f[..n]);
            if n < ETH_LEN + IP_LEN + UDP_LEN + BOOTP_FIXED {
                assert!(r.is_none(), "cut at {n}");
            }
        }
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(parse_reply(&arp).is_none());
        let mut other_port = f.clone();
        other_port[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&53u16.to_be_bytes());
        assert!(parse_reply(&other_port).is_none());
        let mut bad_opt = f;
        // An option whose length runs past the end stops the walk, keeping what was read.
        let opts = 14 + 20 + 8 + 240;
        bad_opt[opts + 1] = 250;
        let r = parse_reply(&bad_opt);
        assert!(r.is_none() || r.is_some_and(|r| r.msg_type == 0));
    }

    #[test]
    fn incremental_checksum_matches_a_full_recompute() {
        // Sum of words [0x0201, 0x1234] and after changing the first to 0x0101.
        let full = |w: &[u16]| {
            let mut s: u32 = w.iter().map(|&x| u32::from(x)).sum();
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        };
        let before = full(&[0x0201, 0x1234]);
        let after = full(&[0x0101, 0x1234]);
        assert_eq!(csum_replace(before, 0x0201, 0x0101), after);
    }
}
