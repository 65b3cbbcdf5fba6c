//! scm class `dcpm` (feature `pmem`): the WAL is a libpmem-mapped file on the scm path. Runs on
//! a tmpfs file with `PMEM_IS_PMEM_FORCE=1` (set for a re-executed copy of this test, because
//! libpmem reads it when the library initialises).
#![cfg(feature = "pmem")]

mod common;

use std::process::Command;

use uuid::Uuid;
use vos::*;

fn get(p: &VosPool, c: Uuid, i: u64) -> Option<Vec<u8>> {
    common::get_single(p, c, i, 10)
}

fn val(i: u64) -> Vec<u8> {
    vec![i as u8; if i.is_multiple_of(2) { 100 } else { 10_000 }]
}

#[test]
fn dcpm_wal_survives_reopen_and_checkpoint() {
    if std::env::var("PMEM_IS_PMEM_FORCE").is_err() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "dcpm_wal_survives_reopen_and_checkpoint",
                "--nocapture",
            ])
            .env("PMEM_IS_PMEM_FORCE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
        return;
    }
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let disk = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(disk.path());
    cfg.scm_class = "dcpm".parse().unwrap();
    cfg.scm_path = shm.path().join("scm");
    cfg.wal_checkpoint_bytes = 1 << 20;
    let p = VosPool::create(&cfg).unwrap();
    let c = Uuid::from_u128(3);
    p.cont_create(c).wait().unwrap();
    for half in [0..200u64, 200..400] {
        let first = half.start == 0;
        let pending: Vec<_> = half
            .map(|i| {
                p.update(
                    c,
                    Oid::new(0, i),
                    1,
                    0,
                    b"d",
                    vec![UpdateIod {
                        akey: b"a".to_vec(),
                        value: IodValue::Single(val(i).into()),
                        flags: 0,
                    }],
                )
            })
            .collect();
        for f in pending {
            f.wait().unwrap();
        }
        if first {
            p.checkpoint().wait().unwrap();
        }
    }
    p.close().unwrap();
    let wal_files: Vec<_> = std::fs::read_dir(&cfg.scm_path)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        wal_files
            .iter()
            .any(|n| n.to_str().unwrap().starts_with("wal.")),
        "{wal_files:?}"
    );
    assert!(!std::fs::read_dir(&cfg.bdev_path).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_str()
        .unwrap()
        .starts_with("wal.")));
    let p = VosPool::open(&cfg).unwrap();
    assert!(
        p.recovery_stats().ckpt_gen > 1 && p.recovery_stats().wal_records > 0,
        "no checkpoint happened: {:?}",
        p.recovery_stats()
    );
    for i in [0u64, 1, 199, 398, 399] {
        assert_eq!(get(&p, c, i), Some(val(i)));
    }
}
