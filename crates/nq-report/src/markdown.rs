//! Markdown tables: one per grid (every setting over its seeds), and the
//! paper's Table 1 layout (networks by method: compression ratio and
//! accuracy of the best setting of each method).

use std::fmt::Write;

use nq_catalog::Metric;

use crate::summary::{distinct, Setting, Spread};

/// Accuracy loss allowed against the pruned (or baseline) network when
/// Table 1 picks a method's setting, in points (the paper reports ratios at
/// no loss; 0.1 point is within the seed-to-seed spread of our nets).
pub const TABLE1_TOLERANCE: f64 = 0.1;

/// The same for a language model, in bits per character: 0.01 bit is about
/// the seed-to-seed spread of the character-level GPT (2.449 and 2.441 bits
/// for seeds 0 and 1).
pub const TABLE1_TOLERANCE_BITS: f64 = 0.01;

/// Table 1's budget in `metric` when a grid's searches set none.
pub fn default_tolerance(metric: Metric) -> f64 {
    match metric {
        Metric::Top1 => TABLE1_TOLERANCE,
        Metric::BitsPerCharacter => TABLE1_TOLERANCE_BITS,
    }
}

/// Decimals a value of `metric` is shown with.
pub(crate) fn digits(metric: Metric) -> usize {
    match metric {
        Metric::Top1 => 2,
        Metric::BitsPerCharacter => 3,
    }
}

/// The task metric over seeds with its unit (`90.30 ± 0.12 %`, `2.449 ±
/// 0.004 bits`), `-` when not measured.
pub fn quality(s: Spread, metric: Metric) -> String {
    match s.mean {
        None => "-".into(),
        Some(_) => format!("{} {}", spread(s, digits(metric)), metric.unit()),
    }
}

/// A budget in `metric`, in words (`0.1 points of top-1`).
pub(crate) fn budget_words(budget: f64, metric: Metric) -> String {
    format!("{budget} {}", metric.budget_unit())
}

/// `mean ± std` with `digits` decimals, `-` when not measured.
pub fn spread(s: Spread, digits: usize) -> String {
    match (s.mean, s.std) {
        (None, _) => "-".into(),
        (Some(m), None) => format!("{m:.digits$}"),
        (Some(m), Some(sd)) => format!("{m:.digits$} ± {sd:.digits$}"),
    }
}

/// A readable name of a method and its weighting (`hessian-weighted
/// k-means`).
pub fn method_label(method: &str, weighting: Option<&str>) -> String {
    let name = match method {
        "kmeans" => "k-means",
        "kmeans-optimal" => "optimal k-means",
        "uniform" => "uniform",
        "ecsq" => "ECSQ",
        "none" => "not quantized",
        other => other,
    };
    match weighting {
        Some(w) => format!("{w}-weighted {name}"),
        None => name.to_owned(),
    }
}

/// The quantizer of a setting: its method, weighting and, when not the
/// nearest, its rounding (`hessian-weighted k-means, compensated`).
pub fn setting_label(s: &Setting) -> String {
    let label = method_label(&s.method, s.weighting.as_deref());
    match &s.rounding {
        Some(rounding) => format!("{label}, {rounding}"),
        None => label,
    }
}

/// `k=16` or `λ=1e-3`: the parameter of a setting.
pub fn parameter(s: &Setting) -> String {
    match (s.k, s.lambda) {
        (Some(k), _) => format!("k={k}"),
        (None, Some(l)) => format!("λ={l:e}"),
        (None, None) => String::new(),
    }
}

