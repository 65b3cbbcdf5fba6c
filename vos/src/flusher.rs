//! Group-commit WAL writers. `PoolConfig::flushers` threads (default 1) each take everything
//! queued as one batch; with two, while one batch waits for its fdatasync the next one is already
//! being written. Checkpoints are made by one more thread ([`checkpointer`]), so batches keep
//! being written meanwhile. Batches are acknowledged strictly in LSN order, and a batch is acknowledged only
//! after its own fdatasync and after every earlier batch was acknowledged.
//!
//! Per batch: data-file writes + fdatasync(data), then the WAL batch write + fdatasync(wal).
//! Batch writes are issued in LSN order (`Shared::written`: a batch is written only after
//! the previous batch's write completed; the fdatasyncs overlap). Each batch header records
//! `durable_lsn` (everything below it was acknowledged before this batch was written); replay
//! uses both to tell a torn tail (only the last written batch) from damage in the middle.
//! A clean close appends an empty seal batch ([`seal`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::backout::back_out;
use crate::ckpt;
use crate::config::ScmClass;
use crate::error::{Result, VosError};
use crate::fault::{FaultPoint, Faults};
use crate::index::Index;
use crate::layout::Layout;
use crate::pool::{Pending, Shared};
use crate::uring::{open_direct, AlignedBuf, IoOp, Ring};

/// WAL batches use RWF_DSYNC writes instead of write + fdatasync (process-wide switch for A/B
/// measurement; see README).
pub static DSYNC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Where the WAL lives: an O_DIRECT file on the bdev tier (scm class `ram`), or a
/// libpmem-mapped file on the scm tier (class `dcpm`, feature `pmem`).
pub enum WalDev {
    /// `limit` bytes of `file` starting at `base` (a whole file: base 0, no limit; a kdev:
    /// the WAL region).
    File {
        file: Arc<File>,
        base: u64,
        limit: u64,
    },
    #[cfg(feature = "pmem")]
    Pmem(parking_lot::Mutex<pmem_sys::PmemFile>),
}

impl WalDev {
    /// Opens (creating if needed) the WAL at `path`; returns it and its current length (bytes
    /// already zeroed / mapped).
    pub fn open(class: ScmClass, path: &Path, pmem_len: u64) -> Result<(WalDev, u64)> {
        match class {
            ScmClass::Ram => {
                let f = open_direct(path, true).map_err(|e| VosError::io(path, e))?;
                let len = f.metadata().map_err(|e| VosError::io(path, e))?.len();
                Ok((
                    WalDev::File {
                        file: Arc::new(f),
                        base: 0,
                        limit: u64::MAX,
                    },
                    len,
                ))
            }
            #[cfg(feature = "pmem")]
            ScmClass::Dcpm => {
                let m = pmem_sys::PmemFile::open_or_create(path, pmem_len as usize)
                    .map_err(|e| VosError::io(path, e))?;
                let len = m.len() as u64;
                Ok((WalDev::Pmem(parking_lot::Mutex::new(m)), len))
            }
            #[cfg(not(feature = "pmem"))]
            ScmClass::Dcpm => {
                let _ = pmem_len;
                Err(VosError::Unsupported {
                    class: "dcpm",
                    reason: "built without the `pmem` feature".into(),
                })
            }
        }
    }

    /// The file of a WAL that grows (a whole file on the bdev tier, pre-zeroed ahead of where
    /// batches go); None for a fixed-size WAL (a kdev region, a pmem mapping).
    pub(crate) fn growable(&self) -> Option<&Arc<File>> {
        match self {
            WalDev::File {
                file,
                limit: u64::MAX,
                ..
            } => Some(file),
            _ => None,
        }
    }

    /// Zeroes `[from, to)` durably (recovery discards a torn tail this way).
    pub fn zero_range(&self, from: u64, to: u64, path: &Path) -> Result<()> {
        let zeros = AlignedBuf::zeroed((to - from) as usize);
        match self {
            WalDev::File { file, base, .. } => {
                let mut ring = Ring::new(4);
                let mut ops = [
                    IoOp::Write {
                        file,
                        buf: zeros.as_slice(),
                        off: base + from,
                    },
                    IoOp::Fdatasync { file },
                ];
                for r in ring.run(&mut ops) {
                    r.map_err(|e| VosError::io(path, e))?;
                }
                Ok(())
            }
            #[cfg(feature = "pmem")]
            WalDev::Pmem(m) => m
                .lock()
                .write_persist(from as usize, &zeros.as_slice()[..(to - from) as usize])
                .map_err(|e| VosError::io(path, e)),
        }
    }

