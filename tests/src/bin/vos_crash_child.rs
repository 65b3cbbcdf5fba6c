//! Child for the vos crash test: opens (or creates) a pool, then updates forever with 8 in
//! flight, printing `ACK <round> <i>` once each update is durable. The parent SIGKILLs it.
//! Values are a pure function of (round, i), so the parent can check exact bytes. Half of them
//! are given as aligned buffers (`IoBuf::aligned`, written without a copy), half as `Vec`s.

use vos::{AlignedBuf, IoBuf, IodValue, Oid, PoolConfig, UpdateIod, VosPool};

/// The value written for update `i` of `round`: sizes cross the 4 KiB inline threshold.
pub fn value(round: u64, i: u64) -> Vec<u8> {
    let len = match i % 4 {
        0 => 17,
        1 => 3000,
        2 => 9000,
        _ => 70_000,
    } + (round as usize % 7);
    (0..len)
        .map(|k| (k as u64 ^ (round * 131 + i * 7)) as u8)
        .collect()
}

/// The pool configuration shared by the child and the parent: class `file` in `dir/bdev`, or
/// class `kdev` on the fixed-size file `dir/dev.img` with 2 flushers. Checkpoints every 256 KiB of WAL so kills
/// land during checkpoints too.
pub fn config(dir: &std::path::Path, kdev: bool) -> PoolConfig {
    let mut cfg = PoolConfig::new(dir.join("scm"), dir.join("bdev"));
    cfg.data_size = 256 << 20;
    cfg.wal_chunk = 1 << 20;
    cfg.wal_checkpoint_bytes = 256 << 10;
    if kdev {
        cfg.bdev_class = "kdev".parse().expect("class");
        cfg.bdev_path = dir.join("dev.img");
        // Two batches in flight here (the `file` rounds use the default, one).
        cfg.flushers = 2;
    }
    cfg
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let round: u64 = args[2].parse().expect("round");
    let cfg = config(&dir, args.get(3).is_some_and(|a| a == "kdev"));
    let cont = daos_common::ids::Uuid::from_u128(42);
    // The parent formats the pool before the first round.
    let pool = VosPool::open(&cfg).expect("open");
    println!("READY");
    let mut inflight = std::collections::VecDeque::new();
    for i in 0.. {
        let v = value(round, i);
        let buf = if i % 8 < 4 {
            IoBuf::from(v)
        } else {
            let len = v.len();
            IoBuf::aligned(std::sync::Arc::new(AlignedBuf::from_slice(&v)), len).expect("fits")
        };
        let iod = UpdateIod {
            akey: b"v".to_vec(),
            value: IodValue::Single(buf),
            flags: 0,
        };
        inflight.push_back((
            i,
            pool.update(cont, Oid::new(round, i), round + 1, 0, b"d", vec![iod]),
        ));
        if inflight.len() >= 8 {
            let (j, f) = inflight.pop_front().expect("non-empty");
            f.wait().expect("update");
            println!("ACK {round} {j}");
        }
    }
}
