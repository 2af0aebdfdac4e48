//! `nq-exp compress`: a checkpoint quantized with no model code and no
//! data, into a `.nqz` file.
//!
//! The tensors chosen (`--tensors REGEX`, else every tensor of two or more
//! dimensions: the weights of linear and convolution layers, embeddings)
//! are optionally pruned by magnitude (`--keep`: one threshold over all of
//! them, as the paper's global pruning), then quantized by any method of
//! `nq-exp quantize`, one codebook per tensor (`--scope layer`) or one for
//! all (`--scope global`), weighted by an importance when one is given
//! (`--importance`: a safetensors file with the same names and shapes, such
//! as a Hessian diagonal or Adam's `exp_avg_sq` with `--sqrt-importance`).
//! As in grids, the importance is scaled to mean 1 over the weights
//! quantized, so that ECSQ's `lambda` means the same with or without one.
//! The other tensors are stored as float32. The file carries the
//! checkpoint's metadata and what was done to it, is decoded again and
//! checked against the quantized values bit for bit, and its size report
//! is printed as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use nq_quant::huffman::Coding;
use nq_quant::nqz::{self, CodebookIn, EntryKind, Metadata, Storage, TensorIn};
use nq_quant::scope::{quantize_tensors, Scope, WeightTensor};
use nq_quant::size::{compressed_size, PrunedTensor, SizeInput, SizeReport};
use regex::Regex;
use serde::Serialize;

use crate::checkpoint::{self, Checkpoint};
use crate::error::bad_input;
use crate::pack::kind_of;
use crate::quantize::{method_from_args, MethodArgs};

/// Arguments of `nq-exp compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    /// The checkpoint: safetensors of float32, float16 or bfloat16 tensors.
    #[arg(value_name = "CHECKPOINT.safetensors")]
    pub checkpoint: PathBuf,
    /// The quantizer and its parameters.
    #[command(flatten)]
    pub quantizer: MethodArgs,
    /// One codebook per tensor (layer) or one for all (global).
    #[arg(long, default_value = "layer")]
    pub scope: String,
    /// Keep this fraction of the chosen weights, the largest in magnitude
    /// over all of them; the others are pruned to 0 and their positions
    /// stored.
    #[arg(long)]
    pub keep: Option<f64>,
    /// Importance per weight: safetensors with the chosen tensors' names
    /// and shapes (a Hessian diagonal; Adam's exp_avg_sq with
    /// --sqrt-importance).
    #[arg(long, value_name = "H.safetensors")]
    pub importance: Option<PathBuf>,
    /// Take the square root of the importance (Adam's sqrt(v) from
    /// exp_avg_sq).
    #[arg(long, requires = "importance")]
    pub sqrt_importance: bool,
    /// Quantize the tensors whose names match this regular expression
    /// (default: every tensor of two or more dimensions).
    #[arg(long, value_name = "REGEX")]
    pub tensors: Option<String>,
    /// Code for the cluster indices: huffman, fixed, or context (adaptive
    /// arithmetic coding of indices and survivor positions).
    #[arg(long, default_value = "huffman")]
    pub coding: String,
    /// Where to write the .nqz file.
    #[arg(long, value_name = "FILE.nqz")]
    pub out: PathBuf,
}

/// What is printed for each quantized tensor.
#[derive(Debug, Serialize)]
struct TensorSummary {
    name: String,
    shape: Vec<u64>,
    stored_as: String,
    kept: u64,
    clusters: usize,
}

/// The JSON object printed by `compress`.
#[derive(Debug, Serialize)]
struct CompressSummary {
    file: PathBuf,
    bytes: u64,
    payload_bytes: u64,
    header_bytes: u64,
    checkpoint_bytes: u64,
    /// Float32 size of every tensor over the accounted compressed size.
    compression_ratio: f64,
    method: &'static str,
    scope: Scope,
    keep: Option<f64>,
    /// `sum h (w - q)^2` over the quantized weights (h scaled to mean 1).
    distortion_h: f64,
    quantized: Vec<TensorSummary>,
    unquantized: Vec<String>,
    size: SizeReport,
}