/// A column of a table: its header and how a setting fills it.
type Column = (&'static str, fn(&Setting) -> String);

pub(crate) fn render(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// Placeholder headers of [`grid_table`], replaced by the metric's label.
const QUALITY: &str = "quality";
const BEFORE_FINETUNING: &str = "before fine-tuning";
const ROUNDING: &str = "rounding";

/// The table of one grid: a row per setting with its accuracy, compression
/// ratio, codeword length and file size over seeds. Axes with one value in
/// the whole grid are stated above the table instead of repeated.
pub fn grid_table(settings: &[Setting]) -> String {
    let axes: [Column; 10] = [
        ("model", |s| format!("{} on {}", s.model, s.dataset)),
        ("prune", |s| match (&s.prune, s.keep) {
            (Some(p), Some(k)) => format!("{p} (keep {:.2} %)", 100.0 * k),
            (Some(p), None) => p.clone(),
            (None, _) => "none".into(),
        }),
        ("weighting", |s| {
            s.weighting.clone().unwrap_or_else(|| "none".into())
        }),
        ("method", |s| s.method.clone()),
        ("scope", |s| s.scope.clone().unwrap_or_else(|| "-".into())),
        ("k / λ", parameter),
        ("coding", |s| s.coding.clone().unwrap_or_else(|| "-".into())),
        (ROUNDING, |s| match (&s.rounding, s.method.as_str()) {
            (Some(r), _) => r.clone(),
            (None, "none") => "-".into(),
            (None, _) => "nearest".into(),
        }),
        ("fine-tuned", |s| s.finetune_cell().into()),
        ("seeds", |s| s.seeds.to_string()),
    ];
    let measures: [Column; 6] = [
        (QUALITY, |s| spread(s.quality, digits(s.metric))),
        (BEFORE_FINETUNING, |s| {
            spread(s.quantized_quality, digits(s.metric))
        }),
        ("ratio", |s| spread(s.ratio, 2)),
        ("bits / weight", |s| spread(s.bits, 3)),
        (".nqz bytes", |s| spread(s.nqz_bytes, 0)),
        ("top-5 %", |s| spread(s.top5, 2)),
    ];
    let mut same = Vec::new();
    let mut headers = Vec::new();
    let mut columns: Vec<Vec<String>> = Vec::new();
    let any_compensated = settings.iter().any(|s| s.rounding.is_some());
    for (name, value) in axes {
        // grids without compensated rounding keep the table they always had
        if name == ROUNDING && !any_compensated {
            continue;
        }
        let values: Vec<String> = settings.iter().map(value).collect();
        if values.len() > 1 && values.iter().all(|v| *v == values[0]) {
            same.push(format!("{name} {}", values[0]));
        } else {
            headers.push(name.to_owned());
            columns.push(values);
        }
    }
    let any_finetuned = settings.iter().any(|s| s.finetuned);
    let metrics = distinct(&settings.iter().collect::<Vec<_>>(), |s| s.metric);
    let label = match metrics[..] {
        [metric] => metric.label().to_owned(),
        _ => "top-1 % or bits per character".to_owned(),
    };
    for (name, value) in measures {
        if name == BEFORE_FINETUNING && !any_finetuned {
            continue;
        }
        let values: Vec<String> = settings.iter().map(value).collect();
        if values.iter().any(|v| v != "-") {
            headers.push(match name {
                QUALITY => label.clone(),
                BEFORE_FINETUNING => format!("before fine-tuning, {label}"),
                other => other.to_owned(),
            });
            columns.push(values);
        }
    }
    let rows: Vec<Vec<String>> = (0..settings.len())
        .map(|r| columns.iter().map(|c| c[r].clone()).collect())
        .collect();
    let mut out = String::new();
    if !same.is_empty() {
        let _ = writeln!(out, "Every row: {}.\n", same.join(", "));
    }
    out + &render(&headers, &rows)
}

/// The setting Table 1 reports for one method: the highest mean
/// compression ratio among those whose mean task metric (top-1, or bits per
/// character) is at most `tolerance` worse than `reference`; failing that,
/// the best by the metric (and `false`).
pub fn pick<'a>(
    candidates: &[&'a Setting],
    reference: Option<f64>,
    tolerance: f64,
) -> Option<(&'a Setting, bool)> {
    let acc = |s: &Setting| {
        s.quality
            .mean
            .map_or(f64::NEG_INFINITY, |q| s.metric.score(q))
    };
    let ratio = |s: &Setting| s.ratio.mean.unwrap_or(0.0);
    let within = candidates
        .iter()
        .filter(|s| {
            reference.is_none_or(|r| {
                s.quality
                    .mean
                    .is_some_and(|q| s.metric.within(r, q, tolerance))
            })
        })
        .max_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    match within {
        Some(s) => Some((s, true)),
        None => candidates
            .iter()
            .max_by(|a, b| acc(a).total_cmp(&acc(b)))
            .map(|s| (*s, false)),
    }
}

/// The pruned-only setting among one network's settings.
pub fn pruned_setting<'a>(here: &[&'a Setting]) -> Option<&'a Setting> {
    here.iter()
        .copied()
        .find(|s| s.method == "none" && s.prune.is_some())
}

