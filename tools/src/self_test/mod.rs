//! `self_test` without the network: DAOS's command-line grammar, the statistics, the text report and
//! JSON, and the progress bar. The run loop itself (≤ max in-flight RPCs round-robin over the
//! endpoints, one [`stats::Sample`] per RPC) lives in cart's self-test protocol so a remote master
//! (`-m`) can run it; the `self_test` binary glues the two.
//!
//! - [`args`]: [`args::SelfTestArgs`] (clap, DAOS flags, unambiguous long prefixes), the endpoint
//!   grammar `ranks:tags` and the message-size grammar, [`args::Plan`].
//! - [`stats`]: [`stats::Sample`], [`stats::TupleResult`] and DAOS's formulas (percentile indices,
//!   the average-over-all-repetitions quirk, per-endpoint lower median, per-error counts).
//! - [`report`]: [`report::Params`], DAOS's text layout, the JSON document.
//! - [`progress`]: the terminal progress bar.

pub mod args;
pub mod progress;
pub mod report;
pub mod stats;

#[cfg(test)]
mod proptests;