/// The indices (in `checkpoint.tensors`) of the tensors to quantize, or
/// bad input when none is chosen.
fn chosen(checkpoint: &Checkpoint, pattern: Option<&str>, path: &str) -> Result<Vec<usize>> {
    let regex = pattern
        .map(|p| Regex::new(p).map_err(|e| bad_input(format!("--tensors {p}: {e}"))))
        .transpose()?;
    let picked: Vec<usize> = checkpoint
        .tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| match &regex {
            Some(r) => r.is_match(&t.name),
            None => t.shape.len() >= 2,
        })
        .map(|(i, _)| i)
        .collect();
    if picked.is_empty() {
        let names: Vec<&str> = checkpoint.tensors.iter().map(|t| t.name.as_str()).collect();
        let what = pattern.map_or("no tensor has two or more dimensions".to_owned(), |p| {
            format!("--tensors {p} matches no tensor")
        });
        return Err(bad_input(format!(
            "{path}: {what}; its tensors: {}",
            names.join(", ")
        )));
    }
    Ok(picked)
}

/// The importance of each chosen tensor, scaled to mean 1 over `kept`.
fn importance_of(
    args: &CompressArgs,
    checkpoint: &Checkpoint,
    picked: &[usize],
    kept: &[Vec<u64>],
) -> Result<Vec<Vec<f32>>> {
    let Some(path) = &args.importance else {
        return Ok(kept.iter().map(|k| vec![1.0; k.len()]).collect());
    };
    let file = checkpoint::read(path)?;
    let mut all = Vec::with_capacity(picked.len());
    for (&t, survivors) in picked.iter().zip(kept) {
        let weights = &checkpoint.tensors[t];
        let at = |what: String| {
            bad_input(format!(
                "{}: tensor `{}`: {what}",
                path.display(),
                weights.name
            ))
        };
        let h = file
            .get(&weights.name)
            .ok_or_else(|| at("missing (the importance needs every quantized tensor)".into()))?;
        if h.shape != weights.shape {
            return Err(at(format!(
                "shape {:?}, the weights have {:?}",
                h.shape, weights.shape
            )));
        }
        if let Some(v) = h.values.iter().find(|v| **v < 0.0) {
            return Err(at(format!("negative importance {v}")));
        }
        all.push(
            survivors
                .iter()
                .map(|&i| {
                    let v = h.values[i as usize];
                    if args.sqrt_importance {
                        v.sqrt()
                    } else {
                        v
                    }
                })
                .collect::<Vec<f32>>(),
        );
    }
    let (sum, count) = all
        .iter()
        .flatten()
        .fold((0.0f64, 0u64), |(s, n), &v| (s + f64::from(v), n + 1));
    if sum <= 0.0 {
        return Err(bad_input(format!(
            "{}: the importance of the quantized weights is all zero",
            path.display()
        )));
    }
    let scale = (count as f64 / sum) as f32;
    Ok(all
        .into_iter()
        .map(|h| h.into_iter().map(|v| v * scale).collect())
        .collect())
}

/// Positions kept in each chosen tensor: all, or the `keep` fraction of
/// largest magnitude over all of them (ties broken by tensor and position).
fn survivors(
    checkpoint: &Checkpoint,
    picked: &[usize],
    keep: Option<f64>,
) -> Result<Vec<Vec<u64>>> {
    let all = |t: usize| (0..checkpoint.tensors[t].values.len() as u64).collect::<Vec<u64>>();
    let Some(keep) = keep else {
        return Ok(picked.iter().map(|&t| all(t)).collect());
    };
    if !(keep > 0.0 && keep <= 1.0) {
        return Err(bad_input(format!(
            "--keep {keep}: expected a fraction in (0, 1]"
        )));
    }
    let mut order: Vec<(f32, usize, u64)> = picked
        .iter()
        .enumerate()
        .flat_map(|(p, &t)| {
            checkpoint.tensors[t]
                .values
                .iter()
                .enumerate()
                .map(move |(i, v)| (v.abs(), p, i as u64))
        })
        .collect();
    let kept = ((keep * order.len() as f64).ceil() as usize).min(order.len());
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out = vec![Vec::new(); picked.len()];
    for &(_, p, i) in &order[..kept] {
        out[p].push(i);
    }
    for s in &mut out {
        s.sort_unstable();
    }
    Ok(out)
}

/// What `compress` did, as the file's `nq-exp.*` metadata.
fn metadata(args: &CompressArgs, source: &Checkpoint, method: &str) -> Metadata {
    let mut m: Metadata = source.metadata.clone();
    m.insert("nq-exp.version".into(), env!("CARGO_PKG_VERSION").into());
    let settings = serde_json::json!({
        "checkpoint": args.checkpoint.file_name().map(|n| n.to_string_lossy()),
        "method": method,
        "k": args.quantizer.k,
        "delta": args.quantizer.delta,
        "lambda": args.quantizer.lambda,
        "seed": args.quantizer.seed,
        "scope": args.scope,
        "keep": args.keep,
        "importance": args.importance.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy()),
        "sqrt_importance": args.sqrt_importance,
        "tensors": args.tensors,
        "coding": args.coding,
    });
    m.insert("nq-exp.compress".into(), settings.to_string());
    let stored: BTreeMap<&str, &str> = source
        .tensors
        .iter()
        .filter(|t| t.stored_as != "F32")
        .map(|t| (t.name.as_str(), t.stored_as.as_str()))
        .collect();
    if !stored.is_empty() {
        // unpack writes float32: what each tensor was, to cast back
        m.insert(
            "nq-exp.stored-as".into(),
            serde_json::to_string(&stored).expect("names serialise"),
        );
    }
    m
}

