//! Packing a network into a `.nqz` file: its codebooks read back from its
//! weights, the file written, its payload held to the size accounting, and
//! the file decoded again and compared with the network bit for bit.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use nq_nn::models::Model;
use nq_nn::prune::Masks;
use nq_quant::nqz::{self, CodebookIn, EntryKind, Storage, TensorIn};
use nq_quant::size::{compressed_size, PrunedTensor, SizeInput, SizeReport, TensorKind};
use tch::Device;

/// One quantized tensor as stored: its codebook, one index per stored
/// weight, and the survivors of a pruned tensor.
struct StoredTensor {
    codebook: usize,
    assignment: Vec<u32>,
    survivors: Option<Vec<u64>>,
}

/// The codebooks of a quantized network, read back from its weights: the
/// distinct values of each tensor (layer scope) or of all of them (global
/// scope), over the stored weights (the survivors when pruned).
/// Fine-tuning moves centres but never splits a cluster, so this is the
/// quantization that was applied, less any cluster left empty.
fn codebooks_of(
    variables: &BTreeMap<String, Vec<f32>>,
    quantizable: &[(String, Option<Vec<u64>>)],
    scope: nq_quant::scope::Scope,
) -> (Vec<Vec<f32>>, BTreeMap<String, StoredTensor>) {
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
    let mut codebooks = Vec::new();
    let mut tensors = BTreeMap::new();
    for members in groups {
        let mut centres: Vec<f32> = members
            .iter()
            .flat_map(|&t| stored(&quantizable[t].0, &quantizable[t].1))
            .collect();
        distinct(&mut centres);
        for &t in &members {
            let (name, survivors) = &quantizable[t];
            let assignment = stored(name, survivors)
                .iter()
                .map(|v| centres.partition_point(|c| c.total_cmp(v).is_lt()) as u32)
                .collect();
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
    (codebooks, tensors)
}

/// The network as a `.nqz` file with `metadata` and its accounted size;
/// the file is decoded again and every tensor checked bit for bit against
/// the model.
pub(super) fn pack(
    model: &Model,
    scope: Option<nq_quant::scope::Scope>,
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
        Some(scope) => codebooks_of(&variables, &quantizable, scope),
        None => (Vec::new(), BTreeMap::new()),
    };
    let codebooks: Vec<CodebookIn<'_>> = centres
        .iter()
        .map(|c| CodebookIn {
            centres: c,
            coding,
            dither: None,
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
    let mut tensors = Vec::with_capacity(variables.len());
    let mut unquantized_floats = 0u64;
    for (name, values) in &variables {
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
