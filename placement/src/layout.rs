//! Object layouts: the I/O layout, the extended layout used while a change is in progress, and the
//! rebuild diff between two map versions.

use daos_common::Rank;

use crate::class::ObjClass;
use crate::error::Result;
use crate::oid::ObjectId;
use crate::placer::{FaultLevel, Placer, View, NO_TARGET};
use crate::pool_map::PoolMap;

/// Where one shard lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardLoc {
    /// Shard index in the object (group * group size + index in group).
    pub shard: u32,
    /// Pool target id (index in [`PoolMap::targets`]), or [`NO_TARGET`].
    pub target: u32,
    /// Rank holding the target.
    pub rank: Rank,
    /// Fault domain (index in [`PoolMap::domains`]).
    pub domain: u32,
    /// Failure sequence of the target.
    pub fseq: u32,
    /// The shard's first choice failed and this is its fallback (DAOS `rebuilding`).
    pub remapped: bool,
}

/// The layout of one object (DAOS `pl_obj_layout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Pool map version it was computed from.
    pub map_version: u32,
    /// Object class (frozen).
    pub class: ObjClass,
    /// Shards per group.
    pub grp_size: u32,
    /// Groups.
    pub grp_nr: u32,
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardLoc>,
}

impl Layout {
    /// Number of groups with two shards in one fault domain (node).
    pub fn domain_violations(&self) -> u32 {
        self.violations_at(FaultLevel::Node)
    }

    /// Number of groups with two shards in one component of `level`.
    pub fn violations_at(&self, level: FaultLevel) -> u32 {
        let key = |s: &ShardLoc| match level {
            FaultLevel::Node => s.domain,
            FaultLevel::Rank => s.rank,
        };
        let mut v = 0;
        for g in self.shards.chunks(self.grp_size as usize) {
            let mut seen: Vec<u32> = g
                .iter()
                .filter(|s| s.target != NO_TARGET)
                .map(key)
                .collect();
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != n {
                v += 1;
            }
        }
        v
    }
}

/// During drain, reintegration or extension: the I/O layout plus the new homes writes must also reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedLayout {
    /// Where I/O reads now.
    pub layout: Layout,
    /// Extra homes: for each shard whose post-change home differs, that home.
    pub extra: Vec<ShardLoc>,
}

/// One shard that must move between two map versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardMove {
    /// Shard index.
    pub shard: u32,
    /// Where it is (I/O layout under the old map).
    pub src: ShardLoc,
    /// Where it must go (rebuild layout under the new map).
    pub dst: ShardLoc,
}

/// A pool map compiled for both views; computes layouts without allocating beyond the result.
#[derive(Debug, Clone)]
pub struct Placement {
    io: Placer,
    rebuild: Placer,
    buf: Vec<(u32, bool)>,
}

impl Placement {
    /// Compile `map` with node-level fault domains (DAOS default).
    pub fn new(map: &PoolMap) -> Result<Placement> {
        Placement::with_fault_level(map, FaultLevel::Node)
    }

    /// Compile `map` with the given fault level (DAOS `rd_lvl`).
    pub fn with_fault_level(map: &PoolMap, level: FaultLevel) -> Result<Placement> {
        Ok(Placement {
            io: Placer::with_fault_level(map, View::Io, level)?,
            rebuild: Placer::with_fault_level(map, View::Rebuild, level)?,
            buf: Vec::new(),
        })
    }

    /// The compiled view.
    pub fn placer(&self, view: View) -> &Placer {
        match view {
            View::Io => &self.io,
            View::Rebuild => &self.rebuild,
        }
    }

    /// Map version.
    pub fn version(&self) -> u32 {
        self.io.version()
    }

    fn run(&mut self, oid: ObjectId, view: View) -> Result<(ObjClass, Vec<ShardLoc>)> {
        let class = oid.class()?;
        let (gs, gn) = (class.grp_size(), class.groups as u32);
        let p = match view {
            View::Io => &mut self.io,
            View::Rebuild => &mut self.rebuild,
        };
        p.place(oid.hi, oid.lo, gs, gn, &mut self.buf);
        let shards = self
            .buf
            .iter()
            .enumerate()
            .map(|(i, &(ct, remapped))| {
                if ct == NO_TARGET {
                    ShardLoc {
                        shard: i as u32,
                        target: NO_TARGET,
                        rank: 0,
                        domain: 0,
                        fseq: 0,
                        remapped,
                    }
                } else {
                    let (target, rank, domain, fseq) = p.target_info(ct);
                    ShardLoc {
                        shard: i as u32,
                        target,
                        rank,
                        domain,
                        fseq,
                        remapped,
                    }
                }
            })
            .collect();
        Ok((class, shards))
    }

    /// Layout of `oid` in `view` (the class comes from the oid bits).
    pub fn layout_in(&mut self, oid: ObjectId, view: View) -> Result<Layout> {
        let (class, shards) = self.run(oid, view)?;
        Ok(Layout {
            map_version: self.version(),
            class,
            grp_size: class.grp_size(),
            grp_nr: class.groups as u32,
            shards,
        })
    }

    /// The I/O layout of `oid`.
    pub fn layout(&mut self, oid: ObjectId) -> Result<Layout> {
        self.layout_in(oid, View::Io)
    }

    /// Fast path for benchmarks and rebuild scans: pool target id per shard (`NO_TARGET` if none) into
    /// `out`, without building [`ShardLoc`]s.
    pub fn targets_into(&mut self, oid: ObjectId, view: View, out: &mut Vec<u32>) -> Result<()> {
        let class = oid.class()?;
        let p = match view {
            View::Io => &mut self.io,
            View::Rebuild => &mut self.rebuild,
        };
        p.place(
            oid.hi,
            oid.lo,
            class.grp_size(),
            class.groups as u32,
            &mut self.buf,
        );
        out.clear();
        out.extend(self.buf.iter().map(|&(ct, _)| {
            if ct == NO_TARGET {
                NO_TARGET
            } else {
                p.target_info(ct).0
            }
        }));
        Ok(())
    }

    /// I/O layout plus the homes of the pending change (drain, reintegration, extension).
    pub fn extended_layout(&mut self, oid: ObjectId) -> Result<ExtendedLayout> {
        let layout = self.layout_in(oid, View::Io)?;
        let (_, post) = self.run(oid, View::Rebuild)?;
        let extra = layout
            .shards
            .iter()
            .zip(post)
            .filter(|(a, b)| a.target != b.target && b.target != NO_TARGET)
            .map(|(_, b)| b)
            .collect();
        Ok(ExtendedLayout { layout, extra })
    }
}

/// Shards of `oid` that must move going from map `from` (its I/O layout) to map `to` (its rebuild
/// layout): what rebuild migrates for this object. Unchanged shards are omitted.
pub fn rebuild_diff(
    oid: ObjectId,
    from: &mut Placement,
    to: &mut Placement,
) -> Result<Vec<ShardMove>> {
    let a = from.layout_in(oid, View::Io)?;
    let b = to.layout_in(oid, View::Rebuild)?;
    Ok(a.shards
        .iter()
        .zip(&b.shards)
        .filter(|(x, y)| x.target != y.target)
        .map(|(x, y)| ShardMove {
            shard: x.shard,
            src: *x,
            dst: *y,
        })
        .collect())
}
