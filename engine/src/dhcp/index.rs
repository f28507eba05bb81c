//! Lookup structures built once in [`super::Server::new`] so that the per-packet path answers
//! "which subnet?" and "which reservation?" with a few hash probes or a binary search, never a
//! scan over the configuration and never an allocation.
//!
//! Why our own indices instead of the configuration's helpers: an ISP configuration has tens of
//! thousands of VLAN links and hundreds of thousands of reservations. Scanning `subnets[*].links`
//! per packet is O(subnets); a hash probe is O(1). The indices are also robust to a
//! hand-built [`ServerConfig`] (tests, `zero_config`) that is not sorted the way the file
//! validator sorts it.

use super::optcache::OptCache;
use crate::config::{OptionSet, ReservationKey, ServerConfig, SubnetId};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// FxHash (the rustc hasher): a multiply-rotate per word. Keys in these maps come only from the
/// configuration; a hostile request can only *probe* them, and probe length is bounded by what
/// the operator configured, so a keyed (SipHash) hasher buys nothing here but costs ~20 ns.
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A VLAN pair packed into one word: bit 12 marks a present tag, bits 0..12 the VID.
/// `(None, None)` (untagged) packs to 0.
#[inline]
pub(crate) fn vlan_word(outer: Option<u16>, inner: Option<u16>) -> u32 {
    let one = |v: Option<u16>| v.map_or(0, |v| u32::from(v & 0x0fff) | 0x1000);
    (one(outer) << 16) | one(inner)
}

/// Network -> subnet lookup by longest prefix match.
///
/// One sorted table per distinct prefix length, longest first. Real configurations use a
/// handful of prefix lengths, so a lookup is a few binary searches; nested networks (which the
/// file validator forbids but a hand-built configuration might contain) still resolve to the
/// most specific one.
#[derive(Debug, Default)]
pub(crate) struct NetworkIndex {
    by_prefix: Vec<PrefixTable>,
}

/// All networks of one prefix length: (prefix, mask, sorted (network, subnet) pairs).
type PrefixTable = (u8, u32, Vec<(u32, SubnetId)>);

impl NetworkIndex {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        let mut by_prefix: Vec<PrefixTable> = Vec::new();
        for s in &config.subnets {
            let prefix = s.network.prefix.min(32);
            let mask = s.network.mask();
            let net = u32::from(s.network.addr) & mask;
            match by_prefix.iter_mut().find(|(p, _, _)| *p == prefix) {
                Some((_, _, v)) => v.push((net, s.id)),
                None => by_prefix.push((prefix, mask, vec![(net, s.id)])),
            }
        }
        by_prefix.sort_by_key(|t| core::cmp::Reverse(t.0));
        for (_, _, v) in &mut by_prefix {
            v.sort_by_key(|&(net, _)| net);
            // Duplicate networks: the first configured one wins (stable sort keeps order).
            v.dedup_by_key(|&mut (net, _)| net);
        }
        NetworkIndex { by_prefix }
    }

    /// The most specific configured subnet containing `ip`.
    #[inline]
    pub(crate) fn lookup(&self, ip: Ipv4Addr) -> Option<SubnetId> {
        let ip = u32::from(ip);
        self.by_prefix.iter().find_map(|(_, mask, nets)| {
            let key = ip & mask;
            nets.binary_search_by_key(&key, |&(net, _)| net)
                .ok()
                .map(|i| nets[i].1)
        })
    }
}

/// Per-subnet reservation indices, one hash map per identifier kind. The values index
/// [`crate::config::Subnet::reservations`].
#[derive(Debug)]
pub(crate) struct ReservationIndex {
    by_client_id: FxMap<Box<[u8]>, u32>,
    by_mac: FxMap<[u8; 6], u32>,
    by_circuit_id: FxMap<Box<[u8]>, u32>,
    by_remote_id: FxMap<Box<[u8]>, u32>,
    by_vlan: FxMap<u32, u32>,
    /// Fixed address -> reservation, so a request for somebody else's fixed address is
    /// recognised without asking the lease tables.
    by_addr: FxMap<u32, u32>,
    /// The lowest and highest key of `by_addr` (`(u32::MAX, 0)`, an empty span, when there is
    /// none). Fixed addresses are usually kept out of the dynamic pools, so most addresses a
    /// client asks for fall outside this span and are known not to be reserved without hashing.
    addr_span: (u32, u32),
    /// The identifier kinds these reservations use (the maps above that are not empty).
    kinds: IdKinds,
}

