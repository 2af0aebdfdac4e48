//! # nq-quant
//!
//! Network quantization on plain slices, after Choi, El-Khamy and Lee,
//! "Towards the Limit of Network Quantization" (ICLR 2017). No torch here:
//! every function takes the weights `w: &[f32]` being quantized together and
//! an importance `h: &[f32]` per weight (the Hessian diagonal, Adam's
//! `sqrt(v)`, or all ones), and returns a [`Quantization`].
//!
//! - [`compensation`]: rounding onto a codebook that compensates each error
//!   through the off-diagonal Hessian (OBQ / GPTQ);
//! - [`kmeans`]: Lloyd's algorithm weighted by `h`, on the sorted 1-D data;
//! - [`kmeans_optimal`]: the exact optimum of the same objective;
//! - [`uniform`]: uniform scalar quantization;
//! - [`ecsq`]: iterative entropy-constrained scalar quantization;
//! - [`universal`]: uniform quantization with a shared random dither;
//! - [`method`]: one enum over the quantizers and their parameters;
//! - [`scope`]: layer-by-layer or global quantization of many tensors;
//! - [`huffman`]: canonical Huffman and fixed-length codes;
//! - [`context`]: adaptive context coding (below one bit per weight);
//! - [`size`]: the compressed size of paper.md section 6;
//! - [`nqz`]: the `.nqz` file, whose payload is that size.

pub mod compensation;
pub mod context;
pub mod dither;
pub mod ecsq;
pub mod error;
pub mod huffman;
pub mod input;
pub mod kmeans;
pub mod kmeans_optimal;
pub mod method;
pub mod nqz;
pub mod quantization;
pub mod scope;
pub mod size;
pub mod soft_sharing;
pub mod sort;
pub mod synthetic;
pub mod uniform;
pub mod universal;

pub use error::{QuantError, Result};
pub use input::{unit_importance, validate};
pub use quantization::{entropy, stats, QuantStats, Quantization};
