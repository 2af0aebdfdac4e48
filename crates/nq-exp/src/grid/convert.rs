//! Checks a parsed grid file and turns it into validated settings.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use nq_catalog::{Arch, Dataset};
use nq_quant::kmeans::KmeansInit;
use nq_quant::scope::Scope;
use nq_quant::uniform::UniformCentre;

use super::expand::{expand, Axes};
use super::raw::{
    RawCompensation, RawFinetune, RawGrid, RawImportance, RawModel, RawPrune, RawQuantizer,
    RawSearch, RawSoftSharing, RawTrain,
};
use super::spans::KeySpans;
use super::spec::{
    CompensationSpec, EstimatorSpec, FinetuneSpec, Grid, ImportanceSpec, ModelFile, ModelSpec,
    OptimizerSpec, PruneCriterion, PruneSchedule, PruneSettings, PruneSpec, ScheduleSpec,
    SearchSettings, SoftSharingSettings, TrainSpec, MAX_K,
};
use super::GridError;
use crate::search::{SearchGoal, SearchSpace};

/// Whether `arch` is meant for `dataset`: the LeNets for the 28x28 digit
/// sets, the CIFAR ResNets for CIFAR-10, AlexNet for ImageNet, the small
/// test net and the ViT for any of the first three, and the character-level
/// GPT for text.
fn fits(arch: Arch, dataset: Dataset) -> bool {
    match dataset {
        // the CIFAR ResNets take 28x28 grey images too: resnet20 on
        // Fashion-MNIST stands in for the paper's ResNet-32 on CIFAR-10
        Dataset::Mnist | Dataset::FashionMnist => !matches!(arch, Arch::Alexnet | Arch::CharGpt),
        Dataset::Cifar10 => matches!(
            arch,
            Arch::Resnet20
                | Arch::Resnet32
                | Arch::Resnet56
                | Arch::SmallConv
                | Arch::Vit
                | Arch::Torchscript
        ),
        Dataset::Imagenet => matches!(arch, Arch::Alexnet | Arch::Torchscript),
        Dataset::Shakespeare => arch == Arch::CharGpt,
        Dataset::Tensors => arch != Arch::CharGpt,
    }
}

/// Where errors point.
pub struct Context<'a> {
    pub path: &'a Path,
    pub spans: &'a KeySpans,
}

impl Context<'_> {
    pub fn error(&self, key: &str, message: impl Into<String>) -> GridError {
        GridError {
            file: self.path.to_owned(),
            line: self.spans.line_of(key),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    pub fn ensure(
        &self,
        ok: bool,
        key: &str,
        message: impl FnOnce() -> String,
    ) -> Result<(), GridError> {
        if ok {
            Ok(())
        } else {
            Err(self.error(key, message()))
        }
    }

    /// A positive, finite number.
    fn positive(&self, key: &str, v: f64) -> Result<f64, GridError> {
        self.ensure(v.is_finite() && v > 0.0, key, || {
            format!("expected a positive number, got {v}")
        })?;
        Ok(v)
    }

    /// A finite number >= 0.
    fn non_negative(&self, key: &str, v: f64) -> Result<f64, GridError> {
        self.ensure(v.is_finite() && v >= 0.0, key, || {
            format!("expected a number >= 0, got {v}")
        })?;
        Ok(v)
    }

    /// One of `allowed`.
    pub(super) fn one_of<'s>(
        &self,
        key: &str,
        v: &'s str,
        allowed: &[&str],
    ) -> Result<&'s str, GridError> {
        self.ensure(allowed.contains(&v), key, || {
            format!("`{v}` is not one of {}", allowed.join(", "))
        })?;
        Ok(v)
    }

    /// Parses with the type's `FromStr`, reporting its message.
    fn parsed<T: FromStr>(&self, key: &str, v: &str) -> Result<T, GridError>
    where
        T::Err: std::fmt::Display,
    {
        v.parse()
            .map_err(|e: T::Err| self.error(key, e.to_string()))
    }
}

