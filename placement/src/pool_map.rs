//! The versioned pool map: root -> (racks) -> nodes (fault domains) -> ranks -> targets.
//!
//! Sans-IO: every operation takes `&self` and returns the new map plus the list of state changes it made;
//! an invalid operation returns an error and changes nothing.

use bincode::{Decode, Encode};
use daos_common::Rank;

use crate::error::{PlacementError, Result};
use crate::state::CompState;

/// Kind of a component, with DAOS's type numbers (`PO_COMP_TP_*`; racks are a user fault-domain level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[repr(u8)]
pub enum CompKind {
    /// A target (one VOS instance / xstream of an engine).
    Target = 0,
    /// A rank (one engine).
    Rank = 1,
    /// A node: the default fault domain.
    Node = 2,
    /// A rack: optional user fault-domain level above nodes.
    Rack = 3,
    /// The root.
    Root = 255,
}

impl CompKind {
    /// Lower-case name used in errors.
    pub fn name(self) -> &'static str {
        match self {
            CompKind::Target => "target",
            CompKind::Rank => "rank",
            CompKind::Node => "node",
            CompKind::Rack => "rack",
            CompKind::Root => "root",
        }
    }
}

/// One component of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Component {
    /// Kind (fixed per level).
    pub kind: CompKind,
    /// Id: domain/rack id, rank number, or target index within its rank.
    pub id: u32,
    /// Current state.
    pub state: CompState,
    /// Failure sequence: the map version at which it last went DOWN/DRAIN (or failed while NEW); 0 = never.
    pub fseq: u32,
    /// Map version that added it.
    pub in_ver: u32,
    /// Index of the parent in the level above (0 for the root itself).
    pub parent: u32,
}

/// One rank of a topology description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankSpec {
    /// Rank number (unique in the pool).
    pub rank: Rank,
    /// Number of targets of this rank.
    pub targets: u32,
}

/// One fault domain (node) of a topology description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// Domain id (unique in the pool).
    pub id: u32,
    /// Rack id, if the pool has a rack level (all domains or none).
    pub rack: Option<u32>,
    /// Ranks in this domain.
    pub ranks: Vec<RankSpec>,
}

/// A topology description from which a pool map is built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    /// Fault domains.
    pub domains: Vec<DomainSpec>,
}

impl Topology {
    /// `domains` × `ranks_per_domain` × `targets_per_rank`, ranks numbered 0.. in domain order,
    /// domain ids 0.., no racks.
    pub fn uniform(domains: u32, ranks_per_domain: u32, targets_per_rank: u32) -> Topology {
        Topology {
            domains: uniform_domains(0, 0, domains, ranks_per_domain, targets_per_rank),
        }
    }
}

/// `count` domains with ids from `first_id` and ranks numbered from `first_rank`.
pub fn uniform_domains(
    first_id: u32,
    first_rank: Rank,
    count: u32,
    ranks_per_domain: u32,
    targets_per_rank: u32,
) -> Vec<DomainSpec> {
    (0..count)
        .map(|d| DomainSpec {
            id: first_id + d,
            rack: None,
            ranks: (0..ranks_per_domain)
                .map(|r| RankSpec {
                    rank: first_rank + d * ranks_per_domain + r,
                    targets: targets_per_rank,
                })
                .collect(),
        })
        .collect()
}

/// Selects the components an operation applies to (with all their descendants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sel {
    /// One target: (rank, index within rank).
    Target(Rank, u32),
    /// One rank and its targets.
    Rank(Rank),
    /// One fault domain (node) and everything under it.
    Domain(u32),
}

/// One state change made by an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Component kind.
    pub kind: CompKind,
    /// Component id (for targets: index within the rank).
    pub id: u32,
    /// Rank of the component (targets and ranks), if any.
    pub rank: Option<Rank>,
    /// State before.
    pub from: CompState,
    /// State after.
    pub to: CompState,
}

/// The versioned pool map.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct PoolMap {
    pub(crate) version: u32,
    /// levels[0] = [root]; then optional racks, nodes, ranks, targets.
    pub(crate) levels: Vec<Vec<Component>>,
}

impl PoolMap {
    /// Build version 1 from a topology; every component starts UPIN.
    pub fn build(topo: &Topology) -> Result<PoolMap> {
        if topo.domains.is_empty() {
            return Err(PlacementError::InvalidTopology("no fault domains".into()));
        }
        let racks = topo.domains[0].rack.is_some();
        let mut levels = vec![vec![Component {
            kind: CompKind::Root,
            id: 0,
            state: CompState::UpIn,
            fseq: 0,
            in_ver: 1,
            parent: 0,
        }]];
        if racks {
            levels.push(Vec::new());
        }
        levels.push(Vec::new());
        levels.push(Vec::new());
        levels.push(Vec::new());
        let mut map = PoolMap { version: 1, levels };
        map.add_domains(&topo.domains, CompState::UpIn)?;
        Ok(map)
    }

