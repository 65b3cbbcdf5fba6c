//! placement: the versioned pool map, DAOS object ids and classes, and the jump-consistent-hash
//! placement (DAOS's "jump map") that tells every client and engine where an object's shards live.
//!
//! Must not depend on: cart, vos, engine, any I/O or async runtime. It is pure, sans-IO logic: pool-map
//! operations return the new map plus the list of state changes; layouts are pure functions of
//! (oid, class bits in the oid, pool map, view).
//!
//! Modules:
//! - [`state`]: component states (NEW=1 UP=2 UPIN=4 DOWN=8 DOWNOUT=16 DRAIN=32) and DAOS's transitions.
//! - [`pool_map`]: the tree root → (racks) → nodes (fault domains) → ranks → targets; build, exclude,
//!   drain, reintegrate, integrate, revert, extend. [`codec`]: versioned bincode encoding.
//! - [`oid`], [`class`]: 128-bit oids with type/class bits; `S`/`RP`/`EC` classes by DAOS name and code,
//!   default class from `rd_fac`.
//! - [`hash`]: jump consistent hash, CRC-64 re-key, oid key. [`placer`]: the compiled map and the walk
//!   (fault level node by default, or rank: DAOS `rd_lvl`).
//!   [`layout`]: layouts, extended layouts, rebuild diffs.
//!
//! Design decisions:
//! - The map is compiled once per version into per-level arrays in which each parent's active children
//!   are contiguous (`child_start`, `child_cnt`), so a walk step is one jump hash plus a bit test; NEW
//!   children are simply absent from the I/O view, so the hash runs over the pre-extension bucket count.
//! - Per-object bitmaps remember the words they touched and are cleared in O(touched), so a layout on a
//!   large pool costs the same as on a small one; the only allocation per layout is the result.
//! - Each level uses an independent sub-key (fmix64 of the shard key and level) because jump hashes of one
//!   key for different bucket counts are correlated; collisions re-key with CRC-64 then fmix64.
//! - Shards are first placed ignoring failures, then shards on failed targets are re-placed in fseq order
//!   with a second key; hence excluding a rank moves exactly the shards it held and reintegrating it
//!   restores the original layout.
//! - Full parents are propagated eagerly (per-parent full/used counters) and a parent whose children are
//!   mostly used is scanned instead of probed: an SX object (512 shards on 512 targets) went from ~270 µs
//!   to ~110 µs per layout; RP_3G1 layouts do not take that path.
//! - Extensions are applied per generation (root children grouped by the map version that added them,
//!   see [`placer`]): the walk runs over the first generation only, then each later generation takes
//!   shards from the layout so far. S1-like groups (one shard): the shard jumps with its own key over the
//!   children up to that generation and moves iff it lands in the new ones. Groups of >= 2 shards: each
//!   new child, on its own key, takes one not-yet-taken shard of the group with probability
//!   grp_size/(N+k) (its fair share grp_size/(N+k) of shards when the group is larger than the pool's
//!   domain count: 4 -> 6 domains with EC_8P2G1 moves 1.0018 × the minimum, 20 k objects). Either way
//!   a shard that stays keeps its exact target, so there is no cascade.
//!   Measured, 16 -> 18 domains, 10 M objects, moved / minimum (k/(N+k) of shards):
//!   - greedy walk over all domains at once (before): S1 1.0005, RP_3G1 1.106, EC_4P2G1 1.29 — a shard
//!     that moved freed a domain its group's later shard then took;
//!   - shared per-group re-key chain: worse (2 M objects: RP_3G1 1.148, EC_4P2G1 1.65);
//!   - per-shard jumps for every class: S1 0.998, RP_3G1 0.995, EC_4P2G1 0.964 — below 1 because a
//!     group's third mover into two new domains can only stay: new targets ended ~4% under the mean
//!     (EC max_over_mean after 1.0160 vs ideal 1.0105, stddev 0.0129 vs 0.0030 before);
//!   - per-domain takes (kept for groups >= 2): RP_3G1 1.00005, EC_4P2G1 1.0002 (S1 0.9984 by jump);
//!     balance after: EC max_over_mean 1.0109 (ideal 1.0105), RP_3G1 1.0124 (ideal 1.0122), 0 violations.
//! - Limit of the above: domains added to racks that exist, and ranks added to domains that exist, still
//!   go through the walk (jump over the grown child count), with the old cascade cost.
//!
//! Measurements (`placement_bench`, release, 16 domains × 4 ranks × 8 targets, 10 M objects, final run
//! of /work/placement-bench/run.sh's cases on a shared 2-core machine, load 1.9–3.5): S1 max_over_mean
//! 1.0217 (ideal uniform draw of the same shard count 1.0229); RP_3G1 1.0127 (ideal 1.0104); EC_4P2G1
//! 1.0108 (ideal 1.0078); 0 fault-domain violations in every case, before and after the change; exclude
//! rank 5 moved_ratio 1.00 (RP_3G1 and EC_4P2G1) and reintegration restores every layout; extend
//! 16 -> 18 domains moved_ratio S1 0.9984, RP_3G1 1.00005, EC_4P2G1 1.0002, balance after the extension
//! (576 targets) S1 1.0200 (ideal 1.0217), RP_3G1 1.0124 (ideal 1.0122), EC_4P2G1 1.0109 (ideal 1.0105).
//! RP_3G1 best-of-5 ns_per_layout 375–490 on the healthy 512-target map in that run (325–683 in earlier
//! runs, depending on the other builds) and 456 on the extended map; EC_4P2G1 698–854 healthy, 778
//! extended.
#![forbid(unsafe_code)]

mod bits;
pub mod class;
pub mod codec;
pub mod error;
pub mod hash;
pub mod layout;
pub mod oid;
pub mod placer;
pub mod pool_map;
pub mod state;

pub use class::{ObjClass, Redun, GROUPS_X};
pub use error::{PlacementError, Result};
pub use layout::{rebuild_diff, ExtendedLayout, Layout, Placement, ShardLoc, ShardMove};
pub use oid::{ObjType, ObjectId};
pub use placer::{FaultLevel, Placer, View, NO_TARGET};
pub use pool_map::{
    uniform_domains, Change, CompKind, Component, DomainSpec, PoolMap, RankSpec, Sel, Topology,
};
pub use state::CompState;
