//! Damaged files: a flipped byte in the WAL tail is a torn tail (clean recovery without that
//! batch); in the middle of the WAL, in a checkpoint or in the pool header it is a clear error
//! naming the file. Never a panic.

mod common;

use std::os::unix::fs::FileExt;

use daos_common::{DaosErrno, Der};
use uuid::Uuid;
use vos::*;

fn flip(path: &std::path::Path, off: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, off).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, off).unwrap();
}

fn wal_file(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("wal."))
        .unwrap()
}

/// Three sequential updates, each its own WAL batch (4 KiB apart).
fn three_batches() -> (tempfile::TempDir, PoolConfig) {
    let (d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    for i in 0..3u64 {
        let iod = UpdateIod {
            akey: b"a".to_vec(),
            value: IodValue::Single(vec![i as u8; 100].into()),
            flags: 0,
        };
        p.update(c, Oid::new(0, i), 1, 0, b"d", vec![iod])
            .wait()
            .unwrap();
    }
    p.close().unwrap();
    (d, cfg)
}

/// Zeroes the 4 KiB block at `off` (the seal a clean close appends) and removes the clean-close
/// record `pool.clean` beside the WAL: the pool then looks as if the process died right after
/// its last batch.
fn zero_block(path: &std::path::Path, off: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[0u8; 4096], off).unwrap();
    let _ = std::fs::remove_file(path.parent().unwrap().join("pool.clean"));
}

#[test]
fn flipped_byte_in_wal_tail_is_discarded_cleanly() {
    let (_d, cfg) = three_batches();
    let wal = wal_file(&cfg.bdev_path);
    zero_block(&wal, 4 * 4096); // the seal: as if killed before close
    flip(&wal, 3 * 4096 + 60); // body of the last batch (batches: create, u0, u1, u2)
    let p = VosPool::open(&cfg).unwrap();
    let st = p.recovery_stats();
    assert_eq!(st.wal_records, 3, "{st:?}");
    assert!(st.torn_bytes > 0);
    let c = Uuid::from_u128(1);
    let got = p
        .fetch(
            c,
            Oid::new(0, 1),
            1,
            0,
            b"d",
            &[FetchIod::Single {
                akey: b"a".to_vec(),
            }],
        )
        .wait()
        .unwrap();
    assert_eq!(got, vec![Fetched::Single(Some(vec![1; 100]))]);
    // The pool keeps working and the discarded tail never comes back.
    p.update(
        c,
        Oid::new(0, 9),
        2,
        0,
        b"d",
        vec![UpdateIod {
            akey: b"a".to_vec(),
            value: IodValue::Single(b"new".into()),
            flags: 0,
        }],
    )
    .wait()
    .unwrap();
    p.close().unwrap();
    let p = VosPool::open(&cfg).unwrap();
    assert_eq!(p.recovery_stats().wal_records, 4);
    assert_eq!(p.recovery_stats().torn_bytes, 0);
}

