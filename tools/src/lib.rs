//! Library half of the daos-rs tools: everything of a tool that can be tested without a network or
//! a disk — argument grammars, statistics, report formatting — so the binaries in `src/bin/` are
//! thin glue over cart, placement and vos.
//!
//! Must not depend on: cart, vos, placement or any runtime from this library module tree (they are
//! dependencies of the binaries only); `self_test` here is pure computation over samples.
//!
//! Modules:
//! - [`self_test`]: DAOS `self_test`'s flags and `ranks:tags` / message-size grammars, its statistics
//!   (including DAOS's average quirk), its text report layout and the JSON of issue 3, the progress bar.
//!
//! Design decisions:
//! - Report text follows DAOS's C `printf` formats byte for byte (checked against
//!   `src/utils/self_test/self_test.c` at daos-stack/daos 1ff4549), so scripts that scrape DAOS's
//!   output keep working; JSON carries the same numbers unrounded.
//! - Grammars are stricter than DAOS's (which silently skips bad items): a typo is an
//!   [`self_test::args::ArgError`] naming the token, never a silently smaller test. A proptest feeds
//!   random strings to both parsers.
//! - Benchmark figures (fi_pingpong vs self_test ratios) come from `tools/bench/fabric.sh`, not tests.
#![forbid(unsafe_code)]

pub mod self_test;
