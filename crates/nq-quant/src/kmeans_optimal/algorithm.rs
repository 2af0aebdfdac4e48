//! The layered dynamic program, solved layer by layer with a parallel
//! monotone divide and conquer.

use rayon::prelude::*;

use super::params::OptimalParams;
use super::table::MonotoneTable;
use crate::error::Result;
use crate::input::{validate, SortedWeights};
use crate::quantization::Quantization;

/// Row segments this short are solved row by row.
const LEAF_ROWS: usize = 4;

/// Row segments at least this long are split between threads.
const PARALLEL_ROWS: usize = 4096;

/// The sorted data with equal values merged into groups: cuts are only made
/// between groups, so equal weights always share a cluster.
struct Groups {
    /// Sorted position where each group starts, then `N` (length `G + 1`).
    starts: Vec<usize>,
    /// `sum h` before each group start (length `G + 1`); with `hw`, `hw2`
    /// one array per sum, so that the cost scan vectorises.
    h: Vec<f64>,
    /// `sum h w` before each group start.
    hw: Vec<f64>,
    /// `sum h w^2` before each group start.
    hw2: Vec<f64>,
}

impl Groups {
    fn new(s: &SortedWeights) -> Self {
        let n = s.len();
        let mut starts = Vec::with_capacity(n + 1);
        starts.push(0);
        starts.extend((1..n).filter(|&p| s.values[p] != s.values[p - 1]));
        starts.push(n);
        let pick = |prefix: &[f64]| -> Vec<f64> { starts.iter().map(|&p| prefix[p]).collect() };
        let (h, hw, hw2) = (pick(&s.prefix_h), pick(&s.prefix_hw), pick(&s.prefix_hw2));
        Self { starts, h, hw, hw2 }
    }

    /// Number of groups (distinct values).
    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// `min_c sum h (w - c)^2` over groups `[t, i)`, as
    /// [`SortedWeights::range_cost`] computes it.
    #[inline]
    fn cost(&self, t: usize, i: usize) -> f64 {
        cost_of(
            self.h[i] - self.h[t],
            self.hw[i] - self.hw[t],
            self.hw2[i] - self.hw2[t],
        )
    }
}

/// `sum h w^2 - (sum h w)^2 / sum h`, or 0 when that is negative (rounding)
/// or not a number (`sum h = 0`, then `sum h w = 0` too). Branch-free, so
/// that the scan over candidate cuts vectorises.
#[inline(always)]
fn cost_of(sh: f64, shw: f64, shw2: f64) -> f64 {
    let c = shw2 - shw * shw / sh;
    if c > 0.0 {
        c
    } else {
        0.0
    }
}

/// Candidates scored at once before the argmin scan.
const CHUNK: usize = 64;

/// Ranges shorter than this are scanned in one plain loop.
const SMALL: usize = 16;

/// Ranges at least this long are scanned by several threads.
const PARALLEL_SCAN: usize = 1 << 16;

/// The smallest `prev[r] + cost(start r, end)` and its first position
/// `first + r`, the costs computed `CHUNK` at a time into a buffer.
fn scan(
    end: (f64, f64, f64),
    first: usize,
    prev: &[f64],
    h: &[f64],
    hw: &[f64],
    hw2: &[f64],
) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut arg = first;
    let mut buf = [0.0f64; CHUNK];
    let mut start = first;
    for (((p, a), b), c) in prev
        .chunks(CHUNK)
        .zip(h.chunks(CHUNK))
        .zip(hw.chunks(CHUNK))
        .zip(hw2.chunks(CHUNK))
    {
        let buf = &mut buf[..p.len()];
        for ((((v, p), a), b), c) in buf.iter_mut().zip(p).zip(a).zip(b).zip(c) {
            *v = p + cost_of(end.0 - a, end.1 - b, end.2 - c);
        }
        let chunk_min = min_of(buf);
        if chunk_min < best {
            best = chunk_min;
            arg = start
                + buf
                    .iter()
                    .position(|&v| v == chunk_min)
                    .expect("the minimum is in the chunk");
        }
        start += p.len();
    }
    (best, arg)
}

/// The smallest value of a nonempty slice of numbers (none NaN), with
/// four accumulators so that it vectorises.
#[inline(always)]
fn min_of(v: &[f64]) -> f64 {
    let mut m = [f64::INFINITY; 4];
    let mut quads = v.chunks_exact(4);
    for q in &mut quads {
        for l in 0..4 {
            m[l] = if q[l] < m[l] { q[l] } else { m[l] };
        }
    }
    let mut best = m[0].min(m[1]).min(m[2].min(m[3]));
    for &x in quads.remainder() {
        best = best.min(x);
    }
    best
}

