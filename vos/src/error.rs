//! The crate's error enum and its mapping to DAOS `DER_*` numbers.

use std::path::PathBuf;

use daos_common::{DaosErrno, Der};

/// Every way a vos call can fail. Each variant carries the data a caller needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum VosError {
    /// Conditional insert of a key that already exists (`DKEY_INSERT`/`AKEY_INSERT`).
    #[error("{what} already exists")]
    Exist { what: String },
    /// Conditional update/fetch of a missing key, or a missing container.
    #[error("{what} does not exist")]
    Nonexist { what: String },
    /// Not enough space in the named tier for the request; nothing was written.
    #[error("no space in {tier}: need {need} bytes, {free} free")]
    NoSpace {
        tier: &'static str,
        need: u64,
        free: u64,
    },
    /// Update or punch at an epoch the container has already aggregated.
    #[error("epoch {epoch} is at or below the aggregated epoch {aggregated}")]
    EpochTooOld { epoch: u64, aggregated: u64 },
    /// A caller-supplied argument is invalid.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Array record size differs from the size fixed by the akey's first write.
    #[error("record size {got} does not match the akey's record size {expected}")]
    RecordSize { expected: u32, got: u32 },
    /// Value kind (single/array) differs from the akey's first write.
    #[error("akey holds a {existing} value, request is {requested}")]
    WrongType {
        existing: &'static str,
        requested: &'static str,
    },
    /// An on-disk file fails validation (bad magic, checksum, truncated). Names the file.
    #[error("corrupt file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Data read back from the data file does not match its recorded checksum.
    #[error("checksum mismatch in {path} at offset {offset} (len {len})")]
    Checksum {
        path: PathBuf,
        offset: u64,
        len: u32,
    },
    /// An I/O call failed on the named file.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The storage class exists in DAOS but not in this build or platform.
    #[error("storage class {class} is not supported: {reason}")]
    Unsupported { class: &'static str, reason: String },
    /// A flush failed: the failed batch and everything queued after it were backed out and the
    /// pool is read-only (DAOS marks the target faulty) until reopened.
    #[error(
        "update not applied, pool is read-only after a flush I/O error (reopen to recover): {0}"
    )]
    Failed(String),
    /// The pool already exists at create, or a file is missing at open.
    #[error("pool at {path}: {reason}")]
    Pool { path: PathBuf, reason: String },
    /// The pool was closed while the request was in flight.
    #[error("pool is shut down")]
    Shutdown,
}

impl VosError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VosError::Io {
            path: path.into(),
            source,
        }
    }
    /// A copy of a read error for each fetch that waited on the same read (`Checksum`, `Io`
    /// and `NoSpace` keep their kind, path and errno; anything else becomes its message).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            VosError::NoSpace { tier, need, free } => VosError::NoSpace {
                tier,
                need: *need,
                free: *free,
            },
            VosError::Checksum { path, offset, len } => VosError::Checksum {
                path: path.clone(),
                offset: *offset,
                len: *len,
            },
            VosError::Io { path, source } => VosError::Io {
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            other => VosError::Failed(other.to_string()),
        }
    }
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        VosError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl DaosErrno for VosError {
    fn der(&self) -> Der {
        match self {
            VosError::Exist { .. } => Der::Exist,
            VosError::Nonexist { .. } => Der::Nonexist,
            VosError::NoSpace { .. } => Der::Nospace,
            VosError::Invalid(_) | VosError::WrongType { .. } => Der::Inval,
            VosError::RecordSize { .. } => Der::RecSize,
            VosError::EpochTooOld { .. } => Der::EpOld,
            VosError::Corrupt { .. } => Der::DfInval,
            VosError::Checksum { .. } => Der::Csum,
            VosError::Io { source, .. }
                if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) =>
            {
                Der::Nospace
            }
            VosError::Io { .. } | VosError::Failed(_) => Der::Io,
            VosError::Unsupported { .. } => Der::NotSupported,
            VosError::Pool { .. } => Der::Nonexist,
            VosError::Shutdown => Der::Shutdown,
        }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = VosError> = std::result::Result<T, E>;
