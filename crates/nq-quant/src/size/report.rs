//! The accounted size of a quantized (and possibly pruned) network.

use serde::Serialize;

use super::positions::{check_survivors, field_counts, PrunedTensor, TensorKind};
use crate::context::{stream_bits, ContextBits, ContextEncoder};
use crate::error::{ensure_param, QuantError, Result};
use crate::huffman::{Code, Coding, HuffmanCode};
use crate::quantization::entropy;

/// Bits of one unquantized float and of one codebook centre.
pub const FLOAT_BITS: u64 = 32;

/// Bits per symbol of a code table: one byte holding its code length.
pub const TABLE_ENTRY_BITS: u64 = 8;

/// What the size of a quantized network depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeInput {
    /// Per codebook, the member count of each of its clusters, all `>= 1`
    /// (clusters are non-empty): one codebook for global quantization, one
    /// per layer for layer-by-layer quantization; none for a network that
    /// is only pruned, its survivors counted in `unquantized_floats`.
    pub codebooks: Vec<Vec<u64>>,
    /// How cluster indices are coded.
    pub coding: Coding,
    /// For [`Coding::Context`], one per codebook: the bits of its context
    /// streams (indices, and survivor flags of its pruned tensors), as
    /// [`crate::context::ContextEncoder`] wrote them (an adaptive code's
    /// length depends on the symbols' order, not only on their counts);
    /// empty for the other codings.
    pub context: Vec<ContextBits>,
    /// The pruned weight tensors whose survivor positions are stored as gap
    /// fields: all of them, except under [`Coding::Context`], where only
    /// those left in float32 are (the quantized ones' positions are in
    /// `context`). Tensors that are not pruned are not listed.
    pub pruned: Vec<PrunedTensor>,
    /// Floats kept unquantized (biases, batch-norm, ...), 32 bits each.
    pub unquantized_floats: u64,
    /// Parameters of the network: the original size is `32 * params` bits.
    pub params: u64,
}

/// The compressed size, part by part, in bits (paper.md section 6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeReport {
    /// `32 * params`.
    pub original_bits: u64,
    /// Coded cluster indices: `sum_j count_j * b_j` over all codebooks.
    pub index_bits: u64,
    /// Centres: 32 bits each.
    pub codebook_bits: u64,
    /// Huffman code tables of the indices: one byte per cluster (0 for
    /// fixed-length codes).
    pub code_table_bits: u64,
    /// Huffman-coded gap fields of the pruned tensors.
    pub position_bits: u64,
    /// Huffman code tables of the gap fields: one byte per field value, for
    /// each tensor kind present.
    pub position_table_bits: u64,
    /// Unquantized floats: 32 bits each.
    pub float_bits: u64,
    /// The sum of the seven parts above except `original_bits`.
    pub total_bits: u64,
    /// `original_bits / total_bits`.
    pub compression_ratio: f64,
    /// Weights quantized: the sum of all counts.
    pub quantized_weights: u64,
    /// Clusters over all codebooks.
    pub clusters: u64,
    /// `index_bits / quantized_weights`, bits per quantized weight (the x
    /// axis of the paper's figures).
    pub average_codeword_length: f64,
    /// Count-weighted mean of the codebooks' entropies, bits per quantized
    /// weight: the lower bound of `average_codeword_length` for any prefix
    /// code of the indices.
    pub entropy: f64,
}

