//! Positions of the surviving weights of a pruned tensor as fixed-width gap
//! fields (Han, Mao and Dally 2016, "Deep Compression", section 3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ensure_param, QuantError, Result};
use crate::huffman::HuffmanCode;

/// The kind of a weight tensor, which sets the width of its gap fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorKind {
    /// Convolution kernel: 8-bit gap fields.
    Conv,
    /// Fully connected weight matrix: 5-bit gap fields.
    Linear,
}

impl TensorKind {
    /// Both kinds, in the order their position streams are accounted.
    pub const ALL: [TensorKind; 2] = [TensorKind::Conv, TensorKind::Linear];

    /// Width of a gap field: 8 bits for conv, 5 for linear (Deep
    /// Compression).
    pub fn field_bits(self) -> u32 {
        match self {
            TensorKind::Conv => 8,
            TensorKind::Linear => 5,
        }
    }

    /// The name used in files: `"conv"` or `"linear"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TensorKind::Conv => "conv",
            TensorKind::Linear => "linear",
        }
    }
}

impl fmt::Display for TensorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TensorKind {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "conv" => Ok(TensorKind::Conv),
            "linear" => Ok(TensorKind::Linear),
            _ => Err(QuantError::InvalidParam {
                name: "kind",
                reason: format!("expected \"conv\" or \"linear\", got {s:?}"),
            }),
        }
    }
}

/// A pruned weight tensor as far as its size goes: its kind, its number of
/// elements, and the positions of its surviving weights in flattened
/// (row-major) order, strictly increasing. Unpruned tensors are not
/// described here: they store no positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedTensor {
    /// Conv or linear: sets the field width.
    pub kind: TensorKind,
    /// Total number of elements, pruned or not.
    pub len: u64,
    /// Positions of the surviving weights, strictly increasing, `< len`.
    pub survivors: Vec<u64>,
}

/// Largest gap one field holds, `2^field_bits - 1`.
fn max_gap(field_bits: u32) -> Result<u64> {
    ensure_param(
        (1..=16).contains(&field_bits),
        "field_bits",
        format!("{field_bits}; gap fields are 1 to 16 bits wide"),
    )?;
    Ok((1u64 << field_bits) - 1)
}

/// Checks that `survivors` is strictly increasing and below `len`.
pub fn check_survivors(survivors: &[u64], len: u64) -> Result<()> {
    if let Some(i) = (1..survivors.len()).find(|&i| survivors[i] <= survivors[i - 1]) {
        return Err(QuantError::Inconsistent(format!(
            "survivor positions must be strictly increasing: position {} after {} (entry {i})",
            survivors[i],
            survivors[i - 1]
        )));
    }
    if let Some(&last) = survivors.last() {
        if last >= len {
            return Err(QuantError::Inconsistent(format!(
                "survivor position {last} is outside a tensor of {len} elements"
            )));
        }
    }
    Ok(())
}

/// Calls `f(fillers, remainder)` for each survivor: its gap `g` from the
/// previous survivor (from position -1 for the first) is written as
/// `fillers = (g - 1) / max` zero fields then the field `g - fillers * max`.
fn for_each_gap(survivors: &[u64], max: u64, mut f: impl FnMut(u64, u32)) {
    let mut next = 0u64; // previous survivor + 1
    for &p in survivors {
        let gap = p - next + 1;
        let fillers = (gap - 1) / max;
        f(fillers, (gap - fillers * max) as u32);
        next = p + 1;
    }
}

/// The gap fields of a pruned tensor: for each survivor, its gap `g >= 1`
/// from the previous survivor (the first counts from position -1), written
/// in `field_bits`-bit fields of maximum `M = 2^field_bits - 1`.
///
/// A field `v` in `1..=M` places the next survivor `v` positions after the
/// previous one; the field 0 is a filler that advances `M` positions and
/// places nothing. So a gap `g` is `floor((g - 1) / M)` fillers then the
/// field `g - fillers * M`, in `1..=M`. With 5 bits (`M = 31`): gap 70 is
/// `[0, 0, 8]`, gap 31 is `[31]`, gap 32 is `[0, 1]`, gap 62 is `[0, 31]`.
/// No filler follows the last survivor.
///
/// Fails unless `survivors` is strictly increasing and below `len`, and
/// `field_bits` in `1..=16`.
pub fn gap_fields(survivors: &[u64], len: u64, field_bits: u32) -> Result<Vec<u32>> {
    let max = max_gap(field_bits)?;
    check_survivors(survivors, len)?;
    let mut fields = Vec::with_capacity(survivors.len());
    for_each_gap(survivors, max, |fillers, field| {
        fields.extend(std::iter::repeat_n(0, fillers as usize));
        fields.push(field);
    });
    Ok(fields)
}

