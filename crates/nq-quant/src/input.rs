//! Input validation and the sorted view with prefix sums that the 1-D
//! algorithms share.
//!
//! In one dimension the clusters of a (weighted) k-means partition are
//! intervals of the sorted values, so after one sort every cluster statistic
//! is a difference of prefix sums: `sum h`, `sum h w` and `sum h w^2` over a
//! range cost O(1) (paper.md section 4.1).

use crate::error::{QuantError, Result};
use crate::sort::from_sortable_bits;

/// Checks that `w` is non-empty and finite and that `h` (when given) has the
/// same length and is finite and non-negative.
pub fn validate(w: &[f32], h: &[f32]) -> Result<()> {
    if w.is_empty() {
        return Err(QuantError::EmptyInput);
    }
    if w.len() != h.len() {
        return Err(QuantError::LengthMismatch {
            weights: w.len(),
            importance: h.len(),
        });
    }
    if let Some(index) = w.iter().position(|v| !v.is_finite()) {
        return Err(QuantError::NonFiniteWeight {
            index,
            value: w[index],
        });
    }
    if let Some(index) = h.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(QuantError::BadImportance {
            index,
            value: h[index],
        });
    }
    Ok(())
}

/// `n` importance values of 1: plain (unweighted) squared error.
pub fn unit_importance(n: usize) -> Vec<f32> {
    vec![1.0; n]
}

/// The weights sorted once, with the original position of each and prefix
/// sums of `h`, `h w` and `h w^2` in `f64`.
#[derive(Debug, Clone)]
pub struct SortedWeights {
    /// Sorted values.
    pub values: Vec<f32>,
    /// `order[p]` is the original index of the `p`-th smallest value.
    pub order: Vec<u32>,
    /// `prefix_h[p] = sum of h over the first p sorted values` (length n + 1).
    pub prefix_h: Vec<f64>,
    /// Prefix sums of `h w`.
    pub prefix_hw: Vec<f64>,
    /// Prefix sums of `h w^2`.
    pub prefix_hw2: Vec<f64>,
}

