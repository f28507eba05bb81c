//! The validated runtime model the DHCP decision reads.
//!
//! Everything here has been checked by [`super::load`] (or built by [`super::zero_config`]):
//! ranges lie inside their subnet, reservations do not collide, lease-time bounds are ordered,
//! option payloads are already encoded. The hot path never re-validates and never allocates
//! from this model; it only borrows.

use std::net::Ipv4Addr;

/// Dense index of a subnet in [`ServerConfig::subnets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubnetId(pub u32);

/// An IPv4 network: address (host bits zero) and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    /// Netmask as a host-order `u32`.
    pub const fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }
    /// Whether `ip` lies in this network.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == u32::from(self.addr)
    }
    /// Directed broadcast address.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
    /// Netmask as an address (option 1).
    pub fn netmask(self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }
    /// The network containing `addr` with `prefix` bits (host bits cleared); `None` when
    /// `prefix > 32`.
    pub fn containing(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        if prefix > 32 {
            return None;
        }
        let net = Ipv4Net { addr, prefix };
        Some(Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & net.mask()),
            prefix,
        })
    }
    /// First and last address of the network (network and broadcast address included).
    pub fn bounds(self) -> AddrRange {
        AddrRange {
            start: self.addr,
            end: self.broadcast(),
        }
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Inclusive address range `start..=end` (host order comparisons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRange {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl AddrRange {
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(self.start)..=u32::from(self.end)).contains(&u32::from(ip))
    }
    pub fn len(self) -> u64 {
        u64::from(u32::from(self.end)) - u64::from(u32::from(self.start)) + 1
    }
    pub fn is_empty(self) -> bool {
        false
    }
    /// Whether the two ranges share at least one address.
    pub fn overlaps(self, other: AddrRange) -> bool {
        u32::from(self.start) <= u32::from(other.end)
            && u32::from(other.start) <= u32::from(self.end)
    }
}

impl std::fmt::Display for AddrRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Lease-time policy of a subnet (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimes {
    /// Granted when the client asks for nothing (no option 51).
    pub default: u32,
    /// Lower bound on a requested time.
    pub min: u32,
    /// Upper bound on a requested time.
    pub max: u32,
    /// Renewal time T1 as a fraction of the lease, in 1/1000 (default 500 = 50 %).
    pub t1_permille: u16,
    /// Rebinding time T2 as a fraction of the lease, in 1/1000 (default 875 = 87.5 %).
    pub t2_permille: u16,
}

impl Default for LeaseTimes {
    fn default() -> Self {
        LeaseTimes {
            default: 3600,
            min: 60,
            max: 86_400,
            t1_permille: 500,
            t2_permille: 875,
        }
    }
}

/// DHCP options as already-encoded payloads, sorted by code, at most one entry per code.
/// Values longer than 255 bytes are split by the emitter (RFC 3396).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptionSet {
    items: Vec<(u8, Box<[u8]>)>,
}

impl OptionSet {
    /// Set (or replace) the payload of `code`.
    pub fn set(&mut self, code: u8, value: impl Into<Box<[u8]>>) {
        let value = value.into();
        match self.items.binary_search_by_key(&code, |(c, _)| *c) {
            Ok(i) => self.items[i].1 = value,
            Err(i) => self.items.insert(i, (code, value)),
        }
    }
    /// Payload of `code`, if configured.
    pub fn get(&self, code: u8) -> Option<&[u8]> {
        self.items
            .binary_search_by_key(&code, |(c, _)| *c)
            .ok()
            .map(|i| &*self.items[i].1)
    }
    /// All options in code order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.items.iter().map(|(c, v)| (*c, &**v))
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Number of configured codes.
    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// What identifies a reserved host.
///
/// The derived order (variant, then bytes) is the order of [`Subnet::reservations`], so a
/// borrowed [`KeyRef`] built from a request finds a reservation by binary search.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReservationKey {
    /// Ethernet hardware address (chaddr with htype 1, hlen 6).
    Mac([u8; 6]),
    /// Option 61 payload, byte for byte (type byte included).
    ClientId(Box<[u8]>),
    /// Option 82 sub-option 1 (agent circuit id).
    CircuitId(Box<[u8]>),
    /// Option 82 sub-option 2 (agent remote id).
    RemoteId(Box<[u8]>),
    /// The VLAN pair the request arrived with: outer (S-tag or the only tag), inner (C-tag).
    Vlan { outer: u16, inner: Option<u16> },
}

impl ReservationKey {
    /// The borrowed form, comparable with keys built from a request without allocating.
    pub fn as_key_ref(&self) -> KeyRef<'_> {
        match self {
            ReservationKey::Mac(m) => KeyRef::Mac(*m),
            ReservationKey::ClientId(b) => KeyRef::ClientId(b),
            ReservationKey::CircuitId(b) => KeyRef::CircuitId(b),
            ReservationKey::RemoteId(b) => KeyRef::RemoteId(b),
            ReservationKey::Vlan { outer, inner } => KeyRef::Vlan {
                outer: *outer,
                inner: *inner,
            },
        }
    }
}

