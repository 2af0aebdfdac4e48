//! # nq-nn
//!
//! Networks on libtorch (through tch) for nq-exp: what a grid cell does to a
//! network. Data loaders ([`data`]), the paper's models ([`models`]),
//! training and evaluation ([`train`]) of the cross-entropy ([`loss`]), magnitude pruning ([`prune`]),
//! importance estimators ([`importance`]: Hessian diagonal and Adam's
//! second moment, paper.md section 3), applying a quantization from
//! `nq-quant` to a model ([`apply`]) and fine-tuning of the shared values
//! ([`finetune`]). Everything runs on the CPU, and on CUDA when asked and
//! available.

pub mod apply;
pub mod compensate;
pub mod data;
pub mod error;
pub mod finetune;
pub mod importance;
pub mod loss;
pub mod models;
pub mod prune;
pub mod soft_sharing;
pub mod train;

pub use error::{NnError, Result};

/// Version of the libtorch this crate was built against, such as `2.13.0+cu130`
/// (PyPI wheel with CUDA 13.0) or `2.13.0+cpu`; `unknown` when the libtorch dir had
/// neither a `build-version` nor a `version.py` file. Goes into each result row.
///
/// ```
/// assert!(!nq_nn::torch_version().is_empty());
/// ```
pub fn torch_version() -> &'static str {
    env!("NQ_LIBTORCH_VERSION")
}

/// Whether libtorch sees a CUDA device (false on a CPU-only libtorch or machine).
pub fn cuda_available() -> bool {
    tch::Cuda::is_available()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_one_tch_expects() {
        let v = torch_version();
        assert!(
            v == "unknown" || v.starts_with("2.13.0"),
            "libtorch {v}, tch 0.26 wants 2.13.0"
        );
    }
}
