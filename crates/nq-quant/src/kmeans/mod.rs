//! Weighted k-means in one dimension (paper.md 4.1).
//!
//! Minimises the Hessian-weighted distortion `sum_i h_i (w_i - c_{a(i)})^2`
//! by Lloyd's algorithm (Lloyd 1982) from a k-means++ (Arthur and
//! Vassilvitskii 2007), linear or density initialisation. With `h = 1` it
//! is conventional k-means (Gong et al. 2014; Han et al. 2015); with the
//! Hessian diagonal it is the paper's Hessian-weighted k-means.
//!
//! One dimension makes it cheap: the data is sorted once, clusters are
//! intervals between midpoints of neighbouring centres, and each centre is
//! a difference of prefix sums, so one iteration costs `O(k log N)`.

mod algorithm;
mod hyperparams;
mod init;

pub use algorithm::{initial_centres, kmeans, kmeans_sorted};
pub use hyperparams::{KmeansInit, KmeansParams};
