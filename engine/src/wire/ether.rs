//! Ethernet II header with up to two VLAN tags (802.1Q, 802.1ad, QinQ).
//!
//! An access router sees subscribers behind an S-tag/C-tag pair (one VLAN per customer port),
//! behind a single C-tag, or untagged. The tags identify the subscriber line (reservations may
//! key on the `(outer, inner)` VID pair) and the reply must leave with exactly the same stack,
//! so the parser keeps the tags verbatim (TPID and TCI, i.e. priority and DEI bits too) instead
//! of only remembering the VIDs. Two tags are the most any access design here uses; deeper
//! stacks are refused ([`DropReason::TooManyVlans`]) so the header has a fixed size and the
//! reply's L2 length is bounded.

use super::DropReason;

/// Field offsets of the Ethernet II header.
mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Length of the untagged header.
    pub const HEADER_LEN: usize = 14;
    /// Length of one VLAN tag (TPID is the ethertype slot before it; TCI + next ethertype).
    pub const TAG_LEN: usize = 4;
}

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// IEEE 802.1Q customer tag (C-tag) TPID.
pub const TPID_8021Q: u16 = 0x8100;
/// IEEE 802.1ad service tag (S-tag) TPID.
pub const TPID_8021AD: u16 = 0x88a8;

/// One VLAN tag exactly as received: TPID plus TCI (PCP, DEI, VID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Tag protocol identifier (0x8100 or 0x88a8).
    pub tpid: u16,
    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub tci: u16,
}

impl VlanTag {
    /// An 802.1Q C-tag with priority 0.
    pub const fn c_tag(vid: u16) -> Self {
        VlanTag {
            tpid: TPID_8021Q,
            tci: vid & 0x0fff,
        }
    }
    /// An 802.1ad S-tag with priority 0.
    pub const fn s_tag(vid: u16) -> Self {
        VlanTag {
            tpid: TPID_8021AD,
            tci: vid & 0x0fff,
        }
    }
    /// The 12-bit VLAN identifier.
    pub const fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }
    /// The 3-bit priority code point.
    pub const fn pcp(&self) -> u8 {
        (self.tci >> 13) as u8
    }
}

/// A stack of at most two VLAN tags, outermost first. The bound is part of the type, so code
/// that writes a reply never has to handle "too many tags".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VlanTags {
    tags: [VlanTag; 2],
    count: u8,
}

impl VlanTags {
    /// No tags (untagged frame).
    pub const NONE: VlanTags = VlanTags {
        tags: [VlanTag { tpid: 0, tci: 0 }; 2],
        count: 0,
    };

    /// A stack from `tags` (outermost first); `None` if there are more than two.
    pub fn new(tags: &[VlanTag]) -> Option<Self> {
        let mut out = VlanTags::NONE;
        for t in tags {
            out.push(*t)?;
        }
        Some(out)
    }

    fn push(&mut self, tag: VlanTag) -> Option<()> {
        let slot = self.tags.get_mut(usize::from(self.count))?;
        *slot = tag;
        self.count += 1;
        Some(())
    }

    /// The tags, outermost first.
    pub fn as_slice(&self) -> &[VlanTag] {
        self.tags.get(..usize::from(self.count)).unwrap_or(&[])
    }

    /// Number of tags (0, 1 or 2).
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True for an untagged frame.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the tags add to an Ethernet header.
    pub fn wire_len(&self) -> usize {
        self.len() * field::TAG_LEN
    }
}

/// The Ethernet header of a received frame: addresses and the VLAN tags, kept for the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct L2Header {
    /// Destination MAC.
    pub dst: [u8; 6],
    /// Source MAC.
    pub src: [u8; 6],
    tags: VlanTags,
}

impl L2Header {
    /// A header with the given tags (outermost first); `None` with more than two tags.
    pub fn new(dst: [u8; 6], src: [u8; 6], vlans: &[VlanTag]) -> Option<Self> {
        Some(L2Header {
            dst,
            src,
            tags: VlanTags::new(vlans)?,
        })
    }