#[test]
fn flipped_byte_in_last_batch_of_a_cleanly_closed_pool_is_corruption() {
    // The seal written at close records every batch as acknowledged: damage to the last data
    // batch is not a torn tail, and dropping it would lose an acknowledged update.
    let (_d, cfg) = three_batches();
    let wal = wal_file(&cfg.bdev_path);
    flip(&wal, 3 * 4096 + 60);
    let e = VosPool::open(&cfg).unwrap_err();
    assert!(matches!(e, VosError::Corrupt { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(wal.to_str().unwrap()), "{msg}");
    assert!(
        msg.contains("offset 12288") && msg.contains("durable_lsn"),
        "{msg}"
    );
}

#[test]
fn flipped_header_byte_of_a_batch_followed_by_a_later_batch_is_corruption() {
    // Even without the seal (killed, not closed): u1 damaged, u2 valid after it.
    let (_d, cfg) = three_batches();
    let wal = wal_file(&cfg.bdev_path);
    zero_block(&wal, 4 * 4096);
    flip(&wal, 2 * 4096 + 17); // header (lsn_first) of u1
    let e = VosPool::open(&cfg).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("offset 8192") && msg.contains("offset 12288"),
        "{msg}"
    );
}

#[test]
fn flipped_byte_in_wal_middle_names_the_file() {
    let (_d, cfg) = three_batches();
    let wal = wal_file(&cfg.bdev_path);
    flip(&wal, 4096 + 60);
    let e = VosPool::open(&cfg).unwrap_err();
    assert!(matches!(e, VosError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains(wal.to_str().unwrap()), "{e}");
}

#[test]
fn flipped_byte_in_checkpoint_names_the_file() {
    let (_d, cfg) = three_batches();
    let p = VosPool::open(&cfg).unwrap();
    p.checkpoint().wait().unwrap();
    p.close().unwrap();
    let ck = std::fs::read_dir(&cfg.bdev_path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("ckpt.")
        })
        .unwrap();
    let len = std::fs::metadata(&ck).unwrap().len();
    flip(&ck, len - 3);
    let e = VosPool::open(&cfg).unwrap_err();
    assert!(
        e.to_string().contains(ck.to_str().unwrap()) && e.to_string().contains("checksum"),
        "{e}"
    );
    assert_eq!(e.der(), Der::DfInval);
}

#[test]
fn damaged_pool_header_and_missing_pool_are_clear_errors() {
    let (_d, cfg) = three_batches();
    flip(&cfg.bdev_path.join("pool.hdr"), 10);
    let e = VosPool::open(&cfg).unwrap_err();
    assert!(e.to_string().contains("pool.hdr"), "{e}");
    let empty = tempfile::tempdir_in("/var/tmp").unwrap();
    let e = VosPool::open(&common::cfg(empty.path())).unwrap_err();
    assert!(e.to_string().contains("create it first"), "{e}");
}

#[test]
fn damaged_data_extent_is_a_checksum_error_on_fetch() {
    let (_d, cfg, p) = common::new_pool();
    let c = Uuid::from_u128(1);
    p.cont_create(c).wait().unwrap();
    let v = vec![3u8; 20_000];
    p.update(
        c,
        Oid::new(0, 1),
        1,
        0,
        b"d",
        vec![UpdateIod {
            akey: b"a".to_vec(),
            value: IodValue::Single(v.into()),
            flags: 0,
        }],
    )
    .wait()
    .unwrap();
    p.close().unwrap();
    flip(&cfg.bdev_path.join("data"), 100);
    let p = VosPool::open(&cfg).unwrap();
    let e = p
        .fetch(
            c,
            Oid::new(0, 1),
            1,
            0,
            b"d",
            &[FetchIod::Single {
                akey: b"a".to_vec(),
            }],
        )
        .wait()
        .unwrap_err();
    assert_eq!(e.der(), Der::Csum, "{e}");
}

/// xorshift64*: a seeded generator, so a failing case can be replayed from its printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Bytes of `path` up to its last nonzero byte (where damage can matter).
fn used_len(path: &std::path::Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    b.iter().rposition(|x| *x != 0).map_or(0, |i| i as u64 + 1)
}

const TRUNCATE: bool = true;

#[test]
fn random_damage_to_any_file_is_a_clean_open_or_a_clear_error_never_wrong_bytes() {
    // A cleanly closed pool with inline and data-file values, a checkpoint and WAL records
    // after it.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cfg = common::cfg(dir.path());
    cfg.data_size = 4 << 20;
    let c = Uuid::from_u128(9);
    let value = |i: u64| vec![(i * 37 + 1) as u8; if i.is_multiple_of(3) { 9000 } else { 200 }];
    let n = 60u64;
    {
        let p = VosPool::create(&cfg).unwrap();
        p.cont_create(c).wait().unwrap();
        let put = |i: u64| {
            let iod = UpdateIod {
                akey: b"a".to_vec(),
                value: IodValue::Single(value(i).into()),
                flags: 0,
            };
            p.update(c, Oid::new(0, i), 1, 0, b"d", vec![iod])
        };
        for i in 0..n / 2 {
            put(i).wait().unwrap();
        }
        p.checkpoint().wait().unwrap();
        for i in n / 2..n {
            put(i).wait().unwrap();
        }
        p.close().unwrap();
    }
    let pristine = dir.path().join("bdev");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&pristine)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name != "pool.lock" && used_len(p) > 0
        })
        .collect();
    assert!(files.len() >= 4, "{files:?}"); // pool.hdr, data, ckpt, wal
    let seed = std::env::var("VOS_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_ed0f_da7a_u64);
    let mut rng = Rng(seed);
    let (mut opened, mut refused, mut csum) = (0, 0, 0);
    for round in 0..120 {
        let work = tempfile::tempdir_in("/var/tmp").unwrap();
        let bdev = work.path().join("bdev");
        std::fs::create_dir_all(&bdev).unwrap();
        for f in &files {
            std::fs::copy(f, bdev.join(f.file_name().unwrap())).unwrap();
        }
        // One to three damaged bytes, or a truncation, in one file.
        let f = bdev.join(
            files[rng.below(files.len() as u64) as usize]
                .file_name()
                .unwrap(),
        );
        let len = used_len(&f);
        let what = if TRUNCATE && rng.below(8) == 0 {
            let at = rng.below(len);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&f)
                .unwrap()
                .set_len(at)
                .unwrap();
            format!("{} truncated to {at}", f.display())
        } else {
            let mut offs = Vec::new();
            for _ in 0..=rng.below(3) {
                let off = rng.below(len);
                flip(&f, off);
                offs.push(off);
            }
            format!("{} flipped at {offs:?}", f.display())
        };
        let ctx = format!("seed {seed:#x} round {round}: {what}");
        let mut wcfg = common::cfg(work.path());
        wcfg.data_size = cfg.data_size;
        match VosPool::open(&wcfg) {
            Err(e) => {
                refused += 1;
                assert!(
                    matches!(e.der(), Der::DfInval | Der::Io | Der::Nonexist),
                    "{ctx}: unexpected error kind: {e}"
                );
                assert!(
                    e.to_string().contains(&*work.path().to_string_lossy()),
                    "{ctx}: the error names no file of the pool: {e}"
                );
            }
            Ok(p) => {
                opened += 1;
                // Whatever opened serves every value exactly, or refuses it as damaged.
                for i in 0..n {
                    let got = p
                        .fetch(
                            c,
                            Oid::new(0, i),
                            1,
                            0,
                            b"d",
                            &[FetchIod::Single {
                                akey: b"a".to_vec(),
                            }],
                        )
                        .wait();
                    match got {
                        Ok(v) => assert!(
                            v == vec![Fetched::Single(Some(value(i)))],
                            "{ctx}: object {i} came back different: {}",
                            match &v[..] {
                                [Fetched::Single(Some(b))] => format!("{} bytes", b.len()),
                                other => format!("{other:?}"),
                            }
                        ),
                        Err(e) => {
                            // A damaged extent fails its checksum; one cut off by a truncated
                            // data file is a short read: both name the data file.
                            assert!(
                                matches!(e.der(), Der::Csum | Der::Io),
                                "{ctx}: object {i}: {e}"
                            );
                            assert!(
                                e.to_string().contains(&*work.path().to_string_lossy()),
                                "{ctx}: object {i}: the error names no file: {e}"
                            );
                            csum += 1;
                        }
                    }
                }
                p.close().unwrap();
            }
        }
    }
    eprintln!(
        "random damage (seed {seed:#x}): 120 rounds, {opened} opened, {refused} refused with a clear error, {csum} fetches refused (checksum or short read)"
    );
    assert!(opened > 0 && refused > 0, "both outcomes exercised");
}

