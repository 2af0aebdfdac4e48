//! `nq-exp pack` and `nq-exp unpack`: a safetensors model and the
//! quantizations of some of its tensors into one `.nqz` file, and back.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use npyz::npz::NpzArchive;
use npyz::DType;
use nq_quant::huffman::Coding;
use nq_quant::nqz::{self, CodebookIn, EntryKind, Storage, StreamBits, TensorIn};
use nq_quant::size::TensorKind;
use safetensors::{Dtype, SafeTensors};
use serde::Serialize;

use crate::error::bad_input;

/// Arguments of `nq-exp pack`.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// The model: a safetensors file of float32 tensors.
    #[arg(value_name = "MODEL.safetensors")]
    pub model: PathBuf,
    /// `NAME=Q.npz`: store tensor NAME quantized, from an .npz with `centres`
    /// (float32), `assignment` (one cluster index per stored weight) and, for
    /// a pruned tensor, `survivors` (flattened positions of the stored
    /// weights; the others are 0). `nq-exp quantize --out` writes such files.
    /// Repeat for each quantized tensor; the others are stored as float32.
    #[arg(long = "quantized", value_name = "NAME=Q.npz")]
    pub quantized: Vec<String>,
    /// Code for the cluster indices: huffman, fixed, or context (adaptive
    /// arithmetic coding of indices and survivor positions).
    #[arg(long, default_value = "huffman")]
    pub coding: String,
    /// Where to write the .nqz file.
    #[arg(long, value_name = "FILE.nqz")]
    pub out: PathBuf,
}

/// Arguments of `nq-exp unpack`.
#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The .nqz file.
    #[arg(value_name = "FILE.nqz")]
    pub file: PathBuf,
    /// Where to write the decoded model (float32 safetensors).
    #[arg(long, value_name = "MODEL.safetensors")]
    pub out: PathBuf,
}

/// One tensor's quantization read from an .npz.
struct QuantizedTensor {
    centres: Vec<f32>,
    assignment: Vec<u32>,
    survivors: Option<Vec<u64>>,
}

fn read_indices(
    npz: &mut NpzArchive<BufReader<File>>,
    path: &Path,
    name: &str,
) -> Result<Option<Vec<u64>>> {
    let Some(array) = npz
        .by_name(name)
        .map_err(|e| bad_input(format!("{}: cannot read `{name}`: {e}", path.display())))?
    else {
        return Ok(None);
    };
    let type_str = match array.dtype() {
        DType::Plain(t) => t.to_string(),
        other => {
            return Err(bad_input(format!(
                "{}: `{name}` has dtype {other:?}",
                path.display()
            )))
        }
    };
    let read_error =
        |e: std::io::Error| bad_input(format!("{}: cannot read `{name}`: {e}", path.display()));
    let negative = || bad_input(format!("{}: `{name}` has a negative entry", path.display()));
    let values: Vec<u64> = match type_str.as_str() {
        "<u4" => array
            .into_vec::<u32>()
            .map_err(read_error)?
            .into_iter()
            .map(u64::from)
            .collect(),
        "<u8" => array.into_vec::<u64>().map_err(read_error)?,
        "<i4" => array
            .into_vec::<i32>()
            .map_err(read_error)?
            .into_iter()
            .map(|v| u64::try_from(v).map_err(|_| negative()))
            .collect::<Result<_>>()?,
        "<i8" => array
            .into_vec::<i64>()
            .map_err(read_error)?
            .into_iter()
            .map(|v| u64::try_from(v).map_err(|_| negative()))
            .collect::<Result<_>>()?,
        other => {
            return Err(bad_input(format!(
                "{}: `{name}` has dtype {other}; expected an integer array (<u4, <u8, <i4, <i8)",
                path.display()
            )))
        }
    };
    Ok(Some(values))
}

