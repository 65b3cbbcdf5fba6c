//! Flush failures injected at the flusher's real I/O sites (`PoolConfig::faults`): the failed
//! update returns DER_IO, a fetch afterwards returns the OLD value, the pool is read-only, and a
//! reopen agrees with what the fetches returned.

mod common;

use std::sync::Arc;

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

fn get(p: &VosPool, c: Uuid, o: Oid, d: &str, a: &str) -> Option<Vec<u8>> {
    match p
        .fetch(
            c,
            o,
            1000,
            0,
            d.as_bytes(),
            &[FetchIod::Single { akey: a.into() }],
        )
        .wait()
        .expect("fetch after a failed flush is served from the durable state")
        .remove(0)
    {
        Fetched::Single(v) => v,
        other => panic!("{other:?}"),
    }
}

fn faulty_pool() -> (tempfile::TempDir, PoolConfig, VosPool, Arc<Faults>) {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(dir.path());
    let faults = Arc::new(Faults::default());
    cfg.faults = Some(faults.clone());
    let p = VosPool::create(&cfg).unwrap();
    (dir, cfg, p, faults)
}

/// One failed update at each fault point, for a small (inline) and a large (data-file) value.
fn failed_update_is_backed_out(point: FaultPoint, size: usize) {
    let (_d, mut cfg, p, faults) = faulty_pool();
    let c = Uuid::from_u128(1);
    let o = Oid::new(0, 9);
    p.cont_create(c).wait().unwrap();
    let old = vec![1u8; size];
    let new = vec![2u8; size];
    p.update(c, o, 10, 0, b"d", vec![sv("a", &old)])
        .wait()
        .unwrap();

    faults.arm(point, 1);
    let e = p
        .update(c, o, 20, 0, b"d", vec![sv("a", &new), sv("fresh", b"x")])
        .wait()
        .unwrap_err();
    assert_eq!(e.der(), Der::Io, "{point:?}: {e}");
    assert!(e.to_string().contains("read-only"), "{e}");
    // The failed update is not visible: old value, the new akey does not exist.
    assert_eq!(get(&p, c, o, "d", "a"), Some(old.clone()), "{point:?}");
    assert_eq!(get(&p, c, o, "d", "fresh"), None, "{point:?}");
    let akeys = p
        .list_akeys(c, o, b"d", EpochRange::ALL, &mut Anchor::default(), 10)
        .unwrap();
    assert_eq!(akeys, vec![b"a".to_vec()]);
    // Read-only from now on: later updates fail clearly, nothing is applied.
    let e2 = p
        .update(c, o, 30, 0, b"d", vec![sv("a", b"later")])
        .wait()
        .unwrap_err();
    assert_eq!(e2.der(), Der::Io, "{e2}");
    assert_eq!(get(&p, c, o, "d", "a"), Some(old.clone()));
    assert!(p.close().is_err(), "close reports the failure");

    // Reopen (no fault armed) agrees: the failed update never happened; writes work again.
    cfg.faults = None;
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(get(&p, c, o, "d", "a"), Some(old), "{point:?} after reopen");
    assert_eq!(get(&p, c, o, "d", "fresh"), None);
    p.update(c, o, 40, 0, b"d", vec![sv("a", &new)])
        .wait()
        .unwrap();
    assert_eq!(get(&p, c, o, "d", "a"), Some(new));
    p.close().unwrap();
}

#[test]
fn failed_wal_write_is_backed_out() {
    failed_update_is_backed_out(FaultPoint::WalWrite, 64);
}

#[test]
fn failed_wal_fdatasync_is_backed_out_and_erased_from_the_log() {
    // The batch bytes reach the WAL file before the sync fails: reopen must not replay them.
    failed_update_is_backed_out(FaultPoint::WalSync, 64);
    failed_update_is_backed_out(FaultPoint::WalSync, 20_000);
}

#[test]
fn failed_data_file_write_is_backed_out() {
    failed_update_is_backed_out(FaultPoint::DataWrite, 20_000);
}

#[test]
fn failure_with_many_updates_in_flight_keeps_exactly_the_acknowledged_ones() {
    let (_d, mut cfg, p, faults) = faulty_pool();
    let c = Uuid::from_u128(2);
    p.cont_create(c).wait().unwrap();
    let n = 300u64;
    let key = |i: u64| format!("k{i}");
    for i in 0..n {
        p.update(c, Oid::new(0, i), 5, 0, b"d", vec![sv(&key(i), b"old")])
            .wait()
            .unwrap();
    }
    // Keep 16 in flight; arm the fault part-way, while batches are being written.
    let mut inflight = std::collections::VecDeque::new();
    let mut acked = vec![None; n as usize];
    for i in 0..n {
        if i == n / 2 {
            faults.arm(FaultPoint::WalSync, 1);
        }
        let f = p.update(c, Oid::new(0, i), 7, 0, b"d", vec![sv(&key(i), b"new")]);
        inflight.push_back((i, f));
        if inflight.len() >= 16 {
            let (j, f) = inflight.pop_front().unwrap();
            acked[j as usize] = Some(f.wait().is_ok());
        }
    }
    for (j, f) in inflight {
        acked[j as usize] = Some(f.wait().is_ok());
    }
    let ok = acked.iter().filter(|a| **a == Some(true)).count();
    assert!(ok >= (n / 2 - 16) as usize && ok < n as usize, "ok {ok}");
    let check = |p: &VosPool, when: &str| {
        for i in 0..n {
            let want: &[u8] = if acked[i as usize] == Some(true) {
                b"new"
            } else {
                b"old"
            };
            assert_eq!(
                get(p, c, Oid::new(0, i), "d", &key(i)).as_deref(),
                Some(want),
                "key {i} {when}"
            );
        }
    };
    check(&p, "after the failure");
    drop(p);
    cfg.faults = None;
    let p = VosPool::open(&cfg).unwrap();
    check(&p, "after reopen");
    p.close().unwrap();
}

