//! Whole-frame tests: real captured fixtures, one crafted frame per drop reason, truncation and
//! corruption robustness, and round trips against dhcproto as an independent implementation.

use super::testutil::{self, FrameSpec, Rng, fixtures, inet_checksum};
use super::*;
use dhcproto::v4::{self, DhcpOption, OptionCode, relay};
use dhcproto::{Decodable, Decoder, Encodable};
use std::collections::HashSet;

const CLIENT_MAC: [u8; 6] = [0x02, 0xfa, 0, 0, 0, 1];
const SERVER_MAC: [u8; 6] = [0x02, 0xfa, 0, 0, 0, 0xfe];
const PERF_CHADDR: [u8; 6] = [0x00, 0x0c, 0x01, 0x02, 0x03, 0x04];

/// Call every accessor and check the invariants that tie them together. Used on every frame
/// that parses, including corrupted ones.
fn exercise(req: &Request<'_>) {
    let o = &req.options;
    let _ = (
        o.message_type(),
        o.requested_ip(),
        o.server_id(),
        o.subnet_selection(),
    );
    let _ = (o.lease_time(), o.hostname(), o.vendor_class(), o.overload());
    if let Some(m) = o.max_message_size() {
        assert!(m >= 576);
    }
    assert!(req.hwaddr().len() <= 16);
    if let Some(cid) = o.client_id() {
        assert!(cid.len() >= 2);
    }
    for code in 0..=255u8 {
        let Some(r) = o.get(code) else { continue };
        assert_eq!(r.code(), code);
        let frags: Vec<&[u8]> = r.fragments().collect();
        assert_eq!(frags.len(), r.fragment_count());
        assert_eq!(frags.iter().map(|f| f.len()).sum::<usize>(), r.len());
        let mut buf = vec![0u8; r.len() + 3];
        let joined = r.copy_into(&mut buf).to_vec();
        assert_eq!(joined.len(), r.len());
        assert_eq!(joined, r.bytes().collect::<Vec<_>>());
        assert!(r.eq_slice(&joined));
        assert_eq!(r.contiguous().is_some(), r.fragment_count() == 1);
    }
    if let Some(ra) = o.relay_agent() {
        let n: usize = ra.sub_options().map(|(_, v)| v.len() + 2).sum();
        assert_eq!(n, ra.raw().len());
        let _ = (ra.circuit_id(), ra.remote_id(), ra.link_selection());
    }
    let _ = format!("{req:?}");
}

fn prl(req: &Request<'_>) -> Vec<u8> {
    req.options
        .parameter_request_list()
        .unwrap()
        .bytes()
        .collect()
}

fn contiguous(r: Option<OptRef<'_>>) -> Option<&[u8]> {
    r.and_then(|r| r.contiguous())
}

// ---------------------------------------------------------------------------------------------
// Fixtures from real clients.

