//! Public vocabulary: object ids, epochs, extents, conditional flags, I/O descriptors, anchors.

use bincode::{Decode, Encode};

/// A 64-bit epoch (HLC timestamp). A fetch at epoch `e` sees the newest version `<= e`.
pub type Epoch = u64;

/// Largest epoch: "now and forever" for fetches.
pub const EPOCH_MAX: Epoch = u64::MAX;

/// A 128-bit object id (DAOS `daos_obj_id_t {hi, lo}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Oid {
    pub hi: u64,
    pub lo: u64,
}

impl Oid {
    pub const fn new(hi: u64, lo: u64) -> Self {
        Oid { hi, lo }
    }
    pub(crate) fn as_u128(self) -> u128 {
        ((self.hi as u128) << 64) | self.lo as u128
    }
    pub(crate) fn from_u128(v: u128) -> Self {
        Oid {
            hi: (v >> 64) as u64,
            lo: v as u64,
        }
    }
}

/// An array extent: `nr` records starting at record index `idx` (DAOS `daos_recx_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Recx {
    pub idx: u64,
    pub nr: u64,
}

impl Recx {
    pub const fn new(idx: u64, nr: u64) -> Self {
        Recx { idx, nr }
    }
    pub(crate) fn end(&self) -> u64 {
        self.idx + self.nr
    }
}

/// Inclusive epoch range for enumeration and discard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochRange {
    pub lo: Epoch,
    pub hi: Epoch,
}

impl EpochRange {
    pub const ALL: EpochRange = EpochRange {
        lo: 0,
        hi: EPOCH_MAX,
    };
    pub const fn new(lo: Epoch, hi: Epoch) -> Self {
        EpochRange { lo, hi }
    }
}

/// Conditional flags, DAOS values (`daos_api.h` `DAOS_COND_*`).
pub mod cond {
    /// Punch fails with `DER_NONEXIST` unless the punched object/dkey/akey exists.
    pub const COND_PUNCH: u64 = 1;
    /// Update fails with `DER_EXIST` if the dkey exists.
    pub const DKEY_INSERT: u64 = 2;
    /// Update fails with `DER_NONEXIST` unless the dkey exists.
    pub const DKEY_UPDATE: u64 = 4;
    /// Fetch fails with `DER_NONEXIST` unless the dkey exists.
    pub const DKEY_FETCH: u64 = 8;
    /// Update fails with `DER_EXIST` if an akey exists.
    pub const AKEY_INSERT: u64 = 16;
    /// Update fails with `DER_NONEXIST` unless the akey exists.
    pub const AKEY_UPDATE: u64 = 32;
    /// Fetch fails with `DER_NONEXIST` unless the akey exists.
    pub const AKEY_FETCH: u64 = 64;
    /// The akey conditions come from each iod's own `flags` (update: `UpdateIod::flags`,
    /// fetch: `FetchIod::Cond`) instead of the call's flags; dkey conditions stay call-wide.
    pub const PER_AKEY: u64 = 128;
}

/// The bytes of one value given to an update.
///
/// From a `Vec<u8>` (`.into()`), a value that goes to the data file is copied into a 4 KiB
/// aligned buffer first (O_DIRECT needs one). From an aligned buffer ([`IoBuf::aligned`]) it is
/// written as it is, without a copy, the way a DAOS engine writes from the registered DMA buffer
/// a bulk transfer landed in; such a buffer may back several updates at once (vos only reads
/// it). A small value is kept inline in the WAL record either way.
#[derive(Clone)]
pub struct IoBuf(Repr);

#[derive(Clone)]
enum Repr {
    Vec(Vec<u8>),
    Aligned(std::sync::Arc<crate::uring::AlignedBuf>, usize),
}

