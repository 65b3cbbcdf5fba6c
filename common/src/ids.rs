//! Identifiers shared across crates.

/// A rank: one engine (server process) in a group, as in DAOS `d_rank_t`.
pub type Rank = u32;

/// An endpoint tag: the index of a cart context within a rank (DAOS: 0 = system xstream, 1 = SWIM,
/// 2.. = target xstreams).
pub type Tag = u32;

pub use uuid::Uuid;
