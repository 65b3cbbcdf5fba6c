//! DAOS API details: fetch that learns the value size (`iod_size` 0), `COND_PUNCH`, and
//! per-akey conditional flags (`COND_PER_AKEY` + `iod_flags`).

mod common;

use daos_common::{DaosErrno, Der};
use uuid::Uuid;
use vos::*;

fn sv(akey: &str, v: &[u8], flags: u64) -> UpdateIod {
    UpdateIod {
        akey: akey.into(),
        value: IodValue::Single(v.into()),
        flags,
    }
}

fn size(akey: &str) -> FetchIod {
    FetchIod::Size { akey: akey.into() }
}

#[test]
fn fetch_with_size_zero_learns_the_size_without_data() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    let o = Oid::new(0, 1);
    p.cont_create(c).wait().unwrap();
    let big = vec![7u8; 10_000]; // in the data file: the size comes from the index, no read
    p.update(
        c,
        o,
        10,
        0,
        b"d",
        vec![sv("s", b"hello", 0), sv("big", &big, 0)],
    )
    .wait()
    .unwrap();
    p.update(c, o, 20, 0, b"d", vec![sv("s", b"hello world", 0)])
        .wait()
        .unwrap();
    p.update(
        c,
        o,
        10,
        0,
        b"d",
        vec![UpdateIod {
            akey: b"arr".to_vec(),
            value: IodValue::Array {
                rsize: 8,
                extents: vec![(Recx::new(0, 2), vec![1; 16].into())],
            },
            flags: 0,
        }],
    )
    .wait()
    .unwrap();
    let q = |p: &VosPool, e| {
        p.fetch(
            c,
            o,
            e,
            0,
            b"d",
            &[size("s"), size("big"), size("arr"), size("none")],
        )
        .wait()
        .unwrap()
    };
    let want = |s, b, a| {
        vec![
            Fetched::Size(s),
            Fetched::Size(b),
            Fetched::Size(a),
            Fetched::Size(0),
        ]
    };
    assert_eq!(q(&p, 15), want(5, 10_000, 8));
    assert_eq!(q(&p, 25), want(11, 10_000, 8));
    assert_eq!(q(&p, 5), want(0, 0, 0));
    p.punch_akey(c, o, 30, b"d", b"s").wait().unwrap();
    assert_eq!(q(&p, 30), want(0, 10_000, 8));
    // Mixed with a data fetch in one call; AKEY_FETCH applies to size queries too.
    let got = p
        .fetch(
            c,
            o,
            25,
            0,
            b"d",
            &[
                size("s"),
                FetchIod::Single {
                    akey: b"s".to_vec(),
                },
            ],
        )
        .wait()
        .unwrap();
    assert_eq!(
        got,
        vec![
            Fetched::Size(11),
            Fetched::Single(Some(b"hello world".to_vec()))
        ]
    );
    let e = p
        .fetch(c, o, 25, cond::AKEY_FETCH, b"d", &[size("none")])
        .wait()
        .unwrap_err();
    assert_eq!(e.der(), Der::Nonexist);
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(q(&p, 25), want(11, 10_000, 8));
}

#[test]
fn cond_punch_of_a_missing_key_fails_nonexist() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(2);
    let o = Oid::new(0, 2);
    p.cont_create(c).wait().unwrap();
    p.update(c, o, 10, 0, b"d", vec![sv("a", b"v", 0)])
        .wait()
        .unwrap();
    let punch = |e, dk: Option<&[u8]>, ak: Option<&[u8]>, oid: Oid| {
        p.punch_cond(c, oid, e, cond::COND_PUNCH, dk, ak).wait()
    };
    // Missing object, dkey, akey; and existing ones before they were written (epoch 5).
    for (e, dk, ak, oid) in [
        (11, None, None, Oid::new(0, 99)),
        (11, Some(&b"x"[..]), None, o),
        (11, Some(&b"d"[..]), Some(&b"x"[..]), o),
        (5, Some(&b"d"[..]), Some(&b"a"[..]), o),
    ] {
        let err = punch(e, dk, ak, oid).unwrap_err();
        assert_eq!(err.der(), Der::Nonexist, "{err}");
    }
    // Nothing was recorded by the failed punches: the value is still there.
    let get = |e| {
        p.fetch(
            c,
            o,
            e,
            0,
            b"d",
            &[FetchIod::Single {
                akey: b"a".to_vec(),
            }],
        )
        .wait()
        .unwrap()
    };
    assert_eq!(get(12), vec![Fetched::Single(Some(b"v".to_vec()))]);
    // Existing akey, dkey, object: the conditional punch succeeds; a second one finds nothing.
    punch(12, Some(b"d"), Some(b"a"), o).unwrap();
    assert_eq!(get(12), vec![Fetched::Single(None)]);
    assert_eq!(
        punch(13, Some(b"d"), Some(b"a"), o).unwrap_err().der(),
        Der::Nonexist
    );
    p.update(c, o, 14, 0, b"d", vec![sv("a", b"w", 0)])
        .wait()
        .unwrap();
    punch(15, Some(b"d"), None, o).unwrap();
    assert_eq!(
        punch(16, Some(b"d"), None, o).unwrap_err().der(),
        Der::Nonexist
    );
    p.update(c, o, 17, 0, b"d", vec![sv("a", b"z", 0)])
        .wait()
        .unwrap();
    punch(18, None, None, o).unwrap();
    assert_eq!(punch(19, None, None, o).unwrap_err().der(), Der::Nonexist);
    // Without COND_PUNCH a punch of a missing key is recorded (DAOS behaviour).
    p.punch_cond(c, Oid::new(0, 99), 20, 0, None, None)
        .wait()
        .unwrap();
}

