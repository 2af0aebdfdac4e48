//! The reproducible dither of universal quantization ([`crate::universal`]):
//! a uniform pseudo-random offset per weight, regenerated from a seed and a
//! step, so that a file stores two numbers instead of one float per weight.
//!
//! Offset `i` (counting from 0) of the dither `(seed, step)` is
//! `u_i = step * r_i` in f32 arithmetic, with `r_i = (m + 1/2) 2^-24 - 1/2`
//! and `m` the top 24 bits of the `(i + 1)`-th output of SplitMix64 started
//! at `seed` (Steele, Lea and Flood 2014, as in Java's `SplittableRandom`):
//! `z = seed + (i + 1) 0x9E3779B97F4A7C15` (wrapping), then
//! `z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
//! z *= 0x94D049BB133111EB; z ^= z >> 31` (wrapping products).
//! `r_i` is exact in f32 and lies strictly inside `(-1/2, 1/2)`,
//! symmetric about 0, so `u_i` lies in `[-step/2, step/2]` and the only
//! rounding is the one product, which every IEEE 754 reader repeats bit for
//! bit. Each output depends only on `seed` and `i`, so any range of offsets
//! is computed without the ones before it.

use serde::{Deserialize, Serialize};

/// A dither: its seed and its step (the width of the uniform quantizer
/// cells it spreads the weights over).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dither {
    /// Seed of the pseudo-random sequence.
    pub seed: u64,
    /// The offsets are uniform on `[-step/2, step/2]`.
    pub step: f32,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The `(i + 1)`-th output of SplitMix64 seeded with `seed`.
fn splitmix64(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `2^-24`, exact in f32.
const INV_2_24: f32 = 1.0 / 16_777_216.0;

impl Dither {
    /// Offset `i`, `u_i = step * r_i` (see the [module documentation](self)).
    pub fn at(&self, i: u64) -> f32 {
        let m = (splitmix64(self.seed, i) >> 40) as f32;
        self.step * ((m + 0.5) * INV_2_24 - 0.5)
    }

    /// Offsets `start .. start + len`.
    pub fn range(&self, start: u64, len: usize) -> Vec<f32> {
        (start..start + len as u64).map(|i| self.at(i)).collect()
    }
}

/// The values of the cluster indices `assignment`: `centres[a_j]`, less
/// the offset `start + j` of `dither` when there is one (what a quantizer
/// gives and what a `.nqz` decoder reads back).
pub fn dequantize(
    centres: &[f32],
    assignment: &[u32],
    dither: Option<&Dither>,
    start: u64,
) -> Vec<f32> {
    match dither {
        None => assignment.iter().map(|&a| centres[a as usize]).collect(),
        Some(d) => assignment
            .iter()
            .zip(d.range(start, assignment.len()))
            .map(|(&a, u)| centres[a as usize] - u)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // the first outputs of SplitMix64 from seed 1234567 (the reference
        // implementation at prng.di.unimi.it/splitmix64.c)
        assert_eq!(splitmix64(1_234_567, 0), 6_457_827_717_110_365_317);
        assert_eq!(splitmix64(1_234_567, 1), 3_203_168_211_198_807_973);
        assert_eq!(splitmix64(1_234_567, 2), 9_817_491_932_198_370_423);
    }

    #[test]
    fn offsets_stay_inside_half_a_step_and_are_centred() {
        let d = Dither {
            seed: 7,
            step: 0.25,
        };
        let u = d.range(0, 100_000);
        assert!(u.iter().all(|&x| x.abs() <= 0.125));
        let mean = u.iter().map(|&x| f64::from(x)).sum::<f64>() / u.len() as f64;
        let var = u.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / u.len() as f64;
        // uniform on [-1/8, 1/8]: mean 0, variance (1/4)^2 / 12 = 1/192;
        // the mean within 5 standard errors, the variance within 2 %
        assert!(mean.abs() < 5.0 * (1.0f64 / 192.0).sqrt() / (1e5f64).sqrt());
        assert!((var * 192.0 - 1.0).abs() < 0.02, "{var}");
    }

    #[test]
    fn any_range_equals_the_same_part_of_the_whole() {
        let d = Dither {
            seed: u64::MAX,
            step: 3.0,
        };
        let whole = d.range(0, 50);
        assert_eq!(d.range(17, 20), whole[17..37]);
        assert_eq!(d.at(49), whole[49]);
    }

    #[test]
    fn seeds_give_different_offsets() {
        let a = Dither { seed: 1, step: 1.0 }.range(0, 8);
        let b = Dither { seed: 2, step: 1.0 }.range(0, 8);
        assert_ne!(a, b);
    }
}
