//! Smoke test of the libtorch link: autograd on a hand-checkable case, then a tiny MLP
//! trained for a few SGD steps, on CPU and (when libtorch sees one) on CUDA.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// d/dw sum(w * w * x) = 2 w x, exactly.
fn autograd_matches_hand_computed(device: Device) {
    let w = Tensor::from_slice(&[1.0f32, -2.0, 3.0])
        .to_device(device)
        .set_requires_grad(true);
    let x = Tensor::from_slice(&[0.5f32, 4.0, -1.0]).to_device(device);
    let loss = (&w * &w * &x).sum(Kind::Float);
    assert_eq!(f32::try_from(&loss).unwrap(), 0.5 + 16.0 - 9.0);
    loss.backward();
    let grad = Vec::<f32>::try_from(w.grad().to_device(Device::Cpu)).unwrap();
    assert_eq!(grad, vec![1.0, -16.0, -6.0]);
}

/// 8 -> 16 -> 3 MLP on 64 fixed random points with random labels: the gradients have
/// the parameters' shapes, and 30 SGD steps lower the cross-entropy clearly.
fn mlp_trains(device: Device) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "fc1", 8, 16, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "fc2", 16, 3, Default::default()));
    let x = Tensor::randn([64, 8], (Kind::Float, device));
    let y = Tensor::randint(3, [64], (Kind::Int64, device));
    let loss_of = |net: &nn::Sequential| net.forward(&x).cross_entropy_for_logits(&y);

    let mut opt = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(&vs, 0.1)
    .unwrap();
    let first = loss_of(&net);
    opt.zero_grad();
    first.backward();
    let vars = vs.variables();
    assert_eq!(
        vars.len(),
        4,
        "fc1 and fc2, weight and bias each: {:?}",
        vars.keys()
    );
    for (name, var) in &vars {
        let grad = var.grad();
        assert!(grad.defined(), "{name} has no gradient");
        assert_eq!(grad.size(), var.size(), "gradient shape of {name}");
        assert_eq!(grad.device(), device);
    }
    assert_eq!(vars["fc1.weight"].size(), [16, 8]);
    assert_eq!(vars["fc2.bias"].size(), [3]);
    opt.step();
    for _ in 0..29 {
        opt.backward_step(&loss_of(&net));
    }
    let (first, last) = (
        f64::try_from(&first).unwrap(),
        f64::try_from(&loss_of(&net)).unwrap(),
    );
    assert!(
        first.is_finite() && last < 0.8 * first,
        "loss {first} -> {last} after 30 steps"
    );
}

#[test]
fn cpu_autograd() {
    autograd_matches_hand_computed(Device::Cpu);
}

#[test]
fn cpu_mlp_trains() {
    mlp_trains(Device::Cpu);
}

#[test]
fn cuda_autograd_and_mlp() {
    if !tch::Cuda::is_available() {
        eprintln!(
            "skipped: CUDA not available to libtorch {}",
            nq_nn::torch_version()
        );
        return;
    }
    autograd_matches_hand_computed(Device::Cuda(0));
    mlp_trains(Device::Cuda(0));
}
