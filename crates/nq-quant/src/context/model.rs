//! The adaptive probability of a binary decision, as an entropy model that
//! `constriction`'s coders take.

use std::borrow::Borrow;
use std::num::NonZeroU32;

use constriction::stream::model::{DecoderModel, EncoderModel, EntropyModel};

/// Bits of the fixed-point probabilities handed to the range coder.
pub const PRECISION: usize = 16;

/// When `n0 + n1` reaches this, both counts are halved (rounding up), so
/// that the model weighs the recent past more than the distant one.
pub const COUNT_LIMIT: u32 = 1 << 12;

const ONE: u32 = 1 << PRECISION;

/// Counts of the zeros and ones coded so far in one context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdaptiveBit {
    zeros: u32,
    ones: u32,
}

impl AdaptiveBit {
    /// `P(0)` in units of `2^-PRECISION`: the Krichevsky-Trofimov estimate
    /// `(n0 + 1/2) / (n0 + n1 + 1)`, kept inside `[1, 2^PRECISION - 1]` so
    /// that both symbols stay codable.
    pub fn probability_of_zero(&self) -> u32 {
        let num = u64::from(2 * self.zeros + 1) << PRECISION;
        let den = u64::from(2 * (self.zeros + self.ones) + 2);
        ((num / den) as u32).clamp(1, ONE - 1)
    }

    /// Counts `bit`.
    pub fn update(&mut self, bit: bool) {
        if bit {
            self.ones += 1;
        } else {
            self.zeros += 1;
        }
        if self.zeros + self.ones >= COUNT_LIMIT {
            self.zeros = self.zeros.div_ceil(2);
            self.ones = self.ones.div_ceil(2);
        }
    }

    /// The current prediction as an entropy model.
    pub(super) fn model(&self) -> BitModel {
        let zero = self.probability_of_zero();
        BitModel {
            zero: NonZeroU32::new(zero).expect("clamped to at least 1"),
            one: NonZeroU32::new(ONE - zero).expect("clamped to at most ONE - 1"),
        }
    }
}

/// A fixed distribution over `false` (0) and `true` (1).
#[derive(Debug, Clone, Copy)]
pub(super) struct BitModel {
    zero: NonZeroU32,
    one: NonZeroU32,
}

impl BitModel {
    /// `-log2 P(bit)`.
    pub(super) fn cost(&self, bit: bool) -> f64 {
        let p = if bit { self.one } else { self.zero };
        PRECISION as f64 - f64::from(p.get()).log2()
    }
}

impl EntropyModel<PRECISION> for BitModel {
    type Symbol = bool;
    type Probability = u32;
}

impl EncoderModel<PRECISION> for BitModel {
    fn left_cumulative_and_probability(
        &self,
        symbol: impl Borrow<bool>,
    ) -> Option<(u32, NonZeroU32)> {
        Some(if *symbol.borrow() {
            (self.zero.get(), self.one)
        } else {
            (0, self.zero)
        })
    }
}

impl DecoderModel<PRECISION> for BitModel {
    fn quantile_function(&self, quantile: u32) -> (bool, u32, NonZeroU32) {
        if quantile < self.zero.get() {
            (false, 0, self.zero)
        } else {
            (true, self.zero.get(), self.one)
        }
    }
}
