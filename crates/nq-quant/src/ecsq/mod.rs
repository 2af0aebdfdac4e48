//! Iterative entropy-constrained scalar quantization (paper.md 4.3).
//!
//! Minimises the Lagrangian
//! `J = sum_i h_i (w_i - c_{a(i)})^2 + lambda sum_i l_{a(i)}`, where
//! `l_j = -log2(|C_j| / N)` is the ideal code length of cluster `j`, by the
//! Lloyd-like iteration of Chou, Lookabaugh and Gray ("Entropy-constrained
//! vector quantization", IEEE Trans. ASSP 37(1), 1989) with the Hessian
//! weighting of Choi et al. (ICLR 2017) in both steps: assign each weight
//! to the cluster minimising `h_i (w_i - c_j)^2 + lambda l_j`, then move each
//! centre to the `h`-weighted mean of its members and recompute the code
//! lengths from the cluster sizes, dropping clusters that emptied. It starts
//! from the uniform quantizer ([`crate::uniform`]) or from k-means++ centres
//! ([`crate::kmeans`]).
//!
//! `lambda` trades rate for distortion: sweeping it traces the
//! rate-distortion curve, and larger values leave fewer clusters.
//! `lambda = 0` is weighted k-means from the same start.

mod algorithm;
mod hyperparams;

pub use algorithm::ecsq;
pub use hyperparams::{EcsqInit, EcsqParams};