fn model(ctx: &Context<'_>, raw: RawModel) -> Result<ModelSpec, GridError> {
    let arch: Arch = ctx.parsed("model.arch", &raw.arch)?;
    let dataset: Dataset = ctx.parsed("model.dataset", &raw.dataset)?;
    ctx.ensure(fits(arch, dataset), "model.dataset", || {
        format!("{arch} is not built for {dataset}")
    })?;
    for (key, n) in [
        ("model.train_examples", raw.train_examples),
        ("model.test_examples", raw.test_examples),
    ] {
        ctx.ensure(n != Some(0), key, || "expected at least 1".into())?;
    }
    ctx.ensure(
        dataset != Dataset::Tensors || raw.data_dir.is_some(),
        "model.data_dir",
        || {
            "`dataset = \"tensors\"` needs the directory of train.safetensors and test.safetensors"
                .into()
        },
    )?;
    let script = arch == Arch::Torchscript;
    let model_file = match (script, raw.model_file) {
        (true, Some(path)) => {
            let digest = crate::cache::manifest::digest(&path).map_err(|e| {
                ctx.error("model.model_file", format!("cannot read the TorchScript file: {e:#}"))
            })?;
            Some(ModelFile { path, digest })
        }
        (true, None) => {
            return Err(ctx.error(
                "model.arch",
                "`arch = \"torchscript\"` needs `model_file`, the module saved by torch.jit.script or torch.jit.trace",
            ))
        }
        (false, Some(_)) => {
            return Err(ctx.error(
                "model.model_file",
                format!("only `arch = \"torchscript\"` is read from a file, not {arch}"),
            ))
        }
        (false, None) => None,
    };
    if let Some(pattern) = &raw.tensors {
        ctx.ensure(script, "model.tensors", || {
            format!(
                "{arch} quantizes its own layers; `tensors` selects those of a torchscript model"
            )
        })?;
        regex::Regex::new(pattern)
            .map_err(|e| ctx.error("model.tensors", format!("not a regex: {e}")))?;
    }
    Ok(ModelSpec {
        arch: raw.arch,
        dataset: raw.dataset,
        data_dir: raw.data_dir,
        train_examples: raw.train_examples,
        test_examples: raw.test_examples,
        model_file,
        tensors: raw.tensors,
    })
}

fn optimizer(
    ctx: &Context<'_>,
    key: &str,
    name: &str,
    momentum: Option<f64>,
    weight_decay: Option<f64>,
) -> Result<OptimizerSpec, GridError> {
    let section = &key[..key.rfind('.').unwrap_or(0)];
    let weight_decay = ctx.non_negative(
        &format!("{section}.weight_decay"),
        weight_decay.unwrap_or(0.0),
    )?;
    match ctx.one_of(key, name, &["sgd", "adam"])? {
        "sgd" => {
            let m = momentum.unwrap_or(0.9);
            ctx.ensure(
                (0.0..1.0).contains(&m),
                &format!("{section}.momentum"),
                || format!("expected a momentum in [0, 1), got {m}"),
            )?;
            Ok(OptimizerSpec::Sgd {
                momentum: m,
                weight_decay,
            })
        }
        _ => {
            ctx.ensure(momentum.is_none(), &format!("{section}.momentum"), || {
                "momentum applies to sgd only".into()
            })?;
            Ok(OptimizerSpec::Adam { weight_decay })
        }
    }
}

