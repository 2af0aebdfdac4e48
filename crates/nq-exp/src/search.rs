//! The most aggressive setting of a quantizer that stays within a loss
//! budget, or that spends at least a given rate, by bisection over its
//! parameter.
//!
//! Table 1 of the paper reports, per method, the compression ratio at which
//! the quantized network is as accurate as the pruned one. A sweep over
//! `k = 8, 16, 32` or `lambda` by factors of 3 misses that point by more
//! than the budget; this search finds it. It assumes what holds for every
//! quantizer here: the more aggressive the parameter (smaller `k`, larger
//! `lambda`), the higher the ratio and the lower the accuracy. Under that
//! assumption plain bisection is optimal for a boundary, and it stays
//! correct as a bracket when the accuracy is only roughly monotone: every
//! point it tries is a row, and the report picks the best ratio among the
//! tried points that meet the budget.
//!
//! - `k` (integers in `[min, max]`): bisection at the geometric mean of the
//!   bracket, ending when the passing and failing `k` are neighbours.
//! - `lambda` (reals in `[min, max]`): bisection at the geometric mean,
//!   ending when the bracket's ratio is at most `ratio`; values are rounded
//!   to 3 significant digits so that cell ids and cache keys stay readable.
//!
//! A search for a rate ([`SearchGoal::Rate`]) walks the same way with the
//! average codeword length (mean over the seeds) as its score: the most
//! aggressive point whose rate is at least the target, and its neighbour
//! below it, bracket the target, so that two methods or scopes can be
//! compared at one rate by interpolating between them (the report does).
//!
//! The conservative end is tried first. If even it misses the budget, the
//! search widens the range past it, doubling `k` or halving `lambda` up to
//! the space's `limit` (`search.widen` in a grid), and ends at the first
//! point that passes or at the limit; bisection then goes on between that
//! point and the last one that failed. The aggressive end is tried only
//! when the bracket reaches it.

use nq_catalog::Metric;
use nq_report::Row;
use serde::Serialize;

/// The parameter range a search walks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "parameter", rename_all = "lowercase")]
pub enum SearchSpace {
    /// Clusters `k` in `[min, max]`; smaller is more aggressive.
    K {
        /// Smallest `k` tried.
        min: usize,
        /// The `k` tried first.
        max: usize,
        /// Largest `k` tried, when `max` and its doublings miss the budget
        /// (`max` for no widening).
        limit: usize,
    },
    /// ECSQ's `lambda` in `[min, max]`; larger is more aggressive.
    Lambda {
        /// The `lambda` tried first.
        min: f64,
        /// Largest `lambda` tried.
        max: f64,
        /// The search ends when the bracket's `high / low` is at most this.
        ratio: f64,
        /// Smallest `lambda` tried, when `min` and its halvings miss the
        /// budget (`min` for no widening).
        limit: f64,
    },
}

impl SearchSpace {
    /// The end of the range tried first: the largest `k`, the smallest
    /// `lambda`.
    pub fn conservative(&self) -> f64 {
        match *self {
            SearchSpace::K { max, .. } => max as f64,
            SearchSpace::Lambda { min, .. } => min,
        }
    }

    /// The other end.
    pub fn aggressive(&self) -> f64 {
        match *self {
            SearchSpace::K { min, .. } => min as f64,
            SearchSpace::Lambda { max, .. } => max,
        }
    }

    /// A `k` range `[min, max]` that does not widen.
    pub fn k(min: usize, max: usize) -> Self {
        SearchSpace::K {
            min,
            max,
            limit: max,
        }
    }

    /// The next point past `value` (a failed conservative point) when the
    /// range widens: `k` doubled or `lambda` halved, not past the limit;
    /// `None` at the limit.
    fn wider(&self, value: f64) -> Option<f64> {
        match *self {
            SearchSpace::K { limit, .. } => {
                (value < limit as f64).then(|| (value * 2.0).min(limit as f64))
            }
            SearchSpace::Lambda { limit, .. } => {
                (value > limit).then(|| round_significant(value / 2.0, 3).max(limit))
            }
        }
    }

    /// The whole span the search may visit, widening included, as
    /// `(low, high)`.
    fn reach(&self) -> (f64, f64) {
        match *self {
            SearchSpace::K { min, limit, .. } => (min as f64, limit as f64),
            SearchSpace::Lambda { max, limit, .. } => (limit, max),
        }
    }

