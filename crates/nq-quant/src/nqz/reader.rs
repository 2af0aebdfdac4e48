//! A little-endian reader over a byte slice whose every read is checked
//! against what is left, so that a truncated or lying file is an error and
//! never a panic or an oversized allocation.

use crate::error::{QuantError, Result};

pub(super) fn corrupt(message: impl Into<String>) -> QuantError {
    QuantError::Corrupt(message.into())
}

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes[0]` in the file, for messages.
    base: u64,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], base: u64) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(super) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(super) fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let left = self.remaining();
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let out = &self.bytes[self.pos..self.pos + n];
                self.pos += n;
                Ok(out)
            }
            _ => Err(corrupt(format!(
                "truncated: {what} needs {n} bytes at offset {}, {left} left",
                self.offset()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(super) fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// `n` float32 values; the bytes are checked before anything is
    /// allocated.
    pub(super) fn f32s(&mut self, n: u64, what: &str) -> Result<Vec<f32>> {
        let bytes = self.take(n.saturating_mul(4), what)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Fails unless `count` items of at least `min_bytes` each can still
    /// fit, so that a count read from the file cannot make us reserve more
    /// than the file holds.
    pub(super) fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<()> {
        if count.saturating_mul(min_bytes) > self.remaining() as u64 {
            return Err(corrupt(format!(
                "{what}: {count} entries of at least {min_bytes} bytes do not fit in the {} \
                 bytes left at offset {}",
                self.remaining(),
                self.offset()
            )));
        }
        Ok(())
    }
}

/// Little-endian writing helpers.
pub(super) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_f32s(&mut self, v: &[f32]);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_f32s(&mut self, v: &[f32]) {
        self.reserve(v.len() * 4);
        for x in v {
            self.extend_from_slice(&x.to_le_bytes());
        }
    }
}
