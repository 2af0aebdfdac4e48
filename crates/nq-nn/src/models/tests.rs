//! Parameter counts, shapes, quantizable tensors, checkpoints.

use tch::{Device, Kind, Tensor};

use super::*;

fn mnist() -> InputSpec {
    InputSpec {
        image: [1, 28, 28],
        classes: 10,
    }
}

fn cifar() -> InputSpec {
    InputSpec {
        image: [3, 32, 32],
        classes: 10,
    }
}

fn model(arch: Arch, input: InputSpec) -> Model {
    tch::manual_seed(0);
    Model::new(arch, input, Device::Cpu).unwrap()
}

#[test]
fn parameter_counts() {
    for (arch, input, count) in [
        (Arch::Lenet5, mnist(), 431_080),
        (Arch::Lenet300100, mnist(), 266_610),
        (Arch::SmallConv, mnist(), 3_818),
        (Arch::Resnet20, cifar(), 269_722),
        (Arch::Resnet32, cifar(), 464_154),
        (Arch::Resnet56, cifar(), 853_018),
        (Arch::Vit, mnist(), 139_018),
        // 64 patches of 4x4x3 instead of 16 of 7x7x1
        (Arch::Vit, cifar(), 139_018 - 3_136 + 3_072 + 48 * 64),
        (
            Arch::Alexnet,
            InputSpec {
                image: [3, 224, 224],
                classes: 1000,
            },
            61_100_840,
        ),
    ] {
        assert_eq!(model(arch, input).parameter_count(), count, "{arch}");
    }
}

#[test]
fn logits_have_one_score_per_class() {
    for (arch, input) in [
        (Arch::Lenet5, mnist()),
        (Arch::Lenet300100, mnist()),
        (Arch::SmallConv, cifar()),
        (Arch::Resnet20, cifar()),
        (Arch::Vit, mnist()),
        (Arch::Vit, cifar()),
    ] {
        let m = model(arch, input);
        let [c, h, w] = input.image;
        let x = Tensor::randn([3, c, h, w], (Kind::Float, Device::Cpu));
        assert_eq!(m.forward_t(&x, false).size(), vec![3, 10], "{arch}");
        assert_eq!(m.forward_t(&x, true).size(), vec![3, 10], "{arch}");
    }
}

#[test]
fn quantizable_tensors_are_conv_and_linear_weights() {
    for (arch, input, n) in [
        (Arch::Lenet5, mnist(), 4),
        (Arch::Lenet300100, mnist(), 3),
        (Arch::SmallConv, mnist(), 3),
        (Arch::Resnet32, cifar(), 32),
        // patch embedding, 4 per block (qkv, proj, fc1, fc2), head
        (Arch::Vit, mnist(), 18),
    ] {
        let m = model(arch, input);
        assert_eq!(m.quantizable().len(), n, "{arch}");
        for q in m.quantizable() {
            let t = m.tensor(&q.name).unwrap();
            let rank = t.dim();
            match q.kind {
                TensorKind::Conv => assert_eq!(rank, 4, "{}", q.name),
                TensorKind::Linear => assert_eq!(rank, 2, "{}", q.name),
            }
        }
    }
    // biases and batch norm stay float
    let m = model(Arch::Resnet20, cifar());
    assert!(m.quantizable().iter().all(|q| !q.name.contains("bn")));
}

#[test]
fn too_small_inputs_are_refused() {
    let err = Model::new(
        Arch::Lenet5,
        InputSpec {
            image: [1, 8, 8],
            classes: 10,
        },
        Device::Cpu,
    )
    .unwrap_err();
    assert!(err.to_string().contains("16x16"), "{err}");
    let err = Model::new(
        Arch::Vit,
        InputSpec {
            image: [1, 30, 30],
            classes: 10,
        },
        Device::Cpu,
    )
    .unwrap_err();
    assert!(err.to_string().contains("multiple of 7 or 4"), "{err}");
    assert!(Model::new(
        Arch::SmallConv,
        InputSpec {
            image: [1, 28, 28],
            classes: 1
        },
        Device::Cpu
    )
    .is_err());
}

#[test]
fn names_round_trip() {
    for arch in Arch::ALL {
        assert_eq!(arch.as_str().parse::<Arch>().unwrap(), arch);
    }
    let err = "lenet6".parse::<Arch>().unwrap_err().to_string();
    assert!(err.contains("lenet6") && err.contains("resnet32"), "{err}");
}