/// What Table 1's budget is measured from: the pruned network's mean task
/// metric, or the baseline's when nothing is pruned.
pub fn table1_reference(here: &[&Setting]) -> Option<f64> {
    pruned_setting(here)
        .and_then(|s| s.quality.mean)
        .or_else(|| here.iter().find_map(|s| s.baseline_quality.mean))
}

/// The paper's Table 1 (paper.md section 7): per network, the architectures
/// its row stands beside (its own and the stand-in here: resnet20 for
/// ResNet-32, whose CIFAR-10 cannot be had on every machine), the label, the
/// baseline's top-1, then (method, Hessian-weighted, ratio, top-1) with
/// `none` for pruning only.
type PaperRow = (
    &'static [&'static str],
    &'static str,
    f64,
    &'static [(&'static str, bool, f64, f64)],
);

const PAPER_TABLE1: [PaperRow; 3] = [
    (
        &["lenet5"],
        "paper: LeNet on MNIST",
        99.25,
        &[
            ("none", false, 10.13, 99.27),
            ("kmeans", false, 44.58, 99.27),
            ("kmeans", true, 47.16, 99.27),
            ("uniform", false, 51.25, 99.28),
            ("ecsq", false, 49.01, 99.27),
        ],
    ),
    (
        &["resnet32", "resnet20"],
        "paper: ResNet-32 on CIFAR-10",
        92.58,
        &[
            ("none", false, 4.52, 92.58),
            ("kmeans", false, 18.25, 92.64),
            ("kmeans", true, 20.51, 92.67),
            ("uniform", false, 22.17, 92.68),
            ("ecsq", false, 21.01, 92.73),
        ],
    ),
    (
        &["alexnet"],
        "paper: AlexNet on ImageNet (Hessian k-means weighted by sqrt(Adam v))",
        57.16,
        &[
            ("none", false, 7.91, 56.00),
            ("kmeans", false, 30.53, 56.12),
            ("kmeans", true, 33.71, 56.04),
            ("uniform", false, 40.65, 56.20),
        ],
    ),
];

/// The loss budget of a method's settings, in their task metric: their
/// search's, else [`default_tolerance`].
pub(crate) fn tolerance_of(settings: &[&Setting]) -> f64 {
    settings
        .iter()
        .find_map(|s| s.search_budget)
        .unwrap_or_else(|| default_tolerance(metric_of(settings)))
}

/// The metric of `settings` (of one network): top-1 when there are none.
pub(crate) fn metric_of(settings: &[&Setting]) -> Metric {
    settings.first().map_or(Metric::Top1, |s| s.metric)
}