/// `pretrained`: the network comes trained (a TorchScript file), so 0
/// epochs (use it as it is) is allowed.
fn train(ctx: &Context<'_>, raw: RawTrain, pretrained: bool) -> Result<TrainSpec, GridError> {
    ctx.ensure(raw.epochs >= 1 || pretrained, "train.epochs", || {
        "expected at least 1 (0, the network as it is, only for a torchscript model)".into()
    })?;
    ctx.ensure(raw.batch_size >= 1, "train.batch_size", || {
        "expected at least 1".into()
    })?;
    ctx.ensure(
        raw.max_batches_per_epoch != Some(0),
        "train.max_batches_per_epoch",
        || "expected at least 1".into(),
    )?;
    let optimizer = optimizer(
        ctx,
        "train.optimizer",
        &raw.optimizer,
        raw.momentum,
        raw.weight_decay,
    )?;
    let schedule_name = raw.schedule.as_deref().unwrap_or("constant");
    let schedule = match ctx.one_of(
        "train.schedule",
        schedule_name,
        &["constant", "step", "cosine"],
    )? {
        "step" => {
            let every = raw
                .step_every
                .ok_or_else(|| ctx.error("train.step_every", "required by schedule = \"step\""))?;
            ctx.ensure(every >= 1, "train.step_every", || {
                "expected at least 1".into()
            })?;
            let gamma = ctx.positive("train.step_gamma", raw.step_gamma.unwrap_or(0.1))?;
            ScheduleSpec::Step { every, gamma }
        }
        other => {
            for (key, set) in [
                ("train.step_every", raw.step_every.is_some()),
                ("train.step_gamma", raw.step_gamma.is_some()),
            ] {
                ctx.ensure(!set, key, || {
                    format!("applies to schedule = \"step\", not \"{other}\"")
                })?;
            }
            if other == "cosine" {
                ScheduleSpec::Cosine
            } else {
                ScheduleSpec::Constant
            }
        }
    };
    Ok(TrainSpec {
        epochs: raw.epochs,
        optimizer,
        lr: ctx.positive("train.lr", raw.lr)?,
        batch_size: raw.batch_size,
        schedule,
        max_batches_per_epoch: raw.max_batches_per_epoch,
    })
}

fn check_name(ctx: &Context<'_>, section: &str, name: &str) -> Result<(), GridError> {
    ctx.ensure(name != "none", &format!("{section}.{name}"), || {
        "`none` is reserved for \"no such stage\" in [grid]".into()
    })
}

fn prune(
    ctx: &Context<'_>,
    raw: BTreeMap<String, RawPrune>,
    train_lr: f64,
) -> Result<BTreeMap<String, PruneSpec>, GridError> {
    let mut out = BTreeMap::new();
    for (name, p) in raw {
        check_name(ctx, "prune", &name)?;
        let key = |k: &str| format!("prune.{name}.{k}");
        ctx.ensure(p.keep > 0.0 && p.keep <= 1.0, &key("keep"), || {
            format!("expected a share of weights kept in (0, 1], got {}", p.keep)
        })?;
        let scope = ctx.parsed::<Scope>(&key("scope"), p.scope.as_deref().unwrap_or("layer"))?;
        let lr = ctx.positive(&key("lr"), p.lr.unwrap_or(train_lr / 10.0))?;
        let schedule = match ctx.one_of(
            &key("schedule"),
            p.schedule.as_deref().unwrap_or("one-shot"),
            &["one-shot", "gradual"],
        )? {
            "gradual" => {
                let steps = p.steps.unwrap_or(4);
                ctx.ensure(
                    steps >= 1 && steps <= p.retrain_epochs,
                    &key("steps"),
                    || {
                        format!(
                            "expected 1 to retrain_epochs = {} pruning steps (each step \
                             retrains at least one epoch), got {steps}",
                            p.retrain_epochs
                        )
                    },
                )?;
                PruneSchedule::Gradual { steps }
            }
            _ => {
                ctx.ensure(p.steps.is_none(), &key("steps"), || {
                    "only a gradual schedule has steps".into()
                })?;
                PruneSchedule::OneShot
            }
        };
        let criterion = match ctx.one_of(
            &key("criterion"),
            p.criterion.as_deref().unwrap_or("magnitude"),
            &["magnitude", "obd"],
        )? {
            "obd" => {
                let samples = p.samples.unwrap_or(1000);
                ctx.ensure(samples >= 1, &key("samples"), || {
                    "expected at least 1 example".into()
                })?;
                PruneCriterion::Obd { samples }
            }
            _ => {
                ctx.ensure(p.samples.is_none(), &key("samples"), || {
                    "only the obd criterion takes samples".into()
                })?;
                PruneCriterion::Magnitude
            }
        };
        out.insert(
            name.clone(),
            PruneSpec {
                name,
                settings: PruneSettings {
                    keep: p.keep,
                    scope,
                    retrain_epochs: p.retrain_epochs,
                    lr,
                    schedule,
                    criterion,
                },
            },
        );
    }
    Ok(out)
}