    /// Whether no point worth trying lies between `a` and `b`.
    fn adjacent(&self, a: f64, b: f64) -> bool {
        match *self {
            SearchSpace::K { .. } => (a - b).abs() <= 1.0,
            SearchSpace::Lambda { ratio, .. } => a.max(b) / a.min(b) <= ratio,
        }
    }

    /// The point between `a` and `b` (not adjacent) that halves the bracket
    /// on a log scale.
    fn between(&self, a: f64, b: f64) -> f64 {
        let (low, high) = (a.min(b), a.max(b));
        let middle = (low * high).sqrt();
        match *self {
            SearchSpace::K { .. } => middle.round().clamp(low + 1.0, high - 1.0),
            SearchSpace::Lambda { .. } => {
                let rounded = round_significant(middle, 3);
                if rounded > low && rounded < high {
                    rounded
                } else {
                    middle
                }
            }
        }
    }
}

/// `x` rounded to `digits` significant decimal digits.
pub fn round_significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// What a search holds within its budget: the task metric of a finished
/// cell (top-1 %, or bits per character for text); `None` for a failed one.
pub fn quality(metric: Metric, row: &Row) -> Option<f64> {
    if row.status != "ok" {
        return None;
    }
    metric.value(row.top1, row.loss)
}

/// What a search holds its points to (`[search]` of a grid: `budget` or
/// `rate`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "goal", rename_all = "lowercase")]
pub enum SearchGoal {
    /// The task metric, mean over the seeds, at most `budget` worse than
    /// the same networks unquantized (points of top-1, or bits per
    /// character for text).
    Budget {
        /// How much worse, in the task metric.
        budget: f64,
    },
    /// The average codeword length, mean over the seeds, at least `bits`
    /// per quantized weight; the search ends with the target bracketed.
    Rate {
        /// The target rate, bits per quantized weight.
        bits: f64,
    },
}

impl SearchGoal {
    /// Whether the search counts from the networks unquantized.
    pub fn needs_reference(&self) -> bool {
        matches!(self, SearchGoal::Budget { .. })
    }

    /// What the search averages over the seeds for a cell's `row` (its
    /// status is not looked at): the task metric, or the average codeword
    /// length.
    pub fn measure(&self, metric: Metric, row: &Row) -> Option<f64> {
        match self {
            SearchGoal::Budget { .. } => metric.value(row.top1, row.loss),
            SearchGoal::Rate { .. } => row.avg_codeword_bits,
        }
    }

    /// The search over `space`; `reference` is the mean task metric of the
    /// networks unquantized, which only a budget needs.
    pub fn start(&self, space: SearchSpace, metric: Metric, reference: f64) -> BoundarySearch {
        match *self {
            SearchGoal::Budget { budget } => {
                BoundarySearch::held_to(space, metric, reference, budget)
            }
            SearchGoal::Rate { bits } => BoundarySearch::new(space, bits),
        }
    }

    /// The score to [`BoundarySearch::record`] for the mean of
    /// [`measure`](Self::measure) over the seeds.
    pub fn score(&self, metric: Metric, mean: f64) -> f64 {
        match self {
            SearchGoal::Budget { .. } => metric.score(mean),
            SearchGoal::Rate { .. } => mean,
        }
    }

    /// Marks `row` as a point of a search with this goal (and `reference`,
    /// for a budget).
    pub fn mark(&self, row: &mut Row, reference: f64) {
        match *self {
            SearchGoal::Budget { budget } => {
                row.search_budget = Some(budget);
                row.search_reference = Some(reference);
            }
            SearchGoal::Rate { bits } => row.search_rate = Some(bits),
        }
    }
}

/// One evaluated point of a search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tried {
    /// The parameter (`k` as a float, or `lambda`).
    pub value: f64,
    /// Its score: the task metric (mean over the seeds) oriented so that
    /// higher is better ([`Metric::score`]).
    pub score: f64,
    /// Whether the score met the threshold.
    pub passed: bool,
}

/// A bisection for the most aggressive parameter whose score is at least
/// `threshold`: ask [`next`](Self::next) for a point, evaluate it,
/// [`record`](Self::record) its score, until `next` returns `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundarySearch {
    space: SearchSpace,
    threshold: f64,
    passing: Option<f64>,
    failing: Option<f64>,
    tried: Vec<Tried>,
}

