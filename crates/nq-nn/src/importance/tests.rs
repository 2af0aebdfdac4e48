//! The three Hessian estimators against each other on a tiny network, and
//! the loss increase the diagonal predicts against the measured one.

use tch::nn::{self, Module, OptimizerConfig as _};
use tch::{Device, Kind, Tensor};

use super::*;

/// A 3-5-3 MLP with a tanh (38 parameters) and 12 fixed examples.
struct Tiny {
    _vs: nn::VarStore,
    net: nn::Sequential,
    params: Vec<(String, Tensor)>,
    batches: Vec<(Tensor, Tensor)>,
}

impl Tiny {
    /// The parameter `name` (such as `fc1.weight`), sharing its storage.
    fn param(&self, name: &str) -> Tensor {
        let (_, tensor) = self.params.iter().find(|(n, _)| n == name).unwrap();
        tensor.shallow_clone()
    }
}

fn tiny(seed: i64) -> Tiny {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "fc1", 3, 5, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(&root / "fc2", 5, 3, Default::default()));
    let mut params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let x = Tensor::randn([12, 3], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(3, [12], (Kind::Int64, Device::Cpu));
    let batches = vec![
        (x.narrow(0, 0, 5), y.narrow(0, 0, 5)),
        (x.narrow(0, 5, 7), y.narrow(0, 5, 7)),
    ];
    Tiny {
        _vs: vs,
        net,
        params,
        batches,
    }
}

fn flat(ts: &[Tensor]) -> Vec<f64> {
    ts.iter()
        .flat_map(|t| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap())
        .map(f64::from)
        .collect()
}

/// diag(J^T H_out J) averaged over examples, from the explicit Jacobian of
/// the logits (one backward pass per logit) and H_out = diag(p) - p p^T.
fn ggn_from_jacobian(t: &Tiny) -> Vec<f64> {
    let inputs: Vec<Tensor> = t.params.iter().map(|(_, p)| p.shallow_clone()).collect();
    let total: i64 = t.batches.iter().map(|(_, y)| y.size()[0]).sum();
    let mut diag = vec![0f64; flat(&inputs).len()];
    for (x, _) in &t.batches {
        for n in 0..x.size()[0] {
            let z = t.net.forward(&x.narrow(0, n, 1)).squeeze_dim(0);
            let p: Vec<f64> = Vec::<f32>::try_from(z.softmax(0, Kind::Float))
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect();
            let c = p.len();
            let jac: Vec<Vec<f64>> = (0..c as i64)
                .map(|k| flat(&Tensor::run_backward(&[z.get(k)], &inputs, true, false)))
                .collect();
            for (i, d) in diag.iter_mut().enumerate() {
                for a in 0..c {
                    for b in 0..c {
                        let h = if a == b {
                            p[a] - p[a] * p[b]
                        } else {
                            -p[a] * p[b]
                        };
                        *d += jac[a][i] * h * jac[b][i] / total as f64;
                    }
                }
            }
        }
    }
    diag
}

#[test]
fn per_example_gauss_newton_equals_the_ggn_from_the_jacobian() {
    let t = tiny(0);
    let forward = |x: &Tensor| t.net.forward(x);
    let (ggn, cost) = gauss_newton_diag_per_example(&forward, &t.params, &t.batches).unwrap();
    assert_eq!(cost.backward_passes, 12 * 3);
    let got = flat(&ggn);
    let want = ggn_from_jacobian(&t);
    assert_eq!(got.len(), 38);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "weight {i}: {g} vs {w}"
        );
    }
}

