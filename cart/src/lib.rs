//! cart: the fabric RPC + bulk layer of daos-rs, modelled on DAOS CaRT over Mercury, over libfabric.
//!
//! Must not depend on: storage crates (vos, engine), placement, control. Depends on `cart-ofi-sys`
//! (raw libfabric) and `daos-common` (DER_* numbers, HLC).
//!
//! Modules:
//! - [`transport`]: the NA-like [`transport::Transport`] trait; `ofi` (libfabric, the only module
//!   with `unsafe`) and `loopback` (in-process) implementations; provider capability table.
//! - [`config`]: typed config, field > env (`D_PROVIDER`, `D_INTERFACE`, `D_DOMAIN`, `D_PORT`,
//!   `CRT_TIMEOUT`, …) > default.
//! - [`wire`]: header layout and bincode body codec with size caps.
//! - [`proto`]: protocols, opcodes (`base<<24 | version<<16 | index`), typed [`proto::Rpc`].
//! - [`context`]: [`Context`] (endpoint + CQ + progress task), send/timeout/credits, dispatch.
//! - [`bulk`]: registered scatter-gather lists, serialisable handles, GET/PUT transfers.
//! - [`group`]: groups and the attach-info file.
//! - [`selftest`]: the self-test protocol (base 0xF2) and its run loop.
//!
//! Design decisions:
//! - Progress runs on the runtime that owns the context (no progress thread, no per-RPC thread
//!   hop on a current-thread runtime); spin `CART_SPIN_US` (default 200 µs) then block on the CQ
//!   wait fd (tcp) or poll every 1 ms (shm has no wait fd).
//! - Replies are unexpected messages matched by RPC id (no expected/tagged receive per RPC).
//! - Bodies above the inline limit (default DAOS's 19 KiB) travel as bulk automatically, both
//!   ways: the receiver pulls them with `fi_read` (a reply's owner frees it on a RELEASE message).
#![deny(unsafe_code)]

pub mod bulk;
pub mod config;
pub mod context;
pub mod error;
pub mod group;
pub mod proto;
pub mod selftest;
pub mod transport;
pub mod wire;

pub use bulk::{Bulk, BulkHandle, BulkOp};
pub use config::Config;
pub use context::{Context, Endpoint, RpcCtx};
pub use error::{CartError, RpcError};
pub use group::Group;
pub use proto::{opcode, Protocol, Rpc};