    fn add_domains(&mut self, domains: &[DomainSpec], state: CompState) -> Result<()> {
        let racks = self.has_racks();
        let (nl, rl, tl) = (self.node_level(), self.rank_level(), self.target_level());
        let ver = self.version;
        let mk = |kind, id, parent| Component {
            kind,
            id,
            state,
            fseq: 0,
            in_ver: ver,
            parent,
        };
        for d in domains {
            if d.rack.is_some() != racks {
                return Err(PlacementError::InvalidTopology(format!(
                    "domain {} {} a rack but the pool {} racks",
                    d.id,
                    if d.rack.is_some() { "names" } else { "lacks" },
                    if racks { "has" } else { "has no" }
                )));
            }
            let node = match self.levels[nl].iter().position(|c| c.id == d.id) {
                Some(i) => i as u32,
                None => {
                    let parent = match d.rack {
                        None => 0,
                        Some(r) => match self.levels[1].iter().position(|c| c.id == r) {
                            Some(i) => i as u32,
                            None => {
                                self.levels[1].push(mk(CompKind::Rack, r, 0));
                                (self.levels[1].len() - 1) as u32
                            }
                        },
                    };
                    self.levels[nl].push(mk(CompKind::Node, d.id, parent));
                    (self.levels[nl].len() - 1) as u32
                }
            };
            if d.ranks.is_empty() && !self.levels[rl].iter().any(|c| c.parent == node) {
                return Err(PlacementError::InvalidTopology(format!(
                    "domain {} has no ranks",
                    d.id
                )));
            }
            for r in &d.ranks {
                if r.targets == 0 {
                    return Err(PlacementError::InvalidTopology(format!(
                        "rank {} has no targets",
                        r.rank
                    )));
                }
                if self.levels[rl].iter().any(|c| c.id == r.rank) {
                    return Err(PlacementError::InvalidTopology(format!(
                        "rank {} is listed twice",
                        r.rank
                    )));
                }
                self.levels[rl].push(mk(CompKind::Rank, r.rank, node));
                let ri = (self.levels[rl].len() - 1) as u32;
                for t in 0..r.targets {
                    self.levels[tl].push(mk(CompKind::Target, t, ri));
                }
            }
        }
        Ok(())
    }

    /// Map version; bumped by every operation.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Whether there is a rack level above the nodes.
    pub fn has_racks(&self) -> bool {
        self.levels.len() == 5
    }

    pub(crate) fn node_level(&self) -> usize {
        self.levels.len() - 3
    }

    pub(crate) fn rank_level(&self) -> usize {
        self.levels.len() - 2
    }

    pub(crate) fn target_level(&self) -> usize {
        self.levels.len() - 1
    }

    /// All targets, in pool order; a target's position here is its pool-wide target id.
    pub fn targets(&self) -> &[Component] {
        &self.levels[self.target_level()]
    }

    /// All ranks.
    pub fn ranks(&self) -> &[Component] {
        &self.levels[self.rank_level()]
    }

    /// All fault domains (nodes).
    pub fn domains(&self) -> &[Component] {
        &self.levels[self.node_level()]
    }

    /// Rank number of pool target `t`.
    pub fn target_rank(&self, t: u32) -> Rank {
        self.ranks()[self.targets()[t as usize].parent as usize].id
    }

    /// Index (into [`PoolMap::domains`]) of the fault domain of pool target `t`.
    pub fn target_domain(&self, t: u32) -> u32 {
        self.ranks()[self.targets()[t as usize].parent as usize].parent
    }

    /// Pool target ids of a rank's targets.
    pub fn rank_targets(&self, rank: Rank) -> Vec<u32> {
        let rl = self.rank_level();
        match self.levels[rl].iter().position(|c| c.id == rank) {
            None => Vec::new(),
            Some(ri) => (0..self.targets().len() as u32)
                .filter(|&t| self.targets()[t as usize].parent as usize == ri)
                .collect(),
        }
    }

