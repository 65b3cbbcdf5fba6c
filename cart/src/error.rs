//! cart's error enum: data in every variant, each mapped to a stable `DER_*` number.

use std::time::Duration;

use daos_common::{DaosErrno, Der};

use crate::transport::TransportError;

/// Errors returned by cart.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CartError {
    /// No reply within the RPC's timeout (`-DER_TIMEDOUT`).
    #[error("RPC opcode {opcode:#010x} to rank {rank} tag {tag} timed out after {after:?}")]
    Timeout {
        /// Opcode.
        opcode: u32,
        /// Destination rank.
        rank: u32,
        /// Destination tag.
        tag: u32,
        /// The timeout that expired.
        after: Duration,
    },
    /// The destination cannot be reached (`-DER_UNREACH`).
    #[error("rank {rank} tag {tag} unreachable: {reason}")]
    Unreachable {
        /// Destination rank.
        rank: u32,
        /// Destination tag.
        tag: u32,
        /// Why.
        reason: String,
    },
    /// The rank is not in the group (`-DER_OOG`).
    #[error("rank {rank} is not a member of group {group:?} (members: {members})")]
    UnknownRank {
        /// Group name.
        group: String,
        /// The rank asked for.
        rank: u32,
        /// Number of known members.
        members: usize,
    },
    /// The peer answered with an error (`DER_UNREG` for an unknown opcode, `DER_MISMATCH` for a
    /// protocol version it does not serve, `DER_PROTO` for a body it could not decode, or whatever
    /// the handler returned).
    #[error("rank {rank} tag {tag} replied {der} to opcode {opcode:#010x}: {msg}")]
    Remote {
        /// Opcode sent.
        opcode: u32,
        /// Replying rank.
        rank: u32,
        /// Replying tag.
        tag: u32,
        /// The error number.
        der: Der,
        /// The peer's explanation.
        msg: String,
    },
    /// A body could not be encoded or decoded here (`-DER_PROTO`).
    #[error("cannot {what}: {reason}")]
    Codec {
        /// "encode request", "decode reply", …
        what: &'static str,
        /// The codec's message.
        reason: String,
    },
    /// A body over its size cap (`-DER_OVERFLOW`).
    #[error("{what} of {size} bytes exceeds the cap of {cap} bytes")]
    TooLarge {
        /// Which body.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The cap.
        cap: usize,
    },
    /// The RPC was cancelled (context shut down) (`-DER_CANCELED`).
    #[error("RPC cancelled: {0}")]
    Canceled(String),
    /// Bad configuration (`-DER_INVAL`).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A bad argument (`-DER_INVAL`).
    #[error("invalid argument: {0}")]
    Inval(String),
    /// Attach-info file problems (`-DER_BADPATH` / `-DER_IO`).
    #[error("attach-info {path}: {reason}")]
    AttachInfo {
        /// The file.
        path: String,
        /// Why.
        reason: String,
        /// Whether the file is missing (DER_BADPATH) or unreadable/malformed (DER_IO).
        missing: bool,
    },
    /// A transport failure.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A registration protocol error (duplicate base/version, opcode outside its protocol).
    #[error("protocol registration: {0}")]
    Registration(String),
}

impl DaosErrno for CartError {
    fn der(&self) -> Der {
        match self {
            CartError::Timeout { .. } => Der::Timedout,
            CartError::Unreachable { .. } => Der::Unreach,
            CartError::UnknownRank { .. } => Der::Oog,
            CartError::Remote { der, .. } => *der,
            CartError::Codec { .. } => Der::Proto,
            CartError::TooLarge { .. } => Der::Overflow,
            CartError::Canceled(_) => Der::Canceled,
            CartError::Config(_) | CartError::Inval(_) => Der::Inval,
            CartError::AttachInfo { missing: true, .. } => Der::Badpath,
            CartError::AttachInfo { .. } => Der::Io,
            CartError::Transport(t) => t.der(),
            CartError::Registration(_) => Der::Exist,
        }
    }
}

/// The error a handler returns: a `DER_*` number and a message, sent back in the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{der}: {msg}")]
pub struct RpcError {
    /// The error number.
    pub der: Der,
    /// An explanation for the caller.
    pub msg: String,
}

impl RpcError {
    /// A new handler error.
    pub fn new(der: Der, msg: impl Into<String>) -> RpcError {
        RpcError {
            der,
            msg: msg.into(),
        }
    }
}

impl<E: DaosErrno + std::fmt::Display> From<&E> for RpcError {
    fn from(e: &E) -> RpcError {
        RpcError::new(e.der(), e.to_string())
    }
}
