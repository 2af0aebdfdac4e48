//! Parameters of weighted k-means, checked before a run.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ensure_param, QuantError, Result};

/// How the initial centres are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum KmeansInit {
    /// Greedy k-means++ (Arthur & Vassilvitskii 2007) with the sampling
    /// weighted by `h`, `2 + ln k` candidates per step as in scikit-learn.
    #[default]
    #[serde(rename = "kmeans++")]
    PlusPlus,
    /// Evenly spaced over `[min, max]` (Deep Compression's linear init).
    #[serde(rename = "linear")]
    Linear,
    /// Quantiles `(j + 1/2) / k` of the h-weighted distribution.
    #[serde(rename = "density")]
    Density,
}

impl FromStr for KmeansInit {
    type Err = QuantError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "kmeans++" | "k-means++" => Ok(Self::PlusPlus),
            "linear" => Ok(Self::Linear),
            "density" => Ok(Self::Density),
            other => Err(QuantError::InvalidParam {
                name: "init",
                reason: format!("`{other}` is not one of kmeans++, linear, density"),
            }),
        }
    }
}

/// Parameters of [`kmeans`](super::kmeans).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KmeansParams {
    /// Number of clusters, `k >= 1`. Fewer are returned when the data has
    /// fewer distinct values (or fewer with positive importance).
    pub k: usize,
    /// Initialisation.
    pub init: KmeansInit,
    /// Most Lloyd iterations; the run stops earlier when no assignment
    /// changes.
    pub max_iter: usize,
    /// Seed of the initialisation.
    pub seed: u64,
}

impl KmeansParams {
    /// `k` clusters, k-means++ init, at most 1,000 iterations, seed 0.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            init: KmeansInit::PlusPlus,
            max_iter: 1000,
            seed: 0,
        }
    }

    /// Checks the ranges: `k >= 1`, `max_iter >= 1`.
    pub fn validate(&self) -> Result<()> {
        ensure_param(self.k >= 1, "k", "k must be at least 1")?;
        ensure_param(
            self.max_iter >= 1,
            "max_iter",
            "max_iter must be at least 1",
        )
    }
}
