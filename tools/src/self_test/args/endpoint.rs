//! The `ranks:tags` endpoint grammar of DAOS `self_test -e/-m` (`parse_endpoint_string` in
//! `src/utils/self_test/self_test.c`).
//!
//! Each side is a comma list of `N` or `N-M` items (a reversed range `5-3` means `3-5`, as in DAOS).
//! The expansion is rank-major: for each rank item, each rank in it, then each tag item, each tag in
//! it. Duplicates are kept for `-e` (so `1-3,2:0-1` visits 2:0 and 2:1 twice) and removed for `-m`,
//! whose list is also sorted. Where DAOS silently skips an unparsable item, we refuse the whole spec
//! and name the item.

use std::fmt;

use super::ArgError;

/// Upper bound on the total number of endpoints one command line may expand to. DAOS allows
/// `UINT32_MAX` and would then try to allocate it; a million endpoints is already far beyond any
/// cluster (`-r` × endpoints must stay ≤ 2^30 anyway).
pub const MAX_ENDPOINTS: u64 = 1 << 20;

/// One self-test target: a server rank and one of its contexts (tag).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct EndpointId {
    /// Rank in the primary group.
    pub rank: u32,
    /// Context index (tag) on that rank.
    pub tag: u32,
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.rank, self.tag)
    }
}

/// An inclusive range `lo..=hi` from one list item.
#[derive(Debug, Clone, Copy)]
struct Span {
    lo: u32,
    hi: u32,
}

impl Span {
    fn len(self) -> u64 {
        u64::from(self.hi - self.lo) + 1
    }
}

fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_list(spec: &str, side: &'static str, list: &str) -> Result<Vec<Span>, ArgError> {
    let bad = |token: &str| ArgError::EndpointItem {
        spec: spec.to_owned(),
        side,
        token: token.to_owned(),
    };
    list.split(',')
        .map(|item| {
            let item_trim = item.trim();
            let mut parts = item_trim.splitn(2, '-');
            let first = parts.next().unwrap_or_default();
            let lo = parse_number(first).ok_or_else(|| bad(item))?;
            let hi = match parts.next() {
                None => lo,
                Some(second) => parse_number(second).ok_or_else(|| bad(item))?,
            };
            Ok(Span {
                lo: lo.min(hi),
                hi: lo.max(hi),
            })
        })
        .collect()
}

/// Parses one `ranks:tags` spec into its spans, checking its expansion against `room` endpoints.
fn parse_spec(spec: &str, room: u64) -> Result<(Vec<Span>, Vec<Span>), ArgError> {
    let shape = || ArgError::EndpointShape {
        spec: spec.to_owned(),
    };
    let (ranks, tags) = spec.split_once(':').ok_or_else(shape)?;
    if ranks.trim().is_empty() || tags.trim().is_empty() || tags.contains(':') {
        return Err(shape());
    }
    let ranks = parse_list(spec, "rank", ranks)?;
    let tags = parse_list(spec, "tag", tags)?;
    let n_ranks: u64 = ranks.iter().map(|s| s.len()).sum();
    let n_tags: u64 = tags.iter().map(|s| s.len()).sum();
    // Both factors are ≤ 2^32 × (spec length), so the product cannot overflow u128.
    let count = u128::from(n_ranks) * u128::from(n_tags);
    if count > u128::from(room) {
        return Err(ArgError::TooManyEndpoints {
            spec: spec.to_owned(),
            count: u64::try_from(count).unwrap_or(u64::MAX),
            max: MAX_ENDPOINTS,
        });
    }
    Ok((ranks, tags))
}

fn expand(ranks: &[Span], tags: &[Span], out: &mut Vec<EndpointId>) {
    for r in ranks {
        for rank in r.lo..=r.hi {
            for t in tags {
                out.extend((t.lo..=t.hi).map(|tag| EndpointId { rank, tag }));
            }
        }
    }
}

fn parse_all(specs: &[String]) -> Result<Vec<EndpointId>, ArgError> {
    let mut out = Vec::new();
    for spec in specs {
        let room = MAX_ENDPOINTS - out.len() as u64;
        let (ranks, tags) = parse_spec(spec, room)?;
        expand(&ranks, &tags, &mut out);
    }
    Ok(out)
}

/// `-e/--endpoint` (repeatable): every spec expanded rank-major, in order, duplicates kept.
/// No spec at all means DAOS's default `0:0`.
pub fn parse_endpoints(specs: &[String]) -> Result<Vec<EndpointId>, ArgError> {
    if specs.is_empty() {
        return Ok(vec![EndpointId { rank: 0, tag: 0 }]);
    }
    parse_all(specs)
}

