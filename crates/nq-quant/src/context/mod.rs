//! Adaptive context coding of survivor positions and cluster indices: the
//! `"context"` coding of `.nqz` files, an alternative to Huffman codes that
//! goes below one bit per weight and learns each tensor's statistics as it
//! goes (in the manner of CABAC, Marpe, Schwarz and Wiegand 2003, and of
//! DeepCABAC, Wiedemann et al. 2020).
//!
//! Every decision is a binary symbol coded by a range coder
//! (`constriction`'s queue [`RangeEncoder`](constriction::stream::queue),
//! 32-bit words, 16-bit probabilities) with an adaptive probability: a bit
//! model counts the zeros `n0` and ones `n1` it has coded and predicts
//! `P(0) = (n0 + 1/2) / (n0 + n1 + 1)` (Krichevsky and Trofimov 1981),
//! halving both counts when their sum reaches [`COUNT_LIMIT`] so that it
//! follows drifting statistics. Models start afresh for every tensor, so
//! each layer gets its own statistics even under a global codebook.
//!
//! A tensor is read as a matrix, `rows` = its first dimension (the output
//! channels or units; 1 for a vector), row-major:
//!
//! - **survivor flags** (pruned tensors): one bit per element, with one of
//!   64 contexts: how rare survivors have been so far in the element's
//!   column (earlier rows) and in its row (earlier columns), each as
//!   `min(7, floor(log2((2 seen + 2) / (2 count + 1))))` for `count`
//!   survivors among `seen` elements. A column of an input that pruning
//!   emptied, or a row of a dead unit, becomes cheap; measured on the
//!   magnitude-pruned LeNets of Table 1 these contexts save 0-2.7 % of the
//!   order-0 adaptive code and the left and upper neighbours nothing
//!   (their masks are close to independent);
//! - **cluster indices** (one per survivor, or per element when not
//!   pruned): binarized by a binary tree over `0..k`, most significant bit
//!   first, one adaptive model per tree node; a branch holding no index
//!   below `k` is not coded. This is an adaptive order-0 model of the
//!   indices per tensor (the chain rule over the tree's bits); conditioning
//!   on the left neighbour's index was measured to cost more than it saves.
//!
//! A stream's length is the coder's output, a whole number of 32-bit words;
//! its ideal length, `sum -log2 p` over the coded bits under the models,
//! is within a few words of it ([`ContextEncoder::ideal_bits`]).

mod coder;
mod model;
#[cfg(test)]
mod tests;

pub use coder::{ContextDecoder, ContextEncoder};
pub use model::{AdaptiveBit, COUNT_LIMIT, PRECISION};

/// The rows of a tensor of this shape as the context model reads it: its
/// first dimension, or 1 for a scalar or a vector.
pub fn rows_of(shape: &[u64]) -> u64 {
    if shape.len() >= 2 {
        shape[0]
    } else {
        1
    }
}

/// Bits of a stream of `words` 32-bit words.
pub fn stream_bits(words: &[u32]) -> u64 {
    32 * words.len() as u64
}

/// The coded bits of a codebook's two context streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContextBits {
    /// The cluster indices of its tensors.
    pub index_bits: u64,
    /// The survivor flags of its pruned tensors.
    pub position_bits: u64,
}
