//! Canonical Huffman codes: lengths from counts, codewords from lengths, and
//! a table-driven decoder.

use std::fmt;

use super::bits::{BitReader, BitWriter, Bits};
use crate::error::{ensure_param, QuantError, Result};

/// The longest codeword a [`HuffmanCode`] accepts, in bits.
pub const MAX_CODE_LEN: u8 = 64;

/// The decoder resolves codewords of up to this many bits with one table
/// lookup (a table of `2^TABLE_BITS` entries); longer ones are decoded
/// canonically, one length at a time.
pub const TABLE_BITS: u32 = 11;

/// In a [`HuffmanCode::length_table`], the byte that marks the only symbol
/// of a one-symbol code (whose codeword is empty, so its length, 0, cannot
/// tell it from the absent symbols).
pub const SOLE_SYMBOL_MARK: u8 = 0xFF;

/// A canonical Huffman code over the alphabet `0..alphabet_size()`.
///
/// The code is determined by its lengths (`0` = symbol absent): the present
/// symbols, ordered by (length, symbol), receive consecutive codewords, each
/// shifted left when the length grows (Schwartz and Kallick 1964; the
/// convention of DEFLATE, RFC 1951 section 3.2.2). So storing one length per
/// symbol stores the code.
///
/// **One symbol present.** Its length is 0: encoding emits no bits and
/// decoding `n` symbols returns it `n` times. Since the lengths are then all
/// 0, they no longer say which symbol it is: [`sole_symbol`](Self::sole_symbol)
/// keeps it, and a file must store it too, for instance with
/// [`length_table`](Self::length_table), which writes it as
/// [`SOLE_SYMBOL_MARK`].
///
/// **No symbol present.** Only the empty stream can be encoded or decoded.
#[derive(Clone)]
pub struct HuffmanCode {
    lengths: Vec<u8>,
    codes: Vec<u64>,
    sole: Option<u32>,
    present: usize,
    max_len: u8,
    decoder: Decoder,
}

/// Lookup table on the first `table_bits` bits plus the canonical tables of
/// the longer codewords.
#[derive(Clone, Default)]
struct Decoder {
    table_bits: u32,
    /// `len == 0`: no codeword of at most `table_bits` bits is a prefix.
    table: Vec<Entry>,
    /// Per length `l`: the first canonical codeword of length `l`, how many
    /// codewords have length `l`, and where they start in `sorted`.
    first: Vec<u64>,
    count: Vec<u64>,
    offset: Vec<usize>,
    /// Present symbols ordered by (length, symbol).
    sorted: Vec<u32>,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    symbol: u32,
    len: u8,
}

impl HuffmanCode {
    /// The Huffman code of the symbol counts (`counts[s]` for symbol `s`;
    /// 0 = absent, length 0).
    ///
    /// Lengths come from Huffman's construction (Huffman 1952) with two
    /// queues (van Leeuwen 1976): leaves sorted by (count, symbol), merged
    /// nodes in creation order; of two equal weights the leaf is taken
    /// first. So the code is a deterministic function of `counts`.
    ///
    /// Fails if the alphabet has more than `u32::MAX` symbols or a codeword
    /// would exceed [`MAX_CODE_LEN`] bits (which needs a total count above
    /// `10^13` with Fibonacci-like counts).
    pub fn from_counts(counts: &[u64]) -> Result<Self> {
        check_alphabet(counts.len(), "counts")?;
        let lengths = huffman_lengths(counts)?;
        let present: Vec<usize> = (0..counts.len()).filter(|&s| counts[s] > 0).collect();
        let sole = if present.len() == 1 {
            Some(present[0] as u32)
        } else {
            None
        };
        Self::build(lengths, sole)
    }

    /// The canonical code with these lengths (0 = absent).
    ///
    /// Fails if a length exceeds [`MAX_CODE_LEN`] or the lengths
    /// over-subscribe the code space (Kraft sum `sum 2^-l > 1`). Incomplete
    /// codes (Kraft sum below 1) are accepted; decoding fails on the
    /// codewords they leave unassigned. All lengths 0 gives the code with no
    /// symbol: a one-symbol code needs [`single`](Self::single).
    pub fn from_lengths(lengths: &[u8]) -> Result<Self> {
        check_alphabet(lengths.len(), "lengths")?;
        if let Some(s) = lengths.iter().position(|&l| l > MAX_CODE_LEN) {
            return Err(QuantError::InvalidParam {
                name: "lengths",
                reason: format!("symbol {s} has length {}, above {MAX_CODE_LEN}", lengths[s]),
            });
        }
        Self::build(lengths.to_vec(), None)
    }

