//! Universal quantization (Choi, El-Khamy and Lee 2018, "Universal deep
//! neural network compression", arXiv 1802.02271; paper.md section 10).
//!
//! Randomized uniform quantization: every weight gets a pseudo-random
//! offset `u_i`, uniform on `[-delta/2, delta/2]` ([`crate::dither`]), is
//! quantized uniformly with step `delta` as `w_i + u_i`, and the offset is
//! subtracted again: `q_i = c_{a(i)} - u_i`. With midpoint centres the
//! error `w_i - q_i` is then uniform on `[-delta/2, delta/2]` and
//! independent of the weights (Ziv 1985; Gray and Stockham 1993, "Dithered
//! quantizers"), whatever their distribution, which is what makes the
//! indices suit a universal lossless code. The offsets cost nothing to
//! store: the decoder regenerates them from the seed and the step, which a
//! `.nqz` file keeps with the codebook. Fine-tuning moves the centres
//! `c_j` with the offsets held fixed, as there.
//!
//! It is [`crate::uniform`] on the dithered weights, so the cells, their
//! numbering and the centre rules are uniform's; with `k` cells the step is
//! uniform's for the undithered weights, and the dithered ones may reach
//! one more cell at either end.

mod algorithm;
mod hyperparams;

pub use algorithm::universal;
pub use hyperparams::UniversalParams;