/// The identifiers a request offers for a reservation lookup (all borrowed from the frame).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HostIds<'a> {
    pub client_id: Option<&'a [u8]>,
    pub mac: Option<[u8; 6]>,
    pub circuit_id: Option<&'a [u8]>,
    pub remote_id: Option<&'a [u8]>,
    /// Only for tagged frames (a VLAN reservation never matches an untagged one).
    pub vlan: Option<(u16, Option<u16>)>,
}

/// A set of reservation identifier kinds: the kinds a subnet's reservations use, or the
/// identifiers a request offers. A bit set, so that the lookup's first question ("could any
/// of this request's identifiers match here?") is one AND.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdKinds(u8);

impl IdKinds {
    pub(crate) const CLIENT_ID: IdKinds = IdKinds(1);
    pub(crate) const MAC: IdKinds = IdKinds(2);
    pub(crate) const CIRCUIT_ID: IdKinds = IdKinds(4);
    pub(crate) const REMOTE_ID: IdKinds = IdKinds(8);
    pub(crate) const VLAN: IdKinds = IdKinds(16);
    /// The identities of the client itself (a request may offer them on any path).
    pub(crate) const HOST: IdKinds = IdKinds(Self::CLIENT_ID.0 | Self::MAC.0);
    pub(crate) const ALL: IdKinds =
        IdKinds(Self::HOST.0 | Self::CIRCUIT_ID.0 | Self::REMOTE_ID.0 | Self::VLAN.0);

    /// `kind` if `on`, else nothing.
    #[inline]
    pub(crate) fn when(on: bool, kind: IdKinds) -> IdKinds {
        IdKinds(kind.0 * u8::from(on))
    }

    #[inline]
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }

    /// Whether every kind of `kind` is in the set.
    #[inline]
    pub(crate) fn has(self, kind: IdKinds) -> bool {
        self.0 & kind.0 == kind.0
    }

    #[inline]
    pub(crate) fn union(self, o: IdKinds) -> IdKinds {
        IdKinds(self.0 | o.0)
    }

    #[inline]
    pub(crate) fn intersect(self, o: IdKinds) -> IdKinds {
        IdKinds(self.0 & o.0)
    }
}

impl ReservationIndex {
    /// The identifier kinds this subnet's reservations use.
    #[inline]
    pub(crate) fn kinds(&self) -> IdKinds {
        self.kinds
    }

