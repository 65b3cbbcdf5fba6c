//! Golden layouts: pin where a fixed set of oids lives so a change that silently moves data fails.
//! If one of these changes on purpose, that is a new layout version (DAOS: `pl_obj_layout.ver`).

use placement::*;

fn layouts(map: &PoolMap, class: &str) -> Vec<Vec<u32>> {
    let mut p = Placement::new(map).unwrap();
    let targets = map.targets().len() as u32;
    (0..6u64)
        .map(|i| {
            let oid = ObjectId::generate(
                0x1000 + i as u32,
                i * 7919,
                ObjType::Array,
                class.parse().unwrap(),
                targets,
            );
            p.layout(oid)
                .unwrap()
                .shards
                .iter()
                .map(|s| s.target)
                .collect()
        })
        .collect()
}

fn healthy() -> PoolMap {
    PoolMap::build(&Topology::uniform(16, 4, 8)).unwrap()
}

#[test]
fn golden_s1() {
    let got = layouts(&healthy(), "S1");
    println!("{got:?}");
    assert_eq!(got, GOLDEN_S1);
}

#[test]
fn golden_rp_3g1() {
    let got = layouts(&healthy(), "RP_3G1");
    println!("{got:?}");
    assert_eq!(got, GOLDEN_RP_3G1);
}

#[test]
fn golden_ec_4p2g1() {
    let got = layouts(&healthy(), "EC_4P2G1");
    println!("{got:?}");
    assert_eq!(got, GOLDEN_EC_4P2G1);
}

#[test]
fn golden_rp_3g1_ranks_1_23_excluded() {
    // Rank 23 holds shard 0 of oid 0 and rank 1 shard 2 of oid 4 in the healthy layout.
    let m = healthy().exclude(&[Sel::Rank(23)]).unwrap().0;
    let m = m.exclude(&[Sel::Rank(1)]).unwrap().0;
    let got = layouts(&m, "RP_3G1");
    println!("{got:?}");
    assert_eq!(got, GOLDEN_RP_3G1_EXCL);
}

fn extended() -> PoolMap {
    let (m, _) = healthy().extend(&uniform_domains(16, 64, 2, 4, 8)).unwrap();
    m.integrate(&m.pending()).unwrap().0
}

#[test]
fn golden_extended_16_plus_2() {
    // Pool extended by two domains: each shard either kept its healthy target or moved to the new
    // domains (targets >= 512). Pinned since the generation-wise extension placement (re-pinned on
    // purpose when groups of >= 2 shards switched from per-shard jumps to per-domain steals).
    let got = (
        layouts(&extended(), "RP_3G1"),
        layouts(&extended(), "EC_4P2G1"),
    );
    println!("{got:?}");
    assert_eq!(got.0, GOLDEN_RP_3G1_EXT);
    assert_eq!(got.1, GOLDEN_EC_4P2G1_EXT);
}

#[test]
fn golden_oid_key() {
    assert_eq!(hash::oid_key(0x0b09_0001_0000_1000, 0), GOLDEN_KEY);
    assert_eq!(hash::jump(GOLDEN_KEY, 512), GOLDEN_JUMP);
}

const GOLDEN_S1: [[u32; 1]; 6] = [[454], [289], [444], [171], [49], [200]];
const GOLDEN_RP_3G1: [[u32; 3]; 6] = [
    [186, 87, 128],
    [233, 178, 213],
    [483, 409, 338],
    [224, 368, 467],
    [362, 418, 8],
    [300, 492, 119],
];
const GOLDEN_EC_4P2G1: [[u32; 6]; 6] = [
    [7, 111, 250, 271, 145, 480],
    [421, 476, 52, 345, 22, 133],
    [498, 95, 426, 39, 245, 109],
    [390, 104, 461, 30, 138, 443],
    [234, 381, 84, 317, 209, 406],
    [242, 431, 317, 81, 353, 467],
];
const GOLDEN_RP_3G1_EXCL: [[u32; 3]; 6] = [
    [423, 87, 128],
    [233, 178, 213],
    [483, 409, 338],
    [224, 368, 467],
    [362, 418, 409],
    [300, 492, 119],
];
const GOLDEN_RP_3G1_EXT: [[u32; 3]; 6] = [
    [527, 87, 128],
    [543, 178, 213],
    [483, 409, 573],
    [224, 368, 467],
    [362, 418, 8],
    [300, 492, 543],
];
const GOLDEN_EC_4P2G1_EXT: [[u32; 6]; 6] = [
    [7, 111, 536, 271, 145, 480],
    [421, 476, 52, 345, 22, 133],
    [498, 95, 426, 39, 245, 109],
    [390, 104, 461, 30, 138, 572],
    [574, 381, 84, 317, 209, 406],
    [242, 431, 317, 81, 548, 467],
];
const GOLDEN_KEY: u64 = 9879830096282463964;
const GOLDEN_JUMP: u32 = 47;
