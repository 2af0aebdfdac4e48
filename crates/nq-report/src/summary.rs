//! Cells that differ only in their seed, summarised (mean and spread), with
//! polars' group-by over the results table.

use nq_catalog::{Dataset, Metric};
use polars::prelude::*;

use crate::error::Result;
use crate::row::FinetuneTrains;

/// Mean and sample standard deviation over seeds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    /// Mean over the seeds that measured it.
    pub mean: Option<f64>,
    /// Sample standard deviation (`None` with one seed).
    pub std: Option<f64>,
}

impl Spread {
    /// The mean and sample standard deviation of `values` (`None` where
    /// there are too few for either).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        if values.is_empty() {
            return Self::default();
        }
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.len() >= 2)
            .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Self {
            mean: Some(mean),
            std,
        }
    }

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

/// The spread of a setting's task metric split by where it comes from,
/// when the grid ran the quantizer with seeds of its own
/// (`grid.quantizer_seed`): each training seed's runs differ only in the
/// quantizer's draws (k-means++ centres, dither), and the training seeds
/// differ in everything before.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SeedSources {
    /// Training seeds that finished some run.
    pub training_seeds: u64,
    /// Quantizer seeds per training seed (the most any had).
    pub quantizer_seeds: u64,
    /// Sample standard deviation over the training seeds of their means
    /// over the quantizer seeds (`None` with one training seed).
    pub over_training: Option<f64>,
    /// Sample standard deviation over the quantizer seeds within a
    /// training seed, pooled: the square root of the mean of the training
    /// seeds' sample variances (`None` with one quantizer seed).
    pub over_quantizer: Option<f64>,
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
    /// `compensated`, or `None` for nearest rounding.
    pub rounding: Option<String>,
    /// Fine-tuned shared values.
    pub finetuned: bool,
    /// What the fine-tuning trained ([`crate::Row::finetune_trains`];
    /// `None` without fine-tuning or in rows from before the field).
    pub finetune_trains: Option<FinetuneTrains>,
    /// The search this setting is a point of, if any.
    pub search: Option<String>,
    /// Its place in the search, from 0.
    pub search_step: Option<u64>,
    /// The search's budget, in the task metric.
    pub search_budget: Option<f64>,
    /// The search's reference: the task metric of the network unquantized
    /// (mean over seeds).
    pub search_reference: Option<f64>,
    /// The rate its search held its points to (bits per weight).
    pub search_rate: Option<f64>,
    /// Runs that finished: one per seed, or per training and quantizer
    /// seed where the grid has quantizer seeds.
    pub seeds: u64,
    /// The spread of `quality` by its source, where the grid has quantizer
    /// seeds and this setting's quantizer draws.
    pub seed_sources: Option<SeedSources>,
    /// Each training seed with the mean task metric of its runs (one run,
    /// or one per quantizer seed), in order of seed: what a comparison
    /// paired by training seed ([`crate::verdict::Comparison::paired`])
    /// takes.
    pub by_training_seed: Vec<(u64, f64)>,
    /// What the dataset is judged by: the unit of every `*quality` below.
    pub metric: Metric,
    /// The task metric of the network the setting ends with (top-1 %, or
    /// bits per character for text).
    pub quality: Spread,
    /// Final top-5 accuracy, percent.
    pub top5: Spread,
    /// Compression ratio.
    pub ratio: Spread,
    /// Average codeword length, bits per quantized weight.
    pub bits: Spread,
    /// The task metric of the baseline.
    pub baseline_quality: Spread,
    /// The task metric after pruning.
    pub pruned_quality: Spread,
    /// The task metric right after quantization (before fine-tuning).
    pub quantized_quality: Spread,
    /// Bytes of the `.nqz` file.
    pub nqz_bytes: Spread,
}

/// The axes a setting is made of, in the grid's order.
impl Setting {
    /// Whether its fine-tuning pass trained nothing and only re-estimated
    /// batch norm's statistics (`train_centres = false`, no biases).
    pub fn statistics_only(&self) -> bool {
        self.finetune_trains == Some(FinetuneTrains::Statistics)
    }

