//! The transport layer, shaped like Mercury's NA plugin table (`na_class_ops`): unexpected message
//! send with pre-posted receives, memory registration with a serialisable remote descriptor,
//! one-sided get/put, non-blocking progress, a wait fd for blocking when idle, and cancel.
//!
//! Two implementations: [`ofi::OfiTransport`] (libfabric; the only module with `unsafe`) and
//! [`loopback::LoopbackTransport`] (in-process, for tests and single-process use). One conformance
//! suite (`tests` below) runs against both.
//!
//! Deviation from NA: there are no *expected* (tagged) messages. Replies travel as unexpected
//! messages too and are matched by RPC id in the cart header; every receive buffer is pre-posted,
//! so a reply costs no extra receive post on the hot path.

pub mod loopback;
#[allow(unsafe_code)]
pub mod ofi;
pub mod provider;

use std::os::fd::RawFd;
use std::sync::Arc;

pub use ofi::DmaBuf;
pub use provider::{Provider, ProviderCaps, PROVIDERS};

/// A peer's index in this transport's address vector.
pub type PeerId = u64;
/// A caller-chosen id reported back in the completion of an operation.
pub type OpId = u64;

/// Errors of the transport layer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    /// A libfabric call failed.
    #[error("libfabric {call} failed: {msg} ({rc})")]
    Fabric {
        /// The fi_* call.
        call: &'static str,
        /// Negative libfabric return code.
        rc: i64,
        /// fi_strerror text.
        msg: String,
    },
    /// The provider cannot be opened with the requested attributes.
    #[error("provider {provider:?} not available: {reason}")]
    NoProvider {
        /// The libfabric provider name.
        provider: String,
        /// Why.
        reason: String,
    },
    /// A peer address could not be parsed or inserted.
    #[error("bad peer address ({len} bytes): {reason}")]
    BadAddress {
        /// Address length.
        len: usize,
        /// Why.
        reason: String,
    },
    /// The peer is gone (connection refused or reset, or not in this process for loopback).
    #[error("peer {peer} unreachable: {reason}")]
    Unreachable {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// Offset/length outside a registered region, or access mode not allowing the operation.
    #[error("memory access out of range or not permitted: {0}")]
    BadAccess(String),
    /// A message larger than the receive buffers.
    #[error("message of {len} bytes exceeds the unexpected-message size {max}")]
    TooLarge {
        /// Message length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The operation was cancelled.
    #[error("operation cancelled")]
    Canceled,
}

impl daos_common::DaosErrno for TransportError {
    fn der(&self) -> daos_common::Der {
        use daos_common::Der;
        match self {
            TransportError::Fabric { .. } => Der::Hg,
            TransportError::NoProvider { .. } => Der::Inval,
            TransportError::BadAddress { .. } => Der::Inval,
            TransportError::Unreachable { .. } => Der::Unreach,
            TransportError::BadAccess(_) => Der::Inval,
            TransportError::TooLarge { .. } => Der::Overflow,
            TransportError::Canceled => Der::Canceled,
        }
    }
}

/// Remote-access rights of a registered region (DAOS `CRT_BULK_RO` / `CRT_BULK_RW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum Access {
    /// Peers may read (GET) it.
    ReadOnly,
    /// Peers may read and write (GET and PUT).
    ReadWrite,
}

/// Direction of a one-sided transfer, seen from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmaDir {
    /// Pull remote memory into the local region (`fi_read`).
    Get,
    /// Push the local region into remote memory (`fi_write`).
    Put,
}

/// A registered local region. Dropping it deregisters the memory; in-flight operations hold an
/// `Arc` to it, so memory never goes away under the NIC.
pub struct MemRegion {
    /// The bytes.
    pub buf: DmaBuf,
    /// Who may touch it remotely.
    pub access: Access,
    /// The remote key.
    pub key: u64,
    /// The address a peer names in RMA (virtual address for FI_MR_VIRT_ADDR providers, else 0).
    pub remote_base: u64,
    /// Transport-private registration (the fid_mr), released on drop.
    pub(crate) reg: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl MemRegion {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// True for a zero-length region.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == 0
    }
    /// What a peer needs to reach this region, given the owner's address.
    pub fn remote(&self, owner: &[u8]) -> RemoteMem {
        RemoteMem {
            owner: owner.to_vec(),
            base: self.remote_base,
            len: self.buf.len() as u64,
            key: self.key,
            access: self.access,
        }
    }
}

