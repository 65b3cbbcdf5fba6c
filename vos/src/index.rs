//! The sans-IO metadata index of one pool: containers → a flat ordered map keyed by
//! `(oid, dkey, akey)` → [`AkeyEntry`], plus object and dkey punch epochs. Every mutation is an
//! [`IndexOp`], the same value the WAL records, so recovery replays exactly what ran.
//!
//! A flat map (one B-tree entry per akey) instead of nested maps: 1 M objects with nested
//! per-object and per-dkey maps would pay a B-tree node (~0.9 KiB) per level per object.

use std::collections::BTreeMap;
use std::ops::Bound;

use bincode::{Decode, Encode};

use crate::akey::{add_punch, floor_of, AkeyEntry, AkeyValue, DiskCopy, Payload};
use crate::error::{Result, VosError};
use crate::types::{cond, Anchor, Epoch, EpochRange, FetchIod, Fetched, Oid, Recx, RecxEntry};

use crate::akeymap::{AkeyKey, AkeyMap};

/// One value of an update as recorded: payload inline or already placed in the data file.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum OpValue {
    Single(Payload),
    Array {
        rsize: u32,
        exts: Vec<(Recx, Payload)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OpIod {
    pub akey: Vec<u8>,
    pub value: OpValue,
}

/// A mutation of the index; also the body of a WAL record.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum IndexOp {
    ContCreate {
        cont: u128,
    },
    ContDestroy {
        cont: u128,
    },
    Update {
        cont: u128,
        oid: u128,
        epoch: Epoch,
        dkey: Vec<u8>,
        iods: Vec<OpIod>,
    },
    Punch {
        cont: u128,
        oid: u128,
        epoch: Epoch,
        dkey: Option<Vec<u8>>,
        akey: Option<Vec<u8>>,
    },
    Aggregate {
        cont: u128,
        upto: Epoch,
    },
    Discard {
        cont: u128,
        lo: Epoch,
        hi: Epoch,
    },
    /// Aggregation's data rewrite: the data-file extent at `off` (written at `epoch`) is
    /// replaced by its visible pieces `parts` (already durable in the data file, or inline).
    Rewrite {
        cont: u128,
        oid: u128,
        dkey: Vec<u8>,
        akey: Vec<u8>,
        epoch: Epoch,
        /// The aggregation epoch the pieces were computed at (re-checked when applied).
        upto: Epoch,
        off: u64,
        parts: Vec<(Recx, Payload)>,
    },
}

/// A partly shadowed data-file extent that aggregation at `upto` rewrites into `parts`.
#[derive(Clone, Debug)]
pub struct RewritePlan {
    pub oid: u128,
    pub dkey: Vec<u8>,
    pub akey: Vec<u8>,
    pub epoch: Epoch,
    pub off: u64,
    pub len: u32,
    pub crc: u32,
    pub rsize: u32,
    pub recx: Recx,
    /// Visible `[lo, hi)` record intervals.
    pub parts: Vec<(u64, u64)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Container {
    akeys: AkeyMap,
    obj_punch: BTreeMap<u128, Vec<Epoch>>,
    dkey_punch: BTreeMap<(u128, Vec<u8>), Vec<Epoch>>,
    /// Highest epoch aggregated so far: history at or below it is merged, so new updates and
    /// punches there are refused (`DER_EP_OLD`).
    agg_upto: Epoch,
}

/// All containers of one pool (target).
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Index {
    conts: BTreeMap<u128, Container>,
}

/// The next byte string after every string that starts with `k`... for prefix-free skipping:
/// the smallest string greater than `k` is `k ++ [0]`.
fn succ(k: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 1);
    v.extend_from_slice(k);
    v.push(0);
    v
}

impl Container {
    fn outer_floor(&self, oid: u128, dkey: &[u8], e: Epoch) -> Option<Epoch> {
        let o = self.obj_punch.get(&oid).and_then(|p| floor_of(p, e));
        let d = if self.dkey_punch.is_empty() {
            None
        } else {
            self.dkey_punch
                .get(&(oid, dkey.to_vec()))
                .and_then(|p| floor_of(p, e))
        };
        o.max(d)
    }