    /// What its fine-tuning did, in a few words: `fine-tuned` (the centres
    /// trained, or a row from before that was recorded), or what a pass
    /// that does not train the centres alone did; `None` without
    /// fine-tuning.
    pub fn finetune_words(&self) -> Option<&'static str> {
        self.finetuned.then_some(match self.finetune_trains {
            Some(FinetuneTrains::Statistics) => "batch-norm statistics only",
            Some(FinetuneTrains::Biases) => "biases fine-tuned",
            Some(FinetuneTrains::CentresAndBiases) => "fine-tuned with biases",
            Some(FinetuneTrains::Centres) | None => "fine-tuned",
        })
    }

    /// Its fine-tuning as a table's "fine-tuned" column: `yes`, `no`, or
    /// [`Self::finetune_words`] for a pass that does not train the centres
    /// alone.
    pub fn finetune_cell(&self) -> &'static str {
        match self.finetune_words() {
            None => "no",
            Some("fine-tuned") => "yes",
            Some(other) => other,
        }
    }

    /// Each training seed with the mean task metric of its runs, oriented
    /// so that higher is better ([`Metric::score`]): what
    /// [`crate::verdict::Comparison::paired`] takes to ask whether one
    /// setting beats another.
    pub fn scored_by_training_seed(&self) -> Vec<(u64, f64)> {
        self.by_training_seed
            .iter()
            .map(|&(seed, q)| (seed, self.metric.score(q)))
            .collect()
    }

    /// Whether `self` and `other` plausibly quantize the same trained (and
    /// pruned) networks, the condition for pairing them by training seed:
    /// their networks score the same over the seeds. Two grids with the
    /// same network but another training budget are told apart this way.
    pub fn shares_networks_with(&self, other: &Setting) -> bool {
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            (a, b) => a.is_none() && b.is_none(),
        };
        [
            (self.baseline_quality, other.baseline_quality),
            (self.pruned_quality, other.pruned_quality),
        ]
        .iter()
        .all(|(a, b)| close(a.mean, b.mean) && close(a.std, b.std))
    }
}

const KEYS: [&str; 15] = [
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
    "rounding",
    "finetuned",
    "finetune_trains",
    "search",
];

/// The measurements summarised over seeds; the `*quality` columns are made
/// by [`with_quality`].
const MEASURES: [&str; 8] = [
    "quality",
    "top5",
    "compression_ratio",
    "avg_codeword_bits",
    "baseline_quality",
    "pruned_quality",
    "quantized_quality",
    "nqz_bytes",
];

/// The results with the task metric of each row's dataset
/// ([`Dataset::metric`]) as columns `quality`, `baseline_quality`,
/// `pruned_quality` and `quantized_quality`: top-1 for images, the
/// cross-entropy in bits for text.
fn with_quality(results: LazyFrame) -> LazyFrame {
    let text = Dataset::ALL
        .iter()
        .filter(|d| d.metric() == Metric::BitsPerCharacter)
        .map(|d| col("dataset").eq(lit(d.as_str())))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let stages = [
        ("quality", "top1", "loss"),
        ("baseline_quality", "baseline_top1", "baseline_loss"),
        ("pruned_quality", "pruned_top1", "pruned_loss"),
        ("quantized_quality", "quantized_top1", "quantized_loss"),
    ];
    results.with_columns(stages.map(|(name, top1, loss)| {
        when(text.clone())
            .then(col(loss).cast(DataType::Float64) / lit(std::f64::consts::LN_2))
            .otherwise(col(top1).cast(DataType::Float64))
            .alias(name)
    }))
}

/// Each row's values of the setting axes ([`KEYS`]), as text: what tells
/// the settings of two frames grouped differently apart.
fn setting_keys(df: &DataFrame) -> Result<Vec<Vec<Option<String>>>> {
    let columns = KEYS
        .iter()
        .map(|k| strings(df, k))
        .collect::<Result<Vec<_>>>()?;
    Ok((0..df.height())
        .map(|row| columns.iter().map(|c| c[row].clone()).collect())
        .collect())
}

/// A setting's [`Setting::by_training_seed`] and [`Setting::seed_sources`].
type TrainingSeeds = (Vec<(u64, f64)>, Option<SeedSources>);