fn read_quantization(path: &Path) -> Result<QuantizedTensor> {
    let mut npz = NpzArchive::open(path)
        .map_err(|e| bad_input(format!("cannot open {}: {e}", path.display())))?;
    let centres = npz
        .by_name("centres")
        .map_err(|e| bad_input(format!("{}: cannot read `centres`: {e}", path.display())))?
        .ok_or_else(|| bad_input(format!("{} has no `centres` array", path.display())))?;
    let centres: Vec<f32> = centres.into_vec().map_err(|e| {
        bad_input(format!(
            "{}: `centres` must be float32: {e}",
            path.display()
        ))
    })?;
    let assignment = read_indices(&mut npz, path, "assignment")?
        .ok_or_else(|| bad_input(format!("{} has no `assignment` array", path.display())))?;
    let assignment = assignment
        .into_iter()
        .map(|a| {
            u32::try_from(a)
                .map_err(|_| bad_input(format!("{}: cluster index {a}", path.display())))
        })
        .collect::<Result<_>>()?;
    let survivors = read_indices(&mut npz, path, "survivors")?;
    Ok(QuantizedTensor {
        centres,
        assignment,
        survivors,
    })
}

/// The JSON object printed by `pack`.
#[derive(Debug, Serialize)]
struct PackSummary {
    file: PathBuf,
    bytes: u64,
    payload_bytes: u64,
    header_bytes: u64,
    original_bytes: u64,
    compression_ratio: f64,
    tensors: usize,
    quantized_tensors: usize,
    streams: StreamBits,
}

/// Runs `nq-exp pack`.
pub fn run_pack(args: &PackArgs) -> Result<()> {
    let coding: Coding = args.coding.parse()?;
    let mut wanted = BTreeMap::new();
    for spec in &args.quantized {
        let (name, path) = spec
            .split_once('=')
            .ok_or_else(|| bad_input(format!("--quantized {spec}: expected NAME=Q.npz")))?;
        if wanted
            .insert(name.to_owned(), PathBuf::from(path))
            .is_some()
        {
            return Err(bad_input(format!("--quantized names `{name}` twice")));
        }
    }
    let model_bytes = std::fs::read(&args.model)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", args.model.display())))?;
    let model = SafeTensors::deserialize(&model_bytes).map_err(|e| {
        bad_input(format!(
            "{} is not a safetensors file: {e:?}",
            args.model.display()
        ))
    })?;
    let mut names: Vec<String> = model.names().into_iter().cloned().collect();
    names.sort();
    if let Some(missing) = wanted.keys().find(|n| !names.contains(n)) {
        return Err(bad_input(format!(
            "--quantized {missing}: {} has no such tensor",
            args.model.display()
        )));
    }

    struct Entry {
        name: String,
        shape: Vec<u64>,
        raw: Vec<f32>,
        quantized: Option<QuantizedTensor>,
    }
    let mut entries = Vec::with_capacity(names.len());
    for name in &names {
        let view = model
            .tensor(name)
            .map_err(|e| bad_input(format!("{}: tensor `{name}`: {e:?}", args.model.display())))?;
        if view.dtype() != Dtype::F32 {
            return Err(bad_input(format!(
                "{}: tensor `{name}` is {:?}; pack stores float32 models",
                args.model.display(),
                view.dtype()
            )));
        }
        let shape: Vec<u64> = view.shape().iter().map(|&d| d as u64).collect();
        let numel: u64 = shape.iter().product();
        let quantized = match wanted.get(name) {
            None => None,
            Some(path) => {
                let q = read_quantization(path)?;
                let stored = q.survivors.as_ref().map_or(numel, |s| s.len() as u64);
                if q.assignment.len() as u64 != stored {
                    return Err(bad_input(format!(
                        "{}: {} cluster indices for tensor `{name}` of {numel} elements{}",
                        path.display(),
                        q.assignment.len(),
                        q.survivors
                            .as_ref()
                            .map_or(String::new(), |s| format!(" with {} survivors", s.len()))
                    )));
                }
                Some(q)
            }
        };
        let raw = if quantized.is_none() {
            view.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            Vec::new()
        };
        entries.push(Entry {
            name: name.clone(),
            shape,
            raw,
            quantized,
        });
    }

    let mut codebooks = Vec::new();
    let mut tensors = Vec::new();
    for e in &entries {
        let (kind, storage) = match &e.quantized {
            None => (EntryKind::Other, Storage::Raw(&e.raw)),
            Some(q) => {
                codebooks.push(CodebookIn {
                    centres: &q.centres,
                    coding,
                    dither: None,
                });
                let codebook = codebooks.len() - 1;
                let kind = EntryKind::of(kind_of(&e.shape));
                let storage = match &q.survivors {
                    None => Storage::Quantized {
                        codebook,
                        assignment: &q.assignment,
                    },
                    Some(s) => Storage::Pruned {
                        codebook,
                        assignment: &q.assignment,
                        survivors: s,
                    },
                };
                (kind, storage)
            }
        };
        tensors.push(TensorIn {
            name: &e.name,
            shape: &e.shape,
            kind,
            storage,
        });
    }
    let encoded = nqz::encode(&codebooks, &tensors)
        .with_context(|| format!("packing {}", args.model.display()))?;
    write_atomically(&args.out, &encoded.bytes)?;
    let original_bytes: u64 = entries
        .iter()
        .map(|e| 4 * e.shape.iter().product::<u64>())
        .sum();
    let bytes = encoded.bytes.len() as u64;
    let summary = PackSummary {
        file: args.out.clone(),
        bytes,
        payload_bytes: encoded.streams.payload_bytes,
        header_bytes: encoded.streams.header_bytes,
        original_bytes,
        compression_ratio: original_bytes as f64 / bytes as f64,
        tensors: entries.len(),
        quantized_tensors: wanted.len(),
        streams: encoded.streams,
    };
    crate::error::print_line(&serde_json::to_string(&summary)?)?;
    Ok(())
}

