//! Compensated rounding of a quantized model in GPTQ's layer-wise form
//! (Frantar et al., ICLR 2023): once the quantizer has chosen its
//! codebooks, the weights of every tapped layer (convolutions and linear
//! layers of the built-in networks) are rounded onto them again one input
//! column at a time, each rounding error compensated on the weights not yet
//! rounded through `X^T X`, the second moment of the layer's inputs over a
//! sample of training examples (`nq_quant::compensation`).
//!
//! `X` has one row per example and output position: a linear layer's input
//! vectors (every token's, for a transformer), a convolution's unfolded
//! input patches (input channel, kernel row and column: the order of the
//! weight's elements). Tensors without a tap (embeddings, whose rows do not
//! mix inputs, and the layers of grouped convolutions) keep their nearest
//! rounding; [`Compensated`] says how many were compensated.
//!
//! [`compensate`] takes every moment from the network before any weight
//! is rounded; [`compensate_sequential`] (GPTQ's default) rounds the layers
//! one after the other, each through the inputs it sees once the layers
//! before it are rounded.

use std::collections::BTreeMap;

use nq_quant::compensation::{
    compensate_tensor, compensate_tensors, CompensationParams, LayerMoment, WeightRows,
};
use tch::{Kind, Tensor};

use crate::apply::{Applied, Extracted};
use crate::data::Source;
use crate::error::{ensure_setting, NnError, Result};
use crate::importance::first_batches;
use crate::importance::ggn::unfold;
use crate::models::{LayerOp, Model, Tap};

/// `X^T X / rows(X)` of one layer, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct InputMoment {
    /// Columns of `X`: the weights in a row of the layer.
    pub cols: usize,
    /// `cols x cols` entries.
    pub values: Vec<f64>,
}

/// A layer's input as `X`, `[rows, cols]`; `None` for grouped convolutions
/// (each group would need its own moment).
fn input_rows(tap: &Tap) -> Result<Option<Tensor>> {
    let input = tap.input.detach();
    match tap.op {
        LayerOp::Linear => {
            let cols = input.size().last().copied().unwrap_or(1);
            Ok(Some(input.reshape([-1, cols])))
        }
        LayerOp::Conv2d { groups, .. } if groups != 1 => Ok(None),
        LayerOp::Conv2d { .. } => {
            let unfolded = unfold(tap)?;
            let cols = unfolded.size()[2];
            Ok(Some(unfolded.reshape([-1, cols])))
        }
    }
}

/// The input moment of every tapped layer over the first `samples`
/// examples of `data`, accumulated in double precision batch by batch.
pub fn input_moments(
    model: &Model,
    data: &dyn Source,
    samples: usize,
    batch_size: usize,
) -> Result<BTreeMap<String, InputMoment>> {
    ensure_setting(model.records_taps(), "rounding", || {
        "compensated rounding needs each layer's inputs, which this model does not show".into()
    })?;
    let device = model.device();
    let mut sums: BTreeMap<String, (Tensor, i64)> = BTreeMap::new();
    for (xs, _) in first_batches(data, samples, batch_size)? {
        let (_, taps) = tch::no_grad(|| model.forward_tapped(&xs.to_device(device)));
        for tap in &taps {
            let Some(x) = input_rows(tap)? else { continue };
            let x = x.to_kind(Kind::Double);
            let gram = x.transpose(0, 1).mm(&x);
            let rows = x.size()[0];
            match sums.get_mut(&tap.name) {
                Some((sum, count)) => {
                    *sum += gram;
                    *count += rows;
                }
                None => {
                    sums.insert(tap.name.clone(), (gram, rows));
                }
            }
        }
    }
    sums.into_iter()
        .map(|(name, (sum, rows))| {
            let cols = sum.size()[0] as usize;
            // symmetric up to the order of the sums; made exactly so
            let mean = (&sum + sum.transpose(0, 1)) / (2.0 * rows as f64);
            let values = Vec::<f64>::try_from(mean.flatten(0, -1).to_device(tch::Device::Cpu))?;
            Ok((name, InputMoment { cols, values }))
        })
        .collect()
}

/// What [`compensate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compensated {
    /// Tensors rounded with compensation.
    pub tensors: usize,
    /// Tensors left with nearest rounding (no moment).
    pub nearest: usize,
}

/// Every tensor's weights before quantization at all positions (0 where
/// pruned), and which survived pruning.
fn full_weights(applied: &Applied) -> Vec<(Vec<f32>, Option<Vec<bool>>)> {
    applied
        .tensors
        .iter()
        .map(|e| match &e.survivors {
            None => (e.values.clone(), None),
            Some(positions) => {
                let numel = e.numel() as usize;
                let (mut values, mut keep) = (vec![0f32; numel], vec![false; numel]);
                for (&p, &v) in positions.iter().zip(&e.values) {
                    values[p as usize] = v;
                    keep[p as usize] = true;
                }
                (values, Some(keep))
            }
        })
        .collect()
}