/// The paper's Table 1 layout: a row per network and codebook scope, a
/// column per method (pruned only, then each quantizer and weighting),
/// each entry the compression ratio and top-1 (mean ± standard deviation
/// over seeds) of the setting [`pick`] chooses; the paper's row under each
/// network it has one for.
pub fn table1(settings: &[Setting]) -> String {
    let mut networks: Vec<(String, String)> = Vec::new();
    let mut methods: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for s in settings {
        let net = (s.model.clone(), s.dataset.clone());
        if !networks.contains(&net) {
            networks.push(net);
        }
        let m = (s.method.clone(), s.weighting.clone(), s.rounding.clone());
        if s.method != "none" && !methods.contains(&m) {
            methods.push(m);
        }
    }
    let mut headers = vec![
        "network".to_owned(),
        "scope".into(),
        "seeds".into(),
        "baseline".into(),
        "pruned only".into(),
    ];
    headers.extend(methods.iter().map(|(m, w, r)| {
        let label = method_label(m, w.as_deref());
        match r {
            Some(r) => format!("{label}, {r}"),
            None => label,
        }
    }));
    let entry = |s: &Setting, ok: bool| {
        let mark = if ok { "" } else { " †" };
        let p = parameter(s);
        let p = if p.is_empty() { p } else { format!(" ({p})") };
        format!(
            "{}x, {}{p}{mark}",
            spread(s.ratio, 2),
            quality(s.quality, s.metric)
        )
    };
    let mut rows = Vec::new();
    let mut missed = false;
    let mut held_to_search_reference = false;
    let mut tolerances = Vec::new();
    for (model, dataset) in &networks {
        let here: Vec<&Setting> = settings
            .iter()
            .filter(|s| &s.model == model && &s.dataset == dataset)
            .collect();
        let baseline = here
            .iter()
            .find_map(|s| s.baseline_quality.mean.map(|_| s.baseline_quality));
        let metric = metric_of(&here);
        let pruned = pruned_setting(&here);
        let reference = table1_reference(&here);
        let quantized: Vec<&Setting> = here
            .iter()
            .copied()
            .filter(|s| s.method != "none")
            .collect();
        // one row per scope, and per pruning and per coding where a grid
        // has several
        let mut keys = distinct(&quantized, |s| {
            (s.prune.clone(), s.scope.clone(), s.coding.clone())
        });
        if keys.is_empty() {
            keys.push((pruned.and_then(|p| p.prune.clone()), None, None));
        }
        let prunings = distinct(&quantized, |s| s.prune.clone()).len();
        let codings = distinct(&quantized, |s| s.coding.clone()).len();
        for (prune, scope, coding) in &keys {
            let mut label = scope.clone().unwrap_or_else(|| "-".into());
            if let Some(coding) = coding.as_ref().filter(|_| codings > 1) {
                label = format!("{label}, {coding}");
            }
            // with several prunings, each row has its own pruned network
            let (pruned, reference) = if prunings > 1 {
                let own = here
                    .iter()
                    .copied()
                    .find(|s| s.method == "none" && &s.prune == prune);
                label = format!("{}: {label}", prune.as_deref().unwrap_or("none"));
                (own, own.and_then(|s| s.quality.mean).or(reference))
            } else {
                (pruned, reference)
            };
            let mut row = vec![
                format!("{model} on {dataset}"),
                label,
                here.iter().map(|s| s.seeds).max().unwrap_or(0).to_string(),
                baseline.map_or("-".into(), |b| quality(b, metric)),
                pruned.map_or("-".into(), |s| entry(s, true)),
            ];
            for (method, weighting, rounding) in &methods {
                let candidates: Vec<&Setting> = here
                    .iter()
                    .copied()
                    .filter(|s| {
                        &s.method == method
                            && &s.weighting == weighting
                            && &s.rounding == rounding
                            && &s.prune == prune
                            && &s.scope == scope
                            && &s.coding == coding
                    })
                    .collect();
                let tolerance = budget_words(tolerance_of(&candidates), metric);
                if !candidates.is_empty() && !tolerances.contains(&tolerance) {
                    tolerances.push(tolerance);
                }
                // a search measured against another network (its
                // `reference`) is picked against that network
                let searched_against = candidates
                    .iter()
                    .find_map(|s| s.search_reference)
                    .filter(|_| prunings > 1);
                held_to_search_reference |= searched_against.is_some();
                let reference = searched_against.or(reference);
                row.push(
                    match pick(&candidates, reference, tolerance_of(&candidates)) {
                        Some((s, ok)) => {
                            missed |= !ok;
                            entry(s, ok)
                        }
                        None => "-".into(),
                    },
                );
            }
            rows.push(row);
        }
        if let Some((_, label, top1, entries)) =
            PAPER_TABLE1.iter().find(|p| p.0.contains(&model.as_str()))
        {
            let paper = |method: &str, weighted: bool| {
                entries
                    .iter()
                    .find(|e| e.0 == method && e.1 == weighted)
                    .map_or("-".into(), |e| format!("{:.2}x, {:.2} %", e.2, e.3))
            };
            let mut row = vec![
                (*label).to_owned(),
                "global".into(),
                "1".into(),
                format!("{top1:.2} %"),
                paper("none", false),
            ];
            // the paper rounds to the nearest centre only
            row.extend(methods.iter().map(|(m, w, r)| match r {
                Some(_) => "-".into(),
                None => paper(m, w.is_some()),
            }));
            rows.push(row);
        }
    }
    let mut out = render(&headers, &rows);
    let _ = writeln!(
        out,
        "\nEach entry: compression ratio and task metric (top-1, or bits per character for a \
         language model; mean ± sample standard deviation over the seeds) of the setting with \
         the highest mean ratio whose mean metric is within {} of the pruned network (of the \
         baseline when unpruned).",
        tolerances.join(" / ")
    );
    if held_to_search_reference {
        let _ = writeln!(
            out,
            "With several prunings, the searched entries are held to their searches' reference \
             network (the mean metric they were searched against), not each to its own pruned \
             network."
        );
    }
    if missed {
        let _ = writeln!(
            out,
            "† no setting of this method came within its budget; the best by the metric is shown."
        );
    }
    out
}