    /// Component indices (level, index) selected by `sel`, including all descendants.
    fn select(&self, sel: Sel) -> Result<Vec<(usize, usize)>> {
        let (lvl, idx) = match sel {
            Sel::Domain(id) => {
                let nl = self.node_level();
                let i = self.levels[nl].iter().position(|c| c.id == id);
                (
                    nl,
                    i.ok_or(PlacementError::NoSuchComponent { kind: "node", id })?,
                )
            }
            Sel::Rank(r) => {
                let rl = self.rank_level();
                let i = self.levels[rl].iter().position(|c| c.id == r);
                (
                    rl,
                    i.ok_or(PlacementError::NoSuchComponent {
                        kind: "rank",
                        id: r,
                    })?,
                )
            }
            Sel::Target(r, t) => {
                let rl = self.rank_level();
                let ri = self.levels[rl].iter().position(|c| c.id == r).ok_or(
                    PlacementError::NoSuchComponent {
                        kind: "rank",
                        id: r,
                    },
                )?;
                let tl = self.target_level();
                let ti = self.levels[tl]
                    .iter()
                    .position(|c| c.parent as usize == ri && c.id == t)
                    .ok_or(PlacementError::NoSuchComponent {
                        kind: "target",
                        id: t,
                    })?;
                (tl, ti)
            }
        };
        let mut out = vec![(lvl, idx)];
        let mut frontier = vec![idx];
        for l in lvl + 1..self.levels.len() {
            let next: Vec<usize> = self.levels[l]
                .iter()
                .enumerate()
                .filter(|(_, c)| frontier.contains(&(c.parent as usize)))
                .map(|(i, _)| i)
                .collect();
            out.extend(next.iter().map(|&i| (l, i)));
            frontier = next;
        }
        Ok(out)
    }

    fn rank_of(&self, lvl: usize, idx: usize) -> Option<Rank> {
        if lvl == self.rank_level() {
            Some(self.levels[lvl][idx].id)
        } else if lvl == self.target_level() {
            Some(self.levels[lvl - 1][self.levels[lvl][idx].parent as usize].id)
        } else {
            None
        }
    }

    /// Move the selected components (and their descendants) to `to`, validating every edge against the
    /// DAOS diagram. Components already in `to` are left alone. A NEW component asked to go DOWN stays NEW
    /// with its fseq set (DAOS: it becomes DOWN when the extension ends, see [`PoolMap::integrate`]).
    pub fn transition(&self, sels: &[Sel], to: CompState) -> Result<(PoolMap, Vec<Change>)> {
        let mut next = self.clone();
        next.version = self.version + 1;
        let ver = next.version;
        let mut changes = Vec::new();
        for &sel in sels {
            for (l, i) in self.select(sel)? {
                let rank = next.rank_of(l, i);
                let c = &mut next.levels[l][i];
                let from = c.state;
                let mut target = to;
                if to == CompState::UpIn && from == CompState::New && c.fseq != 0 {
                    // Failed while being added: DOWN at extend end.
                    target = CompState::Down;
                }
                if from == target {
                    continue;
                }
                if from == CompState::New && target == CompState::Down && to == CompState::Down {
                    if c.fseq == 0 {
                        c.fseq = ver;
                        changes.push(Change {
                            kind: c.kind,
                            id: c.id,
                            rank,
                            from,
                            to: from,
                        });
                    }
                    continue;
                }
                if !from.can_transition(target) {
                    return Err(PlacementError::InvalidTransition {
                        kind: c.kind.name(),
                        id: c.id,
                        from,
                        to: target,
                    });
                }
                if matches!(target, CompState::Down | CompState::Drain) && from != CompState::New {
                    c.fseq = ver;
                }
                c.state = target;
                changes.push(Change {
                    kind: c.kind,
                    id: c.id,
                    rank,
                    from,
                    to: target,
                });
            }
        }
        Ok((next, changes))
    }

    /// Exclude (fail) components: UPIN/DRAIN/UP -> DOWN.
    pub fn exclude(&self, sels: &[Sel]) -> Result<(PoolMap, Vec<Change>)> {
        self.transition(sels, CompState::Down)
    }

    /// Rebuild of excluded components finished: DOWN/DRAIN -> DOWNOUT.
    pub fn exclude_out(&self, sels: &[Sel]) -> Result<(PoolMap, Vec<Change>)> {
        self.transition(sels, CompState::DownOut)
    }

    /// Start draining: UPIN -> DRAIN.
    pub fn drain(&self, sels: &[Sel]) -> Result<(PoolMap, Vec<Change>)> {
        self.transition(sels, CompState::Drain)
    }

    /// Start reintegrating: DOWNOUT (or DOWN) -> UP.
    pub fn reintegrate(&self, sels: &[Sel]) -> Result<(PoolMap, Vec<Change>)> {
        self.transition(sels, CompState::Up)
    }

