//! The figure of `nq-exp offdiag --figure`: each predictor of the loss
//! increase against the measured one, a panel per rounding, both axes in
//! log10 (the increases span orders of magnitude), with the line where
//! prediction equals measurement.

use std::path::{Path, PathBuf};

use anyhow::Result;
use nq_catalog::Metric;
use nq_report::figures::{write_figure, Figure, Panel, Series};

use super::Row;

/// A predictor drawn: its label and its value in a row.
type Predictor = (&'static str, fn(&Row) -> f64);

/// The predictors drawn; the layer-by-layer form only where several layers
/// make it differ.
fn predictors(layers: usize) -> Vec<Predictor> {
    let mut out: Vec<Predictor> = vec![("diagonal", |r| r.diagonal)];
    if layers > 1 {
        out.push(("each layer's own block", |r| r.layerwise));
    }
    out.push(("full quadratic form", |r| r.full));
    out.push(("full form + gradient term", Row::full_with_gradient));
    out
}

/// Writes `<stem>.svg` and `<stem>.png` beside `stem`; returns their paths.
/// Points with a non-positive prediction or measurement have no logarithm
/// and are left out; each panel's title counts them.
pub fn write(rows: &[Row], layers: &[String], block: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    let mut panels = Vec::new();
    for rounding in ["plain", "compensated"] {
        let these: Vec<&Row> = rows.iter().filter(|r| r.rounding == rounding).collect();
        if these.is_empty() {
            continue;
        }
        let mut left_out = 0;
        let mut series = Vec::new();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (label, predicted) in predictors(layers.len()) {
            let points: Vec<(f64, f64)> = these
                .iter()
                .filter_map(|r| {
                    let (m, p) = (r.measured, predicted(r));
                    if m > 0.0 && p > 0.0 {
                        Some((m.log10(), p.log10()))
                    } else {
                        left_out += 1;
                        None
                    }
                })
                .collect();
            for &(x, y) in &points {
                lo = lo.min(x.min(y));
                hi = hi.max(x.max(y));
            }
            series.push(Series {
                label: label.into(),
                errors: vec![0.0; points.len()],
                points,
                line: false,
                band: false,
            });
        }
        if lo.is_finite() {
            // first, so that it takes the first colour in every figure
            series.insert(
                0,
                Series {
                    label: "predicted = measured".into(),
                    points: vec![(lo, lo), (hi, hi)],
                    errors: vec![0.0; 2],
                    line: true,
                    band: false,
                },
            );
        }
        let mut title = format!("{rounding} rounding");
        if left_out > 0 {
            title += &format!(" ({left_out} points <= 0 left out)");
        }
        panels.push(Panel { title, series });
    }
    let name = stem
        .file_name()
        .map_or("offdiag".into(), |n| n.to_string_lossy().into_owned());
    let figure = Figure {
        name,
        title: format!(
            "{} ({block} block): predicted against measured loss increase",
            layers.join(" + ")
        ),
        x_label: "measured loss increase, log10".into(),
        y_label: "predicted loss increase, log10".into(),
        metric: Metric::Top1,
        log_x: false,
        legend_lower_left: false,
        panels,
    };
    let dir = stem
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(write_figure(&figure, dir)?)
}
