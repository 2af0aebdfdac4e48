//! The uniform quantizer: the cell width, then one parallel pass that
//! assigns every weight to its cell and sums the cell statistics.

use rayon::prelude::*;

use super::hyperparams::{CellWidth, UniformCentre, UniformParams};
use crate::error::{ensure_param, QuantError, Result};
use crate::input::validate;
use crate::quantization::Quantization;

/// Cell-index spans up to this size are counted in a dense table; wider
/// spans (a tiny `delta`) go through a sort of the cell indices instead.
const DENSE_MAX_CELLS: i64 = 1 << 16;
/// Smallest chunk of weights one task accumulates.
const MIN_CHUNK: usize = 1 << 14;
/// Most chunks (so most partial tables) of one pass.
const MAX_CHUNKS: usize = 64;
/// Most table entries of all chunks of one pass together.
const MAX_ENTRIES: usize = 1 << 20;
/// `max |w| / delta` must stay below this (`2^52`) for exact cell indices.
const MAX_REACH: f64 = 4_503_599_627_370_496.0;

/// Length of the chunks a parallel pass over `n` weights splits into when
/// every chunk keeps a table of `k` entries.
///
/// The partial tables are merged in chunk order, and the chunking depends
/// only on `n` and `k` (never on the thread count or on work stealing), so
/// floating-point sums, and hence results, repeat exactly.
pub(crate) fn chunk_len(n: usize, k: usize) -> usize {
    let chunks = (n / MIN_CHUNK)
        .min(MAX_CHUNKS)
        .min(MAX_ENTRIES / k.max(1))
        .max(1);
    n.div_ceil(chunks).max(1)
}

/// Index of the cell holding `x`: `n = floor(x / delta + 1/2)`, so cell `n`
/// is `[(n - 1/2) delta, (n + 1/2) delta)` and 0 lies at the centre of
/// cell 0. (Rounding to nearest, with ties going up to keep the cells
/// half-open.)
#[inline]
pub(crate) fn cell_of(x: f64, delta: f64) -> i64 {
    let t = x / delta + 0.5;
    // floor without a libm call: truncate, then step down for negative
    // non-integers (`as` saturates far out of range, where the caller has
    // already refused the step)
    let n = t as i64;
    n - i64::from((n as f64) > t)
}

/// Number of cells of width `delta` that cover `[lo, hi]`.
fn cell_count(lo: f64, hi: f64, delta: f64) -> i128 {
    i128::from(cell_of(hi, delta)) - i128::from(cell_of(lo, delta)) + 1
}

/// `(min, max)` of the weights, in f64 (exact, so deterministic in parallel).
pub(crate) fn weight_range(w: &[f32]) -> (f64, f64) {
    const LANES: usize = 16;
    // lane-wise selects on finite values vectorise; f32::min would not
    let chunk_range = |c: &[f32]| {
        let mut lo = [f32::INFINITY; LANES];
        let mut hi = [f32::NEG_INFINITY; LANES];
        let mut blocks = c.chunks_exact(LANES);
        for block in &mut blocks {
            for l in 0..LANES {
                lo[l] = if block[l] < lo[l] { block[l] } else { lo[l] };
                hi[l] = if block[l] > hi[l] { block[l] } else { hi[l] };
            }
        }
        let tail = blocks.remainder().iter();
        let lo = lo
            .iter()
            .chain(tail.clone())
            .fold(f32::INFINITY, |a, &b| a.min(b));
        let hi = hi
            .iter()
            .chain(tail)
            .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        (lo, hi)
    };
    let (lo, hi) = w.par_chunks(MIN_CHUNK).map(chunk_range).reduce(
        || (f32::INFINITY, f32::NEG_INFINITY),
        |a, b| (a.0.min(b.0), a.1.max(b.1)),
    );
    (f64::from(lo), f64::from(hi))
}

/// The next larger f64 (for positive finite `x`); `f64::next_up` needs a
/// newer Rust than this workspace's minimum.
fn next_up(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1)
}

/// `start` if it fits, else the first fitting step of a geometrically
/// growing sequence from it (ulp-sized steps first). Only for a `fits` that
/// is monotone in the step and true for large steps.
fn grow(start: f64, fits: impl Fn(f64) -> bool) -> f64 {
    let mut d = start.max(f64::MIN_POSITIVE);
    let mut eps = f64::EPSILON;
    while !fits(d) {
        d = (d * (1.0 + eps)).max(next_up(d));
        eps *= 2.0;
    }
    d
}

