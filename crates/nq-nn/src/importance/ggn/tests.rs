//! The batched and Monte Carlo GGN diagonals against the per-example oracle.

use tch::{Device, Kind, Tensor};

use super::*;
use crate::models::{Arch, InputSpec, Model};
use crate::prune::magnitude_masks;
use crate::train::apply_masks;
use nq_quant::scope::Scope;

fn model(arch: Arch, image: [i64; 3], classes: i64, seed: i64) -> Model {
    tch::manual_seed(seed);
    Model::new(arch, InputSpec { image, classes }, Device::Cpu).unwrap()
}

/// Two batches of different sizes from a generator of our own (torch's
/// global one is shared by parallel tests).
fn batches(image: [i64; 3], sizes: &[i64], classes: i64, seed: u64) -> Vec<(Tensor, Tensor)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    sizes
        .iter()
        .map(|&n| {
            let [c, h, w] = image;
            let values: Vec<f32> = (0..n * c * h * w)
                .map(|_| rng.random::<f32>() * 2.0 - 1.0)
                .collect();
            let labels: Vec<i64> = (0..n).map(|_| rng.random_range(0..classes)).collect();
            (
                Tensor::from_slice(&values).view([n, c, h, w]),
                Tensor::from_slice(&labels),
            )
        })
        .collect()
}

