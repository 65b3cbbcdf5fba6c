//! Rebuild: failure → exclusion → new pool-map version → data rebuilt on surviving targets.
//!
//! Status: only the rebuild status record and its `pool query` wording have landed; the scan/pull
//! machinery comes with the rebuild issue. Must not depend on: control, client.
//!
//! Modules:
//! - [`status`]: DAOS's `daos_rebuild_status` and the health line `dmg pool query` prints from it.
#![forbid(unsafe_code)]

pub mod status;
