//! vos_perf: like DAOS's `vos_perf`, drives one target's vos pool directly (no network) and puts
//! `fio` on the same bdev path, same size and queue depth, beside it in the same run.
//!
//! ```text
//! vos_perf --scm /dev/shm/x --bdev /var/tmp/x --objects 1000 --dkeys 1 --akeys 1 --size 4k \
//!          --type single --ops update,fetch --queue-depth 16 [--json]
//! vos_perf --scm /dev/shm/x --bdev /var/tmp/x --recovery 1000000 [--checkpoint] [--json]
//! PMEM_IS_PMEM_FORCE=1 vos_perf --scm-class dcpm --scm /dev/shm/x --bdev /var/tmp/x ...
//! ```
//! `--scm-class dcpm` puts the WAL in a libpmem-mapped file on the scm path; it needs the tools
//! feature `pmem` (forwarding to `vos/pmem`): `cargo build --release -p tools --features pmem`.

mod fio;

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use daos_common::ids::Uuid;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use vos::{
    AlignedBuf, FetchIod, Fetched, IoBuf, IodValue, Oid, PoolConfig, Recx, ScmClass, UpdateIod,
    VosPool,
};

#[derive(Parser, Debug)]
#[command(about = "vos benchmark with a fio anchor on the same bdev path")]
struct Args {
    /// scm tier path (class ram: a tmpfs directory; metadata is held in DRAM; class dcpm: a
    /// pmem (DAX) directory holding the WAL, or tmpfs with PMEM_IS_PMEM_FORCE=1).
    #[arg(long)]
    scm: PathBuf,
    /// scm tier class: ram, or dcpm (needs a build with `--features pmem`).
    #[arg(long, default_value = "ram", value_parser = parse_scm_class)]
    scm_class: ScmClass,
    /// bdev tier path (class file: a directory; WAL, data file and checkpoints go here).
    #[arg(long)]
    bdev: PathBuf,
    #[arg(long, default_value_t = 1000)]
    objects: u64,
    #[arg(long, default_value_t = 1)]
    dkeys: u64,
    #[arg(long, default_value_t = 1)]
    akeys: u64,
    /// Value size: bytes, or with k/m suffix (64, 4k, 1m).
    #[arg(long, default_value = "4k")]
    size: String,
    /// single or array (array: 1-byte records, one extent covering the value).
    #[arg(long = "type", default_value = "single")]
    kind: String,
    /// Comma-separated: update, fetch.
    #[arg(long, default_value = "update,fetch")]
    ops: String,
    #[arg(long, default_value_t = 16)]
    queue_depth: usize,
    /// Values larger than this go to the data file (default 4096).
    #[arg(long, default_value_t = 4096)]
    inline_threshold: usize,
    /// WAL writer threads (batches in flight); 1 = serial group commit (the default).
    #[arg(long, default_value_t = 1)]
    flushers: usize,
    /// Group-commit wait in µs (PoolConfig::commit_wait_us; 0 = off).
    #[arg(long, default_value_t = vos::PoolConfig::new("", "").commit_wait_us)]
    commit_wait_us: u64,
    /// WAL durability: dsync (RWF_DSYNC writes) or fdatasync (write, then fdatasync).
    #[arg(long, default_value = "fdatasync")]
    wal_sync: String,
    /// Leave the data file sparse instead of pre-zeroing it at create.
    #[arg(long)]
    sparse: bool,
    /// Skip the fio anchor.
    #[arg(long)]
    no_fio: bool,
    /// Give every update its own copy of the value as a `Vec` (vos copies it into an aligned
    /// buffer). By default all updates share one aligned buffer, written without a copy, as
    /// DAOS's vos_perf reuses one buffer and an engine writes from its bulk buffers.
    #[arg(long)]
    copy_values: bool,
    /// Repeat every case this many times on a fresh pool, fio beside vos each time (fio first
    /// in every other round); a case reports medians and the median of the per-round ratios.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Within a round, vos and fio alternate over this many slices of the work (each does 1/N of
    /// it per turn), so both see the disk at nearly the same moments. Default: 4 for fetch, 1 for
    /// update (each slice restarts vos's group-commit pipeline: 1 MiB updates ran 2018-2054 MB/s
    /// in 4 slices against 2336-2540 MB/s whole, fio unchanged).
    #[arg(long)]
    slices: Option<u64>,
    /// Recovery mode: write N objects (one 64 B value each), close, reopen, print recovery_s.
    #[arg(long)]
    recovery: Option<u64>,
    /// In recovery mode, write a checkpoint before closing (recovery then loads it instead of
    /// replaying the whole WAL).
    #[arg(long)]
    checkpoint: bool,
    #[arg(long)]
    json: bool,
}

