//! Exact Hessian rows by double backward: the diagonal of every tensor
//! ([`super::exact_diag`]) and the whole block of one tensor
//! ([`hessian_block`]), for the off-diagonal terms that the diagonal
//! weighting leaves out (issue 12: how much of `1/2 d^T H d` they carry,
//! and the compensated rounding of `nq_quant::compensation`); and the
//! Gauss-Newton block of one tensor ([`gauss_newton_block`]), positive
//! semi-definite and far cheaper.

use std::time::Instant;

use tch::Tensor;

use super::ggn::per_example_class_gradients;
use super::{examples, Cost};
use crate::error::Result;

/// Calls `row(p, j, h)` with row `j` of the Hessian block of parameter
/// `p` (its own block only: `d^2 L / d w_pj d w_p`), for every row of
/// every parameter and every batch, where `L` is the mean cross-entropy
/// over all of `batches`; the rows of one batch add up to the Hessian of
/// the mean. One gradient with its graph per batch, one Hessian-vector
/// product per row.
pub(super) fn hessian_rows(
    forward: &dyn Fn(&Tensor) -> Tensor,
    inputs: &[Tensor],
    batches: &[(Tensor, Tensor)],
    mut row: impl FnMut(usize, usize, &Tensor),
) -> Result<Cost> {
    let started = Instant::now();
    let total = examples(batches);
    let mut cost = Cost::default();
    for (x, y) in batches {
        let loss = crate::loss::cross_entropy_sum(&forward(x), y) / total;
        let grads = Tensor::f_run_backward(&[&loss], inputs, true, true)?;
        cost.backward_passes += 1;
        for (p, (g, input)) in grads.iter().zip(inputs).enumerate() {
            let flat = g.flatten(0, -1);
            for j in 0..flat.size()[0] {
                let h = Tensor::f_run_backward(&[&flat.get(j)], &[input], true, false)?;
                cost.hessian_vector_products += 1;
                row(p, j as usize, &h[0].flatten(0, -1));
            }
        }
    }
    cost.seconds = started.elapsed().as_secs_f64();
    Ok(cost)
}

/// The exact Hessian of the mean loss over `batches` with respect to the
/// tensor `param` alone: `n x n` row-major for its `n` entries (in
/// `flatten` order), made exactly symmetric by averaging with its
/// transpose (the two triangles differ by float32 rounding). `n` double
/// backward passes per batch and `n^2` doubles: for layers of up to a few
/// thousand weights.
pub fn hessian_block(
    forward: &dyn Fn(&Tensor) -> Tensor,
    param: &Tensor,
    batches: &[(Tensor, Tensor)],
) -> Result<(Vec<f64>, Cost)> {
    let n = param.numel();
    let mut block = vec![0f64; n * n];
    let mut values = vec![0f64; n];
    let cost = hessian_rows(forward, &[param.shallow_clone()], batches, |_, j, h| {
        h.to_kind(tch::Kind::Double).copy_data(&mut values, n);
        for (out, v) in block[j * n..(j + 1) * n].iter_mut().zip(&values) {
            *out += v;
        }
    })?;
    for i in 0..n {
        for j in 0..i {
            let mean = 0.5 * (block[i * n + j] + block[j * n + i]);
            block[i * n + j] = mean;
            block[j * n + i] = mean;
        }
    }
    Ok((block, cost))
}

/// The generalised Gauss-Newton block of the mean cross-entropy over
/// `batches` with respect to the tensors `params` together, `G = mean_n
/// J_n^T H_n J_n` restricted to them (see [`super::ggn`]): `n x n`
/// row-major for their `n` entries (each in `flatten` order, one tensor
/// after the other), cross-tensor terms included. Positive semi-definite,
/// and equal to the Hessian block where the logits are linear in the
/// tensors (the last layer). One backward pass per example and class, and
/// a rank-`C` update of the block per example (`n^2 C` multiply-adds):
/// seconds for 5,000 weights over 1,000 examples, where [`hessian_block`]
/// takes hours.
pub fn gauss_newton_block(
    forward: &dyn Fn(&Tensor) -> Tensor,
    params: &[Tensor],
    batches: &[(Tensor, Tensor)],
) -> Result<(Vec<f64>, Cost)> {
    let n: usize = params.iter().map(Tensor::numel).sum();
    let device = params.first().map_or(tch::Device::Cpu, Tensor::device);
    let mut block = Tensor::zeros([n as i64, n as i64], (tch::Kind::Double, device));
    let mut rows: Vec<Tensor> = Vec::new();
    let flush = |rows: &mut Vec<Tensor>, block: &mut Tensor| {
        if !rows.is_empty() {
            let v = Tensor::stack(rows, 0);
            *block += v.tr().mm(&v);
            rows.clear();
        }
    };
    let cost = per_example_class_gradients(forward, params, batches, |w, g| {
        let flat: Vec<Tensor> = g.iter().map(|t| t.flatten(0, -1)).collect();
        rows.push(Tensor::cat(&flat, 0).to_kind(tch::Kind::Double) * w.sqrt());
        // a few hundred rows per product keep the updates in large matmuls
        if rows.len() >= 256 {
            flush(&mut rows, &mut block);
        }
    })?;
    tch::no_grad(|| flush(&mut rows, &mut block));
    let block = tch::no_grad(|| (&block + block.tr()) * 0.5);
    let mut out = vec![0f64; n * n];
    block.to_device(tch::Device::Cpu).copy_data(&mut out, n * n);
    Ok((out, cost))
}
