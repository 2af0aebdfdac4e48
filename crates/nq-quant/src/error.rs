//! Errors of the quantizers, the entropy coder and the size accounting.

use thiserror::Error;

/// Everything that can go wrong inside `nq-quant`. Each variant names the
/// offending parameter or input so that callers can report it as is.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum QuantError {
    /// A parameter is out of its range (`k = 0`, `lambda < 0`, ...).
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// The parameter's name as the user writes it.
        name: &'static str,
        /// What was expected.
        reason: String,
    },
    /// There is nothing to quantize.
    #[error("the weight vector is empty")]
    EmptyInput,
    /// Weights and importances differ in length.
    #[error("{weights} weights but {importance} importance values")]
    LengthMismatch {
        /// Number of weights.
        weights: usize,
        /// Number of importance values.
        importance: usize,
    },
    /// A weight is NaN or infinite.
    #[error("weight {index} is not finite ({value})")]
    NonFiniteWeight {
        /// Position in the input.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// An importance value is NaN, infinite or negative.
    #[error("importance {index} is {value}; importance must be finite and >= 0")]
    BadImportance {
        /// Position in the input.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// Input that is structurally inconsistent (a symbol outside its
    /// alphabet, a survivor position outside its tensor, ...).
    #[error("{0}")]
    Inconsistent(String),
    /// A `.nqz` file that cannot be read: bad magic, unsupported version,
    /// checksum mismatch, truncated or malformed content.
    #[error("corrupt .nqz file: {0}")]
    Corrupt(String),
    /// An error in one named tensor of many.
    #[error("in tensor `{name}`")]
    InTensor {
        /// The tensor's name.
        name: String,
        /// What went wrong there.
        source: Box<QuantError>,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, QuantError>;

/// Fails with [`QuantError::InvalidParam`] unless `ok`.
pub(crate) fn ensure_param(ok: bool, name: &'static str, reason: impl Into<String>) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(QuantError::InvalidParam {
            name,
            reason: reason.into(),
        })
    }
}
