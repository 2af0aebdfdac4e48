//! The stages of one cell (design.md, "Data flow of one grid cell"), each
//! computed once and kept in the cache: the trained baseline, the pruned
//! and retrained network, the importance of its weights, and the result
//! (quantized, fine-tuned, evaluated, sized and packed as `.nqz`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nq_nn::apply::{quantize_model, Applied};
use nq_nn::compensate::{compensate, compensate_sequential, input_moments};
use nq_nn::data::Source;
use nq_nn::finetune::{finetune, CenterGrad, FinetuneConfig};
use nq_nn::importance::{
    adam_importance, adam_statistics, hessian_importance, HessianEstimator, Importance,
};
use nq_nn::models::{InputSpec, Model};
use nq_nn::prune::Masks;
use nq_nn::train::{
    evaluate, train, AnyOptimizer, EpochReport, Eval, OptimizerConfig, Schedule, TrainConfig,
};
use nq_quant::compensation::CompensationParams;
use nq_quant::ecsq::{EcsqInit, EcsqParams};
use nq_quant::kmeans::KmeansParams;
use nq_quant::kmeans_optimal::OptimalParams;
use nq_quant::method::Method;
use nq_quant::nqz;
use nq_quant::scope::WeightTensor;
use nq_quant::uniform::{CellWidth, UniformParams};
use nq_quant::universal::UniversalParams;
use nq_report::Row;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::pack::{pack, DitheredCodebook};
use super::soft_sharing::{soft_share, SoftSharingRecord};
use nq_exp::grid::spec::{
    CellSpec, EstimatorSpec, FinetuneSpec, Grid, MethodSpec, OptimizerSpec, ScheduleSpec, TrainSpec,
};

/// Examples per batch when evaluating.
const EVAL_BATCH: usize = 1000;

/// Accuracy of a network on the test set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Top-1, percent.
    pub top1: f64,
    /// Top-5, percent, where there are more than 10 classes.
    pub top5: Option<f64>,
    /// Mean cross-entropy.
    pub loss: f64,
}

impl Accuracy {
    pub(super) fn of(model: &Model, test: &dyn Source) -> Result<Self> {
        let Eval {
            top1, top5, loss, ..
        } = evaluate(model, test, EVAL_BATCH)?;
        Ok(Self {
            top1: 100.0 * top1,
            top5: (test.classes() > 10).then_some(100.0 * top5),
            loss,
        })
    }
}

/// What the baseline and pruning stages record in their `done.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// Test accuracy of the network the stage ends with.
    pub accuracy: Accuracy,
    /// Training loss of each epoch.
    pub epoch_losses: Vec<f64>,
    /// Seconds the stage took.
    pub seconds: f64,
    /// Weights kept and weights maskable, when pruned.
    pub kept: Option<(u64, u64)>,
}

/// What the importance stage records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimated {
    /// Seconds the estimate took.
    pub seconds: f64,
    /// Hessian-vector products.
    pub hessian_vector_products: u64,
    /// Backward passes.
    pub backward_passes: u64,
    /// Share of negative diagonal entries clamped to 0.
    pub clamped_share: f64,
}

/// Files of the stages.
pub const MODEL_FILE: &str = "model.safetensors";
/// Pruning masks of the network stage.
pub const MASKS_FILE: &str = "masks.safetensors";
/// `sqrt(v_hat)` of the Adam that trained the stage's network.
pub const ADAM_FILE: &str = "adam.safetensors";
/// The importance stage's tensors.
pub const IMPORTANCE_FILE: &str = "importance.safetensors";
/// The result stage's packed network.
pub const NQZ_FILE: &str = "model.nqz";

/// The data of a grid, loaded once per worker.
pub struct Data {
    /// Training examples.
    pub train: Box<dyn Source>,
    /// Test examples.
    pub test: Box<dyn Source>,
}

impl Data {
    /// The network's input shape and classes.
    pub fn input(&self) -> InputSpec {
        InputSpec {
            image: self.train.image_shape(),
            classes: self.train.classes(),
        }
    }
}

