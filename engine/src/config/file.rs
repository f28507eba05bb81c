//! The TOML "wire" schema: exactly what an operator may write, nothing validated yet.
//!
//! Every leaf is a [`Spanned`] value so that the validator (`validate.rs`) can point an error
//! at the offending text. Strings that carry addresses, networks, ranges, MACs or hex are kept
//! as strings here and parsed by the validator: a serde `FromStr` error would lose the chance
//! to say *which* rule was broken and how to fix it. Integers are read as `i64` for the same
//! reason (a negative lease time gets "must be between 1 and 4294967295", not a serde type
//! error). `deny_unknown_fields` everywhere: a misspelt key is an error, never silently ignored.
//!
//! No `#[serde(flatten)]`: it defeats both `deny_unknown_fields` and span tracking, so the
//! option keys shared by the three option scopes are repeated and collected by
//! [`OptionKeys`].

use serde::Deserialize;
use toml::Spanned;

pub(super) type Str = Spanned<String>;
pub(super) type Int = Spanned<i64>;
pub(super) type Num = Spanned<f64>;
pub(super) type Flag = Spanned<bool>;
pub(super) type StrList = Spanned<Vec<Str>>;
pub(super) type IntList = Spanned<Vec<Int>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub authoritative: Option<Flag>,
    pub offer_hold: Option<Int>,
    pub decline_probation: Option<Int>,
    pub durability: Option<Str>,
    pub state_dir: Option<Str>,
    /// Default server identifier for every subnet that does not set its own.
    pub server_id: Option<Str>,
    pub lease_time: Option<Int>,
    pub min_lease_time: Option<Int>,
    pub max_lease_time: Option<Int>,
    pub t1_percent: Option<Num>,
    pub t2_percent: Option<Num>,
    /// Options every subnet inherits.
    pub options: Option<Spanned<GlobalOptions>>,
    #[serde(default)]
    pub shared_network: Vec<Spanned<SharedNetworkDecl>>,
    #[serde(default)]
    pub subnet: Vec<Spanned<SubnetDecl>>,
}

/// `[options]`: the named options that make sense server-wide, plus generic ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GlobalOptions {
    pub dns_servers: Option<StrList>,
    pub ntp_servers: Option<StrList>,
    pub domain_name: Option<Str>,
    pub domain_search: Option<StrList>,
    #[serde(default)]
    pub option: Vec<Spanned<OptionDecl>>,
}

/// `[[shared_network]]`: an explicit declaration (optional; `shared_network = "name"` in a
/// subnet is enough) that fixes the members' preference order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SharedNetworkDecl {
    pub name: Str,
    pub subnets: Option<StrList>,
}

/// `[[subnet]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubnetDecl {
    pub network: Str,
    pub default: Option<Flag>,
    pub ranges: Option<StrList>,
    pub exclude: Option<StrList>,
    pub server_id: Option<Str>,
    pub lease_time: Option<Int>,
    pub min_lease_time: Option<Int>,
    pub max_lease_time: Option<Int>,
    pub t1_percent: Option<Num>,
    pub t2_percent: Option<Num>,
    pub routers: Option<StrList>,
    pub dns_servers: Option<StrList>,
    pub ntp_servers: Option<StrList>,
    pub domain_name: Option<Str>,
    pub domain_search: Option<StrList>,
    pub classless_routes: Option<StrList>,
    pub broadcast_address: Option<Str>,
    #[serde(default)]
    pub option: Vec<Spanned<OptionDecl>>,
    pub vlan: Option<IntList>,
    pub links: Option<Spanned<Vec<IntList>>>,
    pub shared_network: Option<Str>,
    pub filename: Option<Str>,
    pub server_name: Option<Str>,
    pub next_server: Option<Str>,
    #[serde(default)]
    pub reservation: Vec<Spanned<ReservationDecl>>,
}

/// `[[subnet.reservation]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReservationDecl {
    pub mac: Option<Str>,
    pub client_id: Option<Str>,
    pub circuit_id: Option<Str>,
    pub remote_id: Option<Str>,
    pub vlan: Option<IntList>,
    pub address: Option<Str>,
    pub hostname: Option<Str>,
    pub routers: Option<StrList>,
    pub dns_servers: Option<StrList>,
    pub ntp_servers: Option<StrList>,
    pub domain_name: Option<Str>,
    pub domain_search: Option<StrList>,
    pub classless_routes: Option<StrList>,
    #[serde(default)]
    pub option: Vec<Spanned<OptionDecl>>,
    pub filename: Option<Str>,
    pub server_name: Option<Str>,
    pub next_server: Option<Str>,
}

/// `[[...option]]`: any option code with exactly one typed value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OptionDecl {
    pub code: Int,
    pub hex: Option<Str>,
    pub ip: Option<StrList>,
    pub text: Option<Str>,
    pub u8: Option<Int>,
    pub u16: Option<Int>,
    pub u32: Option<Int>,
    pub bool: Option<Flag>,
}

/// The option keys of one scope, borrowed, so one builder serves all three scopes.
#[derive(Default)]
pub(super) struct OptionKeys<'a> {
    pub routers: Option<&'a StrList>,
    pub dns_servers: Option<&'a StrList>,
    pub ntp_servers: Option<&'a StrList>,
    pub domain_name: Option<&'a Str>,
    pub hostname: Option<&'a Str>,
    pub domain_search: Option<&'a StrList>,
    pub classless_routes: Option<&'a StrList>,
    pub broadcast_address: Option<&'a Str>,
    pub generic: &'a [Spanned<OptionDecl>],
}

impl GlobalOptions {
    pub fn option_keys(&self) -> OptionKeys<'_> {
        OptionKeys {
            dns_servers: self.dns_servers.as_ref(),
            ntp_servers: self.ntp_servers.as_ref(),
            domain_name: self.domain_name.as_ref(),
            domain_search: self.domain_search.as_ref(),
            generic: &self.option,
            ..OptionKeys::default()
        }
    }
}

impl SubnetDecl {
    pub fn option_keys(&self) -> OptionKeys<'_> {
        OptionKeys {
            routers: self.routers.as_ref(),
            dns_servers: self.dns_servers.as_ref(),
            ntp_servers: self.ntp_servers.as_ref(),
            domain_name: self.domain_name.as_ref(),
            hostname: None,
            domain_search: self.domain_search.as_ref(),
            classless_routes: self.classless_routes.as_ref(),
            broadcast_address: self.broadcast_address.as_ref(),
            generic: &self.option,
        }
    }
}

impl ReservationDecl {
    pub fn option_keys(&self) -> OptionKeys<'_> {
        OptionKeys {
            routers: self.routers.as_ref(),
            dns_servers: self.dns_servers.as_ref(),
            ntp_servers: self.ntp_servers.as_ref(),
            domain_name: self.domain_name.as_ref(),
            hostname: self.hostname.as_ref(),
            domain_search: self.domain_search.as_ref(),
            classless_routes: self.classless_routes.as_ref(),
            broadcast_address: None,
            generic: &self.option,
        }
    }
}
