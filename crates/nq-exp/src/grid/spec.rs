//! Validated grid settings and cells. Every value here has been checked, so
//! the runner never meets a bad setting at cell 57. They serialise to JSON:
//! the resolved configuration saved beside each result, and the input of
//! the cache keys ([`super::keys`]).

use std::path::PathBuf;

use nq_quant::huffman::Coding;
use nq_quant::scope::Scope;
use nq_report::FinetuneTrains;
use serde::Serialize;

use crate::search::{SearchGoal, SearchSpace};

/// The most clusters a grid may ask for (`grid.k`, `search.k`): 2^16. Past
/// it the index alone costs half a float32 weight, and k-means' cost, which
/// grows with N k, runs to hours on the networks here.
pub const MAX_K: usize = 1 << 16;

/// The network and its data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpec {
    /// Architecture name (`lenet5`, ...).
    pub arch: String,
    /// Dataset name (`fashion-mnist`, ...).
    pub dataset: String,
    /// Where the data is; `None` for the dataset's default directory.
    pub data_dir: Option<PathBuf>,
    /// Only the first examples of the training set, when set.
    pub train_examples: Option<usize>,
    /// Only the first examples of the test set, when set.
    pub test_examples: Option<usize>,
    /// The user's TorchScript module (`arch = "torchscript"`), with its
    /// digest, so that a changed file changes every cache key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_file: Option<ModelFile>,
    /// A regex on the module's parameter names: the quantized tensors of a
    /// TorchScript model (`None`: every one of at least 2 dimensions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensors: Option<String>,
}

/// A model file named by a grid, as it was when the grid was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFile {
    /// As written in the grid (relative paths from where nq-exp runs).
    pub path: PathBuf,
    /// Its size and SHA-256.
    #[serde(flatten)]
    pub digest: crate::cache::manifest::FileDigest,
}

impl ModelSpec {
    /// What the dataset's networks are judged by, and what searches count
    /// their budget in: top-1, or bits per character for text.
    pub fn metric(&self) -> nq_catalog::Metric {
        nq_catalog::Metric::of_dataset_name(&self.dataset)
    }
}

/// An optimizer and its settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum OptimizerSpec {
    /// SGD with momentum.
    Sgd {
        /// Momentum.
        momentum: f64,
        /// L2 weight decay.
        weight_decay: f64,
    },
    /// Adam.
    Adam {
        /// L2 weight decay.
        weight_decay: f64,
    },
}

/// A learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum ScheduleSpec {
    /// The same rate throughout.
    Constant,
    /// Multiplied by `gamma` every `every` epochs.
    Step {
        /// Epochs between drops.
        every: usize,
        /// Factor per drop.
        gamma: f64,
    },
    /// Cosine decay to 0 over the run.
    Cosine,
}

/// The baseline's training recipe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSpec {
    /// Epochs.
    pub epochs: usize,
    /// Optimizer.
    pub optimizer: OptimizerSpec,
    /// Initial learning rate.
    pub lr: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Learning-rate schedule.
    pub schedule: ScheduleSpec,
    /// At most this many batches per epoch (quick runs), when set.
    pub max_batches_per_epoch: Option<usize>,
}

/// Pruning settings (what the cache key hashes; the name is a label). The
/// defaults of `schedule` and `criterion` are left out of the key, so that
/// the networks pruned before they existed keep their keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneSettings {
    /// Share of the quantizable weights kept, in (0, 1].
    pub keep: f64,
    /// `layer` (each tensor keeps `keep`) or `global` (one threshold).
    pub scope: Scope,
    /// Retraining epochs with the masks held.
    pub retrain_epochs: usize,
    /// Retraining learning rate.
    pub lr: f64,
    /// At once, or in steps over the retraining.
    #[serde(skip_serializing_if = "PruneSchedule::is_one_shot")]
    pub schedule: PruneSchedule,
    /// What ranks the weights.
    #[serde(skip_serializing_if = "PruneCriterion::is_magnitude")]
    pub criterion: PruneCriterion,
}