/// The size of `input` part by part (paper.md section 6; see the
/// [module documentation](super) for each rule).
///
/// Without codebooks it is the size of a pruned network kept in float32
/// (the survivors counted in `unquantized_floats`).
///
/// Fails if a codebook is empty or has an empty
/// cluster, `params` is 0, a survivor list is not strictly increasing and
/// inside its tensor, the quantized weights, the unquantized floats and the
/// pruned-away weights together exceed `params`, or a total overflows
/// `u64`.
pub fn compressed_size(input: &SizeInput) -> Result<SizeReport> {
    ensure_param(input.params > 0, "params", "the network has no parameters")?;
    for (b, counts) in input.codebooks.iter().enumerate() {
        ensure_param(
            !counts.is_empty(),
            "codebooks",
            format!("codebook {b} has no cluster"),
        )?;
        if let Some(j) = counts.iter().position(|&c| c == 0) {
            return Err(QuantError::InvalidParam {
                name: "codebooks",
                reason: format!("cluster {j} of codebook {b} is empty; clusters must have members"),
            });
        }
    }

    let context = input.coding == Coding::Context;
    ensure_param(
        input.context.len() == if context { input.codebooks.len() } else { 0 },
        "context",
        format!(
            "{} context stream sizes for {} codebooks coded {}",
            input.context.len(),
            input.codebooks.len(),
            input.coding
        ),
    )?;

    let mut index_bits = 0u128;
    let mut codebook_bits = 0u128;
    let mut code_table_bits = 0u128;
    let mut quantized = 0u128;
    let mut clusters = 0u128;
    let mut entropy_bits = 0f64;
    let mut position_bits = 0u128;
    for (b, counts) in input.codebooks.iter().enumerate() {
        let n: u128 = counts.iter().map(|&c| u128::from(c)).sum();
        let k = counts.len() as u128;
        if context {
            index_bits += u128::from(input.context[b].index_bits);
            position_bits += u128::from(input.context[b].position_bits);
        } else {
            index_bits += Code::new(input.coding, counts)?.encoded_bits(counts)?;
        }
        codebook_bits += k * u128::from(FLOAT_BITS);
        if input.coding == Coding::Huffman {
            code_table_bits += k * u128::from(TABLE_ENTRY_BITS);
        }
        quantized += n;
        clusters += k;
        entropy_bits += n as f64 * entropy(counts);
    }

    let mut position_table_bits = 0u128;
    let mut pruned_away = 0u128;
    for (i, t) in input.pruned.iter().enumerate() {
        check_survivors(&t.survivors, t.len).map_err(|e| {
            QuantError::Inconsistent(format!(
                "pruned tensor {i} ({}, {} elements): {e}",
                t.kind, t.len
            ))
        })?;
        pruned_away += u128::from(t.len) - t.survivors.len() as u128;
    }
    for kind in TensorKind::ALL {
        if input.pruned.iter().any(|t| t.kind == kind) {
            let counts = field_counts(
                input.pruned.iter().filter(|t| t.kind == kind),
                kind.field_bits(),
            )?;
            let code = HuffmanCode::from_counts(&counts)?;
            position_bits += Code::Huffman(code).encoded_bits(&counts)?;
            position_table_bits += (1u128 << kind.field_bits()) * u128::from(TABLE_ENTRY_BITS);
        }
    }

    let floats = u128::from(input.unquantized_floats);
    let accounted = quantized + floats + pruned_away;
    if accounted > u128::from(input.params) {
        return Err(QuantError::Inconsistent(format!(
            "{quantized} quantized weights + {floats} unquantized floats + {pruned_away} pruned \
             weights = {accounted}, more than the {} parameters of the network",
            input.params
        )));
    }
    let float_bits = floats * u128::from(FLOAT_BITS);
    let original_bits = u128::from(input.params) * u128::from(FLOAT_BITS);
    let total_bits = index_bits
        + codebook_bits
        + code_table_bits
        + position_bits
        + position_table_bits
        + float_bits;

    Ok(SizeReport {
        original_bits: to_u64(original_bits, "original_bits")?,
        index_bits: to_u64(index_bits, "index_bits")?,
        codebook_bits: to_u64(codebook_bits, "codebook_bits")?,
        code_table_bits: to_u64(code_table_bits, "code_table_bits")?,
        position_bits: to_u64(position_bits, "position_bits")?,
        position_table_bits: to_u64(position_table_bits, "position_table_bits")?,
        float_bits: to_u64(float_bits, "float_bits")?,
        total_bits: to_u64(total_bits, "total_bits")?,
        compression_ratio: original_bits as f64 / total_bits as f64,
        quantized_weights: to_u64(quantized, "quantized_weights")?,
        clusters: to_u64(clusters, "clusters")?,
        average_codeword_length: if quantized == 0 {
            0.0
        } else {
            index_bits as f64 / quantized as f64
        },
        entropy: if quantized == 0 {
            0.0
        } else {
            entropy_bits / quantized as f64
        },
    })
}

