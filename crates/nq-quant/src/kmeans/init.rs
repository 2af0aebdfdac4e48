//! Initial centres for weighted k-means on sorted data.
//!
//! k-means++ in one dimension needs no pass over the data per step: with
//! the centres sorted, the points between two neighbouring centres are a
//! range of sorted positions split at the centres' midpoint, and the sum of
//! `h (w - c)^2` over a range is a difference of prefix sums. A step costs
//! `O(k + log N)`, the whole init `O(k^2 + k log N)`, whatever `N` is.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::hyperparams::KmeansInit;
use crate::input::SortedWeights;

/// Sorted, distinct initial centres; at most `k` of them (fewer when the
/// data runs out of distinct values with positive importance).
pub(crate) fn initial_centres_sorted(
    s: &SortedWeights,
    init: KmeansInit,
    k: usize,
    seed: u64,
) -> Vec<f64> {
    let mut centres = match init {
        KmeansInit::PlusPlus => plus_plus(s, k, seed),
        KmeansInit::Linear => linear(s, k),
        KmeansInit::Density => density(s, k),
    };
    centres.sort_by(f64::total_cmp);
    centres.dedup();
    centres
}

fn linear(s: &SortedWeights, k: usize) -> Vec<f64> {
    let lo = f64::from(s.values[0]);
    let hi = f64::from(s.values[s.len() - 1]);
    if k == 1 {
        return vec![s.centre(0, s.len()).unwrap_or(lo)];
    }
    (0..k)
        .map(|j| lo + (hi - lo) * j as f64 / (k - 1) as f64)
        .collect()
}

fn density(s: &SortedWeights, k: usize) -> Vec<f64> {
    let total = s.sum_h(0, s.len());
    (0..k)
        .map(|j| {
            let q = (j as f64 + 0.5) / k as f64;
            let p = if total > 0.0 {
                // first position whose cumulative importance reaches q
                let target = q * total;
                s.prefix_h[1..]
                    .partition_point(|&c| c < target)
                    .min(s.len() - 1)
            } else {
                ((q * s.len() as f64) as usize).min(s.len() - 1)
            };
            f64::from(s.values[p])
        })
        .collect()
}

/// The importance-weighted potential of the sorted positions `[lo, hi)`
/// whose nearest centres are among `left` and `right` (the neighbouring
/// centres around that range; `None` past either end).
fn gap_mass(s: &SortedWeights, lo: usize, hi: usize, left: Option<f64>, right: Option<f64>) -> f64 {
    if lo >= hi {
        return 0.0;
    }
    match (left, right) {
        (Some(a), Some(b)) => {
            let mid = s.lower_bound(0.5 * (a + b), false).clamp(lo, hi);
            s.cost_to(lo, mid, a) + s.cost_to(mid, hi, b)
        }
        (Some(a), None) => s.cost_to(lo, hi, a),
        (None, Some(b)) => s.cost_to(lo, hi, b),
        (None, None) => 0.0,
    }
}

/// Sorted centres with the potential of each gap around them: gap `g` lies
/// between `centres[g - 1]` and `centres[g]` (gap 0 before the first centre,
/// the last gap after the last one).
struct Gaps {
    centres: Vec<f64>,
    starts: Vec<usize>,
    mass: Vec<f64>,
}

impl Gaps {
    fn new(s: &SortedWeights, first: f64) -> Self {
        let split = s.lower_bound(first, true);
        let mass = vec![
            gap_mass(s, 0, split, None, Some(first)),
            gap_mass(s, split, s.len(), Some(first), None),
        ];
        Self {
            centres: vec![first],
            starts: vec![0, split, s.len()],
            mass,
        }
    }

    fn neighbours(&self, g: usize) -> (Option<f64>, Option<f64>) {
        let left = g.checked_sub(1).map(|i| self.centres[i]);
        (left, self.centres.get(g).copied())
    }

    fn total(&self) -> f64 {
        self.mass.iter().sum()
    }

