//! Bulk (DAOS `crt_bulk_*`): registered local scatter-gather lists, their serialisable handles
//! (owner address, base, length, key per segment) sent inside RPCs, and transfers between a remote
//! handle and a local bulk at offsets, split into one `fi_read`/`fi_write` per overlapping segment
//! pair (all issued before any is awaited).

use std::sync::Arc;

use smallvec::SmallVec;

use crate::context::CtxInner;
use crate::error::CartError;
use crate::transport::{Access, DmaBuf, MemRegion, RemoteMem, RmaDir};

/// Transfer direction, seen from the caller (the handler): GET pulls remote → local, PUT pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOp {
    /// Pull from the remote handle into local memory (DAOS updates).
    Get,
    /// Push local memory into the remote handle (DAOS fetches).
    Put,
}

/// A registered local scatter-gather list.
#[derive(Debug, Clone)]
pub struct Bulk {
    segs: SmallVec<[Arc<MemRegion>; 4]>,
    owner: Vec<u8>,
}

/// What a peer needs to reach a [`Bulk`]; travels inside RPC bodies.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct BulkHandle {
    /// One descriptor per segment.
    pub segs: Vec<RemoteMem>,
}

impl BulkHandle {
    /// A handle for bytes `[off, off + len)` of this one (e.g. to give a peer an aligned window).
    pub fn sub(&self, off: u64, len: u64) -> Result<BulkHandle, CartError> {
        let total = self.len();
        if off.checked_add(len).is_none_or(|e| e > total) {
            return Err(CartError::Inval(format!(
                "sub-handle {off}+{len} outside a bulk of {total} bytes"
            )));
        }
        let (mut skip, mut left) = (off, len);
        let mut segs = Vec::new();
        for s in &self.segs {
            if left == 0 {
                break;
            }
            if skip >= s.len {
                skip -= s.len;
                continue;
            }
            let n = (s.len - skip).min(left);
            segs.push(RemoteMem {
                base: s.base + skip,
                len: n,
                ..s.clone()
            });
            left -= n;
            skip = 0;
        }
        Ok(BulkHandle { segs })
    }

    /// Total length.
    pub fn len(&self) -> u64 {
        self.segs.iter().map(|s| s.len).sum()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Bulk {
    /// The serialisable handle.
    pub fn handle(&self) -> BulkHandle {
        BulkHandle {
            segs: self.segs.iter().map(|s| s.remote(&self.owner)).collect(),
        }
    }
    /// Total length.
    pub fn len(&self) -> u64 {
        self.segs.iter().map(|s| s.len() as u64).sum()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The segments.
    pub fn segments(&self) -> &[Arc<MemRegion>] {
        &self.segs
    }
    /// A copy of all bytes, segments concatenated.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() as usize);
        for s in &self.segs {
            v.extend_from_slice(&s.buf.to_vec());
        }
        v
    }
}

/// One contiguous piece of a transfer: local segment/offset, remote segment/offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Local segment index.
    pub li: usize,
    /// Offset in it.
    pub loff: u64,
    /// Remote segment index.
    pub ri: usize,
    /// Offset in it.
    pub roff: u64,
    /// Bytes.
    pub len: u64,
}

fn locate(segs: &[u64], mut off: u64) -> (usize, u64) {
    let mut i = 0;
    while i < segs.len() && off >= segs[i] {
        off -= segs[i];
        i += 1;
    }
    (i, off)
}

/// Splits a transfer of `len` bytes into pieces that each lie in one local and one remote segment.
pub fn sg_pieces(
    local: &[u64],
    local_off: u64,
    remote: &[u64],
    remote_off: u64,
    len: u64,
) -> Result<SmallVec<[Piece; 4]>, String> {
    let lt: u64 = local.iter().sum();
    let rt: u64 = remote.iter().sum();
    if local_off.checked_add(len).is_none_or(|e| e > lt) {
        return Err(format!(
            "local range {local_off}+{len} outside the local bulk of {lt} bytes"
        ));
    }
    if remote_off.checked_add(len).is_none_or(|e| e > rt) {
        return Err(format!(
            "remote range {remote_off}+{len} outside the remote bulk of {rt} bytes"
        ));
    }
    let mut out = SmallVec::new();
    let (mut li, mut loff) = locate(local, local_off);
    let (mut ri, mut roff) = locate(remote, remote_off);
    let mut left = len;
    while left > 0 {
        let n = left.min(local[li] - loff).min(remote[ri] - roff);
        if n > 0 {
            out.push(Piece {
                li,
                loff,
                ri,
                roff,
                len: n,
            });
        }
        left -= n;
        loff += n;
        roff += n;
        if loff == local[li] {
            li += 1;
            loff = 0;
        }
        if roff == remote[ri] {
            ri += 1;
            roff = 0;
        }
    }
    Ok(out)
}

impl CtxInner {
    pub(crate) fn bulk_create(&self, bufs: Vec<DmaBuf>, access: Access) -> Result<Bulk, CartError> {
        let mut segs = SmallVec::new();
        for b in bufs {
            segs.push(self.t.register(b, access)?);
        }
        Ok(Bulk {
            segs,
            owner: self.t.self_addr().to_vec(),
        })
    }

