//! Uniform scalar quantization (paper.md 4.2).
//!
//! The real line is cut into cells of width `delta`, aligned so that 0 lies
//! at the centre of a cell: cell `n` is `[(n - 1/2) delta, (n + 1/2) delta)`
//! and weight `w` goes to cell `floor(w / delta + 1/2)`. `delta` is given
//! ([`CellWidth::Step`]) or is the smallest step for which at most `k` cells
//! cover the weights' range ([`CellWidth::Cells`], see [`uniform_step`]).
//! Each non-empty cell becomes a cluster whose shared value is the cell's
//! midpoint, the mean of its members, or their `h`-weighted mean
//! ([`UniformCentre`]); empty cells are dropped.
//!
//! Uniform quantization followed by entropy coding is asymptotically the
//! optimal entropy-constrained scalar quantizer for mean squared error
//! (Gish and Pierce, "Asymptotically efficient quantizing", IEEE Trans.
//! Inf. Theory 1968), which is why Choi et al. (ICLR 2017) find it best once
//! Huffman coding is used. It is one pass over the weights, in parallel.

mod algorithm;
mod hyperparams;

pub(crate) use algorithm::chunk_len;
pub use algorithm::{uniform, uniform_step};
pub use hyperparams::{CellWidth, UniformCentre, UniformParams};
