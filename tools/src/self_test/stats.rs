//! Statistics of one size tuple, computed exactly as DAOS's `print_results`
//! (`src/utils/self_test/self_test.c`) does, so figures compare one-to-one with DAOS's tool.
//!
//! - Throughput = repetitions / duration; bandwidth = throughput × (send + reply bytes), printed in
//!   MB/s (2^20) or, with `-b`, Mbit/s (10^6 bits).
//! - Latency percentiles index the ascending list of successful latencies: min `[0]`, 25th `[n/4]`,
//!   median `[n/2]`, 75th `[3n/4]`, max `[n-1]`.
//! - **DAOS quirk, kept on purpose:** the average is the sum of *successful* latencies divided by
//!   *all* repetitions, failures included, so failures drag it down; the standard deviation is then
//!   taken around that average over the successful samples only. With no failures both are the
//!   ordinary mean and population standard deviation.
//! - Per endpoint (grouped by rank:tag, so a duplicated endpoint is one group): the *lower* median
//!   of its successes, `[(n-1)/2]`, DAOS's per-endpoint formula; failure count; and a count per error
//!   code, most negative code first (DAOS's sort order).
//! - A sample is a failure when `rc != 0` (DAOS tests `rc < 0`; cart only reports negative codes).
//!   An endpoint whose every RPC failed has no median (`None`), it is never an assertion.

use std::collections::BTreeMap;
use std::time::Duration;

use super::args::{EndpointId, SizePair};

/// One RPC of a run, as the run loop recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Index into [`TupleResult::endpoints`] of the target. An index outside the list is counted in
    /// the totals but belongs to no endpoint group.
    pub endpoint: usize,
    /// Round-trip time in nanoseconds (meaningless when `rc != 0`).
    pub latency_ns: u64,
    /// 0 on success, else the negative `DER_*` code (e.g. -1011 for `DER_TIMEDOUT`).
    pub rc: i32,
}

impl Sample {
    /// True when the RPC completed successfully.
    pub fn ok(&self) -> bool {
        self.rc == 0
    }
}

/// Everything one master measured for one size tuple.
#[derive(Debug, Clone)]
pub struct TupleResult {
    /// The size tuple.
    pub sizes: SizePair,
    /// In-flight limit used.
    pub max_inflight: u32,
    /// Total RPCs sent (repetitions per endpoint × endpoints).
    pub repetitions: u32,
    /// Wall time of the timed loop.
    pub duration: Duration,
    /// The master that ran it; `None` = this command line process.
    pub master: Option<EndpointId>,
    /// Target endpoints, in test order (duplicates allowed).
    pub endpoints: Vec<EndpointId>,
    /// One sample per RPC.
    pub samples: Vec<Sample>,
}

/// Latency summary over the successful samples, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyStats {
    /// Fastest.
    pub min_ns: u64,
    /// 25th percentile (`[n/4]`).
    pub p25_ns: u64,
    /// Median (`[n/2]`).
    pub median_ns: u64,
    /// 75th percentile (`[3n/4]`).
    pub p75_ns: u64,
    /// Slowest.
    pub max_ns: u64,
    /// DAOS average: Σ successful latencies / all samples (integer division, see module doc).
    pub avg_ns: u64,
    /// Population standard deviation of the successes around `avg_ns`.
    pub stddev_ns: f64,
}

/// Per-endpoint result line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// RPCs sent to it.
    pub rpcs: u64,
    /// How many failed.
    pub failures: u64,
    /// Lower median of its successful latencies; `None` when every RPC failed (or none was sent).
    pub median_ns: Option<u64>,
    /// `(rc, count)` per error code, most negative first.
    pub errors: Vec<(i32, u64)>,
}

fn count_errors<'a>(samples: impl Iterator<Item = &'a Sample>) -> Vec<(i32, u64)> {
    let mut map = BTreeMap::new();
    for s in samples.filter(|s| !s.ok()) {
        *map.entry(s.rc).or_insert(0u64) += 1;
    }
    map.into_iter().collect()
}

impl TupleResult {
    fn secs(&self) -> f64 {
        self.duration.as_secs_f64()
    }

    /// RPCs per second: repetitions / duration (0 for a zero duration, never NaN or infinite).
    pub fn rpc_per_sec(&self) -> f64 {
        let s = self.secs();
        if s > 0.0 {
            f64::from(self.repetitions) / s
        } else {
            0.0
        }
    }

    /// Payload bytes per second, both directions (DAOS's bandwidth before unit conversion).
    pub fn bytes_per_sec(&self) -> f64 {
        self.rpc_per_sec() * self.sizes.bytes_per_rpc() as f64
    }

    /// Bandwidth in MB/s, MB = 2^20 bytes (DAOS default unit).
    pub fn bandwidth_mb_per_sec(&self) -> f64 {
        self.bytes_per_sec() / (1024.0 * 1024.0)
    }

