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
//!   (Dangel, Kunstner and Hennig, ICLR 2020): the `C - 1` columns of the
//!   Cholesky factor of `H_n` (Tanabe and Sagae 1992; `H_n` has rank `C -
//!   1`) are backpropagated for every example of a batch at once, one
//!   backward pass per column and batch. At each quantizable layer the
//!   column's gradient at the layer's output, `s`, and the layer's input,
//!   `a`, give the per-example weight gradients: `s_n a_n^T` for a linear
//!   layer, whose squares summed over examples and columns are one product
//!   `(sum_v s_v^2)^T (a^2)`; `s_n U_n` for a convolution, `U_n` the
//!   unfolded input (im2col), squared and summed per example.
//! - [`gauss_newton_mc_diag`], the Monte Carlo GGN (BackPACK's
//!   `DiagGGNMC`): `E_y [(p - e_y)(p - e_y)^T] = H_n` for `y` drawn from
//!   `p_n`, so `draws` sampled labels per example give an unbiased
//!   estimate with `draws` backward passes per batch instead of `C - 1`.
//!   For a language model (logits `[N, T, V]`, a prediction per position)
//!   a label is drawn at every position independently: one backward pass
//!   per draw still covers all positions, since the cross terms between
//!   positions have mean zero. The result is the mean over predictions,
//!   `mean_{n,t} J_{n,t}^T H_{n,t} J_{n,t}`; the exact columns would need a
//!   pass per position and are refused.
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

/// Elements of one chunk of per-example gradients (4 MB of float32, about
/// what stays in cache while it is squared and summed).
const CHUNK_ELEMENTS: i64 = 1 << 20;

/// Elements of the layer signals and unfolded inputs kept for one batch
/// (512 MB of float32); a batch that needs more is split.
const KEPT_BUDGET: i64 = 1 << 27;

/// The exact GGN diagonal of the mean cross-entropy over `batches` for the
/// weights `params` (named as the taps name them), batched.
pub fn gauss_newton_diag(
    forward: &TappedForward<'_>,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
) -> Result<(Vec<Tensor>, Cost)> {
    squared_jacobian_products(forward, params, batches, &mut ClassColumns, KEPT_BUDGET)
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
    let mut labels = SampledLabels {
        draws,
        rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
    };
    squared_jacobian_products(forward, params, batches, &mut labels, KEPT_BUDGET)
}

/// The vectors `v` of a factorisation `H_n = sum_v v v^T` of every example
/// of a batch.
trait Columns {
    /// How many for `classes` classes.
    fn count(&self, classes: i64) -> usize;
    /// Whether the vectors of the positions of one example are independent
    /// with mean zero, so that one backward pass through all of a language
    /// model's positions at once is unbiased: the cross terms between
    /// positions of `(sum_t J_t^T v_t)^2` vanish in expectation.
    fn independent_per_position(&self) -> bool;
    /// The vectors, each `[N, C]` (a row per example), from the softmax `p`.
    fn columns(&mut self, p: &Tensor) -> Vec<Tensor>;
}

/// The `C - 1` non-zero columns of the Cholesky factor of `diag(p) - p p^T`
/// (Tanabe and Sagae 1992): exact, one column fewer than the `C` columns
/// `sqrt(p_c) (e_c - p)`, since the matrix has rank `C - 1`. With `q_j =
/// sum_{i >= j} p_i`, column `j` is 0 above row `j`, `sqrt(p_j q_{j+1} /
/// q_j)` at row `j` and `-p_i sqrt(p_j / (q_j q_{j+1}))` below.
struct ClassColumns;

impl Columns for ClassColumns {
    fn count(&self, classes: i64) -> usize {
        (classes - 1).max(1) as usize
    }

    fn independent_per_position(&self) -> bool {
        false
    }

