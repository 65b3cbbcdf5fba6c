//! Checkpoints copy the index under the lock and encode/write it outside; batches keep flowing
//! into the old WAL meanwhile. Records logged during a checkpoint live in the old WAL's tail and
//! must survive both a clean reopen and a crash image taken right after.

mod common;

use std::path::Path;

use uuid::Uuid;
use vos::*;

fn sv(v: &[u8]) -> Vec<UpdateIod> {
    vec![UpdateIod {
        akey: b"a".to_vec(),
        value: IodValue::Single(v.into()),
        flags: 0,
    }]
}

fn get(p: &VosPool, c: Uuid, i: u64) -> Option<Vec<u8>> {
    common::get_single(p, c, i, u64::MAX)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn updates_logged_during_a_checkpoint_survive_reopen_and_a_crash_image() {
    let (dir, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(3);
    p.cont_create(c).wait().unwrap();
    let n = 20_000u64;
    let want = |i: u64, round: u64| format!("{i}-{round}").into_bytes();
    let fs: Vec<_> = (0..n)
        .map(|i| p.update(c, Oid::new(0, i), 1, 0, b"d", sv(&want(i, 0))))
        .collect();
    for f in fs {
        f.wait().unwrap();
    }
    // Updates submitted right behind the checkpoint request: at least some land after the
    // snapshot (bounded retries; each round rewrites objects 0..500 at a higher epoch).
    let mut round = 0;
    let stats = loop {
        round += 1;
        assert!(round <= 20, "no update ever landed during a checkpoint");
        let ck = p.checkpoint();
        let fs: Vec<_> = (0..500)
            .map(|i| p.update(c, Oid::new(0, i), 1 + round, 0, b"d", sv(&want(i, round))))
            .collect();
        for f in fs {
            f.wait().unwrap();
        }
        ck.wait().unwrap();
        let st = p.last_checkpoint();
        if st.tail_records > 0 {
            break st;
        }
    };
    assert!(stats.bytes > 0 && stats.encode > std::time::Duration::ZERO);
    let check = |p: &VosPool, what: &str| {
        for i in 0..n {
            let r = if i < 500 { round } else { 0 };
            assert_eq!(get(p, c, i), Some(want(i, r)), "object {i} {what}");
        }
    };
    // One more update: it goes to the new WAL.
    p.update(c, Oid::new(0, n), 1, 0, b"d", sv(&want(n, 0)))
        .wait()
        .unwrap();
    check(&p, "before reopen");
    // A crash image: the files as they are now (every update above is acknowledged).
    let image = tempfile::tempdir_in("/var/tmp").unwrap();
    copy_dir(&cfg.bdev_path, &image.path().join("bdev"));
    let wals = std::fs::read_dir(&cfg.bdev_path)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("wal.")
        })
        .count();
    assert_eq!(
        wals, 2,
        "the previous WAL keeps the records logged during the checkpoint"
    );
    let icfg = common::cfg(image.path());
    let q = VosPool::open(&icfg).unwrap();
    assert!(q.recovery_stats().wal_records >= stats.tail_records);
    check(&q, "in the crash image");
    q.close().unwrap();

    // Damage the last batch of the old WAL in a second image: the new WAL has batches, so
    // that is corruption (the switch waited for every old batch), not a torn tail.
    let image2 = tempfile::tempdir_in("/var/tmp").unwrap();
    copy_dir(&cfg.bdev_path, &image2.path().join("bdev"));
    let mut olds: Vec<_> = std::fs::read_dir(image2.path().join("bdev"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal."))
        .collect();
    olds.sort();
    let old = &olds[0];
    let bytes = std::fs::read(old).unwrap();
    let last = (0..bytes.len() / 4096)
        .rev()
        .map(|b| b * 4096)
        .find(|o| &bytes[*o..*o + 4] == b"VWAL")
        .unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(old).unwrap();
        f.write_all_at(&[bytes[last + 60] ^ 0x5a], (last + 60) as u64)
            .unwrap();
    }
    let e = VosPool::open(&common::cfg(image2.path())).unwrap_err();
    assert!(matches!(e, VosError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains(old.to_str().unwrap()), "{e}");
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    check(&p, "after reopen");
    // The next checkpoint retires the old WAL.
    p.checkpoint().wait().unwrap();
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    check(&p, "after a second checkpoint");
    p.close().unwrap();
    drop(dir);
}

#[test]
fn updates_are_acknowledged_while_a_checkpoint_is_being_made() {
    // One flusher (the default): it must not be the thread that makes the checkpoint.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(dir.path());
    cfg.flushers = 1;
    let faults = std::sync::Arc::new(Faults::default());
    cfg.faults = Some(faults.clone());
    let p = std::sync::Arc::new(VosPool::create(&cfg).unwrap());
    let c = Uuid::from_u128(5);
    p.cont_create(c).wait().unwrap();
    let want = |i: u64, e: u64| format!("{i}@{e}").into_bytes();
    for i in 0..1000 {
        p.update(c, Oid::new(0, i), 1, 0, b"d", sv(&want(i, 1)))
            .wait()
            .unwrap();
    }
    faults.hold_checkpoints(true);
    let ck = p.checkpoint();
    let t0 = std::time::Instant::now();
    while !faults.checkpoint_waiting() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "checkpoint never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The checkpoint is under way (held): updates must still be acknowledged.
    let (tx, rx) = std::sync::mpsc::channel();
    let p2 = p.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..300 {
            let r = p2
                .update(c, Oid::new(0, i), 2, 0, b"d", sv(&want(i, 2)))
                .wait();
            tx.send(r.is_ok()).unwrap();
        }
    });
    for i in 0..300 {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(ok) => assert!(ok, "update {i} failed"),
            Err(_) => {
                faults.hold_checkpoints(false);
                panic!("update {i} not acknowledged while a checkpoint was being made");
            }
        }
    }
    writer.join().unwrap();
    assert!(faults.checkpoint_waiting(), "the checkpoint was still held");
    faults.hold_checkpoints(false);
    ck.wait().unwrap();
    assert!(p.last_checkpoint().tail_records >= 300);
    let p = std::sync::Arc::try_unwrap(p).unwrap();
    p.close().unwrap();
    // Reopen: the checkpoint plus the old WAL's tail (read from where the checkpoint says the
    // records after its snapshot start) give every acknowledged value.
    cfg.faults = None;
    let p = VosPool::open(&cfg).unwrap();
    assert!(
        p.recovery_stats().wal_records >= 300,
        "{:?}",
        p.recovery_stats()
    );
    for i in 0..1000 {
        let e = if i < 300 { 2 } else { 1 };
        assert_eq!(get(&p, c, i), Some(want(i, e)), "object {i}");
    }
    p.close().unwrap();
}
