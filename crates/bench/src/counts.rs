//! Count tables for the release benchmark, shaped like administrative tables.

use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal, Poisson};

/// Inner counts of a synthetic table shaped like an administrative table, for benchmarks:
/// `sizes` are the category counts of each dimension, and the same `seed` always gives the same
/// counts (row-major, first dimension slowest, as `linklab_release::protect_table` takes them).
///
/// Each category gets a log-normal weight, a cell's expected count is the product of its
/// categories' weights, scaled so that a quarter of the cells expect fewer than 8 persons, and
/// the count is drawn from a Poisson distribution: about a quarter of the cells fall below a
/// threshold of 10, many of them zero or one, and a few are large.
pub fn table_counts(sizes: &[usize], seed: u64) -> Vec<u64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let weight = LogNormal::new(0.0, 0.8).expect("valid log-normal parameters");
    let weights: Vec<Vec<f64>> = sizes
        .iter()
        .map(|&s| (0..s).map(|_| weight.sample(&mut rng)).collect())
        .collect();
    let n: usize = sizes.iter().product();
    let means: Vec<f64> = (0..n)
        .map(|flat| {
            let mut rest = flat;
            let mut m = 1.0;
            for (d, &s) in sizes.iter().enumerate().rev() {
                m *= weights[d][rest % s];
                rest /= s;
            }
            m
        })
        .collect();
    let mut sorted = means.clone();
    sorted.sort_by(f64::total_cmp);
    let quartile = sorted.get(n / 4).copied().unwrap_or(1.0);
    let scale = 8.0 / quartile;
    means
        .into_iter()
        .map(|m| {
            let mean = m * scale;
            if mean < 1e-9 {
                0
            } else {
                let p = Poisson::new(mean).expect("a positive finite mean");
                p.sample(&mut rng) as u64
            }
        })
        .collect()
}
