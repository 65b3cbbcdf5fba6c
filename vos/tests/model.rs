//! Data-model behaviour through the durable pool: epochs, punches, holes, conditionals,
//! enumeration, aggregation, discard, container destroy, reopen.

mod common;

use daos_common::{DaosErrno, Der};
use uuid::Uuid;
use vos::*;

fn sv(akey: &str, v: &[u8]) -> UpdateIod {
    UpdateIod {
        akey: akey.into(),
        value: IodValue::Single(v.into()),
        flags: 0,
    }
}
fn get(p: &VosPool, c: Uuid, o: Oid, e: Epoch, d: &str, a: &str) -> Option<Vec<u8>> {
    match p
        .fetch(
            c,
            o,
            e,
            0,
            d.as_bytes(),
            &[FetchIod::Single { akey: a.into() }],
        )
        .wait()
        .unwrap()
        .remove(0)
    {
        Fetched::Single(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn epochs_punches_and_reopen() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(7);
    let o = Oid::new(1, 2);
    p.cont_create(c).wait().unwrap();
    assert_eq!(p.cont_create(c).wait().unwrap_err().der(), Der::Exist);
    p.update(c, o, 10, 0, b"d", vec![sv("a", b"v10")])
        .wait()
        .unwrap();
    p.update(c, o, 20, 0, b"d", vec![sv("a", b"v20")])
        .wait()
        .unwrap();
    let big = vec![0xab; 100_000];
    p.update(c, o, 25, 0, b"d", vec![sv("big", &big)])
        .wait()
        .unwrap();
    assert_eq!(get(&p, c, o, 5, "d", "a"), None);
    assert_eq!(get(&p, c, o, 15, "d", "a").as_deref(), Some(&b"v10"[..]));
    assert_eq!(get(&p, c, o, 25, "d", "a").as_deref(), Some(&b"v20"[..]));
    assert_eq!(get(&p, c, o, 25, "d", "big"), Some(big.clone()));
    p.punch_dkey(c, o, 30, b"d").wait().unwrap();
    assert_eq!(get(&p, c, o, 30, "d", "a"), None);
    assert_eq!(get(&p, c, o, 29, "d", "a").as_deref(), Some(&b"v20"[..]));
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(p.recovery_stats().wal_records, 5);
    assert_eq!(get(&p, c, o, 29, "d", "big"), Some(big));
    assert_eq!(get(&p, c, o, 31, "d", "a"), None);
    p.punch_object(c, o, 40).wait().unwrap();
    p.update(c, o, 50, 0, b"d", vec![sv("a", b"v50")])
        .wait()
        .unwrap();
    assert_eq!(get(&p, c, o, 45, "d", "a"), None);
    assert_eq!(get(&p, c, o, 55, "d", "a").as_deref(), Some(&b"v50"[..]));
    p.punch_akey(c, o, 60, b"d", b"a").wait().unwrap();
    assert_eq!(get(&p, c, o, 60, "d", "a"), None);
}

#[test]
fn arrays_overlay_and_report_holes_including_large_extents() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    let o = Oid::new(0, 9);
    p.cont_create(c).wait().unwrap();
    let arr = |rsize, ext: Vec<(Recx, Vec<u8>)>| {
        vec![UpdateIod {
            akey: b"arr".to_vec(),
            value: IodValue::Array {
                rsize,
                extents: ext.into_iter().map(|(r, b)| (r, b.into())).collect(),
            },
            flags: 0,
        }]
    };
    let big = (0..8192u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    p.update(
        c,
        o,
        1,
        0,
        b"d",
        arr(4, vec![(Recx::new(0, 2048), big.clone())]),
    )
    .wait()
    .unwrap();
    p.update(
        c,
        o,
        2,
        0,
        b"d",
        arr(4, vec![(Recx::new(1, 1), b"XXXX".to_vec())]),
    )
    .wait()
    .unwrap();
    assert_eq!(
        p.update(
            c,
            o,
            3,
            0,
            b"d",
            arr(8, vec![(Recx::new(0, 1), vec![0; 8])])
        )
        .wait()
        .unwrap_err()
        .der(),
        Der::RecSize
    );
    let fetch = |p: &VosPool, e| {
        let r = p
            .fetch(
                c,
                o,
                e,
                0,
                b"d",
                &[FetchIod::Array {
                    akey: b"arr".to_vec(),
                    rsize: 4,
                    recxs: vec![Recx::new(0, 3), Recx::new(2046, 4)],
                }],
            )
            .wait()
            .unwrap();
        match r.into_iter().next().unwrap() {
            Fetched::Array { data, holes } => (data, holes),
            other => panic!("{other:?}"),
        }
    };
    let (data, holes) = fetch(&p, 10);
    assert_eq!(&data[0..4], &big[0..4]);
    assert_eq!(&data[4..8], b"XXXX");
    assert_eq!(&data[8..12], &big[8..12]);
    assert_eq!(&data[12..20], &big[2046 * 4..2048 * 4]);
    assert_eq!(&data[20..28], &[0u8; 8]);
    assert_eq!(holes, vec![Recx::new(2048, 2)]);
    let (data1, _) = fetch(&p, 1);
    assert_eq!(&data1[4..8], &big[4..8]);
    let mut a = Anchor::default();
    let recxs = p
        .list_recxs(c, o, b"d", b"arr", EpochRange::ALL, &mut a, 10)
        .unwrap();
    assert_eq!(
        recxs.iter().map(|r| (r.recx, r.epoch)).collect::<Vec<_>>(),
        vec![
            (Recx::new(0, 1), 1),
            (Recx::new(1, 1), 2),
            (Recx::new(2, 2046), 1)
        ]
    );
    assert!(a.is_eof());
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(fetch(&p, 10), (data, holes));
}

#[test]
fn conditional_flags_use_daos_errors() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    let o = Oid::new(0, 1);
    p.cont_create(c).wait().unwrap();
    assert_eq!(
        p.update(c, o, 1, cond::DKEY_UPDATE, b"d", vec![sv("a", b"1")])
            .wait()
            .unwrap_err()
            .der(),
        Der::Nonexist
    );
    p.update(c, o, 1, cond::DKEY_INSERT, b"d", vec![sv("a", b"1")])
        .wait()
        .unwrap();
    assert_eq!(
        p.update(c, o, 2, cond::DKEY_INSERT, b"d", vec![sv("b", b"1")])
            .wait()
            .unwrap_err()
            .der(),
        Der::Exist
    );
    assert_eq!(
        p.update(c, o, 2, cond::AKEY_INSERT, b"d", vec![sv("a", b"2")])
            .wait()
            .unwrap_err()
            .der(),
        Der::Exist
    );
    assert_eq!(
        p.update(c, o, 2, cond::AKEY_UPDATE, b"d", vec![sv("b", b"2")])
            .wait()
            .unwrap_err()
            .der(),
        Der::Nonexist
    );
    p.update(c, o, 2, cond::AKEY_UPDATE, b"d", vec![sv("a", b"2")])
        .wait()
        .unwrap();
    let f = |flags, d: &str, a: &str| {
        p.fetch(
            c,
            o,
            5,
            flags,
            d.as_bytes(),
            &[FetchIod::Single { akey: a.into() }],
        )
        .wait()
    };
    assert_eq!(
        f(cond::DKEY_FETCH, "zz", "a").unwrap_err().der(),
        Der::Nonexist
    );
    assert_eq!(
        f(cond::AKEY_FETCH, "d", "zz").unwrap_err().der(),
        Der::Nonexist
    );
    assert!(f(cond::AKEY_FETCH | cond::DKEY_FETCH, "d", "a").is_ok());
    assert_eq!(
        p.update(Uuid::from_u128(99), o, 1, 0, b"d", vec![sv("a", b"1")])
            .wait()
            .unwrap_err()
            .der(),
        Der::Nonexist
    );
    assert_eq!(
        DaosErrno::rc(
            &p.update(Uuid::from_u128(99), o, 1, 0, b"d", vec![sv("a", b"1")])
                .wait()
                .unwrap_err()
        ),
        -1005
    );
}

#[test]
fn enumeration_pages_with_anchors_and_epoch_ranges() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    for i in 0..25u64 {
        let o = Oid::new(0, i);
        p.update(
            c,
            o,
            10 + i,
            0,
            format!("d{i:02}").as_bytes(),
            vec![sv("a", b"x"), sv("b", b"y")],
        )
        .wait()
        .unwrap();
        p.update(
            c,
            Oid::new(0, 3),
            100 + i,
            0,
            format!("k{i:02}").as_bytes(),
            vec![sv("a", b"x")],
        )
        .wait()
        .unwrap();
    }
    let mut a = Anchor::default();
    let mut objs = Vec::new();
    while !a.is_eof() {
        let page = p.list_objects(c, EpochRange::ALL, &mut a, 4).unwrap();
        assert!(page.len() <= 4);
        objs.extend(page);
    }
    assert_eq!(objs, (0..25).map(|i| Oid::new(0, i)).collect::<Vec<_>>());
    let mut a = Anchor::default();
    let mut dk = Vec::new();
    while !a.is_eof() {
        dk.extend(
            p.list_dkeys(c, Oid::new(0, 3), EpochRange::new(110, 115), &mut a, 3)
                .unwrap(),
        );
    }
    assert_eq!(
        dk,
        (10..=15)
            .map(|i| format!("k{i:02}").into_bytes())
            .collect::<Vec<_>>()
    );
    let mut a = Anchor::default();
    let ak = p
        .list_akeys(c, Oid::new(0, 4), b"d04", EpochRange::ALL, &mut a, 10)
        .unwrap();
    assert_eq!(ak, vec![b"a".to_vec(), b"b".to_vec()]);
    assert!(a.is_eof());
    p.punch_object(c, Oid::new(0, 4), 200).wait().unwrap();
    let mut a = Anchor::default();
    let objs = p.list_objects(c, EpochRange::ALL, &mut a, 100).unwrap();
    assert!(!objs.contains(&Oid::new(0, 4)));
}

