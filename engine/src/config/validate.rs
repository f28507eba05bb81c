//! Wire schema -> validated runtime model.
//!
//! All checking happens here, once, at load time, so the per-packet path can trust the model
//! blindly (see `model.rs`). The pass is organised as:
//!
//! 1. server-wide settings and `[options]`;
//! 2. each `[[subnet]]` on its own: network, ranges and exclusions (carved out of the
//!    ranges), lease policy, options (encoded), links, reservations, and the address
//!    conflicts visible inside one subnet (a router or reserved host inside the pool, ...);
//! 3. checks across subnets: overlaps, shared networks, links claimed twice, the default
//!    subnet, server identifiers, reservation identifiers unique per shared network;
//! 4. assembly: subnets sorted by address (so giaddr lookup is a binary search), ids
//!    assigned, reservations sorted by key.
//!
//! Problems are collected, not returned at the first one; a subnet whose `network` is
//! unusable is skipped after reporting it, because every later check about it would be
//! noise.

use super::error::{Diagnostic, ErrorKind, LineIndex, Span};
use super::file::{
    FileConfig, Int, IntList, Num, OptionDecl, OptionKeys, ReservationDecl, Str, StrList,
    SubnetDecl,
};
use super::model::{
    AddrRange, Durability, Ipv4Net, LeaseTimes, LinkMatch, OptionSet, Reservation, ReservationKey,
    ServerConfig, SharedNetwork, Subnet, SubnetId,
};
use super::options::{
    check_domain, encode_classless_route, encode_domain_name, is_unicast, parse_agent_id,
    parse_cidr, parse_hex, parse_ip, parse_mac, parse_range, parse_route,
};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use toml::Spanned;

use ErrorKind as K;

/// Defaults of the server-wide settings (also quoted in the module docs and sample files).
pub(super) const DEFAULT_OFFER_HOLD: u32 = 30;
pub(super) const DEFAULT_DECLINE_PROBATION: u32 = 86_400;
pub(super) const DEFAULT_STATE_DIR: &str = "/var/lib/xdhcp";
pub(super) const DEFAULT_LEASE_TIME: u32 = 3600;
pub(super) const DEFAULT_MIN_LEASE_TIME: u32 = 60;
pub(super) const DEFAULT_MAX_LEASE_TIME: u32 = 86_400;
pub(super) const DEFAULT_T1_PERMILLE: u16 = 500;
pub(super) const DEFAULT_T2_PERMILLE: u16 = 875;

/// Largest payload for an ordinary option; 119 and 121 may be longer and are split by the
/// emitter (RFC 3396 long-option encoding, which RFC 3397 §2 names for the search list).
const MAX_OPTION_LEN: usize = 255;
const MAX_LONG_OPTION_LEN: usize = 1024;
/// BOOTP fixed fields (RFC 951): `file` is 128 bytes, `sname` 64, both NUL-terminated.
const MAX_FILENAME: usize = 127;
const MAX_SERVER_NAME: usize = 63;

pub(super) fn build(
    file: &FileConfig,
    index: &LineIndex<'_>,
    origin: &Path,
) -> Result<ServerConfig, Vec<Diagnostic>> {
    let mut ctx = Ctx {
        index,
        origin,
        diags: Vec::new(),
    };
    let config = ctx.config(file);
    let mut diags = ctx.diags;
    if diags.is_empty() {
        // `config` is only `None` when a diagnostic was recorded.
        if let Some(config) = config {
            return Ok(config);
        }
    }
    diags.sort_by_key(|d| (d.span.start, d.span.end));
    diags.dedup();
    Err(diags)
}

struct Ctx<'a> {
    index: &'a LineIndex<'a>,
    origin: &'a Path,
    diags: Vec<Diagnostic>,
}

/// A value with where it came from: `None` span = built-in default; `local` = set in the
/// table being checked (preferred as the place to blame) rather than inherited.
#[derive(Clone, Debug)]
struct Setting<T> {
    value: T,
    span: Option<Span>,
    local: bool,
}

impl<T: Copy> Setting<T> {
    fn builtin(value: T) -> Self {
        Setting {
            value,
            span: None,
            local: false,
        }
    }
}

/// Server-wide values subnets inherit.
struct Globals {
    server_id: Option<(Ipv4Addr, Span)>,
    lease_time: Option<Setting<u32>>,
    min_lease_time: Option<Setting<u32>>,
    max_lease_time: Option<Setting<u32>>,
    t1: Option<Setting<u16>>,
    t2: Option<Setting<u16>>,
    options: OptionSet,
}

/// Options of one scope, encoded, plus what the cross-checks need.
#[derive(Default)]
struct BuiltOptions {
    set: OptionSet,
    routers: Vec<(Ipv4Addr, Span)>,
    /// Span of the `routers` list.
    routers_span: Option<Span>,
    /// Whether `classless_routes` has a default route, and the list's span.
    routes: Option<(bool, Span)>,
}

/// A range with the text it came from.
type Located = (AddrRange, Span);

/// A scope's `routers` span and `classless_routes` (has-default, span).
type ScopeRoutes<'a> = (Option<&'a Span>, Option<&'a (bool, Span)>);

/// A subnet that passed its local checks (phase 2).
struct Draft<'w> {
    decl: &'w Spanned<SubnetDecl>,
    net: Ipv4Net,
    /// Dynamic pool: ranges with exclusions carved out, sorted.
    pool: Vec<AddrRange>,
    server_id: Option<(Ipv4Addr, Span, bool)>,
    lease: LeaseTimes,
    options: OptionSet,
    reservations: Vec<DraftReservation>,
    links: Vec<(LinkMatch, Span)>,
    default: Option<(bool, Span)>,
    filename: Option<Box<[u8]>>,
    server_name: Option<Box<[u8]>>,
    next_server: Option<Ipv4Addr>,
}

struct DraftReservation {
    res: Reservation,
    key_span: Span,
    /// Span of `address` (the key's span when there is none).
    addr_span: Span,
}

/// A shared network being assembled.
struct Group {
    name: String,
    span: Span,
    declared: bool,
    members: Vec<usize>,
}

