//! Lloyd's algorithm on sorted 1-D data.

use super::hyperparams::KmeansParams;
use super::init::initial_centres_sorted;
use crate::error::Result;
use crate::input::{validate, SortedWeights};
use crate::quantization::Quantization;

/// Interval boundaries of the nearest-centre partition of sorted data:
/// cluster `j` holds positions `[bounds[j], bounds[j + 1])`. In one
/// dimension the weight `h` does not change which centre is nearest, so the
/// cells are split at the midpoints; ties go to the lower centre.
fn nearest_bounds(s: &SortedWeights, centres: &[f64], bounds: &mut Vec<usize>) {
    bounds.clear();
    bounds.push(0);
    for pair in centres.windows(2) {
        bounds.push(s.lower_bound(0.5 * (pair[0] + pair[1]), false));
    }
    bounds.push(s.len());
}

/// Weighted k-means (Lloyd) on data already sorted; see [`kmeans`].
pub fn kmeans_sorted(s: &SortedWeights, params: &KmeansParams) -> Result<Quantization> {
    params.validate()?;
    let mut centres = initial_centres_sorted(s, params.init, params.k, params.seed);
    let mut bounds = Vec::with_capacity(centres.len() + 1);
    let mut previous = Vec::with_capacity(centres.len() + 1);
    let mut history = Vec::new();
    let mut iterations = 0;
    while iterations < params.max_iter {
        nearest_bounds(s, &centres, &mut bounds);
        if bounds == previous {
            break; // no assignment changed
        }
        iterations += 1;
        let mut objective = 0.0;
        for (j, c) in centres.iter_mut().enumerate() {
            let (lo, hi) = (bounds[j], bounds[j + 1]);
            // an empty cell keeps its centre, which stays between its
            // neighbours, so the centres stay sorted
            if let Some(mean) = s.centre(lo, hi) {
                *c = mean;
            }
            objective += s.cost_to(lo, hi, *c);
        }
        history.push(objective);
        std::mem::swap(&mut bounds, &mut previous);
    }
    // `previous` holds the partition the current centres were computed from
    // whenever at least one update ran
    let final_bounds = if iterations == 0 { &bounds } else { &previous };
    let (centres, assignment) = s.intervals_to_assignment(final_bounds);
    Ok(Quantization {
        centres,
        assignment,
        iterations,
        history,
        dither: None,
    })
}

/// Weighted k-means: minimises `sum_i h_i (w_i - c_{a(i)})^2` by Lloyd's
/// algorithm (paper.md 4.1).
///
/// The data is sorted once; clusters are then intervals between midpoints
/// of neighbouring centres, found by binary search, and every centre is a
/// difference of prefix sums, so an iteration costs `O(k log N)` and the
/// whole run is dominated by the one sort. Stops when no assignment changes
/// or after `max_iter` iterations; `history` holds `D_h` after each update.
/// With all `h` equal this is conventional k-means.
pub fn kmeans(w: &[f32], h: &[f32], params: &KmeansParams) -> Result<Quantization> {
    validate(w, h)?;
    params.validate()?;
    kmeans_sorted(&SortedWeights::new(w, h), params)
}