/// Somewhere to report progress inside a stage.
pub type Log<'a> = &'a mut dyn FnMut(String);

fn optimizer(spec: &OptimizerSpec) -> OptimizerConfig {
    match *spec {
        OptimizerSpec::Sgd {
            momentum,
            weight_decay,
        } => OptimizerConfig::Sgd {
            momentum,
            weight_decay,
        },
        OptimizerSpec::Adam { weight_decay } => OptimizerConfig::Adam { weight_decay },
    }
}

pub(super) fn train_config(spec: &TrainSpec, epochs: usize, lr: f64, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: spec.batch_size,
        lr,
        optimizer: optimizer(&spec.optimizer),
        schedule: match spec.schedule {
            ScheduleSpec::Constant => Schedule::Constant,
            ScheduleSpec::Step { every, gamma } => Schedule::Step { every, gamma },
            ScheduleSpec::Cosine => Schedule::Cosine,
        },
        seed,
        max_batches_per_epoch: spec.max_batches_per_epoch,
        // the worker sets the thread count of its own thread
        threads: None,
    }
}

pub(super) fn epoch_logger<'a>(
    what: &'a str,
    epochs: usize,
    log: &'a mut dyn FnMut(String),
) -> impl FnMut(&EpochReport) + 'a {
    move |e: &EpochReport| {
        log(format!(
            "{what} epoch {}/{epochs}: loss {:.4}, lr {:.2e}, {:.1} s",
            e.epoch + 1,
            e.loss,
            e.lr,
            e.seconds
        ))
    }
}

pub(super) fn save_adam(model: &Model, optimizer: &AnyOptimizer, dir: &Path) -> Result<()> {
    if let AnyOptimizer::Adam(adam) = optimizer {
        let imp = adam_importance(model, adam)?;
        save_tensors(&imp.by_name, &dir.join(ADAM_FILE))?;
    }
    Ok(())
}

pub(super) fn save_tensors(tensors: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    let named: Vec<(&str, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.to_device(Device::Cpu)))
        .collect();
    Tensor::write_safetensors(&named, path)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn load_tensors(path: &Path, device: Device) -> Result<BTreeMap<String, Tensor>> {
    Ok(Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .into_iter()
        .map(|(n, t)| (n, t.to_device(device)))
        .collect())
}

/// A fresh network of the grid's architecture with the weights in `dir`.
pub fn load_model(grid: &Grid, data: &Data, device: Device, dir: &Path) -> Result<Model> {
    let mut model = super::network::new_model(grid, data, device)?;
    model.load(&dir.join(MODEL_FILE))?;
    Ok(model)
}

/// Trains the baseline of `seed` and saves it (and Adam's `sqrt(v_hat)`)
/// into `dir`.
pub fn baseline(
    grid: &Grid,
    seed: u64,
    data: &Data,
    device: Device,
    dir: &Path,
    log: Log<'_>,
) -> Result<Trained> {
    let started = Instant::now();
    tch::manual_seed(seed as i64);
    let model = super::network::new_model(grid, data, device)?;
    let mut epoch_losses = Vec::new();
    // 0 epochs: a TorchScript model used as it came
    if grid.train.epochs > 0 {
        let config = train_config(&grid.train, grid.train.epochs, grid.train.lr, seed);
        let (report, optimizer) = train(
            &model,
            data.train.as_ref(),
            &config,
            None,
            &mut epoch_logger("baseline", config.epochs, log),
        )?;
        save_adam(&model, &optimizer, dir)?;
        epoch_losses = report.epochs.iter().map(|e| e.loss).collect();
    }
    let accuracy = Accuracy::of(&model, data.test.as_ref())?;
    model.save(&dir.join(MODEL_FILE))?;
    Ok(Trained {
        accuracy,
        epoch_losses,
        seconds: started.elapsed().as_secs_f64(),
        kept: None,
    })
}

/// The masks saved with a pruned network, if it was pruned.
pub fn load_masks(network_dir: &Path, device: Device) -> Result<Option<Masks>> {
    let path = network_dir.join(MASKS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(Masks {
        by_name: load_tensors(&path, device)?,
    }))
}

