//! The prior against nq-quant's mixture density, what its step does, and
//! retraining then quantization on a tiny network.

use nq_quant::soft_sharing::{Component, Mixture};
use tch::{Device, Kind, Tensor};

use super::*;
use crate::prune::magnitude_masks;
use crate::train::tests::{small_model, synthetic};
use crate::train::{OptimizerConfig, Schedule};

fn mixture() -> Mixture {
    let c = |mean: f64, variance: f64, mixing: f64| Component {
        mean,
        variance,
        mixing,
    };
    Mixture {
        components: vec![c(0.0, 0.01, 0.9), c(0.5, 0.04, 0.06), c(-0.4, 0.02, 0.04)],
    }
}

fn config() -> SoftSharingConfig {
    SoftSharingConfig {
        pi_zero: 0.9,
        ..SoftSharingConfig::default()
    }
}

fn train_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        lr: 5e-3,
        optimizer: OptimizerConfig::Adam { weight_decay: 0.0 },
        schedule: Schedule::Constant,
        seed: 1,
        max_batches_per_epoch: None,
        threads: None,
    }
}

#[test]
fn likelihood_is_nq_quants_mixture_density() {
    let prior = MixturePrior::new(&mixture(), &config(), 100, Device::Cpu).unwrap();
    let w = [0.0f32, 0.3, -0.45, 1.2, -2.0, 0.51];
    let expected: f64 = -w
        .iter()
        .map(|&x| mixture().log_density(f64::from(x)))
        .sum::<f64>();
    let got = prior
        .negative_log_likelihood(&Tensor::from_slice(&w))
        .double_value(&[]);
    assert!(
        (got - expected).abs() < 1e-4 * expected.abs(),
        "{got} {expected}"
    );
    // and the mixture reads back as it went in
    let back = prior.mixture().unwrap();
    for (a, b) in back.components.iter().zip(&mixture().components) {
        assert!((a.mean - b.mean).abs() < 1e-7, "{back:?}");
        assert!((a.variance / b.variance - 1.0).abs() < 1e-5, "{back:?}");
        assert!((a.mixing - b.mixing).abs() < 1e-6, "{back:?}");
    }
}

#[test]
fn bad_settings_are_named() {
    let named = |c: SoftSharingConfig| c.validate().unwrap_err().to_string();
    assert!(named(SoftSharingConfig {
        tau: -1.0,
        ..config()
    })
    .contains("`tau`"));
    assert!(named(SoftSharingConfig {
        pi_zero: 1.0,
        ..config()
    })
    .contains("`pi_zero`"));
    assert!(named(SoftSharingConfig {
        lr_means: 0.0,
        ..config()
    })
    .contains("`lr_means`"));
    let bad_gamma = SoftSharingConfig {
        precision_prior: GammaPrior {
            alpha: 0.0,
            beta: 1.0,
        },
        ..config()
    };
    assert!(named(bad_gamma).contains("`precision_prior`"));
    let mut no_zero = mixture();
    no_zero.components[0].mean = 0.1;
    let err = MixturePrior::new(&no_zero, &config(), 10, Device::Cpu)
        .err()
        .unwrap();
    assert!(err.to_string().contains("zero component first"), "{err}");
}

#[test]
fn the_prior_alone_pulls_the_means_to_the_weights() {
    // a model whose quantizable weights all sit at +-0.3: minimising the
    // prior alone moves the means from +-0.2 towards them
    let model = small_model(0);
    tch::no_grad(|| {
        for q in model.quantizable() {
            let mut w = model.tensor(&q.name).unwrap();
            let sign = Tensor::arange(w.numel() as i64, (Kind::Float, Device::Cpu)).remainder(2.0)
                * 2.0
                - 1.0;
            w.copy_(&(sign.view(w.size().as_slice()) * 0.3));
        }
    });
    let c = |mean: f64| Component {
        mean,
        variance: 0.01,
        mixing: 1.0,
    };
    let start = Mixture {
        components: vec![c(0.0), c(-0.2), c(0.2)],
    };
    let fast = SoftSharingConfig {
        lr_means: 1e-3,
        ..config()
    };
    let mut prior = MixturePrior::new(&start, &fast, 1, Device::Cpu).unwrap();
    for _ in 0..300 {
        let loss = prior.loss(&model).unwrap();
        loss.backward();
        prior.step().unwrap();
    }
    let m = prior.mixture().unwrap();
    assert!((m.components[1].mean + 0.3).abs() < 0.02, "{m:?}");
    assert!((m.components[2].mean - 0.3).abs() < 0.02, "{m:?}");
    // the zero component keeps its mean and its fixed mixing weight
    assert_eq!(m.components[0].mean, 0.0);
    assert!((m.components[0].mixing - 0.9).abs() < 1e-6);
}