    fn dkey_range(&self, oid: u128, dkey: &[u8]) -> impl Iterator<Item = (&AkeyKey, &AkeyEntry)> {
        let lo = (oid, dkey.to_vec(), Vec::new());
        let hi = (oid, succ(dkey), Vec::new());
        self.akeys.range((Bound::Included(lo), Bound::Excluded(hi)))
    }

    fn dkey_exists(&self, oid: u128, dkey: &[u8], e: Epoch) -> bool {
        let outer = self.outer_floor(oid, dkey, e);
        self.dkey_range(oid, dkey).any(|(_, a)| a.exists(e, outer))
    }

    fn akey_exists(&self, oid: u128, dkey: &[u8], akey: &[u8], e: Epoch) -> bool {
        let outer = self.outer_floor(oid, dkey, e);
        self.akeys
            .get(&(oid, dkey.to_vec(), akey.to_vec()))
            .is_some_and(|a| a.exists(e, outer))
    }

    fn free_all(&self, out: &mut Vec<Payload>) {
        for a in self.akeys.values() {
            out.extend(a.payloads().filter(|p| p.allocation().is_some()).cloned());
        }
    }
}

impl Index {
    fn cont(&self, cont: u128) -> Result<&Container> {
        self.conts.get(&cont).ok_or_else(|| VosError::Nonexist {
            what: format!("container {}", uuid_str(cont)),
        })
    }

    /// Refuses a punch at or below the container's aggregation boundary.
    pub fn check_punch(&self, cont: u128, epoch: Epoch) -> Result<()> {
        let c = self.cont(cont)?;
        if epoch <= c.agg_upto {
            return Err(VosError::EpochTooOld {
                epoch,
                aggregated: c.agg_upto,
            });
        }
        Ok(())
    }

    /// [`Index::check_punch`], plus `COND_PUNCH`: the punched object (no `dkey`), dkey (no
    /// `akey`) or akey must exist at `epoch`, else `DER_NONEXIST`.
    pub fn check_punch_cond(
        &self,
        cont: u128,
        oid: Oid,
        epoch: Epoch,
        flags: u64,
        dkey: Option<&[u8]>,
        akey: Option<&[u8]>,
    ) -> Result<()> {
        self.check_punch(cont, epoch)?;
        if flags & cond::COND_PUNCH == 0 {
            return Ok(());
        }
        let c = self.cont(cont)?;
        let o = oid.as_u128();
        let (exists, what) = match (dkey, akey) {
            (None, _) => {
                let lo = (o, Vec::new(), Vec::new());
                let any = |(k, a): (&AkeyKey, &AkeyEntry)| {
                    k.0 == o && a.exists(epoch, c.outer_floor(o, &k.1, epoch))
                };
                let ex = match o.checked_add(1) {
                    Some(h) => c.akeys.range(lo..(h, Vec::new(), Vec::new())).any(any),
                    None => c.akeys.range(lo..).any(any),
                };
                (ex, format!("object {oid:?}"))
            }
            (Some(d), None) => (c.dkey_exists(o, d, epoch), format!("dkey {}", show(d))),
            (Some(d), Some(a)) => (c.akey_exists(o, d, a, epoch), format!("akey {}", show(a))),
        };
        if exists {
            Ok(())
        } else {
            Err(VosError::Nonexist { what })
        }
    }

    pub fn has_container(&self, cont: u128) -> bool {
        self.conts.contains_key(&cont)
    }

    pub fn containers(&self) -> Vec<u128> {
        self.conts.keys().copied().collect()
    }