/// `-m/--master-endpoint` (repeatable): same grammar, then sorted by (rank, tag) and deduplicated,
/// because each master runs one 1:many session at a time. Empty means "this CLI is the master".
pub fn parse_master_endpoints(specs: &[String]) -> Result<Vec<EndpointId>, ArgError> {
    let mut out = parse_all(specs)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(rank: u32, tag: u32) -> EndpointId {
        EndpointId { rank, tag }
    }

    fn specs(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn daos_usage_example_expands_rank_major_with_duplicates() {
        // From DAOS's --endpoint usage text and the digest §2.
        let got = parse_endpoints(&specs(&["1-3,2:0-1"])).unwrap();
        let want = vec![
            ep(1, 0),
            ep(1, 1),
            ep(2, 0),
            ep(2, 1),
            ep(3, 0),
            ep(3, 1),
            ep(2, 0),
            ep(2, 1),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn default_is_rank0_tag0() {
        assert_eq!(parse_endpoints(&[]).unwrap(), vec![ep(0, 0)]);
    }

    #[test]
    fn lists_ranges_and_repeated_flags_append_in_order() {
        // DAOS usage: "Supports both ranges and lists - for example, 1-5,3,8".
        let got = parse_endpoints(&specs(&["1-5,3,8:0", "0:2,1"])).unwrap();
        let ranks: Vec<u32> = got.iter().take(7).map(|e| e.rank).collect();
        assert_eq!(ranks, vec![1, 2, 3, 4, 5, 3, 8]);
        assert_eq!(&got[7..], &[ep(0, 2), ep(0, 1)]);
    }

    #[test]
    fn reversed_range_is_normalised_like_daos() {
        assert_eq!(
            parse_endpoints(&specs(&["3-1:0"])).unwrap(),
            vec![ep(1, 0), ep(2, 0), ep(3, 0)]
        );
    }

    #[test]
    fn full_u32_bounds_parse() {
        let got = parse_endpoints(&specs(&["4294967295:4294967294-4294967295"])).unwrap();
        assert_eq!(
            got,
            vec![ep(u32::MAX, u32::MAX - 1), ep(u32::MAX, u32::MAX)]
        );
    }

    #[test]
    fn masters_are_sorted_and_deduplicated() {
        let got = parse_master_endpoints(&specs(&["2,0:0", "0-1:0", "0:1"])).unwrap();
        assert_eq!(got, vec![ep(0, 0), ep(0, 1), ep(1, 0), ep(2, 0)]);
        assert!(parse_master_endpoints(&[]).unwrap().is_empty());
    }

    #[test]
    fn malformed_specs_name_the_bad_token() {
        let cases = [
            ("0", "must be 'ranks:tags'"),
            (":0", "must be 'ranks:tags'"),
            ("0:", "must be 'ranks:tags'"),
            ("0:1:2", "must be 'ranks:tags'"),
            ("a:0", "bad rank item 'a'"),
            ("0:x1", "bad tag item 'x1'"),
            ("1-2-3:0", "bad rank item '1-2-3'"),
            ("1,,2:0", "bad rank item ''"),
            ("1-:0", "bad rank item '1-'"),
            ("-1:0", "bad rank item '-1'"),
            ("4294967296:0", "bad rank item '4294967296'"),
            ("+1:0", "bad rank item '+1'"),
        ];
        for (spec, needle) in cases {
            let err = parse_endpoints(&specs(&[spec])).unwrap_err();
            assert_eq!(err.rc(), -1003, "{spec}");
            let msg = err.to_string();
            assert!(msg.contains(needle), "{spec}: {msg}");
            assert!(
                msg.contains(spec),
                "{spec}: message must quote the spec: {msg}"
            );
        }
    }

    use daos_common::DaosErrno;

    #[test]
    fn huge_expansion_is_refused_without_allocating() {
        let err = parse_endpoints(&specs(&["0-4294967295:0-4294967295"])).unwrap_err();
        assert!(
            matches!(err, ArgError::TooManyEndpoints { count, .. } if count == u64::MAX),
            "{err:?}"
        );
        // The limit is cumulative over repeated flags.
        let half = format!("0-{}:0", MAX_ENDPOINTS / 2 - 1);
        assert_eq!(
            parse_endpoints(&specs(&[&half, &half])).unwrap().len() as u64,
            MAX_ENDPOINTS
        );
        let err = parse_endpoints(&specs(&[&half, &half, "0:0"])).unwrap_err();
        assert!(
            matches!(err, ArgError::TooManyEndpoints { count: 1, .. }),
            "{err:?}"
        );
    }
}