    pub(crate) fn new(reservations: &[crate::config::Reservation]) -> Self {
        let mut ix = ReservationIndex {
            by_client_id: FxMap::default(),
            by_mac: FxMap::default(),
            by_circuit_id: FxMap::default(),
            by_remote_id: FxMap::default(),
            by_vlan: FxMap::default(),
            by_addr: FxMap::default(),
            addr_span: (u32::MAX, 0),
            kinds: IdKinds::default(),
        };
        for (i, r) in reservations.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            // `entry().or_insert`: with duplicate keys the first reservation wins, as in a
            // binary search over the validator's sorted, de-duplicated list.
            match &r.key {
                ReservationKey::ClientId(b) => {
                    ix.by_client_id.entry(b.clone()).or_insert(i);
                }
                ReservationKey::Mac(m) => {
                    ix.by_mac.entry(*m).or_insert(i);
                }
                ReservationKey::CircuitId(b) => {
                    ix.by_circuit_id.entry(b.clone()).or_insert(i);
                }
                ReservationKey::RemoteId(b) => {
                    ix.by_remote_id.entry(b.clone()).or_insert(i);
                }
                ReservationKey::Vlan { outer, inner } => {
                    ix.by_vlan
                        .entry(vlan_word(Some(*outer), *inner))
                        .or_insert(i);
                }
            }
            if let Some(a) = r.address {
                ix.by_addr.entry(u32::from(a)).or_insert(i);
            }
        }
        ix.kinds = IdKinds::when(!ix.by_client_id.is_empty(), IdKinds::CLIENT_ID)
            .union(IdKinds::when(!ix.by_mac.is_empty(), IdKinds::MAC))
            .union(IdKinds::when(
                !ix.by_circuit_id.is_empty(),
                IdKinds::CIRCUIT_ID,
            ))
            .union(IdKinds::when(
                !ix.by_remote_id.is_empty(),
                IdKinds::REMOTE_ID,
            ))
            .union(IdKinds::when(!ix.by_vlan.is_empty(), IdKinds::VLAN));
        if let (Some(&lo), Some(&hi)) = (ix.by_addr.keys().min(), ix.by_addr.keys().max()) {
            ix.addr_span = (lo, hi);
        }
        ix
    }

    /// The reservation matching `ids`, trying the most specific identity first: the client's
    /// own identifier (option 61), its hardware address, then the line it sits on (option 82
    /// circuit id, remote id, then the VLAN pair). A host identity beats a line identity so
    /// that a specific device behind a reserved line can still be given its own parameters.
    #[inline]
    pub(crate) fn find(&self, ids: &HostIds<'_>) -> Option<u32> {
        if let Some(id) = ids.client_id
            && let Some(&i) = self.by_client_id.get(id)
        {
            return Some(i);
        }
        if let Some(mac) = ids.mac
            && let Some(&i) = self.by_mac.get(&mac)
        {
            return Some(i);
        }
        if let Some(c) = ids.circuit_id
            && let Some(&i) = self.by_circuit_id.get(c)
        {
            return Some(i);
        }
        if let Some(r) = ids.remote_id
            && let Some(&i) = self.by_remote_id.get(r)
        {
            return Some(i);
        }
        if let Some((outer, inner)) = ids.vlan
            && let Some(&i) = self.by_vlan.get(&vlan_word(Some(outer), inner))
        {
            return Some(i);
        }
        None
    }

    /// The reservation whose fixed address is `addr`.
    #[inline]
    pub(crate) fn by_address(&self, addr: Ipv4Addr) -> Option<u32> {
        let addr = u32::from(addr);
        let (lo, hi) = self.addr_span;
        if !(lo..=hi).contains(&addr) {
            return None;
        }
        self.by_addr.get(&addr).copied()
    }
}

/// A subnet's configured options with O(1) lookup by code: a 256-entry table of positions
/// into the (code-ordered) entries, whose values are copied into one contiguous blob. The
/// reply writer asks for up to a dozen codes per packet; a binary search per code was a
/// visible share of the whole pipeline.
///
/// Each option is also kept *encoded* (code, length, value, split per RFC 3396) as the reply
/// carries it, so a reply copies bytes instead of re-deriving headers per packet, and the
/// whole code-ordered list is kept as one block for clients that send no parameter request
/// list (one copy when it fits). Options the decision writes itself
/// ([`is_protocol_option`](super::reply::is_protocol_option)) are never encoded: the
/// configuration cannot duplicate or contradict them.
#[derive(Debug)]
pub(crate) struct OptIndex {
    /// This index's number in the cache keys (its subnet's position).
    id: u32,
    /// Encoded blocks per parameter request list, shared by all subnets of a server.
    cache: Arc<OptCache>,
    /// code -> 1 + entry index; 0 = not configured.
    slot: Box<[u8; 256]>,
    entries: Vec<OptEntry>,
    /// The values, in code order.
    blob: Box<[u8]>,
    /// The sendable options encoded, in code order: `all_encoded` is this whole blob.
    encoded: Box<[u8]>,
    /// `encoded`'s checksum contribution ([`ReplyWriter::block_sum`](crate::wire::ReplyWriter)).
    encoded_sum: u16,
}

#[derive(Clone, Copy, Debug)]
struct OptEntry {
    code: u8,
    /// Value: start in `blob`, length.
    value: (u32, u32),
    /// Encoded option: start in `encoded`, length (0 for protocol options: never sent).
    enc: (u32, u32),
}

fn range(blob: &[u8], (start, len): (u32, u32)) -> &[u8] {
    let start = start as usize;
    blob.get(start..start + len as usize).unwrap_or(&[])
}

impl OptIndex {
    /// An index without a block cache.
    #[cfg(test)]
    pub(crate) fn new(set: &OptionSet) -> Self {
        Self::with_cache(set, Arc::new(OptCache::new(0)), 0)
    }