    /// Writes one sealed batch at `pos`, calls `written` once the write has completed (before
    /// the sync: the next batch may be written from then on), and makes it durable.
    pub(crate) fn write_durable(
        &self,
        ring: &mut Ring,
        buf: &AlignedBuf,
        pos: u64,
        path: &Path,
        faults: Option<&Faults>,
        written: impl FnOnce(),
    ) -> Result<()> {
        let fault = |p| faults.map_or(Ok(()), |f| f.check(p));
        fault(FaultPoint::WalWrite).map_err(|e| VosError::io(path, e))?;
        match self {
            WalDev::File { file, base, limit } => {
                if pos + buf.len() as u64 > *limit {
                    return Err(VosError::NoSpace {
                        tier: "kdev WAL region",
                        need: pos + buf.len() as u64,
                        free: *limit,
                    });
                }
                let dsync = DSYNC.load(std::sync::atomic::Ordering::Relaxed);
                let write = if dsync {
                    IoOp::WriteDsync {
                        file,
                        buf: buf.as_slice(),
                        off: base + pos,
                    }
                } else {
                    IoOp::Write {
                        file,
                        buf: buf.as_slice(),
                        off: base + pos,
                    }
                };
                ring.run(&mut [write])
                    .remove(0)
                    .map_err(|e| VosError::io(path, e))?;
                written();
                // The injected fdatasync error: the batch IS written, the sync "fails".
                fault(FaultPoint::WalSync).map_err(|e| VosError::io(path, e))?;
                if !dsync {
                    ring.run(&mut [IoOp::Fdatasync { file }])
                        .remove(0)
                        .map_err(|e| VosError::io(path, e))?;
                }
                Ok(())
            }
            #[cfg(feature = "pmem")]
            WalDev::Pmem(m) => {
                let _ = ring;
                m.lock()
                    .write_persist(pos as usize, buf.as_slice())
                    .map_err(|e| VosError::io(path, e))?;
                written();
                fault(FaultPoint::WalSync).map_err(|e| VosError::io(path, e))
            }
        }
    }
}

/// The WAL's shared position state (under the pool lock).
pub struct WalState {
    pub file: Arc<WalDev>,
    pub path: PathBuf,
    pub gen: u64,
    /// Where the next batch goes.
    pub pos: u64,
    /// WAL bytes claimed for pre-zeroing so far.
    pub alloc: u64,
    /// WAL bytes known to be zeroed (pre-zero writes completed).
    pub zeroed_to: u64,
    /// Next LSN not yet acknowledged.
    pub acked_lsn: u64,
    /// WAL offset just past the last acknowledged batch (where unacknowledged ones start).
    pub acked_pos: u64,
    /// Nothing was logged since the last seal (or the log is empty): close writes no seal.
    pub sealed: bool,
    /// Take no new batch (a kdev/dcpm checkpoint, or the WAL switch at a checkpoint's end).
    pub ckpt_busy: bool,
    /// A checkpoint is being made (at most one at a time).
    pub ckpt_running: bool,
    /// Since when the WAL cannot grow (its file system is full, `ENOSPC`): records that do not
    /// fit below `alloc` are refused with `DER_NOSPACE` at submission; retried every
    /// [`GROW_RETRY`].
    pub nospace_at: Option<Instant>,
    /// A grow retry is zeroing past `alloc`: nothing else zeroes there meanwhile.
    pub growing: bool,
    /// Checkpoints that failed for lack of space in a row, and when the next one may start.
    pub ckpt_nospace: u32,
    pub ckpt_retry_at: Option<Instant>,
}

struct Job {
    batch: Pending,
    lsn_first: u64,
    durable_lsn: u64,
    gen: u64,
    file: Arc<WalDev>,
    path: PathBuf,
    pos: u64,
    zero: Option<(u64, u64)>,
    zero_later: Option<(u64, u64)>,
    ckpt: Option<CkptJob>,
}

/// A copy of the index, the LSN it covers up to, where in the current WAL the batches after
/// it start, and who waits for it.
pub type CkptJob = (
    Box<Index>,
    u64,
    u64,
    Vec<crate::completion::Completer<Result<()>>>,
);

/// Batch bodies kept for reuse (one per batch in flight and one being filled), and the largest
/// kept.
const SPARE_BODIES: usize = 4;
const SPARE_BODY_MAX: usize = 16 << 20;

/// A flusher thread: takes batches, writes them, acknowledges them in LSN order, and hands
/// due checkpoints to the checkpointer and WAL zeroing to the zeroer (`tx`), so batches keep being written while a
/// checkpoint is encoded and written.
pub fn run(sh: Arc<Shared>, zeros: Arc<AlignedBuf>, tx: Senders) {
    let mut ring = Ring::new(256);
    while let Some(job) = take(&sh, Taker::Thread) {
        process(&sh, &mut ring, &zeros, &tx, job);
    }
}

