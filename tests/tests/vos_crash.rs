//! Crash test: a child updates in a loop and prints each acknowledged update; the parent kills it
//! with SIGKILL after a random number of acks, reopens the pool and checks that every
//! acknowledged update is readable with its exact bytes and that nothing else appears torn.

use std::process::Command;
use std::time::{Duration, Instant};

use tests::ChildGuard;
use vos::{Anchor, EpochRange, FetchIod, Fetched, Oid, VosPool};

#[path = "../src/bin/vos_crash_child.rs"]
#[allow(dead_code)]
mod child;

#[test]
fn acknowledged_updates_survive_sigkill() {
    crash_rounds(false, 50);
}

#[test]
fn acknowledged_updates_survive_sigkill_on_kdev() {
    crash_rounds(true, 25);
}

fn crash_rounds(kdev: bool, max_rounds: u64) {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let bin = env!("CARGO_BIN_EXE_vos_crash_child");
    let cfg = child::config(dir.path(), kdev);
    if kdev {
        std::fs::File::create(&cfg.bdev_path)
            .unwrap()
            .set_len(256 << 20)
            .unwrap();
    }
    let cont = daos_common::ids::Uuid::from_u128(42);
    {
        let p = VosPool::create(&cfg).unwrap();
        p.cont_create(cont).wait().unwrap();
        p.close().unwrap();
    }
    let started = Instant::now();
    let mut acked_total = 0u64;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
    let mut rounds = 0;
    let mut all_acked = Vec::new();
    let (mut max_gen, mut torn_rounds) = (0u64, 0u32);
    for round in 0..max_rounds {
        if started.elapsed() > Duration::from_secs(90) {
            break; // bounded total time on a slow machine; at least the rounds so far are checked
        }
        rounds += 1;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let want = 1 + seed % 60;
        let log = dir.path().join(format!("child{round}.log"));
        let mut cmd = Command::new(bin);
        cmd.arg(dir.path()).arg(round.to_string());
        if kdev {
            cmd.arg("kdev");
        }
        let mut child = ChildGuard::spawn("vos_crash_child", cmd, &log).unwrap();
        child
            .wait_for_line("READY", Duration::from_secs(30))
            .unwrap();
        // The line read includes its newline, so "ACK r 1\n" does not match "ACK r 10".
        child
            .wait_for_line(
                &format!("ACK {round} {}\n", want - 1),
                Duration::from_secs(30),
            )
            .unwrap();
        child.signal(libc::SIGKILL);
        child
            .wait_timeout(Duration::from_secs(10))
            .expect("child exits after SIGKILL");
        let acked: Vec<u64> = child
            .log_text()
            .lines()
            .filter_map(|l| {
                l.strip_prefix(&format!("ACK {round} "))
                    .map(|n| n.parse().unwrap())
            })
            .collect();
        assert!(acked.len() as u64 >= want);
        acked_total += acked.len() as u64;
        all_acked.extend(acked.iter().map(|i| Oid::new(round, *i)));

        let pool =
            VosPool::open(&cfg).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let st = pool.recovery_stats();
        max_gen = max_gen.max(st.ckpt_gen);
        torn_rounds += (st.torn_bytes > 0) as u32;
        for &i in &acked {
            let got = pool
                .fetch(
                    cont,
                    Oid::new(round, i),
                    round + 1,
                    0,
                    b"d",
                    &[FetchIod::Single {
                        akey: b"v".to_vec(),
                    }],
                )
                .wait();
            assert_eq!(
                got.unwrap(),
                vec![Fetched::Single(Some(child::value(round, i)))],
                "round {round} update {i} lost or wrong"
            );
        }
        // Nothing torn: every object that exists holds exactly its value, and every update
        // acknowledged in any round so far is still there.
        let mut a = Anchor::default();
        let mut listed = std::collections::HashSet::new();
        while !a.is_eof() {
            for oid in pool
                .list_objects(cont, EpochRange::ALL, &mut a, 1000)
                .unwrap()
            {
                listed.insert(oid);
                let got = pool
                    .fetch(
                        cont,
                        oid,
                        u64::MAX,
                        0,
                        b"d",
                        &[FetchIod::Single {
                            akey: b"v".to_vec(),
                        }],
                    )
                    .wait()
                    .unwrap();
                assert_eq!(
                    got,
                    vec![Fetched::Single(Some(child::value(oid.hi, oid.lo)))],
                    "object {oid:?} torn"
                );
            }
        }
        let lost: Vec<_> = all_acked.iter().filter(|o| !listed.contains(o)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged updates lost: {lost:?}"
        );
        pool.close().unwrap();
    }
    eprintln!(
        "vos crash test (kdev: {kdev}): {rounds} rounds, {acked_total} acknowledged updates verified, \
         {torn_rounds} reopens discarded a torn WAL tail, checkpoint generation reached {max_gen}, {:?}",
        started.elapsed()
    );
    assert!(rounds >= 10, "too few rounds ran: {rounds}");
    assert!(
        max_gen > 1,
        "no checkpoint happened during the crash rounds"
    );
}
