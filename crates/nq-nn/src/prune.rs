//! Pruning: keep the best-scoring share of the quantizable weights, per
//! layer or over all of them, and the masks that keep the others at zero
//! through retraining and fine-tuning. Scores: magnitude (Han, Pool, Tran
//! and Dally 2015) or Optimal Brain Damage saliency `1/2 h w^2` (LeCun,
//! Denker and Solla 1990); at once, or gradually over retraining on Zhu and
//! Gupta's cubic schedule ([`gradual_keep`]).
//!
//! Exactly `round(keep * n)` weights survive (at least one per tensor):
//! weights are ranked by score, ties broken by position (tensor order,
//! then flattened index), so the result does not depend on the sort.

use std::collections::BTreeMap;

use nq_quant::scope::Scope;
use tch::{Kind, Tensor};

use crate::error::{ensure_setting, Result};
use crate::models::Model;

/// Per pruned tensor (by name), a mask of the same shape: 1 where the weight
/// survives, 0 where it was pruned.
#[derive(Debug, Default)]
pub struct Masks {
    /// Masks by tensor name.
    pub by_name: BTreeMap<String, Tensor>,
}

impl Masks {
    /// Flattened positions of the survivors of `name`, increasing; `None`
    /// when the tensor is not pruned.
    pub fn survivors(&self, name: &str) -> Option<Vec<u64>> {
        let mask = self.by_name.get(name)?;
        let flags = Vec::<f32>::try_from(mask.flatten(0, -1).to_device(tch::Device::Cpu)).ok()?;
        Some(
            flags
                .iter()
                .enumerate()
                .filter(|(_, &f)| f != 0.0)
                .map(|(i, _)| i as u64)
                .collect(),
        )
    }

    /// Weights kept and weights masked in all.
    pub fn counts(&self) -> (u64, u64) {
        self.by_name.values().fold((0, 0), |(kept, all), m| {
            let k = m.sum(Kind::Float).double_value(&[]) as u64;
            (kept + k, all + m.numel() as u64)
        })
    }
}

/// The magnitude masks of the quantizable tensors of `model` keeping the
/// share `keep` (in (0, 1]) of the weights, per tensor (`Layer`) or overall
/// (`Global`). The model is not changed: see
/// [`apply_masks`](crate::train::apply_masks).
pub fn magnitude_masks(model: &Model, keep: f64, scope: Scope) -> Result<Masks> {
    let scores = scores_of(model, None, |w| w.abs())?;
    masks_by_score(model, scores, keep, scope, None)
}

/// The masks that keep the share `keep` of the weights by their saliency
/// in Optimal Brain Damage (LeCun, Denker and Solla 1990): the loss increase
/// `1/2 h w^2` that removing a weight alone would cause, `h` the diagonal
/// of the Hessian (or Gauss-Newton matrix) by tensor name. With a global
/// scope the layers' keep ratios follow from the saliencies rather than
/// from one magnitude threshold. Weights outside `previous` (when given)
/// stay pruned.
pub fn saliency_masks(
    model: &Model,
    hessian: &BTreeMap<String, Tensor>,
    keep: f64,
    scope: Scope,
    previous: Option<&Masks>,
) -> Result<Masks> {
    let scores = scores_of(model, Some(hessian), |w| w.square())?;
    masks_by_score(model, scores, keep, scope, previous)
}

/// [`magnitude_masks`] among the survivors of `previous`: a step of
/// gradual pruning.
pub fn magnitude_masks_within(
    model: &Model,
    keep: f64,
    scope: Scope,
    previous: &Masks,
) -> Result<Masks> {
    let scores = scores_of(model, None, |w| w.abs())?;
    masks_by_score(model, scores, keep, scope, Some(previous))
}

/// The share of weights kept after step `step` of `steps` of gradual
/// pruning towards `keep` (Zhu and Gupta 2017, "To prune, or not to
/// prune", equation 1): `keep + (1 - keep) (1 - step / steps)^3`, so that
/// most weights go early, while many are left to absorb the loss, and the
/// last steps remove few.
pub fn gradual_keep(keep: f64, step: usize, steps: usize) -> f64 {
    let left = 1.0 - step.min(steps) as f64 / steps.max(1) as f64;
    keep + (1.0 - keep) * left.powi(3)
}

/// Per quantizable tensor: name, shape and the score of each weight,
/// `weight_term(w)`, times `h` when given (halved: OBD's `1/2 h w^2`).
type Scores = Vec<(String, Vec<i64>, Vec<f32>)>;