/// A [`ReservationKey`] borrowed from a request (same variants, same order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyRef<'a> {
    Mac([u8; 6]),
    ClientId(&'a [u8]),
    CircuitId(&'a [u8]),
    RemoteId(&'a [u8]),
    Vlan { outer: u16, inner: Option<u16> },
}

/// A host reservation: a fixed address and/or per-host parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub key: ReservationKey,
    /// Fixed address; `None` = dynamic address from the pool, but with these parameters.
    pub address: Option<Ipv4Addr>,
    /// Per-host options; they override the subnet's.
    pub options: OptionSet,
    /// BOOTP `file` field.
    pub filename: Option<Box<[u8]>>,
    /// BOOTP `sname` field.
    pub server_name: Option<Box<[u8]>>,
    /// BOOTP `siaddr` (next server).
    pub next_server: Option<Ipv4Addr>,
}

/// A directly attached link: how a non-relayed request is mapped to a subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkMatch {
    /// Outer VLAN id, `None` = untagged.
    pub outer: Option<u16>,
    /// Inner VLAN id (QinQ), `None` = single tag or untagged; `Some(_)` requires `outer`.
    pub inner: Option<u16>,
}

/// One IPv4 subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub id: SubnetId,
    pub network: Ipv4Net,
    /// Dynamic ranges, sorted, non-overlapping, inside `network`.
    pub ranges: Vec<AddrRange>,
    /// Addresses inside `ranges` that must never be handed out (sorted).
    ///
    /// The file loader and `zero_config` carve `exclude` entries out of `ranges` instead, so
    /// `ranges` is exactly the dynamic pool and this list is empty for the configs they build;
    /// hand-built configs may still use it.
    pub excluded: Vec<Ipv4Addr>,
    /// Server identifier (option 54) and source address of replies on this subnet.
    pub server_id: Ipv4Addr,
    pub lease: LeaseTimes,
    /// Options sent to every client on this subnet (1, 3, 6, 15, 28, 42, 119, 121, any code).
    /// Option 1 and 28 are filled in from `network` by the validator when not configured.
    pub options: OptionSet,
    /// Sorted by `key` (the validator guarantees it and that keys are unique), see
    /// [`Subnet::reservation`].
    pub reservations: Vec<Reservation>,
    /// Index into [`ServerConfig::shared_networks`].
    pub shared_network: Option<u32>,
    /// Direct links (VLAN pairs) on which this subnet serves non-relayed clients (sorted).
    pub links: Vec<LinkMatch>,
    /// BOOTP `file`, `sname`, `siaddr` defaults for the subnet.
    pub filename: Option<Box<[u8]>>,
    pub server_name: Option<Box<[u8]>>,
    pub next_server: Option<Ipv4Addr>,
}

impl Subnet {
    /// Whether `ip` lies in a dynamic range (and is not excluded).
    pub fn in_pool(&self, ip: Ipv4Addr) -> bool {
        let ip_u = u32::from(ip);
        let i = self.ranges.partition_point(|r| u32::from(r.end) < ip_u);
        self.ranges.get(i).is_some_and(|r| r.contains(ip))
            && self.excluded.binary_search(&ip).is_err()
    }
    /// The reservation for `key` (binary search; no allocation).
    pub fn reservation(&self, key: KeyRef<'_>) -> Option<&Reservation> {
        self.reservations
            .binary_search_by(|r| r.key.as_key_ref().cmp(&key))
            .ok()
            .map(|i| &self.reservations[i])
    }
    /// Total number of addresses in the dynamic ranges.
    pub fn pool_size(&self) -> u64 {
        self.ranges.iter().map(|r| r.len()).sum()
    }
}

