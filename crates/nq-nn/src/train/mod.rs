//! Training and evaluation: optimizers with readable state ([`Sgd`],
//! [`Adam`]), learning-rate [`Schedule`]s, a seeded training loop that keeps
//! pruned weights at exactly zero, and top-1 / top-5 accuracy with the mean
//! loss.
//!
//! Deterministic on the CPU for a fixed seed: the example order and the
//! augmentation come from a ChaCha8 generator seeded by (seed, epoch), and
//! the model is initialised from `tch::manual_seed` by the caller.

mod optim;
mod schedule;

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

pub use optim::{Adam, AdamState, Sgd};
pub use schedule::Schedule;

use crate::data::Source;
use crate::error::{ensure_setting, Result};
use crate::loss::{count, cross_entropy, cross_entropy_sum, predictions};
use crate::models::Model;
use crate::prune::Masks;

/// An optimizer over named parameters.
///
/// `step` reads each parameter's `.grad()` and updates the parameter in
/// place (under `no_grad`). State is kept per parameter name, so the same
/// optimizer can be handed the model's weights or, for fine-tuning, the
/// codebooks' centres.
pub trait Optimizer {
    /// One update of `params` at learning rate `lr`.
    fn step(&mut self, params: &[(String, Tensor)], lr: f64) -> Result<()>;
}

/// Which optimizer to build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// SGD with momentum.
    Sgd {
        /// Momentum in [0, 1).
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

/// A built optimizer of either kind.
#[derive(Debug)]
pub enum AnyOptimizer {
    /// SGD.
    Sgd(Sgd),
    /// Adam, whose state the Adam importance reads.
    Adam(Adam),
}

impl OptimizerConfig {
    /// A fresh optimizer.
    pub fn build(&self) -> Result<AnyOptimizer> {
        Ok(match *self {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
            } => AnyOptimizer::Sgd(Sgd::new(momentum, weight_decay, false)?),
            OptimizerConfig::Adam { weight_decay } => AnyOptimizer::Adam(Adam::new(weight_decay)?),
        })
    }
}

impl Optimizer for AnyOptimizer {
    fn step(&mut self, params: &[(String, Tensor)], lr: f64) -> Result<()> {
        match self {
            AnyOptimizer::Sgd(o) => o.step(params, lr),
            AnyOptimizer::Adam(o) => o.step(params, lr),
        }
    }
}

/// A training recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Epochs (>= 1).
    pub epochs: usize,
    /// Examples per batch (>= 1).
    pub batch_size: usize,
    /// Initial learning rate (> 0).
    pub lr: f64,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of the example order and the augmentation.
    pub seed: u64,
    /// At most this many batches per epoch, for quick runs.
    pub max_batches_per_epoch: Option<usize>,
    /// Torch CPU threads (`tch::set_num_threads`), when set.
    pub threads: Option<usize>,
}

impl TrainConfig {
    /// Checks every setting, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        ensure_setting(self.epochs >= 1, "epochs", || "expected at least 1".into())?;
        ensure_setting(self.batch_size >= 1, "batch_size", || {
            "expected at least 1".into()
        })?;
        ensure_setting(self.lr > 0.0 && self.lr.is_finite(), "lr", || {
            format!("expected a positive learning rate, got {}", self.lr)
        })?;
        ensure_setting(
            self.max_batches_per_epoch != Some(0),
            "max_batches_per_epoch",
            || "expected at least 1".into(),
        )?;
        ensure_setting(self.threads != Some(0), "threads", || {
            "expected at least 1".into()
        })?;
        self.schedule.validate()?;
        self.optimizer.build().map(|_| ())
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 0-based epoch.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss over its batches.
    pub loss: f64,
    /// Examples seen.
    pub examples: usize,
    /// Wall seconds.
    pub seconds: f64,
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// One entry per epoch.
    pub epochs: Vec<EpochReport>,
}

impl TrainReport {
    /// Total wall seconds.
    pub fn seconds(&self) -> f64 {
        self.epochs.iter().map(|e| e.seconds).sum()
    }
}

/// Zeroes the gradients of the trainable parameters.
fn zero_grads(params: &[(String, Tensor)]) {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

/// Multiplies the masked gradients by their masks, so that no optimizer
/// state builds up at pruned positions.
fn mask_grads(params: &[(String, Tensor)], masks: &Masks) {
    for (name, p) in params {
        if let Some(mask) = masks.by_name.get(name) {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_mul_(mask);
            }
        }
    }
}

/// Re-zeroes the pruned weights (weight decay and momentum cannot move them
/// once their gradients are masked, but this makes "exactly zero" hold
/// whatever the optimizer).
pub fn apply_masks(model: &Model, masks: &Masks) -> Result<()> {
    tch::no_grad(|| {
        for (name, mask) in &masks.by_name {
            let mut w = model.tensor(name)?;
            let _ = w.f_mul_(mask)?;
        }
        Ok(())
    })
}

/// A term added to every batch's training loss, with parameters of its own
/// that it updates itself (a learned prior over the weights, for
/// instance).
pub trait Penalty {
    /// The term for the model as it stands: a scalar whose graph reaches
    /// the model's parameters and the penalty's own.
    fn loss(&mut self, model: &Model) -> Result<Tensor>;
    /// Updates the penalty's own parameters from the gradients the last
    /// backward pass left them, then zeroes those gradients.
    fn step(&mut self) -> Result<()>;
}