#[test]
fn aggregation_discard_and_destroy_reclaim_space() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    let o = Oid::new(0, 1);
    p.cont_create(c).wait().unwrap();
    let v = |b: u8| vec![b; 64 * 1024];
    for e in 1..=5u64 {
        p.update(c, o, e, 0, b"d", vec![sv("a", &v(e as u8))])
            .wait()
            .unwrap();
    }
    assert_eq!(p.space().data_used, 5 * 64 * 1024);
    p.aggregate(c, 3).wait().unwrap();
    p.checkpoint().wait().unwrap(); // frees are released once the aggregation record is durable
    assert_eq!(p.space().data_used, 3 * 64 * 1024);
    assert_eq!(get(&p, c, o, 3, "d", "a"), Some(v(3)));
    assert_eq!(get(&p, c, o, 9, "d", "a"), Some(v(5)));
    p.discard(c, EpochRange::new(5, 5)).wait().unwrap();
    assert_eq!(get(&p, c, o, 9, "d", "a"), Some(v(4)));
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(p.space().data_used, 2 * 64 * 1024);
    assert_eq!(get(&p, c, o, 9, "d", "a"), Some(v(4)));
    p.cont_destroy(c).wait().unwrap();
    p.checkpoint().wait().unwrap();
    assert_eq!(p.space().data_used, 0);
    assert_eq!(
        p.fetch(
            c,
            o,
            9,
            0,
            b"d",
            &[FetchIod::Single {
                akey: b"a".to_vec()
            }]
        )
        .wait()
        .unwrap_err()
        .der(),
        Der::Nonexist
    );
}