impl Ctx<'_> {
    fn error(
        &mut self,
        span: &Span,
        kind: ErrorKind,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let (line, column) = self.index.locate(span.start);
        self.diags.push(Diagnostic {
            file: self.origin.to_path_buf(),
            line,
            column,
            span: span.clone(),
            kind,
            message: message.into(),
            help: help.into(),
        });
    }

    fn line(&self, span: &Span) -> usize {
        self.index.line(span.start)
    }

    // ---------------------------------------------------------------- value helpers

    fn ip(&mut self, v: &Str, what: &str) -> Option<Ipv4Addr> {
        match parse_ip(v.get_ref()) {
            Ok(ip) => Some(ip),
            Err(reason) => {
                self.error(
                    &v.span(),
                    K::InvalidValue,
                    format!("invalid {what}: {reason}"),
                    "write a dotted-quad IPv4 address, e.g. \"192.0.2.1\"",
                );
                None
            }
        }
    }

    fn unicast_ip(&mut self, v: &Str, what: &str) -> Option<Ipv4Addr> {
        let ip = self.ip(v, what)?;
        if !is_unicast(ip) {
            self.error(
                &v.span(),
                K::InvalidValue,
                format!("{what} {ip} is not a unicast address"),
                "use a host address (not 0.0.0.0, 255.255.255.255, loopback or multicast)",
            );
            return None;
        }
        Some(ip)
    }

    fn int(&mut self, v: &Int, what: &str, lo: i64, hi: i64, help: &str) -> Option<i64> {
        let x = *v.get_ref();
        if (lo..=hi).contains(&x) {
            Some(x)
        } else {
            self.error(
                &v.span(),
                K::OutOfBounds,
                format!("{what} must be between {lo} and {hi}, not {x}"),
                help,
            );
            None
        }
    }

    fn seconds(&mut self, v: &Int, what: &str) -> Option<u32> {
        let help = "give a time in seconds, e.g. 3600 for one hour";
        self.int(v, what, 1, i64::from(u32::MAX), help)
            .and_then(|x| u32::try_from(x).ok())
    }

    fn setting_secs(&mut self, v: Option<&Int>, what: &str, local: bool) -> Option<Setting<u32>> {
        let v = v?;
        let value = self.seconds(v, what)?;
        Some(Setting {
            value,
            span: Some(v.span()),
            local,
        })
    }

    /// A percentage with at most one decimal, as permille.
    fn percent(&mut self, v: &Num, what: &str) -> Option<u16> {
        let x = *v.get_ref();
        if !(x > 0.0 && x < 100.0) {
            self.error(
                &v.span(),
                K::OutOfBounds,
                format!("{what} must be above 0 and below 100, not {x}"),
                "it is a percentage of the lease time, e.g. t1_percent = 50, t2_percent = 87.5",
            );
            return None;
        }
        let permille = (x * 10.0).round();
        if (x * 10.0 - permille).abs() > 1e-6 {
            self.error(
                &v.span(),
                K::InvalidValue,
                format!("{what} = {x} has more than one decimal place"),
                format!("round it to one decimal, e.g. {:.1}", permille / 10.0),
            );
            return None;
        }
        // 0 < permille < 1000 after the checks above.
        Some(permille as u16)
    }

    fn setting_percent(
        &mut self,
        v: Option<&Num>,
        what: &str,
        local: bool,
    ) -> Option<Setting<u16>> {
        let v = v?;
        let value = self.percent(v, what)?;
        Some(Setting {
            value,
            span: Some(v.span()),
            local,
        })
    }

    /// A BOOTP fixed-field string (`file`, `sname`).
    fn bootp_text(&mut self, v: &Str, what: &str, max: usize, field: &str) -> Option<Box<[u8]>> {
        let s = v.get_ref();
        if s.is_empty() || s.contains('\0') {
            self.error(
                &v.span(),
                K::InvalidValue,
                format!("{what} must be a non-empty string without NUL bytes"),
                format!("remove `{what}` or give a value"),
            );
            return None;
        }
        if s.len() > max {
            self.error(
                &v.span(),
                K::OutOfBounds,
                format!(
                    "{what} is {} bytes; the BOOTP `{field}` field holds at most {max}",
                    s.len()
                ),
                format!("shorten it to {max} bytes or fewer"),
            );
            return None;
        }
        Some(s.as_bytes().into())
    }

    /// A non-empty list of IPv4 addresses (at most 63 so it fits one option).
    fn ip_list(&mut self, v: &StrList, what: &str) -> Vec<(Ipv4Addr, Span)> {
        let list = v.get_ref();
        if list.is_empty() {
            self.error(
                &v.span(),
                K::EmptyList,
                format!("`{what}` is empty"),
                format!("list at least one address, or remove `{what}`"),
            );
            return Vec::new();
        }
        if list.len() > MAX_OPTION_LEN / 4 {
            self.error(
                &v.span(),
                K::OutOfBounds,
                format!(
                    "`{what}` has {} addresses; one option holds at most 63",
                    list.len()
                ),
                "list fewer addresses",
            );
            return Vec::new();
        }
        list.iter()
            .filter_map(|s| Some((self.unicast_ip(s, what)?, s.span())))
            .collect()
    }

    /// `[outer]`, `[outer, inner]`, or `[]` (untagged) when `untagged_ok`.
    fn link(&mut self, v: &IntList, untagged_ok: bool) -> Option<LinkMatch> {
        let ids = v.get_ref();
        if ids.len() > 2 || (ids.is_empty() && !untagged_ok) {
            let (message, help) = if ids.is_empty() {
                (
                    "a reservation `vlan` needs the VLAN the host is on".to_string(),
                    "write [outer] or [outer, inner], e.g. vlan = [100, 2001]",
                )
            } else {
                (
                    format!(
                        "a link has at most two VLAN ids ([outer, inner]), not {}",
                        ids.len()
                    ),
                    "write [] (untagged), [outer] or [outer, inner], e.g. [100, 2001]",
                )
            };
            self.error(&v.span(), K::InvalidValue, message, help);
            return None;
        }
        let mut tags = [None, None];
        for (slot, id) in tags.iter_mut().zip(ids) {
            let help = "VLAN ids are 1-4094 (0 and 4095 are reserved); [] means untagged";
            let id = self.int(id, "a VLAN id", 1, 4094, help)?;
            *slot = u16::try_from(id).ok();
        }
        Some(LinkMatch {
            outer: tags[0],
            inner: tags[1],
        })
    }

    // ---------------------------------------------------------------- phase 1

    fn config(&mut self, file: &FileConfig) -> Option<ServerConfig> {
        let authoritative = file.authoritative.as_ref().is_none_or(|v| *v.get_ref());
        let offer_hold = match &file.offer_hold {
            None => Some(DEFAULT_OFFER_HOLD),
            Some(v) => self
                .int(
                    v,
                    "offer_hold",
                    1,
                    86_400,
                    "give the offer hold in seconds, e.g. 30",
                )
                .and_then(|x| u32::try_from(x).ok()),
        };
        let decline_probation = match &file.decline_probation {
            None => Some(DEFAULT_DECLINE_PROBATION),
            Some(v) => self.seconds(v, "decline_probation"),
        };
        let durability = match &file.durability {
            None => Some(Durability::Fsync),
            Some(v) => match v.get_ref().as_str() {
                "fsync" => Some(Durability::Fsync),
                "none" => Some(Durability::None),
                other => {
                    self.error(
                        &v.span(),
                        K::InvalidValue,
                        format!("durability must be \"fsync\" or \"none\", not \"{other}\""),
                        "use \"fsync\" (an ACK leaves only once the lease is on disk) or \
                         \"none\" (faster; leases since the last sync are lost on a crash)",
                    );
                    None
                }
            },
        };
        let state_dir = match &file.state_dir {
            None => Some(PathBuf::from(DEFAULT_STATE_DIR)),
            Some(v) if Path::new(v.get_ref()).is_absolute() => Some(PathBuf::from(v.get_ref())),
            Some(v) => {
                self.error(
                    &v.span(),
                    K::RelativePath,
                    format!("state_dir \"{}\" is not an absolute path", v.get_ref()),
                    format!("write an absolute path, e.g. \"{DEFAULT_STATE_DIR}\""),
                );
                None
            }
        };
        let server_id = file.server_id.as_ref().and_then(|v| {
            let ip = self.unicast_ip(v, "server_id")?;
            Some((ip, v.span()))
        });
        let globals = Globals {
            server_id,
            lease_time: self.setting_secs(file.lease_time.as_ref(), "lease_time", false),
            min_lease_time: self.setting_secs(
                file.min_lease_time.as_ref(),
                "min_lease_time",
                false,
            ),
            max_lease_time: self.setting_secs(
                file.max_lease_time.as_ref(),
                "max_lease_time",
                false,
            ),
            t1: self.setting_percent(file.t1_percent.as_ref(), "t1_percent", false),
            t2: self.setting_percent(file.t2_percent.as_ref(), "t2_percent", false),
            options: match &file.options {
                Some(o) => {
                    self.options(&o.get_ref().option_keys(), None, "[options] table")
                        .set
                }
                None => OptionSet::default(),
            },
        };
        // Check the server-wide lease policy once on its own, so a conflict there is reported
        // at the top-level keys and not once per subnet.
        self.lease_times(&globals, None);

        // Phase 2.
        let mut drafts = Vec::new();
        for decl in &file.subnet {
            if let Some(d) = self.subnet(decl, &globals) {
                drafts.push(d);
            }
        }

        // Phase 3.
        self.check_subnet_overlap(&drafts);
        let groups = self.shared_networks(file, &drafts);
        let group_of = group_index(&groups, drafts.len());
        self.check_links(&drafts, &group_of);
        let default = self.default_subnet(file, &drafts);
        self.check_server_ids(&drafts, &groups, &group_of, default, &globals);
        self.check_reservations(&drafts, &groups, &group_of);

        let (offer_hold, decline_probation, durability, state_dir) =
            (offer_hold?, decline_probation?, durability?, state_dir?);
        if !self.diags.is_empty() {
            return None;
        }
        Some(assemble(
            drafts,
            groups,
            default,
            ServerConfig {
                subnets: Vec::new(),
                shared_networks: Vec::new(),
                authoritative,
                offer_hold,
                decline_probation,
                default_subnet: None,
                durability,
                state_dir,
            },
        ))
    }

    /// Effective lease policy for a subnet (`local` = the subnet's own keys), or the global
    /// one alone when `local` is `None`.
    fn lease_times(&mut self, g: &Globals, local: Option<&SubnetDecl>) -> Option<LeaseTimes> {
        let (lt, min, max, t1, t2) = match local {
            Some(s) => (
                self.setting_secs(s.lease_time.as_ref(), "lease_time", true),
                self.setting_secs(s.min_lease_time.as_ref(), "min_lease_time", true),
                self.setting_secs(s.max_lease_time.as_ref(), "max_lease_time", true),
                self.setting_percent(s.t1_percent.as_ref(), "t1_percent", true),
                self.setting_percent(s.t2_percent.as_ref(), "t2_percent", true),
            ),
            None => (None, None, None, None, None),
        };
        // A bad local value was already reported; don't pile derived errors on top.
        if let Some(s) = local {
            let given = [
                s.lease_time.is_some(),
                s.min_lease_time.is_some(),
                s.max_lease_time.is_some(),
                s.t1_percent.is_some(),
                s.t2_percent.is_some(),
            ];
            let parsed = [
                lt.is_some(),
                min.is_some(),
                max.is_some(),
                t1.is_some(),
                t2.is_some(),
            ];
            if given != parsed {
                return None;
            }
        }
        let lease = lt
            .or_else(|| g.lease_time.clone())
            .unwrap_or(Setting::builtin(DEFAULT_LEASE_TIME));
        let min = min
            .or_else(|| g.min_lease_time.clone())
            .unwrap_or(Setting::builtin(DEFAULT_MIN_LEASE_TIME.min(lease.value)));
        let max = max
            .or_else(|| g.max_lease_time.clone())
            .unwrap_or(Setting::builtin(DEFAULT_MAX_LEASE_TIME.max(lease.value)));
        let t1 = t1
            .or_else(|| g.t1.clone())
            .unwrap_or(Setting::builtin(DEFAULT_T1_PERMILLE));
        let t2 = t2
            .or_else(|| g.t2.clone())
            .unwrap_or(Setting::builtin(DEFAULT_T2_PERMILLE));

        let mut ok = true;
        if min.value > max.value {
            if let Some(span) = blame(&[&min, &max]) {
                self.error(
                    &span,
                    K::LeaseTimeOrder,
                    format!(
                        "min_lease_time ({}) is greater than max_lease_time ({})",
                        min.value, max.value
                    ),
                    "make min_lease_time <= max_lease_time",
                );
            }
            ok = false;
        } else if lease.value < min.value || lease.value > max.value {
            let (bound, name) = if lease.value < min.value {
                (&min, "min")
            } else {
                (&max, "max")
            };
            if let Some(span) = blame(&[&lease, bound]) {
                self.error(
                    &span,
                    K::LeaseTimeOrder,
                    format!(
                        "lease_time ({}) is outside min_lease_time..max_lease_time ({}..{})",
                        lease.value, min.value, max.value
                    ),
                    format!("set lease_time within the bounds or change {name}_lease_time"),
                );
            }
            ok = false;
        }
        if t1.value >= t2.value {
            if let Some(span) = blame(&[&t1, &t2]) {
                self.error(
                    &span,
                    K::RenewalTimes,
                    format!(
                        "t1_percent ({}) must be below t2_percent ({})",
                        f64::from(t1.value) / 10.0,
                        f64::from(t2.value) / 10.0
                    ),
                    "clients renew at T1 and rebind at T2 (RFC 2131 §4.4.5); \
                     e.g. t1_percent = 50, t2_percent = 87.5",
                );
            }
            ok = false;
        }
        ok.then_some(LeaseTimes {
            default: lease.value,
            min: min.value,
            max: max.value,
            t1_permille: t1.value,
            t2_permille: t2.value,
        })
    }

    // ---------------------------------------------------------------- options

    /// Encode the option keys of one scope. `net` is the subnet for on-link checks (`None`
    /// for the global scope, which has no routers).
    fn options(
        &mut self,
        keys: &OptionKeys<'_>,
        net: Option<Ipv4Net>,
        scope: &str,
    ) -> BuiltOptions {
        let mut out = BuiltOptions::default();
        let mut claims: Vec<(u8, Span)> = Vec::new();

        if let Some(v) = keys.routers {
            let routers = self.ip_list(v, "routers");
            let mut payload = Vec::new();
            for (ip, span) in &routers {
                if let Some(net) = net {
                    if !net.contains(*ip) {
                        self.error(
                            span,
                            K::RouterOffLink,
                            format!("router {ip} is not inside subnet {net}"),
                            format!(
                                "clients can only reach an on-link gateway; use an address of {net}"
                            ),
                        );
                        continue;
                    }
                    if *ip == net.addr || *ip == net.broadcast() {
                        self.special_address(span, *ip, net, "a router");
                        continue;
                    }
                }
                payload.extend_from_slice(&ip.octets());
            }
            self.put(&mut out.set, &mut claims, 3, v.span(), payload, scope);
            out.routers = routers;
            out.routers_span = Some(v.span());
        }
        for (list, code, what) in [
            (keys.dns_servers, 6, "dns_servers"),
            (keys.ntp_servers, 42, "ntp_servers"),
        ] {
            if let Some(v) = list {
                let payload: Vec<u8> = self
                    .ip_list(v, what)
                    .iter()
                    .flat_map(|(ip, _)| ip.octets())
                    .collect();
                self.put(&mut out.set, &mut claims, code, v.span(), payload, scope);
            }
        }
        for (value, code, what) in [
            (keys.hostname, 12, "hostname"),
            (keys.domain_name, 15, "domain_name"),
        ] {
            if let Some(v) = value {
                match check_domain(v.get_ref()) {
                    Ok(()) => {
                        let payload = v.get_ref().as_bytes().to_vec();
                        self.put(&mut out.set, &mut claims, code, v.span(), payload, scope);
                    }
                    Err(reason) => self.error(
                        &v.span(),
                        K::InvalidValue,
                        format!("invalid {what}: {reason}"),
                        "write a name such as \"isp.example\"",
                    ),
                }
            }
        }
        if let Some(v) = keys.broadcast_address
            && let Some(ip) = self.ip(v, "broadcast_address")
        {
            match net {
                Some(net) if !net.contains(ip) => self.error(
                    &v.span(),
                    K::InvalidValue,
                    format!("broadcast_address {ip} is not inside subnet {net}"),
                    format!("remove it: it defaults to {}", net.broadcast()),
                ),
                _ => self.put(
                    &mut out.set,
                    &mut claims,
                    28,
                    v.span(),
                    ip.octets().to_vec(),
                    scope,
                ),
            }
        }
        if let Some(v) = keys.domain_search {
            if v.get_ref().is_empty() {
                self.error(
                    &v.span(),
                    K::EmptyList,
                    "`domain_search` is empty",
                    "list at least one domain, or remove `domain_search`",
                );
            } else {
                let mut payload = Vec::new();
                for name in v.get_ref() {
                    if let Err(reason) = encode_domain_name(name.get_ref(), &mut payload) {
                        self.error(
                            &name.span(),
                            K::InvalidValue,
                            format!("invalid domain_search entry: {reason}"),
                            "write a domain name such as \"customers.isp.example\"",
                        );
                    }
                }
                self.put(&mut out.set, &mut claims, 119, v.span(), payload, scope);
            }
        }
        if let Some(v) = keys.classless_routes
            && let Some((has_default, payload)) = self.routes(v, net)
        {
            self.put(&mut out.set, &mut claims, 121, v.span(), payload, scope);
            out.routes = Some((has_default, v.span()));
        }
        for decl in keys.generic {
            if let Some((code, payload)) = self.generic_option(decl) {
                self.put(
                    &mut out.set,
                    &mut claims,
                    code,
                    decl.get_ref().code.span(),
                    payload,
                    scope,
                );
            }
        }
        out
    }

    /// Store `payload` for `code` unless the scope already set it or it is too long.
    fn put(
        &mut self,
        set: &mut OptionSet,
        claims: &mut Vec<(u8, Span)>,
        code: u8,
        span: Span,
        payload: Vec<u8>,
        scope: &str,
    ) {
        if let Some((_, first)) = claims.iter().find(|(c, _)| *c == code) {
            let line = self.line(first);
            self.error(
                &span,
                K::DuplicateOption,
                format!("option {code} is already set in this {scope} (line {line})"),
                "set each option once per table: remove one of the two",
            );
            return;
        }
        claims.push((code, span.clone()));
        let max = if matches!(code, 119 | 121) {
            MAX_LONG_OPTION_LEN
        } else {
            MAX_OPTION_LEN
        };
        if payload.len() > max {
            self.error(
                &span,
                K::BadOption,
                format!(
                    "option {code} encodes to {} bytes; at most {max} are allowed",
                    payload.len()
                ),
                "shorten the value",
            );
            return;
        }
        set.set(code, payload);
    }

    /// Option 121 payload and whether it contains a default route.
    fn routes(&mut self, v: &StrList, net: Option<Ipv4Net>) -> Option<(bool, Vec<u8>)> {
        if v.get_ref().is_empty() {
            self.error(
                &v.span(),
                K::EmptyList,
                "`classless_routes` is empty",
                "list routes such as \"0.0.0.0/0 via 10.0.0.1\", or remove `classless_routes`",
            );
            return None;
        }
        let mut payload = Vec::new();
        let mut has_default = false;
        let mut ok = true;
        for entry in v.get_ref() {
            let span = entry.span();
            let (dest, prefix, router) = match parse_route(entry.get_ref()) {
                Ok(r) => r,
                Err(reason) => {
                    self.error(
                        &span,
                        K::InvalidValue,
                        format!("invalid classless route: {reason}"),
                        "write \"DESTINATION/PREFIX via ROUTER\", e.g. \"0.0.0.0/0 via 10.0.0.1\"",
                    );
                    ok = false;
                    continue;
                }
            };
            let Some(masked) = Ipv4Net::containing(dest, prefix) else {
                continue;
            };
            if masked.addr != dest {
                self.error(
                    &span,
                    K::HostBitsSet,
                    format!("route destination {dest}/{prefix} has host bits set"),
                    format!("did you mean \"{masked} via {router}\"?"),
                );
                ok = false;
                continue;
            }
            if let Some(net) = net {
                // A route's gateway must be on-link; 0.0.0.0 means "directly connected".
                if !router.is_unspecified() && !net.contains(router) {
                    self.error(
                        &span,
                        K::RouterOffLink,
                        format!("route gateway {router} is not inside subnet {net}"),
                        format!("use a gateway address of {net} (or 0.0.0.0 for on-link)"),
                    );
                    ok = false;
                    continue;
                }
            }
            has_default |= prefix == 0;
            encode_classless_route(masked, router, &mut payload);
        }
        ok.then_some((has_default, payload))
    }

    fn generic_option(&mut self, decl: &Spanned<OptionDecl>) -> Option<(u8, Vec<u8>)> {
        let o = decl.get_ref();
        let code = self.int(
            &o.code,
            "option code",
            1,
            254,
            "0 (pad) and 255 (end) are not options",
        )?;
        let code = u8::try_from(code).ok()?;
        let managed = match code {
            1 => Some("the subnet mask is derived from `network`; remove this option"),
            50 | 55 | 57 | 61 => Some("only clients send this option; remove it"),
            51 => Some("set the lease with `lease_time` / `min_lease_time` / `max_lease_time`"),
            52 => Some("option overload is decided when the reply is written; remove it"),
            53 => Some("the server sets the message type itself; remove it"),
            54 => Some("set the server identifier with `server_id`"),
            58 | 59 => Some("set renewal and rebinding times with `t1_percent` / `t2_percent`"),
            82 => Some("relay agent information is echoed from the request (RFC 3046 §2.2)"),
            _ => None,
        };
        if let Some(help) = managed {
            self.error(
                &o.code.span(),
                K::BadOption,
                format!("option {code} cannot be configured"),
                help,
            );
            return None;
        }
        let mut values: Vec<(&str, Span)> = Vec::new();
        let mut note = |name: &'static str, span: Option<Span>| {
            if let Some(span) = span {
                values.push((name, span));
            }
        };
        note("hex", o.hex.as_ref().map(Spanned::span));
        note("ip", o.ip.as_ref().map(Spanned::span));
        note("text", o.text.as_ref().map(Spanned::span));
        note("u8", o.u8.as_ref().map(Spanned::span));
        note("u16", o.u16.as_ref().map(Spanned::span));
        note("u32", o.u32.as_ref().map(Spanned::span));
        note("bool", o.bool.as_ref().map(Spanned::span));
        match values.as_slice() {
            [] => {
                self.error(
                    &decl.span(),
                    K::BadOption,
                    format!("option {code} has no value"),
                    "add one of `hex`, `ip`, `text`, `u8`, `u16`, `u32` or `bool`",
                );
                return None;
            }
            [_] => {}
            [(first, _), (second, span), ..] => {
                self.error(
                    span,
                    K::BadOption,
                    format!("option {code} has both `{first}` and `{second}`"),
                    "give exactly one value key per option",
                );
                return None;
            }
        }
        let payload = if let Some(v) = &o.hex {
            match parse_hex(v.get_ref()) {
                Ok(b) => b,
                Err(reason) => {
                    self.error(
                        &v.span(),
                        K::InvalidValue,
                        format!("invalid hex for option {code}: {reason}"),
                        "write bytes as \"0a000001\", \"0x0a000001\" or \"0a:00:00:01\"",
                    );
                    return None;
                }
            }
        } else if let Some(v) = &o.ip {
            if v.get_ref().is_empty() {
                self.error(
                    &v.span(),
                    K::EmptyList,
                    "`ip` is empty",
                    "list at least one address",
                );
                return None;
            }
            let mut payload = Vec::new();
            for s in v.get_ref() {
                payload.extend_from_slice(&self.ip(s, "address")?.octets());
            }
            payload
        } else if let Some(v) = &o.text {
            v.get_ref().as_bytes().to_vec()
        } else if let Some(v) = &o.u8 {
            let x = self.int(
                v,
                "a u8 value",
                0,
                255,
                "use `u16` or `u32` for larger numbers",
            )?;
            vec![u8::try_from(x).ok()?]
        } else if let Some(v) = &o.u16 {
            let x = self.int(v, "a u16 value", 0, 65_535, "use `u32` for larger numbers")?;
            u16::try_from(x).ok()?.to_be_bytes().to_vec()
        } else if let Some(v) = &o.u32 {
            let x = self.int(
                v,
                "a u32 value",
                0,
                i64::from(u32::MAX),
                "use `hex` for wider values",
            )?;
            u32::try_from(x).ok()?.to_be_bytes().to_vec()
        } else if let Some(v) = &o.bool {
            vec![u8::from(*v.get_ref())]
        } else {
            return None;
        };
        Some((code, payload))
    }

    fn special_address(&mut self, span: &Span, ip: Ipv4Addr, net: Ipv4Net, what: &str) {
        let which = if ip == net.addr {
            "network"
        } else {
            "broadcast"
        };
        self.error(
            span,
            K::SpecialAddress,
            format!("{ip} is the {which} address of {net} and cannot be {what}"),
            format!(
                "use a host address between {} and {}",
                next(net.addr),
                prev(net.broadcast())
            ),
        );
    }

    // ---------------------------------------------------------------- phase 2

    fn network(&mut self, v: &Str) -> Option<Ipv4Net> {
        let (addr, prefix) = match parse_cidr(v.get_ref()) {
            Ok(x) => x,
            Err(reason) => {
                self.error(
                    &v.span(),
                    K::InvalidValue,
                    format!("invalid network: {reason}"),
                    "write the network as ADDRESS/PREFIX, e.g. \"10.0.0.0/24\"",
                );
                return None;
            }
        };
        if prefix == 0 || prefix > 30 {
            self.error(
                &v.span(),
                K::OutOfBounds,
                format!("prefix length /{prefix} is not usable for a DHCP subnet"),
                "use a prefix from /1 to /30 (a /31 or /32 has no address to lease)",
            );
            return None;
        }
        let net = Ipv4Net::containing(addr, prefix)?;
        if net.addr != addr {
            self.error(
                &v.span(),
                K::HostBitsSet,
                format!("network {addr}/{prefix} has host bits set"),
                format!("did you mean \"{net}\"?"),
            );
            return None;
        }
        Some(net)
    }

    /// Parse `START-END` / single address inside `net`; `what` is "range" or "exclude".
    fn range_in(&mut self, v: &Str, net: Ipv4Net, what: &str) -> Option<AddrRange> {
        let (start, end) = match parse_range(v.get_ref()) {
            Ok(r) => r,
            Err(reason) => {
                self.error(
                    &v.span(),
                    K::InvalidValue,
                    format!("invalid {what}: {reason}"),
                    "write \"START-END\" or a single address, e.g. \"10.0.0.10-10.0.0.200\"",
                );
                return None;
            }
        };
        if u32::from(start) > u32::from(end) {
            self.error(
                &v.span(),
                K::RangeReversed,
                format!("{what} start {start} is after its end {end}"),
                format!("write the lower address first: \"{end}-{start}\""),
            );
            return None;
        }
        let r = AddrRange { start, end };
        if !net.contains(start) || !net.contains(end) {
            self.error(
                &v.span(),
                K::RangeOutsideSubnet,
                format!("{what} {r} is not inside subnet {net}"),
                format!(
                    "use addresses from {} to {}, or move it to the [[subnet]] it belongs to",
                    next(net.addr),
                    prev(net.broadcast())
                ),
            );
            return None;
        }
        Some(r)
    }

    fn subnet<'w>(&mut self, decl: &'w Spanned<SubnetDecl>, g: &Globals) -> Option<Draft<'w>> {
        let s = decl.get_ref();
        let net = self.network(&s.network)?;
        let head = decl.span();

        // Ranges: inside the subnet, not touching its network/broadcast address, disjoint.
        let mut ranges: Vec<(AddrRange, Span)> = Vec::new();
        for v in s.ranges.iter().flat_map(|l| l.get_ref()) {
            let Some(r) = self.range_in(v, net, "range") else {
                continue;
            };
            if r.contains(net.addr) {
                self.error(
                    &v.span(),
                    K::SpecialAddress,
                    format!("range {r} includes the network address {}", net.addr),
                    format!("start the range at {} or later", next(net.addr)),
                );
                continue;
            }
            if r.contains(net.broadcast()) {
                self.error(
                    &v.span(),
                    K::SpecialAddress,
                    format!(
                        "range {r} includes the broadcast address {}",
                        net.broadcast()
                    ),
                    format!("end the range at {} or earlier", prev(net.broadcast())),
                );
                continue;
            }
            ranges.push((r, v.span()));
        }
        for (a, b) in overlapping_pairs(&ranges) {
            let (earlier, later) = if a.1.start < b.1.start {
                (a, b)
            } else {
                (b, a)
            };
            let line = self.line(&earlier.1);
            self.error(
                &later.1,
                K::RangeOverlap,
                format!(
                    "range {} overlaps range {} (line {line})",
                    later.0, earlier.0
                ),
                "ranges of one subnet must not share addresses: shorten one or merge them",
            );
        }

        // Exclusions: each must remove something; the pool is the ranges minus them.
        let mut excluded: Vec<AddrRange> = Vec::new();
        for v in s.exclude.iter().flat_map(|l| l.get_ref()) {
            let Some(x) = self.range_in(v, net, "exclude") else {
                continue;
            };
            if !ranges.iter().any(|(r, _)| r.overlaps(x)) {
                self.error(
                    &v.span(),
                    K::ExcludeOutsideRanges,
                    format!("exclude {x} removes nothing: it is in no range of this subnet"),
                    "remove it, or correct the address",
                );
                continue;
            }
            excluded.push(x);
        }
        let pool = carve(ranges.iter().map(|(r, _)| *r).collect(), &excluded);

        let server_id = match &s.server_id {
            Some(v) => self
                .unicast_ip(v, "server_id")
                .map(|ip| (ip, v.span(), true)),
            None => match &g.server_id {
                Some((ip, span)) => Some((*ip, span.clone(), false)),
                None => {
                    self.error(
                        &head,
                        K::MissingServerId,
                        format!("subnet {net} has no server_id"),
                        "set `server_id` to this server's address (on the subnet for direct \
                         clients, the address relays forward to otherwise), here or at the top",
                    );
                    None
                }
            },
        };
        let lease = self.lease_times(g, Some(s));

        let built = self.options(&s.option_keys(), Some(net), "[[subnet]]");
        self.check_default_route(built.routers_span.as_ref(), built.routes.as_ref(), None);
        let mut options = g.options.clone();
        for (code, value) in built.set.iter() {
            options.set(code, value);
        }
        // RFC 2132 §3.3 / §5.3: subnet mask and broadcast address follow from `network`.
        options.set(1, net.netmask().octets());
        if options.get(28).is_none() {
            options.set(28, net.broadcast().octets());
        }
        self.check_in_use(&built.routers, &pool, "router");

        let mut links = Vec::new();
        if let Some(v) = &s.vlan {
            links.extend(self.link(v, true).map(|l| (l, v.span())));
        }
        for v in s.links.iter().flat_map(|l| l.get_ref()) {
            links.extend(self.link(v, true).map(|l| (l, v.span())));
        }
        links.sort_by_key(|(l, span)| (*l, span.start));
        for pair in links.windows(2) {
            if pair[0].0 == pair[1].0 {
                let line = self.line(&pair[0].1);
                self.error(
                    &pair[1].1,
                    K::LinkConflict,
                    format!(
                        "{} is already listed for this subnet (line {line})",
                        link_desc(pair[1].0)
                    ),
                    "remove the duplicate",
                );
            }
        }
        links.dedup_by_key(|(l, _)| *l);

        let filename = s
            .filename
            .as_ref()
            .and_then(|v| self.bootp_text(v, "filename", MAX_FILENAME, "file"));
        let server_name = s
            .server_name
            .as_ref()
            .and_then(|v| self.bootp_text(v, "server_name", MAX_SERVER_NAME, "sname"));
        let next_server = s
            .next_server
            .as_ref()
            .and_then(|v| self.unicast_ip(v, "next_server"));

        let mut reservations = Vec::new();
        for r in &s.reservation {
            if let Some(dr) = self.reservation(r, net, &built, &pool) {
                reservations.push(dr);
            }
        }
        // A reserved host must not get the address of a router or of this server.
        let server_here = server_id.as_ref().filter(|(ip, _, _)| net.contains(*ip));
        for dr in &reservations {
            let Some(addr) = dr.res.address else { continue };
            let clash = built
                .routers
                .iter()
                .find(|(ip, _)| *ip == addr)
                .map(|(_, span)| ("router", span.clone()))
                .or_else(|| {
                    server_here
                        .filter(|(ip, _, _)| *ip == addr)
                        .map(|(_, span, _)| ("server_id", span.clone()))
                });
            if let Some((what, span)) = clash {
                let line = self.line(&span);
                let at = dr.addr_span.clone();
                self.error(
                    &at,
                    K::AddressConflict,
                    format!("reserved address {addr} is the {what} (line {line})"),
                    "reserve another address for this host",
                );
            }
        }

        Some(Draft {
            decl,
            net,
            pool,
            server_id,
            lease: lease?,
            options,
            reservations,
            links,
            default: s.default.as_ref().map(|v| (*v.get_ref(), v.span())),
            filename,
            server_name,
            next_server,
        })
    }

    /// Routers (and the like) must not be leasable: the pool would hand them to a client.
    fn check_in_use(&mut self, addrs: &[(Ipv4Addr, Span)], pool: &[AddrRange], what: &str) {
        for (ip, span) in addrs {
            if let Some(r) = pool.iter().find(|r| r.contains(*ip)) {
                self.error(
                    span,
                    K::AddressConflict,
                    format!("{what} {ip} is inside the dynamic range {r}"),
                    format!("add \"{ip}\" to `exclude`, or move the range so it leaves {ip} out"),
                );
            }
        }
    }

    /// RFC 3442, "DHCP Client Behavior": a client that receives option 121 MUST ignore
    /// option 3, so a default route configured only as `routers` would be lost.
    /// `inherited` = the subnet's lists, when checking a reservation.
    fn check_default_route(
        &mut self,
        routers: Option<&Span>,
        routes: Option<&(bool, Span)>,
        inherited: Option<ScopeRoutes<'_>>,
    ) {
        let (sub_routers, sub_routes) = inherited.unwrap_or((None, None));
        // Only report where this scope contributes one of the two lists.
        if routers.is_none() && routes.is_none() {
            return;
        }
        let routers = routers.or(sub_routers);
        let Some((has_default, span)) = routes.or(sub_routes) else {
            return;
        };
        if routers.is_some() && !has_default {
            self.error(
                span,
                K::MissingDefaultRoute,
                "classless_routes has no default route, so clients that use it lose `routers`",
                "add \"0.0.0.0/0 via <router>\": RFC 3442 clients ignore option 3 when option 121 \
                 is present",
            );
        }
    }

    fn reservation(
        &mut self,
        decl: &Spanned<ReservationDecl>,
        net: Ipv4Net,
        subnet: &BuiltOptions,
        pool: &[AddrRange],
    ) -> Option<DraftReservation> {
        let r = decl.get_ref();
        let mut ids: Vec<(&str, Span)> = Vec::new();
        for (name, span) in [
            ("mac", r.mac.as_ref().map(Spanned::span)),
            ("client_id", r.client_id.as_ref().map(Spanned::span)),
            ("circuit_id", r.circuit_id.as_ref().map(Spanned::span)),
            ("remote_id", r.remote_id.as_ref().map(Spanned::span)),
            ("vlan", r.vlan.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                ids.push((name, span));
            }
        }
        ids.sort_by_key(|(_, span)| span.start);
        let key_span = match ids.as_slice() {
            [] => {
                self.error(
                    &decl.span(),
                    K::ReservationKey,
                    "reservation has no identifier",
                    "add exactly one of `mac`, `client_id`, `circuit_id`, `remote_id` or `vlan`",
                );
                return None;
            }
            [(_, span)] => span.clone(),
            [(first, _), (second, span), ..] => {
                self.error(
                    span,
                    K::ReservationKey,
                    format!("reservation has both `{first}` and `{second}`"),
                    "a reservation matches on one identifier: split it into two reservations",
                );
                return None;
            }
        };
        let key = self.reservation_key(r)?;

        let address = match &r.address {
            None => None,
            Some(v) => {
                let ip = self.ip(v, "address")?;
                if !net.contains(ip) {
                    self.error(
                        &v.span(),
                        K::ReservationOutsideSubnet,
                        format!("reserved address {ip} is not inside subnet {net}"),
                        format!(
                            "use an address of {net}, or move the reservation to the [[subnet]] \
                             that contains {ip}"
                        ),
                    );
                    return None;
                }
                if ip == net.addr || ip == net.broadcast() {
                    self.special_address(&v.span(), ip, net, "reserved for a host");
                    return None;
                }
                Some(ip)
            }
        };

        let built = self.options(&r.option_keys(), Some(net), "reservation");
        self.check_default_route(
            built.routers_span.as_ref(),
            built.routes.as_ref(),
            Some((subnet.routers_span.as_ref(), subnet.routes.as_ref())),
        );
        self.check_in_use(&built.routers, pool, "router");
        let filename = r
            .filename
            .as_ref()
            .and_then(|v| self.bootp_text(v, "filename", MAX_FILENAME, "file"));
        let server_name = r
            .server_name
            .as_ref()
            .and_then(|v| self.bootp_text(v, "server_name", MAX_SERVER_NAME, "sname"));
        let next_server = r
            .next_server
            .as_ref()
            .and_then(|v| self.unicast_ip(v, "next_server"));
        Some(DraftReservation {
            res: Reservation {
                key,
                address,
                options: built.set,
                filename,
                server_name,
                next_server,
            },
            addr_span: r.address.as_ref().map_or(key_span.clone(), Spanned::span),
            key_span,
        })
    }

    fn reservation_key(&mut self, r: &ReservationDecl) -> Option<ReservationKey> {
        if let Some(v) = &r.mac {
            return match parse_mac(v.get_ref()) {
                Ok(m) => Some(ReservationKey::Mac(m)),
                Err(reason) => {
                    self.error(
                        &v.span(),
                        K::InvalidValue,
                        format!("invalid mac: {reason}"),
                        "write six hex bytes, e.g. \"00:11:22:33:44:55\"",
                    );
                    None
                }
            };
        }
        if let Some(v) = &r.client_id {
            let help = "write the whole option 61 payload in hex, type byte first, e.g. \
                        \"01:00:11:22:33:44:55\" for an Ethernet MAC";
            return match parse_hex(v.get_ref()) {
                // RFC 2132 §9.14: the client identifier is at least two octets.
                Ok(b) if (2..=255).contains(&b.len()) => Some(ReservationKey::ClientId(b.into())),
                Ok(b) => {
                    self.error(
                        &v.span(),
                        K::InvalidValue,
                        format!(
                            "client_id has {} byte(s); it must have 2 to 255 (RFC 2132 §9.14)",
                            b.len()
                        ),
                        help,
                    );
                    None
                }
                Err(reason) => {
                    self.error(
                        &v.span(),
                        K::InvalidValue,
                        format!("invalid client_id: {reason}"),
                        help,
                    );
                    None
                }
            };
        }
        for (value, what, circuit) in [
            (&r.circuit_id, "circuit_id", true),
            (&r.remote_id, "remote_id", false),
        ] {
            let Some(v) = value else { continue };
            return match parse_agent_id(v.get_ref()) {
                Ok(b) if circuit => Some(ReservationKey::CircuitId(b.into())),
                Ok(b) => Some(ReservationKey::RemoteId(b.into())),
                Err(reason) => {
                    self.error(
                        &v.span(),
                        K::InvalidValue,
                        format!("invalid {what}: {reason}"),
                        "write the text the relay sends, or hex as \"0x4c31\" or \"4c:31\"",
                    );
                    None
                }
            };
        }
        let v = r.vlan.as_ref()?;
        let link = self.link(v, false)?;
        // `link` with untagged_ok = false always yields an outer tag.
        Some(ReservationKey::Vlan {
            outer: link.outer?,
            inner: link.inner,
        })
    }

    // ---------------------------------------------------------------- phase 3

    fn check_subnet_overlap(&mut self, drafts: &[Draft<'_>]) {
        let spans: Vec<(AddrRange, Span)> = drafts
            .iter()
            .map(|d| (d.net.bounds(), d.decl.get_ref().network.span()))
            .collect();
        for (a, b) in overlapping_pairs(&spans) {
            let (earlier, later) = if a.1.start < b.1.start {
                (a, b)
            } else {
                (b, a)
            };
            let line = self.line(&earlier.1);
            let net_of = |r: &AddrRange| {
                drafts
                    .iter()
                    .find(|d| d.net.bounds() == *r)
                    .map(|d| d.net.to_string())
                    .unwrap_or_default()
            };
            self.error(
                &later.1,
                K::SubnetOverlap,
                format!(
                    "subnet {} overlaps subnet {} (line {line})",
                    net_of(&later.0),
                    net_of(&earlier.0)
                ),
                "subnets must not share addresses: fix the network address or prefix length",
            );
        }
    }

    fn shared_networks(&mut self, file: &FileConfig, drafts: &[Draft<'_>]) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        let mut member_of: HashMap<usize, usize> = HashMap::new();
        let by_net = |net: Ipv4Net| drafts.iter().position(|d| d.net == net);

        for decl in &file.shared_network {
            let sn = decl.get_ref();
            let name = sn.name.get_ref().trim().to_string();
            if name.is_empty() {
                self.error(
                    &sn.name.span(),
                    K::InvalidValue,
                    "shared network name is empty",
                    "give it a name, e.g. name = \"olt-3\"",
                );
                continue;
            }
            if let Some(g) = groups.iter().find(|g| g.name == name) {
                let line = self.line(&g.span);
                self.error(
                    &sn.name.span(),
                    K::SharedNetworkConflict,
                    format!("shared network `{name}` is already declared (line {line})"),
                    "declare each shared network once; list all its subnets there",
                );
                continue;
            }
            let gi = groups.len();
            groups.push(Group {
                name: name.clone(),
                span: sn.name.span(),
                declared: true,
                members: Vec::new(),
            });
            let Some(list) = &sn.subnets else { continue };
            if list.get_ref().is_empty() {
                self.error(
                    &list.span(),
                    K::EmptyList,
                    format!("shared network `{name}` lists no subnets"),
                    "list the member networks, e.g. subnets = [\"100.64.0.0/22\", \"10.50.0.0/24\"]",
                );
            }
            for v in list.get_ref() {
                let found = parse_cidr(v.get_ref())
                    .ok()
                    .and_then(|(a, p)| Some(Ipv4Net { addr: a, prefix: p }).filter(|_| p <= 32))
                    .and_then(by_net);
                let Some(di) = found else {
                    self.error(
                        &v.span(),
                        K::UnknownSubnet,
                        format!("shared network `{name}` lists \"{}\", but no [[subnet]] has that network", v.get_ref()),
                        "write the `network` of an existing [[subnet]] exactly, or add that subnet",
                    );
                    continue;
                };
                if let Some(&other) = member_of.get(&di) {
                    let line = self.line(&groups[other].span);
                    self.error(
                        &v.span(),
                        K::SharedNetworkConflict,
                        format!(
                            "subnet {} is already in shared network `{}` (line {line})",
                            drafts[di].net, groups[other].name
                        ),
                        "a subnet belongs to one shared network: remove it from one list",
                    );
                    continue;
                }
                member_of.insert(di, gi);
                groups[gi].members.push(di);
            }
        }

        for (di, d) in drafts.iter().enumerate() {
            let Some(v) = &d.decl.get_ref().shared_network else {
                continue;
            };
            let name = v.get_ref().trim();
            if name.is_empty() {
                self.error(
                    &v.span(),
                    K::InvalidValue,
                    "shared_network name is empty",
                    "name the shared network, e.g. shared_network = \"olt-3\"",
                );
                continue;
            }
            let gi = match groups.iter().position(|g| g.name == name) {
                Some(gi) => gi,
                None => {
                    groups.push(Group {
                        name: name.to_string(),
                        span: v.span(),
                        declared: false,
                        members: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            match member_of.get(&di) {
                Some(&g) if g == gi => {}
                Some(&g) => {
                    let line = self.line(&groups[g].span);
                    self.error(
                        &v.span(),
                        K::SharedNetworkConflict,
                        format!(
                            "subnet {} says shared_network = \"{name}\", but shared network `{}` (line {line}) lists it",
                            d.net, groups[g].name
                        ),
                        "make them agree: a subnet belongs to one shared network",
                    );
                }
                None => {
                    member_of.insert(di, gi);
                    groups[gi].members.push(di);
                }
            }
        }

        for g in &groups {
            if g.declared && g.members.is_empty() && !self.diags.iter().any(|d| d.span == g.span) {
                let name = &g.name;
                self.error(
                    &g.span,
                    K::EmptyList,
                    format!("shared network `{name}` has no subnets"),
                    format!(
                        "list them in `subnets = [...]` or set shared_network = \"{name}\" in each [[subnet]]"
                    ),
                );
            }
        }
        groups
    }

    fn check_links(&mut self, drafts: &[Draft<'_>], group_of: &[Option<usize>]) {
        let mut all: Vec<(LinkMatch, usize, Span)> = drafts
            .iter()
            .enumerate()
            .flat_map(|(di, d)| d.links.iter().map(move |(l, span)| (*l, di, span.clone())))
            .collect();
        all.sort_by_key(|(l, _, span)| (*l, span.start));
        for pair in all.windows(2) {
            let ((l0, d0, s0), (l1, d1, s1)) = (&pair[0], &pair[1]);
            if l0 != l1 || d0 == d1 {
                continue;
            }
            let shared = group_of[*d0].is_some() && group_of[*d0] == group_of[*d1];
            if !shared {
                let line = self.line(s0);
                self.error(
                    s1,
                    K::LinkConflict,
                    format!(
                        "{} is already served by subnet {} (line {line})",
                        link_desc(*l1),
                        drafts[*d0].net
                    ),
                    "a link maps to one subnet: put both subnets in one shared network, or remove \
                     the link from one of them",
                );
            }
        }
    }

    fn default_subnet(&mut self, file: &FileConfig, drafts: &[Draft<'_>]) -> Option<usize> {
        let mut chosen: Option<usize> = None;
        for (di, d) in drafts.iter().enumerate() {
            let Some((true, span)) = &d.default else {
                continue;
            };
            match chosen {
                None => chosen = Some(di),
                Some(first) => {
                    let first = &drafts[first];
                    let line = first.default.as_ref().map_or(0, |(_, s)| self.line(s));
                    self.error(
                        span,
                        K::DefaultSubnetConflict,
                        format!("subnet {} is also marked default (subnet {}, line {line})", d.net, first.net),
                        "only one subnet can take untagged direct requests: remove one `default = true`",
                    );
                }
            }
        }
        // With a single subnet, it is the default unless it says `default = false`.
        if chosen.is_none()
            && file.subnet.len() == 1
            && drafts.len() == 1
            && drafts[0].default.is_none()
        {
            chosen = Some(0);
        }
        chosen
    }

    fn check_server_ids(
        &mut self,
        drafts: &[Draft<'_>],
        groups: &[Group],
        group_of: &[Option<usize>],
        default: Option<usize>,
        g: &Globals,
    ) {
        let mut by_addr: Vec<usize> = (0..drafts.len()).collect();
        by_addr.sort_by_key(|&di| u32::from(drafts[di].net.addr));
        for (di, d) in drafts.iter().enumerate() {
            let Some((sid, sid_span, local)) = &d.server_id else {
                continue;
            };
            // Where the server id lands: it must not be leasable or reserved there.
            if let Some(host) = containing(drafts, &by_addr, *sid) {
                if *sid == host.net.addr || *sid == host.net.broadcast() {
                    self.special_address(sid_span, *sid, host.net, "the server_id");
                } else if let Some(r) = host.pool.iter().find(|r| r.contains(*sid)) {
                    self.error(
                        sid_span,
                        K::AddressConflict,
                        format!(
                            "server_id {sid} is inside the dynamic range {r} of subnet {}",
                            host.net
                        ),
                        format!("add \"{sid}\" to that subnet's `exclude`, or move the range"),
                    );
                } else if let Some(dr) = host
                    .reservations
                    .iter()
                    .filter(|_| !std::ptr::eq(host, d)) // own subnet: reported at the reservation
                    .find(|dr| dr.res.address == Some(*sid))
                {
                    let line = self.line(&dr.key_span);
                    self.error(
                        sid_span,
                        K::AddressConflict,
                        format!("server_id {sid} is reserved for a host (line {line})"),
                        "reserve another address for that host",
                    );
                }
            }
            // RFC 2131 §4.1/§4.3.2: directly attached clients unicast to the server id, so it
            // must be this server's address on their link (this subnet or a sibling in its
            // shared network). Relayed subnets reach the server through the relay instead.
            let direct = !d.links.is_empty() || default == Some(di);
            if !direct {
                continue;
            }
            let on_link = d.net.contains(*sid)
                || group_of[di].is_some_and(|gi| {
                    groups[gi]
                        .members
                        .iter()
                        .any(|&m| drafts[m].net.contains(*sid))
                });
            if on_link {
                continue;
            }
            let net = d.net;
            let why = if d.links.is_empty() {
                "`default` (untagged direct clients)"
            } else {
                "`links`/`vlan`"
            };
            if *local {
                self.error(
                    sid_span,
                    K::ServerIdOffLink,
                    format!("server_id {sid} is not on subnet {net}, which serves direct clients"),
                    format!(
                        "set server_id to this server's address on {net}, or drop {why} if the \
                         subnet is only reached through relays (default = false)"
                    ),
                );
            } else {
                let line = g.server_id.as_ref().map_or(0, |(_, s)| self.line(s));
                self.error(
                    &d.decl.get_ref().network.span(),
                    K::ServerIdOffLink,
                    format!(
                        "subnet {net} serves direct clients, but the global server_id {sid} (line {line}) is not on it"
                    ),
                    format!(
                        "add server_id = this server's address on {net} to this [[subnet]], or drop \
                         {why} if the subnet is only reached through relays (default = false)"
                    ),
                );
            }
        }
    }

    fn check_reservations(
        &mut self,
        drafts: &[Draft<'_>],
        groups: &[Group],
        group_of: &[Option<usize>],
    ) {
        // Identifiers: unique within what one request can select (a subnet or its shared
        // network), or the choice of reservation would depend on pool order.
        let mut scopes: Vec<Vec<usize>> = groups.iter().map(|g| g.members.clone()).collect();
        scopes.extend(
            (0..drafts.len())
                .filter(|&di| group_of[di].is_none())
                .map(|di| vec![di]),
        );
        for members in scopes {
            let mut keys: Vec<(&ReservationKey, &Span)> = members
                .iter()
                .flat_map(|&di| {
                    drafts[di]
                        .reservations
                        .iter()
                        .map(|dr| (&dr.res.key, &dr.key_span))
                })
                .collect();
            keys.sort_by(|a, b| a.0.cmp(b.0).then(a.1.start.cmp(&b.1.start)));
            for pair in keys.windows(2) {
                if pair[0].0 == pair[1].0 {
                    let line = self.line(pair[0].1);
                    self.error(
                        pair[1].1,
                        K::DuplicateReservation,
                        format!("{} is already reserved (line {line})", key_desc(pair[1].0)),
                        "reserve each identifier once per subnet or shared network: merge or \
                         remove one of the two",
                    );
                }
            }
        }
        // Fixed addresses: one host each.
        let mut seen: HashMap<Ipv4Addr, Span> = HashMap::new();
        let mut addrs: Vec<(Ipv4Addr, Span)> = Vec::new();
        for d in drafts {
            for dr in &d.reservations {
                if let Some(a) = dr.res.address {
                    let at = dr.addr_span.clone();
                    addrs.push((a, at));
                }
            }
        }
        addrs.sort_by_key(|(_, s)| s.start);
        for (a, span) in addrs {
            if let Some(first) = seen.get(&a) {
                let line = self.line(first);
                self.error(
                    &span,
                    K::DuplicateReservedAddress,
                    format!("address {a} is already reserved for another host (line {line})"),
                    "give each reservation its own address",
                );
            } else {
                seen.insert(a, span);
            }
        }
    }
}

/// Blame the first local explicit setting, else the first explicit one.
fn blame<T>(candidates: &[&Setting<T>]) -> Option<Span> {
    candidates
        .iter()
        .find(|s| s.local && s.span.is_some())
        .or_else(|| candidates.iter().find(|s| s.span.is_some()))
        .and_then(|s| s.span.clone())
}

/// The draft whose network contains `ip`; `by_addr` = draft indices sorted by address.
/// (With overlapping subnets, already reported, the answer is one of the candidates.)
fn containing<'d, 'w>(
    drafts: &'d [Draft<'w>],
    by_addr: &[usize],
    ip: Ipv4Addr,
) -> Option<&'d Draft<'w>> {
    let ip_u = u32::from(ip);
    let i = by_addr.partition_point(|&di| u32::from(drafts[di].net.addr) <= ip_u);
    let d = &drafts[*by_addr.get(i.checked_sub(1)?)?];
    d.net.contains(ip).then_some(d)
}

/// All pairs of ranges that share an address (sorted sweep; each overlap reported once
/// against the range reaching furthest so far).
fn overlapping_pairs(items: &[Located]) -> Vec<(&Located, &Located)> {
    let mut order: Vec<&(AddrRange, Span)> = items.iter().collect();
    order.sort_by_key(|(r, span)| (u32::from(r.start), span.start));
    let mut out = Vec::new();
    let mut reach: Option<&(AddrRange, Span)> = None;
    for item in order {
        match reach {
            Some(prev) if u32::from(item.0.start) <= u32::from(prev.0.end) => {
                out.push((prev, item));
                if u32::from(item.0.end) > u32::from(prev.0.end) {
                    reach = Some(item);
                }
            }
            _ => reach = Some(item),
        }
    }
    out
}

/// `ranges` minus `holes`, sorted and disjoint.
fn carve(mut ranges: Vec<AddrRange>, holes: &[AddrRange]) -> Vec<AddrRange> {
    for h in holes {
        let (hs, he) = (u32::from(h.start), u32::from(h.end));
        let mut next_ranges = Vec::with_capacity(ranges.len() + 1);
        for r in ranges {
            let (rs, re) = (u32::from(r.start), u32::from(r.end));
            if he < rs || hs > re {
                next_ranges.push(r);
                continue;
            }
            if hs > rs {
                next_ranges.push(AddrRange {
                    start: r.start,
                    end: Ipv4Addr::from(hs - 1),
                });
            }
            if he < re {
                next_ranges.push(AddrRange {
                    start: Ipv4Addr::from(he + 1),
                    end: r.end,
                });
            }
        }
        ranges = next_ranges;
    }
    ranges.sort_by_key(|r| u32::from(r.start));
    ranges
}

fn group_index(groups: &[Group], n: usize) -> Vec<Option<usize>> {
    let mut out = vec![None; n];
    for (gi, g) in groups.iter().enumerate() {
        for &m in &g.members {
            out[m] = Some(gi);
        }
    }
    out
}

fn next(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip).saturating_add(1))
}

fn prev(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip).saturating_sub(1))
}

fn link_desc(l: LinkMatch) -> String {
    match (l.outer, l.inner) {
        (None, _) => "untagged link []".into(),
        (Some(o), None) => format!("link [{o}]"),
        (Some(o), Some(i)) => format!("link [{o}, {i}]"),
    }
}

fn key_desc(k: &ReservationKey) -> String {
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let agent = |b: &[u8]| match std::str::from_utf8(b) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("\"{s}\""),
        _ => hex(b),
    };
    match k {
        ReservationKey::Mac(m) => format!("mac {}", hex(m)),
        ReservationKey::ClientId(b) => format!("client_id {}", hex(b)),
        ReservationKey::CircuitId(b) => format!("circuit_id {}", agent(b)),
        ReservationKey::RemoteId(b) => format!("remote_id {}", agent(b)),
        ReservationKey::Vlan { outer, inner: None } => format!("vlan [{outer}]"),
        ReservationKey::Vlan {
            outer,
            inner: Some(i),
        } => format!("vlan [{outer}, {i}]"),
    }
}

/// Phase 4: sort subnets by address, assign ids, resolve indices.
fn assemble(
    drafts: Vec<Draft<'_>>,
    groups: Vec<Group>,
    default: Option<usize>,
    mut cfg: ServerConfig,
) -> ServerConfig {
    let mut order: Vec<usize> = (0..drafts.len()).collect();
    order.sort_by_key(|&di| u32::from(drafts[di].net.addr));
    let mut id_of = vec![SubnetId(0); drafts.len()];
    for (pos, &di) in order.iter().enumerate() {
        // Subnet counts are bounded by the file size, far below u32::MAX.
        id_of[di] = SubnetId(pos as u32);
    }
    let group_of = group_index(&groups, drafts.len());
    cfg.shared_networks = groups
        .into_iter()
        .map(|g| SharedNetwork {
            name: g.name,
            subnets: g.members.iter().map(|&m| id_of[m]).collect(),
        })
        .collect();
    cfg.default_subnet = default.map(|di| id_of[di]);
    let mut slots: Vec<Option<Draft<'_>>> = drafts.into_iter().map(Some).collect();
    for (di, gi) in order.into_iter().map(|di| (di, group_of[di])) {
        let Some(d) = slots[di].take() else { continue };
        let mut reservations: Vec<Reservation> =
            d.reservations.into_iter().map(|dr| dr.res).collect();
        reservations.sort_by(|a, b| a.key.cmp(&b.key));
        cfg.subnets.push(Subnet {
            id: id_of[di],
            network: d.net,
            ranges: d.pool,
            excluded: Vec::new(),
            server_id: d.server_id.map_or(Ipv4Addr::UNSPECIFIED, |(ip, _, _)| ip),
            lease: d.lease,
            options: d.options,
            reservations,
            shared_network: gi.map(|g| g as u32),
            links: d.links.into_iter().map(|(l, _)| l).collect(),
            filename: d.filename,
            server_name: d.server_name,
            next_server: d.next_server,
        });
    }
    cfg
}