/// Estimates the importance of the weights of the network in
/// `network_dir` and saves it into `dir`.
#[allow(clippy::too_many_arguments)]
pub fn importance(
    grid: &Grid,
    estimator: &EstimatorSpec,
    seed: u64,
    data: &Data,
    device: Device,
    network_dir: &Path,
    dir: &Path,
    log: Log<'_>,
) -> Result<Estimated> {
    let started = Instant::now();
    let model = load_model(grid, data, device, network_dir)?;
    let batch = grid.train.batch_size;
    let mut hessian = |estimator, samples| {
        log(format!(
            "{estimator:?} Hessian diagonal over {samples} examples"
        ));
        hessian_importance(&model, data.train.as_ref(), estimator, samples, batch, seed)
    };
    let imp: Importance = match estimator {
        EstimatorSpec::Hutchinson { samples, probes } => {
            hessian(HessianEstimator::Hutchinson { probes: *probes }, *samples)?
        }
        EstimatorSpec::GaussNewton { samples } => hessian(HessianEstimator::GaussNewton, *samples)?,
        EstimatorSpec::GaussNewtonMc { samples, draws } => {
            hessian(HessianEstimator::GaussNewtonMc { draws: *draws }, *samples)?
        }
        EstimatorSpec::Exact { samples } => hessian(HessianEstimator::Exact, *samples)?,
        EstimatorSpec::Adam { source } if source == "statistics" => {
            adam_statistics(&model, data.train.as_ref(), batch)?
        }
        EstimatorSpec::Adam { .. } => {
            let path = network_dir.join(ADAM_FILE);
            if !path.is_file() {
                bail!(
                    "importance `adam` with source `training` needs a network trained (or retrained) \
                     by Adam; this one was not: use source = \"statistics\""
                );
            }
            Importance {
                by_name: load_tensors(&path, device)?,
                cost: Default::default(),
                clamped_share: 0.0,
            }
        }
    };
    save_tensors(&imp.by_name, &dir.join(IMPORTANCE_FILE))?;
    Ok(Estimated {
        seconds: started.elapsed().as_secs_f64(),
        hessian_vector_products: imp.cost.hessian_vector_products,
        backward_passes: imp.cost.backward_passes,
        clamped_share: imp.clamped_share,
    })
}

/// The quantizer of a cell.
pub fn method(spec: &MethodSpec, seed: u64) -> Result<Option<Method>> {
    Ok(Some(match spec {
        MethodSpec::None => return Ok(None),
        MethodSpec::Kmeans { k, init, max_iter } => Method::Kmeans(KmeansParams {
            k: *k,
            init: init.parse()?,
            max_iter: *max_iter,
            seed,
        }),
        MethodSpec::KmeansOptimal { k } => Method::KmeansOptimal(OptimalParams { k: *k }),
        MethodSpec::Uniform { k, centre } => Method::Uniform(UniformParams {
            width: CellWidth::Cells(*k),
            centre: centre.parse()?,
        }),
        MethodSpec::Ecsq {
            lambda,
            k_init,
            max_iter,
        } => Method::Ecsq(EcsqParams {
            lambda: *lambda,
            k_init: *k_init,
            init: EcsqInit::Uniform,
            max_iter: *max_iter,
            seed,
            ..EcsqParams::default()
        }),
        MethodSpec::Universal { k, centre } => Method::Universal(UniversalParams {
            width: CellWidth::Cells(*k),
            centre: centre.parse()?,
            seed,
        }),
        MethodSpec::SoftSharing { .. } => {
            bail!("soft-sharing's quantizer is its learned mixture: see run::soft_sharing")
        }
    }))
}