/// One layer `m >= 2` of the program: `D_m(i) = min_t D_{m-1}(t) + cost(t, i)`.
struct Layer<'a> {
    groups: &'a Groups,
    /// `D_{m-1}`, indexed by group.
    prev: &'a [f64],
    /// Argmins of layer `m - 1`, indexed by group, valid on rows
    /// `[m - 1, prev_opt_end)`: `opt_m(i) >= opt_{m-1}(i)` bounds the search
    /// from below (the breakpoints of `m - 1` and `m` clusters interleave).
    prev_opt: &'a [u32],
    prev_opt_end: usize,
    /// Smallest possible start of the last cluster: `m - 1`.
    t_min: usize,
}

impl Layer<'_> {
    /// The smallest `D_{m-1}(t) + cost(t, i)` over `t` in `[lo, hi]`, first
    /// argmin on ties. Long ranges are split between threads; in each part
    /// candidates are scored a chunk at a time into a buffer (a vectorised
    /// loop: the division dominates), then scanned.
    #[inline]
    fn best(&self, i: usize, lo: usize, hi: usize) -> (f64, usize) {
        let g = self.groups;
        let end = (g.h[i], g.hw[i], g.hw2[i]);
        let (prev, h, hw, hw2) = (
            &self.prev[lo..=hi],
            &g.h[lo..=hi],
            &g.hw[lo..=hi],
            &g.hw2[lo..=hi],
        );
        if lo == hi {
            // forced: the argmin does not wait for the division
            return (
                prev[0] + cost_of(end.0 - h[0], end.1 - hw[0], end.2 - hw2[0]),
                lo,
            );
        }
        if prev.len() < SMALL {
            let mut best = f64::INFINITY;
            let mut arg = lo;
            for (t, (((p, a), b), c)) in (lo..).zip(prev.iter().zip(h).zip(hw).zip(hw2)) {
                let v = p + cost_of(end.0 - a, end.1 - b, end.2 - c);
                if v < best {
                    best = v;
                    arg = t;
                }
            }
            return (best, arg);
        }
        if prev.len() < PARALLEL_SCAN {
            return scan(end, lo, prev, h, hw, hw2);
        }
        let parts = prev.len().div_ceil(PARALLEL_SCAN / 2);
        let part = prev.len().div_ceil(parts);
        prev.par_chunks(part)
            .zip(h.par_chunks(part))
            .zip(hw.par_chunks(part))
            .zip(hw2.par_chunks(part))
            .enumerate()
            .map(|(j, (((p, a), b), c))| scan(end, lo + j * part, p, a, b, c))
            .reduce(
                || (f64::INFINITY, usize::MAX),
                |x, y| {
                    if y.0 < x.0 || (y.0 == x.0 && y.1 < x.1) {
                        y
                    } else {
                        x
                    }
                },
            )
    }

    /// The best cut for row `i` when the argmin is known to lie in
    /// `[opt_lo, opt_hi]`; the range is narrowed by `t >= m - 1`,
    /// `t >= opt_{m-1}(i)` and `t < i`, and never left.
    #[inline]
    fn row(&self, i: usize, opt_lo: usize, opt_hi: usize) -> (f64, usize) {
        let hi = opt_hi.min(i - 1);
        let mut lo = opt_lo.max(self.t_min);
        if i < self.prev_opt_end {
            lo = lo.max(self.prev_opt[i] as usize);
        }
        self.best(i, lo.min(hi), hi)
    }

    /// Fills `d[r]` and `opt[r]` for rows `first + r`, knowing that their
    /// argmins lie in `[opt_lo, opt_hi]` (monotone in the row): the middle
    /// row by a scan, then the rows below and above it, which are
    /// independent, on two threads when there are many.
    fn solve(&self, first: usize, d: &mut [f64], opt: &mut [u32], opt_lo: usize, opt_hi: usize) {
        if d.len() <= LEAF_ROWS {
            // a few rows: one after the other, each starting at the last argmin
            let mut lo = opt_lo;
            for (r, (d, o)) in d.iter_mut().zip(opt.iter_mut()).enumerate() {
                let (value, arg) = self.row(first + r, lo, opt_hi);
                (*d, *o, lo) = (value, arg as u32, arg);
            }
            return;
        }
        let mid = d.len() / 2;
        let i = first + mid;
        let (value, arg) = self.row(i, opt_lo, opt_hi);
        let (d_left, d_rest) = d.split_at_mut(mid);
        let (d_mid, d_right) = d_rest.split_at_mut(1);
        let (o_left, o_rest) = opt.split_at_mut(mid);
        let (o_mid, o_right) = o_rest.split_at_mut(1);
        d_mid[0] = value;
        o_mid[0] = arg as u32;
        if d_left.len() + d_right.len() >= PARALLEL_ROWS {
            rayon::join(
                || self.solve(first, d_left, o_left, opt_lo, arg),
                || self.solve(i + 1, d_right, o_right, arg, opt_hi),
            );
        } else {
            self.solve(first, d_left, o_left, opt_lo, arg);
            self.solve(i + 1, d_right, o_right, arg, opt_hi);
        }
    }
}