/// The size of the simplest case: one codebook with these cluster counts,
/// no pruning, no unquantized float, and the counts as the whole network
/// (`params = sum counts`).
pub fn single_codebook_size(counts: &[u64], coding: Coding) -> Result<SizeReport> {
    let params = counts
        .iter()
        .try_fold(0u64, |a, &c| a.checked_add(c))
        .ok_or_else(|| QuantError::InvalidParam {
            name: "counts",
            reason: "their sum overflows u64".into(),
        })?;
    compressed_size(&SizeInput {
        codebooks: vec![counts.to_vec()],
        coding,
        context: Vec::new(),
        pruned: Vec::new(),
        unquantized_floats: 0,
        params,
    })
}

/// The size of one codebook's cluster indices `assignment` (into `k`
/// clusters, each used) as the whole network, coded by `coding`: what
/// [`single_codebook_size`] gives for their counts, and for
/// [`Coding::Context`] the length of the context-coded sequence (a vector,
/// one row).
pub fn sequence_size(assignment: &[u32], k: usize, coding: Coding) -> Result<SizeReport> {
    let mut counts = vec![0u64; k];
    for (i, &a) in assignment.iter().enumerate() {
        *counts.get_mut(a as usize).ok_or_else(|| {
            QuantError::Inconsistent(format!("cluster index {a} at {i} is outside {k} clusters"))
        })? += 1;
    }
    let context = if coding == Coding::Context {
        let k = u32::try_from(k).map_err(|_| QuantError::InvalidParam {
            name: "k",
            reason: format!("{k} clusters do not fit in 32 bits"),
        })?;
        let mut encoder = ContextEncoder::new();
        encoder.indices(k, assignment)?;
        vec![ContextBits {
            index_bits: stream_bits(&encoder.finish()),
            position_bits: 0,
        }]
    } else {
        Vec::new()
    };
    compressed_size(&SizeInput {
        codebooks: vec![counts],
        coding,
        context,
        pruned: Vec::new(),
        unquantized_floats: 0,
        params: assignment.len() as u64,
    })
}

