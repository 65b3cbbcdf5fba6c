//! cart: the fabric RPC + bulk layer of daos-rs (DAOS CaRT analogue) over libfabric.
#![deny(unsafe_code)]

pub mod transport;