/// How pruning reaches its keep ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum PruneSchedule {
    /// All at once, then retraining (Han et al. 2015).
    #[default]
    OneShot,
    /// In `steps` steps on Zhu and Gupta's cubic schedule, the retraining
    /// epochs shared among them (each step prunes, then retrains).
    Gradual {
        /// Pruning steps, at least 1 and at most the retraining epochs.
        steps: usize,
    },
}

impl PruneSchedule {
    fn is_one_shot(&self) -> bool {
        *self == PruneSchedule::OneShot
    }
}

/// What ranks the weights for pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum PruneCriterion {
    /// `|w|`.
    #[default]
    Magnitude,
    /// Optimal Brain Damage's saliency `1/2 h w^2`, `h` the exact
    /// Gauss-Newton diagonal over the first `samples` training examples,
    /// computed again at every step.
    Obd {
        /// Training examples for the Gauss-Newton diagonal.
        samples: usize,
    },
}

impl PruneCriterion {
    fn is_magnitude(&self) -> bool {
        *self == PruneCriterion::Magnitude
    }
}

/// A named pruning setting of the grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneSpec {
    /// Its name in `[prune.NAME]`.
    pub name: String,
    /// Its settings.
    pub settings: PruneSettings,
}

/// An importance estimator and its settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "estimator", rename_all = "kebab-case")]
pub enum EstimatorSpec {
    /// Hessian diagonal by Hutchinson's estimator.
    Hutchinson {
        /// Training examples used.
        samples: usize,
        /// Rademacher probes.
        probes: usize,
    },
    /// Diagonal of the generalised Gauss-Newton matrix.
    GaussNewton {
        /// Training examples used.
        samples: usize,
    },
    /// Monte Carlo estimate of the Gauss-Newton diagonal.
    GaussNewtonMc {
        /// Training examples used.
        samples: usize,
        /// Labels drawn per example.
        draws: usize,
    },
    /// Exact Hessian diagonal (tiny nets only).
    Exact {
        /// Training examples used.
        samples: usize,
    },
    /// Square root of Adam's bias-corrected second moment.
    Adam {
        /// `training` or `statistics`.
        source: String,
    },
}

/// A named importance setting of the grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportanceSpec {
    /// Its name in `[importance.NAME]`.
    pub name: String,
    /// The estimator.
    pub estimator: EstimatorSpec,
}

/// A quantizer with all its parameters resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum MethodSpec {
    /// No quantization: the (pruned) network as float32.
    None,
    /// Weighted k-means.
    Kmeans {
        /// Clusters.
        k: usize,
        /// Initialisation.
        init: String,
        /// Most Lloyd iterations.
        max_iter: usize,
    },
    /// Exact 1-D weighted k-means.
    KmeansOptimal {
        /// Clusters.
        k: usize,
    },
    /// Uniform quantization with `k` cells over the range.
    Uniform {
        /// Cells.
        k: usize,
        /// Shared value of a cell.
        centre: String,
    },
    /// Iterative entropy-constrained scalar quantization.
    Ecsq {
        /// Lagrange multiplier.
        lambda: f64,
        /// Initial clusters.
        k_init: usize,
        /// Most iterations.
        max_iter: usize,
    },
    /// Universal quantization: uniform with `k` cells over the range, on
    /// the weights plus a shared random dither (seeded by the cell's seed).
    Universal {
        /// Cells.
        k: usize,
        /// Shared value of a cell.
        centre: String,
    },
    /// Soft weight-sharing: retraining under a learned mixture prior, then
    /// every weight to its component's mean (the zero component's pruned).
    SoftSharing {
        /// The prior's weight against the data (the grid's `lambda`).
        tau: f64,
        /// The rest of its settings (`[soft_sharing]`).
        #[serde(flatten)]
        settings: SoftSharingSettings,
    },
}

