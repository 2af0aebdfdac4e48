//! Soft weight-sharing as the quantize stage runs it: the network retrained
//! under the learned mixture prior, then every weight set to the mean of
//! its most responsible component, those of the zero component pruned
//! (`nq_nn::soft_sharing`).

use std::time::Instant;

use anyhow::Result;
use nq_nn::apply::Applied;
use nq_nn::models::Model;
use nq_nn::prune::Masks;
use nq_nn::soft_sharing::{quantize_to_mixture, retrain, GammaPrior, SoftSharingConfig};
use nq_nn::train::OptimizerConfig;
use nq_quant::soft_sharing::Mixture;
use serde::{Deserialize, Serialize};

use super::stages::{epoch_logger, train_config, Data, Log};
use nq_exp::grid::spec::{Grid, SoftSharingSettings};

/// What soft weight-sharing did, in the quantize stage's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftSharingRecord {
    /// The mixture as retraining left it, before merging.
    pub mixture: Mixture,
    /// Components left after merging, the zero component included.
    pub merged_components: usize,
    /// Weights kept (not in the zero component) and quantizable weights.
    pub kept: (u64, u64),
    /// Mean loss (cross-entropy plus the prior's term) of each retraining
    /// epoch.
    pub epoch_losses: Vec<f64>,
    /// Seconds of retraining.
    pub seconds_retrain: f64,
}

fn config(tau: f64, s: &SoftSharingSettings) -> SoftSharingConfig {
    let gamma = |[alpha, beta]: [f64; 2]| GammaPrior { alpha, beta };
    SoftSharingConfig {
        tau,
        components: s.components,
        pi_zero: s.pi_zero,
        init_sigma: s.init_sigma,
        lr_means: s.lr_means,
        lr_precisions: s.lr_precisions,
        lr_mixing: s.lr_mixing,
        zero_precision_prior: gamma(s.zero_precision_prior),
        precision_prior: gamma(s.precision_prior),
    }
}

/// Retrains `model` (the survivors of `masks`) under the mixture prior of
/// weight `tau` with Adam and the grid's batch size and schedule, then
/// quantizes it onto the merged mixture's means. Returns the quantization,
/// the masks after it and the record.
#[allow(clippy::too_many_arguments)]
pub fn soft_share(
    grid: &Grid,
    seed: u64,
    tau: f64,
    settings: &SoftSharingSettings,
    data: &Data,
    model: &Model,
    masks: Option<&Masks>,
    log: Log<'_>,
) -> Result<(Applied, Masks, SoftSharingRecord)> {
    let started = Instant::now();
    let mut train = train_config(&grid.train, settings.epochs, settings.lr, seed);
    train.optimizer = OptimizerConfig::Adam { weight_decay: 0.0 };
    let (report, _, mixture) = retrain(
        model,
        data.train.as_ref(),
        &train,
        masks,
        &config(tau, settings),
        &mut epoch_logger("soft-sharing retrain", settings.epochs, log),
    )?;
    let seconds_retrain = started.elapsed().as_secs_f64();
    let merged = mixture.merged(settings.merge_kl)?;
    let merged_components = merged.components.len();
    let (applied, masks) = quantize_to_mixture(model, masks, &merged)?;
    let kept = masks.counts();
    log(format!(
        "soft-sharing: {merged_components} of {} components after merging, {} of {} weights kept ({:.2} %)",
        mixture.components.len(),
        kept.0,
        kept.1,
        100.0 * kept.0 as f64 / kept.1.max(1) as f64
    ));
    Ok((
        applied,
        masks,
        SoftSharingRecord {
            mixture,
            merged_components,
            kept,
            epoch_losses: report.epochs.iter().map(|e| e.loss).collect(),
            seconds_retrain,
        },
    ))
}
