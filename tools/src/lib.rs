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
//!   Its round trip is the loop's wall clock per RPC at 1 in flight (1e6 / RPC/s), the same definition
//!   as fi_pingpong's (2 × its one-way `usec/xfer`) and as the "Mercury 54k RPC/s = 18.5 µs".
//!   Measured 2026-11-25 on this 2-core VM (median of 4 invocations × 3 runs, load 1.2–1.7; cart at
//!   a4e70a8): tcp;ofi_rxm round trip 25.9 µs vs fi_pingpong 8.0 µs (ratio 3.23; self_test's own
//!   per-RPC latency median is ~12 µs, so ~14 µs per RPC go between a completion and the next send),
//!   64 B 39.7k RPC/s at 1 in flight → 161k at 16, 1 MiB bulk 7183 MiB/s vs 7325 (ratio 0.97);
//!   shm 8.0 µs vs 1.2 µs (6.7; per-RPC median ~2.7 µs), 126k → 494k RPC/s, 8926 vs 19121 MiB/s (0.47).
#![forbid(unsafe_code)]

pub mod self_test;
