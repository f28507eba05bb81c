//! xdhcp's benchmarks: criterion benches of the engine core live in `benches/`; this library
//! holds the load generator behind the `xdhcp-load` binary (see [`load`]).

pub mod load;
