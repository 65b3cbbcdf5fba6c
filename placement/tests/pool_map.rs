//! Pool map operations: versions, state transitions, errors.

use daos_common::{DaosErrno, Der};
use placement::*;

fn map() -> PoolMap {
    PoolMap::build(&Topology::uniform(4, 2, 4)).unwrap()
}

fn states(m: &PoolMap, rank: u32) -> Vec<CompState> {
    m.rank_targets(rank)
        .iter()
        .map(|&t| m.targets()[t as usize].state)
        .collect()
}

#[test]
fn build_counts_and_version() {
    let m = map();
    assert_eq!(m.version(), 1);
    assert_eq!(m.domains().len(), 4);
    assert_eq!(m.ranks().len(), 8);
    assert_eq!(m.targets().len(), 32);
    assert!(m
        .targets()
        .iter()
        .all(|t| t.state == CompState::UpIn && t.fseq == 0));
    assert_eq!(m.target_rank(9), 2);
    assert_eq!(m.target_domain(9), 1);
}

#[test]
fn exclude_then_out_then_reintegrate() {
    let m = map();
    let (m2, ch) = m.exclude(&[Sel::Rank(3)]).unwrap();
    assert_eq!(m2.version(), 2);
    // rank + 4 targets
    assert_eq!(ch.len(), 5);
    assert!(ch
        .iter()
        .all(|c| c.from == CompState::UpIn && c.to == CompState::Down && c.rank == Some(3)));
    assert_eq!(states(&m2, 3), vec![CompState::Down; 4]);
    assert!(m2
        .rank_targets(3)
        .iter()
        .all(|&t| m2.targets()[t as usize].fseq == 2));
    // The input map is untouched (sans-IO: operations return a new map).
    assert_eq!(states(&m, 3), vec![CompState::UpIn; 4]);

    let (m3, _) = m2.exclude_out(&[Sel::Rank(3)]).unwrap();
    assert_eq!(states(&m3, 3), vec![CompState::DownOut; 4]);
    let (m4, _) = m3.reintegrate(&[Sel::Rank(3)]).unwrap();
    assert_eq!(states(&m4, 3), vec![CompState::Up; 4]);
    assert_eq!(m4.pending(), vec![Sel::Rank(3)]);
    let (m5, _) = m4.integrate(&[Sel::Rank(3)]).unwrap();
    assert!(m5.pending().is_empty());
    // A single target reintegrating is pending on its own.
    let t = m5.exclude(&[Sel::Target(2, 1)]).unwrap().0;
    let t = t.exclude_out(&[Sel::Target(2, 1)]).unwrap().0;
    let t = t.reintegrate(&[Sel::Target(2, 1)]).unwrap().0;
    assert_eq!(t.pending(), vec![Sel::Target(2, 1)]);
    assert_eq!(states(&m5, 3), vec![CompState::UpIn; 4]);
    assert_eq!(m5.version(), 5);
}

#[test]
fn invalid_transitions_are_errors() {
    let m = map();
    let e = m.reintegrate(&[Sel::Target(0, 1)]).unwrap_err();
    assert_eq!(
        e,
        PlacementError::InvalidTransition {
            kind: "target",
            id: 1,
            from: CompState::UpIn,
            to: CompState::Up
        }
    );
    assert_eq!(e.der(), Der::Inval);
    assert!(e.to_string().contains("UPIN -> UP"), "{e}");
    let (m2, _) = m.exclude(&[Sel::Target(0, 1)]).unwrap();
    // Exclusion is never reverted to UPIN directly.
    assert!(m2.integrate(&[Sel::Target(0, 1)]).is_err());
    assert!(m2.drain(&[Sel::Target(0, 1)]).is_err());
    let e = m.exclude(&[Sel::Rank(99)]).unwrap_err();
    assert_eq!(
        e,
        PlacementError::NoSuchComponent {
            kind: "rank",
            id: 99
        }
    );
    assert_eq!(e.der(), Der::Nonexist);
    assert!(m.exclude(&[Sel::Target(0, 7)]).is_err());
    assert!(m.exclude(&[Sel::Domain(7)]).is_err());
}

#[test]
fn drain_and_revert() {
    let m = map();
    let (m2, _) = m.drain(&[Sel::Rank(1)]).unwrap();
    assert_eq!(states(&m2, 1), vec![CompState::Drain; 4]);
    let (m3, ch) = m2.revert(&[Sel::Rank(1)]).unwrap();
    assert_eq!(states(&m3, 1), vec![CompState::UpIn; 4]);
    assert!(ch
        .iter()
        .all(|c| c.from == CompState::Drain && c.to == CompState::UpIn));
    let (m4, _) = m2.exclude_out(&[Sel::Rank(1)]).unwrap();
    assert_eq!(states(&m4, 1), vec![CompState::DownOut; 4]);
}