    /// The index of `set`, caching blocks in `cache` under `id`.
    pub(crate) fn with_cache(set: &OptionSet, cache: Arc<OptCache>, id: u32) -> Self {
        let mut slot = Box::new([0u8; 256]);
        let mut entries = Vec::new();
        let mut blob = Vec::new();
        let mut encoded = Vec::new();
        for (code, value) in set.iter() {
            // At most 255 distinct codes exist (0 and 255 are not options): the index fits.
            let Ok(i) = u8::try_from(entries.len() + 1) else {
                break;
            };
            let (Ok(start), Ok(len)) = (u32::try_from(blob.len()), u32::try_from(value.len()))
            else {
                break;
            };
            let enc_start = encoded.len();
            if !super::reply::is_protocol_option(code) {
                crate::wire::encode_option(&mut encoded, code, value);
            }
            let (Ok(enc_start), Ok(enc_len)) = (
                u32::try_from(enc_start),
                u32::try_from(encoded.len() - enc_start),
            ) else {
                encoded.truncate(enc_start);
                break;
            };
            slot[usize::from(code)] = i;
            entries.push(OptEntry {
                code,
                value: (start, len),
                enc: (enc_start, enc_len),
            });
            blob.extend_from_slice(value);
        }
        OptIndex {
            id,
            cache,
            slot,
            entries,
            blob: blob.into_boxed_slice(),
            encoded_sum: crate::wire::ReplyWriter::block_sum(&encoded),
            encoded: encoded.into_boxed_slice(),
        }
    }

    #[inline]
    fn entry(&self, code: u8) -> Option<&OptEntry> {
        let i = usize::from(self.slot[usize::from(code)]);
        self.entries.get(i.checked_sub(1)?)
    }

    /// The value configured for `code`.
    #[cfg(test)]
    pub(crate) fn get(&self, code: u8) -> Option<&[u8]> {
        self.entry(code).map(|e| range(&self.blob, e.value))
    }

    /// Option `code` encoded for a reply; `None` when not configured or a protocol option.
    #[inline]
    pub(crate) fn encoded(&self, code: u8) -> Option<&[u8]> {
        self.entry(code)
            .filter(|e| e.enc.1 != 0)
            .map(|e| range(&self.encoded, e.enc))
    }

    /// Every sendable option encoded, in code order, with its checksum contribution
    /// ([`ReplyWriter::block_sum`](crate::wire::ReplyWriter), computed once).
    #[inline]
    pub(crate) fn all_encoded(&self) -> (&[u8], u16) {
        (&self.encoded, self.encoded_sum)
    }

    /// The block cache and this index's key in it.
    #[inline]
    pub(crate) fn cache(&self) -> (&OptCache, u32) {
        (&self.cache, self.id)
    }

    /// All options in code order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.entries
            .iter()
            .map(|e| (e.code, range(&self.blob, e.value)))
    }
}

/// The subnets a request selecting one subnet may be served from.
#[derive(Debug)]
pub(crate) struct Candidates {
    /// In preference order: the selected subnet alone, or every member of its shared network
    /// in the configured order. Never empty (the selected subnet is always a member).
    pub list: Box<[SubnetId]>,
    /// Each member's network as `(mask, address)`, in `list` order: which of them holds an
    /// address is asked of every REQUEST, and this answers it without the configuration.
    pub networks: Box<[(u32, u32)]>,
    /// The identifier kinds the reservations of these subnets use: a request's identifiers of
    /// other kinds cannot match there and are not hashed, and a request selecting subnets
    /// without reservations (the usual ISP access segment) skips the lookup altogether.
    pub reserved: IdKinds,
}

/// Everything the server precomputes about subnets.
#[derive(Debug, Default)]
pub(crate) struct SubnetIndex {
    pub networks: NetworkIndex,
    /// Packed VLAN pair ([`vlan_word`]) -> subnet serving that direct link.
    pub links: FxMap<u32, SubnetId>,
    /// Per subnet (indexed by `SubnetId.0`): the subnets a request selecting it may be served
    /// from, and the reservation kinds they use.
    pub candidates: Vec<Candidates>,
    /// Per subnet: its reservation indices.
    pub reservations: Vec<ReservationIndex>,
    /// Per subnet: its options.
    pub options: Vec<OptIndex>,
    /// Per subnet: the lease timers of a client that asks for no particular lease time (the
    /// usual client), computed once instead of per reply.
    pub default_timers: Vec<super::reply::Timers>,
    /// Every server identifier we answer with, sorted (option 54 "is it us?" check).
    pub server_ids: Vec<u32>,
}

