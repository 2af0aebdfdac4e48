//! Settings compared at one rate. A search for a rate (`[search] rate` of a
//! grid) ends with its target between two points it tried: the most
//! aggressive one whose average codeword length is at least the target and
//! one below it. The task metric at the target is interpolated linearly in
//! the average codeword length between the two (mean and standard deviation
//! each), so that methods, weightings and scopes are compared at exactly
//! the same rate instead of at the same `k`, which mixes rate and method
//! (the review's suggestion 3).
//!
//! Pairs of searches that differ only in their scope (global minus layer by
//! layer), or only in their weighting, are then compared, judged by the
//! rule of the findings page (a difference counts when it exceeds twice its
//! standard error). Two searches that quantize the same trained networks
//! are paired by training seed: each seed's metric is interpolated at the
//! target between the same two points (the mean of these is the
//! interpolated mean), and the differences seed by seed are judged, which
//! cancels the noise of training that the two share.

use std::fmt::Write;

use nq_catalog::Metric;

use crate::markdown::{digits, method_label, parameter, quality, setting_label};
use crate::summary::{Setting, Spread};
use crate::verdict::{Claim, Comparison, Verdict};

/// One search for a rate, at its target.
#[derive(Debug, Clone, PartialEq)]
pub struct AtRate<'a> {
    /// Its first point (every point shares all but the parameter).
    pub setting: &'a Setting,
    /// The target, bits per weight.
    pub target: f64,
    /// The tried point closest above the target (at least the target) and
    /// the one closest below; `None` when the walk did not bracket it.
    pub bracket: Option<(&'a Setting, &'a Setting)>,
    /// The task metric interpolated at the target (unmeasured without a
    /// bracket).
    pub quality: Spread,
    /// Each training seed of both bracketing points with its task metric
    /// interpolated at the target, in order of seed (empty without a
    /// bracket).
    pub by_training_seed: Vec<(u64, f64)>,
    /// Seeds behind it: the fewer of the two points'.
    pub seeds: u64,
}

fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + t * (b - a)
}

/// How far `target` bits lie from `above` towards `below` (0 at `above`,
/// 1 at `below`), by their mean rates; `None` without them.
fn fraction(above: &Setting, below: &Setting, target: f64) -> Option<f64> {
    let (hi, lo) = (above.bits.mean?, below.bits.mean?);
    Some(if hi > lo {
        (hi - target) / (hi - lo)
    } else {
        0.0
    })
}

/// `above` and `below` interpolated at `target` bits: the task metric's
/// mean and standard deviation, and each training seed of both.
fn interpolate(above: &Setting, below: &Setting, target: f64) -> (Spread, Vec<(u64, f64)>) {
    let Some(t) = fraction(above, below, target) else {
        return (Spread::default(), Vec::new());
    };
    let (a, b) = (above.quality, below.quality);
    let spread = Spread {
        mean: a.mean.zip(b.mean).map(|(a, b)| lerp(a, b, t)),
        std: a.std.zip(b.std).map(|(a, b)| lerp(a, b, t)),
    };
    let by_seed = above
        .by_training_seed
        .iter()
        .filter_map(|&(seed, a)| {
            let &(_, b) = below.by_training_seed.iter().find(|(s, _)| *s == seed)?;
            Some((seed, lerp(a, b, t)))
        })
        .collect();
    (spread, by_seed)
}

/// Every search for a rate among `settings`, in order of appearance.
pub fn at_rate(settings: &[Setting]) -> Vec<AtRate<'_>> {
    let mut out: Vec<AtRate> = Vec::new();
    for s in settings {
        let (Some(id), Some(target)) = (s.search.as_deref(), s.search_rate) else {
            continue;
        };
        let same = |o: &&Setting| o.experiment == s.experiment && o.search.as_deref() == Some(id);
        if out.iter().any(|a| same(&a.setting)) {
            continue;
        }
        let points: Vec<&Setting> = settings.iter().filter(same).collect();
        let bits = |p: &&Setting| p.bits.mean.unwrap_or(f64::NAN);
        let above = points
            .iter()
            .filter(|p| bits(p) >= target)
            .min_by(|a, b| bits(a).total_cmp(&bits(b)));
        let below = points
            .iter()
            .filter(|p| bits(p) < target)
            .max_by(|a, b| bits(a).total_cmp(&bits(b)));
        let bracket = above.copied().zip(below.copied());
        let (quality, by_training_seed) = bracket.map_or_else(
            || (Spread::default(), Vec::new()),
            |(a, b)| interpolate(a, b, target),
        );
        out.push(AtRate {
            setting: s,
            target,
            bracket,
            quality,
            by_training_seed,
            seeds: bracket.map_or(0, |(a, b)| a.seeds.min(b.seeds)),
        });
    }
    out
}