/// An empty subnet (0.0.0.0/0, no ranges, default lease times, no options) to fill in with
/// struct-update syntax, so that code building a model by hand (tests, benches) names only the
/// fields it cares about and keeps compiling when the model grows. Not a servable subnet: the
/// validator never produces it.
impl Default for Subnet {
    fn default() -> Self {
        Subnet {
            id: SubnetId(0),
            network: Ipv4Net {
                addr: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
            },
            ranges: Vec::new(),
            excluded: Vec::new(),
            server_id: Ipv4Addr::UNSPECIFIED,
            lease: LeaseTimes::default(),
            options: OptionSet::default(),
            reservations: Vec::new(),
            shared_network: None,
            links: Vec::new(),
            filename: None,
            server_name: None,
            next_server: None,
        }
    }
}

/// Several subnets on one physical link (RFC 2131 calls it a network segment): a request that
/// selects one of them may be served from any of them, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedNetwork {
    pub name: String,
    pub subnets: Vec<SubnetId>,
}

/// Whether leases must be on disk before an ACK leaves (the journal issue wires this up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    #[default]
    Fsync,
    None,
}

/// The whole validated server configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Subnets, indexed by `SubnetId.0`; sorted by network address and non-overlapping (the
    /// validator guarantees it), see [`ServerConfig::subnet_containing`].
    pub subnets: Vec<Subnet>,
    pub shared_networks: Vec<SharedNetwork>,
    /// RFC 2131 §4.3.2: an authoritative server NAKs requests for addresses it does not know on
    /// a subnet it serves; a non-authoritative one stays silent.
    pub authoritative: bool,
    /// How long an OFFER holds its address for the client (seconds).
    pub offer_hold: u32,
    /// How long a DECLINEd address stays out of the pool (seconds).
    pub decline_probation: u32,
    /// Fallback subnet for untagged direct requests that match no `links` entry.
    pub default_subnet: Option<SubnetId>,
    pub durability: Durability,
    /// Directory for the lease journal (persistence issue).
    pub state_dir: std::path::PathBuf,
}

impl ServerConfig {
    pub fn subnet(&self, id: SubnetId) -> &Subnet {
        &self.subnets[id.0 as usize]
    }

    /// The subnet whose network contains `ip` (giaddr, RFC 3527 link selection, RFC 3011
    /// subnet selection, ciaddr). Binary search over the sorted subnets; no allocation.
    pub fn subnet_containing(&self, ip: Ipv4Addr) -> Option<SubnetId> {
        let ip_u = u32::from(ip);
        let i = self
            .subnets
            .partition_point(|s| u32::from(s.network.addr) <= ip_u);
        let s = self.subnets.get(i.checked_sub(1)?)?;
        s.network.contains(ip).then_some(s.id)
    }

    /// The subnet serving a direct (non-relayed) request that arrived with these VLAN tags: a
    /// subnet listing that exact link, else the default subnet for untagged frames.
    pub fn subnet_for_link(&self, outer: Option<u16>, inner: Option<u16>) -> Option<SubnetId> {
        let link = LinkMatch { outer, inner };
        self.subnets
            .iter()
            .find(|s| s.links.binary_search(&link).is_ok())
            .map(|s| s.id)
            .or(if outer.is_none() {
                self.default_subnet
            } else {
                None
            })
    }

    /// Every distinct server identifier, sorted: the unicast addresses relays and renewing
    /// clients send to (the XDP program must steer them to us). Not for the per-packet path.
    pub fn server_addresses(&self) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = self.subnets.iter().map(|s| s.server_id).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The subnets a request selecting `id` may be served from, in preference order: the
    /// members of its shared network, or `id` alone.
    pub fn candidates(&self, id: SubnetId) -> &[SubnetId] {
        let s = self.subnet(id);
        match s
            .shared_network
            .and_then(|n| self.shared_networks.get(n as usize))
        {
            Some(shared) => &shared.subnets,
            None => std::slice::from_ref(&s.id),
        }
    }
}
