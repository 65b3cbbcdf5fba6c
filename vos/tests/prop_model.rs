//! Model-based test: random operation sequences against a naive in-memory model of DAOS's data
//! model (every version kept, visibility computed by brute force), with close + reopen (recovery)
//! at random points, checkpoints and aggregation.

mod common;

use daos_common::DaosErrno;
use proptest::prelude::*;
use uuid::Uuid;
use vos::*;

#[derive(Clone, Debug)]
enum Op {
    Single {
        o: u8,
        d: u8,
        a: u8,
        e: u64,
        len: usize,
        fill: u8,
    },
    Array {
        o: u8,
        d: u8,
        e: u64,
        idx: u64,
        nr: u64,
        fill: u8,
    },
    PunchObj {
        o: u8,
        e: u64,
    },
    PunchDkey {
        o: u8,
        d: u8,
        e: u64,
    },
    PunchAkey {
        o: u8,
        d: u8,
        a: u8,
        e: u64,
    },
    CondInsert {
        o: u8,
        d: u8,
        a: u8,
        e: u64,
        fill: u8,
    },
    Aggregate {
        upto: u64,
    },
    Discard {
        lo: u64,
        hi: u64,
    },
    Reopen,
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..2u8, 0..2u8, 0..2u8, 1..20u64, prop_oneof![1..64usize, 4000..9000usize], any::<u8>())
            .prop_map(|(o, d, a, e, len, fill)| Op::Single { o, d, a, e, len, fill }),
        3 => (0..2u8, 0..2u8, 1..20u64, 0..12u64, 1..6u64, any::<u8>())
            .prop_map(|(o, d, e, idx, nr, fill)| Op::Array { o, d, e, idx, nr, fill }),
        // Extents above the inline threshold (data file), overlapping each other and the small ones.
        1 => (0..2u8, 0..2u8, 1..20u64, 0..300u64, 4097..4200u64, any::<u8>())
            .prop_map(|(o, d, e, idx, nr, fill)| Op::Array { o, d, e, idx, nr, fill }),
        1 => (0..2u8, 1..20u64).prop_map(|(o, e)| Op::PunchObj { o, e }),
        1 => (0..2u8, 0..2u8, 1..20u64).prop_map(|(o, d, e)| Op::PunchDkey { o, d, e }),
        1 => (0..2u8, 0..2u8, 0..2u8, 1..20u64).prop_map(|(o, d, a, e)| Op::PunchAkey { o, d, a, e }),
        1 => (0..2u8, 0..2u8, 0..2u8, 1..20u64, any::<u8>()).prop_map(|(o, d, a, e, fill)| Op::CondInsert { o, d, a, e, fill }),
        1 => (1..20u64).prop_map(|upto| Op::Aggregate { upto }),
        1 => (1..20u64, 0..4u64).prop_map(|(lo, n)| Op::Discard { lo, hi: lo + n }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Checkpoint),
    ]
}

/// The model: the op log itself; reads scan it. Reads below `agg` (the highest aggregated
/// epoch) are unspecified after aggregation and are not checked.
#[derive(Default)]
struct Model {
    log: Vec<Op>,
    agg: u64,
}

fn epoch_of(op: &Op) -> Option<u64> {
    match *op {
        Op::Single { e, .. }
        | Op::Array { e, .. }
        | Op::PunchObj { e, .. }
        | Op::PunchDkey { e, .. }
        | Op::PunchAkey { e, .. }
        | Op::CondInsert { e, .. } => Some(e),
        _ => None,
    }
}

impl Model {
    fn dkey_visible(&self, o: u8, d: u8, e: u64) -> bool {
        (0..2u8).any(|a| self.single(o, d, a, e).is_some())
            || self.array(o, d, e).1.iter().any(|s| *s)
    }

