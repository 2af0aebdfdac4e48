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
//!
//! Cost: one sort of the weights (`O(N log N)`), then per iteration one
//! pass over them (`O(N)` plus the centres visited) and an `O(k log k)`
//! update. The assignment is exact but walks outward from each weight's
//! place among the sorted centres and stops when the distance term alone
//! exceeds the best cost, so it visits a few centres, not all `k`; only
//! weights whose `h_i` is tiny next to `lambda` visit many (worst case
//! `O(N k)`). Measured (`scripts/ecsq_cost.py`, `make bench`, 2 cores):
//! time grows with N at a log-log slope of about 1 (0.87 to 1.03 over two
//! runs, 10^4 to 10^7 weights), and an iteration over 10^6 weights costs
//! 7.7 to 10.3 ms (two runs) whether `k_init` is 16 or 1024.

mod algorithm;
mod hyperparams;

pub use algorithm::ecsq;
pub use hyperparams::{EcsqInit, EcsqParams};
