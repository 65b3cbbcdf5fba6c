//! Shared vocabulary of daos-rs: the DAOS `DER_*` error numbers, the hybrid logical clock that every RPC
//! carries, and the small id types (ranks, tags, uuids) that cross crate boundaries.
//!
//! Must not depend on: any other daos-rs crate, any I/O or runtime crate. Everything may use it.
//!
//! Modules:
//! - [`der`]: `DER_*` names and numbers exactly as DAOS's `daos_errno.h` defines them, and the
//!   [`der::DaosErrno`] trait each crate's error enum implements at the API edge.
//! - [`hlc`]: hybrid logical clock (DAOS `gurt/hlc.c` layout: nanoseconds since 2021-01-01, 18 logical bits).
//! - [`ids`]: `Rank`, `Tag`, `Uuid` re-export.
#![forbid(unsafe_code)]

pub mod der;
pub mod hlc;
pub mod ids;

pub use der::{DaosErrno, Der};
pub use hlc::Hlc;
pub use ids::{Rank, Tag};