#[test]
fn fixture_dhclient() {
    let d = parse(fixtures::DHCLIENT_DISCOVER).unwrap();
    assert_eq!(d.l2.dst, [0xff; 6]);
    assert_eq!(d.l2.src, CLIENT_MAC);
    assert!(d.l2.vlans().is_empty());
    assert_eq!(
        (d.ip_src, d.ip_dst),
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
    );
    assert_eq!((d.udp_src, d.udp_dst), (68, 67));
    assert_eq!((d.htype, d.hlen, d.hops), (1, 6, 0));
    assert_eq!(d.xid, 0x1701_863f);
    assert_eq!(d.hwaddr(), CLIENT_MAC);
    assert!(!d.broadcast_flag());
    assert_eq!(d.giaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(d.options.message_type(), MessageType::Discover);
    assert_eq!(prl(&d), [1, 28, 2, 3, 15, 6, 12]);
    assert!(d.options.client_id().is_none());
    assert!(d.options.relay_agent().is_none());
    assert!(d.options.max_message_size().is_none());

    let r = parse(fixtures::DHCLIENT_REQUEST).unwrap();
    assert_eq!(r.options.message_type(), MessageType::Request);
    assert_eq!(r.xid, 0x1701_863f);
    assert_eq!(
        r.options.requested_ip(),
        Some(Ipv4Addr::new(10, 250, 0, 104))
    );
    assert_eq!(r.options.server_id(), Some(Ipv4Addr::new(10, 250, 0, 1)));
    assert_eq!(r.ciaddr, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn fixture_udhcpc() {
    let d = parse(fixtures::UDHCPC_DISCOVER).unwrap();
    assert_eq!(d.xid, 0x8e72_0d72);
    assert_eq!(d.options.message_type(), MessageType::Discover);
    assert_eq!(d.options.max_message_size(), Some(576));
    assert_eq!(contiguous(d.options.hostname()), Some(&b"wfx-udhcpc"[..]));
    assert_eq!(
        contiguous(d.options.vendor_class()),
        Some(&b"udhcp 1.35.0"[..])
    );
    let mut cid = vec![1];
    cid.extend_from_slice(&CLIENT_MAC);
    assert_eq!(contiguous(d.options.client_id()), Some(&cid[..]));
    assert_eq!(prl(&d), [1, 3, 6, 12, 15, 28, 42]);

    let r = parse(fixtures::UDHCPC_REQUEST).unwrap();
    assert_eq!(r.options.message_type(), MessageType::Request);
    assert_eq!(
        r.options.requested_ip(),
        Some(Ipv4Addr::new(10, 250, 0, 104))
    );
    assert_eq!(r.options.server_id(), Some(Ipv4Addr::new(10, 250, 0, 1)));
}

#[test]
fn fixture_dhcpcd() {
    let d = parse(fixtures::DHCPCD_DISCOVER).unwrap();
    assert_eq!(d.xid, 0x3c36_7c39);
    assert_eq!(d.options.message_type(), MessageType::Discover);
    assert_eq!(d.options.max_message_size(), Some(1472));
    assert_eq!(contiguous(d.options.hostname()), Some(&b"wfx-dhcpcd"[..]));
    assert!(
        contiguous(d.options.vendor_class())
            .unwrap()
            .starts_with(b"dhcpcd-9.4.1:")
    );
    assert_eq!(prl(&d), [1, 3, 28, 33, 51, 58, 59]);
    // option 145 (forcerenew nonce capable) lands in the general table
    assert_eq!(contiguous(d.options.get(145)), Some(&[1][..]));

    let r = parse(fixtures::DHCPCD_REQUEST).unwrap();
    assert_eq!(r.options.message_type(), MessageType::Request);
    assert_eq!(
        r.options.requested_ip(),
        Some(Ipv4Addr::new(10, 250, 0, 104))
    );
    assert_eq!(r.options.server_id(), Some(Ipv4Addr::new(10, 250, 0, 1)));
}

#[test]
fn fixture_perfdhcp_relayed_with_option_82() {
    for (frame, mt) in [
        (fixtures::PERFDHCP_DISCOVER, MessageType::Discover),
        (fixtures::PERFDHCP_REQUEST, MessageType::Request),
    ] {
        let d = parse(frame).unwrap();
        assert_eq!(d.options.message_type(), mt);
        assert_eq!(d.l2.src, CLIENT_MAC);
        assert_eq!(d.l2.dst, SERVER_MAC);
        assert_eq!(d.ip_src, Ipv4Addr::new(10, 250, 0, 2));
        assert_eq!(d.ip_dst, Ipv4Addr::new(10, 250, 0, 1));
        assert_eq!((d.udp_src, d.udp_dst), (67, 67));
        assert_eq!(d.giaddr, Ipv4Addr::new(10, 250, 0, 2));
        assert_eq!(d.hops, 1);
        assert_eq!(d.hwaddr(), PERF_CHADDR);
        let ra = d.options.relay_agent().unwrap();
        assert_eq!(ra.circuit_id(), Some(&b"eth0/1/7"[..]));
        assert_eq!(
            ra.remote_id(),
            Some(&[0x02, 0x00, 0xde, 0xad, 0xbe, 0xef][..])
        );
        assert_eq!(ra.link_selection(), None);
        assert_eq!(ra.raw().len(), 18);
        assert_eq!(ra.raw()[..2], [1, 8]);
    }
    let r = parse(fixtures::PERFDHCP_REQUEST).unwrap();
    assert_eq!(
        r.options.requested_ip(),
        Some(Ipv4Addr::new(10, 250, 0, 171))
    );
    assert_eq!(r.options.server_id(), Some(Ipv4Addr::new(10, 250, 0, 1)));
    for frame in [
        fixtures::PERFDHCP_PLAIN_DISCOVER,
        fixtures::PERFDHCP_PLAIN_REQUEST,
    ] {
        let d = parse(frame).unwrap();
        assert!(d.options.relay_agent().is_none());
        assert_eq!(d.giaddr, Ipv4Addr::new(10, 250, 0, 2));
        let mut cid = vec![1];
        cid.extend_from_slice(&PERF_CHADDR);
        assert_eq!(contiguous(d.options.client_id()), Some(&cid[..]));
    }
}

#[test]
fn fixture_server_replies_are_not_served() {
    // dnsmasq's replies to clients go to port 68; the ones to a relay go to 67 but are BOOTREPLY.
    assert_eq!(
        parse(fixtures::DNSMASQ_OFFER).unwrap_err(),
        DropReason::NotDhcpPort
    );
    assert_eq!(
        parse(fixtures::DNSMASQ_ACK).unwrap_err(),
        DropReason::NotDhcpPort
    );
    assert_eq!(
        parse(fixtures::DNSMASQ_OFFER_RELAYED).unwrap_err(),
        DropReason::NotBootRequest
    );
    assert_eq!(
        parse(fixtures::DNSMASQ_ACK_RELAYED).unwrap_err(),
        DropReason::NotBootRequest
    );
}

/// dhcproto's owned decoder (fed only these trusted fixtures) agrees with us on every field and
/// on every option it knows the wire form of.
#[test]
fn fixtures_agree_with_dhcproto() {
    for (name, frame) in fixtures::REQUESTS {
        let req = parse(frame).unwrap();
        exercise(&req);
        let off = testutil::bootp_offset(frame).unwrap();
        let m = v4::Message::decode(&mut Decoder::new(&frame[off..])).unwrap();
        assert_eq!(m.xid(), req.xid, "{name}");
        assert_eq!(m.chaddr(), req.hwaddr(), "{name}");
        assert_eq!(m.giaddr(), req.giaddr, "{name}");
        assert_eq!(m.ciaddr(), req.ciaddr, "{name}");
        assert_eq!(u16::from(m.flags()), req.flags, "{name}");
        assert_eq!(m.secs(), req.secs, "{name}");
        assert_eq!(m.hops(), req.hops, "{name}");
        for (code, opt) in m.opts().iter() {
            // re-encode dhcproto's view of the option and compare the value bytes with ours
            let mut enc = Vec::new();
            opt.encode(&mut dhcproto::Encoder::new(&mut enc)).unwrap();
            let ours = req.options.get(u8::from(*code)).expect(name);
            assert_eq!(
                ours.bytes().collect::<Vec<_>>(),
                enc[2..],
                "{name} option {code:?}"
            );
        }
        let ours = (1..255u8).filter(|c| req.options.get(*c).is_some()).count();
        assert_eq!(ours, m.opts().len(), "{name}");
    }
}

#[test]
fn fixtures_with_vlan_tags() {
    let stacks: [&[VlanTag]; 5] = [
        &[VlanTag::c_tag(100)],
        &[VlanTag::s_tag(200)],
        &[VlanTag::s_tag(200), VlanTag::c_tag(300)],
        &[VlanTag::c_tag(200), VlanTag::c_tag(4095)],
        &[
            VlanTag {
                tpid: TPID_8021AD,
                tci: 0xa00b,
            },
            VlanTag {
                tpid: TPID_8021Q,
                tci: 0x2001,
            },
        ],
    ];
    for (name, frame) in fixtures::REQUESTS {
        let plain = parse(frame).unwrap();
        for tags in stacks {
            let tagged = testutil::with_vlans(frame, tags);
            let req = parse(&tagged).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(req.l2.vlans(), tags);
            assert_eq!(req.xid, plain.xid);
            assert_eq!(req.options.message_type(), plain.options.message_type());
            assert_eq!(req.options.requested_ip(), plain.options.requested_ip());
            assert_eq!(req.l2.outer_vid(), Some(tags[0].vid()));
            assert_eq!(req.l2.inner_vid(), tags.get(1).map(VlanTag::vid));
        }
        let three = testutil::with_vlans(
            frame,
            &[VlanTag::s_tag(1), VlanTag::c_tag(2), VlanTag::c_tag(3)],
        );
        assert_eq!(parse(&three).unwrap_err(), DropReason::TooManyVlans);
    }
}

#[test]
fn ethernet_padding_is_ignored() {
    for (_, frame) in fixtures::REQUESTS {
        let mut padded = frame.to_vec();
        padded.extend_from_slice(&[0xee; 46]);
        let a = parse(frame).unwrap();
        let b = parse(&padded).unwrap();
        assert_eq!(a.xid, b.xid);
        assert_eq!(
            a.options.client_id().map(|r| r.len()),
            b.options.client_id().map(|r| r.len())
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness.

#[test]
fn every_truncation_is_an_error() {
    for (name, frame) in fixtures::REQUESTS {
        for n in 0..frame.len() {
            let r = parse(&frame[..n]);
            let e = r.expect_err(name);
            if n < 14 {
                assert_eq!(e, DropReason::EthTruncated);
            } else if n < 34 {
                assert_eq!(e, DropReason::Ipv4Malformed, "{name} at {n}");
            } else {
                assert_eq!(e, DropReason::Ipv4BadLength, "{name} at {n}");
            }
        }
    }
}

/// Truncation of the BOOTP message itself (lengths fixed up so the lower layers pass): every
/// cut inside the fixed header is BootpTruncated, and no cut panics.
#[test]
fn every_bootp_truncation_is_handled() {
    for (name, frame) in fixtures::REQUESTS {
        let off = testutil::bootp_offset(frame).unwrap();
        for n in off..frame.len() {
            let spec = FrameSpec {
                eth_src: CLIENT_MAC,
                ..FrameSpec::default()
            };
            let f = testutil::frame(&spec, &frame[off..n]);
            match parse(&f) {
                Ok(req) => exercise(&req),
                Err(e) if n - off < 240 => assert_eq!(e, DropReason::BootpTruncated, "{name}"),
                Err(_) => {}
            }
        }
    }
}

/// `parse_into` writes into a record that may hold an earlier request (a worker's batch
/// slot): it must leave exactly what `parse` returns, never a stale field or option. Checked on
/// every fixture after every other one, and on corrupted and truncated copies (errors after
/// the BOOTP header, where the request is already partly written, included).
#[test]
fn parse_into_overwrites_the_previous_request() {
    let same = |a: &Result<Request<'_>, DropReason>, b: &Result<Request<'_>, DropReason>| {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    };
    let mut frames: Vec<Vec<u8>> = fixtures::REQUESTS.iter().map(|(_, f)| f.to_vec()).collect();
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    for (_, frame) in fixtures::REQUESTS {
        for i in 0..200 {
            let mut f = frame.to_vec();
            let at = 282 + rng.below(f.len() - 282);
            f[at] ^= 1 << rng.below(8);
            if i % 3 == 0 {
                f.truncate(f.len() - rng.below(40));
            }
            testutil::refix_checksums(&mut f);
            frames.push(f);
        }
    }
    let mut out = parse(fixtures::REQUESTS[0].1);
    assert!(out.is_ok());
    let (mut ok, mut err) = (0, 0);
    for f in &frames {
        parse_into(f, &mut out);
        same(&out, &parse(f));
        if let Ok(req) = &out {
            exercise(req);
            ok += 1;
        } else {
            err += 1;
            // Back to a request, so that the next error overwrites one.
            parse_into(fixtures::REQUESTS[1].1, &mut out);
            assert!(out.is_ok());
        }
    }
    assert!(ok > 100 && err > 100, "ok {ok} err {err}");
}

#[test]
fn random_byte_flips_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut ok, mut err) = (0, 0);
    for (_, frame) in fixtures::REQUESTS {
        for i in 0..3000 {
            let mut f = frame.to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(f.len());
                f[at] ^= 1 << rng.below(8);
            }
            // Half the time fix the checksums so the corruption reaches the DHCP layer.
            if i % 2 == 0 {
                testutil::refix_checksums(&mut f);
            }
            match parse(&f) {
                Ok(req) => {
                    exercise(&req);
                    ok += 1;
                }
                Err(e) => {
                    assert!((e as usize) < DropReason::COUNT);
                    err += 1;
                }
            }
        }
    }
    // Both outcomes must occur, or the corruption is not reaching the parser.
    assert!(ok > 1000 && err > 1000, "ok {ok} err {err}");
}

/// Random option bytes behind a valid header: every outcome is an Ok that passes `exercise`
/// or a drop reason from the option layer.
#[test]
fn random_options_never_panic() {
    let mut rng = Rng(42);
    let option_reasons = [
        DropReason::OptionTruncated,
        DropReason::BadOverload,
        DropReason::OptionsUnterminated,
        DropReason::NoMessageType,
        DropReason::BadOptionLength,
    ];
    let mut ok = 0;
    for _ in 0..20_000 {
        let len = rng.below(80);
        let mut opts: Vec<u8> = (0..len)
            .map(|_| match rng.below(10) {
                0 => 53,
                1 => 52,
                2 => 0,
                3 => 255,
                4 => 1 + rng.below(3) as u8,
                _ => rng.next_u64() as u8,
            })
            .collect();
        if rng.below(2) == 0 {
            opts.splice(0..0, [53, 1, 1]);
        }
        let mut sname = [0u8; 64];
        let mut file = [0u8; 128];
        for b in sname.iter_mut().chain(file.iter_mut()).take(rng.below(192)) {
            *b = rng.next_u64() as u8;
        }
        let f = testutil::frame(
            &FrameSpec::default(),
            &testutil::bootp(&sname, &file, &opts),
        );
        match parse(&f) {
            Ok(req) => {
                exercise(&req);
                ok += 1;
            }
            Err(e) => assert!(option_reasons.contains(&e), "{e:?}"),
        }
    }
    assert!(ok > 100, "only {ok} parsed");
}

// ---------------------------------------------------------------------------------------------
// One crafted frame per drop reason.

/// A mutation of the dhclient DISCOVER fixture and the reason it must produce.
struct Case {
    name: &'static str,
    frame: Vec<u8>,
    want: DropReason,
}

fn mutated(edit: impl FnOnce(&mut Vec<u8>), refix: bool) -> Vec<u8> {
    let mut f = fixtures::DHCLIENT_DISCOVER.to_vec();
    edit(&mut f);
    if refix {
        testutil::refix_checksums(&mut f);
    }
    f
}

/// dhclient DISCOVER with its options field replaced.
fn with_options(options: &[u8], sname: &[u8], file: &[u8]) -> Vec<u8> {
    let spec = FrameSpec {
        eth_src: CLIENT_MAC,
        ..FrameSpec::default()
    };
    testutil::frame(&spec, &testutil::bootp(sname, file, options))
}

fn cases() -> Vec<Case> {
    const IP: usize = 14;
    const UDP: usize = 34;
    const BOOTP: usize = 42;
    vec![
        Case {
            name: "13 bytes",
            frame: fixtures::DHCLIENT_DISCOVER[..13].to_vec(),
            want: DropReason::EthTruncated,
        },
        Case {
            name: "arp",
            frame: mutated(|f| f[12..14].copy_from_slice(&[0x08, 0x06]), false),
            want: DropReason::NotIpv4,
        },
        Case {
            name: "ipv6",
            frame: mutated(|f| f[12..14].copy_from_slice(&[0x86, 0xdd]), false),
            want: DropReason::NotIpv4,
        },
        Case {
            name: "three tags",
            frame: testutil::with_vlans(
                fixtures::DHCLIENT_DISCOVER,
                &[VlanTag::s_tag(1), VlanTag::c_tag(2), VlanTag::c_tag(3)],
            ),
            want: DropReason::TooManyVlans,
        },
        Case {
            name: "version 6",
            frame: mutated(|f| f[IP] = 0x65, true),
            want: DropReason::Ipv4Malformed,
        },
        Case {
            name: "ihl 4",
            frame: mutated(|f| f[IP] = 0x44, true),
            want: DropReason::Ipv4Malformed,
        },
        Case {
            name: "ip header cut",
            frame: fixtures::DHCLIENT_DISCOVER[..30].to_vec(),
            want: DropReason::Ipv4Malformed,
        },
        Case {
            name: "total length past frame",
            frame: mutated(|f| f.truncate(f.len() - 1), false),
            want: DropReason::Ipv4BadLength,
        },
        Case {
            name: "total length below header",
            frame: mutated(|f| f[IP + 2..IP + 4].copy_from_slice(&[0, 16]), false),
            want: DropReason::Ipv4BadLength,
        },
        Case {
            name: "ip checksum",
            frame: mutated(|f| f[IP + 8] = 1, false),
            want: DropReason::Ipv4BadChecksum,
        },
        Case {
            name: "more fragments",
            frame: mutated(|f| f[IP + 6] = 0x20, true),
            want: DropReason::Ipv4Fragment,
        },
        Case {
            name: "fragment offset",
            frame: mutated(|f| f[IP + 7] = 0x10, true),
            want: DropReason::Ipv4Fragment,
        },
        Case {
            name: "tcp",
            frame: mutated(|f| f[IP + 9] = 6, true),
            want: DropReason::NotUdp,
        },
        Case {
            name: "udp length past ip payload",
            frame: mutated(
                |f| {
                    let l = u16::from_be_bytes([f[UDP + 4], f[UDP + 5]]) + 1;
                    f[UDP + 4..UDP + 6].copy_from_slice(&l.to_be_bytes());
                },
                false,
            ),
            want: DropReason::UdpBadLength,
        },
        Case {
            name: "udp length 7",
            frame: mutated(|f| f[UDP + 4..UDP + 6].copy_from_slice(&[0, 7]), false),
            want: DropReason::UdpBadLength,
        },
        Case {
            name: "udp checksum",
            frame: mutated(|f| f[BOOTP + 100] ^= 0x10, false),
            want: DropReason::UdpBadChecksum,
        },
        Case {
            name: "dst port 68",
            frame: mutated(|f| f[UDP + 3] = 68, true),
            want: DropReason::NotDhcpPort,
        },
        Case {
            name: "bootp 239 bytes",
            frame: testutil::frame(
                &FrameSpec::default(),
                &fixtures::DHCLIENT_DISCOVER[BOOTP..BOOTP + 239],
            ),
            want: DropReason::BootpTruncated,
        },
        Case {
            name: "op 2",
            frame: mutated(|f| f[BOOTP] = 2, true),
            want: DropReason::NotBootRequest,
        },
        Case {
            name: "op 0",
            frame: mutated(|f| f[BOOTP] = 0, true),
            want: DropReason::NotBootRequest,
        },
        Case {
            name: "hlen 17",
            frame: mutated(
                |f| {
                    f[BOOTP + 1] = 6;
                    f[BOOTP + 2] = 17
                },
                true,
            ),
            want: DropReason::BadHlen,
        },
        Case {
            name: "hlen 255",
            frame: mutated(|f| f[BOOTP + 2] = 255, true),
            want: DropReason::BadHlen,
        },
        Case {
            name: "ethernet hlen 7",
            frame: mutated(|f| f[BOOTP + 2] = 7, true),
            want: DropReason::BadHlen,
        },
        Case {
            name: "cookie",
            frame: mutated(|f| f[BOOTP + 239] = 0x64, true),
            want: DropReason::BadCookie,
        },
        Case {
            name: "option past end",
            frame: with_options(&[53, 1, 1, 12, 20, b'a'], &[], &[]),
            want: DropReason::OptionTruncated,
        },
        Case {
            name: "52 in file",
            frame: with_options(&[53, 1, 1, 52, 1, 1, 255], &[], &[52, 1, 1, 255]),
            want: DropReason::BadOverload,
        },
        Case {
            name: "52 = 7",
            frame: with_options(&[53, 1, 1, 52, 1, 7, 255], &[], &[]),
            want: DropReason::BadOverload,
        },
        Case {
            name: "file without END",
            frame: with_options(&[53, 1, 1, 52, 1, 1, 255], &[], &[12, 1, b'x']),
            want: DropReason::OptionsUnterminated,
        },
        Case {
            name: "plain BOOTP",
            frame: with_options(&[1, 4, 255, 255, 255, 0, 255], &[], &[]),
            want: DropReason::NoMessageType,
        },
        Case {
            name: "53 length 2",
            frame: with_options(&[53, 2, 1, 1, 255], &[], &[]),
            want: DropReason::BadOptionLength,
        },
        Case {
            name: "50 length 3",
            frame: with_options(&[53, 1, 3, 50, 3, 1, 2, 3, 255], &[], &[]),
            want: DropReason::BadOptionLength,
        },
    ]
}

#[test]
fn every_drop_reason_has_a_crafted_frame() {
    let mut seen = HashSet::new();
    for c in cases() {
        assert_eq!(
            parse(&c.frame).map(|r| r.xid).unwrap_err(),
            c.want,
            "{}",
            c.name
        );
        seen.insert(c.want);
    }
    // every reason the wire layer can return (all before the decision-layer ones)
    let wire_reasons = (0..=DropReason::BadOptionLength as u8).count();
    assert_eq!(seen.len(), wire_reasons);
}

// ---------------------------------------------------------------------------------------------
// Round trips with dhcproto.

fn dhcproto_frame(m: &v4::Message, spec: &FrameSpec) -> Vec<u8> {
    let bytes = m.to_vec().unwrap();
    testutil::frame(spec, &bytes)
}

#[test]
fn dhcproto_built_requests_parse() {
    let chaddr = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let mut m = v4::Message::new_with_id(
        0xdead_beef,
        Ipv4Addr::new(10, 1, 1, 9),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(10, 1, 0, 1),
        &chaddr,
    );
    m.set_flags(v4::Flags::default().set_broadcast());
    m.set_hops(2);
    m.set_secs(7);
    let long_vendor: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
    let mut ra = relay::RelayAgentInformation::default();
    ra.insert(relay::RelayInfo::AgentCircuitId(b"ae0.1234:7".to_vec()));
    ra.insert(relay::RelayInfo::AgentRemoteId(vec![9, 8, 7]));
    ra.insert(relay::RelayInfo::LinkSelection(Ipv4Addr::new(
        100, 64, 3, 0,
    )));
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(v4::MessageType::Request));
    o.insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 1, 1, 9)));
    o.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 1, 0, 254)));
    o.insert(DhcpOption::AddressLeaseTime(86_400));
    o.insert(DhcpOption::MaxMessageSize(1500));
    o.insert(DhcpOption::SubnetSelection(Ipv4Addr::new(10, 1, 0, 0)));
    o.insert(DhcpOption::ClientIdentifier(vec![
        0xff, 1, 2, 3, 4, 5, 6, 7, 8,
    ]));
    o.insert(DhcpOption::Hostname("cpe-12".into()));
    o.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::ClasslessStaticRoute,
    ]));
    // > 255 bytes: dhcproto writes three consecutive instances (RFC 3396)
    o.insert(DhcpOption::Unknown(v4::UnknownOption::new(
        OptionCode::Unknown(224),
        long_vendor.clone(),
    )));
    o.insert(DhcpOption::RelayAgentInformation(ra));
    let spec = FrameSpec {
        vlans: vec![VlanTag::s_tag(10), VlanTag::c_tag(20)],
        ip_src: Ipv4Addr::new(10, 1, 0, 1),
        ip_dst: Ipv4Addr::new(10, 0, 0, 67),
        sport: 67,
        ..FrameSpec::default()
    };
    let f = dhcproto_frame(&m, &spec);
    let r = parse(&f).unwrap();
    exercise(&r);
    assert_eq!(r.xid, 0xdead_beef);
    assert!(r.broadcast_flag());
    assert_eq!((r.hops, r.secs), (2, 7));
    assert_eq!(r.hwaddr(), chaddr);
    assert_eq!(r.ciaddr, Ipv4Addr::new(10, 1, 1, 9));
    assert_eq!(r.giaddr, Ipv4Addr::new(10, 1, 0, 1));
    assert_eq!(r.l2.outer_vid(), Some(10));
    assert_eq!(r.l2.inner_vid(), Some(20));
    let o = &r.options;
    assert_eq!(o.message_type(), MessageType::Request);
    assert_eq!(o.requested_ip(), Some(Ipv4Addr::new(10, 1, 1, 9)));
    assert_eq!(o.server_id(), Some(Ipv4Addr::new(10, 1, 0, 254)));
    assert_eq!(o.lease_time(), Some(86_400));
    assert_eq!(o.max_message_size(), Some(1500));
    assert_eq!(o.subnet_selection(), Some(Ipv4Addr::new(10, 1, 0, 0)));
    assert!(
        o.client_id()
            .unwrap()
            .eq_slice(&[0xff, 1, 2, 3, 4, 5, 6, 7, 8])
    );
    assert_eq!(contiguous(o.hostname()), Some(&b"cpe-12"[..]));
    assert_eq!(prl(&r), [1, 3, 6, 121]);
    let v = o.get(224).unwrap();
    assert_eq!(v.fragment_count(), 3);
    assert_eq!(v.bytes().collect::<Vec<_>>(), long_vendor);
    let ra = o.relay_agent().unwrap();
    assert_eq!(ra.circuit_id(), Some(&b"ae0.1234:7"[..]));
    assert_eq!(ra.remote_id(), Some(&[9, 8, 7][..]));
    assert_eq!(ra.link_selection(), Some(Ipv4Addr::new(100, 64, 3, 0)));
}

