//! One context-coded stream: survivor flags and cluster indices of tensor
//! after tensor, written by [`ContextEncoder`] and read back by
//! [`ContextDecoder`]. Both walk the same [`code_flags`] and [`code_index`],
//! so that the models see the same decisions in the same order.

use constriction::stream::queue::{DefaultRangeDecoder, DefaultRangeEncoder};
use constriction::stream::{Decode, Encode};

use super::model::AdaptiveBit;
use crate::error::{QuantError, Result};

/// Codes one binary decision: the encoder codes `bit` and returns it, the
/// decoder ignores it and returns the decoded one.
trait BitCoder {
    fn code(&mut self, model: &mut AdaptiveBit, bit: bool) -> Result<bool>;
}

/// Contexts of the survivor flags: how rare survivors have been so far,
/// `min(7, floor(log2((2 seen + 2) / (2 count + 1))))`.
fn rarity(count: u64, seen: u64) -> usize {
    let (num, den) = (2 * seen + 2, 2 * count + 1);
    let mut r = 0;
    while r < 7 && den << (r + 1) <= num {
        r += 1;
    }
    r
}

/// The survivor flags of a `rows`-row tensor of `len` elements with
/// `count` survivors, row-major; `given(i)` is element `i`'s flag when
/// encoding, `on_survivor(i)` hears of each survivor. Flags that `count`
/// implies are not coded: none after the last survivor, and none once the
/// elements left are all survivors.
fn code_flags<C: BitCoder>(
    coder: &mut C,
    (rows, len, count): (u64, u64, u64),
    mut given: impl FnMut(u64) -> bool,
    mut on_survivor: impl FnMut(u64),
) -> Result<()> {
    if count > len {
        return Err(QuantError::Inconsistent(format!(
            "{count} survivors among {len} elements"
        )));
    }
    if count == 0 {
        return Ok(());
    }
    if rows == 0 || len % rows != 0 {
        return Err(QuantError::Inconsistent(format!(
            "{len} elements do not form {rows} rows"
        )));
    }
    let cols = len / rows;
    let mut models = [AdaptiveBit::default(); 64];
    let mut column_counts = vec![0u64; usize::try_from(cols).map_err(|_| too_big(cols))?];
    let mut found = 0;
    for r in 0..rows {
        let mut row_count = 0;
        for (c, column_count) in column_counts.iter_mut().enumerate() {
            let i = r * cols + c as u64;
            if found == count {
                return Ok(());
            }
            if len - i == count - found {
                (i..len).for_each(&mut on_survivor);
                return Ok(());
            }
            let context = 8 * rarity(*column_count, r) + rarity(row_count, c as u64);
            if coder.code(&mut models[context], given(i))? {
                *column_count += 1;
                row_count += 1;
                found += 1;
                on_survivor(i);
            }
        }
    }
    Ok(())
}

fn too_big(n: u64) -> QuantError {
    QuantError::Inconsistent(format!("{n} columns do not fit in memory"))
}

/// The binary tree over `0..k` of [`code_index`]: one model per inner node.
struct IndexTree {
    k: u32,
    depth: u32,
    nodes: Vec<AdaptiveBit>,
}

impl IndexTree {
    fn new(k: u32) -> Self {
        let depth = if k <= 1 {
            0
        } else {
            32 - (k - 1).leading_zeros()
        };
        Self {
            k,
            depth,
            nodes: vec![AdaptiveBit::default(); 1usize << depth],
        }
    }

    /// Codes `symbol` (ignored when decoding) bit by bit, most significant
    /// first; a bit is not coded when its 1-branch holds no index below `k`.
    fn code<C: BitCoder>(&mut self, coder: &mut C, symbol: u32) -> Result<u32> {
        let mut value = 0u32;
        let mut node = 1usize;
        for level in (0..self.depth).rev() {
            let with_one = ((value << 1) | 1) << level;
            let bit = if with_one >= self.k {
                false
            } else {
                coder.code(&mut self.nodes[node], (symbol >> level) & 1 == 1)?
            };
            value = (value << 1) | u32::from(bit);
            node = 2 * node + usize::from(bit);
        }
        Ok(value)
    }
}

/// Writes a context-coded stream.
pub struct ContextEncoder {
    coder: DefaultRangeEncoder,
    ideal_bits: f64,
}

impl Default for ContextEncoder {
    fn default() -> Self {
        Self::new()
    }
}

struct Encoding<'a>(&'a mut ContextEncoder);

