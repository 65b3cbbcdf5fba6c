//! Command line of `self_test`: DAOS's flags and grammars (digest §2), parsed with clap.
//!
//! [`SelfTestArgs`] is the clap struct; [`parse_endpoints`], [`parse_master_endpoints`] and
//! [`parse_message_sizes`] are the two grammars; [`SelfTestArgs::plan`] turns everything into the
//! validated [`Plan`] a run needs (DAOS's checks: total repetitions ≤ 2^30, in-flight clamped to
//! the total) plus the warnings DAOS prints.

mod endpoint;
mod error;
mod sizes;

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
pub use endpoint::{parse_endpoints, parse_master_endpoints, EndpointId, MAX_ENDPOINTS};
pub use error::ArgError;
pub use sizes::{
    parse_message_sizes, MsgSpec, MsgType, SizePair, AUTO_BULK_THRESHOLD, DEFAULT_MESSAGE_SIZES,
};

use super::report::Params;

/// DAOS `SELF_TEST_MAX_REPETITIONS`: repetitions × endpoints may not exceed this.
pub const MAX_REPETITIONS: u64 = 1 << 30;
/// DAOS `SELF_TEST_MAX_INFLIGHT`.
pub const MAX_INFLIGHT: u64 = 1 << 30;
/// DAOS's default group name (used with a warning when `-g` is absent).
pub const DEFAULT_GROUP: &str = "daos_server";

/// self_test: measure RPC latency, rate and bandwidth between this process (or remote masters)
/// and cart endpoints, with DAOS's flags.
#[derive(Debug, Clone, Parser)]
#[command(name = "self_test", infer_long_args = true, version)]
pub struct SelfTestArgs {
    /// Name of the server group to test against (warning when defaulted, as DAOS does).
    #[arg(short = 'g', long = "group-name", default_value = DEFAULT_GROUP)]
    pub group_name: String,

    /// Directory holding `<group>.attach_info_tmp` (default: $CRT_ATTACH_INFO_PATH, else /tmp).
    #[arg(short = 'p', long = "path")]
    pub path: Option<PathBuf>,

    /// Endpoints `ranks:tags`, each side a comma list of N or N-M; repeatable. `1-3,2:0-1` means
    /// 1:0 1:1 2:0 2:1 3:0 3:1 2:0 2:1 (rank-major, duplicates kept). Default 0:0.
    #[arg(short = 'e', long = "endpoint", value_name = "RANKS:TAGS")]
    pub endpoint: Vec<String>,

    /// Size tuples `(send reply),...`; one number means both; prefix e=empty, i=IOV, b=bulk;
    /// without prefix 0 is empty, <1 MiB IOV, else bulk.
    #[arg(short = 's', long = "message-sizes", default_value = DEFAULT_MESSAGE_SIZES)]
    pub message_sizes: String,

    /// RPCs per size tuple per endpoint.
    #[arg(short = 'r', long = "repetitions-per-size", default_value_t = 100_000)]
    pub repetitions_per_size: u32,

    /// Maximum RPCs in flight per master (clamped to the total of the tuple).
    #[arg(short = 'i', long = "max-inflight-rpcs", default_value_t = 16)]
    pub max_inflight_rpcs: u32,

    /// Master endpoints `ranks:tags` (sorted, deduplicated): each runs its own 1:many test against
    /// the endpoints (many:many). Absent: this command is the master.
    #[arg(short = 'm', long = "master-endpoint", value_name = "RANKS:TAGS")]
    pub master_endpoint: Vec<String>,

    /// Report bandwidth in Mbit/s (10^6 bits) instead of MB/s (2^20 bytes).
    #[arg(short = 'b', long = "Mbits")]
    pub mbits: bool,

    /// Shuffle the endpoint order before testing.
    #[arg(short = 'q', long = "randomize-endpoints")]
    pub randomize_endpoints: bool,

    /// Do not ping every rank of the group before testing.
    #[arg(short = 'n', long = "no-sync")]
    pub no_sync: bool,

    /// Force the least-significant byte of every test buffer address (0..=255).
    #[arg(short = 'a', long = "align")]
    pub align: Option<u8>,

    /// Print one JSON document instead of the text report (no progress bar).
    #[arg(long = "json")]
    pub json: bool,

    /// Per-RPC timeout in seconds (daos-rs extra; default: cart's, i.e. CRT_TIMEOUT or 60 s).
    #[arg(long = "timeout", value_name = "SECS")]
    pub timeout: Option<u64>,
}

/// Everything a run needs, validated. Built by [`SelfTestArgs::plan`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// Report parameters (group, endpoints in test order, sizes, totals, in-flight).
    pub params: Params,
    /// Master endpoints, sorted and deduplicated; empty when this command is the master.
    pub masters: Vec<EndpointId>,
    /// Attach-info directory.
    pub attach_info_dir: PathBuf,
    /// Lines DAOS prints as `Warning: ...` for defaulted options.
    pub warnings: Vec<String>,
}