#[test]
fn checkpoints_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let a = model(Arch::Resnet20, cifar());
    a.save(&path).unwrap();
    tch::manual_seed(1);
    let mut b = Model::new(Arch::Resnet20, cifar(), Device::Cpu).unwrap();
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    assert!(a.forward_t(&x, false) != b.forward_t(&x, false));
    b.load(&path).unwrap();
    assert!(a.forward_t(&x, false).equal(&b.forward_t(&x, false)));
    let missing = b.load(&dir.path().join("none.safetensors")).unwrap_err();
    assert!(
        missing.to_string().contains("none.safetensors"),
        "{missing}"
    );
}

#[test]
fn taps_report_every_quantizable_layer_in_forward_order() {
    for (arch, input) in [
        (Arch::Lenet5, mnist()),
        (Arch::Lenet300100, mnist()),
        (Arch::SmallConv, mnist()),
        (Arch::Resnet20, cifar()),
        (Arch::Vit, mnist()),
    ] {
        let m = model(arch, input);
        let [c, h, w] = input.image;
        let x = Tensor::randn([2, c, h, w], (Kind::Float, Device::Cpu));
        let (logits, taps) = m.forward_tapped(&x);
        assert_eq!(logits.size(), vec![2, 10], "{arch}");
        let names: Vec<&str> = taps.iter().map(|t| t.name.as_str()).collect();
        let quantizable: Vec<&str> = m.quantizable().iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, quantizable, "{arch}");
        for t in &taps {
            assert_eq!(t.input.size()[0], 2, "{}", t.name);
            assert_eq!(t.output.size()[0], 2, "{}", t.name);
            match (
                t.op,
                m.quantizable()
                    .iter()
                    .find(|q| q.name == t.name)
                    .unwrap()
                    .kind,
            ) {
                // a transformer's projections act on every token
                (LayerOp::Linear, TensorKind::Linear) => assert!(t.output.dim() >= 2),
                (LayerOp::Conv2d { .. }, TensorKind::Conv) => assert_eq!(t.output.dim(), 4),
                (op, kind) => panic!("{}: {op:?} for a {kind:?} weight", t.name),
            }
        }
        // recording is off outside forward_tapped
        let (_, again) = m.forward_tapped(&x);
        assert_eq!(again.len(), taps.len(), "{arch}");
    }
}

#[test]
fn the_char_gpt_predicts_each_next_character_from_the_earlier_ones() {
    let input = InputSpec {
        image: [1, 1, 128],
        classes: 84,
    };
    let m = model(Arch::CharGpt, input);
    // token embedding 84 x 64, positions 128 x 64, 4 blocks of 49,984
    // (layer norms 2 x 128, qkv 12,480, proj 4,160, MLP 16,640 + 16,448),
    // final layer norm 128, head 64 x 84 + 84
    assert_eq!(m.parameter_count(), 219_092);
    // the token embedding, 4 per block, the head
    assert_eq!(m.quantizable().len(), 18);
    let quantized: i64 = m
        .quantizable()
        .iter()
        .map(|q| m.tensor(&q.name).unwrap().numel() as i64)
        .sum();
    assert_eq!(quantized, 207_360);
    let x = Tensor::randint(84, [2, 16], (Kind::Int64, Device::Cpu));
    let (logits, taps) = m.forward_tapped(&x);
    assert_eq!(logits.size(), [2, 16, 84]);
    let names: Vec<&str> = taps.iter().map(|t| t.name.as_str()).collect();
    let quantizable: Vec<&str> = m.quantizable().iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, quantizable);
    // causal: a change at position 10 leaves the predictions before it alone
    let changed = x.copy();
    let _ = changed
        .get(0)
        .get(10)
        .fill_((x.int64_value(&[0, 10]) + 1) % 84);
    let again = m.forward_t(&changed, false);
    let diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
    assert_eq!(diff(&logits.narrow(1, 0, 10), &again.narrow(1, 0, 10)), 0.0);
    assert!(diff(&logits.narrow(1, 10, 6), &again.narrow(1, 10, 6)) > 0.0);
    let err = Model::new(Arch::CharGpt, mnist(), Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("[1, 1, T]"), "{err}");
}