impl BitCoder for Encoding<'_> {
    fn code(&mut self, model: &mut AdaptiveBit, bit: bool) -> Result<bool> {
        let m = model.model();
        self.0
            .coder
            .encode_symbol(bit, m)
            .map_err(|e| QuantError::Inconsistent(format!("range coder: {e}")))?;
        self.0.ideal_bits += m.cost(bit);
        model.update(bit);
        Ok(bit)
    }
}

impl ContextEncoder {
    /// An empty stream.
    pub fn new() -> Self {
        Self {
            coder: DefaultRangeEncoder::new(),
            ideal_bits: 0.0,
        }
    }

    /// Codes the survivor flags of a pruned tensor of `rows` rows and `len`
    /// elements; `survivors` strictly increasing and below `len`.
    pub fn survivors(&mut self, rows: u64, len: u64, survivors: &[u64]) -> Result<()> {
        if survivors.windows(2).any(|w| w[0] >= w[1]) || survivors.last() >= Some(&len) {
            return Err(QuantError::Inconsistent(
                "survivors must be strictly increasing and inside the tensor".into(),
            ));
        }
        let mut next = survivors.iter().peekable();
        code_flags(
            &mut Encoding(self),
            (rows, len, survivors.len() as u64),
            |i| next.next_if_eq(&&i).is_some(),
            |_| {},
        )
    }

    /// Codes the cluster indices of one tensor, each below `k`, with models
    /// of its own.
    pub fn indices(&mut self, k: u32, assignment: &[u32]) -> Result<()> {
        if let Some(i) = assignment.iter().position(|&a| a >= k) {
            return Err(QuantError::Inconsistent(format!(
                "cluster index {} at {i} is outside a codebook of {k}",
                assignment[i]
            )));
        }
        let mut tree = IndexTree::new(k);
        let mut coding = Encoding(self);
        for &a in assignment {
            tree.code(&mut coding, a)?;
        }
        Ok(())
    }

    /// `sum -log2 p` over the bits coded so far, under the models' own
    /// predictions: what an ideal arithmetic coder would take.
    pub fn ideal_bits(&self) -> f64 {
        self.ideal_bits
    }

    /// The stream, as 32-bit words (none when nothing was coded).
    pub fn finish(self) -> Vec<u32> {
        match self.coder.into_compressed() {
            Ok(words) => words,
            Err(never) => match never {},
        }
    }
}

/// Reads a context-coded stream written by [`ContextEncoder`], in the same
/// order of calls.
pub struct ContextDecoder {
    coder: DefaultRangeDecoder,
}

struct Decoding<'a>(&'a mut ContextDecoder);

impl BitCoder for Decoding<'_> {
    fn code(&mut self, model: &mut AdaptiveBit, _: bool) -> Result<bool> {
        let bit = self
            .0
            .coder
            .decode_symbol(model.model())
            .map_err(|e| QuantError::Inconsistent(format!("context-coded stream: {e}")))?;
        model.update(bit);
        Ok(bit)
    }
}

impl ContextDecoder {
    /// A decoder of `words`.
    pub fn new(words: Vec<u32>) -> Result<Self> {
        let coder = DefaultRangeDecoder::from_compressed(words).map_err(|_| {
            QuantError::Inconsistent("context-coded stream: cannot start decoding".into())
        })?;
        Ok(Self { coder })
    }

    /// The survivors of a pruned tensor of `rows` rows and `len` elements,
    /// `count` of them.
    pub fn survivors(&mut self, rows: u64, len: u64, count: u64) -> Result<Vec<u64>> {
        let mut survivors = Vec::new();
        code_flags(
            &mut Decoding(self),
            (rows, len, count),
            |_| false,
            |i| survivors.push(i),
        )?;
        if survivors.len() as u64 != count {
            return Err(QuantError::Inconsistent(format!(
                "{} survivors decoded, the table says {count}",
                survivors.len()
            )));
        }
        Ok(survivors)
    }

    /// `n` cluster indices below `k` of one tensor.
    pub fn indices(&mut self, k: u32, n: u64) -> Result<Vec<u32>> {
        let mut tree = IndexTree::new(k);
        let mut decoding = Decoding(self);
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(tree.code(&mut decoding, 0)?);
        }
        Ok(out)
    }

    /// Checks that the stream held nothing after the last symbol read.
    pub fn finish(self) -> Result<()> {
        if self.coder.maybe_exhausted() {
            Ok(())
        } else {
            Err(QuantError::Inconsistent(
                "context-coded stream: data after the last symbol".into(),
            ))
        }
    }
}

#[cfg(test)]
pub(super) fn rarity_for_tests(count: u64, seen: u64) -> usize {
    rarity(count, seen)
}
