//! The prune stage: a trained baseline pruned by magnitude or by Optimal
//! Brain Damage saliency, at once or gradually, and retrained with its
//! masks held.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use nq_nn::importance::{hessian_importance, HessianEstimator};
use nq_nn::models::Model;
use nq_nn::prune::{gradual_keep, magnitude_masks_within, saliency_masks, Masks};
use nq_nn::train::{apply_masks, train, AnyOptimizer};
use tch::Device;

use nq_exp::grid::spec::{Grid, PruneCriterion, PruneSchedule, PruneSettings};

use super::stages::{
    epoch_logger, load_model, save_adam, save_tensors, train_config, Accuracy, Data, Log, Trained,
    MASKS_FILE, MODEL_FILE,
};

/// The masks of one pruning step keeping `keep`, among the survivors of
/// `previous`.
fn step_masks(
    model: &Model,
    settings: &PruneSettings,
    keep: f64,
    previous: &Masks,
    data: &Data,
    batch_size: usize,
    seed: u64,
) -> Result<Masks> {
    Ok(match settings.criterion {
        PruneCriterion::Magnitude => magnitude_masks_within(model, keep, settings.scope, previous)?,
        PruneCriterion::Obd { samples } => {
            let hessian = hessian_importance(
                model,
                data.train.as_ref(),
                HessianEstimator::GaussNewton,
                samples,
                batch_size,
                seed,
            )?;
            saliency_masks(
                model,
                &hessian.by_name,
                keep,
                settings.scope,
                Some(previous),
            )?
        }
    })
}

/// Prunes the baseline in `baseline_dir` and retrains it with the masks
/// held; saves network, masks and Adam's `sqrt(v_hat)` into `dir`.
///
/// One shot: the masks keeping `keep`, then `retrain_epochs` of
/// retraining. Gradual (`steps` steps): step `j` prunes to
/// [`gradual_keep`]`(keep, j, steps)` among the survivors so far and
/// retrains its share of the epochs (the remainder goes to the last steps),
/// each share with its own optimizer and learning-rate schedule. OBD
/// estimates the Gauss-Newton diagonal again at every step, on the network
/// as it stands.
#[allow(clippy::too_many_arguments)]
pub fn prune(
    grid: &Grid,
    settings: &PruneSettings,
    seed: u64,
    data: &Data,
    device: Device,
    baseline_dir: &Path,
    dir: &Path,
    log: Log<'_>,
) -> Result<Trained> {
    let started = Instant::now();
    let model = load_model(grid, data, device, baseline_dir)?;
    let steps = match settings.schedule {
        PruneSchedule::OneShot => 1,
        PruneSchedule::Gradual { steps } => steps,
    };
    // everything survives before the first step
    let mut masks = Masks::default();
    let mut epoch_losses = Vec::new();
    let mut last_optimizer: Option<AnyOptimizer> = None;
    for step in 1..=steps {
        let keep = gradual_keep(settings.keep, step, steps);
        masks = step_masks(
            &model,
            settings,
            keep,
            &masks,
            data,
            grid.train.batch_size,
            seed,
        )?;
        let (kept, all) = masks.counts();
        let epochs =
            settings.retrain_epochs * step / steps - settings.retrain_epochs * (step - 1) / steps;
        if steps > 1 {
            log(format!(
                "pruning step {step} of {steps}: {kept} of {all} weights kept ({:.2} %), \
                 {epochs} retraining epochs",
                100.0 * kept as f64 / all.max(1) as f64
            ));
        }
        if epochs == 0 {
            apply_masks(&model, &masks)?;
            continue;
        }
        let config = train_config(&grid.train, epochs, settings.lr, seed + step as u64 - 1);
        let (report, optimizer) = train(
            &model,
            data.train.as_ref(),
            &config,
            Some(&masks),
            &mut epoch_logger("retrain", config.epochs, log),
        )?;
        epoch_losses.extend(report.epochs.iter().map(|e| e.loss));
        last_optimizer = Some(optimizer);
    }
    if let Some(optimizer) = &last_optimizer {
        save_adam(&model, optimizer, dir)?;
    }
    let accuracy = Accuracy::of(&model, data.test.as_ref())?;
    model.save(&dir.join(MODEL_FILE))?;
    save_tensors(&masks.by_name, &dir.join(MASKS_FILE))?;
    Ok(Trained {
        accuracy,
        epoch_losses,
        seconds: started.elapsed().as_secs_f64(),
        kept: Some(masks.counts()),
    })
}
