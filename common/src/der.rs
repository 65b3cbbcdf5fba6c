//! DAOS error numbers (`DER_*`), with the same names, numbers and descriptions as DAOS's
//! `src/include/daos_errno.h`. Public APIs return negative numbers as DAOS does (`-DER_NONEXIST`);
//! [`Der`] holds the positive value.

use std::fmt;

macro_rules! der_codes {
    ($( $variant:ident = $num:literal, $name:literal, $desc:literal; )*) => {
        /// A DAOS error number. `Der::Nonexist as i32` is 1005; APIs report it as -1005.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum Der {
            $( #[doc = $desc] $variant = $num, )*
        }

        impl Der {
            /// Every known error number, in declaration order.
            pub const ALL: &'static [Der] = &[$(Der::$variant,)*];

            /// The DAOS spelling, e.g. `"DER_NONEXIST"`.
            pub const fn name(self) -> &'static str {
                match self { $( Der::$variant => $name, )* }
            }

            /// DAOS's one-line description.
            pub const fn description(self) -> &'static str {
                match self { $( Der::$variant => $desc, )* }
            }

            /// The positive number (1005 for `DER_NONEXIST`).
            pub const fn code(self) -> i32 {
                self as i32
            }

            /// Looks up a number; accepts either sign (`-1005` or `1005`).
            pub fn from_code(code: i32) -> Option<Der> {
                match code.checked_abs()? { $( $num => Some(Der::$variant), )* _ => None }
            }

            /// Looks up a DAOS spelling (`"DER_NONEXIST"`).
            pub fn from_name(name: &str) -> Option<Der> {
                match name { $( $name => Some(Der::$variant), )* _ => None }
            }
        }
    };
}

der_codes! {
    NoPerm = 1001, "DER_NO_PERM", "Operation not permitted";
    NoHdl = 1002, "DER_NO_HDL", "Invalid handle";
    Inval = 1003, "DER_INVAL", "Invalid parameters";
    Exist = 1004, "DER_EXIST", "Entity already exists";
    Nonexist = 1005, "DER_NONEXIST", "The specified entity does not exist";
    Unreach = 1006, "DER_UNREACH", "Unreachable node";
    Nospace = 1007, "DER_NOSPACE", "No space on storage target";
    Already = 1008, "DER_ALREADY", "Operation already performed";
    Nomem = 1009, "DER_NOMEM", "Out of memory";
    Nosys = 1010, "DER_NOSYS", "Function not implemented";
    Timedout = 1011, "DER_TIMEDOUT", "Time out";
    Busy = 1012, "DER_BUSY", "Device or resource busy";
    Again = 1013, "DER_AGAIN", "Try again";
    Proto = 1014, "DER_PROTO", "Incompatible protocol";
    Uninit = 1015, "DER_UNINIT", "Device or resource not initialized";
    Trunc = 1016, "DER_TRUNC", "Buffer too short";
    Overflow = 1017, "DER_OVERFLOW", "Data too long for defined data type or buffer size";
    Canceled = 1018, "DER_CANCELED", "Operation canceled";
    Oog = 1019, "DER_OOG", "Out of group or member list";
    Hg = 1020, "DER_HG", "Transport layer mercury error";
    Unreg = 1021, "DER_UNREG", "RPC or protocol version not registered";
    AddrstrGen = 1022, "DER_ADDRSTR_GEN", "Failed to generate an address string";
    Pmix = 1023, "DER_PMIX", "PMIx layer error";
    IvcbForward = 1024, "DER_IVCB_FORWARD", "Incast variable unavailable locally. Must forward";
    Misc = 1025, "DER_MISC", "Miscellaneous error";
    Badpath = 1026, "DER_BADPATH", "Bad path name";
    Notdir = 1027, "DER_NOTDIR", "Not a directory";
    CorpcIncomplete = 1028, "DER_CORPC_INCOMPLETE", "Collective RPC failed";
    NoRasRank = 1029, "DER_NO_RAS_RANK", "No rank is subscribed to RAS";
    Notattach = 1030, "DER_NOTATTACH", "Service group not attached";
    Mismatch = 1031, "DER_MISMATCH", "Version mismatch";
    Excluded = 1032, "DER_EXCLUDED", "Rank has been excluded";
    Noreply = 1033, "DER_NOREPLY", "User provided RPC handler did not send reply back";
    Dos = 1034, "DER_DOS", "Denial of service";
    BadTarget = 1035, "DER_BAD_TARGET", "Incorrect target for the RPC";
    Grpver = 1036, "DER_GRPVER", "Group versioning mismatch";
    HlcSync = 1037, "DER_HLC_SYNC", "HLC synchronization error";
    NoShmem = 1038, "DER_NO_SHMEM", "Not enough shared memory free";
    HgFatal = 1045, "DER_HG_FATAL", "Fatal transport layer mercury error";
    Io = 2001, "DER_IO", "I/O error";
    FreeMem = 2002, "DER_FREE_MEM", "Memory free error";
    Enoent = 2003, "DER_ENOENT", "Entity not found";
    Notype = 2004, "DER_NOTYPE", "Unknown object type";
    Noschema = 2005, "DER_NOSCHEMA", "Unknown object schema";
    Nolocal = 2006, "DER_NOLOCAL", "Object is not local";
    Stale = 2007, "DER_STALE", "Stale pool map version";
    Notleader = 2008, "DER_NOTLEADER", "Not service leader";
    TgtCreate = 2009, "DER_TGT_CREATE", "Target create error";
    EpRo = 2010, "DER_EP_RO", "Epoch is read only";
    EpOld = 2011, "DER_EP_OLD", "Epoch is too old. All data have been recycled";
    Key2big = 2012, "DER_KEY2BIG", "Key is too large";
    Rec2big = 2013, "DER_REC2BIG", "Record is too large";
    IoInval = 2014, "DER_IO_INVAL", "I/O buffers do not match object extents";
    EqBusy = 2015, "DER_EQ_BUSY", "Event queue is busy";
    Domain = 2016, "DER_DOMAIN", "Domain of cluster component do not match";
    Shutdown = 2017, "DER_SHUTDOWN", "Service should shut down";
    Inprogress = 2018, "DER_INPROGRESS", "Operation now in progress";
    Notapplicable = 2019, "DER_NOTAPPLICABLE", "Not applicable";
    Notreplica = 2020, "DER_NOTREPLICA", "Not a service replica";
    Csum = 2021, "DER_CSUM", "Checksum error";
    DfInval = 2022, "DER_DF_INVAL", "Unsupported durable format";
    DfIncompt = 2023, "DER_DF_INCOMPT", "Incompatible durable format version";
    RecSize = 2024, "DER_REC_SIZE", "Record size error";
    TxRestart = 2025, "DER_TX_RESTART", "Transaction should restart";
    DataLoss = 2026, "DER_DATA_LOSS", "Data lost or not recoverable";
    OpCanceled = 2027, "DER_OP_CANCELED", "Operation canceled";
    TxBusy = 2028, "DER_TX_BUSY", "TX is not committed";
    AgentIncompat = 2029, "DER_AGENT_INCOMPAT", "Agent is incompatible with libdaos";
    NeedTx = 2030, "DER_NEED_TX", "To be handled via distributed transaction";
    Rf = 2031, "DER_RF", "Failures exceed RF";
    FetchAgain = 2032, "DER_FETCH_AGAIN", "Fetch again";
    TxUncertain = 2033, "DER_TX_UNCERTAIN", "TX status is uncertain";
    NotSupported = 2037, "DER_NOTSUPPORTED", "Operation not supported";
    NoService = 2039, "DER_NO_SERVICE", "No service available";
    NvmeIo = 2042, "DER_NVME_IO", "NVMe I/O error";
}