    /// Validates an update before anything is reserved or logged: container exists, value kinds
    /// and record sizes match, conditional flags hold at `epoch`.
    pub fn check_update(
        &self,
        cont: u128,
        oid: Oid,
        epoch: Epoch,
        flags: u64,
        dkey: &[u8],
        iods: &[crate::types::UpdateIod],
    ) -> Result<()> {
        let c = self.cont(cont)?;
        let oid = oid.as_u128();
        if iods.is_empty() {
            return Err(VosError::Invalid("update with no iods".into()));
        }
        if epoch <= c.agg_upto {
            return Err(VosError::EpochTooOld {
                epoch,
                aggregated: c.agg_upto,
            });
        }
        if flags & (cond::DKEY_INSERT | cond::DKEY_UPDATE) != 0 {
            let ex = c.dkey_exists(oid, dkey, epoch);
            if flags & cond::DKEY_INSERT != 0 && ex {
                return Err(VosError::Exist {
                    what: format!("dkey {}", show(dkey)),
                });
            }
            if flags & cond::DKEY_UPDATE != 0 && !ex {
                return Err(VosError::Nonexist {
                    what: format!("dkey {}", show(dkey)),
                });
            }
        }
        for iod in iods {
            let key = (oid, dkey.to_vec(), iod.akey.clone());
            let cur = c.akeys.get(&key);
            match (&iod.value, cur.map(|a| &a.value)) {
                (crate::types::IodValue::Single(_), Some(AkeyValue::Array { .. })) => {
                    return Err(VosError::WrongType {
                        existing: "array",
                        requested: "single",
                    })
                }
                (crate::types::IodValue::Array { .. }, Some(AkeyValue::Single(_))) => {
                    return Err(VosError::WrongType {
                        existing: "single",
                        requested: "array",
                    })
                }
                (
                    crate::types::IodValue::Array { rsize, .. },
                    Some(AkeyValue::Array { rsize: r, .. }),
                ) if r != rsize => {
                    return Err(VosError::RecordSize {
                        expected: *r,
                        got: *rsize,
                    })
                }
                _ => {}
            }
            if let crate::types::IodValue::Single(b) = &iod.value {
                if b.len() as u64 > u32::MAX as u64 {
                    return Err(VosError::Invalid(format!(
                        "single value of {} bytes is too large",
                        b.len()
                    )));
                }
            }
            if let crate::types::IodValue::Array { rsize, extents } = &iod.value {
                if *rsize == 0 {
                    return Err(VosError::Invalid("array record size 0".into()));
                }
                for (r, b) in extents {
                    let need = check_recx(r, *rsize)?;
                    if b.len() as u64 != need {
                        return Err(VosError::Invalid(format!(
                            "extent {r:?} needs {need} bytes, got {}",
                            b.len()
                        )));
                    }
                }
            }
            let af = if flags & cond::PER_AKEY != 0 {
                iod.flags
            } else {
                flags
            };
            if af & (cond::AKEY_INSERT | cond::AKEY_UPDATE) != 0 {
                let ex = c.akey_exists(oid, dkey, &iod.akey, epoch);
                if af & cond::AKEY_INSERT != 0 && ex {
                    return Err(VosError::Exist {
                        what: format!("akey {}", show(&iod.akey)),
                    });
                }
                if af & cond::AKEY_UPDATE != 0 && !ex {
                    return Err(VosError::Nonexist {
                        what: format!("akey {}", show(&iod.akey)),
                    });
                }
            }
        }
        Ok(())
    }

