//! `nq-exp quantize`: one weight vector, one method, a JSON summary.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use nq_quant::ecsq::{EcsqInit, EcsqParams};
use nq_quant::huffman::Coding;
use nq_quant::kmeans::KmeansParams;
use nq_quant::kmeans_optimal::OptimalParams;
use nq_quant::method::Method;
use nq_quant::size::{sequence_size, SizeReport};
use nq_quant::uniform::{CellWidth, UniformParams};
use nq_quant::universal::UniversalParams;
use nq_quant::{stats, unit_importance};
use serde::Serialize;

use crate::error::bad_input;
use crate::npy::{read_floats, write_quantization_npz};

/// The quantizers of paper.md section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodName {
    /// Weighted k-means (Lloyd).
    Kmeans,
    /// Exact 1-D optimum of the weighted k-means objective.
    KmeansOptimal,
    /// Uniform quantization.
    Uniform,
    /// Iterative entropy-constrained scalar quantization.
    Ecsq,
    /// Uniform quantization with a random dither shared through the seed.
    Universal,
}

/// Arguments of `nq-exp quantize`.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// Weights to quantize: a float32 or float64 .npy file (any shape).
    #[arg(long, value_name = "W.npy")]
    pub weights: PathBuf,
    /// Importance per weight (same shape), e.g. a Hessian diagonal; all ones if omitted.
    #[arg(long, value_name = "H.npy")]
    pub importance: Option<PathBuf>,
    /// The quantizer and its parameters.
    #[command(flatten)]
    pub quantizer: MethodArgs,
    /// Code for the cluster indices: huffman, fixed, or context (adaptive
    /// arithmetic coding).
    #[arg(long, default_value = "huffman")]
    pub coding: String,
    /// Write the centres (float32) and the assignment (uint32, shaped like the weights) to this .npz.
    #[arg(long, value_name = "OUT.npz")]
    pub out: Option<PathBuf>,
}

