//! Markdown tables: one per grid (every setting over its seeds), and the
//! paper's Table 1 layout (networks by method: compression ratio and
//! accuracy of the best setting of each method).

use std::fmt::Write;

use crate::summary::{Setting, Spread};

/// Accuracy loss allowed against the pruned (or baseline) network when
/// Table 1 picks a method's setting, in points (the paper reports ratios at
/// no loss; 0.1 point is within the seed-to-seed spread of our nets).
pub const TABLE1_TOLERANCE: f64 = 0.1;

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

fn render(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// The table of one grid: a row per setting with its accuracy, compression
/// ratio, codeword length and file size over seeds. Axes with one value in
/// the whole grid are stated above the table instead of repeated.
pub fn grid_table(settings: &[Setting]) -> String {
    let axes: [Column; 9] = [
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
        ("fine-tuned", |s| {
            if s.finetuned { "yes" } else { "no" }.into()
        }),
        ("seeds", |s| s.seeds.to_string()),
    ];
    let measures: [Column; 6] = [
        ("top-1 %", |s| spread(s.top1, 2)),
        ("before fine-tuning %", |s| spread(s.quantized_top1, 2)),
        ("ratio", |s| spread(s.ratio, 2)),
        ("bits / weight", |s| spread(s.bits, 3)),
        (".nqz bytes", |s| spread(s.nqz_bytes, 0)),
        ("top-5 %", |s| spread(s.top5, 2)),
    ];
    let mut same = Vec::new();
    let mut headers = Vec::new();
    let mut columns: Vec<Vec<String>> = Vec::new();
    for (name, value) in axes {
        let values: Vec<String> = settings.iter().map(value).collect();
        if values.len() > 1 && values.iter().all(|v| *v == values[0]) {
            same.push(format!("{name} {}", values[0]));
        } else {
            headers.push(name.to_owned());
            columns.push(values);
        }
    }
    let any_finetuned = settings.iter().any(|s| s.finetuned);
    for (name, value) in measures {
        if name == "before fine-tuning %" && !any_finetuned {
            continue;
        }
        let values: Vec<String> = settings.iter().map(value).collect();
        if values.iter().any(|v| v != "-") {
            headers.push(name.to_owned());
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
/// compression ratio among those whose mean top-1 is at most
/// [`TABLE1_TOLERANCE`] below `reference`; failing that, the most accurate
/// (and `false`).
pub fn pick<'a>(candidates: &[&'a Setting], reference: Option<f64>) -> Option<(&'a Setting, bool)> {
    let acc = |s: &Setting| s.top1.mean.unwrap_or(f64::NEG_INFINITY);
    let ratio = |s: &Setting| s.ratio.mean.unwrap_or(0.0);
    let within = candidates
        .iter()
        .filter(|s| reference.is_none_or(|r| acc(s) >= r - TABLE1_TOLERANCE))
        .max_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    match within {
        Some(s) => Some((s, true)),
        None => candidates
            .iter()
            .max_by(|a, b| acc(a).total_cmp(&acc(b)))
            .map(|s| (*s, false)),
    }
}

/// The paper's Table 1 layout: a row per network, a column per method
/// (pruned only, then each quantizer and weighting), each entry the
/// compression ratio and top-1 of the setting [`pick`] chooses.
pub fn table1(settings: &[Setting]) -> String {
    let mut networks: Vec<(String, String)> = Vec::new();
    let mut methods: Vec<(String, Option<String>)> = Vec::new();
    for s in settings {
        let net = (s.model.clone(), s.dataset.clone());
        if !networks.contains(&net) {
            networks.push(net);
        }
        let m = (s.method.clone(), s.weighting.clone());
        if s.method != "none" && !methods.contains(&m) {
            methods.push(m);
        }
    }
    let mut headers = vec![
        "network".to_owned(),
        "baseline top-1 %".into(),
        "pruned only".into(),
    ];
    headers.extend(methods.iter().map(|(m, w)| method_label(m, w.as_deref())));
    let entry = |s: &Setting, ok: bool| {
        let mark = if ok { "" } else { " †" };
        let p = parameter(s);
        let p = if p.is_empty() { p } else { format!(" ({p})") };
        format!("{}x, {} %{p}{mark}", spread(s.ratio, 2), spread(s.top1, 2))
    };
    let mut rows = Vec::new();
    let mut missed = false;
    for (model, dataset) in &networks {
        let here: Vec<&Setting> = settings
            .iter()
            .filter(|s| &s.model == model && &s.dataset == dataset)
            .collect();
        let baseline = here
            .iter()
            .find_map(|s| s.baseline_top1.mean.map(|_| s.baseline_top1));
        let pruned = here
            .iter()
            .find(|s| s.method == "none" && s.prune.is_some());
        let reference = pruned
            .and_then(|s| s.top1.mean)
            .or(baseline.and_then(|b| b.mean));
        let mut row = vec![
            format!("{model} on {dataset}"),
            baseline.map_or("-".into(), |b| spread(b, 2)),
            pruned.map_or("-".into(), |s| entry(s, true)),
        ];
        for (method, weighting) in &methods {
            let candidates: Vec<&Setting> = here
                .iter()
                .copied()
                .filter(|s| &s.method == method && &s.weighting == weighting)
                .collect();
            row.push(match pick(&candidates, reference) {
                Some((s, ok)) => {
                    missed |= !ok;
                    entry(s, ok)
                }
                None => "-".into(),
            });
        }
        rows.push(row);
    }
    let mut out = render(&headers, &rows);
    let _ = writeln!(
        out,
        "\nEach entry: compression ratio and top-1 of the setting with the highest ratio whose \
         top-1 is within {TABLE1_TOLERANCE} points of the pruned network (of the baseline when \
         unpruned)."
    );
    if missed {
        let _ = writeln!(
            out,
            "† no setting of this method came within {TABLE1_TOLERANCE} points; the most \
             accurate one is shown."
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
            top1: Spread {
                mean: Some(top1),
                std: None,
            },
            ratio: Spread {
                mean: Some(ratio),
                std: None,
            },
            baseline_top1: Spread {
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
        let (s, ok) = pick(&[&a, &b, &c], Some(99.0)).unwrap();
        assert_eq!((s.k, ok), (Some(16), true));
        // nothing within: the most accurate, flagged
        let (s, ok) = pick(&[&a, &b], Some(99.5)).unwrap();
        assert_eq!((s.k, ok), (Some(16), false));
        assert!(pick(&[], Some(99.0)).is_none());
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
            t.contains("| network | baseline top-1 % | pruned only | k-means | uniform |"),
            "{t}"
        );
        assert!(t.contains("| lenet5 on mnist | 99.00 | 10.00x, 99.00 % | 45.00x, 98.95 % (k=16) | 50.00x, 97.00 % (k=16) † |"), "{t}");
        assert!(t.contains("† no setting"), "{t}");
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
