//! `nq-exp train`: train one of the paper's networks and report its test
//! accuracy and the seconds per epoch.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use nq_nn::data::{Dataset, Source, Splits};
use nq_nn::models::{Arch, InputSpec, Model};
use nq_nn::train::{evaluate, train, OptimizerConfig, Schedule, TrainConfig};
use serde::Serialize;
use tch::Device;

use nq_exp::error::{bad_input, print_line};

/// Optimizers on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerName {
    /// SGD with momentum.
    Sgd,
    /// Adam.
    Adam,
}

/// Learning-rate schedules on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleName {
    /// The same rate throughout.
    Constant,
    /// Cosine decay to 0.
    Cosine,
}

/// Devices on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceName {
    /// The CPU.
    Cpu,
    /// The first CUDA device.
    Cuda,
}

impl DeviceName {
    /// The torch device; bad input when CUDA is asked for and libtorch sees
    /// none.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceName::Cpu => Ok(Device::Cpu),
            DeviceName::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceName::Cuda => Err(bad_input("--device cuda: libtorch sees no CUDA device")),
        }
    }
}

/// Arguments of `nq-exp train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Architecture: lenet5, lenet-300-100, resnet20, resnet32, resnet56, alexnet, small-conv, vit, char-gpt.
    #[arg(long)]
    pub arch: String,
    /// Dataset: fashion-mnist, mnist, cifar10, imagenet or shakespeare.
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Data directory (default: the dataset's).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Only the first N training examples (quick runs).
    #[arg(long)]
    pub train_examples: Option<usize>,
    /// Epochs.
    #[arg(long, default_value_t = 6)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Optimizer.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerName,
    /// Learning rate (default 1e-3 for Adam, 0.05 for SGD).
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value = "cosine")]
    pub schedule: ScheduleName,
    /// Seed of the initialisation and the example order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Torch CPU threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceName,
    /// Save the trained model here (safetensors).
    #[arg(long, value_name = "MODEL.safetensors")]
    pub out: Option<PathBuf>,
}

/// The JSON object printed on stdout.
#[derive(Debug, Serialize)]
struct Summary {
    arch: String,
    dataset: String,
    parameters: i64,
    train_examples: usize,
    epochs: usize,
    epoch_losses: Vec<f64>,
    seconds_per_epoch: f64,
    test_top1: f64,
    test_top5: f64,
    test_loss: f64,
    /// The test loss in bits per character, for a text dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    test_bits_per_character: Option<f64>,
    seconds: f64,
    threads: i32,
    device: String,
    torch_version: &'static str,
}

/// The architecture and the data set named on the command line, and the
/// data set's splits loaded from `data_dir` (or its own directory); a bad name or a
/// missing directory is bad input (exit status 2).
pub fn arch_and_data(
    arch: &str,
    data: &str,
    data_dir: Option<&std::path::Path>,
) -> Result<(Arch, Dataset, Splits)> {
    let arch: Arch = arch
        .parse()
        .map_err(|e: nq_catalog::UnknownName| bad_input(e.to_string()))?;
    let dataset: Dataset = data
        .parse()
        .map_err(|e: nq_catalog::UnknownName| bad_input(e.to_string()))?;
    let splits = nq_nn::data::load(dataset, data_dir).map_err(|e| bad_input(e.to_string()))?;
    Ok((arch, dataset, splits))
}

/// A model of `arch` for the images of `splits`, with the trained weights
/// of `path` (safetensors); a bad file is bad input.
pub fn load_trained(
    arch: Arch,
    splits: &Splits,
    path: &std::path::Path,
    device: Device,
) -> Result<Model> {
    let input = InputSpec {
        image: splits.train.image_shape(),
        classes: splits.train.classes(),
    };
    let mut model = Model::new(arch, input, device).map_err(|e| bad_input(e.to_string()))?;
    model.load(path).map_err(|e| bad_input(e.to_string()))?;
    Ok(model)
}

/// Runs `nq-exp train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let started = Instant::now();
    let device = args.device.resolve()?;
    let (arch, dataset, splits) = arch_and_data(&args.arch, &args.data, args.data_dir.as_deref())?;
    let train_set: Box<dyn Source> = match args.train_examples {
        Some(n) => Box::new(crate::run::truncated(splits.train.as_ref(), n)?),
        None => splits.train,
    };
    let input = InputSpec {
        image: train_set.image_shape(),
        classes: train_set.classes(),
    };
    tch::manual_seed(args.seed as i64);
    let model = Model::new(arch, input, device).map_err(|e| bad_input(e.to_string()))?;
    let optimizer = match args.optimizer {
        OptimizerName::Adam => OptimizerConfig::Adam {
            weight_decay: args.weight_decay,
        },
        OptimizerName::Sgd => OptimizerConfig::Sgd {
            momentum: args.momentum,
            weight_decay: args.weight_decay,
        },
    };
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr.unwrap_or(match args.optimizer {
            OptimizerName::Adam => 1e-3,
            OptimizerName::Sgd => 0.05,
        }),
        optimizer,
        schedule: match args.schedule {
            ScheduleName::Constant => Schedule::Constant,
            ScheduleName::Cosine => Schedule::Cosine,
        },
        seed: args.seed,
        max_batches_per_epoch: None,
        threads: args.threads,
    };
    config.validate().map_err(|e| bad_input(e.to_string()))?;
    let (report, _) = train(&model, train_set.as_ref(), &config, None, &mut |e| {
        eprintln!(
            "epoch {}/{}: loss {:.4}, lr {:.2e}, {:.1} s",
            e.epoch + 1,
            config.epochs,
            e.loss,
            e.lr,
            e.seconds
        );
    })?;
    let eval = evaluate(&model, splits.test.as_ref(), 1000)?;
    if let Some(out) = &args.out {
        model.save(out).map_err(|e| bad_input(e.to_string()))?;
    }
    let summary = Summary {
        arch: arch.to_string(),
        dataset: dataset.to_string(),
        parameters: model.parameter_count(),
        train_examples: train_set.len(),
        epochs: config.epochs,
        epoch_losses: report.epochs.iter().map(|e| e.loss).collect(),
        seconds_per_epoch: report.seconds() / config.epochs as f64,
        test_top1: eval.top1,
        test_top5: eval.top5,
        test_loss: eval.loss,
        test_bits_per_character: (dataset == Dataset::Shakespeare).then(|| eval.bits()),
        seconds: started.elapsed().as_secs_f64(),
        threads: tch::get_num_threads(),
        device: format!("{device:?}").to_lowercase(),
        torch_version: nq_nn::torch_version(),
    };
    print_line(&serde_json::to_string(&summary)?)
}