/// Where a flush hands work it does not do itself.
#[derive(Clone)]
pub struct Senders {
    pub ckpt: std::sync::mpsc::Sender<CkptJob>,
    pub zero: std::sync::mpsc::Sender<ZeroJob>,
}

/// A WAL range to pre-zero.
pub struct ZeroJob {
    pub file: Arc<WalDev>,
    pub path: PathBuf,
    pub gen: u64,
    pub start: u64,
    pub end: u64,
    /// A new try to grow a WAL that could not (its file system was full): the range is not
    /// claimed, nothing is placed there until the zeroing succeeded.
    pub grow: bool,
}

/// How often a full WAL tries again to grow (while updates are refused with `DER_NOSPACE`).
pub(crate) const GROW_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Who takes a batch: a flusher thread, or the caller of `VosPool::progress`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Taker {
    Thread,
    Caller,
}

/// A flusher thread leaves batches without data-file writes to a caller that drove
/// [`progress`] this recently (it takes them after that, so a caller that stops driving only
/// delays them this long).
pub(crate) const CALLER_GRACE: std::time::Duration = std::time::Duration::from_millis(1);

/// `VosPool::progress`: if the queued batch has no data-file writes, writes and acknowledges
/// it on the calling thread. True if it did.
pub(crate) fn progress(
    sh: &Arc<Shared>,
    ring: &mut Ring,
    zeros: &AlignedBuf,
    tx: &Senders,
) -> bool {
    match take(sh, Taker::Caller) {
        Some(job) => {
            process(sh, ring, zeros, tx, job);
            true
        }
        None => false,
    }
}

/// Writes one taken batch, acknowledges it in LSN order, and hands on its WAL zeroing and
/// checkpoint.
fn process(sh: &Arc<Shared>, ring: &mut Ring, zeros: &AlignedBuf, tx: &Senders, job: Job) {
    let Job {
        mut batch,
        lsn_first,
        durable_lsn,
        gen,
        file,
        path,
        pos,
        zero,
        zero_later,
        ckpt,
    } = job;
    let nrec = batch.builder.nrec() as u64;
    let batch_len = if nrec == 0 {
        0
    } else {
        batch.builder.disk_len()
    };
    let t_write = Instant::now();
    let res = write(
        sh,
        ring,
        &batch,
        lsn_first,
        durable_lsn,
        gen,
        &file,
        &path,
        pos,
        zero,
        zeros,
    );
    // Acknowledge in LSN order.
    let (failed, leader, ready) = {
        let mut st = sh.st.lock();
        while st.wal.acked_lsn != lsn_first {
            sh.order_cv.wait(&mut st);
        }
        let leader = match &res {
            Err(e) => st.fail(sh, e),
            Ok(()) => false,
        };
        for d in &batch.data {
            st.inflight.remove(&d.off);
        }
        st.wal.acked_lsn = lsn_first + nrec;
        st.wal.acked_pos = pos + batch_len;
        // These submitters will likely resubmit right away: the next batch may wait for them.
        // (A checkpoint-only job writes nothing and answers nobody: it is no sample.)
        if !batch.waiters.is_empty() {
            st.cw
                .acked(batch.waiters.len(), t_write.elapsed(), Instant::now());
        }
        sh.order_cv.notify_all();
        let mut ready = Vec::new();
        let body = std::mem::take(&mut batch.builder).into_buffer();
        if st.spare_bodies.len() < SPARE_BODIES && body.capacity() <= SPARE_BODY_MAX {
            st.spare_bodies.push(body);
        }
        if st.failed.is_none() {
            st.deferred_frees.extend(batch.frees.iter().copied());
            st.release_ready_frees();
            let acked = st.wal.acked_lsn;
            ready = st.unacked.acked(acked);
        } else if st.backing_out {
            // Answered by the back-out, once the index no longer shows this batch.
            st.failed_waiters.append(&mut batch.waiters);
        }
        (st.failed.clone(), leader, ready)
    };
    // The callers' value buffers are free again once their updates complete (one that shares
    // its DMA buffer with vos can take it back with `Arc::get_mut`).
    drop(std::mem::take(&mut batch.data));
    for w in batch.waiters.drain(..) {
        w.complete(match &failed {
            None => Ok(()),
            Some(f) => Err(VosError::Failed(f.clone())),
        });
    }
    sh.answer_parked(ready);
    if leader {
        back_out(sh);
    }
    if let Some((start, end)) = zero_later {
        // On the zeroing thread: a 16 MiB write here would hold up the next batch.
        let job = ZeroJob {
            file: file.clone(),
            path: path.clone(),
            gen,
            start,
            end,
            grow: false,
        };
        if let Err(std::sync::mpsc::SendError(job)) = tx.zero.send(job) {
            zero_or_fail(sh, ring, zeros, job);
        }
    }
    if let Some(job) = ckpt {
        if let Err(std::sync::mpsc::SendError(job)) = tx.ckpt.send(job) {
            // The checkpointer is gone (it only exits after every flusher): do it here.
            run_checkpoint(sh, job);
        }
    }
}

