//! DAOS's `self_test` text report, byte for byte where DAOS's format is fixed
//! (`main` and `print_size_results`/`print_results` in `src/utils/self_test/self_test.c`), and the
//! JSON document of issue 3.
//!
//! Text numbers follow DAOS's C formats: bandwidth `%.2f`, throughput `%.0f`, latencies integer
//! microseconds truncated from nanoseconds, standard deviation `%.2f` µs. JSON carries the same
//! statistics unrounded (microseconds as floats with nanosecond resolution), so ratios computed from
//! it are not distorted by truncation; `bandwidth_mb_per_sec` is always MB = 2^20 bytes.
//!
//! Differences from DAOS, all on failure paths: DAOS stops after "All RPCs for this message size
//! failed" and, in older releases, asserted when one endpoint's RPCs all failed; we go on to print
//! the failure count and every endpoint (`NA` for those without a success). DAOS's per-error lines
//! pass a positive number to `d_errstr` and so always read `-DER_UNKNOWN`; ours carry the real name
//! (`3: -DER_TIMEDOUT (-1011)`).

use std::fmt::Write as _;

use daos_common::Der;
use serde_json::{json, Value};

use super::args::{EndpointId, SizePair};
use super::stats::{LatencyStats, TupleResult};

/// What the "Self Test Parameters" block and the JSON header describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Group tested.
    pub group: String,
    /// Target endpoints in test order (after `-q`), duplicates kept.
    pub endpoints: Vec<EndpointId>,
    /// Size tuples, in order.
    pub sizes: Vec<SizePair>,
    /// `-a`, if given.
    pub align: Option<u8>,
    /// Repetitions **per endpoint** (the `-r` value). The block prints the total
    /// ([`Params::total_repetitions`]), as DAOS does.
    pub repetitions: u32,
    /// In-flight limit, already clamped to the total (see [`Params::new`]).
    pub max_inflight: u32,
    /// `-b`: bandwidth in Mbit/s.
    pub mbits: bool,
}

impl Params {
    /// Builds the parameters, clamping `max_inflight` to the total number of RPCs as DAOS does.
    pub fn new(
        group: String,
        endpoints: Vec<EndpointId>,
        sizes: Vec<SizePair>,
        align: Option<u8>,
        repetitions: u32,
        max_inflight: u32,
        mbits: bool,
    ) -> Params {
        let mut p = Params {
            group,
            endpoints,
            sizes,
            align,
            repetitions,
            max_inflight,
            mbits,
        };
        let total = p.total_repetitions();
        if u64::from(p.max_inflight) > total {
            p.max_inflight = u32::try_from(total).unwrap_or(u32::MAX);
        }
        p
    }

    /// RPCs per tuple: repetitions per endpoint × number of endpoints.
    pub fn total_repetitions(&self) -> u64 {
        u64::from(self.repetitions) * self.endpoints.len() as u64
    }
}

/// DAOS's "Self Test Parameters" block, ending with a blank line.
pub fn render_params(p: &Params) -> String {
    let sizes: Vec<String> = p.sizes.iter().map(ToString::to_string).collect();
    let align = match p.align {
        None => "<Default>".to_owned(),
        Some(a) => a.to_string(),
    };
    format!(
        "Self Test Parameters:\n  Group name to test against: {}\n  # endpoints:                {}\n  \
         Message sizes:              [{}]\n  Buffer addresses end with:  {}\n  \
         Repetitions per size:       {}\n  Max in-flight RPCs:          {}\n\n",
        p.group,
        p.endpoints.len(),
        sizes.join(", "),
        align,
        p.total_repetitions(),
        p.max_inflight,
    )
}

/// The `#####` rule and "Results for message size ..." header of one tuple.
pub fn render_tuple_header(sizes: &SizePair, max_inflight: u32) -> String {
    format!(
        "##################################################\nResults for message size {sizes} (max_inflight_rpcs = {max_inflight}):\n\n"
    )
}

/// The master a result is reported under: its own id, or for the command line itself what DAOS
/// prints for it, the rank after the highest target rank, tag 0.
fn master_of(p: &Params, r: &TupleResult) -> EndpointId {
    r.master.unwrap_or_else(|| {
        let max = r
            .endpoints
            .iter()
            .chain(&p.endpoints)
            .map(|e| e.rank)
            .max()
            .unwrap_or(0);
        EndpointId {
            rank: max.saturating_add(1),
            tag: 0,
        }
    })
}