    fn floor(&self, o: u8, d: u8, a: Option<u8>, e: u64) -> u64 {
        self.log
            .iter()
            .filter_map(|op| match *op {
                Op::PunchObj { o: po, e: pe } if po == o && pe <= e => Some(pe),
                Op::PunchDkey {
                    o: po,
                    d: pd,
                    e: pe,
                } if po == o && pd == d && pe <= e => Some(pe),
                Op::PunchAkey {
                    o: po,
                    d: pd,
                    a: pa,
                    e: pe,
                } if po == o && pd == d && Some(pa) == a && pe <= e => Some(pe),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    fn single(&self, o: u8, d: u8, a: u8, e: u64) -> Option<Vec<u8>> {
        let f = self.floor(o, d, Some(a), e);
        let mut best: Option<(u64, Vec<u8>)> = None;
        for op in &self.log {
            let single = match *op {
                Op::Single {
                    o,
                    d,
                    a,
                    e,
                    len,
                    fill,
                } => Some((o, d, a, e, len, fill)),
                Op::CondInsert { o, d, a, e, fill } => Some((o, d, a, e, 7, fill)),
                _ => None,
            };
            if let Some((so, sd, sa, se, len, fill)) = single {
                if so == o
                    && sd == d
                    && sa == a
                    && se <= e
                    && se > f
                    && best.as_ref().is_none_or(|b| se >= b.0)
                {
                    best = Some((se, vec![fill; len]));
                }
            }
        }
        best.map(|b| b.1)
    }

    fn array(&self, o: u8, d: u8, e: u64) -> (Vec<u8>, Vec<bool>) {
        let (data, src) = self.array_src(o, d, e);
        (data, src.iter().map(|s| s.is_some()).collect())
    }

    /// Bytes of the array akey at `e` and, per record, the log index of the op it comes from.
    fn array_src(&self, o: u8, d: u8, e: u64) -> (Vec<u8>, Vec<Option<usize>>) {
        let f = self.floor(o, d, Some(AKEY_ARR), e);
        let mut data = vec![0u8; ARR_LEN];
        let mut best = vec![0u64; ARR_LEN];
        let mut set: Vec<Option<usize>> = vec![None; ARR_LEN];
        for (k, op) in self.log.iter().enumerate() {
            if let Op::Array {
                o: so,
                d: sd,
                e: se,
                idx,
                nr,
                fill,
            } = *op
            {
                if so == o && sd == d && se <= e && se > f {
                    for i in idx..idx + nr {
                        if set[i as usize].is_none() || se >= best[i as usize] {
                            data[i as usize] = rec(fill, i);
                            best[i as usize] = se;
                            set[i as usize] = Some(k);
                        }
                    }
                }
            }
        }
        (data, set)
    }
}

const AKEY_ARR: u8 = 9;
/// Records of the array akey that ops can write (12 + 300 + 4200 rounded up).
const ARR_LEN: usize = 4520;

/// Record `i` of an array write: varies with the index so a mis-trimmed extent reads wrong.
fn rec(fill: u8, i: u64) -> u8 {
    fill.wrapping_add((i as u8).wrapping_mul(7))
}

/// Data-file bytes the store must still hold at `e` once everything at or below it is
/// aggregated: every single value above the inline threshold still visible at `e`, and for
/// array writes, each maximal run of records still visible from one write (aggregation
/// rewrites partly shadowed extents into those runs; runs up to the threshold become inline).
fn live_data_bytes(m: &Model, e: u64) -> u64 {
    let up = |n: u64| n.div_ceil(4096) * 4096;
    let mut n = 0;
    for o in 0..2u8 {
        for d in 0..2u8 {
            for a in 0..2u8 {
                if let Some(v) = m.single(o, d, a, e).filter(|v| v.len() > 4096) {
                    n += up(v.len() as u64);
                }
            }
            let (_, src) = m.array_src(o, d, e);
            let mut i = 0;
            while i < src.len() {
                let Some(k) = src[i] else {
                    i += 1;
                    continue;
                };
                let mut j = i;
                while j < src.len() && src[j] == Some(k) {
                    j += 1;
                }
                let run = (j - i) as u64;
                if matches!(m.log[k], Op::Array { nr, .. } if nr > 4096) && run > 4096 {
                    n += up(run);
                }
                i = j;
            }
        }
    }
    n
}

fn akey(a: u8) -> Vec<u8> {
    vec![b'a', a]
}

fn check(p: &VosPool, m: &Model, c: Uuid) {
    for o in 0..2u8 {
        for d in 0..2u8 {
            for e in [1u64, 5, 10, 15, 19, 25]
                .into_iter()
                .filter(|e| *e >= m.agg)
            {
                let mut iods: Vec<FetchIod> = (0..2u8)
                    .map(|a| FetchIod::Single { akey: akey(a) })
                    .collect();
                iods.push(FetchIod::Array {
                    akey: akey(AKEY_ARR),
                    rsize: 1,
                    recxs: vec![Recx::new(0, ARR_LEN as u64)],
                });
                let got = p
                    .fetch(c, Oid::new(0, o as u64), e, 0, &[d], &iods)
                    .wait()
                    .unwrap();
                for a in 0..2u8 {
                    assert_eq!(
                        got[a as usize],
                        Fetched::Single(m.single(o, d, a, e)),
                        "o{o} d{d} a{a} e{e}"
                    );
                }
                let (data, set) = m.array(o, d, e);
                let Fetched::Array { data: gd, holes } = &got[2] else {
                    panic!()
                };
                assert_eq!(gd, &data, "array o{o} d{d} e{e}");
                let hole_n: u64 = holes.iter().map(|h| h.nr).sum();
                assert_eq!(
                    hole_n,
                    set.iter().filter(|s| !**s).count() as u64,
                    "holes o{o} d{d} e{e}: {holes:?}"
                );
            }
        }
        for e in [5u64, 10, 19, 25].into_iter().filter(|e| *e >= m.agg) {
            let mut anchor = Anchor::default();
            let mut got = Vec::new();
            while !anchor.is_eof() {
                got.extend(
                    p.list_dkeys(
                        c,
                        Oid::new(0, o as u64),
                        EpochRange::new(0, e),
                        &mut anchor,
                        1,
                    )
                    .unwrap(),
                );
            }
            let want: Vec<Vec<u8>> = (0..2u8)
                .filter(|d| m.dkey_visible(o, *d, e))
                .map(|d| vec![d])
                .collect();
            assert_eq!(got, want, "list_dkeys o{o} e{e}");
        }
    }
}

/// Runs one write op (update or punch) against the store.
fn write(p: &VosPool, c: Uuid, op: &Op) -> Result<(), VosError> {
    match *op {
        Op::Single {
            o,
            d,
            a,
            e,
            len,
            fill,
        } => {
            let iod = UpdateIod {
                akey: akey(a),
                value: IodValue::Single(vec![fill; len].into()),
                flags: 0,
            };
            p.update(c, Oid::new(0, o as u64), e, 0, &[d], vec![iod])
                .wait()
        }
        Op::Array {
            o,
            d,
            e,
            idx,
            nr,
            fill,
        } => {
            let iod = UpdateIod {
                akey: akey(AKEY_ARR),
                value: IodValue::Array {
                    rsize: 1,
                    extents: vec![(
                        Recx::new(idx, nr),
                        (idx..idx + nr)
                            .map(|i| rec(fill, i))
                            .collect::<Vec<u8>>()
                            .into(),
                    )],
                },
                flags: 0,
            };
            p.update(c, Oid::new(0, o as u64), e, 0, &[d], vec![iod])
                .wait()
        }
        Op::PunchObj { o, e } => p.punch_object(c, Oid::new(0, o as u64), e).wait(),
        Op::PunchDkey { o, d, e } => p.punch_dkey(c, Oid::new(0, o as u64), e, &[d]).wait(),
        Op::PunchAkey { o, d, a, e } => p
            .punch_akey(c, Oid::new(0, o as u64), e, &[d], &akey(a))
            .wait(),
        _ => unreachable!("not a write op"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let cfg = common::cfg(dir.path());
        let mut p = VosPool::create(&cfg).unwrap();
        let c = Uuid::from_u128(5);
        p.cont_create(c).wait().unwrap();
        let mut m = Model::default();
        for op in ops {
            if let Some(e) = epoch_of(&op) {
                if e <= m.agg && !matches!(op, Op::CondInsert { .. }) {
                    // History at or below the aggregated epoch is closed.
                    let err = write(&p, c, &op).unwrap_err();
                    prop_assert_eq!(err.der(), daos_common::Der::EpOld);
                    continue;
                }
            }
            match op.clone() {
                Op::Single { .. } | Op::Array { .. } | Op::PunchObj { .. } | Op::PunchDkey { .. } | Op::PunchAkey { .. } => {
                    write(&p, c, &op).unwrap()
                }
                Op::CondInsert { o, d, a, e, fill } => {
                    let iod = UpdateIod { akey: akey(a), value: IodValue::Single(vec![fill; 7].into()), flags: 0 };
                    let r = p.update(c, Oid::new(0, o as u64), e, cond::AKEY_INSERT, &[d], vec![iod]).wait();
                    let exists = m.single(o, d, a, e).is_some();
                    if e <= m.agg {
                        prop_assert_eq!(r.unwrap_err().der(), daos_common::Der::EpOld);
                        continue;
                    }
                    if exists {
                        prop_assert_eq!(r.unwrap_err().der(), daos_common::Der::Exist);
                        continue;
                    }
                    r.unwrap();
                }
                Op::Aggregate { upto } => {
                    p.aggregate(c, upto).wait().unwrap();
                    m.agg = m.agg.max(upto);
                    continue;
                }
                Op::Discard { lo, hi } => {
                    let r = p.discard(c, EpochRange::new(lo, hi)).wait();
                    if lo <= m.agg {
                        prop_assert_eq!(r.unwrap_err().der(), daos_common::Der::EpOld);
                        continue;
                    }
                    r.unwrap();
                    m.log.retain(|op| !epoch_of(op).is_some_and(|e| e >= lo && e <= hi));
                    continue;
                }
                Op::Reopen => {
                    p.close().unwrap();
                    p = VosPool::open(&cfg).unwrap();
                }
                Op::Checkpoint => p.checkpoint().wait().unwrap(),
            }
            if !matches!(op, Op::Reopen | Op::Checkpoint) {
                m.log.push(op);
            }
        }
        check(&p, &m, c);
        p.close().unwrap();
        let p = VosPool::open(&cfg).unwrap();
        check(&p, &m, c);
        // Aggregation at 12 must not change what reads at >= 12 see.
        p.aggregate(c, 12).wait().unwrap();
        let floor = m.agg.max(12);
        for o in 0..2u8 { for d in 0..2u8 { for e in [12u64, 19, 25].into_iter().filter(|e| *e >= floor) {
            for a in 0..2u8 {
                let got = p.fetch(c, Oid::new(0, o as u64), e, 0, &[d], &[FetchIod::Single { akey: akey(a) }]).wait().unwrap();
                prop_assert_eq!(&got[0], &Fetched::Single(m.single(o, d, a, e)));
            }
            let got = p.fetch(c, Oid::new(0, o as u64), e, 0, &[d], &[FetchIod::Array { akey: akey(AKEY_ARR), rsize: 1, recxs: vec![Recx::new(0, ARR_LEN as u64)] }]).wait().unwrap();
            let Fetched::Array { data, .. } = &got[0] else { panic!() };
            prop_assert_eq!(data, &m.array(o, d, e).0);
        }}}
        // Aggregating everything: what reads at 25 see is unchanged (partly shadowed extents
        // trimmed/merged), and exactly the data-file space of what is still visible is held.
        p.aggregate(c, 25).wait().unwrap();
        for o in 0..2u8 { for d in 0..2u8 {
            let got = p.fetch(c, Oid::new(0, o as u64), 25, 0, &[d], &[FetchIod::Array { akey: akey(AKEY_ARR), rsize: 1, recxs: vec![Recx::new(0, ARR_LEN as u64)] }]).wait().unwrap();
            let Fetched::Array { data, holes } = &got[0] else { panic!() };
            let (want, set) = m.array(o, d, 25);
            prop_assert_eq!(data, &want);
            prop_assert_eq!(holes.iter().map(|h| h.nr).sum::<u64>(), set.iter().filter(|s| !**s).count() as u64);
        }}
        prop_assert_eq!(p.space().data_used, live_data_bytes(&m, 25));
        p.close().unwrap();
        let p = VosPool::open(&cfg).unwrap();
        prop_assert_eq!(p.space().data_used, live_data_bytes(&m, 25));
    }
}