/// The WAL zeroing thread: pre-zeroes the chunks flushes ask for, in order. Exits once every
/// sender (flushers, the pool) is gone.
pub fn zeroer(sh: Arc<Shared>, zeros: Arc<AlignedBuf>, jobs: std::sync::mpsc::Receiver<ZeroJob>) {
    let mut ring = Ring::new(16);
    while let Ok(job) = jobs.recv() {
        zero_or_fail(&sh, &mut ring, &zeros, job);
    }
}

/// Runs one zeroing job. A full file system only stops the WAL from growing (updates that do
/// not fit in what is zeroed get `DER_NOSPACE`); any other failure fails the pool like a failed
/// flush.
fn zero_or_fail(sh: &Shared, ring: &mut Ring, zeros: &AlignedBuf, job: ZeroJob) {
    let res = if job.grow {
        grow_wal(sh, ring, zeros, &job)
    } else {
        zero_wal(
            sh, ring, &job.file, &job.path, job.gen, job.start, job.end, zeros,
        )
    };
    if let Err(e) = res {
        let leader = {
            let mut st = sh.st.lock();
            if is_nospace(&e) && st.failed.is_none() {
                if st.wal.gen == job.gen {
                    wal_full(sh, &mut st, &e);
                }
                false
            } else {
                st.fail(sh, &e)
            }
        };
        if leader {
            back_out(sh);
        }
    }
}

fn is_nospace(e: &VosError) -> bool {
    use daos_common::DaosErrno;
    e.der() == daos_common::Der::Nospace
}

/// The WAL could not be extended (`e`: its file system is full): give back what was claimed
/// past the zeroed end, so only records that fit there are taken from now on.
fn wal_full(sh: &Shared, st: &mut crate::pool::State, e: &VosError) {
    if st.wal.nospace_at.is_none() {
        tracing::warn!(error = %e, wal = %st.wal.path.display(), zeroed = st.wal.zeroed_to,
            "WAL cannot grow: updates that do not fit get DER_NOSPACE until space is freed");
    }
    st.wal.nospace_at = Some(Instant::now());
    st.wal.alloc = st.wal.zeroed_to;
    sh.order_cv.notify_all();
}

/// A grow retry: zeroes the chunk past the end of a full WAL; if that worked, the WAL takes
/// records there again.
fn grow_wal(sh: &Shared, ring: &mut Ring, zeros: &AlignedBuf, job: &ZeroJob) -> Result<()> {
    let Some(file) = job.file.growable() else {
        return Ok(());
    };
    {
        let mut st = sh.st.lock();
        let current = st.wal.gen == job.gen
            && st.wal.alloc == job.start
            && st.wal.zeroed_to == job.start
            && st.failed.is_none()
            && !st.wal.growing;
        if !current {
            return Ok(()); // space came back another way, or a checkpoint switched the WAL
        }
        st.wal.growing = true;
    }
    let res = write_zeros(ring, file, zeros, job.start, job.end);
    let mut st = sh.st.lock();
    st.wal.growing = false;
    if res.is_ok() && st.wal.gen == job.gen {
        st.wal.zeroed_to = st.wal.zeroed_to.max(job.end);
        st.wal.alloc = st.wal.alloc.max(job.end);
        st.wal.nospace_at = None;
        tracing::info!(wal = %job.path.display(), "WAL can grow again");
    }
    sh.order_cv.notify_all();
    res.map_err(|e| VosError::io(&job.path, e))
}

/// Writes zeros over `[start, end)` of `file`.
fn write_zeros(
    ring: &mut Ring,
    file: &File,
    zeros: &AlignedBuf,
    start: u64,
    end: u64,
) -> std::io::Result<()> {
    let mut ops = Vec::new();
    let mut off = start;
    while off < end {
        let n = ((end - off) as usize).min(zeros.len());
        ops.push(IoOp::Write {
            file,
            buf: &zeros.as_slice()[..n],
            off,
        });
        off += n as u64;
    }
    for r in ring.run(&mut ops) {
        match r {
            // A short write extending a file means there was no room for the rest (POSIX): the
            // file system is full, as the next write would say with ENOSPC.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            r => {
                r?;
            }
        }
    }
    Ok(())
}

