//! Where a reply goes: RFC 2131 §4.1 (and §4.3.2 / §4.3.5 for NAK and INFORM), in ONE place,
//! mapped down to Ethernet because xdhcp writes whole frames and never asks the kernel to ARP.

use crate::wire::{CLIENT_PORT, Request, SERVER_PORT};
use std::net::Ipv4Addr;

/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// The BOOTP broadcast flag (RFC 2131 §2, figure 2).
pub const FLAG_BROADCAST: u16 = 0x8000;

/// What kind of reply is being addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// DHCPOFFER.
    Offer,
    /// DHCPACK for a lease (REQUEST).
    Ack,
    /// DHCPACK answering a DHCPINFORM.
    InformAck,
    /// DHCPNAK.
    Nak,
}

/// The resolved destination of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination {
    /// Ethernet destination.
    pub mac: [u8; 6],
    /// IPv4 destination.
    pub ip: Ipv4Addr,
    /// UDP destination port.
    pub port: u16,
    /// The BOOTP `flags` field of the reply.
    pub flags: u16,
}

impl Destination {
    const fn broadcast(flags: u16) -> Self {
        Destination {
            mac: BROADCAST_MAC,
            ip: Ipv4Addr::BROADCAST,
            port: CLIENT_PORT,
            flags,
        }
    }
}

/// Decide the destination of a reply of `kind` to `req`, whose `yiaddr` will be `yiaddr`.
///
/// Link-layer mapping (xdhcp writes the Ethernet header itself, so "unicast to an IP" must
/// name a MAC without ARP):
/// * relayed: the relay agent sent us the frame, so its source MAC is the next hop to giaddr;
/// * ciaddr: the client (or the router in front of it) sent the frame, so its source MAC is
///   the next hop to ciaddr;
/// * broadcast: ff:ff:ff:ff:ff:ff / 255.255.255.255;
/// * otherwise chaddr / yiaddr, which is exactly what "unicast to the client's hardware
///   address and yiaddr" means, and needs no ARP entry for an address the client does not
///   own yet.
pub fn destination(req: &Request<'_>, kind: ReplyKind, yiaddr: Ipv4Addr) -> Destination {
    let flags = req.flags;
    let relayed = !req.giaddr.is_unspecified();

    // RFC 2131 §4.3.5: "The server responds to a DHCPINFORM message by sending a DHCPACK
    // message directly to the address given in the 'ciaddr' field of the DHCPINFORM message."
    // The frame's source MAC is the client itself, or the router that forwarded the INFORM.
    if kind == ReplyKind::InformAck && !req.ciaddr.is_unspecified() {
        return Destination {
            mac: req.l2.src,
            ip: req.ciaddr,
            port: CLIENT_PORT,
            flags,
        };
    }

    // RFC 2131 §4.1: "If the 'giaddr' field in a DHCP message from a client is non-zero, the
    // server sends any return messages to the 'DHCP server' port on the BOOTP relay agent
    // whose address appears in 'giaddr'."
    if relayed {
        // RFC 2131 §4.3.2: "If 'giaddr' is set in the DHCPREQUEST message, the client is on a
        // different subnet. The server MUST set the broadcast bit in the DHCPNAK, so that the
        // relay agent will broadcast the DHCPNAK to the client, because the client may not
        // have a correct network address or subnet mask, and the client may not be answering
        // ARP requests."
        let flags = if kind == ReplyKind::Nak {
            flags | FLAG_BROADCAST
        } else {
            flags
        };
        return Destination {
            mac: req.l2.src,
            ip: req.giaddr,
            port: SERVER_PORT,
            flags,
        };
    }

    // RFC 2131 §4.1: "In all cases, when 'giaddr' is zero, the server broadcasts any DHCPNAK
    // messages to 0xffffffff."
    if kind == ReplyKind::Nak {
        return Destination::broadcast(flags);
    }

    // RFC 2131 §4.1: "If the 'giaddr' field is zero and the 'ciaddr' field is nonzero, then
    // the server unicasts DHCPOFFER and DHCPACK messages to the address in 'ciaddr'."
    if !req.ciaddr.is_unspecified() {
        return Destination {
            mac: req.l2.src,
            ip: req.ciaddr,
            port: CLIENT_PORT,
            flags,
        };
    }

    // RFC 2131 §4.1: "If 'giaddr' is zero and 'ciaddr' is zero, and the broadcast bit is set,
    // then the server broadcasts DHCPOFFER and DHCPACK messages to 0xffffffff."
    if req.broadcast_flag() {
        return Destination::broadcast(flags);
    }

    // RFC 2131 §4.1: "If the broadcast bit is not set and 'giaddr' is zero and 'ciaddr' is
    // zero, then the server unicasts DHCPOFFER and DHCPACK messages to the client's hardware
    // address and 'yiaddr' address."
    // Only an Ethernet chaddr (htype 1, hlen 6) can be put in an Ethernet header; for any
    // other hardware type, or an INFORM without ciaddr (no yiaddr), unicast is impossible and
    // RFC 2131 §4.1 allows "If unicasting is not possible, the message MAY be sent as an IP
    // broadcast".
    match (req.htype, req.hlen, yiaddr.is_unspecified()) {
        (1, 6, false) => {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&req.chaddr[..6]);
            Destination {
                mac,
                ip: yiaddr,
                port: CLIENT_PORT,
                flags,
            }
        }
        _ => Destination::broadcast(flags),
    }
}