    /// The one-symbol code: `symbol` of `0..alphabet_size`, codeword empty.
    pub fn single(symbol: u32, alphabet_size: usize) -> Result<Self> {
        check_alphabet(alphabet_size, "alphabet_size")?;
        ensure_param(
            (symbol as usize) < alphabet_size,
            "symbol",
            format!("{symbol} is outside the alphabet of {alphabet_size} symbols"),
        )?;
        Self::build(vec![0; alphabet_size], Some(symbol))
    }

    /// One byte per symbol: its length, or [`SOLE_SYMBOL_MARK`] for the
    /// symbol of a one-symbol code. [`from_length_table`](Self::from_length_table)
    /// rebuilds the code from it.
    pub fn length_table(&self) -> Vec<u8> {
        let mut table = self.lengths.clone();
        if let Some(s) = self.sole {
            table[s as usize] = SOLE_SYMBOL_MARK;
        }
        table
    }

    /// The inverse of [`length_table`](Self::length_table).
    pub fn from_length_table(table: &[u8]) -> Result<Self> {
        let marks = table.iter().filter(|&&l| l == SOLE_SYMBOL_MARK).count();
        match marks {
            0 => Self::from_lengths(table),
            1 if table.iter().all(|&l| l == 0 || l == SOLE_SYMBOL_MARK) => {
                let s = table
                    .iter()
                    .position(|&l| l == SOLE_SYMBOL_MARK)
                    .expect("one mark");
                Self::single(s as u32, table.len())
            }
            _ => Err(QuantError::InvalidParam {
                name: "length_table",
                reason: format!(
                    "{SOLE_SYMBOL_MARK:#x} marks the only symbol of a code, but the table \
                     has {marks} mark(s) and other non-zero lengths"
                ),
            }),
        }
    }

    fn build(lengths: Vec<u8>, sole: Option<u32>) -> Result<Self> {
        // Kraft sum in units of 2^-64.
        let kraft: u128 = lengths
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 1u128 << (64 - l))
            .sum();
        ensure_param(
            kraft <= 1u128 << 64,
            "lengths",
            format!(
                "over-subscribed: Kraft sum {} > 1",
                kraft as f64 / 2f64.powi(64)
            ),
        )?;
        let max_len = lengths.iter().copied().max().unwrap_or(0);
        let mut sorted: Vec<u32> = (0..lengths.len() as u32)
            .filter(|&s| lengths[s as usize] > 0)
            .collect();
        sorted.sort_by_key(|&s| (lengths[s as usize], s));
        let present = if sole.is_some() { 1 } else { sorted.len() };

        let n_len = usize::from(max_len) + 1;
        let mut first = vec![0u64; n_len];
        let mut count = vec![0u64; n_len];
        let mut offset = vec![0usize; n_len];
        let mut codes = vec![0u64; lengths.len()];
        let mut code: u128 = 0;
        let mut prev_len = 0u8;
        for (i, &s) in sorted.iter().enumerate() {
            let l = lengths[s as usize];
            if l != prev_len {
                code <<= l - prev_len;
                prev_len = l;
                first[usize::from(l)] = code as u64;
                offset[usize::from(l)] = i;
            }
            count[usize::from(l)] += 1;
            codes[s as usize] = code as u64;
            code += 1;
        }