fn to_u64(bits: u128, what: &str) -> Result<u64> {
    u64::try_from(bits)
        .map_err(|_| QuantError::Inconsistent(format!("{what} = {bits} overflows u64")))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn one_codebook_by_hand() {
        // counts [5, 2, 1, 1]: N = 9 weights, k = 4, original 9 * 32 = 288.
        // Fixed: 9 * 2 = 18 index bits + 4 * 32 = 128 codebook bits = 146;
        // ratio 288 / 146.
        let f = single_codebook_size(&[5, 2, 1, 1], Coding::Fixed).unwrap();
        assert_eq!(
            (
                f.original_bits,
                f.index_bits,
                f.codebook_bits,
                f.code_table_bits,
                f.total_bits
            ),
            (288, 18, 128, 0, 146)
        );
        assert_eq!(f.compression_ratio, 288.0 / 146.0);
        assert_eq!(f.average_codeword_length, 2.0);
        // Huffman lengths [1, 2, 3, 3]: 5 + 4 + 3 + 3 = 15 index bits, plus
        // 128 codebook bits and 4 * 8 = 32 table bits = 175; ratio 288 / 175.
        let h = single_codebook_size(&[5, 2, 1, 1], Coding::Huffman).unwrap();
        assert_eq!(
            (
                h.index_bits,
                h.codebook_bits,
                h.code_table_bits,
                h.position_bits,
                h.float_bits,
                h.total_bits
            ),
            (15, 128, 32, 0, 0, 175)
        );
        assert_eq!(h.compression_ratio, 288.0 / 175.0);
        assert_eq!(h.average_codeword_length, 15.0 / 9.0);
        assert_eq!((h.quantized_weights, h.clusters), (9, 4));
        // H = 5/9 log2(9/5) + 2/9 log2(9/2) + 2 * 1/9 log2 9 = 1.6577 bits
        let hand =
            5.0 / 9.0 * (9.0f64 / 5.0).log2() + 2.0 / 9.0 * 4.5f64.log2() + 2.0 / 9.0 * 9f64.log2();
        assert!((h.entropy - hand).abs() < 1e-12);
        assert!(h.entropy <= h.average_codeword_length);
    }

    #[test]
    fn a_pruned_float_network_has_no_codebook() {
        // 2 survivors of a 10-element linear tensor, kept as floats, and 3
        // biases: only positions and floats are stored
        let pruned = vec![PrunedTensor {
            kind: TensorKind::Linear,
            len: 10,
            survivors: vec![1, 6],
        }];
        let floats = compressed_size(&SizeInput {
            codebooks: Vec::new(),
            coding: Coding::Huffman,
            context: Vec::new(),
            pruned: pruned.clone(),
            unquantized_floats: 5,
            params: 13,
        })
        .unwrap();
        let quantized = compressed_size(&SizeInput {
            codebooks: vec![vec![2]],
            coding: Coding::Huffman,
            context: Vec::new(),
            pruned,
            unquantized_floats: 3,
            params: 13,
        })
        .unwrap();
        assert_eq!(floats.position_bits, quantized.position_bits);
        assert_eq!(floats.float_bits, 5 * 32);
        assert_eq!(
            floats.total_bits,
            floats.position_bits + floats.position_table_bits + 160
        );
        assert_eq!(
            (
                floats.index_bits,
                floats.codebook_bits,
                floats.code_table_bits
            ),
            (0, 0, 0)
        );
        assert_eq!(
            (floats.quantized_weights, floats.average_codeword_length),
            (0, 0.0)
        );
        assert_eq!(
            floats.compression_ratio,
            13.0 * 32.0 / floats.total_bits as f64
        );
    }

    #[test]
    fn one_cluster_costs_no_index_bits() {
        // k = 1: 0 bits per index either way; Huffman still stores its 1-byte table.
        let f = single_codebook_size(&[7], Coding::Fixed).unwrap();
        let h = single_codebook_size(&[7], Coding::Huffman).unwrap();
        assert_eq!((f.index_bits, f.total_bits), (0, 32));
        assert_eq!((h.index_bits, h.total_bits), (0, 40));
        assert_eq!(h.compression_ratio, 7.0 * 32.0 / 40.0);
        assert_eq!(h.entropy, 0.0);
    }

    /// Layer scope, pruned: a conv tensor of 600 elements keeping 3, a
    /// linear tensor of 100 keeping 4, an unpruned linear tensor of 5 and
    /// 10 biases. params = 600 + 100 + 5 + 10 = 715, original 715 * 32 = 22880.
    fn pruned_network(coding: Coding) -> SizeInput {
        SizeInput {
            // conv: 3 weights in 2 clusters; linear: 4 in 3; unpruned: 5 in 1
            codebooks: vec![vec![2, 1], vec![1, 1, 2], vec![5]],
            coding,
            context: Vec::new(),
            pruned: vec![
                PrunedTensor {
                    kind: TensorKind::Conv,
                    len: 600,
                    survivors: vec![0, 300, 599],
                },
                PrunedTensor {
                    kind: TensorKind::Linear,
                    len: 100,
                    survivors: vec![2, 40, 41, 99],
                },
            ],
            unquantized_floats: 10,
            params: 715,
        }
    }

    #[test]
    fn pruned_network_by_hand() {
        // Positions, conv (8 bits, M = 255): gaps 1, 300, 299 -> fields
        // [1], [0, 45], [0, 44]; counts {0: 2, 1: 1, 44: 1, 45: 1}. Huffman:
        // merge 1 + 1 (symbols 1, 44) -> 2; leaf 45 (1) and leaf 0 (2, a leaf
        // wins the tie with the node 2) -> 3; 2 + 3 -> 5: every length is 2,
        // 5 fields * 2 = 10 bits.
        // Linear (5 bits, M = 31): fields [3, 0, 7, 1, 0, 27]; counts {0: 2,
        // 1: 1, 3: 1, 7: 1, 27: 1}. Huffman: 1 + 3 -> A(2); 7 + 27 -> B(2);
        // leaf 0 (2) + A -> C(4); B + C -> 6. Lengths 0: 2, 1: 3, 3: 3,
        // 7: 2, 27: 2 -> 2 * 2 + 3 + 3 + 2 + 2 = 14 bits.
        // Position bits 10 + 14 = 24; tables 256 * 8 + 32 * 8 = 2304.
        // Codebook bits (2 + 3 + 1) * 32 = 192; floats 10 * 32 = 320.
        //
        // Fixed: indices 3 * 1 + 4 * 2 + 5 * 0 = 11.
        // Total 11 + 192 + 0 + 24 + 2304 + 320 = 2851; ratio 22880 / 2851 = 8.025.
        let f = compressed_size(&pruned_network(Coding::Fixed)).unwrap();
        assert_eq!(f.original_bits, 22880);
        assert_eq!(f.index_bits, 11);
        assert_eq!(f.codebook_bits, 192);
        assert_eq!(f.code_table_bits, 0);
        assert_eq!(f.position_bits, 24);
        assert_eq!(f.position_table_bits, 2304);
        assert_eq!(f.float_bits, 320);
        assert_eq!(f.total_bits, 2851);
        assert_eq!(f.compression_ratio, 22880.0 / 2851.0);
        assert_eq!((f.quantized_weights, f.clusters), (12, 6));
        assert_eq!(f.average_codeword_length, 11.0 / 12.0);
        //
        // Huffman: [2, 1] -> lengths [1, 1]: 3 bits; [1, 1, 2] -> lengths
        // [2, 2, 1]: 2 + 2 + 2 = 6 bits; [5] -> 0 bits. Indices 9; tables
        // 6 * 8 = 48. Total 9 + 192 + 48 + 24 + 2304 + 320 = 2897;
        // ratio 22880 / 2897 = 7.898.
        let h = compressed_size(&pruned_network(Coding::Huffman)).unwrap();
        assert_eq!(h.index_bits, 9);
        assert_eq!(h.code_table_bits, 48);
        assert_eq!((h.position_bits, h.position_table_bits), (24, 2304));
        assert_eq!(h.total_bits, 2897);
        assert_eq!(h.compression_ratio, 22880.0 / 2897.0);
        assert_eq!(h.average_codeword_length, 0.75);
        // entropy: (3 H(2/3, 1/3) + 4 * 1.5 + 5 * 0) / 12 = 0.7296 bits per weight
        let h3 = (2.0 / 3.0) * 1.5f64.log2() + (1.0 / 3.0) * 3f64.log2();
        assert!((h.entropy - (3.0 * h3 + 6.0) / 12.0).abs() < 1e-12);
        assert_eq!(h.entropy, f.entropy);
    }

    #[test]
    fn invalid_inputs() {
        let ok = pruned_network(Coding::Huffman);
        let mut bad = ok.clone();
        bad.codebooks[1][0] = 0;
        assert!(matches!(
            compressed_size(&bad),
            Err(QuantError::InvalidParam { .. })
        ));
        let mut bad = ok.clone();
        bad.codebooks.push(vec![]);
        assert!(compressed_size(&bad).is_err());
        let mut bad = ok.clone();
        bad.pruned[1].survivors = vec![2, 40, 40, 99];
        let err = compressed_size(&bad).unwrap_err();
        assert!(err.to_string().contains("pruned tensor 1"), "{err}");
        let mut bad = ok.clone();
        bad.pruned[0].survivors = vec![0, 300, 600];
        assert!(compressed_size(&bad).is_err());
        let mut bad = ok.clone();
        bad.params = 714; // one parameter short of what is accounted
        assert!(compressed_size(&bad).is_err());
        let mut bad = ok;
        bad.params = 0;
        assert!(compressed_size(&bad).is_err());
        assert!(single_codebook_size(&[u64::MAX, 1], Coding::Fixed).is_err());
    }

    #[test]
    fn a_sequence_by_hand() {
        // the counts [5, 2, 1, 1] of single_codebook_size, as a sequence
        let assignment = [0, 0, 1, 0, 2, 0, 1, 3, 0];
        for coding in [Coding::Fixed, Coding::Huffman] {
            assert_eq!(
                sequence_size(&assignment, 4, coding).unwrap(),
                single_codebook_size(&[5, 2, 1, 1], coding).unwrap()
            );
        }
        // context coding: no table, the coder's words
        let c = sequence_size(&assignment, 4, Coding::Context).unwrap();
        assert_eq!((c.code_table_bits, c.codebook_bits), (0, 128));
        assert_eq!(c.index_bits % 32, 0);
        assert!(sequence_size(&[0, 4], 4, Coding::Huffman).is_err());
        // a dominant cluster: far below Huffman's one bit per index
        let skewed: Vec<u32> = (0..10_000).map(|i| u32::from(i % 100 == 0)).collect();
        let h = sequence_size(&skewed, 2, Coding::Huffman).unwrap();
        let c = sequence_size(&skewed, 2, Coding::Context).unwrap();
        assert_eq!(h.average_codeword_length, 1.0);
        assert!(
            c.average_codeword_length < 0.1,
            "{}",
            c.average_codeword_length
        );
    }

    #[test]
    fn context_needs_one_stream_size_per_codebook() {
        let mut input = pruned_network(Coding::Context);
        assert!(compressed_size(&input).is_err());
        input.context = vec![ContextBits::default(); 3];
        input.context[1] = ContextBits {
            index_bits: 64,
            position_bits: 32,
        };
        let c = compressed_size(&input).unwrap();
        // pruned_network's gap fields (24 bits, 2304 table bits) stay, as
        // if its pruned tensors were kept in float32
        assert_eq!(
            (c.index_bits, c.position_bits, c.code_table_bits),
            (64, 56, 0)
        );
        let mut huffman = pruned_network(Coding::Huffman);
        huffman.context = input.context.clone();
        assert!(compressed_size(&huffman).is_err());
    }

    proptest! {
        #[test]
        fn huffman_indices_never_cost_more_than_fixed(
            codebooks in prop::collection::vec(prop::collection::vec(1u64..10_000, 1..200), 1..5),
        ) {
            let input = |coding| SizeInput {
                codebooks: codebooks.clone(),
                coding,
                pruned: vec![],
                unquantized_floats: 0,
                params: codebooks.iter().flatten().sum(),
                context: Vec::new(),
            };
            let f = compressed_size(&input(Coding::Fixed)).unwrap();
            let h = compressed_size(&input(Coding::Huffman)).unwrap();
            prop_assert!(h.index_bits <= f.index_bits);
            prop_assert!(h.average_codeword_length >= h.entropy - 1e-9);
            prop_assert!(h.average_codeword_length < h.entropy + 1.0 + 1e-9);
            prop_assert_eq!(h.total_bits - h.code_table_bits - h.index_bits, f.total_bits - f.index_bits);
        }
    }
}
