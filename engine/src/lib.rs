//! `daos_engine`: one thread per target serving object and pool/container RPCs over cart against vos.
//!
//! Status: only the endpoint-tag layout has landed; the target threads and handlers come with the engine
//! issue. Must not depend on: control (the control plane knows the engine only as a child process).
//!
//! Modules:
//! - [`tags`]: which cart context (endpoint tag) serves what, as in DAOS: 0 = system xstream
//!   (pool/container metadata), 1 = SWIM, 2..targets+1 = target xstreams, then helper xstreams.
#![forbid(unsafe_code)]

pub mod tags;
