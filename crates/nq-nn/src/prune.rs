//! Magnitude pruning (Han, Pool, Tran and Dally 2015): keep the
//! largest-magnitude share of the quantizable weights, per layer or with one
//! threshold over all of them, and the masks that keep the others at zero
//! through retraining and fine-tuning.
//!
//! Exactly `round(keep * n)` weights survive (at least one per tensor):
//! weights are ranked by magnitude, ties broken by position (tensor order,
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
    ensure_setting(keep > 0.0 && keep <= 1.0, "keep", || {
        format!("expected a share of weights kept in (0, 1], got {keep}")
    })?;
    let mut magnitudes = Vec::new();
    for q in model.quantizable() {
        let w = model.tensor(&q.name)?;
        let flat =
            Vec::<f32>::try_from(w.detach().abs().flatten(0, -1).to_device(tch::Device::Cpu))?;
        magnitudes.push((q.name.clone(), w.size(), flat));
    }
    let mut flags: Vec<Vec<f32>> = magnitudes
        .iter()
        .map(|(_, _, m)| vec![0.0; m.len()])
        .collect();
    let mut keep_top =
        |entries: Vec<(usize, usize)>, values: &dyn Fn(usize, usize) -> f32, n: usize| {
            let count = ((keep * n as f64).round() as usize).clamp(1, n.max(1));
            let mut entries = entries;
            // largest first; equal magnitudes by position
            entries.sort_by(|&(ta, ia), &(tb, ib)| {
                values(tb, ib)
                    .total_cmp(&values(ta, ia))
                    .then((ta, ia).cmp(&(tb, ib)))
            });
            for &(t, i) in entries.iter().take(count) {
                flags[t][i] = 1.0;
            }
        };
    let value = |t: usize, i: usize| magnitudes[t].2[i];
    match scope {
        Scope::Layer => {
            for (t, (_, _, m)) in magnitudes.iter().enumerate() {
                keep_top((0..m.len()).map(|i| (t, i)).collect(), &value, m.len());
            }
        }
        Scope::Global => {
            let all: Vec<(usize, usize)> = magnitudes
                .iter()
                .enumerate()
                .flat_map(|(t, (_, _, m))| (0..m.len()).map(move |i| (t, i)))
                .collect();
            let n = all.len();
            keep_top(all, &value, n);
        }
    }
    let device = model.device();
    let by_name = magnitudes
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
