//! `nq-exp offdiag`: what the off-diagonal Hessian terms of one layer (or
//! several) carry (issue 12, item 1). For quantizable tensors of a trained
//! model, the exact Hessian block of the mean training loss over the first
//! examples ([`hessian_block`]), or its Gauss-Newton block
//! ([`gauss_newton_block`]: positive semi-definite, and minutes where the
//! exact block takes hours), cross-layer terms included; then, for those
//! layers quantized alone with one codebook (k-means,
//! Hessian-weighted k-means and uniform, over `k` and the k-means seeds),
//! three numbers per quantization: the loss increase predicted by the
//! diagonal, `1/2 sum_i H_ii d_i^2`, by the full quadratic form
//! `1/2 d^T H d`, and the measured `L(q) - L(w)` on the same examples; and
//! the first-order term `g^T (q - w)` the quadratic predictors leave out
//! (the gradient `g` vanishes only at a minimum), alone and added to the
//! full form.
//! Each quantization is also rounded again onto its own centres with
//! compensation through the block ([`compensated`]), and measured the same
//! way. Rows as CSV (`--out`), a summary as JSON on stdout: per rounding,
//! the correlation of each predictor with the measured increase and its
//! median relative error, the median share of the quadratic form carried by
//! off-diagonal terms, and how much compensation changes the measured
//! increase.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use nq_exp::error::{bad_input, print_line};
use nq_nn::importance::{first_batches, gauss_newton_block, hessian_block};
use nq_nn::models::Model;
use nq_quant::compensation::{quadratic_form, CompensationParams, Compensator};
use nq_quant::kmeans::KmeansParams;
use nq_quant::method::Method;
use nq_quant::uniform::UniformParams;
use nq_quant::Quantization;
use serde::Serialize;
use tch::{Kind, Tensor};

use crate::train::{arch_and_data, load_trained, DeviceName};

mod figure;

/// Which curvature block `offdiag` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockName {
    /// The exact Hessian, by double backward (one pass per weight and batch).
    Hessian,
    /// The generalised Gauss-Newton matrix (one pass per example and class).
    GaussNewton,
}

/// Arguments of `nq-exp offdiag`.
#[derive(Debug, Args)]
pub struct OffdiagArgs {
    /// Architecture of the model: lenet5, lenet-300-100, small-conv, ...
    #[arg(long)]
    pub arch: String,
    /// The trained model (safetensors, as `nq-exp train --out` writes it).
    #[arg(long, value_name = "MODEL.safetensors")]
    pub model: PathBuf,
    /// Dataset: fashion-mnist, mnist, ...
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Data directory (default: the dataset's).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The quantizable tensor whose block is computed (such as
    /// `conv1.weight`), or several (comma-separated), quantized together
    /// with one codebook, their cross-layer terms in the block.
    #[arg(long, value_delimiter = ',', required = true)]
    pub layer: Vec<String>,
    /// The curvature block: the exact Hessian or the Gauss-Newton matrix.
    #[arg(long, value_enum, default_value = "hessian")]
    pub block: BlockName,
    /// The first N training examples: the loss whose Hessian is taken and
    /// whose increase is measured.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Examples per batch.
    #[arg(long, default_value_t = 250)]
    pub batch_size: usize,
    /// Numbers of clusters (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16,32,64")]
    pub k: Vec<usize>,
    /// k-means seeds 0 .. N-1.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Damping of the compensated rounding, relative to the mean diagonal.
    #[arg(long, default_value_t = 0.01)]
    pub damping: f64,
    /// Plain rounding only: no compensated rounding, whose factorisation
    /// of the block costs `O(n^3)` time and copies of the `n x n` block,
    /// and needs the block positive definite.
    #[arg(long)]
    pub no_compensation: bool,
    /// Torch CPU threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceName,
    /// Write one row per quantization and rounding here (CSV).
    #[arg(long, value_name = "ROWS.csv")]
    pub out: Option<PathBuf>,
    /// Draw each predictor against the measured increase into STEM.svg
    /// and STEM.png (log10 axes, a panel per rounding).
    #[arg(long, value_name = "STEM")]
    pub figure: Option<PathBuf>,
}

/// One quantization of the layer under one rounding.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    method: &'static str,
    k: usize,
    seed: u64,
    /// `plain` (the quantizer's own assignment) or `compensated`.
    rounding: &'static str,
    clusters: usize,
    diagonal: f64,
    /// `1/2 sum_l d_l^T G_ll d_l`: each layer's own block, no cross-layer
    /// terms (the full form with one layer).
    layerwise: f64,
    full: f64,
    measured: f64,
    /// The first-order term the quadratic predictors leave out,
    /// `g^T (q - w)` with `g` the gradient of the loss at `w`: small near
    /// a minimum.
    gradient: f64,
}

