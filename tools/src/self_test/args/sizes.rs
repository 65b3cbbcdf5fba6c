//! The `-s/--message-sizes` grammar of DAOS `self_test` (`parse_message_sizes_string` and the
//! tuple loop in `main`, `src/utils/self_test/self_test.c`).
//!
//! `-s` is a list of tuples separated by `,`, `(` or `)` (parentheses are optional and empty pieces
//! are skipped, as DAOS's `strtok` does). A tuple is `send [reply]` separated by blanks; one size
//! means the same size and type both ways. A size is an optional type prefix and a decimal `u32`:
//! `e` empty, `i` IOV (inline), `b` bulk. Without a prefix, 0 is empty, below 1 MiB is IOV and
//! 1 MiB or more is bulk. Then DAOS's silent fix-ups: size 0 is always empty, a non-zero `e` becomes
//! IOV, send bulk is the service's BULK_GET and reply bulk its BULK_PUT.
//!
//! DAOS prints a warning and skips a tuple it cannot parse (and accepts stray characters before a
//! number); we refuse the whole argument and name the bad token, so a typo never silently drops a
//! measurement.

use std::fmt;

use super::ArgError;

/// Without a prefix, sizes at or above this use bulk (DAOS `CRT_SELF_TEST_AUTO_BULK_THRESH`).
pub const AUTO_BULK_THRESHOLD: u32 = 1 << 20;

/// DAOS's default `-s`: empty both ways, 1 MiB+2 bulk reply, 1 MiB+2 bulk send.
pub const DEFAULT_MESSAGE_SIZES: &str = "0 0,0 b1048578,b1048578 0";

/// How a payload travels (DAOS `enum crt_st_msg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MsgType {
    /// No payload.
    Empty,
    /// Inline in the RPC body.
    Iov,
    /// The service pulls the client's buffer (`fi_read`); used for the send direction.
    BulkGet,
    /// The service pushes into the client's buffer (`fi_write`); used for the reply direction.
    BulkPut,
}

impl MsgType {
    /// DAOS's spelling in reports: `EMPTY`, `IOV`, `BULK_GET`, `BULK_PUT`.
    pub const fn name(self) -> &'static str {
        match self {
            MsgType::Empty => "EMPTY",
            MsgType::Iov => "IOV",
            MsgType::BulkGet => "BULK_GET",
            MsgType::BulkPut => "BULK_PUT",
        }
    }

    /// True for either bulk direction.
    pub const fn is_bulk(self) -> bool {
        matches!(self, MsgType::BulkGet | MsgType::BulkPut)
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One direction of a tuple: transport type and size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MsgSpec {
    /// Transport of the payload.
    pub ty: MsgType,
    /// Payload size in bytes.
    pub size: u32,
}

impl fmt::Display for MsgSpec {
    /// DAOS's `%d-%s`, e.g. `1048578-BULK_GET`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.size, self.ty.name())
    }
}

/// One `-s` tuple: what the client sends and what the service replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SizePair {
    /// Client → service.
    pub send: MsgSpec,
    /// Service → client.
    pub reply: MsgSpec,
}

impl SizePair {
    /// Payload bytes moved per RPC, both directions (DAOS's bandwidth numerator).
    pub fn bytes_per_rpc(&self) -> u64 {
        u64::from(self.send.size) + u64::from(self.reply.size)
    }
}

impl fmt::Display for SizePair {
    /// DAOS's `(%d-%s %d-%s)`, e.g. `(0-EMPTY 1048578-BULK_PUT)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({} {})", self.send, self.reply)
    }
}

/// The prefix a user typed, before direction-dependent resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Empty,
    Iov,
    Bulk,
}

fn parse_size_token(tuple: &str, token: &str) -> Result<(Option<Prefix>, u32), ArgError> {
    let bad = |why| ArgError::SizeToken {
        tuple: tuple.to_owned(),
        token: token.to_owned(),
        why,
    };
    let (prefix, digits) = match token.as_bytes().first() {
        Some(b'e') => (Some(Prefix::Empty), &token[1..]),
        Some(b'i') => (Some(Prefix::Iov), &token[1..]),
        Some(b'b') => (Some(Prefix::Bulk), &token[1..]),
        _ => (None, token),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("expected an optional e/i/b prefix and a decimal size"));
    }
    let size = digits
        .parse::<u32>()
        .map_err(|_| bad("size above 4294967295"))?;
    Ok((prefix, size))
}

/// Resolves one direction exactly as DAOS does: auto type, then the fix-ups.
fn resolve(prefix: Option<Prefix>, size: u32, is_send: bool) -> MsgSpec {
    let bulk = if is_send {
        MsgType::BulkGet
    } else {
        MsgType::BulkPut
    };
    let ty = match prefix {
        _ if size == 0 => MsgType::Empty,
        Some(Prefix::Empty) | Some(Prefix::Iov) => MsgType::Iov,
        Some(Prefix::Bulk) => bulk,
        None if size < AUTO_BULK_THRESHOLD => MsgType::Iov,
        None => bulk,
    };
    MsgSpec { ty, size }
}

fn parse_tuple(tuple: &str) -> Result<SizePair, ArgError> {
    let tokens: Vec<&str> = tuple.split_whitespace().collect();
    let ((sp, ss), (rp, rs)) = match tokens.as_slice() {
        [one] => {
            let s = parse_size_token(tuple, one)?;
            (s, s)
        }
        [send, reply] => (
            parse_size_token(tuple, send)?,
            parse_size_token(tuple, reply)?,
        ),
        _ => {
            return Err(ArgError::SizeArity {
                tuple: tuple.to_owned(),
                count: tokens.len(),
            })
        }
    };
    Ok(SizePair {
        send: resolve(sp, ss, true),
        reply: resolve(rp, rs, false),
    })
}