        let table_bits = TABLE_BITS.min(u32::from(max_len));
        let mut table = Vec::new();
        if table_bits > 0 {
            table = vec![Entry::default(); 1 << table_bits];
            for &s in &sorted {
                let l = u32::from(lengths[s as usize]);
                if l > table_bits {
                    break;
                }
                let start = (codes[s as usize] << (table_bits - l)) as usize;
                let entry = Entry {
                    symbol: s,
                    len: l as u8,
                };
                table[start..start + (1 << (table_bits - l))].fill(entry);
            }
        }
        let decoder = Decoder {
            table_bits,
            table,
            first,
            count,
            offset,
            sorted,
        };
        Ok(Self {
            lengths,
            codes,
            sole,
            present,
            max_len,
            decoder,
        })
    }

    /// Code length of each symbol (0 = absent, and for the symbol of a
    /// one-symbol code).
    pub fn lengths(&self) -> &[u8] {
        &self.lengths
    }

    /// The codeword of `symbol` as (bits, length), its first bit being the
    /// most significant of the `length` low bits; `None` when absent.
    pub fn codeword(&self, symbol: u32) -> Option<(u64, u8)> {
        let s = symbol as usize;
        match self.lengths.get(s) {
            Some(&l) if l > 0 => Some((self.codes[s], l)),
            Some(_) if self.sole == Some(symbol) => Some((0, 0)),
            _ => None,
        }
    }

    /// Size of the alphabet, present or not.
    pub fn alphabet_size(&self) -> usize {
        self.lengths.len()
    }

    /// Number of symbols present.
    pub fn present_symbols(&self) -> usize {
        self.present
    }

    /// The symbol of a one-symbol code.
    pub fn sole_symbol(&self) -> Option<u32> {
        self.sole
    }

    /// The longest codeword, in bits.
    pub fn max_length(&self) -> u8 {
        self.max_len
    }

    /// Encodes `symbols` into a new stream.
    pub fn encode(&self, symbols: &[u32]) -> Result<Bits> {
        let mut w =
            BitWriter::with_capacity(symbols.len() as u64 * u64::from(self.max_len.min(16)));
        self.encode_into(symbols, &mut w)?;
        Ok(w.finish())
    }

    /// Appends the codewords of `symbols` to `w`. Fails, having written the
    /// symbols before it, at the first symbol outside the alphabet or absent
    /// from the code.
    pub fn encode_into(&self, symbols: &[u32], w: &mut BitWriter) -> Result<()> {
        if let Some(only) = self.sole {
            return match symbols.iter().position(|&s| s != only) {
                None => Ok(()),
                Some(i) => Err(self.bad_symbol(i, symbols[i])),
            };
        }
        for (i, &s) in symbols.iter().enumerate() {
            match self.lengths.get(s as usize) {
                Some(&l) if l > 0 => w.write(self.codes[s as usize], u32::from(l)),
                _ => return Err(self.bad_symbol(i, s)),
            }
        }
        Ok(())
    }

    fn bad_symbol(&self, i: usize, s: u32) -> QuantError {
        if s as usize >= self.lengths.len() {
            QuantError::Inconsistent(format!(
                "symbol {s} at position {i} is outside the alphabet of {} symbols",
                self.lengths.len()
            ))
        } else {
            QuantError::Inconsistent(format!(
                "symbol {s} at position {i} is absent from the code"
            ))
        }
    }

    /// Decodes `n` symbols from the start of `bytes`.
    pub fn decode(&self, bytes: &[u8], n: usize) -> Result<Vec<u32>> {
        self.decode_from(&mut BitReader::new(bytes), n)
    }

    /// Decodes `n` symbols from `r`. Fails on a truncated stream or a
    /// codeword the code does not assign. Memory is bounded by the input:
    /// at most one symbol per remaining bit is reserved, except for a
    /// one-symbol code, whose `n` symbols cost no bits (the allocation of
    /// `n` symbols is then tried and its failure reported as an error).
    pub fn decode_from(&self, r: &mut BitReader<'_>, n: usize) -> Result<Vec<u32>> {
        if let Some(only) = self.sole {
            return filled(only, n);
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.present == 0 {
            return Err(QuantError::Inconsistent(format!(
                "cannot decode {n} symbols with a code that has no symbol"
            )));
        }
        let cap = n.min(usize::try_from(r.remaining_bits()).unwrap_or(usize::MAX));
        let mut out = Vec::new();
        out.try_reserve_exact(cap)
            .map_err(|e| QuantError::Inconsistent(format!("{cap} symbols: {e}")))?;
        let d = &self.decoder;
        for _ in 0..n {
            r.refill();
            let e = d.table[r.peek(d.table_bits) as usize];
            if e.len > 0 {
                r.consume(u32::from(e.len))?;
                out.push(e.symbol);
            } else {
                out.push(self.decode_long(r)?);
            }
        }
        Ok(out)
    }

    /// A codeword longer than the table: canonical decoding, one length at a
    /// time, from the table's prefix on.
    #[cold]
    fn decode_long(&self, r: &mut BitReader<'_>) -> Result<u32> {
        let d = &self.decoder;
        let start = r.position();
        let mut code = r.peek(d.table_bits);
        r.consume(d.table_bits)?;
        for l in d.table_bits as usize + 1..=usize::from(self.max_len) {
            code = (code << 1) | u64::from(r.read_bit()?);
            if d.count[l] > 0 && code >= d.first[l] && code - d.first[l] < d.count[l] {
                return Ok(d.sorted[d.offset[l] + (code - d.first[l]) as usize]);
            }
        }
        Err(QuantError::Inconsistent(format!(
            "invalid codeword at bit {start}: no symbol of this (incomplete) code has it"
        )))
    }
}