    fn columns(&mut self, p: &Tensor) -> Vec<Tensor> {
        let classes = p.size()[1];
        if classes < 2 {
            // one class: the Hessian of the loss in the logits is zero
            return vec![p.zeros_like()];
        }
        // p_i <= q_{j+1} for i > j and p_j <= q_j, so where a divisor
        // underflows to 0 the dividend is 0 too and the floor gives 0
        let tiny = f64::from(f32::MIN_POSITIVE);
        let q = p.flip([1]).cumsum(1, Kind::Float).flip([1]);
        (0..classes - 1)
            .map(|j| {
                let p_over_q = (p.narrow(1, j, 1) / q.narrow(1, j, 1).clamp_min(tiny)).sqrt();
                let sqrt_rest = q.narrow(1, j + 1, 1).sqrt();
                let column = -(p / sqrt_rest.clamp_min(tiny)) * &p_over_q;
                let _ = column.narrow(1, 0, j).zero_();
                column.narrow(1, j, 1).copy_(&(&p_over_q * &sqrt_rest));
                column
            })
            .collect()
    }
}

/// `(p - e_y) / sqrt(draws)` for labels `y` drawn from `p`: Monte Carlo.
struct SampledLabels {
    draws: usize,
    rng: rand_chacha::ChaCha8Rng,
}

impl Columns for SampledLabels {
    fn count(&self, _classes: i64) -> usize {
        self.draws
    }

    fn independent_per_position(&self) -> bool {
        true
    }