impl BoundarySearch {
    /// A search over `space` for scores of at least `threshold`.
    pub fn new(space: SearchSpace, threshold: f64) -> Self {
        Self {
            space,
            threshold,
            passing: None,
            failing: None,
            tried: Vec::new(),
        }
    }

    /// A search for the points whose task metric is at most `budget` worse
    /// than `reference` in `metric`; record each point's
    /// [`Metric::score`] of its mean metric.
    pub fn held_to(space: SearchSpace, metric: Metric, reference: f64, budget: f64) -> Self {
        Self::new(space, metric.score(reference) - budget)
    }

    /// The next point to evaluate, or `None` when the search is over.
    pub fn next(&self) -> Option<f64> {
        let Some(passing) = self.passing else {
            // nothing passed yet: start at the conservative end, then widen past it
            return match self.failing {
                None => Some(self.space.conservative()),
                Some(failing) => self.space.wider(failing),
            };
        };
        match self.failing {
            Some(failing) if self.space.adjacent(passing, failing) => None,
            Some(failing) => Some(self.space.between(passing, failing)),
            None => {
                let end = self.space.aggressive();
                if passing == end {
                    None
                } else if self.space.adjacent(passing, end) {
                    Some(end)
                } else {
                    Some(self.space.between(passing, end))
                }
            }
        }
    }

    /// Records the score of `value` (a point [`next`](Self::next) gave).
    pub fn record(&mut self, value: f64, score: f64) {
        let passed = score >= self.threshold;
        self.tried.push(Tried {
            value,
            score,
            passed,
        });
        if passed {
            self.passing = Some(value);
        } else {
            self.failing = Some(value);
        }
    }

    /// The points evaluated, in order.
    pub fn tried(&self) -> &[Tried] {
        &self.tried
    }

    /// The most aggressive passing point of the bracket, if any passed.
    pub fn boundary(&self) -> Option<f64> {
        self.passing
    }

    /// Most evaluations a search over `space` needs on a monotone score
    /// (for plans): exact for `k` (every boundary tried), over 400
    /// log-spaced boundaries for `lambda`.
    pub fn most_evaluations(space: SearchSpace) -> usize {
        let walk = |edge: f64| {
            // passes on the conservative side of `edge`
            let passes = |v: f64| match space {
                SearchSpace::K { .. } => v >= edge,
                SearchSpace::Lambda { .. } => v <= edge,
            };
            search(space, 0.5, |v| if passes(v) { 1.0 } else { 0.0 })
                .tried()
                .len()
        };
        let (low, high) = space.reach();
        let edges: Vec<f64> = match space {
            SearchSpace::K { min, limit, .. } if limit - min <= 4096 => {
                (min..=limit + 1).map(|k| k as f64).collect()
            }
            _ => (0..=400)
                .map(|i| low * (high / low).powf(i as f64 / 400.0))
                .chain([low / 2.0, high * 2.0])
                .collect(),
        };
        edges.into_iter().map(walk).max().unwrap_or(1)
    }
}

