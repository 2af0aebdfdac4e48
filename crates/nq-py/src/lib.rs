//! `nqz._nqz`: the `.nqz` decoder of `nq-quant` for Python, so that PyTorch
//! users read nq-exp's files without the Rust toolchain. It hands each
//! tensor back as little-endian float32 bytes with its shape (the Python
//! side, `python/nqz/__init__.py`, wraps them as numpy arrays) together with
//! how it was stored and the file's metadata; a damaged file raises
//! `ValueError` with the decoder's message.

use std::collections::BTreeMap;

use nq_quant::nqz::{self, StoredAs};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// One decoded tensor: name, shape, float32 bytes, storage (`raw`,
/// `quantized` or `pruned`), codebook index (`None` for raw).
type Tensor<'py> = (
    String,
    Vec<u64>,
    Bound<'py, PyBytes>,
    &'static str,
    Option<usize>,
);

/// Decodes the bytes of a `.nqz` file: its tensors, in file order, and its
/// metadata.
#[pyfunction]
fn decode<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Vec<Tensor<'py>>, BTreeMap<String, String>)> {
    let decoded = nqz::decode(data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let tensors = decoded
        .tensors
        .into_iter()
        .map(|t| {
            let bytes: Vec<u8> = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            let (stored, codebook) = match t.stored {
                StoredAs::Raw => ("raw", None),
                StoredAs::Quantized { codebook, .. } => ("quantized", Some(codebook)),
                StoredAs::Pruned { codebook, .. } => ("pruned", Some(codebook)),
                StoredAs::PrunedRaw { .. } => ("pruned-raw", None),
            };
            (t.name, t.shape, PyBytes::new(py, &bytes), stored, codebook)
        })
        .collect();
    Ok((tensors, decoded.metadata))
}

/// The extension module.
#[pymodule]
fn _nqz(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add("FORMAT_VERSION", nqz::VERSION)?;
    Ok(())
}