    /// Applies a mutation (already validated, or replayed from the WAL). Returns the payloads it
    /// made unreachable, whose data-file space the caller frees once the op is durable.
    pub fn apply(&mut self, op: IndexOp) -> Vec<Payload> {
        let mut freed = Vec::new();
        match op {
            IndexOp::ContCreate { cont } => {
                self.conts.entry(cont).or_default();
            }
            IndexOp::ContDestroy { cont } => {
                if let Some(c) = self.conts.remove(&cont) {
                    c.free_all(&mut freed);
                }
            }
            IndexOp::Update {
                cont,
                oid,
                epoch,
                dkey,
                iods,
            } => {
                let Some(c) = self.conts.get_mut(&cont) else {
                    return freed;
                };
                for iod in iods {
                    let a = c.akeys.entry_or_default((oid, dkey.clone(), iod.akey));
                    match iod.value {
                        OpValue::Single(p) => freed.extend(a.put_single(epoch, p)),
                        OpValue::Array { rsize, exts } => {
                            for (r, p) in exts {
                                a.put_extent(rsize, epoch, r, p);
                            }
                        }
                    }
                }
            }
            IndexOp::Punch {
                cont,
                oid,
                epoch,
                dkey,
                akey,
            } => {
                let Some(c) = self.conts.get_mut(&cont) else {
                    return freed;
                };
                match (dkey, akey) {
                    (None, _) => add_punch(c.obj_punch.entry(oid).or_default(), epoch),
                    (Some(d), None) => add_punch(c.dkey_punch.entry((oid, d)).or_default(), epoch),
                    // A punch of a key never written still hides older updates that arrive later.
                    (Some(d), Some(a)) => {
                        add_punch(&mut c.akeys.entry_or_default((oid, d, a)).punches, epoch)
                    }
                }
            }
            IndexOp::Aggregate { cont, upto } => {
                let Some(c) = self.conts.get_mut(&cont) else {
                    return freed;
                };
                c.agg_upto = c.agg_upto.max(upto);
                let (op, dp) = (&c.obj_punch, &c.dkey_punch);
                c.akeys.retain(|(oid, dkey, _), a| {
                    let o = op.get(oid).and_then(|p| floor_of(p, upto));
                    let d = dp
                        .get(&(*oid, dkey.clone()))
                        .and_then(|p| floor_of(p, upto));
                    freed.extend(
                        a.aggregate(upto, o.max(d))
                            .into_iter()
                            .filter(|p| p.allocation().is_some()),
                    );
                    !a.is_empty()
                });
                c.obj_punch.retain(|_, p| {
                    p.retain(|e| *e > upto);
                    !p.is_empty()
                });
                c.dkey_punch.retain(|_, p| {
                    p.retain(|e| *e > upto);
                    !p.is_empty()
                });
            }
            IndexOp::Discard { cont, lo, hi } => {
                let Some(c) = self.conts.get_mut(&cont) else {
                    return freed;
                };
                c.akeys.retain(|_, a| {
                    freed.extend(
                        a.discard(lo, hi)
                            .into_iter()
                            .filter(|p| p.allocation().is_some()),
                    );
                    !a.is_empty()
                });
                for p in c.obj_punch.values_mut() {
                    p.retain(|e| *e < lo || *e > hi);
                }
                c.obj_punch.retain(|_, p| !p.is_empty());
                for p in c.dkey_punch.values_mut() {
                    p.retain(|e| *e < lo || *e > hi);
                }
                c.dkey_punch.retain(|_, p| !p.is_empty());
            }
            IndexOp::Rewrite {
                cont,
                oid,
                dkey,
                akey,
                epoch,
                upto,
                off,
                parts,
            } => {
                let gone = || parts.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>();
                let Some(c) = self.conts.get_mut(&cont) else {
                    freed.extend(gone());
                    return freed;
                };
                let outer = c.outer_floor(oid, &dkey, upto);
                let planned: Vec<(u64, u64)> =
                    parts.iter().map(|(r, _)| (r.idx, r.end())).collect();
                match c.akeys.get_mut(&(oid, dkey, akey)) {
                    // Only if the extent still shows exactly the planned pieces at `upto`.
                    Some(a) if a.extent_parts(upto, outer, epoch, off) == Some(planned) => {
                        freed.extend(a.rewrite(epoch, off, parts))
                    }
                    _ => freed.extend(gone()),
                }
            }
        }
        freed.retain(|p| p.allocation().is_some());
        freed
    }

