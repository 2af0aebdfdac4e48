//! Reading a checkpoint as PyTorch writes it (`safetensors.torch.save_file`
//! of a `state_dict`): every tensor as float32, whatever it was stored as,
//! with its stored type and the file's own metadata.
//!
//! Float32 is read as is; float16 and bfloat16 (IEEE half and the upper
//! half of a float32) and float64 are converted, exactly for the halves.
//! Integer and boolean tensors (BatchNorm's `num_batches_tracked`) are kept
//! as float32 when every value is an integer that float32 holds exactly
//! (|v| <= 2^24), so that `unpack` gives them back; larger ones are an
//! error. Non-finite floats are an error naming the tensor: no quantizer
//! and no file should carry a NaN forward.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use safetensors::{Dtype, SafeTensors};

use crate::error::bad_input;

/// One tensor of a checkpoint, as float32.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointTensor {
    /// Its name (`conv1.weight`).
    pub name: String,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its values, row-major.
    pub values: Vec<f32>,
    /// How the file stored it (`F16`, `BF16`, `F32`, `I64`, ...).
    pub stored_as: String,
}

/// A whole checkpoint: its tensors in name order and its `__metadata__`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The tensors, sorted by name.
    pub tensors: Vec<CheckpointTensor>,
    /// The file's own metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&CheckpointTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Largest integer float32 holds exactly with all below it.
const EXACT_INTEGERS: f64 = 16_777_216.0;

fn floats(dtype: Dtype, data: &[u8]) -> Option<Vec<f64>> {
    let chunks = |n: usize| data.chunks_exact(n);
    let values: Vec<f64> = match dtype {
        Dtype::F32 => chunks(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Dtype::F64 => chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        Dtype::F16 => chunks(2)
            .map(|c| f64::from(half::f16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::BF16 => chunks(2)
            .map(|c| f64::from(half::bf16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::BOOL | Dtype::U8 => data.iter().map(|&b| f64::from(b)).collect(),
        Dtype::I8 => data.iter().map(|&b| f64::from(b as i8)).collect(),
        Dtype::I16 => chunks(2)
            .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::U16 => chunks(2)
            .map(|c| f64::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::I32 => chunks(4)
            .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Dtype::U32 => chunks(4)
            .map(|c| f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Dtype::I64 => chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
            .collect(),
        Dtype::U64 => chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
            .collect(),
        _ => return None,
    };
    Some(values)
}

fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
}

/// Reads the checkpoint at `path`; every problem is bad input naming the
/// file and, where it is one, the tensor.
pub fn read(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
    let not_safetensors = |e: safetensors::SafeTensorError| {
        bad_input(format!(
            "{} is not a safetensors file: {e:?}",
            path.display()
        ))
    };
    let file = SafeTensors::deserialize(&bytes).map_err(not_safetensors)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(not_safetensors)?;
    let metadata = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut names: Vec<String> = file.names().into_iter().cloned().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let at = |what: String| bad_input(format!("{}: tensor `{name}`: {what}", path.display()));
        let view = file.tensor(&name).map_err(|e| at(format!("{e:?}")))?;
        let dtype = view.dtype();
        let values = floats(dtype, view.data())
            .ok_or_else(|| at(format!("type {dtype:?} is not read here")))?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(at(format!("element {i} is {}", values[i])));
        }
        if !is_float(dtype) {
            if let Some(v) = values.iter().find(|v| v.abs() > EXACT_INTEGERS) {
                return Err(at(format!(
                    "{dtype:?} value {v} does not fit float32 exactly; .nqz stores float32"
                )));
            }
        } else if let Some(v) = values.iter().find(|v| v.abs() > f64::from(f32::MAX)) {
            return Err(at(format!("value {v} overflows float32")));
        }
        tensors.push(CheckpointTensor {
            shape: view.shape().iter().map(|&d| d as u64).collect(),
            values: values.into_iter().map(|v| v as f32).collect(),
            stored_as: format!("{dtype:?}"),
            name,
        });
    }
    Ok(Checkpoint { tensors, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn write(dir: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> std::path::PathBuf {
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        let meta = Some(std::collections::HashMap::from([(
            "format".to_owned(),
            "pt".to_owned(),
        )]));
        let path = dir.join("c.safetensors");
        std::fs::write(&path, safetensors::serialize(views, &meta).unwrap()).unwrap();
        path
    }

    #[test]
    fn halves_and_integers_read_exactly() {
        let dir = tempfile::tempdir().unwrap();
        // f16 1.5 = 0x3E00, -2 = 0xC000; bf16 0.5 = 0x3F00
        let path = write(
            dir.path(),
            &[
                ("w", Dtype::F16, vec![2], vec![0x00, 0x3E, 0x00, 0xC0]),
                ("b", Dtype::BF16, vec![1], vec![0x00, 0x3F]),
                ("n", Dtype::I64, vec![], 7i64.to_le_bytes().to_vec()),
            ],
        );
        let c = read(&path).unwrap();
        assert_eq!(c.get("w").unwrap().values, [1.5, -2.0]);
        assert_eq!(c.get("b").unwrap().values, [0.5]);
        let n = c.get("n").unwrap();
        assert_eq!(
            (n.values.as_slice(), n.shape.len(), n.stored_as.as_str()),
            (&[7.0f32][..], 0, "I64")
        );
        assert_eq!(c.metadata["format"], "pt");
        assert_eq!(c.tensors[0].name, "b");
    }

    #[test]
    fn nan_and_huge_integers_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let nan = f32::NAN.to_le_bytes().to_vec();
        let path = write(dir.path(), &[("fc.weight", Dtype::F32, vec![1], nan)]);
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(
            err.contains("c.safetensors") && err.contains("`fc.weight`") && err.contains("NaN"),
            "{err}"
        );
        let big = (1i64 << 40).to_le_bytes().to_vec();
        let path = write(dir.path(), &[("steps", Dtype::I64, vec![1], big)]);
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("`steps`") && err.contains("float32"), "{err}");
        std::fs::write(&path, b"not a checkpoint").unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("is not a safetensors file"), "{err}");
    }
}
