#![allow(dead_code)]
use vos::{PoolConfig, VosPool};

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