#[test]
fn a_wal_cut_short_after_a_clean_close_is_an_error_not_lost_updates() {
    let (d, cfg) = three_batches();
    let bdev = d.path().join("bdev");
    assert!(
        bdev.join("pool.clean").exists(),
        "a clean close records its LSN"
    );
    // Cut the log after its first batch: the two later (acknowledged) updates are gone.
    let wal = wal_file(&bdev);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = VosPool::open(&cfg).unwrap_err();
    assert_eq!(e.der(), Der::DfInval, "{e}");
    assert!(e.to_string().contains("closed cleanly"), "{e}");
    assert!(e.to_string().contains(&*wal.to_string_lossy()), "{e}");

    // While a pool is open the marker is gone: a crash image taken then opens as after a crash.
    let (d2, cfg2) = three_batches();
    let p = VosPool::open(&cfg2).unwrap();
    assert!(!d2.path().join("bdev/pool.clean").exists());
    let c = Uuid::from_u128(1);
    let iod = UpdateIod {
        akey: b"a".to_vec(),
        value: IodValue::Single(vec![9; 100].into()),
        flags: 0,
    };
    p.update(c, Oid::new(0, 7), 1, 0, b"d", vec![iod])
        .wait()
        .unwrap();
    let image = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::create_dir_all(image.path().join("bdev")).unwrap();
    for e in std::fs::read_dir(d2.path().join("bdev")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), image.path().join("bdev").join(e.file_name())).unwrap();
    }
    let q = VosPool::open(&common::cfg(image.path())).unwrap();
    assert_eq!(
        common::get_single(&q, c, 7, 1),
        Some(vec![9; 100]),
        "the update made after the reopen"
    );
    q.close().unwrap();
    p.close().unwrap();
}
