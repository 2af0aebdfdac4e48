//! Soft weight-sharing (Ullrich, Meeds and Welling 2017, "Soft
//! weight-sharing for neural network compression", ICLR; paper.md
//! section 10): the quantization step.
//!
//! The network is first retrained with a Gaussian-mixture prior over its
//! weights, `p(w) = prod_i sum_j pi_j N(w_i; mu_j, sigma_j^2)`, whose
//! component 0 sits at zero with a large fixed mixing weight `pi_0`, and
//! whose means, variances and other mixing weights are learned with the
//! weights (that retraining needs autograd and lives in `nq-nn`). The
//! weights gather around the learned means; this module then merges
//! components that have become indistinguishable ([`Mixture::merged`]) and
//! sets every weight to the mean of the component that takes most
//! responsibility for it, `argmax_j pi_j N(w; mu_j, sigma_j^2)`
//! ([`soft_sharing`]). Weights of the zero component become exactly 0.
//!
//! The importance `h` plays no part: the mixture is the method's own model
//! of which weights may move where.

mod algorithm;
mod mixture;
#[cfg(test)]
mod tests;

pub use algorithm::{soft_sharing, SoftSharingParams};
pub use mixture::{Component, Mixture};
