//! Object classes by DAOS name and number (digest §3): `S<n>`, `RP_<r>G<n>`, `EC_<k>P<p>G<n>`, with
//! `X` group counts; class id = redundancy code << 24 | groups (0xFFFF = X).

use std::fmt;
use std::str::FromStr;

use crate::error::{PlacementError, Result};
use crate::oid::ObjType;

/// Replica counts DAOS defines (`OR_RP_1`, `OR_RP_2`, ...), in code order.
const RP_COUNTS: [u16; 14] = [1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64, 128];
/// EC (data, parity) pairs DAOS defines (`OR_RS_2P1` = 32, ...), in code order.
const EC_PAIRS: [(u8, u8); 11] = [
    (2, 1),
    (2, 2),
    (4, 1),
    (4, 2),
    (8, 1),
    (8, 2),
    (16, 1),
    (16, 2),
    (4, 3),
    (8, 3),
    (16, 3),
];
/// Group count meaning "as many as the pool allows" (frozen at oid generation).
pub const GROUPS_X: u16 = 0xFFFF;

/// Redundancy scheme of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Redun {
    /// `n` replicas (1 = no protection, the `S` classes).
    Rp(u16),
    /// Reed–Solomon with `k` data and `p` parity cells.
    Ec {
        /// Data cells.
        k: u8,
        /// Parity cells.
        p: u8,
    },
}

impl Redun {
    /// DAOS redundancy code (`OR_RP_1` = 1, `OR_RP_2` = 8 ... `OR_RP_128` = 20, `OR_RS_2P1` = 32 ...).
    pub fn code(self) -> u8 {
        match self {
            Redun::Rp(n) => {
                let i = RP_COUNTS.iter().position(|&c| c == n).unwrap_or(0);
                if i == 0 {
                    1
                } else {
                    7 + i as u8
                }
            }
            Redun::Ec { k, p } => {
                32 + EC_PAIRS.iter().position(|&e| e == (k, p)).unwrap_or(0) as u8
            }
        }
    }

    /// Inverse of [`Redun::code`].
    pub fn from_code(code: u8) -> Option<Redun> {
        match code {
            1 => Some(Redun::Rp(1)),
            8..=20 => Some(Redun::Rp(RP_COUNTS[(code - 7) as usize])),
            32..=42 => {
                let (k, p) = EC_PAIRS[(code - 32) as usize];
                Some(Redun::Ec { k, p })
            }
            _ => None,
        }
    }

    /// Shards per group.
    pub fn grp_size(self) -> u32 {
        match self {
            Redun::Rp(n) => n as u32,
            Redun::Ec { k, p } => k as u32 + p as u32,
        }
    }

    /// How many shard losses a group survives.
    pub fn fault_tolerance(self) -> u32 {
        match self {
            Redun::Rp(n) => n as u32 - 1,
            Redun::Ec { p, .. } => p as u32,
        }
    }
}

/// An object class: redundancy × groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjClass {
    /// Redundancy scheme.
    pub redun: Redun,
    /// Group count, or [`GROUPS_X`].
    pub groups: u16,
}

impl ObjClass {
    /// Build, validating the group count (1..=0xFFFE or X).
    pub fn new(redun: Redun, groups: u16) -> Result<ObjClass> {
        let c = ObjClass { redun, groups };
        if groups == 0 || Redun::from_code(redun.code()) != Some(redun) {
            return Err(PlacementError::InvalidClass(c.to_string()));
        }
        Ok(c)
    }

    /// DAOS class id: `code << 24 | groups`.
    pub fn id(self) -> u32 {
        (self.redun.code() as u32) << 24 | self.groups as u32
    }

    /// Inverse of [`ObjClass::id`].
    pub fn from_id(id: u32) -> Result<ObjClass> {
        let bad = || PlacementError::InvalidClass(format!("id {id:#x}"));
        if id >> 16 & 0xff != 0 {
            return Err(bad());
        }
        let redun = Redun::from_code((id >> 24) as u8).ok_or_else(bad)?;
        ObjClass::new(redun, id as u16).map_err(|_| bad())
    }

    /// Shards per group.
    pub fn grp_size(self) -> u32 {
        self.redun.grp_size()
    }

    /// Group count if frozen.
    pub fn grp_nr(self) -> Option<u32> {
        (self.groups != GROUPS_X).then_some(self.groups as u32)
    }

