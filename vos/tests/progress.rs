//! `VosPool::progress`: a caller drives group commit of small updates on its own thread; batches
//! with data-file writes stay with the flusher; nothing is lost either way.

mod common;

use std::time::{Duration, Instant};

use uuid::Uuid;
use vos::*;

fn upd(p: &VosPool, c: Uuid, i: u64, len: usize) -> Completion<Result<(), VosError>> {
    let iod = UpdateIod {
        akey: b"a".to_vec(),
        value: IodValue::Single(vec![(i % 251) as u8; len].into()),
        flags: 0,
    };
    p.update(c, Oid::new(0, i), 1, 0, b"d", vec![iod])
}

#[test]
fn progress_commits_small_updates_on_the_calling_thread() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    // A call marks this thread as driving, so the flusher leaves the next batch to it. Should
    // this thread stall past the 1 ms grace, the flusher may take a first part of the batch
    // and progress the rest: the last update is always progress's, and done when it returns.
    let mut done_here = false;
    for round in 0..20u64 {
        assert!(!p.progress() || round > 0, "nothing queued yet");
        let fs: Vec<_> = (0..16).map(|i| upd(&p, c, round * 16 + i, 100)).collect();
        if p.progress() {
            assert!(
                fs.last().unwrap().is_done(),
                "progress returned before completing its batch"
            );
            done_here = true;
        }
        for f in fs {
            f.wait().unwrap();
        }
        if done_here {
            break;
        }
    }
    assert!(done_here, "progress never took a batch");
    // A batch with a data-file write is left to the flusher thread.
    let f = upd(&p, c, 1000, 20_000);
    assert!(!p.progress(), "progress took a batch with data-file writes");
    f.wait().unwrap();
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(
        common::get_single(&p, c, 1000, 1),
        Some(vec![(1000 % 251) as u8; 20_000])
    );
    assert_eq!(common::get_single(&p, c, 0, 1), Some(vec![0u8; 100]));
    p.close().unwrap();
}

#[test]
fn a_caller_that_stops_driving_only_delays_its_updates() {
    let (_d, _cfg, p) = common::new_pool();
    let c = Uuid::from_u128(2);
    p.cont_create(c).wait().unwrap();
    assert!(!p.progress()); // now the flusher leaves small batches to this caller for a while
    let t = Instant::now();
    upd(&p, c, 1, 100).wait().unwrap(); // ... which never calls progress again
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    p.close().unwrap();
}

#[test]
fn updates_from_a_progress_driving_thread_and_plain_waiters_all_land() {
    let (_d, cfg, p) = common::new_pool();
    let p = std::sync::Arc::new(p);
    let c = Uuid::from_u128(3);
    p.cont_create(c).wait().unwrap();
    let n = 2000u64;
    // One thread keeps 16 in flight and drives progress; another waits on each of its own.
    let p2 = p.clone();
    let driver = std::thread::spawn(move || {
        let mut inflight = std::collections::VecDeque::new();
        for i in 0..n {
            inflight.push_back(upd(&p2, c, i, if i % 50 == 0 { 9000 } else { 64 }));
            while inflight.len() >= 16 {
                p2.progress();
                while inflight.front().is_some_and(|f| f.is_done()) {
                    inflight.pop_front().unwrap().wait().unwrap();
                }
            }
        }
        for f in inflight {
            while !f.is_done() {
                p2.progress();
            }
            f.wait().unwrap();
        }
    });
    for i in n..n + 300 {
        upd(&p, c, i, 64).wait().unwrap();
    }
    driver.join().unwrap();
    let p = std::sync::Arc::try_unwrap(p).unwrap();
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    for i in (0..n + 300).step_by(7) {
        let len = if i < n && i % 50 == 0 { 9000 } else { 64 };
        assert_eq!(
            common::get_single(&p, c, i, 1),
            Some(vec![(i % 251) as u8; len]),
            "object {i}"
        );
    }
    p.close().unwrap();
}

#[test]
fn a_failed_flush_on_the_calling_thread_backs_out_like_one_on_the_flusher() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(dir.path());
    let faults = std::sync::Arc::new(Faults::default());
    cfg.faults = Some(faults.clone());
    let p = VosPool::create(&cfg).unwrap();
    let c = Uuid::from_u128(4);
    p.cont_create(c).wait().unwrap();
    upd(&p, c, 1, 100).wait().unwrap(); // value (1 % 251) x 100, durable
                                        // The WAL sync of the next batch fails, whichever thread writes it.
    faults.arm(FaultPoint::WalSync, 1);
    assert!(!p.progress());
    let iod = UpdateIod {
        akey: b"a".to_vec(),
        value: IodValue::Single(vec![77; 100].into()),
        flags: 0,
    };
    let f = p.update(c, Oid::new(0, 1), 2, 0, b"d", vec![iod]);
    p.progress();
    let e = f.wait().unwrap_err();
    assert_eq!(daos_common::DaosErrno::der(&e), daos_common::Der::Io, "{e}");
    // Backed out: the fetch sees the durable value, later updates are refused, reopen agrees.
    assert_eq!(common::get_single(&p, c, 1, 5), Some(vec![1u8; 100]));
    assert!(upd(&p, c, 2, 100).wait().is_err());
    assert!(!p.progress());
    assert!(p.close().is_err(), "close reports the failure");
    cfg.faults = None;
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(common::get_single(&p, c, 1, 5), Some(vec![1u8; 100]));
    p.close().unwrap();
}
