//! Cache keys: each stage of a cell is stored under a hash of exactly its
//! inputs, chained through the stage before it, so that two cells sharing a
//! baseline (or a pruned network, or an importance) share its file, a
//! change of any input changes every key downstream of it, and nothing
//! else (a name, a description, another cell, the order of the grid) does.
//!
//! A key is the first 20 hex digits of the SHA-256 of a JSON document
//! holding [`CACHE_VERSION`], the stage name, the parent key and the
//! stage's settings.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::spec::{CellSpec, EstimatorSpec, Grid, ModelSpec, TrainSpec};

/// Bumped when a stage's meaning changes, so that old caches are not
/// reused by mistake.
pub const CACHE_VERSION: u32 = 1;

/// The revision of an estimator's computation, part of the importance key
/// when above 1: bumped when its values change (not bit for bit equal),
/// so that importances cached by the old code are not taken for the new.
/// 2 for `gauss-newton`: batched (one backward pass per Cholesky column and
/// batch) where revision 1 summed per example and class.
fn estimator_revision(estimator: &EstimatorSpec) -> u32 {
    match estimator {
        EstimatorSpec::GaussNewton { .. } => 2,
        _ => 1,
    }
}

/// What the importance key hashes: the estimator's settings and, from
/// revision 2 on, its revision (absent at 1, so that those keys are as
/// they always were).
#[derive(Serialize)]
struct ImportanceSettings<'a> {
    #[serde(flatten)]
    estimator: &'a EstimatorSpec,
    #[serde(skip_serializing_if = "is_first_revision")]
    revision: u32,
}

fn is_first_revision(revision: &u32) -> bool {
    *revision == 1
}

/// The revision of the result stage's files, part of its key, so that
/// files cached by older code are made again (the network and the row's
/// accuracy do not change): 2 since the `.nqz` carries metadata
/// (architecture, input normalisation, the cell), 3 since a pruned network
/// kept in float32 stores only its survivors and their positions.
const RESULT_REVISION: u32 = 3;

/// What the result key hashes: the index coding and the stage's revision.
#[derive(Serialize)]
struct ResultSettings<'a> {
    coding: &'a Option<nq_quant::huffman::Coding>,
    revision: u32,
}

/// The keys of the stages of one cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellKeys {
    /// The trained baseline.
    pub baseline: String,
    /// The network that is quantized: the pruned and retrained one, or the
    /// baseline when there is no pruning.
    pub network: String,
    /// The importance of its weights, when the cell has a weighting.
    pub importance: Option<String>,
    /// The quantized (and fine-tuned) network.
    pub quantized: String,
    /// Its packed file and result row: the quantized network under one
    /// index coding (the coding changes the file, not the network, so
    /// cells differing only in it share the quantized network).
    pub result: String,
}

/// A quantizer seed apart from the training seed, named in the key.
#[derive(Serialize)]
struct QuantizerSeed {
    quantizer_seed: u64,
}

fn digest(stage: &str, parent: Option<&str>, settings: &impl Serialize) -> String {
    #[derive(Serialize)]
    struct Input<'a, T> {
        version: u32,
        stage: &'a str,
        parent: Option<&'a str>,
        settings: &'a T,
    }
    let json = serde_json::to_vec(&Input {
        version: CACHE_VERSION,
        stage,
        parent,
        settings,
    })
    .expect("grid settings serialise to JSON");
    let hash = Sha256::digest(&json);
    hash.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

/// The key of a trained baseline.
pub fn baseline_key(model: &ModelSpec, train: &TrainSpec, seed: u64) -> String {
    digest("baseline", None, &(model, train, seed))
}

/// The keys of every stage of `cell`.
pub fn cell_keys(grid: &Grid, cell: &CellSpec) -> CellKeys {
    let baseline = baseline_key(&grid.model, &grid.train, cell.seed);
    let network = match &cell.prune {
        Some(p) => digest("prune", Some(&baseline), &p.settings),
        None => baseline.clone(),
    };
    let importance = cell.weighting.as_ref().map(|w| {
        let settings = ImportanceSettings {
            estimator: &w.estimator,
            revision: estimator_revision(&w.estimator),
        };
        digest("importance", Some(&network), &settings)
    });
    let parent = importance.as_deref().unwrap_or(&network);
    // compensated rounding and a quantizer seed of its own join the
    // settings only where they are used, so that the keys of nearest
    // rounding with the training seed are as they always were
    let (method, scope, finetune) = (&cell.method, cell.scope, &cell.finetune);
    let seed = cell
        .quantizer_seed
        .map(|quantizer_seed| QuantizerSeed { quantizer_seed });
    let quantized = match (&cell.rounding, seed) {
        (None, None) => digest("quantize", Some(parent), &(method, scope, finetune)),
        (Some(r), None) => digest("quantize", Some(parent), &(method, scope, finetune, r)),
        (None, Some(q)) => digest("quantize", Some(parent), &(method, scope, finetune, q)),
        (Some(r), Some(q)) => digest("quantize", Some(parent), &(method, scope, finetune, r, q)),
    };
    let result = digest(
        "result",
        Some(&quantized),
        &ResultSettings {
            coding: &cell.coding,
            revision: RESULT_REVISION,
        },
    );
    CellKeys {
        baseline,
        network,
        importance,
        quantized,
        result,
    }
}
