//! Layer-by-layer or global quantization of many tensors (paper.md 4.4).
//!
//! `layer`: each tensor gets its own quantizer run and codebook, with the
//! same parameters. `global`: all tensors are concatenated and quantized at
//! once into one codebook; the importance `h` is what puts layers of
//! different sensitivity on one scale.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result};
use crate::input::validate;
use crate::method::Method;
use crate::quantization::Quantization;

/// Which weights share a codebook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One codebook per tensor.
    Layer,
    /// One codebook for all tensors.
    Global,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Layer => "layer",
            Self::Global => "global",
        })
    }
}

impl FromStr for Scope {
    type Err = QuantError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "layer" => Ok(Self::Layer),
            "global" => Ok(Self::Global),
            other => Err(QuantError::InvalidParam {
                name: "scope",
                reason: format!("`{other}` is not one of layer, global"),
            }),
        }
    }
}

/// One tensor's weights to quantize (flattened; for a pruned tensor, only
/// its survivors) and their importance.
#[derive(Debug, Clone, Copy)]
pub struct WeightTensor<'a> {
    /// Name used in errors (`conv1.weight`).
    pub name: &'a str,
    /// The weights.
    pub values: &'a [f32],
    /// One importance per weight.
    pub importance: &'a [f32],
}

/// Where one tensor's cluster indices live: a range of a codebook's
/// assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TensorSpan {
    /// Index into [`ScopedQuantization::codebooks`].
    pub codebook: usize,
    /// First position in that codebook's assignment.
    pub start: usize,
    /// Number of weights.
    pub len: usize,
}

/// The result of quantizing many tensors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopedQuantization {
    /// The scope used.
    pub scope: Scope,
    /// One quantization per codebook: one per tensor for `layer`, a single
    /// one over the concatenated tensors for `global`.
    pub codebooks: Vec<Quantization>,
    /// Per input tensor, in input order, where its indices are.
    pub spans: Vec<TensorSpan>,
}

impl ScopedQuantization {
    /// The codebook of tensor `t` and its cluster indices.
    pub fn tensor(&self, t: usize) -> (&Quantization, &[u32]) {
        let span = self.spans[t];
        let q = &self.codebooks[span.codebook];
        (q, &q.assignment[span.start..span.start + span.len])
    }

    /// The quantized values of tensor `t`.
    pub fn quantized(&self, t: usize) -> Vec<f32> {
        let span = self.spans[t];
        self.codebooks[span.codebook].quantized_range(span.start, span.len)
    }

    /// `sum h (w - q)^2` over `tensors`, the weights this quantization was
    /// made from (in the same order), summed tensor by tensor.
    pub fn distortion_h(&self, tensors: &[WeightTensor<'_>]) -> f64 {
        tensors
            .iter()
            .enumerate()
            .map(|(t, tensor)| {
                tensor
                    .values
                    .iter()
                    .zip(tensor.importance)
                    .zip(self.quantized(t))
                    .map(|((&w, &h), q)| f64::from(h) * (f64::from(w) - f64::from(q)).powi(2))
                    .sum::<f64>()
            })
            .sum()
    }

    /// Member counts per cluster, per codebook (what size accounting needs).
    pub fn codebook_counts(&self) -> Vec<Vec<u64>> {
        self.codebooks.iter().map(Quantization::counts).collect()
    }
}

fn in_tensor(name: &str) -> impl FnOnce(QuantError) -> QuantError + '_ {
    move |e| QuantError::InTensor {
        name: name.to_owned(),
        source: Box::new(e),
    }
}