/// Soft weight-sharing's settings but `tau` (`[soft_sharing]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoftSharingSettings {
    /// Retraining epochs under the prior.
    pub epochs: usize,
    /// The weights' learning rate (Adam, the training's schedule).
    pub lr: f64,
    /// Mixture components, the zero component included.
    pub components: usize,
    /// The zero component's fixed mixing weight.
    pub pi_zero: f64,
    /// Every component's starting standard deviation.
    pub init_sigma: f64,
    /// Adam's learning rate for the means.
    pub lr_means: f64,
    /// Adam's learning rate for the log-precisions.
    pub lr_precisions: f64,
    /// Adam's learning rate for the mixing logits.
    pub lr_mixing: f64,
    /// Gamma shape and rate on the zero component's precision.
    pub zero_precision_prior: [f64; 2],
    /// Gamma shape and rate on the other precisions.
    pub precision_prior: [f64; 2],
    /// Components closer than this symmetric KL divergence are merged
    /// before quantization.
    pub merge_kl: f64,
}

impl MethodSpec {
    /// The method's name as in grids.
    pub fn name(&self) -> &'static str {
        match self {
            MethodSpec::None => "none",
            MethodSpec::Kmeans { .. } => "kmeans",
            MethodSpec::KmeansOptimal { .. } => "kmeans-optimal",
            MethodSpec::Uniform { .. } => "uniform",
            MethodSpec::Ecsq { .. } => "ecsq",
            MethodSpec::Universal { .. } => "universal",
            MethodSpec::SoftSharing { .. } => "soft-sharing",
        }
    }

    /// `k` for the methods that take one.
    pub fn k(&self) -> Option<usize> {
        match self {
            MethodSpec::Kmeans { k, .. }
            | MethodSpec::KmeansOptimal { k }
            | MethodSpec::Uniform { k, .. }
            | MethodSpec::Universal { k, .. } => Some(*k),
            MethodSpec::None | MethodSpec::Ecsq { .. } | MethodSpec::SoftSharing { .. } => None,
        }
    }

    /// `lambda` for ECSQ, and soft weight-sharing's `tau` (the weight of
    /// its rate term, `-log p(w)`).
    pub fn lambda(&self) -> Option<f64> {
        match self {
            MethodSpec::Ecsq { lambda, .. } => Some(*lambda),
            MethodSpec::SoftSharing { tau, .. } => Some(*tau),
            _ => None,
        }
    }
}

/// For `skip_serializing_if` on settings whose default is `true`.
fn is_true(b: &bool) -> bool {
    *b
}

/// Fine-tuning of the shared values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinetuneSpec {
    /// Epochs.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
    /// Optimizer.
    pub optimizer: OptimizerSpec,
    /// `sum` or `mean` of the members' gradients.
    pub center_grad: String,
    /// Whether the centres train; without them (and without the biases) a
    /// pass only re-estimates batch norm's statistics. Left out of the
    /// cache key when true (the default), so that older keys stay valid.
    #[serde(skip_serializing_if = "is_true")]
    pub train_centres: bool,
    /// Whether biases are trained too.
    pub train_biases: bool,
    /// At most this many batches per epoch, when set (left out of the
    /// cache key when unset, so that older keys stay valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batches_per_epoch: Option<usize>,
}

impl FinetuneSpec {
    /// What the pass trains, as a result row records it.
    pub fn trains(&self) -> FinetuneTrains {
        FinetuneTrains::of(self.train_centres, self.train_biases)
    }
}

/// Compensated rounding (`rounding = "compensated"`): after the quantizer
/// chose its codebooks, the weights of every layer are rounded onto them
/// again in GPTQ's manner, each error compensated through the second
/// moment `X^T X` of the layer's inputs (`nq_quant::compensation`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CompensationSpec {
    /// Training examples whose layer inputs make `X^T X`.
    pub samples: usize,
    /// Added to the diagonal of `X^T X`, relative to its mean.
    pub damping: f64,
    /// GPTQ's act-order: the inputs of largest second moment first
    /// (`rounding = "compensated-act-order"`); left out of the cache key
    /// when unset, so that older keys stay valid.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub act_order: bool,
    /// GPTQ's sequential form: each layer's moment taken in the network
    /// whose earlier layers are already rounded
    /// (`rounding = "compensated-sequential"`); left out of the cache key
    /// when unset.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sequential: bool,
}