#[test]
fn dhcproto_message_types() {
    for t in [
        v4::MessageType::Discover,
        v4::MessageType::Request,
        v4::MessageType::Decline,
        v4::MessageType::Release,
        v4::MessageType::Inform,
        v4::MessageType::LeaseQuery,
    ] {
        let mut m = v4::Message::new_with_id(
            1,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &CLIENT_MAC,
        );
        m.opts_mut().insert(DhcpOption::MessageType(t));
        let f = dhcproto_frame(&m, &FrameSpec::default());
        let r = parse(&f).unwrap();
        assert_eq!(u8::from(r.options.message_type()), u8::from(t));
    }
}

// ---------------------------------------------------------------------------------------------
// Emit.

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);

fn headers(vlans: VlanTags) -> ReplyHeaders {
    ReplyHeaders {
        eth_dst: CLIENT_MAC,
        eth_src: SERVER_MAC,
        vlans,
        ip_src: SERVER_IP,
        ip_dst: Ipv4Addr::new(10, 250, 0, 104),
        udp_src: SERVER_PORT,
        udp_dst: CLIENT_PORT,
        ttl: DEFAULT_TTL,
    }
}

/// Write a typical OFFER for the udhcpc DISCOVER fixture.
fn write_offer(buf: &mut [u8], vlans: VlanTags, routers: &[Ipv4Addr]) -> Result<usize, EmitError> {
    let req = parse(fixtures::UDHCPC_DISCOVER).unwrap();
    let mut w = ReplyWriter::new(buf, &headers(vlans))?;
    w.bootp(&BootpReply {
        yiaddr: Ipv4Addr::new(10, 250, 0, 104),
        siaddr: SERVER_IP,
        sname: b"xdhcp",
        file: b"pxelinux.0",
        ..BootpReply::for_request(&req)
    })?;
    w.option_u8(opt::MESSAGE_TYPE, MessageType::Offer.into())?;
    w.option_ipv4(opt::SERVER_ID, SERVER_IP)?;
    w.option_u32(opt::LEASE_TIME, 3600)?;
    w.option_u32(opt::RENEWAL_TIME, 1800)?;
    w.option_u32(opt::REBINDING_TIME, 3150)?;
    w.option_ipv4(opt::SUBNET_MASK, Ipv4Addr::new(255, 255, 255, 0))?;
    w.option_ipv4_list(opt::ROUTER, routers)?;
    w.option_u16(opt::INTERFACE_MTU, 1500)?;
    w.option(opt::DOMAIN_NAME, b"example.net")?;
    w.finish()
}