/// Tensor `t`'s rows against its layer's moment, checked; `None` without
/// a moment.
fn layer_moment<'a>(
    tensors: &'a [Extracted],
    full: &'a [(Vec<f32>, Option<Vec<bool>>)],
    t: usize,
    moments: &'a BTreeMap<String, InputMoment>,
) -> Result<Option<LayerMoment<'a>>> {
    let e = &tensors[t];
    let Some(moment) = moments.get(&e.name) else {
        return Ok(None);
    };
    let (values, keep) = &full[t];
    let rows = e.shape.first().copied().unwrap_or(1).max(1) as usize;
    let cols = values.len() / rows;
    if cols != moment.cols {
        return Err(NnError::BadTensor {
            name: e.name.clone(),
            reason: format!(
                "rows of {cols} weights, but its layer's inputs have {} columns",
                moment.cols
            ),
        });
    }
    Ok(Some(LayerMoment {
        name: &e.name,
        rows: WeightRows {
            values,
            cols,
            keep: keep.as_deref(),
        },
        moment: &moment.values,
    }))
}

/// Rounds the tensors of `applied` that have a moment in `moments` again,
/// with compensation, onto their codebooks, and writes the result into
/// `model`.
pub fn compensate(
    model: &Model,
    applied: &mut Applied,
    moments: &BTreeMap<String, InputMoment>,
    params: &CompensationParams,
) -> Result<Compensated> {
    let full = full_weights(applied);
    let layers = (0..applied.tensors.len())
        .map(|t| layer_moment(&applied.tensors, &full, t, moments))
        .collect::<Result<Vec<_>>>()?;
    let tensors = compensate_tensors(&mut applied.quantization, &layers, params)?;
    applied.write(model)?;
    Ok(Compensated {
        tensors,
        nearest: applied.tensors.len() - tensors,
    })
}

/// GPTQ's sequential form of [`compensate`]: the tensors are rounded one
/// at a time in the model's order, each through the moment of its layer's
/// inputs in the network as it is by then (the layers before it already
/// rounded with compensation, the later ones nearest), so that each layer
/// sees the errors of the ones before it. `model` must hold `applied`'s
/// nearest rounding (as [`crate::apply::quantize_model`] leaves it); the
/// moments take one pass over the first `samples` examples of `data` per
/// compensated tensor.
pub fn compensate_sequential(
    model: &Model,
    applied: &mut Applied,
    data: &dyn Source,
    samples: usize,
    batch_size: usize,
    params: &CompensationParams,
) -> Result<Compensated> {
    let full = full_weights(applied);
    let mut tensors = 0;
    for t in 0..applied.tensors.len() {
        let moments = input_moments(model, data, samples, batch_size)?;
        let Some(layer) = layer_moment(&applied.tensors, &full, t, &moments)? else {
            continue;
        };
        compensate_tensor(&mut applied.quantization, t, &layer, params)?;
        applied.write(model)?;
        tensors += 1;
    }
    for codebook in &mut applied.quantization.codebooks {
        codebook.drop_empty_clusters();
    }
    Ok(Compensated {
        tensors,
        nearest: applied.tensors.len() - tensors,
    })
}

#[cfg(test)]
mod tests {
    use nq_quant::kmeans::{KmeansInit, KmeansParams};
    use nq_quant::method::Method;
    use nq_quant::scope::Scope;
    use tch::Device;

    use super::*;
    use crate::apply::quantize_model;
    use crate::data::InMemory;
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

