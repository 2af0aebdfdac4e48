//! Soft weight-sharing (Ullrich, Meeds and Welling 2017, "Soft
//! weight-sharing for neural network compression", ICLR; paper.md
//! section 10): retraining under a learned Gaussian-mixture prior over the
//! quantizable weights, then every weight set to the mean of the component
//! most responsible for it ([`nq_quant::soft_sharing`]), the weights of the
//! zero component pruned.
//!
//! The prior is `p(w) = prod_i sum_j pi_j N(w_i; mu_j, 1 / lambda_j)` over
//! the quantizable weights (pruned ones too, held at zero; biases stay
//! float and free). Component 0 has `mu_0 = 0` and a fixed `pi_0` (0.999); the
//! other means, all precisions `lambda_j` (as logarithms) and the other
//! mixing weights (as a softmax, sharing `1 - pi_0`) are learned, each with
//! its own Adam learning rate, and every precision has a Gamma hyper-prior
//! that keeps the components from collapsing onto single weights. Each
//! batch's loss is its mean cross-entropy plus
//! `tau / N (-log p(w) - log p(lambda))`, `N` the training examples, so
//! that `tau` weighs the prior against the whole data set's likelihood as
//! in the paper. The defaults are those of the authors' tutorial.

use std::collections::BTreeMap;

use nq_quant::method::Method;
use nq_quant::scope::Scope;
use nq_quant::soft_sharing::{Component, Mixture, SoftSharingParams};
use tch::{Device, Kind, Tensor};

use crate::apply::{extract, quantize_model, Applied};
use crate::data::Source;
use crate::error::{ensure_setting, NnError, Result};
use crate::models::Model;
use crate::prune::Masks;
use crate::train::{
    apply_masks, train_penalized, Adam, AnyOptimizer, EpochReport, Optimizer, Penalty, TrainConfig,
    TrainReport,
};

/// A Gamma(`alpha`, `beta`) hyper-prior on a precision (rate `beta`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaPrior {
    /// Shape (> 0).
    pub alpha: f64,
    /// Rate (> 0).
    pub beta: f64,
}

/// The prior's settings (the weights' own learning rate is the training
/// recipe's).
#[derive(Debug, Clone, PartialEq)]
pub struct SoftSharingConfig {
    /// Weight of the prior against the data (>= 0).
    pub tau: f64,
    /// Components, the zero component included (>= 2).
    pub components: usize,
    /// The zero component's fixed mixing weight, in (0, 1).
    pub pi_zero: f64,
    /// Every component's starting standard deviation.
    pub init_sigma: f64,
    /// Adam's learning rate for the means.
    pub lr_means: f64,
    /// Adam's learning rate for the log-precisions.
    pub lr_precisions: f64,
    /// Adam's learning rate for the mixing logits.
    pub lr_mixing: f64,
    /// Hyper-prior on the zero component's precision.
    pub zero_precision_prior: GammaPrior,
    /// Hyper-prior on every other precision.
    pub precision_prior: GammaPrior,
}

impl Default for SoftSharingConfig {
    /// Ullrich et al.'s tutorial: 17 components, `pi_0 = 0.999`, `sigma =
    /// 0.25` at the start, learning rates 1e-4 (means) and 3e-3
    /// (precisions, mixing), Gamma(5000, 2) on the zero component's
    /// precision and Gamma(250, 0.1) on the others', `tau = 0.005`.
    fn default() -> Self {
        Self {
            tau: 0.005,
            components: 17,
            pi_zero: 0.999,
            init_sigma: 0.25,
            lr_means: 1e-4,
            lr_precisions: 3e-3,
            lr_mixing: 3e-3,
            zero_precision_prior: GammaPrior {
                alpha: 5000.0,
                beta: 2.0,
            },
            precision_prior: GammaPrior {
                alpha: 250.0,
                beta: 0.1,
            },
        }
    }
}

