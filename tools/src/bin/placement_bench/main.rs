//! placement_bench: balance, fault-domain violations, data movement and speed of the jump-map placement.
//!
//! ```text
//! placement_bench --domains 16 --ranks-per-domain 4 --targets-per-rank 8 --objects 10000000 \
//!                 --class RP_3G1 [--exclude-rank N] [--extend-domains K] [--json]
//! ```
//!
//! Passes: (1) timed baseline pass: the I/O layout of every object on the healthy map, shards counted per
//! target (gives `max_over_mean`, `stddev_over_mean`, `ns_per_layout`, violations); (2) with a change,
//! every object again on the changed map, comparing shard by shard (`moved_shards`) against the least any
//! placement must move (`min_moved_shards`); for `--exclude-rank` also after the rank is reintegrated
//! (`reintegrate_restored` = every layout equals the original). `ns_per_layout` is the best of 5 timed
//! passes computing only layouts over the first `--speed-objects` objects (single thread). The ideal uniform anchor
//! (`ideal_max_over_mean`) draws the same number of shards uniformly at random over the same targets.
//! With a change, the `*_after` keys are the same balance figures over the changed map's targets that hold
//! shards (an excluded rank's targets are left out; `ideal_max_over_mean_after` is drawn over those) and
//! `ns_per_layout_after` the same speed measure on the changed map.

mod stats;

use std::io::IsTerminal;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use placement::{
    uniform_domains, ObjClass, ObjType, ObjectId, Placement, PoolMap, Sel, Topology, View,
    NO_TARGET,
};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "jump-map placement benchmark: balance, fault domains, movement, speed")]
struct Args {
    /// Fault domains (nodes).
    #[arg(long, default_value_t = 16)]
    domains: u32,
    #[arg(long, default_value_t = 4)]
    ranks_per_domain: u32,
    #[arg(long, default_value_t = 8)]
    targets_per_rank: u32,
    #[arg(long, default_value_t = 10_000_000)]
    objects: u64,
    /// Object class by DAOS name (S1, RP_3G1, EC_4P2G1, RP_2GX, ...).
    #[arg(long, default_value = "S1")]
    class: String,
    /// Exclude this rank and measure movement (then reintegrate it and check the original layout returns).
    #[arg(long, conflicts_with = "extend_domains")]
    exclude_rank: Option<u32>,
    /// Extend the pool by K domains of the same shape and measure movement.
    #[arg(long)]
    extend_domains: Option<u32>,
    /// Objects per timed speed pass (best of 5 passes is reported as ns_per_layout).
    #[arg(long, default_value_t = 1_000_000)]
    speed_objects: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

const SPEED_REPEATS: u32 = 5;

type BoxErr = Box<dyn std::error::Error>;

fn bar(total: u64, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})")
    {
        pb.set_style(style);
    }
    pb
}

fn oid(i: u64, class: ObjClass, targets: u32) -> ObjectId {
    ObjectId::generate(0, i, ObjType::MultiHashed, class, targets)
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("placement_bench: {e}");
        std::process::exit(1);
    }
}