/// [`TrainingSeeds`] of every setting of `results`, by the setting's
/// [`setting_keys`], from one grouping by setting and training seed: each
/// training seed's mean over its runs, and where the runs had quantizer
/// seeds of their own, the spread by source.
fn training_seeds(
    results: &DataFrame,
) -> Result<std::collections::HashMap<Vec<Option<String>>, TrainingSeeds>> {
    let mut keys_and_seed: Vec<Expr> = KEYS.map(col).to_vec();
    keys_and_seed.push(col("seed"));
    let df = with_quality(results.clone().lazy())
        .filter(col("status").eq(lit("ok")))
        .group_by_stable(keys_and_seed)
        .agg([
            col("quality").mean().alias("training_mean"),
            col("quality").var(1).alias("quantizer_var"),
            col("quantizer_seed")
                .is_not_null()
                .sum()
                .alias("quantizer_seeds"),
        ])
        .sort(["seed"], SortMultipleOptions::default())
        .collect()?;
    let seeds = floats(&df, "seed")?;
    let means = floats(&df, "training_mean")?;
    let variances = floats(&df, "quantizer_var")?;
    let quantizer_seeds = floats(&df, "quantizer_seeds")?;
    // per setting: the training seeds' means, and over the training seeds
    // that drew, their variances over the quantizer seeds and the most
    // quantizer seeds any had
    #[derive(Default)]
    struct Runs {
        means: Vec<(u64, f64)>,
        drawn_means: Vec<f64>,
        variances: Vec<f64>,
        quantizer_seeds: u64,
    }
    let mut by_setting: std::collections::HashMap<_, Runs> = Default::default();
    for (row, key) in setting_keys(&df)?.into_iter().enumerate() {
        let (Some(seed), Some(mean)) = (seeds[row], means[row]) else {
            continue;
        };
        let runs = by_setting.entry(key).or_default();
        runs.means.push((seed as u64, mean));
        let drawn = quantizer_seeds[row].unwrap_or(0.0) as u64;
        if drawn > 0 {
            runs.drawn_means.push(mean);
            runs.variances
                .extend(variances[row].filter(|v| v.is_finite()));
            runs.quantizer_seeds = runs.quantizer_seeds.max(drawn);
        }
    }
    Ok(by_setting
        .into_iter()
        .map(|(key, runs)| {
            let sources = (!runs.drawn_means.is_empty()).then(|| SeedSources {
                training_seeds: runs.drawn_means.len() as u64,
                quantizer_seeds: runs.quantizer_seeds,
                over_training: Spread::of(&runs.drawn_means).std,
                over_quantizer: Spread::of(&runs.variances).mean.map(f64::sqrt),
            });
            (key, (runs.means, sources))
        })
        .collect())
}

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
        col("search_rate").first(),
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
    let df = with_quality(results.clone().lazy())
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
    let rounding = strings(&df, "rounding")?;
    let finetuned = strings(&df, "finetuned")?;
    let finetune_trains = strings(&df, "finetune_trains")?;
    let seeds = floats(&df, "seeds")?;
    let search = strings(&df, "search")?;
    let search_step = floats(&df, "search_step")?;
    let search_budget = floats(&df, "search_budget")?;
    let search_reference = floats(&df, "search_reference")?;
    let search_rate = floats(&df, "search_rate")?;
    let mut measures: Vec<Vec<Spread>> = MEASURES
        .iter()
        .map(|m| spreads(&df, m))
        .collect::<Result<_>>()?;
    let mut take = |i: usize, row: usize| std::mem::take(&mut measures[i][row]);
    let mut training = training_seeds(results)?;
    let keys = setting_keys(&df)?;
    let mut out = Vec::with_capacity(df.height());
    for row in 0..df.height() {
        let (by_training_seed, seed_sources) = training.remove(&keys[row]).unwrap_or_default();
        out.push(Setting {
            by_training_seed,
            seed_sources,
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
            rounding: rounding[row].clone(),
            finetuned: finetuned[row].as_deref() == Some("true"),
            finetune_trains: finetune_trains[row]
                .as_deref()
                .and_then(FinetuneTrains::parse),
            search: search[row].clone(),
            search_step: search_step[row].map(|v| v as u64),
            search_budget: search_budget[row],
            search_reference: search_reference[row],
            search_rate: search_rate[row],
            seeds: seeds[row].unwrap_or(0.0) as u64,
            metric: Metric::of_dataset_name(dataset[row].as_deref().unwrap_or_default()),
            quality: take(0, row),
            top5: take(1, row),
            ratio: take(2, row),
            bits: take(3, row),
            baseline_quality: take(4, row),
            pruned_quality: take(5, row),
            quantized_quality: take(6, row),
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
    fn fine_tuning_is_named_by_what_it_trained() {
        let tuned = |trains: Option<FinetuneTrains>| Setting {
            finetuned: true,
            finetune_trains: trains,
            ..Setting::default()
        };
        let cells: Vec<&str> = [
            Setting::default(),
            tuned(None),
            tuned(Some(FinetuneTrains::Centres)),
            tuned(Some(FinetuneTrains::CentresAndBiases)),
            tuned(Some(FinetuneTrains::Biases)),
            tuned(Some(FinetuneTrains::Statistics)),
        ]
        .iter()
        .map(Setting::finetune_cell)
        .collect();
        assert_eq!(
            cells,
            [
                "no",
                "yes",
                "yes",
                "fine-tuned with biases",
                "biases fine-tuned",
                "batch-norm statistics only"
            ]
        );
        assert!(tuned(Some(FinetuneTrains::Statistics)).statistics_only());
        assert!(!tuned(None).statistics_only());
        // a row's name reads back as its pass
        for (centres, biases) in [(true, false), (true, true), (false, true), (false, false)] {
            let trains = FinetuneTrains::of(centres, biases);
            assert_eq!(FinetuneTrains::parse(trains.name()), Some(trains));
        }
        assert_eq!(FinetuneTrains::parse("everything"), None);
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
        assert_eq!(s[0].quality.mean, Some(91.0));
        // sample std of {90, 92} is sqrt(2)
        assert!((s[0].quality.std.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s[0].ratio.mean, Some(11.0));
        assert_eq!((s[1].k, s[1].seeds, s[1].quality.std), (Some(8), 1, None));
        assert_eq!(s[1].pruned_quality.mean, None);
        assert_eq!(s[0].metric, Metric::Top1);
        assert_eq!(s[0].by_training_seed, vec![(0, 90.0), (1, 92.0)]);
    }

    #[test]
    fn the_spread_splits_into_training_and_quantizer_seeds() {
        let drawn = |seed: u64, quantizer_seed: u64, top1: f64| Row {
            quantizer_seed: Some(quantizer_seed),
            ..row(seed, 4, top1, 10.0)
        };
        let deterministic = |seed: u64, top1: f64| Row {
            method: "uniform".into(),
            ..row(seed, 4, top1, 10.0)
        };
        let rows = [
            drawn(0, 0, 90.0),
            drawn(0, 1, 92.0),
            drawn(1, 0, 94.0),
            drawn(1, 1, 94.0),
            deterministic(0, 80.0),
            deterministic(1, 81.0),
        ];
        let s = settings(&to_frame(&rows).unwrap()).unwrap();
        assert_eq!((s[0].method.as_str(), s[0].seeds), ("kmeans", 4));
        let src = s[0].seed_sources.unwrap();
        assert_eq!((src.training_seeds, src.quantizer_seeds), (2, 2));
        // the training seeds' means 91 and 94; their variances 2 and 0
        assert!((src.over_training.unwrap() - 3.0 / 2f64.sqrt()).abs() < 1e-12);
        assert!((src.over_quantizer.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(s[0].quality.mean, Some(92.5));
        assert_eq!(s[0].by_training_seed, vec![(0, 91.0), (1, 94.0)]);
        assert_eq!((s[1].method.as_str(), s[1].seed_sources), ("uniform", None));
        assert_eq!(s[1].by_training_seed, vec![(0, 80.0), (1, 81.0)]);
    }

    #[test]
    fn text_is_judged_in_bits_per_character_at_every_stage() {
        let ln2 = std::f64::consts::LN_2;
        let text = |seed: u64, bits: f64| Row {
            dataset: "shakespeare".into(),
            loss: Some(bits * ln2),
            baseline_loss: Some(2.0 * ln2),
            pruned_loss: Some(2.25 * ln2),
            quantized_loss: Some(3.0 * ln2),
            ..row(seed, 4, 50.0, 10.0)
        };
        let s = settings(&to_frame(&[text(0, 2.5), text(1, 2.7)]).unwrap()).unwrap();
        assert_eq!(s[0].metric, Metric::BitsPerCharacter);
        assert!(
            (s[0].quality.mean.unwrap() - 2.6).abs() < 1e-12,
            "not top-1"
        );
        assert!((s[0].baseline_quality.mean.unwrap() - 2.0).abs() < 1e-12);
        assert!((s[0].pruned_quality.mean.unwrap() - 2.25).abs() < 1e-12);
        assert!((s[0].quantized_quality.mean.unwrap() - 3.0).abs() < 1e-12);
    }
}