/// The checkpointer thread: makes each checkpoint handed over by a flusher. Exits once every
/// flusher has exited (their senders are dropped) and the last checkpoint is done.
pub fn checkpointer(sh: Arc<Shared>, jobs: std::sync::mpsc::Receiver<CkptJob>) {
    while let Ok(job) = jobs.recv() {
        run_checkpoint(&sh, job);
    }
}

/// Makes one checkpoint (unless the pool failed meanwhile), ends the checkpoint state and
/// answers those who asked for it.
fn run_checkpoint(sh: &Shared, (snapshot, next_lsn, tail_pos, waiters): CkptJob) {
    let failed = sh.st.lock().failed.clone();
    let r = match failed {
        None => checkpoint(sh, snapshot, next_lsn, tail_pos),
        Some(f) => Err(VosError::Failed(f)),
    };
    let leader = {
        let mut st = sh.st.lock();
        st.wal.ckpt_busy = false;
        st.wal.ckpt_running = false;
        match &r {
            Err(e) if is_nospace(e) && st.failed.is_none() => {
                // No room for the checkpoint (or the next WAL): the current WAL stays in use
                // and the checkpoint is tried again later: after 1 s, doubling up to 32 s.
                st.wal.ckpt_nospace += 1;
                let wait = CKPT_RETRY * (1u32 << st.wal.ckpt_nospace.min(6));
                st.wal.ckpt_retry_at = Some(Instant::now() + wait.min(CKPT_RETRY_MAX));
                tracing::warn!(error = %e, retry_s = wait.min(CKPT_RETRY_MAX).as_secs_f64(),
                    "checkpoint failed for lack of space; the WAL goes on");
                false
            }
            Err(e) => st.fail(sh, e),
            Ok(()) => {
                st.wal.ckpt_nospace = 0;
                st.wal.ckpt_retry_at = None;
                false
            }
        }
    };
    if leader {
        back_out(sh);
    }
    sh.flush_cv.notify_all();
    sh.order_cv.notify_all();
    for w in waiters {
        w.complete(r.as_ref().map(|_| ()).map_err(|e| match e {
            VosError::NoSpace { .. } | VosError::Io { .. } => e.duplicate(),
            _ => VosError::Failed(e.to_string()),
        }));
    }
}

/// Half the first wait before a checkpoint that failed for lack of space is tried again
/// (doubled per failure in a row, up to 64 times this), and the longest wait.
const CKPT_RETRY: std::time::Duration = std::time::Duration::from_millis(500);
const CKPT_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);