impl Drop for MemRegion {
    fn drop(&mut self) {
        // Deregister before the memory is freed (fields would otherwise drop `buf` first).
        drop(self.reg.take());
    }
}

impl std::fmt::Debug for MemRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemRegion")
            .field("len", &self.buf.len())
            .field("access", &self.access)
            .field("key", &self.key)
            .finish()
    }
}

/// A serialisable descriptor of a peer's registered region: owner address, base, length, key.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct RemoteMem {
    /// The owner's transport address (as from [`Transport::self_addr`]).
    pub owner: Vec<u8>,
    /// Base as the owner's provider wants it named.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// Remote key.
    pub key: u64,
    /// Rights granted.
    pub access: Access,
}

impl RemoteMem {
    /// Refuses a transfer the owner did not grant (a PUT into a read-only handle); every transport
    /// calls this before starting an RMA.
    pub fn check_access(&self, dir: RmaDir) -> Result<(), TransportError> {
        if dir == RmaDir::Put && self.access != Access::ReadWrite {
            return Err(TransportError::BadAccess(
                "PUT into a read-only bulk handle".into(),
            ));
        }
        Ok(())
    }
}

/// A completion or arrival reported by [`Transport::progress`].
#[derive(Debug)]
pub enum Event<'a> {
    /// An unexpected message arrived; the slice is valid for the callback only.
    Recv(&'a [u8]),
    /// A send finished (successfully or not).
    SendDone(OpId, Result<(), TransportError>),
    /// A get/put finished.
    RmaDone(OpId, Result<(), TransportError>),
}

/// The NA-like transport interface. All methods are non-blocking and callable from any thread.
pub trait Transport: Send + Sync + 'static {
    /// Which provider this is (for logs and URIs).
    fn provider_name(&self) -> &str;
    /// This endpoint's address, to be published (URI) or sent to peers.
    fn self_addr(&self) -> &[u8];
    /// Largest message [`Transport::send`] accepts (the size of the pre-posted receive buffers).
    fn max_msg_size(&self) -> usize;
    /// Inserts (or finds) a peer address, giving a handle for sends and RMA.
    fn insert_addr(&self, raw: &[u8]) -> Result<PeerId, TransportError>;
    /// Sends one unexpected message; the buffer is owned until completion ([`Event::SendDone`]).
    fn send(&self, peer: PeerId, msg: Vec<u8>, op: OpId) -> Result<(), TransportError>;
    /// Registers a buffer for remote access.
    fn register(&self, buf: DmaBuf, access: Access) -> Result<Arc<MemRegion>, TransportError>;
    /// Starts a one-sided transfer between `local[local_off..+len]` and `remote[remote_off..+len]`.
    #[allow(clippy::too_many_arguments)]
    fn rma(
        &self,
        dir: RmaDir,
        local: &Arc<MemRegion>,
        local_off: usize,
        peer: PeerId,
        remote: &RemoteMem,
        remote_off: u64,
        len: usize,
        op: OpId,
    ) -> Result<(), TransportError>;
    /// Reads up to `max` completions without blocking and reports each through `f`. Returns how many.
    fn progress(&self, max: usize, f: &mut dyn FnMut(Event<'_>)) -> Result<usize, TransportError>;
    /// A file descriptor that becomes readable when progress may find work (None: poll instead).
    /// It must stay open for as long as the transport lives.
    fn wait_fd(&self) -> Option<RawFd>;
    /// True when it is safe to block on [`Transport::wait_fd`] (nothing pending; `fi_trywait`).
    fn try_wait(&self) -> bool;
    /// Best-effort cancel of an operation; its completion is still reported (possibly `Canceled`).
    fn cancel(&self, op: OpId) -> bool;
}

#[cfg(test)]
mod conformance;
