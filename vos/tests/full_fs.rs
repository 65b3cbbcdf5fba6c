//! A pool on a file system too small for it: create fails with DER_NOSPACE naming the data file
//! or the WAL (both are reserved at create), leaves nothing that blocks a retry, and a pool that
//! fits works. Runs on a real ext4 file system on a loop device (root); skipped without.

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
