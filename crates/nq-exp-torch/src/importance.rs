//! `nq-exp importance`: the Hessian diagonal (or its Gauss-Newton or
//! Monte Carlo estimate) of a trained model's quantizable weights over the
//! first training examples, saved as safetensors under the weights' names,
//! with what it cost as JSON on stdout.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use nq_exp::error::{bad_input, print_line};
use nq_nn::importance::{hessian_importance, HessianEstimator};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::train::{arch_and_data, load_trained, DeviceName};

/// Estimators on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EstimatorName {
    /// Exact generalised Gauss-Newton diagonal, batched.
    GaussNewton,
    /// Monte Carlo Gauss-Newton diagonal (labels drawn from the model).
    GaussNewtonMc,
    /// Hutchinson's estimate of the Hessian diagonal.
    Hutchinson,
    /// Exact Hessian diagonal, one Hessian row per weight (tiny nets).
    Exact,
    /// The exact Gauss-Newton diagonal by one backward pass per example
    /// and class: the slow reference the batched one is checked against.
    GaussNewtonPerExample,
}

/// Arguments of `nq-exp importance`.
#[derive(Debug, Args)]
pub struct ImportanceArgs {
    /// Architecture of the model: lenet5, lenet-300-100, resnet20, ...
    #[arg(long)]
    pub arch: String,
    /// The trained model (safetensors, as `nq-exp train --out` writes it).
    #[arg(long, value_name = "MODEL.safetensors")]
    pub model: PathBuf,
    /// Dataset: fashion-mnist, mnist, cifar10, imagenet or shakespeare.
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Data directory (default: the dataset's).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Estimator.
    #[arg(long, value_enum, default_value = "gauss-newton")]
    pub estimator: EstimatorName,
    /// The first N training examples (all of them when larger).
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Examples per batch (128 was the fastest for the batched GGN of
    /// LeNet-5 here, of 32 to 1,000).
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Rademacher probes per batch (hutchinson).
    #[arg(long, default_value_t = 1)]
    pub probes: usize,
    /// Labels drawn per example, or per position of a language model (gauss-newton-mc).
    #[arg(long, default_value_t = 1)]
    pub draws: usize,
    /// Seed of the probes or the drawn labels.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Torch CPU threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceName,
    /// Save the diagonal here (safetensors, one tensor per weight, same names).
    #[arg(long, value_name = "H.safetensors")]
    pub out: Option<PathBuf>,
}

/// One tensor of the estimate.
#[derive(Debug, Serialize)]
struct TensorSummary {
    name: String,
    elements: i64,
    mean: f64,
    max: f64,
}

/// The JSON object printed on stdout.
#[derive(Debug, Serialize)]
struct Summary {
    arch: String,
    dataset: String,
    estimator: String,
    examples: usize,
    batch_size: usize,
    /// Seconds of the estimate alone (data and model loaded).
    seconds: f64,
    examples_per_second: f64,
    backward_passes: u64,
    hessian_vector_products: u64,
    clamped_share: f64,
    tensors: Vec<TensorSummary>,
    /// Seconds of the whole command, loading included.
    total_seconds: f64,
    threads: i32,
    device: String,
    torch_version: &'static str,
}

/// Runs `nq-exp importance`.
pub fn run(args: &ImportanceArgs) -> Result<()> {
    let started = Instant::now();
    let device = args.device.resolve()?;
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads as i32);
    }
    let (arch, dataset, splits) = arch_and_data(&args.arch, &args.data, args.data_dir.as_deref())?;
    let model = load_trained(arch, &splits, &args.model, device)?;
    let estimator = match args.estimator {
        EstimatorName::GaussNewton => HessianEstimator::GaussNewton,
        EstimatorName::GaussNewtonMc => HessianEstimator::GaussNewtonMc { draws: args.draws },
        EstimatorName::Hutchinson => HessianEstimator::Hutchinson {
            probes: args.probes,
        },
        EstimatorName::Exact => HessianEstimator::Exact,
        EstimatorName::GaussNewtonPerExample => HessianEstimator::GaussNewtonPerExample,
    };
    let examples = args.samples.min(splits.train.len());
    let imp = hessian_importance(
        &model,
        splits.train.as_ref(),
        estimator,
        args.samples,
        args.batch_size,
        args.seed,
    )
    .map_err(|e| match e {
        nq_nn::NnError::InvalidSetting { .. } => bad_input(e.to_string()),
        e => anyhow::Error::new(e),
    })?;
    if let Some(out) = &args.out {
        let tmp = out.with_extension("tmp.safetensors");
        let named: Vec<(&str, Tensor)> = imp
            .by_name
            .iter()
            .map(|(n, t)| (n.as_str(), t.to_device(Device::Cpu)))
            .collect();
        Tensor::write_safetensors(&named, &tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, out)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    }
    let tensors = model
        .quantizable()
        .iter()
        .filter_map(|q| imp.by_name.get(&q.name).map(|t| (q, t)))
        .map(|(q, t)| TensorSummary {
            name: q.name.clone(),
            elements: t.numel() as i64,
            mean: t.mean(Kind::Double).double_value(&[]),
            max: t.max().double_value(&[]),
        })
        .collect();
    let summary = Summary {
        arch: arch.to_string(),
        dataset: dataset.to_string(),
        estimator: args
            .estimator
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned()),
        examples,
        batch_size: args.batch_size,
        seconds: imp.cost.seconds,
        examples_per_second: examples as f64 / imp.cost.seconds.max(1e-12),
        backward_passes: imp.cost.backward_passes,
        hessian_vector_products: imp.cost.hessian_vector_products,
        clamped_share: imp.clamped_share,
        tensors,
        total_seconds: started.elapsed().as_secs_f64(),
        threads: tch::get_num_threads(),
        device: format!("{device:?}").to_lowercase(),
        torch_version: nq_nn::torch_version(),
    };
    print_line(&serde_json::to_string(&summary)?)
}
