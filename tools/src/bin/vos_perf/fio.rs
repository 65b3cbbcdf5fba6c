//! Runs `fio` on the same bdev path with the same size and queue depth (direct I/O, io_uring) and
//! extracts IOPS, bandwidth and completion-latency percentiles from its JSON output.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Default)]
pub struct FioResult {
    /// Bytes and I/Os done (fio's `io_bytes`, `total_ios`).
    pub io_bytes: f64,
    pub ios: f64,
    pub iops: f64,
    pub bytes_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cmd: String,
}

/// fio's block size for a value size: O_DIRECT cannot do smaller blocks than 4 KiB, so 64 B
/// cases are anchored to 4 KiB fio I/O.
pub fn block_size(size: u64) -> u64 {
    size.max(4096)
}

/// The fio file's length for `total` bytes of vos values split into `slices` regions: at least
/// 64 MiB, each region a whole number of blocks.
pub fn file_len(size: u64, total: u64, slices: u64) -> u64 {
    let bs = block_size(size);
    let slices = slices.max(1);
    (total.max(64 << 20).div_ceil(bs * slices) * bs) * slices
}

/// The anchor's file in `dir`.
pub fn file(dir: &Path) -> std::path::PathBuf {
    dir.join("fio.dat")
}

/// Writes the whole fio file (untimed), so read slices find data where they read.
pub fn layout(dir: &Path, len: u64) -> Result<(), String> {
    run(dir, "write", 1 << 20, 0, len, 16, None).map(|_| ())
}

/// Runs fio once over `[offset, offset + len)` of the anchor file in `dir`. `rw` is fio's mode
/// (write, read, randwrite, randread), `bs` the block size (see [`block_size`]); `fdatasync` =
/// Some(n): an fdatasync after every n writes (fio's `--fdatasync`).
pub fn run(
    dir: &Path,
    rw: &str,
    bs: u64,
    offset: u64,
    len: u64,
    qd: usize,
    fdatasync: Option<usize>,
) -> Result<FioResult, String> {
    let file = file(dir);
    let mut args = vec![
        "--name=vos_perf_anchor".to_string(),
        format!("--filename={}", file.display()),
        format!("--rw={rw}"),
        format!("--bs={bs}"),
        format!("--offset={offset}"),
        format!("--size={len}"),
        format!("--iodepth={qd}"),
        "--ioengine=io_uring".into(),
        "--direct=1".into(),
        "--output-format=json".into(),
    ];
    if let Some(n) = fdatasync {
        args.push(format!("--fdatasync={n}"));
    }
    let out = Command::new("fio")
        .args(&args)
        .output()
        .map_err(|e| format!("cannot run fio: {e}"))?;
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
        io_bytes: j["io_bytes"].as_f64().unwrap_or(0.0),
        ios: j["total_ios"].as_f64().unwrap_or(0.0),
        iops: j["iops"].as_f64().unwrap_or(0.0),
        bytes_per_sec: j["bw_bytes"].as_f64().unwrap_or(0.0),
        p50_us: pct("50.000000"),
        p99_us: pct("99.000000"),
        cmd: format!("fio {}", args.join(" ")),
    })
}

/// One result for several runs over the slices of a case: bandwidth and IOPS over their summed
/// run time (each run's time is its bytes over its bandwidth), latency percentiles as the
/// median of the runs'.
pub fn combine(parts: &[FioResult]) -> Option<FioResult> {
    let first = parts.first()?;
    let secs: f64 = parts
        .iter()
        .map(|p| {
            if p.bytes_per_sec > 0.0 {
                p.io_bytes / p.bytes_per_sec
            } else {
                0.0
            }
        })
        .sum();
    let bytes: f64 = parts.iter().map(|p| p.io_bytes).sum();
    let ios: f64 = parts.iter().map(|p| p.ios).sum();
    let med = |f: fn(&FioResult) -> f64| {
        let mut v: Vec<f64> = parts.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
    Some(FioResult {
        io_bytes: bytes,
        ios,
        iops: rate(ios),
        bytes_per_sec: rate(bytes),
        p50_us: med(|p| p.p50_us),
        p99_us: med(|p| p.p99_us),
        cmd: first.cmd.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(bytes: f64, bw: f64, p50: f64) -> FioResult {
        FioResult {
            io_bytes: bytes,
            ios: bytes / 4096.0,
            iops: bw / 4096.0,
            bytes_per_sec: bw,
            p50_us: p50,
            p99_us: 2.0 * p50,
            cmd: "fio".into(),
        }
    }

    #[test]
    fn combined_bandwidth_is_bytes_over_summed_time() {
        // 100 MB at 100 MB/s (1 s) and 100 MB at 50 MB/s (2 s): 200 MB in 3 s, not the mean 75.
        let c = combine(&[part(1e8, 1e8, 10.0), part(1e8, 5e7, 30.0)]).unwrap();
        assert!(
            (c.bytes_per_sec - 2e8 / 3.0).abs() < 1.0,
            "{}",
            c.bytes_per_sec
        );
        assert!((c.iops - 2e8 / 3.0 / 4096.0).abs() < 1e-6);
        assert_eq!(c.p50_us, 30.0);
        assert!(combine(&[]).is_none());
    }

    #[test]
    fn file_is_whole_blocks_per_slice_and_at_least_64_mib() {
        assert_eq!(file_len(64, 64 * 10, 4), 64 << 20);
        let l = file_len(1 << 20, 1000 << 20, 3);
        assert_eq!(l % (3 << 20), 0);
        assert!(l >= 1000 << 20);
        assert_eq!(file_len(4096, 5 * 4096, 1), 64 << 20);
    }
}
