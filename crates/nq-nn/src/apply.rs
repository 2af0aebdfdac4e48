//! Applying a quantization to a model: its quantizable tensors are taken
//! out as plain vectors (only the survivors of pruned tensors, each with its
//! importance), quantized by `nq-quant` in either scope, and the quantized
//! values are written back (pruned positions stay 0).

use nq_quant::method::Method;
use nq_quant::scope::{quantize_tensors, Scope, ScopedQuantization, WeightTensor};
use tch::{Device, Tensor};

use crate::error::{NnError, Result};
use crate::importance::Importance;
use crate::models::{Model, TensorKind};
use crate::prune::Masks;

/// One quantizable tensor, out of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// Its name in the model.
    pub name: String,
    /// Conv or linear.
    pub kind: TensorKind,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Flattened survivor positions when pruned.
    pub survivors: Option<Vec<u64>>,
    /// The weights quantized: all, or the survivors in position order.
    pub values: Vec<f32>,
    /// Their importance (all ones without an importance).
    pub importance: Vec<f32>,
}

impl Extracted {
    /// Number of elements of the whole tensor.
    pub fn numel(&self) -> u64 {
        self.shape.iter().product::<i64>() as u64
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(
        t.detach().flatten(0, -1).to_device(Device::Cpu),
    )?)
}

/// The quantizable tensors of `model` as vectors, with their survivors
/// (from `masks`) and importances.
pub fn extract(
    model: &Model,
    masks: Option<&Masks>,
    importance: Option<&Importance>,
) -> Result<Vec<Extracted>> {
    model
        .quantizable()
        .iter()
        .map(|q| {
            let w = model.tensor(&q.name)?;
            let all = to_vec(&w)?;
            let h_all = match importance {
                Some(imp) => {
                    let h = imp.by_name.get(&q.name).ok_or_else(|| NnError::BadTensor {
                        name: q.name.clone(),
                        reason: "no importance for it".into(),
                    })?;
                    to_vec(h)?
                }
                None => vec![1.0; all.len()],
            };
            let survivors = masks.and_then(|m| m.survivors(&q.name));
            let pick = |v: &[f32]| match &survivors {
                Some(s) => s.iter().map(|&i| v[i as usize]).collect(),
                None => v.to_vec(),
            };
            Ok(Extracted {
                name: q.name.clone(),
                kind: q.kind,
                shape: w.size(),
                values: pick(&all),
                importance: pick(&h_all),
                survivors,
            })
        })
        .collect()
}

/// A quantized model: the tensors as extracted and their quantization.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The tensors, in the model's quantizable order.
    pub tensors: Vec<Extracted>,
    /// Codebooks and assignments (tensor `t` is `quantization.tensor(t)`).
    pub quantization: ScopedQuantization,
}

impl Applied {
    /// The full quantized values of tensor `t` (0 at pruned positions).
    pub fn values(&self, t: usize) -> Vec<f32> {
        let stored = self.quantization.quantized(t);
        let e = &self.tensors[t];
        match &e.survivors {
            None => stored,
            Some(s) => {
                let mut full = vec![0f32; e.numel() as usize];
                for (&p, v) in s.iter().zip(stored) {
                    full[p as usize] = v;
                }
                full
            }
        }
    }

    /// Writes the quantized values into `model`.
    pub fn write(&self, model: &Model) -> Result<()> {
        tch::no_grad(|| {
            for (t, e) in self.tensors.iter().enumerate() {
                let mut w = model.tensor(&e.name)?;
                let q = Tensor::from_slice(&self.values(t))
                    .view(e.shape.as_slice())
                    .to_device(w.device());
                w.f_copy_(&q)?;
            }
            Ok(())
        })
    }
}

/// Quantizes the quantizable tensors of `model` with `method` in `scope`
/// (survivors only when `masks` are given, weighted by `importance` when
/// given) and writes the quantized values back.
pub fn quantize_model(
    model: &Model,
    masks: Option<&Masks>,
    importance: Option<&Importance>,
    method: &Method,
    scope: Scope,
) -> Result<Applied> {
    let tensors = extract(model, masks, importance)?;
    let inputs: Vec<WeightTensor<'_>> = tensors
        .iter()
        .map(|e| WeightTensor {
            name: &e.name,
            values: &e.values,
            importance: &e.importance,
        })
        .collect();
    let quantization = quantize_tensors(&inputs, method, scope)?;
    let applied = Applied {
        tensors,
        quantization,
    };
    applied.write(model)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use nq_quant::kmeans::{KmeansInit, KmeansParams};

    use super::*;
    use crate::models::{Arch, InputSpec};
    use crate::prune::magnitude_masks;

    fn model() -> Model {
        tch::manual_seed(0);
        Model::new(
            Arch::SmallConv,
            InputSpec {
                image: [1, 8, 8],
                classes: 2,
            },
            Device::Cpu,
        )
        .unwrap()
    }

    fn kmeans(k: usize) -> Method {
        Method::Kmeans(KmeansParams {
            k,
            init: KmeansInit::Linear,
            max_iter: 100,
            seed: 0,
        })
    }

    fn distinct(t: &Tensor) -> usize {
        let mut v = to_vec(t).unwrap();
        v.sort_by(f32::total_cmp);
        v.dedup();
        v.len()
    }

    #[test]
    fn layer_and_global_write_back_k_values() {
        for (scope, per_model) in [(Scope::Layer, 3 * 4), (Scope::Global, 4)] {
            let m = model();
            let applied = quantize_model(&m, None, None, &kmeans(4), scope).unwrap();
            let mut all = Vec::new();
            for q in m.quantizable() {
                let w = m.tensor(&q.name).unwrap();
                // one codebook of 4 per layer; a layer may use fewer of a global one
                let d = distinct(&w);
                assert!(
                    d == 4 || (scope == Scope::Global && (1..4).contains(&d)),
                    "{} {d}",
                    q.name
                );
                all.extend(to_vec(&w).unwrap());
            }
            all.sort_by(f32::total_cmp);
            all.dedup();
            assert_eq!(all.len(), per_model, "{scope:?}");
            assert_eq!(
                applied.quantization.codebooks.len(),
                if scope == Scope::Layer { 3 } else { 1 }
            );
        }
    }

    #[test]
    fn pruned_positions_stay_zero_and_only_survivors_are_quantized() {
        let m = model();
        let masks = magnitude_masks(&m, 0.25, Scope::Layer).unwrap();
        crate::train::apply_masks(&m, &masks).unwrap();
        let applied = quantize_model(&m, Some(&masks), None, &kmeans(2), Scope::Layer).unwrap();
        for (t, e) in applied.tensors.iter().enumerate() {
            let s = e.survivors.as_ref().unwrap();
            assert_eq!(e.values.len(), s.len());
            let w = to_vec(&m.tensor(&e.name).unwrap()).unwrap();
            let zeros = w.iter().filter(|&&v| v == 0.0).count();
            assert_eq!(zeros, w.len() - s.len(), "{}", e.name);
            assert_eq!(applied.values(t), w);
            // survivors take both nonzero centres
            assert_eq!(distinct(&m.tensor(&e.name).unwrap()), 3, "{}", e.name);
        }
    }

    #[test]
    fn importance_must_cover_every_tensor() {
        let m = model();
        let imp = Importance {
            by_name: Default::default(),
            cost: Default::default(),
            clamped_share: 0.0,
        };
        let err = quantize_model(&m, None, Some(&imp), &kmeans(2), Scope::Layer).unwrap_err();
        assert!(err.to_string().contains("conv1.weight"), "{err}");
    }
}