#[test]
fn per_akey_conditions_come_from_each_iod() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(3);
    let o = Oid::new(0, 3);
    p.cont_create(c).wait().unwrap();
    p.update(c, o, 10, 0, b"d", vec![sv("old", b"1", 0)])
        .wait()
        .unwrap();
    // "new" must be inserted, "old" must already exist: both hold, so the update applies.
    p.update(
        c,
        o,
        11,
        cond::PER_AKEY,
        b"d",
        vec![
            sv("new", b"n", cond::AKEY_INSERT),
            sv("old", b"2", cond::AKEY_UPDATE),
        ],
    )
    .wait()
    .unwrap();
    // One iod's condition fails: the whole update fails, nothing is applied.
    let e = p
        .update(
            c,
            o,
            12,
            cond::PER_AKEY,
            b"d",
            vec![
                sv("old", b"3", cond::AKEY_UPDATE),
                sv("new", b"x", cond::AKEY_INSERT),
            ],
        )
        .wait()
        .unwrap_err();
    assert_eq!(e.der(), Der::Exist, "{e}");
    let e = p
        .update(
            c,
            o,
            12,
            cond::PER_AKEY,
            b"d",
            vec![sv("missing", b"3", cond::AKEY_UPDATE)],
        )
        .wait()
        .unwrap_err();
    assert_eq!(e.der(), Der::Nonexist, "{e}");
    // Without PER_AKEY, iod flags are ignored and the call-wide flags apply to every akey.
    p.update(c, o, 13, 0, b"d", vec![sv("new", b"y", cond::AKEY_INSERT)])
        .wait()
        .unwrap();
    let all = |e| {
        p.fetch(
            c,
            o,
            e,
            0,
            b"d",
            &[
                FetchIod::Single {
                    akey: b"old".to_vec(),
                },
                FetchIod::Single {
                    akey: b"new".to_vec(),
                },
            ],
        )
        .wait()
        .unwrap()
    };
    assert_eq!(
        all(12),
        vec![
            Fetched::Single(Some(b"2".to_vec())),
            Fetched::Single(Some(b"n".to_vec()))
        ]
    );
    // Fetch: AKEY_FETCH on one iod only.
    let cond_iod = |akey: &str, flags| FetchIod::Cond {
        iod: Box::new(FetchIod::Single { akey: akey.into() }),
        flags,
    };
    let got = p
        .fetch(
            c,
            o,
            13,
            cond::PER_AKEY,
            b"d",
            &[cond_iod("old", cond::AKEY_FETCH), cond_iod("missing", 0)],
        )
        .wait()
        .unwrap();
    assert_eq!(
        got,
        vec![Fetched::Single(Some(b"2".to_vec())), Fetched::Single(None)]
    );
    let e = p
        .fetch(
            c,
            o,
            13,
            cond::PER_AKEY,
            b"d",
            &[cond_iod("old", 0), cond_iod("missing", cond::AKEY_FETCH)],
        )
        .wait()
        .unwrap_err();
    assert_eq!(e.der(), Der::Nonexist);
    // Without PER_AKEY the call's AKEY_FETCH applies to every iod, Cond or not.
    let e = p
        .fetch(
            c,
            o,
            13,
            cond::AKEY_FETCH,
            b"d",
            &[cond_iod("old", 0), cond_iod("missing", 0)],
        )
        .wait()
        .unwrap_err();
    assert_eq!(e.der(), Der::Nonexist);
}

/// Data-file values of many sizes (unaligned ones too), fetched many at a time and in changing
/// orders: reader threads reuse their read buffers, so a value must never show bytes of another
/// value read before it into the same buffer.
#[test]
fn data_file_values_of_mixed_sizes_read_back_exactly_under_buffer_reuse() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    let sizes = [
        4097usize,
        5000,
        8192,
        8193,
        65_543,
        1 << 20,
        (1 << 20) - 1,
        12_288,
        3000,
    ];
    let value = |i: usize, n: usize| -> Vec<u8> {
        (0..n)
            .map(|j| (j as u64 * 2654435761 + i as u64 * 97) as u8)
            .collect()
    };
    for (i, &n) in sizes.iter().enumerate() {
        p.update(
            c,
            Oid::new(0, i as u64),
            10,
            0,
            b"d",
            vec![sv("v", &value(i, n), 0)],
        )
        .wait()
        .unwrap();
    }
    for round in 0..4usize {
        // All fetches of a round are in flight together; the order rotates each round.
        let pending: Vec<_> = (0..sizes.len() * 3)
            .map(|k| (k * 7 + round * 5) % sizes.len())
            .map(|i| {
                let f = p.fetch(
                    c,
                    Oid::new(0, i as u64),
                    10,
                    0,
                    b"d",
                    &[FetchIod::Single {
                        akey: b"v".to_vec(),
                    }],
                );
                (i, f)
            })
            .collect();
        for (i, f) in pending {
            let got = f.wait().unwrap();
            assert_eq!(
                got,
                vec![Fetched::Single(Some(value(i, sizes[i])))],
                "value {i} ({} B), round {round}",
                sizes[i]
            );
        }
    }
}