/// The axis two searches at one rate differ in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// One codebook for all layers (`global`, first) or one per layer.
    Scope,
    /// The importance weighting (in order of first appearance; `none` for
    /// unweighted).
    Weighting,
}

impl Axis {
    fn value(self, s: &Setting) -> String {
        match self {
            Axis::Scope => s.scope.clone().unwrap_or_default(),
            Axis::Weighting => s.weighting.clone().unwrap_or_else(|| "none".into()),
        }
    }

    /// Whether `a` and `b` agree on every axis but this one.
    fn twins(self, a: &Setting, b: &Setting) -> bool {
        let rest = |s: &Setting| {
            (
                s.experiment.clone(),
                s.prune.clone(),
                s.method.clone(),
                s.coding.clone(),
                s.finetune_trains,
                s.finetuned,
                s.rounding.clone(),
                (self != Axis::Scope).then(|| s.scope.clone()),
                (self != Axis::Weighting).then(|| s.weighting.clone()),
            )
        };
        rest(a) == rest(b)
    }
}

/// Two searches at one rate that differ in one axis, A against B; the
/// comparison is `None` where either has too few seeds or no bracket.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair<'a> {
    /// A's value of the axis (`global`, `hessian`).
    pub a_name: String,
    /// B's.
    pub b_name: String,
    /// The search with A.
    pub a: &'a AtRate<'a>,
    /// Its twin with B.
    pub b: &'a AtRate<'a>,
    /// A minus B in the task metric, oriented so that a positive
    /// difference means A is better.
    pub comparison: Option<Comparison>,
    /// Whether the comparison is paired by training seed (the two quantize
    /// the same trained networks), else of the two means.
    pub paired: bool,
}

impl Pair<'_> {
    /// Which side the comparison favours, in words.
    pub fn verdict(&self) -> String {
        match self.comparison.map(|c| c.verdict(Claim::Beats)) {
            Some(Verdict::Confirmed) => format!("{} better", self.a_name),
            Some(Verdict::Contradicted) => format!("{} better", self.b_name),
            Some(_) => "within noise".into(),
            None => "not judged".into(),
        }
    }
}

/// The metric as a score: higher is better.
fn oriented(s: Spread, metric: Metric) -> Spread {
    Spread {
        mean: s.mean.map(|m| metric.score(m)),
        std: s.std,
    }
}

/// A against B at their target: paired by training seed when they quantize
/// the same networks (and the flag says so), else the two means.
fn compare(a: &AtRate<'_>, b: &AtRate<'_>) -> (Option<Comparison>, bool) {
    let metric = a.setting.metric;
    if a.setting.shares_networks_with(b.setting) {
        let scored = |r: &AtRate<'_>| -> Vec<(u64, f64)> {
            r.by_training_seed
                .iter()
                .map(|&(seed, q)| (seed, metric.score(q)))
                .collect()
        };
        if let Some(c) = Comparison::paired(&scored(a), &scored(b)) {
            return (Some(c), true);
        }
    }
    let unpaired = Comparison::of(
        oriented(a.quality, metric),
        a.seeds,
        oriented(b.quality, metric),
        b.seeds,
        0.0,
    );
    (unpaired, false)
}

