//! Hand-checked metrics, masks held at zero, determinism, learning.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::*;
use crate::data::InMemory;
use crate::models::{Arch, InputSpec};

/// `n` 1x12x12 images of 4 classes: class `c` lights a 3x3 block in corner
/// `c`, over noise.
pub(crate) fn synthetic(n: i64, seed: i64) -> InMemory {
    tch::manual_seed(seed);
    let labels = Tensor::randint(4, [n], (Kind::Int64, Device::Cpu));
    let x = Tensor::randn([n, 1, 12, 12], (Kind::Float, Device::Cpu)) * 0.3;
    for i in 0..n {
        let c = labels.int64_value(&[i]);
        let (r, col) = ((c / 2) * 9, (c % 2) * 9);
        let _ = x
            .get(i)
            .narrow(1, r, 3)
            .narrow(2, col, 3)
            .f_add_scalar_(2.0)
            .unwrap();
    }
    InMemory::new(x, labels, 4).unwrap()
}

pub(crate) fn small_model(seed: i64) -> Model {
    tch::manual_seed(seed);
    Model::new(
        Arch::SmallConv,
        InputSpec {
            image: [1, 12, 12],
            classes: 4,
        },
        Device::Cpu,
    )
    .unwrap()
}

fn config(optimizer: OptimizerConfig, epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        lr: 0.05,
        optimizer,
        schedule: Schedule::Constant,
        seed: 3,
        max_batches_per_epoch: None,
        threads: None,
    }
}

#[test]
fn top1_and_top5_by_hand() {
    // 6 classes; example 0: label 2 is the top logit; example 1: label 0 is
    // 6th of 6 (not in the top 5); example 2: label 5 is 2nd
    let logits = Tensor::from_slice(&[
        0.0f32, 1.0, 9.0, 2.0, 3.0, 4.0, //
        0.0, 1.0, 2.0, 3.0, 4.0, 5.0, //
        0.0, 1.0, 2.0, 3.0, 9.0, 8.0,
    ])
    .view([3, 6]);
    let labels = Tensor::from_slice(&[2i64, 0, 5]);
    assert_eq!(correct(&logits, &labels), (1, 2));
}

#[test]
fn learns_a_small_task_and_evaluates_it() {
    let train_set = synthetic(256, 1);
    let test_set = synthetic(128, 2);
    let model = small_model(0);
    let before = evaluate(&model, &test_set, 50).unwrap();
    let (report, _) = train(
        &model,
        &train_set,
        &config(OptimizerConfig::Adam { weight_decay: 0.0 }, 4),
        None,
        &mut |_| {},
    )
    .unwrap();
    let after = evaluate(&model, &test_set, 50).unwrap();
    assert_eq!(after.examples, 128);
    assert!(
        report.epochs[3].loss < 0.5 * report.epochs[0].loss,
        "{report:?}"
    );
    assert!(after.loss < 0.5 * before.loss, "{before:?} -> {after:?}");
    assert!(after.top1 > 0.9, "{after:?}");
    assert_eq!(after.top5, 1.0, "4 classes are always in the top 5");
}

#[test]
fn pruned_weights_stay_exactly_zero() {
    for optimizer in [
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-2,
        },
        OptimizerConfig::Adam { weight_decay: 1e-2 },
    ] {
        let model = small_model(0);
        let mut by_name = BTreeMap::new();
        for name in ["conv1.weight", "fc.weight"] {
            let w = model.tensor(name).unwrap();
            // keep every other weight
            let mask = Tensor::arange(w.numel() as i64, (Kind::Int64, Device::Cpu))
                .remainder(2)
                .to_kind(Kind::Float)
                .view(w.size().as_slice());
            by_name.insert(name.to_owned(), mask);
        }
        let masks = Masks { by_name };
        train(
            &model,
            &synthetic(64, 1),
            &config(optimizer, 2),
            Some(&masks),
            &mut |_| {},
        )
        .unwrap();
        for (name, mask) in &masks.by_name {
            let w = model.tensor(name).unwrap();
            let pruned = w.masked_select(&mask.eq(0.0));
            assert_eq!(
                pruned.abs().max().double_value(&[]),
                0.0,
                "{name} {optimizer:?}"
            );
            let kept = w.masked_select(&mask.eq(1.0));
            assert!(kept.abs().min().double_value(&[]) > 0.0, "{name}");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_weights() {
    // Both runs start from the same weights, copied rather than drawn again:
    // torch's global generator is shared with tests running in parallel.
    let data = synthetic(64, 1);
    let a = small_model(7);
    let mut b = small_model(8);
    b.var_store_mut().copy(a.var_store()).unwrap();
    let cfg = config(
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        2,
    );
    for m in [&a, &b] {
        train(m, &data, &cfg, None, &mut |_| {}).unwrap();
    }
    for (name, w) in a.trainable() {
        assert!(w.equal(&b.tensor(&name).unwrap()), "{name}");
    }
}

#[test]
fn bad_recipes_name_the_setting() {
    let mut cfg = config(OptimizerConfig::Adam { weight_decay: 0.0 }, 0);
    assert!(cfg.validate().unwrap_err().to_string().contains("epochs"));
    cfg.epochs = 1;
    cfg.lr = -1.0;
    assert!(cfg.validate().unwrap_err().to_string().contains("`lr`"));
}