#[test]
fn out_of_space_is_nospace_with_nothing_half_written() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(dir.path());
    cfg.data_size = 1 << 20;
    let p = VosPool::create(&cfg).unwrap();
    let c = Uuid::from_u128(1);
    let o = Oid::new(0, 1);
    p.cont_create(c).wait().unwrap();
    let v = vec![1u8; 300 * 1024];
    let mut ok = 0;
    let err = loop {
        match p
            .update(
                c,
                o,
                ok + 1,
                0,
                format!("d{ok}").as_bytes(),
                vec![sv("a", b"small"), sv("b", &v)],
            )
            .wait()
        {
            Ok(()) => ok += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(ok, 3);
    assert_eq!(err.der(), Der::Nospace, "{err}");
    // The failed update left nothing behind: not its small inline akey either.
    assert_eq!(get(&p, c, o, 100, "d3", "a"), None);
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(get(&p, c, o, 100, "d3", "a"), None);
    assert_eq!(get(&p, c, o, 100, "d2", "b"), Some(v));
}

#[test]
fn unsupported_classes_say_why() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(dir.path());
    cfg.bdev_class = "nvme".parse().unwrap();
    let e = VosPool::create(&cfg).unwrap_err();
    assert!(
        e.to_string()
            .contains("SPDK is not available on this platform"),
        "{e}"
    );
    assert_eq!(e.der(), Der::NotSupported);
    assert!("floppy".parse::<BdevClass>().is_err());
    if !cfg!(feature = "pmem") {
        let mut cfg = common::cfg(dir.path());
        cfg.scm_class = "dcpm".parse().unwrap();
        let e = VosPool::create(&cfg).unwrap_err();
        assert!(e.to_string().contains("pmem"), "{e}");
    }
}

