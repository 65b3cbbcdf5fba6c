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
            value: IodValue::Single(vec![i as u8; 100]),
            flags: 0,
        };
        p.update(c, Oid::new(0, i), 1, 0, b"d", vec![iod])
            .wait()
            .unwrap();
    }
    p.close().unwrap();
    (d, cfg)
}

/// Zeroes the 4 KiB block at `off` (the seal a clean close appends: without it the log looks
/// like the process died right after its last batch).
fn zero_block(path: &std::path::Path, off: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[0u8; 4096], off).unwrap();
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
            value: IodValue::Single(b"new".to_vec()),
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
            value: IodValue::Single(v),
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