    /// The VLAN tags, outermost first (empty when untagged).
    pub fn vlans(&self) -> &[VlanTag] {
        self.tags.as_slice()
    }

    /// The tags as a copyable stack, e.g. for [`super::ReplyHeaders::vlans`].
    pub fn vlan_tags(&self) -> VlanTags {
        self.tags
    }

    /// VID of the outermost tag (the S-tag in QinQ), if any.
    pub fn outer_vid(&self) -> Option<u16> {
        self.vlans().first().map(VlanTag::vid)
    }

    /// VID of the inner tag (the C-tag in QinQ), only when there are two tags.
    pub fn inner_vid(&self) -> Option<u16> {
        self.vlans().get(1).map(VlanTag::vid)
    }

    /// Length of this header on the wire (14, 18 or 22).
    pub fn wire_len(&self) -> usize {
        field::HEADER_LEN + self.tags.wire_len()
    }
}

/// Parse the Ethernet header and up to two VLAN tags; returns the header and the IPv4 bytes.
///
/// Accepted stacks: none; one tag with TPID 0x8100 or 0x88a8; two tags where the outer TPID is
/// 0x8100 or 0x88a8 and the inner one is 0x8100 (IEEE 802.1ad: a C-tag may follow an S-tag; an
/// S-tag inside a C-tag is not a valid stack and is reported as [`DropReason::NotIpv4`]).
#[inline(always)]
pub(crate) fn parse(frame: &[u8]) -> Result<(L2Header, &[u8]), DropReason> {
    let Some((fixed, rest)) = frame.split_first_chunk::<{ field::HEADER_LEN }>() else {
        return Err(DropReason::EthTruncated);
    };
    let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, t0, t1] = *fixed;
    let (dst, src) = ([d0, d1, d2, d3, d4, d5], [s0, s1, s2, s3, s4, s5]);
    let ethertype = u16::from_be_bytes([t0, t1]);
    // Untagged: the header is complete, no tag loop.
    if ethertype == ETHERTYPE_IPV4 {
        let l2 = L2Header {
            dst,
            src,
            tags: VlanTags::NONE,
        };
        return Ok((l2, rest));
    }
    let (tags, l3) = parse_tags(ethertype, rest)?;
    Ok((L2Header { dst, src, tags }, l3))
}

/// The VLAN tags after the addresses, `ethertype` being the first TPID (or not); returns the
/// tags and the IPv4 bytes. Written out for its two possible tags rather than as a loop, so
/// that the tags go straight into the result.
///
/// Out of line although most frames behind an access router are tagged: inlined, the tags
/// were held in registers through every later check, which cost the untagged path as much as
/// it saved the tagged one (callgrind, `wire::parse` of the client fixtures: 446 instructions
/// a frame untagged and 502 with QinQ tags out of line, 453 and 489 inlined).
#[inline(never)]
fn parse_tags(ethertype: u16, rest: &[u8]) -> Result<(VlanTags, &[u8]), DropReason> {
    let is_tpid = |t: u16| t == TPID_8021Q || t == TPID_8021AD;
    if !is_tpid(ethertype) {
        return Err(DropReason::NotIpv4);
    }
    let (outer, next, rest) = read_tag(ethertype, rest)?;
    if next == ETHERTYPE_IPV4 {
        let tags = VlanTags {
            tags: [outer, VlanTag::default()],
            count: 1,
        };
        return Ok((tags, rest));
    }
    // IEEE 802.1ad: only a C-tag may follow (an S-tag inside a tag is no valid stack).
    if next != TPID_8021Q {
        return Err(DropReason::NotIpv4);
    }
    let (inner, next, rest) = read_tag(TPID_8021Q, rest)?;
    match next {
        ETHERTYPE_IPV4 => {
            let tags = VlanTags {
                tags: [outer, inner],
                count: 2,
            };
            Ok((tags, rest))
        }
        t if is_tpid(t) => Err(DropReason::TooManyVlans),
        _ => Err(DropReason::NotIpv4),
    }
}

