//! Review question 3: how sensitive the methods are to their
//! hyperparameters (`k`, `lambda`) and to their seeds.
//!
//! Seeds: where a grid ran its quantizer with seeds of its own
//! (`grid.quantizer_seed`), how much of a setting's spread comes from
//! training (the training seeds) and how much from the quantizer's draws
//! (k-means++ centres, universal quantization's dither), as
//! [`SeedSources`] gives them ([`section`]).
//!
//! Hyperparameters: along a sweep of `k` or `lambda`, each step to the
//! next setting with more bits, once both are within [`knee_window`] of
//! the network unquantized, compared by the rule of [`crate::verdict`]
//! paired by training seed ([`steps`]): past the knee, does the setting
//! still matter?

use std::fmt::Write;

use nq_catalog::Metric;

use crate::markdown::{digits, parameter, quality, render, setting_label};
use crate::summary::{SeedSources, Setting};
use crate::verdict::Comparison;

/// How far from the network unquantized a setting may be and still count
/// as past the knee: 1 point of top-1, 0.05 bits per character.
pub fn knee_window(metric: Metric) -> f64 {
    match metric {
        Metric::Top1 => 1.0,
        Metric::BitsPerCharacter => 0.05,
    }
}

/// One step along a sweep: from a setting to the next with more bits.
#[derive(Debug, Clone)]
pub struct Step<'a> {
    /// The setting with fewer bits (smaller `k`, larger `lambda`).
    pub from: &'a Setting,
    /// The next one.
    pub to: &'a Setting,
    /// `to` against `from`, paired by training seed (both quantize the
    /// same trained networks; where the quantizer had seeds of its own, a
    /// training seed's runs are averaged first, since they are not
    /// independent); `None` with fewer than two shared seeds.
    pub comparison: Option<Comparison>,
}

/// Whether `s` is within [`knee_window`] of the network it quantized (the
/// pruned one, else the baseline).
fn past_the_knee(s: &Setting) -> bool {
    let reference = s.pruned_quality.mean.or(s.baseline_quality.mean);
    match (reference, s.quality.mean) {
        (Some(r), Some(q)) => s.metric.score(r) - s.metric.score(q) <= knee_window(s.metric),
        _ => false,
    }
}

/// The steps past the knee along every sweep of `settings` (settings
/// outside searches that differ only in `k`, or only in `lambda`), in
/// order of the sweeps' first settings.
pub fn steps(settings: &[Setting]) -> Vec<Step<'_>> {
    let swept: Vec<&Setting> = settings
        .iter()
        .filter(|s| s.search.is_none() && (s.k.is_some() || s.lambda.is_some()))
        .collect();
    // every axis but the swept parameter
    let sweep_of = |s: &Setting| {
        format!(
            "{}|{}|{}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{}|{:?}",
            s.experiment,
            s.model,
            s.dataset,
            s.prune,
            s.weighting,
            s.method,
            s.scope,
            s.coding,
            s.rounding,
            s.finetuned,
            s.finetune_trains
        )
    };
    let mut sweeps: Vec<(String, Vec<&Setting>)> = Vec::new();
    for s in swept {
        let name = sweep_of(s);
        match sweeps.iter_mut().find(|(n, _)| *n == name) {
            Some((_, members)) => members.push(s),
            None => sweeps.push((name, vec![s])),
        }
    }
    let mut out = Vec::new();
    for (_, mut members) in sweeps {
        // more bits: larger k, smaller lambda
        members.sort_by(|a, b| match (a.k, b.k) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => b.lambda.unwrap_or(0.0).total_cmp(&a.lambda.unwrap_or(0.0)),
        });
        for pair in members.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            if !(past_the_knee(from) && past_the_knee(to)) {
                continue;
            }
            out.push(Step {
                from,
                to,
                comparison: Comparison::paired(
                    &to.scored_by_training_seed(),
                    &from.scored_by_training_seed(),
                ),
            });
        }
    }
    out
}