impl SortedWeights {
    /// Sorts `w` (radix sort, ties by original index, so the order is
    /// deterministic; see [`crate::sort`]) and builds the prefix sums. Inputs must have passed [`validate`].
    pub fn new(w: &[f32], h: &[f32]) -> Self {
        let keys = crate::sort::sorted_keys(w);
        let order: Vec<u32> = keys.iter().map(|&k| k as u32).collect();
        // the value is in the key: no gather from `w`
        let values: Vec<f32> = keys
            .iter()
            .map(|&k| from_sortable_bits((k >> 32) as u32))
            .collect();
        drop(keys);
        let n = w.len();
        let mut prefix_h = Vec::with_capacity(n + 1);
        let mut prefix_hw = Vec::with_capacity(n + 1);
        let mut prefix_hw2 = Vec::with_capacity(n + 1);
        let (mut sh, mut shw, mut shw2) = (0.0f64, 0.0f64, 0.0f64);
        prefix_h.push(0.0);
        prefix_hw.push(0.0);
        prefix_hw2.push(0.0);
        for (&i, &v) in order.iter().zip(&values) {
            let hi = f64::from(h[i as usize]);
            let v = f64::from(v);
            sh += hi;
            shw += hi * v;
            shw2 += hi * v * v;
            prefix_h.push(sh);
            prefix_hw.push(shw);
            prefix_hw2.push(shw2);
        }
        Self {
            values,
            order,
            prefix_h,
            prefix_hw,
            prefix_hw2,
        }
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no weights.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `sum h` over sorted positions `[lo, hi)`.
    pub fn sum_h(&self, lo: usize, hi: usize) -> f64 {
        self.prefix_h[hi] - self.prefix_h[lo]
    }

    /// `sum h w` over sorted positions `[lo, hi)`.
    pub fn sum_hw(&self, lo: usize, hi: usize) -> f64 {
        self.prefix_hw[hi] - self.prefix_hw[lo]
    }

    /// `sum h (w - c)^2` over sorted positions `[lo, hi)`, from prefix sums.
    pub fn cost_to(&self, lo: usize, hi: usize, c: f64) -> f64 {
        let sh = self.sum_h(lo, hi);
        let shw = self.sum_hw(lo, hi);
        let shw2 = self.prefix_hw2[hi] - self.prefix_hw2[lo];
        (shw2 - 2.0 * c * shw + c * c * sh).max(0.0)
    }

    /// The centre minimising `sum h (w - c)^2` over `[lo, hi)`: the
    /// h-weighted mean, or the plain mean when all `h` in the range are 0
    /// (then every centre costs nothing and the mean is the natural choice).
    /// `None` for an empty range.
    pub fn centre(&self, lo: usize, hi: usize) -> Option<f64> {
        if lo >= hi {
            return None;
        }
        let sh = self.sum_h(lo, hi);
        if sh > 0.0 {
            // Clamp into the range: rounding must not move a centre outside
            // its own interval, which would break the interval structure.
            let c = self.sum_hw(lo, hi) / sh;
            Some(c.clamp(f64::from(self.values[lo]), f64::from(self.values[hi - 1])))
        } else {
            let s: f64 = self.values[lo..hi].iter().map(|&v| f64::from(v)).sum();
            Some(s / (hi - lo) as f64)
        }
    }

    /// `min_c sum h (w - c)^2` over `[lo, hi)`: the within-cluster cost.
    pub fn range_cost(&self, lo: usize, hi: usize) -> f64 {
        if lo >= hi {
            return 0.0;
        }
        let sh = self.sum_h(lo, hi);
        if sh <= 0.0 {
            return 0.0;
        }
        let shw = self.sum_hw(lo, hi);
        let shw2 = self.prefix_hw2[hi] - self.prefix_hw2[lo];
        (shw2 - shw * shw / sh).max(0.0)
    }

    /// First sorted position whose value is `>= x` (or `> x` when
    /// `inclusive` is false).
    pub fn lower_bound(&self, x: f64, inclusive: bool) -> usize {
        if inclusive {
            self.values.partition_point(|&v| f64::from(v) < x)
        } else {
            self.values.partition_point(|&v| f64::from(v) <= x)
        }
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        if self.values.is_empty() {
            return 0;
        }
        1 + self.values.windows(2).filter(|p| p[0] != p[1]).count()
    }

    /// Turns sorted-interval boundaries into a quantization: cluster `j`
    /// holds sorted positions `[bounds[j], bounds[j + 1])`. Empty intervals
    /// are dropped, so every returned cluster has members.
    pub fn intervals_to_assignment(&self, bounds: &[usize]) -> (Vec<f32>, Vec<u32>) {
        let mut centres = Vec::with_capacity(bounds.len().saturating_sub(1));
        let mut assignment = vec![0u32; self.len()];
        for pair in bounds.windows(2) {
            let (lo, hi) = (pair[0], pair[1]);
            let Some(c) = self.centre(lo, hi) else {
                continue;
            };
            let j = centres.len() as u32;
            centres.push(c as f32);
            for &i in &self.order[lo..hi] {
                assignment[i as usize] = j;
            }
        }
        (centres, assignment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_entry() {
        assert_eq!(validate(&[], &[]), Err(QuantError::EmptyInput));
        assert!(matches!(
            validate(&[1.0, f32::NAN], &[1.0, 1.0]),
            Err(QuantError::NonFiniteWeight { index: 1, .. })
        ));
        assert!(matches!(
            validate(&[1.0, 2.0], &[1.0, -1.0]),
            Err(QuantError::BadImportance { index: 1, .. })
        ));
        assert!(matches!(
            validate(&[1.0], &[1.0, 1.0]),
            Err(QuantError::LengthMismatch { .. })
        ));
        assert!(validate(&[1.0, -0.0], &[0.0, 2.0]).is_ok());
    }

    #[test]
    fn sorted_prefix_sums_by_hand() {
        // w = [3, -1, 2], h = [1, 2, 0.5]; sorted: -1 (h 2), 2 (h .5), 3 (h 1)
        let s = SortedWeights::new(&[3.0, -1.0, 2.0], &[1.0, 2.0, 0.5]);
        assert_eq!(s.values, vec![-1.0, 2.0, 3.0]);
        assert_eq!(s.order, vec![1, 2, 0]);
        assert_eq!(s.prefix_h, vec![0.0, 2.0, 2.5, 3.5]);
        // weighted mean of {2 (h .5), 3 (h 1)} = (1 + 3) / 1.5 = 8/3
        assert!((s.centre(1, 3).unwrap() - 8.0 / 3.0).abs() < 1e-12);
        // cost = .5 (2 - 8/3)^2 + 1 (3 - 8/3)^2 = .5 * 4/9 + 1/9 = 1/3
        assert!((s.range_cost(1, 3) - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.cost_to(0, 3, 0.0) - (2.0 + 2.0 + 9.0)).abs() < 1e-12);
        assert_eq!(s.lower_bound(2.0, true), 1);
        assert_eq!(s.lower_bound(2.0, false), 2);
    }

    #[test]
    fn sort_handles_negative_zero_and_ties() {
        let s = SortedWeights::new(&[0.0, -0.0, -2.0, 0.0], &[1.0; 4]);
        assert_eq!(s.order, vec![2, 1, 0, 3]);
        assert_eq!(s.distinct(), 2); // -0.0 == 0.0
    }
}
