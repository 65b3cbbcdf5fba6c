//! The control plane: `daos_server` (starts and watches engines) and `dmg` (management API over TCP).
//!
//! Status: only the server configuration (DAOS's `daos_server.yml` schema, with an embedded single-node
//! default) has landed; the processes and gRPC service come with the control-plane issue.
//! Must not depend on: engine (engines are child processes reached over dRPC), vos, placement internals.
//!
//! Modules:
//! - [`config`]: `daos_server.yml` parsing and validation, and the `D_*`/`CRT_*` environment each engine
//!   gets from it (DAOS turns `provider`, `fabric_iface`, `fabric_iface_port` and `crt_timeout` into them).
#![forbid(unsafe_code)]

pub mod config;
