//! Tests of the exact 1-D k-means: hand-computed cases, brute force over
//! all interval partitions, a plain `O(k N^2)` program, and Lloyd.

use proptest::prelude::*;

use super::*;
use crate::error::QuantError;
use crate::input::SortedWeights;
use crate::kmeans::{kmeans, KmeansParams};
use crate::quantization::{stats, Quantization};
use crate::synthetic::laplace_weights;

fn run(w: &[f32], h: &[f32], k: usize) -> Quantization {
    kmeans_optimal(w, h, &OptimalParams { k }).unwrap()
}

fn objective(w: &[f32], h: &[f32], q: &Quantization) -> f64 {
    stats(w, h, q).distortion_h
}

/// Valid: indices in range, every cluster used, centres increasing, and
/// clusters are intervals of the sorted values (so equal values agree).
fn assert_valid(w: &[f32], q: &Quantization, k: usize) {
    q.check().unwrap();
    assert!(q.clusters() <= k);
    assert!(q.counts().iter().all(|&c| c > 0));
    assert!(
        q.centres.windows(2).all(|p| p[0] < p[1]),
        "centres {:?}",
        q.centres
    );
    let mut idx: Vec<usize> = (0..w.len()).collect();
    idx.sort_by(|&a, &b| w[a].total_cmp(&w[b]));
    for p in idx.windows(2) {
        let (a, b) = (q.assignment[p[0]], q.assignment[p[1]]);
        assert!(a <= b, "clusters are not intervals");
        if w[p[0]] == w[p[1]] {
            assert_eq!(a, b, "equal values split");
        }
    }
}

/// `min_c sum h (w - c)^2` of one cluster, directly.
fn direct_cost(w: &[f64], h: &[f64]) -> f64 {
    let sh: f64 = h.iter().sum();
    if sh <= 0.0 {
        return 0.0;
    }
    let c = w.iter().zip(h).map(|(w, h)| w * h).sum::<f64>() / sh;
    w.iter().zip(h).map(|(w, h)| h * (w - c) * (w - c)).sum()
}

/// The least objective over every partition of the sorted values into at
/// most `k` intervals (cuts between equal values allowed).
fn brute_force(w: &[f32], h: &[f32], k: usize) -> f64 {
    let mut idx: Vec<usize> = (0..w.len()).collect();
    idx.sort_by(|&a, &b| w[a].total_cmp(&w[b]));
    let ws: Vec<f64> = idx.iter().map(|&i| f64::from(w[i])).collect();
    let hs: Vec<f64> = idx.iter().map(|&i| f64::from(h[i])).collect();
    let n = w.len();
    let mut best = f64::INFINITY;
    for cuts in 0u32..(1 << (n - 1)) {
        if cuts.count_ones() as usize + 1 > k {
            continue;
        }
        let mut total = 0.0;
        let mut lo = 0;
        for p in 1..=n {
            if p == n || cuts & (1 << (p - 1)) != 0 {
                total += direct_cost(&ws[lo..p], &hs[lo..p]);
                lo = p;
            }
        }
        best = best.min(total);
    }
    best
}

/// The same program without any monotonicity: `O(k G^2)` over the distinct
/// values, returning the optimal objective from the prefix sums.
fn plain_dp(w: &[f32], h: &[f32], k: usize) -> f64 {
    let s = SortedWeights::new(w, h);
    let mut starts = vec![0];
    starts.extend((1..s.len()).filter(|&p| s.values[p] != s.values[p - 1]));
    starts.push(s.len());
    let g = starts.len() - 1;
    let cost = |t: usize, i: usize| s.range_cost(starts[t], starts[i]);
    let mut d: Vec<f64> = (0..=g).map(|i| cost(0, i)).collect();
    for _ in 2..=k {
        d = (0..=g)
            .map(|i| (0..i).map(|t| d[t] + cost(t, i)).fold(d[i], f64::min))
            .collect();
    }
    d[g]
}

#[test]
fn three_clusters_by_hand() {
    // {0, 1}, {10, 11}, {20}: 4 * 0.5^2 = 1; any other cut costs >= 40.5
    let w = [0.0, 1.0, 10.0, 11.0, 20.0];
    let q = run(&w, &[1.0; 5], 3);
    assert_eq!(q.centres, vec![0.5, 10.5, 20.0]);
    assert_eq!(q.assignment, vec![0, 0, 1, 1, 2]);
    assert_eq!(q.iterations, 0);
    assert_eq!(q.history, vec![1.0]);
    assert_eq!(objective(&w, &[1.0; 5], &q), 1.0);
}

#[test]
fn importance_moves_the_cut() {
    // w = [0, 2, 3], k = 2.
    // h = 1: {0},{2,3} costs 2 * 0.5^2 = 0.5; {0,2},{3} costs 2 * 1^2 = 2.
    let w = [0.0, 2.0, 3.0];
    let q = run(&w, &[1.0; 3], 2);
    assert_eq!(q.assignment, vec![0, 1, 1]);
    assert_eq!(q.centres, vec![0.0, 2.5]);
    // h = [0.1, 1, 1]: {0,2} has sum h = 1.1, sum hw = 2, sum hw^2 = 4, so
    // cost 4 - 2^2 / 1.1 = 4/11 < 0.5 = cost of {0},{2,3}: the cut moves.
    let h = [0.1, 1.0, 1.0];
    let q = run(&w, &h, 2);
    assert_eq!(q.assignment, vec![0, 0, 1]);
    assert!((f64::from(q.centres[0]) - 20.0 / 11.0).abs() < 1e-6);
    assert_eq!(q.centres[1], 3.0);
    assert!((objective(&w, &h, &q) - 4.0 / 11.0).abs() < 1e-6);
}

