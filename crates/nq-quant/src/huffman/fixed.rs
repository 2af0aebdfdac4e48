//! Fixed-length codes: every symbol of `0..k` as a `ceil(log2 k)`-bit
//! unsigned integer.

use super::bits::{BitReader, BitWriter, Bits};
use super::canonical::filled;
use crate::error::{ensure_param, QuantError, Result};

/// The fixed-length code of an alphabet of `k` symbols: symbol `s` is
/// written as `s` in `ceil(log2 k)` bits, MSB first. With `k = 1` the width
/// is 0: encoding emits nothing and decoding `n` symbols returns `n` zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedCode {
    k: u64,
    width: u8,
}

impl FixedCode {
    /// The code of `k` symbols, `1 <= k <= 2^32` (symbols are `u32`).
    pub fn new(k: usize) -> Result<Self> {
        let k = k as u64;
        ensure_param(k >= 1, "k", "a fixed-length code needs at least one symbol")?;
        ensure_param(
            k <= 1 << 32,
            "k",
            format!("{k} symbols; symbols are u32, so at most 2^32"),
        )?;
        Ok(Self {
            k,
            width: fixed_width(k),
        })
    }

    /// Bits per symbol, `ceil(log2 k)`.
    pub fn width(&self) -> u8 {
        self.width
    }

    /// Number of symbols.
    pub fn alphabet_size(&self) -> usize {
        self.k as usize
    }

    /// Encodes `symbols` into a new stream.
    pub fn encode(&self, symbols: &[u32]) -> Result<Bits> {
        let mut w = BitWriter::with_capacity(symbols.len() as u64 * u64::from(self.width));
        self.encode_into(symbols, &mut w)?;
        Ok(w.finish())
    }

    /// Appends `symbols` to `w`; fails, having written the symbols before
    /// it, at the first symbol `>= k`.
    pub fn encode_into(&self, symbols: &[u32], w: &mut BitWriter) -> Result<()> {
        let width = u32::from(self.width);
        for (i, &s) in symbols.iter().enumerate() {
            if u64::from(s) >= self.k {
                return Err(QuantError::Inconsistent(format!(
                    "symbol {s} at position {i} is outside the alphabet of {} symbols",
                    self.k
                )));
            }
            w.write(u64::from(s), width);
        }
        Ok(())
    }

    /// Decodes `n` symbols from the start of `bytes`.
    pub fn decode(&self, bytes: &[u8], n: usize) -> Result<Vec<u32>> {
        self.decode_from(&mut BitReader::new(bytes), n)
    }

    /// Decodes `n` symbols from `r`; fails on a truncated stream or a value
    /// `>= k`. With width 0 the `n` zeros cost no input (their allocation is
    /// tried and its failure reported); otherwise at most one symbol per
    /// remaining bit is reserved.
    pub fn decode_from(&self, r: &mut BitReader<'_>, n: usize) -> Result<Vec<u32>> {
        let width = u32::from(self.width);
        if width == 0 {
            return filled(0, n);
        }
        let cap =
            n.min(usize::try_from(r.remaining_bits() / u64::from(width)).unwrap_or(usize::MAX));
        // one symbol more than the input holds is enough to meet its end
        let cap = cap.saturating_add(1).min(n);
        let mut out = Vec::new();
        out.try_reserve_exact(cap)
            .map_err(|e| QuantError::Inconsistent(format!("{cap} symbols: {e}")))?;
        for _ in 0..n {
            r.refill();
            let v = r.peek(width);
            r.consume(width)?;
            if v >= self.k {
                return Err(QuantError::Inconsistent(format!(
                    "value {v} at bit {} is outside the alphabet of {} symbols",
                    r.position() - u64::from(width),
                    self.k
                )));
            }
            out.push(v as u32);
        }
        Ok(out)
    }
}

/// `ceil(log2 k)` for `k >= 1`: the width of a fixed-length code of `k`
/// symbols (0 for `k = 1`).
pub fn fixed_width(k: u64) -> u8 {
    if k <= 1 {
        0
    } else {
        (64 - (k - 1).leading_zeros()) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        let w: Vec<u8> = [1u64, 2, 3, 4, 5, 8, 9, 256, 257, 1 << 32]
            .iter()
            .map(|&k| fixed_width(k))
            .collect();
        assert_eq!(w, [0, 1, 2, 2, 3, 3, 4, 8, 9, 32]);
    }

    #[test]
    fn five_symbols_by_hand() {
        let c = FixedCode::new(5).unwrap();
        assert_eq!(c.width(), 3);
        let bits = c.encode(&[4, 0, 3]).unwrap();
        // 100 000 011 = 1000_0001 1(0000000)
        assert_eq!(bits.bits, 9);
        assert_eq!(bits.bytes, vec![0b1000_0001, 0b1000_0000]);
        assert_eq!(c.decode(&bits.bytes, 3).unwrap(), vec![4, 0, 3]);
        assert!(c.encode(&[5]).is_err());
        // 101 = 5 is not a symbol
        assert!(c.decode(&[0b1010_0000], 1).is_err());
        // truncated: 2 bytes hold 5 symbols of 3 bits, not 6
        assert_eq!(c.decode(&bits.bytes, 5).unwrap().len(), 5);
        assert!(c.decode(&bits.bytes, 6).is_err());
        assert!(c.decode(&bits.bytes, usize::MAX).is_err());
    }

    #[test]
    fn one_symbol_costs_no_bits() {
        let c = FixedCode::new(1).unwrap();
        assert_eq!(c.encode(&[0, 0]).unwrap(), Bits::default());
        assert_eq!(c.decode(&[], 3).unwrap(), vec![0, 0, 0]);
        assert!(c.encode(&[1]).is_err());
        assert!(FixedCode::new(0).is_err());
    }
}
