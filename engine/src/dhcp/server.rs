//! [`Server`]: subnet selection, client identity and the per-message-type decisions.

use super::destination::ReplyKind;
use super::facts::Facts;
use super::index::{Candidates, HostIds, IdKinds, OptIndex, SubnetIndex};
use super::reply::{self, ReplySpec, Timers, Written};
use super::stats::{Stats, msg};
use super::{Link, Verdict};
use crate::config::{Reservation, ServerConfig, Subnet, SubnetId};
use crate::lease::{
    BindRequest, ClientKey, LeaseInfo, LeaseState, LeaseTables, LookupHint, OfferRequest, Secs,
};
use crate::wire::{self, DropReason, HTYPE_ETHERNET, MessageType, Request};
use std::cell::Cell;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Longest client identifier kept whole when a client split option 61 (RFC 3396). Ids are
/// compared in full up to this length; nothing real comes close (DUIDs are at most 130 bytes).
const MAX_SPLIT_CLIENT_ID: usize = 1024;

/// Option 56 texts for NAKs (RFC 2132 §9.9), static so nothing is formatted per packet.
mod nak_text {
    pub const WRONG_NETWORK: &[u8] = b"requested address is not on this network";
    pub const NOT_AVAILABLE: &[u8] = b"requested address is not available";
    pub const NOT_YOURS: &[u8] = b"requested address is not this client's";
}

/// The DHCPv4 decision for one server configuration. `Send + Sync`: every worker core shares
/// one `Server` (behind an `Arc` or a reference) and calls [`Server::handle`] concurrently.
pub struct Server {
    config: Arc<ServerConfig>,
    leases: Arc<LeaseTables>,
    index: SubnetIndex,
    /// See [`Server::with_home_link`].
    home: HomeLink,
}

/// The link a server usually serves and what it alone decides, resolved once.
#[derive(Clone, Copy, Debug)]
struct HomeLink {
    /// The link's address.
    addr: Ipv4Addr,
    /// The subnet serving its untagged direct requests that match no configured link.
    untagged: Option<SubnetId>,
}

// Workers share one `Server`.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Server>();
};

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("subnets", &self.config.subnets.len())
            .field("authoritative", &self.config.authoritative)
            .field("lease_shards", &self.leases.shards())
            .finish_non_exhaustive()
    }
}

/// A matched reservation.
#[derive(Clone, Copy, Debug)]
struct Host<'c> {
    /// The subnet whose reservation list holds it.
    subnet: SubnetId,
    /// Its index in that list.
    index: u32,
    res: &'c Reservation,
}

impl Host<'_> {
    fn fixed(&self) -> Option<Ipv4Addr> {
        self.res.address
    }
}

/// A received frame after phase one ([`Server::prepare`]), borrowing the frame (`'r`) and the
/// server (`'c`); [`Server::respond`] decides on it.
///
/// WHY two phases: a client's lookup in the lease tables is a chain of cache misses on a
/// large table (its shard's index filter word, then for a known client its index bucket and
/// its address's slot). A worker prepares every frame of a received batch first, which
/// prefetches the filter words and the named addresses' slots, then [`Server::touch`]es each
/// to prefetch the buckets of clients the filter says may be known, so the misses of a batch
/// overlap; the decisions that follow find the memory cached. `prepare` reads no lease state,
/// so the order of decisions is unchanged.
///
/// The fields are filled in place, one after the other, rather than assembled from parts: the
/// request and its facts are a few hundred bytes, and every move of them is a copy. For the
/// same reason what phase one found is not cleared for a frame that did not parse: it keeps
/// what it held, and nothing reads it.
pub struct Prepared<'r, 'c> {
    /// The parsed request, or why the frame did not parse.
    req: Result<Request<'r>, DropReason>,
    /// What phase one found about `req`, when it parsed; `None` only in a record that has
    /// not held a request yet. WHY an `Option`: a placeholder ([`Default`], a worker's batch
    /// array) is then a few tag stores, and the ~200 bytes of findings are first written by
    /// `prepare_into`, once per slot of the array, instead of per placeholder built.
    found: Option<Found<'r, 'c>>,
    /// The client's coming lease table lookup ([`Server::touch`]).
    hint: Option<LookupHint<'c>>,
}

/// Phase one's findings about a request that parsed.
struct Found<'r, 'c> {
    facts: Facts<'r>,
    client: ClientKey,
    route: Route<'c>,
}

impl Found<'_, '_> {
    /// A placeholder for [`Server::prepare_into`] to overwrite (built, not a `const`: see
    /// [`Facts::none`]).
    #[inline(always)]
    fn none<'r, 'c>() -> Found<'r, 'c> {
        Found {
            facts: Facts::none(),
            client: ClientKey::none(),
            route: Route::Drop(DropReason::Ignored),
        }
    }
}

impl Default for Prepared<'_, '_> {
    /// A placeholder (a frame too short to parse) for fixed-size arrays.
    fn default() -> Self {
        Prepared {
            req: Err(DropReason::EthTruncated),
            found: None,
            hint: None,
        }
    }
}

