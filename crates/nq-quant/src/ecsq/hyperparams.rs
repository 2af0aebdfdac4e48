//! Parameters of ECSQ, checked before a run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ensure_param, QuantError, Result};

/// Where the iteration starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EcsqInit {
    /// The uniform quantizer with at most `k_init` cells and `h`-weighted
    /// mean centres; its cluster shares give the initial code lengths.
    #[default]
    #[serde(rename = "uniform")]
    Uniform,
    /// `k_init` centres from weighted k-means++ (seeded); each weight starts
    /// in the cluster of its nearest centre.
    #[serde(rename = "kmeans++")]
    KmeansPlusPlus,
}

impl EcsqInit {
    /// The name used in configuration files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::KmeansPlusPlus => "kmeans++",
        }
    }
}

impl fmt::Display for EcsqInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EcsqInit {
    type Err = QuantError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "kmeans++" | "k-means++" => Ok(Self::KmeansPlusPlus),
            other => Err(QuantError::InvalidParam {
                name: "init",
                reason: format!("`{other}` is not one of uniform, kmeans++"),
            }),
        }
    }
}

/// Parameters of [`ecsq`](super::ecsq).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EcsqParams {
    /// Lagrange multiplier of the rate term, `lambda >= 0` and finite, in
    /// units of the distortion `sum h (w - q)^2` per bit. 0 gives weighted
    /// k-means from the initial centres; larger values give fewer
    /// effective clusters.
    pub lambda: f64,
    /// Clusters to start from, `k_init >= 1`; empty ones are dropped as the
    /// iteration goes.
    pub k_init: usize,
    /// Initialisation.
    pub init: EcsqInit,
    /// Most iterations (assignment plus update), `max_iter >= 1`.
    pub max_iter: usize,
    /// Stop once an iteration lowers `J` by less than `tol` times its
    /// previous value; `tol >= 0`.
    pub tol: f64,
    /// Seed of the k-means++ initialisation (the uniform one uses none).
    pub seed: u64,
}

impl Default for EcsqParams {
    /// `lambda` 0 (callers set their own), `k_init` 256, uniform init, at
    /// most 100 iterations, `tol` 1e-6, seed 0.
    fn default() -> Self {
        Self {
            lambda: 0.0,
            k_init: 256,
            init: EcsqInit::Uniform,
            max_iter: 100,
            tol: 1e-6,
            seed: 0,
        }
    }
}

impl EcsqParams {
    /// The defaults with the given `lambda`.
    pub fn new(lambda: f64) -> Self {
        Self {
            lambda,
            ..Self::default()
        }
    }

    /// Checks the ranges: `lambda` finite and `>= 0`, `k_init >= 1`,
    /// `max_iter >= 1`, `tol >= 0`.
    pub fn validate(&self) -> Result<()> {
        ensure_param(
            self.lambda.is_finite() && self.lambda >= 0.0,
            "lambda",
            format!("lambda must be finite and >= 0, got {}", self.lambda),
        )?;
        ensure_param(self.k_init >= 1, "k_init", "k_init must be at least 1")?;
        ensure_param(
            self.max_iter >= 1,
            "max_iter",
            "max_iter must be at least 1",
        )?;
        ensure_param(
            self.tol >= 0.0,
            "tol",
            format!("tol must be >= 0, got {}", self.tol),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for i in [EcsqInit::Uniform, EcsqInit::KmeansPlusPlus] {
            assert_eq!(i.as_str().parse::<EcsqInit>().unwrap(), i);
        }
        assert!("linear".parse::<EcsqInit>().is_err());
    }

    #[test]
    fn validation_names_the_parameter() {
        let name = |p: EcsqParams| match p.validate() {
            Err(QuantError::InvalidParam { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        let ok = EcsqParams::new(0.1);
        assert!(ok.validate().is_ok());
        assert!(EcsqParams::new(0.0).validate().is_ok());
        assert_eq!(
            name(EcsqParams {
                lambda: -1e-9,
                ..ok
            }),
            "lambda"
        );
        assert_eq!(
            name(EcsqParams {
                lambda: f64::NAN,
                ..ok
            }),
            "lambda"
        );
        assert_eq!(
            name(EcsqParams {
                lambda: f64::INFINITY,
                ..ok
            }),
            "lambda"
        );
        assert_eq!(name(EcsqParams { k_init: 0, ..ok }), "k_init");
        assert_eq!(name(EcsqParams { max_iter: 0, ..ok }), "max_iter");
        assert_eq!(name(EcsqParams { tol: -1.0, ..ok }), "tol");
        assert_eq!(
            name(EcsqParams {
                tol: f64::NAN,
                ..ok
            }),
            "tol"
        );
    }
}
