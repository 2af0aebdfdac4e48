//! Iterative ECSQ: the entropy-penalised assignment and the update, each a
//! parallel pass over the weights.

use rayon::prelude::*;

use super::hyperparams::{EcsqInit, EcsqParams};
use crate::error::Result;
use crate::input::{validate, SortedWeights};
use crate::kmeans::{initial_centres, KmeansInit};
use crate::quantization::Quantization;
use crate::uniform::{chunk_len, uniform, UniformParams};

/// Statistics of one cluster relative to a reference centre `r` (the centre
/// its members were assigned to): `d = w - r`. Sums of the small offsets
/// keep `sum h d^2 - (sum h d)^2 / sum h` accurate even for narrow clusters
/// far from 0.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    n: u64,
    sd: f64,
    sh: f64,
    shd: f64,
    shd2: f64,
}

impl Sums {
    #[inline]
    fn add(&mut self, d: f64, h: f64) {
        let hd = h * d;
        self.n += 1;
        self.sd += d;
        self.sh += h;
        self.shd += hd;
        self.shd2 += hd * d;
    }

    fn merge(&mut self, o: &Self) {
        self.n += o.n;
        self.sd += o.sd;
        self.sh += o.sh;
        self.shd += o.shd;
        self.shd2 += o.shd2;
    }
}

/// The codebook one assignment pass searches: sorted centres, their
/// penalties `lambda * l_j`, and running minima of the penalties that bound
/// the search.
struct Codebook {
    centres: Vec<f64>,
    penalty: Vec<f64>,
    /// `min(penalty[0..=j])`.
    prefix_min: Vec<f64>,
    /// `min(penalty[j..])`.
    suffix_min: Vec<f64>,
    /// Clusters of the smallest code length, by increasing centre: where
    /// weights with `h = 0` go.
    shortest: Vec<usize>,
}

impl Codebook {
    /// `centres` sorted; `lengths[j] = l_j` in bits.
    fn new(centres: Vec<f64>, lengths: &[f64], lambda: f64) -> Self {
        let penalty: Vec<f64> = lengths.iter().map(|&l| lambda * l).collect();
        let mut prefix_min = penalty.clone();
        for j in 1..prefix_min.len() {
            prefix_min[j] = prefix_min[j].min(prefix_min[j - 1]);
        }
        let mut suffix_min = penalty.clone();
        for j in (0..suffix_min.len().saturating_sub(1)).rev() {
            suffix_min[j] = suffix_min[j].min(suffix_min[j + 1]);
        }
        let l_min = lengths.iter().copied().fold(f64::INFINITY, f64::min);
        let shortest = (0..lengths.len())
            .filter(|&j| lengths[j] == l_min)
            .collect();
        Self {
            centres,
            penalty,
            prefix_min,
            suffix_min,
            shortest,
        }
    }

    /// `argmin_j h (x - c_j)^2 + lambda l_j`, ties to the lower index, where
    /// `pos` is the first centre index with `c_pos >= x`; for `h = 0` the
    /// cluster of smallest `l_j`, ties to the nearest (then the lower
    /// index).
    ///
    /// Exact: the search walks outward from `x` on each side; beyond centre
    /// `j` every candidate on that side costs at least `h (x - c_j)^2` plus
    /// the smallest penalty there, so a side is done once that bound cannot
    /// beat the best so far (usually after one or two centres).
    #[inline]
    fn assign(&self, x: f64, h: f64, pos: usize) -> usize {
        let c = &self.centres;
        if h <= 0.0 {
            let s = &self.shortest;
            let p = s.partition_point(|&j| c[j] < x);
            return match (p.checked_sub(1).map(|i| s[i]), s.get(p).copied()) {
                (Some(a), Some(b)) => {
                    if c[b] - x < x - c[a] {
                        b
                    } else {
                        a
                    }
                }
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => 0,
            };
        }
        let (mut best, mut arg) = (f64::INFINITY, 0);
        // right side, increasing index: a tie never beats the earlier best
        let right = c[pos..]
            .iter()
            .zip(&self.suffix_min[pos..])
            .zip(&self.penalty[pos..]);
        for (off, ((&cj, &floor), &penalty)) in right.enumerate() {
            let d = cj - x;
            let q = h * d * d;
            if q + floor >= best {
                break;
            }
            let cost = q + penalty;
            if cost < best {
                (best, arg) = (cost, pos + off);
            }
        }
        // left side, decreasing index: every index here is lower, so ties win
        for j in (0..pos).rev() {
            let d = x - c[j];
            let q = h * d * d;
            if q + self.prefix_min[j] > best {
                break;
            }
            let cost = q + self.penalty[j];
            if cost <= best {
                (best, arg) = (cost, j);
            }
        }
        arg
    }
}