impl core::fmt::Debug for Prepared<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Prepared");
        match (&self.req, &self.found) {
            (Ok(_), Some(found)) => match found.route {
                Route::Drop(reason) => d.field("dropped", &reason),
                _ => d
                    .field("type", &found.facts.mtype)
                    .field("client", &found.client),
            },
            (Err(reason), _) => d.field("dropped", reason),
            (Ok(_), None) => &mut d,
        };
        d.finish_non_exhaustive()
    }
}

/// Where a parsed request goes.
enum Route<'c> {
    /// No decision: its message has no subnet, or is not one a server answers.
    Drop(DropReason),
    Release,
    Decline,
    /// DISCOVER, REQUEST, INFORM: served from `candidates` (see [`Ctx`]).
    Serve {
        selected: SubnetId,
        candidates: &'c Candidates,
        host: Option<Host<'c>>,
    },
}

/// Facts about the request every decision needs, computed once (borrowed from the
/// [`Prepared`] record, not copied out of it).
struct Ctx<'r, 'c> {
    req: &'r Request<'r>,
    facts: &'r Facts<'r>,
    link: &'r Link,
    now: Secs,
    client: &'r ClientKey,
    /// The subnet the request selected (giaddr, link, ...): its server answers NAKs.
    selected: SubnetId,
    /// Subnets the request may be served from, in preference order: the selected one, or
    /// every member of its shared network in the configured order.
    candidates: &'c Candidates,
    host: Option<Host<'c>>,
    /// Set when a reply went out without the request's option 82 echo (it did not fit), for
    /// the counters. A cell so that the decisions, which only borrow the context, report it
    /// without a wider return value being copied back through each of them.
    echo_omitted: Cell<bool>,
}

impl Ctx<'_, '_> {
    /// The verdict for the reply `w`, message type `sent`, with the lease change `commit`.
    fn replied(&self, w: Written, commit: Option<LeaseInfo>, sent: u8) -> Verdict {
        if w.echo_omitted {
            self.echo_omitted.set(true);
        }
        Verdict::Reply {
            len: w.len,
            commit,
            msg: sent,
        }
    }
}

/// The subnet serving an untagged direct request that matches no configured link, when it
/// arrives on a link whose address is `addr` (see [`Server::select_subnet`]).
fn untagged_subnet(config: &ServerConfig, index: &SubnetIndex, addr: Ipv4Addr) -> Option<SubnetId> {
    (!addr.is_unspecified())
        .then(|| index.networks.lookup(addr))
        .flatten()
        .or(config.default_subnet)
}

impl Server {
    /// Build the decision for `config`, precomputing every lookup index (this is the only
    /// place that allocates).
    pub fn new(config: Arc<ServerConfig>, leases: Arc<LeaseTables>) -> Self {
        let index = SubnetIndex::new(&config);
        Self::with_index(config, leases, index)
    }

    /// As [`Self::new`], without the option block cache (tests compare the two).
    #[cfg(test)]
    pub(crate) fn without_option_cache(
        config: Arc<ServerConfig>,
        leases: Arc<LeaseTables>,
    ) -> Self {
        let index = SubnetIndex::with_cache_entries(&config, 0);
        Self::with_index(config, leases, index)
    }

    fn with_index(config: Arc<ServerConfig>, leases: Arc<LeaseTables>, index: SubnetIndex) -> Self {
        let home = HomeLink {
            addr: Ipv4Addr::UNSPECIFIED,
            untagged: untagged_subnet(&config, &index, Ipv4Addr::UNSPECIFIED),
        };
        Server {
            config,
            leases,
            index,
            home,
        }
    }

    /// Resolve ahead what depends on the link alone for frames arriving on `link` (the subnet
    /// of its address), once instead of per frame. A server is normally given frames from one
    /// link (each worker handler serves one interface); frames from any other link are
    /// served all the same, looking that up per frame.
    #[must_use]
    pub fn with_home_link(mut self, link: &Link) -> Self {
        self.home = HomeLink {
            addr: link.addr,
            untagged: untagged_subnet(&self.config, &self.index, link.addr),
        };
        self
    }

    /// The configuration this server answers with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The lease tables this server allocates from.
    pub fn leases(&self) -> &LeaseTables {
        &self.leases
    }

    /// Decide on one received frame `rx` (arrived on `link` at time `now`), writing the reply,
    /// if any, into `tx`. Counts the outcome in `stats`. Never panics, allocates, or reads a
    /// clock. The same as [`Self::respond`] to [`Self::prepare`]; a worker with a batch of
    /// frames calls those two in separate passes (see [`Prepared`]).
    pub fn handle(
        &self,
        rx: &[u8],
        tx: &mut [u8],
        link: &Link,
        now: Secs,
        stats: &mut Stats,
    ) -> Verdict {
        let p = self.prepare(rx, link, stats);
        self.respond(&p, tx, link, now, stats)
    }