impl Row {
    /// The second-order model with its first-order term.
    pub(crate) fn full_with_gradient(&self) -> f64 {
        self.full + self.gradient
    }
}

/// How well a predictor follows the measured increase.
#[derive(Debug, Serialize)]
struct Fit {
    correlation: f64,
    median_relative_error: f64,
}

#[derive(Debug, Serialize)]
struct RoundingSummary {
    rounding: &'static str,
    quantizations: usize,
    diagonal: Fit,
    layerwise: Fit,
    full: Fit,
    /// The full form plus the first-order term `g^T (q - w)`.
    full_with_gradient: Fit,
    /// Median of `|g^T (q - w)| / full`: how much the first-order term the
    /// quadratic predictors leave out weighs against them.
    median_gradient_over_full: f64,
    /// Median of `(full - diagonal) / full`.
    median_off_diagonal_share: f64,
    /// Median of `(full - layerwise) / full`: what the cross-layer terms
    /// carry (0 with one layer).
    median_cross_layer_share: f64,
}

#[derive(Debug, Serialize)]
struct Summary {
    arch: String,
    layers: Vec<String>,
    block: BlockName,
    weights: usize,
    examples: usize,
    baseline_loss: f64,
    /// The Euclidean norm of the loss's gradient in the layers' weights.
    gradient_norm: f64,
    block_seconds: f64,
    hessian_vector_products: u64,
    backward_passes: u64,
    roundings: Vec<RoundingSummary>,
    /// Quantizations where compensation lowered the measured increase
    /// (`None` with `--no-compensation`).
    compensation_lowered: Option<usize>,
    /// Median of compensated / plain measured increase.
    median_compensated_over_plain: Option<f64>,
    total_seconds: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

fn fit(predicted: &[f64], measured: &[f64]) -> Fit {
    Fit {
        correlation: correlation(predicted, measured),
        median_relative_error: median(
            predicted
                .iter()
                .zip(measured)
                .map(|(p, m)| (p - m).abs() / m.abs().max(1e-12))
                .collect(),
        ),
    }
}

/// The mean loss over `batches` with the tensors `weights` set to
/// `values` (their entries one after the other; restored after).
fn loss_with(
    model: &Model,
    weights: &[Tensor],
    values: &[f32],
    batches: &[(Tensor, Tensor)],
) -> Result<f64> {
    tch::no_grad(|| -> Result<f64> {
        let saved: Vec<Tensor> = weights.iter().map(Tensor::copy).collect();
        let mut offset = 0;
        for weight in weights {
            let n = weight.numel();
            let mut w = weight.shallow_clone();
            w.copy_(
                &Tensor::from_slice(&values[offset..offset + n])
                    .view(weight.size().as_slice())
                    .to_device(weight.device()),
            );
            offset += n;
        }
        let (mut sum, mut count) = (0.0, 0usize);
        for (x, y) in batches {
            let logits = model.forward_t(x, false);
            sum += nq_nn::loss::cross_entropy_sum(&logits, y).double_value(&[]);
            count += nq_nn::loss::count(y);
        }
        for (weight, saved) in weights.iter().zip(&saved) {
            weight.shallow_clone().copy_(saved);
        }
        Ok(sum / count as f64)
    })
}

/// `1/2 d_r^T B_rr d_r` for the square sub-block `B_rr` of `block`
/// (`d.len()` squared entries, row-major) on `range`: one layer's own form,
/// read in place (a copy of a 25,000-weight layer's block would be 5 GB).
fn sub_block_form(d: &[f64], block: &[f64], range: &std::ops::Range<usize>) -> f64 {
    let n = d.len();
    let sum: f64 = range
        .clone()
        .map(|i| {
            let row = &block[i * n + range.start..i * n + range.end];
            d[i] * row
                .iter()
                .zip(&d[range.clone()])
                .map(|(h, d)| h * d)
                .sum::<f64>()
        })
        .sum();
    0.5 * sum
}

/// Runs `nq-exp offdiag`.
pub fn run(args: &OffdiagArgs) -> Result<()> {
    let started = Instant::now();
    if args.k.iter().any(|&k| k < 1) || args.seeds < 1 {
        return Err(bad_input("--k and --seeds: expected at least 1"));
    }
    let device = args.device.resolve()?;
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads as i32);
    }
    let (arch, _, splits) = arch_and_data(&args.arch, &args.data, args.data_dir.as_deref())?;
    let model = load_trained(arch, &splits, &args.model, device)?;
    let names: Vec<&str> = model
        .quantizable()
        .iter()
        .map(|q| q.name.as_str())
        .collect();
    if let Some(unknown) = args.layer.iter().find(|l| !names.contains(&l.as_str())) {
        return Err(bad_input(format!(
            "--layer {unknown}: not a quantizable tensor of {arch} ({})",
            names.join(", ")
        )));
    }
    let weights = args
        .layer
        .iter()
        .map(|l| model.tensor(l))
        .collect::<Result<Vec<Tensor>, _>>()?;
    let batches: Vec<(Tensor, Tensor)> =
        first_batches(splits.train.as_ref(), args.samples, args.batch_size)
            .map_err(|e| bad_input(e.to_string()))?
            .into_iter()
            .map(|(x, y)| (x.to_device(device), y.to_device(device)))
            .collect();
    let examples: usize = batches.iter().map(|(_, y)| nq_nn::loss::count(y)).sum();
    let forward = |x: &Tensor| model.forward_t(x, false);
    let (block, cost) = match args.block {
        BlockName::Hessian => hessian_block(&forward, &weights, &batches)?,
        BlockName::GaussNewton => gauss_newton_block(&forward, &weights, &batches)?,
    };
    let mut w: Vec<f32> = Vec::new();
    let mut ranges = Vec::new();
    for weight in &weights {
        let values = Vec::<f32>::try_from(weight.detach().to_kind(Kind::Float).flatten(0, -1))?;
        ranges.push(w.len()..w.len() + values.len());
        w.extend(values);
    }
    let n = w.len();
    let diagonal: Vec<f64> = (0..n).map(|i| block[i * n + i]).collect();
    let h: Vec<f32> = diagonal.iter().map(|&v| v.max(0.0) as f32).collect();
    let ones = vec![1f32; n];
    let baseline_loss = loss_with(&model, &weights, &w, &batches)?;
    let gradient = loss_gradient(&model, &weights, &batches, examples)?;

    let curvature = Curvature {
        block: &block,
        diagonal: &diagonal,
        ranges: &ranges,
        gradient: &gradient,
    };
    let mut rows = Vec::new();
    let compensator = (!args.no_compensation)
        .then(|| {
            Compensator::new(
                &block,
                n,
                &CompensationParams {
                    damping: args.damping,
                    ..CompensationParams::default()
                },
            )
        })
        .transpose()
        .with_context(|| {
            format!(
                "compensated rounding through the {} block (an exact Hessian across layers \
                 need not be positive definite): raise --damping, or pass --no-compensation \
                 for plain rounding only",
                match args.block {
                    BlockName::Hessian => "exact Hessian",
                    BlockName::GaussNewton => "Gauss-Newton",
                }
            )
        })?;
    for &k in &args.k {
        for seed in 0..args.seeds {
            let kmeans = Method::Kmeans(KmeansParams {
                seed,
                ..KmeansParams::new(k)
            });
            let mut runs: Vec<(&'static str, Method, &[f32])> = vec![
                ("kmeans", kmeans.clone(), &ones),
                ("hessian-kmeans", kmeans, &h),
            ];
            // uniform has no seed of its own
            if seed == 0 {
                runs.push(("uniform", Method::Uniform(UniformParams::cells(k)), &ones));
            }
            for (name, method, importance) in runs {
                let plain = method.quantize(&w, importance)?;
                let mut roundings = vec![("plain", plain)];
                if let Some(compensator) = &compensator {
                    let comp = compensator.round(&w, &roundings[0].1.centres)?;
                    roundings.push(("compensated", comp));
                }
                for (rounding, q) in &roundings {
                    rows.push(
                        measure(&model, &weights, &w, &curvature, q, &batches, baseline_loss).map(
                            |Predicted {
                                 diagonal,
                                 layerwise,
                                 full,
                                 gradient,
                                 measured,
                             }| Row {
                                method: name,
                                k,
                                seed,
                                rounding,
                                clusters: q.clusters(),
                                diagonal,
                                layerwise,
                                full,
                                measured,
                                gradient,
                            },
                        )?,
                    );
                }
            }
        }
    }
    if rows.is_empty() {
        bail!("no quantization to measure");
    }
    if let Some(out) = &args.out {
        write_rows(out, &rows)?;
    }
    if let Some(stem) = &args.figure {
        let block = match args.block {
            BlockName::Hessian => "Hessian",
            BlockName::GaussNewton => "Gauss-Newton",
        };
        figure::write(&rows, &args.layer, block, stem)?;
    }
    let roundings = ["plain", "compensated"]
        .into_iter()
        .filter(|rounding| rows.iter().any(|r| r.rounding == *rounding))
        .map(|rounding| {
            let these: Vec<&Row> = rows.iter().filter(|r| r.rounding == rounding).collect();
            let measured: Vec<f64> = these.iter().map(|r| r.measured).collect();
            let diagonal: Vec<f64> = these.iter().map(|r| r.diagonal).collect();
            let layerwise: Vec<f64> = these.iter().map(|r| r.layerwise).collect();
            let full: Vec<f64> = these.iter().map(|r| r.full).collect();
            let full_with_gradient: Vec<f64> =
                these.iter().map(|r| r.full_with_gradient()).collect();
            let share = |part: fn(&Row) -> f64| {
                median(
                    these
                        .iter()
                        .map(|r| (r.full - part(r)) / r.full.abs().max(1e-12))
                        .collect(),
                )
            };
            RoundingSummary {
                rounding,
                quantizations: these.len(),
                diagonal: fit(&diagonal, &measured),
                layerwise: fit(&layerwise, &measured),
                full: fit(&full, &measured),
                full_with_gradient: fit(&full_with_gradient, &measured),
                median_gradient_over_full: median(
                    these
                        .iter()
                        .map(|r| r.gradient.abs() / r.full.abs().max(1e-12))
                        .collect(),
                ),
                median_off_diagonal_share: share(|r| r.diagonal),
                median_cross_layer_share: share(|r| r.layerwise),
            }
        })
        .collect();
    // each plain row is followed by its compensated one, if any
    let pairs: Option<Vec<(f64, f64)>> = compensator.as_ref().map(|_| {
        rows.chunks_exact(2)
            .map(|pair| (pair[0].measured, pair[1].measured))
            .collect()
    });
    let summary = Summary {
        arch: arch.to_string(),
        layers: args.layer.clone(),
        block: args.block,
        weights: n,
        examples,
        baseline_loss,
        gradient_norm: gradient.iter().map(|g| g * g).sum::<f64>().sqrt(),
        block_seconds: cost.seconds,
        hessian_vector_products: cost.hessian_vector_products,
        backward_passes: cost.backward_passes,
        roundings,
        compensation_lowered: pairs
            .as_ref()
            .map(|pairs| pairs.iter().filter(|(p, c)| c < p).count()),
        median_compensated_over_plain: pairs
            .as_ref()
            .map(|pairs| median(pairs.iter().map(|(p, c)| c / p.abs().max(1e-12)).collect())),
        total_seconds: started.elapsed().as_secs_f64(),
    };
    print_line(&serde_json::to_string_pretty(&summary)?)
}