    /// Bandwidth in Mbit/s, Mbit = 10^6 bits (DAOS `-b`).
    pub fn bandwidth_mbit_per_sec(&self) -> f64 {
        self.bytes_per_sec() * 8.0 / 1_000_000.0
    }

    /// Number of failed RPCs.
    pub fn failures(&self) -> u64 {
        self.samples.iter().filter(|s| !s.ok()).count() as u64
    }

    /// `(rc, count)` over all samples, most negative code first.
    pub fn error_counts(&self) -> Vec<(i32, u64)> {
        count_errors(self.samples.iter())
    }

    /// Successful latencies, ascending.
    fn sorted_ok(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .samples
            .iter()
            .filter(|s| s.ok())
            .map(|s| s.latency_ns)
            .collect();
        v.sort_unstable();
        v
    }

    /// Latency summary; `None` when no RPC succeeded.
    pub fn latency(&self) -> Option<LatencyStats> {
        let ok = self.sorted_ok();
        let n = ok.len();
        if n == 0 {
            return None;
        }
        let sum: u128 = ok.iter().map(|&v| u128::from(v)).sum();
        // DAOS quirk: divide by every repetition, failures included.
        let all = self.samples.len() as u128;
        let avg_ns = u64::try_from(sum / all).unwrap_or(u64::MAX);
        let var = ok
            .iter()
            .map(|&v| {
                let d = v as f64 - avg_ns as f64;
                d * d
            })
            .sum::<f64>()
            / n as f64;
        let at = |i: usize| ok[i.min(n - 1)];
        Some(LatencyStats {
            min_ns: ok[0],
            p25_ns: at(n / 4),
            median_ns: at(n / 2),
            p75_ns: at(((n as u64 * 3) / 4) as usize),
            max_ns: ok[n - 1],
            avg_ns,
            stddev_ns: var.sqrt(),
        })
    }

