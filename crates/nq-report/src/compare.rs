//! Table 1 of a fresh run against a committed reference run
//! (`nq-exp report DIR --reference REF`, `DIR/reference_comparison.md`):
//! per network, scope and method, the two entries side by side and whether
//! they differ by more than the noise (the findings' rule: twice the
//! standard error of the difference, and the searches' resolution).

use std::fmt::Write;

use crate::findings::{networks, table1_entry, Comparison, Entry};
use crate::markdown::{method_label, metric_of, pruned_setting, quality, table1_reference};
use crate::summary::{distinct, Setting, Spread};

/// The Table 1 methods, in the paper's order: (method, Hessian-weighted).
const METHODS: [(&str, bool); 6] = [
    ("kmeans", false),
    ("kmeans", true),
    ("uniform", false),
    ("uniform", true),
    ("ecsq", false),
    ("ecsq", true),
];

/// The codebook scopes of the quantized settings among `here`.
fn scopes(here: &[&Setting]) -> Vec<String> {
    let quantized: Vec<&Setting> = here
        .iter()
        .copied()
        .filter(|s| s.method != "none")
        .collect();
    distinct(&quantized, |s| s.scope.clone())
        .into_iter()
        .flatten()
        .collect()
}

fn entry_text(e: &Entry<'_>) -> String {
    e.text(" †")
}

/// "same within noise", "higher" or "lower" for `ours` against `theirs`,
/// or why it cannot be said.
fn judge(ours: Spread, n_ours: u64, theirs: Spread, n_theirs: u64, resolution: f64) -> String {
    match Comparison::of(ours, n_ours, theirs, n_theirs, resolution) {
        None => "not judged (one seed)".into(),
        Some(c) if c.difference.abs() <= c.two_se.max(c.resolution) => {
            format!("same within noise ({:+.2})", c.difference)
        }
        Some(c) if c.difference > 0.0 => format!("higher ({:+.2})", c.difference),
        Some(c) => format!("lower ({:+.2})", c.difference),
    }
}

/// A top-1 of one network's settings (baseline, pruned) and its seeds.
type MeasureOf = dyn Fn(&[&Setting]) -> Option<(Spread, u64)>;

fn of_network<'a>(all: &[&'a Setting], model: &str, dataset: &str) -> Vec<&'a Setting> {
    all.iter()
        .copied()
        .filter(|s| s.model == model && s.dataset == dataset)
        .collect()
}

