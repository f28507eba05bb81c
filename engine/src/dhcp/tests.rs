//! Frame-in / frame-out tests of the decision: every request is a real frame (dhcproto's
//! encoder, our frame helper), every reply is checked byte-level (checksums, lengths) and
//! decoded with dhcproto.

use super::testkit::{ids::*, *};
use super::*;
use crate::config::{OptionSet, ServerConfig, SubnetId};
use crate::lease::{ClientKey, LeaseState};
use crate::wire::testutil::fixtures;
use crate::wire::{DropReason, VlanTag};
use dhcproto::v4::{self, DhcpOption, Flags, MessageType, OptionCode, relay};
use std::net::Ipv4Addr;

const BCAST: [u8; 6] = [0xff; 6];
const LAN_SID: Ipv4Addr = ip(10, 0, 0, 1);
const RELAY_SID: Ipv4Addr = ip(192, 0, 2, 1);
const GIADDR: Ipv4Addr = ip(10, 1, 0, 1);

fn direct() -> Path {
    Path::Broadcast(vec![])
}

fn hw_key(hw: [u8; 6]) -> ClientKey {
    ClientKey::from_hw(1, &hw)
}

fn discover(hw: [u8; 6]) -> v4::Message {
    request(MessageType::Discover, hw)
}

/// A SELECTING request for `addr` from server `sid`.
fn select(hw: [u8; 6], addr: Ipv4Addr, sid: Ipv4Addr) -> v4::Message {
    let mut r = request(MessageType::Request, hw);
    r.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    r.opts_mut().insert(DhcpOption::ServerIdentifier(sid));
    r
}

fn init_reboot(hw: [u8; 6], addr: Ipv4Addr) -> v4::Message {
    let mut r = request(MessageType::Request, hw);
    r.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    r
}

fn renew(hw: [u8; 6], ciaddr: Ipv4Addr) -> v4::Message {
    let mut r = request(MessageType::Request, hw);
    r.set_ciaddr(ciaddr);
    r
}

fn relay_info(subs: Vec<relay::RelayInfo>) -> DhcpOption {
    let mut info = relay::RelayAgentInformation::default();
    for s in subs {
        info.insert(s);
    }
    DhcpOption::RelayAgentInformation(info)
}

/// Fields every reply to `req` must copy (RFC 2131 table 3).
fn assert_copied(reply: &Reply, req: &v4::Message) {
    assert_eq!(reply.msg.opcode(), v4::Opcode::BootReply);
    assert_eq!(reply.msg.htype(), req.htype());
    assert_eq!(reply.msg.hlen(), req.hlen());
    assert_eq!(reply.msg.hops(), 0);
    assert_eq!(reply.msg.xid(), req.xid());
    assert_eq!(reply.msg.secs(), 0);
    assert_eq!(reply.msg.giaddr(), req.giaddr());
    assert_eq!(reply.msg.chaddr(), req.chaddr());
    assert_eq!(reply.sport, 67);
}

/// A BOOTP string field up to its NUL (dhcproto keeps the terminator).
fn cstr(f: Option<&[u8]>) -> Option<&[u8]> {
    f.map(|b| &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())])
        .filter(|b| !b.is_empty())
}

fn vlans_of(tags: &[VlanTag]) -> Vec<(u16, u16)> {
    tags.iter().map(|t| (t.tpid, t.tci)).collect()
}

// ---- DORA and reply destinations -------------------------------------------------------------

