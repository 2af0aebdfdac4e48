//! Rounding with compensation through the off-diagonal Hessian: Optimal
//! Brain Quantization (Frantar and Alistarh, "Optimal Brain Compression",
//! NeurIPS 2022) in the column-wise form of GPTQ (Frantar, Ashkboos,
//! Hoefler and Alistarh, "GPTQ: Accurate Post-Training Quantization for
//! Generative Pre-trained Transformers", ICLR 2023), onto a given codebook.
//!
//! The diagonal weighting of the paper (paper.md section 3) predicts the
//! loss increase of a quantization error `d = w - q` by
//! `1/2 sum_i h_ii d_i^2`; the second-order model is `1/2 d^T H d`
//! ([`quadratic_form`]). Rounding each weight to its nearest centre ignores
//! the off-diagonal terms. Here the weights are quantized one at a time, in
//! order: weight `i` goes to the centre nearest its current value, and the
//! weights not yet quantized move by the step that minimises the quadratic
//! form given the rounding so far,
//!
//! ```text
//! w_j <- w_j - d_i [H_F^-1]_ji / [H_F^-1]_ii     for j after i,
//! ```
//!
//! where `F` is the set of weights not yet quantized, `i` included. As in
//! GPTQ, the inverses of the shrinking blocks are not formed: with `U` the
//! upper Cholesky factor of `H^-1` (`H^-1 = U^T U`), row `i` of `U` holds
//! `[H_F^-1]_ji / [H_F^-1]_ii` as `U_ij / U_ii`. GPTQ forms `H^-1` and
//! factorises it; here the factor comes from one Cholesky factorisation of
//! `H` in reversed order and one triangular inverse (`2n^3/3` flops,
//! blocked and multi-threaded by faer; the derivation is at
//! `InverseFactor`). Cost: `O(n^3)` for the factorisation, `O(n^2)` for
//! each pass, `2 n^2` doubles of memory at the peak besides the block: a
//! small layer, or the rows of a larger one with the layer-input moment
//! `X^T X` as `H` (what GPTQ does), or blocks of tens of thousands of
//! weights where memory allows (`benches/compensation.rs`).
//!
//! With a diagonal `H` nothing moves and the result is plain nearest
//! rounding. With off-diagonal terms the rounding is greedy: it lowers the
//! quadratic form on average, not on every block: on small random
//! positive definite blocks a minority ends higher than plain rounding
//! (the test sums over many blocks for that reason).
//!
//! [`compensated_rows`] is GPTQ's layer-wise use: the rows of a layer's
//! weight matrix (a convolution's output channels, each over input channel
//! and kernel position) share `H = X^T X`, the second moment of the layer's
//! inputs, which is the Hessian of `||X d||^2`, the squared error the
//! quantization adds to the layer's outputs. One factorisation serves every
//! row; a pruned row uses the sub-block of its survivors.
//!
//! The damping adds `damping * mean(diag H)` to the diagonal before the
//! factorisation (GPTQ's `percdamp`, 0.01 there), which keeps a singular or
//! ill-conditioned block (fewer samples than weights) usable.

mod algorithm;
mod scoped;

pub use algorithm::{
    compensated, compensated_rows, nearest, quadratic_form, CompensationParams, Compensator,
    WeightRows,
};
pub use scoped::{compensate_tensor, compensate_tensors, LayerMoment};