/// The initial centres `kmeans` would start from (sorted, distinct); other
/// quantizers (ECSQ) reuse them.
pub fn initial_centres(
    w: &[f32],
    h: &[f32],
    init: super::KmeansInit,
    k: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    validate(w, h)?;
    KmeansParams {
        k,
        init,
        max_iter: 1,
        seed,
    }
    .validate()?;
    let s = SortedWeights::new(w, h);
    Ok(initial_centres_sorted(&s, init, k, seed)
        .into_iter()
        .map(|c| c as f32)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::KmeansInit;
    use crate::quantization::stats;
    use proptest::prelude::*;

    fn params(k: usize, init: KmeansInit) -> KmeansParams {
        KmeansParams {
            k,
            init,
            max_iter: 100,
            seed: 1,
        }
    }

    #[test]
    fn two_clusters_by_hand() {
        // linear init on [0, 10]: centres 0 and 10, midpoint 5:
        // {0, 1, 2} and {9, 10} -> centres 1 and 9.5; midpoint 5.25, same
        // partition, so the second pass changes nothing and the run stops.
        let w = [0.0, 1.0, 2.0, 9.0, 10.0];
        let q = kmeans(&w, &[1.0; 5], &params(2, KmeansInit::Linear)).unwrap();
        assert_eq!(q.centres, vec![1.0, 9.5]);
        assert_eq!(q.assignment, vec![0, 0, 0, 1, 1]);
        assert_eq!(q.iterations, 1);
        // D = 1 + 0 + 1 + .25 + .25
        assert_eq!(q.history, vec![2.5]);
    }

    #[test]
    fn importance_pulls_the_centre() {
        // one cluster: the h-weighted mean (0 * 3 + 4 * 1) / 4 = 1
        let q = kmeans(&[0.0, 4.0], &[3.0, 1.0], &params(1, KmeansInit::PlusPlus)).unwrap();
        assert_eq!(q.centres, vec![1.0]);
    }

    #[test]
    fn importance_weights_the_centres() {
        // w = 0, 1, 3, 4 with linear init 0 and 4: {0, 1} {3, 4} under equal h.
        // With h = (1, 1, 100, 1): first centres 0.5 and (300 + 4) / 101;
        // the heavy point at 3 holds its centre near 3, and the partition
        // {0, 1}, {3, 4} stays.
        let w = [0.0, 1.0, 3.0, 4.0];
        let q = kmeans(&w, &[1.0, 1.0, 100.0, 1.0], &params(2, KmeansInit::Linear)).unwrap();
        assert_eq!(q.assignment, vec![0, 0, 1, 1]);
        assert!((q.centres[1] - 304.0 / 101.0).abs() < 1e-6);
        // with h = (100, 1, 1, 1) and k = 2 from linear init (0, 4): {0, 1}
        // and {3, 4}; centre 0 becomes 1/101 and 1 stays with it.
        let q = kmeans(&w, &[100.0, 1.0, 1.0, 1.0], &params(2, KmeansInit::Linear)).unwrap();
        assert!((q.centres[0] - 1.0 / 101.0).abs() < 1e-6);
        assert_eq!(q.centres[1], 3.5);
    }

    #[test]
    fn fewer_distinct_values_than_k() {
        let q = kmeans(
            &[2.0, 2.0, -1.0],
            &[1.0; 3],
            &params(8, KmeansInit::PlusPlus),
        )
        .unwrap();
        assert_eq!(q.centres, vec![-1.0, 2.0]);
        assert_eq!(q.assignment, vec![1, 1, 0]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(kmeans(&[1.0], &[1.0], &params(0, KmeansInit::PlusPlus)).is_err());
        assert!(kmeans(&[f32::NAN], &[1.0], &params(1, KmeansInit::PlusPlus)).is_err());
        assert!(kmeans(&[1.0], &[-1.0], &params(1, KmeansInit::PlusPlus)).is_err());
    }

    fn vectors() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (1usize..300).prop_flat_map(|n| {
            (
                prop::collection::vec(-10.0f32..10.0, n),
                prop::collection::vec(0.0f32..5.0, n),
            )
        })
    }

    fn any_init() -> impl Strategy<Value = KmeansInit> {
        prop_oneof![
            Just(KmeansInit::PlusPlus),
            Just(KmeansInit::Linear),
            Just(KmeansInit::Density)
        ]
    }

    proptest! {
        #[test]
        fn objective_never_rises((w, h) in vectors(), k in 1usize..20, init in any_init(), seed in 0u64..100) {
            let q = kmeans(&w, &h, &KmeansParams { k, init, max_iter: 200, seed }).unwrap();
            let scale = 1e-9 * (1.0 + q.history.first().copied().unwrap_or(0.0));
            for pair in q.history.windows(2) {
                prop_assert!(pair[1] <= pair[0] + scale, "{:?}", q.history);
            }
            // the recorded objective is the true one
            if let Some(last) = q.history.last() {
                let d = stats(&w, &h, &q).distortion_h;
                prop_assert!((d - last).abs() <= 1e-6 * (1.0 + d));
            }
        }

        #[test]
        fn clusters_are_used_sorted_and_assigned_to_the_nearest((w, h) in vectors(), k in 1usize..20, seed in 0u64..100) {
            let q = kmeans(&w, &h, &KmeansParams { k, init: KmeansInit::PlusPlus, max_iter: 1000, seed }).unwrap();
            prop_assert!(q.clusters() <= k);
            prop_assert!(q.counts().iter().all(|&c| c > 0));
            prop_assert!(q.centres.windows(2).all(|p| p[0] < p[1]));
            if q.iterations < 1000 {
                // converged: every weight sits with a nearest centre
                for (&wi, &a) in w.iter().zip(&q.assignment) {
                    let own = (wi - q.centres[a as usize]).abs();
                    let best = q.centres.iter().map(|c| (wi - c).abs()).fold(f32::INFINITY, f32::min);
                    prop_assert!(own <= best + 1e-4);
                }
            }
        }

        #[test]
        fn equal_importance_equals_unweighted((w, _) in vectors(), k in 1usize..20, c in 0.01f32..100.0, seed in 0u64..50) {
            let p = KmeansParams { k, init: KmeansInit::Linear, max_iter: 1000, seed };
            let unweighted = kmeans(&w, &vec![1.0; w.len()], &p).unwrap();
            let scaled = kmeans(&w, &vec![c; w.len()], &p).unwrap();
            prop_assert_eq!(&unweighted.assignment, &scaled.assignment);
            for (a, b) in unweighted.centres.iter().zip(&scaled.centres) {
                prop_assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()));
            }
        }

        #[test]
        fn seeded_runs_repeat((w, h) in vectors(), k in 1usize..20, seed in 0u64..100) {
            let p = KmeansParams { k, init: KmeansInit::PlusPlus, max_iter: 100, seed };
            prop_assert_eq!(kmeans(&w, &h, &p).unwrap(), kmeans(&w, &h, &p).unwrap());
        }
    }
}
