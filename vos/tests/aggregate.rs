//! Aggregation rewrites partly shadowed data-file extents into their visible pieces: reads at
//! or after the aggregation epoch are unchanged, the shadowed bytes' space is reclaimed, and a
//! reopen agrees.

mod common;

use uuid::Uuid;
use vos::*;

fn arr(idx: u64, data: Vec<u8>) -> Vec<UpdateIod> {
    vec![UpdateIod {
        akey: b"arr".to_vec(),
        value: IodValue::Array {
            rsize: 1,
            extents: vec![(Recx::new(idx, data.len() as u64), data.into())],
        },
        flags: 0,
    }]
}

fn read(p: &VosPool, c: Uuid, o: Oid, e: Epoch) -> (Vec<u8>, Vec<Recx>) {
    let got = p
        .fetch(
            c,
            o,
            e,
            0,
            b"d",
            &[FetchIod::Array {
                akey: b"arr".to_vec(),
                rsize: 1,
                recxs: vec![Recx::new(0, 80_000)],
            }],
        )
        .wait()
        .unwrap();
    match got.into_iter().next().unwrap() {
        Fetched::Array { data, holes } => (data, holes),
        other => panic!("{other:?}"),
    }
}

#[test]
fn partly_shadowed_data_file_extents_are_rewritten_and_their_space_reclaimed() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    let o = Oid::new(0, 1);
    p.cont_create(c).wait().unwrap();
    let pat = |seed: u8, n: usize| -> Vec<u8> {
        (0..n).map(|i| seed.wrapping_add((i % 251) as u8)).collect()
    };
    // 64 KiB at epoch 1, its middle 40 KiB overwritten at 2, 2 KiB of its tail at 3 (inline).
    p.update(c, o, 1, 0, b"d", arr(0, pat(1, 65_536)))
        .wait()
        .unwrap();
    p.update(c, o, 2, 0, b"d", arr(8_192, pat(2, 40_960)))
        .wait()
        .unwrap();
    p.update(c, o, 3, 0, b"d", arr(63_488, pat(3, 2_048)))
        .wait()
        .unwrap();
    p.update(c, o, 9, 0, b"d", arr(70_000, pat(9, 5_000)))
        .wait()
        .unwrap(); // after upto
    assert_eq!(p.space().data_used, 65_536 + 40_960 + 8_192);
    let before: Vec<_> = [3, 5, 9, 20].iter().map(|e| read(&p, c, o, *e)).collect();
    p.aggregate(c, 5).wait().unwrap();
    let after: Vec<_> = [3, 5, 9, 20].iter().map(|e| read(&p, c, o, *e)).collect();
    assert_eq!(before[1..], after[1..], "reads at >= 5 changed");
    // Epoch-1 extent: [0,8K) 8 KiB + [48K,62K) 14 KiB (rewritten), epoch 2 whole (40 KiB),
    // epoch 3 inline, epoch 9 untouched (8 KiB allocation).
    assert_eq!(p.space().data_used, 8_192 + 16_384 + 40_960 + 8_192);
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    let reopened: Vec<_> = [5, 9, 20].iter().map(|e| read(&p, c, o, *e)).collect();
    assert_eq!(before[1..], reopened[..]);
    assert_eq!(p.space().data_used, 8_192 + 16_384 + 40_960 + 8_192);
    // Aggregating again changes nothing.
    p.aggregate(c, 5).wait().unwrap();
    assert_eq!(p.space().data_used, 8_192 + 16_384 + 40_960 + 8_192);
    assert_eq!(read(&p, c, o, 20), before[3]);
    p.close().unwrap();
}

#[test]
fn a_rewrite_whose_extent_changed_meanwhile_frees_its_new_pieces_instead() {
    use vos::akey::Payload;
    use vos::index::{Index, IndexOp, OpIod, OpValue};
    let ext = |off: u64, len: u32| Payload::Extent { off, len, crc: 0 };
    let upd = |epoch, idx, nr, p: Payload| IndexOp::Update {
        cont: 1,
        oid: 1,
        epoch,
        dkey: b"d".to_vec(),
        iods: vec![OpIod {
            akey: b"a".to_vec(),
            value: OpValue::Array {
                rsize: 1,
                exts: vec![(Recx::new(idx, nr), p)],
            },
        }],
    };
    let mut ix = Index::default();
    ix.apply(IndexOp::ContCreate { cont: 1 });
    ix.apply(upd(1, 0, 20_000, ext(0, 20_000)));
    ix.apply(upd(2, 5_000, 10_000, ext(20_480, 10_000)));
    let plan = ix.rewrite_plan(1, 5);
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].parts, vec![(0, 5_000), (15_000, 20_000)]);
    let rewrite = |parts: Vec<(u64, u64)>| IndexOp::Rewrite {
        cont: 1,
        oid: 1,
        dkey: b"d".to_vec(),
        akey: b"a".to_vec(),
        epoch: 1,
        upto: 5,
        off: 0,
        parts: parts
            .into_iter()
            .enumerate()
            .map(|(i, (l, h))| {
                (
                    Recx::new(l, h - l),
                    ext(40_960 + 8_192 * i as u64, (h - l) as u32),
                )
            })
            .collect(),
    };
    // The shadowing extent is discarded before the rewrite applies: the planned pieces no
    // longer match, so the rewrite frees its own new extents and keeps the old one whole.
    let mut raced = ix.clone();
    raced.apply(IndexOp::Discard {
        cont: 1,
        lo: 2,
        hi: 2,
    });
    let freed = raced.apply(rewrite(plan[0].parts.clone()));
    assert_eq!(freed, vec![ext(40_960, 5_000), ext(49_152, 5_000)]);
    assert!(raced.allocations().contains(&(0, 20_480)));
    // Unchanged: the old extent is replaced and freed.
    let freed = ix.apply(rewrite(plan[0].parts.clone()));
    assert_eq!(freed, vec![ext(0, 20_000)]);
    assert!(!ix.allocations().contains(&(0, 20_480)));
    assert!(ix.rewrite_plan(1, 5).is_empty());
}