fn der_name(rc: i32) -> &'static str {
    Der::from_code(rc).map_or("DER_UNKNOWN", Der::name)
}

/// One master's block for one tuple (dash-underlined "Master Endpoint r:t", then the figures).
pub fn render_master(p: &Params, r: &TupleResult) -> String {
    let mut s = String::new();
    let title = format!("Master Endpoint {}", master_of(p, r));
    let _ = writeln!(s, "{title}\n{}", "-".repeat(title.len()));
    if p.mbits {
        let _ = writeln!(
            s,
            "\tRPC Bandwidth (Mbits/sec): {:.2}",
            r.bandwidth_mbit_per_sec()
        );
    } else {
        let _ = writeln!(
            s,
            "\tRPC Bandwidth (MB/sec): {:.2}",
            r.bandwidth_mb_per_sec()
        );
    }
    let _ = writeln!(s, "\tRPC Throughput (RPCs/sec): {:.0}", r.rpc_per_sec());
    match r.latency() {
        Some(LatencyStats {
            min_ns,
            p25_ns,
            median_ns,
            p75_ns,
            max_ns,
            avg_ns,
            stddev_ns,
        }) => {
            let _ = write!(
                s,
                "\tRPC Latencies (us):\n\t\tMin    : {}\n\t\t25th  %: {}\n\t\tMedian : {}\n\t\t75th  %: {}\n\
                 \t\tMax    : {}\n\t\tAverage: {}\n\t\tStd Dev: {:.2}\n",
                min_ns / 1000,
                p25_ns / 1000,
                median_ns / 1000,
                p75_ns / 1000,
                max_ns / 1000,
                avg_ns / 1000,
                stddev_ns / 1000.0
            );
        }
        None => s.push_str("\tAll RPCs for this message size failed\n"),
    }
    let _ = writeln!(s, "\tRPC Failures: {}\n", r.failures());
    s.push_str("\tEndpoint results (rank:tag - Median Latency (us)):\n");
    for e in r.endpoint_stats() {
        match e.median_ns {
            Some(m) => {
                let _ = writeln!(s, "\t\t{} - {}", e.endpoint, m / 1000);
            }
            None => {
                let _ = writeln!(s, "\t\t{} - NA", e.endpoint);
            }
        }
        if e.failures > 0 {
            let _ = writeln!(s, "\t\t\tFailures: {}/{}", e.failures, e.rpcs);
        }
        for (rc, n) in &e.errors {
            let _ = writeln!(s, "\t\t\t{n}: -{} ({rc})", der_name(*rc));
        }
    }
    s.push('\n');
    s
}

/// Header plus the block of one master: what DAOS prints for a tuple run from the command line.
pub fn render_tuple(p: &Params, r: &TupleResult) -> String {
    let mut s = render_tuple_header(&r.sizes, r.max_inflight);
    s.push_str(&render_master(p, r));
    s
}

