//! Configuration: the operator's TOML file -> the validated runtime model ([`ServerConfig`]).
//!
//! CONTRACT:
//! * `load(path) -> Result<ServerConfig, ConfigError>` and `parse(text, origin) -> ...`: errors
//!   display as `file:line:column: error: what is wrong` plus a `help:` line saying how to fix
//!   it (every problem found, in file order).
//! * `zero_config(&ZeroConfig) -> Result<ServerConfig, ConfigError>`: serve an interface's own
//!   subnet (dnsmasq-like default when no file is given).
//!
//! # Why it is built this way
//!
//! The per-packet path must not validate, parse or allocate, so everything the decision needs
//! is checked and precomputed here once: option payloads are encoded, exclusions are carved
//! out of the ranges, subnets are sorted by address (giaddr lookup is a binary search),
//! reservations are sorted by key (lookup by a borrowed [`KeyRef`] is a binary search), and
//! every cross-reference (shared networks, links, default subnet) is an index. Loading is
//! split into a serde *wire* schema (`file.rs`, spans on every value, unknown keys rejected)
//! and a validator (`validate.rs`) that turns it into the model, so error messages can name
//! the exact text at fault and say what to write instead.
//!
//! # File reference
//!
//! Durations are seconds. Addresses are dotted quads, networks `A.B.C.D/N`, ranges
//! `"START-END"` (or one address). The sample files in `engine/config/` carry the same
//! reference as comments.
//!
//! Top level (server-wide):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `authoritative` | `true` | NAK requests for unknown addresses on served subnets (RFC 2131 §4.3.2) |
//! | `offer_hold` | `30` | how long an OFFER reserves its address |
//! | `decline_probation` | `86400` | how long a DECLINEd address stays out of the pool |
//! | `durability` | `"fsync"` | `"fsync"`: ACK after the lease is on disk; `"none"` |
//! | `state_dir` | `"/var/lib/xdhcp"` | lease journal directory (absolute) |
//! | `server_id` | — | default server identifier for subnets without their own |
//! | `lease_time` | `3600` | default lease (subnets inherit) |
//! | `min_lease_time` | `min(60, lease_time)` | floor for a requested lease (option 51) |
//! | `max_lease_time` | `max(86400, lease_time)` | ceiling for a requested lease |
//! | `t1_percent` / `t2_percent` | `50` / `87.5` | renewal / rebinding time, % of the lease |
//! | `[options]` | — | `dns_servers`, `ntp_servers`, `domain_name`, `domain_search`, `[[options.option]]`, inherited by every subnet |
//!
//! `[[subnet]]`:
//!
//! | key | meaning |
//! |---|---|
//! | `network` | required, e.g. `"10.0.0.0/24"` (/1 to /30, host bits zero) |
//! | `ranges` | dynamic pools, e.g. `["10.0.0.10-10.0.0.99", "10.0.0.150-10.0.0.199"]` |
//! | `exclude` | addresses / ranges taken out of `ranges` |
//! | `server_id` | option 54 and reply source; must be on the subnet if it serves direct clients |
//! | `lease_time`, `min_lease_time`, `max_lease_time`, `t1_percent`, `t2_percent` | override the top level |
//! | `routers` (3), `dns_servers` (6), `domain_name` (15), `broadcast_address` (28), `ntp_servers` (42), `domain_search` (119, RFC 3397), `classless_routes` (121, RFC 3442: `"10.8.0.0/16 via 10.0.0.1"`) | named options |
//! | `[[subnet.option]]` | any code: `code = 150` plus one of `hex`, `ip = [..]`, `text`, `u8`, `u16`, `u32`, `bool` |
//! | `vlan = [outer, inner]`, `links = [[outer, inner], [outer], []]` | direct (non-relayed) links served by this subnet; `[]` = untagged |
//! | `default = true` | serve untagged direct requests that match no link (implied for a lone subnet) |
//! | `shared_network = "name"` | member of a shared network (several subnets on one link) |
//! | `filename`, `server_name`, `next_server` | BOOTP `file`, `sname`, `siaddr` |
//! | `[[subnet.reservation]]` | exactly one of `mac`, `client_id`, `circuit_id`, `remote_id`, `vlan`; optional `address`, `hostname` (12), named options and `[[subnet.reservation.option]]`, `filename`, `server_name`, `next_server` |
//!
//! `[[shared_network]]` (optional): `name` and `subnets = ["net", ...]` in preference order.
//!
//! Options 1 (subnet mask) and 28 (broadcast) are derived from `network` unless 28 is given.
//! Precedence: reservation > subnet > `[options]`. `circuit_id` / `remote_id` are text unless
//! written as `0x...` or colon-separated byte pairs (`"00:1a:2b"`); `client_id` is always hex
//! and includes the type byte.

mod error;
mod file;
mod model;
mod options;
mod validate;
mod zero;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, Diagnostic, ErrorKind, Span};
pub use model::*;
pub use options::{encode_classless_route, encode_domain_name};
pub use zero::{ZERO_CONFIG_MIN_LEASE, ZERO_CONFIG_MIN_PREFIX, ZeroConfig, zero_config};

use std::path::Path;

/// Parse and validate configuration `text`; `origin` is the file name used in diagnostics.
///
/// # Errors
/// [`ConfigError::Invalid`] with one diagnostic per problem (TOML syntax and type errors stop
/// at the first; validation reports them all).
pub fn parse(text: &str, origin: &Path) -> Result<ServerConfig, ConfigError> {
    let index = error::LineIndex::new(text);
    let wire: file::FileConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
        diagnostics: vec![error::from_toml(&e, &index, origin)],
    })?;
    validate::build(&wire, &index, origin)
        .map_err(|diagnostics| ConfigError::Invalid { diagnostics })
}

/// Read, parse and validate the configuration file at `path`.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read, else as [`parse`].
pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}
