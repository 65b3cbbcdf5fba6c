//! Values given as aligned buffers (`IoBuf::aligned`): written from the caller's buffer without
//! a copy, shared by several updates, and released to the caller when the updates complete.

mod common;

use std::sync::Arc;

use daos_common::ids::Uuid;
use daos_common::DaosErrno;
use vos::*;

fn fetch_array(p: &VosPool, c: Uuid, o: Oid, n: u64) -> Vec<u8> {
    let mut r = p
        .fetch(
            c,
            o,
            EPOCH_MAX,
            0,
            b"d",
            &[FetchIod::Array {
                akey: b"arr".to_vec(),
                rsize: 1,
                recxs: vec![Recx::new(0, n)],
            }],
        )
        .wait()
        .unwrap();
    match r.remove(0) {
        Fetched::Array { data, holes } => {
            assert!(holes.is_empty(), "holes {holes:?}");
            data
        }
        other => panic!("{other:?}"),
    }
}

fn fetch_single(p: &VosPool, c: Uuid, o: Oid) -> Option<Vec<u8>> {
    match p
        .fetch(
            c,
            o,
            EPOCH_MAX,
            0,
            b"d",
            &[FetchIod::Single {
                akey: b"sv".to_vec(),
            }],
        )
        .wait()
        .unwrap()
        .remove(0)
    {
        Fetched::Single(v) => v,
        other => panic!("{other:?}"),
    }
}

/// Updates the single value "sv" of `o` (dkey "d", epoch 1) with `v`.
fn put_single(p: &VosPool, c: Uuid, o: Oid, v: IoBuf) -> Completion<Result<(), VosError>> {
    p.update(
        c,
        o,
        1,
        0,
        b"d",
        vec![UpdateIod {
            akey: b"sv".to_vec(),
            value: IodValue::Single(v),
            flags: 0,
        }],
    )
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

#[test]
fn aligned_values_read_back_exactly_before_and_after_reopen() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();

    // One 1 MiB buffer backs eight array updates at once (as DAOS's vos_perf reuses its buffer).
    let big = pattern(1 << 20, 3);
    let shared = Arc::new(AlignedBuf::from_slice(&big));
    // A value shorter than its buffer, whose buffer holds other bytes after it: only the value
    // may come back.
    let short = pattern(10_000, 77);
    let mut padded = AlignedBuf::zeroed(16 << 10);
    padded.as_mut_slice().fill(0xEE);
    padded.as_mut_slice()[..short.len()].copy_from_slice(&short);
    let padded = Arc::new(padded);
    // Below the inline threshold: kept in the WAL record, also from an aligned buffer.
    let small = Arc::new(AlignedBuf::from_slice(b"tiny"));

    let mut waits = Vec::new();
    for i in 0..8u64 {
        waits.push(p.update(
            c,
            Oid::new(0, i),
            1,
            0,
            b"d",
            vec![UpdateIod {
                akey: b"arr".to_vec(),
                value: IodValue::Array {
                    rsize: 1,
                    extents: vec![(
                        Recx::new(0, big.len() as u64),
                        IoBuf::aligned(shared.clone(), big.len()).unwrap(),
                    )],
                },
                flags: 0,
            }],
        ));
    }
    waits.push(put_single(
        &p,
        c,
        Oid::new(1, 0),
        IoBuf::aligned(padded.clone(), short.len()).unwrap(),
    ));
    waits.push(put_single(
        &p,
        c,
        Oid::new(1, 1),
        IoBuf::aligned(small.clone(), 4).unwrap(),
    ));
    for w in waits {
        w.wait().unwrap();
    }

    let check = |p: &VosPool| {
        for i in 0..8u64 {
            assert!(
                fetch_array(p, c, Oid::new(0, i), big.len() as u64) == big,
                "object {i}: 1 MiB array read back differs"
            );
        }
        assert_eq!(fetch_single(p, c, Oid::new(1, 0)).unwrap(), short);
        assert_eq!(fetch_single(p, c, Oid::new(1, 1)).unwrap(), b"tiny");
    };
    check(&p);
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    check(&p);
}

#[test]
fn the_buffer_is_the_callers_again_once_its_updates_complete() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    let mut buf = Arc::new(AlignedBuf::from_slice(&pattern(64 << 10, 1)));
    for round in 0..20u8 {
        let v = pattern(64 << 10, round);
        // The caller refills its buffer in place: possible only if vos kept no reference.
        Arc::get_mut(&mut buf)
            .unwrap_or_else(|| panic!("round {round}: vos still holds the buffer"))
            .as_mut_slice()
            .copy_from_slice(&v);
        let waits: Vec<_> = (0..4u64)
            .map(|i| {
                put_single(
                    &p,
                    c,
                    Oid::new(round as u64, i),
                    IoBuf::aligned(buf.clone(), v.len()).unwrap(),
                )
            })
            .collect();
        for w in waits {
            w.wait().unwrap();
        }
        // Right away: vos drops its references before it answers (with the drop after the
        // answers, this failed 3 runs of 3).
        assert_eq!(
            Arc::strong_count(&buf),
            1,
            "round {round}: vos still holds the buffer after the updates completed"
        );
        for i in 0..4u64 {
            assert!(fetch_single(&p, c, Oid::new(round as u64, i)).unwrap() == v);
        }
    }
}

#[test]
fn a_value_longer_than_its_buffer_is_invalid() {
    let buf = Arc::new(AlignedBuf::zeroed(4096));
    let e = IoBuf::aligned(buf.clone(), 4097).unwrap_err();
    assert_eq!(e.der().name(), "DER_INVAL", "{e}");
    assert!(e.to_string().contains("4097"), "{e}");
    assert_eq!(IoBuf::aligned(buf, 4096).unwrap().len(), 4096);
}