/// `n` copies of `symbol`, reporting a failed allocation as an error.
pub(crate) fn filled(symbol: u32, n: usize) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|e| QuantError::Inconsistent(format!("{n} symbols: {e}")))?;
    out.resize(n, symbol);
    Ok(out)
}

fn check_alphabet(k: usize, name: &'static str) -> Result<()> {
    ensure_param(
        k as u64 <= u64::from(u32::MAX),
        name,
        format!("{k} symbols; symbols are u32, so at most {}", u32::MAX),
    )
}

impl PartialEq for HuffmanCode {
    fn eq(&self, other: &Self) -> bool {
        self.lengths == other.lengths && self.sole == other.sole
    }
}

impl Eq for HuffmanCode {}

impl fmt::Debug for HuffmanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuffmanCode")
            .field("lengths", &self.lengths)
            .field("sole", &self.sole)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

/// Huffman code lengths of `counts` by the two-queue construction; all 0
/// when fewer than two symbols are present.
fn huffman_lengths(counts: &[u64]) -> Result<Vec<u8>> {
    let mut lengths = vec![0u8; counts.len()];
    let mut leaves: Vec<(u64, u32)> = counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(s, &c)| (c, s as u32))
        .collect();
    let n = leaves.len();
    if n < 2 {
        return Ok(lengths);
    }
    leaves.sort_unstable();
    // Node ids: leaves 0..n, internal nodes n.. in creation order.
    let mut weight: Vec<u128> = Vec::with_capacity(n - 1);
    let mut parent = vec![0usize; 2 * n - 1];
    let (mut next_leaf, mut next_node) = (0usize, 0usize);
    let mut take = |weight: &Vec<u128>| -> (usize, u128) {
        let leaf_first = next_leaf < n
            && (next_node >= weight.len() || u128::from(leaves[next_leaf].0) <= weight[next_node]);
        if leaf_first {
            next_leaf += 1;
            (next_leaf - 1, u128::from(leaves[next_leaf - 1].0))
        } else {
            next_node += 1;
            (n + next_node - 1, weight[next_node - 1])
        }
    };
    for id in n..2 * n - 1 {
        let (a, wa) = take(&weight);
        let (b, wb) = take(&weight);
        parent[a] = id;
        parent[b] = id;
        weight.push(wa + wb);
    }
    // Parents are created after their children, so one backward pass gives
    // every depth; the root is the last node.
    let mut depth = vec![0u32; 2 * n - 1];
    for id in (0..2 * n - 2).rev() {
        depth[id] = depth[parent[id]] + 1;
    }
    for (leaf, &(_, s)) in leaves.iter().enumerate() {
        let d = depth[leaf];
        if d > u32::from(MAX_CODE_LEN) {
            return Err(QuantError::InvalidParam {
                name: "counts",
                reason: format!(
                    "the Huffman code of symbol {s} would be {d} bits long, above {MAX_CODE_LEN}"
                ),
            });
        }
        lengths[s as usize] = d as u8;
    }
    Ok(lengths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codeword_strings(c: &HuffmanCode) -> Vec<String> {
        (0..c.alphabet_size() as u32)
            .map(|s| match c.codeword(s) {
                Some((v, l)) if l > 0 => format!("{v:0width$b}", width = usize::from(l)),
                Some(_) => "(empty)".into(),
                None => "-".into(),
            })
            .collect()
    }

    #[test]
    fn counts_5_2_1_1_by_hand() {
        // merge 1+1 -> 2 (symbols 2, 3); then leaf 2 (symbol 1) + node 2 -> 4;
        // then leaf 5 + node 4 -> 9. Depths: 1, 2, 3, 3.
        let c = HuffmanCode::from_counts(&[5, 2, 1, 1]).unwrap();
        assert_eq!(c.lengths(), &[1, 2, 3, 3]);
        assert_eq!(codeword_strings(&c), ["0", "10", "110", "111"]);
        let bits = c.encode(&[0, 1, 2, 3, 0]).unwrap();
        // 0 10 110 111 0 = 0101_1011 10(000000)
        assert_eq!(bits.bits, 10);
        assert_eq!(bits.bytes, vec![0b0101_1011, 0b1000_0000]);
        assert_eq!(c.decode(&bits.bytes, 5).unwrap(), vec![0, 1, 2, 3, 0]);
    }

    #[test]
    fn canonical_order_is_length_then_symbol() {
        // counts [1, 1, 5, 2]: symbols 0 and 1 get length 3, symbol 2 gets 1,
        // symbol 3 gets 2. Canonical: 2 -> 0, 3 -> 10, 0 -> 110, 1 -> 111.
        let c = HuffmanCode::from_counts(&[1, 1, 5, 2]).unwrap();
        assert_eq!(c.lengths(), &[3, 3, 1, 2]);
        assert_eq!(codeword_strings(&c), ["110", "111", "0", "10"]);
        assert_eq!(HuffmanCode::from_lengths(&[3, 3, 1, 2]).unwrap(), c);
    }

    #[test]
    fn absent_symbols_and_ties() {
        // Four equal counts with absent symbols between: a complete tree of
        // depth 2 over symbols 1, 3, 4, 6.
        let c = HuffmanCode::from_counts(&[0, 7, 0, 7, 7, 0, 7]).unwrap();
        assert_eq!(c.lengths(), &[0, 2, 0, 2, 2, 0, 2]);
        assert_eq!(
            codeword_strings(&c),
            ["-", "00", "-", "01", "10", "-", "11"]
        );
        let err = c.encode(&[1, 2]).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
        let err = c.encode(&[7]).unwrap_err();
        assert!(err.to_string().contains("outside the alphabet"), "{err}");
    }

    #[test]
    fn one_symbol_present() {
        let c = HuffmanCode::from_counts(&[0, 0, 9]).unwrap();
        assert_eq!(c.lengths(), &[0, 0, 0]);
        assert_eq!(c.sole_symbol(), Some(2));
        assert_eq!(c.codeword(2), Some((0, 0)));
        assert_eq!(c.codeword(0), None);
        let bits = c.encode(&[2, 2, 2]).unwrap();
        assert_eq!(bits, Bits::default());
        assert_eq!(c.decode(&[], 4).unwrap(), vec![2; 4]);
        assert!(c.encode(&[2, 1]).is_err());
        assert_eq!(c.length_table(), vec![0, 0, SOLE_SYMBOL_MARK]);
        assert_eq!(
            HuffmanCode::from_length_table(&c.length_table()).unwrap(),
            c
        );
        assert_eq!(HuffmanCode::single(2, 3).unwrap(), c);
        assert!(HuffmanCode::single(3, 3).is_err());
    }

    #[test]
    fn no_symbol_present() {
        let c = HuffmanCode::from_counts(&[0, 0]).unwrap();
        assert_eq!(c.present_symbols(), 0);
        assert_eq!(c.encode(&[]).unwrap(), Bits::default());
        assert_eq!(c.decode(&[], 0).unwrap(), Vec::<u32>::new());
        assert!(c.decode(&[0xFF], 1).is_err());
        assert!(c.encode(&[0]).is_err());
        let empty = HuffmanCode::from_counts(&[]).unwrap();
        assert_eq!(empty.decode(&[], 0).unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn from_lengths_validates_kraft() {
        assert!(HuffmanCode::from_lengths(&[1, 1, 1]).is_err());
        assert!(HuffmanCode::from_lengths(&[1, 2, 2, 3]).is_err());
        assert!(HuffmanCode::from_lengths(&[65, 1]).is_err());
        assert!(HuffmanCode::from_lengths(&[64, 1]).is_ok());
        // a length table with two marks, or a mark and a length, is invalid
        assert!(HuffmanCode::from_length_table(&[0xFF, 0xFF]).is_err());
        assert!(HuffmanCode::from_length_table(&[0xFF, 1]).is_err());
    }

    #[test]
    fn incomplete_code_rejects_unassigned_codewords() {
        // lengths [1, 2]: 0 -> "0", 1 -> "10"; "11" is unassigned.
        let c = HuffmanCode::from_lengths(&[1, 2]).unwrap();
        assert_eq!(c.decode(&[0b0100_0000], 2).unwrap(), vec![0, 1]);
        let err = c.decode(&[0b1100_0000], 1).unwrap_err();
        assert!(err.to_string().contains("invalid codeword"), "{err}");
        // the same through the long path: lengths 1 and 13, "1000...0" unassigned
        let mut lengths = vec![0u8; 3];
        lengths[0] = 1;
        lengths[2] = 13;
        let c = HuffmanCode::from_lengths(&lengths).unwrap();
        let bits = c.encode(&[2, 0, 2]).unwrap();
        assert_eq!(c.decode(&bits.bytes, 3).unwrap(), vec![2, 0, 2]);
        assert!(c.decode(&[0xFF, 0xFF], 1).is_err());
    }

    #[test]
    fn truncated_input_is_an_error() {
        let c = HuffmanCode::from_counts(&[5, 2, 1, 1]).unwrap();
        // "111" then the stream ends: a byte holds 8 bits, so ask for more
        let bits = c.encode(&[3, 3, 3]).unwrap(); // 9 bits, 2 bytes
        assert_eq!(c.decode(&bits.bytes, 3).unwrap(), vec![3, 3, 3]);
        // the 7 padding zeros decode as symbol 0, then the stream ends
        assert_eq!(c.decode(&bits.bytes, 10).unwrap()[3..], [0; 7]);
        assert!(matches!(
            c.decode(&bits.bytes, 11),
            Err(QuantError::Inconsistent(_))
        ));
        assert!(c.decode(&bits.bytes[..1], 3).is_err());
        // a huge n against a short input errors without allocating n
        assert!(c.decode(&[0xFF], usize::MAX).is_err());
    }

    #[test]
    fn long_codewords_decode_through_the_slow_path() {
        // Fibonacci counts give lengths 1, 2, ..., 29, 29.
        let mut counts = vec![1u64, 1];
        while counts.len() < 30 {
            let n = counts.len();
            counts.push(counts[n - 1] + counts[n - 2]);
        }
        let c = HuffmanCode::from_counts(&counts).unwrap();
        assert_eq!(c.max_length(), 29);
        let symbols: Vec<u32> = (0..30).chain((0..30).rev()).collect();
        let bits = c.encode(&symbols).unwrap();
        assert_eq!(c.decode(&bits.bytes, symbols.len()).unwrap(), symbols);
    }

    #[test]
    fn sixty_four_bit_codewords() {
        // Lengths 1, 2, ..., 63, 64, 64: a complete code whose last codeword
        // is all ones, 64 bits.
        let mut lengths: Vec<u8> = (1..=64).collect();
        lengths.push(64);
        let c = HuffmanCode::from_lengths(&lengths).unwrap();
        assert_eq!(c.codeword(64), Some((u64::MAX, 64)));
        let symbols = [64u32, 0, 63, 5, 64];
        let bits = c.encode(&symbols).unwrap();
        assert_eq!(bits.bits, 64 + 1 + 64 + 6 + 64);
        assert_eq!(c.decode(&bits.bytes, 5).unwrap(), symbols);
    }

    #[test]
    fn too_long_codes_are_refused() {
        // Fibonacci counts long enough for a 65-bit codeword.
        let mut counts = vec![1u64, 1];
        while counts.len() < 66 {
            let n = counts.len();
            counts.push(counts[n - 1] + counts[n - 2]);
        }
        assert!(matches!(
            HuffmanCode::from_counts(&counts),
            Err(QuantError::InvalidParam { .. })
        ));
    }
}
