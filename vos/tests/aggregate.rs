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
            extents: vec![(Recx::new(idx, data.len() as u64), data)],
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