fn finetune_config(grid: &Grid, spec: &FinetuneSpec, seed: u64) -> FinetuneConfig {
    FinetuneConfig {
        epochs: spec.epochs,
        batch_size: grid.train.batch_size,
        lr: spec.lr,
        optimizer: optimizer(&spec.optimizer),
        center_grad: if spec.center_grad == "sum" {
            CenterGrad::Sum
        } else {
            CenterGrad::Mean
        },
        train_centres: spec.train_centres,
        train_biases: spec.train_biases,
        seed,
        max_batches_per_epoch: spec
            .max_batches_per_epoch
            .or(grid.train.max_batches_per_epoch),
    }
}

/// `sum h (w - q)^2` over the quantized weights.
fn distortion_h(applied: &Applied) -> f64 {
    let tensors: Vec<WeightTensor<'_>> = applied
        .tensors
        .iter()
        .map(|e| WeightTensor {
            name: &e.name,
            values: &e.values,
            importance: &e.importance,
        })
        .collect();
    applied.quantization.distortion_h(&tensors)
}

/// The importance scaled to mean 1 over the weights quantized (the
/// survivors when pruned). Weighted k-means and uniform quantization do not
/// change under a common scale of `h`, but ECSQ trades `sum h (w - q)^2`
/// against `lambda` bits, so without this a `lambda` would mean something
/// else for every estimator (a Gauss-Newton diagonal and Adam's `sqrt(v)`
/// differ by orders of magnitude). With it, `lambda` is in units of the
/// plain squared error, as for unweighted ECSQ.
fn unit_mean(
    importance: BTreeMap<String, Tensor>,
    masks: Option<&Masks>,
) -> BTreeMap<String, Tensor> {
    let (mut sum, mut count) = (0.0, 0.0);
    for (name, h) in &importance {
        match masks.and_then(|m| m.by_name.get(name)) {
            Some(mask) => {
                sum += (h * mask).sum(tch::Kind::Double).double_value(&[]);
                count += mask.sum(tch::Kind::Double).double_value(&[]);
            }
            None => {
                sum += h.sum(tch::Kind::Double).double_value(&[]);
                count += h.numel() as f64;
            }
        }
    }
    if !(sum > 0.0 && sum.is_finite()) {
        // all zero (or broken): leave it for the quantizer to reject
        return importance;
    }
    let scale = count / sum;
    importance
        .into_iter()
        .map(|(name, h)| (name, h * scale))
        .collect()
}

/// What the quantize stage records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantized {
    /// Test accuracy of the network it ends with.
    pub accuracy: Accuracy,
    /// Top-1 right after quantization.
    pub quantized_top1: f64,
    /// Mean test cross-entropy right after quantization (records written
    /// before it was kept read as `None`).
    #[serde(default)]
    pub quantized_loss: Option<f64>,
    /// Top-1 after fine-tuning, when fine-tuned.
    pub finetuned_top1: Option<f64>,
    /// `sum h (w - q)^2` before fine-tuning.
    pub distortion_h: f64,
    /// Seconds to quantize.
    pub seconds_quantize: f64,
    /// Seconds to fine-tune.
    pub seconds_finetune: Option<f64>,
    /// Per codebook of universal quantization, its dither and final
    /// centres (which packing needs); empty, and left out of the record,
    /// for the other methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dithered: Vec<DitheredCodebook>,
    /// What soft weight-sharing did (its retraining is in
    /// `seconds_quantize`); left out of the record for the other methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_sharing: Option<SoftSharingRecord>,
}

