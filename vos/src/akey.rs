//! Versioned value history of one akey: single-value versions or array extents, each at an epoch,
//! plus the akey's own punch epochs. Pure in-memory logic (no I/O).

use bincode::{Decode, Encode};

use crate::types::{Epoch, Recx, RecxEntry};
use crate::uring::align_up;

/// Where a value's bytes live: inline in metadata (and the WAL), or in the data file.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Payload {
    Inline(Vec<u8>),
    /// `len` bytes at `off` in the data file (allocation rounded up to 4 KiB); `crc` is crc32c.
    Extent {
        off: u64,
        len: u32,
        crc: u32,
    },
}

impl Payload {
    /// The data-file allocation `(off, bytes)` behind this payload, if any.
    pub fn allocation(&self) -> Option<(u64, u64)> {
        match self {
            Payload::Inline(_) => None,
            Payload::Extent { off, len, .. } => Some((*off, align_up(*len as u64))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SvVersion {
    pub epoch: Epoch,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ArrExt {
    pub epoch: Epoch,
    pub recx: Recx,
    pub payload: Payload,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub enum AkeyValue {
    #[default]
    Empty,
    /// Versions sorted by epoch, ascending.
    Single(Vec<SvVersion>),
    /// Extents sorted by epoch ascending; among equal epochs, later writes come later.
    Array { rsize: u32, exts: Vec<ArrExt> },
}

/// Where one piece of a fetch result comes from when it lives in the data file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskCopy {
    pub iod: usize,
    pub dst_off: usize,
    pub ext_off: u64,
    pub ext_len: u32,
    pub crc: u32,
    pub src_off: usize,
    pub n: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct AkeyEntry {
    /// Punch epochs, ascending, no duplicates.
    pub punches: Vec<Epoch>,
    pub value: AkeyValue,
}

/// Largest punch epoch `<= e` in a sorted list.
pub fn floor_of(punches: &[Epoch], e: Epoch) -> Option<Epoch> {
    let i = punches.partition_point(|p| *p <= e);
    if i == 0 {
        None
    } else {
        Some(punches[i - 1])
    }
}

/// Inserts `e` into a sorted, deduplicated list.
pub fn add_punch(punches: &mut Vec<Epoch>, e: Epoch) {
    if let Err(i) = punches.binary_search(&e) {
        punches.insert(i, e);
    }
}

fn visible(epoch: Epoch, e: Epoch, floor: Option<Epoch>) -> bool {
    epoch <= e && floor.is_none_or(|f| epoch > f)
}

fn max_opt(a: Option<Epoch>, b: Option<Epoch>) -> Option<Epoch> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl AkeyEntry {
    pub fn kind(&self) -> &'static str {
        match self.value {
            AkeyValue::Empty => "empty",
            AkeyValue::Single(_) => "single",
            AkeyValue::Array { .. } => "array",
        }
    }

    /// The effective punch floor at `e`, combining the outer (object/dkey) floor with our own.
    pub fn floor(&self, e: Epoch, outer: Option<Epoch>) -> Option<Epoch> {
        max_opt(outer, floor_of(&self.punches, e))
    }

    /// True if any version is visible at `e`.
    pub fn exists(&self, e: Epoch, outer: Option<Epoch>) -> bool {
        let f = self.floor(e, outer);
        match &self.value {
            AkeyValue::Empty => false,
            AkeyValue::Single(v) => v.iter().any(|s| visible(s.epoch, e, f)),
            AkeyValue::Array { exts, .. } => exts.iter().any(|x| visible(x.epoch, e, f)),
        }
    }

    /// True if something is visible at `hi` and some version has an epoch in `[lo, hi]`.
    pub fn listable(&self, lo: Epoch, hi: Epoch, outer: Option<Epoch>) -> bool {
        if !self.exists(hi, outer) {
            return false;
        }
        match &self.value {
            AkeyValue::Empty => false,
            AkeyValue::Single(v) => v.iter().any(|s| s.epoch >= lo && s.epoch <= hi),
            AkeyValue::Array { exts, .. } => exts.iter().any(|x| x.epoch >= lo && x.epoch <= hi),
        }
    }

    /// Adds a single-value version; returns the payload it replaced at the same epoch, if any.
    pub fn put_single(&mut self, epoch: Epoch, payload: Payload) -> Option<Payload> {
        if !matches!(self.value, AkeyValue::Single(_)) {
            self.value = AkeyValue::Single(Vec::new());
        }
        let AkeyValue::Single(v) = &mut self.value else {
            unreachable!()
        };
        match v.binary_search_by_key(&epoch, |s| s.epoch) {
            Ok(i) => Some(std::mem::replace(&mut v[i].payload, payload)),
            Err(i) => {
                v.insert(i, SvVersion { epoch, payload });
                None
            }
        }
    }

    /// Adds an array extent (newer overlays older; same epoch: later write wins).
    pub fn put_extent(&mut self, rsize: u32, epoch: Epoch, recx: Recx, payload: Payload) {
        if !matches!(self.value, AkeyValue::Array { .. }) {
            self.value = AkeyValue::Array {
                rsize,
                exts: Vec::new(),
            };
        }
        let AkeyValue::Array { exts, .. } = &mut self.value else {
            unreachable!()
        };
        let i = exts.partition_point(|x| x.epoch <= epoch);
        exts.insert(
            i,
            ArrExt {
                epoch,
                recx,
                payload,
            },
        );
    }

    /// The visible single value at `e`.
    pub fn single_at(&self, e: Epoch, outer: Option<Epoch>) -> Option<&Payload> {
        let f = self.floor(e, outer);
        let AkeyValue::Single(v) = &self.value else {
            return None;
        };
        v.iter()
            .rev()
            .find(|s| visible(s.epoch, e, f))
            .map(|s| &s.payload)
    }

    /// Fills `out` (already zeroed, `recx.nr * rsize` bytes at `base`) for one requested extent.
    /// Inline bytes are copied now; data-file pieces are appended to `disk`. Returns the holes.
    #[allow(clippy::too_many_arguments)]
    pub fn read_recx(
        &self,
        e: Epoch,
        outer: Option<Epoch>,
        recx: Recx,
        out: &mut [u8],
        base: usize,
        iod: usize,
        disk: &mut Vec<DiskCopy>,
    ) -> Vec<Recx> {
        let f = self.floor(e, outer);
        let AkeyValue::Array { rsize, exts } = &self.value else {
            return vec![recx];
        };
        let rs = *rsize as u64;
        // Uncovered intervals [lo, hi) of record indexes.
        let mut gaps: Vec<(u64, u64)> = vec![(recx.idx, recx.end())];
        for x in exts.iter().rev() {
            if gaps.is_empty() {
                break;
            }
            if !visible(x.epoch, e, f) {
                continue;
            }
            let (xl, xh) = (x.recx.idx, x.recx.end());
            let mut next = Vec::with_capacity(gaps.len() + 1);
            for &(gl, gh) in &gaps {
                let (l, h) = (gl.max(xl), gh.min(xh));
                if l >= h {
                    next.push((gl, gh));
                    continue;
                }
                let dst = base + ((l - recx.idx) * rs) as usize;
                let src = ((l - xl) * rs) as usize;
                let n = ((h - l) * rs) as usize;
                match &x.payload {
                    Payload::Inline(b) => out[dst..dst + n].copy_from_slice(&b[src..src + n]),
                    Payload::Extent { off, len, crc } => disk.push(DiskCopy {
                        iod,
                        dst_off: dst,
                        ext_off: *off,
                        ext_len: *len,
                        crc: *crc,
                        src_off: src,
                        n,
                    }),
                }
                if gl < l {
                    next.push((gl, l));
                }
                if h < gh {
                    next.push((h, gh));
                }
            }
            gaps = next;
        }
        gaps.sort_unstable();
        gaps.into_iter().map(|(l, h)| Recx::new(l, h - l)).collect()
    }

    /// Visible extents at `hi` written at epochs `>= lo`, as disjoint pieces in index order.
    pub fn visible_recxs(&self, lo: Epoch, hi: Epoch, outer: Option<Epoch>) -> Vec<RecxEntry> {
        let f = self.floor(hi, outer);
        let AkeyValue::Array { exts, .. } = &self.value else {
            return Vec::new();
        };
        let mut pieces: Vec<RecxEntry> = Vec::new(); // disjoint, from newer extents
        for x in exts.iter().rev() {
            if !visible(x.epoch, hi, f) {
                continue;
            }
            let mut parts = vec![(x.recx.idx, x.recx.end())];
            for p in &pieces {
                let (pl, ph) = (p.recx.idx, p.recx.end());
                let mut next = Vec::new();
                for (l, h) in parts {
                    if ph <= l || pl >= h {
                        next.push((l, h));
                        continue;
                    }
                    if l < pl {
                        next.push((l, pl));
                    }
                    if ph < h {
                        next.push((ph, h));
                    }
                }
                parts = next;
            }
            for (l, h) in parts {
                pieces.push(RecxEntry {
                    recx: Recx::new(l, h - l),
                    epoch: x.epoch,
                });
            }
        }
        pieces.retain(|p| p.epoch >= lo);
        pieces.sort_by_key(|p| p.recx.idx);
        pieces
    }

    /// Drops versions that no read at an epoch `>= upto` can see and punches `<= upto`.
    /// Returns the payloads removed (their data-file space can be reclaimed).
    pub fn aggregate(&mut self, upto: Epoch, outer: Option<Epoch>) -> Vec<Payload> {
        let f = self.floor(upto, outer);
        let mut freed = Vec::new();
        match &mut self.value {
            AkeyValue::Empty => {}
            AkeyValue::Single(v) => {
                let newest_old = v.iter().rposition(|s| visible(s.epoch, upto, f));
                let old = std::mem::take(v);
                for (i, s) in old.into_iter().enumerate() {
                    if s.epoch > upto || Some(i) == newest_old {
                        v.push(s);
                    } else {
                        freed.push(s.payload);
                    }
                }
            }
            AkeyValue::Array { .. } => {}
        }
        let parts = self.visible_parts(upto, outer);
        if let AkeyValue::Array { rsize, exts } = &mut self.value {
            let rs = *rsize as u64;
            let old = std::mem::take(exts);
            // Rebuild in the original order (equal epochs: later entries win): fully
            // shadowed extents are dropped (their space reclaimed), inline ones are trimmed
            // to their visible pieces and merged with a contiguous same-epoch neighbour,
            // data-file ones partly visible stay whole here (the pool rewrites them into their
            // visible pieces first: `Index::rewrite_plan`, `IndexOp::Rewrite`).
            for (x, p) in old.into_iter().zip(parts) {
                if x.epoch > upto {
                    exts.push(x);
                    continue;
                }
                if p.is_empty() {
                    freed.push(x.payload);
                    continue;
                }
                let Payload::Inline(b) = &x.payload else {
                    exts.push(x);
                    continue;
                };
                let whole = p.len() == 1 && p[0] == (x.recx.idx, x.recx.end());
                for (l, h) in p {
                    let bytes = if whole {
                        b.clone()
                    } else {
                        b[((l - x.recx.idx) * rs) as usize..((h - x.recx.idx) * rs) as usize]
                            .to_vec()
                    };
                    if let Some(ArrExt {
                        epoch,
                        recx,
                        payload: Payload::Inline(prev),
                    }) = exts.last_mut()
                    {
                        if *epoch == x.epoch
                            && recx.end() == l
                            && prev.len() + bytes.len() <= MERGE_MAX
                        {
                            prev.extend_from_slice(&bytes);
                            recx.nr += h - l;
                            continue;
                        }
                    }
                    exts.push(ArrExt {
                        epoch: x.epoch,
                        recx: Recx::new(l, h - l),
                        payload: Payload::Inline(bytes),
                    });
                }
            }
        }
        self.punches.retain(|p| *p > upto);
        if self.value_is_empty() {
            self.value = AkeyValue::Empty;
        }
        freed
    }

    /// For each array extent at or below `upto`, the `[lo, hi)` record intervals a read at
    /// `upto` still sees (empty: fully shadowed or punched; extents above `upto`: empty too).
    pub fn visible_parts(&self, upto: Epoch, outer: Option<Epoch>) -> Vec<Vec<(u64, u64)>> {
        let f = self.floor(upto, outer);
        let AkeyValue::Array { exts, .. } = &self.value else {
            return Vec::new();
        };
        let mut covered: Vec<(u64, u64)> = Vec::new();
        let mut parts = vec![Vec::new(); exts.len()];
        for (i, x) in exts.iter().enumerate().rev() {
            if x.epoch > upto || !visible(x.epoch, upto, f) {
                continue;
            }
            let mut p = uncovered(&covered, x.recx);
            p.sort_unstable();
            covered.extend(p.iter().copied());
            parts[i] = p;
        }
        parts
    }

    /// The visible pieces at `upto` of the data-file extent at `off` written at `epoch`.
    pub fn extent_parts(
        &self,
        upto: Epoch,
        outer: Option<Epoch>,
        epoch: Epoch,
        off: u64,
    ) -> Option<Vec<(u64, u64)>> {
        let AkeyValue::Array { exts, .. } = &self.value else {
            return None;
        };
        let i = exts.iter().position(|x| {
            x.epoch == epoch && matches!(x.payload, Payload::Extent { off: o, .. } if o == off)
        })?;
        self.visible_parts(upto, outer).into_iter().nth(i)
    }

    /// Replaces the data-file extent at `off` written at `epoch` by `parts` (its visible pieces,
    /// rewritten), in place. Returns what became unreachable: the old extent, or the new parts
    /// if the old extent is gone (changed meanwhile).
    pub fn rewrite(&mut self, epoch: Epoch, off: u64, parts: Vec<(Recx, Payload)>) -> Vec<Payload> {
        let AkeyValue::Array { exts, .. } = &mut self.value else {
            return parts.into_iter().map(|(_, p)| p).collect();
        };
        let at = exts.iter().position(|x| {
            x.epoch == epoch && matches!(x.payload, Payload::Extent { off: o, .. } if o == off)
        });
        let Some(i) = at else {
            return parts.into_iter().map(|(_, p)| p).collect();
        };
        let old = exts.remove(i);
        for (k, (recx, payload)) in parts.into_iter().enumerate() {
            exts.insert(
                i + k,
                ArrExt {
                    epoch,
                    recx,
                    payload,
                },
            );
        }
        vec![old.payload]
    }

    /// Removes every version and punch with an epoch in `[lo, hi]`; returns removed payloads.
    pub fn discard(&mut self, lo: Epoch, hi: Epoch) -> Vec<Payload> {
        let inr = |e: Epoch| e >= lo && e <= hi;
        let mut freed = Vec::new();
        match &mut self.value {
            AkeyValue::Empty => {}
            AkeyValue::Single(v) => {
                for s in std::mem::take(v) {
                    if inr(s.epoch) {
                        freed.push(s.payload)
                    } else {
                        v.push(s)
                    }
                }
            }
            AkeyValue::Array { exts, .. } => {
                for x in std::mem::take(exts) {
                    if inr(x.epoch) {
                        freed.push(x.payload)
                    } else {
                        exts.push(x)
                    }
                }
            }
        }
        self.punches.retain(|p| !inr(*p));
        if self.value_is_empty() {
            self.value = AkeyValue::Empty;
        }
        freed
    }

    fn value_is_empty(&self) -> bool {
        match &self.value {
            AkeyValue::Empty => true,
            AkeyValue::Single(v) => v.is_empty(),
            AkeyValue::Array { exts, .. } => exts.is_empty(),
        }
    }

    /// Nothing left: no versions, no punches.
    pub fn is_empty(&self) -> bool {
        self.punches.is_empty() && self.value_is_empty()
    }

    /// Every payload held (for container destroy and allocator rebuild).
    pub fn payloads(&self) -> Box<dyn Iterator<Item = &Payload> + '_> {
        match &self.value {
            AkeyValue::Empty => Box::new(std::iter::empty()),
            AkeyValue::Single(v) => Box::new(v.iter().map(|s| &s.payload)),
            AkeyValue::Array { exts, .. } => Box::new(exts.iter().map(|x| &x.payload)),
        }
    }

    /// Number of versions (for metadata accounting).
    pub fn versions(&self) -> usize {
        match &self.value {
            AkeyValue::Empty => 0,
            AkeyValue::Single(v) => v.len(),
            AkeyValue::Array { exts, .. } => exts.len(),
        }
    }
}

/// Largest inline extent aggregation builds by merging neighbours (the inline threshold).
const MERGE_MAX: usize = 4096;

/// The parts of `r` (as `[lo, hi)` record intervals) not covered by any interval of `covered`.
fn uncovered(covered: &[(u64, u64)], r: Recx) -> Vec<(u64, u64)> {
    let mut gaps = vec![(r.idx, r.end())];
    for &(cl, ch) in covered {
        let mut next = Vec::new();
        for (l, h) in gaps {
            if ch <= l || cl >= h {
                next.push((l, h));
                continue;
            }
            if l < cl {
                next.push((l, cl));
            }
            if ch < h {
                next.push((ch, h));
            }
        }
        gaps = next;
        if gaps.is_empty() {
            break;
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inl(b: &[u8]) -> Payload {
        Payload::Inline(b.to_vec())
    }

    #[test]
    fn newer_extent_overlays_older_and_holes_are_reported() {
        let mut a = AkeyEntry::default();
        a.put_extent(1, 5, Recx::new(0, 4), inl(b"aaaa"));
        a.put_extent(1, 7, Recx::new(2, 4), inl(b"bbbb"));
        let mut out = vec![0u8; 8];
        let mut disk = Vec::new();
        let holes = a.read_recx(10, None, Recx::new(0, 8), &mut out, 0, 0, &mut disk);
        assert_eq!(&out, b"aabbbb\0\0");
        assert_eq!(holes, vec![Recx::new(6, 2)]);
        let mut out = vec![0u8; 8];
        let holes = a.read_recx(6, None, Recx::new(0, 8), &mut out, 0, 0, &mut disk);
        assert_eq!(&out, b"aaaa\0\0\0\0");
        assert_eq!(holes, vec![Recx::new(4, 4)]);
    }

    #[test]
    fn aggregation_trims_partly_shadowed_inline_extents_and_merges_neighbours() {
        let mut a = AkeyEntry::default();
        a.put_extent(1, 1, Recx::new(0, 8), inl(b"aaaaaaaa"));
        a.put_extent(1, 2, Recx::new(2, 3), inl(b"bbb"));
        a.put_extent(1, 2, Recx::new(5, 2), inl(b"cc")); // same epoch, contiguous with bbb
        a.put_extent(1, 3, Recx::new(6, 4), inl(b"dddd"));
        a.put_extent(1, 9, Recx::new(0, 1), inl(b"z")); // newer than upto: untouched
        let read = |a: &AkeyEntry, e| {
            let mut out = vec![0u8; 12];
            let holes = a.read_recx(e, None, Recx::new(0, 12), &mut out, 0, 0, &mut Vec::new());
            (out, holes)
        };
        let before: Vec<_> = [3, 5, 9, 20].iter().map(|e| read(&a, *e)).collect();
        a.aggregate(5, None);
        let after: Vec<_> = [3, 5, 9, 20].iter().map(|e| read(&a, *e)).collect();
        assert_eq!(before[1..], after[1..]);
        let AkeyValue::Array { exts, .. } = &a.value else {
            panic!()
        };
        let shape: Vec<_> = exts
            .iter()
            .map(|x| (x.epoch, x.recx.idx, x.recx.nr))
            .collect();
        // aaaaaaaa keeps [0,2); bbb+cc trimmed to [2,6) and merged; dddd whole; z untouched.
        assert_eq!(shape, vec![(1, 0, 2), (2, 2, 4), (3, 6, 4), (9, 0, 1)]);
        assert_eq!(exts[1].payload, inl(b"bbbc"));
    }

    #[test]
    fn aggregation_keeps_what_reads_at_or_after_upto_see() {
        let mut a = AkeyEntry::default();
        a.put_single(1, inl(b"1"));
        a.put_single(2, inl(b"2"));
        a.put_single(5, inl(b"5"));
        let freed = a.aggregate(3, None);
        assert_eq!(freed, vec![inl(b"1")]);
        assert_eq!(a.single_at(3, None), Some(&inl(b"2")));
        assert_eq!(a.single_at(9, None), Some(&inl(b"5")));
    }
}