/// Group boundaries `0 = b_0 < b_1 < ... < b_k = G` of an optimal partition
/// of `G > k` groups into `k` intervals.
fn optimal_bounds(groups: &Groups, k: usize) -> Vec<usize> {
    let g = groups.len();
    debug_assert!(g > k && k >= 1);
    if k == 1 {
        return vec![0, g];
    }
    // Layer m is needed on rows [m, g - k + m]: m nonempty clusters need m
    // groups, and the k - m clusters after them need k - m more.
    let mut prev = vec![0.0f64; g + 1];
    let mut cur = vec![0.0f64; g + 1];
    let mut prev_opt = vec![0u32; g + 1];
    let mut cur_opt = vec![0u32; g + 1];
    let mut prev_opt_end = 0;
    prev[1..=g - k + 1]
        .par_iter_mut()
        .enumerate()
        .for_each(|(r, d)| *d = groups.cost(0, r + 1));
    let mut table = MonotoneTable::new();
    for m in 2..k {
        let (first, last) = (m, g - k + m);
        let layer = Layer {
            groups,
            prev: &prev,
            prev_opt: &prev_opt,
            prev_opt_end,
            t_min: m - 1,
        };
        layer.solve(
            first,
            &mut cur[first..=last],
            &mut cur_opt[first..=last],
            m - 1,
            last - 1,
        );
        table.push(first, &cur_opt[first..=last]);
        std::mem::swap(&mut prev, &mut cur);
        std::mem::swap(&mut prev_opt, &mut cur_opt);
        prev_opt_end = last + 1;
    }
    // The last layer is needed at row g only.
    let (_, last_cut) = (k - 1..g)
        .into_par_iter()
        .map(|t| (prev[t] + groups.cost(t, g), t))
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        .expect("g > k - 1");
    let mut bounds = vec![0; k + 1];
    bounds[k] = g;
    bounds[k - 1] = last_cut;
    for m in (2..k).rev() {
        bounds[m - 1] = table.get(m - 2, bounds[m]) as usize;
    }
    bounds
}

/// The exact optimum on data already sorted; see [`kmeans_optimal`].
pub fn kmeans_optimal_sorted(s: &SortedWeights, params: &OptimalParams) -> Result<Quantization> {
    params.validate()?;
    let groups = Groups::new(s);
    let bounds: Vec<usize> = if groups.len() <= params.k {
        groups.starts.clone()
    } else {
        optimal_bounds(&groups, params.k)
            .into_iter()
            .map(|b| groups.starts[b])
            .collect()
    };
    let (centres, assignment) = s.intervals_to_assignment(&bounds);
    // every interval is nonempty, so centre j belongs to interval j
    let objective = bounds
        .windows(2)
        .zip(&centres)
        .map(|(p, &c)| s.cost_to(p[0], p[1], f64::from(c)))
        .sum();
    Ok(Quantization {
        centres,
        assignment,
        iterations: 0,
        history: vec![objective],
        dither: None,
    })
}

/// Exact weighted k-means in one dimension: the partition into at most
/// `params.k` clusters minimising `sum_i h_i (w_i - c_{a(i)})^2`, with each
/// centre the h-weighted mean of its cluster (module documentation).
///
/// Returns `min(k, distinct values)` clusters, `iterations = 0` and
/// `history = [objective]`, the objective of the returned (f32) centres
/// computed from the f64 prefix sums.
pub fn kmeans_optimal(w: &[f32], h: &[f32], params: &OptimalParams) -> Result<Quantization> {
    validate(w, h)?;
    params.validate()?;
    kmeans_optimal_sorted(&SortedWeights::new(w, h), params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn every_scan_path_finds_the_first_minimum() {
        let n = 3 * PARALLEL_SCAN;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let w: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let h: Vec<f32> = (0..n).map(|_| rng.random_range(0.0f32..2.0)).collect();
        let s = SortedWeights::new(&w, &h);
        let groups = Groups::new(&s);
        let g = groups.len();
        // a decreasing D row, with repeated values so that ties occur
        let prev: Vec<f64> = (0..=g).map(|t| ((g - t) / 1000) as f64 * 1e-3).collect();
        let layer = Layer {
            groups: &groups,
            prev: &prev,
            prev_opt: &[],
            prev_opt_end: 0,
            t_min: 1,
        };
        for (lo, hi) in [
            (5, 5),
            (5, 9),
            (5, 40),
            (5, 1000),
            (2, g - 1),
            (g / 3, g - 1),
        ] {
            let i = g.min(hi + 1 + 500);
            let (mut best, mut arg) = (f64::INFINITY, lo);
            for (t, d) in prev.iter().enumerate().take(hi + 1).skip(lo) {
                let v = d + groups.cost(t, i);
                if v < best {
                    (best, arg) = (v, t);
                }
            }
            assert_eq!(layer.best(i, lo, hi), (best, arg), "range [{lo}, {hi}]");
        }
    }
}