/// Quantizes the network in `network_dir` (weighted by the importance in
/// `importance_dir`), fine-tunes its shared values when the cell says so,
/// and saves it into `dir`.
#[allow(clippy::too_many_arguments)]
pub fn quantize(
    grid: &Grid,
    cell: &CellSpec,
    data: &Data,
    device: Device,
    network_dir: &Path,
    importance_dir: Option<&Path>,
    dir: &Path,
    log: Log<'_>,
) -> Result<Quantized> {
    let model = load_model(grid, data, device, network_dir)?;
    let masks = load_masks(network_dir, device)?;
    let importance = importance_dir
        .map(|d| -> Result<Importance> {
            Ok(Importance {
                by_name: unit_mean(
                    load_tensors(&d.join(IMPORTANCE_FILE), device)?,
                    masks.as_ref(),
                ),
                cost: Default::default(),
                clamped_share: 0.0,
            })
        })
        .transpose()?;
    let scope = cell.scope.context("a quantized cell has a scope")?;
    let started = Instant::now();
    log(format!("quantize: {}", cell.method.name()));
    // soft-sharing prunes further: its masks, which packing reads, are new
    let (mut applied, new_masks, soft_sharing) = match &cell.method {
        MethodSpec::SoftSharing { tau, settings } => {
            let (applied, masks, record) = soft_share(
                grid,
                cell.seed,
                *tau,
                settings,
                data,
                &model,
                masks.as_ref(),
                log,
            )?;
            (applied, Some(masks), Some(record))
        }
        spec => {
            let method =
                method(spec, cell.quantizer_draws())?.context("`none` is not quantized")?;
            // the layer inputs of the network before any weight is rounded
            // (the sequential form takes its own as it goes)
            let moments = cell
                .rounding
                .as_ref()
                .filter(|r| !r.sequential)
                .map(|r| {
                    input_moments(
                        &model,
                        data.train.as_ref(),
                        r.samples,
                        grid.train.batch_size,
                    )
                })
                .transpose()?;
            let mut applied =
                quantize_model(&model, masks.as_ref(), importance.as_ref(), &method, scope)?;
            if let Some(spec) = &cell.rounding {
                let params = CompensationParams {
                    damping: spec.damping,
                    act_order: spec.act_order,
                };
                let done = match &moments {
                    Some(moments) => compensate(&model, &mut applied, moments, &params)?,
                    None => compensate_sequential(
                        &model,
                        &mut applied,
                        data.train.as_ref(),
                        spec.samples,
                        grid.train.batch_size,
                        &params,
                    )?,
                };
                log(format!(
                    "{} rounding: {} tensors (layer inputs of {} examples), {} left nearest",
                    spec.name(),
                    done.tensors,
                    spec.samples.min(data.train.len()),
                    done.nearest
                ));
            }
            (applied, None, None)
        }
    };
    let seconds_quantize = started.elapsed().as_secs_f64();
    let distortion_h = distortion_h(&applied);
    let mut accuracy = Accuracy::of(&model, data.test.as_ref())?;
    let (quantized_top1, quantized_loss) = (accuracy.top1, accuracy.loss);
    let mut seconds_finetune = None;
    if let Some(spec) = &cell.finetune {
        let started = Instant::now();
        let config = finetune_config(grid, spec, cell.seed);
        finetune(
            &model,
            data.train.as_ref(),
            &mut applied,
            &config,
            &mut epoch_logger("fine-tune", spec.epochs, log),
        )?;
        seconds_finetune = Some(started.elapsed().as_secs_f64());
        accuracy = Accuracy::of(&model, data.test.as_ref())?;
    }
    model.save(&dir.join(MODEL_FILE))?;
    if let Some(masks) = &new_masks {
        save_tensors(&masks.by_name, &dir.join(MASKS_FILE))?;
    }
    let dithered = applied
        .quantization
        .codebooks
        .iter()
        .filter_map(|q| {
            q.dither.map(|dither| DitheredCodebook {
                dither,
                centres: q.centres.clone(),
            })
        })
        .collect();
    Ok(Quantized {
        accuracy,
        quantized_top1,
        quantized_loss: Some(quantized_loss),
        finetuned_top1: seconds_finetune.map(|_| accuracy.top1),
        distortion_h,
        seconds_quantize,
        seconds_finetune,
        dithered,
        soft_sharing,
    })
}

/// What the stages before the result gave it.
pub struct Upstream<'a> {
    /// The baseline's record.
    pub baseline: &'a Trained,
    /// The pruning stage's record, if pruned.
    pub pruned: Option<&'a Trained>,
    /// The importance stage's record, if weighted.
    pub importance: Option<&'a Estimated>,
    /// The quantize stage's record, if quantized.
    pub quantized: Option<&'a Quantized>,
    /// Directory of the network before quantization (its masks, unless
    /// the quantize stage saved its own).
    pub network_dir: &'a Path,
    /// Directory of the network to pack: the quantized one, or the network.
    pub model_dir: &'a Path,
}