impl SoftSharingConfig {
    /// Checks every setting, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        ensure_setting(self.tau >= 0.0 && self.tau.is_finite(), "tau", || {
            format!("expected a prior weight >= 0, got {}", self.tau)
        })?;
        ensure_setting(self.components >= 2, "components", || {
            format!("expected at least 2, got {}", self.components)
        })?;
        ensure_setting(self.pi_zero > 0.0 && self.pi_zero < 1.0, "pi_zero", || {
            format!("expected a mixing weight in (0, 1), got {}", self.pi_zero)
        })?;
        for (name, value) in [
            ("init_sigma", self.init_sigma),
            ("lr_means", self.lr_means),
            ("lr_precisions", self.lr_precisions),
            ("lr_mixing", self.lr_mixing),
        ] {
            ensure_setting(value > 0.0 && value.is_finite(), name, || {
                format!("expected a positive number, got {value}")
            })?;
        }
        for (name, g) in [
            ("zero_precision_prior", self.zero_precision_prior),
            ("precision_prior", self.precision_prior),
        ] {
            ensure_setting(
                g.alpha > 0.0 && g.beta > 0.0 && g.alpha.is_finite() && g.beta.is_finite(),
                name,
                || {
                    format!(
                        "expected a positive shape and rate, got {} and {}",
                        g.alpha, g.beta
                    )
                },
            )?;
        }
        Ok(())
    }
}

/// The learned mixture as a [`Penalty`] on the model's quantizable weights.
pub struct MixturePrior {
    /// Means of components 1.., learned.
    means: Tensor,
    /// `log lambda_j` of every component, the zero component first.
    log_precisions: Tensor,
    /// Logits of the mixing weights of components 1...
    logits: Tensor,
    /// `tau / N`.
    scale: f64,
    config: SoftSharingConfig,
    optimizer: Adam,
}

const LOG_2PI: f64 = 1.837_877_066_409_345_5;

/// Points of the table of [`MixturePrior::tabulated_negative_log_likelihood`].
pub const GRID_POINTS: i64 = 8192;

impl MixturePrior {
    /// A prior starting as `initial` (component 0 the zero component; its
    /// mixing weight is `config.pi_zero` whatever `initial` says) over the
    /// quantizable weights of a model trained on `examples` examples.
    pub fn new(
        initial: &Mixture,
        config: &SoftSharingConfig,
        examples: usize,
        device: Device,
    ) -> Result<Self> {
        config.validate()?;
        initial.validate()?;
        ensure_setting(examples >= 1, "examples", || "expected at least 1".into())?;
        let (zero, rest) = initial
            .components
            .split_first()
            .expect("validated: at least one component");
        ensure_setting(zero.mean == 0.0 && !rest.is_empty(), "components", || {
            "expected the zero component first and at least one other".into()
        })?;
        let rest_mixing: f64 = rest.iter().map(|c| c.mixing).sum();
        ensure_setting(rest_mixing > 0.0, "components", || {
            "the components other than zero have no mixing weight".into()
        })?;
        let vector = |v: Vec<f64>| {
            Tensor::from_slice(&v)
                .to_kind(Kind::Float)
                .to_device(device)
                .set_requires_grad(true)
        };
        Ok(Self {
            means: vector(rest.iter().map(|c| c.mean).collect()),
            log_precisions: vector(
                initial
                    .components
                    .iter()
                    .map(|c| -c.variance.ln())
                    .collect(),
            ),
            logits: vector(rest.iter().map(|c| (c.mixing / rest_mixing).ln()).collect()),
            scale: config.tau / examples as f64,
            config: config.clone(),
            optimizer: Adam::new(0.0)?,
        })
    }

    /// `log pi_j` of every component.
    fn log_mixing(&self) -> Tensor {
        let zero =
            Tensor::from_slice(&[self.config.pi_zero.ln() as f32]).to_device(self.means.device());
        let rest = self.logits.log_softmax(0, Kind::Float) + (1.0 - self.config.pi_zero).ln();
        Tensor::cat(&[zero, rest], 0)
    }

    /// Every component's mean, the zero component's first.
    fn all_means(&self) -> Tensor {
        let zero = Tensor::zeros([1], (Kind::Float, self.means.device()));
        Tensor::cat(&[zero, self.means.shallow_clone()], 0)
    }

    /// `-sum_i log p(w_i)` of the flat weights `w`, by log-sum-exp over the
    /// components.
    pub fn negative_log_likelihood(&self, w: &Tensor) -> Tensor {
        -self.joint(w).logsumexp([1], false).sum(Kind::Float)
    }

