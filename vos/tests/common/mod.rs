#![allow(dead_code)]
use daos_common::ids::Uuid;
use vos::{FetchIod, Fetched, Oid, PoolConfig, VosPool};

pub fn cfg(dir: &std::path::Path) -> PoolConfig {
    let mut c = PoolConfig::new(dir.join("scm"), dir.join("bdev"));
    c.data_size = 64 << 20;
    c.wal_chunk = 1 << 20;
    // These tests run the two-batches-in-flight path; the default (1 flusher) runs in the unit
    // tests and in the crash test's `file` rounds (its `kdev` rounds use 2).
    c.flushers = 2;
    c
}

pub fn new_pool() -> (tempfile::TempDir, PoolConfig, VosPool) {
    // /var/tmp is a real ext4 path here (O_DIRECT alignment is enforced there, unlike tmpfs).
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let c = cfg(dir.path());
    let p = VosPool::create(&c).unwrap();
    (dir, c, p)
}

/// The single value of object `i`, dkey `d`, akey `a`, as a fetch at `epoch` sees it.
pub fn get_single(p: &VosPool, c: Uuid, i: u64, epoch: u64) -> Option<Vec<u8>> {
    match p
        .fetch(
            c,
            Oid::new(0, i),
            epoch,
            0,
            b"d",
            &[FetchIod::Single {
                akey: b"a".to_vec(),
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