/// Packs the cell's final network as `dir/model.nqz` under the cell's
/// coding, with `metadata`, checks that it decodes to the network, and
/// measures everything of a result row (the runner fills in which cell it
/// is and provenance).
#[allow(clippy::too_many_arguments)]
pub fn result(
    grid: &Grid,
    cell: &CellSpec,
    data: &Data,
    device: Device,
    up: &Upstream<'_>,
    metadata: &nqz::Metadata,
    dir: &Path,
    log: Log<'_>,
) -> Result<Row> {
    let started = Instant::now();
    let model = load_model(grid, data, device, up.model_dir)?;
    // a quantize stage that pruned further (soft-sharing) keeps its masks
    let masks = match load_masks(up.model_dir, device)? {
        Some(masks) => Some(masks),
        None => load_masks(up.network_dir, device)?,
    };
    let network = up.pruned.unwrap_or(up.baseline);
    let accuracy = up.quantized.map_or(network.accuracy, |q| q.accuracy);
    let coding = cell.coding.unwrap_or(nq_quant::huffman::Coding::Huffman);
    let scope = up.quantized.and(cell.scope);
    let dithered = up.quantized.map_or(&[][..], |q| &q.dithered);
    let (encoded, size) = pack(&model, scope, dithered, masks.as_ref(), coding, metadata)?;
    let nqz_path = dir.join(NQZ_FILE);
    std::fs::write(&nqz_path, &encoded.bytes)
        .with_context(|| format!("cannot write {}", nqz_path.display()))?;
    let quantized = up.quantized.is_some();
    let row = Row {
        baseline_top1: Some(up.baseline.accuracy.top1),
        baseline_top5: up.baseline.accuracy.top5,
        pruned_top1: up.pruned.map(|p| p.accuracy.top1),
        quantized_top1: up.quantized.map(|q| q.quantized_top1),
        finetuned_top1: up.quantized.and_then(|q| q.finetuned_top1),
        top1: Some(accuracy.top1),
        top5: accuracy.top5,
        loss: Some(accuracy.loss),
        distortion_h: up.quantized.map(|q| q.distortion_h),
        params: Some(size.original_bits / 32),
        quantized_weights: quantized.then_some(size.quantized_weights),
        clusters: quantized.then_some(size.clusters),
        entropy: quantized.then_some(size.entropy),
        avg_codeword_bits: quantized.then_some(size.average_codeword_length),
        index_bits: Some(size.index_bits),
        codebook_bits: Some(size.codebook_bits),
        code_table_bits: Some(size.code_table_bits),
        position_bits: Some(size.position_bits),
        position_table_bits: Some(size.position_table_bits),
        float_bits: Some(size.float_bits),
        total_bits: Some(size.total_bits),
        compression_ratio: Some(size.compression_ratio),
        nqz_bytes: Some(encoded.bytes.len() as u64),
        nqz_payload_bytes: Some(encoded.streams.payload_bytes),
        nqz_header_bytes: Some(encoded.streams.header_bytes),
        seconds_baseline: Some(up.baseline.seconds),
        seconds_prune: up.pruned.map(|p| p.seconds),
        seconds_importance: up.importance.map(|i| i.seconds),
        seconds_quantize: up.quantized.map(|q| q.seconds_quantize),
        seconds_finetune: up.quantized.and_then(|q| q.seconds_finetune),
        seconds_pack: Some(started.elapsed().as_secs_f64()),
        baseline_loss: Some(up.baseline.accuracy.loss),
        pruned_loss: up.pruned.map(|p| p.accuracy.loss),
        quantized_loss: up.quantized.and_then(|q| q.quantized_loss),
        ..Row::default()
    };
    log(format!(
        "top-1 {:.2} %, ratio {:.2}x, .nqz {} bytes",
        accuracy.top1,
        size.compression_ratio,
        encoded.bytes.len()
    ));
    Ok(row)
}