/// Parses a whole `-s` argument into its tuples, in order (duplicates kept).
pub fn parse_message_sizes(s: &str) -> Result<Vec<SizePair>, ArgError> {
    let out = s
        .split([',', '(', ')'])
        .filter(|piece| !piece.trim().is_empty())
        .map(parse_tuple)
        .collect::<Result<Vec<_>, _>>()?;
    if out.is_empty() {
        return Err(ArgError::NoMessageSizes { spec: s.to_owned() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: MsgType, size: u32) -> MsgSpec {
        MsgSpec { ty, size }
    }

    fn pair(s: (MsgType, u32), r: (MsgType, u32)) -> SizePair {
        SizePair {
            send: spec(s.0, s.1),
            reply: spec(r.0, r.1),
        }
    }

    fn one(s: &str) -> SizePair {
        let v = parse_message_sizes(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v[0]
    }

    use MsgType::*;

    #[test]
    fn daos_default_string() {
        let got = parse_message_sizes(DEFAULT_MESSAGE_SIZES).unwrap();
        assert_eq!(
            got,
            vec![
                pair((Empty, 0), (Empty, 0)),
                pair((Empty, 0), (BulkPut, 1048578)),
                pair((BulkGet, 1048578), (Empty, 0)),
            ]
        );
        let names: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "(0-EMPTY 0-EMPTY)",
                "(0-EMPTY 1048578-BULK_PUT)",
                "(1048578-BULK_GET 0-EMPTY)"
            ]
        );
    }

    #[test]
    fn daos_usage_examples() {
        // "(b1000) would transfer 1000 bytes via bulk in both directions"
        assert_eq!(one("(b1000)"), pair((BulkGet, 1000), (BulkPut, 1000)));
        // "(i100 b1000) would use IOV to send and bulk to reply"
        assert_eq!(one("(i100 b1000)"), pair((Iov, 100), (BulkPut, 1000)));
        // The enumerated structures of the usage text, x,y > 0.
        assert_eq!(one("(0 0)"), pair((Empty, 0), (Empty, 0)));
        assert_eq!(one("(i8 0)"), pair((Iov, 8), (Empty, 0)));
        assert_eq!(one("(0 i8)"), pair((Empty, 0), (Iov, 8)));
        assert_eq!(one("(0 b8)"), pair((Empty, 0), (BulkPut, 8)));
        assert_eq!(one("(b8 0)"), pair((BulkGet, 8), (Empty, 0)));
        assert_eq!(one("(b8 i9)"), pair((BulkGet, 8), (Iov, 9)));
        assert_eq!(one("(b8 b9)"), pair((BulkGet, 8), (BulkPut, 9)));
    }

    #[test]
    fn one_number_means_both_directions() {
        assert_eq!(one("4096"), pair((Iov, 4096), (Iov, 4096)));
        assert_eq!(one("1048576"), pair((BulkGet, 1048576), (BulkPut, 1048576)));
        assert_eq!(one("e0"), pair((Empty, 0), (Empty, 0)));
    }

    #[test]
    fn auto_types_switch_at_one_mib() {
        assert_eq!(one("1048575 1048575"), pair((Iov, 1048575), (Iov, 1048575)));
        assert_eq!(
            one("1048576 1048576"),
            pair((BulkGet, 1048576), (BulkPut, 1048576))
        );
        // An explicit prefix wins over the threshold.
        assert_eq!(
            one("i2000000 i2000000"),
            pair((Iov, 2000000), (Iov, 2000000))
        );
    }

    #[test]
    fn daos_fix_ups() {
        // 0 is always empty whatever the prefix; non-zero 'e' becomes IOV.
        assert_eq!(one("b0 i0"), pair((Empty, 0), (Empty, 0)));
        assert_eq!(one("e5 e7"), pair((Iov, 5), (Iov, 7)));
        // Mixed prefixes: send keeps its bulk direction, reply gets BULK_PUT.
        assert_eq!(one("b64 b64"), pair((BulkGet, 64), (BulkPut, 64)));
    }

    #[test]
    fn separators_and_parentheses_are_optional() {
        let a = parse_message_sizes("(0 0),(b1048576 0),(i64 i64)").unwrap();
        let b = parse_message_sizes("0 0,b1048576 0,i64 i64").unwrap();
        let c = parse_message_sizes(" (0 0) , (b1048576\t0)(i64  i64),, ").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.len(), 3);
        assert_eq!(
            parse_message_sizes("4294967295").unwrap()[0].send.size,
            u32::MAX
        );
    }

    #[test]
    fn bytes_per_rpc_sums_both_directions_without_overflow() {
        assert_eq!(one("4294967295").bytes_per_rpc(), 2 * u64::from(u32::MAX));
        assert_eq!(one("b1048576 0").bytes_per_rpc(), 1048576);
    }

    #[test]
    fn malformed_tuples_name_the_bad_token() {
        let cases = [
            ("0 0,x12", "bad token 'x12'"),
            ("i", "bad token 'i'"),
            ("b-5", "bad token 'b-5'"),
            ("4294967296", "bad token '4294967296'"),
            ("bb12", "bad token 'bb12'"),
            ("12k", "bad token '12k'"),
            ("1 2 3", "has 3 sizes"),
        ];
        for (s, needle) in cases {
            let msg = parse_message_sizes(s).unwrap_err().to_string();
            assert!(msg.contains(needle), "{s}: {msg}");
        }
        for s in ["", " ", "(),()", ","] {
            assert!(
                matches!(parse_message_sizes(s), Err(ArgError::NoMessageSizes { .. })),
                "{s:?}"
            );
        }
    }
}