/// `start` or one of the next few floats if one fits.
fn settle(start: f64, fits: impl Fn(f64) -> bool) -> Option<f64> {
    let mut d = start;
    for _ in 0..8 {
        if d > 0.0 && d.is_finite() && fits(d) {
            return Some(d);
        }
        d = next_up(d);
    }
    None
}

/// Smallest steps, one per choice of the first cell, that let at most `k`
/// cells cover `[lo, hi]` when `0 < lo < hi`, best first; the last one (cell
/// 0 holds `lo`) is the fallback that always works after growing.
///
/// With first cell `m >= 1` the step must satisfy
/// `(m - 1/2) d <= lo` and `hi < (m + k - 1/2) d`, which has solutions while
/// `m < R = (hi / 2 + (k - 1/2) lo) / (hi - lo)`; the lower bound
/// `max(hi / (m + k - 1/2), lo / (m + 1/2))` falls as `m` grows, so the best
/// `m` is the largest below `R`.
fn one_sided_candidates(lo: f64, hi: f64, k: f64) -> (Vec<f64>, f64) {
    let bound = |m: f64| (hi / (m + k - 0.5)).max(lo / (m + 0.5));
    let r = (0.5 * hi + (k - 0.5) * lo) / (hi - lo);
    let mut candidates = Vec::new();
    let mut m = r.ceil() - 1.0;
    let mut back = 1.0;
    while m >= 1.0 && candidates.len() < 64 {
        candidates.push(bound(m));
        m -= back;
        back *= 2.0;
    }
    (candidates, (2.0 * lo).max(hi / (k - 0.5)))
}

/// The smallest step for which at most `k` cells cover `[lo, hi]`.
///
/// - `lo == hi`: one cell, with `delta = |lo|` so the value is the cell's
///   midpoint (`delta = 1` when the value is 0).
/// - `lo <= 0 <= hi`: with `a` cells above cell 0 and `b` below it
///   (`a + b = k - 1`) the step must exceed `hi / (a + 1/2)` and reach
///   `-lo / (b + 1/2)`; the larger of the two is smallest where they cross,
///   at `a + 1/2 = k hi / (hi - lo)`. The result lies in
///   `((hi - lo) / k, (hi - lo) / (k - 1)]`.
/// - all weights on one side of 0: see [`one_sided_candidates`].
///
/// Every candidate is checked with the very cell function the quantizer
/// uses and nudged up by a few ulps where rounding demands it.
fn step_for_cells(lo: f64, hi: f64, k: usize) -> f64 {
    if lo == hi {
        return if lo == 0.0 { 1.0 } else { lo.abs() };
    }
    let kf = k as f64;
    let fits = |d: f64| cell_count(lo, hi, d) <= k as i128;
    if lo <= 0.0 && hi >= 0.0 {
        let cross = kf * hi / (hi - lo) - 0.5;
        let step = [cross.floor(), cross.ceil()]
            .into_iter()
            .map(|a| {
                let a = a.clamp(0.0, kf - 1.0);
                let b = kf - 1.0 - a;
                (hi / (a + 0.5)).max(-lo / (b + 0.5))
            })
            .fold(f64::INFINITY, f64::min);
        // the cell count only falls as the step grows when 0 is inside
        return grow(step, fits);
    }
    // mirror negative data onto the positive side; `fits` checks the real one
    let (candidates, fallback) = if lo > 0.0 {
        one_sided_candidates(lo, hi, kf)
    } else {
        one_sided_candidates(-hi, -lo, kf)
    };
    candidates
        .into_iter()
        .find_map(|c| settle(c, fits))
        .unwrap_or_else(|| grow(fallback, fits))
}

/// The step for `width` on weights spanning `[lo, hi]`.
fn step_for(lo: f64, hi: f64, width: &CellWidth) -> f64 {
    match *width {
        CellWidth::Cells(k) => step_for_cells(lo, hi, k),
        CellWidth::Step(delta) => delta,
    }
}