/// The comparison page: `ours` and `reference` are the settings of the
/// Table 1 grids of each run.
pub fn reference_comparison(ours: &[Setting], reference: &[Setting]) -> String {
    let ours: Vec<&Setting> = ours.iter().collect();
    let theirs: Vec<&Setting> = reference.iter().collect();
    let mut nets = networks(&ours);
    for n in networks(&theirs) {
        if !nets.contains(&n) {
            nets.push(n);
        }
    }
    let mut out = String::from(
        "# Table 1 against the reference results\n\n\
         This run's Table 1 entries beside those of the committed reference run (mean ± sample \
         standard deviation over seeds). A difference is \"same within noise\" unless it exceeds both \
         twice its standard error and the searches' resolution; † marks an entry where \
         no setting met the budget.\n\n\
         | network | scope | entry | this run | reference | difference |\n|---|---|---|---|---|---|\n",
    );
    for (model, dataset) in &nets {
        let (a, b) = (
            of_network(&ours, model, dataset),
            of_network(&theirs, model, dataset),
        );
        let network = format!("{model} on {dataset}");
        let metric = metric_of(if a.is_empty() { &b } else { &a });
        let accuracy = |label: &str, pick: &MeasureOf| {
            let (x, y) = (pick(&a), pick(&b));
            let show = |v: Option<(Spread, u64)>| v.map_or("-".into(), |(s, _)| quality(s, metric));
            let verdict = match (x, y) {
                (Some((x, nx)), Some((y, ny))) => judge(x, nx, y, ny, 0.0),
                _ => "-".into(),
            };
            format!(
                "| {network} | - | {label} | {} | {} | {verdict} |\n",
                show(x),
                show(y)
            )
        };
        out += &accuracy(&format!("baseline {}", metric.name()), &|here| {
            here.iter()
                .find(|s| s.baseline_quality.mean.is_some())
                .map(|s| (s.baseline_quality, s.seeds))
        });
        out += &accuracy(&format!("pruned {}", metric.name()), &|here| {
            pruned_setting(here).map(|s| (s.quality, s.seeds))
        });
        let mut all_scopes = scopes(&a);
        for s in scopes(&b) {
            if !all_scopes.contains(&s) {
                all_scopes.push(s);
            }
        }
        let (ref_a, ref_b) = (table1_reference(&a), table1_reference(&b));
        for scope in &all_scopes {
            for (method, weighted) in METHODS {
                let x = table1_entry(&a, method, weighted, scope, ref_a);
                let y = table1_entry(&b, method, weighted, scope, ref_b);
                if x.is_none() && y.is_none() {
                    continue;
                }
                let verdict = match (&x, &y) {
                    (Some(x), Some(y)) if x.within && y.within => judge(
                        x.setting.ratio,
                        x.setting.seeds,
                        y.setting.ratio,
                        y.setting.seeds,
                        x.resolution.max(y.resolution),
                    ),
                    (Some(_), Some(_)) => "not judged (outside the budget)".into(),
                    _ => "-".into(),
                };
                let _ = writeln!(
                    out,
                    "| {network} | {scope} | {} | {} | {} | {verdict} |",
                    method_label(method, weighted.then_some("hessian")),
                    x.as_ref().map_or("-".into(), entry_text),
                    y.as_ref().map_or("-".into(), entry_text),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(mean: f64, std: f64) -> Spread {
        Spread::measured(mean, std)
    }

    fn setting(method: &str, k: Option<u64>, top1: Spread, ratio: Spread) -> Setting {
        Setting {
            experiment: "paper_table1_lenet".into(),
            model: "lenet5".into(),
            dataset: "fashion-mnist".into(),
            prune: Some("paper".into()),
            method: method.into(),
            scope: (method != "none").then(|| "global".into()),
            k,
            coding: Some("huffman".into()),
            finetuned: true,
            seeds: 3,
            quality: top1,
            ratio,
            baseline_quality: at(90.5, 0.1),
            ..Setting::default()
        }
    }

    #[test]
    fn entries_side_by_side_with_the_noise_rule() {
        let ours = vec![
            setting("none", None, at(90.0, 0.1), at(11.0, 0.0)),
            setting("kmeans", Some(16), at(89.95, 0.05), at(40.0, 0.2)),
            setting("uniform", Some(16), at(89.95, 0.05), at(50.0, 0.2)),
        ];
        let mut theirs = ours.clone();
        theirs[1].ratio = at(40.1, 0.2); // within noise
        theirs[2].ratio = at(45.0, 0.2); // ours is higher
        let page = reference_comparison(&ours, &theirs);
        assert!(page.contains("| lenet5 on fashion-mnist | - | baseline top-1 | 90.50 ± 0.10 % | 90.50 ± 0.10 % | same within noise (+0.00) |"), "{page}");
        assert!(page.contains("| lenet5 on fashion-mnist | global | k-means | 40.00 ± 0.20x at 89.95 ± 0.05 % (k=16) | 40.10 ± 0.20x at 89.95 ± 0.05 % (k=16) | same within noise (-0.10) |"), "{page}");
        assert!(page.contains("| global | uniform | 50.00 ± 0.20x at 89.95 ± 0.05 % (k=16) | 45.00 ± 0.20x at 89.95 ± 0.05 % (k=16) | higher (+5.00) |"), "{page}");
        // a method only one run has
        theirs.truncate(2);
        let page = reference_comparison(&ours, &theirs);
        assert!(
            page.contains("| global | uniform | 50.00 ± 0.20x at 89.95 ± 0.05 % (k=16) | - | - |"),
            "{page}"
        );
    }
}
