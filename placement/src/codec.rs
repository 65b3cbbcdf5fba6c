//! Versioned binary encoding of the pool map: one format-version byte, then bincode 2 (standard config).

use crate::error::{PlacementError, Result};
use crate::pool_map::PoolMap;

/// The format version this build writes and reads.
pub const POOL_MAP_FORMAT: u8 = 1;

/// Decoding refuses to allocate more than this for one map (a corrupt length prefix must give an error,
/// not an out-of-memory abort). 64 MiB is far above any real pool (a 100k-target map is ~2 MiB).
const DECODE_LIMIT: usize = 64 << 20;

impl PoolMap {
    /// Encode as `[POOL_MAP_FORMAT] ++ bincode(map)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![POOL_MAP_FORMAT];
        // Encoding into a Vec cannot fail for these plain types.
        let body = bincode::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        out.extend_from_slice(&body);
        out
    }

    /// Decode what [`PoolMap::encode`] wrote; unknown format versions, truncated or trailing bytes and
    /// structurally impossible maps are errors.
    pub fn decode(bytes: &[u8]) -> Result<PoolMap> {
        let (&ver, body) = bytes
            .split_first()
            .ok_or_else(|| PlacementError::Corrupt("empty input".into()))?;
        if ver != POOL_MAP_FORMAT {
            return Err(PlacementError::UnknownFormat {
                found: ver,
                supported: POOL_MAP_FORMAT,
            });
        }
        let (map, used): (PoolMap, usize) = bincode::decode_from_slice(
            body,
            bincode::config::standard().with_limit::<DECODE_LIMIT>(),
        )
        .map_err(|e| PlacementError::Corrupt(e.to_string()))?;
        if used != body.len() {
            return Err(PlacementError::Corrupt(format!(
                "{} trailing bytes after the map",
                body.len() - used
            )));
        }
        map.validate()?;
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool_map::{Sel, Topology};
    use daos_common::{DaosErrno, Der};

    #[test]
    fn round_trip_and_errors() {
        let m = PoolMap::build(&Topology::uniform(4, 2, 3)).unwrap();
        let (m, _) = m.exclude(&[Sel::Rank(3)]).unwrap();
        let enc = m.encode();
        assert_eq!(PoolMap::decode(&enc).unwrap(), m);

        let mut bad = enc.clone();
        bad[0] = 9;
        let e = PoolMap::decode(&bad).unwrap_err();
        assert_eq!(
            e,
            PlacementError::UnknownFormat {
                found: 9,
                supported: 1
            }
        );
        assert_eq!(e.der(), Der::DfInval);

        let e = PoolMap::decode(&enc[..enc.len() / 2]).unwrap_err();
        assert!(matches!(e, PlacementError::Corrupt(_)), "{e}");
        assert!(matches!(
            PoolMap::decode(&[]).unwrap_err(),
            PlacementError::Corrupt(_)
        ));
        let mut trailing = enc.clone();
        trailing.push(0);
        assert!(PoolMap::decode(&trailing)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        let m = PoolMap::build(&Topology::uniform(3, 2, 2)).unwrap();
        let enc = m.encode();
        for i in 1..enc.len() {
            for v in [0u8, 1, 0x7f, 0xfb, 0xfc, 0xfd, 0xff] {
                let mut bad = enc.clone();
                bad[i] = v;
                // Either a valid (different) map or a clear error; never a panic or huge allocation.
                match PoolMap::decode(&bad) {
                    Err(e) => assert!(matches!(e, PlacementError::Corrupt(_)), "{e}"),
                    // A map that decodes must also be placeable without panicking.
                    Ok(map) => {
                        if let Ok(mut p) = crate::Placement::new(&map) {
                            let class = "RP_2G1".parse().unwrap();
                            let oid = crate::ObjectId::generate(
                                0,
                                i as u64,
                                crate::ObjType::Array,
                                class,
                                8,
                            );
                            p.layout(oid).unwrap();
                        }
                    }
                }
            }
        }
    }
}