/// Runs `nq-exp compress`.
pub fn run(args: &CompressArgs) -> Result<()> {
    let method = method_from_args(&args.quantizer)?;
    let coding: Coding = args.coding.parse()?;
    let scope: Scope = args.scope.parse()?;
    let source = checkpoint::read(&args.checkpoint)?;
    let path = args.checkpoint.display().to_string();
    let picked = chosen(&source, args.tensors.as_deref(), &path)?;
    let kept = survivors(&source, &picked, args.keep)?;
    let importance = importance_of(args, &source, &picked, &kept)?;
    let values: Vec<Vec<f32>> = picked
        .iter()
        .zip(&kept)
        .map(|(&t, s)| {
            s.iter()
                .map(|&i| source.tensors[t].values[i as usize])
                .collect()
        })
        .collect();
    let weights: Vec<WeightTensor<'_>> = picked
        .iter()
        .enumerate()
        .map(|(p, &t)| WeightTensor {
            name: &source.tensors[t].name,
            values: &values[p],
            importance: &importance[p],
        })
        .collect();
    let quantization =
        quantize_tensors(&weights, &method, scope).with_context(|| format!("quantizing {path}"))?;
    let distortion_h = quantization.distortion_h(&weights);

    let codebooks: Vec<CodebookIn<'_>> = quantization
        .codebooks
        .iter()
        .map(|q| CodebookIn {
            centres: &q.centres,
            coding,
            dither: q.dither,
        })
        .collect();
    let position: BTreeMap<usize, usize> =
        picked.iter().enumerate().map(|(p, &t)| (t, p)).collect();
    let pruned = args.keep.is_some();
    let mut tensors = Vec::with_capacity(source.tensors.len());
    let mut unquantized_floats = 0u64;
    for (t, tensor) in source.tensors.iter().enumerate() {
        let storage = match position.get(&t) {
            None => {
                unquantized_floats += tensor.values.len() as u64;
                Storage::Raw(&tensor.values)
            }
            Some(&p) => {
                let (_, assignment) = quantization.tensor(p);
                let codebook = quantization.spans[p].codebook;
                if pruned {
                    Storage::Pruned {
                        codebook,
                        assignment,
                        survivors: &kept[p],
                    }
                } else {
                    Storage::Quantized {
                        codebook,
                        assignment,
                    }
                }
            }
        };
        tensors.push(TensorIn {
            name: &tensor.name,
            shape: &tensor.shape,
            kind: match position.get(&t) {
                None => EntryKind::Other,
                Some(_) => EntryKind::of(kind_of(&tensor.shape)),
            },
            storage,
        });
    }
    let method_name = method.name();
    let encoded =
        nqz::encode_with_metadata(&codebooks, &tensors, &metadata(args, &source, method_name))
            .with_context(|| format!("packing {path}"))?;
    let size = compressed_size(&SizeInput {
        codebooks: encoded.codebook_counts.clone(),
        coding,
        context: encoded.context_bits.clone(),
        // every pruned tensor is quantized here: under context coding its
        // survivor flags are in the context streams, not in gap fields
        pruned: if pruned && coding != Coding::Context {
            picked
                .iter()
                .zip(&kept)
                .map(|(&t, s)| PrunedTensor {
                    kind: kind_of(&source.tensors[t].shape),
                    len: source.tensors[t].values.len() as u64,
                    survivors: s.clone(),
                })
                .collect()
        } else {
            Vec::new()
        },
        unquantized_floats,
        params: source.tensors.iter().map(|t| t.values.len() as u64).sum(),
    })?;
    if size.total_bits != encoded.streams.total_bits() {
        anyhow::bail!(
            "the .nqz payload ({} bits) is not its accounted size ({} bits)",
            encoded.streams.total_bits(),
            size.total_bits
        );
    }
    check_decodes(&encoded.bytes, &source, &position, &quantization, &kept)?;
    crate::pack::write_atomically(&args.out, &encoded.bytes)?;

    let summary = CompressSummary {
        file: args.out.clone(),
        bytes: encoded.bytes.len() as u64,
        payload_bytes: encoded.streams.payload_bytes,
        header_bytes: encoded.streams.header_bytes,
        checkpoint_bytes: std::fs::metadata(&args.checkpoint).map_or(0, |m| m.len()),
        compression_ratio: size.compression_ratio,
        method: method_name,
        scope,
        keep: args.keep,
        distortion_h,
        quantized: picked
            .iter()
            .zip(&kept)
            .enumerate()
            .map(|(p, (&t, s))| {
                let tensor = &source.tensors[t];
                let (_, assignment) = quantization.tensor(p);
                let mut used: Vec<u32> = assignment.to_vec();
                used.sort_unstable();
                used.dedup();
                TensorSummary {
                    name: tensor.name.clone(),
                    shape: tensor.shape.clone(),
                    stored_as: tensor.stored_as.clone(),
                    kept: s.len() as u64,
                    clusters: used.len(),
                }
            })
            .collect(),
        unquantized: source
            .tensors
            .iter()
            .enumerate()
            .filter(|(t, _)| !position.contains_key(t))
            .map(|(_, t)| t.name.clone())
            .collect(),
        size,
    };
    crate::error::print_line(&serde_json::to_string(&summary)?)?;
    Ok(())
}

