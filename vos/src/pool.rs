//! [`VosPool`]: one target's store. Callers submit updates from any thread (or from one async
//! engine loop with many in flight); a flusher thread group-commits everything queued since its
//! last flush (data-file writes + fdatasync, then one WAL batch write + fdatasync) and completes
//! the waiters; a reader thread serves data-file reads through its own io_uring.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use daos_common::ids::Uuid;
use parking_lot::{Condvar, Mutex};

use crate::akey::{DiskCopy, Payload};
use crate::alloc::Allocator;
use crate::ckpt::PoolHeader;
use crate::completion::{pair, Completer, Completion};
use crate::config::PoolConfig;
use crate::config::ScmClass;
use crate::error::{Result, VosError};
use crate::flusher::{self, WalState};
use crate::index::{Index, IndexOp, OpIod, OpValue};
use crate::layout::Layout;
use crate::reader::{copy_out, reader, READERS};
use crate::types::*;
use crate::uring::{align_up, AlignedBuf};
use crate::wal::BatchBuilder;

/// What the last open found and how long it took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RecoveryStats {
    pub ckpt_gen: u64,
    pub ckpt_bytes: u64,
    pub wal_batches: u64,
    pub wal_records: u64,
    pub torn_bytes: u64,
    pub akeys: usize,
    pub elapsed: Duration,
}

/// What the last checkpoint cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CheckpointStats {
    /// Time the pool lock was held to copy the index (foreground calls wait this long).
    pub snapshot: Duration,
    /// Encoding the copy (outside the lock).
    pub encode: Duration,
    /// Encode + write + sync + WAL switch.
    pub total: Duration,
    pub bytes: u64,
    /// Records logged while the checkpoint was made (kept in the previous WAL's tail).
    pub tail_records: u64,
}

/// A large value in an aligned buffer (copied into one, or the caller's own), the bytes of it
/// to write (its length rounded up to 4 KiB), and its crc32c.
type Prepared = Option<(Arc<AlignedBuf>, u64, u32)>;

/// One data-file write of a batch: `len` bytes of `buf` (its value rounded up to 4 KiB) at
/// data-file offset `off`.
pub(crate) struct DataWrite {
    pub(crate) off: u64,
    pub(crate) buf: Arc<AlignedBuf>,
    pub(crate) len: u64,
}

#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) builder: BatchBuilder,
    pub(crate) waiters: Vec<Completer<Result<()>>>,
    pub(crate) data: Vec<DataWrite>,
    /// Extents this batch frees: (read sequence at free time, offset, length).
    pub(crate) frees: Vec<(u64, u64, u64)>,
}

pub(crate) struct State {
    pub(crate) index: Index,
    pub(crate) alloc: Allocator,
    pub(crate) pending: Pending,
    /// WAL batch bodies of acknowledged batches, reused by the next ones (`BatchBuilder::with_buffer`).
    pub(crate) spare_bodies: Vec<Vec<u8>>,
    pub(crate) inflight: HashMap<u64, Arc<AlignedBuf>>,
    /// Set by the first failed flush: the pool is read-only from then on (see `backout`).
    pub(crate) failed: Option<String>,
    /// The index is being rebuilt after a failure: fetches wait for the error instead.
    pub(crate) backing_out: bool,
    /// False if the back-out could not reload the durable state: fetches fail too.
    pub(crate) readable: bool,
    /// First unacknowledged LSN and its WAL offset at the failure.
    pub(crate) fail_at: (u64, u64),
    /// Waiters of backed-out updates, answered once the index no longer shows them.
    pub(crate) failed_waiters: Vec<Completer<Result<()>>>,
    pub(crate) shutdown: bool,
    pub(crate) ckpt_waiters: Vec<Completer<Result<()>>>,
    pub(crate) next_lsn: u64,
    pub(crate) wal: WalState,
    /// Next read sequence number, and the reads still in flight.
    pub(crate) read_seq: u64,
    pub(crate) active_reads: std::collections::BTreeSet<u64>,
    /// Durable frees waiting for reads planned before them to finish: (seq, off, len).
    pub(crate) deferred_frees: Vec<(u64, u64, u64)>,
    /// Estimated DRAM metadata bytes (exact after aggregation/discard/destroy, estimated in between).
    pub(crate) meta_est: u64,
    pub(crate) last_ckpt: CheckpointStats,
    /// Objects with unacknowledged operations, and fetches parked until they are durable.
    pub(crate) unacked: crate::unacked::Unacked,
    /// The group-commit wait policy (`commit_wait`).
    pub(crate) cw: crate::commit_wait::CommitWait,
}

pub(crate) struct ReadJob {
    /// Read sequence: extents freed after this read was planned stay allocated until it ends.
    pub(crate) seq: u64,
    pub(crate) out: Vec<Fetched>,
    pub(crate) copies: Vec<DiskCopy>,
    pub(crate) done: Completer<Result<Vec<Fetched>>>,
}

pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) data_path: PathBuf,
    pub(crate) data: Arc<File>,
    /// Offset of the data region in `data` (0 for a data file, > 0 on a kdev).
    pub(crate) data_base: u64,
    pub(crate) layout: Layout,
    pub(crate) st: Mutex<State>,
    /// Flusher threads wait here for work.
    pub(crate) flush_cv: Condvar,
    /// Flusher threads wait here for their turn to acknowledge, for WAL zeroing, for checkpoints.
    pub(crate) order_cv: Condvar,
    pub(crate) reads: Mutex<(Vec<ReadJob>, bool)>,
    pub(crate) read_cv: Condvar,
    pub(crate) hdr: PoolHeader,
    /// Exclusive advisory lock on `pool.lock`, held while open.
    _lock: File,
    pub(crate) wal_ckpt_bytes: u64,
    pub(crate) wal_dir: PathBuf,
    pub(crate) scm_class: ScmClass,
    pub(crate) pmem_wal_len: u64,
    pub(crate) wal_chunk: u64,
    /// `PoolConfig::wal_reserve`.
    pub(crate) wal_reserve: u64,
    /// The WAL is fixed-size (a kdev region, a dcpm mapping): what it is called in a
    /// `DER_NOSPACE`. Every record is checked against its end at submission.
    pub(crate) wal_fixed: Option<&'static str>,
    pub(crate) faults: Option<Arc<crate::fault::Faults>>,
    /// (Next LSN whose WAL batch write has not completed, pool failed): a batch is written only
    /// after the one before it, so a valid batch never follows a torn one after a process crash.
    pub(crate) written: Mutex<(u64, bool)>,
    pub(crate) written_cv: Condvar,
    /// `PoolConfig::commit_wait_us`.
    pub(crate) commit_wait: std::time::Duration,
    /// Something is queued and none of it writes to the data file (what [`VosPool::progress`]
    /// takes): lets `progress` return without the pool lock when there is nothing for it.
    pub(crate) small_pending: std::sync::atomic::AtomicBool,
    /// When a caller last called [`VosPool::progress`], in ns after `opened` (0: never).
    /// Flusher threads leave batches without data-file writes to it for `CALLER_GRACE` after.
    pub(crate) caller_seen_ns: std::sync::atomic::AtomicU64,
    pub(crate) opened: std::time::Instant,
    /// Where submitters send a full WAL's grow retries (the zeroing thread); emptied at stop.
    pub(crate) grow_tx: Mutex<Option<std::sync::mpsc::Sender<flusher::ZeroJob>>>,
}

/// One target's versioned object store. Dropping it (or [`VosPool::close`]) flushes what is queued.
pub struct VosPool {
    pub(crate) sh: Arc<Shared>,
    /// For [`VosPool::progress`]: its ring (made on first use) and where its flushes hand work.
    caller: Mutex<(Option<crate::uring::Ring>, Option<flusher::Senders>)>,
    zeros: Arc<AlignedBuf>,
    threads: Vec<JoinHandle<()>>,
    recovery: RecoveryStats,
}

impl std::fmt::Debug for VosPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VosPool({})", self.sh.dir.display())
    }
}

fn failed<T>(e: VosError) -> Completion<Result<T>> {
    Completion::ready(Err(e))
}

impl VosPool {
    /// Formats a new pool (class `file`: in directory `cfg.bdev_path`, created if missing;
    /// class `kdev`: on the device at `cfg.bdev_path`) and opens it.
    pub fn create(cfg: &PoolConfig) -> Result<VosPool> {
        cfg.validate()?;
        std::fs::create_dir_all(&cfg.scm_path).map_err(|e| VosError::io(&cfg.scm_path, e))?;
        Layout::create(cfg)?;
        tracing::info!(path = %cfg.bdev_path.display(), "vos pool created");
        VosPool::open(cfg).inspect_err(|_| {
            // Nothing was stored yet: do not leave a pool that cannot open (e.g. no space for
            // its WAL reservation) blocking a retry.
            if cfg.bdev_class != crate::config::BdevClass::Kdev {
                remove_pool_files(&cfg.bdev_path);
                remove_pool_files(cfg.wal_dir());
            }
        })
    }

