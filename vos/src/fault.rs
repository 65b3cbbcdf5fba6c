//! [`Faults`]: a test-only fault-injection hook. A pool opened with `PoolConfig::faults` set
//! consults it at the real I/O sites of the flusher (data-file write, WAL write, WAL
//! fdatasync) and fails the next armed one with `EIO`, exactly where a device error would
//! surface. Production configurations leave it `None` (one pointer check per batch).

use std::sync::atomic::{AtomicU32, Ordering};

/// Where a fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// The data-file write of a batch's large values (nothing of the batch reaches the WAL).
    DataWrite,
    /// The WAL batch write (nothing is written).
    WalWrite,
    /// The WAL fdatasync: the batch bytes ARE written, then the sync reports `EIO` (the
    /// batch may or may not be on the media; recovery must not resurrect it).
    WalSync,
}

/// Armed fault counts, shared between a test and the pool's flusher threads; and a gate that
/// holds checkpoints before they start (to observe the pool while one is being made).
#[derive(Debug, Default)]
pub struct Faults {
    armed: [AtomicU32; 3],
    /// (checkpoints held, a checkpoint is waiting at the gate)
    ckpt_gate: parking_lot::Mutex<(bool, bool)>,
    ckpt_cv: parking_lot::Condvar,
}

impl Faults {
    /// Makes the next `n` I/Os at `point` fail with `EIO`.
    pub fn arm(&self, point: FaultPoint, n: u32) {
        self.armed[point as usize].store(n, Ordering::SeqCst);
    }

    /// Holds (true) or releases (false) checkpoints at their start.
    pub fn hold_checkpoints(&self, hold: bool) {
        self.ckpt_gate.lock().0 = hold;
        self.ckpt_cv.notify_all();
    }

    /// True while a checkpoint waits at the gate.
    pub fn checkpoint_waiting(&self) -> bool {
        self.ckpt_gate.lock().1
    }

    /// Called by a checkpoint before it starts: waits while checkpoints are held.
    pub(crate) fn checkpoint_gate(&self) {
        let mut g = self.ckpt_gate.lock();
        while g.0 {
            g.1 = true;
            self.ckpt_cv.wait(&mut g);
        }
        g.1 = false;
    }

    /// Consumes one armed fault at `point`: `Err(EIO)` if one was armed.
    pub(crate) fn check(&self, point: FaultPoint) -> std::io::Result<()> {
        let a = &self.armed[point as usize];
        match a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => Err(std::io::Error::from_raw_os_error(libc::EIO)),
            Err(_) => Ok(()),
        }
    }
}