    /// Resolves a fetch: inline bytes are copied into the result now; pieces in the data file
    /// are returned as [`DiskCopy`] instructions for the caller's I/O layer.
    #[allow(clippy::too_many_arguments)]
    pub fn fetch(
        &self,
        cont: u128,
        oid: Oid,
        epoch: Epoch,
        flags: u64,
        dkey: &[u8],
        iods: &[FetchIod],
    ) -> Result<(Vec<Fetched>, Vec<DiskCopy>)> {
        let c = self.cont(cont)?;
        let oid = oid.as_u128();
        if flags & cond::DKEY_FETCH != 0 && !c.dkey_exists(oid, dkey, epoch) {
            return Err(VosError::Nonexist {
                what: format!("dkey {}", show(dkey)),
            });
        }
        let outer = c.outer_floor(oid, dkey, epoch);
        let mut out = Vec::with_capacity(iods.len());
        let mut disk = Vec::new();
        let per_akey = flags & cond::PER_AKEY != 0;
        for (i, iod) in iods.iter().enumerate() {
            let (iod, af) = match iod {
                FetchIod::Cond { iod, flags: f } => {
                    if matches!(**iod, FetchIod::Cond { .. }) {
                        return Err(VosError::Invalid("nested FetchIod::Cond".into()));
                    }
                    (&**iod, if per_akey { *f } else { flags })
                }
                other => (other, if per_akey { 0 } else { flags }),
            };
            let a = c.akeys.get(&(oid, dkey.to_vec(), iod.akey().to_vec()));
            if af & cond::AKEY_FETCH != 0 && !a.is_some_and(|a| a.exists(epoch, outer)) {
                return Err(VosError::Nonexist {
                    what: format!("akey {}", show(iod.akey())),
                });
            }
            match iod {
                FetchIod::Cond { .. } => unreachable!("unwrapped above"),
                FetchIod::Size { .. } => out.push(Fetched::Size(match a.map(|a| &a.value) {
                    Some(AkeyValue::Array { rsize, .. })
                        if a.is_some_and(|a| a.exists(epoch, outer)) =>
                    {
                        *rsize as u64
                    }
                    Some(AkeyValue::Single(_)) => match a.and_then(|a| a.single_at(epoch, outer)) {
                        Some(Payload::Inline(b)) => b.len() as u64,
                        Some(Payload::Extent { len, .. }) => *len as u64,
                        None => 0,
                    },
                    _ => 0,
                })),
                FetchIod::Single { .. } => {
                    if let Some(AkeyValue::Array { .. }) = a.map(|a| &a.value) {
                        return Err(VosError::WrongType {
                            existing: "array",
                            requested: "single",
                        });
                    }
                    match a.and_then(|a| a.single_at(epoch, outer)) {
                        None => out.push(Fetched::Single(None)),
                        Some(Payload::Inline(b)) => out.push(Fetched::Single(Some(b.clone()))),
                        Some(Payload::Extent { off, len, crc }) => {
                            disk.push(DiskCopy {
                                iod: i,
                                dst_off: 0,
                                ext_off: *off,
                                ext_len: *len,
                                crc: *crc,
                                src_off: 0,
                                n: *len as usize,
                            });
                            out.push(Fetched::Single(Some(vec![0; *len as usize])));
                        }
                    }
                }
                FetchIod::Array { rsize, recxs, .. } => {
                    match a.map(|a| &a.value) {
                        Some(AkeyValue::Single(_)) => {
                            return Err(VosError::WrongType {
                                existing: "single",
                                requested: "array",
                            })
                        }
                        Some(AkeyValue::Array { rsize: r, .. }) if r != rsize => {
                            return Err(VosError::RecordSize {
                                expected: *r,
                                got: *rsize,
                            })
                        }
                        _ => {}
                    }
                    if *rsize == 0 {
                        return Err(VosError::Invalid("array record size 0".into()));
                    }
                    let mut total = 0u64;
                    for r in recxs {
                        total = total.saturating_add(check_recx(r, *rsize)?);
                    }
                    if total > MAX_FETCH_BYTES {
                        return Err(VosError::Invalid(format!(
                            "fetch of {total} bytes exceeds the {MAX_FETCH_BYTES}-byte limit per request"
                        )));
                    }
                    let mut data = vec![0u8; total as usize];
                    let mut holes = Vec::new();
                    let mut base = 0usize;
                    for r in recxs {
                        match a {
                            Some(a) => holes.extend(
                                a.read_recx(epoch, outer, *r, &mut data, base, i, &mut disk),
                            ),
                            None => holes.push(*r),
                        }
                        base += (r.nr * *rsize as u64) as usize;
                    }
                    out.push(Fetched::Array { data, holes });
                }
            }
        }
        Ok((out, disk))
    }