/// The curvature the predictors use: the whole block, its diagonal, and
/// the range of each layer's weights (its own block on the diagonal).
struct Curvature<'a> {
    block: &'a [f64],
    diagonal: &'a [f64],
    ranges: &'a [std::ops::Range<usize>],
    /// The loss's gradient at the weights, in their order.
    gradient: &'a [f64],
}

/// The gradient of the mean loss over `batches` (`examples` predictions in
/// all) in `weights`, their entries one after the other.
fn loss_gradient(
    model: &Model,
    weights: &[Tensor],
    batches: &[(Tensor, Tensor)],
    examples: usize,
) -> Result<Vec<f64>> {
    let mut sum: Option<Vec<Tensor>> = None;
    for (x, y) in batches {
        let logits = model.forward_t(x, false);
        let loss = nq_nn::loss::cross_entropy_sum(&logits, y) / examples as f64;
        let grads = Tensor::f_run_backward(&[&loss], weights, false, false)?;
        sum = Some(match sum {
            None => grads,
            Some(acc) => acc.iter().zip(&grads).map(|(a, g)| a + g).collect(),
        });
    }
    let mut out = Vec::new();
    for g in sum.unwrap_or_default() {
        out.extend(Vec::<f64>::try_from(
            g.to_kind(Kind::Double).flatten(0, -1),
        )?);
    }
    Ok(out)
}