/// The `grid.rounding` names of compensated rounding, at index
/// `2 * sequential + act_order`.
pub const COMPENSATED_ROUNDINGS: [&str; 4] = [
    "compensated",
    "compensated-act-order",
    "compensated-sequential",
    "compensated-sequential-act-order",
];

impl CompensationSpec {
    /// The cell's `rounding` column and `grid.rounding` value.
    pub fn name(&self) -> &'static str {
        COMPENSATED_ROUNDINGS[2 * usize::from(self.sequential) + usize::from(self.act_order)]
    }
}

/// One cell: a complete recipe from baseline to result row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellSpec {
    /// Position in the grid's fixed order.
    pub index: usize,
    /// Readable name, unique in the grid, such as
    /// `s0.paper.kmeans.k16.hessian.layer.huffman.ft`.
    pub id: String,
    /// Seed of training and, without `quantizer_seed`, of the quantizer's
    /// draws.
    pub seed: u64,
    /// Pruning, if any.
    pub prune: Option<PruneSpec>,
    /// Importance, if any (`None`: all ones, or no quantization).
    pub weighting: Option<ImportanceSpec>,
    /// The quantizer.
    pub method: MethodSpec,
    /// Codebook scope (`None` without quantization).
    pub scope: Option<Scope>,
    /// Index coding (`None` without quantization).
    pub coding: Option<Coding>,
    /// Fine-tuning, if any.
    pub finetune: Option<FinetuneSpec>,
    /// Compensated rounding, if any (`None`: each weight to its nearest
    /// centre, as the quantizer left it).
    pub rounding: Option<CompensationSpec>,
    /// Seed of the quantizer's own draws (k-means++ centres, universal's
    /// dither); `None`: the training seed (`seed`), or a quantizer that
    /// draws nothing.
    pub quantizer_seed: Option<u64>,
}

impl CellSpec {
    /// The seed the quantizer draws with.
    pub fn quantizer_draws(&self) -> u64 {
        self.quantizer_seed.unwrap_or(self.seed)
    }
}

/// A validated grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    /// Its name.
    pub name: String,
    /// What it answers.
    pub description: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Network and data.
    pub model: ModelSpec,
    /// Baseline recipe.
    pub train: TrainSpec,
    /// The cells, in the grid's fixed order (without the points of the
    /// searches, which are known only as the searches go).
    pub cells: Vec<CellSpec>,
    /// The searches of `[search]`: one per method and setting.
    pub searches: Vec<SearchGroup>,
}

/// The search settings of a grid (`[search]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchSettings {
    /// A loss budget against the same network unquantized, or a rate.
    pub goal: SearchGoal,
    /// The range of `k`, for the methods that take one.
    pub k: Option<SearchSpace>,
    /// The range of `lambda`, for ECSQ.
    pub lambda: Option<SearchSpace>,
    /// The pruning setting (`"none"`: no pruning) whose unquantized network
    /// the budget counts from, for every search; `None`: each search's own
    /// pruning setting. One reference lets networks pruned in different
    /// ways be compared at one accuracy.
    pub reference: Option<String>,
}

/// One search: every axis but the seed and the searched parameter fixed.
/// Each point it tries is a cell per seed ([`SearchGroup::cell`]), cached
/// like any other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchGroup {
    /// Readable name, unique in the grid: the cells' id without the seed
    /// and the parameter (`paper.kmeans.hessian.global.huffman.ft`).
    pub id: String,
    /// The seeds each point is evaluated on; the score is their mean.
    pub seeds: Vec<u64>,
    /// A loss budget against the reference, or a rate.
    pub goal: SearchGoal,
    /// The pruning setting (`"none"`: no pruning) of the reference network;
    /// `None`: the template's own.
    pub reference: Option<String>,
    /// The parameter's range.
    pub space: SearchSpace,
    /// The cell of the first seed at the conservative end of the range;
    /// the other points differ only in seed and parameter.
    pub template: CellSpec,
}