fn std_text(std: Option<f64>, digits: usize) -> String {
    std.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// The report's section on the spread by source, empty when no setting
/// ran with quantizer seeds.
pub fn section(settings: &[Setting]) -> String {
    let split: Vec<(&Setting, SeedSources)> = settings
        .iter()
        .filter_map(|s| Some((s, s.seed_sources?)))
        .collect();
    let Some((first, _)) = split.first() else {
        return String::new();
    };
    let metric = first.metric;
    let d = digits(metric);
    let headers = [
        "quantizer".to_owned(),
        "scope".to_owned(),
        "parameter".to_owned(),
        "training × quantizer seeds".to_owned(),
        format!("{} (all runs)", metric.label()),
        "std over training seeds".to_owned(),
        "std over quantizer seeds".to_owned(),
    ];
    let rows: Vec<Vec<String>> = split
        .iter()
        .map(|(s, src)| {
            vec![
                setting_label(s),
                s.scope.clone().unwrap_or_else(|| "-".into()),
                parameter(s),
                format!("{} × {}", src.training_seeds, src.quantizer_seeds),
                quality(s.quality, metric),
                std_text(src.over_training, d),
                std_text(src.over_quantizer, d),
            ]
        })
        .collect();
    let compared: Vec<&SeedSources> = split
        .iter()
        .map(|(_, src)| src)
        .filter(|src| src.over_training.is_some() && src.over_quantizer.is_some())
        .collect();
    let quantizer_larger = compared
        .iter()
        .filter(|src| src.over_quantizer > src.over_training)
        .count();
    let mut text = String::from("## Spread by source\n\n");
    let _ = writeln!(
        text,
        "The settings whose quantizer draws, run once per training seed and quantizer seed \
         (`grid.quantizer_seed`): the standard deviation over the training seeds of their means \
         over the quantizer seeds, and over the quantizer seeds within a training seed (pooled). \
         The quantizer seeds spread more than the training seeds in {quantizer_larger} of {} \
         settings.\n",
        compared.len()
    );
    text += &render(&headers, &rows);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Spread;
    use crate::verdict::{Claim, Verdict};

    fn setting(k: u64, over_training: f64, over_quantizer: f64) -> Setting {
        Setting {
            method: "kmeans".into(),
            scope: Some("global".into()),
            k: Some(k),
            quality: Spread::measured(90.0, 1.0),
            seed_sources: Some(SeedSources {
                training_seeds: 3,
                quantizer_seeds: 3,
                over_training: Some(over_training),
                over_quantizer: Some(over_quantizer),
            }),
            ..Setting::default()
        }
    }

    #[test]
    fn lists_the_settings_with_quantizer_seeds_and_counts_where_they_spread_more() {
        let deterministic = Setting {
            method: "uniform".into(),
            k: Some(4),
            ..Setting::default()
        };
        let page = section(&[setting(4, 0.5, 2.0), deterministic, setting(8, 0.3, 0.1)]);
        assert!(
            page.contains("spread more than the training seeds in 1 of 2 settings"),
            "{page}"
        );
        assert!(
            page.contains("| k-means | global | k=4 | 3 × 3 | 90.00 ± 1.00 % | 0.50 | 2.00 |"),
            "{page}"
        );
        assert!(!page.contains("uniform"), "{page}");
    }

    #[test]
    fn steps_past_the_knee_compare_neighbours_paired_by_training_seed() {
        // each training seed's mean: `top1` shifted by -0.5, 0 and +0.5
        // (the training noise every k shares), plus a wobble of its own
        let at = |k: u64, top1: f64, wobble: f64| Setting {
            baseline_quality: Spread::measured(91.0, 0.1),
            quality: Spread::measured(top1, 5.0),
            seeds: 9,
            by_training_seed: vec![
                (0, top1 - 0.5 - wobble),
                (1, top1 + 2.0 * wobble),
                (2, top1 + 0.5 - wobble),
            ],
            ..setting(k, 0.5, 0.1)
        };
        // k = 2 is 11 points below the baseline: not past the knee
        let sweep = [
            at(32, 90.9, 0.0),
            at(2, 80.0, 0.0),
            at(8, 90.2, 0.0),
            at(16, 90.8, 0.1),
        ];
        let found = steps(&sweep);
        let pairs: Vec<(u64, u64)> = found
            .iter()
            .map(|s| (s.from.k.unwrap(), s.to.k.unwrap()))
            .collect();
        assert_eq!(pairs, vec![(8, 16), (16, 32)]);
        // 8 to 16: differences 0.5, 0.8, 0.5 (mean 0.6, sample var 0.03);
        // the shared training noise (0.5 a seed) cancels
        let c = found[0].comparison.unwrap();
        assert!((c.difference - 0.6).abs() < 1e-9);
        assert!((c.two_se - 2.0 * (0.03f64 / 3.0).sqrt()).abs() < 1e-9);
        assert_eq!(c.verdict(Claim::Equals), Verdict::Contradicted);
        // a sweep of lambda runs towards smaller lambda, a search is no sweep
        let lambda = |l: f64, top1: f64| Setting {
            method: "ecsq".into(),
            k: None,
            lambda: Some(l),
            ..at(0, top1, 0.0)
        };
        let searched = Setting {
            search: Some("s".into()),
            ..lambda(3e-4, 90.9)
        };
        let sweep = [lambda(1e-4, 90.9), lambda(1e-3, 90.5), searched];
        let found = steps(&sweep);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].from.lambda, found[0].to.lambda),
            (Some(1e-3), Some(1e-4))
        );
    }

    #[test]
    fn text_is_compared_with_fewer_bits_per_character_as_better() {
        let bits = |k: u64, mean: f64| Setting {
            dataset: "shakespeare".into(),
            metric: nq_catalog::Metric::BitsPerCharacter,
            baseline_quality: Spread::measured(3.2, 0.01),
            quality: Spread::measured(mean, 0.01),
            seeds: 2,
            by_training_seed: vec![(0, mean), (1, mean + 0.01)],
            ..setting(k, 0.01, 0.0)
        };
        let sweep = [bits(8, 3.24), bits(16, 3.22)];
        let found = steps(&sweep);
        let c = found[0].comparison.unwrap();
        assert!((c.difference - 0.02).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn no_section_without_quantizer_seeds() {
        let mut s = setting(4, 0.5, 2.0);
        s.seed_sources = None;
        assert_eq!(section(&[s]), "");
    }
}
