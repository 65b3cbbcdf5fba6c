//! A pool on a file system too small for it: create fails with DER_NOSPACE naming the data file
//! or the WAL (both are reserved at create), leaves nothing that blocks a retry, and a pool that
//! fits works. A file system that fills up while the pool runs: checkpoints and WAL growth fail,
//! updates get DER_NOSPACE (never a read-only pool), every acknowledged update stays readable,
//! and updates are taken again once space is freed. Runs on a real ext4 file system on a loop
//! device (root); skipped without.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use daos_common::{DaosErrno, Der};
use uuid::Uuid;
use vos::*;

/// A small ext4 file system mounted for the test's duration; unmounted (and its loop device
/// released) on drop.
struct SmallFs {
    mnt: tempfile::TempDir,
    _img: tempfile::TempDir,
}

impl SmallFs {
    fn new(mib: u64) -> Option<SmallFs> {
        let img_dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let img = img_dir.path().join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&img)
            .output();
        if !matches!(&mkfs, Ok(o) if o.status.success()) {
            eprintln!("SKIP: mkfs.ext4 unavailable ({mkfs:?})");
            return None;
        }
        let mnt = tempfile::tempdir_in("/var/tmp").unwrap();
        let mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(mnt.path())
            .output();
        if !matches!(&mount, Ok(o) if o.status.success()) {
            eprintln!(
                "SKIP: cannot loop-mount a file system ({mount:?}); needs root and loop devices"
            );
            return None;
        }
        Some(SmallFs { mnt, _img: img_dir })
    }

    fn path(&self) -> PathBuf {
        self.mnt.path().to_path_buf()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.mnt.path()).status();
    }
}

fn cfg(bdev: &Path, scm: &Path, data_size: u64) -> PoolConfig {
    let mut c = PoolConfig::new(scm, bdev);
    c.data_size = data_size;
    c.wal_chunk = 1 << 20;
    c.wal_checkpoint_bytes = 8 << 20; // WAL reservation: 8 + 2 MiB
    c
}

#[test]
fn a_pool_larger_than_its_file_system_is_nospace_at_create() {
    let Some(fs) = SmallFs::new(48) else {
        return;
    };
    let scm = tempfile::tempdir().unwrap();
    let bdev = fs.path().join("pool");
    let e = VosPool::create(&cfg(&bdev, scm.path(), 256 << 20)).unwrap_err();
    assert_eq!(e.der(), Der::Nospace, "{e}");
    assert!(
        e.to_string()
            .contains(&*bdev.join("data").to_string_lossy()),
        "names the data file: {e}"
    );
    // A data file that fits but a WAL reservation that does not: NOSPACE naming the WAL file,
    // and nothing left behind either.
    let mut big_wal = cfg(&bdev, scm.path(), 16 << 20);
    big_wal.wal_checkpoint_bytes = 64 << 20;
    let e = VosPool::create(&big_wal).unwrap_err();
    assert_eq!(e.der(), Der::Nospace, "{e}");
    assert!(e.to_string().contains("wal."), "names the WAL file: {e}");
    let left: Vec<_> = std::fs::read_dir(&bdev).unwrap().flatten().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    // A pool that fits is created and works.
    let c = cfg(&bdev, scm.path(), 16 << 20);
    let p = VosPool::create(&c).unwrap();
    let cont = Uuid::from_u128(1);
    p.cont_create(cont).wait().unwrap();
    let v = vec![0x5au8; 64 << 10];
    p.update(
        cont,
        Oid::new(0, 1),
        1,
        0,
        b"d",
        vec![UpdateIod {
            akey: b"a".to_vec(),
            value: IodValue::Single(v.clone().into()),
            flags: 0,
        }],
    )
    .wait()
    .unwrap();
    p.close().unwrap();
    let p = VosPool::open(&c).unwrap();
    assert_eq!(common::get_single(&p, cont, 1, 1), Some(v));
    p.close().unwrap();
}

