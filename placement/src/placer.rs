//! The jump map: a pool map compiled for one view, plus the scratch bitmaps of one layout computation.
//!
//! Per shard the walk goes root -> ... -> target. At each level the child is `jump(key, n)` over the
//! parent's active children; a child that is blocked (target already used by the object, fault domain
//! already used by the shard's group, or — when remapping — without an available target) re-keys with
//! CRC and retries. A child already used by the object is only *soft*-blocked: the used bits of a parent's
//! children are reset when all of them are used, so shards spread as widely as possible. When a parent
//! has no eligible child at all it is marked blocked and the walk restarts from the root with a new key.
//!
//! Pool extensions are applied generation by generation. The root's children (fault domains, or racks)
//! are grouped by the map version that added them; the walk above runs over the first generation only,
//! then for each later generation every shard jumps with its own extension key over the children up to
//! that generation and moves (walking down inside the landed child) iff the jump lands in the new ones.
//! Jump's property makes that a k/(N+k) chance per shard, independent of the other shards of its group,
//! so a group does not cascade: a shard that stays keeps its exact target. A shard whose landed child
//! is already used by its group tries other children of the same generation, else stays. A map that was
//! never extended has one generation and its layouts are unchanged by this step.
//!
//! Shards are placed first over all active components regardless of failures; shards that landed on a
//! failed target are then re-placed in fseq order with a second key under the same rules, so every other
//! shard stays where it was and fallbacks spread over the whole pool.

use crate::bits::Bits;
use crate::error::{PlacementError, Result};
use crate::hash::{fmix64, jump, oid_key, rekey, subkey};
use crate::pool_map::PoolMap;
use crate::state::CompState;

/// Which components placement sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Where I/O goes now: NEW (and UP-while-extending) skipped, so the hash runs over the pre-extension
    /// bucket count; DRAIN is up; UP-while-reintegrating and DOWN/DOWNOUT are down.
    Io,
    /// Where data must end up once the pending change completes: NEW and UP included and up; DRAIN,
    /// DOWN and DOWNOUT down.
    Rebuild,
}

impl View {
    fn active(self, state: CompState, fseq: u32) -> bool {
        match self {
            View::Io => !(state == CompState::New || state == CompState::Up && fseq == 0),
            View::Rebuild => true,
        }
    }

    fn available(self, state: CompState, fseq: u32) -> bool {
        match self {
            View::Io => matches!(state, CompState::UpIn | CompState::Drain),
            View::Rebuild => {
                matches!(state, CompState::UpIn | CompState::Up)
                    || state == CompState::New && fseq == 0
            }
        }
    }
}

/// The level whose components the shards of one group must not share (DAOS container property
/// `rd_lvl`): nodes by default, or ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FaultLevel {
    /// Nodes (the fault domains of the pool map).
    #[default]
    Node,
    /// Ranks (engines): for pools with fewer nodes than a group has shards.
    Rank,
}

/// Sentinel target for a shard no target could take (DAOS `-1`).
pub const NO_TARGET: u32 = u32::MAX;

/// Rekey attempts by jump hash before scanning a parent's children.
const MAX_TRIES: u32 = 24;
/// Safety cap on walk restarts.
const MAX_RESTARTS: u32 = 100_000;
/// Salt of the second (failure remap) key.
const REMAP_SALT: u64 = 0x7265_6d61_7073_6861;
/// Salt of the per-shard extension key (the jump that decides whether a shard moves to a later generation).
const GEN_SALT: u64 = 0x6765_6e65_7261_7469;
/// Attempts to find a free domain of a generation for a shard whose jump landed on a blocked one.
const GEN_TRIES: u32 = 8;

/// One compiled level: components in walk order (children of a parent contiguous).
#[derive(Debug, Clone, Default)]
struct Level {
    /// Original index in the pool map level.
    orig: Vec<u32>,
    /// Compiled parent index.
    parent: Vec<u32>,
    /// Range of active children in the next level.
    child_start: Vec<u32>,
    child_cnt: Vec<u32>,
    /// Has at least one available target beneath (or is one).
    avail: Vec<bool>,
}

