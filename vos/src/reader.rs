//! Reader threads: serve fetches whose data lives in the data file. Each thread takes a few
//! queued jobs, reads every extent they need through its own io_uring in one submission,
//! verifies each extent's crc32c and copies the requested pieces out.

use std::sync::Arc;

use crate::akey::DiskCopy;
use crate::error::{Result, VosError};
use crate::pool::Shared;
use crate::types::Fetched;
use crate::uring::{AlignedBuf, IoOp, Ring};

/// Reader threads per pool, jobs each takes per wake-up at most, and data-file bytes each
/// takes per wake-up (beyond its first job). So up to 32 small reads are in flight but only
/// about 8 MiB of large ones: a disk's bandwidth is reached with a few MiB in flight, and on
/// this VM's disk more was slower (fio 1 MiB reads: 1.4 GB/s at QD16 against 1.6-1.8 at QD2-8;
/// vos 1 MiB fetches at QD16, 3 invocations each: 1751-1835 MB/s with this limit against
/// 1295-1623 with 16 × 1 MiB in flight).
pub(crate) const READERS: usize = 4;
const READ_BATCH: usize = 8;
const READ_BYTES: u64 = 2 << 20;

/// A reader thread: batches queued fetch reads into one io_uring submission.
pub(crate) fn reader(sh: Arc<Shared>) {
    let mut ring = Ring::new(64);
    let mut free: Vec<AlignedBuf> = Vec::new();
    loop {
        let jobs = {
            let mut q = sh.reads.lock();
            while q.0.is_empty() && !q.1 {
                sh.read_cv.wait(&mut q);
            }
            if q.0.is_empty() {
                return;
            }
            // Take a few jobs, not all: several reader threads then keep reads in flight while
            // one of them is still copying and checksumming a finished batch.
            let mut n = 0;
            let mut bytes = 0;
            for j in q.0.iter().take(READ_BATCH) {
                let b: u64 = j.copies.iter().map(|c| c.ext_len as u64).sum();
                if n > 0 && bytes + b > READ_BYTES {
                    break;
                }
                n += 1;
                bytes += b;
            }
            q.0.drain(..n).collect::<Vec<_>>()
        };
        let mut exts: Vec<(u64, u32, u32)> = jobs
            .iter()
            .flat_map(|j| j.copies.iter().map(|c| (c.ext_off, c.ext_len, c.crc)))
            .collect();
        exts.sort_unstable();
        exts.dedup();
        let mut bufs: Vec<AlignedBuf> = exts
            .iter()
            .map(|e| take_buf(&mut free, e.1 as usize))
            .collect();
        let mut ops: Vec<IoOp<'_>> = bufs
            .iter_mut()
            .zip(&exts)
            .map(|(b, e)| IoOp::Read {
                file: &sh.data,
                buf: &mut b.as_mut_slice()[..block_len(e.1 as usize)],
                off: sh.data_base + e.0,
            })
            .collect();
        let res = ring.run(&mut ops);
        drop(ops);
        let status: Vec<Result<()>> = res
            .into_iter()
            .zip(&exts)
            .zip(&bufs)
            .map(|((r, e), b)| match r {
                Err(err) => Err(VosError::io(&sh.data_path, err)),
                Ok(_) if crc32c::crc32c(&b.as_slice()[..e.1 as usize]) != e.2 => {
                    Err(VosError::Checksum {
                        path: sh.data_path.clone(),
                        offset: e.0,
                        len: e.1,
                    })
                }
                Ok(_) => Ok(()),
            })
            .collect();
        for mut j in jobs {
            let mut err = None;
            for c in &j.copies {
                let i = exts
                    .binary_search(&(c.ext_off, c.ext_len, c.crc))
                    .expect("extent listed");
                match &status[i] {
                    Ok(()) => copy_out(&mut j.out, c, bufs[i].as_slice()),
                    Err(e) => {
                        err = Some(e.duplicate());
                        break;
                    }
                }
            }
            {
                let mut st = sh.st.lock();
                st.active_reads.remove(&j.seq);
                st.release_ready_frees();
            }
            j.done.complete(match err {
                Some(e) => Err(e),
                None => Ok(j.out),
            });
        }
        for b in bufs {
            if free.len() < KEEP_BUFS && b.len() <= KEEP_MAX {
                free.push(b);
            }
        }
    }
}

/// Read buffers a reader thread keeps for reuse (one batch's worth), and the largest it keeps:
/// at most 4 × 2 MiB per reader, 32 MiB per pool. A fresh buffer costs a memset plus, for
/// large ones, page faults on every use; reusing them cut the CPU time of a 1 MiB fetch run
/// (3 rounds of 1024 fetches at QD16) from 2.13-2.27 s to 1.67-1.72 s, bandwidth unchanged.
const KEEP_BUFS: usize = READ_BATCH;
const KEEP_MAX: usize = 2 << 20;

/// `len` rounded up to the 4 KiB O_DIRECT block.
fn block_len(len: usize) -> usize {
    len.div_ceil(4096).max(1) * 4096
}

/// A kept buffer of at least `len` bytes (the smallest that fits), or a new one. Its bytes
/// beyond `len` are never read: only `[..block_len(len)]` is filled and checked.
fn take_buf(free: &mut Vec<AlignedBuf>, len: usize) -> AlignedBuf {
    let best = free
        .iter()
        .enumerate()
        .filter(|(_, b)| b.len() >= block_len(len))
        .min_by_key(|(_, b)| b.len())
        .map(|(i, _)| i);
    match best {
        Some(i) => free.swap_remove(i),
        None => AlignedBuf::zeroed(len),
    }
}

/// Copies one resolved piece into the fetch result.
pub(crate) fn copy_out(out: &mut [Fetched], c: &DiskCopy, src: &[u8]) {
    let dst: &mut [u8] = match &mut out[c.iod] {
        Fetched::Single(Some(v)) => v,
        Fetched::Array { data, .. } => data,
        Fetched::Single(None) | Fetched::Size(_) => return,
    };
    dst[c.dst_off..c.dst_off + c.n].copy_from_slice(&src[c.src_off..c.src_off + c.n]);
}
