//! Configuration: the operator's TOML file -> the validated runtime model ([`ServerConfig`]).
//!
//! CONTRACT:
//! * `load(path) -> Result<ServerConfig, ConfigError>` and `parse(text, origin) -> ...`: errors
//!   display as `file:line:column: what is wrong` plus a line saying how to fix it.
//! * `zero_config(&ZeroConfig) -> ServerConfig`: serve an interface's own subnet (dnsmasq-like
//!   default when no file is given).

mod model;

pub use model::*;
