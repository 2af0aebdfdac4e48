//! Parameters of the uniform quantizer, checked before a run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ensure_param, QuantError, Result};

/// How wide the cells are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellWidth {
    /// At most `k` cells cover `[min w, max w]`, `k >= 1`; the step is the
    /// smallest that achieves it (see [`uniform_step`](super::uniform_step)).
    Cells(usize),
    /// The step `delta` itself, `delta > 0` and finite.
    Step(f64),
}

impl CellWidth {
    /// Checks the range: `k >= 1`, or `delta` positive and finite.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Cells(k) => ensure_param(k >= 1, "k", "k must be at least 1"),
            Self::Step(delta) => ensure_param(
                delta.is_finite() && delta > 0.0,
                "delta",
                format!("delta must be positive and finite, got {delta}"),
            ),
        }
    }
}

/// Where each cell puts its shared value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UniformCentre {
    /// The cell's midpoint `n * delta`: the members' error is at most
    /// `delta / 2`.
    #[serde(rename = "midpoint")]
    Midpoint,
    /// The mean of the cell's members.
    #[serde(rename = "mean")]
    Mean,
    /// The `h`-weighted mean of the cell's members (the plain mean when
    /// their `h` sum to 0); the paper found it slightly better than `Mean`.
    #[default]
    #[serde(rename = "weighted-mean")]
    WeightedMean,
}

impl UniformCentre {
    /// The name used in configuration files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Midpoint => "midpoint",
            Self::Mean => "mean",
            Self::WeightedMean => "weighted-mean",
        }
    }
}

impl fmt::Display for UniformCentre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UniformCentre {
    type Err = QuantError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "midpoint" => Ok(Self::Midpoint),
            "mean" => Ok(Self::Mean),
            "weighted-mean" => Ok(Self::WeightedMean),
            other => Err(QuantError::InvalidParam {
                name: "centre",
                reason: format!("`{other}` is not one of midpoint, mean, weighted-mean"),
            }),
        }
    }
}

/// Parameters of [`uniform`](super::uniform).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UniformParams {
    /// Number of cells or their width.
    pub width: CellWidth,
    /// Shared value of each cell.
    pub centre: UniformCentre,
}

impl UniformParams {
    /// At most `k` cells with `h`-weighted-mean centres.
    pub fn cells(k: usize) -> Self {
        Self {
            width: CellWidth::Cells(k),
            centre: UniformCentre::WeightedMean,
        }
    }

    /// Cells of width `delta` with `h`-weighted-mean centres.
    pub fn step(delta: f64) -> Self {
        Self {
            width: CellWidth::Step(delta),
            centre: UniformCentre::WeightedMean,
        }
    }

    /// Checks the ranges (see [`CellWidth::validate`]).
    pub fn validate(&self) -> Result<()> {
        self.width.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in [
            UniformCentre::Midpoint,
            UniformCentre::Mean,
            UniformCentre::WeightedMean,
        ] {
            assert_eq!(c.as_str().parse::<UniformCentre>().unwrap(), c);
        }
        assert!(matches!(
            "median".parse::<UniformCentre>(),
            Err(QuantError::InvalidParam { name: "centre", .. })
        ));
    }

    #[test]
    fn validation_names_the_parameter() {
        let bad = |w: CellWidth| match (UniformParams {
            width: w,
            centre: UniformCentre::Mean,
        })
        .validate()
        {
            Err(QuantError::InvalidParam { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(bad(CellWidth::Cells(0)), "k");
        assert_eq!(bad(CellWidth::Step(0.0)), "delta");
        assert_eq!(bad(CellWidth::Step(-1.0)), "delta");
        assert_eq!(bad(CellWidth::Step(f64::NAN)), "delta");
        assert_eq!(bad(CellWidth::Step(f64::INFINITY)), "delta");
        assert!(UniformParams::cells(1).validate().is_ok());
        assert!(UniformParams::step(1e-30).validate().is_ok());
    }
}
