//! The grid file as written: serde structs that refuse unknown keys. They
//! are checked and turned into [`super::spec`] types by [`super::load`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// A whole grid file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrid {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub model: RawModel,
    pub train: RawTrain,
    #[serde(default)]
    pub prune: BTreeMap<String, RawPrune>,
    #[serde(default)]
    pub importance: BTreeMap<String, RawImportance>,
    #[serde(default)]
    pub quantizer: RawQuantizer,
    pub soft_sharing: Option<RawSoftSharing>,
    pub compensation: Option<RawCompensation>,
    pub finetune: Option<RawFinetune>,
    pub search: Option<RawSearch>,
    pub grid: RawAxes,
}

/// `[model]`: the network and its data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub arch: String,
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    /// Use only the first examples of the training set (quick runs).
    pub train_examples: Option<usize>,
    /// Use only the first examples of the test set (quick runs).
    pub test_examples: Option<usize>,
    /// The TorchScript file of `arch = "torchscript"`.
    pub model_file: Option<PathBuf>,
    /// Which parameters of a TorchScript model are quantized: a regex on
    /// their module names (default: every one of at least 2 dimensions).
    pub tensors: Option<String>,
}

/// `[train]`: the baseline's training recipe.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    pub epochs: usize,
    pub optimizer: String,
    pub lr: f64,
    pub momentum: Option<f64>,
    pub weight_decay: Option<f64>,
    pub batch_size: usize,
    pub schedule: Option<String>,
    pub step_every: Option<usize>,
    pub step_gamma: Option<f64>,
    pub max_batches_per_epoch: Option<usize>,
}

/// `[prune.NAME]`: pruning (by magnitude or OBD saliency, at once or
/// gradually) with retraining under the masks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrune {
    pub keep: f64,
    pub scope: Option<String>,
    pub retrain_epochs: usize,
    pub lr: Option<f64>,
    /// `one-shot` (default) or `gradual`.
    pub schedule: Option<String>,
    /// Gradual pruning's steps (default 4).
    pub steps: Option<usize>,
    /// `magnitude` (default) or `obd`.
    pub criterion: Option<String>,
    /// OBD's examples for the Gauss-Newton diagonal (default 1000).
    pub samples: Option<usize>,
}

/// `[importance.NAME]`: how `h` is estimated.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImportance {
    pub estimator: String,
    pub samples: Option<usize>,
    pub probes: Option<usize>,
    /// For `gauss-newton-mc`: labels drawn per example.
    pub draws: Option<usize>,
    /// For `adam`: `training` (the baseline's Adam state) or `statistics`
    /// (a frozen-weights pass).
    pub source: Option<String>,
}

/// `[quantizer]`: settings shared by every cell of a method.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuantizer {
    pub kmeans_init: Option<String>,
    pub max_iter: Option<usize>,
    pub ecsq_k_init: Option<usize>,
    pub uniform_centre: Option<String>,
    pub universal_centre: Option<String>,
}

/// `[soft_sharing]`: retraining under a learned mixture prior (every key
/// optional; defaults from Ullrich et al.'s tutorial).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSoftSharing {
    pub epochs: Option<usize>,
    pub lr: Option<f64>,
    pub components: Option<usize>,
    pub pi_zero: Option<f64>,
    pub init_sigma: Option<f64>,
    pub lr_means: Option<f64>,
    pub lr_precisions: Option<f64>,
    pub lr_mixing: Option<f64>,
    pub zero_precision_prior: Option<[f64; 2]>,
    pub precision_prior: Option<[f64; 2]>,
    pub merge_kl: Option<f64>,
}

/// `[compensation]`: compensated rounding (`rounding = "compensated"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompensation {
    /// Training examples whose layer inputs make `X^T X` (default 1024).
    pub samples: Option<usize>,
    /// Added to the diagonal, relative to its mean (default 0.01).
    pub damping: Option<f64>,
}

/// `[finetune]`: training of the shared values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFinetune {
    pub epochs: usize,
    pub lr: f64,
    pub optimizer: Option<String>,
    pub center_grad: Option<String>,
    pub train_centres: Option<bool>,
    pub train_biases: Option<bool>,
    pub max_batches_per_epoch: Option<usize>,
}

/// `[grid]`: every list is an axis.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAxes {
    pub seed: Vec<u64>,
    pub method: Vec<String>,
    pub prune: Option<Vec<String>>,
    pub weighting: Option<Vec<String>>,
    pub scope: Option<Vec<String>>,
    pub k: Option<Vec<usize>>,
    pub lambda: Option<Vec<f64>>,
    pub coding: Option<Vec<String>>,
    pub finetune: Option<Vec<bool>>,
    /// `nearest` (default) or `compensated`.
    pub rounding: Option<Vec<String>>,
    /// Seeds of the quantizer's own draws, apart from the training seed.
    pub quantizer_seed: Option<Vec<u64>>,
}

/// `[search]`: per method, the most aggressive parameter within a loss
/// budget, by bisection over the ranges given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    pub budget: Option<f64>,
    /// A target rate (average codeword length, bits per weight) instead of
    /// a budget.
    pub rate: Option<f64>,
    pub k: Option<Vec<usize>>,
    pub lambda: Option<Vec<f64>>,
    pub lambda_ratio: Option<f64>,
    pub widen: Option<u32>,
    /// The pruning setting (or "none") whose unquantized network the
    /// budget counts from; default: each search's own.
    pub reference: Option<String>,
}