/// Runs a whole search with `score` as the evaluation (tests and
/// simulations; the grid runner drives [`BoundarySearch`] itself, since its
/// evaluations can fail).
pub fn search(
    space: SearchSpace,
    threshold: f64,
    mut score: impl FnMut(f64) -> f64,
) -> BoundarySearch {
    let mut s = BoundarySearch::new(space, threshold);
    while let Some(v) = s.next() {
        let y = score(v);
        s.record(v, y);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn k_search_finds_the_smallest_passing_k() {
        // accuracy 90 - 20 / k: k >= 20 keeps 89
        let s = search(SearchSpace::k(2, 64), 89.0, |k| 90.0 - 20.0 / k);
        assert_eq!(s.boundary(), Some(20.0));
        let values: Vec<f64> = s.tried().iter().map(|t| t.value).collect();
        // 64 passes; sqrt(2 * 64) = 11.3 fails; sqrt(11 * 64) = 26.5 passes; ...
        assert_eq!(&values[..3], &[64.0, 11.0, 27.0]);
        assert!(s.tried().len() <= BoundarySearch::most_evaluations(SearchSpace::k(2, 64)));
    }

    #[test]
    fn a_failing_conservative_end_ends_the_search() {
        let s = search(SearchSpace::k(2, 64), 95.0, |_| 90.0);
        assert_eq!(s.tried().len(), 1);
        assert_eq!(s.boundary(), None);
    }

    #[test]
    fn a_failing_conservative_end_widens_the_range_up_to_its_limit() {
        // accuracy 90 - 20 / k: k >= 100 keeps 89.8
        let space = SearchSpace::K {
            min: 4,
            max: 64,
            limit: 256,
        };
        let s = search(space, 89.8, |k| 90.0 - 20.0 / k);
        let values: Vec<f64> = s.tried().iter().map(|t| t.value).collect();
        // 64 fails, 128 passes, then bisection between them
        assert_eq!(&values[..3], &[64.0, 128.0, 91.0]);
        assert_eq!(s.boundary(), Some(100.0));
        assert!(s.tried().len() <= BoundarySearch::most_evaluations(space));

        // nothing passes: 64, 128, 256, then the search ends at the limit
        let s = search(space, 95.0, |_| 90.0);
        let values: Vec<f64> = s.tried().iter().map(|t| t.value).collect();
        assert_eq!(values, [64.0, 128.0, 256.0]);
        assert_eq!(s.boundary(), None);

        // a limit that is not a doubling is tried last
        let s = search(
            SearchSpace::K {
                min: 4,
                max: 64,
                limit: 100,
            },
            95.0,
            |_| 90.0,
        );
        let values: Vec<f64> = s.tried().iter().map(|t| t.value).collect();
        assert_eq!(values, [64.0, 100.0]);
    }

    #[test]
    fn a_search_in_bits_keeps_the_points_at_most_the_budget_worse() {
        // bits per character grow as k shrinks: 2.40 + 0.8 / k; the reference
        // is 2.40 and the budget 0.05, so k >= 16 passes (2.45) and 15 does not
        let metric = Metric::BitsPerCharacter;
        let bits = |k: f64| 2.40 + 0.8 / k;
        let mut search = BoundarySearch::held_to(SearchSpace::k(2, 64), metric, 2.40, 0.0501);
        while let Some(k) = search.next() {
            search.record(k, metric.score(bits(k)));
        }
        assert_eq!(search.boundary(), Some(16.0));
        let row = |status: &str| Row {
            status: status.into(),
            top1: Some(50.0),
            loss: Some(2.0 * std::f64::consts::LN_2),
            ..Row::default()
        };
        assert!((quality(metric, &row("ok")).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(quality(Metric::Top1, &row("ok")), Some(50.0));
        assert_eq!(quality(metric, &row("failed")), None);
    }

    #[test]
    fn a_rate_search_brackets_the_target_rate() {
        // a fixed-length code: log2(k) bits; 2.5 bits lies between k = 5 and 6
        let goal = SearchGoal::Rate { bits: 2.5 };
        let bits = |k: f64| k.log2();
        let row = |k: f64| Row {
            avg_codeword_bits: Some(bits(k)),
            top1: Some(80.0),
            ..Row::default()
        };
        let mut walk = goal.start(SearchSpace::k(2, 128), Metric::Top1, f64::NAN);
        while let Some(k) = walk.next() {
            let measured = goal.measure(Metric::Top1, &row(k)).unwrap();
            walk.record(k, goal.score(Metric::Top1, measured));
        }
        assert_eq!(walk.boundary(), Some(6.0));
        assert!(walk.tried().iter().any(|t| t.value == 5.0 && !t.passed));
        // ECSQ's rate falls as lambda grows: 3 - log10(lambda / 1e-4) bits
        let s = search(
            SearchSpace::Lambda {
                min: 1e-6,
                max: 1e-1,
                ratio: 1.3,
                limit: 1e-6,
            },
            2.5,
            |l: f64| 3.0 - (l / 1e-4).log10(),
        );
        let edge = 1e-4 * 10f64.powf(0.5);
        let passing = s.boundary().unwrap();
        let failing = s.tried().iter().filter(|t| !t.passed).map(|t| t.value);
        let failing = failing.fold(f64::INFINITY, f64::min);
        assert!(passing <= edge && edge < failing && failing / passing <= 1.3 * 1.001);
        // the marks: a rate, and no budget or reference
        let mut r = Row::default();
        goal.mark(&mut r, f64::NAN);
        assert_eq!(
            (r.search_rate, r.search_budget, r.search_reference),
            (Some(2.5), None, None)
        );
        assert!(!goal.needs_reference() && SearchGoal::Budget { budget: 0.1 }.needs_reference());
    }

    #[test]
    fn a_failing_lambda_halves_down_to_its_limit() {
        let space = SearchSpace::Lambda {
            min: 1e-5,
            max: 1e-2,
            ratio: 1.3,
            limit: 2.5e-6,
        };
        // passes at lambda <= 4e-6 only
        let s = search(space, 89.0, |l| if l <= 4e-6 { 90.0 } else { 80.0 });
        let values: Vec<f64> = s.tried().iter().map(|t| t.value).collect();
        assert_eq!(&values[..3], &[1e-5, 5e-6, 2.5e-6]);
        let b = s.boundary().unwrap();
        assert!(b <= 4e-6 && b * 1.3 >= 4e-6 * 0.99, "{b}");
    }

    #[test]
    fn an_aggressive_end_that_passes_is_the_answer() {
        let s = search(SearchSpace::k(2, 64), 0.0, |_| 90.0);
        assert_eq!(s.boundary(), Some(2.0));
        assert_eq!(s.tried().last().unwrap().value, 2.0);
    }

    #[test]
    fn lambda_values_are_rounded_and_the_bracket_closes_to_its_ratio() {
        let space = SearchSpace::Lambda {
            min: 1e-5,
            max: 1e-2,
            ratio: 1.25,
            limit: 1e-5,
        };
        // accuracy falls past lambda = 3.3e-4
        let s = search(space, 89.0, |l| if l <= 3.3e-4 { 90.0 } else { 80.0 });
        let b = s.boundary().unwrap();
        assert!(b <= 3.3e-4 && b * 1.25 >= 3.3e-4, "{b}");
        assert_eq!(s.tried()[1].value, 3.16e-4); // sqrt(1e-7), 3 digits
        for t in s.tried() {
            assert_eq!(t.value, round_significant(t.value, 3));
        }
    }

    #[test]
    fn most_evaluations_bounds_the_walk() {
        assert_eq!(BoundarySearch::most_evaluations(SearchSpace::k(5, 5)), 1);
        assert_eq!(BoundarySearch::most_evaluations(SearchSpace::k(2, 3)), 2);
        let n = BoundarySearch::most_evaluations(SearchSpace::k(2, 64));
        assert!((6..=12).contains(&n), "{n}");
    }

    proptest! {
        /// On any monotone accuracy the search ends at the boundary, within
        /// one step of `k` or the ratio of `lambda`, in at most
        /// `most_evaluations` points.
        #[test]
        fn finds_the_boundary_of_monotone_scores(min in 1usize..20, span in 0usize..300, edge in 0usize..400) {
            let max = min + span;
            let space = SearchSpace::k(min, max);
            let s = search(space, 0.5, |k| if k as usize >= edge { 1.0 } else { 0.0 });
            prop_assert!(s.tried().len() <= BoundarySearch::most_evaluations(space));
            let want = (edge.max(min) <= max).then(|| edge.max(min) as f64);
            prop_assert_eq!(s.boundary(), want);
        }

        /// The same with widening: the boundary may lie past `max`, up to the limit.
        #[test]
        fn finds_a_boundary_past_max_when_widening(min in 1usize..20, span in 0usize..100, widen in 1usize..8, edge in 0usize..1000) {
            let max = min + span;
            let limit = max * widen;
            let space = SearchSpace::K { min, max, limit };
            let s = search(space, 0.5, |k| if k as usize >= edge { 1.0 } else { 0.0 });
            prop_assert!(s.tried().len() <= BoundarySearch::most_evaluations(space));
            let want = (edge.max(min) <= limit).then(|| edge.max(min) as f64);
            prop_assert_eq!(s.boundary(), want);
        }

        #[test]
        fn finds_the_lambda_boundary_within_its_ratio(edge in -6.0f64..-1.0, ratio in 1.05f64..2.0) {
            let edge = 10f64.powf(edge);
            let space = SearchSpace::Lambda { min: 1e-6, max: 1e-1, ratio, limit: 1e-6 };
            let s = search(space, 0.5, |l| if l <= edge { 1.0 } else { 0.0 });
            let b = s.boundary().unwrap();
            prop_assert!(b <= edge);
            let failing = s.tried().iter().filter(|t| !t.passed).map(|t| t.value).fold(f64::INFINITY, f64::min);
            prop_assert!(failing / b <= ratio, "bracket {} .. {}", b, failing);
        }
    }
}