/// Quantizes `tensors` with `method`, one codebook per tensor (`Layer`) or
/// one for all (`Global`). Errors name the tensor they come from.
pub fn quantize_tensors(
    tensors: &[WeightTensor<'_>],
    method: &Method,
    scope: Scope,
) -> Result<ScopedQuantization> {
    method.validate()?;
    if tensors.is_empty() {
        return Err(QuantError::EmptyInput);
    }
    for t in tensors {
        validate(t.values, t.importance).map_err(in_tensor(t.name))?;
    }
    match scope {
        Scope::Layer => {
            let codebooks = tensors
                .iter()
                .map(|t| {
                    method
                        .quantize(t.values, t.importance)
                        .map_err(in_tensor(t.name))
                })
                .collect::<Result<Vec<_>>>()?;
            let spans = tensors
                .iter()
                .enumerate()
                .map(|(i, t)| TensorSpan {
                    codebook: i,
                    start: 0,
                    len: t.values.len(),
                })
                .collect();
            Ok(ScopedQuantization {
                scope,
                codebooks,
                spans,
            })
        }
        Scope::Global => {
            let w: Vec<f32> = tensors
                .iter()
                .flat_map(|t| t.values.iter().copied())
                .collect();
            let h: Vec<f32> = tensors
                .iter()
                .flat_map(|t| t.importance.iter().copied())
                .collect();
            let q = method.quantize(&w, &h)?;
            let mut start = 0;
            let spans = tensors
                .iter()
                .map(|t| {
                    let span = TensorSpan {
                        codebook: 0,
                        start,
                        len: t.values.len(),
                    };
                    start += t.values.len();
                    span
                })
                .collect();
            Ok(ScopedQuantization {
                scope,
                codebooks: vec![q],
                spans,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::{KmeansInit, KmeansParams};

    fn two_tensors() -> (Vec<f32>, Vec<f32>) {
        (vec![0.0, 0.1, 1.0, 1.1], vec![5.0, 5.1])
    }

    fn kmeans2() -> Method {
        Method::Kmeans(KmeansParams {
            k: 2,
            init: KmeansInit::Linear,
            max_iter: 100,
            seed: 0,
        })
    }

    #[test]
    fn layer_scope_gives_one_codebook_per_tensor() {
        let (a, b) = two_tensors();
        let ones = [1.0f32; 4];
        let tensors = [
            WeightTensor {
                name: "a",
                values: &a,
                importance: &ones,
            },
            WeightTensor {
                name: "b",
                values: &b,
                importance: &ones[..2],
            },
        ];
        let q = quantize_tensors(&tensors, &kmeans2(), Scope::Layer).unwrap();
        assert_eq!(q.codebooks.len(), 2);
        let qa = q.quantized(0);
        assert!((qa[0] - 0.05).abs() < 1e-6 && (qa[3] - 1.05).abs() < 1e-6);
        assert_eq!(q.quantized(1), vec![5.0, 5.1]);
    }

    #[test]
    fn global_scope_shares_one_codebook() {
        // concatenated 0, .1, 1, 1.1, 5, 5.1 with k = 2, linear init 0 and 5.1:
        // {0, .1, 1, 1.1} and {5, 5.1}
        let (a, b) = two_tensors();
        let ones = [1.0f32; 4];
        let tensors = [
            WeightTensor {
                name: "a",
                values: &a,
                importance: &ones,
            },
            WeightTensor {
                name: "b",
                values: &b,
                importance: &ones[..2],
            },
        ];
        let q = quantize_tensors(&tensors, &kmeans2(), Scope::Global).unwrap();
        assert_eq!(q.codebooks.len(), 1);
        assert_eq!(q.tensor(0).1, &[0, 0, 0, 0]);
        assert_eq!(q.tensor(1).1, &[1, 1]);
        assert!((q.quantized(0)[0] - 0.55).abs() < 1e-6);
        assert_eq!(q.codebook_counts(), vec![vec![4, 2]]);
    }

    #[test]
    fn errors_name_the_tensor() {
        let ones = [1.0f32; 2];
        let tensors = [
            WeightTensor {
                name: "fc1.weight",
                values: &[1.0, 2.0],
                importance: &ones,
            },
            WeightTensor {
                name: "fc2.weight",
                values: &[1.0, f32::NAN],
                importance: &ones,
            },
        ];
        let err = quantize_tensors(&tensors, &kmeans2(), Scope::Global).unwrap_err();
        assert!(err.to_string().contains("fc2.weight"), "{err}");
    }
}