fn parse_scm_class(s: &str) -> Result<ScmClass, String> {
    let c: ScmClass = s.parse().map_err(|e: vos::VosError| e.to_string())?;
    if c == ScmClass::Dcpm && !cfg!(feature = "pmem") {
        return Err(
            "scm class dcpm needs vos_perf built with `--features pmem` \
                    (cargo build --release -p tools --features pmem --bin vos_perf)"
                .into(),
        );
    }
    Ok(c)
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1024),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        _ => (&s[..], 1),
    };
    num.parse::<u64>()
        .map(|n| n * mul)
        .map_err(|_| format!("bad size {s:?} (expected e.g. 64, 4k, 1m)"))
}

fn bar(len: u64, hidden: bool, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if hidden || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} {per_sec}")
            .expect("template"),
    );
    pb.set_message(msg.to_string());
    pb
}

struct CaseResult {
    ops: u64,
    secs: f64,
    lat_us: Vec<f64>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Runs `op(i)` for every `i` in `range`, keeping `qd` in flight on a current-thread runtime;
/// returns per-op latencies. Like a DAOS target's xstream, the same thread drives `pool`'s group
/// commit ([`VosPool::progress`]) whenever its tasks are all waiting.
fn drive<F, Fut>(
    pool: &Arc<VosPool>,
    range: std::ops::Range<u64>,
    qd: usize,
    pb: &ProgressBar,
    op: F,
) -> Result<CaseResult, String>
where
    F: Fn(u64) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + 'static,
{
    // No I/O or timer driver: completions come from vos threads, and with an I/O driver every
    // wake-up is an eventfd write (16-64 per acknowledged batch).
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let total = range.end;
    let next = Arc::new(AtomicU64::new(range.start));
    let t0 = Instant::now();
    let lats = rt.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut hs = Vec::new();
                // `pool`'s group commit is driven from here once every task waits on an
                // update (the moment this thread would otherwise sleep).
                let done = Rc::new(Cell::new(false));
                let waiting = Rc::new(Cell::new(0usize));
                let running = Rc::new(Cell::new(qd));
                let idle = Rc::new(tokio::sync::Notify::new());
                let (p, d, n) = (pool.clone(), done.clone(), idle.clone());
                let driver = tokio::task::spawn_local(async move {
                    loop {
                        n.notified().await;
                        if d.get() {
                            return;
                        }
                        p.progress();
                    }
                });
                for _ in 0..qd {
                    let (next, op, pb) = (next.clone(), op.clone(), pb.clone());
                    let (waiting, running, idle) = (waiting.clone(), running.clone(), idle.clone());
                    hs.push(tokio::task::spawn_local(async move {
                        let mut lat = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= total {
                                running.set(running.get() - 1);
                                if waiting.get() == running.get() {
                                    idle.notify_one();
                                }
                                return Ok::<_, String>(lat);
                            }
                            let t = Instant::now();
                            let f = op(i); // submits
                            waiting.set(waiting.get() + 1);
                            if waiting.get() == running.get() {
                                idle.notify_one();
                            }
                            let r = f.await;
                            waiting.set(waiting.get() - 1);
                            r?;
                            lat.push(t.elapsed().as_secs_f64() * 1e6);
                            pb.inc(1);
                        }
                    }));
                }
                let mut all = Vec::new();
                for h in hs {
                    all.extend(h.await.map_err(|e| e.to_string())??);
                }
                done.set(true);
                idle.notify_one();
                driver.await.map_err(|e| e.to_string())?;
                Ok::<_, String>(all)
            })
            .await
    })?;
    Ok(CaseResult {
        ops: range.end - range.start,
        secs: t0.elapsed().as_secs_f64(),
        lat_us: lats,
    })
}

