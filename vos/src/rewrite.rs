//! Aggregation's data rewrite (DAOS's VOS aggregation merges extents by rewriting them). A
//! data-file extent at or below the aggregation epoch that reads see only partly cannot be
//! trimmed in the index alone: its crc covers the whole extent and its allocation is one block
//! run. [`prepare`] reads each such extent (crc-checked), writes its visible pieces to new
//! extents (pieces up to the inline threshold become inline) and fdatasyncs them, then returns
//! one [`IndexOp::Rewrite`] per extent; the pool logs them before the `Aggregate` op. Applying a
//! `Rewrite` re-checks that the extent still has exactly the planned visible pieces at `upto`
//! (else the new pieces are freed instead), so a discard or update racing the aggregation never
//! loses bytes. The old extent's space is returned once the record is durable and no read
//! planned before it is in flight, as for every free.

use crate::akey::Payload;
use crate::error::{Result, VosError};
use crate::index::{IndexOp, RewritePlan};
use crate::pool::Shared;
use crate::types::{Epoch, Recx};
use crate::uring::{AlignedBuf, IoOp, Ring};

/// Plans, reads and rewrites; returns the ops to log. Extents that fail (I/O, checksum, no
/// space) are left whole, with a warning: aggregation stays correct, only less space is freed.
pub(crate) fn prepare(sh: &Shared, cont: u128, upto: Epoch) -> Vec<IndexOp> {
    let (plan, seq) = {
        let mut st = sh.st.lock();
        if st.failed.is_some() || st.shutdown {
            return Vec::new();
        }
        let plan = st.index.rewrite_plan(cont, upto);
        if plan.is_empty() {
            return Vec::new();
        }
        // A read sequence number: extents freed from now on stay allocated until we are done.
        let seq = st.read_seq;
        st.read_seq += 1;
        st.active_reads.insert(seq);
        (plan, seq)
    };
    let mut ring = Ring::new(8);
    let thr = sh.hdr.inline_threshold as usize;
    let mut ops = Vec::new();
    for p in plan {
        match rewrite_one(sh, &mut ring, thr, &p) {
            Ok(parts) => ops.push(IndexOp::Rewrite {
                cont,
                oid: p.oid,
                dkey: p.dkey,
                akey: p.akey,
                epoch: p.epoch,
                upto,
                off: p.off,
                parts,
            }),
            Err(e) => {
                tracing::warn!(error = %e, off = p.off, "aggregation keeps a partly shadowed extent whole")
            }
        }
    }
    let mut st = sh.st.lock();
    st.active_reads.remove(&seq);
    st.release_ready_frees();
    ops
}

fn rewrite_one(
    sh: &Shared,
    ring: &mut Ring,
    thr: usize,
    p: &RewritePlan,
) -> Result<Vec<(Recx, Payload)>> {
    let mut buf = AlignedBuf::zeroed(p.len as usize);
    ring.run(&mut [IoOp::Read {
        file: &sh.data,
        buf: buf.as_mut_slice(),
        off: sh.data_base + p.off,
    }])
    .remove(0)
    .map_err(|e| VosError::io(&sh.data_path, e))?;
    if crc32c::crc32c(&buf.as_slice()[..p.len as usize]) != p.crc {
        return Err(VosError::Checksum {
            path: sh.data_path.clone(),
            offset: p.off,
            len: p.len,
        });
    }
    let rs = p.rsize as u64;
    let mut parts = Vec::new();
    let mut writes: Vec<(u64, AlignedBuf)> = Vec::new();
    let release = |writes: &[(u64, AlignedBuf)]| {
        let mut st = sh.st.lock();
        for (off, b) in writes {
            st.alloc.release(*off, b.len() as u64);
        }
    };
    for &(l, h) in &p.parts {
        let bytes =
            &buf.as_slice()[((l - p.recx.idx) * rs) as usize..((h - p.recx.idx) * rs) as usize];
        let recx = Recx::new(l, h - l);
        if bytes.len() <= thr {
            parts.push((recx, Payload::Inline(bytes.to_vec())));
            continue;
        }
        let b = AlignedBuf::from_slice(bytes);
        let reserved = {
            let mut st = sh.st.lock();
            let free = st.alloc.free_bytes();
            st.alloc.reserve(b.len() as u64).ok_or(VosError::NoSpace {
                tier: "data file (aggregation rewrite)",
                need: b.len() as u64,
                free,
            })
        };
        let off = match reserved {
            Ok(off) => off,
            Err(e) => {
                release(&writes);
                return Err(e);
            }
        };
        parts.push((
            recx,
            Payload::Extent {
                off,
                len: bytes.len() as u32,
                crc: crc32c::crc32c(bytes),
            },
        ));
        writes.push((off, b));
    }
    if !writes.is_empty() {
        let mut io: Vec<IoOp<'_>> = writes
            .iter()
            .map(|(off, b)| IoOp::Write {
                file: &sh.data,
                buf: b.as_slice(),
                off: sh.data_base + off,
            })
            .collect();
        io.push(IoOp::Fdatasync { file: &sh.data });
        let res: Vec<_> = ring.run(&mut io);
        drop(io);
        if let Some(e) = res.into_iter().find_map(|r| r.err()) {
            release(&writes);
            return Err(VosError::io(&sh.data_path, e));
        }
    }
    Ok(parts)
}