    /// Replace `X` by a number for a pool of `targets` usable targets (DAOS freezes X at oid generation so
    /// objects never spread onto later-added targets): all targets / group size, at least 1.
    pub fn freeze(self, targets: u32) -> ObjClass {
        if self.groups != GROUPS_X {
            return self;
        }
        let g = (targets / self.grp_size()).clamp(1, GROUPS_X as u32 - 1);
        ObjClass {
            redun: self.redun,
            groups: g as u16,
        }
    }

    /// DAOS's default class for a container redundancy factor (`rd_fac` 0..=4), object type and number of
    /// fault domains (digest §3, `daos_obj_get_oclass` with `OC_UNKNOWN`).
    pub fn default_for(rd_fac: u32, otype: ObjType, domains: u32) -> Result<ObjClass> {
        let array = otype.is_array();
        let kv = otype.is_flat_kv();
        let gx = |redun| ObjClass {
            redun,
            groups: GROUPS_X,
        };
        let g1 = |redun| ObjClass { redun, groups: 1 };
        let ec = |p: u8| {
            // Widest k with k + p + 1 <= domains (one spare domain for rebuild), else k = 2.
            let k = [8u8, 4]
                .into_iter()
                .find(|&k| domains >= (k + p + 1) as u32)
                .unwrap_or(2);
            gx(Redun::Ec { k, p })
        };
        Ok(match rd_fac {
            0 if array || kv => gx(Redun::Rp(1)),
            0 => g1(Redun::Rp(1)),
            1 if array => ec(1),
            1 if kv => gx(Redun::Rp(2)),
            1 => g1(Redun::Rp(2)),
            2 if array => ec(2),
            2 if kv => gx(Redun::Rp(3)),
            2 => g1(Redun::Rp(3)),
            3 if array || kv => gx(Redun::Rp(4)),
            3 => g1(Redun::Rp(4)),
            4 if array || kv => gx(Redun::Rp(6)),
            4 => g1(Redun::Rp(6)),
            _ => return Err(PlacementError::InvalidRedunFactor(rd_fac)),
        })
    }
}

struct G(u16);

impl fmt::Display for G {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == GROUPS_X {
            f.write_str("X")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl fmt::Display for ObjClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = G(self.groups);
        match self.redun {
            Redun::Rp(1) => write!(f, "S{g}"),
            Redun::Rp(n) => write!(f, "RP_{n}G{g}"),
            Redun::Ec { k, p } => write!(f, "EC_{k}P{p}G{g}"),
        }
    }
}

