//! Packing a network into a `.nqz` file: its codebooks read back from its
//! weights, the file written, its payload held to the size accounting, and
//! the file decoded again and compared with the network bit for bit.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use nq_nn::models::Model;
use nq_nn::prune::Masks;
use nq_quant::dither::Dither;
use nq_quant::nqz::{self, CodebookIn, EntryKind, Storage, TensorIn};
use nq_quant::size::{compressed_size, PrunedTensor, SizeInput, SizeReport, TensorKind};
use serde::{Deserialize, Serialize};
use tch::Device;

/// A codebook of universal quantization as the quantize stage left it:
/// its dither and its centres (after fine-tuning). Its weights are
/// `centre - u_i`, all distinct, so the codebook cannot be read back from
/// their distinct values as the others are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DitheredCodebook {
    /// The dither (its seed and step, as fields of the record).
    #[serde(flatten)]
    pub dither: Dither,
    /// The centres.
    pub centres: Vec<f32>,
}

impl DitheredCodebook {
    /// The cluster whose centre less `u` is `v`, bit for bit: the centres
    /// next to `v + u` (sorted by value in `by_value`) are tried.
    fn cluster_of(&self, by_value: &[u32], v: f32, u: f32) -> Option<u32> {
        let target = f64::from(v) + f64::from(u);
        let at = by_value.partition_point(|&j| f64::from(self.centres[j as usize]) < target);
        (at.saturating_sub(1)..(at + 1).min(by_value.len()))
            .map(|i| by_value[i])
            .find(|&j| (self.centres[j as usize] - u).to_bits() == v.to_bits())
    }
}

/// One quantized tensor as stored: its codebook, one index per stored
/// weight, and the survivors of a pruned tensor.
struct StoredTensor {
    codebook: usize,
    assignment: Vec<u32>,
    survivors: Option<Vec<u64>>,
}

/// Per codebook its centres, and per quantized tensor (by name) how it is
/// stored.
type ReadBack = (Vec<Vec<f32>>, BTreeMap<String, StoredTensor>);

/// The codebooks of a quantized network, read back from its weights: the
/// distinct values of each tensor (layer scope) or of all of them (global
/// scope), over the stored weights (the survivors when pruned).
/// Fine-tuning moves centres but never splits a cluster, so this is the
/// quantization that was applied, less any cluster left empty. A dithered
/// codebook (`dithered`, one per codebook when not empty) keeps its
/// centres, and each weight gets the cluster whose centre less its offset
/// it is; the offsets run on over the codebook's tensors in `quantizable`
/// order, as the quantizer drew them.
fn codebooks_of(
    variables: &BTreeMap<String, Vec<f32>>,
    quantizable: &[(String, Option<Vec<u64>>)],
    scope: nq_quant::scope::Scope,
    dithered: &[DitheredCodebook],
) -> Result<ReadBack> {
    let stored = |name: &str, survivors: &Option<Vec<u64>>| -> Vec<f32> {
        let all = &variables[name];
        match survivors {
            Some(s) => s.iter().map(|&i| all[i as usize]).collect(),
            None => all.clone(),
        }
    };
    let distinct = |values: &mut Vec<f32>| {
        values.sort_by(f32::total_cmp);
        values.dedup_by(|a, b| a.to_bits() == b.to_bits());
    };
    let groups: Vec<Vec<usize>> = match scope {
        nq_quant::scope::Scope::Layer => (0..quantizable.len()).map(|t| vec![t]).collect(),
        nq_quant::scope::Scope::Global => vec![(0..quantizable.len()).collect()],
    };
    if !dithered.is_empty() && dithered.len() != groups.len() {
        return Err(anyhow!(
            "{} dithered codebooks for {} codebooks",
            dithered.len(),
            groups.len()
        ));
    }
    let mut codebooks = Vec::new();
    let mut tensors = BTreeMap::new();
    for (g, members) in groups.into_iter().enumerate() {
        let dithered = dithered.get(g);
        let mut centres: Vec<f32> = match dithered {
            Some(d) => d.centres.clone(),
            None => members
                .iter()
                .flat_map(|&t| stored(&quantizable[t].0, &quantizable[t].1))
                .collect(),
        };
        if dithered.is_none() {
            distinct(&mut centres);
        }
        let by_value: Vec<u32> = dithered.map_or_else(Vec::new, |d| {
            let mut order: Vec<u32> = (0..d.centres.len() as u32).collect();
            order.sort_by(|&a, &b| d.centres[a as usize].total_cmp(&d.centres[b as usize]));
            order
        });
        let mut offset = 0u64;
        for &t in &members {
            let (name, survivors) = &quantizable[t];
            let values = stored(name, survivors);
            let assignment = match dithered {
                None => values
                    .iter()
                    .map(|v| centres.partition_point(|c| c.total_cmp(v).is_lt()) as u32)
                    .collect(),
                Some(d) => {
                    let offsets = d.dither.range(offset, values.len());
                    offset += values.len() as u64;
                    values
                        .iter()
                        .zip(offsets)
                        .enumerate()
                        .map(|(i, (&v, u))| {
                            d.cluster_of(&by_value, v, u).ok_or_else(|| {
                                anyhow!(
                                    "tensor `{name}`: stored weight {i} ({v}) is no centre less \
                                     its dither offset ({u})"
                                )
                            })
                        })
                        .collect::<Result<Vec<u32>>>()?
                }
            };
            tensors.insert(
                name.clone(),
                StoredTensor {
                    codebook: codebooks.len(),
                    assignment,
                    survivors: survivors.clone(),
                },
            );
        }
        codebooks.push(centres);
    }
    Ok((codebooks, tensors))
}