/// Header once, then one block per master (many:many with `-m`); empty input gives "".
pub fn render_tuple_group(p: &Params, results: &[TupleResult]) -> String {
    let Some(first) = results.first() else {
        return String::new();
    };
    let mut s = render_tuple_header(&first.sizes, first.max_inflight);
    for r in results {
        s.push_str(&render_master(p, r));
    }
    s
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn endpoint_json(e: &EndpointId) -> Value {
    json!({ "rank": e.rank, "tag": e.tag })
}

fn test_json(r: &TupleResult) -> Value {
    let lat = r.latency();
    let field = |f: fn(&LatencyStats) -> f64| lat.as_ref().map(f);
    let endpoints: Vec<Value> = r
        .endpoint_stats()
        .iter()
        .map(|e| {
            json!({
                "rank": e.endpoint.rank,
                "tag": e.endpoint.tag,
                "median_us": e.median_ns.map(us),
                "failures": e.failures,
            })
        })
        .collect();
    json!({
        "send_type": r.sizes.send.ty.name(),
        "send_size": r.sizes.send.size,
        "reply_type": r.sizes.reply.ty.name(),
        "reply_size": r.sizes.reply.size,
        "max_inflight": r.max_inflight,
        "repetitions": r.repetitions,
        "rpc_per_sec": r.rpc_per_sec(),
        "bandwidth_mb_per_sec": r.bandwidth_mb_per_sec(),
        "latency_us": {
            "min": field(|l| us(l.min_ns)),
            "p25": field(|l| us(l.p25_ns)),
            "median": field(|l| us(l.median_ns)),
            "p75": field(|l| us(l.p75_ns)),
            "max": field(|l| us(l.max_ns)),
            "avg": field(|l| us(l.avg_ns)),
            "stddev": field(|l| l.stddev_ns / 1000.0),
        },
        "failures": r.failures(),
        "endpoints": endpoints,
    })
}

/// The `--json` document: `{"group","endpoints":[{"rank","tag"}…],"tests":[…]}`, one test entry
/// per result in the order given (per tuple, then per master with `-m`). Latency fields are `null`
/// when no RPC of the tuple succeeded; an endpoint's `median_us` is `null` when none of its did.
pub fn to_json(p: &Params, results: &[TupleResult]) -> Value {
    json!({
        "group": p.group,
        "endpoints": p.endpoints.iter().map(endpoint_json).collect::<Vec<_>>(),
        "tests": results.iter().map(test_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::self_test::args::{parse_endpoints, parse_message_sizes};
    use crate::self_test::stats::Sample;

    fn params(mbits: bool) -> Params {
        Params::new(
            "daos_server".into(),
            parse_endpoints(&["0-1:0".into()]).unwrap(),
            parse_message_sizes("0 0,0 b1048578,b1048578 0").unwrap(),
            None,
            2,
            16,
            mbits,
        )
    }

    fn tuple(p: &Params, samples: Vec<Sample>) -> TupleResult {
        TupleResult {
            sizes: p.sizes[2],
            max_inflight: p.max_inflight,
            repetitions: samples.len() as u32,
            duration: Duration::from_millis(500),
            master: None,
            endpoints: p.endpoints.clone(),
            samples,
        }
    }

    fn s(endpoint: usize, ns: u64, rc: i32) -> Sample {
        Sample {
            endpoint,
            latency_ns: ns,
            rc,
        }
    }

    #[test]
    fn params_block_matches_daos_layout() {
        let p = params(false);
        assert_eq!(p.max_inflight, 4, "clamped to 2 reps x 2 endpoints");
        let want = "Self Test Parameters:\n  Group name to test against: daos_server\n  # endpoints:                2\n  \
                    Message sizes:              [(0-EMPTY 0-EMPTY), (0-EMPTY 1048578-BULK_PUT), (1048578-BULK_GET 0-EMPTY)]\n  \
                    Buffer addresses end with:  <Default>\n  Repetitions per size:       4\n  \
                    Max in-flight RPCs:          4\n\n";
        assert_eq!(render_params(&p), want);
        let mut q = p.clone();
        q.align = Some(8);
        assert!(render_params(&q).contains("  Buffer addresses end with:  8\n"));
    }

    #[test]
    fn tuple_block_matches_daos_layout() {
        let p = params(false);
        let r = tuple(
            &p,
            vec![
                s(0, 10_500, 0),
                s(1, 20_900, 0),
                s(0, 11_000, 0),
                s(1, 30_000, 0),
            ],
        );
        // 4 RPCs in 0.5 s = 8 RPC/s × 1048578 B = 8.00 MB/s.
        let want = "##################################################\n\
                    Results for message size (1048578-BULK_GET 0-EMPTY) (max_inflight_rpcs = 4):\n\n\
                    Master Endpoint 2:0\n-------------------\n\
                    \tRPC Bandwidth (MB/sec): 8.00\n\
                    \tRPC Throughput (RPCs/sec): 8\n\
                    \tRPC Latencies (us):\n\
                    \t\tMin    : 10\n\t\t25th  %: 11\n\t\tMedian : 20\n\t\t75th  %: 30\n\
                    \t\tMax    : 30\n\t\tAverage: 18\n\t\tStd Dev: 8.03\n\
                    \tRPC Failures: 0\n\n\
                    \tEndpoint results (rank:tag - Median Latency (us)):\n\
                    \t\t0:0 - 10\n\t\t1:0 - 20\n\n";
        assert_eq!(render_tuple(&p, &r), want);
        let mut m = r.clone();
        m.master = Some(EndpointId { rank: 12, tag: 3 });
        let text = render_tuple_group(&p, &[r.clone(), m]);
        assert_eq!(text.matches("Results for message size").count(), 1);
        assert!(text.contains("Master Endpoint 12:3\n--------------------\n"));
        assert_eq!(render_tuple_group(&p, &[]), "");
    }

    #[test]
    fn mbits_unit() {
        let p = params(true);
        let r = tuple(
            &p,
            vec![s(0, 1000, 0), s(1, 1000, 0), s(0, 1000, 0), s(1, 1000, 0)],
        );
        // 8 RPC/s × 1048578 B × 8 / 1e6 = 67.108992 Mbit/s.
        assert!(render_tuple(&p, &r).contains("\tRPC Bandwidth (Mbits/sec): 67.11\n"));
    }

    #[test]
    fn failing_endpoint_is_reported_not_asserted() {
        let p = params(false);
        let r = tuple(
            &p,
            vec![
                s(0, 10_000, 0),
                s(1, 0, -1011),
                s(0, 12_000, 0),
                s(1, 0, -1006),
            ],
        );
        let text = render_tuple(&p, &r);
        assert!(text.contains("\tRPC Failures: 2\n"), "{text}");
        assert!(
            text.contains("\t\t1:0 - NA\n\t\t\tFailures: 2/2\n\t\t\t1: -DER_TIMEDOUT (-1011)\n\t\t\t1: -DER_UNREACH (-1006)\n"),
            "{text}"
        );
        // Everything failed: DAOS's line, then still the per-endpoint lines.
        let r = tuple(
            &p,
            vec![
                s(0, 0, -1011),
                s(1, 0, -1011),
                s(0, 0, -7777),
                s(1, 0, -1011),
            ],
        );
        let text = render_tuple(&p, &r);
        assert!(
            text.contains("\tAll RPCs for this message size failed\n\tRPC Failures: 4\n"),
            "{text}"
        );
        assert!(
            text.contains("\t\t0:0 - NA\n\t\t\tFailures: 2/2\n\t\t\t1: -DER_UNKNOWN (-7777)\n"),
            "{text}"
        );
        let j = to_json(&p, &[r]);
        assert!(j["tests"][0]["latency_us"]["median"].is_null());
        assert!(j["tests"][0]["endpoints"][0]["median_us"].is_null());
        assert_eq!(j["tests"][0]["failures"], 4);
    }

    #[test]
    fn json_has_exactly_the_issue_keys() {
        let p = params(false);
        let r = tuple(
            &p,
            vec![
                s(0, 10_500, 0),
                s(1, 20_900, 0),
                s(0, 11_000, 0),
                s(1, 30_000, -1011),
            ],
        );
        let j = to_json(&p, &[r]);
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&j), ["endpoints", "group", "tests"]);
        assert_eq!(j["group"], "daos_server");
        assert_eq!(
            j["endpoints"],
            json!([{"rank": 0, "tag": 0}, {"rank": 1, "tag": 0}])
        );
        let t = &j["tests"][0];
        let mut want = vec![
            "send_type",
            "send_size",
            "reply_type",
            "reply_size",
            "max_inflight",
            "repetitions",
            "rpc_per_sec",
            "bandwidth_mb_per_sec",
            "latency_us",
            "failures",
            "endpoints",
        ];
        want.sort();
        assert_eq!(keys(t), want);
        assert_eq!(
            keys(&t["latency_us"]),
            ["avg", "max", "median", "min", "p25", "p75", "stddev"]
        );
        assert_eq!(
            keys(&t["endpoints"][0]),
            ["failures", "median_us", "rank", "tag"]
        );
        assert_eq!(t["send_type"], "BULK_GET");
        assert_eq!(t["send_size"], 1048578);
        assert_eq!(t["reply_type"], "EMPTY");
        assert_eq!(t["repetitions"], 4);
        assert_eq!(t["rpc_per_sec"], 8.0);
        assert_eq!(t["failures"], 1);
        // Unrounded microseconds, DAOS's [n/2] median of {10.5, 11.0, 20.9} = 11.0.
        assert_eq!(t["latency_us"]["median"], 11.0);
        assert_eq!(t["latency_us"]["min"], 10.5);
        assert_eq!(t["endpoints"][1]["median_us"], 20.9);
        assert_eq!(t["endpoints"][1]["failures"], 1);
    }
}