#[test]
fn extend_adds_new_components() {
    let m = map();
    let (m2, ch) = m.extend(&uniform_domains(4, 8, 1, 2, 4)).unwrap();
    assert_eq!(m2.domains().len(), 5);
    assert_eq!(m2.targets().len(), 40);
    assert_eq!(ch.len(), 1 + 2 + 8);
    assert!(m2.targets()[32..]
        .iter()
        .all(|t| t.state == CompState::New && t.in_ver == 2));
    // A NEW target that fails stays NEW with its fseq set, and is DOWN when the extension ends.
    let (m3, _) = m2.exclude(&[Sel::Target(8, 0)]).unwrap();
    assert_eq!(m3.targets()[32].state, CompState::New);
    assert_eq!(m3.targets()[32].fseq, 3);
    let (m4, _) = m3.integrate(&m3.pending()).unwrap();
    assert_eq!(m4.targets()[32].state, CompState::Down);
    assert!(m4.targets()[33..]
        .iter()
        .all(|t| t.state == CompState::UpIn));
    // Duplicate ranks and empty ranks are rejected.
    assert!(matches!(
        m.extend(&uniform_domains(9, 0, 1, 1, 4)),
        Err(PlacementError::InvalidTopology(_))
    ));
    assert!(matches!(
        m.extend(&uniform_domains(9, 20, 1, 1, 0)),
        Err(PlacementError::InvalidTopology(_))
    ));
    // Adding a rank to an existing domain.
    let (m5, _) = m
        .extend(&[DomainSpec {
            id: 0,
            rack: None,
            ranks: vec![RankSpec {
                rank: 50,
                targets: 4,
            }],
        }])
        .unwrap();
    assert_eq!(m5.domains().len(), 4);
    assert_eq!(m5.target_domain(32), 0);
}

#[test]
fn racks_above_nodes() {
    let mut topo = Topology::uniform(4, 1, 2);
    for (i, d) in topo.domains.iter_mut().enumerate() {
        d.rack = Some(i as u32 / 2);
    }
    let m = PoolMap::build(&topo).unwrap();
    assert!(m.has_racks());
    assert_eq!(m.domains().len(), 4);
    let back = PoolMap::decode(&m.encode()).unwrap();
    assert_eq!(back, m);
    let mut p = Placement::new(&m).unwrap();
    let oid = ObjectId::generate(0, 7, ObjType::Array, "RP_4G1".parse().unwrap(), 8);
    let l = p.layout(oid).unwrap();
    assert_eq!(l.domain_violations(), 0);
    // Mixing rack and rack-less domains is rejected.
    topo.domains[1].rack = None;
    assert!(matches!(
        PoolMap::build(&topo),
        Err(PlacementError::InvalidTopology(_))
    ));
}

#[test]
fn few_targets_share_and_all_down_gives_no_target() {
    // 2 domains × 1 rank × 2 targets; RP_3G1 needs 3 shards.
    let m = PoolMap::build(&Topology::uniform(2, 1, 2)).unwrap();
    let oid = ObjectId::generate(0, 5, ObjType::Array, "RP_3G1".parse().unwrap(), 4);
    let l = Placement::new(&m).unwrap().layout(oid).unwrap();
    assert!(l.shards.iter().all(|s| s.target != NO_TARGET));
    // With one rank down, every shard still gets a target (two share one: DAOS layout v1+ semantics).
    let (m1, _) = m.exclude(&[Sel::Rank(0)]).unwrap();
    let l1 = Placement::new(&m1).unwrap().layout(oid).unwrap();
    assert!(
        l1.shards
            .iter()
            .all(|s| s.target != NO_TARGET && m1.target_rank(s.target) == 1),
        "{l1:?}"
    );
    // With everything down, shards get NO_TARGET (-1 in DAOS), not a panic.
    let (m2, _) = m1.exclude(&[Sel::Rank(1)]).unwrap();
    let l2 = Placement::new(&m2).unwrap().layout(oid).unwrap();
    assert!(
        l2.shards
            .iter()
            .all(|s| s.target == NO_TARGET && s.remapped),
        "{l2:?}"
    );
}

#[test]
fn bad_oid_class_bits_are_errors() {
    let m = PoolMap::build(&Topology::uniform(2, 1, 2)).unwrap();
    let mut p = Placement::new(&m).unwrap();
    let e = p
        .layout(ObjectId {
            hi: 0x00ff_0001_0000_0000,
            lo: 1,
        })
        .unwrap_err();
    assert!(
        matches!(e, PlacementError::InvalidOid { code: 0xff, .. }),
        "{e}"
    );
    assert_eq!(e.der(), Der::Inval);
}

#[test]
fn rank_fault_level_for_small_pools() {
    // One node × 3 ranks: node-level placement only spreads groups over ranks softly (object-wide
    // used bits are reset once every rank holds a shard), rank-level keeps each group on distinct ranks.
    let m = PoolMap::build(&Topology::uniform(1, 3, 4)).unwrap();
    let class: ObjClass = "RP_2G3".parse().unwrap();
    let mut node = Placement::new(&m).unwrap();
    let mut rank = Placement::with_fault_level(&m, FaultLevel::Rank).unwrap();
    let (mut node_viol, mut rank_viol) = (0, 0);
    for i in 0..300 {
        let oid = ObjectId::generate(0, i, ObjType::Array, class, 12);
        let ln = node.layout(oid).unwrap();
        let lr = rank.layout(oid).unwrap();
        assert_eq!(ln.domain_violations(), 3, "one node: every group shares it");
        node_viol += ln.violations_at(FaultLevel::Rank);
        rank_viol += lr.violations_at(FaultLevel::Rank);
    }
    assert_eq!(rank_viol, 0);
    assert!(node_viol > 0);
}