/// The tag (TCI) at the start of `rest`, which followed the TPID `tpid`, the type after it
/// and what follows that.
#[inline(always)]
fn read_tag(tpid: u16, rest: &[u8]) -> Result<(VlanTag, u16, &[u8]), DropReason> {
    let Some((&[c0, c1, n0, n1], rest)) = rest.split_first_chunk::<{ field::TAG_LEN }>() else {
        return Err(DropReason::EthTruncated);
    };
    let tag = VlanTag {
        tpid,
        tci: u16::from_be_bytes([c0, c1]),
    };
    Ok((tag, u16::from_be_bytes([n0, n1]), rest))
}

/// Write `dst`, `src`, the tags and the IPv4 ethertype at the start of `buf`.
/// Returns the header length, or `None` if `buf` is too short.
///
/// Inlined: every reply starts here, and at its call site the tag count is usually the only
/// unknown, so the addresses become constant-size stores instead of a call. The tags are
/// taken by value and read at constant indices (no slice of them), so the caller's copy can
/// stay in registers instead of being stored to the stack to be read back here.
#[inline]
pub(crate) fn emit(buf: &mut [u8], dst: &[u8; 6], src: &[u8; 6], tags: VlanTags) -> Option<usize> {
    let count = usize::from(tags.count).min(tags.tags.len());
    let len = field::HEADER_LEN + count * field::TAG_LEN;
    let out = buf.get_mut(..len)?;
    out[field::DST].copy_from_slice(dst);
    out[field::SRC].copy_from_slice(src);
    let mut off = field::ETHERTYPE.start;
    for (i, t) in tags.tags.into_iter().enumerate() {
        if i < count {
            out[off..off + 2].copy_from_slice(&t.tpid.to_be_bytes());
            out[off + 2..off + 4].copy_from_slice(&t.tci.to_be_bytes());
            off += field::TAG_LEN;
        }
    }
    out[off..off + 2].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        for (tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&[0x45, 0, 0, 20]);
        f
    }

    #[test]
    fn untagged() {
        let f = frame(&[], ETHERTYPE_IPV4);
        let (l2, rest) = parse(&f).unwrap();
        assert_eq!(l2.dst, [0xff; 6]);
        assert_eq!(l2.src, [2, 0, 0, 0, 0, 1]);
        assert!(l2.vlans().is_empty());
        assert_eq!(l2.wire_len(), 14);
        assert_eq!(rest, &[0x45, 0, 0, 20]);
    }

    #[test]
    fn single_and_double_tags() {
        for tags in [
            &[(TPID_8021Q, 0x2064)][..],
            &[(TPID_8021AD, 100)][..],
            &[(TPID_8021AD, 100), (TPID_8021Q, 0xe00a)][..],
            &[(TPID_8021Q, 100), (TPID_8021Q, 10)][..],
        ] {
            let f = frame(tags, ETHERTYPE_IPV4);
            let (l2, rest) = parse(&f).unwrap();
            assert_eq!(l2.vlans().len(), tags.len());
            for (got, (tpid, tci)) in l2.vlans().iter().zip(tags) {
                assert_eq!((got.tpid, got.tci), (*tpid, *tci));
            }
            assert_eq!(l2.wire_len(), 14 + 4 * tags.len());
            assert_eq!(rest.len(), 4);
        }
        let f = frame(
            &[(TPID_8021AD, 0x2000 | 300), (TPID_8021Q, 42)],
            ETHERTYPE_IPV4,
        );
        let (l2, _) = parse(&f).unwrap();
        assert_eq!(l2.outer_vid(), Some(300));
        assert_eq!(l2.inner_vid(), Some(42));
        assert_eq!(l2.vlans()[0].pcp(), 1);
    }

    #[test]
    fn three_tags_rejected() {
        for third in [TPID_8021Q, TPID_8021AD] {
            let f = frame(
                &[(TPID_8021AD, 1), (TPID_8021Q, 2), (third, 3)],
                ETHERTYPE_IPV4,
            );
            assert_eq!(parse(&f).unwrap_err(), DropReason::TooManyVlans);
        }
    }

    #[test]
    fn s_tag_inside_c_tag_rejected() {
        let f = frame(&[(TPID_8021Q, 1), (TPID_8021AD, 2)], ETHERTYPE_IPV4);
        assert_eq!(parse(&f).unwrap_err(), DropReason::NotIpv4);
    }

    #[test]
    fn not_ipv4() {
        for et in [0x0806, 0x86dd, 0x9100] {
            assert_eq!(parse(&frame(&[], et)).unwrap_err(), DropReason::NotIpv4);
            assert_eq!(
                parse(&frame(&[(TPID_8021Q, 5)], et)).unwrap_err(),
                DropReason::NotIpv4
            );
        }
    }

    #[test]
    fn truncated_everywhere() {
        let f = frame(&[(TPID_8021AD, 1), (TPID_8021Q, 2)], ETHERTYPE_IPV4);
        for n in 0..22 {
            assert_eq!(
                parse(&f[..n]).unwrap_err(),
                DropReason::EthTruncated,
                "len {n}"
            );
        }
        assert!(parse(&f[..22]).is_ok());
    }

    /// The tag rules as a loop over the tags, the way they read: every stack of up to three
    /// type fields, cut at every length, gets the same verdict and tags from `parse`.
    #[test]
    fn tags_agree_with_a_loop_over_them() {
        fn reference(frame: &[u8]) -> Result<(Vec<VlanTag>, usize), DropReason> {
            let mut tags = Vec::new();
            let mut at = 12;
            loop {
                let Some(&[t0, t1]) = frame.get(at..at + 2) else {
                    return Err(DropReason::EthTruncated);
                };
                let t = u16::from_be_bytes([t0, t1]);
                if t != TPID_8021Q && t != TPID_8021AD {
                    return if t == ETHERTYPE_IPV4 {
                        Ok((tags, at + 2))
                    } else {
                        Err(DropReason::NotIpv4)
                    };
                }
                match tags.len() {
                    0 => {}
                    1 if t == TPID_8021Q => {}
                    1 => return Err(DropReason::NotIpv4),
                    _ => return Err(DropReason::TooManyVlans),
                }
                let Some(&[c0, c1]) = frame.get(at + 2..at + 4) else {
                    return Err(DropReason::EthTruncated);
                };
                tags.push(VlanTag {
                    tpid: t,
                    tci: u16::from_be_bytes([c0, c1]),
                });
                at += 4;
            }
        }
        let types = [ETHERTYPE_IPV4, TPID_8021Q, TPID_8021AD, 0x86dd];
        for a in types {
            for b in types {
                for c in types {
                    let mut f = vec![7u8; 12];
                    for (i, t) in [a, b, c].into_iter().enumerate() {
                        f.extend_from_slice(&t.to_be_bytes());
                        f.extend_from_slice(&(0x1001 + i as u16).to_be_bytes());
                    }
                    for n in 0..=f.len() {
                        let got =
                            parse(&f[..n]).map(|(l2, rest)| (l2.vlans().to_vec(), n - rest.len()));
                        assert_eq!(got, reference(&f[..n]), "{a:#x} {b:#x} {c:#x} len {n}");
                    }
                }
            }
        }
    }

    #[test]
    fn emit_round_trip() {
        let tags = VlanTags::new(&[VlanTag::s_tag(7), VlanTag::c_tag(4094)]).unwrap();
        let mut buf = [0u8; 22];
        assert_eq!(emit(&mut buf, &[1; 6], &[2; 6], tags), Some(22));
        let (l2, rest) = parse(&buf).unwrap();
        assert_eq!(l2.vlan_tags(), tags);
        assert!(rest.is_empty());
        for n in 0..22 {
            assert_eq!(emit(&mut buf[..n], &[1; 6], &[2; 6], tags), None);
        }
        assert!(VlanTags::new(&[VlanTag::c_tag(1); 3]).is_none());
        assert!(L2Header::new([0; 6], [0; 6], &[VlanTag::c_tag(1); 3]).is_none());
    }
}
