//! The diagonal of the generalised Gauss-Newton matrix of the mean
//! cross-entropy, `G = mean_n J_n^T H_n J_n` (Schraudolph 2002; Martens
//! 2014), `J_n` the Jacobian of example `n`'s logits in the weights and
//! `H_n = diag(p_n) - p_n p_n^T` the Hessian of the cross-entropy in the
//! logits.
//!
//! Any factorisation `H_n = V_n V_n^T` gives `diag(G) = mean_n sum_v
//! (J_n^T v)^2`, the squared entries of per-example gradients. Three ways:
//!
//! - [`gauss_newton_diag`], batched and exact, as BackPACK's `DiagGGNExact`
//!   (Dangel, Kunstner and Hennig, ICLR 2020): `H_n = sum_c p_c (e_c - p)
//!   (e_c - p)^T`, so the `C` columns `sqrt(p_c) (e_c - p)` of every
//!   example of a batch are backpropagated at once, one backward pass per
//!   class and batch. At each quantizable layer the gradient of the
//!   logits' column at the layer's output, `s`, and the layer's input, `a`,
//!   give the per-example weight gradients: `s_n a_n^T` for a linear layer,
//!   whose squares summed over examples and columns are one product
//!   `(sum_c s_c^2)^T (a^2)`; `s_n U_n^T` for a convolution, `U_n` the
//!   unfolded input (im2col), squared and summed per example.
//! - [`gauss_newton_mc_diag`], the Monte Carlo GGN (BackPACK's
//!   `DiagGGNMC`): `E_y [(p - e_y)(p - e_y)^T] = H_n` for `y` drawn from
//!   `p_n`, so `draws` sampled labels per example give an unbiased
//!   estimate with `draws` backward passes per batch instead of `C`.
//! - [`gauss_newton_diag_per_example`]: one backward pass per example and
//!   class through the whole network, by plain autograd. The test oracle
//!   of the other two.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use tch::{Kind, Tensor};

use super::{examples, tensors, zeros_like_all, Cost};
use crate::error::{NnError, Result};
use crate::models::{LayerOp, Tap};

/// A forward pass that reports its quantizable layers (see
/// [`Model::forward_tapped`](crate::models::Model::forward_tapped)).
pub type TappedForward<'a> = dyn Fn(&Tensor) -> (Tensor, Vec<Tap>) + 'a;

/// Elements of one chunk of per-example gradients (64 MB of float32): the
/// per-example products of a convolution are formed and squared this many
/// at a time.
const CHUNK_ELEMENTS: i64 = 1 << 24;

/// The exact GGN diagonal of the mean cross-entropy over `batches` for the
/// weights `params` (named as the taps name them), batched.
pub fn gauss_newton_diag(
    forward: &TappedForward<'_>,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
) -> Result<(Vec<Tensor>, Cost)> {
    squared_jacobian_products(forward, params, batches, &mut |p| {
        let classes = p.size()[1];
        let sqrt_p = p.sqrt();
        (0..classes)
            .map(|c| {
                let sqrt_pc = sqrt_p.narrow(1, c, 1);
                let column = -p * &sqrt_pc;
                let mut own_class = column.narrow(1, c, 1);
                own_class += &sqrt_pc;
                column
            })
            .collect()
    })
}

