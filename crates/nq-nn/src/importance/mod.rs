//! Importance of each weight (paper.md section 3): the diagonal of the
//! Hessian of the training loss, estimated three ways, or the square root of
//! Adam's bias-corrected second moment.
//!
//! The loss is the mean cross-entropy over the first `samples` training
//! examples, so every estimate is of the Hessian of that mean:
//!
//! - [`hutchinson_diag`]: `diag(H) ~= mean over probes v of v * (H v)`
//!   with Rademacher `v` (Hutchinson 1990; Bekas, Kokiopoulou and Saad
//!   2007), `H v` by double backward. Unbiased; entries can be negative and
//!   are clamped at 0 for the weighting (the share clamped is reported).
//!   Cost: per batch one gradient with its graph, then one Hessian-vector
//!   product per probe.
//! - [`gauss_newton_diag`]: the exact diagonal of the generalised
//!   Gauss-Newton matrix `G = mean_n J_n^T H_n J_n`, batched as BackPACK's
//!   `DiagGGNExact` (one backward pass per class and batch), and its Monte
//!   Carlo estimate [`gauss_newton_mc_diag`] (one per sampled label and
//!   batch); see [`ggn`]. Never negative; the closest to LeCun's
//!   approximation that the paper used.
//! - [`exact_diag`]: one Hessian row per weight by double backward; for
//!   tiny networks and tests; [`hessian_block`] keeps the whole rows of one
//!   tensor or several (their off-diagonal and cross-tensor terms).
//! - [`adam_importance`]: `sqrt(v_hat)` from the Adam that trained the
//!   model, or [`adam_statistics`] for a model trained otherwise: Adam's
//!   moment recursion over one pass of training gradients, weights frozen.

use std::collections::BTreeMap;
use std::time::Instant;

use tch::{Kind, Tensor};

use crate::data::Source;
use crate::error::{ensure_setting, Result};
use crate::models::Model;
use crate::train::Adam;

mod block;
pub mod ggn;

pub use block::{gauss_newton_block, hessian_block};
pub use ggn::{gauss_newton_diag, gauss_newton_diag_per_example, gauss_newton_mc_diag};

/// What an estimate cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// Wall seconds.
    pub seconds: f64,
    /// Hessian-vector products.
    pub hessian_vector_products: u64,
    /// Backward passes (gradients), Hessian-vector products not included.
    pub backward_passes: u64,
}

/// One importance tensor per quantizable tensor, by name.
#[derive(Debug)]
pub struct Importance {
    /// Same shapes as the weights, all >= 0.
    pub by_name: BTreeMap<String, Tensor>,
    /// What it cost.
    pub cost: Cost,
    /// Share of entries that were negative and set to 0 (Hutchinson).
    pub clamped_share: f64,
}

/// The first `samples` examples of `data` in batches of `batch_size`.
pub fn first_batches(
    data: &dyn Source,
    samples: usize,
    batch_size: usize,
) -> Result<Vec<(Tensor, Tensor)>> {
    ensure_setting(samples >= 1, "samples", || "expected at least 1".into())?;
    ensure_setting(batch_size >= 1, "batch_size", || {
        "expected at least 1".into()
    })?;
    let n = samples.min(data.len());
    let indices: Vec<usize> = (0..n).collect();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    indices
        .chunks(batch_size)
        .map(|chunk| data.batch(chunk, false, &mut rng))
        .collect()
}

fn examples(batches: &[(Tensor, Tensor)]) -> f64 {
    batches
        .iter()
        .map(|(_, y)| crate::loss::count(y))
        .sum::<usize>() as f64
}

fn tensors(params: &[(String, Tensor)]) -> Vec<Tensor> {
    params.iter().map(|(_, p)| p.shallow_clone()).collect()
}

fn zeros_like_all(params: &[(String, Tensor)]) -> Vec<Tensor> {
    params
        .iter()
        .map(|(_, p)| p.detach().zeros_like())
        .collect()
}