#[test]
fn hutchinson_converges_to_the_exact_diagonal() {
    let t = tiny(1);
    let forward = |x: &Tensor| t.net.forward(x);
    let (exact, cost) = exact_diag(&forward, &t.params, &t.batches).unwrap();
    assert_eq!(cost.hessian_vector_products, 2 * 38);
    // 4,000 probes per batch: the error of each entry is about
    // sqrt(sum_j H_ij^2 / 8000), well under 5 % of the largest entry
    let (hutch, cost) = hutchinson_diag(&forward, &t.params, &t.batches, 4000, 7).unwrap();
    assert_eq!(cost.hessian_vector_products, 8000);
    let (exact, hutch) = (flat(&exact), flat(&hutch));
    let scale = exact.iter().fold(0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    for (i, (h, e)) in hutch.iter().zip(&exact).enumerate() {
        assert!(
            (h - e).abs() <= 0.05 * scale,
            "weight {i}: {h} vs {e} (scale {scale})"
        );
    }
}

#[test]
fn the_diagonal_predicts_the_loss_increase_of_small_perturbations() {
    let t = tiny(2);
    // train to a minimum so that the quadratic term dominates
    let mut opt = nn::Adam::default().build(&t._vs, 0.05).unwrap();
    let loss_of = |net: &nn::Sequential| {
        let (x, y) = (&t.batches[0], &t.batches[1]);
        let xs = Tensor::cat(&[&x.0, &y.0], 0);
        let ys = Tensor::cat(&[&x.1, &y.1], 0);
        net.forward(&xs).cross_entropy_for_logits(&ys)
    };
    for _ in 0..500 {
        opt.backward_step(&loss_of(&t.net));
    }
    let forward = |x: &Tensor| t.net.forward(x);
    let (diag, _) = exact_diag(&forward, &t.params, &t.batches).unwrap();
    let base = tch::no_grad(|| loss_of(&t.net).double_value(&[]));
    // antithetic pairs +d, -d cancel the gradient term; random signs make
    // the off-diagonal terms average out, so the mean increase approaches
    // 1/2 sum h d^2
    let eps = 0.02;
    let (mut measured, mut predicted) = (0.0, 0.0);
    tch::manual_seed(3);
    let draws = 200;
    for _ in 0..draws {
        let deltas: Vec<Tensor> = t
            .params
            .iter()
            .map(|(_, p)| (p.detach().zeros_like().bernoulli_float_(0.5) * 2.0 - 1.0) * eps)
            .collect();
        predicted += 0.5
            * diag
                .iter()
                .zip(&deltas)
                .map(|(h, d)| (h * d * d).sum(Kind::Float).double_value(&[]))
                .sum::<f64>();
        let mut pair = 0.0;
        for sign in [1.0, -1.0] {
            tch::no_grad(|| {
                for ((_, p), d) in t.params.iter().zip(&deltas) {
                    let _ = p.shallow_clone().f_add_(&(d * sign)).unwrap();
                }
            });
            pair += tch::no_grad(|| loss_of(&t.net).double_value(&[])) - base;
            tch::no_grad(|| {
                for ((_, p), d) in t.params.iter().zip(&deltas) {
                    let _ = p.shallow_clone().f_sub_(&(d * sign)).unwrap();
                }
            });
        }
        measured += pair / 2.0;
    }
    let (measured, predicted) = (measured / draws as f64, predicted / draws as f64);
    assert!(predicted > 0.0);
    assert!(
        (measured - predicted).abs() <= 0.15 * predicted,
        "measured {measured:.3e}, predicted {predicted:.3e}"
    );
}

#[test]
fn adam_importance_is_sqrt_v_hat_of_training_and_of_a_statistics_pass() {
    use crate::data::InMemory;
    use crate::models::{Arch, InputSpec, Model};
    use crate::train::{train, AnyOptimizer, OptimizerConfig, Schedule, TrainConfig};

    tch::manual_seed(0);
    let x = Tensor::randn([48, 1, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(2, [48], (Kind::Int64, Device::Cpu));
    let data = InMemory::new(x, y, 2).unwrap();
    let model = Model::new(
        Arch::SmallConv,
        InputSpec {
            image: [1, 8, 8],
            classes: 2,
        },
        Device::Cpu,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 16,
        lr: 1e-3,
        optimizer: OptimizerConfig::Adam { weight_decay: 0.0 },
        schedule: Schedule::Constant,
        seed: 0,
        max_batches_per_epoch: None,
        threads: None,
    };
    let (_, optimizer) = train(&model, &data, &cfg, None, &mut |_| {}).unwrap();
    let AnyOptimizer::Adam(adam) = optimizer else {
        panic!("trained with Adam")
    };
    let imp = adam_importance(&model, &adam).unwrap();
    assert_eq!(imp.by_name.len(), 3);
    let w = &imp.by_name["fc.weight"];
    assert!(w.equal(&adam.sqrt_v_hat("fc.weight").unwrap()));
    assert_eq!(w.size(), model.tensor("fc.weight").unwrap().size());

    // a statistics pass over the same 3 batches, weights frozen
    let before = model.tensor("fc.weight").unwrap().copy();
    let stats = adam_statistics(&model, &data, 16).unwrap();
    assert!(
        model.tensor("fc.weight").unwrap().equal(&before),
        "weights frozen"
    );
    assert_eq!(stats.cost.backward_passes, 3);
    for (name, h) in &stats.by_name {
        assert!(
            h.min().double_value(&[]) >= 0.0 && h.max().double_value(&[]) > 0.0,
            "{name}"
        );
    }
}

#[test]
fn hutchinson_runs_through_attention_and_layer_norm() {
    use crate::models::{Arch, InputSpec, Model};
    tch::manual_seed(3);
    let int64 = (Kind::Int64, Device::Cpu);
    for (arch, image, x, y) in [
        (
            Arch::Vit,
            [1, 14, 14],
            Tensor::randn([3, 1, 14, 14], (Kind::Float, Device::Cpu)),
            Tensor::from_slice(&[0i64, 3, 1]),
        ),
        // a language model: every position a prediction
        (
            Arch::CharGpt,
            [1, 1, 8],
            Tensor::randint(4, [3, 8], int64),
            Tensor::randint(4, [3, 8], int64),
        ),
    ] {
        let m = Model::new(arch, InputSpec { image, classes: 4 }, Device::Cpu).unwrap();
        let params: Vec<(String, Tensor)> = m
            .quantizable()
            .iter()
            .map(|q| (q.name.clone(), m.tensor(&q.name).unwrap()))
            .collect();
        let forward = |x: &Tensor| m.forward_t(x, false);
        let (diag, _) = hutchinson_diag(&forward, &params, &[(x, y)], 2, 5).unwrap();
        for ((name, _), d) in params.iter().zip(&diag) {
            let v = flat(std::slice::from_ref(d));
            assert!(v.iter().all(|x| x.is_finite()), "{arch} {name}");
            assert!(v.iter().any(|&x| x != 0.0), "{arch} {name}: all zero");
        }
    }
}

/// The gradient of the mean loss with respect to `weight`, in f64.
fn mean_loss_gradient(t: &Tiny, weight: &Tensor) -> Vec<f64> {
    let total: i64 = t.batches.iter().map(|(_, y)| y.size()[0]).sum();
    let loss = t
        .batches
        .iter()
        .map(|(x, y)| crate::loss::cross_entropy_sum(&t.net.forward(x), y))
        .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b)
        / total as f64;
    flat(&Tensor::run_backward(&[loss], &[weight], false, false))
}

/// The derivative of the mean loss's gradient in `of` along entry `j` of
/// `moved`, by central differences of step `eps`; `moved` is left as it
/// was.
fn gradient_derivative(t: &Tiny, moved: &mut Tensor, j: usize, of: &Tensor, eps: f64) -> Vec<f64> {
    let base = Vec::<f32>::try_from(moved.flatten(0, -1)).unwrap();
    let shape = moved.size();
    let mut set = |values: &[f32]| {
        tch::no_grad(|| moved.copy_(&Tensor::from_slice(values).view(shape.as_slice())))
    };
    let mut at = |step: f64| {
        let mut values = base.clone();
        values[j] += step as f32;
        set(&values);
        mean_loss_gradient(t, of)
    };
    let (up, down) = (at(eps), at(-eps));
    set(&base);
    up.iter()
        .zip(&down)
        .map(|(u, d)| (u - d) / (2.0 * eps))
        .collect()
}

#[test]
fn the_hessian_block_matches_finite_differences_and_holds_the_exact_diagonal() {
    let t = tiny(5);
    let mut weight = t.param("fc1.weight");
    let forward = |x: &Tensor| t.net.forward(x);
    let (block, cost) = hessian_block(&forward, &[weight.shallow_clone()], &t.batches).unwrap();
    let n = weight.numel();
    assert_eq!(
        (block.len(), cost.hessian_vector_products),
        (n * n, 2 * n as u64)
    );
    // central differences of the gradient, column by column
    for j in 0..n {
        let of = weight.shallow_clone();
        let column = gradient_derivative(&t, &mut weight, j, &of, 1e-2);
        for (i, &fd) in column.iter().enumerate() {
            let exact = block[i * n + j];
            assert!(
                (fd - exact).abs() <= 2e-3 + 2e-2 * exact.abs(),
                "H[{i}][{j}]: finite differences {fd}, exact {exact}"
            );
        }
    }
    // symmetric, its diagonal is exact_diag's, and it has off-diagonal mass
    let params = [("fc1.weight".to_string(), weight.shallow_clone())];
    let (diag, _) = exact_diag(&forward, &params, &t.batches).unwrap();
    let diag = flat(&diag);
    for i in 0..n {
        assert!((block[i * n + i] - diag[i]).abs() <= 1e-6 + 1e-5 * diag[i].abs());
        for j in 0..i {
            assert_eq!(block[i * n + j], block[j * n + i]);
        }
    }
    let off: f64 = (0..n * n)
        .filter(|k| k / n != k % n)
        .map(|k| block[k].abs())
        .sum();
    assert!(off > 0.0);
}

#[test]
fn the_hessian_block_of_two_tensors_holds_their_own_blocks_and_the_cross_terms() {
    let t = tiny(7);
    let forward = |x: &Tensor| t.net.forward(x);
    let (mut fc1, fc2) = (t.param("fc1.weight"), t.param("fc2.weight"));
    let (n1, n2) = (fc1.numel(), fc2.numel());
    let m = n1 + n2;
    let (both, cost) = hessian_block(
        &forward,
        &[fc1.shallow_clone(), fc2.shallow_clone()],
        &t.batches,
    )
    .unwrap();
    assert_eq!(
        (both.len(), cost.hessian_vector_products),
        (m * m, 2 * m as u64)
    );
    // each tensor's own block on the diagonal
    for (offset, p) in [(0, &fc1), (n1, &fc2)] {
        let n = p.numel();
        let (own, _) = hessian_block(&forward, &[p.shallow_clone()], &t.batches).unwrap();
        for i in 0..n {
            for j in 0..n {
                let (a, b) = (both[(offset + i) * m + offset + j], own[i * n + j]);
                assert!((a - b).abs() <= 1e-9 + 1e-6 * b.abs(), "{a} against {b}");
            }
        }
    }
    // the cross block: fc2's gradient as fc1's weights move, by central
    // differences
    for j in 0..n1 {
        let column = gradient_derivative(&t, &mut fc1, j, &fc2, 1e-2);
        for (i, &fd) in column.iter().enumerate() {
            let exact = both[(n1 + i) * m + j];
            assert!(
                (fd - exact).abs() <= 2e-3 + 2e-2 * exact.abs(),
                "H[fc2 {i}][fc1 {j}]: finite differences {fd}, exact {exact}"
            );
        }
    }
    let both = &both;
    let cross: f64 = (0..n1)
        .flat_map(|j| (n1..m).map(move |i| both[i * m + j].abs()))
        .sum();
    assert!(cross > 0.0);
}

#[test]
fn the_gauss_newton_block_is_the_hessian_block_of_the_last_layer_and_holds_its_diagonal() {
    let t = tiny(6);
    let forward = |x: &Tensor| t.net.forward(x);
    // the logits are linear in fc2's weights: no curvature of the network
    // itself, so the Gauss-Newton block is the whole Hessian block
    let fc2 = t.param("fc2.weight");
    let n = fc2.numel();
    let (ggn, cost) = gauss_newton_block(&forward, &[fc2.shallow_clone()], &t.batches).unwrap();
    assert_eq!((ggn.len(), cost.backward_passes), (n * n, 12 * 3));
    let (exact, _) = hessian_block(&forward, &[fc2.shallow_clone()], &t.batches).unwrap();
    for (g, h) in ggn.iter().zip(&exact) {
        assert!((g - h).abs() <= 1e-6 + 1e-4 * h.abs(), "{g} against {h}");
    }
    // through the tanh it is not, but it holds the Gauss-Newton diagonal,
    // is symmetric and positive semi-definite
    let fc1 = t.param("fc1.weight");
    let n = fc1.numel();
    let (ggn, _) = gauss_newton_block(&forward, &[fc1.shallow_clone()], &t.batches).unwrap();
    let params = [("fc1.weight".to_string(), fc1.shallow_clone())];
    let (diag, _) = gauss_newton_diag_per_example(&forward, &params, &t.batches).unwrap();
    for (i, d) in flat(&diag).iter().enumerate() {
        assert!((ggn[i * n + i] - d).abs() <= 1e-7 + 1e-5 * d.abs());
        for j in 0..i {
            assert_eq!(ggn[i * n + j], ggn[j * n + i]);
        }
    }
    let block = Tensor::from_slice(&ggn).view([n as i64, n as i64]);
    let smallest = block.linalg_eigvalsh("L").min().double_value(&[]);
    assert!(smallest >= -1e-10, "{smallest}");
    let (exact, _) = hessian_block(&forward, &[fc1.shallow_clone()], &t.batches).unwrap();
    let apart = ggn
        .iter()
        .zip(&exact)
        .map(|(g, h)| (g - h).abs())
        .fold(0.0, f64::max);
    assert!(apart > 1e-4, "{apart}");
    // two tensors together: each one's own block on the diagonal, and
    // cross terms between them
    let (both, _) = gauss_newton_block(
        &forward,
        &[fc1.shallow_clone(), fc2.shallow_clone()],
        &t.batches,
    )
    .unwrap();
    let m = n + fc2.numel();
    assert_eq!(both.len(), m * m);
    for i in 0..n {
        for j in 0..n {
            assert!(
                (both[i * m + j] - ggn[i * n + j]).abs() <= 1e-12 + 1e-9 * ggn[i * n + j].abs()
            );
        }
    }
    let cross: f64 = (0..n)
        .flat_map(|i| (n..m).map(move |j| (i, j)))
        .map(|(i, j)| both[i * m + j].abs())
        .sum();
    assert!(cross > 0.0);
}