/// The points each search for a budget among `settings` tried, in order: its parameter,
/// mean task metric over the seeds (± std), whether that met the budget, the
/// ratio; and the point Table 1's rule picks from them. A search is one
/// id within one grid (grids share ids such as `paper.kmeans...`); the
/// grid is named when there are several.
pub fn searches(settings: &[Setting]) -> String {
    let mut ids: Vec<(&str, &str)> = Vec::new();
    // searches for a rate have no budget to pick by: `rate::section` shows them
    for s in settings.iter().filter(|s| s.search_rate.is_none()) {
        if let Some(id) = s.search.as_deref() {
            if !ids.contains(&(s.experiment.as_str(), id)) {
                ids.push((s.experiment.as_str(), id));
            }
        }
    }
    let several_grids = settings
        .iter()
        .any(|s| s.experiment != settings[0].experiment);
    let mut out = String::new();
    for (experiment, id) in ids {
        let mut points: Vec<&Setting> = settings
            .iter()
            .filter(|s| s.experiment == experiment && s.search.as_deref() == Some(id))
            .collect();
        points.sort_by_key(|s| s.search_step);
        let first = points[0];
        let (reference, budget) = (first.search_reference, first.search_budget);
        let metric = first.metric;
        let tried: Vec<String> = points
            .iter()
            .map(|s| {
                let verdict = match (s.quality.mean, reference.zip(budget)) {
                    (Some(q), Some((r, b))) if metric.within(r, q, b) => "in",
                    (Some(_), Some(_)) => "out",
                    _ => "?",
                };
                format!(
                    "{} → {} ({verdict}, {}x)",
                    parameter(s),
                    quality(s.quality, metric),
                    spread(s.ratio, 2)
                )
            })
            .collect();
        let picked = pick(&points, reference, tolerance_of(&points));
        let grid = if several_grids {
            format!("`{experiment}`: ")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "- {grid}`{id}` ({}; reference {}, budget {}): {}; picked: {}",
            setting_label(first),
            reference.map_or("-".into(), |r| format!(
                "{r:.digits$} {}",
                metric.unit(),
                digits = digits(metric)
            )),
            budget.map_or("-".into(), |b| budget_words(b, metric)),
            tried.join(", "),
            match picked {
                Some((s, true)) => parameter(s),
                Some((_, false)) | None => "none within the budget".into(),
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(method: &str, k: Option<u64>, top1: f64, ratio: f64) -> Setting {
        Setting {
            model: "lenet5".into(),
            dataset: "mnist".into(),
            prune: Some("paper".into()),
            method: method.into(),
            k,
            seeds: 1,
            quality: Spread {
                mean: Some(top1),
                std: None,
            },
            ratio: Spread {
                mean: Some(ratio),
                std: None,
            },
            baseline_quality: Spread {
                mean: Some(99.0),
                std: None,
            },
            ..Setting::default()
        }
    }

    #[test]
    fn pick_takes_the_highest_ratio_within_the_tolerance() {
        let a = setting("kmeans", Some(8), 98.85, 50.0); // 0.15 below: out
        let b = setting("kmeans", Some(16), 98.95, 45.0); // 0.05 below: in
        let c = setting("kmeans", Some(32), 99.1, 40.0);
        let (s, ok) = pick(&[&a, &b, &c], Some(99.0), 0.1).unwrap();
        assert_eq!((s.k, ok), (Some(16), true));
        // nothing within: the most accurate, flagged
        let (s, ok) = pick(&[&a, &b], Some(99.5), 0.1).unwrap();
        assert_eq!((s.k, ok), (Some(16), false));
        assert!(pick(&[], Some(99.0), 0.1).is_none());
    }

    #[test]
    fn table1_has_a_column_per_method_and_marks_misses() {
        let settings = [
            setting("none", None, 99.0, 10.0),
            setting("kmeans", Some(16), 98.95, 45.0),
            setting("kmeans", Some(8), 98.0, 60.0),
            setting("uniform", Some(16), 97.0, 50.0),
        ];
        let t = table1(&settings);
        assert!(
            t.contains("| network | scope | seeds | baseline | pruned only | k-means | uniform |"),
            "{t}"
        );
        assert!(t.contains("| lenet5 on mnist | - | 1 | 99.00 % | 10.00x, 99.00 % | 45.00x, 98.95 % (k=16) | 50.00x, 97.00 % (k=16) † |"), "{t}");
        assert!(t.contains("| paper: LeNet on MNIST | global | 1 | 99.25 % | 10.13x, 99.27 % | 44.58x, 99.27 % | 51.25x, 99.28 % |"), "{t}");
        assert!(t.contains("† no setting"), "{t}");
    }

    #[test]
    fn table1_sets_the_papers_resnet32_row_beside_its_stand_in_only() {
        let on = |model: &str| {
            let settings: Vec<Setting> = [
                setting("none", None, 91.5, 4.3),
                setting("kmeans", Some(16), 91.45, 17.0),
            ]
            .into_iter()
            .map(|s| Setting {
                model: model.into(),
                dataset: "fashion-mnist".into(),
                ..s
            })
            .collect();
            table1(&settings)
        };
        let t = on("resnet20");
        assert!(t.contains("| paper: ResNet-32 on CIFAR-10 | global | 1 | 92.58 % | 4.52x, 92.58 % | 18.25x, 92.64 % |"), "{t}");
        assert!(!t.contains("paper: LeNet"), "{t}");
        let t = on("vit");
        assert!(!t.contains("| paper:"), "{t}");
    }

    #[test]
    fn table1_has_a_row_per_scope_and_uses_the_search_budget() {
        let mut settings = vec![setting("none", None, 99.0, 10.0)];
        for (scope, top1) in [("layer", 98.95), ("global", 98.5)] {
            let mut s = setting("kmeans", Some(16), top1, 45.0);
            s.scope = Some(scope.into());
            s.search = Some(format!("paper.kmeans.none.{scope}.huffman"));
            s.search_budget = Some(0.6);
            settings.push(s);
        }
        let t = table1(&settings);
        // 98.5 is within 0.6 of 99.0, so neither is flagged
        assert!(t.contains("| lenet5 on mnist | layer | 1 |"), "{t}");
        assert!(t.contains("| lenet5 on mnist | global | 1 | 99.00 % | 10.00x, 99.00 % | 45.00x, 98.50 % (k=16) |"), "{t}");
        assert!(t.contains("within 0.6 points of top-1"), "{t}");
        assert!(!t.contains('†'), "{t}");
    }

    #[test]
    fn table1_has_a_row_per_coding_when_a_grid_has_several() {
        let mut settings = vec![setting("none", None, 99.0, 10.0)];
        for (coding, ratio) in [("huffman", 45.0), ("context", 48.0)] {
            let mut s = setting("kmeans", Some(16), 98.95, ratio);
            s.scope = Some("global".into());
            s.coding = Some(coding.into());
            settings.push(s);
        }
        let t = table1(&settings);
        assert!(t.contains("| lenet5 on mnist | global, huffman | 1 | 99.00 % | 10.00x, 99.00 % | 45.00x, 98.95 % (k=16) |"), "{t}");
        assert!(t.contains("| lenet5 on mnist | global, context | 1 | 99.00 % | 10.00x, 99.00 % | 48.00x, 98.95 % (k=16) |"), "{t}");
        // one coding: the scope alone
        let t = table1(&settings[..2]);
        assert!(t.contains("| lenet5 on mnist | global | 1 |"), "{t}");
    }

    #[test]
    fn table1_has_a_row_per_pruning_picked_against_the_search_reference() {
        // two prunings; the sparser one's searches count from the paper's
        // network (99.0), not from its own (98.5)
        let pruned = |name: &str, top1: f64, ratio: f64| {
            let mut s = setting("none", None, top1, ratio);
            s.prune = Some(name.into());
            s
        };
        let quantized = |name: &str, k: u64, top1: f64, ratio: f64| {
            let mut s = setting("uniform", Some(k), top1, ratio);
            s.prune = Some(name.into());
            s.scope = Some("global".into());
            s.search = Some(format!("{name}.uniform"));
            s.search_budget = Some(0.1);
            s.search_reference = Some(99.0);
            s
        };
        let settings = vec![
            pruned("paper", 99.0, 10.0),
            pruned("sparse", 98.5, 20.0),
            quantized("paper", 32, 98.95, 45.0),
            quantized("sparse", 64, 98.92, 80.0),
            quantized("sparse", 32, 98.45, 90.0),
        ];
        let t = table1(&settings);
        assert!(t.contains("| lenet5 on mnist | paper: global | 1 | 99.00 % | 10.00x, 99.00 % | 45.00x, 98.95 % (k=32) |"), "{t}");
        // 98.45 is within 0.1 of its own network, not of the reference
        assert!(t.contains("| lenet5 on mnist | sparse: global | 1 | 99.00 % | 20.00x, 98.50 % | 80.00x, 98.92 % (k=64) |"), "{t}");
        assert!(t.contains("held to their searches' reference"), "{t}");
    }

    #[test]
    fn searches_list_their_points_in_order_and_the_pick() {
        let point = |step: u64, k: u64, top1: f64, ratio: f64| {
            let mut s = setting("kmeans", Some(k), top1, ratio);
            s.experiment = "t".into();
            s.search = Some("paper.kmeans".into());
            s.search_step = Some(step);
            s.search_budget = Some(0.1);
            s.search_reference = Some(99.0);
            s
        };
        let settings = [
            point(1, 8, 98.0, 60.0),
            point(0, 64, 99.0, 30.0),
            point(2, 23, 98.95, 45.0),
        ];
        let text = searches(&settings);
        assert_eq!(
            text,
            "- `paper.kmeans` (k-means; reference 99.00 %, budget 0.1 points of top-1): k=64 → 99.00 % (in, 30.00x), \
             k=8 → 98.00 % (out, 60.00x), k=23 → 98.95 % (in, 45.00x); picked: k=23\n"
        );

        // the same search id in another grid is another search
        let mut other = point(0, 32, 97.0, 35.0);
        other.experiment = "other_grid".into();
        other.search_reference = Some(97.0);
        let mut settings = settings.to_vec();
        settings.push(other);
        let text = searches(&settings);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("- `t`: `paper.kmeans` (k-means; reference 99.00 %"),
            "{text}"
        );
        assert!(lines[0].ends_with("picked: k=23"), "{text}");
        assert_eq!(
            lines[1],
            "- `other_grid`: `paper.kmeans` (k-means; reference 97.00 %, budget 0.1 points of top-1): \
             k=32 → 97.00 % (in, 35.00x); picked: k=32"
        );
    }

    #[test]
    fn grid_table_states_constant_axes_once() {
        let settings = [
            setting("kmeans", Some(16), 98.95, 45.0),
            setting("kmeans", Some(8), 98.0, 60.0),
        ];
        let t = grid_table(&settings);
        assert!(
            t.starts_with("Every row: model lenet5 on mnist, prune paper"),
            "{t}"
        );
        assert!(t.contains("| k / λ | top-1 % | ratio |"), "{t}");
        assert!(t.contains("| k=8 | 98.00 | 60.00 |"), "{t}");
    }

    #[test]
    fn spreads_print_mean_and_std() {
        let s = Spread {
            mean: Some(1.0),
            std: Some(0.25),
        };
        assert_eq!(spread(s, 2), "1.00 ± 0.25");
        assert_eq!(spread(Spread::default(), 2), "-");
    }
}
