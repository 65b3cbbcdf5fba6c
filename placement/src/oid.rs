//! 128-bit object ids: the user owns the low 96 bits; `hi` bits 63–56 carry the object type, 55–48 the
//! redundancy code and 47–32 the (frozen) group count, so any process derives the class from the id.

use std::fmt;

use crate::class::{ObjClass, Redun, GROUPS_X};
use crate::error::{PlacementError, Result};

/// DAOS object types (`DAOS_OT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ObjType {
    /// Multi-level KV, hashed keys.
    MultiHashed = 0,
    /// Object index table.
    Oit = 1,
    /// Dkey uint64.
    DkeyUint64 = 2,
    /// Akey uint64.
    AkeyUint64 = 3,
    /// Multi uint64.
    MultiUint64 = 4,
    /// Dkey lexical.
    DkeyLexical = 5,
    /// Akey lexical.
    AkeyLexical = 6,
    /// Multi lexical.
    MultiLexical = 7,
    /// Flat KV, hashed keys.
    KvHashed = 8,
    /// Flat KV, uint64 keys.
    KvUint64 = 9,
    /// Flat KV, lexical keys.
    KvLexical = 10,
    /// Array.
    Array = 11,
    /// Array with attributes in the object.
    ArrayAttr = 12,
    /// Byte array.
    ArrayByte = 13,
    /// Object index table, version 2.
    OitV2 = 14,
}

impl ObjType {
    /// From the 8-bit type field.
    pub fn from_u8(v: u8) -> Option<ObjType> {
        use ObjType::*;
        const ALL: [ObjType; 15] = [
            MultiHashed,
            Oit,
            DkeyUint64,
            AkeyUint64,
            MultiUint64,
            DkeyLexical,
            AkeyLexical,
            MultiLexical,
            KvHashed,
            KvUint64,
            KvLexical,
            Array,
            ArrayAttr,
            ArrayByte,
            OitV2,
        ];
        ALL.get(v as usize).copied()
    }

    /// DAOS array types.
    pub fn is_array(self) -> bool {
        matches!(
            self,
            ObjType::Array | ObjType::ArrayAttr | ObjType::ArrayByte
        )
    }

    /// DAOS flat KV types.
    pub fn is_flat_kv(self) -> bool {
        matches!(
            self,
            ObjType::KvHashed | ObjType::KvUint64 | ObjType::KvLexical
        )
    }
}

/// A 128-bit object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// High word: type, class and 32 user bits.
    pub hi: u64,
    /// Low word: user bits.
    pub lo: u64,
}

impl ObjectId {
    /// `daos_obj_generate_oid`: encode type and class into the user's id; an `X` group count is frozen
    /// against `targets` (the pool's usable targets) so the object never spreads onto later-added ones.
    pub fn generate(
        user_hi: u32,
        lo: u64,
        otype: ObjType,
        class: ObjClass,
        targets: u32,
    ) -> ObjectId {
        let c = class.freeze(targets);
        let hi = (otype as u64) << 56
            | (c.redun.code() as u64) << 48
            | (c.groups as u64) << 32
            | user_hi as u64;
        ObjectId { hi, lo }
    }

    /// The class encoded in the id (always with a frozen group count).
    pub fn class(&self) -> Result<ObjClass> {
        let code = (self.hi >> 48) as u8;
        let groups = (self.hi >> 32) as u16;
        let bad = || PlacementError::InvalidOid {
            hi: self.hi,
            lo: self.lo,
            code,
            groups,
        };
        if groups == GROUPS_X {
            return Err(bad());
        }
        let redun = Redun::from_code(code).ok_or_else(bad)?;
        ObjClass::new(redun, groups).map_err(|_| bad())
    }

    /// The type encoded in the id.
    pub fn otype(&self) -> Option<ObjType> {
        ObjType::from_u8((self.hi >> 56) as u8)
    }

    /// The 32 user bits of `hi`.
    pub fn user_hi(&self) -> u32 {
        self.hi as u32
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{:x}", self.hi, self.lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_layout() {
        let c: ObjClass = "RP_3GX".parse().unwrap();
        let oid = ObjectId::generate(0xdead_beef, 42, ObjType::Array, c, 512);
        assert_eq!(oid.hi >> 56, 11);
        assert_eq!(oid.hi >> 48 & 0xff, 9);
        assert_eq!(oid.hi >> 32 & 0xffff, 170);
        assert_eq!(oid.user_hi(), 0xdead_beef);
        assert_eq!(oid.class().unwrap().to_string(), "RP_3G170");
        assert_eq!(oid.otype(), Some(ObjType::Array));
        let bad = ObjectId {
            hi: 0x00ff_0001_0000_0000,
            lo: 1,
        };
        assert!(matches!(
            bad.class(),
            Err(PlacementError::InvalidOid { code: 0xff, .. })
        ));
    }
}