fn key(i: u64, dkeys: u64, akeys: u64) -> (Oid, Vec<u8>, Vec<u8>) {
    let a = i % akeys;
    let d = (i / akeys) % dkeys;
    let o = i / (akeys * dkeys);
    (
        Oid::new(0, o),
        format!("dkey{d}").into_bytes(),
        format!("akey{a}").into_bytes(),
    )
}

fn pool_config(args: &Args, dir: &std::path::Path, data_size: u64) -> PoolConfig {
    let mut cfg = PoolConfig::new(args.scm.join("vos_perf_scm"), dir);
    cfg.scm_class = args.scm_class;
    cfg.data_size = data_size;
    cfg.inline_threshold = args.inline_threshold;
    cfg.preallocate_data = !args.sparse;
    cfg.flushers = args.flushers;
    cfg.commit_wait_us = args.commit_wait_us;
    cfg
}

fn fresh_dir(args: &Args) -> Result<PathBuf, String> {
    let dir = args.bdev.join("vos_perf_pool");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(dir)
}

fn recovery(args: &Args, n: u64) -> Result<serde_json::Value, String> {
    let dir = fresh_dir(args)?;
    let mut cfg = pool_config(args, &dir, 64 << 20);
    cfg.wal_checkpoint_bytes = u64::MAX; // one WAL, unless --checkpoint
    let pool = Arc::new(VosPool::create(&cfg).map_err(|e| e.to_string())?);
    let cont = Uuid::from_u128(1);
    pool.cont_create(cont).wait().map_err(|e| e.to_string())?;
    let pb = bar(n, args.json, "write");
    let p2 = pool.clone();
    let w = drive(&pool, 0..n, args.queue_depth.max(64), &pb, move |i| {
        let f = p2.update(
            cont,
            Oid::new(0, i),
            1,
            0,
            b"d",
            vec![UpdateIod {
                akey: b"a".to_vec(),
                value: IodValue::Single(vec![i as u8; 64].into()),
                flags: 0,
            }],
        );
        async move { f.await.map_err(|e| e.to_string()) }
    })?;
    pb.finish_and_clear();
    let mut stall = json!(null);
    if args.checkpoint {
        stall = checkpoint_stall(&pool, cont, n)?;
    }
    let pool = Arc::try_unwrap(pool).map_err(|_| "pool still shared".to_string())?;
    pool.close().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let pool = VosPool::open(&cfg).map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    let st = pool.recovery_stats();
    let probe = pool
        .fetch(
            cont,
            Oid::new(0, n - 1),
            1,
            0,
            b"d",
            &[FetchIod::Single {
                akey: b"a".to_vec(),
            }],
        )
        .wait();
    if probe.map_err(|e| e.to_string())? != vec![Fetched::Single(Some(vec![(n - 1) as u8; 64]))] {
        return Err("last object not recovered".into());
    }
    pool.close().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(args.scm.join("vos_perf_scm"));
    Ok(json!({
        "objects": n,
        "recovery_s": secs,
        "from_checkpoint": args.checkpoint,
        "checkpoint_stall": stall,
        "ckpt_bytes": st.ckpt_bytes,
        "wal_batches": st.wal_batches,
        "wal_records": st.wal_records,
        "write_ops_per_sec": n as f64 / w.secs,
    }))
}