fn fetch_a(p: &VosPool, c: Uuid, o: Oid) -> Completion<Result<Vec<Fetched>, VosError>> {
    p.fetch(
        c,
        o,
        1000,
        0,
        b"d",
        &[FetchIod::Single {
            akey: b"a".to_vec(),
        }],
    )
}

#[test]
fn fetch_racing_a_failing_update_never_returns_its_value() {
    for (point, size) in [(FaultPoint::WalSync, 64), (FaultPoint::DataWrite, 20_000)] {
        let (_d, _cfg, p, faults) = faulty_pool();
        let c = Uuid::from_u128(4);
        let o = Oid::new(0, 4);
        p.cont_create(c).wait().unwrap();
        let old = vec![1u8; size];
        p.update(c, o, 10, 0, b"d", vec![sv("a", &old)])
            .wait()
            .unwrap();
        faults.arm(point, 1);
        // Issued while the update is queued or in flight (applied to the index, not durable).
        let u = p.update(c, o, 20, 0, b"d", vec![sv("a", &vec![2u8; size])]);
        let f = fetch_a(&p, c, o);
        assert!(u.wait().is_err());
        match f.wait() {
            Ok(v) => assert_eq!(v, vec![Fetched::Single(Some(old.clone()))], "{point:?}"),
            Err(e) => assert_eq!(e.der(), Der::Io, "{e}"),
        }
        assert_eq!(get(&p, c, o, "d", "a"), Some(old), "{point:?}");
    }
}

#[test]
fn fetch_of_an_unacknowledged_update_waits_until_it_is_durable() {
    let (_d, _cfg, p, _faults) = faulty_pool();
    let c = Uuid::from_u128(5);
    let o = Oid::new(0, 5);
    p.cont_create(c).wait().unwrap();
    for i in 0..50u8 {
        let u = p.update(c, o, 10 + i as u64, 0, b"d", vec![sv("a", &[i; 100])]);
        let f = fetch_a(&p, c, o);
        let got = f.wait().unwrap();
        // The fetch saw the new value, so the update must already be acknowledged.
        assert_eq!(got, vec![Fetched::Single(Some(vec![i; 100]))]);
        assert!(
            u.is_done(),
            "fetch answered before the update it shows was durable"
        );
        u.wait().unwrap();
    }
    // A fetch of an object with nothing in flight is not delayed by another object's update.
    let other = p.update(c, Oid::new(0, 6), 10, 0, b"d", vec![sv("a", b"x")]);
    assert_eq!(
        fetch_a(&p, c, o).wait().unwrap(),
        vec![Fetched::Single(Some(vec![49; 100]))]
    );
    other.wait().unwrap();
}

#[test]
fn enumeration_waits_for_durability_and_never_lists_a_backed_out_key() {
    let (_d, _cfg, p, faults) = faulty_pool();
    let c = Uuid::from_u128(7);
    let o = Oid::new(0, 7);
    p.cont_create(c).wait().unwrap();
    let akeys = |p: &VosPool| p.list_akeys(c, o, b"d", EpochRange::ALL, &mut Anchor::default(), 10);
    let objects = |p: &VosPool| p.list_objects(c, EpochRange::ALL, &mut Anchor::default(), 10);
    // Success: a listing issued right behind an update waits for it and shows it.
    let u = p.update(c, o, 10, 0, b"d", vec![sv("a", b"1")]);
    assert_eq!(akeys(&p).unwrap(), vec![b"a".to_vec()]);
    u.wait().unwrap();
    let u = p.update(c, Oid::new(0, 8), 10, 0, b"d", vec![sv("a", b"1")]);
    assert_eq!(objects(&p).unwrap().len(), 2);
    u.wait().unwrap();
    // Failure: the new akey and object are never listed.
    faults.arm(FaultPoint::WalSync, 1);
    let u = p.update(c, o, 20, 0, b"d", vec![sv("fresh", b"2")]);
    let v = p.update(c, Oid::new(0, 9), 20, 0, b"d", vec![sv("a", b"2")]);
    match akeys(&p) {
        Ok(list) => assert_eq!(list, vec![b"a".to_vec()]),
        Err(e) => assert_eq!(e.der(), Der::Io, "{e}"),
    }
    match objects(&p) {
        Ok(list) => assert_eq!(list.len(), 2),
        Err(e) => assert_eq!(e.der(), Der::Io, "{e}"),
    }
    assert!(u.wait().is_err() && v.wait().is_err());
    assert_eq!(akeys(&p).unwrap(), vec![b"a".to_vec()]);
    assert_eq!(objects(&p).unwrap().len(), 2);
}