    fn columns(&mut self, p: &Tensor) -> Vec<Tensor> {
        let classes = p.size()[1];
        let scale = (self.draws as f64).sqrt();
        // drawn on the CPU from our own generator, so that the labels are
        // the same on every device and whatever else uses torch's generator
        let probs = Vec::<f32>::try_from(
            p.to_device(tch::Device::Cpu)
                .to_kind(Kind::Float)
                .flatten(0, -1),
        )
        .expect("a float tensor converts to Vec<f32>");
        (0..self.draws)
            .map(|_| {
                let labels: Vec<i64> = probs
                    .chunks(classes as usize)
                    .map(|row| draw(row, self.rng.random::<f64>()))
                    .collect();
                let labels = Tensor::from_slice(&labels).to_device(p.device());
                (p - labels.one_hot(classes).to_kind(p.kind())) / scale
            })
            .collect()
    }
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
/// vectors `v` of each batch from `columns`.
fn squared_jacobian_products(
    forward: &TappedForward<'_>,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
    columns: &mut dyn Columns,
    budget: i64,
) -> Result<(Vec<Tensor>, Cost)> {
    let started = Instant::now();
    let total = examples(batches);
    let names: BTreeMap<&str, usize> = params
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    let mut sums = BatchSums {
        forward,
        names: &names,
        columns,
        budget,
        part: None,
        diag: zeros_like_all(params),
        cost: Cost::default(),
    };
    for (x, _) in batches {
        sums.add(x)?;
    }
    let BatchSums {
        mut diag, mut cost, ..
    } = sums;
    tch::no_grad(|| {
        for d in diag.iter_mut() {
            *d /= total;
        }
    });
    cost.seconds = started.elapsed().as_secs_f64();
    Ok((diag, cost))
}

/// The running sums of [`squared_jacobian_products`].
struct BatchSums<'a, 'f> {
    forward: &'a TappedForward<'f>,
    names: &'a BTreeMap<&'a str, usize>,
    columns: &'a mut dyn Columns,
    /// Elements a batch may keep.
    budget: i64,
    /// Examples per part, once a batch had to be split.
    part: Option<i64>,
    diag: Vec<Tensor>,
    cost: Cost,
}

impl BatchSums<'_, '_> {
    /// Adds the examples of `x`, in parts of at most `self.part` examples:
    /// the first batch whose signals and unfolded inputs exceed
    /// `self.budget` elements sets `part` for itself and every later batch.
    fn add(&mut self, x: &Tensor) -> Result<()> {
        let n = x.size()[0];
        if let Some(part) = self.part.filter(|&part| n > part) {
            let mut start = 0;
            while start < n {
                let len = part.min(n - start);
                self.add(&x.narrow(0, start, len))?;
                start += len;
            }
            return Ok(());
        }
        let (logits, taps) = (self.forward)(x);
        if logits.dim() != 2 && !self.columns.independent_per_position() {
            // a language model predicts at every position: one backward pass
            // of exact columns at all positions would mix their Jacobians
            return Err(NnError::InvalidSetting {
                name: "estimator",
                reason: format!(
                    "the exact batched Gauss-Newton diagonal takes one prediction per \
                     example (logits [N, C]); these logits are {:?} (a language model's): \
                     use gauss-newton-mc (labels drawn at every position), hutchinson or adam",
                    logits.size()
                ),
            });
        }
        let classes = logits.size().last().copied().unwrap_or(1);
        let taps: Vec<(usize, Tap)> = taps
            .into_iter()
            .filter_map(|tap| self.names.get(tap.name.as_str()).map(|&i| (i, tap)))
            .collect();
        for name in self.names.keys() {
            if !taps.iter().any(|(_, t)| t.name == *name) {
                return Err(NnError::BadTensor {
                    name: (*name).to_owned(),
                    reason: "the forward pass reported no layer with this weight".into(),
                });
            }
        }
        let count = self.columns.count(classes) as i64;
        let kept: i64 = taps.iter().map(|(_, t)| kept_elements(t, count)).sum();
        if kept > self.budget && n > 1 {
            self.part = Some((n * self.budget / kept).clamp(1, n - 1));
            drop((logits, taps));
            return self.add(x);
        }
        // a row per prediction: one per example, or one per position
        let p = logits
            .softmax(-1, Kind::Float)
            .detach()
            .reshape([-1, classes]);
        let vectors: Vec<Tensor> = tch::no_grad(|| {
            self.columns
                .columns(&p)
                .into_iter()
                .map(|v| v.view(logits.size().as_slice()))
                .collect()
        });
        let outputs: Vec<&Tensor> = taps.iter().map(|(_, t)| &t.output).collect();
        let mut layers: Vec<LayerSums> = taps
            .iter()
            .map(|(_, t)| LayerSums::new(t))
            .collect::<Result<_>>()?;
        for (k, v) in vectors.iter().enumerate() {
            let seed = (&logits * v).sum(Kind::Float);
            let keep_graph = k + 1 < vectors.len();
            let signals = Tensor::f_run_backward(&[&seed], &outputs, keep_graph, false)?;
            self.cost.backward_passes += 1;
            tch::no_grad(|| {
                for (((param, tap), layer), s) in taps.iter().zip(layers.iter_mut()).zip(signals) {
                    layer.add(tap, s, &mut self.diag[*param]);
                }
            });
        }
        tch::no_grad(|| {
            for ((param, tap), layer) in taps.iter().zip(layers) {
                layer.finish(tap, &mut self.diag[*param]);
            }
        });
        Ok(())
    }
}

/// Elements a layer keeps through the columns of a batch: the unfolded
/// input `[N, P, K]`, and the signals `[N, O, P]` of `count` columns when
/// they are stacked (see [`LayerSums`]).
fn kept_elements(tap: &Tap, count: i64) -> i64 {
    if !keeps_signals(tap) {
        return 0;
    }
    let (k, out) = match tap.op {
        LayerOp::Linear => (
            tap.input.size().last().copied().unwrap_or(1),
            tap.output.size().last().copied().unwrap_or(1),
        ),
        LayerOp::Conv2d { kernel, .. } => (
            tap.input.size()[1] * kernel[0] * kernel[1],
            tap.output.size()[1],
        ),
    };
    let n = tap.output.size()[0];
    let positions = tap.output.numel() as i64 / (n * out).max(1);
    let unfolded = n * positions * k;
    if stacks(positions, k) {
        unfolded + tap.output.numel() as i64 * count
    } else {
        unfolded
    }
}

/// Whether the signals of all columns are kept and multiplied at once:
/// when the product per example and column (`O K`) outweighs the signal
/// (`O P`).
fn stacks(positions: i64, k: i64) -> bool {
    k > positions
}

/// Whether a layer's per-example gradients need its signals of every
/// column kept until the last one (all but linear layers on `[N, in]`).
fn keeps_signals(tap: &Tap) -> bool {
    !(tap.op == LayerOp::Linear && tap.input.dim() == 2)
}

/// What one layer accumulates over the columns of a batch.
///
/// A convolution's (or a token-wise linear layer's) per-example gradient
/// for one column is `S_n R_n`, the signal `S_n` (`[O, P]`, `P` output
/// positions) times the unfolded input `R_n` (`[P, K]`). The products are
/// squared and summed in chunks that stay in cache; when `K > P` the
/// product outweighs the signal, so the signals of all columns are kept
/// and multiplied at once (`[V O, P] x [P, K]`, one larger product per
/// example), otherwise each column is multiplied as it comes.
enum LayerSums {
    /// A linear layer on `[N, in]` inputs: `sum_v s_v^2`, `[N, out]`,
    /// multiplied by the squared inputs at the end.
    Linear(Option<Tensor>),
    /// Products formed for each column as it comes.
    Columnwise {
        /// `R`, `[N, P, K]`.
        unfolded: Tensor,
    },
    /// Signals kept for one product of all columns at the end.
    Stacked {
        /// `R`, `[N, P, K]`.
        unfolded: Tensor,
        /// `S` of each column so far, `[N, O, P]`.
        signals: Vec<Tensor>,
    },
}

impl LayerSums {
    fn new(tap: &Tap) -> Result<Self> {
        if !keeps_signals(tap) {
            return Ok(LayerSums::Linear(None));
        }
        let unfolded = unfold(tap)?;
        let [_, positions, k] = unfolded.size()[..] else {
            unreachable!("unfolded inputs have three dimensions")
        };
        Ok(if stacks(positions, k) {
            LayerSums::Stacked {
                unfolded,
                signals: Vec::new(),
            }
        } else {
            LayerSums::Columnwise { unfolded }
        })
    }