/// Independent checks of a finished frame: lengths and both checksums.
fn check_frame(f: &[u8], l2_len: usize) {
    let ip = &f[l2_len..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_eq!(total, ip.len(), "IPv4 total length");
    assert_eq!(inet_checksum(&[&ip[..20]]), 0, "IPv4 header checksum");
    let udp = &ip[20..];
    assert_eq!(
        usize::from(u16::from_be_bytes([udp[4], udp[5]])),
        udp.len(),
        "UDP length"
    );
    assert_ne!(&udp[6..8], &[0, 0], "UDP checksum present");
    let len = (udp.len() as u16).to_be_bytes();
    assert_eq!(
        inet_checksum(&[&ip[12..20], &[0, 17], &len, udp]),
        0,
        "UDP checksum"
    );
    assert!(udp.len() - 8 >= MIN_BOOTP_LEN);
}

#[test]
fn emitted_offer_decodes_with_dhcproto() {
    let routers = [Ipv4Addr::new(10, 250, 0, 1), Ipv4Addr::new(10, 250, 0, 2)];
    let mut buf = [0xa5u8; 1500];
    let n = write_offer(&mut buf, VlanTags::NONE, &routers).unwrap();
    let f = &buf[..n];
    check_frame(f, 14);
    assert_eq!(&f[..6], &CLIENT_MAC);
    assert_eq!(&f[6..12], &SERVER_MAC);
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    let m = v4::Message::decode(&mut Decoder::new(&f[42..])).unwrap();
    assert_eq!(m.opcode(), v4::Opcode::BootReply);
    assert_eq!(m.xid(), 0x8e72_0d72);
    assert_eq!(m.chaddr(), &CLIENT_MAC);
    assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 250, 0, 104));
    assert_eq!(m.siaddr(), SERVER_IP);
    // dhcproto returns the names with their terminating NUL (and None without one)
    assert_eq!(m.sname(), Some(&b"xdhcp\0"[..]));
    assert_eq!(m.fname(), Some(&b"pxelinux.0\0"[..]));
    assert_eq!(m.hops(), 0);
    let o = m.opts();
    assert_eq!(o.msg_type(), Some(v4::MessageType::Offer));
    assert_eq!(
        o.get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER_IP))
    );
    assert_eq!(
        o.get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(3600))
    );
    assert_eq!(o.get(OptionCode::Renewal), Some(&DhcpOption::Renewal(1800)));
    assert_eq!(
        o.get(OptionCode::Rebinding),
        Some(&DhcpOption::Rebinding(3150))
    );
    assert_eq!(
        o.get(OptionCode::Router),
        Some(&DhcpOption::Router(routers.to_vec()))
    );
    assert_eq!(
        o.get(OptionCode::InterfaceMtu),
        Some(&DhcpOption::InterfaceMtu(1500))
    );
    assert_eq!(
        o.get(OptionCode::DomainName),
        Some(&DhcpOption::DomainName("example.net".into()))
    );
    // 240 fixed + 60 bytes of options + END: just over the 300-byte minimum, no padding
    assert_eq!(n, 42 + 301);
    assert_eq!(f[n - 1], 255);
}

