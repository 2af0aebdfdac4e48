//! Synthetic weights for tests, benchmarks and studies: what a trained
//! layer looks like to a quantizer.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` Laplace-distributed weights of scale 0.05 (trained layers are
/// roughly Laplacian around 0) and `n` exponential importances of mean 1,
/// by inverse transform sampling from a seeded ChaCha8 generator.
pub fn laplace_weights(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = (0..n)
        .map(|_| {
            let u: f64 = rng.random::<f64>() - 0.5;
            (-0.05 * u.signum() * (1.0 - 2.0 * u.abs()).ln()) as f32
        })
        .collect();
    let h = (0..n)
        .map(|_| (-(1.0 - rng.random::<f64>()).ln()) as f32)
        .collect();
    (w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_and_mean_match_the_distributions() {
        // E|w| = 0.05 for Laplace(0, 0.05); E h = 1 for Exp(1)
        let (w, h) = laplace_weights(200_000, 1);
        let mean_abs = w.iter().map(|v| f64::from(v.abs())).sum::<f64>() / 2e5;
        let mean_h = h.iter().map(|&v| f64::from(v)).sum::<f64>() / 2e5;
        assert!((mean_abs - 0.05).abs() < 0.001, "{mean_abs}");
        assert!((mean_h - 1.0).abs() < 0.01, "{mean_h}");
        assert!(h.iter().all(|&v| v >= 0.0));
        assert_eq!(laplace_weights(10, 3), laplace_weights(10, 3));
    }
}