fn importance(
    ctx: &Context<'_>,
    raw: BTreeMap<String, RawImportance>,
) -> Result<BTreeMap<String, ImportanceSpec>, GridError> {
    let mut out = BTreeMap::new();
    for (name, i) in raw {
        check_name(ctx, "importance", &name)?;
        let key = |k: &str| format!("importance.{name}.{k}");
        let estimator = ctx.one_of(
            &key("estimator"),
            &i.estimator,
            &[
                "hutchinson",
                "gauss-newton",
                "gauss-newton-mc",
                "exact",
                "adam",
            ],
        )?;
        let samples = i.samples.unwrap_or(1000);
        ctx.ensure(samples >= 1, &key("samples"), || {
            "expected at least 1".into()
        })?;
        let not_for = |k: &str, set: bool| {
            ctx.ensure(!set, &key(k), || {
                format!("does not apply to estimator = \"{estimator}\"")
            })
        };
        if estimator != "gauss-newton-mc" {
            not_for("draws", i.draws.is_some())?;
        }
        let spec = match estimator {
            "hutchinson" => {
                not_for("source", i.source.is_some())?;
                let probes = i.probes.unwrap_or(1);
                ctx.ensure(probes >= 1, &key("probes"), || "expected at least 1".into())?;
                EstimatorSpec::Hutchinson { samples, probes }
            }
            "adam" => {
                not_for("samples", i.samples.is_some())?;
                not_for("probes", i.probes.is_some())?;
                let source = i.source.as_deref().unwrap_or("training");
                ctx.one_of(&key("source"), source, &["training", "statistics"])?;
                EstimatorSpec::Adam {
                    source: source.to_owned(),
                }
            }
            "gauss-newton-mc" => {
                not_for("source", i.source.is_some())?;
                not_for("probes", i.probes.is_some())?;
                let draws = i.draws.unwrap_or(1);
                ctx.ensure(draws >= 1, &key("draws"), || "expected at least 1".into())?;
                EstimatorSpec::GaussNewtonMc { samples, draws }
            }
            other => {
                not_for("source", i.source.is_some())?;
                not_for("probes", i.probes.is_some())?;
                if other == "exact" {
                    EstimatorSpec::Exact { samples }
                } else {
                    EstimatorSpec::GaussNewton { samples }
                }
            }
        };
        out.insert(
            name.clone(),
            ImportanceSpec {
                name,
                estimator: spec,
            },
        );
    }
    Ok(out)
}

/// Resolved `[quantizer]` settings.
pub struct QuantizerSettings {
    pub kmeans_init: String,
    pub kmeans_max_iter: usize,
    pub ecsq_max_iter: usize,
    pub ecsq_k_init: usize,
    pub uniform_centre: String,
    pub universal_centre: String,
    pub soft_sharing: SoftSharingSettings,
    pub compensation: CompensationSpec,
}