#[test]
fn dora_direct_unicasts_to_chaddr_and_yiaddr() {
    let mut env = Env::new(config());
    let hw = mac(1);
    let d = discover(hw);
    let (v, offer) = env.reply(&d, &direct());
    assert!(matches!(v, Verdict::Reply { commit: None, .. }), "{v:?}");
    assert_eq!(offer.mtype(), MessageType::Offer);
    assert_copied(&offer, &d);
    let yiaddr = offer.msg.yiaddr();
    assert!((100..=199).contains(&yiaddr.octets()[3]) && yiaddr.octets()[..3] == [10, 0, 0]);
    // RFC 2131 §4.1: no broadcast bit, no giaddr/ciaddr -> chaddr / yiaddr, port 68.
    assert_eq!(offer.eth_dst, hw);
    assert_eq!(offer.eth_src, SERVER_MAC);
    assert!(offer.vlans.is_empty());
    assert_eq!(offer.ip_src, LAN_SID);
    assert_eq!(offer.ip_dst, yiaddr);
    assert_eq!(offer.dport, 68);
    assert!(!offer.msg.flags().broadcast());
    assert_eq!(offer.msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(offer.msg.siaddr(), Ipv4Addr::UNSPECIFIED);
    // Subnet default file name fills the BOOTP `file` field.
    assert_eq!(cstr(offer.msg.fname()), Some(&b"default.efi"[..]));
    // 53, 54 first, then 51/58/59; no PRL -> every configured option in code order.
    assert_eq!(
        offer.codes,
        vec![53, 54, 51, 58, 59, 1, 3, 6, 15, 28, 42, 255]
    );
    assert_eq!(offer.server_id(), Some(LAN_SID));
    assert_eq!(offer.u32_opt(51), Some(3600));
    assert_eq!(offer.u32_opt(58), Some(1800));
    assert_eq!(offer.u32_opt(59), Some(3150));
    assert_eq!(
        offer.opt(OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(ip(255, 255, 255, 0)))
    );
    assert_eq!(
        offer.opt(OptionCode::Router),
        Some(&DhcpOption::Router(vec![ip(10, 0, 0, 1)]))
    );
    assert_eq!(offer.dns(), Some(vec![ip(10, 0, 0, 53)]));
    assert_eq!(offer.domain().as_deref(), Some("example.net"));
    let held = env.server.leases().by_addr(yiaddr).unwrap();
    assert_eq!(held.state, LeaseState::Offered);
    assert_eq!(held.client, hw_key(hw));

    let r = select(hw, yiaddr, LAN_SID);
    let (v, ack) = env.reply(&r, &direct());
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_copied(&ack, &r);
    assert_eq!(ack.msg.yiaddr(), yiaddr);
    assert_eq!(ack.msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(ack.eth_dst, hw);
    assert_eq!(ack.ip_dst, yiaddr);
    assert_eq!(ack.dport, 68);
    assert_eq!(ack.codes[..5], [53, 54, 51, 58, 59]);
    let Verdict::Reply {
        commit: Some(commit),
        ..
    } = v
    else {
        panic!("ACK must carry the lease to persist: {v:?}");
    };
    assert_eq!(commit.addr, yiaddr);
    assert_eq!(commit.state, LeaseState::Bound);
    assert_eq!(commit.client, hw_key(hw));
    assert_eq!(commit.subnet, LAN);
    assert_eq!(commit.expires, T0 + 3600);
    assert_eq!(env.server.leases().by_addr(yiaddr), Some(commit));

    assert_eq!(env.stats.frames, 2);
    assert_eq!(env.stats.requests[usize::from(msg::DISCOVER)], 1);
    assert_eq!(env.stats.requests[usize::from(msg::REQUEST)], 1);
    assert_eq!(env.stats.replies[usize::from(msg::OFFER)], 1);
    assert_eq!(env.stats.replies[usize::from(msg::ACK)], 1);
    assert_eq!(env.stats.commits, 1);
    assert_eq!(env.stats.total_drops(), 0);
}

#[test]
fn broadcast_flag_broadcasts_offer_and_ack() {
    let mut env = Env::new(config());
    let hw = mac(2);
    let mut d = discover(hw);
    d.set_flags(Flags::default().set_broadcast());
    let (_, offer) = env.reply(&d, &direct());
    assert_eq!(offer.eth_dst, BCAST);
    assert_eq!(offer.ip_dst, Ipv4Addr::BROADCAST);
    assert_eq!(offer.dport, 68);
    assert!(offer.msg.flags().broadcast());
    let mut r = select(hw, offer.msg.yiaddr(), LAN_SID);
    r.set_flags(Flags::default().set_broadcast());
    let (_, ack) = env.reply(&r, &direct());
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_eq!(ack.eth_dst, BCAST);
    assert_eq!(ack.ip_dst, Ipv4Addr::BROADCAST);
}

#[test]
fn non_ethernet_client_without_broadcast_flag_is_answered_by_broadcast() {
    // InfiniBand (htype 32): hlen 0, identity in option 61 (RFC 4390). Its chaddr cannot be
    // put in an Ethernet header, so unicast is impossible: RFC 2131 §4.1 "If unicasting is not
    // possible, the message MAY be sent as an IP broadcast".
    let mut env = Env::new(config());
    let mut d = discover(mac(8));
    d.set_htype(v4::HType::from(32)).set_chaddr(&[]);
    d.opts_mut()
        .insert(DhcpOption::ClientIdentifier(vec![0xff, 0, 0, 0, 9, 1, 2]));
    let (_, offer) = env.reply(&d, &direct());
    assert_eq!(offer.mtype(), MessageType::Offer);
    assert_eq!((offer.eth_dst, offer.ip_dst), (BCAST, Ipv4Addr::BROADCAST));
    assert_eq!(offer.msg.htype(), v4::HType::from(32));
    assert_eq!(offer.msg.hlen(), 0);
    let lease = env.server.leases().by_addr(offer.msg.yiaddr()).unwrap();
    assert_eq!(
        lease.client,
        ClientKey::from_client_id(&[0xff, 0, 0, 0, 9, 1, 2])
    );
}

#[test]
fn relayed_dora_replies_to_giaddr_and_echoes_option_82_last() {
    let mut env = Env::new(config());
    let hw = mac(3);
    let o82 = relay_info(vec![
        relay::RelayInfo::AgentCircuitId(b"port-7".to_vec()),
        relay::RelayInfo::AgentRemoteId(b"some-cpe".to_vec()),
    ]);
    let mut d = discover(hw);
    d.set_giaddr(GIADDR).set_hops(1);
    d.opts_mut().insert(o82.clone());
    let (_, offer) = env.reply(&d, &Path::Relay(GIADDR));
    assert_eq!(offer.mtype(), MessageType::Offer);
    assert_copied(&offer, &d);
    // RFC 2131 §4.1: to the relay agent's server port, via the relay's MAC.
    assert_eq!(offer.eth_dst, RELAY_MAC);
    assert_eq!(offer.eth_src, SERVER_MAC);
    assert_eq!(offer.ip_src, RELAY_SID);
    assert_eq!(offer.ip_dst, GIADDR);
    assert_eq!(offer.dport, 67);
    let yiaddr = offer.msg.yiaddr();
    assert_eq!(yiaddr.octets()[..3], [10, 1, 0], "subnet chosen by giaddr");
    assert_eq!(offer.server_id(), Some(RELAY_SID));
    // RFC 3046 §2.2: echoed whole, as the last option.
    assert_eq!(offer.opt(OptionCode::RelayAgentInformation), Some(&o82));
    assert_eq!(offer.codes[offer.codes.len() - 2..], [82, 255]);
    assert!(!offer.msg.flags().broadcast());

    let mut r = select(hw, yiaddr, RELAY_SID);
    r.set_giaddr(GIADDR).set_hops(1);
    r.opts_mut().insert(o82.clone());
    let (v, ack) = env.reply(&r, &Path::Relay(GIADDR));
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert!(matches!(
        v,
        Verdict::Reply {
            commit: Some(_),
            ..
        }
    ));
    assert_eq!(
        (ack.eth_dst, ack.ip_dst, ack.dport),
        (RELAY_MAC, GIADDR, 67)
    );
    assert_eq!(ack.opt(OptionCode::RelayAgentInformation), Some(&o82));
    assert_eq!(ack.codes[ack.codes.len() - 2..], [82, 255]);
}

#[test]
fn vlan_8021q_selects_subnet_and_keeps_the_tag() {
    let mut env = Env::new(config());
    let hw = mac(4);
    // Priority 5 on VLAN 100: the reply must carry the TCI unchanged.
    let tags = vec![VlanTag {
        tpid: 0x8100,
        tci: (5 << 13) | 100,
    }];
    let path = Path::Broadcast(tags.clone());
    let (_, offer) = env.reply(&discover(hw), &path);
    assert_eq!(offer.vlans, vlans_of(&tags));
    assert_eq!(offer.msg.yiaddr().octets()[..3], [10, 2, 0]);
    assert_eq!(offer.ip_src, ip(10, 2, 0, 1));
    // The dynamic VLAN reservation's per-host option replaces the subnet's.
    assert_eq!(offer.domain().as_deref(), Some("vlan100.example"));
    let (_, ack) = env.reply(&select(hw, offer.msg.yiaddr(), ip(10, 2, 0, 1)), &path);
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_eq!(ack.vlans, vlans_of(&tags));
}

#[test]
fn qinq_keeps_both_tags_and_uses_the_vlan_reservation() {
    let mut env = Env::new(config());
    let tags = vec![VlanTag::s_tag(200), VlanTag::c_tag(30)];
    let path = Path::Broadcast(tags.clone());
    let hw = mac(5);
    let (_, offer) = env.reply(&discover(hw), &path);
    assert_eq!(offer.vlans, vec![(0x88a8, 200), (0x8100, 30)]);
    assert_eq!(
        offer.msg.yiaddr(),
        ip(10, 3, 0, 50),
        "fixed address of the line"
    );
    let (v, ack) = env.reply(&select(hw, ip(10, 3, 0, 50), ip(10, 3, 0, 1)), &path);
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_eq!(ack.vlans, vec![(0x88a8, 200), (0x8100, 30)]);
    assert!(matches!(v, Verdict::Reply { commit: Some(c), .. } if c.addr == ip(10, 3, 0, 50)));

    // Another C-tag on the same S-tag: same subnet, but no reservation -> pool address.
    let path31 = Path::Broadcast(vec![VlanTag::s_tag(200), VlanTag::c_tag(31)]);
    let (_, other) = env.reply(&discover(mac(6)), &path31);
    assert_eq!(other.vlans, vec![(0x88a8, 200), (0x8100, 31)]);
    assert_eq!(other.msg.yiaddr().octets()[..3], [10, 3, 0]);
    assert!(other.msg.yiaddr().octets()[3] >= 100);

    // Unknown VLAN: never the untagged default subnet.
    let unknown = Path::Broadcast(vec![VlanTag::s_tag(999), VlanTag::c_tag(1)]);
    let (v, r) = env.exchange(&discover(mac(7)), &unknown);
    assert_eq!(v, Verdict::Drop(DropReason::NoSubnet));
    assert!(r.is_none());
    assert_eq!(env.stats.dropped(DropReason::NoSubnet), 1);
}

// ---- REQUEST states --------------------------------------------------------------------------

#[test]
fn init_reboot_correct_address_is_acked() {
    let mut env = Env::new(config());
    let hw = mac(10);
    let a = env.dora(hw, &direct());
    env.now += 100;
    let r = init_reboot(hw, a);
    let (v, ack) = env.reply(&r, &direct());
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_eq!(ack.msg.yiaddr(), a);
    assert_eq!(ack.msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(matches!(v, Verdict::Reply { commit: Some(c), .. } if c.expires == env.now + 3600));
}

#[test]
fn init_reboot_wrong_network_is_naked_by_broadcast() {
    let mut env = Env::new(config());
    let hw = mac(11);
    let mut r = init_reboot(hw, ip(172, 16, 0, 9));
    r.opts_mut()
        .insert(DhcpOption::ClientIdentifier(vec![1, 2, 3, 4]));
    let (v, nak) = env.reply(&r, &direct());
    assert!(matches!(v, Verdict::Reply { commit: None, .. }), "{v:?}");
    assert_eq!(nak.mtype(), MessageType::Nak);
    assert_copied(&nak, &r);
    // RFC 2131 §4.1: "when 'giaddr' is zero, the server broadcasts any DHCPNAK messages".
    assert_eq!(
        (nak.eth_dst, nak.ip_dst, nak.dport),
        (BCAST, Ipv4Addr::BROADCAST, 68)
    );
    // Table 3: yiaddr, ciaddr, siaddr 0; no file; only 53, 54, 56 and the 61 echo.
    assert_eq!(nak.msg.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(nak.msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(nak.msg.siaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(cstr(nak.msg.fname()), None);
    assert_eq!(nak.codes, vec![53, 54, 61, 56, 255]);
    assert_eq!(nak.server_id(), Some(LAN_SID));
    assert_eq!(
        nak.opt(OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(vec![1, 2, 3, 4]))
    );
    assert!(!nak.has(51) && !nak.has(1) && !nak.has(3));
    assert_eq!(env.stats.replies[usize::from(msg::NAK)], 1);
}

#[test]
fn init_reboot_for_another_clients_address_is_naked() {
    let mut env = Env::new(config());
    let a = env.dora(mac(12), &direct());
    let (_, nak) = env.reply(&init_reboot(mac(13), a), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
    // The owner keeps its lease.
    assert_eq!(
        env.server.leases().by_addr(a).unwrap().client,
        hw_key(mac(12))
    );
    // Another host's fixed address, too.
    let (_, nak) = env.reply(&init_reboot(mac(14), ip(10, 0, 0, 50)), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
}

#[test]
fn relayed_nak_goes_to_giaddr_with_the_broadcast_bit() {
    let mut env = Env::new(config());
    let mut r = init_reboot(mac(15), ip(10, 0, 0, 120));
    r.set_giaddr(GIADDR);
    let (_, nak) = env.reply(&r, &Path::Relay(GIADDR));
    assert_eq!(nak.mtype(), MessageType::Nak);
    assert_eq!(
        (nak.eth_dst, nak.ip_dst, nak.dport),
        (RELAY_MAC, GIADDR, 67)
    );
    // RFC 2131 §4.3.2: "The server MUST set the broadcast bit in the DHCPNAK".
    assert!(nak.msg.flags().broadcast());
    assert_eq!(nak.msg.giaddr(), GIADDR);
}

#[test]
fn authoritative_acks_an_unknown_client_on_a_free_pool_address() {
    let mut env = Env::new(config());
    let hw = mac(16);
    let (v, ack) = env.reply(&init_reboot(hw, ip(10, 0, 0, 150)), &direct());
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert!(matches!(v, Verdict::Reply { commit: Some(c), .. } if c.client == hw_key(hw)));
    // Not in a dynamic range: NAK.
    let (_, nak) = env.reply(&init_reboot(mac(17), ip(10, 0, 0, 20)), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
}

#[test]
fn non_authoritative_stays_silent_for_unknown_clients() {
    let mut cfg = config();
    cfg.authoritative = false;
    let mut env = Env::new(cfg);
    // Unknown client, free address: silent (RFC 2131 §4.3.2 MUST remain silent).
    let (v, r) = env.exchange(&init_reboot(mac(20), ip(10, 0, 0, 150)), &direct());
    assert_eq!(v, Verdict::Drop(DropReason::Ignored));
    assert!(r.is_none());
    // Unknown client, wrong network: silent too.
    let (v, _) = env.exchange(&init_reboot(mac(20), ip(172, 16, 0, 1)), &direct());
    assert_eq!(v, Verdict::Drop(DropReason::Ignored));
    // Unknown client renewing an address somebody else holds: silent.
    let a = env.dora(mac(21), &direct());
    let (v, _) = env.exchange(
        &renew(mac(22), a),
        &Path::Unicast {
            from: a,
            to: LAN_SID,
        },
    );
    assert_eq!(v, Verdict::Drop(DropReason::Ignored));
    // A client we know, claiming another address: NAK.
    let (_, nak) = env.reply(&init_reboot(mac(21), ip(10, 0, 0, 160)), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
    // ... and its own address: ACK.
    let (_, ack) = env.reply(&init_reboot(mac(21), a), &direct());
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_eq!(env.stats.dropped(DropReason::Ignored), 3);
}

#[test]
fn authoritative_naks_where_non_authoritative_is_silent() {
    let mut env = Env::new(config());
    let a = env.dora(mac(23), &direct());
    let (_, nak) = env.reply(
        &renew(mac(24), a),
        &Path::Unicast {
            from: a,
            to: LAN_SID,
        },
    );
    assert_eq!(nak.mtype(), MessageType::Nak);
    // Unicast renewal NAK still goes out broadcast (giaddr zero).
    assert_eq!(nak.ip_dst, Ipv4Addr::BROADCAST);
}

#[test]
fn renewing_unicast_extends_and_replies_to_ciaddr() {
    let mut env = Env::new(config());
    let hw = mac(25);
    let a = env.dora(hw, &direct());
    env.now += 1800;
    let r = renew(hw, a);
    let (v, ack) = env.reply(
        &r,
        &Path::Unicast {
            from: a,
            to: LAN_SID,
        },
    );
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_copied(&ack, &r);
    // RFC 2131 §4.1: ciaddr set -> unicast to ciaddr; L2 to the frame's source.
    assert_eq!((ack.eth_dst, ack.ip_dst, ack.dport), (hw, a, 68));
    assert_eq!(ack.msg.ciaddr(), a);
    assert_eq!(ack.msg.yiaddr(), a);
    assert_eq!(ack.u32_opt(51), Some(3600));
    let Verdict::Reply {
        commit: Some(c), ..
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!(
        (c.addr, c.state, c.expires),
        (a, LeaseState::Bound, env.now + 3600)
    );
}

#[test]
fn renewing_through_a_router_is_matched_by_ciaddr() {
    let mut env = Env::new(config());
    let hw = mac(26);
    let a = env.dora(hw, &Path::Relay(GIADDR));
    // A unicast renewal routed to us: no giaddr, arrives untagged from the router's MAC.
    let r = renew(hw, a);
    let mut f = frame_of(
        &r,
        &Path::Unicast {
            from: a,
            to: RELAY_SID,
        },
    );
    f[6..12].copy_from_slice(&RELAY_MAC);
    let (v, ack) = env.send(&f);
    let ack = ack.unwrap_or_else(|| panic!("{v:?}"));
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_eq!((ack.eth_dst, ack.ip_dst), (RELAY_MAC, a));
    assert_eq!(ack.ip_src, RELAY_SID);
}

#[test]
fn rebinding_broadcast_extends_and_checks_the_network() {
    let mut env = Env::new(config());
    let hw = mac(27);
    let a = env.dora(hw, &direct());
    env.now += 3200;
    let (_, ack) = env.reply(&renew(hw, a), &Path::BroadcastFrom(a));
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_eq!(ack.msg.ciaddr(), a);
    assert_eq!(ack.ip_dst, a);
    assert_eq!(
        env.server.leases().by_addr(a).unwrap().expires,
        env.now + 3600
    );
    // Moved to VLAN 100 and rebinding its old LAN address: wrong network -> NAK.
    let mut f = frame_of(&renew(hw, a), &Path::BroadcastFrom(a));
    f = crate::wire::testutil::with_vlans(&f, &[VlanTag::c_tag(100)]);
    let (_, nak) = env.send(&f);
    let nak = nak.expect("NAK");
    assert_eq!(nak.mtype(), MessageType::Nak);
    assert_eq!(nak.vlans, vec![(0x8100, 100)]);
    assert_eq!(nak.ip_dst, Ipv4Addr::BROADCAST);
}

#[test]
fn selecting_another_server_withdraws_our_offer() {
    let mut env = Env::new(config());
    let hw = mac(30);
    let (_, offer) = env.reply(&discover(hw), &direct());
    let a = offer.msg.yiaddr();
    assert_eq!(
        env.server.leases().by_addr(a).unwrap().state,
        LeaseState::Offered
    );
    let (v, r) = env.exchange(&select(hw, ip(10, 0, 0, 77), ip(10, 0, 0, 254)), &direct());
    assert_eq!(v, Verdict::Drop(DropReason::OtherServerSelected));
    assert!(r.is_none());
    assert_eq!(env.stats.dropped(DropReason::OtherServerSelected), 1);
    let after = env.server.leases().by_addr(a);
    assert!(
        after.is_none_or(|l| l.state != LeaseState::Offered),
        "offer withdrawn: {after:?}"
    );
}

#[test]
fn selecting_a_lapsed_offer_taken_by_someone_else_is_naked() {
    let mut env = Env::new(config());
    let (_, offer) = env.reply(&discover(mac(31)), &direct());
    let a = offer.msg.yiaddr();
    // Another client is ACKed the address once the hold has lapsed.
    env.now += 31;
    let (_, ack) = env.reply(&init_reboot(mac(32), a), &direct());
    assert_eq!(ack.mtype(), MessageType::Ack);
    let (v, nak) = env.reply(&select(mac(31), a, LAN_SID), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
    assert!(matches!(v, Verdict::Reply { commit: None, .. }));
    assert_eq!(
        env.server.leases().by_addr(a).unwrap().client,
        hw_key(mac(32))
    );
}

#[test]
fn selecting_an_address_outside_our_subnets_is_naked() {
    let mut env = Env::new(config());
    let (_, nak) = env.reply(&select(mac(33), ip(10, 2, 0, 120), LAN_SID), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
}

// ---- RELEASE / DECLINE / INFORM --------------------------------------------------------------

#[test]
fn release_then_discover_gets_the_same_address() {
    let mut env = Env::new(config());
    let hw = mac(40);
    let a = env.dora(hw, &direct());
    let mut rel = request(MessageType::Release, hw);
    rel.set_ciaddr(a);
    rel.opts_mut().insert(DhcpOption::ServerIdentifier(LAN_SID));
    env.now += 10;
    let (v, r) = env.exchange(
        &rel,
        &Path::Unicast {
            from: a,
            to: LAN_SID,
        },
    );
    assert!(r.is_none());
    let Verdict::NoReply { commit } = v else {
        panic!("{v:?}")
    };
    assert_eq!((commit.addr, commit.state), (a, LeaseState::Released));
    assert_eq!(env.stats.dropped(DropReason::NoReplyNeeded), 1);
    assert_eq!(
        env.server.leases().by_addr(a).unwrap().state,
        LeaseState::Released
    );
    // Another client first: it must not get the released address back ahead of its owner.
    env.dora(mac(41), &direct());
    let (_, offer) = env.reply(&discover(hw), &direct());
    assert_eq!(offer.msg.yiaddr(), a);
}

#[test]
fn release_for_another_server_or_address_is_ignored() {
    let mut env = Env::new(config());
    let hw = mac(42);
    let a = env.dora(hw, &direct());
    let mut rel = request(MessageType::Release, hw);
    rel.set_ciaddr(a);
    rel.opts_mut()
        .insert(DhcpOption::ServerIdentifier(ip(10, 9, 9, 9)));
    let (v, _) = env.exchange(
        &rel,
        &Path::Unicast {
            from: a,
            to: LAN_SID,
        },
    );
    assert_eq!(v, Verdict::Drop(DropReason::Ignored));
    // A RELEASE by someone who does not hold the address changes nothing.
    let mut rel = request(MessageType::Release, mac(43));
    rel.set_ciaddr(a);
    let (v, _) = env.exchange(
        &rel,
        &Path::Unicast {
            from: a,
            to: LAN_SID,
        },
    );
    assert_eq!(v, Verdict::Drop(DropReason::Ignored));
    assert_eq!(
        env.server.leases().by_addr(a).unwrap().state,
        LeaseState::Bound
    );
}

#[test]
fn declined_address_is_not_offered_during_probation() {
    let mut cfg = config();
    // A pool of exactly two addresses.
    cfg.subnets[0].ranges = vec![crate::config::AddrRange {
        start: ip(10, 0, 0, 100),
        end: ip(10, 0, 0, 101),
    }];
    let mut env = Env::new(cfg);
    let hw = mac(44);
    let a = env.dora(hw, &direct());
    let mut dec = request(MessageType::Decline, hw);
    dec.opts_mut().insert(DhcpOption::RequestedIpAddress(a));
    dec.opts_mut().insert(DhcpOption::ServerIdentifier(LAN_SID));
    let (v, r) = env.exchange(&dec, &direct());
    assert!(r.is_none());
    let Verdict::NoReply { commit } = v else {
        panic!("{v:?}")
    };
    assert_eq!(commit.state, LeaseState::Declined);
    assert_eq!(commit.addr, a);
    assert_eq!(commit.expires, env.now + 600);
    // During probation: the other address, then nothing at all.
    let b = env.dora(mac(45), &direct());
    assert_ne!(a, b);
    for n in 46..50 {
        let (v, r) = env.exchange(&discover(mac(n)), &direct());
        assert_eq!(
            v,
            Verdict::Drop(DropReason::PoolExhausted),
            "probation holds"
        );
        assert!(r.is_none());
    }
    // Nor may a client claim it.
    let (_, nak) = env.reply(&init_reboot(mac(50), a), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
    // After probation it is back in the pool.
    env.now += 601;
    let (_, offer) = env.reply(&discover(mac(51)), &direct());
    assert_eq!(offer.msg.yiaddr(), a);
}

#[test]
fn inform_acks_options_only_to_ciaddr() {
    let mut env = Env::new(config());
    let hw = mac(52);
    let ci = ip(10, 0, 0, 7);
    let mut inf = request(MessageType::Inform, hw);
    inf.set_ciaddr(ci);
    inf.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::AddressLeaseTime,
    ]));
    let (v, ack) = env.reply(
        &inf,
        &Path::Unicast {
            from: ci,
            to: LAN_SID,
        },
    );
    assert!(matches!(v, Verdict::Reply { commit: None, .. }), "{v:?}");
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_copied(&ack, &inf);
    // RFC 2131 §4.3.5: directly to ciaddr, no lease time, yiaddr 0.
    assert_eq!((ack.eth_dst, ack.ip_dst, ack.dport), (hw, ci, 68));
    assert_eq!(ack.msg.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(ack.msg.ciaddr(), ci);
    assert_eq!(ack.codes, vec![53, 54, 3, 6, 255]);
    assert!(!ack.has(51) && !ack.has(58) && !ack.has(59));
    // No lease was created.
    assert_eq!(env.server.leases().by_addr(ci), None);
}

// ---- lease time and options ------------------------------------------------------------------

#[test]
fn lease_time_is_clamped_and_t1_t2_follow() {
    let mut env = Env::new(config());
    for (n, asked, granted) in [
        (60u32, 30u32, 600u32),
        (61, 100_000, 7200),
        (62, 1000, 1000),
    ] {
        let hw = mac(n);
        let mut d = discover(hw);
        d.opts_mut().insert(DhcpOption::AddressLeaseTime(asked));
        let (_, offer) = env.reply(&d, &direct());
        assert_eq!(offer.u32_opt(51), Some(granted));
        assert_eq!(offer.u32_opt(58), Some(granted / 2));
        assert_eq!(offer.u32_opt(59), Some(granted * 7 / 8));
        let mut r = select(hw, offer.msg.yiaddr(), LAN_SID);
        r.opts_mut().insert(DhcpOption::AddressLeaseTime(asked));
        let (v, ack) = env.reply(&r, &direct());
        assert_eq!(ack.u32_opt(51), Some(granted));
        assert!(
            matches!(v, Verdict::Reply { commit: Some(c), .. } if c.expires == env.now + u64::from(granted))
        );
    }
}

#[test]
fn parameter_request_list_orders_and_filters_options() {
    let mut cfg = config();
    cfg.subnets[0]
        .options
        .set(121, vec![24, 192, 168, 7, 10, 0, 0, 2]);
    cfg.subnets[0].options.set(150, vec![1, 2, 3, 4]);
    let mut env = Env::new(cfg);
    let mut d = discover(mac(63));
    // Asks for 6, 3 (router before 121!), 99 (not configured), 121, 15, 6 again, 51.
    d.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::DomainNameServer,
        OptionCode::Router,
        OptionCode::Unknown(99),
        OptionCode::ClasslessStaticRoute,
        OptionCode::DomainName,
        OptionCode::DomainNameServer,
        OptionCode::AddressLeaseTime,
    ]));
    let (_, offer) = env.reply(&d, &direct());
    // 121 is moved ahead of 3; 1, 28, 42 and 150 were not asked for; 51 is sent once.
    assert_eq!(offer.codes, vec![53, 54, 51, 58, 59, 6, 121, 3, 15, 255]);
    assert!(offer.opt(OptionCode::ClasslessStaticRoute).is_some());

    // 121 asked first already: list order kept.
    let mut d = discover(mac(64));
    d.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::ClasslessStaticRoute,
        OptionCode::Router,
        OptionCode::Unknown(150),
    ]));
    let (_, offer) = env.reply(&d, &direct());
    assert_eq!(offer.codes, vec![53, 54, 51, 58, 59, 1, 121, 3, 150, 255]);
}

#[test]
fn maximum_message_size_is_honoured() {
    let mut env = Env::new(config());
    let big_giaddr = ip(10, 6, 0, 1);
    let prl: Vec<OptionCode> = (160..180u8)
        .map(OptionCode::from)
        .chain([OptionCode::ClasslessStaticRoute, OptionCode::Router])
        .collect();
    // Default (no option 57): the whole datagram stays within 576 bytes.
    let mut d = discover(mac(65));
    d.set_giaddr(big_giaddr);
    d.opts_mut()
        .insert(DhcpOption::ParameterRequestList(prl.clone()));
    d.opts_mut()
        .insert(relay_info(vec![relay::RelayInfo::AgentCircuitId(vec![
            7;
            40
        ])]));
    let (_, small) = env.reply(&d, &Path::Relay(big_giaddr));
    assert!(small.ip_len <= 576, "{} bytes", small.ip_len);
    assert!(small.has(121) && small.has(3), "small options still fit");
    assert_eq!(small.codes[small.codes.len() - 2..], [82, 255], "echo kept");
    let n_small = small
        .codes
        .iter()
        .filter(|c| (160..180).contains(*c))
        .count();
    assert!(n_small < 20 && n_small > 0, "{n_small}");
    // Option 57 = 1600: everything fits (~1.55 KB).
    let mut d = discover(mac(66));
    d.set_giaddr(big_giaddr);
    d.opts_mut()
        .insert(DhcpOption::ParameterRequestList(prl.clone()));
    d.opts_mut().insert(DhcpOption::MaxMessageSize(1600));
    let (_, large) = env.reply(&d, &Path::Relay(big_giaddr));
    assert!(
        large.ip_len <= 1600 && large.ip_len > 1500,
        "{}",
        large.ip_len
    );
    assert_eq!(
        large
            .codes
            .iter()
            .filter(|c| (160..180).contains(*c))
            .count(),
        20
    );
    // Option 57 below the legal minimum is treated as 576.
    let mut d = discover(mac(67));
    d.set_giaddr(big_giaddr);
    d.opts_mut().insert(DhcpOption::ParameterRequestList(prl));
    d.opts_mut().insert(DhcpOption::MaxMessageSize(300));
    let (_, tiny) = env.reply(&d, &Path::Relay(big_giaddr));
    assert!(tiny.ip_len <= 576);
    assert!(tiny.codes.contains(&53) && tiny.codes.contains(&51));
}

#[test]
fn option_82_that_cannot_fit_is_left_out_and_counted() {
    let mut env = Env::new(config());
    let mut d = discover(mac(69));
    d.set_giaddr(GIADDR);
    // 255-byte client id + 255-byte option 82 cannot both fit in a 576-byte reply.
    d.opts_mut()
        .insert(DhcpOption::ClientIdentifier(vec![0x42; 255]));
    d.opts_mut()
        .insert(relay_info(vec![relay::RelayInfo::AgentCircuitId(vec![
            7;
            253
        ])]));
    let (v, offer) = env.reply(&d, &Path::Relay(GIADDR));
    assert!(matches!(v, Verdict::Reply { .. }));
    assert_eq!(offer.mtype(), MessageType::Offer);
    assert!(offer.ip_len <= 576);
    // RFC 3046 §2.2: sent without the echo, and counted.
    assert!(!offer.has(82));
    assert!(offer.has(61));
    assert_eq!(env.stats.relay_echo_omitted, 1);
    assert_eq!(env.stats.total_drops(), 0);
}

#[test]
fn tx_buffer_too_small_drops_without_binding() {
    let mut env = Env::new(config());
    let hw = mac(68);
    let (_, offer) = env.reply(&discover(hw), &direct());
    let a = offer.msg.yiaddr();
    env.tx = vec![0u8; 200];
    let (v, _) = env.exchange(&select(hw, a, LAN_SID), &direct());
    assert_eq!(v, Verdict::Drop(DropReason::ReplyTooLarge));
    assert_eq!(
        env.server.leases().by_addr(a).unwrap().state,
        LeaseState::Offered
    );
    assert_eq!(env.stats.dropped(DropReason::ReplyTooLarge), 1);
}

// ---- reservations ----------------------------------------------------------------------------

#[test]
fn reservation_by_mac_fixes_address_fields_and_options() {
    let mut env = Env::new(config());
    let d = discover(MAC_RESERVED);
    let (_, offer) = env.reply(&d, &direct());
    assert_eq!(offer.msg.yiaddr(), ip(10, 0, 0, 50));
    assert_eq!(offer.msg.siaddr(), ip(10, 0, 0, 5));
    assert_eq!(cstr(offer.msg.fname()), Some(&b"pxelinux.0"[..]));
    assert_eq!(cstr(offer.msg.sname()), Some(&b"boot.example"[..]));
    // Host option overrides the subnet's; the others stay.
    assert_eq!(offer.dns(), Some(vec![ip(9, 9, 9, 9)]));
    assert_eq!(offer.domain().as_deref(), Some("example.net"));
    let (v, ack) = env.reply(&select(MAC_RESERVED, ip(10, 0, 0, 50), LAN_SID), &direct());
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert_eq!(cstr(ack.msg.fname()), Some(&b"pxelinux.0"[..]));
    assert!(matches!(v, Verdict::Reply { commit: Some(c), .. } if c.addr == ip(10, 0, 0, 50)));
    // Asking for a different address than its fixed one: NAK.
    let (_, nak) = env.reply(&init_reboot(MAC_RESERVED, ip(10, 0, 0, 150)), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
}

#[test]
fn reservation_by_client_id() {
    let mut env = Env::new(config());
    let mut d = discover(mac(70));
    d.opts_mut()
        .insert(DhcpOption::ClientIdentifier(CLIENT_ID_RESERVED.to_vec()));
    let (_, offer) = env.reply(&d, &direct());
    assert_eq!(offer.msg.yiaddr(), ip(10, 0, 0, 51));
    // RFC 6842: the client identifier is echoed, right after the lease options.
    assert_eq!(offer.codes[..6], [53, 54, 51, 58, 59, 61]);
    let lease = env.server.leases().by_addr(ip(10, 0, 0, 51)).unwrap();
    assert_eq!(lease.client, ClientKey::from_client_id(CLIENT_ID_RESERVED));
}

#[test]
fn reservation_by_circuit_id_and_remote_id() {
    let mut env = Env::new(config());
    for (n, sub, want) in [
        (
            71,
            relay::RelayInfo::AgentCircuitId(CIRCUIT_RESERVED.to_vec()),
            ip(10, 1, 0, 50),
        ),
        (
            72,
            relay::RelayInfo::AgentRemoteId(REMOTE_RESERVED.to_vec()),
            ip(10, 1, 0, 51),
        ),
    ] {
        let mut d = discover(mac(n));
        d.set_giaddr(GIADDR);
        d.opts_mut().insert(relay_info(vec![sub]));
        let (_, offer) = env.reply(&d, &Path::Relay(GIADDR));
        assert_eq!(offer.msg.yiaddr(), want);
    }
}

#[test]
fn reserved_address_is_never_given_to_someone_else() {
    let mut env = Env::new(config());
    let mut d = discover(mac(73));
    d.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(ip(10, 0, 0, 51)));
    let (_, offer) = env.reply(&d, &direct());
    assert_ne!(offer.msg.yiaddr(), ip(10, 0, 0, 51));
    let (_, nak) = env.reply(&select(mac(73), ip(10, 0, 0, 51), LAN_SID), &direct());
    assert_eq!(nak.mtype(), MessageType::Nak);
}

// ---- subnet selection ------------------------------------------------------------------------

#[test]
fn subnet_selection_option_118_wins_and_is_echoed() {
    let mut env = Env::new(config());
    let mut d = discover(mac(80));
    d.opts_mut()
        .insert(DhcpOption::SubnetSelection(ip(10, 2, 0, 0)));
    let (_, offer) = env.reply(&d, &direct());
    assert_eq!(offer.msg.yiaddr().octets()[..3], [10, 2, 0]);
    assert_eq!(
        offer.opt(OptionCode::SubnetSelection),
        Some(&DhcpOption::SubnetSelection(ip(10, 2, 0, 0)))
    );
    // RFC 3011: a selection we do not serve gets no answer.
    let mut d = discover(mac(81));
    d.opts_mut()
        .insert(DhcpOption::SubnetSelection(ip(172, 16, 0, 0)));
    let (v, _) = env.exchange(&d, &direct());
    assert_eq!(v, Verdict::Drop(DropReason::NoSubnet));
}

#[test]
fn link_selection_sub_option_wins_over_giaddr() {
    let mut env = Env::new(config());
    let mut d = discover(mac(82));
    d.set_giaddr(GIADDR);
    d.opts_mut()
        .insert(relay_info(vec![relay::RelayInfo::LinkSelection(ip(
            10, 3, 0, 0,
        ))]));
    let (_, offer) = env.reply(&d, &Path::Relay(GIADDR));
    assert_eq!(offer.msg.yiaddr().octets()[..3], [10, 3, 0]);
    // Still replied through the relay (giaddr).
    assert_eq!((offer.ip_dst, offer.dport), (GIADDR, 67));
}

#[test]
fn unknown_giaddr_is_no_subnet() {
    let mut env = Env::new(config());
    let g = ip(172, 31, 0, 1);
    let mut d = discover(mac(83));
    d.set_giaddr(g);
    let (v, _) = env.exchange(&d, &Path::Relay(g));
    assert_eq!(v, Verdict::Drop(DropReason::NoSubnet));
}

#[test]
fn untagged_without_link_uses_interface_address_then_default() {
    let mut cfg = config();
    cfg.subnets[0].links.clear();
    cfg.default_subnet = Some(SubnetId(2));
    let mut env = Env::new(cfg);
    // The interface address 10.0.0.1 lies in subnet 0.
    let (_, offer) = env.reply(&discover(mac(84)), &direct());
    assert_eq!(offer.msg.yiaddr().octets()[..3], [10, 0, 0]);
    env.link.addr = Ipv4Addr::UNSPECIFIED;
    let (_, offer) = env.reply(&discover(mac(85)), &direct());
    assert_eq!(offer.msg.yiaddr().octets()[..3], [10, 2, 0]);
}

#[test]
fn a_home_link_answers_as_the_per_frame_lookup_does() {
    use crate::lease::LeaseTables;
    use std::sync::Arc;
    // Interface addresses in subnet 0, in no subnet, and none; the default subnet is 2.
    let mut cfg = config();
    cfg.subnets[0].links.clear();
    cfg.default_subnet = Some(SubnetId(2));
    let addrs = [ip(10, 0, 0, 1), ip(192, 168, 99, 1), Ipv4Addr::UNSPECIFIED];
    for home in addrs {
        for addr in addrs {
            let tables = Arc::new(LeaseTables::new(&cfg, 1));
            let homed = Server::new(Arc::new(cfg.clone()), tables).with_home_link(&Link {
                mac: SERVER_MAC,
                addr: home,
            });
            let mut env = Env::new(cfg.clone());
            env.link.addr = addr;
            let (_, want) = env.reply(&discover(mac(89)), &direct());
            env.server = homed;
            let (_, got) = env.reply(&discover(mac(89)), &direct());
            assert_eq!(
                got.msg.yiaddr().octets()[..3],
                want.msg.yiaddr().octets()[..3],
                "homed on {home}, frame on {addr}"
            );
        }
    }
}

#[test]
fn shared_network_spills_into_the_next_subnet() {
    let mut env = Env::new(config());
    let g = ip(10, 4, 0, 1);
    let a = env.dora(mac(86), &Path::Relay(g));
    let b = env.dora(mac(87), &Path::Relay(g));
    assert_eq!(a.octets()[..3], [10, 4, 0]);
    assert_eq!(b.octets()[..3], [10, 4, 0]);
    let mut d = discover(mac(88));
    d.set_giaddr(g);
    let (_, offer) = env.reply(&d, &Path::Relay(g));
    let c = offer.msg.yiaddr();
    assert_eq!(
        c.octets()[..3],
        [10, 5, 0],
        "second subnet of the shared network"
    );
    // The options are the serving subnet's (router 10.5.0.1).
    assert_eq!(
        offer.opt(OptionCode::Router),
        Some(&DhcpOption::Router(vec![ip(10, 5, 0, 1)]))
    );
    let mut r = select(mac(88), c, RELAY_SID);
    r.set_giaddr(g);
    let (v, ack) = env.reply(&r, &Path::Relay(g));
    assert_eq!(ack.mtype(), MessageType::Ack);
    assert!(matches!(v, Verdict::Reply { commit: Some(l), .. } if l.subnet == SHARED_B));
}

#[test]
fn server_identifier_override_is_used_and_accepted() {
    let mut env = Env::new(config());
    let over = ip(10, 1, 0, 1);
    let o82 = relay_info(vec![relay::RelayInfo::ServerIdentifierOverride(over)]);
    let hw = mac(89);
    let mut d = discover(hw);
    d.set_giaddr(GIADDR);
    d.opts_mut().insert(o82.clone());
    let (_, offer) = env.reply(&d, &Path::Relay(GIADDR));
    // RFC 5107 §4: option 54 carries the override, the frame still comes from us.
    assert_eq!(offer.server_id(), Some(over));
    assert_eq!(offer.ip_src, RELAY_SID);
    let mut r = select(hw, offer.msg.yiaddr(), over);
    r.set_giaddr(GIADDR);
    r.opts_mut().insert(o82);
    let (_, ack) = env.reply(&r, &Path::Relay(GIADDR));
    assert_eq!(ack.mtype(), MessageType::Ack);
}

// ---- lease life cycle ------------------------------------------------------------------------

#[test]
fn expired_lease_returns_to_its_original_client() {
    let mut cfg = config();
    cfg.subnets[0].ranges = vec![crate::config::AddrRange {
        start: ip(10, 0, 0, 100),
        end: ip(10, 0, 0, 103),
    }];
    let mut env = Env::new(cfg);
    let hw = mac(90);
    let a = env.dora(hw, &direct());
    // The lease lapses; other clients come and go meanwhile.
    env.now += 3601;
    let _ = env.server.leases().expire(env.now, 1000);
    let b = env.dora(mac(91), &direct());
    assert_ne!(a, b, "free addresses are preferred over the lapsed lease");
    let (_, offer) = env.reply(&discover(hw), &direct());
    assert_eq!(offer.msg.yiaddr(), a);
}

#[test]
fn pool_exhausted_is_a_counted_drop() {
    let mut cfg = config();
    cfg.subnets[0].ranges = vec![crate::config::AddrRange {
        start: ip(10, 0, 0, 100),
        end: ip(10, 0, 0, 100),
    }];
    let mut env = Env::new(cfg);
    env.dora(mac(92), &direct());
    let (v, r) = env.exchange(&discover(mac(93)), &direct());
    assert_eq!(v, Verdict::Drop(DropReason::PoolExhausted));
    assert!(r.is_none());
    assert_eq!(env.stats.dropped(DropReason::PoolExhausted), 1);
}

// ---- malformed and unexpected input ----------------------------------------------------------

#[test]
fn server_messages_and_garbage_are_counted_drops() {
    let mut env = Env::new(config());
    let (v, _) = env.exchange(&request(MessageType::Offer, mac(94)), &direct());
    assert_eq!(v, Verdict::Drop(DropReason::UnexpectedMessageType));
    let (v, _) = env.send(&[0u8; 10]);
    assert_eq!(v, Verdict::Drop(DropReason::EthTruncated));
    let mut f = frame_of(&discover(mac(95)), &direct());
    let n = f.len();
    f[n - 30] ^= 0xff; // breaks the UDP checksum
    let (v, _) = env.send(&f);
    assert!(matches!(v, Verdict::Drop(_)));
    assert_eq!(env.stats.total_drops(), 3);
    assert_eq!(env.stats.frames, 3);
    assert_eq!(env.stats.requests[usize::from(msg::OFFER)], 1);
}

#[test]
fn request_without_any_address_is_ignored() {
    let mut env = Env::new(config());
    let (v, _) = env.exchange(&request(MessageType::Request, mac(96)), &direct());
    assert_eq!(v, Verdict::Drop(DropReason::Ignored));
}

/// The segment the fixtures were captured on: 10.250.0.0/24, server 10.250.0.1, relay agent
/// (perfdhcp) at 10.250.0.2.
fn fixture_config() -> ServerConfig {
    let mut cfg = config();
    let mut s = cfg.subnets[0].clone();
    s.id = SubnetId(0);
    s.network = crate::config::Ipv4Net {
        addr: ip(10, 250, 0, 0),
        prefix: 24,
    };
    s.ranges = vec![crate::config::AddrRange {
        start: ip(10, 250, 0, 100),
        end: ip(10, 250, 0, 199),
    }];
    s.server_id = ip(10, 250, 0, 1);
    s.reservations.clear();
    cfg.subnets = vec![s];
    cfg.shared_networks.clear();
    cfg
}

#[test]
fn real_client_captures_complete_dora() {
    for (name, discover, request, relayed) in [
        (
            "dhclient",
            fixtures::DHCLIENT_DISCOVER,
            fixtures::DHCLIENT_REQUEST,
            false,
        ),
        (
            "udhcpc",
            fixtures::UDHCPC_DISCOVER,
            fixtures::UDHCPC_REQUEST,
            false,
        ),
        (
            "dhcpcd",
            fixtures::DHCPCD_DISCOVER,
            fixtures::DHCPCD_REQUEST,
            false,
        ),
        (
            "perfdhcp",
            fixtures::PERFDHCP_DISCOVER,
            fixtures::PERFDHCP_REQUEST,
            true,
        ),
    ] {
        let mut env = Env::new(fixture_config());
        env.link.addr = ip(10, 250, 0, 1);
        let d = crate::wire::parse(discover).unwrap();
        let (v, offer) = env.send(discover);
        let offer = offer.unwrap_or_else(|| panic!("{name}: {v:?}"));
        assert_eq!(offer.mtype(), MessageType::Offer, "{name}");
        assert_eq!(offer.msg.xid(), d.xid, "{name}");
        assert_eq!(&offer.msg.chaddr()[..6], &d.chaddr[..6], "{name}");
        assert_eq!(offer.server_id(), Some(ip(10, 250, 0, 1)), "{name}");
        assert_eq!(offer.msg.yiaddr().octets()[..3], [10, 250, 0], "{name}");
        // Their parameter request lists decide the options (1, 28, 3, 15, 6 ... asked).
        assert!(offer.has(1) && offer.has(3), "{name}: {:?}", offer.codes);
        if relayed {
            assert_eq!(
                (offer.ip_dst, offer.dport),
                (ip(10, 250, 0, 2), 67),
                "{name}"
            );
            assert_eq!(offer.eth_dst, d.l2.src, "{name}");
            assert_eq!(offer.codes[offer.codes.len() - 2..], [82, 255], "{name}");
        } else {
            assert_eq!((offer.eth_dst, offer.dport), (d.l2.src, 68), "{name}");
        }

        // Their REQUESTs select 10.250.0.1 (us) for the address the capture's server offered.
        let r = crate::wire::parse(request).unwrap();
        let want = r.options.requested_ip().unwrap();
        let (v, ack) = env.send(request);
        let ack = ack.unwrap_or_else(|| panic!("{name}: {v:?}"));
        assert_eq!(ack.mtype(), MessageType::Ack, "{name}");
        assert_eq!(ack.msg.yiaddr(), want, "{name}");
        assert!(
            matches!(v, Verdict::Reply { commit: Some(l), .. } if l.addr == want),
            "{name}: {v:?}"
        );
        if let Some(max) = r.options.max_message_size() {
            assert!(ack.ip_len <= usize::from(max), "{name}");
        }
    }
}

#[test]
fn long_option_values_are_split_not_dropped() {
    let mut cfg = config();
    let mut o = OptionSet::default();
    o.set(1, vec![255, 255, 255, 0]);
    o.set(119, vec![b'a'; 300]);
    cfg.subnets[0].options = o;
    let mut env = Env::new(cfg);
    let mut d = discover(mac(97));
    d.opts_mut().insert(DhcpOption::MaxMessageSize(1400));
    let (_, offer) = env.reply(&d, &direct());
    // RFC 3396: two consecutive instances of 119.
    assert_eq!(offer.codes.iter().filter(|&&c| c == 119).count(), 2);
}

#[test]
fn hand_built_config_without_reservations_or_links() {
    // The smallest config: one subnet, default_subnet, no links, no shared network.
    let mut cfg: ServerConfig = config();
    cfg.subnets.truncate(1);
    cfg.subnets[0].reservations.clear();
    cfg.subnets[0].links.clear();
    cfg.shared_networks.clear();
    let mut env = Env::new(cfg);
    env.link.addr = Ipv4Addr::UNSPECIFIED;
    let a = env.dora(MAC_RESERVED, &direct());
    assert!(a.octets()[3] >= 100);
}

/// The option block cache (`optcache`) must not change a single byte: random parameter request
/// lists (with protocol codes, unknown codes, repetitions, 121 around 3), maximum message
/// sizes and option 82 echoes of random size (which take room from the configured options),
/// on a small subnet, a relayed one and one whose options cannot all fit, each frame twice
/// (the second is a cache hit), against a server without the cache.
mod option_cache {
    use super::*;
    use crate::lease::LeaseTables;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn code() -> impl Strategy<Value = u8> {
        prop_oneof![
            Just(1u8),
            Just(3),
            Just(6),
            Just(15),
            Just(121),
            Just(51),
            Just(54),
            Just(82),
            160u8..182,
            any::<u8>(),
        ]
    }

    fn inform(kind: usize, prl: &[u8], mms: Option<u16>, circuit: usize) -> Vec<u8> {
        let mut m = request(MessageType::Inform, mac(7));
        let (ci, path) = match kind {
            0 => (
                ip(10, 0, 0, 7),
                Path::Unicast {
                    from: ip(10, 0, 0, 7),
                    to: LAN_SID,
                },
            ),
            1 => (
                ip(10, 6, 0, 7),
                Path::Unicast {
                    from: ip(10, 6, 0, 7),
                    to: RELAY_SID,
                },
            ),
            _ => {
                // Relayed into the subnet with too many options (2) or the relayed one (3).
                let (giaddr, ci) = if kind == 2 {
                    (ip(10, 6, 0, 1), ip(10, 6, 0, 7))
                } else {
                    (GIADDR, ip(10, 1, 0, 7))
                };
                m.set_giaddr(giaddr);
                m.opts_mut()
                    .insert(relay_info(vec![relay::RelayInfo::AgentCircuitId(
                        vec![b'c'; circuit],
                    )]));
                (ci, Path::Relay(giaddr))
            }
        };
        m.set_ciaddr(ci);
        m.opts_mut().insert(DhcpOption::ParameterRequestList(
            prl.iter().map(|&c| OptionCode::from(c)).collect(),
        ));
        if let Some(s) = mms {
            m.opts_mut().insert(DhcpOption::MaxMessageSize(s));
        }
        frame_of(&m, &path)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn cached_replies_are_byte_identical(
            cases in prop::collection::vec(
                (
                    0usize..4,
                    prop::collection::vec(code(), 0..40),
                    prop::option::of(576u16..1600),
                    1usize..200,
                ),
                1..10,
            )
        ) {
            let cfg = config();
            let cached = Server::new(
                Arc::new(cfg.clone()),
                Arc::new(LeaseTables::new(&cfg, 1)),
            );
            let plain = Server::without_option_cache(
                Arc::new(cfg.clone()),
                Arc::new(LeaseTables::new(&cfg, 1)),
            );
            let link = Link { mac: SERVER_MAC, addr: LAN_SID };
            let (mut sa, mut sb) = (Stats::default(), Stats::default());
            let (mut ta, mut tb) = (vec![0u8; 2048], vec![0u8; 2048]);
            for (kind, prl, mms, circuit) in &cases {
                // The same list with plenty of room first (so its block is cached), then with
                // the drawn limits, then with the least room: hits must respect the room.
                for (mms, circuit) in [(Some(1500), 1), (*mms, *circuit), (None, 250)] {
                let f = inform(*kind, prl, mms, circuit);
                for _ in 0..2 {
                    let va = cached.handle(&f, &mut ta, &link, T0, &mut sa);
                    let vb = plain.handle(&f, &mut tb, &link, T0, &mut sb);
                    prop_assert_eq!(va, vb);
                    if let Verdict::Reply { len, .. } = va {
                        prop_assert_eq!(&ta[..len], &tb[..len]);
                    }
                }
                }
            }
        }
    }
}