/// The loss increase of one quantization: predicted (diagonal, layer by
/// layer, full), the first-order term, and measured.
struct Predicted {
    diagonal: f64,
    layerwise: f64,
    full: f64,
    gradient: f64,
    measured: f64,
}

/// Predicted and measured loss increase of `q`.
fn measure(
    model: &Model,
    weights: &[Tensor],
    w: &[f32],
    curvature: &Curvature<'_>,
    q: &Quantization,
    batches: &[(Tensor, Tensor)],
    baseline_loss: f64,
) -> Result<Predicted> {
    let values = q.quantized();
    let d: Vec<f64> = w
        .iter()
        .zip(&values)
        .map(|(&a, &b)| f64::from(a) - f64::from(b))
        .collect();
    let diag = 0.5
        * d.iter()
            .zip(curvature.diagonal)
            .map(|(d, h)| h * d * d)
            .sum::<f64>();
    let layerwise = curvature
        .ranges
        .iter()
        .map(|r| sub_block_form(&d, curvature.block, r))
        .sum();
    let full = quadratic_form(&d, curvature.block);
    // q - w = -d
    let gradient = -d
        .iter()
        .zip(curvature.gradient)
        .map(|(d, g)| d * g)
        .sum::<f64>();
    let measured = loss_with(model, weights, &values, batches)? - baseline_loss;
    Ok(Predicted {
        diagonal: diag,
        layerwise,
        full,
        gradient,
        measured,
    })
}