/// `[soft_sharing]`, its defaults those of Ullrich et al.'s tutorial but
/// the epochs (10, within this machine's budget; they retrained for 30 or
/// more).
fn soft_sharing(
    ctx: &Context<'_>,
    raw: Option<RawSoftSharing>,
) -> Result<SoftSharingSettings, GridError> {
    let raw = raw.unwrap_or_default();
    let settings = SoftSharingSettings {
        epochs: raw.epochs.unwrap_or(10),
        lr: raw.lr.unwrap_or(5e-4),
        components: raw.components.unwrap_or(17),
        pi_zero: raw.pi_zero.unwrap_or(0.999),
        init_sigma: raw.init_sigma.unwrap_or(0.25),
        lr_means: raw.lr_means.unwrap_or(1e-4),
        lr_precisions: raw.lr_precisions.unwrap_or(3e-3),
        lr_mixing: raw.lr_mixing.unwrap_or(3e-3),
        zero_precision_prior: raw.zero_precision_prior.unwrap_or([5000.0, 2.0]),
        precision_prior: raw.precision_prior.unwrap_or([250.0, 0.1]),
        merge_kl: raw.merge_kl.unwrap_or(0.01),
    };
    ctx.ensure(settings.epochs >= 1, "soft_sharing.epochs", || {
        "expected at least 1".into()
    })?;
    ctx.ensure(
        (2..=MAX_K).contains(&settings.components),
        "soft_sharing.components",
        || {
            format!(
                "expected 2 to {MAX_K} (the zero component and others), got {}",
                settings.components
            )
        },
    )?;
    ctx.ensure(
        settings.pi_zero > 0.0 && settings.pi_zero < 1.0,
        "soft_sharing.pi_zero",
        || {
            format!(
                "expected a mixing weight in (0, 1), got {}",
                settings.pi_zero
            )
        },
    )?;
    for (key, value) in [
        ("soft_sharing.lr", settings.lr),
        ("soft_sharing.init_sigma", settings.init_sigma),
        ("soft_sharing.lr_means", settings.lr_means),
        ("soft_sharing.lr_precisions", settings.lr_precisions),
        ("soft_sharing.lr_mixing", settings.lr_mixing),
    ] {
        ctx.ensure(value > 0.0 && value.is_finite(), key, || {
            format!("expected a positive number, got {value}")
        })?;
    }
    for (key, [alpha, beta]) in [
        (
            "soft_sharing.zero_precision_prior",
            settings.zero_precision_prior,
        ),
        ("soft_sharing.precision_prior", settings.precision_prior),
    ] {
        ctx.ensure(
            alpha > 0.0 && beta > 0.0 && alpha.is_finite() && beta.is_finite(),
            key,
            || format!("expected [shape, rate], both positive, got [{alpha}, {beta}]"),
        )?;
    }
    ctx.ensure(
        settings.merge_kl >= 0.0 && settings.merge_kl.is_finite(),
        "soft_sharing.merge_kl",
        || format!("expected a divergence >= 0, got {}", settings.merge_kl),
    )?;
    Ok(settings)
}

/// `[compensation]`, GPTQ's defaults: 1 % damping; 1024 examples (GPTQ
/// takes 128 sequences of 2048 tokens, far more rows of `X` than a
/// layer here has inputs).
fn compensation(
    ctx: &Context<'_>,
    raw: Option<RawCompensation>,
) -> Result<CompensationSpec, GridError> {
    let raw = raw.unwrap_or_default();
    let spec = CompensationSpec {
        samples: raw.samples.unwrap_or(1024),
        damping: raw.damping.unwrap_or(0.01),
        act_order: false,
        sequential: false,
    };
    ctx.ensure(spec.samples >= 1, "compensation.samples", || {
        "expected at least 1".into()
    })?;
    ctx.ensure(
        spec.damping.is_finite() && spec.damping >= 0.0,
        "compensation.damping",
        || format!("expected a finite damping >= 0, got {}", spec.damping),
    )?;
    Ok(spec)
}