    /// Phase one of a decision: parse and validate `rx`, identify the client, select the
    /// subnet and the reservation, and prefetch the lease table memory the decision will
    /// read ([`LeaseTables::prefetch`], and the slot of the address the request names). Reads
    /// no lease state, so preparing a whole batch first and then responding to each in turn
    /// gives the same replies as handling them one by one. Counts the frame and its message
    /// type.
    pub fn prepare<'r>(&self, rx: &'r [u8], link: &Link, stats: &mut Stats) -> Prepared<'r, '_> {
        let mut p = Prepared::default();
        self.prepare_into(rx, link, stats, &mut p);
        p
    }

    /// [`Self::prepare`] into `p` (a slot of the caller's batch array, written in place: a
    /// `Prepared` is a few hundred bytes, and returning it by value copies it).
    pub fn prepare_into<'r, 'c>(
        &'c self,
        rx: &'r [u8],
        link: &Link,
        stats: &mut Stats,
        p: &mut Prepared<'r, 'c>,
    ) {
        stats.frames += 1;
        wire::parse_into(rx, &mut p.req);
        p.hint = None;
        let Ok(req) = &p.req else {
            return;
        };
        let mtype = req.options.message_type();
        stats.requests[Stats::slot(u8::from(mtype))] += 1;
        let found = p.found.get_or_insert_with(Found::none);
        // Written in place (see `Facts::fill`).
        found.facts.fill(&req.options, mtype);
        let facts = &found.facts;
        found.route = self.classify(req, facts, link, &mut found.client);
        // A REQUEST selecting an offer (SELECTING: it names a server) is decided from the
        // named address's slot alone when that slot holds the client's offer, the usual case;
        // the client's index entry is then never read, so it is not fetched either.
        let selecting = facts.mtype == MessageType::Request && facts.server_id.is_some();
        if let Route::Serve { candidates, .. } = found.route
            && let Some(&sid) = candidates.list.first()
            && !selecting
        {
            // The first candidate is where the client's lease is looked for first; the
            // others (a shared network) are rarer and left to the lookup.
            p.hint = self.leases.prefetch(&found.client, sid);
        }
        // The address the request names (INIT-REBOOT, SELECTING, RENEWING, RELEASE,
        // DECLINE): its slot is read whatever the decision.
        if let Some(a) = facts
            .requested_ip
            .or((!req.ciaddr.is_unspecified()).then_some(req.ciaddr))
        {
            self.leases.prefetch_addr(a);
        }
    }

    /// Between the phases, for each prepared frame of a batch: the second step of its
    /// prefetches (the client's index bucket, for a client the tables may know, see
    /// [`LookupHint::prefetch_bucket`]), issued once the first step had time to arrive.
    #[inline]
    pub fn touch(&self, p: &Prepared<'_, '_>) {
        if let Some(h) = &p.hint {
            h.prefetch_bucket();
        }
    }

    /// Phase two: decide on a prepared frame with the lease tables as they are now, write
    /// the reply, if any, into `tx`, and count the outcome. `link` must be the one given to
    /// [`Self::prepare`].
    pub fn respond(
        &self,
        p: &Prepared<'_, '_>,
        tx: &mut [u8],
        link: &Link,
        now: Secs,
        stats: &mut Stats,
    ) -> Verdict {
        let verdict = self.decide(p, tx, link, now, stats);
        match verdict {
            Verdict::Drop(reason) => stats.drop(reason),
            Verdict::NoReply { .. } => {
                stats.drop(DropReason::NoReplyNeeded);
                stats.commits += 1;
            }
            Verdict::Reply { commit, msg, .. } => {
                stats.replies[Stats::slot(msg)] += 1;
                if commit.is_some() {
                    stats.commits += 1;
                }
            }
        }
        verdict
    }

    fn subnet(&self, id: SubnetId) -> Option<&Subnet> {
        self.config.subnets.get(id.0 as usize)
    }

    /// The lease timers for a client of `subnet` (`id`) that asked for `requested` seconds
    /// (option 51): precomputed when it asked for nothing (see [`Timers::for_subnet`]).
    fn timers(&self, id: SubnetId, subnet: &Subnet, requested: Option<u32>) -> Timers {
        match (requested, self.index.default_timers.get(id.0 as usize)) {
            (None, Some(t)) => *t,
            _ => Timers::for_subnet(subnet, requested),
        }
    }

    /// A subnet and its option index.
    fn subnet_opts(&self, id: SubnetId) -> Option<(&Subnet, &OptIndex)> {
        Some((self.subnet(id)?, self.index.options.get(id.0 as usize)?))
    }

    /// Who the client is (RFC 2131 §4.2), written into `client`, and which route its message
    /// takes (phase one).
    fn classify(
        &self,
        req: &Request<'_>,
        facts: &Facts<'_>,
        link: &Link,
        client: &mut ClientKey,
    ) -> Route<'_> {
        // RFC 2131 §4.2: "If the client supplies a 'client identifier', the client MUST use
        // the same 'client identifier' in all subsequent messages, and the server MUST use that
        // identifier to identify the client. If the client does not provide a 'client
        // identifier' option, the server MUST use the contents of the 'chaddr' field to
        // identify the client." (htype is kept with chaddr, so equal bytes of different
        // hardware types stay different clients.)
        // `scratch` is only initialised for a split (RFC 3396) identifier.
        let mut scratch: [u8; MAX_SPLIT_CLIENT_ID];
        let client_id: Option<&[u8]> = match facts.client_id {
            None => None,
            Some(r) => match r.contiguous() {
                Some(s) => Some(s),
                None => {
                    scratch = [0; MAX_SPLIT_CLIENT_ID];
                    Some(r.copy_into(&mut scratch))
                }
            },
        };
        match client_id {
            Some(id) => client.set_client_id(id),
            None => client.set_hw(req.htype, req.hwaddr()),
        }

        self.route(req, facts, client_id, link)
    }

    /// Where the message goes: its subnets and reservation, for the types that need them.
    fn route(
        &self,
        req: &Request<'_>,
        facts: &Facts<'_>,
        client_id: Option<&[u8]>,
        link: &Link,
    ) -> Route<'_> {
        match facts.mtype {
            // RELEASE and DECLINE name their address and need no subnet: the lease tables
            // know which subnet the address belongs to.
            MessageType::Release => Route::Release,
            MessageType::Decline => Route::Decline,
            MessageType::Discover | MessageType::Request | MessageType::Inform => {
                let Some(selected) = self.select_subnet(req, facts, link) else {
                    return Route::Drop(DropReason::NoSubnet);
                };
                let Some(candidates) = self.index.candidates(selected) else {
                    // A default subnet naming no subnet (a hand-built configuration).
                    return Route::Drop(DropReason::NoSubnet);
                };
                Route::Serve {
                    selected,
                    candidates,
                    host: self.find_host(req, facts, client_id, candidates),
                }
            }
            _ => Route::Drop(DropReason::UnexpectedMessageType),
        }
    }

    /// The decision on a prepared frame (phase two).
    fn decide(
        &self,
        p: &Prepared<'_, '_>,
        tx: &mut [u8],
        link: &Link,
        now: Secs,
        stats: &mut Stats,
    ) -> Verdict {
        let (req, found) = match (&p.req, &p.found) {
            (Err(reason), _) => return Verdict::Drop(*reason),
            (Ok(req), Some(found)) => (req, found),
            // Not produced by `prepare` (a request that parsed has its findings).
            (Ok(_), None) => return Verdict::Drop(DropReason::Ignored),
        };
        let (facts, client) = (&found.facts, &found.client);
        let (selected, candidates, host) = match found.route {
            Route::Drop(reason) => return Verdict::Drop(reason),
            Route::Release => return self.release(req, facts, client, now),
            Route::Decline => return self.decline(facts, client, now),
            Route::Serve {
                selected,
                candidates,
                host,
            } => (selected, candidates, host),
        };
        let ctx = Ctx {
            req,
            facts,
            link,
            now,
            client,
            selected,
            candidates,
            host,
            echo_omitted: Cell::new(false),
        };
        let verdict = match facts.mtype {
            MessageType::Discover => self.discover(&ctx, tx),
            MessageType::Request => self.request(&ctx, tx),
            _ => self.inform(&ctx, tx),
        };
        if ctx.echo_omitted.get() {
            stats.relay_echo_omitted += 1;
        }
        verdict
    }

    /// Which subnet serves this request.
    ///
    /// Order: RFC 3011 subnet selection (118), RFC 3527 link selection (82.5), giaddr, the
    /// client's own address when it unicasts to us (renewal), then the link it arrived on.
    fn select_subnet(&self, req: &Request<'_>, facts: &Facts<'_>, link: &Link) -> Option<SubnetId> {
        let nets = &self.index.networks;
        // RFC 3011 §1: the subnet selection option "takes precedence over the methods that the
        // DHCP server uses to determine the subnet on which to select an address". A selection
        // naming none of our subnets is not served (`NoSubnet`): answering from another subnet
        // would hand out an address the client explicitly did not ask for.
        if let Some(sel) = facts.subnet_selection {
            return nets.lookup(sel);
        }
        // RFC 3527 §3: "When the DHCP server is allocating an address and this sub-option is
        // present, then the DHCP server MUST allocate the address on either: o the subnet
        // specified in the link-selection sub-option, or; o a subnet on the same link (also
        // known as a network segment) as the subnet specified by the link-selection
        // sub-option." (the replies still go to giaddr.)
        if let Some(sel) = facts.relay.as_ref().and_then(|r| r.link_selection) {
            return nets.lookup(sel);
        }
        // RFC 2131 §4.3.1: a new address is "selected based on the subnet from which the
        // message was received (if 'giaddr' is 0) or on the address of the relay agent that
        // forwarded the message ('giaddr' when not 0)".
        if !req.giaddr.is_unspecified() {
            return nets.lookup(req.giaddr);
        }
        // RFC 2131 §4.3.2 (RENEWING): "Because 'giaddr' is therefore not filled in, the DHCP
        // server will trust the value in 'ciaddr', and use it when replying to the client."
        // A client renewing by unicast may be several routed hops away, so its link tells us
        // nothing; its address does. A broadcast (REBINDING, INFORM) is still matched by the
        // link below, and its ciaddr is then checked against that link's subnets.
        if !req.ciaddr.is_unspecified()
            && req.ip_dst != Ipv4Addr::BROADCAST
            && let Some(s) = nets.lookup(req.ciaddr)
        {
            return Some(s);
        }
        // A direct request: the VLAN pair it arrived with picks the subnet (one VLAN per
        // subscriber line or per access segment).
        let (outer, inner) = (req.l2.outer_vid(), req.l2.inner_vid());
        if let Some(s) = self.index.link(outer, inner) {
            return Some(s);
        }
        if outer.is_some() {
            // Tagged but unknown: never fall back to the untagged default segment.
            return None;
        }
        // Untagged: the subnet of the address of the link it arrived on, else the default
        // subnet; resolved ahead for the home link.
        if link.addr == self.home.addr {
            self.home.untagged
        } else {
            untagged_subnet(&self.config, &self.index, link.addr)
        }
    }

    /// The reservation matching the request in any of the `candidates` subnets (in candidate
    /// order).
    fn find_host<'c>(
        &'c self,
        req: &Request<'_>,
        facts: &Facts<'_>,
        client_id: Option<&[u8]>,
        candidates: &'c Candidates,
    ) -> Option<Host<'c>> {
        // Only the kinds these subnets' reservations use: the others cannot match and are
        // not hashed. Checked before anything is built, first as a cheap bound: subnets
        // without reservations stop here, and line identities (option 82's circuit and
        // remote ids, the VLAN pair) need a relay agent or a tag, so the usual direct untagged
        // request to a subnet whose reservations are all by line stops here too.
        let reserved = candidates.reserved;
        let relay = facts.relay.as_ref();
        let outer = req.l2.outer_vid();
        let possible = if relay.is_some() || outer.is_some() {
            IdKinds::ALL
        } else {
            IdKinds::HOST
        };
        if !reserved.intersect(possible).any() {
            return None;
        }
        let circuit_id = relay.and_then(|r| r.circuit_id);
        let remote_id = relay.and_then(|r| r.remote_id);
        let is_mac = req.htype == HTYPE_ETHERNET && req.hlen == 6;
        let kinds = reserved.intersect(
            IdKinds::when(client_id.is_some(), IdKinds::CLIENT_ID)
                .union(IdKinds::when(is_mac, IdKinds::MAC))
                .union(IdKinds::when(circuit_id.is_some(), IdKinds::CIRCUIT_ID))
                .union(IdKinds::when(remote_id.is_some(), IdKinds::REMOTE_ID))
                .union(IdKinds::when(outer.is_some(), IdKinds::VLAN)),
        );
        if !kinds.any() {
            return None;
        }
        let ids = HostIds {
            client_id: client_id.filter(|_| kinds.has(IdKinds::CLIENT_ID)),
            mac: kinds.has(IdKinds::MAC).then(|| {
                let mut m = [0u8; 6];
                m.copy_from_slice(&req.chaddr[..6]);
                m
            }),
            circuit_id: circuit_id.filter(|_| kinds.has(IdKinds::CIRCUIT_ID)),
            remote_id: remote_id.filter(|_| kinds.has(IdKinds::REMOTE_ID)),
            vlan: outer
                .filter(|_| kinds.has(IdKinds::VLAN))
                .map(|o| (o, req.l2.inner_vid())),
        };
        candidates.list.iter().find_map(|&s| {
            let i = self.index.reservations.get(s.0 as usize)?.find(&ids)?;
            let res = self.subnet(s)?.reservations.get(i as usize)?;
            Some(Host {
                subnet: s,
                index: i,
                res,
            })
        })
    }

    /// Whether `sid` (option 54) names this server: one of our subnets' identifiers, or the
    /// address a relay agent told the client to use instead (RFC 5107 §4).
    fn is_ours(&self, facts: &Facts<'_>, sid: Ipv4Addr) -> bool {
        self.index.is_our_server_id(sid)
            || facts.relay.as_ref().and_then(|r| r.server_id_override) == Some(sid)
    }

    /// The candidate subnet whose network contains `addr`.
    fn subnet_for(candidates: &Candidates, addr: Ipv4Addr) -> Option<SubnetId> {
        let addr = u32::from(addr);
        candidates
            .list
            .iter()
            .zip(&candidates.networks)
            .find(|&(_, &(mask, net))| addr & mask == net)
            .map(|(&s, _)| s)
    }

    /// The client's current offer or lease in the candidate subnets.
    fn active_record(&self, ctx: &Ctx<'_, '_>) -> Option<LeaseInfo> {
        ctx.candidates.list.iter().find_map(|&s| {
            self.leases
                .by_client(ctx.client, s)
                .filter(|l| l.is_active(ctx.now))
        })
    }

    /// Whether `addr` is another host's fixed address.
    fn reserved_for_other(&self, ctx: &Ctx<'_, '_>, sid: SubnetId, addr: Ipv4Addr) -> bool {
        let Some(i) = self
            .index
            .reservations
            .get(sid.0 as usize)
            .and_then(|r| r.by_address(addr))
        else {
            return false;
        };
        ctx.host
            .is_none_or(|mine| (mine.subnet, mine.index) != (sid, i))
    }

    // ---- DISCOVER ---------------------------------------------------------------------------

    fn discover(&self, ctx: &Ctx<'_, '_>, tx: &mut [u8]) -> Verdict {
        let req = ctx.req;
        // RFC 2131 §4.3.1: "If an address is available, the new address SHOULD be chosen as
        // follows: o The client's current address as recorded in the client's current binding,
        // ELSE o The client's previous address as recorded in the client's (now expired or
        // released) binding, if that address is in the server's pool of available addresses
        // and not already allocated, ELSE o The address requested in the 'Requested IP
        // Address' option, if that address is valid and not already allocated, ELSE o A new
        // address allocated from the server's pool of available addresses".
        // The lease tables implement exactly that order; a reservation's fixed address comes
        // before all of it.
        let offer = OfferRequest {
            client: *ctx.client,
            subnets: &ctx.candidates.list,
            requested: ctx.facts.requested_ip,
            fixed: ctx.host.and_then(|h| Some((h.subnet, h.fixed()?))),
            hold: self.config.offer_hold,
        };
        // Every refusal is counted as an exhausted pool: no free address in any candidate
        // subnet, or a reservation's fixed address that somebody else still holds (the host
        // is not moved to a pool address it would then be refused on REQUEST) or that is in
        // probation.
        let lease = match self.leases.offer(&offer, ctx.now) {
            Ok(l) => l,
            Err(_) => return Verdict::Drop(DropReason::PoolExhausted),
        };
        let Some((subnet, options)) = self.subnet_opts(lease.subnet) else {
            return Verdict::Drop(DropReason::NoSubnet);
        };
        let spec = ReplySpec {
            kind: ReplyKind::Offer,
            subnet,
            options,
            host: ctx.host.map(|h| h.res),
            yiaddr: lease.addr,
            // RFC 2131 table 3: ciaddr is 0 in a DHCPOFFER.
            ciaddr: Ipv4Addr::UNSPECIFIED,
            timers: Some(self.timers(lease.subnet, subnet, ctx.facts.lease_time)),
            message: &[],
        };
        match reply::write(req, ctx.facts, ctx.link.mac, &spec, tx) {
            Ok(w) => ctx.replied(w, None, msg::OFFER),
            Err(_) => Verdict::Drop(DropReason::ReplyTooLarge),
        }
    }

    // ---- REQUEST ----------------------------------------------------------------------------

    fn request(&self, ctx: &Ctx<'_, '_>, tx: &mut [u8]) -> Verdict {
        let req = ctx.req;
        let facts = ctx.facts;
        if let Some(sid) = facts.server_id {
            // SELECTING. RFC 2131 §4.3.2: "If the DHCPREQUEST message contains a 'server
            // identifier' option, the message is in response to a DHCPOFFER message.
            // Otherwise, the message is a request to verify or extend an existing lease."
            if !self.is_ours(facts, sid) {
                // RFC 2131 §3.1 step 4: "Those servers not selected by the DHCPREQUEST message
                // use the message as notification that the client has declined that server's
                // offer." Give the held address back at once instead of waiting out the hold.
                self.withdraw_offers(ctx);
                return Verdict::Drop(DropReason::OtherServerSelected);
            }
            // RFC 2131 §4.3.2: "'requested IP address' MUST be filled in with the yiaddr value
            // from the chosen DHCPOFFER." Some old clients put it in ciaddr instead.
            let addr = match facts.requested_ip {
                Some(a) => a,
                None if !req.ciaddr.is_unspecified() => req.ciaddr,
                None => return Verdict::Drop(DropReason::Ignored),
            };
            let Some(sid) = Self::subnet_for(ctx.candidates, addr) else {
                return self.nak(ctx, tx, nak_text::WRONG_NETWORK);
            };
            if ctx.host.and_then(|h| h.fixed()).is_some_and(|f| f != addr)
                || self.reserved_for_other(ctx, sid, addr)
            {
                return self.nak(ctx, tx, nak_text::NOT_YOURS);
            }
            // The client chose us: answer either way (ACK, or NAK if the address cannot be
            // bound, e.g. the offer lapsed and someone else took it). Table 3: the ACK's
            // ciaddr is the request's (0 in a proper SELECTING request).
            return self.bind_and_ack(ctx, tx, sid, addr, req.ciaddr);
        }
        if req.ciaddr.is_unspecified() {
            // INIT-REBOOT. RFC 2131 §4.3.2: "'server identifier' MUST NOT be filled in,
            // 'requested IP address' option MUST be filled in with client's notion of its
            // previously assigned address. 'ciaddr' MUST be zero."
            match facts.requested_ip {
                // Table 3: ciaddr of the ACK is 0 (the client has no usable address yet).
                Some(addr) => self.confirm(ctx, tx, addr, Ipv4Addr::UNSPECIFIED),
                // Neither a selection, a verification nor an extension: malformed.
                None => Verdict::Drop(DropReason::Ignored),
            }
        } else {
            // RENEWING (unicast) / REBINDING (broadcast). RFC 2131 §4.3.2: "'server
            // identifier' MUST NOT be filled in, 'requested IP address' option MUST NOT be
            // filled in, 'ciaddr' MUST be filled in with client's IP address." REBINDING: "The
            // DHCP server SHOULD check 'ciaddr' for correctness before replying".
            // Table 3: the ACK's ciaddr is the request's.
            self.confirm(ctx, tx, req.ciaddr, req.ciaddr)
        }
    }

    /// Release this client's outstanding offers (it selected another server).
    fn withdraw_offers(&self, ctx: &Ctx<'_, '_>) {
        for &s in &ctx.candidates.list {
            if let Some(l) = self.leases.by_client(ctx.client, s)
                && l.state == LeaseState::Offered
            {
                // A lapsed or already reused offer is not an error worth reporting.
                let _ = self.leases.release(ctx.client, l.addr, ctx.now);
            }
        }
    }

    /// INIT-REBOOT / RENEWING / REBINDING: the client claims `addr`. See the module docs,
    /// "Authoritative mode", for the rule applied here.
    fn confirm(
        &self,
        ctx: &Ctx<'_, '_>,
        tx: &mut [u8],
        addr: Ipv4Addr,
        reply_ciaddr: Ipv4Addr,
    ) -> Verdict {
        let authoritative = self.config.authoritative;
        let record = self.active_record(ctx);
        let fixed = ctx.host.and_then(|h| h.fixed());
        // We hold a current record of this client that says something else.
        let contradicted =
            record.is_some_and(|l| l.addr != addr) || fixed.is_some_and(|f| f != addr);

        let Some(sid) = Self::subnet_for(ctx.candidates, addr) else {
            // RFC 2131 §4.3.2: "If the DHCP server detects that the client is on the wrong net
            // (i.e., the result of applying the local subnet mask or remote subnet mask (if
            // 'giaddr' is not zero) to 'requested IP address' option value doesn't match
            // reality), then the server SHOULD send a DHCPNAK message to the client."
            // Non-authoritative: only if we know this client.
            return if authoritative || record.is_some() || fixed.is_some() {
                self.nak(ctx, tx, nak_text::WRONG_NETWORK)
            } else {
                Verdict::Drop(DropReason::Ignored)
            };
        };

        let mine = self
            .leases
            .by_addr(addr)
            .is_some_and(|l| l.client == *ctx.client && l.state != LeaseState::Declined);
        if !mine {
            // RFC 2131 §4.3.2: "If the network is correct, then the DHCP server should check
            // if the client's notion of its IP address is correct. If not, then the server
            // SHOULD send a DHCPNAK message to the client."
            if contradicted {
                return self.nak(ctx, tx, nak_text::NOT_YOURS);
            }
            // RFC 2131 §4.3.2: "If the DHCP server has no record of this client, then it MUST
            // remain silent".
            if !authoritative {
                return Verdict::Drop(DropReason::Ignored);
            }
            // Authoritative: we are the only server here, so our tables are the truth. The
            // address is re-bound for the client if it is free and in the pool (e.g. after a
            // restart that lost the lease), which is what ISC dhcpd and Kea do.
            if self.reserved_for_other(ctx, sid, addr) {
                return self.nak(ctx, tx, nak_text::NOT_YOURS);
            }
        }
        self.bind_and_ack(ctx, tx, sid, addr, reply_ciaddr)
    }

    /// Bind `addr` in subnet `sid` for the client and ACK; NAK if the tables refuse.
    ///
    /// The ACK is written *before* the binding: if it cannot be written (a TX buffer or a
    /// message size too small for the required options) nothing changes in the tables, so a
    /// binding never exists without the ACK that announces it. On a refused binding the ACK is
    /// overwritten by a NAK.
    fn bind_and_ack(
        &self,
        ctx: &Ctx<'_, '_>,
        tx: &mut [u8],
        sid: SubnetId,
        addr: Ipv4Addr,
        reply_ciaddr: Ipv4Addr,
    ) -> Verdict {
        let Some((subnet, options)) = self.subnet_opts(sid) else {
            return Verdict::Drop(DropReason::NoSubnet);
        };
        let timers = self.timers(sid, subnet, ctx.facts.lease_time);
        let spec = ReplySpec {
            kind: ReplyKind::Ack,
            subnet,
            options,
            host: ctx.host.map(|h| h.res),
            yiaddr: addr,
            ciaddr: reply_ciaddr,
            timers: Some(timers),
            message: &[],
        };
        let written = match reply::write(ctx.req, ctx.facts, ctx.link.mac, &spec, tx) {
            Ok(w) => w,
            Err(_) => return Verdict::Drop(DropReason::ReplyTooLarge),
        };
        let bind = BindRequest {
            client: *ctx.client,
            subnet: sid,
            addr,
            lease: timers.lease,
            fixed: ctx.host.and_then(|h| h.fixed()) == Some(addr),
        };
        match self.leases.bind(&bind, ctx.now) {
            Ok(info) => ctx.replied(written, Some(info), msg::ACK),
            Err(_) => self.nak(ctx, tx, nak_text::NOT_AVAILABLE),
        }
    }

    /// Write a DHCPNAK (RFC 2131 table 3) from the selected subnet's server.
    fn nak(&self, ctx: &Ctx<'_, '_>, tx: &mut [u8], message: &'static [u8]) -> Verdict {
        let Some((subnet, options)) = self.subnet_opts(ctx.selected) else {
            return Verdict::Drop(DropReason::NoSubnet);
        };
        let spec = ReplySpec {
            kind: ReplyKind::Nak,
            subnet,
            options,
            host: None,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            timers: None,
            message,
        };
        match reply::write(ctx.req, ctx.facts, ctx.link.mac, &spec, tx) {
            Ok(w) => ctx.replied(w, None, msg::NAK),
            Err(_) => Verdict::Drop(DropReason::ReplyTooLarge),
        }
    }

    // ---- INFORM -----------------------------------------------------------------------------

    fn inform(&self, ctx: &Ctx<'_, '_>, tx: &mut [u8]) -> Verdict {
        let req = ctx.req;
        // The client's own subnet among the candidates decides the options (routers differ
        // between the subnets of a shared network).
        let sid = Self::subnet_for(ctx.candidates, req.ciaddr).unwrap_or(ctx.selected);
        let Some((subnet, options)) = self.subnet_opts(sid) else {
            return Verdict::Drop(DropReason::NoSubnet);
        };
        // RFC 2131 §4.3.5: "The server MUST NOT send a lease expiration time to the client and
        // SHOULD NOT fill in 'yiaddr'. The server includes other parameters in the DHCPACK
        // message as defined in section 4.3.1."
        let spec = ReplySpec {
            kind: ReplyKind::InformAck,
            subnet,
            options,
            host: ctx.host.map(|h| h.res),
            yiaddr: Ipv4Addr::UNSPECIFIED,
            ciaddr: req.ciaddr,
            timers: None,
            message: &[],
        };
        match reply::write(req, ctx.facts, ctx.link.mac, &spec, tx) {
            Ok(w) => ctx.replied(w, None, msg::ACK),
            Err(_) => Verdict::Drop(DropReason::ReplyTooLarge),
        }
    }

    // ---- RELEASE / DECLINE ------------------------------------------------------------------

    fn release(
        &self,
        req: &Request<'_>,
        facts: &Facts<'_>,
        client: &ClientKey,
        now: Secs,
    ) -> Verdict {
        // RFC 2131 table 5: DHCPRELEASE carries the server identifier (MUST) and the address
        // in ciaddr. One naming another server is not for us.
        if let Some(sid) = facts.server_id
            && !self.is_ours(facts, sid)
        {
            return Verdict::Drop(DropReason::Ignored);
        }
        if req.ciaddr.is_unspecified() {
            return Verdict::Drop(DropReason::Ignored);
        }
        // RFC 2131 §4.3.4: "Upon receipt of a DHCPRELEASE message, the server marks the network
        // address as not allocated. The server SHOULD retain a record of the client's
        // initialization parameters for possible reuse in response to subsequent requests from
        // the client." (the tables keep the released address's last client.)
        match self.leases.release(client, req.ciaddr, now) {
            Ok(commit) => Verdict::NoReply { commit },
            Err(_) => Verdict::Drop(DropReason::Ignored),
        }
    }

    fn decline(&self, facts: &Facts<'_>, client: &ClientKey, now: Secs) -> Verdict {
        // RFC 2131 table 5: DHCPDECLINE carries the server identifier (MUST) and the declined
        // address in option 50 (MUST).
        if let Some(sid) = facts.server_id
            && !self.is_ours(facts, sid)
        {
            return Verdict::Drop(DropReason::Ignored);
        }
        let Some(addr) = facts.requested_ip else {
            return Verdict::Drop(DropReason::Ignored);
        };
        // RFC 2131 §4.3.3: "If the server receives a DHCPDECLINE message, the client has
        // discovered through some other means that the suggested network address is already in
        // use. The server MUST mark the network address as not available". It stays out of the
        // pool for the configured probation, then returns.
        match self
            .leases
            .decline(client, addr, self.config.decline_probation, now)
        {
            Ok(commit) => Verdict::NoReply { commit },
            Err(_) => Verdict::Drop(DropReason::Ignored),
        }
    }
}
