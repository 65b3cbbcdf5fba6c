//! The daos-rs client SDK (pool connect, containers, objects, KV and Array APIs), async Rust.
//!
//! Status: only the Array API's pure layout arithmetic has landed; the SDK calls arrive with the client
//! issue. Must not depend on: vos, engine, control (a client talks to engines only through cart).
//!
//! Modules:
//! - [`array`]: how DAOS's Array API lays an array over dkeys (dkey 0 = metadata with magic, cell size and
//!   chunk size; chunk `i` at integer dkey `i + 1`) and how one I/O range splits into per-chunk extents.
#![forbid(unsafe_code)]

pub mod array;
