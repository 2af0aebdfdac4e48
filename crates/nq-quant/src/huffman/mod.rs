//! Entropy coding of cluster indices: canonical Huffman and fixed-length
//! codes (paper.md section 6).
//!
//! - [`HuffmanCode`]: code lengths by Huffman's algorithm (Huffman 1952, "A
//!   method for the construction of minimum-redundancy codes"), computed
//!   with two queues on the sorted counts (van Leeuwen 1976) and
//!   deterministic tie-breaking; codewords assigned canonically by (length,
//!   symbol) (Schwartz and Kallick 1964; DEFLATE, RFC 1951 section 3.2.2),
//!   so that the lengths alone store the code. Its average length `L`
//!   satisfies `H <= L < H + 1`, `H` the entropy of the counts (Cover and
//!   Thomas, *Elements of Information Theory*, theorem 5.4.1).
//!   Decoding looks the first [`TABLE_BITS`] bits up in a table and decodes
//!   longer codewords canonically, one length at a time.
//! - [`FixedCode`]: `ceil(log2 k)` bits per symbol.
//! - [`Code`] and [`Coding`]: either one, chosen by name (`"fixed"`,
//!   `"huffman"`).
//! - [`BitWriter`] and [`BitReader`]: the bit streams, MSB first.
//!
//! Symbols are `u32` indices into an alphabet `0..k`. Decoding returns a
//! [`QuantError`](crate::QuantError) for every malformed input (truncated
//! stream, unassigned codeword, value outside the alphabet), never panics,
//! and reserves memory in proportion to its input.

mod bits;
mod canonical;
mod code;
mod fixed;

pub use bits::{BitReader, BitWriter, Bits};
pub use canonical::{HuffmanCode, MAX_CODE_LEN, SOLE_SYMBOL_MARK, TABLE_BITS};
pub use code::{average_length, Code, Coding};
pub use fixed::{fixed_width, FixedCode};

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::quantization::entropy;

    /// An alphabet of 1..=300 symbols and a stream over it whose symbols
    /// follow a random, often skewed, distribution; some symbols absent.
    fn alphabet_and_stream() -> impl Strategy<Value = (usize, Vec<u32>)> {
        (1usize..300, 0usize..2000, any::<u64>()).prop_map(|(k, n, seed)| {
            // weights 2^-(random 0..16) on a random subset of the alphabet
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let weights: Vec<u64> = (0..k)
                .map(|_| {
                    if next() % 4 == 0 {
                        0
                    } else {
                        1 << (next() % 16)
                    }
                })
                .collect();
            let total: u64 = weights.iter().sum();
            let stream = if total == 0 {
                Vec::new()
            } else {
                (0..n)
                    .map(|_| {
                        let mut x = next() % total;
                        let mut s = 0;
                        while x >= weights[s] {
                            x -= weights[s];
                            s += 1;
                        }
                        s as u32
                    })
                    .collect()
            };
            (k, stream)
        })
    }

    fn counts_of(k: usize, stream: &[u32]) -> Vec<u64> {
        let mut counts = vec![0u64; k];
        for &s in stream {
            counts[s as usize] += 1;
        }
        counts
    }

    fn kraft_units(lengths: &[u8]) -> u128 {
        lengths
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 1u128 << (64 - l))
            .sum()
    }

    proptest! {
        #[test]
        fn huffman_round_trip((k, stream) in alphabet_and_stream()) {
            let counts = counts_of(k, &stream);
            let code = HuffmanCode::from_counts(&counts).unwrap();
            let bits = code.encode(&stream).unwrap();
            let expected: u64 = counts.iter().zip(code.lengths()).map(|(&c, &l)| c * u64::from(l)).sum();
            prop_assert_eq!(bits.bits, expected);
            prop_assert_eq!(bits.bytes.len() as u64, bits.bits.div_ceil(8));
            prop_assert_eq!(code.decode(&bits.bytes, stream.len()).unwrap(), stream.clone());
            // the code is stored by its length table
            let again = HuffmanCode::from_length_table(&code.length_table()).unwrap();
            prop_assert_eq!(again.encode(&stream).unwrap(), bits);
        }

        #[test]
        fn fixed_round_trip((k, stream) in alphabet_and_stream()) {
            let code = Code::new(Coding::Fixed, &vec![0; k]).unwrap();
            let bits = code.encode(&stream).unwrap();
            prop_assert_eq!(bits.bits, stream.len() as u64 * u64::from(fixed_width(k as u64)));
            prop_assert_eq!(code.decode(&bits.bytes, stream.len()).unwrap(), stream);
        }

        /// `H <= L < H + 1`, with an absolute tolerance of 1e-9 bits on both
        /// sides for the rounding of `entropy` and of the mean (both sums of
        /// at most 300 terms in f64, relative error ~1e-14).
        #[test]
        fn huffman_length_within_entropy_bounds(counts in prop::collection::vec(0u64..1_000_000, 1..300)) {
            let code = HuffmanCode::from_counts(&counts).unwrap();
            let l = average_length(&counts, code.lengths());
            let h = entropy(&counts);
            prop_assert!(l >= h - 1e-9, "L = {} < H = {}", l, h);
            prop_assert!(l < h + 1.0 + 1e-9, "L = {} >= H + 1 = {}", l, h + 1.0);
        }

        #[test]
        fn huffman_is_complete_and_no_worse_than_fixed(counts in prop::collection::vec(0u64..1_000_000, 1..300)) {
            let code = HuffmanCode::from_counts(&counts).unwrap();
            let present = counts.iter().filter(|&&c| c > 0).count();
            prop_assert_eq!(code.present_symbols(), present);
            if present >= 2 {
                prop_assert_eq!(kraft_units(code.lengths()), 1u128 << 64);
            } else {
                prop_assert!(code.lengths().iter().all(|&l| l == 0));
            }
            let huffman = Code::Huffman(code).encoded_bits(&counts).unwrap();
            let width = u128::from(fixed_width(present.max(1) as u64));
            let n: u128 = counts.iter().map(|&c| u128::from(c)).sum();
            prop_assert!(huffman <= n * width, "{} > {}", huffman, n * width);
        }

        /// Decoding arbitrary bytes never panics and never returns more
        /// than asked for.
        #[test]
        fn decoding_garbage_is_an_error_or_a_stream(
            lengths in prop::collection::vec(0u8..16, 1..12),
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            n in 0usize..600,
        ) {
            if let Ok(code) = HuffmanCode::from_lengths(&lengths) {
                if let Ok(out) = code.decode(&bytes, n) {
                    prop_assert_eq!(out.len(), n);
                    prop_assert!(out.iter().all(|&s| lengths[s as usize] > 0));
                }
            }
        }

        /// The same for complete codes built from counts.
        #[test]
        fn decoding_garbage_with_complete_codes(
            counts in prop::collection::vec(0u64..1000, 1..300),
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            n in 0usize..600,
        ) {
            let code = HuffmanCode::from_counts(&counts).unwrap();
            if let Ok(out) = code.decode(&bytes, n) {
                prop_assert_eq!(out.len(), n);
                prop_assert!(out.iter().all(|&s| counts[s as usize] > 0));
            }
        }
    }
}