fn take(sh: &Shared, who: Taker) -> Option<Job> {
    let mut st = sh.st.lock();
    if who == Taker::Caller
        && (st.wal.ckpt_busy || st.pending.builder.is_empty() || !st.pending.data.is_empty())
    {
        return None;
    }
    if who == Taker::Thread {
        loop {
            loop {
                let has_work = !st.pending.builder.is_empty()
                    || (!st.ckpt_waiters.is_empty() && !st.wal.ckpt_running);
                if !st.wal.ckpt_busy && has_work {
                    break;
                }
                if st.shutdown && !has_work && !st.wal.ckpt_busy {
                    return None;
                }
                match sh.caller_until() {
                    // Submitters do not wake this thread for batches a driving caller will take:
                    // look again when its grace runs out.
                    Some(until) if Instant::now() < until => {
                        sh.flush_cv.wait_until(&mut st, until);
                    }
                    _ => sh.flush_cv.wait(&mut st),
                }
            }
            // A caller driving `progress` takes batches without data-file writes itself (no
            // thread hand-off on its critical path); leave them to it while it is active.
            if let Some(until) = sh.caller_until() {
                let leave = !st.shutdown
                    && st.pending.data.is_empty()
                    && !st.pending.builder.is_empty()
                    && Instant::now() < until;
                if leave {
                    sh.flush_cv.wait_until(&mut st, until);
                    continue;
                }
            }
            if st.cw.should_wait(sh.commit_wait) && !st.pending.builder.is_empty() {
                // Group-commit wait (see `commit_wait`): the submitter completing the expected batch
                // notifies.
                let bound = st.cw.bound(sh.commit_wait);
                let deadline = Instant::now() + bound;
                while st.cw.missing() && !st.shutdown && !st.wal.ckpt_busy {
                    if sh.flush_cv.wait_until(&mut st, deadline).timed_out() {
                        st.cw.timed_out();
                        break;
                    }
                }
                if st.wal.ckpt_busy || st.pending.builder.is_empty() {
                    // Another flusher took the batch meanwhile, or a checkpoint is switching the
                    // WAL: start over (a loop, not a recursive call: with two flushers the loser
                    // could otherwise stack one frame per lost race).
                    continue;
                }
            }
            break;
        }
    }
    let batch = std::mem::take(&mut st.pending);
    sh.small_pending
        .store(false, std::sync::atomic::Ordering::Relaxed);
    if let Some(body) = st.spare_bodies.pop() {
        st.pending.builder = crate::wal::BatchBuilder::with_buffer(body);
    }
    st.wal.sealed &= batch.builder.is_empty();
    let lsn_first = st.next_lsn;
    st.next_lsn += batch.builder.nrec() as u64;
    let len = if batch.builder.is_empty() {
        0
    } else {
        batch.builder.disk_len()
    };
    let pos = st.wal.pos;
    st.wal.pos += len;
    let mut zero = None;
    let mut zero_later = None;
    let plain = st.wal.file.growable().is_some();
    if pos + len > st.wal.alloc {
        // This batch's own region is not claimed yet: zero it before writing (only what it
        // needs while the WAL's file system is full: it was queued before that was known).
        let start = st.wal.alloc;
        if st.wal.nospace_at.is_some() {
            st.wal.alloc = pos + len;
        }
        while pos + len > st.wal.alloc {
            st.wal.alloc += sh.wal_chunk;
        }
        zero = Some((start, st.wal.alloc));
    } else if plain && st.wal.nospace_at.is_none() && pos + len + sh.wal_chunk / 2 > st.wal.alloc {
        // Half a chunk left: zero the next chunk after this batch is acknowledged, so later
        // batches normally find their region already zeroed (no 16 MiB write in their path).
        zero_later = Some((st.wal.alloc, st.wal.alloc + sh.wal_chunk));
        st.wal.alloc += sh.wal_chunk;
    }
    let retry_ok = st.wal.ckpt_retry_at.is_none_or(|t| Instant::now() >= t);
    let due = !st.wal.ckpt_running
        && ((st.wal.pos > sh.wal_ckpt_bytes && retry_ok) || !st.ckpt_waiters.is_empty());
    let ckpt = (due && st.failed.is_none()).then(|| {
        // A copy of the index under the lock (the encode runs outside it). Batches keep flowing
        // into this WAL while the checkpoint is made, except on a kdev WAL region.
        let t = Instant::now();
        st.wal.ckpt_running = true;
        st.wal.ckpt_busy = !concurrent_ckpt(sh);
        let snap = Box::new(st.index.clone());
        st.last_ckpt.snapshot = t.elapsed();
        (
            snap,
            st.next_lsn,
            st.wal.pos,
            std::mem::take(&mut st.ckpt_waiters),
        )
    });
    if ckpt.is_none() && st.failed.is_some() && !st.ckpt_waiters.is_empty() {
        // Failed pool: answer checkpoint requests now.
        for w in std::mem::take(&mut st.ckpt_waiters) {
            w.complete(Err(VosError::Failed(st.failed.clone().unwrap_or_default())));
        }
    }
    Some(Job {
        batch,
        lsn_first,
        durable_lsn: st.wal.acked_lsn,
        gen: st.wal.gen,
        file: st.wal.file.clone(),
        path: st.wal.path.clone(),
        pos,
        zero,
        zero_later,
        ckpt,
    })
}

#[allow(clippy::too_many_arguments)]
fn write(
    sh: &Shared,
    ring: &mut Ring,
    batch: &Pending,
    lsn_first: u64,
    durable_lsn: u64,
    gen: u64,
    file: &WalDev,
    path: &Path,
    pos: u64,
    zero: Option<(u64, u64)>,
    zeros: &AlignedBuf,
) -> Result<()> {
    if !batch.data.is_empty() {
        if let Some(f) = &sh.faults {
            f.check(FaultPoint::DataWrite)
                .map_err(|e| VosError::io(&sh.data_path, e))?;
        }
        let mut ops: Vec<IoOp<'_>> = batch
            .data
            .iter()
            .map(|d| IoOp::Write {
                file: &sh.data,
                buf: &d.buf.as_slice()[..d.len as usize],
                off: sh.data_base + d.off,
            })
            .collect();
        ops.push(IoOp::Fdatasync { file: &sh.data });
        for r in ring.run(&mut ops) {
            r.map_err(|e| VosError::io(&sh.data_path, e))?;
        }
    }
    if let Some((start, end)) = zero {
        zero_wal(sh, ring, file, path, gen, start, end, zeros)?;
    }
    if batch.builder.is_empty() {
        return Ok(());
    }
    let buf = batch.builder.seal(gen, lsn_first, durable_lsn);
    let end = pos + buf.len() as u64;
    // Only a WAL file is pre-zeroed; a fixed-size WAL (kdev region, pmem mapping) is used as it
    // is, and a batch past its end fails in `write_durable` (never waits for zeroing).
    let plain = file.growable().is_some();
    {
        let mut st = sh.st.lock();
        while plain && st.wal.zeroed_to < end && st.failed.is_none() && st.wal.gen == gen {
            if st.wal.alloc < end {
                // The chunk claimed for this batch was given back (the file system filled up
                // meanwhile): zero just this batch's region, here.
                let start = st.wal.alloc;
                st.wal.alloc = end;
                drop(st);
                zero_wal(sh, ring, file, path, gen, start, end, zeros)?;
                st = sh.st.lock();
                continue;
            }
            sh.order_cv.wait(&mut st);
        }
        if let Some(f) = &st.failed {
            return Err(VosError::Failed(f.clone()));
        }
    }
    // Write in LSN order (own small lock: the pool lock is busy with submitters). Spinning with
    // sched_yield before sleeping was no better here (64 B QD64 180-205k vs 193-210k ops/s
    // without, 4 KiB QD16 39.4-40.4k vs 42.0-43.2k) and burns the second core.
    {
        let mut w = sh.written.lock();
        while w.0 != lsn_first && !w.1 {
            sh.written_cv.wait(&mut w);
        }
        if w.1 {
            return Err(VosError::Failed(
                sh.st.lock().failed.clone().unwrap_or_default(),
            ));
        }
    }
    let next = lsn_first + batch.builder.nrec() as u64;
    file.write_durable(ring, &buf, pos, path, sh.faults.as_deref(), || {
        sh.written.lock().0 = next;
        sh.written_cv.notify_all();
    })
}

