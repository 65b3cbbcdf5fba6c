//! vos: the per-target versioned object store of daos-rs, in DAOS's "metadata on SSD" mode.
//!
//! Data model (DAOS's): pool (one per target) → containers (uuid) → objects (128-bit oid) → dkeys →
//! akeys → a single value or an array of fixed-size records addressed by extents; every update is
//! at an epoch and a fetch at epoch `e` sees the newest version `<= e`; punches are tombstones at
//! an epoch; holes in arrays read as zeros and are reported.
//!
//! Must not depend on: `cart`, `engine`, any async runtime. Only `daos-common` (and optionally
//! `pmem-sys`) from the workspace.
//!
//! Modules:
//! - [`types`]: public vocabulary (Oid, Recx, epochs, conditional flags, iods, anchors).
//! - [`error`]: [`VosError`], mapped to `DER_*` through `DaosErrno`; [`fault`]: test-only
//!   fault injection at the flusher's I/O sites; `backout`: the read-only transition.
//! - [`akey`], [`akeymap`] and [`index`]: the sans-IO metadata index (pure in-memory structs); every mutation is
//!   an [`index::IndexOp`], which is also the WAL record body, so replay runs exactly what ran;
//!   `unacked`: objects with operations not yet durable, and the fetches parked on them.
//! - `commit_wait`: when the next WAL batch waits for more submitters (group commit).
//! - [`alloc`]: data-file extent allocator (VEA role), rebuilt from the index at open.
//! - [`wal`]: WAL batch format and replay; [`ckpt`]: checkpoint and pool-header files;
//!   [`layout`]: where pieces live on the bdev tier (directory for `file`, regions for `kdev`);
//!   `recovery`: checkpoint + previous WAL tail + current WAL, for open and the back-out.
//! - [`pool`]: [`VosPool`], the durable store API (`listing`: its enumeration calls;
//!   `rewrite`: aggregation's data rewrite); `flusher`: the group-commit WAL writer
//!   threads (batches acknowledged in LSN order), the checkpoint thread and the WAL zeroing
//!   thread; `reader`: four threads serving data-file reads through their own io_urings.
//! - [`uring`]: the crate's only `unsafe`: 4 KiB-aligned buffers and batched io_uring I/O.
//! - [`completion`]: result slots that are both `Future`s and blockable.
//! - [`config`]: DAOS storage classes (`ram`, `dcpm`, `file`, `kdev`, `nvme`) and pool parameters.
//!   `dcpm` (cargo feature `pmem`, via the in-tree `pmem-sys` crate) puts the WAL in a
//!   libpmem-mapped file on the scm path.
//!
//! Design decisions:
//! - Metadata lives in DRAM; durability comes from the WAL (O_DIRECT + fdatasync through
//!   io_uring) and checkpoints, as DAOS's MD-on-SSD. An update completes only after its WAL
//!   batch is durable. Updates are applied to the index when queued (so later conditional checks
//!   see them, as DAOS's in-memory VOS transaction does) and acknowledged when durable.
//! - Group commit: each of `PoolConfig::flushers` (default 1) threads takes everything queued
//!   as one batch; batches are acknowledged in LSN order. With 2 flushers one batch is written
//!   while the other waits for its fdatasync. That won when fdatasync went through io_uring
//!   (loaded VM: 4 KiB QD16 8.8k/8.0k ops/s with 1 vs 16.0k/14.7k with 2), but since fdatasync is
//!   a direct syscall and batch writes are issued in LSN order, 1 flusher wins in 10 of 10
//!   alternating pairs (2026-11-26, quiet VM; then with a CPU hog): 4 KiB QD16 46.5k/44.7k vs
//!   43.5k/40.6k, loaded 47.6k/41.0k vs 35.0k/40.7k; 64 B QD64 195.6k/190.0k vs 173.2k/179.0k,
//!   loaded 216.2k/180.7k vs 192.2k/158.4k; 1 MiB array QD16 2706/2710 vs 2587/2566 MB/s.
//!   3 and 4 flushers: 4 KiB 31.1k/31.9k and 24.8k/26.2k.
//! - Group-commit wait (`commit_wait`): right after an acknowledgement the flusher used to take
//!   only the first few resubmissions, so a closed loop of 16 alternated small and large
//!   batches (8.0 updates per fdatasync on average). The next batch now waits (at most
//!   `commit_wait_us`, 100 µs) for the submitters of the batch just acknowledged, but only
//!   while such refills have cost less than 0.6 of a batch write, measured; otherwise split
//!   batches overlap the submitters' CPU work with the I/O, which wins for 64 B at QD64 and
//!   for 1 MiB values. 4 KiB QD16 beside fio, 3 alternating pairs (2026-11-26): ratio
//!   0.52/0.55/0.51 against 0.49/0.45/0.42 before; 64 B QD64 unchanged within noise
//!   (175k-195k against 171k-193k).
//! - Caller-driven group commit ([`VosPool::progress`]): the thread that submits updates can
//!   write, sync and complete a batch without data-file writes itself, as a DAOS xstream runs
//!   its own I/O; that removes the two thread hand-offs of each group commit (4 KiB QD16
//!   62-65k against 51-52k ops/s, 64 B QD64 274-277k against 202-247k). Data batches stay with
//!   the flusher, which also takes small batches 1 ms after a caller stops driving.
//! - Checkpoints are made on their own thread, so updates go on meanwhile (1 M objects: the
//!   longest durable update during one 32-41 ms, against 372-808 ms when the single flusher
//!   made it).
//! - WAL write + fdatasync, not `RWF_DSYNC`: measured 3x slower here (virtio disk without FUA).
//!   Writes and reads go through io_uring; fdatasync is a direct syscall on the flusher thread
//!   (io_uring punts fsync to a kernel worker: 1.5-2.5x slower on the loaded 2 cores).
//! - WAL batch writes are issued in LSN order (a batch is written once the previous batch's
//!   write completed; fdatasyncs overlap) and a clean close appends an empty seal batch, so
//!   replay reports damage followed by a valid later batch as corruption naming the WAL file and
//!   offsets (the later header's `durable_lsn` or LSN order proves it is not a torn write);
//!   only the last batch of an unsealed log can be discarded as a torn tail.
//! - A failed flush (data-file write, WAL write or fdatasync) turns the pool read-only, as DAOS
//!   marks the target faulty: `backout` waits for the batches in flight, erases the failed WAL
//!   batches, rebuilds the index from checkpoint + WAL below the failed LSN, and only then fails
//!   the waiting updates (`DER_IO`), so a fetch after the error sees the old value and a reopen
//!   agrees. [`fault::Faults`] (test-only `PoolConfig::faults`) injects `EIO` at those sites.
//!   A fetch touching an object with an unacknowledged operation is parked until it is durable
//!   (`unacked`), so no fetch returns a value whose update then fails.
//! - Values above `inline_threshold` (4 KiB, DAOS's `data_thresh`) are first written to the data
//!   file (reserve → write → fdatasync → publish in the WAL record), so a replayed record never
//!   points at unwritten data; freed extents return to the allocator only after the record that
//!   frees them is durable. Inline is faster even at 8 KiB (40.6k vs 19.0k ops/s, QD16: the data
//!   path costs a second fdatasync) but inline bytes live in DRAM, in every checkpoint and in
//!   recovery time, so the threshold stays at 4 KiB.
//! - Checkpoints copy the index under the lock and encode + write the copy outside it while
//!   batches keep flowing into the old WAL (`recovery` replays that WAL's tail): [`akeymap`]
//!   stores each container's akeys as a B-tree of `Arc`-shared copy-on-write leaves, so the copy
//!   is O(entries / 512). 1 M objects, one fetch + one update probe during `checkpoint()`
//!   (quiet VM, 2026-11-26 00:16 UTC): longest fetch 225-226 ms → 2.5-2.7 ms, longest update
//!   228-229 ms → 32-37 ms; lock held 2.4-3.1 ms. A deep `BTreeMap` clone held the lock
//!   1.27-1.32 s: rejected.
//! - Aggregation cuts every array extent at or below `upto` to what a read at `upto` still sees:
//!   fully shadowed extents are freed, inline ones trimmed and merged with contiguous same-epoch
//!   neighbours; partly shadowed data-file extents are rewritten into their visible pieces
//!   (`rewrite`: read, write new extents, fdatasync, then an `IndexOp::Rewrite` record).
//! - Recovery = newest checkpoint + WAL replay: 1 M objects (64 B values) in 0.76 / 1.14 s from
//!   the WAL alone, 0.69 / 0.84 s from a checkpoint plus the previous WAL's tail (vos_perf
//!   --recovery, 2026-11-26 00:15 UTC, commit 9312256). Throughput figures beside fio: README.
//! - See README.md in this crate for the on-disk format.
//!
//! Example (blocking style; an engine loop would `.await` the same [`Completion`]s and keep many
//! in flight so group commit batches them):
//! ```
//! use vos::{FetchIod, Fetched, IodValue, Oid, PoolConfig, UpdateIod, VosPool};
//! # let dir = tempfile::tempdir_in("/var/tmp").unwrap();
//! let mut cfg = PoolConfig::new(dir.path().join("scm"), dir.path().join("bdev"));
//! cfg.data_size = 64 << 20;
//! let pool = VosPool::create(&cfg)?;
//! let cont = daos_common::ids::Uuid::from_u128(1);
//! pool.cont_create(cont).wait()?;
//! let iod = UpdateIod { akey: b"a".to_vec(), value: IodValue::Single(b"hello".into()), flags: 0 };
//! pool.update(cont, Oid::new(0, 1), 10, 0, b"dkey", vec![iod]).wait()?; // durable now
//! let got = pool.fetch(cont, Oid::new(0, 1), 10, 0, b"dkey", &[FetchIod::Single { akey: b"a".to_vec() }]).wait()?;
//! assert_eq!(got, vec![Fetched::Single(Some(b"hello".to_vec()))]);
//! let older = pool.fetch(cont, Oid::new(0, 1), 9, 0, b"dkey", &[FetchIod::Single { akey: b"a".to_vec() }]).wait()?;
//! assert_eq!(older, vec![Fetched::Single(None)]); // epoch 9 predates the update
//! pool.close()?;
//! # Ok::<(), vos::VosError>(())
//! ```

#![deny(unsafe_code)]

pub mod akey;
pub mod akeymap;
pub mod alloc;
mod backout;
pub mod ckpt;
mod commit_wait;
pub mod completion;
pub mod config;
pub mod error;
pub mod fault;
mod flusher;
/// Process-wide switch: WAL batches written with write + fdatasync (default) or `RWF_DSYNC`.
pub use flusher::DSYNC as WAL_DSYNC;
pub mod index;
pub mod layout;
mod listing;
pub mod pool;
mod reader;
mod recovery;
mod rewrite;
pub mod types;
mod unacked;
#[allow(unsafe_code)]
pub mod uring;
pub mod wal;

pub use completion::Completion;
pub use config::{BdevClass, PoolConfig, ScmClass};
pub use error::VosError;
pub use fault::{FaultPoint, Faults};
pub use pool::{CheckpointStats, RecoveryStats, VosPool};
pub use types::*;
pub use uring::AlignedBuf;
