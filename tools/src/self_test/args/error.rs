//! [`ArgError`]: why a `self_test` argument was refused. Every variant names the offending token.

use daos_common::{DaosErrno, Der};

/// A malformed or out-of-range `self_test` argument. Each variant carries the exact token that was
/// refused so the message can point at it; all map to `DER_INVAL`, as DAOS's parser returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// An endpoint spec without exactly one `:` or with an empty side.
    #[error("endpoint '{spec}' must be 'ranks:tags' (e.g. '0-3:0' or '1,2:0-1')")]
    EndpointShape {
        /// The whole spec as given.
        spec: String,
    },
    /// A rank or tag list item that is not `N` or `N-M`.
    #[error(
        "endpoint '{spec}': bad {side} item '{token}' (expected N or N-M, N in 0..=4294967295)"
    )]
    EndpointItem {
        /// The whole spec as given.
        spec: String,
        /// `"rank"` or `"tag"`.
        side: &'static str,
        /// The offending comma-separated item.
        token: String,
    },
    /// The expansion would produce more endpoints than [`super::MAX_ENDPOINTS`].
    #[error("endpoint '{spec}' expands to {count} endpoints; at most {max} are allowed in total")]
    TooManyEndpoints {
        /// The spec whose expansion crossed the limit.
        spec: String,
        /// Endpoints the list would have held.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A message-size tuple that does not parse.
    #[error("message size tuple '{tuple}': bad token '{token}' ({why})")]
    SizeToken {
        /// The tuple (text between separators) that failed.
        tuple: String,
        /// The offending token inside it.
        token: String,
        /// What was expected.
        why: &'static str,
    },
    /// A tuple with more than two sizes.
    #[error("message size tuple '{tuple}' has {count} sizes; expected 'send [reply]'")]
    SizeArity {
        /// The tuple that failed.
        tuple: String,
        /// How many sizes it held.
        count: usize,
    },
    /// `-s` held no tuple at all.
    #[error("no message sizes in '{spec}' (expected e.g. \"0 0,i1024 0,b1048576 0\")")]
    NoMessageSizes {
        /// The whole `-s` argument.
        spec: String,
    },
    /// `repetitions × #endpoints` exceeds DAOS's 2^30 limit.
    #[error("--repetitions-per-size {per_endpoint} x {endpoints} endpoints = {total} RPCs; at most {max} allowed")]
    TooManyRepetitions {
        /// The `-r` value.
        per_endpoint: u64,
        /// Number of endpoints.
        endpoints: u64,
        /// Their product.
        total: u64,
        /// DAOS's limit (2^30).
        max: u64,
    },
    /// `-r 0` or `-i 0`, or `-i` above 2^30.
    #[error("--{flag} {value} is out of range 1..={max}")]
    OutOfRange {
        /// Long flag name.
        flag: &'static str,
        /// Given value.
        value: u64,
        /// Upper bound.
        max: u64,
    },
    /// The group name is not a valid DAOS group id.
    #[error(
        "--group-name '{0}' is invalid (1..=64 printable ASCII characters, none of ; \" ` ' \\ /)"
    )]
    GroupName(String),
}

impl DaosErrno for ArgError {
    fn der(&self) -> Der {
        Der::Inval
    }
}