#[test]
fn emit_pads_to_bootp_minimum() {
    let mut buf = [0xa5u8; 600];
    let mut w = ReplyWriter::new(&mut buf, &headers(VlanTags::NONE)).unwrap();
    w.option_u8(opt::MESSAGE_TYPE, 6).unwrap();
    let n = w.finish().unwrap();
    assert_eq!(n, 42 + MIN_BOOTP_LEN);
    let f = &buf[..n];
    check_frame(f, 14);
    assert_eq!(&f[42 + 240..42 + 244], &[53, 1, 6, 255]);
    // the old buffer contents are gone: the rest is PAD, and the unset fixed fields are zero
    assert!(f[42 + 244..].iter().all(|&b| b == 0));
    assert_eq!(f[42], 2);
    assert!(f[43..42 + 236].iter().all(|&b| b == 0));
    assert_eq!(&f[42 + 236..42 + 240], &MAGIC_COOKIE);
    assert!(
        buf[n..].iter().all(|&b| b == 0xa5),
        "nothing written past the frame"
    );
}

#[test]
fn emitted_reply_keeps_vlan_tags() {
    for (name, frame) in fixtures::REQUESTS {
        let tagged = testutil::with_vlans(
            frame,
            &[
                VlanTag::s_tag(1001),
                VlanTag {
                    tpid: TPID_8021Q,
                    tci: 0x6000 | 77,
                },
            ],
        );
        let req = parse(&tagged).unwrap();
        let mut buf = [0u8; 1500];
        let n = write_offer(&mut buf, req.l2.vlan_tags(), &[SERVER_IP]).unwrap();
        let f = &buf[..n];
        assert_eq!(
            &f[12..22],
            &[0x88, 0xa8, 0x03, 0xe9, 0x81, 0x00, 0x60, 77, 0x08, 0x00],
            "{name}"
        );
        check_frame(f, 22);
        // our own parser sees the same stack (it refuses the BOOTREPLY itself)
        let (l2, _) = ether::parse(f).unwrap();
        assert_eq!(l2.vlans(), req.l2.vlans());
        let m = v4::Message::decode(&mut Decoder::new(&f[50..])).unwrap();
        assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Offer));
    }
}

/// A reply turned back into a request (op flipped, ports swapped) parses with our parser to
/// the same values: emit and parse agree with each other, not only with dhcproto.
#[test]
fn emit_then_parse_round_trip() {
    let mut buf = [0u8; 1500];
    let long: Vec<u8> = (0..=255u8).chain(0..=99).collect(); // 356 bytes -> 2 instances
    let many: Vec<Ipv4Addr> = (0..70u8).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect(); // 280 bytes
    let h = ReplyHeaders {
        udp_dst: SERVER_PORT,
        ..headers(VlanTags::new(&[VlanTag::c_tag(5)]).unwrap())
    };
    let mut w = ReplyWriter::new(&mut buf, &h).unwrap();
    w.limit(1500);
    w.bootp(&BootpReply {
        htype: 1,
        hlen: 6,
        hops: 0,
        xid: 77,
        secs: 3,
        flags: 0x8000,
        ciaddr: Ipv4Addr::new(1, 2, 3, 4),
        yiaddr: Ipv4Addr::new(5, 6, 7, 8),
        siaddr: Ipv4Addr::new(9, 10, 11, 12),
        giaddr: Ipv4Addr::new(13, 14, 15, 16),
        chaddr: [7; 16],
        sname: &[],
        file: &[],
    })
    .unwrap();
    w.option_u8(opt::MESSAGE_TYPE, 1).unwrap();
    w.option(224, &long).unwrap();
    w.option_ipv4_list(opt::DOMAIN_NAME_SERVER, &many).unwrap();
    w.option(opt::RAPID_COMMIT, &[]).unwrap();
    w.option(opt::PAD, b"ignored").unwrap();
    w.option(opt::END, b"ignored").unwrap();
    let n = w.finish().unwrap();
    let f = &mut buf[..n];
    check_frame(f, 18);
    f[18 + 28] = 1; // op = BOOTREQUEST
    f[18 + 28 + 2] = 6;
    testutil::refix_checksums(f);
    let r = parse(f).unwrap();
    exercise(&r);
    assert_eq!((r.xid, r.secs, r.flags), (77, 3, 0x8000));
    assert_eq!(r.ciaddr, Ipv4Addr::new(1, 2, 3, 4));
    assert_eq!(r.yiaddr, Ipv4Addr::new(5, 6, 7, 8));
    assert_eq!(r.siaddr, Ipv4Addr::new(9, 10, 11, 12));
    assert_eq!(r.giaddr, Ipv4Addr::new(13, 14, 15, 16));
    assert_eq!(r.l2.vlans(), &[VlanTag::c_tag(5)]);
    let l = r.options.get(224).unwrap();
    assert_eq!(l.fragment_count(), 2);
    assert_eq!(l.bytes().collect::<Vec<_>>(), long);
    let d = r.options.get(opt::DOMAIN_NAME_SERVER).unwrap();
    assert_eq!(d.fragment_count(), 2);
    let addrs: Vec<u8> = many.iter().flat_map(|a| a.octets()).collect();
    assert_eq!(d.bytes().collect::<Vec<_>>(), addrs);
    assert!(r.options.get(opt::RAPID_COMMIT).unwrap().is_empty());
    // dhcproto joins the consecutive instances back too
    let m = v4::Message::decode(&mut Decoder::new(&buf[18 + 28..n])).unwrap();
    assert_eq!(
        m.opts().get(OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(many))
    );
}

