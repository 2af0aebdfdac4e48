//! Bit streams, most significant bit first.
//!
//! [`BitWriter`] packs codewords into bytes, the first bit written being the
//! most significant bit of the first byte; the last byte is padded with
//! zero bits and [`Bits::bits`] keeps the exact number of bits written.
//! [`BitReader`] reads them back in the same order through a 64-bit buffer
//! that is refilled eight bytes at a time (Giesen, "Reading bits in far too
//! many ways", 2018, variant 4), and fails with a typed error, never a
//! panic, when the stream ends before the bits asked for.

use crate::error::{QuantError, Result};

/// A finished bit stream: the bytes and the exact number of bits in them
/// (`bytes.len() == bits.div_ceil(8)`; the padding bits are zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bits {
    /// The packed bits, MSB first, the last byte zero-padded.
    pub bytes: Vec<u8>,
    /// Number of bits written (without the padding).
    pub bits: u64,
}

/// Writes bits MSB first into a `Vec<u8>`.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Pending bits in the low `pending` bits (fewer than 32 between calls).
    acc: u64,
    pending: u32,
    bits: u64,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `bits` bits.
    pub fn with_capacity(bits: u64) -> Self {
        let bytes = usize::try_from(bits.div_ceil(8)).unwrap_or(0);
        Self {
            bytes: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Number of bits written so far.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// Writes the low `len` bits of `value`, most significant first.
    ///
    /// # Panics
    /// If `len > 64` or `value` has bits set at or above `len`: both are
    /// bugs of the caller, never properties of data.
    #[inline]
    pub fn write(&mut self, value: u64, len: u32) {
        assert!(len <= 64, "cannot write {len} bits at once");
        assert!(
            len == 64 || value >> len == 0,
            "value {value:#x} does not fit in {len} bits"
        );
        if len > 32 {
            self.write_small(value >> 32, len - 32);
            self.write_small(value & 0xFFFF_FFFF, 32);
        } else {
            self.write_small(value, len);
        }
    }

    /// `len <= 32`, `value < 2^len`.
    #[inline]
    fn write_small(&mut self, value: u64, len: u32) {
        if len == 0 {
            return;
        }
        // pending < 32 and len <= 32: at most 63 bits live in acc.
        self.acc = (self.acc << len) | value;
        self.pending += len;
        self.bits += u64::from(len);
        if self.pending >= 32 {
            self.pending -= 32;
            let word = (self.acc >> self.pending) as u32;
            self.bytes.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// Pads the last byte with zeros and returns the stream.
    pub fn finish(mut self) -> Bits {
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.acc >> self.pending) as u8);
        }
        if self.pending > 0 {
            self.bytes.push((self.acc << (8 - self.pending)) as u8);
        }
        Bits {
            bytes: self.bytes,
            bits: self.bits,
        }
    }
}

