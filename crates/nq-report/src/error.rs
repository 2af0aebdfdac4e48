//! Errors of tables, reports and figures.

use std::path::PathBuf;

/// What can go wrong reading results or writing tables and figures.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A results file is not what nq-exp writes.
    #[error("{}: {message}", path.display())]
    BadResults {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// polars failed.
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// plotters failed to draw or write a figure.
    #[error("{}: cannot draw the figure: {message}", path.display())]
    Figure {
        /// The figure file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Results of this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Wraps an I/O error with its path.
pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}