/// Trains `model` on `data` with `config`, keeping the pruned weights of
/// `masks` at exactly zero; calls `on_epoch` after each epoch. Returns the
/// report and the optimizer, whose state (Adam's `v`) is readable.
pub fn train(
    model: &Model,
    data: &dyn Source,
    config: &TrainConfig,
    masks: Option<&Masks>,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<(TrainReport, AnyOptimizer)> {
    train_penalized(model, data, config, masks, None, on_epoch)
}

/// [`train`] with `penalty`'s term added to each batch's cross-entropy
/// (the epochs' losses are of the sum) and its parameters stepped after
/// the model's.
pub fn train_penalized(
    model: &Model,
    data: &dyn Source,
    config: &TrainConfig,
    masks: Option<&Masks>,
    mut penalty: Option<&mut dyn Penalty>,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<(TrainReport, AnyOptimizer)> {
    config.validate()?;
    if let Some(t) = config.threads {
        tch::set_num_threads(t as i32);
    }
    let params = model.trainable();
    let mut optimizer = config.optimizer.build()?;
    if let Some(m) = masks {
        apply_masks(model, m)?;
    }
    let device = model.device();
    let mut report = TrainReport { epochs: Vec::new() };
    for epoch in 0..config.epochs {
        let started = Instant::now();
        let lr = config.schedule.lr(config.lr, epoch, config.epochs);
        let mut rng = ChaCha8Rng::seed_from_u64(
            config
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(epoch as u64),
        );
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut rng);
        let batches = order.chunks(config.batch_size);
        let batches = batches.take(config.max_batches_per_epoch.unwrap_or(usize::MAX));
        let (mut loss_sum, mut examples, mut count) = (0.0, 0, 0);
        for batch in batches {
            let (x, y) = data.batch(batch, true, &mut rng)?;
            let (x, y) = (x.to_device(device), y.to_device(device));
            zero_grads(&params);
            let mut loss = cross_entropy(&model.forward_t(&x, true), &y);
            if let Some(p) = penalty.as_deref_mut() {
                loss += p.loss(model)?;
            }
            loss.backward();
            if let Some(m) = masks {
                mask_grads(&params, m);
            }
            optimizer.step(&params, lr)?;
            if let Some(p) = penalty.as_deref_mut() {
                p.step()?;
            }
            if let Some(m) = masks {
                apply_masks(model, m)?;
            }
            loss_sum += loss.double_value(&[]);
            examples += batch.len();
            count += 1;
        }
        let e = EpochReport {
            epoch,
            lr,
            loss: loss_sum / count.max(1) as f64,
            examples,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_epoch(&e);
        report.epochs.push(e);
    }
    zero_grads(&params);
    Ok((report, optimizer))
}

/// Accuracy and loss on a dataset, over its predictions: one per example
/// of a classifier, one per character of a language model (whose `top1` is
/// then the share of next characters predicted right).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eval {
    /// Share of predictions whose top logit is the label.
    pub top1: f64,
    /// Share whose label is among the 5 top logits (1.0 when there are at
    /// most 5 classes).
    pub top5: f64,
    /// Mean cross-entropy in nats.
    pub loss: f64,
    /// Predictions evaluated.
    pub examples: usize,
}

impl Eval {
    /// The mean cross-entropy in bits (per character, for a language
    /// model).
    pub fn bits(&self) -> f64 {
        self.loss / std::f64::consts::LN_2
    }
}

/// Evaluates `model` on every example of `data`, in batches.
pub fn evaluate(model: &Model, data: &dyn Source, batch_size: usize) -> Result<Eval> {
    ensure_setting(batch_size >= 1, "batch_size", || {
        "expected at least 1".into()
    })?;
    let device = model.device();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut top1, mut top5, mut loss, mut n) = (0i64, 0i64, 0.0, 0usize);
    let order: Vec<usize> = (0..data.len()).collect();
    tch::no_grad(|| -> Result<()> {
        for batch in order.chunks(batch_size) {
            let (x, y) = data.batch(batch, false, &mut rng)?;
            let (x, y) = (x.to_device(device), y.to_device(device));
            let (logits, y) = predictions(&model.forward_t(&x, false), &y);
            loss += cross_entropy_sum(&logits, &y).double_value(&[]);
            let (t1, t5) = correct(&logits, &y);
            top1 += t1;
            top5 += t5;
            n += count(&y);
        }
        Ok(())
    })?;
    let share = |c: i64| if n == 0 { 0.0 } else { c as f64 / n as f64 };
    Ok(Eval {
        top1: share(top1),
        top5: share(top5),
        loss: if n == 0 { 0.0 } else { loss / n as f64 },
        examples: n,
    })
}

/// Examples whose label is the top logit, and among the top 5.
fn correct(logits: &Tensor, labels: &Tensor) -> (i64, i64) {
    let classes = logits.size()[1];
    let top1 = logits
        .argmax(1, false)
        .eq_tensor(labels)
        .sum(Kind::Int64)
        .int64_value(&[]);
    let (_, idx) = logits.topk(classes.min(5), 1, true, true);
    let top5 = idx
        .eq_tensor(&labels.unsqueeze(1))
        .any_dim(1, false)
        .sum(Kind::Int64)
        .int64_value(&[]);
    (top1, top5)
}

#[cfg(test)]
pub(crate) mod tests;
