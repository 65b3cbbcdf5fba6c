//! What happens when a flush fails (DAOS marks the target faulty): the pool turns read-only.
//!
//! Updates are applied to the index when queued, so when a data-file write, WAL write or WAL
//! fdatasync fails, the index already shows the failed batch and everything queued after it.
//! The first thread to see a failure ([`State::fail`]) records the first unacknowledged LSN
//! and WAL offset and leads the back-out ([`back_out`]): it waits until every batch in flight
//! has passed the acknowledgement point (their waiters are parked, not answered), erases the
//! WAL from the failed batch on (zeros + sync, so a reopen cannot replay a batch whose update
//! returned an error), rebuilds the index from the durable state (newest checkpoint + WAL up to
//! the failed LSN, exactly what a reopen would load), and only then fails the parked waiters.
//! So a fetch issued after an update returned its error sees the old value, and reopen agrees.
//! From then on every mutation fails with `VosError::Failed` (DER_IO); fetches and
//! enumerations keep serving the durable state until the pool is reopened.

use crate::alloc::Allocator;
use crate::error::{Result, VosError};
use crate::index::Index;
use crate::pool::{Shared, State};

impl State {
    /// Records the first failure; returns true if the caller must now run [`back_out`]
    /// (false if the pool had already failed). Call with the pool lock held.
    pub(crate) fn fail(&mut self, sh: &Shared, e: &VosError) -> bool {
        if self.failed.is_some() {
            return false;
        }
        tracing::error!(error = %e, lsn = self.wal.acked_lsn, "flush failed; backing out unacknowledged updates, pool is read-only");
        self.failed = Some(e.to_string());
        self.backing_out = true;
        self.fail_at = (self.wal.acked_lsn, self.wal.acked_pos);
        sh.order_cv.notify_all();
        sh.written.lock().1 = true;
        sh.written_cv.notify_all();
        true
    }
}

/// Backs the index out to the durable state after [`State::fail`] (see the module doc).
pub(crate) fn back_out(sh: &Shared) {
    let mut st = sh.st.lock();
    // Queued but never taken by a flusher: in the index, never written.
    let pending = std::mem::take(&mut st.pending);
    sh.small_pending
        .store(false, std::sync::atomic::Ordering::Relaxed);
    st.failed_waiters.extend(pending.waiters);
    // Wait for every batch in flight (they fail fast once `failed` is set).
    while st.wal.acked_lsn != st.next_lsn {
        sh.order_cv.wait(&mut st);
    }
    let (fail_lsn, fail_pos) = st.fail_at;
    let (end, file, path) = (st.wal.pos, st.wal.file.clone(), st.wal.path.clone());
    drop(st);
    let erased = if end > fail_pos {
        file.zero_range(fail_pos, end, &path)
    } else {
        Ok(())
    };
    let rebuilt = reload(sh, fail_lsn);
    let mut st = sh.st.lock();
    let mut msg = st.failed.clone().unwrap_or_default();
    match rebuilt {
        Ok(index) => {
            st.alloc = Allocator::new(sh.hdr.data_size, index.allocations());
            st.meta_est = index.meta_bytes();
            st.index = index;
        }
        Err(e) => {
            st.readable = false;
            msg.push_str(&format!(
                "; the durable state could not be reloaded ({e}), fetches fail too"
            ));
        }
    }
    if let Err(e) = erased {
        msg.push_str(&format!(
            "; the failed WAL batches at offset {fail_pos} could not be erased ({e}), a reopen may replay them"
        ));
    }
    tracing::warn!(lsn = fail_lsn, %msg, "back-out done, pool is read-only");
    st.failed = Some(msg.clone());
    st.inflight.clear();
    st.deferred_frees.clear();
    st.backing_out = false;
    let waiters = std::mem::take(&mut st.failed_waiters);
    // Fetches parked on a backed-out operation: their result may show it, so they fail too.
    let parked = st.unacked.take_parked();
    for p in &parked {
        if let Some((seq, _)) = &p.disk {
            st.active_reads.remove(seq);
        }
    }
    // Read-only from here: nothing is unacknowledged any more (the drained queue never got
    // LSNs, so its marks would otherwise park fetches forever).
    st.unacked = Default::default();
    sh.order_cv.notify_all();
    drop(st);
    for w in waiters {
        w.complete(Err(VosError::Failed(msg.clone())));
    }
    for p in parked {
        p.done.complete(Err(VosError::Failed(msg.clone())));
    }
}

/// The index a reopen would load, limited to records below `stop_lsn`.
fn reload(sh: &Shared, stop_lsn: u64) -> Result<Index> {
    crate::recovery::load(&sh.layout, &sh.wal_dir, sh.scm_class, stop_lsn).map(|l| l.index)
}