#[test]
fn many_updates_in_flight_share_flushes() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    let pending: Vec<_> = (0..500u64)
        .map(|i| {
            p.update(
                c,
                Oid::new(0, i),
                1,
                0,
                b"d",
                vec![sv("a", &i.to_le_bytes())],
            )
        })
        .collect();
    for f in pending {
        f.wait().unwrap();
    }
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    let st = p.recovery_stats();
    assert_eq!(st.wal_records, 501);
    assert!(st.wal_batches < 501, "no group commit: {st:?}");
    for i in [0u64, 250, 499] {
        assert_eq!(
            get(&p, c, Oid::new(0, i), 1, "d", "a"),
            Some(i.to_le_bytes().to_vec())
        );
    }
}

#[test]
fn metadata_budget_is_enforced_and_reclaimed() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(dir.path());
    cfg.scm_size = 64 * 1024;
    let p = VosPool::create(&cfg).unwrap();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    let mut n = 0u64;
    let err = loop {
        match p
            .update(
                c,
                Oid::new(0, 1),
                n + 1,
                0,
                b"d",
                vec![sv("a", &[7u8; 1000])],
            )
            .wait()
        {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 1000, "budget never enforced");
    };
    assert_eq!(err.der(), Der::Nospace);
    assert!(err.to_string().contains("metadata"), "{err}");
    let s = p.space();
    assert!(
        s.meta_used <= s.meta_total && s.meta_used > 50 * 1024,
        "{s:?}"
    );
    // Aggregation merges the old versions and gives the budget back.
    p.aggregate(c, n).wait().unwrap();
    assert!(p.space().meta_used < 4 * 1024, "{:?}", p.space());
    p.update(
        c,
        Oid::new(0, 1),
        n + 1,
        0,
        b"d",
        vec![sv("a", &[8u8; 1000])],
    )
    .wait()
    .unwrap();
    assert_eq!(
        get(&p, c, Oid::new(0, 1), n + 1, "d", "a"),
        Some(vec![8u8; 1000])
    );
}

#[test]
fn wal_pre_zeroing_in_small_chunks_keeps_every_update() {
    // 8 KiB WAL chunks: nearly every batch claims or pre-zeroes a chunk, racing the other flusher.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(dir.path());
    cfg.wal_chunk = 8192;
    let p = VosPool::create(&cfg).unwrap();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    for round in 0..4u64 {
        let fs: Vec<_> = (0..200u64)
            .map(|i| {
                p.update(
                    c,
                    Oid::new(round, i),
                    1,
                    0,
                    b"d",
                    vec![sv("a", &vec![i as u8; 1000 + i as usize])],
                )
            })
            .collect();
        for f in fs {
            f.wait().unwrap();
        }
    }
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(p.recovery_stats().wal_records, 801);
    for round in 0..4u64 {
        for i in (0..200u64).step_by(37) {
            assert_eq!(
                get(&p, c, Oid::new(round, i), 1, "d", "a"),
                Some(vec![i as u8; 1000 + i as usize])
            );
        }
    }
}