/// The kind of a quantized tensor of `shape` when no model says it:
/// convolution kernels have 3 or more dimensions; the rest are stored like
/// fully connected weights.
pub(crate) fn kind_of(shape: &[u64]) -> TensorKind {
    if shape.len() >= 3 {
        TensorKind::Conv
    } else {
        TensorKind::Linear
    }
}

/// Writes `bytes` to a temporary file next to `path`, then renames it.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .map_err(|e| bad_input(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

/// The JSON object printed by `unpack`.
#[derive(Debug, Serialize)]
struct UnpackSummary {
    file: PathBuf,
    out: PathBuf,
    tensors: usize,
    elements: u64,
    streams: StreamBits,
    metadata: nqz::Metadata,
}

/// Runs `nq-exp unpack`.
pub fn run_unpack(args: &UnpackArgs) -> Result<()> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", args.file.display())))?;
    let decoded =
        nqz::decode(&bytes).with_context(|| format!("reading {}", args.file.display()))?;
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = decoded
        .tensors
        .iter()
        .map(|t| {
            let shape = t.shape.iter().map(|&d| d as usize).collect();
            let bytes = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (t.name.clone(), shape, bytes)
        })
        .collect();
    let views = data
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("building the safetensors views: {e:?}"))?;
    // the file's metadata (architecture, input normalisation, classes, the
    // cell that made it) as safetensors keeps it
    let metadata = (!decoded.metadata.is_empty()).then(|| {
        decoded
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<std::collections::HashMap<_, _>>()
    });
    let out = safetensors::serialize(views, &metadata)
        .map_err(|e| anyhow::anyhow!("serialising safetensors: {e:?}"))?;
    write_atomically(&args.out, &out)?;
    let summary = UnpackSummary {
        file: args.file.clone(),
        out: args.out.clone(),
        tensors: decoded.tensors.len(),
        elements: decoded.tensors.iter().map(|t| t.values.len() as u64).sum(),
        streams: decoded.streams,
        metadata: decoded.metadata.clone(),
    };
    crate::error::print_line(&serde_json::to_string(&summary)?)?;
    Ok(())
}