#[test]
fn quantization_to_the_mixture_by_hand() {
    let model = small_model(0);
    let q = &model.quantizable()[0];
    let mut w = model.tensor(&q.name).unwrap();
    let n = w.numel();
    // values cycling over 0.02, 0.48, -0.41, -0.01; the other layers' are
    // all in the zero component, and each keeps its largest weight
    let values: Vec<f32> = (0..n)
        .map(|i| [0.02f32, 0.48, -0.41, -0.01][i % 4])
        .collect();
    tch::no_grad(|| {
        w.copy_(&Tensor::from_slice(&values).view(w.size().as_slice()));
        for other in &model.quantizable()[1..] {
            let mut w = model.tensor(&other.name).unwrap();
            let small: Vec<f32> = (0..w.numel())
                .map(|i| [0.01f32, -0.02, 0.03][i % 3])
                .collect();
            w.copy_(&Tensor::from_slice(&small).view(w.size().as_slice()));
        }
    });
    let (applied, masks) = quantize_to_mixture(&model, None, &mixture()).unwrap();
    let after = Vec::<f32>::try_from(model.tensor(&q.name).unwrap().flatten(0, -1)).unwrap();
    let flags = Vec::<f32>::try_from(masks.by_name[&q.name].flatten(0, -1)).unwrap();
    for i in 0..n {
        let (want, kept) = match i % 4 {
            1 => (0.5, 1.0),
            2 => (-0.4, 1.0),
            _ => (0.0, 0.0),
        };
        assert_eq!(after[i], want as f32, "{i}");
        assert_eq!(flags[i], kept, "{i}");
    }
    // one codebook over all layers, the nonzero means only
    assert_eq!(applied.quantization.codebooks.len(), 1);
    assert!(applied.quantization.codebooks[0]
        .centres
        .iter()
        .all(|&c| c != 0.0));
    assert_eq!(applied.values(0), after);
    for (t, e) in applied.tensors.iter().enumerate().skip(1) {
        assert_eq!(e.values.len(), 1, "{}", e.name);
        let w = model.tensor(&e.name).unwrap().flatten(0, -1);
        assert_eq!(w.ne(0.0).sum(Kind::Int64).int64_value(&[]), 1, "{}", e.name);
        // the first of the largest, 0.03, at position 2
        assert_eq!(e.survivors, Some(vec![2]), "{}", e.name);
        assert_eq!(applied.values(t), Vec::<f32>::try_from(w).unwrap());
    }
}