/// Writes a checkpoint while two probe threads run (one fetching an in-memory value, one
/// updating, each one at a time) and reports the longest each waited: what a checkpoint costs
/// foreground work (fetch: the pool lock; update: lock + WAL flushes paused for the checkpoint).
fn checkpoint_stall(pool: &Arc<VosPool>, cont: Uuid, n: u64) -> Result<serde_json::Value, String> {
    use std::sync::atomic::AtomicBool;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = |update: bool| {
        let (pool, stop) = (pool.clone(), stop.clone());
        std::thread::spawn(move || -> Result<(u64, Duration), String> {
            let (mut count, mut max) = (0u64, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if update {
                    let iod = UpdateIod {
                        akey: b"probe".to_vec(),
                        value: IodValue::Single(count.to_le_bytes().to_vec().into()),
                        flags: 0,
                    };
                    pool.update(cont, Oid::new(1, count % 1000), 2, 0, b"d", vec![iod])
                        .wait()
                        .map_err(|e| e.to_string())?;
                } else {
                    let iod = FetchIod::Single {
                        akey: b"a".to_vec(),
                    };
                    pool.fetch(cont, Oid::new(0, count % n), 1, 0, b"d", &[iod])
                        .wait()
                        .map_err(|e| e.to_string())?;
                }
                max = max.max(t.elapsed());
                count += 1;
            }
            Ok((count, max))
        })
    };
    let (f, u) = (probe(false), probe(true));
    std::thread::sleep(Duration::from_millis(200)); // probes running before the checkpoint
    let t0 = Instant::now();
    let r = pool.checkpoint().wait().map_err(|e| e.to_string());
    let ckpt_s = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (fc, fmax) = f.join().map_err(|_| "fetch probe panicked")??;
    let (uc, umax) = u.join().map_err(|_| "update probe panicked")??;
    r?;
    let st = pool.last_checkpoint();
    Ok(json!({
        "checkpoint_s": ckpt_s,
        "snapshot_ms": st.snapshot.as_secs_f64() * 1e3,
        "encode_ms": st.encode.as_secs_f64() * 1e3,
        "tail_records": st.tail_records,
        "fetch_probe_max_ms": fmax.as_secs_f64() * 1e3,
        "fetch_probe_ops": fc,
        "update_probe_max_ms": umax.as_secs_f64() * 1e3,
        "update_probe_ops": uc,
    }))
}