fn params(m: &Model) -> Vec<(String, Tensor)> {
    m.quantizable()
        .iter()
        .map(|q| (q.name.clone(), m.tensor(&q.name).unwrap()))
        .collect()
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

/// `|a - b|_2 / |b|_2`, with `b` required to be non-zero.
fn relative_l2(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (values(a), values(b));
    let diff: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    assert!(norm > 0.0, "the oracle's diagonal is zero");
    (diff / norm).sqrt()
}

/// Batched against per-example on `m`, tensor by tensor.
fn assert_batched_equals_oracle(m: &Model, data: &[(Tensor, Tensor)], what: &str) {
    let params = params(m);
    let plain = |x: &Tensor| m.forward_t(x, false);
    let tapped = |x: &Tensor| m.forward_tapped(x);
    let (oracle, oracle_cost) = gauss_newton_diag_per_example(&plain, &params, data).unwrap();
    let (batched, cost) = gauss_newton_diag(&tapped, &params, data).unwrap();
    let examples: i64 = data.iter().map(|(_, y)| y.size()[0]).sum();
    let classes = m.input().classes as u64;
    assert_eq!(oracle_cost.backward_passes, examples as u64 * classes);
    // the C - 1 columns of the Cholesky factor of each example's Hessian
    assert_eq!(cost.backward_passes, data.len() as u64 * (classes - 1));
    for ((name, _), (b, o)) in params.iter().zip(batched.iter().zip(&oracle)) {
        assert_eq!(b.size(), o.size(), "{what} {name}");
        let err = relative_l2(b, o);
        assert!(
            err < 1e-5,
            "{what} {name}: relative L2 difference {err:.2e}"
        );
    }
}

#[test]
fn batched_equals_per_example_on_conv_and_linear_nets() {
    let data = batches([1, 12, 12], &[5, 3], 10, 1);
    assert_batched_equals_oracle(
        &model(Arch::SmallConv, [1, 12, 12], 10, 0),
        &data,
        "small-conv",
    );
    let data = batches([1, 28, 28], &[4, 3], 10, 2);
    assert_batched_equals_oracle(&model(Arch::Lenet5, [1, 28, 28], 10, 1), &data, "lenet5");
    let data = batches([1, 10, 10], &[6, 2], 10, 3);
    assert_batched_equals_oracle(
        &model(Arch::Lenet300100, [1, 10, 10], 10, 2),
        &data,
        "lenet-300-100",
    );
}

#[test]
fn batched_equals_per_example_on_a_resnet_with_batch_norm_in_eval_mode() {
    let m = model(Arch::Resnet20, [3, 8, 8], 4, 3);
    // training-mode passes move the running statistics away from 0 and 1,
    // so that evaluation mode is not the identity in batch norm
    for (x, _) in batches([3, 8, 8], &[16, 16], 4, 4) {
        let _ = tch::no_grad(|| m.forward_t(&(x * 3.0 + 0.5), true));
    }
    let data = batches([3, 8, 8], &[3, 2], 4, 5);
    assert_batched_equals_oracle(&m, &data, "resnet20");
}

#[test]
fn batched_equals_per_example_on_a_vision_transformer() {
    // 14x14 images: four 7x7 patches and the class token, so the
    // projections' per-example gradients sum over five tokens
    let m = model(Arch::Vit, [1, 14, 14], 10, 10);
    let data = batches([1, 14, 14], &[3, 2], 10, 11);
    assert_batched_equals_oracle(&m, &data, "vit");
}

#[test]
fn batched_equals_per_example_with_pruned_weights() {
    let m = model(Arch::SmallConv, [1, 12, 12], 10, 6);
    let masks = magnitude_masks(&m, 0.3, Scope::Global).unwrap();
    apply_masks(&m, &masks).unwrap();
    let zeros = m
        .tensor("conv2.weight")
        .unwrap()
        .eq(0.0)
        .sum(Kind::Int64)
        .int64_value(&[]);
    assert!(zeros > 0, "pruning zeroed weights");
    let data = batches([1, 12, 12], &[4, 4], 10, 7);
    assert_batched_equals_oracle(&m, &data, "pruned small-conv");
}

#[test]
fn monte_carlo_converges_to_the_exact_diagonal() {
    let m = model(Arch::SmallConv, [1, 10, 10], 3, 8);
    let data = batches([1, 10, 10], &[3, 2], 3, 9);
    let params = params(&m);
    let tapped = |x: &Tensor| m.forward_tapped(x);
    let (exact, _) = gauss_newton_diag(&tapped, &params, &data).unwrap();
    let (few, cost) = gauss_newton_mc_diag(&tapped, &params, &data, 4, 1).unwrap();
    assert_eq!(cost.backward_passes, 2 * 4);
    let (many, _) = gauss_newton_mc_diag(&tapped, &params, &data, 4000, 1).unwrap();
    for (i, (name, _)) in params.iter().enumerate() {
        // the standard error falls as 1 / sqrt(draws): 1,000 times the draws,
        // about 1/30 of the error
        let (e_few, e_many) = (
            relative_l2(&few[i], &exact[i]),
            relative_l2(&many[i], &exact[i]),
        );
        assert!(e_many < 0.05, "{name}: {e_many:.3} with 4,000 draws");
        assert!(e_many < e_few, "{name}: {e_many:.3} vs {e_few:.3}");
    }
    // seeded: the same draws again
    let (again, _) = gauss_newton_mc_diag(&tapped, &params, &data, 4, 1).unwrap();
    for (a, b) in again.iter().zip(&few) {
        assert!(a.equal(b));
    }
}

#[test]
fn the_class_columns_factor_the_hessian_of_the_cross_entropy() {
    // rows: a spread distribution, a confident one, one with a class at 0
    let p = Tensor::from_slice(&[
        0.1f32, 0.2, 0.3, 0.4, 0.97, 0.01, 0.01, 0.01, 0.5, 0.5, 0.0, 0.0,
    ])
    .view([3, 4]);
    let columns = ClassColumns.columns(&p);
    assert_eq!(columns.len(), 3);
    let v = Tensor::stack(&columns, 2).to_kind(Kind::Double); // [N, C, C - 1]
    let p = p.to_kind(Kind::Double);
    let h = p.diag_embed(0, -2, -1) - p.unsqueeze(2) * p.unsqueeze(1);
    let err = (v.matmul(&v.transpose(1, 2)) - h)
        .abs()
        .max()
        .double_value(&[]);
    assert!(err < 1e-6, "V V^T - H: {err:.2e}");
    assert_eq!(v.isnan().sum(Kind::Int64).int64_value(&[]), 0);
}

#[test]
fn labels_are_drawn_by_the_cumulative_distribution() {
    let p = [0.25f32, 0.5, 0.25];
    assert_eq!(draw(&p, 0.0), 0);
    assert_eq!(draw(&p, 0.2499), 0);
    assert_eq!(draw(&p, 0.25), 1);
    assert_eq!(draw(&p, 0.7499), 1);
    assert_eq!(draw(&p, 0.75), 2);
    // rounding leaves the sum below u: the last class
    assert_eq!(draw(&[0.3, 0.3, 0.3], 0.95), 2);
}

#[test]
fn a_weight_no_layer_reports_is_an_error() {
    let m = model(Arch::SmallConv, [1, 10, 10], 3, 10);
    let data = batches([1, 10, 10], &[2], 3, 11);
    let mut ps = params(&m);
    ps.push(("fc.bias".into(), m.tensor("fc.bias").unwrap()));
    let tapped = |x: &Tensor| m.forward_tapped(x);
    let err = gauss_newton_diag(&tapped, &ps, &data)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fc.bias"), "{err}");
}

#[test]
fn a_language_models_logits_are_refused_by_name() {
    let m = model(Arch::CharGpt, [1, 1, 8], 5, 14);
    let x = Tensor::randint(5, [2, 8], (Kind::Int64, Device::Cpu));
    let y = Tensor::randint(5, [2, 8], (Kind::Int64, Device::Cpu));
    let tapped = |x: &Tensor| m.forward_tapped(x);
    let err = gauss_newton_diag(&tapped, &params(&m), &[(x, y)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 8, 5]") && err.contains("gauss-newton-mc"),
        "{err}"
    );
}

#[test]
fn batches_split_to_fit_the_memory_budget_give_the_same_diagonal() {
    let m = model(Arch::SmallConv, [1, 12, 12], 10, 12);
    let data = batches([1, 12, 12], &[7, 5], 10, 13);
    let params = params(&m);
    let tapped = |x: &Tensor| m.forward_tapped(x);
    let (whole, cost) =
        squared_jacobian_products(&tapped, &params, &data, &mut ClassColumns, i64::MAX).unwrap();
    assert_eq!(cost.backward_passes, 2 * 9);
    // a budget of one element: every example on its own
    let (split, cost) =
        squared_jacobian_products(&tapped, &params, &data, &mut ClassColumns, 1).unwrap();
    assert_eq!(cost.backward_passes, 12 * 9);
    for ((name, _), (a, b)) in params.iter().zip(whole.iter().zip(&split)) {
        let err = relative_l2(a, b);
        assert!(err < 1e-6, "{name}: {err:.2e}");
    }
}

/// `mean_{n,t} sum_c p_c (d(z_{n,t,c} - p . z_{n,t}) / dw)^2`: the exact
/// Gauss-Newton diagonal of a language model, a backward pass per example,
/// position and class.
fn per_position_oracle(m: &Model, params: &[(String, Tensor)], x: &Tensor) -> Vec<Tensor> {
    let inputs: Vec<Tensor> = params.iter().map(|(_, p)| p.shallow_clone()).collect();
    let [n, t] = x.size()[..] else { unreachable!() };
    let mut diag: Vec<Tensor> = inputs.iter().map(Tensor::zeros_like).collect();
    for i in 0..n {
        let z = m.forward_t(&x.narrow(0, i, 1), false).squeeze_dim(0);
        for pos in 0..t {
            let zt = z.get(pos);
            let p = zt.softmax(0, Kind::Float).detach();
            let mean = (&p * &zt).sum(Kind::Float);
            for c in 0..zt.size()[0] {
                let g =
                    Tensor::f_run_backward(&[&(zt.get(c) - &mean)], &inputs, true, false).unwrap();
                let weight = p.double_value(&[c]) / (n * t) as f64;
                tch::no_grad(|| {
                    for (d, g) in diag.iter_mut().zip(&g) {
                        *d += g * g * weight;
                    }
                });
            }
        }
    }
    diag
}

#[test]
fn monte_carlo_per_position_converges_for_a_language_model() {
    let m = model(Arch::CharGpt, [1, 1, 4], 3, 15);
    let x = Tensor::from_slice(&[0i64, 2, 1, 1, 2, 2, 0, 1]).view([2, 4]);
    let data = [(x.shallow_clone(), x.roll([-1], [1]))];
    let params = params(&m);
    let exact = per_position_oracle(&m, &params, &x);
    let tapped = |x: &Tensor| m.forward_tapped(x);
    let (few, _) = gauss_newton_mc_diag(&tapped, &params, &data, 4, 2).unwrap();
    let (many, cost) = gauss_newton_mc_diag(&tapped, &params, &data, 4000, 2).unwrap();
    assert_eq!(
        cost.backward_passes, 4000,
        "one pass per draw for all positions"
    );
    for (i, (name, _)) in params.iter().enumerate() {
        let (e_few, e_many) = (
            relative_l2(&few[i], &exact[i]),
            relative_l2(&many[i], &exact[i]),
        );
        assert!(e_many < 0.05, "{name}: {e_many:.3} with 4,000 draws");
        assert!(e_many < e_few, "{name}: {e_many:.3} vs {e_few:.3}");
    }
}
