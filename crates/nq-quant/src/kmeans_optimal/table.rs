//! The backtracking table, stored as one bit vector per layer.
//!
//! Every layer of the dynamic program yields a nondecreasing sequence of
//! argmins `opt[i]` over a range of rows `i`. A nondecreasing sequence of
//! `len` values spanning `[base, last]` is written in unary: value `r`
//! sets bit `opt[r] - base + r`, so a layer costs `len + last - base + 1`
//! bits, at most about `2 N` bits, instead of `32 N` as a `u32` row. Reading
//! one entry is a select over the layer's words (`O(N / 64)`), and the
//! backtracking reads one entry per layer.

/// Where one layer lives in the shared word vector.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Index of the first row the layer covers.
    first: usize,
    /// Number of rows covered.
    len: usize,
    /// Smallest value (the first one).
    base: u32,
    /// First word of the layer.
    word: usize,
}

/// Nondecreasing `u32` sequences packed in unary, one per layer.
#[derive(Debug, Default)]
pub(crate) struct MonotoneTable {
    words: Vec<u64>,
    rows: Vec<Row>,
}

impl MonotoneTable {
    /// Empty table.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends a layer: `values[r]` is the entry of row `first + r`.
    ///
    /// # Panics
    /// When `values` decreases somewhere (a bug in the caller).
    pub(crate) fn push(&mut self, first: usize, values: &[u32]) {
        let word = self.words.len();
        let base = values.first().copied().unwrap_or(0);
        let last = values.last().copied().unwrap_or(0);
        assert!(
            values.windows(2).all(|p| p[0] <= p[1]),
            "argmins must be nondecreasing"
        );
        let bits = values.len() + (last - base) as usize;
        self.words.resize(word + bits.div_ceil(64), 0);
        for (r, &v) in values.iter().enumerate() {
            let pos = (v - base) as usize + r;
            self.words[word + pos / 64] |= 1u64 << (pos % 64);
        }
        self.rows.push(Row {
            first,
            len: values.len(),
            base,
            word,
        });
    }

    /// Entry of row `i` of layer `layer`.
    ///
    /// # Panics
    /// When the layer does not cover row `i`.
    pub(crate) fn get(&self, layer: usize, i: usize) -> u32 {
        let row = self.rows[layer];
        assert!(
            i >= row.first && i < row.first + row.len,
            "row {i} outside layer {layer}"
        );
        let r = i - row.first;
        let mut rank = r;
        for (offset, &w) in self.words[row.word..].iter().enumerate() {
            let ones = w.count_ones() as usize;
            if rank < ones {
                let mut w = w;
                for _ in 0..rank {
                    w &= w - 1;
                }
                let pos = offset * 64 + w.trailing_zeros() as usize;
                return row.base + (pos - r) as u32;
            }
            rank -= ones;
        }
        unreachable!("every covered row has its bit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unary_by_hand() {
        // values 3, 3, 5 from base 3: bits 0, 1, 2 + 2 = 4 -> 0b10011
        let mut t = MonotoneTable::new();
        t.push(7, &[3, 3, 5]);
        assert_eq!(t.words, vec![0b10011]);
        assert_eq!((t.get(0, 7), t.get(0, 8), t.get(0, 9)), (3, 3, 5));
    }

    proptest! {
        #[test]
        fn reads_back_what_was_pushed(
            layers in prop::collection::vec((0usize..50, 0u32..1000, prop::collection::vec(0u32..200, 1..300)), 1..5)
        ) {
            let mut t = MonotoneTable::new();
            let mut expected = Vec::new();
            for (first, base, steps) in &layers {
                let values: Vec<u32> = steps
                    .iter()
                    .scan(*base, |acc, &s| {
                        *acc += s.saturating_sub(150);
                        Some(*acc)
                    })
                    .collect();
                t.push(*first, &values);
                expected.push((*first, values));
            }
            for (layer, (first, values)) in expected.iter().enumerate() {
                for (r, &v) in values.iter().enumerate() {
                    prop_assert_eq!(t.get(layer, first + r), v);
                }
            }
        }
    }
}
