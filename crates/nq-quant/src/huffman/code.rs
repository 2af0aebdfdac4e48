//! The choice of code (`coding = "fixed" | "huffman" | "context"`) and one
//! type for the two prefix codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::bits::{BitReader, BitWriter, Bits};
use super::canonical::HuffmanCode;
use super::fixed::FixedCode;
use crate::error::{QuantError, Result};

/// How cluster indices are coded (paper.md section 6). Written `"fixed"`,
/// `"huffman"` or `"context"` in configuration files and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coding {
    /// `ceil(log2 k)` bits per index.
    Fixed,
    /// A Huffman code built from the cluster sizes.
    Huffman,
    /// Adaptive context coding of the indices and of the survivor positions
    /// ([`crate::context`]): no code table, and below one bit per weight
    /// where one cluster dominates. Its length depends on the order of the
    /// symbols, not only on their counts, so there is no [`Code`] for it.
    Context,
}

impl Coding {
    /// The name used in files: `"fixed"`, `"huffman"` or `"context"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::Fixed => "fixed",
            Coding::Huffman => "huffman",
            Coding::Context => "context",
        }
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Coding {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fixed" => Ok(Coding::Fixed),
            "huffman" => Ok(Coding::Huffman),
            "context" => Ok(Coding::Context),
            _ => Err(QuantError::InvalidParam {
                name: "coding",
                reason: format!("expected \"fixed\", \"huffman\" or \"context\", got {s:?}"),
            }),
        }
    }
}

/// A fixed-length or a Huffman code, used alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// `ceil(log2 k)` bits per symbol.
    Fixed(FixedCode),
    /// Canonical Huffman code.
    Huffman(HuffmanCode),
}

impl Code {
    /// The code of `coding` for an alphabet of `counts.len()` symbols with
    /// these counts (the fixed-length code ignores the counts). Fails for
    /// [`Coding::Context`], which is no prefix code.
    pub fn new(coding: Coding, counts: &[u64]) -> Result<Self> {
        match coding {
            Coding::Fixed => Ok(Code::Fixed(FixedCode::new(counts.len())?)),
            Coding::Huffman => Ok(Code::Huffman(HuffmanCode::from_counts(counts)?)),
            Coding::Context => Err(QuantError::InvalidParam {
                name: "coding",
                reason: "context coding has no code of counts: its length depends on the \
                         symbols' order"
                    .into(),
            }),
        }
    }

    /// Which kind of code this is.
    pub fn coding(&self) -> Coding {
        match self {
            Code::Fixed(_) => Coding::Fixed,
            Code::Huffman(_) => Coding::Huffman,
        }
    }

    /// Size of the alphabet.
    pub fn alphabet_size(&self) -> usize {
        match self {
            Code::Fixed(c) => c.alphabet_size(),
            Code::Huffman(c) => c.alphabet_size(),
        }
    }

    /// Code length of every symbol, in bits (0 for a symbol absent from a
    /// Huffman code and for the symbol of a one-symbol code).
    pub fn lengths(&self) -> Vec<u8> {
        match self {
            Code::Fixed(c) => vec![c.width(); c.alphabet_size()],
            Code::Huffman(c) => c.lengths().to_vec(),
        }
    }

    /// Bits needed for symbols with these counts: `sum_s counts[s] *
    /// length(s)`. Fails if `counts` is longer than the alphabet or counts
    /// a symbol absent from the code.
    pub fn encoded_bits(&self, counts: &[u64]) -> Result<u128> {
        if counts.len() > self.alphabet_size() {
            return Err(QuantError::Inconsistent(format!(
                "{} counts for an alphabet of {} symbols",
                counts.len(),
                self.alphabet_size()
            )));
        }
        let mut total = 0u128;
        for (s, &c) in counts.iter().enumerate() {
            let len = match self {
                Code::Fixed(f) => Some(f.width()),
                Code::Huffman(h) => h.codeword(s as u32).map(|(_, l)| l),
            };
            match len {
                Some(l) => total += u128::from(c) * u128::from(l),
                None if c == 0 => {}
                None => {
                    return Err(QuantError::Inconsistent(format!(
                        "symbol {s} is counted {c} times but absent from the code"
                    )))
                }
            }
        }
        Ok(total)
    }

