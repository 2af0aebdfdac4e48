//! Networks on libtorch (through tch) for nq-exp: data, models, training, pruning,
//! importance estimators and fine-tuning. The networks come in later; for now this
//! crate pins the libtorch link (see `build/rpath.rs`) and says which libtorch it got.

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
