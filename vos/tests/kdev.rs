//! bdev class `kdev`: superblock, two checkpoint slots, WAL region and data region on one
//! device, through the same O_DIRECT + io_uring path. Runs on a fixed-size file on ext4, and on
//! a real loop block device when the test runs as root with loop devices available.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use daos_common::{DaosErrno, Der};
use uuid::Uuid;
use vos::*;

/// A file of `len` bytes named `name` in `dir` (a fixed-size "device").
fn sized_file(dir: &Path, name: &str, len: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(len).unwrap();
    p
}

fn kcfg(scm: &Path, dev: &Path) -> PoolConfig {
    let mut c = PoolConfig::new(scm, dev);
    c.bdev_class = "kdev".parse().unwrap();
    c
}

fn val(i: u64) -> Vec<u8> {
    vec![i as u8; if i.is_multiple_of(3) { 20_000 } else { 50 }]
}

fn get(p: &VosPool, c: Uuid, i: u64) -> Option<Vec<u8>> {
    common::get_single(p, c, i, 9)
}

fn put(p: &VosPool, c: Uuid, range: std::ops::Range<u64>) {
    let fs: Vec<_> = range
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
    for f in fs {
        f.wait().unwrap();
    }
}

/// Create, write, checkpoint into both slots, reopen, verify.
fn roundtrip(dev: &Path, scm: &Path) {
    let cfg = kcfg(scm, dev);
    let p = VosPool::create(&cfg).unwrap();
    assert!(
        VosPool::create(&cfg).is_err(),
        "second create on a formatted device must fail"
    );
    let c = Uuid::from_u128(9);
    p.cont_create(c).wait().unwrap();
    put(&p, c, 0..100);
    p.checkpoint().wait().unwrap();
    put(&p, c, 100..200);
    p.checkpoint().wait().unwrap();
    put(&p, c, 200..300);
    assert!(p.space().data_used >= 100 * 20_000);
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    let st = p.recovery_stats();
    assert_eq!((st.ckpt_gen, st.wal_records), (3, 100), "{st:?}");
    for i in [0u64, 1, 99, 150, 201, 299] {
        assert_eq!(get(&p, c, i), Some(val(i)), "object {i}");
    }
    p.close().unwrap();
}

#[test]
fn kdev_on_a_fixed_size_file() {
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let dev = sized_file(d.path(), "dev.img", 64 << 20);
    roundtrip(&dev, &d.path().join("scm"));
}

#[test]
fn kdev_damaged_newest_checkpoint_slot_in_use_is_an_error() {
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let dev = sized_file(d.path(), "dev.img", 64 << 20);
    let cfg = kcfg(&d.path().join("scm"), &dev);
    let p = VosPool::create(&cfg).unwrap();
    let c = Uuid::from_u128(9);
    p.cont_create(c).wait().unwrap();
    put(&p, c, 0..10);
    p.checkpoint().wait().unwrap(); // gen 2 -> slot 0
    put(&p, c, 10..20); // WAL region now holds gen-2 batches
    p.close().unwrap();
    // Slot 0 starts at 4 KiB; flip a byte in its body.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, 4096 + 100).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], 4096 + 100).unwrap();
    drop(f);
    let e = VosPool::open(&cfg).unwrap_err();
    assert!(e.to_string().contains("ckpt-slot0"), "{e}");
    assert_eq!(e.der(), Der::DfInval);
}

#[test]
fn kdev_too_small_and_unformatted_devices_are_clear_errors() {
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let dev = sized_file(d.path(), "small.img", 1 << 20);
    let e = VosPool::create(&kcfg(&d.path().join("scm"), &dev)).unwrap_err();
    assert!(e.to_string().contains("16 MiB minimum"), "{e}");
    let dev = sized_file(d.path(), "blank.img", 32 << 20);
    let e = VosPool::open(&kcfg(&d.path().join("scm"), &dev)).unwrap_err();
    assert!(e.to_string().contains("create it first"), "{e}");
}

/// A loop device attached for the test's duration and detached on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn kdev_on_a_real_loop_block_device() {
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let img = sized_file(d.path(), "loop.img", 64 << 20);
    let out = match Command::new("losetup")
        .args(["-f", "--show", "--direct-io=on"])
        .arg(&img)
        .output()
    {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!("SKIP kdev_on_a_real_loop_block_device: cannot attach a loop device ({other:?}); needs root");
            return;
        }
    };
    let dev = Loop(String::from_utf8(out.stdout).unwrap().trim().to_string());
    assert!(dev.0.starts_with("/dev/loop"), "{}", dev.0);
    roundtrip(Path::new(&dev.0), &d.path().join("scm"));
}

#[test]
fn a_full_kdev_wal_region_refuses_updates_until_a_checkpoint_frees_it() {
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let dev = sized_file(d.path(), "dev.img", 64 << 20);
    // 64 MiB device: a 16 MiB WAL region, checkpoints from 8 MiB of it on.
    let mut cfg = kcfg(&d.path().join("scm"), &dev);
    let faults = std::sync::Arc::new(Faults::default());
    cfg.faults = Some(faults.clone());
    let p = VosPool::create(&cfg).unwrap();
    let c = Uuid::from_u128(3);
    p.cont_create(c).wait().unwrap();
    // 16 objects rewritten at one epoch: the WAL grows, the index (and so the checkpoint) stays
    // small.
    let put = |i: u64| {
        p.update(
            c,
            Oid::new(0, i % 16),
            1,
            0,
            b"d",
            vec![UpdateIod {
                akey: b"a".to_vec(),
                value: IodValue::Single(vec![(i % 199) as u8; 2000].into()),
                flags: 0,
            }],
        )
    };
    // A checkpoint that does not finish: on kdev, batches pause while it is made, so updates
    // queue until the region (what is written plus what is queued) is full. (Released on drop
    // too, so a failing assertion does not leave the pool's close waiting for it.)
    struct Release(std::sync::Arc<Faults>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.hold_checkpoints(false);
        }
    }
    faults.hold_checkpoints(true);
    let _release = Release(faults.clone());
    let mut last = [None; 16];
    let mut refused = None;
    // Bounded: 16 MiB of region holds fewer than 8 000 records of 2 KB.
    for i in 0..20_000u64 {
        let f = put(i);
        if f.is_done() {
            if let Err(e) = f.wait() {
                refused = Some((i, e));
                break;
            }
        }
        last[(i % 16) as usize] = Some(i);
    }
    let (at, e) = refused.expect("20 000 updates fit in a 16 MiB WAL region");
    assert_eq!(e.der(), Der::Nospace, "update {at}: {e}");
    assert!(e.to_string().contains("kdev WAL region"), "{e}");
    let t0 = std::time::Instant::now();
    while !faults.checkpoint_waiting() {
        assert!(t0.elapsed().as_secs() < 20, "the checkpoint never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The checkpoint completes and the next generation starts at the region's beginning: what
    // was queued is written and updates are taken again.
    faults.hold_checkpoints(false);
    p.checkpoint().wait().unwrap();
    for i in at + 1..at + 101 {
        put(i).wait().unwrap();
        last[(i % 16) as usize] = Some(i);
    }
    p.close().unwrap();
    cfg.faults = None;
    let p = VosPool::open(&cfg).unwrap();
    for (k, i) in last.iter().enumerate() {
        let i = i.unwrap();
        assert_eq!(
            common::get_single(&p, c, k as u64, 1),
            Some(vec![(i % 199) as u8; 2000]),
            "object {k}: update {i} is the last acknowledged"
        );
    }
    p.close().unwrap();
}