impl Der {
    /// The negative value DAOS APIs return (`-1005` for `DER_NONEXIST`).
    pub const fn rc(self) -> i32 {
        -(self as i32)
    }
}

impl bincode::Encode for Der {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.code().encode(encoder)
    }
}

impl<C> bincode::Decode<C> for Der {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let code = i32::decode(decoder)?;
        Der::from_code(code).ok_or(bincode::error::DecodeError::OtherString(format!(
            "unknown DER error number {code}"
        )))
    }
}

impl<'de, C> bincode::BorrowDecode<'de, C> for Der {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        bincode::Decode::decode(decoder)
    }
}

impl serde::Serialize for Der {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Der {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Der::from_name(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error name {s}")))
    }
}

impl fmt::Display for Der {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}): {}", self.name(), self.rc(), self.description())
    }
}

impl std::error::Error for Der {}

/// Implemented by every crate's error enum: the DAOS error number a caller at the API edge sees.
pub trait DaosErrno {
    /// The `DER_*` number this error maps to.
    fn der(&self) -> Der;

    /// The negative return code (`-DER_*`), as DAOS's C API would return it.
    fn rc(&self) -> i32 {
        self.der().rc()
    }
}

impl DaosErrno for Der {
    fn der(&self) -> Der {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_daos_errno_h() {
        // Spot checks against the values DAOS documents (digest §7).
        assert_eq!(Der::Inval.rc(), -1003);
        assert_eq!(Der::Exist.rc(), -1004);
        assert_eq!(Der::Nonexist.rc(), -1005);
        assert_eq!(Der::Unreach.rc(), -1006);
        assert_eq!(Der::Nospace.rc(), -1007);
        assert_eq!(Der::Timedout.rc(), -1011);
        assert_eq!(Der::Busy.rc(), -1012);
        assert_eq!(Der::Unreg.code(), 1021);
        assert_eq!(Der::Stale.rc(), -2007);
        assert_eq!(Der::Inprogress.rc(), -2018);
        assert_eq!(Der::Csum.rc(), -2021);
        assert_eq!(Der::TxRestart.rc(), -2025);
        assert_eq!(Der::OpCanceled.rc(), -2027);
        assert_eq!(Der::Rf.rc(), -2031);
    }

    #[test]
    fn names_and_codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &d in Der::ALL {
            assert!(seen.insert(d.code()), "duplicate number {}", d.code());
            assert_eq!(Der::from_code(d.code()), Some(d));
            assert_eq!(Der::from_code(d.rc()), Some(d));
            assert_eq!(Der::from_name(d.name()), Some(d));
            assert!(d.name().starts_with("DER_"));
        }
        assert_eq!(Der::from_code(0), None);
        assert_eq!(Der::from_code(i32::MIN), None);
        assert_eq!(Der::from_name("DER_BOGUS"), None);
    }

    #[test]
    fn wire_encoding_round_trips_and_rejects_unknown() {
        let cfg = bincode::config::standard();
        for &d in Der::ALL {
            let b = bincode::encode_to_vec(d, cfg).unwrap();
            let (back, _): (Der, _) = bincode::decode_from_slice(&b, cfg).unwrap();
            assert_eq!(back, d);
        }
        let b = bincode::encode_to_vec(4242i32, cfg).unwrap();
        let e = bincode::decode_from_slice::<Der, _>(&b, cfg).unwrap_err();
        assert!(e.to_string().contains("4242"));
    }

    #[test]
    fn display_names_the_error() {
        assert_eq!(
            Der::Nonexist.to_string(),
            "DER_NONEXIST(-1005): The specified entity does not exist"
        );
    }
}
