//! Parameters of the universal quantizer, checked before a run.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::uniform::{CellWidth, UniformCentre};

/// Parameters of [`universal`](super::universal).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UniversalParams {
    /// Width of the cells, given or from a number of cells (as uniform's).
    pub width: CellWidth,
    /// Shared value of each cell, computed on the dithered weights;
    /// Choi et al. (2018) use the midpoints.
    pub centre: UniformCentre,
    /// Seed of the dither, stored in the file.
    pub seed: u64,
}

impl UniversalParams {
    /// Cells of width `delta`, midpoint centres, dither seed `seed`.
    pub fn step(delta: f64, seed: u64) -> Self {
        Self {
            width: CellWidth::Step(delta),
            centre: UniformCentre::Midpoint,
            seed,
        }
    }

    /// The step of at most `k` cells over the weights, midpoint centres,
    /// dither seed `seed`.
    pub fn cells(k: usize, seed: u64) -> Self {
        Self {
            width: CellWidth::Cells(k),
            centre: UniformCentre::Midpoint,
            seed,
        }
    }

    /// Checks the ranges (see [`CellWidth::validate`]).
    pub fn validate(&self) -> Result<()> {
        self.width.validate()
    }
}
