//! Experiment grids: TOML files whose `[grid]` lists are axes.
//!
//! [`load`] reads a grid file, refuses unknown keys and wrong types (serde
//! with `deny_unknown_fields`, [`raw`]), checks every value and turns the
//! file into validated settings and cells ([`spec`]) in a fixed order
//! ([`expand`]). Every error names the file, the line and the key, and says
//! what was expected. [`keys`] gives each stage of a cell a cache key that
//! hashes exactly its inputs.
//!
//! The schema, with every key (defaults in comments):
//!
//! ```toml
//! name = "ablation_global"
//! description = "what question this grid answers"
//!
//! [model]
//! arch = "lenet5"            # lenet5 | lenet-300-100 | resnet20 | resnet32 | resnet56 | alexnet | small-conv | vit | char-gpt | torchscript
//! dataset = "fashion-mnist"  # mnist | fashion-mnist | cifar10 | imagenet | shakespeare (char-gpt) | tensors
//! # data_dir = "/path"       # default: the dataset's default directory (tensors: required)
//! # train_examples = 5000    # only the first examples (quick runs)
//! # test_examples = 1000
//! # model_file = "net.pt"    # torchscript only: the module saved by torch.jit.script or
//!                            #   torch.jit.trace (its size and SHA-256 are part of the cache keys)
//! # tensors = '^(conv|fc)'   # torchscript only: a regex on the module's parameter names
//!                            #   (`fc1.weight`); default: every parameter of >= 2 dimensions
//!
//! [train]
//! epochs = 10                # torchscript: 0 uses the module as it came
//! optimizer = "adam"         # sgd | adam
//! lr = 1e-3
//! batch_size = 128
//! # momentum = 0.9           # sgd only
//! # weight_decay = 0.0
//! # schedule = "constant"    # constant | step | cosine
//! # step_every = 10          # step only
//! # step_gamma = 0.1         # step only
//! # max_batches_per_epoch = 100
//!
//! [prune.paper]              # any number of named settings
//! keep = 0.0855
//! retrain_epochs = 5
//! # scope = "layer"          # layer | global
//! # lr = the training lr / 10
//! # schedule = "one-shot"    # one-shot | gradual (Zhu and Gupta's cubic schedule)
//! # steps = 4                # gradual only: pruning steps, <= retrain_epochs
//! # criterion = "magnitude"  # magnitude | obd (saliency 1/2 h w^2, Gauss-Newton h)
//! # samples = 1000           # obd only: examples for the Gauss-Newton diagonal
//!
//! [importance.hessian]       # any number of named settings
//! estimator = "hutchinson"   # hutchinson | gauss-newton | gauss-newton-mc | exact | adam
//! # samples = 1000           # training examples (hessian estimators)
//! # probes = 1               # hutchinson only
//! # draws = 1                # gauss-newton-mc only: labels drawn per example
//! # source = "training"      # adam only: training | statistics
//!
//! [quantizer]                # optional
//! # kmeans_init = "kmeans++" # kmeans++ | linear | density
//! # max_iter = 1000          # kmeans; ecsq uses 100 unless set
//! # ecsq_k_init = 256
//! # uniform_centre = "weighted-mean"   # weighted-mean | mean | midpoint
//! # universal_centre = "midpoint"      # the same choices, for universal
//!
//! [soft_sharing]             # optional: soft-sharing's retraining (Ullrich et al. 2017;
//!                            # defaults from their tutorial but the epochs)
//! # epochs = 10              # retraining epochs under the mixture prior (Adam)
//! # lr = 5e-4                # the weights' learning rate (the training's schedule)
//! # components = 17          # mixture components, the zero component included
//! # pi_zero = 0.999          # the zero component's fixed mixing weight
//! # init_sigma = 0.25        # every component's starting standard deviation
//! # lr_means = 1e-4          # Adam's learning rates of the means,
//! # lr_precisions = 3e-3     # the log-precisions
//! # lr_mixing = 3e-3         # and the mixing logits
//! # zero_precision_prior = [5000.0, 2.0]  # Gamma [shape, rate] on the zero component's
//! # precision_prior = [250.0, 0.1]        # and on the others' precisions
//! # merge_kl = 0.01          # components closer than this symmetric KL are merged
//!
//! [compensation]             # optional: compensated rounding (rounding = "compensated")
//! # samples = 1024           # training examples whose layer inputs make X^T X
//! # damping = 0.01           # added to the diagonal of X^T X, relative to its mean
//!
//! [finetune]                 # needed when the finetune axis has true
//! epochs = 1
//! lr = 1e-4
//! # optimizer = "adam"
//! # center_grad = "mean"     # mean | sum
//! # train_centres = true    # false (with train_biases = false): a pass only re-estimates
//!                            # batch norm's running statistics, the control for fine-tuning
//! # train_biases = false
//! # max_batches_per_epoch = 100  # default: train.max_batches_per_epoch, else all
//!
//! [search]                 # optional: search the parameter instead of sweeping it
//! budget = 0.1               # how much worse than the network unquantized the mean over
//!                            # the seeds may be, in the dataset's metric: points of top-1,
//!                            # or bits per character for text (0.01, say); needs "none"
//!                            # in grid.method
//! # rate = 2.5               # instead of budget: the most aggressive point whose average
//!                            # codeword length (mean over the seeds) is at least this many
//!                            # bits per weight, and its neighbour below; the report
//!                            # compares methods and scopes at exactly this rate
//! # k = [2, 64]              # kmeans, kmeans-optimal, uniform, universal: k searched in
//!                            # [min, max] (max <= 65,536)
//! # lambda = [1e-5, 1e-2]    # ecsq, soft-sharing: lambda searched in [min, max]
//! # lambda_ratio = 1.25      # the lambda search ends when its bracket is this narrow
//! # widen = 1                # when k's max (lambda's min) misses the budget, try it doubled
//!                            # (halved) up to this factor: 4 tries k up to 4 max
//! # reference = "paper"      # count the budget from this pruning's network (one of
//!                            # grid.prune, or "none"), not from each search's own
//!
//! [grid]
//! seed = [0]
//! method = ["kmeans", "uniform", "ecsq"]  # also kmeans-optimal, universal (uniform on the
//!                            # weights plus a random dither shared through the seed,
//!                            # Choi et al. 2018), soft-sharing (retraining under a
//!                            # learned mixture prior, then each weight to its
//!                            # component's mean, Ullrich et al. 2017; one mixture over
//!                            # all layers, unweighted), and none (no quantization)
//! # prune = ["none"]         # "none" or names of [prune.*]
//! # weighting = ["none"]     # "none" or names of [importance.*]
//! # scope = ["layer"]        # layer | global
//! # k = [...]                # kmeans, kmeans-optimal, uniform, universal; each 1 to 65,536
//! # lambda = [...]           # ecsq; soft-sharing's prior weight tau
//! # coding = ["huffman"]     # huffman | fixed | context (adaptive, below 1 bit per weight)
//! # finetune = [false]
//! # rounding = ["nearest"]   # nearest | compensated (GPTQ-style, onto the same codebooks;
//!                            # kmeans, kmeans-optimal, uniform, ecsq; not for torchscript)
//!                            # | compensated-act-order (the same, inputs of largest
//!                            # second moment first: GPTQ's act-order)
//!                            # | compensated-sequential (each layer's inputs taken after
//!                            # the layers before it were rounded: GPTQ's sequential form)
//!                            # | compensated-sequential-act-order (both)
//! # quantizer_seed = [0, 1, 2]  # seeds of the quantizer's own draws (k-means++ centres,
//!                            # universal's dither) apart from the training seed, which
//!                            # they are by default; kmeans and universal only (the
//!                            # others draw nothing); not with [search]
//! ```
//!
//! Axes that do not apply to a method do not multiply its cells: `k` is not
//! an axis of `ecsq`, `lambda` only of `ecsq` and `soft-sharing`, weighting
//! and scope not of `soft-sharing` (unweighted, global), rounding not of
//! `universal` and `soft-sharing` (nearest only), quantizer seeds only of
//! `kmeans` and `universal`, and `method = "none"` (the pruned or baseline
//! network as is) takes only `seed` and `prune`.
//!
//! With `[search]`, a searched parameter is not an axis: for every other
//! combination of the axes but the seed (a [`spec::SearchGroup`]), the runner
//! bisects it ([`crate::search`]) for the most aggressive value whose task
//! metric (top-1, or bits per character for text; [`nq_catalog::Metric`]),
//! averaged over the seeds, is at most `budget` worse than the same network
//! unquantized (same seed and pruning, or the pruning named by
//! `search.reference`), and every point it tries becomes a cell per seed, a
//! row and a cached stage like any other. With `rate` instead of `budget`
//! the score is the mean average codeword length and the walk ends with the
//! target between its last passing and failing points, which the report
//! interpolates to compare settings at one rate (`nq_report::rate`).

mod convert;
mod expand;
pub mod keys;
mod raw;
mod spans;
pub mod spec;

use std::fmt;
use std::path::{Path, PathBuf};

pub use spec::Grid;

/// A mistake in a grid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridError {
    /// The grid file.
    pub file: PathBuf,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// The key, dotted (`grid.k`, `prune.paper.keep`).
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for GridError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for GridError {}

/// Reads and validates the grid file at `path`.
pub fn load(path: &Path) -> Result<Grid, GridError> {
    let source = std::fs::read_to_string(path).map_err(|e| GridError {
        file: path.to_owned(),
        line: None,
        key: String::new(),
        message: format!("cannot read the grid file: {e}"),
    })?;
    parse(&source, path)
}

/// Validates the grid in `source`, read from `path` (used in messages).
pub fn parse(source: &str, path: &Path) -> Result<Grid, GridError> {
    let spans = spans::KeySpans::new(source);
    let raw: raw::RawGrid = toml::from_str(source).map_err(|e| spans.toml_error(path, &e))?;
    let ctx = convert::Context {
        path,
        spans: &spans,
    };
    convert::grid(&ctx, raw)
}

#[cfg(test)]
mod tests;