/// Reads bits MSB first from a byte slice.
///
/// Reading past the end of the slice fails with [`QuantError::Inconsistent`]
/// ("truncated"); the zero padding of the last byte is readable like any
/// other bit, so a stream is only known to be truncated when more bits are
/// asked for than its bytes hold.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    /// Next byte of `bytes` not yet (fully) in `buf`.
    pos: usize,
    /// Buffered bits, left-aligned: the next bit is bit 63. Bits below the
    /// `avail` valid ones are either zero or the stream's own next bits.
    buf: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Bits not yet consumed (including the padding of the last byte).
    pub fn remaining_bits(&self) -> u64 {
        u64::from(self.avail) + 8 * (self.bytes.len() - self.pos) as u64
    }

    /// Bits consumed so far.
    pub fn position(&self) -> u64 {
        8 * self.pos as u64 - u64::from(self.avail)
    }

    /// Tops the buffer up to at least 57 valid bits, or to the end of the
    /// stream.
    #[inline]
    pub(crate) fn refill(&mut self) {
        if self.avail > 56 {
            return;
        }
        if let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
            // Bits past the whole bytes taken are the stream's own next bits,
            // ORed again, in place, by the next refill.
            self.buf |= word >> self.avail;
            let whole = (64 - self.avail) / 8;
            self.pos += whole as usize;
            self.avail += whole * 8;
        } else {
            while self.avail <= 56 && self.pos < self.bytes.len() {
                self.buf |= u64::from(self.bytes[self.pos]) << (56 - self.avail);
                self.pos += 1;
                self.avail += 8;
            }
        }
    }

    /// The next `n` bits (`1 <= n <= 32`) without consuming them, zeros past
    /// the end of the stream. Call [`refill`](Self::refill) first.
    #[inline]
    pub(crate) fn peek(&self, n: u32) -> u64 {
        debug_assert!((1..=32).contains(&n));
        self.buf >> (64 - n)
    }

    /// Consumes `n <= 32` buffered bits; fails if the stream holds fewer.
    #[inline]
    pub(crate) fn consume(&mut self, n: u32) -> Result<()> {
        if n > self.avail {
            return Err(truncated(self.position(), n));
        }
        self.buf <<= n;
        self.avail -= n;
        Ok(())
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Result<bool> {
        self.refill();
        let bit = self.buf >> 63 == 1;
        self.consume(1)?;
        Ok(bit)
    }

    /// Reads `len <= 64` bits as an unsigned integer, the first bit read
    /// being the most significant.
    pub fn read(&mut self, len: u32) -> Result<u64> {
        if len > 64 {
            return Err(QuantError::InvalidParam {
                name: "len",
                reason: format!("cannot read {len} bits at once (at most 64)"),
            });
        }
        if len > 32 {
            let high = self.read(len - 32)?;
            let low = self.read(32)?;
            return Ok((high << 32) | low);
        }
        if len == 0 {
            return Ok(0);
        }
        self.refill();
        let value = self.peek(len);
        self.consume(len)?;
        Ok(value)
    }
}

/// The error of a stream that ends before `wanted` more bits at `position`.
fn truncated(position: u64, wanted: u32) -> QuantError {
    QuantError::Inconsistent(format!(
        "truncated bit stream: {wanted} more bit(s) needed at bit {position}, past its end"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_msb_first_with_padding() {
        let mut w = BitWriter::new();
        w.write(0b1, 1);
        w.write(0b01, 2);
        w.write(0b11111, 5);
        w.write(0b101, 3);
        let b = w.finish();
        // 1 01 11111 | 101 00000
        assert_eq!(b.bytes, vec![0b1011_1111, 0b1010_0000]);
        assert_eq!(b.bits, 11);
    }

    #[test]
    fn long_words_and_zero_length() {
        let mut w = BitWriter::new();
        w.write(0, 0);
        w.write(u64::MAX, 64);
        w.write(0x1_2345_6789, 33);
        w.write(1, 1);
        let b = w.finish();
        assert_eq!(b.bits, 98);
        assert_eq!(b.bytes.len(), 13);
        let mut r = BitReader::new(&b.bytes);
        assert_eq!(r.read(0).unwrap(), 0);
        assert_eq!(r.read(64).unwrap(), u64::MAX);
        assert_eq!(r.read(33).unwrap(), 0x1_2345_6789);
        assert!(r.read_bit().unwrap());
        assert_eq!(r.position(), 98);
        // the 6 padding bits are readable, the 7th is not
        assert_eq!(r.read(6).unwrap(), 0);
        assert!(r.read_bit().is_err());
    }

    #[test]
    fn reader_round_trips_mixed_widths() {
        let items: Vec<(u64, u32)> = (0..500u64)
            .map(|i| ((i * 2654435761) & ((1 << (i % 33)) - 1), (i % 33) as u32))
            .collect();
        let mut w = BitWriter::new();
        for &(v, l) in &items {
            w.write(v, l);
        }
        let total: u64 = items.iter().map(|&(_, l)| u64::from(l)).sum();
        let b = w.finish();
        assert_eq!(b.bits, total);
        let mut r = BitReader::new(&b.bytes);
        for &(v, l) in &items {
            assert_eq!(r.read(l).unwrap(), v);
        }
        assert_eq!(r.position(), total);
    }

    #[test]
    fn empty_stream() {
        let b = BitWriter::new().finish();
        assert_eq!(b, Bits::default());
        let mut r = BitReader::new(&b.bytes);
        assert!(matches!(r.read_bit(), Err(QuantError::Inconsistent(_))));
        assert!(r.read(65).is_err());
    }
}