/// The Monte Carlo GGN diagonal: `draws` labels per example drawn from the
/// model's own predictive distribution (seeded by `seed`), one backward
/// pass per draw and batch. Unbiased for the exact diagonal.
pub fn gauss_newton_mc_diag(
    forward: &TappedForward<'_>,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
    draws: usize,
    seed: u64,
) -> Result<(Vec<Tensor>, Cost)> {
    if draws == 0 {
        return Err(NnError::InvalidSetting {
            name: "draws",
            reason: "expected at least 1".into(),
        });
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let scale = (draws as f64).sqrt();
    squared_jacobian_products(forward, params, batches, &mut |p| {
        let (n, classes) = (p.size()[0], p.size()[1]);
        // drawn on the CPU from our own generator, so that the labels are
        // the same on every device and whatever else uses torch's generator
        let probs = Vec::<f32>::try_from(p.to_kind(Kind::Float).flatten(0, -1))
            .expect("a float tensor converts to Vec<f32>");
        (0..draws)
            .map(|_| {
                let labels: Vec<i64> = probs
                    .chunks(classes as usize)
                    .map(|row| draw(row, rng.random::<f64>()))
                    .collect();
                let labels = Tensor::from_slice(&labels).to_device(p.device());
                let one_hot = labels.one_hot(classes).to_kind(p.kind());
                debug_assert_eq!(one_hot.size()[0], n);
                (p - one_hot) / scale
            })
            .collect()
    })
}

/// The class whose cumulative probability first exceeds `u` (the last class
/// when rounding leaves the sum below `u`).
fn draw(probs: &[f32], u: f64) -> i64 {
    let mut cumulative = 0.0;
    for (c, &p) in probs.iter().enumerate() {
        cumulative += f64::from(p);
        if u < cumulative {
            return c as i64;
        }
    }
    probs.len() as i64 - 1
}

/// `mean_n sum_v (J_n^T v)^2` over the examples of `batches`, with the
/// vectors `v` of a batch (each `[N, C]`, one row per example) given by
/// `columns` from the batch's softmax `p`.
fn squared_jacobian_products(
    forward: &TappedForward<'_>,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
    columns: &mut dyn FnMut(&Tensor) -> Vec<Tensor>,
) -> Result<(Vec<Tensor>, Cost)> {
    let started = Instant::now();
    let total = examples(batches);
    let index: BTreeMap<&str, usize> = params
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    let mut diag = zeros_like_all(params);
    let mut cost = Cost::default();
    for (x, _) in batches {
        let (logits, taps) = forward(x);
        let taps: Vec<(usize, Tap)> = taps
            .into_iter()
            .filter_map(|tap| index.get(tap.name.as_str()).map(|&i| (i, tap)))
            .collect();
        for (name, _) in params {
            if !taps.iter().any(|(_, t)| &t.name == name) {
                return Err(NnError::BadTensor {
                    name: name.clone(),
                    reason: "the forward pass reported no layer with this weight".into(),
                });
            }
        }
        let p = logits.softmax(1, Kind::Float).detach();
        let vectors = tch::no_grad(|| columns(&p));
        let outputs: Vec<&Tensor> = taps.iter().map(|(_, t)| &t.output).collect();
        let mut layers: Vec<LayerSums> = taps
            .iter()
            .map(|(i, t)| LayerSums::new(*i, t))
            .collect::<Result<_>>()?;
        for (k, v) in vectors.iter().enumerate() {
            let seed = (&logits * v).sum(Kind::Float);
            let keep_graph = k + 1 < vectors.len();
            let signals = Tensor::f_run_backward(&[&seed], &outputs, keep_graph, false)?;
            cost.backward_passes += 1;
            tch::no_grad(|| {
                for ((_, tap), (layer, s)) in taps.iter().zip(layers.iter_mut().zip(&signals)) {
                    layer.add(tap, s, &mut diag);
                }
            });
        }
        tch::no_grad(|| {
            for ((_, tap), layer) in taps.iter().zip(layers) {
                layer.finish(tap, &mut diag);
            }
        });
    }
    tch::no_grad(|| {
        for d in diag.iter_mut() {
            *d /= total;
        }
    });
    cost.seconds = started.elapsed().as_secs_f64();
    Ok((diag, cost))
}

/// What one layer accumulates over the columns of a batch.
enum LayerSums {
    /// A linear layer on `[N, in]` inputs: `sum_c s_c^2`, `[N, out]`,
    /// multiplied by the squared inputs once at the end.
    Linear {
        param: usize,
        squared: Option<Tensor>,
    },
    /// Per-example products formed for every column (convolutions, and
    /// linear layers on inputs with more dimensions, such as tokens).
    PerExample { param: usize, unfolded: Tensor },
}

impl LayerSums {
    fn new(param: usize, tap: &Tap) -> Result<Self> {
        let input = tap.input.detach();
        Ok(match tap.op {
            LayerOp::Linear if input.dim() == 2 => LayerSums::Linear {
                param,
                squared: None,
            },
            // [N, ..., in] -> [N, T, in]
            LayerOp::Linear => LayerSums::PerExample {
                param,
                unfolded: input.flatten(1, -2),
            },
            LayerOp::Conv2d {
                kernel,
                stride,
                padding,
                dilation,
                groups,
            } => {
                if groups != 1 {
                    return Err(NnError::BadTensor {
                        name: tap.name.clone(),
                        reason: format!(
                            "grouped convolutions ({groups} groups) have no GGN diagonal here"
                        ),
                    });
                }
                // [N, in * kh * kw, P] -> [N, P, in * kh * kw]
                let unfolded = input
                    .im2col(kernel, dilation, padding, stride)
                    .transpose(1, 2)
                    .contiguous();
                LayerSums::PerExample { param, unfolded }
            }
        })
    }

    /// Adds the squared per-example gradients of one column, whose signal
    /// at the layer's output is `s`.
    fn add(&mut self, tap: &Tap, s: &Tensor, diag: &mut [Tensor]) {
        match self {
            LayerSums::Linear { squared, .. } => {
                let sq = s.square();
                *squared = Some(match squared.take() {
                    Some(acc) => acc + sq,
                    None => sq,
                });
            }
            LayerSums::PerExample { param, unfolded } => {
                // [N, O, P]: for a linear layer on [N, T, in] the output is
                // [N, T, O], so the positions come first
                let signal = match tap.op {
                    LayerOp::Linear => s.flatten(1, -2).transpose(1, 2),
                    LayerOp::Conv2d { .. } => s.flatten(2, -1),
                };
                let (n, out_channels) = (signal.size()[0], signal.size()[1]);
                let k = unfolded.size()[2];
                let chunk = (CHUNK_ELEMENTS / (out_channels * k).max(1)).max(1);
                let d = &mut diag[*param];
                let shape = d.size();
                let mut flat = d.view([out_channels, k]);
                let mut start = 0;
                while start < n {
                    let len = chunk.min(n - start);
                    let grads = signal
                        .narrow(0, start, len)
                        .bmm(&unfolded.narrow(0, start, len));
                    flat += grads
                        .square()
                        .sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
                    start += len;
                }
                debug_assert_eq!(d.size(), shape);
            }
        }
    }

    fn finish(self, tap: &Tap, diag: &mut [Tensor]) {
        if let LayerSums::Linear {
            param,
            squared: Some(squared),
        } = self
        {
            let a2 = tap.input.detach().square();
            diag[param] += squared.transpose(0, 1).mm(&a2);
        }
    }
}

/// The exact GGN diagonal by one backward pass per example and class
/// through plain autograd (`forward` needs no taps). Slow; the oracle.
pub fn gauss_newton_diag_per_example(
    forward: &dyn Fn(&Tensor) -> Tensor,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
) -> Result<(Vec<Tensor>, Cost)> {
    let started = Instant::now();
    let inputs = tensors(params);
    let total = examples(batches);
    let mut diag = zeros_like_all(params);
    let mut cost = Cost::default();
    for (x, _) in batches {
        for n in 0..x.size()[0] {
            let z = forward(&x.narrow(0, n, 1)).squeeze_dim(0);
            let p = z.softmax(0, Kind::Float).detach();
            let mean_z = (&p * &z).sum(Kind::Float);
            for c in 0..z.size()[0] {
                let s = z.get(c) - &mean_z;
                let g = Tensor::f_run_backward(&[&s], &inputs, true, false)?;
                cost.backward_passes += 1;
                let weight = p.double_value(&[c]) / total;
                tch::no_grad(|| {
                    for (d, g) in diag.iter_mut().zip(&g) {
                        *d += g * g * weight;
                    }
                });
            }
        }
    }
    cost.seconds = started.elapsed().as_secs_f64();
    Ok((diag, cost))
}

#[cfg(test)]
mod tests;