#[test]
fn concurrent_writers_and_readers_from_many_threads() {
    let (_d, cfg, p) = common::new_pool();
    let p = std::sync::Arc::new(p);
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    let val =
        |t: u64, i: u64| vec![(t * 31 + i) as u8; if i.is_multiple_of(5) { 9000 } else { 40 }];
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut inflight = std::collections::VecDeque::new();
                for i in 0..150u64 {
                    inflight.push_back((
                        i,
                        p.update(c, Oid::new(t, i), 1, 0, b"d", vec![sv("a", &val(t, i))]),
                    ));
                    if inflight.len() == 8 {
                        let (j, f) = inflight.pop_front().unwrap();
                        f.wait().unwrap();
                        // Read-your-acknowledged-write from this thread while others keep writing.
                        assert_eq!(get(&p, c, Oid::new(t, j), 1, "d", "a"), Some(val(t, j)));
                    }
                }
                for (_, f) in inflight {
                    f.wait().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let p = std::sync::Arc::try_unwrap(p).unwrap();
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    for t in 0..4u64 {
        for i in (0..150u64).step_by(7) {
            assert_eq!(get(&p, c, Oid::new(t, i), 1, "d", "a"), Some(val(t, i)));
        }
    }
}

#[test]
fn fetch_in_flight_never_sees_an_extent_freed_and_reused_under_it() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    let o = Oid::new(0, 1);
    for round in 0..60u64 {
        let e = 10 * round + 1;
        let old = vec![round as u8; 64 * 1024];
        p.update(c, o, e, 0, b"d", vec![sv("a", &old)])
            .wait()
            .unwrap();
        p.update(c, o, e + 1, 0, b"d", vec![sv("a", &[0xee; 64 * 1024])])
            .wait()
            .unwrap();
        // Plan a disk read of the old version, then free its extent and write new data that
        // may land in the same place, all before waiting for the read.
        let read = p.fetch(
            c,
            o,
            e,
            0,
            b"d",
            &[FetchIod::Single {
                akey: b"a".to_vec(),
            }],
        );
        let agg = p.aggregate(c, e + 1);
        let reuse: Vec<_> = (0..4u64)
            .map(|k| {
                p.update(
                    c,
                    Oid::new(1, round * 4 + k),
                    e + 2,
                    0,
                    b"d",
                    vec![sv("a", &[0x55; 64 * 1024])],
                )
            })
            .collect();
        assert_eq!(
            read.wait().unwrap(),
            vec![Fetched::Single(Some(old))],
            "round {round}"
        );
        agg.wait().unwrap();
        for r in reuse {
            r.wait().unwrap();
        }
    }
}

#[test]
fn absurd_extents_are_invalid_not_a_crash() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    let o = Oid::new(0, 1);
    let upd = |r: Recx, n: usize| {
        p.update(
            c,
            o,
            1,
            0,
            b"d",
            vec![UpdateIod {
                akey: b"a".to_vec(),
                value: IodValue::Array {
                    rsize: 8,
                    extents: vec![(r, vec![0; n].into())],
                },
                flags: 0,
            }],
        )
        .wait()
    };
    assert_eq!(
        upd(Recx::new(u64::MAX, 2), 16).unwrap_err().der(),
        Der::Inval
    );
    assert_eq!(upd(Recx::new(0, 0), 0).unwrap_err().der(), Der::Inval);
    assert_eq!(upd(Recx::new(0, 2), 15).unwrap_err().der(), Der::Inval);
    let fetch = |r: Recx| {
        p.fetch(
            c,
            o,
            1,
            0,
            b"d",
            &[FetchIod::Array {
                akey: b"a".to_vec(),
                rsize: 8,
                recxs: vec![r],
            }],
        )
        .wait()
    };
    assert_eq!(fetch(Recx::new(0, 1 << 40)).unwrap_err().der(), Der::Inval);
    assert_eq!(
        fetch(Recx::new(u64::MAX - 1, 5)).unwrap_err().der(),
        Der::Inval
    );
    assert!(fetch(Recx::new(0, 4)).is_ok());
}
