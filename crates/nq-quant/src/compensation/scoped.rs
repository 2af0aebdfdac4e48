//! Compensated rounding of a whole quantization: the tensors that come with
//! their layer's input moment are rounded again onto their own codebook
//! (shared across tensors in global scope) by [`compensated_rows`]; the
//! others keep their nearest-centre assignment.

use crate::error::{QuantError, Result};
use crate::scope::ScopedQuantization;

use super::algorithm::{compensated_rows, CompensationParams, WeightRows};

/// One tensor's layer, for [`compensate_tensors`].
#[derive(Debug, Clone, Copy)]
pub struct LayerMoment<'a> {
    /// The tensor's name, for errors.
    pub name: &'a str,
    /// Its weights before quantization, all positions, row-major.
    pub rows: WeightRows<'a>,
    /// `X^T X` of the layer's inputs, `cols x cols`, row-major.
    pub moment: &'a [f64],
}

/// Replaces the assignment of every tensor `t` with `layers[t]` by the
/// compensated one onto the same centres; clusters left without members
/// are dropped. Returns the number of tensors compensated. A dithered
/// quantization (universal) is refused: its values are not its centres.
pub fn compensate_tensors(
    quantization: &mut ScopedQuantization,
    layers: &[Option<LayerMoment<'_>>],
    params: &CompensationParams,
) -> Result<usize> {
    if layers.len() != quantization.spans.len() {
        return Err(QuantError::Inconsistent(format!(
            "{} layers for {} quantized tensors",
            layers.len(),
            quantization.spans.len()
        )));
    }
    let mut done = 0;
    for (tensor, layer) in layers.iter().enumerate() {
        let Some(layer) = layer else { continue };
        compensate_tensor(quantization, tensor, layer, params)?;
        done += 1;
    }
    for codebook in &mut quantization.codebooks {
        codebook.drop_empty_clusters();
    }
    Ok(done)
}

/// [`compensate_tensors`] for tensor `tensor` alone, keeping the clusters
/// it leaves empty (a tensor compensated later may use them): for rounding
/// tensor by tensor, with each one's moment taken after the ones before it
/// were rounded (GPTQ's sequential form); drop the empty clusters at the
/// end ([`crate::quantization::Quantization::drop_empty_clusters`]).
pub fn compensate_tensor(
    quantization: &mut ScopedQuantization,
    tensor: usize,
    layer: &LayerMoment<'_>,
    params: &CompensationParams,
) -> Result<()> {
    params.validate()?;
    let Some(span) = quantization.spans.get(tensor) else {
        return Err(QuantError::Inconsistent(format!(
            "tensor {tensor} of {} quantized tensors",
            quantization.spans.len()
        )));
    };
    if quantization.codebooks.iter().any(|q| q.dither.is_some()) {
        return Err(QuantError::Inconsistent(
            "a dithered quantization cannot be rounded again: its values are not its centres"
                .into(),
        ));
    }
    let in_tensor = |e: QuantError| QuantError::InTensor {
        name: layer.name.to_owned(),
        source: Box::new(e),
    };
    let codebook = &mut quantization.codebooks[span.codebook];
    let chosen =
        compensated_rows(layer.rows, layer.moment, &codebook.centres, params).map_err(in_tensor)?;
    if chosen.len() != span.len {
        return Err(in_tensor(QuantError::Inconsistent(format!(
            "{} weights kept, but {} were quantized",
            chosen.len(),
            span.len
        ))));
    }
    codebook.assignment[span.start..span.start + span.len].copy_from_slice(&chosen);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::{KmeansInit, KmeansParams};
    use crate::method::Method;
    use crate::scope::{quantize_tensors, Scope, WeightTensor};

    fn kmeans(k: usize) -> Method {
        Method::Kmeans(KmeansParams {
            k,
            init: KmeansInit::Linear,
            max_iter: 50,
            seed: 0,
        })
    }

    #[test]
    fn only_tensors_with_a_moment_change_and_their_values_stay_on_the_codebook() {
        // two 2 x 2 tensors; the first has strongly correlated inputs
        let a = [0.3f32, 0.3, -0.2, 0.9];
        let b = [0.1f32, 0.5, 0.7, -0.4];
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
                importance: &ones,
            },
        ];
        for scope in [Scope::Layer, Scope::Global] {
            let mut q = quantize_tensors(&tensors, &kmeans(2), scope).unwrap();
            let before_b = q.quantized(1);
            let moment = [1.0, 0.99, 0.99, 1.0];
            let layers = [
                Some(LayerMoment {
                    name: "a",
                    rows: WeightRows {
                        values: &a,
                        cols: 2,
                        keep: None,
                    },
                    moment: &moment,
                }),
                None,
            ];
            let p = CompensationParams::default();
            assert_eq!(compensate_tensors(&mut q, &layers, &p).unwrap(), 1);
            assert_eq!(q.quantized(1), before_b, "{scope:?}");
            for codebook in &q.codebooks {
                assert!(codebook.counts().iter().all(|&n| n > 0), "{scope:?}");
            }
            let centres: Vec<f32> = q.codebooks.iter().flat_map(|c| c.centres.clone()).collect();
            assert!(q.quantized(0).iter().all(|v| centres.contains(v)));
        }
    }

    #[test]
    fn mismatches_are_named() {
        let a = [0.3f32, 0.3, -0.2, 0.9];
        let ones = [1.0f32; 4];
        let tensors = [WeightTensor {
            name: "a",
            values: &a,
            importance: &ones,
        }];
        let mut q = quantize_tensors(&tensors, &kmeans(2), Scope::Layer).unwrap();
        let p = CompensationParams::default();
        assert!(compensate_tensors(&mut q, &[], &p).is_err());
        // three kept weights against four quantized
        let keep = [true, true, true, false];
        let layers = [Some(LayerMoment {
            name: "conv9.weight",
            rows: WeightRows {
                values: &a,
                cols: 2,
                keep: Some(&keep),
            },
            moment: &[1.0, 0.0, 0.0, 1.0],
        })];
        let err = compensate_tensors(&mut q, &layers, &p).unwrap_err();
        assert!(err.to_string().contains("conv9.weight"), "{err}");
    }
}
