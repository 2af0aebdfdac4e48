//! One type for "a quantizer with its parameters", so that callers (scope
//! helpers, the command line, grids) dispatch without knowing each one.

use crate::ecsq::{ecsq, EcsqParams};
use crate::error::Result;
use crate::kmeans::{kmeans, KmeansParams};
use crate::kmeans_optimal::{kmeans_optimal, OptimalParams};
use crate::quantization::Quantization;
use crate::soft_sharing::{soft_sharing, SoftSharingParams};
use crate::uniform::{uniform, UniformParams};
use crate::universal::{universal, UniversalParams};

/// A quantizer and its parameters (paper.md section 4).
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Weighted k-means by Lloyd's algorithm.
    Kmeans(KmeansParams),
    /// The exact optimum of the weighted k-means objective.
    KmeansOptimal(OptimalParams),
    /// Uniform scalar quantization.
    Uniform(UniformParams),
    /// Iterative entropy-constrained scalar quantization.
    Ecsq(EcsqParams),
    /// Uniform quantization with a shared random dither.
    Universal(UniversalParams),
    /// Soft weight-sharing's quantization onto a learned mixture's means.
    SoftSharing(SoftSharingParams),
}

impl Method {
    /// The name used on the command line and in result tables.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Kmeans(_) => "kmeans",
            Self::KmeansOptimal(_) => "kmeans-optimal",
            Self::Uniform(_) => "uniform",
            Self::Ecsq(_) => "ecsq",
            Self::Universal(_) => "universal",
            Self::SoftSharing(_) => "soft-sharing",
        }
    }

    /// Checks the parameters without quantizing anything.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Kmeans(p) => p.validate(),
            Self::KmeansOptimal(p) => p.validate(),
            Self::Uniform(p) => p.validate(),
            Self::Ecsq(p) => p.validate(),
            Self::Universal(p) => p.validate(),
            Self::SoftSharing(p) => p.validate(),
        }
    }

    /// Quantizes the weights `w` with importance `h`.
    pub fn quantize(&self, w: &[f32], h: &[f32]) -> Result<Quantization> {
        match self {
            Self::Kmeans(p) => kmeans(w, h, p),
            Self::KmeansOptimal(p) => kmeans_optimal(w, h, p),
            Self::Uniform(p) => uniform(w, h, p),
            Self::Ecsq(p) => ecsq(w, h, p),
            Self::Universal(p) => universal(w, h, p),
            Self::SoftSharing(p) => soft_sharing(w, h, p),
        }
    }
}