    /// [`Self::negative_log_likelihood`] in `O(N + G J)` rather than
    /// `O(N J)` for `N` weights and `J` components: `f = -log p` and its
    /// derivative are tabulated on `G` = [`GRID_POINTS`] points spanning
    /// the weights; each weight's gradient is `f'` interpolated linearly at
    /// it, and the value and the mixture's gradients are those of
    /// `sum_k c_k f(x_k)`, `c` the weights' histogram with linear
    /// interpolation weights (both exact up to the interpolation error,
    /// `O(h^2 / sigma^2)` relative for a grid step `h`). Per retraining
    /// step on LeNet-5's 430,000 weights this is what makes the prior cheap
    /// next to the network's own pass.
    pub fn tabulated_negative_log_likelihood(&self, w: &Tensor) -> Tensor {
        let device = w.device();
        let detached = w.detach();
        let lo = detached.min().double_value(&[]);
        let hi = detached.max().double_value(&[]);
        let step = (hi - lo).max(1e-6) / (GRID_POINTS - 1) as f64;
        let x = Tensor::arange(GRID_POINTS, (Kind::Float, device)) * step + lo;
        let joint = self.joint(&x);
        let f = -joint.logsumexp([1], false);
        let slope = tch::no_grad(|| {
            let diff = x.unsqueeze(1) - self.all_means().unsqueeze(0);
            (joint.softmax(1, Kind::Float) * self.log_precisions.exp() * diff).sum_dim_intlist(
                &[1i64][..],
                false,
                Kind::Float,
            )
        });
        let at = (&detached - lo) / step;
        let below = at.floor().clamp(0.0, (GRID_POINTS - 2) as f64);
        let frac = (&at - &below).clamp(0.0, 1.0);
        let below = below.to_kind(Kind::Int64);
        let above = &below + 1;
        let rest: Tensor = -&frac + 1.0;
        let gradient: Tensor =
            slope.gather(0, &below, false) * &rest + slope.gather(0, &above, false) * &frac;
        let counts = Tensor::zeros([GRID_POINTS], (Kind::Float, device))
            .index_add(0, &below, &rest)
            .index_add(0, &above, &frac);
        let surrogate = (gradient * w).sum(Kind::Float);
        (counts * f).sum(Kind::Float) + &surrogate - surrogate.detach()
    }

    /// `log pi_j + log N(x; mu_j, 1 / lambda_j)` for every point of `x`
    /// (rows) and component (columns).
    fn joint(&self, x: &Tensor) -> Tensor {
        let diff = x.unsqueeze(1) - self.all_means().unsqueeze(0);
        let log_normal = (&self.log_precisions - LOG_2PI) * 0.5
            - diff.square() * self.log_precisions.exp() * 0.5;
        log_normal + self.log_mixing().unsqueeze(0)
    }

    /// `-log p(lambda)` of the precisions under their Gamma hyper-priors,
    /// up to a constant: `-(alpha - 1) log lambda + beta lambda`.
    fn negative_log_hyperprior(&self) -> Tensor {
        let device = self.means.device();
        let j = self.log_precisions.size()[0];
        let mut alpha = vec![self.config.precision_prior.alpha as f32; j as usize];
        let mut beta = vec![self.config.precision_prior.beta as f32; j as usize];
        alpha[0] = self.config.zero_precision_prior.alpha as f32;
        beta[0] = self.config.zero_precision_prior.beta as f32;
        let alpha = Tensor::from_slice(&alpha).to_device(device);
        let beta = Tensor::from_slice(&beta).to_device(device);
        (-(alpha - 1.0) * &self.log_precisions + beta * self.log_precisions.exp()).sum(Kind::Float)
    }

    /// The model's quantizable weights, flat. Pruned weights are among
    /// them: they are the zero component's, as in a network that the prior
    /// pruned itself, so that `pi_0` means the same share either way.
    fn weights(&self, model: &Model) -> Result<Tensor> {
        let parts = model
            .quantizable()
            .iter()
            .map(|q| Ok(model.tensor(&q.name)?.flatten(0, -1)))
            .collect::<Result<Vec<Tensor>>>()?;
        Ok(Tensor::cat(&parts, 0))
    }

    /// The mixture as it stands, component 0 the zero component.
    pub fn mixture(&self) -> Result<Mixture> {
        let values = |t: &Tensor| -> Result<Vec<f64>> {
            Ok(Vec::<f64>::try_from(
                t.detach().to_kind(Kind::Double).to_device(Device::Cpu),
            )?)
        };
        let means = values(&self.all_means())?;
        let log_precisions = values(&self.log_precisions)?;
        let log_mixing = values(&self.log_mixing())?;
        let mixture = Mixture {
            components: (0..means.len())
                .map(|j| Component {
                    mean: means[j],
                    variance: (-log_precisions[j]).exp(),
                    mixing: log_mixing[j].exp(),
                })
                .collect(),
        };
        mixture.validate().map_err(|e| NnError::BadTensor {
            name: "soft-sharing mixture".into(),
            reason: format!("retraining left it unusable: {e}"),
        })?;
        Ok(mixture)
    }
}