/// Decodes the file again and compares every tensor with what was meant:
/// the quantized values (0 where pruned) and the untouched floats.
fn check_decodes(
    bytes: &[u8],
    source: &Checkpoint,
    position: &BTreeMap<usize, usize>,
    quantization: &nq_quant::scope::ScopedQuantization,
    kept: &[Vec<u64>],
) -> Result<()> {
    let decoded = nqz::decode(bytes)?;
    for (t, tensor) in source.tensors.iter().enumerate() {
        let expected: Vec<f32> = match position.get(&t) {
            None => tensor.values.clone(),
            Some(&p) => {
                let mut full = vec![0f32; tensor.values.len()];
                for (&i, v) in kept[p].iter().zip(quantization.quantized(p)) {
                    full[i as usize] = v;
                }
                full
            }
        };
        let got = decoded
            .tensors
            .iter()
            .find(|d| d.name == tensor.name)
            .with_context(|| format!("the .nqz file lost tensor `{}`", tensor.name))?;
        if got.values.len() != expected.len()
            || got
                .values
                .iter()
                .zip(&expected)
                .any(|(a, b)| a.to_bits() != b.to_bits())
        {
            anyhow::bail!(
                "the .nqz file does not decode to the quantized tensor `{}`",
                tensor.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointTensor;

    fn checkpoint(values: &[(&str, Vec<u64>, Vec<f32>)]) -> Checkpoint {
        Checkpoint {
            tensors: values
                .iter()
                .map(|(n, s, v)| CheckpointTensor {
                    name: n.to_string(),
                    shape: s.clone(),
                    values: v.clone(),
                    stored_as: "F32".into(),
                })
                .collect(),
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn magnitude_pruning_keeps_the_largest_over_all_chosen_tensors() {
        let c = checkpoint(&[
            ("a", vec![2, 2], vec![0.1, -5.0, 0.2, 3.0]),
            ("b", vec![2, 1], vec![-4.0, 0.0]),
        ]);
        // 6 weights, keep half: |-5|, |-4|, |3|
        let s = survivors(&c, &[0, 1], Some(0.5)).unwrap();
        assert_eq!(s, vec![vec![1, 3], vec![0]]);
        assert_eq!(survivors(&c, &[0, 1], None).unwrap()[1], vec![0, 1]);
        assert!(survivors(&c, &[0], Some(0.0)).is_err());
        assert!(survivors(&c, &[0], Some(1.5)).is_err());
    }

    #[test]
    fn the_default_choice_is_every_tensor_of_two_or_more_dimensions() {
        let c = checkpoint(&[
            ("fc.bias", vec![2], vec![0.0, 1.0]),
            ("fc.weight", vec![2, 1], vec![0.0, 1.0]),
        ]);
        assert_eq!(chosen(&c, None, "c").unwrap(), vec![1]);
        assert_eq!(chosen(&c, Some("bias$"), "c").unwrap(), vec![0]);
        let err = format!(
            "{:#}",
            chosen(&c, Some("^conv"), "c.safetensors").unwrap_err()
        );
        assert!(
            err.contains("--tensors ^conv matches no tensor") && err.contains("fc.weight"),
            "{err}"
        );
        assert!(chosen(&c, Some("("), "c").is_err());
    }
}
