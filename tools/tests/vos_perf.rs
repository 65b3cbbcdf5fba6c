//! `vos_perf --json` end to end, fio beside it: the keys the issue names, fetch interleaved with
//! fio in slices, and nothing left behind on the bdev path.

use std::process::Command;

#[test]
fn json_report_has_the_contract_keys_and_cleans_up() {
    if Command::new("fio").arg("--version").output().is_err() {
        panic!("fio is not installed (scripts/install_deps.sh installs it)");
    }
    // ext4, not tmpfs: fio and vos open their files with O_DIRECT.
    let scm = tempfile::tempdir_in("/var/tmp").unwrap();
    let bdev = tempfile::tempdir_in("/var/tmp").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vos_perf"))
        .args(["--scm", scm.path().to_str().unwrap()])
        .args(["--bdev", bdev.path().to_str().unwrap()])
        .args(["--objects", "64", "--size", "4k", "--type", "single"])
        .args(["--ops", "update,fetch", "--rounds", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vos_perf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for (c, op) in cases.iter().zip(["update", "fetch"]) {
        assert_eq!(c["op"], op);
        assert_eq!(c["size"], 4096);
        assert_eq!(c["type"], "single");
        for k in [
            "ops_per_sec",
            "mb_per_sec",
            "fio_iops",
            "fio_mb_per_sec",
            "ratio",
        ] {
            let x = c[k].as_f64().unwrap_or_else(|| panic!("{op}: {k} missing"));
            assert!(x > 0.0, "{op}: {k} = {x}");
        }
        for k in ["p50", "p99"] {
            assert!(c["latency_us"][k].as_f64().unwrap() > 0.0, "{op}: {k}");
        }
        // Update cases also carry fio with an fdatasync every queue-depth writes.
        if op == "update" {
            assert_eq!(c["fio_durable"]["fdatasync_every"], 16);
            for k in ["iops", "mb_per_sec", "ratio"] {
                assert!(
                    c["fio_durable"][k].as_f64().unwrap() > 0.0,
                    "fio_durable.{k}"
                );
            }
        } else {
            assert!(c["fio_durable"].is_null(), "{op}: {}", c["fio_durable"]);
        }
        let rounds = c["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 2);
        // Fetch alternates with fio in 4 slices by default, update runs whole.
        let slices = if op == "fetch" { 4 } else { 1 };
        assert!(
            rounds.iter().all(|r| r["slices"] == slices),
            "{op}: {rounds:?}"
        );
    }
    // fio's file and the pool are gone.
    let left: Vec<_> = std::fs::read_dir(bdev.path()).unwrap().collect();
    assert!(left.is_empty(), "left on the bdev path: {left:?}");
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let scm = tempfile::tempdir_in("/var/tmp").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vos_perf"))
        .args(["--scm", scm.path().to_str().unwrap()])
        .args(["--bdev", scm.path().to_str().unwrap()])
        .args(["--ops", "scan", "--no-fio"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ops takes update and/or fetch"), "{err}");
}
