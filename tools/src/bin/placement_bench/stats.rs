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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_of_known_counts() {
        let b = balance(&[10, 10, 10, 10]);
        assert_eq!((b.max_over_mean, b.stddev_over_mean), (1.0, 0.0));
        let b = balance(&[5, 15]);
        assert!((b.max_over_mean - 1.5).abs() < 1e-12);
        assert!((b.stddev_over_mean - 0.5).abs() < 1e-12);
        assert_eq!((b.min, b.max), (5, 15));
    }

    #[test]
    fn violations_count_groups_not_pairs() {
        // targets 0,1 in domain 0; 2 in domain 1; 3 in domain 2.
        let dom = [0, 0, 1, 2];
        assert_eq!(violations(&[0, 2, 3], 3, &dom), 0);
        assert_eq!(violations(&[0, 1, 2], 3, &dom), 1);
        assert_eq!(violations(&[0, 1, 1, 0, 2, 3], 3, &dom), 1);
    }

    #[test]
    fn ideal_uniform_is_near_one_for_many_shards() {
        let b = ideal_uniform(1_000_000, 16, 1);
        assert!(b.max_over_mean > 1.0 && b.max_over_mean < 1.02, "{b:?}");
    }
}