/// The inverse of [`gap_fields`]: survivor positions from the fields.
///
/// Fails on a field above `2^field_bits - 1`, a position at or past `len`,
/// or a stream that ends with a filler (which [`gap_fields`] never writes).
pub fn positions_from_fields(fields: &[u32], field_bits: u32, len: u64) -> Result<Vec<u64>> {
    let max = max_gap(field_bits)?;
    let mut positions = Vec::new();
    let mut next = 0u64; // previous survivor + 1, plus the fillers since
    for (i, &v) in fields.iter().enumerate() {
        let v = u64::from(v);
        if v > max {
            return Err(QuantError::Inconsistent(format!(
                "gap field {i} is {v}, above the {field_bits}-bit maximum {max}"
            )));
        }
        // after a filler, the next survivor is at `p` or later
        let p = match next.checked_add(if v == 0 { max } else { v - 1 }) {
            Some(p) if p < len => p,
            _ => {
                return Err(QuantError::Inconsistent(format!(
                    "gap field {i} leads past the end of a tensor of {len} elements"
                )))
            }
        };
        if v == 0 {
            next = p;
        } else {
            positions.push(p);
            next = p + 1;
        }
    }
    if fields.last() == Some(&0) {
        return Err(QuantError::Inconsistent(
            "the gap fields end with a filler".into(),
        ));
    }
    Ok(positions)
}

/// Number of occurrences of each field value `0..2^field_bits` in the gap
/// fields of `tensors` (without materialising the fields).
pub fn field_counts<'a>(
    tensors: impl IntoIterator<Item = &'a PrunedTensor>,
    field_bits: u32,
) -> Result<Vec<u64>> {
    let max = max_gap(field_bits)?;
    let mut counts = vec![0u64; 1 << field_bits];
    for (t, tensor) in tensors.into_iter().enumerate() {
        check_survivors(&tensor.survivors, tensor.len)
            .map_err(|e| QuantError::Inconsistent(format!("pruned tensor {t}: {e}")))?;
        for_each_gap(&tensor.survivors, max, |fillers, field| {
            counts[0] += fillers;
            counts[field as usize] += 1;
        });
    }
    Ok(counts)
}