impl IoBuf {
    /// The first `len` bytes of `buf`; `DER_INVAL` if `buf` is shorter.
    pub fn aligned(
        buf: std::sync::Arc<crate::uring::AlignedBuf>,
        len: usize,
    ) -> crate::error::Result<IoBuf> {
        if len > buf.len() {
            return Err(crate::error::VosError::Invalid(format!(
                "value of {len} bytes in an aligned buffer of {} bytes",
                buf.len()
            )));
        }
        Ok(IoBuf(Repr::Aligned(buf, len)))
    }

    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Vec(v) => v,
            Repr::Aligned(b, n) => &b.as_slice()[..*n],
        }
    }

    /// The bytes as a `Vec` (no copy for one made from a `Vec`).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Vec(v) => v,
            Repr::Aligned(..) => self.as_slice().to_vec(),
        }
    }

    /// The aligned buffer behind this value, if it was given as one.
    pub(crate) fn aligned_buf(&self) -> Option<&std::sync::Arc<crate::uring::AlignedBuf>> {
        match &self.0 {
            Repr::Vec(_) => None,
            Repr::Aligned(b, _) => Some(b),
        }
    }
}

impl std::ops::Deref for IoBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for IoBuf {
    fn from(v: Vec<u8>) -> IoBuf {
        IoBuf(Repr::Vec(v))
    }
}

impl From<&[u8]> for IoBuf {
    fn from(v: &[u8]) -> IoBuf {
        IoBuf(Repr::Vec(v.to_vec()))
    }
}

impl<const N: usize> From<&[u8; N]> for IoBuf {
    fn from(v: &[u8; N]) -> IoBuf {
        IoBuf(Repr::Vec(v.to_vec()))
    }
}

impl PartialEq for IoBuf {
    fn eq(&self, other: &IoBuf) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for IoBuf {}

impl std::fmt::Debug for IoBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// The value part of one update descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IodValue {
    /// A single value, replaced whole.
    Single(IoBuf),
    /// Array extents of `rsize`-byte records; each buffer holds exactly `recx.nr * rsize` bytes.
    Array {
        rsize: u32,
        extents: Vec<(Recx, IoBuf)>,
    },
}

/// One akey of an update (DAOS `daos_iod_t` + its sgl).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateIod {
    pub akey: Vec<u8>,
    pub value: IodValue,
    /// Per-akey conditional flags (DAOS `iod_flags`: [`cond::AKEY_INSERT`],
    /// [`cond::AKEY_UPDATE`]); used only when the update's flags include [`cond::PER_AKEY`].
    pub flags: u64,
}

/// One akey of a fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchIod {
    Single {
        akey: Vec<u8>,
    },
    Array {
        akey: Vec<u8>,
        rsize: u32,
        recxs: Vec<Recx>,
    },
    /// DAOS fetch with `iod_size` 0 (`DAOS_REC_ANY`): learn the size, get no data. Answers
    /// [`Fetched::Size`]: a single value's length, an array's record size, 0 if nothing is
    /// visible.
    Size {
        akey: Vec<u8>,
    },
    /// `iod` with its own akey conditional flags ([`cond::AKEY_FETCH`]), honoured when the
    /// fetch's flags include [`cond::PER_AKEY`] (DAOS `iod_flags`).
    Cond {
        iod: Box<FetchIod>,
        flags: u64,
    },
}

impl FetchIod {
    pub fn akey(&self) -> &[u8] {
        match self {
            FetchIod::Single { akey } | FetchIod::Array { akey, .. } | FetchIod::Size { akey } => {
                akey
            }
            FetchIod::Cond { iod, .. } => iod.akey(),
        }
    }
}

/// Result for one fetch descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The newest visible single value, or `None` if nothing is visible.
    Single(Option<Vec<u8>>),
    /// Requested records concatenated in request order; holes read as zeros and are listed.
    Array { data: Vec<u8>, holes: Vec<Recx> },
    /// Answer to [`FetchIod::Size`].
    Size(u64),
}

/// Opaque enumeration position. Start with [`Anchor::default`], stop when [`Anchor::is_eof`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Anchor {
    pub(crate) pos: Option<Vec<u8>>,
    pub(crate) eof: bool,
}

impl Anchor {
    pub fn is_eof(&self) -> bool {
        self.eof
    }
}

/// One visible array extent returned by recx enumeration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecxEntry {
    pub recx: Recx,
    pub epoch: Epoch,
}

/// Space usage of a pool (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpaceInfo {
    /// Approximate DRAM metadata in use (keys, version records, inline values).
    pub meta_used: u64,
    /// Metadata budget (`scm_size`).
    pub meta_total: u64,
    /// Data-file bytes allocated to values.
    pub data_used: u64,
    /// Data-file size.
    pub data_total: u64,
    /// Bytes in the current write-ahead log.
    pub wal_bytes: u64,
}