impl Penalty for MixturePrior {
    fn loss(&mut self, model: &Model) -> Result<Tensor> {
        let w = self.weights(model)?;
        Ok(
            (self.tabulated_negative_log_likelihood(&w) + self.negative_log_hyperprior())
                * self.scale,
        )
    }

    fn step(&mut self) -> Result<()> {
        for (name, tensor, lr) in [
            ("means", &self.means, self.config.lr_means),
            (
                "log_precisions",
                &self.log_precisions,
                self.config.lr_precisions,
            ),
            ("logits", &self.logits, self.config.lr_mixing),
        ] {
            self.optimizer
                .step(&[(name.to_owned(), tensor.shallow_clone())], lr)?;
            let mut g = tensor.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        Ok(())
    }
}

/// Retrains `model` under a mixture prior started by Ullrich et al.'s rule
/// ([`Mixture::initial`] on the quantizable weights), with the training
/// recipe `train` (its learning rate is the weights'), keeping the pruned
/// weights of `masks` at zero (they count under the prior, in the zero
/// component). Returns the report, the optimizer
/// and the learned mixture.
pub fn retrain(
    model: &Model,
    data: &dyn Source,
    train: &TrainConfig,
    masks: Option<&Masks>,
    config: &SoftSharingConfig,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<(TrainReport, AnyOptimizer, Mixture)> {
    config.validate()?;
    let weights: Vec<f32> = extract(model, None, None)?
        .into_iter()
        .flat_map(|e| e.values)
        .collect();
    let initial = Mixture::initial(
        &weights,
        config.components,
        config.pi_zero,
        config.init_sigma,
    )?;
    let mut prior = MixturePrior::new(&initial, config, data.len(), model.device())?;
    let (report, optimizer) =
        train_penalized(model, data, train, masks, Some(&mut prior), on_epoch)?;
    Ok((report, optimizer, prior.mixture()?))
}

/// Sets each quantizable weight of `model` (the survivors of `masks`) to
/// the mean of its most responsible component of `merged` (the learned
/// mixture after [`Mixture::merged`]); the weights of the zero component
/// (component 0) become pruned, except that every tensor keeps at least
/// its largest weight (as pruning keeps one). Returns the quantization of
/// the survivors (all layers on one codebook, the nonzero means) and the
/// new masks.
pub fn quantize_to_mixture(
    model: &Model,
    masks: Option<&Masks>,
    merged: &Mixture,
) -> Result<(Applied, Masks)> {
    merged.validate()?;
    ensure_setting(
        merged.components.len() >= 2 && merged.components[0].mean == 0.0,
        "components",
        || "expected the zero component first and at least one other".into(),
    )?;
    let device = model.device();
    let mut by_name = BTreeMap::new();
    for e in extract(model, masks, None)? {
        let mut flags = vec![0f32; e.numel() as usize];
        let position = |i: usize| e.survivors.as_ref().map_or(i, |s| s[i] as usize);
        let mut kept = 0;
        for (i, &w) in e.values.iter().enumerate() {
            if merged.component_of(f64::from(w)) != 0 {
                flags[position(i)] = 1.0;
                kept += 1;
            }
        }
        // as pruning does, every tensor keeps a weight: its largest
        if kept == 0 {
            if let Some(i) = (0..e.values.len()).max_by(|&a, &b| {
                e.values[a]
                    .abs()
                    .total_cmp(&e.values[b].abs())
                    .then(b.cmp(&a))
            }) {
                flags[position(i)] = 1.0;
            }
        }
        let mask = Tensor::from_slice(&flags)
            .view(e.shape.as_slice())
            .to_device(device);
        by_name.insert(e.name, mask);
    }
    let new_masks = Masks { by_name };
    apply_masks(model, &new_masks)?;
    // among the other components the most responsible one is the same
    let others = SoftSharingParams {
        mixture: Mixture {
            components: merged.components[1..].to_vec(),
        },
    };
    let applied = quantize_model(
        model,
        Some(&new_masks),
        None,
        &Method::SoftSharing(others),
        Scope::Global,
    )?;
    Ok((applied, new_masks))
}

#[cfg(test)]
mod tests;