fn run(a: Args) -> Result<(), BoxErr> {
    if a.domains == 0 || a.ranks_per_domain == 0 || a.targets_per_rank == 0 || a.objects == 0 {
        return Err(
            "--domains, --ranks-per-domain, --targets-per-rank and --objects must be > 0".into(),
        );
    }
    let class: ObjClass = a.class.parse()?;
    let m0 = PoolMap::build(&Topology::uniform(
        a.domains,
        a.ranks_per_domain,
        a.targets_per_rank,
    ))?;
    let ntargets = m0.targets().len();
    let domain_of: Vec<u32> = (0..ntargets as u32).map(|t| m0.target_domain(t)).collect();
    let frozen = class.freeze(ntargets as u32);
    let grp_size = frozen.grp_size() as usize;
    let show = !a.json && std::io::stderr().is_terminal();
    let changed = a.exclude_rank.is_some() || a.extend_domains.is_some();
    let passes = if a.exclude_rank.is_some() { 2 } else { 1 } + changed as u64;
    let pb = bar(a.objects * passes, show);

    // Pass 1: baseline, timed.
    pb.set_message("baseline");
    let mut p0 = Placement::new(&m0)?;
    let mut counts = vec![0u64; ntargets];
    let mut out = Vec::with_capacity(64);
    let mut viol_before = 0u64;
    let mut unplaced = 0u64;
    let t0 = Instant::now();
    for i in 0..a.objects {
        p0.targets_into(oid(i, frozen, ntargets as u32), View::Io, &mut out)?;
        for &t in &out {
            if t == NO_TARGET {
                unplaced += 1;
            } else {
                counts[t as usize] += 1;
            }
        }
        viol_before += stats::violations(&out, grp_size, &domain_of);
        if i & 0xffff == 0 {
            pb.set_position(i);
        }
    }
    let elapsed = t0.elapsed();
    let ns_baseline = elapsed.as_nanos() as f64 / a.objects as f64;
    // Speed: layouts only, best of `SPEED_REPEATS` passes over the first `--speed-objects` objects, so a
    // busy neighbour on the machine inflates the figure less than it would a single pass.
    pb.set_message("speed");
    let speed_n = a.speed_objects.min(a.objects).max(1);
    let mut best = f64::INFINITY;
    let mut sink = 0u64;
    for _ in 0..SPEED_REPEATS {
        let t = Instant::now();
        for i in 0..speed_n {
            p0.targets_into(oid(i, frozen, ntargets as u32), View::Io, &mut out)?;
            sink = sink.wrapping_add(out[0] as u64);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / speed_n as f64);
    }
    std::hint::black_box(sink);
    let ns_per_layout = best;
    let shards: u64 = counts.iter().sum();
    let bal = stats::balance(&counts);
    let ideal = stats::ideal_uniform(shards, ntargets, 0x5eed);

    // Pass 2 (and 3): movement.
    let mut moved = 0u64;
    let mut min_moved = 0u64;
    let mut viol_after = 0u64;
    let mut restored: Option<bool> = None;
    let mut ns_after: Option<f64> = None;
    let mut after_targets = ntargets;
    let mut counts_after: Vec<u64> = Vec::new();
    if changed {
        let m1 = if let Some(r) = a.exclude_rank {
            m0.exclude(&[Sel::Rank(r)])?.0
        } else {
            let k = a.extend_domains.unwrap_or(0);
            let spec = uniform_domains(
                a.domains,
                a.domains * a.ranks_per_domain,
                k,
                a.ranks_per_domain,
                a.targets_per_rank,
            );
            let (m, _) = m0.extend(&spec)?;
            m.integrate(&m.pending())?.0
        };
        after_targets = m1.targets().len();
        let domain_of1: Vec<u32> = (0..after_targets as u32)
            .map(|t| m1.target_domain(t))
            .collect();
        let excluded: Vec<bool> = match a.exclude_rank {
            Some(r) => (0..ntargets as u32)
                .map(|t| m0.target_rank(t) == r)
                .collect(),
            None => vec![false; ntargets],
        };
        let mut p1 = Placement::new(&m1)?;
        let mut out1 = Vec::with_capacity(64);
        counts_after = vec![0u64; after_targets];
        pb.set_message("changed");
        for i in 0..a.objects {
            let o = oid(i, frozen, ntargets as u32);
            p0.targets_into(o, View::Io, &mut out)?;
            p1.targets_into(o, View::Io, &mut out1)?;
            for (&x, &y) in out.iter().zip(&out1) {
                if y != NO_TARGET {
                    counts_after[y as usize] += 1;
                }
                moved += (x != y) as u64;
                min_moved += (x != NO_TARGET && excluded[x as usize]) as u64;
            }
            viol_after += stats::violations(&out1, grp_size, &domain_of1);
            if i & 0xffff == 0 {
                pb.set_position(a.objects + i);
            }
        }
        if a.extend_domains.is_some() {
            // The least any placement can move: the new targets' fair share, k/(N+k) of all shards.
            let new_t = (after_targets - ntargets) as f64;
            min_moved = (shards as f64 * new_t / after_targets as f64).round() as u64;
        }
        if let Some(r) = a.exclude_rank {
            pb.set_message("reintegrate");
            let m2 = m1.exclude_out(&[Sel::Rank(r)])?.0;
            let m3 = m2.reintegrate(&[Sel::Rank(r)])?.0;
            let m4 = m3.integrate(&[Sel::Rank(r)])?.0;
            let mut p4 = Placement::new(&m4)?;
            let mut same = true;
            for i in 0..a.objects {
                let o = oid(i, frozen, ntargets as u32);
                p0.targets_into(o, View::Io, &mut out)?;
                p4.targets_into(o, View::Io, &mut out1)?;
                same &= out == out1;
                if i & 0xffff == 0 {
                    pb.set_position(2 * a.objects + i);
                }
            }
            restored = Some(same);
        }
        // Speed on the changed map (extended layouts add the per-generation step), same method.
        pb.set_message("speed after");
        let mut best = f64::INFINITY;
        for _ in 0..SPEED_REPEATS {
            let t = Instant::now();
            for i in 0..speed_n {
                p1.targets_into(oid(i, frozen, ntargets as u32), View::Io, &mut out1)?;
                sink = sink.wrapping_add(out1[0] as u64);
            }
            best = best.min(t.elapsed().as_nanos() as f64 / speed_n as f64);
        }
        std::hint::black_box(sink);
        ns_after = Some(best);
    }
    pb.finish_and_clear();

    let moved_ratio = (min_moved > 0).then(|| moved as f64 / min_moved as f64);
    // Balance over the changed map's targets (an excluded rank's targets hold nothing and are left out).
    let after: Vec<u64> = counts_after.iter().copied().filter(|&c| c > 0).collect();
    let bal_after = (!after.is_empty()).then(|| stats::balance(&after));
    let ideal_after =
        bal_after.map(|_| stats::ideal_uniform(after.iter().sum(), after.len(), 0x5eed + 1));
    let report = json!({
        "class": frozen.to_string(),
        "domains": a.domains,
        "targets": ntargets,
        "objects": a.objects,
        "shards": shards,
        "max_over_mean": bal.max_over_mean,
        "stddev_over_mean": bal.stddev_over_mean,
        "ideal_max_over_mean": ideal.max_over_mean,
        "ideal_stddev_over_mean": ideal.stddev_over_mean,
        "min_shards_per_target": bal.min,
        "max_shards_per_target": bal.max,
        "unplaced_shards": unplaced,
        "domain_violations": viol_before + viol_after,
        "domain_violations_before": viol_before,
        "domain_violations_after": viol_after,
        "targets_after": after_targets,
        "max_over_mean_after": bal_after.map(|b| b.max_over_mean),
        "min_over_mean_after": bal_after.map(|b| b.min as f64 * after.len() as f64 / after.iter().sum::<u64>() as f64),
        "stddev_over_mean_after": bal_after.map(|b| b.stddev_over_mean),
        "ideal_max_over_mean_after": ideal_after.map(|b| b.max_over_mean),
        "moved_shards": moved,
        "min_moved_shards": min_moved,
        "moved_ratio": moved_ratio,
        "reintegrate_restored": restored,
        "ns_per_layout": ns_per_layout,
        "ns_per_layout_baseline_pass": ns_baseline,
        "ns_per_layout_after": ns_after,
        "speed_objects": speed_n,
        "baseline_seconds": elapsed.as_secs_f64(),
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "class {}  targets {}  objects {}  shards {}",
            frozen, ntargets, a.objects, shards
        );
        println!(
            "shards/target: max_over_mean {:.4} (ideal uniform {:.4})  stddev_over_mean {:.4} (ideal {:.4})",
            bal.max_over_mean, ideal.max_over_mean, bal.stddev_over_mean, ideal.stddev_over_mean
        );
        println!(
            "domain_violations {} (before {}, after {})",
            viol_before + viol_after,
            viol_before,
            viol_after
        );
        if changed {
            println!(
                "moved_shards {}  min_moved_shards {}  moved_ratio {}",
                moved,
                min_moved,
                moved_ratio.map_or("n/a".to_string(), |r| format!("{r:.4}"))
            );
        }
        if let (Some(b), Some(i)) = (bal_after, ideal_after) {
            println!(
                "after the change: max_over_mean {:.4} (ideal uniform {:.4})  stddev_over_mean {:.4}",
                b.max_over_mean, i.max_over_mean, b.stddev_over_mean
            );
        }
        if let Some(r) = restored {
            println!("reintegrate restores original layout: {r}");
        }
        println!(
            "ns_per_layout {:.1} (best of {} passes over {} objects; baseline pass incl. counting {:.1})",
            ns_per_layout, SPEED_REPEATS, speed_n, ns_baseline
        );
        if let Some(ns) = ns_after {
            println!("ns_per_layout on the changed map {ns:.1}");
        }
    }
    Ok(())
}