    pub(crate) async fn bulk_transfer(
        &self,
        op: BulkOp,
        remote: &BulkHandle,
        remote_off: u64,
        local: &Bulk,
        local_off: u64,
        len: u64,
    ) -> Result<(), CartError> {
        if len == 0 {
            return Ok(());
        }
        let ll: SmallVec<[u64; 4]> = local.segs.iter().map(|s| s.len() as u64).collect();
        let rl: SmallVec<[u64; 4]> = remote.segs.iter().map(|s| s.len).collect();
        let pieces = sg_pieces(&ll, local_off, &rl, remote_off, len).map_err(CartError::Inval)?;
        let dir = match op {
            BulkOp::Get => RmaDir::Get,
            BulkOp::Put => RmaDir::Put,
        };
        let mut rxs: SmallVec<[_; 4]> = SmallVec::new();
        for p in pieces {
            let seg = &remote.segs[p.ri];
            let peer = self.t.insert_addr(&seg.owner)?;
            let n = usize::try_from(p.len).map_err(|_| CartError::Inval("piece length".into()))?;
            rxs.push(self.rma_start(
                dir,
                &local.segs[p.li],
                p.loff as usize,
                peer,
                seg,
                p.roff,
                n,
            )?);
        }
        let mut first_err = None;
        for rx in rxs {
            if let Err(e) = self.rma_finish(rx).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_handles_cut_across_segments() {
        let seg = |base, len| RemoteMem {
            owner: vec![1],
            base,
            len,
            key: 7,
            access: Access::ReadOnly,
        };
        let h = BulkHandle {
            segs: vec![seg(100, 10), seg(0, 20)],
        };
        let s = h.sub(5, 10).unwrap();
        assert_eq!(s.segs, vec![seg(105, 5), seg(0, 5)]);
        assert_eq!(h.sub(10, 20).unwrap().segs, vec![seg(0, 20)]);
        assert!(h.sub(25, 6).is_err());
        assert!(h.sub(0, 0).unwrap().is_empty());
    }

    #[test]
    fn pieces_cross_segment_boundaries() {
        let p = sg_pieces(&[10, 10], 5, &[4, 100], 2, 12).unwrap();
        let v: Vec<_> = p
            .iter()
            .map(|p| (p.li, p.loff, p.ri, p.roff, p.len))
            .collect();
        assert_eq!(v, vec![(0, 5, 0, 2, 2), (0, 7, 1, 0, 3), (1, 0, 1, 3, 7)]);
        assert_eq!(p.iter().map(|p| p.len).sum::<u64>(), 12);
        assert!(sg_pieces(&[10], 5, &[100], 0, 6)
            .unwrap_err()
            .contains("local range"));
        assert!(sg_pieces(&[10], 0, &[3], 0, 4)
            .unwrap_err()
            .contains("remote range"));
        assert!(sg_pieces(&[0, 5], 0, &[5], 0, 5).unwrap().len() == 1);
        assert!(sg_pieces(&[1], u64::MAX, &[1], 0, 2).is_err());
    }
}
