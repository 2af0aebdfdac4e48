//! The result every quantizer returns, and the statistics of paper.md
//! section 6 computed from it.

use rayon::prelude::*;
use serde::Serialize;

use crate::dither::{dequantize, Dither};
use crate::error::{QuantError, Result};

/// A quantization of `N` weights: `k` centres and one cluster index per
/// weight. The quantized weight `i` is `centres[assignment[i]]`, less the
/// dither's offset `i` for universal quantization ([`crate::universal`]).
///
/// Every quantizer returns clusters that all have members (empty ones are
/// dropped), so `centres.len()` is the number of clusters used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quantization {
    /// One shared value per cluster.
    pub centres: Vec<f32>,
    /// Cluster index of each weight, in input order.
    pub assignment: Vec<u32>,
    /// Iterations the algorithm ran (0 for one-shot quantizers).
    pub iterations: usize,
    /// The objective after each iteration: the distortion `D_h` for
    /// k-means, the Lagrangian `J` for ECSQ. Empty for one-shot quantizers.
    pub history: Vec<f64>,
    /// The dither subtracted from each weight's centre (universal
    /// quantization), indexed by position in `assignment`; `None` for the
    /// other quantizers.
    pub dither: Option<Dither>,
}

impl Quantization {
    /// Number of clusters (all have members).
    pub fn clusters(&self) -> usize {
        self.centres.len()
    }

    /// The quantized weights `q_i = c_{a(i)}` (less `u_i` when dithered).
    pub fn quantized(&self) -> Vec<f32> {
        self.quantized_range(0, self.assignment.len())
    }

    /// The quantized weights `start .. start + len`.
    pub fn quantized_range(&self, start: usize, len: usize) -> Vec<f32> {
        dequantize(
            &self.centres,
            &self.assignment[start..start + len],
            self.dither.as_ref(),
            start as u64,
        )
    }

    /// Members per cluster.
    pub fn counts(&self) -> Vec<u64> {
        cluster_counts(&self.assignment, self.centres.len())
    }

    /// Drops the clusters that lost all their members (after weights were
    /// moved to other clusters, as compensated rounding does) and renumbers
    /// the rest in their order, so that every cluster has members again.
    pub fn drop_empty_clusters(&mut self) {
        let counts = self.counts();
        let mut renumber = vec![0u32; counts.len()];
        let mut kept = 0u32;
        for (c, &n) in counts.iter().enumerate() {
            renumber[c] = kept;
            if n > 0 {
                kept += 1;
            }
        }
        if kept as usize == counts.len() {
            return;
        }
        self.centres = self
            .centres
            .iter()
            .zip(&counts)
            .filter(|(_, &n)| n > 0)
            .map(|(&c, _)| c)
            .collect();
        for a in &mut self.assignment {
            *a = renumber[*a as usize];
        }
    }

    /// Checks that every index is in range; used on quantizations that come
    /// from outside (files, callers).
    pub fn check(&self) -> Result<()> {
        let k = self.centres.len();
        if let Some(i) = self.assignment.iter().position(|&a| a as usize >= k) {
            return Err(QuantError::Inconsistent(format!(
                "assignment {i} is {} but there are only {k} centres",
                self.assignment[i]
            )));
        }
        Ok(())
    }
}

/// Members per cluster for `k` clusters.
pub fn cluster_counts(assignment: &[u32], k: usize) -> Vec<u64> {
    assignment
        .par_chunks(1 << 16)
        .fold(
            || vec![0u64; k],
            |mut acc, chunk| {
                for &a in chunk {
                    acc[a as usize] += 1;
                }
                acc
            },
        )
        .reduce(
            || vec![0u64; k],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Shannon entropy in bits per symbol of the empirical distribution `counts`.
pub fn entropy(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// `D_h = sum_i h_i (w_i - q_i)^2` and plain `sum_i (w_i - q_i)^2`, in f64.
pub fn distortions(w: &[f32], h: &[f32], q: &Quantization) -> (f64, f64) {
    w.par_iter()
        .zip(h.par_iter())
        .zip(q.assignment.par_iter())
        .enumerate()
        .map(|(i, ((&wi, &hi), &a))| {
            let u = q.dither.map_or(0.0, |d| d.at(i as u64));
            let e = f64::from(wi) - f64::from(q.centres[a as usize] - u);
            (f64::from(hi) * e * e, e * e)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// Statistics of one quantization (paper.md section 6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantStats {
    /// Number of weights.
    pub n: usize,
    /// Clusters that have members.
    pub clusters_used: usize,
    /// `sum h (w - q)^2`.
    pub distortion_h: f64,
    /// `sum (w - q)^2`.
    pub squared_error: f64,
    /// Entropy of the cluster distribution, bits per weight.
    pub entropy: f64,
    /// Iterations the quantizer ran.
    pub iterations: usize,
}

/// Computes [`QuantStats`] of `q` on the weights `w` with importance `h`.
pub fn stats(w: &[f32], h: &[f32], q: &Quantization) -> QuantStats {
    let counts = q.counts();
    let (distortion_h, squared_error) = distortions(w, h, q);
    QuantStats {
        n: w.len(),
        clusters_used: counts.iter().filter(|&&c| c > 0).count(),
        distortion_h,
        squared_error,
        entropy: entropy(&counts),
        iterations: q.iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_clusters_are_dropped_and_the_rest_renumbered() {
        let mut q = Quantization {
            centres: vec![-1.0, 0.0, 0.5, 2.0],
            assignment: vec![3, 1, 3, 1],
            iterations: 4,
            history: vec![1.0],
            dither: None,
        };
        let before = q.quantized();
        q.drop_empty_clusters();
        assert_eq!(q.centres, vec![0.0, 2.0]);
        assert_eq!(q.assignment, vec![1, 0, 1, 0]);
        assert_eq!(q.quantized(), before);
        let same = q.clone();
        q.drop_empty_clusters();
        assert_eq!(q, same);
    }

    #[test]
    fn stats_by_hand() {
        let q = Quantization {
            centres: vec![0.0, 1.0],
            assignment: vec![0, 0, 1, 1],
            iterations: 3,
            history: vec![],
            dither: None,
        };
        let w = [0.5, -0.5, 1.0, 2.0];
        let h = [2.0, 1.0, 5.0, 0.5];
        let s = stats(&w, &h, &q);
        // D_h = 2 * .25 + 1 * .25 + 0 + .5 * 1 = 1.25; SE = .25 + .25 + 0 + 1
        assert_eq!(s.distortion_h, 1.25);
        assert_eq!(s.squared_error, 1.5);
        assert_eq!(s.entropy, 1.0);
        assert_eq!(s.clusters_used, 2);
        assert_eq!(q.quantized(), vec![0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn entropy_by_hand() {
        assert_eq!(entropy(&[8]), 0.0);
        assert_eq!(entropy(&[1, 1, 2]), 1.5);
        assert_eq!(entropy(&[]), 0.0);
    }

    #[test]
    fn check_rejects_out_of_range_index() {
        let q = Quantization {
            centres: vec![0.0],
            assignment: vec![0, 1],
            iterations: 0,
            history: vec![],
            dither: None,
        };
        assert!(q.check().is_err());
    }
}
