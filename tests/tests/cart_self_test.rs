//! `self_test` against real `cart_server`s: the JSON document has the issue's keys and sane figures,
//! the text report has DAOS's layout, master mode (-m) works, and an endpoint whose every RPC fails
//! is reported, not an assert.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::{bin_path, ChildGuard};

fn start_server(dir: &Path, rank: u32) -> ChildGuard {
    let mut cmd = Command::new(bin_path("cart_server"));
    cmd.args(["--group-name", "st", "--rank", &rank.to_string(), "--path"])
        .arg(dir)
        .env("D_PROVIDER", "ofi+tcp;ofi_rxm");
    let mut g = ChildGuard::spawn(
        &format!("cart_server {rank}"),
        cmd,
        &dir.join(format!("s{rank}.log")),
    )
    .unwrap();
    g.wait_for_line("cart_server ready", Duration::from_secs(30))
        .unwrap();
    g
}

fn self_test(dir: &Path, args: &[&str]) -> (String, String, bool) {
    let out = Command::new(bin_path("self_test"))
        .args(["-g", "st", "-p"])
        .arg(dir)
        .args(args)
        .env("D_PROVIDER", "ofi+tcp;ofi_rxm")
        .output()
        .expect("run self_test");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn json_report_against_two_servers() {
    let dir = tempfile::tempdir().unwrap();
    let _s: Vec<_> = (0..2).map(|r| start_server(dir.path(), r)).collect();
    let (out, err, ok) = self_test(
        dir.path(),
        &[
            "-e",
            "0-1:0",
            "-s",
            "0 0,i4096 i4096,b1048576 0,0 b1048576",
            "-r",
            "50",
            "-i",
            "4",
            "--json",
        ],
    );
    assert!(ok, "self_test failed: {err}");
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(v["group"], "st");
    assert_eq!(v["endpoints"].as_array().unwrap().len(), 2);
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 4);
    let types: Vec<(&str, &str)> = tests
        .iter()
        .map(|t| {
            (
                t["send_type"].as_str().unwrap(),
                t["reply_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("EMPTY", "EMPTY"),
            ("IOV", "IOV"),
            ("BULK_GET", "EMPTY"),
            ("EMPTY", "BULK_PUT")
        ]
    );
    for t in tests {
        assert_eq!(t["repetitions"], 100);
        assert_eq!(t["failures"], 0, "{t}");
        assert!(t["rpc_per_sec"].as_f64().unwrap() > 0.0);
        let l = &t["latency_us"];
        for k in ["min", "p25", "median", "p75", "max", "avg", "stddev"] {
            assert!(l[k].is_number(), "latency_us.{k} missing: {t}");
        }
        assert!(l["min"].as_f64().unwrap() <= l["median"].as_f64().unwrap());
        assert_eq!(t["endpoints"].as_array().unwrap().len(), 2);
    }
    assert!(tests[2]["bandwidth_mb_per_sec"].as_f64().unwrap() > 1.0);
}

#[test]
fn text_report_master_mode_and_dead_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let _s: Vec<_> = (0..2).map(|r| start_server(dir.path(), r)).collect();
    // Rank 1 runs the loop against rank 0 (many:many master mode).
    let (out, err, ok) = self_test(
        dir.path(),
        &[
            "-e", "0:0", "-m", "1:0", "-s", "i100", "-r", "40", "-i", "2",
        ],
    );
    assert!(ok, "self_test -m failed: {err}");
    assert!(out.contains("Self Test Parameters"), "{out}");
    assert!(out.contains("Master Endpoint 1:0"), "{out}");
    assert!(out.contains("RPC Throughput (RPCs/sec)"), "{out}");
    assert!(out.contains("RPC Failures: 0"), "{out}");
    // -a: client bulk buffers at addresses ending with 17, bulk both ways.
    let (out, err, ok) = self_test(
        dir.path(),
        &["-e", "0-1:0", "-s", "b4096 b4096", "-r", "20", "-a", "17"],
    );
    assert!(ok, "self_test -a failed: {err}");
    assert!(out.contains("Buffer addresses end with:  17"), "{out}");
    assert!(out.contains("(4096-BULK_GET 4096-BULK_PUT)"), "{out}");
    assert!(out.contains("RPC Failures: 0"), "{out}");
    // Rank 9 is not in the group: reported as failed, the run still completes.
    let (out, err, ok) = self_test(
        dir.path(),
        &[
            "-e",
            "0:0",
            "-e",
            "9:0",
            "-s",
            "0",
            "-r",
            "10",
            "--timeout",
            "5",
        ],
    );
    assert!(ok, "self_test with a dead endpoint must not crash: {err}");
    assert!(out.contains("9:0 - NA"), "{out}");
    assert!(out.contains("Failures: 10/10"), "{out}");
    assert!(out.contains("DER_OOG"), "{out}");
}