#[test]
fn one_cluster_is_the_weighted_mean() {
    // (1 * 1 + 3 * 2 + 0 * 7 + 2 * -1) / 6 = 5/6
    let w = [1.0, 2.0, 7.0, -1.0];
    let h = [1.0, 3.0, 0.0, 2.0];
    let q = run(&w, &h, 1);
    assert_eq!(q.assignment, vec![0; 4]);
    assert!((f64::from(q.centres[0]) - 5.0 / 6.0).abs() < 1e-7);
}

#[test]
fn equal_values_stay_together() {
    // three distinct values, k = 2: {1,1,1,2,2},{5,5,5,5} costs 1.2 and
    // {1,1,1},{2,2,5,5,5,5} costs 2 * 3^2 * 4 / 6 = 12
    let w = [5.0, 1.0, 2.0, 5.0, 1.0, 5.0, 2.0, 1.0, 5.0];
    let q = run(&w, &[1.0; 9], 2);
    assert_valid(&w, &q, 2);
    assert_eq!(q.assignment, vec![1, 0, 0, 1, 0, 1, 0, 0, 1]);
    // {1,1,1,2,2}: mean 1.4, cost 3 * 0.16 + 2 * 0.36 = 1.2
    assert!((objective(&w, &[1.0; 9], &q) - 1.2).abs() < 1e-6);
}

#[test]
fn few_distinct_values_get_one_cluster_each() {
    let w = [3.0, -1.0, 3.0, 0.5, -1.0, -0.0, 0.0];
    let h = [1.0, 0.0, 2.0, 1.0, 5.0, 1.0, 1.0];
    for k in [4, 5, 100] {
        let q = run(&w, &h, k);
        assert_eq!(q.centres, vec![-1.0, 0.0, 0.5, 3.0]);
        assert_eq!(q.history, vec![0.0]);
        assert_eq!(objective(&w, &h, &q), 0.0);
    }
    let q = run(&[7.0], &[1.0], 3);
    assert_eq!(
        (q.centres.clone(), q.assignment.clone()),
        (vec![7.0], vec![0])
    );
}

#[test]
fn zero_importance_everywhere_is_free() {
    let w = [0.0, 1.0, 2.0, 3.0, 4.0];
    let q = run(&w, &[0.0; 5], 2);
    assert_valid(&w, &q, 2);
    assert_eq!(q.clusters(), 2);
    assert_eq!(q.history, vec![0.0]);
}

#[test]
fn rejects_bad_input() {
    let p = OptimalParams { k: 2 };
    assert_eq!(kmeans_optimal(&[], &[], &p), Err(QuantError::EmptyInput));
    assert!(matches!(
        kmeans_optimal(&[1.0], &[1.0, 1.0], &p),
        Err(QuantError::LengthMismatch { .. })
    ));
    assert!(matches!(
        kmeans_optimal(&[f32::NAN], &[1.0], &p),
        Err(QuantError::NonFiniteWeight { .. })
    ));
    assert!(matches!(
        kmeans_optimal(&[1.0], &[1.0], &OptimalParams { k: 0 }),
        Err(QuantError::InvalidParam { name: "k", .. })
    ));
}

#[test]
fn matches_the_plain_program_and_beats_lloyd() {
    // 30k rows: the divide and conquer runs on both threads
    for (n, seed, ks) in [(300, 1, vec![2, 3, 7, 20]), (30_000, 2, vec![2, 5, 16])] {
        let (mut w, h) = laplace_weights(n, seed);
        // some duplicates, as after pruning
        w.iter_mut().step_by(7).for_each(|v| *v = 0.0);
        for k in ks {
            let q = run(&w, &h, k);
            assert_valid(&w, &q, k);
            let got = objective(&w, &h, &q);
            if n <= 1000 {
                let exact = plain_dp(&w, &h, k);
                assert!(
                    (got - exact).abs() <= 1e-6 * exact,
                    "k {k}: {got} vs {exact}"
                );
            }
            let lloyd = objective(&w, &h, &kmeans(&w, &h, &KmeansParams::new(k)).unwrap());
            assert!(
                got <= lloyd * (1.0 + 1e-6),
                "k {k}: optimal {got} > Lloyd {lloyd}"
            );
            assert!((q.history[0] - got).abs() <= 1e-6 * got);
        }
    }
}

fn small_inputs() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    // integers from a few values (duplicates) or arbitrary floats
    let value = prop_oneof![(-3i32..4).prop_map(|v| v as f32), -10.0f32..10.0];
    let importance = prop_oneof![Just(1.0f32), Just(0.0f32), 0.01f32..10.0];
    (1usize..=9).prop_flat_map(move |n| {
        (
            prop::collection::vec(value.clone(), n),
            prop::collection::vec(importance.clone(), n),
        )
    })
}

proptest! {
    #[test]
    fn equals_brute_force((w, h) in small_inputs(), k in 1usize..=4) {
        let q = run(&w, &h, k);
        assert_valid(&w, &q, k);
        let got = objective(&w, &h, &q);
        let best = brute_force(&w, &h, k);
        let scale: f64 = w.iter().zip(&h).map(|(w, h)| f64::from(*h) * f64::from(*w).powi(2)).sum();
        prop_assert!((got - best).abs() <= 1e-6 * (1.0 + scale), "{} vs brute force {}", got, best);
    }

    #[test]
    fn objective_never_rises_with_k(seed in 0u64..1000) {
        let (w, h) = laplace_weights(200, seed);
        let mut last = f64::INFINITY;
        for k in 1..=20 {
            let got = objective(&w, &h, &run(&w, &h, k));
            prop_assert!(got <= last * (1.0 + 1e-6), "k {}: {} > {}", k, got, last);
            last = got;
        }
    }
}