#[test]
fn emit_honours_max_message_size() {
    for (mms, want_max) in [
        (None, 576),
        (Some(0u16), 576),
        (Some(576), 576),
        (Some(1000), 1000),
        (Some(1472), 1472),
    ] {
        let mut buf = [0u8; 2000];
        let mut w = ReplyWriter::new(&mut buf, &headers(VlanTags::NONE)).unwrap();
        if let Some(m) = mms {
            w.limit(m);
        }
        w.option_u8(opt::MESSAGE_TYPE, 2).unwrap();
        // fill with 10-byte options until the limit refuses
        let mut written = 0;
        while w.option(200, &[0xab; 8]).is_ok() {
            written += 1;
            assert!(written < 1000);
        }
        assert!(w.remaining() < 10);
        // a smaller option may still fit
        let rem = w.remaining();
        if rem >= 2 {
            w.option(201, &vec![1; rem - 2]).unwrap();
        }
        assert_eq!(w.remaining(), 0);
        assert_eq!(w.option(202, &[]), Err(EmitError::NoRoom));
        let n = w.finish().unwrap();
        let datagram = n - 14;
        assert_eq!(datagram, want_max, "{mms:?}");
        check_frame(&buf[..n], 14);
    }
}

#[test]
fn encoded_options_are_written_like_option() {
    // Lengths around the RFC 3396 split points, written both ways into identical writers.
    for len in [0usize, 1, 4, 254, 255, 256, 510, 511, 700] {
        let value: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut a = [0u8; 2000];
        let mut b = [0u8; 2000];
        let mut wa = ReplyWriter::new(&mut a, &headers(VlanTags::NONE)).unwrap();
        let mut wb = ReplyWriter::new(&mut b, &headers(VlanTags::NONE)).unwrap();
        wa.limit(1500);
        wb.limit(1500);
        let mut enc = Vec::new();
        encode_option(&mut enc, 119, &value);
        assert_eq!(enc.len(), 2 * len.div_ceil(255).max(1) + len, "{len}");
        wa.option(119, &value).unwrap();
        wb.option_encoded(&enc).unwrap();
        assert_eq!(wa.remaining(), wb.remaining(), "{len}");
        let (na, nb) = (wa.finish().unwrap(), wb.finish().unwrap());
        assert_eq!(a[..na], b[..nb], "{len}");
    }
    // PAD and END are framing, not options: nothing is encoded.
    let mut enc = Vec::new();
    encode_option(&mut enc, opt::PAD, &[1]);
    encode_option(&mut enc, opt::END, &[1]);
    assert!(enc.is_empty());
    // Too big for what is left: refused whole, nothing written.
    let mut buf = [0u8; 2000];
    let mut w = ReplyWriter::new(&mut buf, &headers(VlanTags::NONE)).unwrap();
    let before = w.remaining();
    let encoded = |len: usize| {
        let mut e = Vec::new();
        encode_option(&mut e, 200, &vec![7; len]);
        e
    };
    let fits = (0..before)
        .rev()
        .find(|&len| encoded(len).len() <= before)
        .unwrap();
    assert!(encoded(fits + 1).len() > before);
    assert_eq!(w.option_encoded(&encoded(fits + 1)), Err(EmitError::NoRoom));
    assert_eq!(w.remaining(), before);
    w.option_encoded(&encoded(fits)).unwrap();
    assert_eq!(w.remaining(), before - encoded(fits).len());
}

#[test]
fn emit_limit_set_after_options_is_enforced() {
    let mut buf = [0u8; 2000];
    let mut w = ReplyWriter::new(&mut buf, &headers(VlanTags::NONE)).unwrap();
    w.limit(1500);
    w.option(200, &[0; 255]).unwrap();
    w.option(200, &[0; 255]).unwrap();
    w.limit(576);
    assert_eq!(w.finish(), Err(EmitError::NoRoom));
}

#[test]
fn emit_rejects_long_names() {
    let mut buf = [0u8; 600];
    let req = parse(fixtures::DHCLIENT_DISCOVER).unwrap();
    let mut w = ReplyWriter::new(&mut buf, &headers(VlanTags::NONE)).unwrap();
    let base = BootpReply::for_request(&req);
    assert_eq!(
        w.bootp(&BootpReply {
            sname: &[b'a'; 64],
            ..base
        }),
        Err(EmitError::NoRoom)
    );
    assert_eq!(
        w.bootp(&BootpReply {
            file: &[b'a'; 128],
            ..base
        }),
        Err(EmitError::NoRoom)
    );
    assert!(
        w.bootp(&BootpReply {
            sname: &[b'a'; 63],
            file: &[b'b'; 127],
            ..base
        })
        .is_ok()
    );
}

