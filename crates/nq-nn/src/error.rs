//! Errors of nq-nn. Each names the file, tensor or setting it is about.

use std::path::PathBuf;

/// Everything that can go wrong in nq-nn.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A data file or checkpoint is missing, unreadable or malformed.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file (or directory).
        path: PathBuf,
        /// What is wrong, and what was expected.
        reason: String,
    },
    /// A setting is out of range or does not fit the model or data.
    #[error("invalid setting `{name}`: {reason}")]
    InvalidSetting {
        /// The setting, as named in grids and on the command line.
        name: &'static str,
        /// What is wrong, and what was expected.
        reason: String,
    },
    /// A tensor has a shape, kind or value that does not fit.
    #[error("tensor `{name}`: {reason}")]
    BadTensor {
        /// The tensor's name in the model.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// An architecture or dataset name that is not in the catalog.
    #[error(transparent)]
    Name(#[from] nq_catalog::UnknownName),
    /// The quantizer rejected its input.
    #[error(transparent)]
    Quant(#[from] nq_quant::QuantError),
}

/// Result with [`NnError`].
pub type Result<T, E = NnError> = std::result::Result<T, E>;

/// An [`NnError::BadFile`] for `path`.
pub fn bad_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> NnError {
    NnError::BadFile {
        path: path.into(),
        reason: reason.into(),
    }
}

/// An [`NnError::InvalidSetting`] unless `ok`.
pub fn ensure_setting(ok: bool, name: &'static str, reason: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(NnError::InvalidSetting {
            name,
            reason: reason(),
        })
    }
}