fn quantizer(
    ctx: &Context<'_>,
    raw: RawQuantizer,
    soft: Option<RawSoftSharing>,
    compensation_table: Option<RawCompensation>,
) -> Result<QuantizerSettings, GridError> {
    let init = raw.kmeans_init.unwrap_or_else(|| "kmeans++".into());
    ctx.parsed::<KmeansInit>("quantizer.kmeans_init", &init)?;
    let centre = raw.uniform_centre.unwrap_or_else(|| "weighted-mean".into());
    ctx.parsed::<UniformCentre>("quantizer.uniform_centre", &centre)?;
    let universal_centre = raw.universal_centre.unwrap_or_else(|| "midpoint".into());
    ctx.parsed::<UniformCentre>("quantizer.universal_centre", &universal_centre)?;
    ctx.ensure(raw.max_iter != Some(0), "quantizer.max_iter", || {
        "expected at least 1".into()
    })?;
    let k_init = raw.ecsq_k_init.unwrap_or(256);
    ctx.ensure(k_init >= 1, "quantizer.ecsq_k_init", || {
        "expected at least 1".into()
    })?;
    Ok(QuantizerSettings {
        kmeans_init: init,
        kmeans_max_iter: raw.max_iter.unwrap_or(1000),
        ecsq_max_iter: raw.max_iter.unwrap_or(100),
        ecsq_k_init: k_init,
        uniform_centre: centre,
        universal_centre,
        soft_sharing: soft_sharing(ctx, soft)?,
        compensation: compensation(ctx, compensation_table)?,
    })
}

fn finetune(ctx: &Context<'_>, raw: RawFinetune) -> Result<FinetuneSpec, GridError> {
    ctx.ensure(raw.epochs >= 1, "finetune.epochs", || {
        "expected at least 1".into()
    })?;
    let optimizer = optimizer(
        ctx,
        "finetune.optimizer",
        raw.optimizer.as_deref().unwrap_or("adam"),
        None,
        None,
    )?;
    let center_grad = raw.center_grad.unwrap_or_else(|| "mean".into());
    ctx.one_of("finetune.center_grad", &center_grad, &["mean", "sum"])?;
    Ok(FinetuneSpec {
        epochs: raw.epochs,
        lr: ctx.positive("finetune.lr", raw.lr)?,
        optimizer,
        center_grad,
        train_centres: raw.train_centres.unwrap_or(true),
        train_biases: raw.train_biases.unwrap_or(false),
        max_batches_per_epoch: raw
            .max_batches_per_epoch
            .map(|n| {
                ctx.ensure(n >= 1, "finetune.max_batches_per_epoch", || {
                    "expected at least 1".into()
                })
                .map(|()| n)
            })
            .transpose()?,
    })
}

fn range<T: Copy + PartialOrd + std::fmt::Display>(
    ctx: &Context<'_>,
    key: &str,
    values: &[T],
    lowest: T,
) -> Result<(T, T), GridError> {
    let &[min, max] = values else {
        return Err(ctx.error(
            key,
            format!("expected [min, max], got {} values", values.len()),
        ));
    };
    ctx.ensure(min >= lowest, key, || {
        format!("expected min >= {lowest}, got {min}")
    })?;
    ctx.ensure(min <= max, key, || {
        format!("expected min <= max, got [{min}, {max}]")
    })?;
    Ok((min, max))
}

