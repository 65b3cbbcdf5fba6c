//! Property tests: determinism (also across a map serialization round trip), distinct fault domains,
//! minimal movement on exclude / reintegrate / extend, and state-transition validity.

use placement::*;
use proptest::prelude::*;

const CLASSES: [&str; 6] = ["S1", "S4", "RP_2G1", "RP_3G1", "EC_4P2G1", "RP_3G2"];

fn topo() -> impl Strategy<Value = (u32, u32, u32)> {
    // domains, ranks per domain, targets per rank: always >= 7 domains (one may be excluded) so every class above fits.
    (7u32..12, 1u32..4, 1u32..6)
}

fn oid(lo: u64, hi: u32, class: &str, targets: u32) -> ObjectId {
    ObjectId::generate(hi, lo, ObjType::Array, class.parse().unwrap(), targets)
}

fn targets(l: &Layout) -> Vec<u32> {
    l.shards.iter().map(|s| s.target).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn deterministic_across_round_trip(
        (d, r, t) in topo(), lo in any::<u64>(), hi in any::<u32>(), ci in 0usize..6, fail in 0u32..4,
    ) {
        let m = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let m = if fail > 0 { m.exclude(&[Sel::Rank(fail % (d * r))]).unwrap().0 } else { m };
        let back = PoolMap::decode(&m.encode()).unwrap();
        prop_assert_eq!(&back, &m);
        let o = oid(lo, hi, CLASSES[ci], d * r * t);
        let mut p1 = Placement::new(&m).unwrap();
        let mut p2 = Placement::new(&back).unwrap();
        let a = p1.layout(o).unwrap();
        // Scratch reuse must not leak between objects.
        let _ = p1.layout(oid(lo ^ 1, hi, "EC_4P2G1", d * r * t)).unwrap();
        prop_assert_eq!(&p1.layout(o).unwrap(), &a);
        prop_assert_eq!(&p2.layout(o).unwrap(), &a);
    }

    #[test]
    fn groups_use_distinct_domains_and_targets(
        (d, r, t) in topo(), lo in any::<u64>(), ci in 0usize..6, fail in proptest::option::of(0u32..64),
    ) {
        let m = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let m = match fail { Some(f) => m.exclude(&[Sel::Rank(f % (d * r))]).unwrap().0, None => m };
        let o = oid(lo, 0, CLASSES[ci], d * r * t);
        let l = Placement::new(&m).unwrap().layout(o).unwrap();
        let up = m.targets().iter().filter(|c| c.state == CompState::UpIn).count();
        // Up domains >= group size here (>= 6 up domains of >= 7), so no group may share one.
        prop_assert_eq!(l.domain_violations(), 0, "{:?}", l);
        if l.shards.len() <= up {
            let mut ts = targets(&l);
            ts.sort_unstable();
            ts.dedup();
            prop_assert_eq!(ts.len(), l.shards.len(), "target repeated: {:?}", l);
        }
        for s in &l.shards {
            prop_assert!(s.target != NO_TARGET);
            prop_assert_eq!(m.targets()[s.target as usize].state, CompState::UpIn);
        }
    }

    #[test]
    fn exclude_moves_only_lost_shards_and_reintegrate_restores(
        (d, r, t) in topo(), lo in any::<u64>(), ci in 0usize..6, rank in 0u32..64,
    ) {
        let rank = rank % (d * r);
        let m0 = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let lost = m0.rank_targets(rank);
        let o = oid(lo, 7, CLASSES[ci], d * r * t);
        let l0 = Placement::new(&m0).unwrap().layout(o).unwrap();
        let m1 = m0.exclude(&[Sel::Rank(rank)]).unwrap().0;
        let mut p1 = Placement::new(&m1).unwrap();
        let l1 = p1.layout(o).unwrap();
        for (a, b) in l0.shards.iter().zip(&l1.shards) {
            if lost.contains(&a.target) {
                prop_assert!(b.remapped && !lost.contains(&b.target));
            } else {
                prop_assert_eq!(a.target, b.target);
            }
        }
        // Rebuild diff from the healthy map to the degraded one names exactly the lost shards.
        let mut p0 = Placement::new(&m0).unwrap();
        let diff = rebuild_diff(o, &mut p0, &mut p1).unwrap();
        prop_assert_eq!(diff.len(), l0.shards.iter().filter(|s| lost.contains(&s.target)).count());
        // DOWN -> DOWNOUT keeps the fallback; UP (reintegrating) still reads the fallback and the
        // extended layout adds the returning target; UPIN restores the original exactly.
        let m2 = m1.exclude_out(&[Sel::Rank(rank)]).unwrap().0;
        prop_assert_eq!(&Placement::new(&m2).unwrap().layout(o).unwrap().shards, &l1.shards);
        let m3 = m2.reintegrate(&[Sel::Rank(rank)]).unwrap().0;
        let mut p3 = Placement::new(&m3).unwrap();
        let ext = p3.extended_layout(o).unwrap();
        prop_assert_eq!(targets(&ext.layout), targets(&l1));
        let back: Vec<u32> = ext.extra.iter().map(|s| s.target).collect();
        let want: Vec<u32> = l0.shards.iter().filter(|s| lost.contains(&s.target)).map(|s| s.target).collect();
        prop_assert_eq!(back, want);
        let m4 = m3.integrate(&[Sel::Rank(rank)]).unwrap().0;
        prop_assert_eq!(targets(&Placement::new(&m4).unwrap().layout(o).unwrap()), targets(&l0));
    }

    #[test]
    fn extend_keeps_io_layout_until_done_then_moves_only_to_new_capacity(
        (d, r, t) in topo(), lo in any::<u64>(), k in 1u32..3, ci in 0usize..6,
    ) {
        let class = CLASSES[ci];
        let m0 = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let o = oid(lo, 3, class, d * r * t);
        let l0 = Placement::new(&m0).unwrap().layout(o).unwrap();
        let (m1, _) = m0.extend(&uniform_domains(d, d * r, k, r, t)).unwrap();
        let mut p1 = Placement::new(&m1).unwrap();
        // While NEW, I/O placement hashes over the pre-extension bucket count.
        let ext = p1.extended_layout(o).unwrap();
        prop_assert_eq!(targets(&ext.layout), targets(&l0));
        let old = m0.targets().len() as u32;
        // NEW -> UP (data moving in): still the pre-extension I/O layout.
        let m1 = m1.transition(&m1.pending(), CompState::Up).unwrap().0;
        prop_assert_eq!(targets(&Placement::new(&m1).unwrap().layout(o).unwrap()), targets(&l0));
        let m2 = m1.integrate(&m1.pending()).unwrap().0;
        let l2 = Placement::new(&m2).unwrap().layout(o).unwrap();
        // The extended layout named exactly the post-extension homes.
        let mut extra: Vec<u32> = ext.extra.iter().map(|s| s.target).collect();
        let mut moved: Vec<u32> = l0.shards.iter().zip(&l2.shards).filter(|(a, b)| a.target != b.target).map(|(_, b)| b.target).collect();
        extra.sort_unstable();
        moved.sort_unstable();
        prop_assert_eq!(&extra, &moved);
        // Every shard either stays or moves onto the new capacity (no cascade inside a group), and
        // groups still use distinct domains.
        for m in moved {
            prop_assert!(m >= old, "moved to old target {}", m);
        }
        prop_assert_eq!(l2.domain_violations(), 0, "{:?}", l2);
    }

    #[test]
    fn extending_a_pool_smaller_than_the_group_moves_only_onto_new_capacity(
        d in 2u32..5, (r, t) in (1u32..3, 1u32..4), lo in any::<u64>(), k in 1u32..4, ci in 0usize..6,
    ) {
        // Fewer domains than shards per group: groups must share domains, but extension still only
        // moves shards onto the added targets.
        let m0 = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let o = oid(lo, 17, CLASSES[ci], d * r * t);
        let l0 = Placement::new(&m0).unwrap().layout(o).unwrap();
        let (m1, _) = m0.extend(&uniform_domains(d, d * r, k, r, t)).unwrap();
        let m1 = m1.integrate(&m1.pending()).unwrap().0;
        let l1 = Placement::new(&m1).unwrap().layout(o).unwrap();
        let old = m0.targets().len() as u32;
        for (a, b) in l0.shards.iter().zip(&l1.shards) {
            prop_assert!(b.target != NO_TARGET);
            prop_assert!(a.target == b.target || b.target >= old, "{:?} -> {:?}", a, b);
        }
    }

    #[test]
    fn extending_racks_moves_only_onto_new_capacity(
        racks in 2u32..4, per in 3u32..5, lo in any::<u64>(), ci in 0usize..6, new_rack in any::<bool>(),
    ) {
        // Racks above the nodes: a new rack is a new generation of the root's children; nodes added to a
        // rack that exists go through the walk. Either way shards move only onto the added targets.
        let spec = |first: u32, count: u32, rack: u32| -> Vec<DomainSpec> {
            uniform_domains(first, first * 2, count, 2, 2)
                .into_iter()
                .map(|mut d| {
                    d.rack = Some(rack);
                    d
                })
                .collect()
        };
        let domains: Vec<DomainSpec> = (0..racks).flat_map(|r| spec(r * per, per, r)).collect();
        let m0 = PoolMap::build(&Topology { domains }).unwrap();
        let o = oid(lo, 19, CLASSES[ci], m0.targets().len() as u32);
        let l0 = Placement::new(&m0).unwrap().layout(o).unwrap();
        let first = racks * per;
        let add = if new_rack { spec(first, 2, racks) } else { spec(first, 2, 0) };
        let (m1, _) = m0.extend(&add).unwrap();
        let m1 = m1.integrate(&m1.pending()).unwrap().0;
        let l1 = Placement::new(&m1).unwrap().layout(o).unwrap();
        let old = m0.targets().len() as u32;
        prop_assert_eq!(l1.domain_violations(), 0, "{:?}", l1);
        if new_rack {
            for (a, b) in l0.shards.iter().zip(&l1.shards) {
                prop_assert!(a.target == b.target || b.target >= old, "{:?} -> {:?}", a, b);
            }
        }
    }

    #[test]
    fn second_extension_moves_only_onto_its_own_domains(
        (d, r, t) in topo(), lo in any::<u64>(), k1 in 1u32..3, k2 in 1u32..3, ci in 0usize..6,
    ) {
        let m0 = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let o = oid(lo, 5, CLASSES[ci], d * r * t);
        let (m1, _) = m0.extend(&uniform_domains(d, d * r, k1, r, t)).unwrap();
        let m1 = m1.integrate(&m1.pending()).unwrap().0;
        let l1 = Placement::new(&m1).unwrap().layout(o).unwrap();
        let mid = m1.targets().len() as u32;
        let (m2, _) = m1.extend(&uniform_domains(d + k1, (d + k1) * r, k2, r, t)).unwrap();
        // While the second generation is NEW, I/O keeps the first extension's layout.
        prop_assert_eq!(targets(&Placement::new(&m2).unwrap().layout(o).unwrap()), targets(&l1));
        let m2 = m2.integrate(&m2.pending()).unwrap().0;
        let l2 = Placement::new(&m2).unwrap().layout(o).unwrap();
        for (a, b) in l1.shards.iter().zip(&l2.shards) {
            prop_assert!(a.target == b.target || b.target >= mid, "{:?} -> {:?}", a, b);
        }
        prop_assert_eq!(l2.domain_violations(), 0, "{:?}", l2);
        // Round trip of the extended map gives the same layout.
        let back = PoolMap::decode(&m2.encode()).unwrap();
        prop_assert_eq!(Placement::new(&back).unwrap().layout(o).unwrap(), l2);
    }

    #[test]
    fn exclude_on_an_extended_map_moves_only_lost_shards(
        (d, r, t) in topo(), lo in any::<u64>(), ci in 0usize..6, k in 1u32..3, rank in 0u32..64,
    ) {
        let m = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let (m, _) = m.extend(&uniform_domains(d, d * r, k, r, t)).unwrap();
        let m0 = m.integrate(&m.pending()).unwrap().0;
        let rank = rank % ((d + k) * r);
        let lost = m0.rank_targets(rank);
        let o = oid(lo, 13, CLASSES[ci], d * r * t);
        let l0 = Placement::new(&m0).unwrap().layout(o).unwrap();
        let m1 = m0.exclude(&[Sel::Rank(rank)]).unwrap().0;
        let l1 = Placement::new(&m1).unwrap().layout(o).unwrap();
        for (a, b) in l0.shards.iter().zip(&l1.shards) {
            if lost.contains(&a.target) {
                prop_assert!(b.remapped && !lost.contains(&b.target));
            } else {
                prop_assert_eq!(a.target, b.target);
            }
        }
        prop_assert_eq!(l1.domain_violations(), 0, "{:?}", l1);
        let m2 = m1.exclude_out(&[Sel::Rank(rank)]).unwrap().0;
        let m3 = m2.reintegrate(&[Sel::Rank(rank)]).unwrap().0;
        let m4 = m3.integrate(&[Sel::Rank(rank)]).unwrap().0;
        prop_assert_eq!(targets(&Placement::new(&m4).unwrap().layout(o).unwrap()), targets(&l0));
    }

    #[test]
    fn transitions_follow_the_diagram(
        ops in proptest::collection::vec((0u8..7, 0u32..8, any::<bool>()), 1..20),
    ) {
        let mut m = PoolMap::build(&Topology::uniform(4, 2, 2)).unwrap();
        for (op, who, whole_rank) in ops {
            let sel = if whole_rank { Sel::Rank(who) } else { Sel::Target(who, who % 2) };
            let res = match op {
                0 => m.exclude(&[sel]),
                1 => m.exclude_out(&[sel]),
                2 => m.drain(&[sel]),
                3 => m.reintegrate(&[sel]),
                4 => m.integrate(&[sel]),
                5 => m.revert(&[sel]),
                _ => m.extend(&uniform_domains(100 + m.version(), 100 + m.version(), 1, 1, 2)),
            };
            match res {
                Ok((next, changes)) => {
                    prop_assert_eq!(next.version(), m.version() + 1);
                    for c in &changes {
                        let ok = c.from == c.to || c.from.can_transition(c.to);
                        prop_assert!(ok, "{:?}", c);
                    }
                    for (a, b) in m.targets().iter().zip(next.targets()) {
                        let ok = a.state == b.state || a.state.can_transition(b.state);
                        prop_assert!(ok, "{} -> {}", a.state, b.state);
                    }
                    m = next;
                }
                Err(e) => {
                    prop_assert!(matches!(e, PlacementError::InvalidTransition { .. }), "{e}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn chained_failures_keep_earlier_fallbacks(
        (d, r, t) in (8u32..12, 2u32..4, 4u32..8), lo in any::<u64>(), ci in 0usize..6, a in 0u32..64, b in 0u32..64,
    ) {
        let (a, b) = (a % (d * r), b % (d * r));
        prop_assume!(a != b);
        let m0 = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let m1 = m0.exclude(&[Sel::Rank(a)]).unwrap().0;
        let m2 = m1.exclude(&[Sel::Rank(b)]).unwrap().0;
        let o = oid(lo, 9, CLASSES[ci], d * r * t);
        let l1 = Placement::new(&m1).unwrap().layout(o).unwrap();
        let l2 = Placement::new(&m2).unwrap().layout(o).unwrap();
        let lost_b = m0.rank_targets(b);
        for (x, y) in l1.shards.iter().zip(&l2.shards) {
            if !lost_b.contains(&x.target) {
                prop_assert_eq!(x.target, y.target, "{:?} vs {:?}", l1, l2);
            } else {
                prop_assert!(!lost_b.contains(&y.target));
            }
        }
        prop_assert_eq!(l2.domain_violations(), 0);
    }

    #[test]
    fn drain_keeps_io_and_names_new_homes(
        (d, r, t) in (7u32..12, 1u32..4, 1u32..6), lo in any::<u64>(), ci in 0usize..6, rank in 0u32..64,
    ) {
        let rank = rank % (d * r);
        let m0 = PoolMap::build(&Topology::uniform(d, r, t)).unwrap();
        let o = oid(lo, 11, CLASSES[ci], d * r * t);
        let l0 = Placement::new(&m0).unwrap().layout(o).unwrap();
        let m1 = m0.drain(&[Sel::Rank(rank)]).unwrap().0;
        let mut p1 = Placement::new(&m1).unwrap();
        // DRAIN is up for I/O ...
        let ext = p1.extended_layout(o).unwrap();
        prop_assert_eq!(targets(&ext.layout), targets(&l0));
        // ... and down for rebuild: the extended layout names a new home for each draining shard.
        let drained = m0.rank_targets(rank);
        let n_drained = l0.shards.iter().filter(|s| drained.contains(&s.target)).count();
        prop_assert_eq!(ext.extra.len(), n_drained);
        prop_assert!(ext.extra.iter().all(|s| !drained.contains(&s.target)));
        // When the drain completes, I/O goes where the extended layout said.
        let m2 = m1.exclude_out(&[Sel::Rank(rank)]).unwrap().0;
        let l2 = Placement::new(&m2).unwrap().layout(o).unwrap();
        let post = p1.layout_in(o, View::Rebuild).unwrap();
        prop_assert_eq!(targets(&l2), targets(&post));
    }
}
