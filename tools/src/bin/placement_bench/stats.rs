//! Shard-count statistics and the ideal uniform anchor computed in the same run.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// max/mean and stddev/mean of per-target shard counts.
#[derive(Debug, Clone, Copy)]
pub struct Balance {
    pub max_over_mean: f64,
    pub stddev_over_mean: f64,
    pub min: u64,
    pub max: u64,
}

pub fn balance(counts: &[u64]) -> Balance {
    let n = counts.len() as f64;
    let total: u64 = counts.iter().sum();
    let mean = total as f64 / n;
    let var = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let max = counts.iter().copied().max().unwrap_or(0);
    let min = counts.iter().copied().min().unwrap_or(0);
    Balance {
        max_over_mean: if mean > 0.0 { max as f64 / mean } else { 0.0 },
        stddev_over_mean: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
        min,
        max,
    }
}

/// An ideal uniform hash: `shards` independent uniform draws over `targets` (seeded, ChaCha-based StdRng).
pub fn ideal_uniform(shards: u64, targets: usize, seed: u64) -> Balance {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = vec![0u64; targets];
    for _ in 0..shards {
        counts[rng.gen_range(0..targets)] += 1;
    }
    balance(&counts)
}

/// Groups (of `grp_size` consecutive shards) with two shards in one fault domain.
pub fn violations(targets: &[u32], grp_size: usize, domain_of: &[u32]) -> u64 {
    let mut v = 0;
    for g in targets.chunks(grp_size) {
        'grp: for i in 0..g.len() {
            for j in i + 1..g.len() {
                if domain_of[g[i] as usize] == domain_of[g[j] as usize] {
                    v += 1;
                    break 'grp;
                }
            }
        }
    }
    v
}