/// The weights sorted once (ties by index), with their importances in the
/// same order: in sorted order each pass finds a weight's place among the
/// centres by moving a pointer, and neighbouring weights search alike.
struct Sorted {
    /// Sorted weights and the input index of each.
    s: SortedWeights,
    /// Importances in sorted order.
    h: Vec<f32>,
}

impl Sorted {
    fn new(w: &[f32], h: &[f32]) -> Self {
        let s = SortedWeights::new(w, h);
        let h = s.order.par_iter().map(|&i| h[i as usize]).collect();
        Self { s, h }
    }

    /// Puts `a` (per sorted position) back into input order, renumbered by
    /// `map`.
    fn unsort(&self, a: &[u32], map: &[u32]) -> Vec<u32> {
        let mut out = vec![0u32; a.len()];
        for (&i, &j) in self.s.order.iter().zip(a) {
            out[i as usize] = map[j as usize];
        }
        out
    }
}

/// One parallel pass over the sorted weights: `choose(x, h, a, pos)` gives
/// each weight's cluster from its value, importance, current entry `a` and
/// the first centre index `pos` with `reference[pos] >= x`; it is written
/// back, and the per-cluster sums relative to `reference` are returned.
/// Chunks are fixed by `N` and `k` and merged in order, so the sums are
/// deterministic.
fn accumulate(
    s: &Sorted,
    assignment: &mut [u32],
    reference: &[f64],
    choose: impl Fn(f64, f64, u32, usize) -> usize + Sync,
) -> Vec<Sums> {
    let k = reference.len();
    let chunk = chunk_len(s.h.len(), k);
    let partial: Vec<Vec<Sums>> = assignment
        .par_chunks_mut(chunk)
        .zip(s.s.values.par_chunks(chunk))
        .zip(s.h.par_chunks(chunk))
        .map(|((ac, wc), hc)| {
            let mut table = vec![Sums::default(); k];
            let mut pos = reference.partition_point(|&c| c < f64::from(wc[0]));
            for ((a, &wi), &hi) in ac.iter_mut().zip(wc).zip(hc) {
                let (x, hh) = (f64::from(wi), f64::from(hi));
                while pos < k && reference[pos] < x {
                    pos += 1;
                }
                let j = choose(x, hh, *a, pos);
                *a = j as u32;
                table[j].add(x - reference[j], hh);
            }
            table
        })
        .collect();
    let mut total = vec![Sums::default(); k];
    for table in &partial {
        total.iter_mut().zip(table).for_each(|(t, p)| t.merge(p));
    }
    total
}

/// The state after an update: non-empty clusters sorted by centre.
struct Update {
    centres: Vec<f64>,
    /// `l_j = -log2(|C_j| / N)`.
    lengths: Vec<f64>,
    /// Old cluster index to new one (`u32::MAX` for a dropped cluster).
    map: Vec<u32>,
    /// `J` of the partition with the new centres and lengths.
    objective: f64,
}