fn scores_of(
    model: &Model,
    hessian: Option<&BTreeMap<String, Tensor>>,
    weight_term: impl Fn(&Tensor) -> Tensor,
) -> Result<Scores> {
    let mut scores = Vec::new();
    for q in model.quantizable() {
        let w = model.tensor(&q.name)?.detach();
        let mut score = weight_term(&w);
        if let Some(h) = hessian {
            let h = h.get(&q.name).ok_or_else(|| crate::NnError::BadTensor {
                name: q.name.clone(),
                reason: "no Hessian diagonal for it".into(),
            })?;
            score = score * h.to_device(w.device()) * 0.5;
        }
        let flat = Vec::<f32>::try_from(score.flatten(0, -1).to_device(tch::Device::Cpu))?;
        if let Some(i) = flat.iter().position(|v| v.is_nan()) {
            return Err(crate::NnError::BadTensor {
                name: q.name.clone(),
                reason: format!("its pruning score at {i} is NaN"),
            });
        }
        scores.push((q.name.clone(), w.size(), flat));
    }
    Ok(scores)
}

/// Keeps the `round(keep * n)` best-scoring weights (at least one per
/// tensor), per tensor or over all; weights that `previous` pruned score
/// below every other.
fn masks_by_score(
    model: &Model,
    mut scores: Scores,
    keep: f64,
    scope: Scope,
    previous: Option<&Masks>,
) -> Result<Masks> {
    ensure_setting(keep > 0.0 && keep <= 1.0, "keep", || {
        format!("expected a share of weights kept in (0, 1], got {keep}")
    })?;
    if let Some(previous) = previous {
        for (name, _, score) in &mut scores {
            if let Some(kept) = previous.survivors(name) {
                let mut alive = vec![false; score.len()];
                for i in kept {
                    alive[i as usize] = true;
                }
                for (s, alive) in score.iter_mut().zip(alive) {
                    if !alive {
                        *s = f32::NEG_INFINITY;
                    }
                }
            }
        }
    }
    let mut flags: Vec<Vec<f32>> = scores.iter().map(|(_, _, m)| vec![0.0; m.len()]).collect();
    let mut keep_top =
        |entries: Vec<(usize, usize)>, values: &dyn Fn(usize, usize) -> f32, n: usize| {
            let count = ((keep * n as f64).round() as usize).clamp(1, n.max(1));
            let mut entries = entries;
            // largest first; equal scores by position
            entries.sort_by(|&(ta, ia), &(tb, ib)| {
                values(tb, ib)
                    .total_cmp(&values(ta, ia))
                    .then((ta, ia).cmp(&(tb, ib)))
            });
            for &(t, i) in entries.iter().take(count) {
                flags[t][i] = 1.0;
            }
        };
    let value = |t: usize, i: usize| scores[t].2[i];
    match scope {
        Scope::Layer => {
            for (t, (_, _, m)) in scores.iter().enumerate() {
                keep_top((0..m.len()).map(|i| (t, i)).collect(), &value, m.len());
            }
        }
        Scope::Global => {
            let all: Vec<(usize, usize)> = scores
                .iter()
                .enumerate()
                .flat_map(|(t, (_, _, m))| (0..m.len()).map(move |i| (t, i)))
                .collect();
            let n = all.len();
            keep_top(all, &value, n);
        }
    }
    let device = model.device();
    let by_name = scores
        .into_iter()
        .zip(flags)
        .map(|((name, shape, _), f)| {
            (
                name,
                Tensor::from_slice(&f)
                    .view(shape.as_slice())
                    .to_device(device),
            )
        })
        .collect();
    Ok(Masks { by_name })
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use super::*;
    use crate::models::{Arch, InputSpec};

    fn model_with(values: &[(&str, &[f32])]) -> Model {
        tch::manual_seed(0);
        let m = Model::new(
            Arch::SmallConv,
            InputSpec {
                image: [1, 8, 8],
                classes: 2,
            },
            Device::Cpu,
        )
        .unwrap();
        tch::no_grad(|| {
            for (name, v) in values {
                let mut w = m.tensor(name).unwrap();
                let n = w.numel();
                let mut full = vec![0.0f32; n];
                full[..v.len()].copy_from_slice(v);
                w.copy_(&Tensor::from_slice(&full).view(w.size().as_slice()));
            }
        });
        m
    }

    #[test]
    fn per_layer_and_global_by_hand() {
        // conv1 has 72 weights, first five set, rest 0; fc has 512
        let m = model_with(&[
            ("conv1.weight", &[0.5, -3.0, 0.1, 2.0, -0.2]),
            ("conv2.weight", &[9.0]),
            ("fc.weight", &[-1.0, 0.05, 4.0]),
        ]);
        let layer = magnitude_masks(&m, 3.0 / 72.0, Scope::Layer).unwrap();
        // the three largest of conv1: -3, 2 and 0.5, in position order
        assert_eq!(layer.survivors("conv1.weight").unwrap(), vec![0, 1, 3]);
        // global, keeping 4 of all 72 + 1152 + 512 weights: 9 (conv2),
        // 4 (fc), -3 and 2 (conv1)
        let n = 72 + 1152 + 512;
        let global = magnitude_masks(&m, 4.0 / n as f64, Scope::Global).unwrap();
        assert_eq!(global.survivors("conv1.weight").unwrap(), vec![1, 3]);
        assert_eq!(global.survivors("conv2.weight").unwrap(), vec![0]);
        assert_eq!(global.survivors("fc.weight").unwrap(), vec![2]);
        assert_eq!(global.counts(), (4, n as u64));
    }

    #[test]
    fn obd_saliency_by_hand_and_previous_masks_hold() {
        // fc: weights 1, -2, 3, 0.5 with h 10, 1, 0.1, 100: saliencies
        // 5, 2, 0.45, 12.5 -> keeping 2 keeps positions 3 and 0 (magnitude
        // would keep 2 and 1)
        let m = model_with(&[("fc.weight", &[1.0, -2.0, 3.0, 0.5])]);
        let hessian: BTreeMap<String, Tensor> = m
            .quantizable()
            .iter()
            .map(|q| {
                let w = m.tensor(&q.name).unwrap();
                let mut h = vec![0f32; w.numel()];
                if q.name == "fc.weight" {
                    h[..4].copy_from_slice(&[10.0, 1.0, 0.1, 100.0]);
                }
                (
                    q.name.clone(),
                    Tensor::from_slice(&h).view(w.size().as_slice()),
                )
            })
            .collect();
        let keep = 2.0 / 512.0;
        let obd = saliency_masks(&m, &hessian, keep, Scope::Layer, None).unwrap();
        assert_eq!(obd.survivors("fc.weight").unwrap(), vec![0, 3]);
        let magnitude = magnitude_masks(&m, keep, Scope::Layer).unwrap();
        assert_eq!(magnitude.survivors("fc.weight").unwrap(), vec![1, 2]);
        // a weight pruned before stays pruned, however it scores now
        let within = magnitude_masks_within(&m, keep, Scope::Layer, &obd).unwrap();
        assert_eq!(within.survivors("fc.weight").unwrap(), vec![0, 3]);
        let mut missing = hessian;
        missing.remove("fc.weight");
        let err = saliency_masks(&m, &missing, keep, Scope::Layer, None).unwrap_err();
        assert!(err.to_string().contains("fc.weight"), "{err}");
    }

    #[test]
    fn the_cubic_schedule_by_hand() {
        // keep 0.1 in 4 steps: 0.1 + 0.9 (1 - j/4)^3
        let k = |j| gradual_keep(0.1, j, 4);
        assert_eq!(k(0), 1.0);
        assert!((k(1) - (0.1 + 0.9 * 0.421875)).abs() < 1e-12);
        assert!((k(2) - (0.1 + 0.9 * 0.125)).abs() < 1e-12);
        assert!((k(3) - (0.1 + 0.9 * 0.015625)).abs() < 1e-12);
        assert_eq!(k(4), 0.1);
        assert_eq!(gradual_keep(0.3, 1, 1), 0.3);
    }

    #[test]
    fn ties_are_broken_by_position() {
        let m = model_with(&[("fc.weight", &[1.0, -1.0, 1.0, 1.0])]);
        // fc has 512 weights; keeping 2 of four equal magnitudes keeps the first two
        let masks = magnitude_masks(&m, 2.0 / 512.0, Scope::Layer).unwrap();
        assert_eq!(masks.survivors("fc.weight").unwrap(), vec![0, 1]);
        assert!(magnitude_masks(&m, 0.0, Scope::Layer)
            .unwrap_err()
            .to_string()
            .contains("keep"));
    }
}