/// A pool map compiled for one [`View`], with reusable scratch. `layout` is a pure function of
/// (oid, class in the oid, map, view); the scratch only avoids allocation.
#[derive(Debug, Clone)]
pub struct Placer {
    view: View,
    version: u32,
    levels: Vec<Level>,
    fault_level: usize,
    /// Per compiled target: pool target id, rank, pool domain index, fseq.
    tgt_id: Vec<u32>,
    tgt_rank: Vec<u32>,
    tgt_domain: Vec<u32>,
    tgt_fseq: Vec<u32>,
    /// Compiled fault-domain index of each compiled target.
    tgt_fdom: Vec<u32>,
    fault_domains_avail: u32,
    /// Generations of the root's children (grouped by the map version that added them, oldest first,
    /// contiguous in compiled order): `gen_end[i]` = children of generations `0..=i`.
    gen_end: Vec<u32>,
    /// Root children the current walk hashes over (the first generation, or all of them for remaps).
    root_n: u32,
    // scratch
    used: Vec<Bits>,
    full: Vec<Bits>,
    /// Per parent: how many of its children are full (eager propagation of `full` up the tree).
    full_cnt: Vec<Vec<u32>>,
    full_touched: Vec<(u32, u32)>,
    /// Per parent: how many of its children are used by the object (soft bits).
    used_cnt: Vec<Vec<u32>>,
    used_touched: Vec<(u32, u32)>,
    grp: Vec<Bits>,
    failed: Vec<(u32, u32)>,
}

impl Placer {
    /// Compile `map` for `view`, with node-level fault domains.
    pub fn new(map: &PoolMap, view: View) -> Result<Placer> {
        Placer::with_fault_level(map, view, FaultLevel::Node)
    }