/// DAOS `crt_validate_grpid` (1..=64 printable ASCII, none of `; " ` ' \`) plus `/`, because the
/// name becomes a file name in the attach-info directory.
pub fn validate_group_name(name: &str) -> Result<(), ArgError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && !b";\"`'\\/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ArgError::GroupName(name.to_owned()))
    }
}

impl SelfTestArgs {
    /// Like [`Parser::try_parse_from`], also reporting whether `-g` was defaulted (DAOS warns).
    pub fn try_parse_with_source<I, T>(argv: I) -> Result<(Self, bool), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(argv)?;
        let group_defaulted = matches.value_source("group_name") == Some(ValueSource::DefaultValue);
        let args = Self::from_arg_matches(&matches)?;
        Ok((args, group_defaulted))
    }

    /// The attach-info directory: `-p`, else `$CRT_ATTACH_INFO_PATH`, else `/tmp` (as DAOS).
    pub fn attach_info_dir(&self) -> PathBuf {
        self.path
            .clone()
            .or_else(|| {
                std::env::var_os("CRT_ATTACH_INFO_PATH")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from("/tmp"))
    }

    /// Validates every argument as DAOS's `main` does and returns the run plan.
    /// `group_defaulted` comes from [`Self::try_parse_with_source`] (pass `false` if unknown).
    /// With `-q` the endpoint order is shuffled here (DAOS shuffles before the first tuple).
    pub fn plan(&self, group_defaulted: bool) -> Result<Plan, ArgError> {
        let mut warnings = Vec::new();
        if group_defaulted {
            warnings.push(format!(
                "no --group-name specified; using '{}'",
                self.group_name
            ));
        }
        validate_group_name(&self.group_name)?;
        let sizes = parse_message_sizes(&self.message_sizes)?;
        let masters = parse_master_endpoints(&self.master_endpoint)?;
        if masters.is_empty() {
            warnings.push(
                "No --master-endpoint specified; using this command line application as the master endpoint".into(),
            );
        }
        if self.endpoint.is_empty() {
            warnings.push("No --endpoint specified; using 0:0 default".into());
        }
        let mut endpoints = parse_endpoints(&self.endpoint)?;
        if self.randomize_endpoints {
            use rand::seq::SliceRandom;
            endpoints.shuffle(&mut rand::thread_rng());
        }
        if self.repetitions_per_size == 0 {
            return Err(ArgError::OutOfRange {
                flag: "repetitions-per-size",
                value: 0,
                max: MAX_REPETITIONS,
            });
        }
        if self.max_inflight_rpcs == 0 || u64::from(self.max_inflight_rpcs) > MAX_INFLIGHT {
            return Err(ArgError::OutOfRange {
                flag: "max-inflight-rpcs",
                value: self.max_inflight_rpcs.into(),
                max: MAX_INFLIGHT,
            });
        }
        let per = u64::from(self.repetitions_per_size);
        let n = endpoints.len() as u64;
        let total = per * n;
        if total > MAX_REPETITIONS {
            return Err(ArgError::TooManyRepetitions {
                per_endpoint: per,
                endpoints: n,
                total,
                max: MAX_REPETITIONS,
            });
        }
        let params = Params::new(
            self.group_name.clone(),
            endpoints,
            sizes,
            self.align,
            self.repetitions_per_size,
            self.max_inflight_rpcs,
            self.mbits,
        );
        Ok(Plan {
            params,
            masters,
            attach_info_dir: self.attach_info_dir(),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<(SelfTestArgs, bool), clap::Error> {
        SelfTestArgs::try_parse_with_source(
            std::iter::once("self_test").chain(argv.iter().copied()),
        )
    }

    #[test]
    fn defaults_match_daos_code() {
        let (a, defaulted) = parse(&[]).unwrap();
        assert!(defaulted);
        assert_eq!(a.group_name, "daos_server");
        assert_eq!(a.message_sizes, "0 0,0 b1048578,b1048578 0");
        assert_eq!(a.repetitions_per_size, 100_000);
        assert_eq!(a.max_inflight_rpcs, 16);
        assert!(!a.mbits && !a.randomize_endpoints && !a.no_sync && !a.json);
        assert_eq!(a.align, None);
        let plan = a.plan(defaulted).unwrap();
        assert_eq!(plan.params.endpoints, vec![EndpointId { rank: 0, tag: 0 }]);
        assert!(plan.masters.is_empty());
        assert_eq!(plan.warnings.len(), 3, "{:?}", plan.warnings);
        assert!(plan.warnings[0].contains("daos_server"));
    }

    #[test]
    fn short_flags_and_repeats() {
        let (a, defaulted) = parse(&[
            "-g",
            "G",
            "-p",
            "/x",
            "-e",
            "0-1:0",
            "-e",
            "2:0",
            "-s",
            "b1048576 0",
            "-r",
            "10",
            "-i",
            "4",
            "-m",
            "1:0",
            "-b",
            "-q",
            "-n",
            "-a",
            "8",
        ])
        .unwrap();
        assert!(!defaulted);
        assert_eq!(a.endpoint, vec!["0-1:0", "2:0"]);
        assert_eq!(a.attach_info_dir(), PathBuf::from("/x"));
        assert!(a.mbits && a.randomize_endpoints && a.no_sync);
        assert_eq!(a.align, Some(8));
        let plan = a.plan(defaulted).unwrap();
        assert_eq!(plan.params.endpoints.len(), 3);
        assert_eq!(plan.params.total_repetitions(), 30);
        assert_eq!(plan.params.max_inflight, 4);
        assert_eq!(plan.masters, vec![EndpointId { rank: 1, tag: 0 }]);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn unambiguous_long_prefixes_are_accepted_like_getopt_long() {
        // DAOS's docs use --repetitions and --message-size.
        let (a, _) = parse(&[
            "--group",
            "G",
            "--repetitions",
            "7",
            "--message-size",
            "64",
            "--max-inflight",
            "2",
        ])
        .unwrap();
        assert_eq!(
            (
                a.group_name.as_str(),
                a.repetitions_per_size,
                a.max_inflight_rpcs
            ),
            ("G", 7, 2)
        );
        assert_eq!(a.message_sizes, "64");
        let (a, _) = parse(&[
            "--Mbits",
            "--randomize",
            "--no-sync",
            "--master-endpoint",
            "0:0",
            "--json",
        ])
        .unwrap();
        assert!(a.mbits && a.randomize_endpoints && a.no_sync && a.json);
        // "--m" could be --message-sizes, --max-inflight-rpcs or --master-endpoint.
        assert!(parse(&["--m", "1"]).is_err());
    }

    #[test]
    fn out_of_range_numbers_are_refused_by_name() {
        let err = parse(&["-a", "256"]).unwrap_err().to_string();
        assert!(err.contains("256"), "{err}");
        assert!(parse(&["-r", "-3"]).is_err());
        let (a, d) = parse(&["-r", "0"]).unwrap();
        assert!(a
            .plan(d)
            .unwrap_err()
            .to_string()
            .contains("repetitions-per-size 0"));
        let (a, d) = parse(&["-i", "0"]).unwrap();
        assert!(a
            .plan(d)
            .unwrap_err()
            .to_string()
            .contains("max-inflight-rpcs 0"));
    }

    #[test]
    fn total_repetitions_cap_and_inflight_clamp() {
        let (a, d) = parse(&["-e", "0-3:0", "-r", "268435457"]).unwrap();
        let err = a.plan(d).unwrap_err();
        assert!(
            matches!(
                err,
                ArgError::TooManyRepetitions {
                    total: 1073741828,
                    ..
                }
            ),
            "{err:?}"
        );
        let (a, d) = parse(&["-e", "0-1:0", "-r", "3", "-i", "64"]).unwrap();
        assert_eq!(a.plan(d).unwrap().params.max_inflight, 6);
    }

    #[test]
    fn bad_grammar_surfaces_from_plan() {
        let (a, d) = parse(&["-e", "0:zz"]).unwrap();
        assert!(a.plan(d).unwrap_err().to_string().contains("'zz'"));
        let (a, d) = parse(&["-s", "0 q"]).unwrap();
        assert!(a.plan(d).unwrap_err().to_string().contains("'q'"));
        let (a, d) = parse(&["-g", "bad;name"]).unwrap();
        assert!(matches!(a.plan(d), Err(ArgError::GroupName(_))));
    }

    #[test]
    fn group_name_rules() {
        assert!(validate_group_name("daos_server").is_ok());
        assert!(validate_group_name(&"g".repeat(64)).is_ok());
        for bad in [
            "",
            "a b\t",
            "a'b",
            "a\"b",
            "a`b",
            "a\\b",
            "a/b",
            "a;b",
            &"g".repeat(65),
            "é",
        ] {
            assert!(validate_group_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn randomize_keeps_the_multiset() {
        let (a, d) = parse(&["-q", "-e", "0-63:0-1"]).unwrap();
        let mut got = a.plan(d).unwrap().params.endpoints;
        got.sort();
        let mut want = parse_endpoints(&["0-63:0-1".into()]).unwrap();
        want.sort();
        assert_eq!(got, want);
    }
}