/// The cell width `delta` that [`uniform`] uses on `w`.
///
/// For [`CellWidth::Step`] it is the given step. For [`CellWidth::Cells`]
/// (`k`) it is the smallest step for which at most `k` cells (aligned so
/// that 0 is a cell centre) cover `[min w, max w]`. When the weights
/// straddle 0 it lies in `((max - min) / k, (max - min) / (k - 1)]`: since 0
/// must be a centre, the range cannot always be split into exactly `k`
/// cells, and a symmetric range with even `k` uses `k - 1` of them. When all
/// weights are equal it is `|w|` (so the weight is its cell's midpoint), or 1
/// for all-zero weights.
pub fn uniform_step(w: &[f32], width: &CellWidth) -> Result<f64> {
    if w.is_empty() {
        return Err(QuantError::EmptyInput);
    }
    if let Some(index) = w.iter().position(|v| !v.is_finite()) {
        return Err(QuantError::NonFiniteWeight {
            index,
            value: w[index],
        });
    }
    width.validate()?;
    let (lo, hi) = weight_range(w);
    Ok(step_for(lo, hi, width))
}

/// Statistics of one cell, relative to a reference value `r` (the cell's
/// midpoint): `d = w - r`, summed in f64 so means of narrow cells far from
/// 0 lose nothing to cancellation.
#[derive(Debug, Clone, Copy, Default)]
struct CellSums {
    n: u64,
    sd: f64,
    sh: f64,
    shd: f64,
}

impl CellSums {
    #[inline]
    fn add(&mut self, d: f64, h: f64) {
        self.n += 1;
        self.sd += d;
        self.sh += h;
        self.shd += h * d;
    }

    fn merge(&mut self, o: &Self) {
        self.n += o.n;
        self.sd += o.sd;
        self.sh += o.sh;
        self.shd += o.shd;
    }
}

/// Adds the partial tables in chunk order.
fn merge_tables(partial: Vec<Vec<CellSums>>, k: usize) -> Vec<CellSums> {
    let mut total = vec![CellSums::default(); k];
    for table in &partial {
        total.iter_mut().zip(table).for_each(|(t, p)| t.merge(p));
    }
    total
}

/// A span of at most [`DENSE_MAX_CELLS`] cells: one pass writes each
/// weight's cell offset and fills per-chunk tables; a second maps offsets to
/// the numbers of the non-empty cells. Returns the non-empty cells, their
/// sums and the assignment.
fn dense(
    w: &[f32],
    h: &[f32],
    delta: f64,
    n_lo: i64,
    n_hi: i64,
) -> (Vec<i64>, Vec<CellSums>, Vec<u32>) {
    let span = (n_hi - n_lo + 1) as usize;
    let chunk = chunk_len(w.len(), span);
    let mut assignment = vec![0u32; w.len()];
    let partial: Vec<Vec<CellSums>> = assignment
        .par_chunks_mut(chunk)
        .zip(w.par_chunks(chunk))
        .zip(h.par_chunks(chunk))
        .map(|((ac, wc), hc)| {
            let mut table = vec![CellSums::default(); span];
            for ((a, &wi), &hi) in ac.iter_mut().zip(wc).zip(hc) {
                let x = f64::from(wi);
                // the cell function is monotone, so this clamp never bites
                let n = cell_of(x, delta).clamp(n_lo, n_hi);
                let j = (n - n_lo) as usize;
                *a = j as u32;
                table[j].add(x - n as f64 * delta, f64::from(hi));
            }
            table
        })
        .collect();
    let sums = merge_tables(partial, span);
    let mut ids = vec![u32::MAX; span];
    let mut cells = Vec::new();
    let mut kept = Vec::new();
    for (j, s) in sums.into_iter().enumerate() {
        if s.n > 0 {
            ids[j] = cells.len() as u32;
            cells.push(n_lo + j as i64);
            kept.push(s);
        }
    }
    if cells.len() < span {
        assignment
            .par_iter_mut()
            .for_each(|a| *a = ids[*a as usize]);
    }
    (cells, kept, assignment)
}

/// A wide span (tiny `delta`): the distinct cell indices are sorted once
/// and each weight finds its cell by binary search.
fn sparse(w: &[f32], h: &[f32], delta: f64) -> (Vec<i64>, Vec<CellSums>, Vec<u32>) {
    let of: Vec<i64> = w
        .par_iter()
        .map(|&x| cell_of(f64::from(x), delta))
        .collect();
    let mut cells = of.clone();
    cells.par_sort_unstable();
    cells.dedup();
    let assignment: Vec<u32> = of
        .par_iter()
        .map(|c| cells.binary_search(c).unwrap_or_else(|p| p) as u32)
        .collect();
    drop(of);
    let k = cells.len();
    let chunk = chunk_len(w.len(), k);
    let partial: Vec<Vec<CellSums>> = assignment
        .par_chunks(chunk)
        .zip(w.par_chunks(chunk))
        .zip(h.par_chunks(chunk))
        .map(|((ac, wc), hc)| {
            let mut table = vec![CellSums::default(); k];
            for ((&a, &wi), &hi) in ac.iter().zip(wc).zip(hc) {
                let r = cells[a as usize] as f64 * delta;
                table[a as usize].add(f64::from(wi) - r, f64::from(hi));
            }
            table
        })
        .collect();
    let sums = merge_tables(partial, k);
    (cells, sums, assignment)
}

