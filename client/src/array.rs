//! DAOS Array layout: an array of `cell_size`-byte records is cut into chunks of `chunk_size` records;
//! chunk `i` lives under integer dkey `i + 1`, and dkey 0 holds the metadata (magic
//! `0xdaca55a9daca55a9`, cell size, chunk size).

use daos_common::{DaosErrno, Der};

/// Magic stored in the array metadata (DAOS `ARRAY_MD_KEY` value).
pub const ARRAY_MAGIC: u64 = 0xdaca_55a9_daca_55a9;
/// Integer dkey holding the metadata.
pub const META_DKEY: u64 = 0;

/// Errors of the array layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArrayError {
    /// Cell or chunk size of zero.
    #[error(
        "invalid array geometry: cell size {cell_size}, chunk size {chunk_size} (both must be > 0)"
    )]
    BadGeometry {
        /// Bytes per record.
        cell_size: u64,
        /// Records per chunk.
        chunk_size: u64,
    },
    /// The range does not fit in 64-bit record indices.
    #[error("array range [{index}, +{count}) overflows 64-bit record indices")]
    Overflow {
        /// First record.
        index: u64,
        /// Records.
        count: u64,
    },
    /// Metadata bytes that are not an array's.
    #[error("array metadata is corrupt: {0}")]
    BadMetadata(String),
}

impl DaosErrno for ArrayError {
    fn der(&self) -> Der {
        match self {
            ArrayError::BadGeometry { .. } | ArrayError::Overflow { .. } => Der::Inval,
            ArrayError::BadMetadata(_) => Der::Noschema,
        }
    }
}

/// Geometry of one array object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayGeometry {
    /// Bytes per record.
    pub cell_size: u64,
    /// Records per chunk (per dkey).
    pub chunk_size: u64,
}

/// One piece of an array I/O: records `[index, index + count)` inside the chunk stored at `dkey`,
/// covering bytes `[buf_offset, buf_offset + count * cell_size)` of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkIo {
    /// Integer dkey of the chunk (chunk number + 1).
    pub dkey: u64,
    /// First record, relative to the chunk.
    pub index: u64,
    /// Number of records.
    pub count: u64,
    /// Offset in the caller's buffer, in bytes.
    pub buf_offset: u64,
}

impl ArrayGeometry {
    /// Validated geometry.
    pub fn new(cell_size: u64, chunk_size: u64) -> Result<Self, ArrayError> {
        if cell_size == 0 || chunk_size == 0 {
            return Err(ArrayError::BadGeometry {
                cell_size,
                chunk_size,
            });
        }
        Ok(ArrayGeometry {
            cell_size,
            chunk_size,
        })
    }

    /// Splits records `[index, index + count)` into per-chunk pieces, in order.
    pub fn split(&self, index: u64, count: u64) -> Result<Vec<ChunkIo>, ArrayError> {
        let end = index
            .checked_add(count)
            .ok_or(ArrayError::Overflow { index, count })?;
        let mut out = Vec::new();
        let mut cur = index;
        while cur < end {
            let chunk = cur / self.chunk_size;
            let in_chunk = cur % self.chunk_size;
            let n = (self.chunk_size - in_chunk).min(end - cur);
            out.push(ChunkIo {
                dkey: chunk + 1,
                index: in_chunk,
                count: n,
                buf_offset: (cur - index)
                    .checked_mul(self.cell_size)
                    .ok_or(ArrayError::Overflow { index, count })?,
            });
            cur += n;
        }
        Ok(out)
    }

    /// Metadata value stored at dkey 0: magic, cell size, chunk size, little-endian.
    pub fn encode_meta(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&ARRAY_MAGIC.to_le_bytes());
        b[8..16].copy_from_slice(&self.cell_size.to_le_bytes());
        b[16..].copy_from_slice(&self.chunk_size.to_le_bytes());
        b
    }

    /// Parses the metadata value; refuses anything that is not an array's.
    pub fn decode_meta(b: &[u8]) -> Result<Self, ArrayError> {
        let b: &[u8; 24] = b
            .try_into()
            .map_err(|_| ArrayError::BadMetadata(format!("{} bytes, expected 24", b.len())))?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        if word(0) != ARRAY_MAGIC {
            return Err(ArrayError::BadMetadata(format!(
                "magic {:#x}, expected {ARRAY_MAGIC:#x}",
                word(0)
            )));
        }
        ArrayGeometry::new(word(1), word(2))
            .map_err(|e| ArrayError::BadMetadata(format!("stored geometry is invalid: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn split_crosses_chunks() {
        let g = ArrayGeometry::new(4, 10).unwrap();
        let v = g.split(8, 15).unwrap();
        assert_eq!(
            v,
            vec![
                ChunkIo {
                    dkey: 1,
                    index: 8,
                    count: 2,
                    buf_offset: 0
                },
                ChunkIo {
                    dkey: 2,
                    index: 0,
                    count: 10,
                    buf_offset: 8
                },
                ChunkIo {
                    dkey: 3,
                    index: 0,
                    count: 3,
                    buf_offset: 48
                },
            ]
        );
        assert!(g.split(5, 0).unwrap().is_empty());
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(ArrayGeometry::new(0, 1).unwrap_err().der(), Der::Inval);
        let g = ArrayGeometry::new(1, 1).unwrap();
        assert!(matches!(
            g.split(u64::MAX, 2),
            Err(ArrayError::Overflow { .. })
        ));
        let mut m = g.encode_meta();
        m[0] ^= 1;
        let e = ArrayGeometry::decode_meta(&m).unwrap_err();
        assert!(e.to_string().contains("magic"), "{e}");
        assert!(ArrayGeometry::decode_meta(&m[..5]).is_err());
    }

    proptest! {
        #[test]
        fn split_covers_range_exactly(cell in 1u64..64, chunk in 1u64..100, index in 0u64..10_000, count in 0u64..1000) {
            let g = ArrayGeometry::new(cell, chunk).unwrap();
            let v = g.split(index, count).unwrap();
            let mut next = index;
            let mut off = 0;
            for p in &v {
                prop_assert_eq!((p.dkey - 1) * chunk + p.index, next);
                prop_assert!(p.index + p.count <= chunk);
                prop_assert!(p.count > 0);
                prop_assert_eq!(p.buf_offset, off);
                next += p.count;
                off += p.count * cell;
            }
            prop_assert_eq!(next, index + count);
            prop_assert_eq!(ArrayGeometry::decode_meta(&g.encode_meta()).unwrap(), g);
        }
    }
}
