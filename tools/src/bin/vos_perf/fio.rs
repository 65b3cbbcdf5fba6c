//! Runs `fio` on the same bdev path with the same size and queue depth (direct I/O, io_uring) and
//! extracts IOPS, bandwidth and completion-latency percentiles from its JSON output.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Default)]
pub struct FioResult {
    pub iops: f64,
    pub bytes_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cmd: String,
}

/// `rw` is fio's mode (write, read, randwrite, randread). `bs` is clamped to >= 4096: O_DIRECT
/// cannot do smaller blocks, so 64 B cases are anchored to 4 KiB fio I/O.
pub fn run(dir: &Path, rw: &str, bs: u64, total: u64, qd: usize) -> Result<FioResult, String> {
    let bs = bs.max(4096);
    let size = total.max(64 << 20).div_ceil(bs) * bs;
    let file = dir.join("fio.dat");
    let args = vec![
        "--name=vos_perf_anchor".to_string(),
        format!("--filename={}", file.display()),
        format!("--rw={rw}"),
        format!("--bs={bs}"),
        format!("--size={size}"),
        format!("--iodepth={qd}"),
        "--ioengine=io_uring".into(),
        "--direct=1".into(),
        "--output-format=json".into(),
    ];
    let out = Command::new("fio")
        .args(&args)
        .output()
        .map_err(|e| format!("cannot run fio: {e}"))?;
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        return Err(format!(
            "fio failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // fio may print warnings before the JSON document.
    let start = text.find('{').ok_or("fio printed no JSON")?;
    let v: serde_json::Value =
        serde_json::from_str(&text[start..]).map_err(|e| format!("fio JSON: {e}"))?;
    let dir_key = if rw.contains("read") { "read" } else { "write" };
    let j = &v["jobs"][0][dir_key];
    let pct = |p: &str| j["clat_ns"]["percentile"][p].as_f64().unwrap_or(0.0) / 1000.0;
    Ok(FioResult {
        iops: j["iops"].as_f64().unwrap_or(0.0),
        bytes_per_sec: j["bw_bytes"].as_f64().unwrap_or(0.0),
        p50_us: pct("50.000000"),
        p99_us: pct("99.000000"),
        cmd: format!("fio {}", args.join(" ")),
    })
}