/// A quantizer and its parameters, as `quantize` and `compress` take them.
#[derive(Debug, Args)]
pub struct MethodArgs {
    /// Quantizer.
    #[arg(long, value_enum)]
    pub method: MethodName,
    /// Clusters (kmeans, kmeans-optimal), cells (uniform, universal), or initial clusters (ecsq, default 256).
    #[arg(long)]
    pub k: Option<usize>,
    /// Cell width of the uniform and universal quantizers (instead of --k).
    #[arg(long, allow_negative_numbers = true)]
    pub delta: Option<f64>,
    /// Lagrange multiplier of ECSQ (required for ecsq).
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// Initialisation: kmeans++, linear or density (kmeans); uniform or kmeans++ (ecsq).
    #[arg(long)]
    pub init: Option<String>,
    /// Centre of a uniform or universal cell: weighted-mean, mean or midpoint
    /// (default: weighted-mean for uniform, midpoint for universal).
    #[arg(long)]
    pub center: Option<String>,
    /// Most iterations (kmeans: 1000, ecsq: 100).
    #[arg(long)]
    pub max_iter: Option<usize>,
    /// ECSQ stops when the Lagrangian falls by less than this (relative).
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
    pub tol: f64,
    /// Seed of the initialisation, or of universal quantization's dither.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The JSON object printed on stdout.
#[derive(Debug, Serialize)]
struct Summary {
    method: &'static str,
    n: usize,
    k: Option<usize>,
    delta: Option<f64>,
    lambda: Option<f64>,
    clusters_used: usize,
    iterations: usize,
    /// The objective after initialisation and after each iteration (the
    /// Lagrangian for ECSQ, `D_h` for k-means; empty for one-shot methods).
    history: Vec<f64>,
    distortion_h: f64,
    squared_error: f64,
    entropy: f64,
    coding: Coding,
    average_codeword_length: f64,
    compressed_bits: u64,
    compression_ratio: f64,
    seconds: f64,
    size: SizeReport,
}

fn reject_unused(args: &MethodArgs, method: MethodName) -> Result<()> {
    let name = method
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let unused = |flag: &str| bad_input(format!("--{flag} does not apply to --method {name}"));
    let cells = matches!(method, MethodName::Uniform | MethodName::Universal);
    if args.delta.is_some() && !cells {
        return Err(unused("delta"));
    }
    if args.center.is_some() && !cells {
        return Err(unused("center"));
    }
    if args.lambda.is_some() && method != MethodName::Ecsq {
        return Err(unused("lambda"));
    }
    if args.init.is_some() && !matches!(method, MethodName::Kmeans | MethodName::Ecsq) {
        return Err(unused("init"));
    }
    Ok(())
}

/// `--k` cells or a step `--delta`, exactly one of them.
fn cell_width(args: &MethodArgs, method: &str) -> Result<CellWidth> {
    match (args.k, args.delta) {
        (Some(k), None) => Ok(CellWidth::Cells(k)),
        (None, Some(delta)) => Ok(CellWidth::Step(delta)),
        _ => Err(bad_input(format!(
            "{method} needs exactly one of --k and --delta"
        ))),
    }
}

/// Builds the quantizer from the arguments; every mistake is bad input.
pub fn method_from_args(args: &MethodArgs) -> Result<Method> {
    reject_unused(args, args.method)?;
    let need_k = |what: &str| {
        args.k
            .ok_or_else(|| bad_input(format!("--k is required for {what}")))
    };
    let method = match args.method {
        MethodName::Kmeans => Method::Kmeans(KmeansParams {
            k: need_k("kmeans")?,
            init: args
                .init
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default(),
            max_iter: args.max_iter.unwrap_or(1000),
            seed: args.seed,
        }),
        MethodName::KmeansOptimal => Method::KmeansOptimal(OptimalParams {
            k: need_k("kmeans-optimal")?,
        }),
        MethodName::Uniform => Method::Uniform(UniformParams {
            width: cell_width(args, "uniform")?,
            centre: args.center.as_deref().unwrap_or("weighted-mean").parse()?,
        }),
        MethodName::Universal => Method::Universal(UniversalParams {
            width: cell_width(args, "universal")?,
            centre: args.center.as_deref().unwrap_or("midpoint").parse()?,
            seed: args.seed,
        }),
        MethodName::Ecsq => {
            let init = match args.init.as_deref() {
                None | Some("uniform") => EcsqInit::Uniform,
                Some("kmeans++") => EcsqInit::KmeansPlusPlus,
                Some(other) => {
                    return Err(bad_input(format!(
                        "--init {other}: ecsq starts from uniform or kmeans++"
                    )))
                }
            };
            Method::Ecsq(EcsqParams {
                lambda: args
                    .lambda
                    .ok_or_else(|| bad_input("--lambda is required for ecsq"))?,
                k_init: args.k.unwrap_or(256),
                init,
                max_iter: args.max_iter.unwrap_or(100),
                tol: args.tol,
                seed: args.seed,
            })
        }
    };
    method.validate()?;
    Ok(method)
}

/// Runs `nq-exp quantize`: prints one JSON object on stdout.
pub fn run(args: &QuantizeArgs) -> Result<()> {
    let method = method_from_args(&args.quantizer)?;
    if args.out.is_some() && matches!(method, Method::Universal(_)) {
        // the .npz holds centres and indices, not the dither that goes with them
        return Err(bad_input(
            "--out does not apply to --method universal: its .npz would lack the dither; \
             `nq-exp compress` writes a .nqz that keeps it",
        ));
    }
    let coding: Coding = args.coding.parse()?;
    let weights = read_floats(&args.weights)?;
    let importance = match &args.importance {
        Some(path) => {
            let h = read_floats(path)?;
            if h.shape != weights.shape {
                return Err(bad_input(format!(
                    "{} has shape {:?} but the weights {} have shape {:?}",
                    path.display(),
                    h.shape,
                    args.weights.display(),
                    weights.shape
                )));
            }
            h.values
        }
        None => unit_importance(weights.values.len()),
    };
    let w = &weights.values;
    let started = Instant::now();
    let q = method
        .quantize(w, &importance)
        .with_context(|| format!("quantizing {}", args.weights.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let st = stats(w, &importance, &q);
    let size = sequence_size(&q.assignment, q.centres.len(), coding)?;
    if let Some(out) = &args.out {
        write_quantization_npz(out, &q.centres, &q.assignment, &weights.shape)?;
    }
    let summary = Summary {
        method: method.name(),
        n: w.len(),
        k: match &method {
            Method::Ecsq(p) => Some(p.k_init),
            _ => args.quantizer.k,
        },
        delta: args.quantizer.delta,
        lambda: args.quantizer.lambda,
        clusters_used: st.clusters_used,
        iterations: st.iterations,
        history: q.history.clone(),
        distortion_h: st.distortion_h,
        squared_error: st.squared_error,
        entropy: st.entropy,
        coding,
        average_codeword_length: size.average_codeword_length,
        compressed_bits: size.total_bits,
        compression_ratio: size.compression_ratio,
        seconds,
        size,
    };
    crate::error::print_line(&serde_json::to_string(&summary)?)?;
    Ok(())
}
