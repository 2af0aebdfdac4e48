//! Parameters of the exact 1-D k-means, checked before a run.

use serde::{Deserialize, Serialize};

use crate::error::{ensure_param, Result};

/// Parameters of [`kmeans_optimal`](super::kmeans_optimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimalParams {
    /// Most clusters, `k >= 1`. Exactly `min(k, distinct values)` clusters
    /// are returned.
    pub k: usize,
}

impl OptimalParams {
    /// At most `k` clusters.
    pub fn new(k: usize) -> Self {
        Self { k }
    }

    /// Checks the range: `k >= 1`.
    pub fn validate(&self) -> Result<()> {
        ensure_param(self.k >= 1, "k", "k must be at least 1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::QuantError;

    #[test]
    fn k_must_be_positive() {
        assert!(matches!(
            OptimalParams::new(0).validate(),
            Err(QuantError::InvalidParam { name: "k", .. })
        ));
        assert!(OptimalParams::new(1).validate().is_ok());
    }
}