fn write_rows(path: &std::path::Path, rows: &[Row]) -> Result<()> {
    let tmp = path.with_extension("tmp.csv");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?,
    );
    writeln!(
        f,
        "method,k,seed,rounding,clusters,diagonal,layerwise,full,measured,gradient"
    )?;
    for r in rows {
        writeln!(
            f,
            "{},{},{},{},{},{:e},{:e},{:e},{:e},{:e}",
            r.method,
            r.k,
            r.seed,
            r.rounding,
            r.clusters,
            r.diagonal,
            r.layerwise,
            r.full,
            r.measured,
            r.gradient
        )?;
    }
    f.into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?
        .sync_all()?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use nq_nn::models::{Arch, InputSpec};
    use tch::Device;

    use super::*;

    #[test]
    fn the_gradient_is_the_loss_s_slope_in_each_weight() {
        tch::manual_seed(0);
        let spec = InputSpec {
            image: [1, 8, 8],
            classes: 2,
        };
        let model = Model::new(Arch::SmallConv, spec, Device::Cpu).unwrap();
        let xs = Tensor::rand([6, 1, 8, 8], (Kind::Float, Device::Cpu));
        let ys = Tensor::from_slice(&[0i64, 1, 1, 0, 1, 0]);
        let batches = vec![
            (xs.narrow(0, 0, 4), ys.narrow(0, 0, 4)),
            (xs.narrow(0, 4, 2), ys.narrow(0, 4, 2)),
        ];
        let name = model.quantizable()[0].name.clone();
        let weights = vec![model.tensor(&name).unwrap()];
        let w = Vec::<f32>::try_from(weights[0].detach().flatten(0, -1)).unwrap();
        let gradient = loss_gradient(&model, &weights, &batches, 6).unwrap();
        assert_eq!(gradient.len(), w.len());
        let step = 1e-3f32;
        for i in [0, w.len() / 2, w.len() - 1] {
            let moved = |by: f32| {
                let mut v = w.clone();
                v[i] += by;
                loss_with(&model, &weights, &v, &batches).unwrap()
            };
            let slope = (moved(step) - moved(-step)) / (2.0 * f64::from(step));
            assert!(
                (slope - gradient[i]).abs() <= 1e-2 * (1e-2 + gradient[i].abs()),
                "weight {i}: finite difference {slope} against {}",
                gradient[i]
            );
        }
        // the weights are as they were
        assert_eq!(
            Vec::<f32>::try_from(weights[0].detach().flatten(0, -1)).unwrap(),
            w
        );
    }
}
