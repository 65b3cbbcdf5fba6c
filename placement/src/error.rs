//! The placement crate's error enum, mapped to DAOS `DER_*` numbers.

use daos_common::{DaosErrno, Der};

use crate::state::CompState;

/// Everything that can go wrong in the pool map, class parsing or placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A state change the DAOS transition diagram does not allow.
    #[error("invalid transition of {kind} {id}: {from} -> {to}")]
    InvalidTransition {
        /// Component kind ("target", "rank", "node", ...).
        kind: &'static str,
        /// Component id.
        id: u32,
        /// Current state.
        from: CompState,
        /// Requested state.
        to: CompState,
    },
    /// A component named by an operation does not exist.
    #[error("no {kind} with id {id} in the pool map")]
    NoSuchComponent {
        /// Component kind.
        kind: &'static str,
        /// Requested id.
        id: u32,
    },
    /// A topology that cannot be built (zero counts, duplicate ids, ...).
    #[error("invalid topology: {0}")]
    InvalidTopology(String),
    /// The encoded map carries a format version this build does not know.
    #[error("unknown pool map format version {found} (this build reads version {supported})")]
    UnknownFormat {
        /// Version byte found in the input.
        found: u8,
        /// Version this build writes and reads.
        supported: u8,
    },
    /// The encoded map could not be decoded or violates an invariant.
    #[error("corrupt pool map encoding: {0}")]
    Corrupt(String),
    /// An object class name or id that is not a DAOS class.
    #[error("invalid object class {0:?}")]
    InvalidClass(String),
    /// A redundancy factor outside 0..=4.
    #[error("invalid redundancy factor {0} (DAOS supports rd_fac 0..=4)")]
    InvalidRedunFactor(u32),
    /// An object id whose class bits do not name a known class.
    #[error("object id {hi:#018x}.{lo:#018x} carries unknown class bits (code {code}, groups {groups:#x})")]
    InvalidOid {
        /// High word.
        hi: u64,
        /// Low word.
        lo: u64,
        /// Redundancy code found.
        code: u8,
        /// Group count found.
        groups: u16,
    },
    /// A class whose groups are still `X` where a frozen count is needed.
    #[error("object class {0} has an unfrozen X group count; generate the oid first")]
    UnfrozenGroups(String),
    /// The pool has no target that placement may use.
    #[error("pool map version {0} has no target placement may use")]
    NoTargets(u32),
}

impl DaosErrno for PlacementError {
    fn der(&self) -> Der {
        match self {
            PlacementError::InvalidTransition { .. } => Der::Inval,
            PlacementError::NoSuchComponent { .. } => Der::Nonexist,
            PlacementError::InvalidTopology(_) => Der::Inval,
            PlacementError::UnknownFormat { .. } => Der::DfInval,
            PlacementError::Corrupt(_) => Der::Proto,
            PlacementError::InvalidClass(_) => Der::Inval,
            PlacementError::InvalidRedunFactor(_) => Der::Inval,
            PlacementError::InvalidOid { .. } => Der::Inval,
            PlacementError::UnfrozenGroups(_) => Der::Inval,
            PlacementError::NoTargets(_) => Der::Nonexist,
        }
    }
}

/// Shorthand result.
pub type Result<T> = std::result::Result<T, PlacementError>;
