//! Reading `.npy` arrays and writing `.npz` archives, with errors that name
//! the file and say what was expected.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use npyz::{DType, NpyFile, Order, WriterBuilder};

use crate::error::bad_input;

/// A flat float32 array and the shape it was saved with.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Values in C order.
    pub values: Vec<f32>,
    /// The shape in the file.
    pub shape: Vec<u64>,
}

/// Reads a float32 or float64 `.npy` file (float64 is rounded to float32).
pub fn read_floats(path: &Path) -> Result<Array> {
    let file =
        File::open(path).map_err(|e| bad_input(format!("cannot open {}: {e}", path.display())))?;
    let npy = NpyFile::new(BufReader::new(file))
        .map_err(|e| bad_input(format!("{} is not a valid .npy file: {e}", path.display())))?;
    if npy.order() == Order::Fortran {
        return Err(bad_input(format!(
            "{} is stored in Fortran order; save it with numpy.ascontiguousarray",
            path.display()
        )));
    }
    let shape = npy.shape().to_vec();
    let type_str = match npy.dtype() {
        DType::Plain(t) => t.to_string(),
        other => {
            return Err(bad_input(format!(
                "{}: dtype {other:?} is not a float array",
                path.display()
            )))
        }
    };
    let read_error =
        |e: std::io::Error| bad_input(format!("{}: cannot read the data: {e}", path.display()));
    let values = match type_str.as_str() {
        "<f4" | "|f4" => npy.into_vec::<f32>().map_err(read_error)?,
        "<f8" | "|f8" => npy
            .into_vec::<f64>()
            .map_err(read_error)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        other => {
            return Err(bad_input(format!(
                "{}: dtype {other} is not supported; expected float32 (<f4) or float64 (<f8)",
                path.display()
            )))
        }
    };
    Ok(Array { values, shape })
}

/// Writes `centres` (float32) and `assignment` (uint32, shaped like the
/// weights) to an `.npz` archive, through a temporary file renamed into
/// place so that a crash never leaves half a file.
pub fn write_quantization_npz(
    path: &Path,
    centres: &[f32],
    assignment: &[u32],
    shape: &[u64],
) -> Result<()> {
    let tmp = path.with_extension("npz.tmp");
    // stored, as numpy.savez writes: deflating 4 bytes a weight took longer
    // than the quantization
    let stored = || {
        npyz::zip::write::FileOptions::default()
            .compression_method(npyz::zip::CompressionMethod::Stored)
    };
    {
        let mut npz = npyz::npz::NpzWriter::create(&tmp)
            .map_err(|e| bad_input(format!("cannot create {}: {e}", tmp.display())))?;
        let mut out = npz
            .array::<f32>("centres", stored())?
            .default_dtype()
            .shape(&[centres.len() as u64])
            .begin_nd()?;
        out.extend(centres.iter().copied())?;
        out.finish()?;
        let mut out = npz
            .array::<u32>("assignment", stored())?
            .default_dtype()
            .shape(shape)
            .begin_nd()?;
        out.extend(assignment.iter().copied())?;
        out.finish()?;
        // the zip's central directory is written when the writer drops
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}