/// At a clean close (every batch acknowledged): appends an empty batch whose `durable_lsn`
/// covers the whole log, so replay can tell damage to the last data batches (corruption) from
/// a torn tail. Best effort: a failure only loses that extra check.
pub(crate) fn seal(sh: &Shared) {
    let st = sh.st.lock();
    if st.failed.is_some() || st.wal.sealed || st.wal.acked_lsn != st.next_lsn {
        return;
    }
    let (file, path, gen, pos, lsn) = (
        st.wal.file.clone(),
        st.wal.path.clone(),
        st.wal.gen,
        st.wal.pos,
        st.next_lsn,
    );
    drop(st);
    let buf = crate::wal::BatchBuilder::default().seal(gen, lsn, lsn);
    let mut ring = Ring::new(4);
    match file.write_durable(&mut ring, &buf, pos, &path, None, || {}) {
        Ok(()) => {
            let mut st = sh.st.lock();
            st.wal.pos += buf.len() as u64;
            st.wal.sealed = true;
        }
        Err(e) => tracing::warn!(error = %e, "could not seal the WAL at close"),
    }
}

/// Pre-zeroes `[start, end)` of a plain WAL file; batches placed there wait until this
/// completes, so a zero write can never land on top of a batch. Zeroing jobs complete in order.
#[allow(clippy::too_many_arguments)]
fn zero_wal(
    sh: &Shared,
    ring: &mut Ring,
    file: &WalDev,
    path: &Path,
    gen: u64,
    start: u64,
    end: u64,
    zeros: &AlignedBuf,
) -> Result<()> {
    let Some(file) = file.growable() else {
        return Ok(());
    };
    {
        let mut st = sh.st.lock();
        while (st.wal.zeroed_to < start || st.wal.growing)
            && st.failed.is_none()
            && st.wal.gen == gen
            && start < st.wal.alloc
        {
            sh.order_cv.wait(&mut st);
        }
        if st.wal.gen != gen {
            return Ok(()); // a checkpoint replaced this WAL file meanwhile
        }
        if start >= st.wal.alloc {
            return Ok(()); // given back when the file system filled up: nothing is placed here
        }
    }
    let res = write_zeros(ring, file, zeros, start, end);
    let mut st = sh.st.lock();
    if res.is_ok() && st.wal.gen == gen {
        st.wal.zeroed_to = st.wal.zeroed_to.max(end);
    }
    sh.order_cv.notify_all();
    drop(st);
    res.map_err(|e| VosError::io(path, e))
}

/// Can batches continue while a checkpoint is made? Yes with one WAL file per generation on
/// the bdev tier; not on a kdev WAL region (one generation at a time) nor on a fixed-size
/// dcpm mapping (its slack could fill up during a long checkpoint).
fn concurrent_ckpt(sh: &Shared) -> bool {
    matches!(sh.layout, Layout::Dir { .. }) && sh.scm_class == ScmClass::Ram
}