/// Hutchinson's estimate of the Hessian diagonal of the mean loss over
/// `batches`, with `probes` Rademacher probes per batch drawn from `seed`.
pub fn hutchinson_diag(
    forward: &dyn Fn(&Tensor) -> Tensor,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
    probes: usize,
    seed: u64,
) -> Result<(Vec<Tensor>, Cost)> {
    ensure_setting(probes >= 1, "probes", || "expected at least 1".into())?;
    let started = Instant::now();
    let inputs = tensors(params);
    let total = examples(batches);
    let mut diag = zeros_like_all(params);
    let mut cost = Cost::default();
    tch::manual_seed(seed as i64);
    for (x, y) in batches {
        let loss = crate::loss::cross_entropy_sum(&forward(x), y) / total;
        let grads = Tensor::f_run_backward(&[&loss], &inputs, true, true)?;
        cost.backward_passes += 1;
        for _ in 0..probes {
            let v: Vec<Tensor> = inputs
                .iter()
                .map(|p| p.detach().zeros_like().bernoulli_float_(0.5) * 2.0 - 1.0)
                .collect();
            let gv = grads
                .iter()
                .zip(&v)
                .map(|(g, v)| (g * v).sum(Kind::Float))
                .fold(Tensor::zeros([], (Kind::Float, loss.device())), |a, b| {
                    a + b
                });
            let hv = Tensor::f_run_backward(&[&gv], &inputs, true, false)?;
            cost.hessian_vector_products += 1;
            tch::no_grad(|| {
                for ((d, v), hv) in diag.iter_mut().zip(&v).zip(&hv) {
                    *d += v * hv / probes as f64;
                }
            });
        }
    }
    cost.seconds = started.elapsed().as_secs_f64();
    Ok((diag, cost))
}

/// The exact Hessian diagonal of the mean loss over `batches`: one
/// double-backward pass per weight ([`block::hessian_rows`]).
pub fn exact_diag(
    forward: &dyn Fn(&Tensor) -> Tensor,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
) -> Result<(Vec<Tensor>, Cost)> {
    let inputs = tensors(params);
    let mut rows: Vec<Vec<f32>> = inputs.iter().map(|p| vec![0f32; p.numel()]).collect();
    let cost = block::hessian_rows(forward, &inputs, batches, false, |p, j, h| {
        rows[p][j] += h.double_value(&[j as i64]) as f32;
    })?;
    let diag = rows
        .iter()
        .zip(&inputs)
        .map(|(row, p)| {
            Tensor::from_slice(row)
                .view(p.size().as_slice())
                .to_device(p.device())
        })
        .collect();
    Ok((diag, cost))
}

/// Clamps at 0 and names the tensors; reports the share clamped.
fn finish(params: &[(String, Tensor)], diag: Vec<Tensor>, cost: Cost) -> Importance {
    let (mut negative, mut all) = (0i64, 0i64);
    let by_name = params
        .iter()
        .zip(diag)
        .map(|((name, _), d)| {
            negative += d.lt(0.0).sum(Kind::Int64).int64_value(&[]);
            all += d.numel() as i64;
            (name.clone(), d.clamp_min(0.0))
        })
        .collect();
    Importance {
        by_name,
        cost,
        clamped_share: if all == 0 {
            0.0
        } else {
            negative as f64 / all as f64
        },
    }
}

/// The quantizable tensors of `model`, named.
fn quantizable(model: &Model) -> Result<Vec<(String, Tensor)>> {
    model
        .quantizable()
        .iter()
        .map(|q| Ok((q.name.clone(), model.tensor(&q.name)?)))
        .collect()
}

/// The Hessian estimators on a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HessianEstimator {
    /// Hutchinson with this many probes per batch.
    Hutchinson {
        /// Probes per batch.
        probes: usize,
    },
    /// Exact generalised Gauss-Newton diagonal.
    GaussNewton,
    /// Monte Carlo Gauss-Newton diagonal with this many sampled labels per
    /// example.
    GaussNewtonMc {
        /// Labels drawn per example.
        draws: usize,
    },
    /// Exact Hessian diagonal (tiny nets only).
    Exact,
    /// Exact generalised Gauss-Newton diagonal by one backward pass per
    /// example and class (the slow reference of `GaussNewton`).
    GaussNewtonPerExample,
}