    /// Finish reintegration or extension: UP/NEW -> UPIN (a NEW component that failed goes DOWN).
    pub fn integrate(&self, sels: &[Sel]) -> Result<(PoolMap, Vec<Change>)> {
        self.transition(sels, CompState::UpIn)
    }

    /// Revert an unfinished drain/reintegration/extension after a rebuild failure:
    /// DRAIN -> UPIN, UP -> DOWNOUT (reintegrating) or NEW (extending). Never reverts an exclusion.
    pub fn revert(&self, sels: &[Sel]) -> Result<(PoolMap, Vec<Change>)> {
        let mut next = self.clone();
        next.version = self.version + 1;
        let mut changes = Vec::new();
        for &sel in sels {
            for (l, i) in self.select(sel)? {
                let rank = next.rank_of(l, i);
                let c = &mut next.levels[l][i];
                let to = match c.state {
                    CompState::Drain => CompState::UpIn,
                    CompState::Up if c.fseq == 0 => CompState::New,
                    CompState::Up => CompState::DownOut,
                    _ => continue,
                };
                changes.push(Change {
                    kind: c.kind,
                    id: c.id,
                    rank,
                    from: c.state,
                    to,
                });
                c.state = to;
            }
        }
        Ok((next, changes))
    }

    /// Add fault domains, or ranks to existing domains (a `DomainSpec` with a known id), as NEW.
    /// Call [`PoolMap::integrate`] (or `transition(.., UP)` first) when data has moved.
    pub fn extend(&self, domains: &[DomainSpec]) -> Result<(PoolMap, Vec<Change>)> {
        let mut next = self.clone();
        next.version = self.version + 1;
        let before: Vec<usize> = next.levels.iter().map(|l| l.len()).collect();
        next.add_domains(domains, CompState::New)?;
        let mut changes = Vec::new();
        for (l, lvl) in next.levels.iter().enumerate() {
            for (i, c) in lvl.iter().enumerate().skip(before[l]) {
                changes.push(Change {
                    kind: c.kind,
                    id: c.id,
                    rank: next.rank_of(l, i),
                    from: CompState::New,
                    to: CompState::New,
                });
            }
        }
        Ok((next, changes))
    }

    /// Selectors covering every component that is NEW or UP (pending extension/reintegration): whole
    /// domains, else whole ranks, else single targets.
    pub fn pending(&self) -> Vec<Sel> {
        let mut out = Vec::new();
        let nl = self.node_level();
        for c in &self.levels[nl] {
            if matches!(c.state, CompState::New | CompState::Up) {
                out.push(Sel::Domain(c.id));
            }
        }
        let rl = self.rank_level();
        for c in &self.levels[rl] {
            let node = &self.levels[nl][c.parent as usize];
            if matches!(c.state, CompState::New | CompState::Up)
                && !matches!(node.state, CompState::New | CompState::Up)
            {
                out.push(Sel::Rank(c.id));
            }
        }
        let tl = self.target_level();
        for c in &self.levels[tl] {
            let rank = &self.levels[rl][c.parent as usize];
            let node = &self.levels[nl][rank.parent as usize];
            let pend = |s: CompState| matches!(s, CompState::New | CompState::Up);
            if pend(c.state) && !pend(rank.state) && !pend(node.state) {
                out.push(Sel::Target(rank.id, c.id));
            }
        }
        out
    }

    /// Check structural invariants (used after decoding).
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(PlacementError::Corrupt(m));
        if !(4..=5).contains(&self.levels.len()) {
            return bad(format!("{} levels (expected 4 or 5)", self.levels.len()));
        }
        if self.levels[0].len() != 1 {
            return bad("root level must hold exactly one component".into());
        }
        let kinds: &[CompKind] = if self.levels.len() == 5 {
            &[
                CompKind::Root,
                CompKind::Rack,
                CompKind::Node,
                CompKind::Rank,
                CompKind::Target,
            ]
        } else {
            &[
                CompKind::Root,
                CompKind::Node,
                CompKind::Rank,
                CompKind::Target,
            ]
        };
        for (l, lvl) in self.levels.iter().enumerate() {
            for c in lvl {
                if c.kind != kinds[l] {
                    return bad(format!(
                        "level {l} holds a {} (expected {})",
                        c.kind.name(),
                        kinds[l].name()
                    ));
                }
                if l > 0 && c.parent as usize >= self.levels[l - 1].len() {
                    return bad(format!(
                        "{} {} has parent {} out of range",
                        c.kind.name(),
                        c.id,
                        c.parent
                    ));
                }
            }
        }
        if self.targets().is_empty() {
            return bad("no targets".into());
        }
        Ok(())
    }
}