    /// Adds the signal `s` of one column at the layer's output.
    fn add(&mut self, tap: &Tap, s: Tensor, diag: &mut Tensor) {
        match self {
            LayerSums::Linear(squared) => {
                let sq = s.square();
                *squared = Some(match squared.take() {
                    Some(acc) => acc + sq,
                    None => sq,
                });
            }
            LayerSums::Columnwise { unfolded } => {
                add_squared_products(&signal_matrix(tap, &s), unfolded, diag);
            }
            LayerSums::Stacked { signals, .. } => signals.push(signal_matrix(tap, &s)),
        }
    }

    /// Adds what is left of the batch into `diag`.
    fn finish(self, tap: &Tap, diag: &mut Tensor) {
        match self {
            LayerSums::Linear(Some(squared)) => {
                *diag += squared.transpose(0, 1).mm(&tap.input.detach().square());
            }
            LayerSums::Stacked { unfolded, signals } if !signals.is_empty() => {
                // [N, V, O, P] -> [N, V O, P]
                let stacked = Tensor::stack(&signals, 1);
                drop(signals);
                let [n, columns, out, positions] = stacked.size()[..] else {
                    unreachable!("stacked signals have four dimensions")
                };
                let stacked = stacked.view([n, columns * out, positions]);
                add_squared_products(&stacked, &unfolded, diag);
            }
            _ => {}
        }
    }
}

/// The signal of one column as `[N, O, P]`.
fn signal_matrix(tap: &Tap, s: &Tensor) -> Tensor {
    match tap.op {
        // [N, ..., O] -> [N, O, T]
        LayerOp::Linear => s.flatten(1, -2).transpose(1, 2),
        // [N, O, H', W'] -> [N, O, P]
        LayerOp::Conv2d { .. } => s.flatten(2, -1),
    }
}

/// The layer's input as `[N, P, K]`, so that an example's signal `[O, P]`
/// times it is the example's weight gradient `[O, K]`. For a convolution
/// this is im2col, through a strided view of the padded input (faster than
/// libtorch's `im2col` on the CPU): `K` runs over input channel, kernel row
/// and column, the order of the weight's elements.
pub(crate) fn unfold(tap: &Tap) -> Result<Tensor> {
    let input = tap.input.detach();
    match tap.op {
        LayerOp::Linear => Ok(input.flatten(1, -2)),
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
            let [ph, pw] = padding;
            let padded = if ph == 0 && pw == 0 {
                input.contiguous()
            } else {
                input.constant_pad_nd([pw, pw, ph, ph])
            };
            let [n, c, h, w] = padded.size()[..] else {
                return Err(NnError::BadTensor {
                    name: tap.name.clone(),
                    reason: format!("expected a 4-d input, got {:?}", padded.size()),
                });
            };
            let out =
                |size: i64, i: usize| (size - dilation[i] * (kernel[i] - 1) - 1) / stride[i] + 1;
            let (oh, ow) = (out(h, 0), out(w, 1));
            let st = padded.stride();
            let view = padded.as_strided(
                [n, c, kernel[0], kernel[1], oh, ow],
                [
                    st[0],
                    st[1],
                    st[2] * dilation[0],
                    st[3] * dilation[1],
                    st[2] * stride[0],
                    st[3] * stride[1],
                ],
                None,
            );
            // [N, K, P] in memory, seen as [N, P, K]
            Ok(view
                .reshape([n, c * kernel[0] * kernel[1], oh * ow])
                .transpose(1, 2))
        }
    }
}