    /// Draws a point with probability proportional to its share of the
    /// potential; `None` when no point has any left.
    fn sample(&self, s: &SortedWeights, rng: &mut ChaCha8Rng) -> Option<(usize, f64)> {
        let total = self.total();
        if total <= 0.0 || !total.is_finite() {
            return None;
        }
        // in (0, total]: the drawn point then has positive potential
        let mut u = (1.0 - rng.random::<f64>()) * total;
        // rounding can leave u just past the last gap: fall back to the
        // last gap that has potential, at its end
        let mut g = self.mass.iter().rposition(|&m| m > 0.0)?;
        for (i, &m) in self.mass.iter().enumerate() {
            if u <= m && m > 0.0 {
                g = i;
                break;
            }
            u -= m;
        }
        let u = u.min(self.mass[g]);
        let (lo, hi) = (self.starts[g], self.starts[g + 1]);
        let (left, right) = self.neighbours(g);
        // smallest end p in (lo, hi] whose cumulative potential reaches u
        let (mut a, mut b) = (lo + 1, hi);
        while a < b {
            let m = a + (b - a) / 2;
            if gap_mass(s, lo, m, left, right) >= u {
                b = m;
            } else {
                a = m + 1;
            }
        }
        let value = f64::from(s.values[a.min(hi) - 1]);
        let is_centre = left == Some(value) || right == Some(value);
        (!is_centre).then_some((g, value))
    }

    /// The masses of the two gaps that replace gap `g` if `c` is inserted.
    fn split(&self, s: &SortedWeights, g: usize, c: f64) -> (usize, f64, f64) {
        let (lo, hi) = (self.starts[g], self.starts[g + 1]);
        let (left, right) = self.neighbours(g);
        let at = s.lower_bound(c, true).clamp(lo, hi);
        (
            at,
            gap_mass(s, lo, at, left, Some(c)),
            gap_mass(s, at, hi, Some(c), right),
        )
    }

    fn insert(&mut self, s: &SortedWeights, g: usize, c: f64) {
        let (at, left_mass, right_mass) = self.split(s, g, c);
        self.centres.insert(g, c);
        self.starts.insert(g + 1, at);
        self.mass[g] = left_mass;
        self.mass.insert(g + 1, right_mass);
    }
}

fn plus_plus(s: &SortedWeights, k: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = s.len();
    let total_h = s.sum_h(0, n);
    let first = if total_h > 0.0 {
        let u = (1.0 - rng.random::<f64>()) * total_h;
        s.prefix_h[1..].partition_point(|&c| c < u).min(n - 1)
    } else {
        rng.random_range(0..n)
    };
    let mut gaps = Gaps::new(s, f64::from(s.values[first]));
    let trials = 2 + (k as f64).ln() as usize;
    while gaps.centres.len() < k {
        let total = gaps.total();
        let mut best: Option<(f64, usize, f64)> = None;
        for _ in 0..trials {
            let Some((g, c)) = gaps.sample(s, &mut rng) else {
                continue;
            };
            let (_, l, r) = gaps.split(s, g, c);
            let potential = total - gaps.mass[g] + l + r;
            if best.is_none_or(|(p, _, _)| potential < p) {
                best = Some((potential, g, c));
            }
        }
        match best {
            Some((_, g, c)) => gaps.insert(s, g, c),
            None => break,
        }
    }
    gaps.centres
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_and_density_by_hand() {
        let s = SortedWeights::new(&[0.0, 1.0, 2.0, 3.0, 4.0, 8.0], &[1.0; 6]);
        assert_eq!(
            initial_centres_sorted(&s, KmeansInit::Linear, 3, 0),
            vec![0.0, 4.0, 8.0]
        );
        // quantiles 1/6, 3/6, 5/6 of 6 unit masses: positions 0, 2, 4
        assert_eq!(
            initial_centres_sorted(&s, KmeansInit::Density, 3, 0),
            vec![0.0, 2.0, 4.0]
        );
    }

    #[test]
    fn plus_plus_picks_distinct_points_and_stops_when_out_of_values() {
        let s = SortedWeights::new(&[1.0, 1.0, 5.0, 5.0, 9.0], &[1.0; 5]);
        let c = initial_centres_sorted(&s, KmeansInit::PlusPlus, 10, 3);
        assert_eq!(c, vec![1.0, 5.0, 9.0]);
    }

    #[test]
    fn plus_plus_ignores_zero_importance_points() {
        // only the points with h > 0 can carry potential
        let s = SortedWeights::new(&[0.0, 1.0, 2.0, 100.0], &[1.0, 1.0, 1.0, 0.0]);
        let c = initial_centres_sorted(&s, KmeansInit::PlusPlus, 4, 7);
        assert!(!c.contains(&100.0));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn gap_mass_by_hand() {
        // points 0, 1, 3 between centres 0 and 4: midpoint 2 sends 0, 1 to 0
        // (cost 0 + 1) and 3 to 4 (cost 1)
        let s = SortedWeights::new(&[0.0, 1.0, 3.0], &[1.0, 1.0, 1.0]);
        assert!((gap_mass(&s, 0, 3, Some(0.0), Some(4.0)) - 2.0).abs() < 1e-12);
    }
}