    /// One entry per distinct endpoint of [`Self::endpoints`], sorted by (rank, tag).
    pub fn endpoint_stats(&self) -> Vec<EndpointStats> {
        let mut groups: BTreeMap<EndpointId, Vec<&Sample>> =
            self.endpoints.iter().map(|&e| (e, Vec::new())).collect();
        for s in &self.samples {
            if let Some(ep) = self.endpoints.get(s.endpoint) {
                groups.entry(*ep).or_default().push(s);
            }
        }
        groups
            .into_iter()
            .map(|(endpoint, samples)| {
                let mut ok: Vec<u64> = samples
                    .iter()
                    .filter(|s| s.ok())
                    .map(|s| s.latency_ns)
                    .collect();
                ok.sort_unstable();
                let median_ns = if ok.is_empty() {
                    None
                } else {
                    Some(ok[(ok.len() - 1) / 2])
                };
                EndpointStats {
                    endpoint,
                    rpcs: samples.len() as u64,
                    failures: (samples.len() - ok.len()) as u64,
                    median_ns,
                    errors: count_errors(samples.into_iter()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::self_test::args::parse_message_sizes;

    pub(crate) fn ep(rank: u32, tag: u32) -> EndpointId {
        EndpointId { rank, tag }
    }

    pub(crate) fn result(
        endpoints: Vec<EndpointId>,
        samples: Vec<Sample>,
        secs: f64,
    ) -> TupleResult {
        TupleResult {
            sizes: parse_message_sizes("b1048576 0").unwrap()[0],
            max_inflight: 16,
            repetitions: samples.len() as u32,
            duration: Duration::from_secs_f64(secs),
            master: None,
            endpoints,
            samples,
        }
    }

    fn ok(endpoint: usize, us: u64) -> Sample {
        Sample {
            endpoint,
            latency_ns: us * 1000,
            rc: 0,
        }
    }

    fn fail(endpoint: usize, rc: i32) -> Sample {
        Sample {
            endpoint,
            latency_ns: 999,
            rc,
        }
    }

    #[test]
    fn throughput_and_bandwidth_units() {
        let r = result(vec![ep(0, 0)], (0..1000).map(|_| ok(0, 10)).collect(), 0.5);
        assert_eq!(r.rpc_per_sec(), 2000.0);
        // 2000 RPC/s × 1 MiB = 2000 MB/s (2^20) = 2000 × 1048576 × 8 / 1e6 Mbit/s.
        assert!((r.bandwidth_mb_per_sec() - 2000.0).abs() < 1e-9);
        assert!((r.bandwidth_mbit_per_sec() - 16_777.216).abs() < 1e-6);
        let zero = result(vec![ep(0, 0)], vec![ok(0, 1)], 0.0);
        assert_eq!(zero.rpc_per_sec(), 0.0);
    }

    #[test]
    fn percentiles_use_daos_indices() {
        // 1..=8 µs shuffled: n = 8 → [0]=1, [2]=3, [4]=5, [6]=7, [7]=8.
        let lat = [5, 3, 8, 1, 7, 2, 6, 4];
        let r = result(vec![ep(0, 0)], lat.iter().map(|&u| ok(0, u)).collect(), 1.0);
        let l = r.latency().unwrap();
        assert_eq!(
            (l.min_ns, l.p25_ns, l.median_ns, l.p75_ns, l.max_ns),
            (1000, 3000, 5000, 7000, 8000)
        );
        assert_eq!(l.avg_ns, 4500);
        // Population σ of 1..=8 µs = sqrt(5.25) µs.
        assert!((l.stddev_ns - 5.25f64.sqrt() * 1000.0).abs() < 1e-6);
        // Single sample: every percentile is it, σ = 0.
        let one = result(vec![ep(0, 0)], vec![ok(0, 9)], 1.0)
            .latency()
            .unwrap();
        assert_eq!(
            (one.min_ns, one.median_ns, one.max_ns, one.avg_ns),
            (9000, 9000, 9000, 9000)
        );
        assert_eq!(one.stddev_ns, 0.0);
    }

    #[test]
    fn average_divides_by_all_repetitions_daos_quirk() {
        // Two successes of 10 µs and 20 µs, two failures: DAOS prints 30/4 = 7.5 µs, not 15.
        let r = result(
            vec![ep(0, 0)],
            vec![ok(0, 10), fail(0, -1011), ok(0, 20), fail(0, -1006)],
            1.0,
        );
        let l = r.latency().unwrap();
        assert_eq!(l.avg_ns, 7500);
        assert_eq!(l.median_ns, 20_000); // [n/2] of [10, 20]
                                         // σ around the quirky average over successes: sqrt(((10-7.5)² + (20-7.5)²)/2) µs.
        assert!(
            (l.stddev_ns - (((2.5f64 * 2.5) + (12.5 * 12.5)) / 2.0).sqrt() * 1000.0).abs() < 1e-6
        );
        assert_eq!(r.failures(), 2);
        assert_eq!(r.error_counts(), vec![(-1011, 1), (-1006, 1)]);
    }

    #[test]
    fn all_failed_tuple_has_no_latency_and_does_not_panic() {
        let r = result(
            vec![ep(0, 0), ep(1, 0)],
            vec![fail(0, -1011), fail(1, -1011)],
            1.0,
        );
        assert!(r.latency().is_none());
        assert_eq!(r.failures(), 2);
        let eps = r.endpoint_stats();
        assert!(eps.iter().all(|e| e.median_ns.is_none() && e.failures == 1));
        let empty = result(vec![ep(0, 0)], vec![], 1.0);
        assert!(empty.latency().is_none());
        assert_eq!(empty.endpoint_stats()[0].rpcs, 0);
    }

    #[test]
    fn endpoint_groups_are_sorted_merged_and_use_lower_median() {
        // Endpoint list with a duplicate (2:0 twice) as `1-3,2:0`-style lists produce.
        let eps = vec![ep(3, 0), ep(2, 0), ep(1, 0), ep(2, 0)];
        let samples = vec![
            ok(0, 30),
            ok(1, 21),
            ok(2, 10),
            ok(3, 22),
            ok(1, 23),
            ok(3, 24),
            fail(2, -1011),
            fail(2, -1011),
            fail(2, -1006),
            Sample {
                endpoint: 99,
                latency_ns: 1,
                rc: 0,
            }, // out-of-range index: totals only
        ];
        let r = result(eps, samples, 1.0);
        let s = r.endpoint_stats();
        assert_eq!(
            s.iter().map(|e| e.endpoint).collect::<Vec<_>>(),
            vec![ep(1, 0), ep(2, 0), ep(3, 0)]
        );
        // 2:0 merges both list positions: 21, 22, 23, 24 → lower median [1] = 22.
        assert_eq!(s[1].median_ns, Some(22_000));
        assert_eq!(s[1].rpcs, 4);
        assert_eq!(s[0].median_ns, Some(10_000));
        assert_eq!((s[0].rpcs, s[0].failures), (4, 3));
        assert_eq!(s[0].errors, vec![(-1011, 2), (-1006, 1)]);
        assert_eq!(s[2].median_ns, Some(30_000));
        assert!(s[2].errors.is_empty());
        assert_eq!(r.samples.len(), 10);
    }

    #[test]
    fn huge_latencies_do_not_overflow() {
        let r = result(
            vec![ep(0, 0)],
            vec![ok(0, u64::MAX / 1000), ok(0, u64::MAX / 1000)],
            1.0,
        );
        let l = r.latency().unwrap();
        assert_eq!(l.avg_ns, (u64::MAX / 1000) * 1000);
    }
}