    /// Encodes `symbols` into a new stream.
    pub fn encode(&self, symbols: &[u32]) -> Result<Bits> {
        match self {
            Code::Fixed(c) => c.encode(symbols),
            Code::Huffman(c) => c.encode(symbols),
        }
    }

    /// Appends the codewords of `symbols` to `w`.
    pub fn encode_into(&self, symbols: &[u32], w: &mut BitWriter) -> Result<()> {
        match self {
            Code::Fixed(c) => c.encode_into(symbols, w),
            Code::Huffman(c) => c.encode_into(symbols, w),
        }
    }

    /// Decodes `n` symbols from the start of `bytes`.
    pub fn decode(&self, bytes: &[u8], n: usize) -> Result<Vec<u32>> {
        match self {
            Code::Fixed(c) => c.decode(bytes, n),
            Code::Huffman(c) => c.decode(bytes, n),
        }
    }

    /// Decodes `n` symbols from `r`.
    pub fn decode_from(&self, r: &mut BitReader<'_>, n: usize) -> Result<Vec<u32>> {
        match self {
            Code::Fixed(c) => c.decode_from(r, n),
            Code::Huffman(c) => c.decode_from(r, n),
        }
    }
}

/// Average code length in bits per symbol, `sum_s counts[s] * lengths[s] /
/// sum_s counts[s]` (0 when there is no symbol).
///
/// # Panics
/// If `counts` and `lengths` differ in length.
pub fn average_length(counts: &[u64], lengths: &[u8]) -> f64 {
    assert_eq!(counts.len(), lengths.len(), "one length per count");
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if total == 0 {
        return 0.0;
    }
    let bits: u128 = counts
        .iter()
        .zip(lengths)
        .map(|(&c, &l)| u128::from(c) * u128::from(l))
        .sum();
    bits as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coding_names() {
        assert_eq!("fixed".parse::<Coding>().unwrap(), Coding::Fixed);
        assert_eq!("huffman".parse::<Coding>().unwrap(), Coding::Huffman);
        assert!("Huffman".parse::<Coding>().is_err());
        assert_eq!("context".parse::<Coding>().unwrap(), Coding::Context);
        assert!(Code::new(Coding::Context, &[1, 2]).is_err());
        assert_eq!(Coding::Huffman.to_string(), "huffman");
        assert_eq!(Coding::Fixed.to_string(), "fixed");
    }

    #[test]
    fn both_codes_alike() {
        let counts = [5, 2, 1, 1];
        let symbols = [0, 1, 2, 3, 0, 0];
        let h = Code::new(Coding::Huffman, &counts).unwrap();
        let f = Code::new(Coding::Fixed, &counts).unwrap();
        assert_eq!(h.lengths(), vec![1, 2, 3, 3]);
        assert_eq!(f.lengths(), vec![2, 2, 2, 2]);
        // 5*1 + 2*2 + 1*3 + 1*3 = 15 bits; fixed 9 * 2 = 18
        assert_eq!(h.encoded_bits(&counts).unwrap(), 15);
        assert_eq!(f.encoded_bits(&counts).unwrap(), 18);
        assert_eq!(average_length(&counts, &h.lengths()), 15.0 / 9.0);
        assert_eq!(average_length(&[0, 0], &[1, 2]), 0.0);
        for c in [&h, &f] {
            let bits = c.encode(&symbols).unwrap();
            assert_eq!(c.decode(&bits.bytes, symbols.len()).unwrap(), symbols);
        }
        assert_eq!(h.coding(), Coding::Huffman);
        assert_eq!(f.alphabet_size(), 4);
        let absent = Code::new(Coding::Huffman, &[1, 0, 1]).unwrap();
        assert!(absent.encoded_bits(&[1, 1, 1]).is_err());
        assert!(absent.encoded_bits(&[1, 0, 1, 0]).is_err());
    }
}