fn search(ctx: &Context<'_>, raw: RawSearch) -> Result<SearchSettings, GridError> {
    let goal = match (raw.budget, raw.rate) {
        (Some(budget), None) => {
            ctx.ensure(budget.is_finite() && budget >= 0.0, "search.budget", || {
                format!(
                    "expected a budget >= 0 (points of top-1, or bits per character for text), \
                     got {budget}"
                )
            })?;
            SearchGoal::Budget { budget }
        }
        (None, Some(bits)) => {
            ctx.ensure(bits.is_finite() && bits > 0.0, "search.rate", || {
                format!("expected a rate > 0 (bits per weight), got {bits}")
            })?;
            ctx.ensure(raw.reference.is_none(), "search.reference", || {
                "a search for a rate has no reference network: drop search.reference".into()
            })?;
            SearchGoal::Rate { bits }
        }
        (Some(_), Some(_)) => {
            return Err(ctx.error("search.rate", "either a budget or a rate, not both"))
        }
        (None, None) => {
            return Err(ctx.error(
                "search",
                "expected budget = (the loss allowed) or rate = (bits per weight)",
            ))
        }
    };
    ctx.ensure(raw.k.is_some() || raw.lambda.is_some(), "search", || {
        "expected a range to search: k = [min, max], lambda = [min, max] or both".into()
    })?;
    let widen = raw.widen.unwrap_or(1);
    ctx.ensure(widen >= 1, "search.widen", || {
        format!("expected a factor >= 1, got {widen}")
    })?;
    let k = raw
        .k
        .map(|v| {
            range(ctx, "search.k", &v, 1).map(|(min, max)| SearchSpace::K {
                min,
                max,
                limit: max.saturating_mul(widen as usize),
            })
        })
        .transpose()?;
    if let Some(SearchSpace::K { max, limit, .. }) = k {
        ctx.ensure(max <= MAX_K, "search.k", || {
            format!("expected max <= {MAX_K}, got {max}")
        })?;
        ctx.ensure(limit <= MAX_K, "search.widen", || {
            format!("expected search.k's max times widen <= {MAX_K}, got {limit}")
        })?;
    }
    let ratio = raw.lambda_ratio.unwrap_or(1.25);
    ctx.ensure(
        ratio.is_finite() && ratio > 1.0,
        "search.lambda_ratio",
        || format!("expected a ratio > 1, got {ratio}"),
    )?;
    ctx.ensure(
        raw.lambda.is_some() || raw.lambda_ratio.is_none(),
        "search.lambda_ratio",
        || "only with search.lambda".into(),
    )?;
    let lambda = raw
        .lambda
        .map(|v| {
            ctx.ensure(v.iter().all(|l| l.is_finite()), "search.lambda", || {
                "expected finite values".into()
            })?;
            range(ctx, "search.lambda", &v, f64::MIN_POSITIVE).map(|(min, max)| {
                SearchSpace::Lambda {
                    min,
                    max,
                    ratio,
                    limit: min / f64::from(widen),
                }
            })
        })
        .transpose()?;
    Ok(SearchSettings {
        goal,
        k,
        lambda,
        reference: raw.reference,
    })
}

/// The whole grid.
pub fn grid(ctx: &Context<'_>, raw: RawGrid) -> Result<Grid, GridError> {
    ctx.ensure(!raw.name.trim().is_empty(), "name", || {
        "expected a name".into()
    })?;
    let model = model(ctx, raw.model)?;
    let train = train(ctx, raw.train, model.model_file.is_some())?;
    let prunes = prune(ctx, raw.prune, train.lr)?;
    let importances = importance(ctx, raw.importance)?;
    let quantizer = quantizer(ctx, raw.quantizer, raw.soft_sharing, raw.compensation)?;
    let finetune = raw.finetune.map(|f| finetune(ctx, f)).transpose()?;
    let search = raw.search.map(|s| search(ctx, s)).transpose()?;
    let axes = Axes::check(
        ctx,
        raw.grid,
        &prunes,
        &importances,
        finetune.is_some(),
        search.as_ref(),
    )?;
    ctx.ensure(
        !(axes.compensates() && model.model_file.is_some()),
        "grid.rounding",
        || {
            "compensated rounding needs each layer's inputs, which a torchscript model does not \
             show: use \"nearest\""
                .into()
        },
    )?;
    let (cells, searches) = expand(
        &axes,
        &prunes,
        &importances,
        &quantizer,
        finetune.as_ref(),
        search.as_ref(),
    );
    ctx.ensure(
        !axes.has_quantizer_seeds() || cells.iter().any(|c| c.quantizer_seed.is_some()),
        "grid.quantizer_seed",
        || {
            "no quantizer of the grid draws anything (k-means with kmeans++ centres and \
             universal quantization do): drop the list"
                .into()
        },
    )?;
    Ok(Grid {
        name: raw.name,
        description: raw.description,
        path: ctx.path.to_owned(),
        model,
        train,
        cells,
        searches,
    })
}