fn parse_groups(s: &str) -> Option<u16> {
    if s == "X" {
        return Some(GROUPS_X);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = s.parse().ok()?;
    (1..GROUPS_X as u32).contains(&n).then_some(n as u16)
}

impl FromStr for ObjClass {
    type Err = PlacementError;

    /// Parse `S1`, `SX`, `RP_3G1`, `RP_2GX`, `EC_4P2G1`, `EC_8P2GX` (an `OC_` prefix and lower case are
    /// accepted).
    fn from_str(s: &str) -> Result<ObjClass> {
        let bad = || PlacementError::InvalidClass(s.to_string());
        let up = s.trim().to_ascii_uppercase();
        let u = up.strip_prefix("OC_").unwrap_or(&up);
        let num = |x: &str| -> Option<u32> {
            (!x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
                .then(|| x.parse().ok())
                .flatten()
        };
        let (redun, groups) = if let Some(rest) = u.strip_prefix("RP_") {
            let (r, g) = rest.split_once('G').ok_or_else(bad)?;
            let r = num(r).filter(|&r| r <= u16::MAX as u32).ok_or_else(bad)?;
            (Redun::Rp(r as u16), parse_groups(g).ok_or_else(bad)?)
        } else if let Some(rest) = u.strip_prefix("EC_") {
            let (k, rest) = rest.split_once('P').ok_or_else(bad)?;
            let (p, g) = rest.split_once('G').ok_or_else(bad)?;
            let k = num(k).filter(|&k| k < 256).ok_or_else(bad)?;
            let p = num(p).filter(|&p| p < 256).ok_or_else(bad)?;
            (
                Redun::Ec {
                    k: k as u8,
                    p: p as u8,
                },
                parse_groups(g).ok_or_else(bad)?,
            )
        } else if let Some(g) = u.strip_prefix('S') {
            (Redun::Rp(1), parse_groups(g).ok_or_else(bad)?)
        } else {
            return Err(bad());
        };
        ObjClass::new(redun, groups).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in [
            "S1",
            "S2",
            "S4",
            "S8",
            "S16",
            "S32",
            "SX",
            "RP_2G1",
            "RP_2G2",
            "RP_2GX",
            "RP_3G1",
            "RP_3GX",
            "RP_4G1",
            "RP_6G2",
            "RP_8GX",
            "EC_2P1G1",
            "EC_2P2G1",
            "EC_4P1G1",
            "EC_4P2G1",
            "EC_8P2G1",
            "EC_16P2G1",
            "EC_4P2GX",
            "EC_16P3G8",
        ] {
            let c: ObjClass = n.parse().unwrap();
            assert_eq!(c.to_string(), n);
            assert_eq!(ObjClass::from_id(c.id()).unwrap(), c);
        }
        assert_eq!(
            "oc_rp_3g1".parse::<ObjClass>().unwrap().to_string(),
            "RP_3G1"
        );
    }

    #[test]
    fn codes_match_digest() {
        assert_eq!("S1".parse::<ObjClass>().unwrap().id(), 1 << 24 | 1);
        assert_eq!("SX".parse::<ObjClass>().unwrap().id(), 1 << 24 | 0xFFFF);
        assert_eq!(Redun::Rp(2).code(), 8);
        assert_eq!(Redun::Rp(3).code(), 9);
        assert_eq!(Redun::Rp(128).code(), 20);
        assert_eq!(Redun::Ec { k: 2, p: 1 }.code(), 32);
        assert_eq!(Redun::Ec { k: 4, p: 2 }.code(), 35);
        assert_eq!(Redun::Ec { k: 16, p: 3 }.code(), 42);
        assert_eq!("EC_4P2G1".parse::<ObjClass>().unwrap().grp_size(), 6);
    }

    #[test]
    fn bad_names_are_errors() {
        for n in [
            "",
            "S0",
            "S",
            "RP_7G1",
            "RP_3G0",
            "RP_3",
            "EC_3P1G1",
            "EC_4P2G",
            "XX",
            "S1G",
            "RP_3G65535",
        ] {
            let e = n.parse::<ObjClass>().unwrap_err();
            assert_eq!(e, PlacementError::InvalidClass(n.to_string()), "{n}");
        }
        assert!(ObjClass::from_id(2 << 24 | 1).is_err());
    }

    #[test]
    fn default_classes_follow_rd_fac() {
        let d = |rf, t, dom| ObjClass::default_for(rf, t, dom).unwrap().to_string();
        assert_eq!(d(0, ObjType::ArrayByte, 4), "SX");
        assert_eq!(d(0, ObjType::MultiHashed, 4), "S1");
        assert_eq!(d(1, ObjType::Array, 16), "EC_8P1GX");
        assert_eq!(d(1, ObjType::Array, 6), "EC_4P1GX");
        assert_eq!(d(1, ObjType::Array, 4), "EC_2P1GX");
        assert_eq!(d(1, ObjType::KvHashed, 4), "RP_2GX");
        assert_eq!(d(1, ObjType::MultiHashed, 4), "RP_2G1");
        assert_eq!(d(2, ObjType::Array, 16), "EC_8P2GX");
        assert_eq!(d(2, ObjType::MultiHashed, 16), "RP_3G1");
        assert_eq!(d(2, ObjType::KvLexical, 16), "RP_3GX");
        assert_eq!(d(3, ObjType::MultiHashed, 16), "RP_4G1");
        assert_eq!(d(4, ObjType::Array, 16), "RP_6GX");
        assert_eq!(
            ObjClass::default_for(5, ObjType::Array, 16),
            Err(PlacementError::InvalidRedunFactor(5))
        );
    }

    #[test]
    fn freeze_x() {
        let c: ObjClass = "RP_3GX".parse().unwrap();
        assert_eq!(c.freeze(512).to_string(), "RP_3G170");
        assert_eq!(
            "SX".parse::<ObjClass>().unwrap().freeze(512).to_string(),
            "S512"
        );
        assert_eq!(
            "EC_16P2GX"
                .parse::<ObjClass>()
                .unwrap()
                .freeze(8)
                .to_string(),
            "EC_16P2G1"
        );
    }
}