/// Fills the file system at `dir` up to all but `leave` bytes with a file, which it returns.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    use std::io::Write;
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let block = vec![0xa5u8; 1 << 20];
    let mut len = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n as u64,
        }
    }
    f.sync_all().unwrap();
    f.set_len(len.saturating_sub(leave)).unwrap();
    f.sync_all().unwrap();
    p
}

/// One update of object `i` with a 2000-byte value (inline: it goes to the WAL only).
fn put(p: &VosPool, cont: Uuid, i: u64) -> Completion<std::result::Result<(), VosError>> {
    p.update(
        cont,
        Oid::new(0, i),
        1,
        0,
        b"d",
        vec![UpdateIod {
            akey: b"a".to_vec(),
            value: IodValue::Single(vec![(i % 251) as u8; 2000].into()),
            flags: 0,
        }],
    )
}

#[test]
fn a_file_system_that_fills_up_refuses_updates_with_nospace_until_space_is_freed() {
    // One flusher (the default) and two (two batches in flight when the WAL stops growing).
    for flushers in [1, 2] {
        fills_up(flushers);
    }
}

fn fills_up(flushers: usize) {
    let Some(fs) = SmallFs::new(48) else {
        return;
    };
    let scm = tempfile::tempdir().unwrap();
    let bdev = fs.path().join("pool");
    let mut c = cfg(&bdev, scm.path(), 8 << 20);
    c.wal_checkpoint_bytes = 2 << 20; // WAL reservation 2 + 2 MiB; checkpoints from 2 MiB on
    c.flushers = flushers;
    let p = VosPool::create(&c).unwrap();
    let cont = Uuid::from_u128(1);
    p.cont_create(cont).wait().unwrap();
    // Room for a checkpoint file, not for the next WAL's reservation nor WAL growth.
    let filler = fill(&fs.path(), 512 << 10);

    let mut acked = Vec::new();
    let mut nospace = 0;
    let mut i = 0u64;
    // Bounded: 8 in flight, at most 40 000 updates (80 MB of WAL records: far past the
    // reservation), stopping after 50 refusals.
    while i < 40_000 && nospace < 50 {
        let batch: Vec<_> = (i..i + 8).map(|k| (k, put(&p, cont, k))).collect();
        i += 8;
        for (k, f) in batch {
            match f.wait() {
                Ok(()) => acked.push(k),
                Err(e) => {
                    assert_eq!(e.der(), Der::Nospace, "update {k}: {e}");
                    assert!(e.to_string().contains("WAL"), "names the WAL: {e}");
                    nospace += 1;
                }
            }
        }
    }
    eprintln!(
        "{flushers} flusher(s): {} acknowledged, {nospace} refused with DER_NOSPACE",
        acked.len()
    );
    assert!(nospace > 0, "{i} updates never filled the file system");
    assert!(!acked.is_empty());
    // Still readable (not failed, not read-only): every acknowledged update reads back.
    for &k in &acked {
        assert_eq!(
            common::get_single(&p, cont, k, 1),
            Some(vec![(k % 251) as u8; 2000]),
            "object {k}"
        );
    }
    let e = p.checkpoint().wait().unwrap_err();
    assert_eq!(e.der(), Der::Nospace, "an asked checkpoint: {e}");

    // Space freed: updates are taken again (the WAL retries growing every 100 ms).
    std::fs::remove_file(&filler).unwrap();
    let t0 = std::time::Instant::now();
    let k = loop {
        let k = i;
        i += 1;
        match put(&p, cont, k).wait() {
            Ok(()) => break k,
            Err(e) if e.der() == Der::Nospace && t0.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("no update taken 10 s after space was freed: {e}"),
        }
    };
    acked.push(k);
    p.checkpoint().wait().unwrap();
    for k in i..i + 200 {
        put(&p, cont, k).wait().unwrap();
        acked.push(k);
    }
    p.close().unwrap();
    let p = VosPool::open(&c).unwrap();
    for &k in &acked {
        assert_eq!(
            common::get_single(&p, cont, k, 1),
            Some(vec![(k % 251) as u8; 2000]),
            "object {k} after reopen"
        );
    }
    p.close().unwrap();
}