/// The network as a `.nqz` file with `metadata` and its accounted size;
/// the file is decoded again and every tensor checked bit for bit against
/// the model. `dithered` holds the codebooks of universal quantization
/// (empty for the other methods); then the quantized tensors come first in
/// the file, in the model's order, so that their offsets run on as the
/// quantizer drew them.
pub(super) fn pack(
    model: &Model,
    scope: Option<nq_quant::scope::Scope>,
    dithered: &[DitheredCodebook],
    masks: Option<&Masks>,
    coding: nq_quant::huffman::Coding,
    metadata: &nqz::Metadata,
) -> Result<(nqz::Encoded, SizeReport)> {
    let mut variables = BTreeMap::new();
    let mut shapes = BTreeMap::new();
    for (name, t) in model.var_store().variables() {
        shapes.insert(
            name.clone(),
            t.size().iter().map(|&d| d as u64).collect::<Vec<u64>>(),
        );
        let values = Vec::<f32>::try_from(t.detach().flatten(0, -1).to_device(Device::Cpu))?;
        variables.insert(name, values);
    }
    let kinds: BTreeMap<&str, TensorKind> = model
        .quantizable()
        .iter()
        .map(|q| (q.name.as_str(), q.kind))
        .collect();
    let quantizable: Vec<(String, Option<Vec<u64>>)> = model
        .quantizable()
        .iter()
        .map(|q| (q.name.clone(), masks.and_then(|m| m.survivors(&q.name))))
        .collect();
    let (centres, stored) = match scope {
        Some(scope) => codebooks_of(&variables, &quantizable, scope, dithered)?,
        None => (Vec::new(), BTreeMap::new()),
    };
    let codebooks: Vec<CodebookIn<'_>> = centres
        .iter()
        .enumerate()
        .map(|(b, c)| CodebookIn {
            centres: c,
            coding,
            dither: dithered.get(b).map(|d| d.dither),
        })
        .collect();
    let survivors_of = |name: &str| {
        quantizable
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, s)| s.as_ref())
    };
    // the survivors' values of pruned tensors that are not quantized
    let pruned_floats: BTreeMap<&str, Vec<f32>> = quantizable
        .iter()
        .filter(|(name, _)| !stored.contains_key(name))
        .filter_map(|(name, survivors)| {
            let all = &variables[name];
            let kept = survivors
                .as_ref()?
                .iter()
                .map(|&i| all[i as usize])
                .collect();
            Some((name.as_str(), kept))
        })
        .collect();
    let table_order: Vec<&String> = if dithered.is_empty() {
        variables.keys().collect()
    } else {
        let first = quantizable.iter().map(|(name, _)| name);
        let rest = variables
            .keys()
            .filter(|name| !quantizable.iter().any(|(q, _)| q == *name));
        first.chain(rest).collect()
    };
    let mut tensors = Vec::with_capacity(variables.len());
    let mut unquantized_floats = 0u64;
    for name in table_order {
        let values = &variables[name];
        let storage = match stored.get(name) {
            Some(StoredTensor {
                codebook,
                assignment,
                survivors: Some(s),
            }) => Storage::Pruned {
                codebook: *codebook,
                assignment,
                survivors: s,
            },
            Some(StoredTensor {
                codebook,
                assignment,
                survivors: None,
            }) => Storage::Quantized {
                codebook: *codebook,
                assignment,
            },
            None => match (pruned_floats.get(name.as_str()), survivors_of(name)) {
                // a pruned tensor kept in float32: its survivors and their
                // positions, as the accounting counts it
                (Some(kept), Some(survivors)) => {
                    unquantized_floats += kept.len() as u64;
                    Storage::PrunedRaw {
                        values: kept,
                        survivors,
                    }
                }
                _ => {
                    unquantized_floats += values.len() as u64;
                    Storage::Raw(values)
                }
            },
        };
        tensors.push(TensorIn {
            name,
            shape: &shapes[name],
            kind: kinds
                .get(name.as_str())
                .map_or(EntryKind::Other, |k| EntryKind::of(*k)),
            storage,
        });
    }
    // gap-coded positions: under context coding, a quantized tensor's
    // survivor flags are in its codebook's context stream instead
    let context = coding == nq_quant::huffman::Coding::Context;
    let pruned: Vec<PrunedTensor> = quantizable
        .iter()
        .filter(|(name, _)| !(context && stored.contains_key(name)))
        .filter_map(|(name, survivors)| {
            Some(PrunedTensor {
                kind: kinds[name.as_str()],
                len: variables[name].len() as u64,
                survivors: survivors.clone()?,
            })
        })
        .collect();
    let encoded = nqz::encode_with_metadata(&codebooks, &tensors, metadata)?;
    let size = compressed_size(&SizeInput {
        codebooks: encoded.codebook_counts.clone(),
        coding,
        context: encoded.context_bits.clone(),
        pruned,
        unquantized_floats,
        params: variables.values().map(|v| v.len() as u64).sum(),
    })?;
    if size.total_bits != encoded.streams.total_bits() {
        return Err(anyhow!(
            "the .nqz payload ({} bits) is not its accounted size ({} bits)",
            encoded.streams.total_bits(),
            size.total_bits
        ));
    }
    let decoded = nqz::decode(&encoded.bytes)?;
    for t in &decoded.tensors {
        let original = &variables[&t.name];
        // bit for bit, but for the sign of a pruned zero: masking a negative
        // weight leaves -0.0, which the file stores as 0 (the same products
        // and sums, so the same outputs)
        let pruned_zero = |a: f32, b: f32| {
            matches!(t.stored, nqz::StoredAs::PrunedRaw { .. }) && a == 0.0 && b == 0.0
        };
        if t.values.len() != original.len()
            || t.values
                .iter()
                .zip(original)
                .any(|(&a, &b)| a.to_bits() != b.to_bits() && !pruned_zero(a, b))
        {
            return Err(anyhow!(
                "the .nqz file does not decode to the network: tensor `{}` differs",
                t.name
            ));
        }
    }
    Ok((encoded, size))
}