/// The pairs of searches among `found` that differ only in `axis`: for
/// every two of its values (global before layer; weightings in order of
/// first appearance), each search with the first and its twin with the
/// second.
pub fn pairs<'a>(found: &'a [AtRate<'a>], axis: Axis) -> Vec<Pair<'a>> {
    let mut values: Vec<String> = Vec::new();
    for a in found {
        let v = axis.value(a.setting);
        if !values.contains(&v) {
            values.push(v);
        }
    }
    if axis == Axis::Scope {
        values.sort_by_key(|v| v != "global");
    }
    let mut out = Vec::new();
    for (i, first) in values.iter().enumerate() {
        for second in &values[i + 1..] {
            for a in found.iter().filter(|a| &axis.value(a.setting) == first) {
                let twin = found.iter().find(|b| {
                    &axis.value(b.setting) == second
                        && b.target == a.target
                        && axis.twins(a.setting, b.setting)
                });
                let Some(b) = twin else { continue };
                let (comparison, paired) = compare(a, b);
                out.push(Pair {
                    a_name: first.clone(),
                    b_name: second.clone(),
                    a,
                    b,
                    comparison,
                    paired,
                });
            }
        }
    }
    out
}

/// `k=6 (2.61 bits): 84.10 ± 0.50 %`
fn point(s: &Setting) -> String {
    format!(
        "{} ({:.3} bits): {}",
        parameter(s),
        s.bits.mean.unwrap_or(f64::NAN),
        quality(s.quality, s.metric)
    )
}

fn prune_label(s: &Setting) -> &str {
    s.prune.as_deref().unwrap_or("none")
}

/// The table of `pairs` under the heading `title`.
fn pair_table(pairs: &[Pair<'_>], title: &str, setting: fn(&Setting) -> String) -> String {
    let mut out = format!(
        "### {title} at the same rate\n\nThe difference (A minus B, in the task metric; for \
         text, bits per character, where lower is better) counts when it exceeds twice its \
         standard error: of the differences seed by seed where A and B quantize the same \
         trained networks (paired by training seed), else of the two means (marked \
         unpaired).\n\n| pruning | setting | coding | fine-tuned | target bits | A | B | \
         A − B | 2 SE | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for p in pairs {
        let s = p.a.setting;
        let d = digits(s.metric);
        let (difference, two_se) = match (p.a.quality.mean, p.b.quality.mean) {
            (Some(a), Some(b)) => (
                format!("{:+.d$}", a - b),
                p.comparison.map_or("-".into(), |c| {
                    let unpaired = if p.paired { "" } else { " (unpaired)" };
                    format!("{:.d$}{unpaired}", c.two_se)
                }),
            ),
            _ => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {}: {} | {}: {} | {difference} | {two_se} | {} |",
            prune_label(s),
            setting(s),
            s.coding.as_deref().unwrap_or("-"),
            s.finetune_cell(),
            p.a.target,
            p.a_name,
            quality(p.a.quality, s.metric),
            p.b_name,
            quality(p.b.quality, s.metric),
            p.verdict(),
        );
    }
    out
}

/// The markdown section of a grid's report: every search for a rate at its
/// target, and the scope pairs; empty without such searches.
pub fn section(settings: &[Setting]) -> String {
    let found = at_rate(settings);
    if found.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "## At one rate\n\nEach search for a rate ends with its target between two points it \
         tried (the nearest above and below, by mean average codeword length); the task metric \
         at the target is interpolated linearly in the rate between them, mean and standard \
         deviation each.\n\n| pruning | setting | scope | coding | fine-tuned | target bits | \
         above | below | at the target |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for a in &found {
        let s = a.setting;
        let (above, below) = a
            .bracket
            .map_or(("not bracketed".into(), "-".into()), |(hi, lo)| {
                (point(hi), point(lo))
            });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {above} | {below} | {} |",
            prune_label(s),
            setting_label(s),
            s.scope.as_deref().unwrap_or("-"),
            s.coding.as_deref().unwrap_or("-"),
            s.finetune_cell(),
            a.target,
            quality(a.quality, s.metric),
        );
    }
    for (axis, title, setting) in [
        (
            Axis::Scope,
            "Global against layer-by-layer codebooks",
            setting_label as fn(&Setting) -> String,
        ),
        (Axis::Weighting, "Weightings", |s: &Setting| {
            let label = method_label(&s.method, None);
            format!("{label}, {}", s.scope.as_deref().unwrap_or("-"))
        }),
    ] {
        let pairs = pairs(&found, axis);
        if !pairs.is_empty() {
            let _ = write!(out, "\n{}", pair_table(&pairs, title, setting));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scope: &str, k: u64, bits: f64, top1: f64, std: f64) -> Setting {
        Setting {
            experiment: "g".into(),
            method: "kmeans".into(),
            scope: Some(scope.into()),
            k: Some(k),
            seeds: 3,
            search: Some(format!("none.kmeans.none.{scope}.huffman")),
            search_rate: Some(2.5),
            bits: Spread::measured(bits, 0.01),
            quality: Spread::measured(top1, std),
            ..Setting::default()
        }
    }

    #[test]
    fn the_metric_is_interpolated_between_the_points_around_the_target() {
        // tried in search order: 64 (far above), 4 (below), 8 (just above), 6 (below)
        let settings = [
            point("global", 64, 5.0, 90.0, 0.1),
            point("global", 4, 1.9, 70.0, 1.0),
            point("global", 8, 3.0, 84.0, 0.4),
            point("global", 6, 2.0, 80.0, 0.8),
        ];
        let found = at_rate(&settings);
        assert_eq!(found.len(), 1);
        let (above, below) = found[0].bracket.unwrap();
        assert_eq!((above.k, below.k), (Some(8), Some(6)));
        // halfway from 3.0 bits to 2.0: 82 %, std 0.6
        let q = found[0].quality;
        assert!((q.mean.unwrap() - 82.0).abs() < 1e-12);
        assert!((q.std.unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(found[0].seeds, 3);
    }

    #[test]
    fn an_unbracketed_target_has_no_value() {
        let settings = [
            point("global", 64, 5.0, 90.0, 0.1),
            point("global", 2, 3.0, 60.0, 1.0),
        ];
        let found = at_rate(&settings);
        assert_eq!((found[0].bracket, found[0].quality.mean), (None, None));
        assert!(section(&settings).contains("not bracketed"));
    }

    #[test]
    fn scopes_are_paired_and_judged_by_twice_the_standard_error() {
        let pair = |layer_top1: f64| {
            [
                point("global", 8, 3.0, 84.0, 0.3),
                point("global", 6, 2.0, 80.0, 0.3),
                point("layer", 8, 3.0, layer_top1, 0.3),
                point("layer", 6, 2.0, layer_top1 - 4.0, 0.3),
            ]
        };
        // both at 82 % at 2.5 bits, 2 SE = 2 sqrt(2 * 0.09 / 3) = 0.49
        let verdicts = |layer_top1: f64| {
            let settings = pair(layer_top1);
            let found = at_rate(&settings);
            let pairs = pairs(&found, Axis::Scope);
            assert_eq!(pairs.len(), 1);
            // the same settings have no weighting pair
            assert!(super::pairs(&found, Axis::Weighting).is_empty());
            pairs[0].verdict()
        };
        assert_eq!(verdicts(84.0), "within noise");
        assert_eq!(verdicts(83.0), "global better");
        assert_eq!(verdicts(85.0), "layer better");
        let text = section(&pair(83.0));
        assert!(
            text.contains("+1.00") && text.contains("global better"),
            "{text}"
        );
    }

    #[test]
    fn weightings_are_paired_in_order_of_appearance() {
        let weighted = |weighting: &str, k: u64, bits: f64, top1: f64| Setting {
            weighting: Some(weighting.into()),
            search: Some(format!("{weighting}.global")),
            ..point("global", k, bits, top1, 0.1)
        };
        let settings = [
            weighted("hessian", 8, 3.0, 84.0),
            weighted("hessian", 6, 2.0, 80.0),
            weighted("adam", 8, 3.0, 74.0),
            weighted("adam", 6, 2.0, 70.0),
        ];
        let found = at_rate(&settings);
        let p = pairs(&found, Axis::Weighting);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].a_name.as_str(), p[0].b_name.as_str()),
            ("hessian", "adam")
        );
        assert_eq!(p[0].verdict(), "hessian better");
        let text = section(&settings);
        assert!(text.contains("### Weightings at the same rate"), "{text}");
        assert!(
            text.contains("| hessian: 82.00 ± 0.10 % | adam: 72.00 ± 0.10 % | +10.00 |"),
            "{text}"
        );
    }

    #[test]
    fn searches_of_the_same_networks_are_paired_by_training_seed() {
        // global 84 -> 80 %, layer 83.4 -> 79.4 % between 3 and 2 bits; the
        // seeds spread by ±2 points alike in both scopes, so the means
        // differ by 0.6 within their noise but every seed is 0.5 to 0.7
        // better globally
        let seeded = |scope: &str, k: u64, bits: f64, top1: f64, wobble: f64| Setting {
            by_training_seed: vec![
                (0, top1 - 2.0),
                (1, top1 + wobble),
                (2, top1 + 2.0 - wobble),
            ],
            ..point(scope, k, bits, top1, 2.0)
        };
        let settings = [
            seeded("global", 8, 3.0, 84.0, 0.0),
            seeded("global", 6, 2.0, 80.0, 0.0),
            seeded("layer", 8, 3.0, 83.4, 0.1),
            seeded("layer", 6, 2.0, 79.4, 0.1),
        ];
        let found = at_rate(&settings);
        // each seed halfway between its two points
        assert_eq!(
            found[0].by_training_seed,
            vec![(0, 80.0), (1, 82.0), (2, 84.0)]
        );
        let p = pairs(&found, Axis::Scope);
        assert!(p[0].paired);
        // differences 0.6, 0.5, 0.7: mean 0.6, 2 SE 2 * 0.1 / sqrt(3)
        let c = p[0].comparison.unwrap();
        assert!((c.difference - 0.6).abs() < 1e-9, "{c:?}");
        assert!((c.two_se - 0.2 / 3f64.sqrt()).abs() < 1e-9, "{c:?}");
        assert_eq!(p[0].verdict(), "global better");
        // networks trained otherwise (another baseline): the two means only,
        // within their noise, and the table says so
        let mut other = settings.clone();
        for s in &mut other[2..] {
            s.baseline_quality = Spread::measured(91.0, 0.1);
        }
        let found = at_rate(&other);
        let p = pairs(&found, Axis::Scope);
        assert!(!p[0].paired);
        assert_eq!(p[0].verdict(), "within noise");
        assert!(section(&other).contains("(unpaired) | within noise |"));
    }

    #[test]
    fn budget_searches_and_swept_settings_are_left_out() {
        let mut s = point("global", 8, 3.0, 84.0, 0.3);
        s.search_rate = None;
        s.search_budget = Some(0.1);
        assert!(at_rate(&[s.clone()]).is_empty());
        s.search = None;
        assert_eq!(section(&[s]), "");
    }
}