impl SubnetIndex {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        Self::with_cache_entries(config, super::optcache::DEFAULT_ENTRIES)
    }

    /// As [`Self::new`], with an option block cache of `cache_entries` entries (0: none).
    pub(crate) fn with_cache_entries(config: &ServerConfig, cache_entries: usize) -> Self {
        let n = config.subnets.len();
        let valid = |id: SubnetId| (id.0 as usize) < n && config.subnets[id.0 as usize].id == id;
        let mut links = FxMap::default();
        for s in &config.subnets {
            for l in &s.links {
                links.entry(vlan_word(l.outer, l.inner)).or_insert(s.id);
            }
        }
        let reservations: Vec<ReservationIndex> = config
            .subnets
            .iter()
            .map(|s| ReservationIndex::new(&s.reservations))
            .collect();
        let candidates = config
            .subnets
            .iter()
            .map(|s| {
                let shared = s
                    .shared_network
                    .and_then(|i| config.shared_networks.get(i as usize))
                    .map(|sh| sh.subnets.as_slice())
                    .unwrap_or(&[]);
                let mut list: Vec<SubnetId> =
                    shared.iter().copied().filter(|&id| valid(id)).collect();
                list.dedup();
                if !list.contains(&s.id) {
                    list.insert(0, s.id);
                }
                let reserved = list.iter().fold(IdKinds::default(), |k, id| {
                    reservations
                        .get(id.0 as usize)
                        .map_or(k, |r| k.union(r.kinds()))
                });
                // An id naming no subnet (a hand-built configuration) gets a network that
                // holds no address: mask 0 leaves 0, never 1.
                let networks = list
                    .iter()
                    .map(|id| {
                        config
                            .subnets
                            .get(id.0 as usize)
                            .map_or((0, 1), |s| (s.network.mask(), u32::from(s.network.addr)))
                    })
                    .collect();
                Candidates {
                    list: list.into_boxed_slice(),
                    networks,
                    reserved,
                }
            })
            .collect();
        let cache = Arc::new(OptCache::new(cache_entries));
        let options = config
            .subnets
            .iter()
            .enumerate()
            .map(|(i, s)| OptIndex::with_cache(&s.options, Arc::clone(&cache), i as u32))
            .collect();
        let default_timers = config
            .subnets
            .iter()
            .map(|s| super::reply::Timers::for_subnet(s, None))
            .collect();
        let mut server_ids: Vec<u32> = config
            .subnets
            .iter()
            .map(|s| u32::from(s.server_id))
            .collect();
        server_ids.sort_unstable();
        server_ids.dedup();
        SubnetIndex {
            networks: NetworkIndex::new(config),
            links,
            candidates,
            reservations,
            options,
            default_timers,
            server_ids,
        }
    }

    /// The subnet for a direct link with these VLAN ids.
    #[inline]
    pub(crate) fn link(&self, outer: Option<u16>, inner: Option<u16>) -> Option<SubnetId> {
        if self.links.is_empty() {
            return None;
        }
        self.links.get(&vlan_word(outer, inner)).copied()
    }

    /// Candidate subnets for a selected subnet (itself alone when it is not shared); `None`
    /// for an id that names no subnet.
    #[inline]
    pub(crate) fn candidates(&self, id: SubnetId) -> Option<&Candidates> {
        self.candidates.get(id.0 as usize)
    }

    /// Whether `ip` is one of our server identifiers.
    #[inline]
    pub(crate) fn is_our_server_id(&self, ip: Ipv4Addr) -> bool {
        self.server_ids.binary_search(&u32::from(ip)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ipv4Net, Reservation};
    use crate::dhcp::testkit::{config, ip};

    #[test]
    fn longest_prefix_wins_and_misses_are_none() {
        let mut cfg = config();
        // Nest a /16 around subnet 0's /24 (the validator forbids it; the index still copes).
        let mut outer = cfg.subnets[0].clone();
        outer.id = SubnetId(7);
        outer.network = Ipv4Net {
            addr: ip(10, 0, 0, 0),
            prefix: 16,
        };
        cfg.subnets.push(outer);
        let ix = NetworkIndex::new(&cfg);
        assert_eq!(ix.lookup(ip(10, 0, 0, 77)), Some(SubnetId(0)));
        assert_eq!(ix.lookup(ip(10, 0, 9, 1)), Some(SubnetId(7)));
        assert_eq!(ix.lookup(ip(10, 3, 0, 255)), Some(SubnetId(3)));
        assert_eq!(ix.lookup(ip(10, 6, 0, 0)), Some(SubnetId(6)));
        assert_eq!(ix.lookup(ip(10, 7, 0, 1)), None);
        assert_eq!(ix.lookup(ip(192, 168, 0, 1)), None);
    }

    #[test]
    fn vlan_words_are_distinct() {
        let words = [
            vlan_word(None, None),
            vlan_word(Some(0), None),
            vlan_word(Some(0), Some(0)),
            vlan_word(Some(1), None),
            vlan_word(None, Some(1)),
            vlan_word(Some(1), Some(1)),
        ];
        for (i, a) in words.iter().enumerate() {
            for b in &words[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    fn res(key: ReservationKey, last: u8) -> Reservation {
        Reservation {
            key,
            address: Some(ip(10, 0, 0, last)),
            options: OptionSet::default(),
            filename: None,
            server_name: None,
            next_server: None,
        }
    }

    #[test]
    fn reservation_lookup_order_and_addresses() {
        let list = vec![
            res(ReservationKey::Mac([2, 0, 0, 0, 0, 1]), 11),
            res(ReservationKey::ClientId(vec![1, 2, 3].into()), 12),
            res(ReservationKey::CircuitId(b"c".to_vec().into()), 13),
            res(ReservationKey::RemoteId(b"r".to_vec().into()), 14),
            res(
                ReservationKey::Vlan {
                    outer: 5,
                    inner: Some(6),
                },
                15,
            ),
            // A duplicate key: the first one wins.
            res(ReservationKey::Mac([2, 0, 0, 0, 0, 1]), 16),
        ];
        let ix = ReservationIndex::new(&list);
        assert!(ix.kinds().any());
        let all = HostIds {
            client_id: Some(&[1, 2, 3]),
            mac: Some([2, 0, 0, 0, 0, 1]),
            circuit_id: Some(b"c"),
            remote_id: Some(b"r"),
            vlan: Some((5, Some(6))),
        };
        assert_eq!(ix.find(&all), Some(1), "client id first");
        let no_id = HostIds {
            client_id: Some(&[9]),
            ..all
        };
        assert_eq!(ix.find(&no_id), Some(0), "then MAC");
        let line = HostIds {
            client_id: None,
            mac: Some([2, 0, 0, 0, 0, 9]),
            ..all
        };
        assert_eq!(ix.find(&line), Some(2), "then circuit id");
        let remote = HostIds {
            circuit_id: None,
            ..line
        };
        assert_eq!(ix.find(&remote), Some(3), "then remote id");
        let vlan = HostIds {
            remote_id: Some(b"x"),
            ..remote
        };
        assert_eq!(ix.find(&vlan), Some(4), "then the VLAN pair");
        let wrong_inner = HostIds {
            vlan: Some((5, None)),
            ..vlan
        };
        assert_eq!(ix.find(&wrong_inner), None);
        assert_eq!(ix.by_address(ip(10, 0, 0, 13)), Some(2));
        assert_eq!(ix.by_address(ip(10, 0, 0, 16)), Some(5));
        assert_eq!(ix.by_address(ip(10, 0, 0, 99)), None);
        assert!(!ReservationIndex::new(&[]).kinds().any());
        assert_eq!(ReservationIndex::new(&[]).by_address(ip(0, 0, 0, 0)), None);
        // Inside the span of fixed addresses but not one of them, and either side of it.
        let sparse = ReservationIndex::new(&[
            res(ReservationKey::Mac([2, 0, 0, 0, 0, 1]), 20),
            res(ReservationKey::Mac([2, 0, 0, 0, 0, 2]), 30),
        ]);
        let found = [19, 20, 25, 30, 31].map(|last| sparse.by_address(ip(10, 0, 0, last)));
        assert_eq!(found, [None, Some(0), None, Some(1), None]);
    }

    #[test]
    fn option_index_matches_the_option_set() {
        let mut set = OptionSet::default();
        set.set(3, vec![10, 0, 0, 1]);
        set.set(1, vec![255, 255, 255, 0]);
        set.set(254, vec![]);
        set.set(119, vec![7; 300]);
        set.set(crate::wire::opt::LEASE_TIME, vec![0, 0, 1, 0]);
        let ix = OptIndex::new(&set);
        let mut all = Vec::new();
        for code in 0..=255u8 {
            assert_eq!(ix.get(code), set.get(code), "code {code}");
            // Encoded as the writer writes it, except the options the decision owns.
            let want = set
                .get(code)
                .filter(|_| !super::super::reply::is_protocol_option(code))
                .map(|v| {
                    let mut e = Vec::new();
                    crate::wire::encode_option(&mut e, code, v);
                    e
                });
            assert_eq!(ix.encoded(code), want.as_deref(), "code {code}");
            all.extend(want.unwrap_or_default());
        }
        assert!(ix.iter().eq(set.iter()));
        assert_eq!(ix.encoded(crate::wire::opt::LEASE_TIME), None);
        // 119 (300 bytes) is split in two instances (RFC 3396).
        assert_eq!(ix.encoded(119).map(<[u8]>::len), Some(300 + 4));
        assert_eq!(
            ix.all_encoded(),
            (&all[..], crate::wire::ReplyWriter::block_sum(&all))
        );
    }

    #[test]
    fn subnet_index_candidates_links_and_server_ids() {
        let cfg = config();
        let ix = SubnetIndex::new(&cfg);
        let list = |id| ix.candidates(id).map(|c| &c.list[..]);
        assert_eq!(list(SubnetId(4)), Some(&[SubnetId(4), SubnetId(5)][..]));
        assert_eq!(list(SubnetId(5)), Some(&[SubnetId(4), SubnetId(5)][..]));
        assert_eq!(list(SubnetId(0)), Some(&[SubnetId(0)][..]));
        assert_eq!(list(SubnetId(99)), None);
        assert_eq!(ix.link(None, None), Some(SubnetId(0)));
        assert_eq!(ix.link(Some(100), None), Some(SubnetId(2)));
        assert_eq!(ix.link(Some(200), Some(31)), Some(SubnetId(3)));
        assert_eq!(ix.link(Some(200), None), None);
        assert!(ix.is_our_server_id(ip(192, 0, 2, 1)));
        assert!(ix.is_our_server_id(ip(10, 3, 0, 1)));
        assert!(!ix.is_our_server_id(ip(10, 3, 0, 2)));
        // Reservation kinds per candidate list: LAN has MAC and client-id reservations, the
        // shared network none.
        let reserved = |id| ix.candidates(id).map(|c| c.reserved);
        assert_eq!(
            reserved(SubnetId(0)),
            Some(IdKinds::MAC.union(IdKinds::CLIENT_ID))
        );
        assert_eq!(reserved(SubnetId(4)), Some(IdKinds::default()));
    }

    #[test]
    fn broken_shared_network_references_are_repaired() {
        let mut cfg = config();
        // A shared network listing an unknown subnet and not listing a member.
        cfg.shared_networks[0].subnets = vec![SubnetId(42), SubnetId(5)];
        let ix = SubnetIndex::new(&cfg);
        let list = |ix: &SubnetIndex, id| ix.candidates(id).map(|c| c.list.to_vec());
        assert_eq!(list(&ix, SubnetId(4)), Some(vec![SubnetId(4), SubnetId(5)]));
        assert_eq!(list(&ix, SubnetId(5)), Some(vec![SubnetId(5)]));
        cfg.subnets[0].shared_network = Some(9);
        let ix = SubnetIndex::new(&cfg);
        assert_eq!(list(&ix, SubnetId(0)), Some(vec![SubnetId(0)]));
    }
}