#[test]
fn retraining_gathers_the_weights_and_keeps_pruned_ones_at_zero() {
    let data = synthetic(256, 5);
    let model = small_model(2);
    crate::train::train(&model, &data, &train_config(3), None, &mut |_| {}).unwrap();
    let masks = magnitude_masks(&model, 0.5, Scope::Global).unwrap();
    apply_masks(&model, &masks).unwrap();
    let config = SoftSharingConfig {
        tau: 5.0,
        components: 5,
        pi_zero: 0.9,
        init_sigma: 0.05,
        lr_means: 1e-3,
        lr_precisions: 3e-2,
        ..SoftSharingConfig::default()
    };
    let (report, _, mixture) = retrain(
        &model,
        &data,
        &train_config(4),
        Some(&masks),
        &config,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.epochs.len(), 4);
    assert!(report.epochs.iter().all(|e| e.loss.is_finite()));
    assert_eq!(mixture.components.len(), 5);
    // pruned weights stayed at exactly zero through retraining
    for (name, mask) in &masks.by_name {
        let w = model.tensor(name).unwrap();
        let off = (w * (mask.ones_like() - mask))
            .abs()
            .sum(Kind::Float)
            .double_value(&[]);
        assert_eq!(off, 0.0, "{name}");
    }
    let (applied, new_masks) =
        quantize_to_mixture(&model, Some(&masks), &mixture.merged(0.01).unwrap()).unwrap();
    let (kept_before, _) = masks.counts();
    let (kept_after, all) = new_masks.counts();
    assert!(
        kept_after <= kept_before && kept_after > 0,
        "{kept_after} {kept_before} {all}"
    );
    // no revived weight, and at most 4 nonzero values in the whole network
    let mut distinct: Vec<u32> = Vec::new();
    for (t, e) in applied.tensors.iter().enumerate() {
        let old = Vec::<f32>::try_from(masks.by_name[&e.name].flatten(0, -1)).unwrap();
        let new = Vec::<f32>::try_from(new_masks.by_name[&e.name].flatten(0, -1)).unwrap();
        assert!(old.iter().zip(&new).all(|(o, n)| n <= o), "{}", e.name);
        let w = Vec::<f32>::try_from(model.tensor(&e.name).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(applied.values(t), w);
        distinct.extend(w.into_iter().filter(|&v| v != 0.0).map(f32::to_bits));
    }
    distinct.sort_unstable();
    distinct.dedup();
    assert!((1..=4).contains(&distinct.len()), "{}", distinct.len());
}

/// Value and gradients (weights, means, log-precisions, logits) of one
/// negative log-likelihood.
fn value_and_gradients(
    prior: &MixturePrior,
    w: &Tensor,
    nll: impl Fn(&MixturePrior, &Tensor) -> Tensor,
) -> (f64, Vec<Vec<f64>>) {
    let w = w.detach().set_requires_grad(true);
    let value = nll(prior, &w);
    let params = [&w, &prior.means, &prior.log_precisions, &prior.logits];
    let grads = Tensor::run_backward(&[&value], &params, false, false);
    (
        value.double_value(&[]),
        grads
            .iter()
            .map(|g| Vec::<f64>::try_from(g.to_kind(Kind::Double)).unwrap())
            .collect(),
    )
}

#[test]
fn the_tabulated_likelihood_has_the_exact_value_and_gradients() {
    tch::manual_seed(3);
    // weights from a narrow and a broad part, mixture components from
    // sigma 0.02 to 0.25, as retraining sees them
    let w = Tensor::cat(
        &[
            Tensor::randn([20_000], (Kind::Float, Device::Cpu)) * 0.01,
            Tensor::randn([5_000], (Kind::Float, Device::Cpu)) * 0.2,
        ],
        0,
    );
    let c = |mean: f64, sigma: f64, mixing: f64| Component {
        mean,
        variance: sigma * sigma,
        mixing,
    };
    let m = Mixture {
        components: vec![
            c(0.0, 0.02, 0.9),
            c(-0.3, 0.05, 0.03),
            c(0.1, 0.02, 0.03),
            c(0.35, 0.25, 0.04),
        ],
    };
    let prior = MixturePrior::new(&m, &config(), 1, Device::Cpu).unwrap();
    let (exact, exact_grads) =
        value_and_gradients(&prior, &w, MixturePrior::negative_log_likelihood);
    let (tabulated, grads) =
        value_and_gradients(&prior, &w, MixturePrior::tabulated_negative_log_likelihood);
    assert!(
        (exact - tabulated).abs() < 1e-4 * exact.abs(),
        "{exact} {tabulated}"
    );
    for (what, (a, b)) in ["weights", "means", "log-precisions", "logits"]
        .iter()
        .zip(exact_grads.iter().zip(&grads))
    {
        let scale = a.iter().fold(0f64, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst < 1e-3 * scale, "{what}: {worst} against {scale}");
    }
}