/// Encodes `snapshot` (the index at `next_lsn`) and writes it as `ckpt.<gen+1>`, then switches
/// to `wal.<gen+1>` once the batches written meanwhile are acknowledged, and removes what is no
/// longer needed (`wal.<gen>` stays if it holds records at or after `next_lsn`).
fn checkpoint(sh: &Shared, snapshot: Box<Index>, next_lsn: u64, tail_pos: u64) -> Result<()> {
    if let Some(f) = &sh.faults {
        f.checkpoint_gate();
    }
    let t0 = Instant::now();
    let body = ckpt::encode_index(&snapshot);
    drop(snapshot);
    let encode = t0.elapsed();
    let gen = sh.st.lock().wal.gen;
    let new_gen = gen + 1;
    let prepare = || -> Result<(WalDev, PathBuf, u64)> {
        sh.layout.write_ckpt(new_gen, next_lsn, tail_pos, &body)?;
        let (wal, path, mut wal_len) = open_wal(
            &sh.layout,
            sh.scm_class,
            &sh.wal_dir,
            new_gen,
            sh.pmem_wal_len,
            sh.wal_reserve,
        )?;
        if wal.growable().is_some() && wal_len < sh.wal_chunk {
            // Zero the new WAL's first chunk now, so the first batch after the switch does not
            // (a 16 MiB write in its path: 40-80 ms of update stall per checkpoint).
            wal.zero_range(wal_len, sh.wal_chunk, &path)?;
            wal_len = sh.wal_chunk;
        }
        if !matches!(&sh.layout, Layout::Dev(_)) || sh.scm_class == ScmClass::Dcpm {
            ckpt::sync_dir(&sh.wal_dir)?;
        }
        Ok((wal, path, wal_len))
    };
    let (wal, path, wal_len) = match prepare() {
        Ok(x) => x,
        Err(e) => {
            if is_nospace(&e) {
                // The pool goes on with the current checkpoint and WAL: remove the new ones
                // (recovery would otherwise take a checkpoint whose WAL was never written).
                sh.layout.discard_gen(&sh.wal_dir, new_gen);
            }
            return Err(e);
        }
    };
    let tail = {
        let mut st = sh.st.lock();
        // Switch only with no batch in flight: take none, wait for those already taken.
        st.wal.ckpt_busy = true;
        while st.wal.acked_lsn != st.next_lsn && st.failed.is_none() {
            sh.order_cv.wait(&mut st);
        }
        if let Some(f) = &st.failed {
            return Err(VosError::Failed(f.clone()));
        }
        st.wal.path = path;
        st.wal.file = Arc::new(wal);
        st.wal.gen = new_gen;
        st.wal.pos = 0;
        st.wal.acked_pos = 0;
        st.wal.sealed = true;
        st.wal.alloc = wal_len;
        st.wal.zeroed_to = wal_len;
        st.wal.nospace_at = None;
        st.last_ckpt.encode = encode;
        st.last_ckpt.total = t0.elapsed();
        st.last_ckpt.bytes = body.len() as u64;
        st.last_ckpt.tail_records = st.next_lsn - next_lsn;
        st.next_lsn > next_lsn
    };
    let wal_below = if tail { gen } else { new_gen };
    sh.layout.retire(&sh.wal_dir, new_gen, wal_below);
    tracing::info!(
        gen = new_gen,
        bytes = body.len(),
        encode_ms = encode.as_millis() as u64,
        ms = t0.elapsed().as_millis() as u64,
        "checkpoint written"
    );
    Ok(())
}

/// Opens the WAL of generation `gen`: a pmem file on the scm path (dcpm), the kdev WAL region,
/// or `wal.<gen>` in the pool directory (its first `reserve` bytes reserved on disk). Returns
/// it, its label and its pre-zeroed length.
pub fn open_wal(
    layout: &Layout,
    class: ScmClass,
    wal_dir: &Path,
    gen: u64,
    pmem_len: u64,
    reserve: u64,
) -> Result<(WalDev, PathBuf, u64)> {
    match (layout, class) {
        (Layout::Dev(d), ScmClass::Ram) => Ok((
            WalDev::File {
                file: d.file.clone(),
                base: d.sb.wal_off,
                limit: d.sb.wal_len,
            },
            PathBuf::from(format!("{}#wal", d.path.display())),
            d.sb.wal_len,
        )),
        _ => {
            let path = ckpt::wal_path(wal_dir, gen);
            let (w, len) = WalDev::open(class, &path, pmem_len)?;
            #[allow(irrefutable_let_patterns)] // WalDev::Pmem exists with feature `pmem`
            if let WalDev::File { file, .. } = &w {
                // Blocks only: the size stays, so the region past it is still pre-zeroed by
                // writes (an O_DIRECT write into an unwritten extent would make its fdatasync
                // commit the conversion).
                match crate::uring::reserve(file, reserve, true) {
                    Err(e) if e.raw_os_error() != Some(libc::EOPNOTSUPP) => {
                        return Err(VosError::io(&path, e));
                    }
                    _ => {}
                }
            }
            Ok((w, path, len))
        }
    }
}
