//! Cells that differ only in their seed, summarised (mean and spread), with
//! polars' group-by over the results table.

use polars::prelude::*;

use crate::error::Result;

/// Mean and sample standard deviation over seeds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    /// Mean over the seeds that measured it.
    pub mean: Option<f64>,
    /// Sample standard deviation (`None` with one seed).
    pub std: Option<f64>,
}

impl Spread {
    /// A measured mean and standard deviation.
    pub fn measured(mean: f64, std: f64) -> Self {
        Self {
            mean: Some(mean),
            std: Some(std),
        }
    }
}

/// The values `f` takes over `settings`, each once, in order of first
/// appearance.
pub(crate) fn distinct<T: PartialEq>(settings: &[&Setting], f: impl Fn(&Setting) -> T) -> Vec<T> {
    let mut out = Vec::new();
    for s in settings {
        let v = f(s);
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// One setting of a grid (every axis but the seed) over its seeds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Setting {
    /// The grid.
    pub experiment: String,
    /// Architecture.
    pub model: String,
    /// Dataset.
    pub dataset: String,
    /// Pruning setting.
    pub prune: Option<String>,
    /// Share kept by pruning.
    pub keep: Option<f64>,
    /// Importance setting.
    pub weighting: Option<String>,
    /// Quantizer.
    pub method: String,
    /// Codebook scope.
    pub scope: Option<String>,
    /// Clusters asked for.
    pub k: Option<u64>,
    /// ECSQ's multiplier.
    pub lambda: Option<f64>,
    /// Index coding.
    pub coding: Option<String>,
    /// Fine-tuned shared values.
    pub finetuned: bool,
    /// The search this setting is a point of, if any.
    pub search: Option<String>,
    /// Its place in the search, from 0.
    pub search_step: Option<u64>,
    /// The search's budget, points of top-1.
    pub search_budget: Option<f64>,
    /// The search's reference top-1 (mean over seeds, unquantized).
    pub search_reference: Option<f64>,
    /// Seeds that finished.
    pub seeds: u64,
    /// Final top-1 accuracy, percent.
    pub top1: Spread,
    /// Final top-5 accuracy, percent.
    pub top5: Spread,
    /// Compression ratio.
    pub ratio: Spread,
    /// Average codeword length, bits per quantized weight.
    pub bits: Spread,
    /// Top-1 of the baseline.
    pub baseline_top1: Spread,
    /// Top-1 after pruning.
    pub pruned_top1: Spread,
    /// Top-1 right after quantization (before fine-tuning).
    pub quantized_top1: Spread,
    /// Bytes of the `.nqz` file.
    pub nqz_bytes: Spread,
}

/// The axes a setting is made of, in the grid's order.
const KEYS: [&str; 13] = [
    "experiment",
    "model",
    "dataset",
    "prune",
    "keep",
    "weighting",
    "method",
    "scope",
    "k",
    "lambda",
    "coding",
    "finetuned",
    "search",
];

/// The measurements summarised over seeds.
const MEASURES: [&str; 8] = [
    "top1",
    "top5",
    "compression_ratio",
    "avg_codeword_bits",
    "baseline_top1",
    "pruned_top1",
    "quantized_top1",
    "nqz_bytes",
];

fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?.into_iter().map(|v| v.map(str::to_owned)).collect())
}

fn floats(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.into_iter().collect())
}

fn spreads(df: &DataFrame, name: &str) -> Result<Vec<Spread>> {
    let means = floats(df, &format!("{name}_mean"))?;
    let stds = floats(df, &format!("{name}_std"))?;
    Ok(means
        .into_iter()
        .zip(stds)
        .map(|(mean, std)| Spread {
            mean,
            std: std.filter(|s| s.is_finite()),
        })
        .collect())
}

