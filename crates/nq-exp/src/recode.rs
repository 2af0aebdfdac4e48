//! `nq-exp recode`: writes a `.nqz` file again with another coding of its
//! cluster indices (and of its survivor positions, under context coding).
//! The network is unchanged: the new file is decoded and checked, tensor by
//! tensor and bit for bit, against the old one before it is written.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use nq_quant::huffman::Coding;
use nq_quant::nqz::{self, CodebookIn, Decoded, StoredAs, StreamBits, TensorIn};
use serde::Serialize;

use crate::error::bad_input;
use crate::pack::write_atomically;

/// `nq-exp recode FILE --coding CODING --out OUT`.
#[derive(Debug, Args)]
pub struct RecodeArgs {
    /// The `.nqz` file to read.
    pub file: PathBuf,
    /// The new code for the cluster indices: huffman, fixed, or context
    /// (adaptive arithmetic coding of indices and survivor positions).
    #[arg(long)]
    pub coding: String,
    /// Where to write the new `.nqz` file.
    #[arg(long)]
    pub out: PathBuf,
}

/// What `recode` prints: both files' sizes, stream by stream.
#[derive(Debug, Serialize)]
struct RecodeSummary {
    file: PathBuf,
    out: PathBuf,
    coding: Coding,
    bytes_before: u64,
    bytes_after: u64,
    streams_before: StreamBits,
    streams_after: StreamBits,
}

/// The decoded tensors' survivors' float values (for pruned float tensors).
fn survivor_values(decoded: &Decoded) -> Vec<Vec<f32>> {
    decoded
        .tensors
        .iter()
        .map(|t| match &t.stored {
            StoredAs::PrunedRaw { survivors } => {
                survivors.iter().map(|&i| t.values[i as usize]).collect()
            }
            _ => Vec::new(),
        })
        .collect()
}

/// Encodes `decoded` again, every codebook coded by `coding`, keeping its
/// dithers and its metadata.
pub fn recode(decoded: &Decoded, coding: Coding) -> Result<nqz::Encoded> {
    let codebooks: Vec<CodebookIn<'_>> = decoded
        .codebooks
        .iter()
        .zip(&decoded.dithers)
        .map(|((centres, _), &dither)| CodebookIn {
            centres,
            coding,
            dither,
        })
        .collect();
    let kept = survivor_values(decoded);
    let tensors: Vec<TensorIn<'_>> = decoded
        .tensors
        .iter()
        .zip(&kept)
        .map(|(t, kept)| TensorIn {
            name: &t.name,
            shape: &t.shape,
            kind: t.kind,
            storage: match &t.stored {
                StoredAs::Raw => nqz::Storage::Raw(&t.values),
                StoredAs::PrunedRaw { survivors } => nqz::Storage::PrunedRaw {
                    values: kept,
                    survivors,
                },
                StoredAs::Quantized {
                    codebook,
                    assignment,
                } => nqz::Storage::Quantized {
                    codebook: *codebook,
                    assignment,
                },
                StoredAs::Pruned {
                    codebook,
                    assignment,
                    survivors,
                } => nqz::Storage::Pruned {
                    codebook: *codebook,
                    assignment,
                    survivors,
                },
            },
        })
        .collect();
    Ok(nqz::encode_with_metadata(
        &codebooks,
        &tensors,
        &decoded.metadata,
    )?)
}

/// Runs `nq-exp recode`.
pub fn run(args: &RecodeArgs) -> Result<()> {
    let coding: Coding = args.coding.parse()?;
    let path = args.file.display();
    let bytes =
        std::fs::read(&args.file).map_err(|e| bad_input(format!("cannot read {path}: {e}")))?;
    let decoded = nqz::decode(&bytes).with_context(|| format!("reading {path}"))?;
    let encoded = recode(&decoded, coding).with_context(|| format!("recoding {path}"))?;
    let again = nqz::decode(&encoded.bytes).context("decoding the recoded file")?;
    let same = again.tensors.len() == decoded.tensors.len()
        && again.tensors.iter().zip(&decoded.tensors).all(|(a, b)| {
            a.name == b.name
                && a.shape == b.shape
                && a.values.len() == b.values.len()
                && a.values
                    .iter()
                    .zip(&b.values)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
        });
    if !same {
        anyhow::bail!("the recoded file does not decode to the network of {path}");
    }
    write_atomically(&args.out, &encoded.bytes)?;
    let summary = RecodeSummary {
        file: args.file.clone(),
        out: args.out.clone(),
        coding,
        bytes_before: bytes.len() as u64,
        bytes_after: encoded.bytes.len() as u64,
        streams_before: decoded.streams,
        streams_after: encoded.streams,
    };
    crate::error::print_line(&serde_json::to_string(&summary)?)?;
    Ok(())
}