    /// Compile `map` for `view` with the given fault level.
    pub fn with_fault_level(map: &PoolMap, view: View, level: FaultLevel) -> Result<Placer> {
        let nl = map.levels.len();
        let t = nl - 1;
        // Original children lists and activity, bottom-up.
        let mut children: Vec<Vec<Vec<u32>>> = map
            .levels
            .iter()
            .map(|l| vec![Vec::new(); l.len()])
            .collect();
        for l in 1..nl {
            for (i, c) in map.levels[l].iter().enumerate() {
                children[l - 1][c.parent as usize].push(i as u32);
            }
        }
        let mut active: Vec<Vec<bool>> = Vec::with_capacity(nl);
        let mut avail: Vec<Vec<bool>> = Vec::with_capacity(nl);
        for _ in 0..nl {
            active.push(Vec::new());
            avail.push(Vec::new());
        }
        active[t] = map.levels[t]
            .iter()
            .map(|c| view.active(c.state, c.fseq))
            .collect();
        avail[t] = map.levels[t]
            .iter()
            .zip(&active[t])
            .map(|(c, &a)| a && view.available(c.state, c.fseq))
            .collect();
        for l in (0..t).rev() {
            let (below_act, below_av) = (&active[l + 1], &avail[l + 1]);
            let act: Vec<bool> = map.levels[l]
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (l == 0 || view.active(c.state, c.fseq))
                        && children[l][i].iter().any(|&k| below_act[k as usize])
                })
                .collect();
            let av: Vec<bool> = (0..map.levels[l].len())
                .map(|i| act[i] && children[l][i].iter().any(|&k| below_av[k as usize]))
                .collect();
            active[l] = act;
            avail[l] = av;
        }
        if !active[0][0] {
            return Err(PlacementError::NoTargets(map.version));
        }
        // The root's children in generation order (stable: a map without extensions keeps map order).
        children[0][0].sort_by_key(|&k| map.levels[1][k as usize].in_ver);
        let mut gen_end: Vec<u32> = Vec::new();
        let mut last_ver = None;
        for &k in &children[0][0] {
            if active[1][k as usize] {
                let v = map.levels[1][k as usize].in_ver;
                if last_ver != Some(v) {
                    gen_end.push(gen_end.last().copied().unwrap_or(0));
                    last_ver = Some(v);
                }
                if let Some(e) = gen_end.last_mut() {
                    *e += 1;
                }
            }
        }
        // Compile breadth-first so that each parent's active children are contiguous.
        let mut levels: Vec<Level> = vec![Level::default(); nl];
        levels[0].orig.push(0);
        levels[0].parent.push(0);
        levels[0].avail.push(avail[0][0]);
        for l in 0..t {
            let (upper, lower) = levels.split_at_mut(l + 1);
            let (cur, next) = (&mut upper[l], &mut lower[0]);
            for ci in 0..cur.orig.len() {
                let o = cur.orig[ci] as usize;
                cur.child_start.push(next.orig.len() as u32);
                for &k in &children[l][o] {
                    if active[l + 1][k as usize] {
                        next.orig.push(k);
                        next.parent.push(ci as u32);
                        next.avail.push(avail[l + 1][k as usize]);
                    }
                }
                cur.child_cnt
                    .push(next.orig.len() as u32 - cur.child_start[ci]);
            }
        }
        let fault_level = match level {
            FaultLevel::Node => map.node_level(),
            FaultLevel::Rank => map.rank_level(),
        };
        let nt = levels[t].orig.len();
        let mut tgt_fdom = Vec::with_capacity(nt);
        for ct in 0..nt {
            let mut c = ct as u32;
            for l in (fault_level + 1..=t).rev() {
                c = levels[l].parent[c as usize];
            }
            tgt_fdom.push(c);
        }
        let tgt_id: Vec<u32> = levels[t].orig.clone();
        let tgt_rank = tgt_id.iter().map(|&id| map.target_rank(id)).collect();
        let tgt_domain = tgt_id.iter().map(|&id| map.target_domain(id)).collect();
        let tgt_fseq = tgt_id
            .iter()
            .map(|&id| map.targets()[id as usize].fseq)
            .collect();
        let fault_domains_avail = levels[fault_level].avail.iter().filter(|&&a| a).count() as u32;
        let used = levels.iter().map(|l| Bits::new(l.orig.len())).collect();
        let full = levels.iter().map(|l| Bits::new(l.orig.len())).collect();
        let full_cnt: Vec<Vec<u32>> = levels.iter().map(|l| vec![0u32; l.orig.len()]).collect();
        let used_cnt = full_cnt.clone();
        let grp = levels.iter().map(|l| Bits::new(l.orig.len())).collect();
        Ok(Placer {
            view,
            version: map.version,
            levels,
            fault_level,
            tgt_id,
            tgt_rank,
            tgt_domain,
            tgt_fseq,
            tgt_fdom,
            fault_domains_avail,
            root_n: gen_end[0],
            gen_end,
            used,
            full,
            full_cnt,
            full_touched: Vec::new(),
            used_cnt,
            used_touched: Vec::new(),
            grp,
            failed: Vec::new(),
        })
    }

    /// The view this placer was compiled for.
    pub fn view(&self) -> View {
        self.view
    }

    /// Map version this placer was compiled from.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Fault domains that hold at least one available target in this view.
    pub fn available_domains(&self) -> u32 {
        self.fault_domains_avail
    }

    /// Number of targets hashed over in this view.
    pub fn active_targets(&self) -> u32 {
        self.tgt_id.len() as u32
    }

    /// Pool target id, rank, pool domain index and fseq of compiled target `ct`.
    #[inline]
    pub(crate) fn target_info(&self, ct: u32) -> (u32, u32, u32, u32) {
        let c = ct as usize;
        (
            self.tgt_id[c],
            self.tgt_rank[c],
            self.tgt_domain[c],
            self.tgt_fseq[c],
        )
    }

    fn clear_scratch(&mut self) {
        for b in self.used.iter_mut().chain(self.grp.iter_mut()) {
            b.clear();
        }
        for &(l, p) in &self.used_touched {
            self.used_cnt[l as usize][p as usize] = 0;
        }
        self.used_touched.clear();
        self.clear_full();
    }

    fn clear_full(&mut self) {
        for b in self.full.iter_mut() {
            b.clear();
        }
        for &(l, p) in &self.full_touched {
            self.full_cnt[l as usize][p as usize] = 0;
        }
        self.full_touched.clear();
    }

    fn clear_grp(&mut self) {
        for b in self.grp.iter_mut() {
            b.clear();
        }
    }

    /// Record that the object now has a shard on compiled target `ct`.
    #[inline]
    fn mark(&mut self, ct: u32) {
        let t = self.levels.len() - 1;
        self.full[t].set(ct);
        // A parent whose children are all full is full too.
        let mut c = ct;
        for l in (1..=t).rev() {
            let p = self.levels[l].parent[c as usize];
            let cnt = &mut self.full_cnt[l - 1][p as usize];
            if *cnt == 0 {
                self.full_touched.push(((l - 1) as u32, p));
            }
            *cnt += 1;
            if *cnt < self.levels[l - 1].child_cnt[p as usize] || self.full[l - 1].get(p) {
                break;
            }
            self.full[l - 1].set(p);
            c = p;
        }
        let mut c = ct;
        for l in (1..=t).rev() {
            let p = self.levels[l].parent[c as usize];
            if !self.used[l].get(c) {
                self.used[l].set(c);
                let cnt = &mut self.used_cnt[l - 1][p as usize];
                if *cnt == 0 {
                    self.used_touched.push(((l - 1) as u32, p));
                }
                *cnt += 1;
            }
            c = p;
        }
        let fd = self.tgt_fdom[ct as usize];
        self.grp[self.fault_level].set(fd);
    }

    /// Walk from the root for one shard; returns a compiled target or `NO_TARGET`.
    fn walk(&mut self, key: u64, remap: bool) -> u32 {
        self.walk_under(key, remap, 0, 0)
    }

    /// Walk for one shard from component `p0` of level `l0` down to a target. From the root (`l0` = 0)
    /// an exhausted pool resets the group/used bits and retries; below it, an exhausted `p0` gives
    /// `NO_TARGET`.
    fn walk_under(&mut self, mut key: u64, remap: bool, l0: usize, p0: u32) -> u32 {
        let t = self.levels.len() - 1;
        let fl = self.fault_level;
        'restart: for restart in 0..MAX_RESTARTS {
            let mut p = p0;
            for l in l0 + 1..=t {
                let up = &self.levels[l - 1];
                let start = up.child_start[p as usize];
                let n = if l == 1 {
                    self.root_n
                } else {
                    up.child_cnt[p as usize]
                };
                let up_full = self.full_cnt[l - 1][p as usize];
                let lvl = &self.levels[l];
                let (full, grp, used) = (&self.full[l], &self.grp[l], &self.used[l]);
                let ok = |c: u32| {
                    !full.get(c) && (l > fl || !grp.get(c)) && (!remap || lvl.avail[c as usize])
                };
                let pref = |c: u32| ok(c) && (l == t || !used.get(c));
                let mut k = subkey(key, l as u64);
                let mut pick = None;
                // Mostly-full parent: probing would mostly miss, go straight to the scan.
                let up_used = self.used_cnt[l - 1][p as usize];
                let tries = if up_full.max(up_used) * 2 > n {
                    0
                } else {
                    MAX_TRIES
                };
                for attempt in 0..tries {
                    let c = start + jump(k, n);
                    if pref(c) {
                        pick = Some(c);
                        break;
                    }
                    k = rekey(k, attempt as u64);
                }
                let c = match pick {
                    Some(c) => c,
                    None => {
                        let n_ok = (start..start + n).filter(|&c| ok(c)).count() as u32;
                        if n_ok == 0 {
                            let grp_blocked = l <= fl && (start..start + n).any(|c| grp.get(c));
                            if l == l0 + 1 && l0 > 0 {
                                return NO_TARGET;
                            }
                            if l == 1 {
                                if remap && !self.levels[0].avail[0] {
                                    return NO_TARGET;
                                }
                                // The whole pool is exhausted for this shard: first let the group share
                                // domains, then let the object reuse targets.
                                if self.grp.iter().any(|b| b.any()) {
                                    self.clear_grp();
                                } else {
                                    self.clear_full();
                                }
                            } else if grp_blocked {
                                self.grp[l - 1].set(p);
                            } else {
                                self.full[l - 1].set(p);
                            }
                            key = rekey(key, 0x1_0000 + restart as u64);
                            continue 'restart;
                        }
                        let mut n_pref = (start..start + n).filter(|&c| pref(c)).count() as u32;
                        if n_pref == 0 {
                            // Level exhausted under this parent: reset its used bits.
                            self.used[l].clear_range(start, n);
                            self.used_cnt[l - 1][p as usize] = 0;
                            n_pref = n_ok;
                        }
                        let used = &self.used[l];
                        let pref = |c: u32| ok(c) && (l == t || !used.get(c));
                        let nth = jump(k, n_pref);
                        match (start..start + n).filter(|&c| pref(c)).nth(nth as usize) {
                            Some(c) => c,
                            None => return NO_TARGET,
                        }
                    }
                };
                p = c;
            }
            return p;
        }
        NO_TARGET
    }

    /// Compute the layout of an object of `grp_nr` groups of `grp_size` shards into `out` as compiled
    /// target indices (`NO_TARGET` if none), with a parallel "remapped" flag vector.
    pub(crate) fn place(
        &mut self,
        hi: u64,
        lo: u64,
        grp_size: u32,
        grp_nr: u32,
        out: &mut Vec<(u32, bool)>,
    ) {
        out.clear();
        self.clear_scratch();
        self.failed.clear();
        let key = oid_key(hi, lo);
        let tl = self.levels.len() - 1;
        // The first generation hashes over its own domains only.
        self.root_n = self.gen_end[0];
        for g in 0..grp_nr {
            self.clear_grp();
            for s in 0..grp_size {
                let idx = g * grp_size + s;
                let ct = self.walk(subkey(key, idx as u64 + 1), false);
                if ct != NO_TARGET {
                    self.mark(ct);
                }
                out.push((ct, false));
            }
        }
        self.root_n = *self.gen_end.last().unwrap_or(&0);
        if self.gen_end.len() > 1 {
            self.extend_generations(key, grp_size, out);
        }
        for (idx, &(ct, _)) in out.iter().enumerate() {
            if ct != NO_TARGET && !self.levels[tl].avail[ct as usize] {
                self.failed.push((self.tgt_fseq[ct as usize], idx as u32));
            }
        }
        if self.failed.is_empty() {
            return;
        }
        if self.gen_end.len() > 1 {
            // The scratch still marks where shards were before the generations moved them: re-mark the
            // final positions only, for the remap.
            self.clear_scratch();
            for &(ct, _) in out.iter() {
                if ct != NO_TARGET {
                    self.mark(ct);
                }
            }
        }
        self.failed.sort_unstable();
        let failed = std::mem::take(&mut self.failed);
        for &(_, idx) in &failed {
            // Every other shard of the group blocks its domain, including shards still waiting for their
            // own remap (their first choice): so a later failure never changes an earlier fallback.
            let g = idx / grp_size;
            self.clear_grp();
            for j in g * grp_size..(g + 1) * grp_size {
                let ct = out[j as usize].0;
                if j != idx && ct != NO_TARGET {
                    let fd = self.tgt_fdom[ct as usize];
                    self.grp[self.fault_level].set(fd);
                }
            }
            let ct = self.walk(subkey(key ^ REMAP_SALT, idx as u64 + 1), true);
            if ct != NO_TARGET {
                self.mark(ct);
            }
            out[idx as usize] = (ct, true);
        }
        self.failed = failed;
    }

    /// Apply each later generation of root children (pool extensions) to the first generation's layout
    /// in `out`: a shard moves iff the jump of its own extension key over the domains up to that
    /// generation lands in the generation's domains (jump's property: growing the bucket count moves a
    /// key only into the new buckets), so each shard moves with probability k/(N+k) independently of the
    /// rest of its group. A shard whose domain is already taken by its group (or full) tries other domains
    /// of the same generation, else stays. The scratch then also still marks the positions shards left.
    fn extend_generations(&mut self, key: u64, grp_size: u32, out: &mut [(u32, bool)]) {
        let fl = self.fault_level;
        let start = self.levels[0].child_start[0];
        for (gi, shards) in out.chunks_mut(grp_size.max(1) as usize).enumerate() {
            self.clear_grp();
            for &(ct, _) in shards.iter() {
                if ct != NO_TARGET {
                    self.grp[fl].set(self.tgt_fdom[ct as usize]);
                }
            }
            if grp_size >= 2 {
                self.steal_into_generations(key, gi as u64, shards);
                continue;
            }
            for (s, slot) in shards.iter_mut().enumerate() {
                let idx = gi as u64 * grp_size as u64 + s as u64;
                let gkey = subkey(subkey(key, idx + 1), GEN_SALT);
                for gen in 1..self.gen_end.len() {
                    let (lo, hi) = (self.gen_end[gen - 1], self.gen_end[gen]);
                    let j = jump(gkey, hi);
                    if j < lo {
                        continue;
                    }
                    let mut c = start + j;
                    let mut k = gkey;
                    for attempt in 0..GEN_TRIES {
                        if attempt > 0 {
                            k = rekey(k, attempt as u64);
                            c = start + lo + jump(k, hi - lo);
                        }
                        if self.full[1].get(c) || (fl == 1 && self.grp[1].get(c)) {
                            continue;
                        }
                        let ct = self.walk_under(k, false, 1, c);
                        if ct != NO_TARGET {
                            self.mark(ct);
                            *slot = (ct, false);
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Generations for one group of two or more shards: each child `d` of a later generation, on its own
    /// key, takes its fair share of the group, grp_size / n shards with n the children up to its
    /// generation (for groups smaller than n: one shard with probability grp_size / n), each chosen
    /// uniformly among the group's shards no earlier child of the same generation took. Every
    /// domain then holds a shard of the group with the same probability as before the extension scaled
    /// by N/(N+k), with no overflow when several new domains want the same group (which per-shard jumps
    /// had: a group's third mover into two new domains could only stay). The `bool` of `shards` marks
    /// "taken in this generation" and is false again on return.
    fn steal_into_generations(&mut self, key: u64, gi: u64, shards: &mut [(u32, bool)]) {
        let fl = self.fault_level;
        let start = self.levels[0].child_start[0];
        let gs = shards.len() as u32;
        let gkey = subkey(key ^ GEN_SALT, gi + 1);
        for gen in 1..self.gen_end.len() {
            let (lo, hi) = (self.gen_end[gen - 1], self.gen_end[gen]);
            let mut left = gs;
            for j in lo..hi {
                let h = subkey(gkey, j as u64 + 1);
                // The child's fair share is gs / hi shards: gs / hi whole ones, plus one more when the
                // bucket of h among `hi` falls below the remainder (probability (gs % hi) / hi).
                let bucket = ((h as u128 * hi as u128) >> 64) as u32;
                let takes = gs / hi + (bucket < gs % hi) as u32;
                let c = start + j;
                for take in 0..takes {
                    if left == 0 || self.full[1].get(c) {
                        break;
                    }
                    // Only the first take needs the child free of the group (more than one take
                    // means the group has more shards than there are children).
                    if take == 0 && fl == 1 && self.grp[1].get(c) {
                        break;
                    }
                    let (hn, wk) = if take == 0 {
                        (fmix64(h), subkey(h, GEN_SALT))
                    } else {
                        (subkey(h, take as u64), subkey(h, GEN_SALT + take as u64))
                    };
                    let nth = ((hn as u128 * left as u128) >> 64) as usize;
                    let Some(s) = (0..shards.len()).filter(|&i| !shards[i].1).nth(nth) else {
                        break;
                    };
                    let ct = self.walk_under(wk, false, 1, c);
                    if ct == NO_TARGET {
                        break;
                    }
                    self.mark(ct);
                    shards[s] = (ct, true);
                    left -= 1;
                }
            }
            for sh in shards.iter_mut() {
                sh.1 = false;
            }
        }
    }

    /// Pool-wide id of every compiled target, so callers can index per-target arrays.
    pub fn target_ids(&self) -> &[u32] {
        &self.tgt_id
    }
}
