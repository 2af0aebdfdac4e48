//! One result row per grid cell (design.md, "One result row"), and the
//! polars frame of many rows.

use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Everything measured for one cell, in long format. Fields are `None`
/// where they do not apply (no `k` for ECSQ, no pruned accuracy without
/// pruning) or where the cell failed before measuring them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The grid's name.
    pub experiment: String,
    /// The cell's id in the grid.
    pub cell: String,
    /// The cell's position in the grid's fixed order.
    pub index: u64,
    /// `ok` or `failed`.
    pub status: String,
    /// The error of a failed cell, its whole chain on one line.
    pub error: Option<String>,

    /// Architecture.
    pub model: String,
    /// Dataset.
    pub dataset: String,
    /// Seed of training (and of the quantizer's draws without
    /// `quantizer_seed`).
    pub seed: u64,
    /// Name of the pruning setting.
    pub prune: Option<String>,
    /// Share of the quantizable weights kept by pruning.
    pub keep: Option<f64>,
    /// Name of the importance setting (`None`: unweighted).
    pub weighting: Option<String>,
    /// Importance estimator (`hutchinson`, `gauss-newton`, `gauss-newton-mc`,
    /// `exact`, `adam`).
    pub estimator: Option<String>,
    /// Training examples the estimator used.
    pub samples: Option<u64>,
    /// Quantizer (`none` for the unquantized network).
    pub method: String,
    /// `layer` or `global`.
    pub scope: Option<String>,
    /// Clusters asked for (k-means, uniform).
    pub k: Option<u64>,
    /// ECSQ's Lagrange multiplier.
    pub lambda: Option<f64>,
    /// `huffman` or `fixed`.
    pub coding: Option<String>,
    /// `compensated` when the weights were rounded onto the codebooks with
    /// compensation through their layer's input moment; `None` for nearest
    /// rounding (and for the unquantized network).
    #[serde(default)]
    pub rounding: Option<String>,
    /// Seed of the quantizer's own draws where the grid gave them apart
    /// from the training seed (`grid.quantizer_seed`); `None`: the training
    /// seed, or a quantizer that draws nothing.
    #[serde(default)]
    pub quantizer_seed: Option<u64>,
    /// Whether the shared values were fine-tuned.
    pub finetuned: bool,
    /// The search (`[search]` of the grid) this cell is a point of, by id.
    #[serde(default)]
    pub search: Option<String>,
    /// The point's place in its search, from 0.
    #[serde(default)]
    pub search_step: Option<u64>,
    /// How much worse than its reference the search allowed, in the task
    /// metric (points of top-1, or bits per character for text).
    #[serde(default)]
    pub search_budget: Option<f64>,
    /// The search's reference: the task metric (top-1 %, or bits per
    /// character for text) of the network unquantized, mean over the seeds.
    #[serde(default)]
    pub search_reference: Option<f64>,
    /// The rate a search for a rate held its points to: average codeword
    /// length, bits per quantized weight (`[search] rate`).
    #[serde(default)]
    pub search_rate: Option<f64>,

    /// Parameters of the network (floats of the original file).
    pub params: Option<u64>,
    /// Weights quantized.
    pub quantized_weights: Option<u64>,
    /// Non-empty clusters over all codebooks.
    pub clusters: Option<u64>,
    /// Entropy of the cluster indices, bits per quantized weight.
    pub entropy: Option<f64>,
    /// Average codeword length, bits per quantized weight.
    pub avg_codeword_bits: Option<f64>,
    /// Coded cluster indices.
    pub index_bits: Option<u64>,
    /// Shared values.
    pub codebook_bits: Option<u64>,
    /// Huffman tables of the indices.
    pub code_table_bits: Option<u64>,
    /// Coded survivor positions.
    pub position_bits: Option<u64>,
    /// Huffman tables of the positions.
    pub position_table_bits: Option<u64>,
    /// Unquantized floats.
    pub float_bits: Option<u64>,
    /// Sum of the parts.
    pub total_bits: Option<u64>,
    /// Original bits over `total_bits`.
    pub compression_ratio: Option<f64>,
    /// Bytes of the cell's `.nqz` file.
    pub nqz_bytes: Option<u64>,
    /// Its payload bytes (the streams, each rounded up to bytes).
    pub nqz_payload_bytes: Option<u64>,
    /// Its header bytes.
    pub nqz_header_bytes: Option<u64>,

    /// Top-1 test accuracy of the trained baseline, percent.
    pub baseline_top1: Option<f64>,
    /// Top-5 of the baseline, where there are more than 10 classes.
    pub baseline_top5: Option<f64>,
    /// Top-1 after pruning and retraining.
    pub pruned_top1: Option<f64>,
    /// Top-1 right after quantization.
    pub quantized_top1: Option<f64>,
    /// Top-1 after fine-tuning the shared values.
    pub finetuned_top1: Option<f64>,
    /// Top-1 of the network the cell ends with.
    pub top1: Option<f64>,
    /// Its top-5, where there are more than 10 classes.
    pub top5: Option<f64>,
    /// Its mean test cross-entropy (nats per prediction; over ln 2, the
    /// bits per character of a language model).
    pub loss: Option<f64>,
    /// Importance-weighted distortion `sum h (w - q)^2` before fine-tuning.
    pub distortion_h: Option<f64>,

    /// Seconds to train the baseline (when it was trained).
    pub seconds_baseline: Option<f64>,
    /// Seconds to prune and retrain.
    pub seconds_prune: Option<f64>,
    /// Seconds to estimate the importance.
    pub seconds_importance: Option<f64>,
    /// Seconds to quantize.
    pub seconds_quantize: Option<f64>,
    /// Seconds to fine-tune.
    pub seconds_finetune: Option<f64>,
    /// Seconds to size, pack and check the `.nqz` file.
    pub seconds_pack: Option<f64>,

    /// Git revision of the code that computed the cell.
    pub git_revision: String,
    /// Whether its tree had uncommitted changes.
    pub git_dirty: bool,
    /// libtorch version.
    pub torch_version: String,
    /// `cpu` or `cuda`.
    pub device: String,

    // Added after results tables were first written with the fields above;
    // last, so that older tables read with them empty keep their order.
    /// Mean test cross-entropy of the baseline (nats per prediction).
    #[serde(default)]
    pub baseline_loss: Option<f64>,
    /// Mean test cross-entropy after pruning and retraining.
    #[serde(default)]
    pub pruned_loss: Option<f64>,
    /// Mean test cross-entropy right after quantization.
    #[serde(default)]
    pub quantized_loss: Option<f64>,
    /// What fine-tuning trained, by [`FinetuneTrains::name`]. `None`
    /// without fine-tuning, and in rows written before the field, whose
    /// fine-tuning trained the centres unless their grid said otherwise.
    #[serde(default)]
    pub finetune_trains: Option<String>,
}

