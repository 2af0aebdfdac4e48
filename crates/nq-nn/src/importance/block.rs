//! Exact Hessian rows by double backward: the diagonal of every tensor
//! ([`super::exact_diag`]) and the whole block of one tensor or several
//! with their cross terms ([`hessian_block`]), for the off-diagonal terms
//! that the diagonal weighting leaves out (issue 12: how much of
//! `1/2 d^T H d` they carry, and the compensated rounding of
//! `nq_quant::compensation`); and the Gauss-Newton block of one tensor or
//! several ([`gauss_newton_block`]), positive semi-definite and far
//! cheaper.

use std::time::Instant;

use tch::Tensor;

use super::ggn::per_example_class_gradients;
use super::{examples, Cost};
use crate::error::Result;

/// Calls `row(p, j, h)` with row `j` of the Hessian of parameter `p`, for
/// every row of every parameter and every batch, where `L` is the mean
/// cross-entropy over all of `batches`: with `across` the whole row
/// `d^2 L / d w_pj d w` over all `inputs` (flattened one after the other),
/// else its own block only (`d^2 L / d w_pj d w_p`). The rows of one batch
/// add up to the Hessian of the mean. One gradient with its graph per
/// batch, one Hessian-vector product per row (the same backward pass
/// either way: `across` only keeps more of it).
pub(super) fn hessian_rows(
    forward: &dyn Fn(&Tensor) -> Tensor,
    inputs: &[Tensor],
    batches: &[(Tensor, Tensor)],
    across: bool,
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
            let targets = if across {
                inputs
            } else {
                std::slice::from_ref(input)
            };
            for j in 0..flat.size()[0] {
                let h = Tensor::f_run_backward(&[&flat.get(j)], targets, true, false)?;
                cost.hessian_vector_products += 1;
                // an input the row does not reach comes back undefined
                let parts: Vec<Tensor> = h
                    .iter()
                    .zip(targets)
                    .map(|(h, t)| {
                        if h.defined() {
                            h.flatten(0, -1)
                        } else {
                            t.zeros_like().flatten(0, -1)
                        }
                    })
                    .collect();
                row(p, j as usize, &Tensor::cat(&parts, 0));
            }
        }
    }
    cost.seconds = started.elapsed().as_secs_f64();
    Ok(cost)
}

/// The exact Hessian of the mean loss over `batches` with respect to the
/// tensors `params` together: `n x n` row-major for their `n` entries
/// (each in `flatten` order, one tensor after the other, as in
/// [`gauss_newton_block`]), cross-tensor terms included, made exactly
/// symmetric by averaging with its transpose (the two triangles differ by
/// float32 rounding). `n` double backward passes per batch and `n^2`
/// doubles: for networks of up to a few thousand weights.
pub fn hessian_block(
    forward: &dyn Fn(&Tensor) -> Tensor,
    params: &[Tensor],
    batches: &[(Tensor, Tensor)],
) -> Result<(Vec<f64>, Cost)> {
    let offsets: Vec<usize> = params
        .iter()
        .scan(0, |start, p| {
            let at = *start;
            *start += p.numel();
            Some(at)
        })
        .collect();
    let n: usize = params.iter().map(Tensor::numel).sum();
    let mut block = vec![0f64; n * n];
    let mut values = vec![0f64; n];
    let cost = hessian_rows(forward, params, batches, true, |p, j, h| {
        h.to_kind(tch::Kind::Double).copy_data(&mut values, n);
        let i = offsets[p] + j;
        for (out, v) in block[i * n..(i + 1) * n].iter_mut().zip(&values) {
            *out += v;
        }
    })?;
    symmetrise(&mut block, n);
    Ok((block, cost))
}

/// `block` (`n x n`, row-major) made exactly symmetric in place, each pair
/// of entries replaced by its mean (the two triangles of a computed block
/// differ by rounding).
fn symmetrise(block: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..i {
            let mean = 0.5 * (block[i * n + j] + block[j * n + i]);
            block[i * n + j] = mean;
            block[j * n + i] = mean;
        }
    }
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
    // in place: a block of 25,000 weights is 5 GB, and a temporary of the
    // product would double it
    let flush = |rows: &mut Vec<Tensor>, block: &mut Tensor| {
        if !rows.is_empty() {
            let v = Tensor::stack(rows, 0);
            let _ = block.addmm_(&v.tr(), &v);
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
    let mut out = vec![0f64; n * n];
    block.to_device(tch::Device::Cpu).copy_data(&mut out, n * n);
    drop(block);
    symmetrise(&mut out, n);
    Ok((out, cost))
}