/// The update step: weighted-mean centres (plain mean where the members'
/// `h` sum to 0), `p_j = |C_j| / N`, empty clusters dropped, the rest
/// renumbered by increasing centre (ties by old index). Also returns
/// `J = sum_j [sum_{C_j} h (w - c_j)^2 + lambda |C_j| l_j]`.
fn update(reference: &[f64], sums: &[Sums], n: usize, lambda: f64) -> Update {
    let nf = n as f64;
    let (mut distortion, mut rate) = (0.0, 0.0);
    let mut kept = Vec::with_capacity(sums.len());
    for (j, s) in sums.iter().enumerate().filter(|(_, s)| s.n > 0) {
        let (c, d) = if s.sh > 0.0 {
            (
                reference[j] + s.shd / s.sh,
                (s.shd2 - s.shd * s.shd / s.sh).max(0.0),
            )
        } else {
            (reference[j] + s.sd / s.n as f64, 0.0)
        };
        let l = (nf / s.n as f64).log2();
        distortion += d;
        rate += s.n as f64 * l;
        kept.push((c, l, j));
    }
    kept.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    let mut map = vec![u32::MAX; sums.len()];
    for (new, &(_, _, old)) in kept.iter().enumerate() {
        map[old] = new as u32;
    }
    Update {
        centres: kept.iter().map(|t| t.0).collect(),
        lengths: kept.iter().map(|t| t.1).collect(),
        map,
        objective: distortion + lambda * rate,
    }
}