/// The Hessian-diagonal importance of `model`'s quantizable tensors over
/// the first `samples` examples of `data`.
pub fn hessian_importance(
    model: &Model,
    data: &dyn Source,
    estimator: HessianEstimator,
    samples: usize,
    batch_size: usize,
    seed: u64,
) -> Result<Importance> {
    let device = model.device();
    let batches: Vec<(Tensor, Tensor)> = first_batches(data, samples, batch_size)?
        .into_iter()
        .map(|(x, y)| (x.to_device(device), y.to_device(device)))
        .collect();
    let params = quantizable(model)?;
    let forward = |x: &Tensor| model.forward_t(x, false);
    let tapped = |x: &Tensor| model.forward_tapped(x);
    // a TorchScript module's layers cannot be tapped: the same exact
    // diagonal, one backward pass per example and class instead
    let estimator = match estimator {
        HessianEstimator::GaussNewton if !model.records_taps() => {
            HessianEstimator::GaussNewtonPerExample
        }
        HessianEstimator::GaussNewtonMc { .. } if !model.records_taps() => {
            return Err(crate::NnError::InvalidSetting {
                name: "estimator",
                reason: "the Monte Carlo Gauss-Newton diagonal needs the layers of a built-in \
                         network; use gauss-newton or hutchinson for a torchscript one"
                    .into(),
            })
        }
        e => e,
    };
    let (diag, cost) = match estimator {
        HessianEstimator::Hutchinson { probes } => {
            hutchinson_diag(&forward, &params, &batches, probes, seed)?
        }
        HessianEstimator::GaussNewton => gauss_newton_diag(&tapped, &params, &batches)?,
        HessianEstimator::GaussNewtonMc { draws } => {
            gauss_newton_mc_diag(&tapped, &params, &batches, draws, seed)?
        }
        HessianEstimator::Exact => exact_diag(&forward, &params, &batches)?,
        HessianEstimator::GaussNewtonPerExample => {
            gauss_newton_diag_per_example(&forward, &params, &batches)?
        }
    };
    for (_, p) in &params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    Ok(finish(&params, diag, cost))
}

/// `sqrt(v_hat)` of the quantizable tensors from the Adam that trained
/// `model`.
pub fn adam_importance(model: &Model, adam: &Adam) -> Result<Importance> {
    let params = quantizable(model)?;
    let diag = params
        .iter()
        .map(|(name, p)| {
            adam.sqrt_v_hat(name)
                .ok_or_else(|| crate::NnError::BadTensor {
                    name: name.clone(),
                    reason: "the optimizer never stepped it".into(),
                })
                .map(|v| v.to_device(p.device()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(finish(&params, diag, Cost::default()))
}

/// Adam's moment recursion over one pass of `data` (in batches, in order)
/// with the weights frozen: the Adam importance of a model trained by
/// another optimizer.
pub fn adam_statistics(model: &Model, data: &dyn Source, batch_size: usize) -> Result<Importance> {
    let started = Instant::now();
    let params = quantizable(model)?;
    let mut adam = Adam::new(0.0)?;
    let device = model.device();
    let mut cost = Cost::default();
    let inputs = tensors(&params);
    for (x, y) in first_batches(data, data.len(), batch_size)? {
        let loss = crate::loss::cross_entropy(
            &model.forward_t(&x.to_device(device), false),
            &y.to_device(device),
        );
        let grads = Tensor::f_run_backward(&[&loss], &inputs, false, false)?;
        cost.backward_passes += 1;
        for ((name, _), g) in params.iter().zip(&grads) {
            adam.accumulate(name, g);
        }
    }
    let mut imp = adam_importance(model, &adam)?;
    cost.seconds = started.elapsed().as_secs_f64();
    imp.cost = cost;
    Ok(imp)
}

#[cfg(test)]
mod tests;