fn run(args: Args) -> Result<(), String> {
    match args.wal_sync.as_str() {
        "dsync" => vos::WAL_DSYNC.store(true, std::sync::atomic::Ordering::Relaxed),
        "fdatasync" => vos::WAL_DSYNC.store(false, std::sync::atomic::Ordering::Relaxed),
        other => {
            return Err(format!(
                "--wal-sync takes dsync or fdatasync, not {other:?}"
            ))
        }
    }
    if let Some(n) = args.recovery {
        let r = recovery(&args, n.max(1))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&r).expect("json"));
        } else {
            println!(
                "recovery of {} objects: {:.3} s ({} WAL records in {} batches, checkpoint {} bytes)",
                r["objects"], r["recovery_s"].as_f64().unwrap_or(0.0), r["wal_records"], r["wal_batches"], r["ckpt_bytes"]
            );
            if !r["checkpoint_stall"].is_null() {
                println!("checkpoint stall: {}", r["checkpoint_stall"]);
            }
        }
        return Ok(());
    }
    let size = parse_size(&args.size)?;
    let array = match args.kind.as_str() {
        "single" => false,
        "array" => true,
        k => return Err(format!("--type must be single or array, not {k:?}")),
    };
    let total = args.objects * args.dkeys * args.akeys;
    if total == 0 || size == 0 {
        return Err("objects, dkeys, akeys and size must be > 0".into());
    }
    let ops: Vec<String> = args.ops.split(',').map(|s| s.trim().to_string()).collect();
    for o in &ops {
        if o != "update" && o != "fetch" {
            return Err(format!("--ops takes update and/or fetch, not {o:?}"));
        }
    }
    let (dk, ak) = (args.dkeys, args.akeys);
    let bytes: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
    let payload = Arc::new(Payload {
        copy: args.copy_values,
        buf: IoBuf::aligned(Arc::new(AlignedBuf::from_slice(&bytes)), bytes.len())
            .map_err(|e| e.to_string())?,
    });
    let rounds = args.rounds.max(1);
    let mut measured: Vec<Vec<Measured>> = ops.iter().map(|_| Vec::new()).collect();
    let mut space = None;
    let slices_of = |op: &str| {
        args.slices
            .unwrap_or(if op == "fetch" { 4 } else { 1 })
            .clamp(1, total)
    };
    let bs = fio::block_size(size);
    // One file for every op's slicing (fetch's 4 regions fit whole blocks of it).
    let fio_len = fio::file_len(size, total * size, 4 * args.slices.unwrap_or(1));
    for round in 0..rounds {
        // A fresh pool per round (an update round fills the data file). Within a round, vos and
        // fio alternate over `slices` slices of the work (vos does values [k·N/S, (k+1)·N/S),
        // fio the k-th region of its file), and which of the two runs first alternates too:
        // this VM's disk changes speed from one second to the next (fio alone: 1.5 to 3 GB/s
        // for 1 MiB reads within minutes), so only runs close in time compare.
        let dir = fresh_dir(&args)?;
        let data_size = (total * vos::uring::align_up(size).max(4096) * 5 / 4).max(64 << 20);
        let cfg = pool_config(&args, &dir, data_size);
        let pool = Arc::new(VosPool::create(&cfg).map_err(|e| e.to_string())?);
        let cont = Uuid::from_u128(1);
        pool.cont_create(cont).wait().map_err(|e| e.to_string())?;
        if !args.no_fio {
            // fio lays its file out before its first job anyway; doing it here keeps that write
            // out of the slices (vos's data file is likewise written at create).
            fio::layout(&args.bdev, fio_len)?;
        }
        let mut did_update = false;
        for (k, op) in ops.iter().enumerate() {
            if op == "fetch" && !did_update {
                // Fetch needs data: populate without timing it.
                let p = pool.clone();
                let payload = payload.clone();
                drive(
                    &pool,
                    0..total,
                    args.queue_depth,
                    &bar(total, true, ""),
                    move |i| {
                        let (o, d, a) = key(i, dk, ak);
                        let f = p.update(cont, o, 1, 0, &d, vec![iod(a, array, &payload)]);
                        async move { f.await.map_err(|e| e.to_string()) }
                    },
                )?;
                did_update = true;
            }
            let fio_rw = match (op.as_str(), size >= 1 << 20) {
                ("update", true) => "write",
                ("update", false) => "randwrite",
                (_, true) => "read",
                (_, false) => "randread",
            };
            let msg = format!("{op} {}/{rounds}", round + 1);
            let pb = bar(total, args.json, &msg);
            let mut vos_res = CaseResult {
                ops: 0,
                secs: 0.0,
                lat_us: Vec::new(),
            };
            let mut fio_parts = Vec::new();
            let slices = slices_of(op);
            for sl in 0..slices {
                let range = total * sl / slices..total * (sl + 1) / slices;
                let fio_first = (round as u64 + sl) % 2 == 1;
                let region = fio_len / slices / bs * bs;
                let run_fio = |parts: &mut Vec<fio::FioResult>| -> Result<(), String> {
                    if !args.no_fio {
                        let f = fio::run(
                            &args.bdev,
                            fio_rw,
                            bs,
                            sl * region,
                            region,
                            args.queue_depth,
                            None,
                        )?;
                        parts.push(f);
                    }
                    Ok(())
                };
                if fio_first {
                    run_fio(&mut fio_parts)?;
                }
                let p = pool.clone();
                let res = if op == "update" {
                    did_update = true;
                    let payload = payload.clone();
                    drive(&pool, range, args.queue_depth, &pb, move |i| {
                        let (o, d, a) = key(i, dk, ak);
                        let f = p.update(cont, o, 1, 0, &d, vec![iod(a, array, &payload)]);
                        async move { f.await.map_err(|e| e.to_string()) }
                    })?
                } else {
                    drive(&pool, range, args.queue_depth, &pb, move |i| {
                        let (o, d, a) = key(i, dk, ak);
                        let fi = if array {
                            FetchIod::Array {
                                akey: a,
                                rsize: 1,
                                recxs: vec![Recx::new(0, size)],
                            }
                        } else {
                            FetchIod::Single { akey: a }
                        };
                        let f = p.fetch(cont, o, 1, 0, &d, &[fi]);
                        async move {
                            let v = f.await.map_err(|e| e.to_string())?;
                            let n = match &v[0] {
                                Fetched::Single(Some(b)) => b.len() as u64,
                                Fetched::Array { data, holes } if holes.is_empty() => {
                                    data.len() as u64
                                }
                                other => return Err(format!("fetch returned {other:?}")),
                            };
                            if n != size {
                                return Err(format!("fetch returned {n} bytes, expected {size}"));
                            }
                            Ok(())
                        }
                    })?
                };
                vos_res.ops += res.ops;
                vos_res.secs += res.secs;
                vos_res.lat_us.extend(res.lat_us);
                if !fio_first {
                    run_fio(&mut fio_parts)?;
                }
            }
            pb.finish_and_clear();
            // Information beside the contract's anchor: fio's writes are not durable, vos's
            // updates are; the same fio run with an fdatasync after every queue-depth writes
            // (one flush per full group commit) shows what the disk does durably.
            let fio_durable = if op == "update" && !args.no_fio {
                let region = fio_len / slices / bs * bs;
                Some(fio::run(
                    &args.bdev,
                    fio_rw,
                    bs,
                    0,
                    region,
                    args.queue_depth,
                    Some(args.queue_depth),
                )?)
            } else {
                None
            };
            measured[k].push(Measured {
                fio_rw,
                ops_per_sec: vos_res.ops as f64 / vos_res.secs,
                ops: vos_res.ops,
                lat_us: vos_res.lat_us,
                fio: fio::combine(&fio_parts),
                fio_durable,
                slices,
            });
        }
        if !args.no_fio {
            let _ = std::fs::remove_file(fio::file(&args.bdev));
        }
        space = Some(pool.space());
        let pool = Arc::try_unwrap(pool).map_err(|_| "pool still shared".to_string())?;
        pool.close().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(args.scm.join("vos_perf_scm"));
    }
    let cases: Vec<serde_json::Value> = ops
        .iter()
        .zip(measured)
        .map(|(op, m)| case_json(op, size, &args, m))
        .collect();
    let out = json!({
        "config": {"objects": args.objects, "dkeys": args.dkeys, "akeys": args.akeys, "size": size,
                   "type": args.kind, "queue_depth": args.queue_depth, "scm": args.scm, "scm_class": format!("{:?}", args.scm_class).to_lowercase(), "bdev": args.bdev,
                   "inline_threshold": args.inline_threshold, "flushers": args.flushers, "wal_sync": args.wal_sync, "copy_values": args.copy_values,
                   "rounds": rounds, "slices": args.slices.map_or_else(|| json!({"update": 1, "fetch": 4}), |n| json!(n))},
        "space": space,
        "cases": cases,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else {
        for c in out["cases"].as_array().expect("cases") {
            println!(
                "{:>6} {:>8} B {:<6} qd {:>3}: {:>10.0} ops/s {:>9.1} MB/s  p50 {:>8.1} us p99 {:>8.1} us | fio {} {:>10.0} IOPS {:>9.1} MB/s | ratio {:.2}",
                c["op"].as_str().unwrap_or(""), size, args.kind, args.queue_depth,
                c["ops_per_sec"].as_f64().unwrap_or(0.0), c["mb_per_sec"].as_f64().unwrap_or(0.0),
                c["latency_us"]["p50"].as_f64().unwrap_or(0.0), c["latency_us"]["p99"].as_f64().unwrap_or(0.0),
                c["fio_rw"].as_str().unwrap_or(""), fio_iops_of(c), c["fio_mb_per_sec"].as_f64().unwrap_or(0.0),
                c["ratio"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// One round of one case: vos, and fio beside it.
struct Measured {
    fio_rw: &'static str,
    ops_per_sec: f64,
    ops: u64,
    lat_us: Vec<f64>,
    fio: Option<fio::FioResult>,
    /// fio with an fdatasync every queue-depth writes (update cases).
    fio_durable: Option<fio::FioResult>,
    slices: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    pct(&mut v, 0.5)
}

/// A case over its rounds: medians of vos and of fio, and the median of the per-round ratios
/// (each round pairs two back-to-back runs, so a disk that drifts between rounds cancels out).
/// Latency percentiles are over every operation of every round.
fn case_json(op: &str, size: u64, args: &Args, m: Vec<Measured>) -> serde_json::Value {
    // Ratio in the unit the target is stated in: bandwidth for 1 MiB, operations otherwise.
    let ratio_of = |r: &Measured| match &r.fio {
        None => 0.0,
        Some(f) if size >= 1 << 20 => r.ops_per_sec * size as f64 / f.bytes_per_sec,
        Some(f) => r.ops_per_sec / f.iops,
    };
    let fio_of = |r: &Measured| {
        r.fio
            .as_ref()
            .map(|f| (f.iops, f.bytes_per_sec / 1e6))
            .unwrap_or((0.0, 0.0))
    };
    let rounds: Vec<serde_json::Value> = m
        .iter()
        .map(|r| {
            json!({
                "ops_per_sec": r.ops_per_sec,
                "mb_per_sec": r.ops_per_sec * size as f64 / 1e6,
                "fio_iops": fio_of(r).0,
                "fio_mb_per_sec": fio_of(r).1,
                "ratio": ratio_of(r),
                "slices": r.slices,
            })
        })
        .collect();
    let ops_per_sec = median(m.iter().map(|r| r.ops_per_sec).collect());
    let fio_iops = median(m.iter().map(|r| fio_of(r).0).collect());
    let fio_mb = median(m.iter().map(|r| fio_of(r).1).collect());
    let ratio = median(m.iter().map(ratio_of).collect());
    let fio = m.iter().find_map(|r| r.fio.as_ref());
    let fio_lat = (fio.is_some()).then(|| {
        json!({
            "p50": median(m.iter().filter_map(|r| r.fio.as_ref().map(|f| f.p50_us)).collect()),
            "p99": median(m.iter().filter_map(|r| r.fio.as_ref().map(|f| f.p99_us)).collect()),
        })
    });
    // Same unit as `ratio`, against fio with an fdatasync every queue-depth writes.
    let durable = m.iter().any(|r| r.fio_durable.is_some()).then(|| {
        let d = |r: &Measured| {
            r.fio_durable
                .as_ref()
                .map_or((0.0, 0.0), |f| (f.iops, f.bytes_per_sec))
        };
        let ratio_d = |r: &Measured| {
            let (iops, bw) = d(r);
            match (size >= 1 << 20, iops > 0.0 && bw > 0.0) {
                (_, false) => 0.0,
                (true, true) => r.ops_per_sec * size as f64 / bw,
                (false, true) => r.ops_per_sec / iops,
            }
        };
        json!({
            "fdatasync_every": args.queue_depth,
            "iops": median(m.iter().map(|r| d(r).0).collect()),
            "mb_per_sec": median(m.iter().map(|r| d(r).1 / 1e6).collect()),
            "ratio": median(m.iter().map(ratio_d).collect()),
        })
    });
    let mut lat: Vec<f64> = m.iter().flat_map(|r| r.lat_us.iter().copied()).collect();
    json!({
        "op": op,
        "size": size,
        "type": args.kind,
        "queue_depth": args.queue_depth,
        "ops": m.first().map_or(0, |r| r.ops),
        "ops_per_sec": ops_per_sec,
        "mb_per_sec": ops_per_sec * size as f64 / 1e6,
        "latency_us": {"p50": pct(&mut lat, 0.5), "p99": pct(&mut lat, 0.99)},
        "fio_rw": m.first().map_or("", |r| r.fio_rw),
        "fio_bs": size.max(4096),
        "fio_iops": fio_iops,
        "fio_mb_per_sec": fio_mb,
        "fio_latency_us": fio_lat,
        "fio_durable": durable,
        "ratio": ratio,
        "rounds": rounds,
        "fio_cmd": fio.map(|f| f.cmd.clone()),
    })
}

fn fio_iops_of(c: &serde_json::Value) -> f64 {
    c["fio_iops"].as_f64().unwrap_or(0.0)
}

/// The value every update writes: one shared aligned buffer, or (`--copy-values`) a fresh
/// `Vec` copy of it per update.
struct Payload {
    copy: bool,
    buf: IoBuf,
}

impl Payload {
    fn value(&self) -> IoBuf {
        if self.copy {
            self.buf.as_slice().to_vec().into()
        } else {
            self.buf.clone()
        }
    }
}

fn iod(akey: Vec<u8>, array: bool, payload: &Payload) -> UpdateIod {
    let value = if array {
        IodValue::Array {
            rsize: 1,
            extents: vec![(Recx::new(0, payload.buf.len() as u64), payload.value())],
        }
    } else {
        IodValue::Single(payload.value())
    };
    UpdateIod {
        akey,
        value,
        flags: 0,
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("vos_perf: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scm_class_flag_selects_the_class_or_says_what_is_missing() {
        let a = Args::try_parse_from(["vos_perf", "--scm", "/s", "--bdev", "/b"]).unwrap();
        assert_eq!(a.scm_class, ScmClass::Ram);
        assert_eq!(
            pool_config(&a, std::path::Path::new("/b/p"), 1 << 20).scm_class,
            ScmClass::Ram
        );
        let bad = Args::try_parse_from([
            "vos_perf",
            "--scm-class",
            "pmem",
            "--scm",
            "/s",
            "--bdev",
            "/b",
        ]);
        assert!(bad.unwrap_err().to_string().contains("unknown scm class"));
        let d = Args::try_parse_from([
            "vos_perf",
            "--scm-class",
            "dcpm",
            "--scm",
            "/s",
            "--bdev",
            "/b",
        ]);
        if cfg!(feature = "pmem") {
            let d = d.unwrap();
            assert_eq!(
                pool_config(&d, std::path::Path::new("/b/p"), 1 << 20).scm_class,
                ScmClass::Dcpm
            );
        } else {
            assert!(d.unwrap_err().to_string().contains("--features pmem"));
        }
    }

    /// A short real run with the WAL on a libpmem mapping (tmpfs + PMEM_IS_PMEM_FORCE=1, set for
    /// a re-executed copy of this test because libpmem reads it when it initialises).
    #[cfg(feature = "pmem")]
    #[test]
    fn dcpm_run_updates_and_fetches() {
        if std::env::var("PMEM_IS_PMEM_FORCE").is_err() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "tests::dcpm_run_updates_and_fetches",
                    "--nocapture",
                ])
                .env("PMEM_IS_PMEM_FORCE", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("\"scm_class\": \"dcpm\""), "{stdout}");
            return;
        }
        let scm = tempfile::tempdir_in("/dev/shm").unwrap();
        let bdev = tempfile::tempdir_in("/var/tmp").unwrap();
        let args = Args::try_parse_from([
            "vos_perf",
            "--scm-class",
            "dcpm",
            "--scm",
            scm.path().to_str().unwrap(),
            "--bdev",
            bdev.path().to_str().unwrap(),
            "--objects",
            "300",
            "--size",
            "64",
            "--no-fio",
            "--json",
        ])
        .unwrap();
        run(args).unwrap();
        // The WAL lived on the scm path; the pool's files are cleaned up afterwards.
        assert!(!scm.path().join("vos_perf_scm").exists());
    }
}