/// Every buffer shorter than the reply gives NoRoom (never a panic or a short frame); every
/// buffer at least as long gives the identical frame.
#[test]
fn emit_on_every_buffer_size() {
    let routers: Vec<Ipv4Addr> = (1..=4).map(|i| Ipv4Addr::new(10, 250, 0, i)).collect();
    for vlans in [
        VlanTags::NONE,
        VlanTags::new(&[VlanTag::s_tag(1), VlanTag::c_tag(2)]).unwrap(),
    ] {
        let mut reference = vec![0u8; 1500];
        let n = write_offer(&mut reference, vlans, &routers).unwrap();
        reference.truncate(n);
        for size in 0..n + 64 {
            let mut buf = vec![0x5au8; size];
            match write_offer(&mut buf, vlans, &routers) {
                Ok(len) => {
                    assert!(size >= n, "size {size}");
                    assert_eq!(&buf[..len], &reference[..], "size {size}");
                }
                Err(e) => {
                    assert_eq!(e, EmitError::NoRoom);
                    assert!(size < n, "size {size} should fit {n}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests.

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            if let Ok(r) = parse(&bytes) {
                exercise(&r);
            }
        }

        #[test]
        fn arbitrary_options_never_panic(
            opts in proptest::collection::vec(any::<u8>(), 0..400),
            sname in proptest::collection::vec(any::<u8>(), 0..=64),
            file in proptest::collection::vec(any::<u8>(), 0..=128),
            tags in 0usize..3,
        ) {
            let spec = FrameSpec {
                vlans: [VlanTag::s_tag(3), VlanTag::c_tag(4)][..tags].to_vec(),
                ..FrameSpec::default()
            };
            let mut o = vec![53, 1, 1];
            o.extend_from_slice(&opts);
            let f = testutil::frame(&spec, &testutil::bootp(&sname, &file, &o));
            if let Ok(r) = parse(&f) {
                exercise(&r);
                prop_assert_eq!(r.l2.vlans().len(), tags);
            }
        }

        #[test]
        fn emitted_options_round_trip(
            values in proptest::collection::vec((1u8..=254, proptest::collection::vec(any::<u8>(), 0..600)), 0..6),
        ) {
            let mut buf = vec![0u8; 9000];
            let h = ReplyHeaders { udp_dst: SERVER_PORT, ..headers(VlanTags::NONE) };
            let mut w = ReplyWriter::new(&mut buf, &h).unwrap();
            w.limit(u16::MAX);
            w.option_u8(opt::MESSAGE_TYPE, 1).unwrap();
            // distinct codes other than the ones with length rules
            let mut used = HashSet::from([opt::MESSAGE_TYPE, opt::OVERLOAD, opt::RELAY_AGENT_INFO]);
            let mut expect = Vec::new();
            for (code, v) in values {
                if used.insert(code) && (known_len_ok(code, v.len())) {
                    w.option(code, &v).unwrap();
                    expect.push((code, v));
                }
            }
            let n = w.finish().unwrap();
            let f = &mut buf[..n];
            f[42] = 1;
            testutil::refix_checksums(f);
            let r = parse(f).unwrap();
            exercise(&r);
            for (code, v) in expect {
                let got = r.options.get(code).unwrap();
                prop_assert_eq!(got.bytes().collect::<Vec<_>>(), v);
            }
        }
    }

    proptest! {
        /// `checksum::sum` (8 bytes per step) against the independent byte-pair implementation,
        /// including chaining through `initial` at an even split point.
        #[test]
        fn checksum_matches_reference(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            split in 0usize..1000,
        ) {
            let want = inet_checksum(&[&data]);
            prop_assert_eq!(checksum::finish(checksum::sum(0, &data)), want);
            let split = (split * 2).min(data.len() & !1);
            let (a, b) = data.split_at(split);
            prop_assert_eq!(checksum::finish(checksum::sum(checksum::sum(0, a), b)), want);
        }
    }

    proptest! {
        /// `sum_with` adds its eight bytes as `sum` would add them in front of the data (the
        /// UDP pseudo header's addresses, then the datagram).
        #[test]
        fn checksum_sum_with_is_the_sum_with_the_words_in_front(
            words in any::<[u8; 8]>(),
            data in proptest::collection::vec(any::<u8>(), 0..600),
            initial in 0u32..(1 << 20),
        ) {
            let joined = [&words[..], &data].concat();
            prop_assert_eq!(
                checksum::sum_with(initial, words, &data),
                checksum::sum(initial, &joined)
            );
        }
    }

    proptest! {
        /// The unrolled fixed-size sum (IPv4 headers) is the slice sum, for any `initial`.
        #[test]
        fn checksum_sum_array_equals_sum(data in any::<[u8; 20]>(), initial in any::<u32>()) {
            prop_assert_eq!(checksum::sum_array(initial, &data), checksum::sum(initial, &data));
        }
    }

    fn known_len_ok(code: u8, len: usize) -> bool {
        match code {
            opt::REQUESTED_IP | opt::SERVER_ID | opt::SUBNET_SELECTION | opt::LEASE_TIME => {
                len == 4
            }
            opt::MAX_MESSAGE_SIZE => len == 2,
            opt::CLIENT_ID => len >= 2,
            _ => true,
        }
    }
}

#[test]
fn checksum_edge_cases() {
    for data in [
        &[][..],
        &[0],
        &[0xff],
        &[0xff, 0xff],
        &[0xff; 9],
        &[0xff; 4096],
        &[0x80; 65_535],
    ] {
        assert_eq!(
            checksum::finish(checksum::sum(0, data)),
            inet_checksum(&[data]),
            "{}",
            data.len()
        );
    }
    // RFC 1071 §3 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2
    assert_eq!(
        checksum::sum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        0xddf2
    );
}

#[test]
fn checksum_matches_the_bytewise_reference_on_random_data() {
    // The fast sum reads 64-byte blocks, then 32-, 16- and 8-byte blocks and 4-, 2- and 1-byte
    // tails in little-endian order; every length 0..=300 crosses each block and tail
    // combination and offsets 0..8 misalign the start.
    let mut rng = Rng(0x1071_2026);
    let mut buf = [0u8; 320];
    for len in 0..=300usize {
        for b in buf.iter_mut() {
            *b = rng.next_u64() as u8;
        }
        let off = rng.below(8);
        let data = &buf[off..off + len];
        assert_eq!(
            checksum::finish(checksum::sum(0, data)),
            inet_checksum(&[data]),
            "len {len} off {off}"
        );
        // Chained: the sum of an even-length head carried into the tail as `initial` equals
        // the sum over the whole (the pseudo-header is summed this way).
        let split = (rng.below(len + 1)) & !1;
        let (head, tail) = data.split_at(split);
        assert_eq!(
            checksum::finish(checksum::sum(checksum::sum(0, head), tail)),
            inet_checksum(&[data]),
            "len {len} split {split}"
        );
    }
}

#[test]
fn checksum_initial_counts_as_leading_network_order_words() {
    // `initial` is added in little-endian form (`initial << 8`): it must equal the two
    // big-endian 16-bit words of `initial` placed in front of the data, for every `initial`
    // up to u32::MAX and every tail length, down to the exact result (0 only for all zero).
    let mut rng = Rng(0x0768_2026);
    for len in [0usize, 1, 2, 3, 7, 8, 20, 63, 64, 65, 127, 300, 1500] {
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let zeros = vec![0u8; len];
        for initial in [
            0u32,
            1,
            0xffff,
            0x1_0000,
            0x7_ffff,
            0xffff_fffe,
            u32::MAX,
            rng.next_u64() as u32,
        ] {
            for d in [&data, &zeros] {
                let mut prefixed = initial.to_be_bytes().to_vec();
                prefixed.extend_from_slice(d);
                let got = checksum::sum(initial, d);
                assert_eq!(
                    got,
                    checksum::sum(0, &prefixed),
                    "len {len} initial {initial:#x}"
                );
                assert_eq!(
                    checksum::finish(got),
                    inet_checksum(&[&prefixed]),
                    "len {len} initial {initial:#x}"
                );
                assert!(got <= 0xffff);
            }
        }
        assert_eq!(
            checksum::sum(0, &zeros),
            0,
            "all zero sums to 0, not 0xffff"
        );
    }
}

#[test]
fn testutil_request_frame_is_a_minimal_valid_request() {
    let f = testutil::request_frame(&[53, 1, 1, 255]);
    let r = parse(&f).unwrap();
    assert_eq!(r.options.message_type(), MessageType::Discover);
    assert_eq!(r.hwaddr(), [0x02, 0, 0, 0, 0, 0x42]);
    assert_eq!(r.xid, 0x0102_0304);
    assert_eq!(f.len(), 14 + 20 + 8 + 244);
}

// ---------------------------------------------------------------------------------------------
// The option rules against a plain reference model.
//
// The parser's option walk is built for speed (a table written without branches, overruns
// caught after the loop, length rules checked as one word, split options summarised again on
// demand). This model states the rules of the policy table in `dhcp.rs` the obvious way, one
// instance at a time, and the property below holds the parser to it on messages made of the
// codes that have rules, split and overloaded options, PAD, END and truncations.

mod model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// What the model expects from a message that parses: per code, the joined value and the
    /// number of instances; and the overload value.
    #[derive(Debug, Default)]
    struct Expected {
        opts: BTreeMap<u8, (Vec<u8>, usize)>,
        overload: u8,
    }

    /// Walk `msg[start..end]` one instance at a time into `out`; whether END was seen.
    fn walk(
        msg: &[u8],
        start: usize,
        end: usize,
        overload_allowed: bool,
        out: &mut Vec<(u8, Vec<u8>)>,
    ) -> Result<bool, DropReason> {
        let mut i = start;
        while i < end {
            match msg[i] {
                opt::PAD => i += 1,
                opt::END => return Ok(true),
                code => {
                    if i + 1 >= end {
                        return Err(DropReason::OptionTruncated);
                    }
                    let len = usize::from(msg[i + 1]);
                    if i + 2 + len > end {
                        return Err(DropReason::OptionTruncated);
                    }
                    if code == opt::OVERLOAD && !overload_allowed {
                        return Err(DropReason::BadOverload);
                    }
                    out.push((code, msg[i + 2..i + 2 + len].to_vec()));
                    i += 2 + len;
                }
            }
        }
        Ok(false)
    }

    fn joined(instances: &[(u8, Vec<u8>)], code: u8) -> Option<(Vec<u8>, usize)> {
        let parts: Vec<&Vec<u8>> = instances
            .iter()
            .filter(|(c, _)| *c == code)
            .map(|(_, v)| v)
            .collect();
        (!parts.is_empty()).then(|| {
            (
                parts.iter().copied().flatten().copied().collect(),
                parts.len(),
            )
        })
    }

    fn expected(msg: &[u8]) -> Result<Expected, DropReason> {
        let mut inst = Vec::new();
        let end_in_options = walk(msg, 240, msg.len(), true, &mut inst)?;
        let mut overload = 0;
        if let Some((v, _)) = joined(&inst, opt::OVERLOAD) {
            overload = match v[..] {
                [o @ 1..=3] => o,
                _ => return Err(DropReason::BadOverload),
            };
            if !end_in_options {
                return Err(DropReason::OptionsUnterminated);
            }
            if overload & 1 != 0 && !walk(msg, 108, 236, false, &mut inst)? {
                return Err(DropReason::OptionsUnterminated);
            }
            if overload & 2 != 0 && !walk(msg, 44, 108, false, &mut inst)? {
                return Err(DropReason::OptionsUnterminated);
            }
        }
        if joined(&inst, opt::MESSAGE_TYPE).is_none() {
            return Err(DropReason::NoMessageType);
        }
        for (code, n) in [
            (opt::MESSAGE_TYPE, 1),
            (opt::REQUESTED_IP, 4),
            (opt::SERVER_ID, 4),
            (opt::SUBNET_SELECTION, 4),
            (opt::LEASE_TIME, 4),
            (opt::MAX_MESSAGE_SIZE, 2),
        ] {
            if joined(&inst, code).is_some_and(|(v, _)| v.len() != n) {
                return Err(DropReason::BadOptionLength);
            }
        }
        if joined(&inst, opt::CLIENT_ID).is_some_and(|(v, _)| v.len() < 2) {
            return Err(DropReason::BadOptionLength);
        }
        if let Some((v, frags)) = joined(&inst, opt::RELAY_AGENT_INFO) {
            // One instance whose sub-options exactly fill it.
            let mut rest = &v[..];
            while let [_, len, tail @ ..] = rest {
                if tail.len() < usize::from(*len) {
                    return Err(DropReason::BadOptionLength);
                }
                rest = &tail[usize::from(*len)..];
            }
            if frags != 1 || !rest.is_empty() {
                return Err(DropReason::BadOptionLength);
            }
        }
        let mut e = Expected {
            overload,
            ..Expected::default()
        };
        for code in 1..=254 {
            if let Some(j) = joined(&inst, code) {
                e.opts.insert(code, j);
            }
        }
        Ok(e)
    }

    fn check(msg: &[u8]) -> Result<(), TestCaseError> {
        let got = DhcpOptions::parse(msg);
        let want = expected(msg);
        let (o, e) = match (got, want) {
            (Err(g), Err(w)) => {
                prop_assert_eq!(g, w);
                return Ok(());
            }
            (Ok(o), Ok(e)) => (o, e),
            (g, w) => {
                prop_assert!(
                    false,
                    "parser {:?}, model {:?}",
                    g.map(|_| ()),
                    w.map(|_| ())
                );
                unreachable!()
            }
        };
        prop_assert_eq!(o.overload(), e.overload);
        for code in 0..=255u8 {
            let r = o.get(code);
            prop_assert_eq!(
                r.map(|r| (r.bytes().collect::<Vec<_>>(), r.fragment_count())),
                e.opts.get(&code).cloned(),
                "code {}",
                code
            );
        }
        let value = |code: u8| e.opts.get(&code).map(|(v, _)| v.clone());
        let fixed4 = |code: u8| value(code).map(|v| <[u8; 4]>::try_from(v).unwrap());
        prop_assert_eq!(
            u8::from(o.message_type()),
            value(opt::MESSAGE_TYPE).unwrap()[0]
        );
        prop_assert_eq!(
            o.requested_ip(),
            fixed4(opt::REQUESTED_IP).map(Ipv4Addr::from)
        );
        prop_assert_eq!(o.server_id(), fixed4(opt::SERVER_ID).map(Ipv4Addr::from));
        prop_assert_eq!(
            o.subnet_selection(),
            fixed4(opt::SUBNET_SELECTION).map(Ipv4Addr::from)
        );
        prop_assert_eq!(
            o.lease_time(),
            fixed4(opt::LEASE_TIME).map(u32::from_be_bytes)
        );
        prop_assert_eq!(
            o.max_message_size(),
            value(opt::MAX_MESSAGE_SIZE)
                .map(|v| u16::from_be_bytes([v[0], v[1]]))
                .filter(|&m| m >= MIN_MAX_MESSAGE_SIZE)
        );
        let bytes = |r: Option<OptRef<'_>>| r.map(|r| r.bytes().collect::<Vec<_>>());
        prop_assert_eq!(bytes(o.client_id()), value(opt::CLIENT_ID));
        prop_assert_eq!(
            bytes(o.parameter_request_list()),
            value(opt::PARAMETER_REQUEST_LIST)
        );
        prop_assert_eq!(
            bytes(o.hostname()),
            value(opt::HOSTNAME).filter(|v| !v.is_empty())
        );
        prop_assert_eq!(bytes(o.vendor_class()), value(opt::VENDOR_CLASS));
        prop_assert_eq!(
            o.relay_agent().map(|r| r.raw().to_vec()),
            value(opt::RELAY_AGENT_INFO)
        );
        Ok(())
    }

    /// One option instance (or PAD / END) from a few random numbers: mostly the codes that
    /// have rules, mostly with their legal lengths, so that messages get past one rule to
    /// meet the next (a code of 240 and above stands for itself).
    fn token(sel: u8, len_sel: u8, fill: u8) -> Vec<u8> {
        const CODES: [u8; 15] = [53, 50, 54, 118, 51, 57, 61, 55, 12, 60, 82, 52, 81, 0, 255];
        let code = if sel >= 240 {
            sel
        } else {
            CODES[usize::from(sel) % CODES.len()]
        };
        if code == opt::PAD || code == opt::END {
            return vec![code];
        }
        let legal = match code {
            opt::MESSAGE_TYPE | opt::OVERLOAD => 1,
            opt::REQUESTED_IP | opt::SERVER_ID | opt::SUBNET_SELECTION | opt::LEASE_TIME => 4,
            opt::MAX_MESSAGE_SIZE | opt::CLIENT_ID => 2,
            _ => 3,
        };
        let len = match len_sel % 8 {
            0..=3 => legal,
            4 => 0,
            5 => legal / 2,
            6 => legal + 1,
            _ => len_sel / 8,
        };
        let mut t = vec![code, len];
        if code == opt::OVERLOAD && len == 1 {
            // Mostly a valid overload value, to reach `file` and `sname`.
            t.push(if fill < 200 { 1 + fill % 3 } else { fill });
            return t;
        }
        if code == opt::RELAY_AGENT_INFO && len_sel.is_multiple_of(2) {
            // Mostly well-formed sub-options.
            let sub = [1, 2, fill, fill, 5, 4, 10, 0, 0, fill];
            t[1] = sub.len() as u8;
            t.extend_from_slice(&sub);
            return t;
        }
        t.extend((0..len).map(|i| fill.wrapping_add(i)));
        t
    }

    /// An area's options from tokens.
    fn area(tokens: &[(u8, u8, u8)]) -> Vec<u8> {
        tokens
            .iter()
            .flat_map(|&(s, l, f)| token(s, l, f))
            .collect()
    }

    fn tokens(max: usize) -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
        proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..max)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20000, ..ProptestConfig::default() })]

        /// Same verdict (the same `DropReason`) and the same values as the model.
        #[test]
        fn options_agree_with_the_model(
            head in prop_oneof![Just(vec![]), (1u8..=8).prop_map(|t| vec![53, 1, t])],
            overload in prop_oneof![2 => Just(vec![]), 1 => (0u8..=4).prop_map(|v| vec![52, 1, v])],
            opts in tokens(10),
            file in tokens(6),
            sname in tokens(4),
            ends in any::<[bool; 3]>(),
            cut in 0usize..3,
        ) {
            let mut o = [head, overload, area(&opts)].concat();
            if ends[0] {
                o.push(opt::END);
            } else {
                // Sometimes cut the last bytes off: a truncated option or a lone code.
                o.truncate(o.len().saturating_sub(cut));
            }
            let (mut f, mut s) = (area(&file), area(&sname));
            if ends[1] {
                f.push(opt::END);
            }
            if ends[2] {
                s.push(opt::END);
            }
            f.resize(128, 0);
            s.resize(64, 0);
            let msg = testutil::bootp(&s[..64], &f[..128], &o);
            check(&msg)?;
        }
    }

    #[test]
    fn the_model_agrees_on_the_crafted_cases() {
        // A few fixed messages the property may take long to find.
        for options in [
            &[53, 1, 1, 255][..],
            &[53, 0, 53, 1, 7, 255],
            &[53, 1, 1, 53, 1, 1, 255],
            &[53, 1, 3, 50, 2, 10, 0, 50, 2, 0, 9, 255],
            &[53, 1, 3, 50, 4, 1, 2, 3, 4, 50, 0, 255],
            &[53, 1, 3, 61, 1, 7, 61, 1, 8, 255],
            &[53, 1, 3, 82, 2, 1, 0, 82, 0, 255],
            &[53, 1, 1, 52, 0, 52, 1, 3, 255],
            &[53, 1, 1, 52, 1, 3, 255],
            &[53, 1, 1, 61],
            &[53, 1, 1, 61, 9, 1],
            &[53, 1, 1, 0],
            &[53, 1, 1, 0, 0, 0, 12],
            // codes without a slot share one, which is never read
            &[53, 1, 1, 240, 0, 241, 2, 1, 2, 240, 1, 9, 255],
        ] {
            let msg = testutil::bootp(&[], &[], options);
            check(&msg).unwrap();
        }
    }
}