    /// Objects of a container with data visible in `epr`, paged by `anchor`.
    pub fn list_objects(
        &self,
        cont: u128,
        epr: EpochRange,
        anchor: &mut Anchor,
        max: usize,
    ) -> Result<Vec<Oid>> {
        let c = self.cont(cont)?;
        let mut out = Vec::new();
        if anchor.eof {
            return Ok(out);
        }
        let mut start = match &anchor.pos {
            None => Some(0u128),
            Some(p) => u128_from(p).checked_add(1),
        };
        while let Some(s) = start {
            if out.len() >= max {
                break;
            }
            let Some(((oid, _, _), _)) = c.akeys.range((s, Vec::new(), Vec::new())..).next() else {
                start = None;
                break;
            };
            let oid = *oid;
            let hi = oid.checked_add(1);
            let listed = match hi {
                Some(h) => c
                    .akeys
                    .range((oid, Vec::new(), Vec::new())..(h, Vec::new(), Vec::new()))
                    .any(|((_, d, _), a)| {
                        a.listable(epr.lo, epr.hi, c.outer_floor(oid, d, epr.hi))
                    }),
                None => c
                    .akeys
                    .range((oid, Vec::new(), Vec::new())..)
                    .any(|((_, d, _), a)| {
                        a.listable(epr.lo, epr.hi, c.outer_floor(oid, d, epr.hi))
                    }),
            };
            if listed {
                out.push(Oid::from_u128(oid));
            }
            anchor.pos = Some(oid.to_be_bytes().to_vec());
            start = hi;
        }
        anchor.eof = start.is_none();
        Ok(out)
    }

    /// Dkeys of an object with data visible in `epr`, in key order, paged by `anchor`.
    pub fn list_dkeys(
        &self,
        cont: u128,
        oid: Oid,
        epr: EpochRange,
        anchor: &mut Anchor,
        max: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let c = self.cont(cont)?;
        let oid = oid.as_u128();
        let mut out = Vec::new();
        if anchor.eof {
            return Ok(out);
        }
        let mut from = match &anchor.pos {
            None => Vec::new(),
            Some(d) => succ(d),
        };
        loop {
            if out.len() >= max {
                anchor.eof = false;
                return Ok(out);
            }
            let Some(((o, d, _), _)) = c.akeys.range((oid, from.clone(), Vec::new())..).next()
            else {
                break;
            };
            if *o != oid {
                break;
            }
            let d = d.clone();
            let outer = c.outer_floor(oid, &d, epr.hi);
            if c.dkey_range(oid, &d)
                .any(|(_, a)| a.listable(epr.lo, epr.hi, outer))
            {
                out.push(d.clone());
            }
            from = succ(&d);
            anchor.pos = Some(d);
        }
        anchor.eof = true;
        Ok(out)
    }

    /// Akeys of a dkey with data visible in `epr`, in key order, paged by `anchor`.
    #[allow(clippy::too_many_arguments)]
    pub fn list_akeys(
        &self,
        cont: u128,
        oid: Oid,
        dkey: &[u8],
        epr: EpochRange,
        anchor: &mut Anchor,
        max: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let c = self.cont(cont)?;
        let oid = oid.as_u128();
        let mut out = Vec::new();
        if anchor.eof {
            return Ok(out);
        }
        let outer = c.outer_floor(oid, dkey, epr.hi);
        let lo = match &anchor.pos {
            None => Bound::Included((oid, dkey.to_vec(), Vec::new())),
            Some(a) => Bound::Excluded((oid, dkey.to_vec(), a.clone())),
        };
        let hi = Bound::Excluded((oid, succ(dkey), Vec::new()));
        for ((_, _, ak), a) in c.akeys.range((lo, hi)) {
            if out.len() >= max {
                return Ok(out);
            }
            anchor.pos = Some(ak.clone());
            if a.listable(epr.lo, epr.hi, outer) {
                out.push(ak.clone());
            }
        }
        anchor.eof = true;
        Ok(out)
    }

    /// Visible array extents of an akey at `epr.hi` written at epochs `>= epr.lo`, paged.
    #[allow(clippy::too_many_arguments)]
    pub fn list_recxs(
        &self,
        cont: u128,
        oid: Oid,
        dkey: &[u8],
        akey: &[u8],
        epr: EpochRange,
        anchor: &mut Anchor,
        max: usize,
    ) -> Result<Vec<RecxEntry>> {
        let c = self.cont(cont)?;
        let oid = oid.as_u128();
        if anchor.eof {
            return Ok(Vec::new());
        }
        let outer = c.outer_floor(oid, dkey, epr.hi);
        let all = c
            .akeys
            .get(&(oid, dkey.to_vec(), akey.to_vec()))
            .map(|a| a.visible_recxs(epr.lo, epr.hi, outer))
            .unwrap_or_default();
        let skip = anchor
            .pos
            .as_deref()
            .map(|p| u128_from(p) as usize)
            .unwrap_or(0);
        let page: Vec<RecxEntry> = all.iter().skip(skip).take(max).copied().collect();
        let next = skip + page.len();
        anchor.pos = Some((next as u128).to_be_bytes().to_vec());
        anchor.eof = next >= all.len();
        Ok(page)
    }