    fn data(n: i64) -> InMemory {
        tch::manual_seed(1);
        let xs = Tensor::rand([n, 1, 8, 8], (Kind::Float, Device::Cpu));
        let ys = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2);
        InMemory::new(xs, ys, 2).unwrap()
    }

    #[test]
    fn moments_are_the_unfolded_inputs_second_moments() {
        let m = model();
        let d = data(6);
        let moments = input_moments(&m, &d, 6, 4).unwrap();
        let (xs, _) = first_batches(&d, 6, 6).unwrap().remove(0);
        let (_, taps) = tch::no_grad(|| m.forward_tapped(&xs));
        assert_eq!(moments.len(), taps.len());
        for tap in &taps {
            let x = input_rows(tap).unwrap().unwrap().to_kind(Kind::Double);
            let expected = x.transpose(0, 1).mm(&x) / x.size()[0] as f64;
            let got = &moments[&tap.name];
            let w = m.tensor(&tap.name).unwrap();
            assert_eq!(got.cols as i64, w.size()[1..].iter().product::<i64>());
            let expected = Vec::<f64>::try_from(expected.flatten(0, -1)).unwrap();
            for (a, b) in got.values.iter().zip(&expected) {
                assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{}", tap.name);
            }
        }
    }

    /// k-means with 3 clusters from a linear start: no draws.
    fn kmeans3() -> Method {
        Method::Kmeans(KmeansParams {
            k: 3,
            init: KmeansInit::Linear,
            max_iter: 50,
            seed: 0,
        })
    }

    /// `sum over layers of ||X (w - q)||^2` on the sample.
    fn output_error(
        original: &[(String, Tensor)],
        m: &Model,
        moments: &BTreeMap<String, InputMoment>,
    ) -> f64 {
        original
            .iter()
            .map(|(name, w)| {
                let q = m.tensor(name).unwrap();
                let cols = moments[name].cols as i64;
                let d = (w - q).reshape([-1, cols]).to_kind(Kind::Double);
                let h = Tensor::from_slice(&moments[name].values).view([cols, cols]);
                (d.mm(&h) * &d).sum(Kind::Double).double_value(&[])
            })
            .sum()
    }

    #[test]
    fn compensation_lowers_the_layers_output_error_and_keeps_pruned_zeros() {
        let kmeans = kmeans3();
        let d = data(64);
        for (scope, pruned) in [(Scope::Layer, false), (Scope::Global, true)] {
            let (plain, comp) = (model(), model());
            let masks = pruned.then(|| magnitude_masks(&comp, 0.5, Scope::Global).unwrap());
            let original: Vec<(String, Tensor)> = comp
                .quantizable()
                .iter()
                .map(|q| {
                    (
                        q.name.clone(),
                        comp.tensor(&q.name).unwrap().detach().copy(),
                    )
                })
                .collect();
            let moments = input_moments(&comp, &d, 64, 16).unwrap();
            quantize_model(&plain, masks.as_ref(), None, &kmeans, scope).unwrap();
            let mut applied = quantize_model(&comp, masks.as_ref(), None, &kmeans, scope).unwrap();
            let done = compensate(
                &comp,
                &mut applied,
                &moments,
                &CompensationParams::default(),
            )
            .unwrap();
            assert_eq!(
                done,
                Compensated {
                    tensors: 3,
                    nearest: 0
                }
            );
            let (with, without) = (
                output_error(&original, &comp, &moments),
                output_error(&original, &plain, &moments),
            );
            assert!(with < without, "{scope:?}: {with} against {without}");
            for (t, e) in applied.tensors.iter().enumerate() {
                let w = Vec::<f32>::try_from(comp.tensor(&e.name).unwrap().flatten(0, -1)).unwrap();
                assert_eq!(w, applied.values(t), "{}", e.name);
                if let Some(m) = &masks {
                    let mask = Vec::<f32>::try_from(m.by_name[&e.name].flatten(0, -1)).unwrap();
                    assert!(w.iter().zip(&mask).all(|(v, k)| *k != 0.0 || *v == 0.0));
                }
            }
        }
    }

    #[test]
    fn the_sequential_form_takes_each_moment_after_the_layers_before_are_rounded() {
        let kmeans = kmeans3();
        let d = data(64);
        let p = CompensationParams::default();
        let seq = model();
        let mut applied = quantize_model(&seq, None, None, &kmeans, Scope::Global).unwrap();
        let done = compensate_sequential(&seq, &mut applied, &d, 64, 16, &p).unwrap();
        assert_eq!(
            done,
            Compensated {
                tensors: 3,
                nearest: 0
            }
        );

        // by hand: one tensor at a time through the moments of the network
        // as it is then
        let by_hand = model();
        let mut expected = quantize_model(&by_hand, None, None, &kmeans, Scope::Global).unwrap();
        for e in expected.tensors.clone() {
            let mut moments = input_moments(&by_hand, &d, 64, 16).unwrap();
            moments.retain(|name, _| *name == e.name);
            compensate(&by_hand, &mut expected, &moments, &p).unwrap();
        }
        // and in one pass, through the moments of the unquantized network
        let one_pass = model();
        let moments = input_moments(&one_pass, &d, 64, 16).unwrap();
        let mut once = quantize_model(&one_pass, None, None, &kmeans, Scope::Global).unwrap();
        compensate(&one_pass, &mut once, &moments, &p).unwrap();

        for t in 0..applied.tensors.len() {
            assert_eq!(applied.values(t), expected.values(t), "tensor {t}");
            let w =
                Vec::<f32>::try_from(seq.tensor(&applied.tensors[t].name).unwrap().flatten(0, -1))
                    .unwrap();
            assert_eq!(w, applied.values(t), "tensor {t} written");
        }
        // the first layer's inputs are the images either way; a later one's are not
        assert_eq!(applied.values(0), once.values(0));
        assert!(
            (1..applied.tensors.len()).any(|t| applied.values(t) != once.values(t)),
            "no later layer saw the earlier layers' rounding"
        );
    }
}