/// What a fine-tuning pass trains ([`Row::finetune_trains`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinetuneTrains {
    /// The shared values: the paper's fine-tuning, and the default.
    Centres,
    /// The shared values and the biases.
    CentresAndBiases,
    /// The biases alone.
    Biases,
    /// Nothing: the pass only re-estimates batch norm's running statistics
    /// (the network runs in training mode).
    Statistics,
}

impl FinetuneTrains {
    const ALL: [Self; 4] = [
        Self::Centres,
        Self::CentresAndBiases,
        Self::Biases,
        Self::Statistics,
    ];

    /// The pass that trains the centres and the biases or not.
    pub fn of(centres: bool, biases: bool) -> Self {
        match (centres, biases) {
            (true, false) => Self::Centres,
            (true, true) => Self::CentresAndBiases,
            (false, true) => Self::Biases,
            (false, false) => Self::Statistics,
        }
    }

    /// Its name in a row.
    pub fn name(self) -> &'static str {
        match self {
            Self::Centres => "centres",
            Self::CentresAndBiases => "centres+biases",
            Self::Biases => "biases",
            Self::Statistics => "statistics",
        }
    }

    /// The pass of a row's name; `None` for a name that is none of them.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One polars column per field of [`Row`], in field order; the column type
/// follows the field type (`Option` gives nulls).
macro_rules! columns {
    ($rows:expr; $($field:ident),* $(,)?) => {
        vec![$(Column::new(
            stringify!($field).into(),
            $rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>(),
        )),*]
    };
}

/// The field names of [`Row`], in order: the columns of the results table.
pub fn column_names() -> Vec<String> {
    to_frame(&[Row::default()])
        .map(|df| {
            df.get_column_names()
                .iter()
                .map(|n| n.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The rows as a frame, one column per field.
pub fn to_frame(rows: &[Row]) -> Result<DataFrame> {
    let columns = columns![rows;
        experiment, cell, index, status, error,
        model, dataset, seed, prune, keep, weighting, estimator, samples, method, scope, k,
        lambda, coding, rounding, quantizer_seed, finetuned, search, search_step, search_budget,
        search_reference,
        search_rate,
        params, quantized_weights, clusters, entropy, avg_codeword_bits, index_bits,
        codebook_bits, code_table_bits, position_bits, position_table_bits, float_bits,
        total_bits, compression_ratio, nqz_bytes, nqz_payload_bytes, nqz_header_bytes,
        baseline_top1, baseline_top5, pruned_top1, quantized_top1, finetuned_top1, top1, top5,
        loss, distortion_h,
        seconds_baseline, seconds_prune, seconds_importance, seconds_quantize,
        seconds_finetune, seconds_pack,
        git_revision, git_dirty, torch_version, device,
        baseline_loss, pruned_loss, quantized_loss, finetune_trains,
    ];
    Ok(DataFrame::new(rows.len(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_a_column_in_order() {
        let json = serde_json::to_value(Row::default()).unwrap();
        let fields: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(column_names(), fields);
    }

    #[test]
    fn options_become_nulls_and_types_follow_fields() {
        let rows = [
            Row {
                k: Some(16),
                top1: Some(90.5),
                ..Row::default()
            },
            Row::default(),
        ];
        let df = to_frame(&rows).unwrap();
        assert_eq!(df.height(), 2);
        let k = df.column("k").unwrap().u64().unwrap();
        assert_eq!(k.get(0), Some(16));
        assert_eq!(k.get(1), None);
        let top1 = df.column("top1").unwrap().f64().unwrap();
        assert_eq!(top1.get(0), Some(90.5));
        assert!(df.column("finetuned").unwrap().bool().is_ok());
        assert!(df.column("cell").unwrap().str().is_ok());
    }
}