/// The settings of the finished cells of `results` (rows with status
/// `ok`), in the order their first cell appears.
pub fn settings(results: &DataFrame) -> Result<Vec<Setting>> {
    let mut aggs = vec![
        col("seed").count().alias("seeds"),
        col("search_step").min(),
        col("search_budget").first(),
        col("search_reference").first(),
    ];
    for m in MEASURES {
        aggs.push(
            col(m)
                .cast(DataType::Float64)
                .mean()
                .alias(format!("{m}_mean")),
        );
        aggs.push(
            col(m)
                .cast(DataType::Float64)
                .std(1)
                .alias(format!("{m}_std")),
        );
    }
    let df = results
        .clone()
        .lazy()
        .filter(col("status").eq(lit("ok")))
        .group_by_stable(KEYS.map(col))
        .agg(aggs)
        .collect()?;
    let experiment = strings(&df, "experiment")?;
    let model = strings(&df, "model")?;
    let dataset = strings(&df, "dataset")?;
    let prune = strings(&df, "prune")?;
    let keep = floats(&df, "keep")?;
    let weighting = strings(&df, "weighting")?;
    let method = strings(&df, "method")?;
    let scope = strings(&df, "scope")?;
    let k = floats(&df, "k")?;
    let lambda = floats(&df, "lambda")?;
    let coding = strings(&df, "coding")?;
    let finetuned = strings(&df, "finetuned")?;
    let seeds = floats(&df, "seeds")?;
    let search = strings(&df, "search")?;
    let search_step = floats(&df, "search_step")?;
    let search_budget = floats(&df, "search_budget")?;
    let search_reference = floats(&df, "search_reference")?;
    let mut measures: Vec<Vec<Spread>> = MEASURES
        .iter()
        .map(|m| spreads(&df, m))
        .collect::<Result<_>>()?;
    let mut take = |i: usize, row: usize| std::mem::take(&mut measures[i][row]);
    let mut out = Vec::with_capacity(df.height());
    for row in 0..df.height() {
        out.push(Setting {
            experiment: experiment[row].clone().unwrap_or_default(),
            model: model[row].clone().unwrap_or_default(),
            dataset: dataset[row].clone().unwrap_or_default(),
            prune: prune[row].clone(),
            keep: keep[row],
            weighting: weighting[row].clone(),
            method: method[row].clone().unwrap_or_default(),
            scope: scope[row].clone(),
            k: k[row].map(|v| v as u64),
            lambda: lambda[row],
            coding: coding[row].clone(),
            finetuned: finetuned[row].as_deref() == Some("true"),
            search: search[row].clone(),
            search_step: search_step[row].map(|v| v as u64),
            search_budget: search_budget[row],
            search_reference: search_reference[row],
            seeds: seeds[row].unwrap_or(0.0) as u64,
            top1: take(0, row),
            top5: take(1, row),
            ratio: take(2, row),
            bits: take(3, row),
            baseline_top1: take(4, row),
            pruned_top1: take(5, row),
            quantized_top1: take(6, row),
            nqz_bytes: take(7, row),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{to_frame, Row};

    fn row(seed: u64, k: u64, top1: f64, ratio: f64) -> Row {
        Row {
            experiment: "g".into(),
            status: "ok".into(),
            model: "lenet5".into(),
            method: "kmeans".into(),
            seed,
            k: Some(k),
            top1: Some(top1),
            compression_ratio: Some(ratio),
            ..Row::default()
        }
    }

    #[test]
    fn seeds_are_averaged_with_their_sample_spread_and_failures_left_out() {
        let mut failed = row(2, 4, 0.0, 0.0);
        failed.status = "failed".into();
        let rows = [
            row(0, 4, 90.0, 10.0),
            row(0, 8, 91.0, 8.0),
            row(1, 4, 92.0, 12.0),
            failed,
        ];
        let s = settings(&to_frame(&rows).unwrap()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].k, s[0].seeds), (Some(4), 2));
        assert_eq!(s[0].top1.mean, Some(91.0));
        // sample std of {90, 92} is sqrt(2)
        assert!((s[0].top1.std.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s[0].ratio.mean, Some(11.0));
        assert_eq!((s[1].k, s[1].seeds, s[1].top1.std), (Some(8), 1, None));
        assert_eq!(s[1].pruned_top1.mean, None);
    }
}