/// Iterative entropy-constrained scalar quantization (paper.md 4.3; Chou,
/// Lookabaugh and Gray 1989) with the Hessian weighting in both steps.
///
/// Minimises `J = sum_i h_i (w_i - c_{a(i)})^2 + lambda sum_i l_{a(i)}`
/// with `l_j = -log2(|C_j| / N)`, the ideal code length of cluster `j`:
///
/// 1. init: the uniform quantizer with at most `k_init` cells
///    (`h`-weighted-mean centres), or `k_init` k-means++ centres with each
///    weight in its nearest one; then the update below;
/// 2. assign: `a(i) = argmin_j h_i (w_i - c_j)^2 + lambda l_j` (exact; ties
///    to the smaller centre); weights with `h_i = 0` go to the cluster of
///    smallest `l_j`, the nearest such on ties;
/// 3. update: `c_j` = `h`-weighted mean of the members (plain mean where
///    their `h` sum to 0), `l_j` from the new counts; empty clusters are
///    dropped;
/// 4. repeat 2-3 until an iteration lowers `J` by less than `tol` times its
///    previous value, or `max_iter` times.
///
/// Both steps never raise `J` (the update is the best centre and, by
/// Gibbs' inequality, the best code lengths for a fixed partition), so
/// `history` falls monotonically up to rounding. `history[0]` is `J` at
/// initialisation (the initial partition with its updated centres and
/// lengths) and `history[t]` is `J` after iteration `t`, so
/// `history.len() == iterations + 1`. Every value is computed in f64 with
/// the f64 centres; the returned centres are rounded to f32.
///
/// `lambda = 0` is weighted k-means (Lloyd) from the same start. The
/// weights are sorted once; a pass then moves a pointer through the centres
/// and searches outward, which visits few centres unless `h_i` is tiny next
/// to `lambda`. Passes run in parallel, with results independent of the
/// thread count.
pub fn ecsq(w: &[f32], h: &[f32], params: &EcsqParams) -> Result<Quantization> {
    validate(w, h)?;
    params.validate()?;
    let n = w.len();
    let sorted = Sorted::new(w, h);
    let (reference, mut assignment, sums) = match params.init {
        EcsqInit::Uniform => {
            let q = uniform(w, h, &UniformParams::cells(params.k_init))?;
            let reference: Vec<f64> = q.centres.iter().map(|&c| f64::from(c)).collect();
            let mut assignment: Vec<u32> = sorted
                .s
                .order
                .par_iter()
                .map(|&i| q.assignment[i as usize])
                .collect();
            let sums = accumulate(&sorted, &mut assignment, &reference, |_, _, a, _| {
                a as usize
            });
            (reference, assignment, sums)
        }
        EcsqInit::KmeansPlusPlus => {
            let seeds = initial_centres(w, h, KmeansInit::PlusPlus, params.k_init, params.seed)?;
            let reference: Vec<f64> = seeds.iter().map(|&c| f64::from(c)).collect();
            // equal lengths: every weight goes to its nearest centre
            let book = Codebook::new(reference.clone(), &vec![0.0; reference.len()], 0.0);
            let mut assignment = vec![0u32; n];
            let sums = accumulate(&sorted, &mut assignment, &reference, |x, hh, _, pos| {
                book.assign(x, hh, pos)
            });
            (reference, assignment, sums)
        }
    };
    let mut state = update(&reference, &sums, n, params.lambda);
    let mut history = vec![state.objective];
    let mut iterations = 0;
    while iterations < params.max_iter {
        let book = Codebook::new(state.centres, &state.lengths, params.lambda);
        let sums = accumulate(&sorted, &mut assignment, &book.centres, |x, hh, _, pos| {
            book.assign(x, hh, pos)
        });
        let previous = state.objective;
        state = update(&book.centres, &sums, n, params.lambda);
        iterations += 1;
        history.push(state.objective);
        if previous - state.objective <= params.tol * previous.abs() {
            break;
        }
    }
    // the last pass numbered clusters as its codebook did; renumber and
    // return to input order
    let assignment = sorted.unsort(&assignment, &state.map);
    let centres = state.centres.iter().map(|&c| c as f32).collect();
    Ok(Quantization {
        centres,
        assignment,
        iterations,
        history,
        dither: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantization::{entropy, stats};
    use proptest::prelude::*;

    fn params(lambda: f64, k_init: usize) -> EcsqParams {
        EcsqParams {
            lambda,
            k_init,
            ..EcsqParams::default()
        }
    }

    /// `J` of a returned quantization, recomputed from scratch.
    fn objective(w: &[f32], h: &[f32], q: &Quantization, lambda: f64) -> f64 {
        stats(w, h, q).distortion_h + lambda * w.len() as f64 * entropy(&q.counts())
    }

    #[test]
    fn large_lambda_merges_two_clusters_by_hand() {
        // Uniform init with k_init = 2 on [-1, 11]: the smallest step is just
        // above 11 / 1.5, cells 0 = {-1, 1} and 1 = {9, 11, 9, 11}; centres
        // 0 and 10, p = 1/3, 2/3, so l = log2 3 and log2 1.5 (1 bit apart).
        // J0 = D + lambda R with D = 1 + 1 + 4 * 1 = 6 and
        // R = 2 log2 3 + 4 log2 1.5 = 6 log2 3 - 4.
        let w = [-1.0, 1.0, 9.0, 11.0, 9.0, 11.0];
        let h = [1.0; 6];
        let log2 = f64::log2;
        let r0 = 6.0 * log2(3.0) - 4.0;

        // lambda = 0: nothing moves, J stays at 6 and the run stops.
        let q = ecsq(&w, &h, &params(0.0, 2)).unwrap();
        assert_eq!(q.centres, vec![0.0, 10.0]);
        assert_eq!(q.assignment, vec![0, 0, 1, 1, 1, 1]);
        assert_eq!((q.iterations, q.history.clone()), (1, vec![6.0, 6.0]));

        // lambda = 10: moving 1 to the right saves 10 * 1 bit but costs
        // 81 - 1 = 80 in distortion; both clusters stay.
        let q = ecsq(&w, &h, &params(10.0, 2)).unwrap();
        assert_eq!(q.clusters(), 2);

        // lambda = 100: iteration 1 moves 1 (80 < 100) but not -1
        // (121 - 1 = 120 > 100): clusters {-1} and {1, 9, 11, 9, 11}, centres
        // -1 and 8.2, D = 7.2^2 + 2 * 0.8^2 + 2 * 2.8^2 = 68.8,
        // R = log2 6 + 5 log2 1.2. Iteration 2: l differs by log2 5 = 2.32
        // bits (232 > 9.2^2 = 84.64), so -1 moves too: one cluster, centre
        // 40/6, D = 406 - 1600/6, R = 0. Iteration 3 changes nothing.
        let q = ecsq(&w, &h, &params(100.0, 2)).unwrap();
        assert_eq!(q.clusters(), 1);
        assert!((f64::from(q.centres[0]) - 40.0 / 6.0).abs() < 1e-6);
        assert_eq!(q.iterations, 3);
        let expected = [
            6.0 + 100.0 * r0,
            68.8 + 100.0 * (log2(6.0) + 5.0 * log2(1.2)),
            406.0 - 1600.0 / 6.0,
            406.0 - 1600.0 / 6.0,
        ];
        assert_eq!(q.history.len(), 4);
        for (got, want) in q.history.iter().zip(expected) {
            assert!((got - want).abs() < 1e-9, "{:?}", q.history);
        }
    }

    #[test]
    fn zero_importance_goes_to_the_shortest_code() {
        // init cells {0, 0.2, 0.1} and {10, 10.1, 10.2, 10.3}; 0.1 has h = 0,
        // so it joins the larger cluster (l = log2(7/4) < log2(7/3)) however
        // far; it adds nothing to the weighted mean 10.15 there, and the
        // left centre is (0 + 0.2) / 2 = 0.1.
        let w = [0.0, 0.2, 10.0, 10.1, 10.2, 10.3, 0.1];
        let h = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        for lambda in [0.0, 1e-3] {
            let q = ecsq(&w, &h, &params(lambda, 2)).unwrap();
            assert_eq!(q.assignment, vec![0, 0, 1, 1, 1, 1, 1]);
            assert!(
                (q.centres[0] - 0.1).abs() < 1e-6 && (q.centres[1] - 10.15).abs() < 1e-5,
                "{:?}",
                q.centres
            );
        }
        // all h = 0: everything joins one cluster, at the plain mean
        let q = ecsq(&[1.0, 2.0, 6.0], &[0.0; 3], &params(1.0, 3)).unwrap();
        assert_eq!(q.centres, vec![3.0]);
        assert_eq!(*q.history.last().unwrap(), 0.0);
    }

    #[test]
    fn importance_outweighs_the_rate() {
        // as in the first test but h = 1000 on the weight at 1: lambda = 100
        // no longer moves it (1000 * 81 > 100), and -1 stays with it.
        let w = [-1.0, 1.0, 9.0, 11.0, 9.0, 11.0];
        let h = [1.0, 1000.0, 1.0, 1.0, 1.0, 1.0];
        let q = ecsq(&w, &h, &params(100.0, 2)).unwrap();
        assert_eq!(q.assignment, vec![0, 0, 1, 1, 1, 1]);
        // weighted mean of {-1 (h 1), 1 (h 1000)} = 999 / 1001
        assert!((f64::from(q.centres[0]) - 999.0 / 1001.0).abs() < 1e-6);
    }

    #[test]
    fn kmeans_plus_plus_init() {
        let w = [-1.0, 1.0, 9.0, 11.0, 9.0, 11.0];
        let p = EcsqParams {
            init: EcsqInit::KmeansPlusPlus,
            seed: 3,
            ..params(0.0, 2)
        };
        let q = ecsq(&w, &[1.0; 6], &p).unwrap();
        // two clusters from two seeds: Lloyd lands on {-1, 1}, {9, 11, 9, 11}
        assert_eq!(q.centres, vec![0.0, 10.0]);
        let big = ecsq(&w, &[1.0; 6], &EcsqParams { lambda: 1e4, ..p }).unwrap();
        assert_eq!(big.clusters(), 1);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(ecsq(&[], &[], &params(0.1, 4)).is_err());
        assert!(ecsq(&[1.0], &[-1.0], &params(0.1, 4)).is_err());
        assert!(ecsq(&[1.0], &[1.0], &params(-0.1, 4)).is_err());
        assert!(ecsq(&[1.0], &[1.0], &params(0.1, 0)).is_err());
    }

    #[test]
    fn larger_lambda_lowers_the_rate_on_laplace_data() {
        // Not a theorem for a local search, but the typical case: on fixed
        // data, raising lambda gives fewer clusters and lower entropy.
        for (init, seed) in [
            (EcsqInit::Uniform, 0),
            (EcsqInit::KmeansPlusPlus, 1),
            (EcsqInit::KmeansPlusPlus, 2),
        ] {
            let (w, h) = crate::synthetic::laplace_weights(20_000, seed);
            let mut last = (usize::MAX, f64::INFINITY);
            for lambda in [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2] {
                let p = EcsqParams {
                    lambda,
                    k_init: 64,
                    init,
                    seed,
                    ..EcsqParams::default()
                };
                let q = ecsq(&w, &h, &p).unwrap();
                let now = (q.clusters(), entropy(&q.counts()));
                assert!(
                    now.0 <= last.0 && now.1 <= last.1,
                    "{init:?} lambda {lambda}: {now:?} after {last:?}"
                );
                last = now;
            }
            // from 64 clusters and 5 to 6 bits down to a handful and < 0.1 bit
            assert!(last.0 <= 8 && last.1 < 0.1, "{last:?}");
        }
    }

    fn vectors() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (1usize..300).prop_flat_map(|n| {
            (
                prop::collection::vec(prop_oneof![-1.0f32..1.0, 2.0f32..2.1], n),
                prop::collection::vec(prop_oneof![Just(0.0f32), 0.0f32..5.0, 1e-4f32..1e-3], n),
            )
        })
    }

    fn any_init() -> impl Strategy<Value = EcsqInit> {
        prop_oneof![Just(EcsqInit::Uniform), Just(EcsqInit::KmeansPlusPlus)]
    }

    fn any_params() -> impl Strategy<Value = EcsqParams> {
        (
            prop_oneof![Just(0.0), 1e-6f64..1.0],
            1usize..40,
            any_init(),
            0u64..100,
        )
            .prop_map(|(lambda, k_init, init, seed)| EcsqParams {
                lambda,
                k_init,
                init,
                max_iter: 200,
                tol: 0.0,
                seed,
            })
    }

    proptest! {
        /// J never rises: each entry is at most the previous one plus
        /// 1e-9 * (1 + history[0]) (relative tolerance 1e-9 for rounding).
        #[test]
        fn objective_never_rises((w, h) in vectors(), p in any_params()) {
            let q = ecsq(&w, &h, &p).unwrap();
            prop_assert_eq!(q.history.len(), q.iterations + 1);
            let slack = 1e-9 * (1.0 + q.history[0]);
            for pair in q.history.windows(2) {
                prop_assert!(pair[1] <= pair[0] + slack, "{:?}", q.history);
            }
            // the last entry is the J of what is returned (f32 centres)
            let j = objective(&w, &h, &q, p.lambda);
            let last = *q.history.last().unwrap();
            prop_assert!((j - last).abs() <= 1e-6 * (1.0 + j), "{} vs {}", j, last);
        }

        #[test]
        fn clusters_are_used_sorted_and_within_k_init((w, h) in vectors(), p in any_params()) {
            let q = ecsq(&w, &h, &p).unwrap();
            prop_assert!(q.check().is_ok());
            prop_assert!(q.clusters() >= 1 && q.clusters() <= p.k_init);
            prop_assert!(q.counts().iter().all(|&c| c > 0));
            prop_assert!(q.centres.windows(2).all(|c| c[0] <= c[1]), "{:?}", q.centres);
        }

        #[test]
        fn seeded_runs_repeat((w, h) in vectors(), p in any_params()) {
            prop_assert_eq!(ecsq(&w, &h, &p).unwrap(), ecsq(&w, &h, &p).unwrap());
        }

        /// With lambda = 0 a converged run is a fixed point of weighted
        /// Lloyd: every weight with h > 0 sits at a nearest centre.
        #[test]
        fn zero_lambda_converges_to_nearest_centres((w, h) in vectors(), k_init in 1usize..40, init in any_init(), seed in 0u64..100) {
            let p = EcsqParams { lambda: 0.0, k_init, init, max_iter: 1000, tol: 0.0, seed };
            let q = ecsq(&w, &h, &p).unwrap();
            if q.iterations < p.max_iter {
                for ((&wi, &hi), &a) in w.iter().zip(&h).zip(&q.assignment) {
                    if hi > 0.0 {
                        let own = (wi - q.centres[a as usize]).abs();
                        let best = q.centres.iter().map(|c| (wi - c).abs()).fold(f32::INFINITY, f32::min);
                        prop_assert!(own <= best + 1e-4, "{} at {} but nearest is {}", wi, own, best);
                    }
                }
            }
        }
    }
}