/// `diag += sum over examples and column blocks of (S_n R_n)^2`, with
/// `signal` `[N, M, P]` (`M` a multiple of the output channels `O`) and
/// `unfolded` `[N, P, K]`, in chunks of examples that stay in cache.
fn add_squared_products(signal: &Tensor, unfolded: &Tensor, diag: &mut Tensor) {
    let [n, rows, _] = signal.size()[..] else {
        unreachable!("signals have three dimensions")
    };
    let k = unfolded.size()[2];
    let out = diag.size()[0];
    let mut flat = diag.view([out, k]);
    let chunk = (CHUNK_ELEMENTS / (rows * k)).max(1);
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let mut grads = signal
            .narrow(0, start, len)
            .bmm(&unfolded.narrow(0, start, len));
        let _ = grads.square_();
        flat += grads.view([len * rows / out, out, k]).sum_dim_intlist(
            [0i64].as_slice(),
            false,
            Kind::Float,
        );
        start += len;
    }
}

/// The exact GGN diagonal by one backward pass per example and class
/// through plain autograd (`forward` needs no taps). Slow; the oracle.
pub fn gauss_newton_diag_per_example(
    forward: &dyn Fn(&Tensor) -> Tensor,
    params: &[(String, Tensor)],
    batches: &[(Tensor, Tensor)],
) -> Result<(Vec<Tensor>, Cost)> {
    let mut diag = zeros_like_all(params);
    let cost = per_example_class_gradients(forward, &tensors(params), batches, |weight, g| {
        for (d, g) in diag.iter_mut().zip(g) {
            *d += g * g * weight;
        }
    })?;
    Ok((diag, cost))
}

/// Calls `each(w, g)` for every example `n` of `batches` and class `c`
/// with `g` the gradients of `inputs` of `z_c - p^T z` (`z` the example's
/// logits, `p` their softmax, held fixed), that is `J_n^T (e_c - p_n)`, and
/// `w = p_c / N`: then `G = sum w g g^T` over all calls, since `H_n =
/// sum_c p_c (e_c - p_n)(e_c - p_n)^T`. One backward pass per example and
/// class; `each` runs without a graph.
pub(crate) fn per_example_class_gradients(
    forward: &dyn Fn(&Tensor) -> Tensor,
    inputs: &[Tensor],
    batches: &[(Tensor, Tensor)],
    mut each: impl FnMut(f64, &[Tensor]),
) -> Result<Cost> {
    let started = Instant::now();
    let total = examples(batches);
    let mut cost = Cost::default();
    for (x, _) in batches {
        for n in 0..x.size()[0] {
            let z = forward(&x.narrow(0, n, 1)).squeeze_dim(0);
            let p = z.softmax(0, Kind::Float).detach();
            let mean_z = (&p * &z).sum(Kind::Float);
            for c in 0..z.size()[0] {
                let s = z.get(c) - &mean_z;
                let g = Tensor::f_run_backward(&[&s], inputs, true, false)?;
                cost.backward_passes += 1;
                let weight = p.double_value(&[c]) / total;
                tch::no_grad(|| each(weight, &g));
            }
        }
    }
    cost.seconds = started.elapsed().as_secs_f64();
    Ok(cost)
}

#[cfg(test)]
mod tests;