    /// Opens an existing pool: loads the newest checkpoint, replays its WAL (discarding a torn
    /// tail), rebuilds the allocator, starts the flusher and reader threads.
    pub fn open(cfg: &PoolConfig) -> Result<VosPool> {
        cfg.validate()?;
        let t0 = Instant::now();
        let (layout, hdr, lock) = Layout::open(cfg)?;
        let wal_fixed = match (&layout, cfg.scm_class) {
            (_, ScmClass::Dcpm) => Some("pmem WAL"),
            (Layout::Dev(_), _) => Some("kdev WAL region"),
            _ => None,
        };
        let dir = layout.path().to_path_buf();
        let wal_dir = cfg.wal_dir().to_path_buf();
        if cfg.scm_class == ScmClass::Dcpm || cfg.bdev_class != crate::config::BdevClass::Kdev {
            std::fs::create_dir_all(&wal_dir).map_err(|e| VosError::io(&wal_dir, e))?;
        }
        let loaded = crate::recovery::load(&layout, &wal_dir, cfg.scm_class, u64::MAX)?;
        let (gen, index, ckpt_bytes, info) =
            (loaded.gen, loaded.index, loaded.ckpt_bytes, loaded.info);
        if let Layout::Dir { dir } = &layout {
            // After a clean close the log must still reach the LSN it was closed at.
            if let Some((cgen, clsn)) = crate::ckpt::read_clean(dir) {
                if (cgen, clsn) != (gen, info.next_lsn) {
                    return Err(VosError::corrupt(
                        crate::ckpt::wal_path(&wal_dir, gen),
                        format!(
                            "the pool was closed cleanly with its log at generation {cgen}, LSN \
                             {clsn}, but the log now ends at generation {gen}, LSN {}: the WAL \
                             was cut short or a checkpoint file is missing, and opening it would \
                             lose acknowledged updates",
                            info.next_lsn
                        ),
                    ));
                }
            }
            // New updates follow: the marker no longer describes the log.
            crate::ckpt::remove_clean(dir)?;
        }
        // Zero whatever follows the valid log so a later replay can never see stale batches.
        if let Some((path, from, to)) = &loaded.prev_torn {
            let (w, _) = flusher::WalDev::open(cfg.scm_class, path, cfg.pmem_wal_len())?;
            w.zero_range(*from, *to, path)?;
        }
        let (wal, wal_path, wal_len) = flusher::open_wal(
            &layout,
            cfg.scm_class,
            &wal_dir,
            gen,
            cfg.pmem_wal_len(),
            cfg.wal_reserve(),
        )?;
        if info.dirty_end > info.end {
            wal.zero_range(info.end, info.dirty_end, &wal_path)?;
        }
        layout.retire(&wal_dir, gen, gen.saturating_sub(1));
        let alloc = Allocator::new(hdr.data_size, index.allocations());
        let meta_est = index.meta_bytes();
        let (data, data_path, data_base) = layout.data()?;
        let recovery = RecoveryStats {
            ckpt_gen: gen,
            ckpt_bytes,
            wal_batches: loaded.batches,
            wal_records: loaded.records,
            torn_bytes: loaded.torn_bytes,
            akeys: index.akey_count(),
            elapsed: t0.elapsed(),
        };
        tracing::info!(dir = %dir.display(), ?recovery, "vos pool opened");
        let sh = Arc::new(Shared {
            dir: dir.clone(),
            data_path,
            data,
            st: Mutex::new(State {
                index,
                alloc,
                pending: Pending::default(),
                spare_bodies: Vec::new(),
                inflight: HashMap::new(),
                failed: None,
                backing_out: false,
                readable: true,
                fail_at: (0, 0),
                failed_waiters: Vec::new(),
                shutdown: false,
                ckpt_waiters: Vec::new(),
                next_lsn: info.next_lsn,
                meta_est,
                last_ckpt: CheckpointStats::default(),
                unacked: Default::default(),
                cw: Default::default(),
                read_seq: 0,
                active_reads: Default::default(),
                deferred_frees: Vec::new(),
                wal: WalState {
                    file: Arc::new(wal),
                    path: wal_path,
                    gen,
                    pos: info.end,
                    alloc: wal_len,
                    zeroed_to: wal_len,
                    acked_lsn: info.next_lsn,
                    acked_pos: info.end,
                    sealed: info.sealed,
                    ckpt_busy: false,
                    ckpt_running: false,
                    nospace_at: None,
                    growing: false,
                    ckpt_nospace: 0,
                    ckpt_retry_at: None,
                },
            }),
            flush_cv: Condvar::new(),
            order_cv: Condvar::new(),
            reads: Mutex::new((Vec::new(), false)),
            read_cv: Condvar::new(),
            hdr,
            _lock: lock,
            wal_ckpt_bytes: match cfg.scm_class {
                ScmClass::Dcpm => cfg
                    .wal_checkpoint_bytes
                    .min(cfg.pmem_wal_len() - (64 << 20)),
                ScmClass::Ram => layout.wal_ckpt_bytes(cfg.wal_checkpoint_bytes),
            },
            layout,
            data_base,
            wal_dir,
            scm_class: cfg.scm_class,
            pmem_wal_len: cfg.pmem_wal_len(),
            wal_chunk: align_up(cfg.wal_chunk.max(4096)),
            wal_reserve: cfg.wal_reserve(),
            wal_fixed,
            faults: cfg.faults.clone(),
            written: Mutex::new((info.next_lsn, false)),
            written_cv: Condvar::new(),
            commit_wait: std::time::Duration::from_micros(cfg.commit_wait_us),
            small_pending: std::sync::atomic::AtomicBool::new(false),
            caller_seen_ns: std::sync::atomic::AtomicU64::new(0),
            opened: Instant::now(),
            grow_tx: Mutex::new(None),
        });
        let zeros = Arc::new(AlignedBuf::zeroed(sh.wal_chunk as usize));
        let mut threads = Vec::new();
        let (ckpt_tx, ckpt_rx) = std::sync::mpsc::channel();
        let (zero_tx, zero_rx) = std::sync::mpsc::channel();
        *sh.grow_tx.lock() = Some(zero_tx.clone());
        let senders = flusher::Senders {
            ckpt: ckpt_tx,
            zero: zero_tx,
        };
        for i in 0..cfg.flushers.max(1) {
            let (s2, z, tx) = (sh.clone(), zeros.clone(), senders.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("vos-flush{i}"))
                    .spawn(move || flusher::run(s2, z, tx))
                    .map_err(|e| VosError::io(&dir, e))?,
            );
        }
        // Joined after the flushers (`stop` joins in order): they exit once the flushers have
        // and the pool dropped its senders.
        let s2 = sh.clone();
        threads.push(
            std::thread::Builder::new()
                .name("vos-ckpt".into())
                .spawn(move || flusher::checkpointer(s2, ckpt_rx))
                .map_err(|e| VosError::io(&dir, e))?,
        );
        let (s2, z) = (sh.clone(), zeros.clone());
        threads.push(
            std::thread::Builder::new()
                .name("vos-zero".into())
                .spawn(move || flusher::zeroer(s2, z, zero_rx))
                .map_err(|e| VosError::io(&dir, e))?,
        );
        for i in 0..READERS {
            let s2 = sh.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("vos-read{i}"))
                    .spawn(move || reader(s2))
                    .map_err(|e| VosError::io(&dir, e))?,
            );
        }
        Ok(VosPool {
            sh,
            caller: Mutex::new((None, Some(senders))),
            zeros,
            threads,
            recovery,
        })
    }

    /// What the open found (checkpoint generation, WAL records replayed, torn bytes, time).
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.recovery
    }

    /// Flushes everything queued and stops the background threads.
    pub fn close(mut self) -> Result<()> {
        self.stop();
        match self.sh.st.lock().failed.clone() {
            Some(f) => Err(VosError::Failed(f)),
            None => Ok(()),
        }
    }

    /// Drives group commit from the calling thread (as a DAOS target's xstream drives its own
    /// I/O): if the queued batch has no data-file writes, writes it to the WAL, syncs it and
    /// completes its updates here, before returning true. Their futures are then ready without a
    /// wake-up from another thread (`vos_perf` on this 2-core VM: 4 KiB at QD16 62-65k against
    /// 51-52k ops/s, 64 B at QD64 274-277k against 202-247k). Batches with data-file writes stay with the flusher
    /// thread (their writes overlap the caller's next submissions there). Call it from the
    /// loop that submits updates, whenever it has nothing else to run; callers that never call
    /// it lose nothing (a flusher thread writes every batch, and takes small ones over 1 ms
    /// after the last call).
    pub fn progress(&self) -> bool {
        let now = (self.sh.opened.elapsed().as_nanos() as u64).max(1);
        let prev = self
            .sh
            .caller_seen_ns
            .swap(now, std::sync::atomic::Ordering::Relaxed);
        let grace = flusher::CALLER_GRACE.as_nanos() as u64;
        if prev == 0 || now.saturating_sub(prev) >= grace {
            // Becoming active: from now on submitters may skip waking the flusher, so wake it
            // here (under the pool lock, so it cannot miss this) to look again by a deadline.
            let _st = self.sh.st.lock();
            self.sh.flush_cv.notify_all();
        }
        if !self
            .sh
            .small_pending
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return false;
        }
        let Some(mut g) = self.caller.try_lock() else {
            return false; // another thread is flushing through this call
        };
        let (ring, senders) = &mut *g;
        let Some(tx) = senders.as_ref() else {
            return false; // stopping
        };
        let ring = ring.get_or_insert_with(|| crate::uring::Ring::new(64));
        flusher::progress(&self.sh, ring, &self.zeros, tx)
    }

    fn stop(&mut self) {
        // The checkpoint and zeroing threads exit once every sender is gone.
        self.caller.lock().1 = None;
        *self.sh.grow_tx.lock() = None;
        self.sh.st.lock().shutdown = true;
        self.sh.flush_cv.notify_all();
        self.sh.order_cv.notify_all();
        self.sh.reads.lock().1 = true;
        self.sh.read_cv.notify_all();
        let stopped = !self.threads.is_empty();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if stopped {
            flusher::seal(&self.sh);
            let st = self.sh.st.lock();
            if let (Layout::Dir { dir }, true, None) = (&self.sh.layout, st.wal.sealed, &st.failed)
            {
                let (gen, lsn) = (st.wal.gen, st.next_lsn);
                drop(st);
                if let Err(e) = crate::ckpt::write_clean(dir, gen, lsn) {
                    tracing::warn!(error = %e, "could not record the clean close");
                }
            }
        }
    }

    /// Queues `op` (already validated) in the next WAL batch and applies it to the index.
    fn log(&self, st: &mut State, op: IndexOp, data: Vec<DataWrite>) -> Completion<Result<()>> {
        self.try_log(st, op, data, 0).unwrap_or_else(failed)
    }

    /// [`log`](Self::log), or `DER_NOSPACE` with nothing queued or applied (and `data`'s extents
    /// given back) when `op` does not fit in the WAL (one that cannot grow: a full file system,
    /// or a fixed-size kdev region / pmem mapping; see `wal_room`). `meta` is
    /// added to the metadata estimate once queued.
    fn try_log(
        &self,
        st: &mut State,
        op: IndexOp,
        data: Vec<DataWrite>,
        meta: u64,
    ) -> Result<Completion<Result<()>>> {
        let mark = st.pending.builder.mark();
        st.pending.builder.push(&op);
        if st.wal.nospace_at.is_some() || self.sh.wal_fixed.is_some() {
            if let Err(e) = self.wal_room(st) {
                st.pending.builder.truncate(mark);
                for d in &data {
                    st.alloc.release(d.off, d.len);
                }
                return Err(e);
            }
        }
        st.meta_est += meta;
        let lsn = st.next_lsn + st.pending.builder.nrec() as u64 - 1;
        match &op {
            IndexOp::Update { cont, oid, .. }
            | IndexOp::Punch { cont, oid, .. }
            | IndexOp::Rewrite { cont, oid, .. } => st.unacked.mark(lsn, *cont, Some(*oid)),
            IndexOp::ContCreate { cont }
            | IndexOp::ContDestroy { cont }
            | IndexOp::Aggregate { cont, .. }
            | IndexOp::Discard { cont, .. } => st.unacked.mark(lsn, *cont, None),
        }
        for d in &data {
            st.inflight.insert(d.off, d.buf.clone());
        }
        st.pending.data.extend(data);
        let rescan = matches!(
            op,
            IndexOp::Aggregate { .. } | IndexOp::Discard { .. } | IndexOp::ContDestroy { .. }
        );
        let freed = st.index.apply(op);
        if rescan {
            st.meta_est = st.index.meta_bytes();
        }
        let seq = st.read_seq;
        st.pending.frees.extend(
            freed
                .iter()
                .filter_map(|p| p.allocation())
                .map(|(o, l)| (seq, o, l)),
        );
        let (c, f) = pair();
        st.pending.waiters.push(c);
        let batch_complete = st.cw.submitted(std::time::Instant::now);
        // A caller driving `progress` takes batches without data-file writes itself; the
        // flusher thread looks again when that caller's grace runs out.
        let small = st.pending.data.is_empty();
        self.sh
            .small_pending
            .store(small, std::sync::atomic::Ordering::Relaxed);
        let caller_takes = small && self.sh.caller_until().is_some_and(|t| Instant::now() < t);
        if (st.pending.waiters.len() == 1 || batch_complete) && !caller_takes {
            // A flusher waits either for any work or for the expected batch to fill up.
            self.sh.flush_cv.notify_one();
        }
        Ok(f)
    }

    /// While the WAL cannot grow, or if it is fixed-size: does the queued batch (with the record
    /// just added) still fit in the WAL space already zeroed (or in the fixed WAL)? If not,
    /// `DER_NOSPACE` (a fixed WAL has room again after the next checkpoint), and for a WAL file
    /// at most every `GROW_RETRY` a new try to grow it (on the zeroing thread), so the pool takes
    /// updates again once space is freed.
    fn wal_room(&self, st: &mut State) -> Result<()> {
        let need = st.wal.pos + st.pending.builder.disk_len();
        if need <= st.wal.alloc {
            return Ok(());
        }
        let retry = self.sh.wal_fixed.is_none()
            && st
                .wal
                .nospace_at
                .is_some_and(|t| t.elapsed() >= flusher::GROW_RETRY);
        if retry && !st.wal.growing && st.wal.alloc == st.wal.zeroed_to {
            st.wal.nospace_at = Some(Instant::now());
            if let Some(tx) = &*self.sh.grow_tx.lock() {
                let _ = tx.send(flusher::ZeroJob {
                    file: st.wal.file.clone(),
                    path: st.wal.path.clone(),
                    gen: st.wal.gen,
                    start: st.wal.alloc,
                    end: st.wal.alloc + self.sh.wal_chunk,
                    grow: true,
                });
            }
        }
        Err(VosError::NoSpace {
            tier: self.sh.wal_fixed.unwrap_or("WAL (its file system is full)"),
            need: need - st.wal.pos,
            free: st.wal.alloc.saturating_sub(st.wal.pos),
        })
    }

    /// The lock, for a mutation: refused once the pool is failed (read-only) or shut down.
    fn lock_ok(&self) -> Result<parking_lot::MutexGuard<'_, State>> {
        let st = self.sh.st.lock();
        if let Some(f) = &st.failed {
            return Err(VosError::Failed(f.clone()));
        }
        if st.shutdown {
            return Err(VosError::Shutdown);
        }
        Ok(st)
    }

    /// The lock, for a read: served from the durable state after a failure, refused while the
    /// back-out is rebuilding the index (it may still show backed-out updates) or if it failed.
    pub(crate) fn lock_read(&self) -> Result<parking_lot::MutexGuard<'_, State>> {
        let st = self.sh.st.lock();
        if st.shutdown {
            return Err(VosError::Shutdown);
        }
        if st.backing_out || !st.readable {
            let f = st.failed.clone().unwrap_or_default();
            return Err(VosError::Failed(f));
        }
        Ok(st)
    }

    /// Creates a container. `DER_EXIST` if it exists.
    pub fn cont_create(&self, cont: Uuid) -> Completion<Result<()>> {
        let mut st = match self.lock_ok() {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        if st.index.has_container(cont.as_u128()) {
            return failed(VosError::Exist {
                what: format!("container {cont}"),
            });
        }
        self.log(
            &mut st,
            IndexOp::ContCreate {
                cont: cont.as_u128(),
            },
            Vec::new(),
        )
    }

    /// Destroys a container and reclaims all of its space. `DER_NONEXIST` if missing.
    pub fn cont_destroy(&self, cont: Uuid) -> Completion<Result<()>> {
        self.log_for_container(
            cont,
            IndexOp::ContDestroy {
                cont: cont.as_u128(),
            },
        )
    }

    /// Logs a container-wide operation; `DER_NONEXIST` if the container does not exist.
    fn log_for_container(&self, cont: Uuid, op: IndexOp) -> Completion<Result<()>> {
        let mut st = match self.lock_ok() {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        if !st.index.has_container(cont.as_u128()) {
            return failed(VosError::Nonexist {
                what: format!("container {cont}"),
            });
        }
        self.log(&mut st, op, Vec::new())
    }

    /// Containers in this pool.
    pub fn containers(&self) -> Vec<Uuid> {
        self.sh
            .st
            .lock()
            .index
            .containers()
            .into_iter()
            .map(Uuid::from_u128)
            .collect()
    }

    /// Updates `iods` under `dkey` at `epoch`; completes once durable. Conditional `flags` from
    /// [`cond`]. Values above the inline threshold are written to the data file first.
    pub fn update(
        &self,
        cont: Uuid,
        oid: Oid,
        epoch: Epoch,
        flags: u64,
        dkey: &[u8],
        iods: Vec<UpdateIod>,
    ) -> Completion<Result<()>> {
        let thr = self.sh.hdr.inline_threshold as usize;
        // Copy (unless given aligned) + checksum large values before taking the lock.
        let big = |b: &IoBuf| {
            (b.len() > thr).then(|| {
                let len = crate::uring::align_up(b.len() as u64);
                let buf = match b.aligned_buf() {
                    Some(a) => a.clone(),
                    None => Arc::new(AlignedBuf::from_slice(b)),
                };
                (buf, len, crc32c::crc32c(b))
            })
        };
        let prepared: Vec<Vec<Prepared>> = iods
            .iter()
            .map(|i| match &i.value {
                IodValue::Single(b) => vec![big(b)],
                IodValue::Array { extents, .. } => extents.iter().map(|(_, b)| big(b)).collect(),
            })
            .collect();
        let mut st = match self.lock_ok() {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        if let Err(e) = st
            .index
            .check_update(cont.as_u128(), oid, epoch, flags, dkey, &iods)
        {
            return failed(e);
        }
        let need: u64 = prepared
            .iter()
            .flatten()
            .flatten()
            .map(|(_, len, _)| *len)
            .sum();
        if need > st.alloc.free_bytes() {
            return failed(VosError::NoSpace {
                tier: "data file",
                need,
                free: st.alloc.free_bytes(),
            });
        }
        // Metadata (DRAM, the scm budget): keys, a version record, inline bytes.
        let meta_need: u64 = dkey.len() as u64
            + iods
                .iter()
                .zip(&prepared)
                .map(|(i, p)| {
                    let inline: u64 = match &i.value {
                        IodValue::Single(b) => b.len() as u64,
                        IodValue::Array { extents, .. } => {
                            extents.iter().map(|(_, b)| b.len() as u64).sum()
                        }
                    };
                    let big: u64 = p.iter().flatten().map(|(_, len, _)| *len).sum();
                    96 + i.akey.len() as u64 + 40 * p.len() as u64 + inline.saturating_sub(big)
                })
                .sum::<u64>();
        let meta_free = self.sh.hdr.scm_size.saturating_sub(st.meta_est);
        if meta_need > meta_free {
            return failed(VosError::NoSpace {
                tier: "scm (metadata)",
                need: meta_need,
                free: meta_free,
            });
        }

        let mut data = Vec::new();
        let mut op_iods = Vec::with_capacity(iods.len());
        for (iod, prep) in iods.into_iter().zip(prepared) {
            let mut prep = prep.into_iter();
            let mut place = |bytes: IoBuf, st: &mut State| -> Result<Payload> {
                match prep.next().flatten() {
                    None => Ok(Payload::Inline(bytes.into_vec())),
                    Some((buf, len, crc)) => {
                        let free = st.alloc.free_bytes();
                        let off = st.alloc.reserve(len).ok_or(VosError::NoSpace {
                            tier: "data file (fragmented)",
                            need: len,
                            free,
                        })?;
                        data.push(DataWrite { off, buf, len });
                        Ok(Payload::Extent {
                            off,
                            len: bytes.len() as u32,
                            crc,
                        })
                    }
                }
            };
            let value = match iod.value {
                IodValue::Single(b) => place(b, &mut st).map(OpValue::Single),
                IodValue::Array { rsize, extents } => extents
                    .into_iter()
                    .map(|(r, b)| place(b, &mut st).map(|p| (r, p)))
                    .collect::<Result<Vec<_>>>()
                    .map(|exts| OpValue::Array { rsize, exts }),
            };
            match value {
                Ok(value) => op_iods.push(OpIod {
                    akey: iod.akey,
                    value,
                }),
                Err(e) => {
                    for d in &data {
                        st.alloc.release(d.off, d.len);
                    }
                    return failed(e);
                }
            }
        }
        let op = IndexOp::Update {
            cont: cont.as_u128(),
            oid: oid.as_u128(),
            epoch,
            dkey: dkey.to_vec(),
            iods: op_iods,
        };
        self.try_log(&mut st, op, data, meta_need)
            .unwrap_or_else(failed)
    }

    /// Fetches `iods` under `dkey` as of `epoch`.
    pub fn fetch(
        &self,
        cont: Uuid,
        oid: Oid,
        epoch: Epoch,
        flags: u64,
        dkey: &[u8],
        iods: &[FetchIod],
    ) -> Completion<Result<Vec<Fetched>>> {
        let mut st = match self.lock_read() {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let (mut out, copies) = match st
            .index
            .fetch(cont.as_u128(), oid, epoch, flags, dkey, iods)
        {
            Ok(x) => x,
            Err(e) => return failed(e),
        };
        let mut disk = Vec::new();
        for c in copies {
            match st.inflight.get(&c.ext_off) {
                Some(b) => copy_out(&mut out, &c, b.as_slice()),
                None => disk.push(c),
            }
        }
        let wait = st
            .unacked
            .pending_for(cont.as_u128(), oid.as_u128(), st.wal.acked_lsn);
        if disk.is_empty() && wait.is_none() {
            return Completion::ready(Ok(out));
        }
        let seq = st.read_seq;
        if !disk.is_empty() {
            st.read_seq += 1;
            st.active_reads.insert(seq);
        }
        if let Some(lsn) = wait {
            // Depends on an operation not yet durable: answered when it is (or fails).
            let (done, f) = pair();
            st.unacked.park(crate::unacked::Parked {
                lsn,
                out,
                disk: (!disk.is_empty()).then_some((seq, disk)),
                done,
            });
            return f;
        }
        drop(st);
        let (done, f) = pair();
        self.sh.reads.lock().0.push(ReadJob {
            seq,
            out,
            copies: disk,
            done,
        });
        self.sh.read_cv.notify_one();
        f
    }

    /// Punches the object (`dkey` None), a dkey (`akey` None) or an akey at `epoch`. `flags`:
    /// [`cond::COND_PUNCH`] makes the punch of something that does not exist at `epoch` fail
    /// with `DER_NONEXIST` (without it, such a punch is recorded anyway).
    pub fn punch_cond(
        &self,
        cont: Uuid,
        oid: Oid,
        epoch: Epoch,
        flags: u64,
        dkey: Option<&[u8]>,
        akey: Option<&[u8]>,
    ) -> Completion<Result<()>> {
        let mut st = match self.lock_ok() {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        if akey.is_some() && dkey.is_none() {
            return failed(VosError::Invalid("akey punch without a dkey".into()));
        }
        if let Err(e) = st
            .index
            .check_punch_cond(cont.as_u128(), oid, epoch, flags, dkey, akey)
        {
            return failed(e);
        }
        let op = IndexOp::Punch {
            cont: cont.as_u128(),
            oid: oid.as_u128(),
            epoch,
            dkey: dkey.map(|d| d.to_vec()),
            akey: akey.map(|a| a.to_vec()),
        };
        self.log(&mut st, op, Vec::new())
    }

    /// Punches an object at `epoch`: fetches at `>= epoch` see nothing, earlier ones see the old data.
    pub fn punch_object(&self, cont: Uuid, oid: Oid, epoch: Epoch) -> Completion<Result<()>> {
        self.punch_cond(cont, oid, epoch, 0, None, None)
    }
    /// Punches one dkey at `epoch`.
    pub fn punch_dkey(
        &self,
        cont: Uuid,
        oid: Oid,
        epoch: Epoch,
        dkey: &[u8],
    ) -> Completion<Result<()>> {
        self.punch_cond(cont, oid, epoch, 0, Some(dkey), None)
    }
    /// Punches one akey at `epoch`.
    pub fn punch_akey(
        &self,
        cont: Uuid,
        oid: Oid,
        epoch: Epoch,
        dkey: &[u8],
        akey: &[u8],
    ) -> Completion<Result<()>> {
        self.punch_cond(cont, oid, epoch, 0, Some(dkey), Some(akey))
    }

    /// Merges/discards versions no read at an epoch `>= upto` can see (`upto` = the oldest epoch
    /// any snapshot still needs) and reclaims their data-file space.
    ///
    /// Partly shadowed data-file extents are first rewritten into their visible pieces
    /// (`rewrite`): that reads and writes the data file synchronously on the calling thread.
    pub fn aggregate(&self, cont: Uuid, upto: Epoch) -> Completion<Result<()>> {
        let rewrites = crate::rewrite::prepare(&self.sh, cont.as_u128(), upto);
        let mut st = match self.lock_ok() {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        // Logged ahead of the Aggregate op: its completion (LSN order) covers them. One that
        // does not fit in a full WAL ends the aggregation there (its new extents are reclaimed
        // at the next open, like those of a failed batch).
        for op in rewrites {
            if let Err(e) = self.try_log(&mut st, op, Vec::new(), 0) {
                return failed(e);
            }
        }
        if !st.index.has_container(cont.as_u128()) {
            return failed(VosError::Nonexist {
                what: format!("container {cont}"),
            });
        }
        self.log(
            &mut st,
            IndexOp::Aggregate {
                cont: cont.as_u128(),
                upto,
            },
            Vec::new(),
        )
    }

    /// Removes every version and punch written in `epr` (aborted transactions). `DER_EP_OLD` if
    /// `epr.lo` is at or below the aggregated epoch.
    pub fn discard(&self, cont: Uuid, epr: EpochRange) -> Completion<Result<()>> {
        let mut st = match self.lock_ok() {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        // Aggregated history cannot be discarded (it may already be merged with newer versions).
        if let Err(e) = st.index.check_punch(cont.as_u128(), epr.lo) {
            return failed(e);
        }
        self.log(
            &mut st,
            IndexOp::Discard {
                cont: cont.as_u128(),
                lo: epr.lo,
                hi: epr.hi,
            },
            Vec::new(),
        )
    }

    /// Space in use and total for metadata (DRAM, approximate) and the data file.
    pub fn space(&self) -> SpaceInfo {
        let st = self.sh.st.lock();
        SpaceInfo {
            meta_used: st.meta_est,
            meta_total: self.sh.hdr.scm_size,
            data_used: st.alloc.used(),
            data_total: st.alloc.total(),
            wal_bytes: st.wal.pos,
        }
    }

    /// What the last checkpoint cost (zero before the first one).
    pub fn last_checkpoint(&self) -> CheckpointStats {
        self.sh.st.lock().last_ckpt
    }

    /// Writes a checkpoint now and starts a new WAL generation; completes when durable.
    pub fn checkpoint(&self) -> Completion<Result<()>> {
        let mut st = match self.lock_ok() {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let (c, f) = pair();
        st.ckpt_waiters.push(c);
        self.sh.flush_cv.notify_one();
        f
    }
}

impl Drop for VosPool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl State {
    /// Returns durable frees to the allocator once no read planned before them is in flight,
    /// so a fetch never reads an extent that was freed and reused under it.
    pub(crate) fn release_ready_frees(&mut self) {
        let oldest = self.active_reads.first().copied().unwrap_or(u64::MAX);
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_frees)
            .into_iter()
            .partition(|(seq, _, _)| oldest >= *seq);
        self.deferred_frees = wait;
        for (_, off, len) in ready {
            self.alloc.release(off, len);
        }
    }
}

impl Shared {
    /// Until when a caller driving [`VosPool::progress`] counts as active (None: never called).
    pub(crate) fn caller_until(&self) -> Option<Instant> {
        match self
            .caller_seen_ns
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => None,
            ns => Some(self.opened + std::time::Duration::from_nanos(ns) + flusher::CALLER_GRACE),
        }
    }

    /// Answers parked fetches whose operations are now durable (data-file reads go to the
    /// readers). Call without the pool lock.
    pub(crate) fn answer_parked(&self, ready: Vec<crate::unacked::Parked>) {
        for p in ready {
            match p.disk {
                None => p.done.complete(Ok(p.out)),
                Some((seq, copies)) => {
                    self.reads.lock().0.push(ReadJob {
                        seq,
                        out: p.out,
                        copies,
                        done: p.done,
                    });
                    self.read_cv.notify_one();
                }
            }
        }
    }
}

/// Removes the files a pool keeps in `dir` (and nothing else there).
fn remove_pool_files(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = matches!(&*name, "data" | "pool.hdr" | "pool.lock" | "pool.clean")
            || name.starts_with("ckpt.")
            || name.starts_with("wal.");
        if ours {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The directory a pool lives in (for tools that inspect files).
pub fn pool_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}