    /// Data-file extents at or below `upto` that a read at `upto` sees only partly: aggregation
    /// rewrites their visible pieces so the shadowed bytes' space is reclaimed.
    pub fn rewrite_plan(&self, cont: u128, upto: Epoch) -> Vec<RewritePlan> {
        let Some(c) = self.conts.get(&cont) else {
            return Vec::new();
        };
        let mut plan = Vec::new();
        for ((oid, dkey, akey), a) in c.akeys.iter() {
            let AkeyValue::Array { rsize, exts } = &a.value else {
                continue;
            };
            let outer = c.outer_floor(*oid, dkey, upto);
            for (x, parts) in exts.iter().zip(a.visible_parts(upto, outer)) {
                let Payload::Extent { off, len, crc } = x.payload else {
                    continue;
                };
                if parts.is_empty() || parts == [(x.recx.idx, x.recx.end())] {
                    continue; // freed whole, or kept whole
                }
                plan.push(RewritePlan {
                    oid: *oid,
                    dkey: dkey.clone(),
                    akey: akey.clone(),
                    epoch: x.epoch,
                    off,
                    len,
                    crc,
                    rsize: *rsize,
                    recx: x.recx,
                    parts,
                });
            }
        }
        plan
    }

    /// Every data-file allocation referenced by the index (to rebuild the allocator).
    pub fn allocations(&self) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        for c in self.conts.values() {
            for a in c.akeys.values() {
                v.extend(a.payloads().filter_map(|p| p.allocation()));
            }
        }
        v
    }

    /// Approximate DRAM bytes held (keys, version records, inline values, punches).
    pub fn meta_bytes(&self) -> u64 {
        let mut n = 0u64;
        for c in self.conts.values() {
            n += 64 + 40 * (c.obj_punch.len() + c.dkey_punch.len()) as u64;
            for ((_, d, a), e) in c.akeys.iter() {
                n += 96 + d.len() as u64 + a.len() as u64 + 8 * e.punches.len() as u64;
                n += 40 * e.versions() as u64;
                n += e
                    .payloads()
                    .map(|p| {
                        if let Payload::Inline(b) = p {
                            b.len() as u64
                        } else {
                            0
                        }
                    })
                    .sum::<u64>();
            }
        }
        n
    }

    /// Number of akey entries across containers (a size hint for logs).
    pub fn akey_count(&self) -> usize {
        self.conts.values().map(|c| c.akeys.len()).sum()
    }
}

/// Largest array fetch buffered in one request.
pub const MAX_FETCH_BYTES: u64 = 1 << 30;

/// Validates an extent (non-empty, no index overflow) and returns its byte length.
fn check_recx(r: &Recx, rsize: u32) -> Result<u64> {
    if r.nr == 0 {
        return Err(VosError::Invalid(format!("extent {r:?} has no records")));
    }
    r.idx
        .checked_add(r.nr)
        .and_then(|_| r.nr.checked_mul(rsize as u64))
        .filter(|n| *n <= u32::MAX as u64)
        .ok_or_else(|| {
            VosError::Invalid(format!("extent {r:?} of {rsize}-byte records is too large"))
        })
}

fn u128_from(p: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    let n = p.len().min(16);
    b[16 - n..].copy_from_slice(&p[p.len() - n..]);
    u128::from_be_bytes(b)
}

/// Renders a key for error messages: UTF-8 if printable, hex otherwise (at most 64 bytes).
pub fn show(k: &[u8]) -> String {
    let k = &k[..k.len().min(64)];
    match std::str::from_utf8(k) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => k.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

pub fn uuid_str(c: u128) -> String {
    daos_common::ids::Uuid::from_u128(c).to_string()
}
