//! Loading the durable state: the newest checkpoint, the tail of the previous generation's WAL
//! (records written while that checkpoint was being encoded and written), then the current WAL.
//! Used by `VosPool::open` and by the back-out after a failed flush.
//!
//! A checkpoint `ckpt.<g>` covers every record below its `next_lsn` X. Batches keep flowing into
//! `wal.<g-1>` while `ckpt.<g>` is encoded and written (only the switch to `wal.<g>` waits for
//! the batches in flight), so `wal.<g-1>` may hold records at LSN >= X: replay applies those
//! first, then `wal.<g>` continues where they end. The kdev WAL region holds one generation at a
//! time, so there a checkpoint pauses batches for its whole duration and no tail exists.

use std::path::PathBuf;

use crate::ckpt;
use crate::config::ScmClass;
use crate::error::{Result, VosError};
use crate::index::Index;
use crate::layout::Layout;
use crate::wal::{self, ScanInfo};

/// What [`load`] found.
pub(crate) struct Loaded {
    pub gen: u64,
    pub index: Index,
    pub ckpt_bytes: u64,
    /// Replay of the current generation's WAL (positions, torn tail).
    pub info: ScanInfo,
    /// A torn tail in the previous generation's WAL to zero before appending: (file, from, to).
    pub prev_torn: Option<(PathBuf, u64, u64)>,
    pub batches: u64,
    pub records: u64,
    pub torn_bytes: u64,
}

/// Does a checkpoint let batches continue into the old WAL (one file per generation)?
pub(crate) fn wal_per_gen(layout: &Layout, class: ScmClass) -> bool {
    !matches!(layout, Layout::Dev(_)) || class == ScmClass::Dcpm
}

/// Loads the newest checkpoint and replays WAL records below `stop_lsn` (`u64::MAX`: all).
pub(crate) fn load(
    layout: &Layout,
    wal_dir: &std::path::Path,
    class: ScmClass,
    stop_lsn: u64,
) -> Result<Loaded> {
    let on_scm = class == ScmClass::Dcpm;
    let (gen, ckpt, ckpt_bytes) = layout.load_ckpt()?;
    let (mut index, ckpt_lsn, tail_pos) = (ckpt.index, ckpt.next_lsn, ckpt.tail_pos);
    let mut next = ckpt_lsn;
    let (mut batches, mut records, mut torn_bytes) = (0, 0, 0);
    let mut prev_torn = None;
    if gen > 0 && wal_per_gen(layout, class) && ckpt::wal_path(wal_dir, gen - 1).exists() {
        // Only from where the records logged after the checkpoint's snapshot start.
        let (label, data) = layout.read_wal_from(wal_dir, gen - 1, on_scm, tail_pos)?;
        if let Some(first) = wal::first_lsn(&data, gen - 1) {
            // Only records at or after the checkpoint's LSN are replayed (and decoded).
            let info = wal::scan_upto(&label, &data, gen - 1, first, stop_lsn, ckpt_lsn, |op| {
                index.apply(op);
            })?;
            records += info.records;
            next = next.max(info.next_lsn);
            batches += info.batches;
            torn_bytes += info.torn_bytes;
            if info.dirty_end > info.end {
                prev_torn = Some((label, tail_pos + info.end, tail_pos + info.dirty_end));
            }
        }
    }
    let (label, data) = layout.read_wal(wal_dir, gen, on_scm)?;
    if let Some((prev, from, _)) = &prev_torn {
        if wal::first_lsn(&data, gen).is_some() {
            // The switch to this WAL waited until every batch of the previous one was
            // acknowledged: a damaged batch there is not a torn tail.
            return Err(VosError::corrupt(
                prev,
                format!(
                    "WAL batch at offset {from} fails its checksum but the next generation's WAL {} \
                     has batches: the previous WAL was complete when it was written",
                    label.display()
                ),
            ));
        }
    }
    let info = wal::scan_upto(&label, &data, gen, next, stop_lsn, 0, |op| {
        index.apply(op);
    })?;
    Ok(Loaded {
        gen,
        index,
        ckpt_bytes,
        batches: batches + info.batches,
        records: records + info.records,
        torn_bytes: torn_bytes + info.torn_bytes,
        info,
        prev_torn,
    })
}