/// The Huffman code of the gap fields of all the tensors of `kind` in
/// `tensors` (one code per kind, over the alphabet `0..2^field_bits`), or
/// `None` when no tensor is of that kind. A file writer codes the fields
/// with it; [`compressed_size`](super::compressed_size) counts its bits.
pub fn position_code(tensors: &[PrunedTensor], kind: TensorKind) -> Result<Option<HuffmanCode>> {
    if !tensors.iter().any(|t| t.kind == kind) {
        return Ok(None);
    }
    let counts = field_counts(tensors.iter().filter(|t| t.kind == kind), kind.field_bits())?;
    HuffmanCode::from_counts(&counts).map(Some)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn single_gaps_with_five_bits() {
        // each case: one survivor at gap g from the previous one at 9
        for (gap, fields) in [
            (70u64, vec![0, 0, 8]),
            (31, vec![31]),
            (32, vec![0, 1]),
            (62, vec![0, 31]),
            (1, vec![1]),
        ] {
            let got = gap_fields(&[9, 9 + gap], 200, 5).unwrap();
            // the first survivor, 9, is gap 10 from position -1
            assert_eq!(got[0], 10);
            assert_eq!(got[1..], fields[..], "gap {gap}");
        }
    }

    #[test]
    fn linear_tensor_by_hand() {
        // survivors 2, 40, 41, 99 of 100: gaps 3, 38, 1, 58 (M = 31):
        // 3 -> [3]; 38 -> 1 filler, 38 - 31 = 7; 1 -> [1]; 58 -> 1 filler, 27.
        let fields = gap_fields(&[2, 40, 41, 99], 100, 5).unwrap();
        assert_eq!(fields, vec![3, 0, 7, 1, 0, 27]);
        assert_eq!(
            positions_from_fields(&fields, 5, 100).unwrap(),
            vec![2, 40, 41, 99]
        );
        let t = PrunedTensor {
            kind: TensorKind::Linear,
            len: 100,
            survivors: vec![2, 40, 41, 99],
        };
        let counts = field_counts([&t], 5).unwrap();
        assert_eq!(
            (counts[0], counts[1], counts[3], counts[7], counts[27]),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(counts.iter().sum::<u64>(), 6);
    }

    #[test]
    fn edge_positions() {
        assert_eq!(gap_fields(&[], 10, 5).unwrap(), Vec::<u32>::new());
        assert_eq!(gap_fields(&[0], 1, 5).unwrap(), vec![1]);
        // position 31 is gap 32 from -1; position 30 is gap 31
        assert_eq!(gap_fields(&[31], 32, 5).unwrap(), vec![0, 1]);
        assert_eq!(gap_fields(&[30], 31, 5).unwrap(), vec![31]);
        // 1-bit fields: M = 1, gap 3 = two fillers and a 1
        assert_eq!(gap_fields(&[2], 3, 1).unwrap(), vec![0, 0, 1]);
        assert_eq!(positions_from_fields(&[0, 0, 1], 1, 3).unwrap(), vec![2]);
    }

    #[test]
    fn invalid_positions_and_fields() {
        assert!(gap_fields(&[3, 3], 10, 5).is_err());
        assert!(gap_fields(&[4, 3], 10, 5).is_err());
        assert!(gap_fields(&[10], 10, 5).is_err());
        assert!(gap_fields(&[1], 10, 0).is_err());
        assert!(gap_fields(&[1], 10, 17).is_err());
        assert!(positions_from_fields(&[32], 5, 100).is_err());
        assert!(positions_from_fields(&[5, 0], 5, 100).is_err());
        assert!(positions_from_fields(&[11], 5, 10).is_err());
        assert!(positions_from_fields(&[0, 1], 5, 31).is_err());
        assert_eq!(positions_from_fields(&[0, 1], 5, 32).unwrap(), vec![31]);
    }

    #[test]
    fn kinds() {
        assert_eq!("conv".parse::<TensorKind>().unwrap(), TensorKind::Conv);
        assert_eq!("linear".parse::<TensorKind>().unwrap(), TensorKind::Linear);
        assert!("fc".parse::<TensorKind>().is_err());
        assert_eq!(TensorKind::Linear.to_string(), "linear");
        assert_eq!(
            (
                TensorKind::Conv.field_bits(),
                TensorKind::Linear.field_bits()
            ),
            (8, 5)
        );
        let t = [PrunedTensor {
            kind: TensorKind::Conv,
            len: 4,
            survivors: vec![],
        }];
        assert!(position_code(&t, TensorKind::Linear).unwrap().is_none());
        let code = position_code(&t, TensorKind::Conv).unwrap().unwrap();
        assert_eq!((code.alphabet_size(), code.present_symbols()), (256, 0));
    }

    /// A tensor length and a sorted random subset of its positions.
    fn tensor() -> impl Strategy<Value = (u64, Vec<u64>, u32)> {
        (1u64..3000, 0.0f64..1.0, any::<u64>(), 1u32..=8).prop_map(|(len, keep, seed, bits)| {
            let mut state = seed | 1;
            let survivors = (0..len)
                .filter(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 11) as f64 / (1u64 << 53) as f64) < keep * keep
                })
                .collect();
            (len, survivors, bits)
        })
    }

    proptest! {
        #[test]
        fn positions_round_trip((len, survivors, bits) in tensor()) {
            let fields = gap_fields(&survivors, len, bits).unwrap();
            prop_assert!(fields.iter().all(|&f| u64::from(f) < 1 << bits));
            prop_assert_eq!(positions_from_fields(&fields, bits, len).unwrap(), survivors.clone());
            let t = PrunedTensor { kind: TensorKind::Linear, len, survivors };
            let counts = field_counts([&t], bits).unwrap();
            for v in 0..1u32 << bits {
                prop_assert_eq!(counts[v as usize], fields.iter().filter(|&&f| f == v).count() as u64);
            }
        }
    }
}