/// The shared value of cell `n` with members summarised by `s` (`s.n > 0`).
fn centre_of(n: i64, s: &CellSums, delta: f64, how: UniformCentre) -> f64 {
    let mid = n as f64 * delta;
    let mean = mid + s.sd / s.n as f64;
    match how {
        UniformCentre::Midpoint => mid,
        UniformCentre::Mean => mean,
        UniformCentre::WeightedMean if s.sh > 0.0 => mid + s.shd / s.sh,
        UniformCentre::WeightedMean => mean,
    }
}

/// Uniform scalar quantization (paper.md 4.2).
///
/// Cell `n` is `[(n - 1/2) delta, (n + 1/2) delta)`, so 0 lies at the centre
/// of cell 0 and a weight goes to cell `floor(w / delta + 1/2)`; `delta` is
/// given or derived from a number of cells by [`uniform_step`]. Each
/// non-empty cell becomes one cluster, numbered in increasing order of
/// value, whose centre is the cell's midpoint, the mean of its members or
/// their `h`-weighted mean (the plain mean when their `h` sum to 0). Empty
/// cells are dropped. One-shot: `iterations` is 0 and `history` empty.
///
/// Cost: two parallel passes over the weights (plus a sort of the cell
/// indices when more than 65,536 cells span the range).
pub fn uniform(w: &[f32], h: &[f32], params: &UniformParams) -> Result<Quantization> {
    validate(w, h)?;
    params.validate()?;
    let (lo, hi) = weight_range(w);
    let delta = step_for(lo, hi, &params.width);
    let reach = lo.abs().max(hi.abs()) / delta;
    ensure_param(
        reach < MAX_REACH,
        "delta",
        format!(
            "delta = {delta} is too small for weights up to {} in magnitude",
            lo.abs().max(hi.abs())
        ),
    )?;
    let (n_lo, n_hi) = (cell_of(lo, delta), cell_of(hi, delta));
    let (cells, sums, assignment) = if n_hi - n_lo < DENSE_MAX_CELLS {
        dense(w, h, delta, n_lo, n_hi)
    } else {
        sparse(w, h, delta)
    };
    let centres = cells
        .iter()
        .zip(&sums)
        .map(|(&n, s)| centre_of(n, s, delta, params.centre) as f32)
        .collect();
    Ok(Quantization {
        centres,
        assignment,
        iterations: 0,
        history: Vec::new(),
        dither: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(width: CellWidth, centre: UniformCentre) -> UniformParams {
        UniformParams { width, centre }
    }

    fn close(a: &[f32], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(&x, &y)| (f64::from(x) - y).abs() < 1e-6)
    }

    #[test]
    fn fixed_step_by_hand() {
        // delta 0.5: cell n = floor(w / 0.5 + 1/2)
        //   -1.0 -> floor(-1.5) = -2, -0.9 -> floor(-1.3) = -2,
        //    0.1 -> floor(0.7) = 0,    0.2 -> floor(0.9) = 0,
        //    0.3 -> floor(1.1) = 1,    1.1 -> floor(2.7) = 2;
        // cell -1 is empty and dropped: clusters -2, 0, 1, 2.
        let w = [-1.0, -0.9, 0.1, 0.2, 0.3, 1.1];
        let h = [1.0, 3.0, 1.0, 1.0, 2.0, 1.0];
        let step = CellWidth::Step(0.5);
        let q = uniform(&w, &h, &params(step, UniformCentre::Midpoint)).unwrap();
        assert_eq!(q.assignment, vec![0, 0, 1, 1, 2, 3]);
        assert_eq!(q.centres, vec![-1.0, 0.0, 0.5, 1.0]);
        assert_eq!((q.iterations, q.history.len()), (0, 0));
        let q = uniform(&w, &h, &params(step, UniformCentre::Mean)).unwrap();
        assert!(
            close(&q.centres, &[-0.95, 0.15, 0.3, 1.1]),
            "{:?}",
            q.centres
        );
        // weighted: (-1 * 1 - 0.9 * 3) / 4 = -0.925
        let q = uniform(&w, &h, &params(step, UniformCentre::WeightedMean)).unwrap();
        assert!(
            close(&q.centres, &[-0.925, 0.15, 0.3, 1.1]),
            "{:?}",
            q.centres
        );
    }

    #[test]
    fn zero_importance_falls_back_to_the_mean() {
        let q = uniform(
            &[0.1, 0.3],
            &[0.0, 0.0],
            &params(CellWidth::Step(1.0), UniformCentre::WeightedMean),
        )
        .unwrap();
        assert!(close(&q.centres, &[0.2]));
    }

    #[test]
    fn steps_by_hand() {
        let step = |w: &[f32], k| uniform_step(w, &CellWidth::Cells(k)).unwrap();
        // [-1, 1], k = 3: cells -1, 0, 1 need 1 < 1.5 d: d just above 2/3
        let d = step(&[-1.0, 1.0], 3);
        assert!(d > 2.0 / 3.0 && d < 2.0 / 3.0 + 1e-12, "{d}");
        // k = 2: cells 0 = [-1, 1) and 1 = [1, 3) at d = 2 exactly
        assert_eq!(step(&[-1.0, 1.0], 2), 2.0);
        // k = 1: one cell [-d/2, d/2) holding 1 needs d > 2
        let d = step(&[-1.0, 1.0], 1);
        assert!(d > 2.0 && d < 2.0 + 1e-12, "{d}");
        // [0, 3], k = 4: cells 0..3 need 3 < 3.5 d: just above 6/7
        let d = step(&[0.0, 3.0], 4);
        assert!(d > 6.0 / 7.0 && d < 6.0 / 7.0 + 1e-12, "{d}");
        // [1, 1.1], k = 1: the best cell is n = 10 (R = (0.55 + 0.5) / 0.1 =
        // 10.5): 1.1 < 10.5 d <= ... so d just above 1.1 / 10.5
        let d = step(&[1.0, 1.1], 1);
        assert!(
            d > 1.1f32 as f64 / 10.5 && d < 1.1f32 as f64 / 10.5 + 1e-12,
            "{d}"
        );
        // the same mirrored
        let d = step(&[-1.1, -1.0], 1);
        assert!((d - 1.1f32 as f64 / 10.5).abs() < 1e-12, "{d}");
        // all equal: the value is the midpoint of its cell
        assert_eq!(step(&[0.25, 0.25], 7), 0.25);
        assert_eq!(step(&[0.0], 7), 1.0);
        assert_eq!(uniform_step(&[0.0], &CellWidth::Step(0.1)).unwrap(), 0.1);
        assert!(uniform_step(&[], &CellWidth::Cells(1)).is_err());
        assert!(uniform_step(&[1.0], &CellWidth::Cells(0)).is_err());
    }

    #[test]
    fn constant_weights_are_kept_exactly() {
        let q = uniform(
            &[-0.3; 5],
            &[1.0; 5],
            &params(CellWidth::Cells(4), UniformCentre::Midpoint),
        )
        .unwrap();
        assert_eq!(q.centres, vec![-0.3]);
        assert_eq!(q.assignment, vec![0; 5]);
    }

    #[test]
    fn tiny_step_uses_the_sorted_path() {
        // 1e-9 spans 2e9 cells: the sparse path, same answer
        let w = [-1.0, 1.0, 0.5, 1.0];
        let q = uniform(
            &w,
            &[1.0; 4],
            &params(CellWidth::Step(1e-9), UniformCentre::Mean),
        )
        .unwrap();
        assert_eq!(q.centres, vec![-1.0, 0.5, 1.0]);
        assert_eq!(q.assignment, vec![0, 2, 1, 2]);
        let too_small = params(CellWidth::Step(1e-300), UniformCentre::Mean);
        assert!(matches!(
            uniform(&w, &[1.0; 4], &too_small),
            Err(QuantError::InvalidParam { name: "delta", .. })
        ));
    }

    #[test]
    fn rejects_bad_input() {
        let p = params(CellWidth::Cells(4), UniformCentre::Mean);
        assert_eq!(uniform(&[], &[], &p), Err(QuantError::EmptyInput));
        assert!(uniform(&[1.0], &[f32::NAN], &p).is_err());
        assert!(uniform(
            &[1.0],
            &[1.0],
            &params(CellWidth::Cells(0), UniformCentre::Mean)
        )
        .is_err());
    }

    fn vectors() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (1usize..300).prop_flat_map(|n| {
            (
                prop::collection::vec(prop_oneof![-10.0f32..10.0, 0.5f32..0.75, -3.0f32..-2.0], n),
                prop::collection::vec(0.0f32..5.0, n),
            )
        })
    }

    fn any_width() -> impl Strategy<Value = CellWidth> {
        prop_oneof![
            (1usize..100).prop_map(CellWidth::Cells),
            (1e-3f64..5.0).prop_map(CellWidth::Step)
        ]
    }

    proptest! {
        #[test]
        fn midpoint_error_is_at_most_half_a_step((w, h) in vectors(), width in any_width()) {
            let delta = uniform_step(&w, &width).unwrap();
            let q = uniform(&w, &h, &params(width, UniformCentre::Midpoint)).unwrap();
            for (&wi, qi) in w.iter().zip(q.quantized()) {
                let tol = 1e-6 * (1.0 + f64::from(wi).abs());
                prop_assert!((f64::from(wi) - f64::from(qi)).abs() <= delta / 2.0 + tol, "{wi} -> {qi}, delta {delta}");
            }
        }

        #[test]
        fn mean_error_is_below_a_step((w, h) in vectors(), width in any_width(), weighted in any::<bool>()) {
            let centre = if weighted { UniformCentre::WeightedMean } else { UniformCentre::Mean };
            let delta = uniform_step(&w, &width).unwrap();
            let q = uniform(&w, &h, &params(width, centre)).unwrap();
            for (&wi, qi) in w.iter().zip(q.quantized()) {
                let tol = 1e-6 * (1.0 + f64::from(wi).abs());
                prop_assert!((f64::from(wi) - f64::from(qi)).abs() <= delta + tol);
            }
        }

        #[test]
        fn clusters_are_used_ordered_and_within_k((w, h) in vectors(), width in any_width()) {
            let q = uniform(&w, &h, &params(width, UniformCentre::WeightedMean)).unwrap();
            prop_assert!(q.counts().iter().all(|&c| c > 0));
            prop_assert!(q.centres.windows(2).all(|p| p[0] <= p[1]), "{:?}", q.centres);
            if let CellWidth::Cells(k) = width {
                prop_assert!(q.clusters() <= k);
            }
        }

        #[test]
        fn cell_step_is_the_smallest((w, _) in vectors(), k in 1usize..100) {
            let (lo, hi) = weight_range(&w);
            let d = uniform_step(&w, &CellWidth::Cells(k)).unwrap();
            prop_assert!(cell_count(lo, hi, d) <= k as i128);
            if lo < hi {
                // a step 1e-9 smaller needs more cells (so d is the infimum)
                prop_assert!(cell_count(lo, hi, d * (1.0 - 1e-9)) > k as i128, "{lo} {hi} {k} {d}");
            }
        }

        #[test]
        fn one_sided_step_is_the_smallest(start in 0.01f32..100.0, width in 1e-4f32..10.0, n in 2usize..50, k in 1usize..300, negative in any::<bool>()) {
            let sign = if negative { -1.0 } else { 1.0 };
            let w: Vec<f32> = (0..n).map(|i| sign * (start + width * i as f32 / (n - 1) as f32)).collect();
            let (lo, hi) = weight_range(&w);
            let d = uniform_step(&w, &CellWidth::Cells(k)).unwrap();
            prop_assert!(cell_count(lo, hi, d) <= k as i128);
            if lo < hi {
                prop_assert!(cell_count(lo, hi, d * (1.0 - 1e-9)) > k as i128, "{lo} {hi} {k} {d}");
            }
        }

        #[test]
        fn equal_importance_weighted_mean_is_the_mean((w, _) in vectors(), width in any_width(), c in 0.01f32..100.0) {
            let hc = vec![c; w.len()];
            let a = uniform(&w, &hc, &params(width, UniformCentre::WeightedMean)).unwrap();
            let b = uniform(&w, &hc, &params(width, UniformCentre::Mean)).unwrap();
            prop_assert_eq!(&a.assignment, &b.assignment);
            for (x, y) in a.centres.iter().zip(&b.centres) {
                prop_assert!((x - y).abs() <= 1e-6 * (1.0 + x.abs()));
            }
        }
    }
}
