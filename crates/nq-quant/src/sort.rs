//! The one sort of the 1-D quantizers: the order of `f32` weights, by a
//! least-significant-digit radix sort of their bits (Knuth, TAOCP vol. 3,
//! 5.2.5), stable, so that equal values keep their original order.
//!
//! Each weight becomes one `u64`: its bits mapped so that unsigned order is
//! the floats' total order (negatives reversed, `-0.0` before `0.0`) in the
//! high half, its index in the low half. Three counting passes over the
//! high half, 11, 11 and 10 bits, each a histogram, a prefix sum and a
//! scatter into a second buffer, sort them; a pass whose digit is the same
//! for every weight (the sign and exponent of weights of one scale, often)
//! is skipped. O(N) with two buffers of N `u64`, against O(N log N) for a
//! comparison sort.

/// Maps an `f32` to a `u32` whose unsigned order is the float's total order.
pub(crate) fn sortable_bits(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// The inverse of [`sortable_bits`].
pub(crate) fn from_sortable_bits(b: u32) -> f32 {
    if b & 0x8000_0000 != 0 {
        f32::from_bits(b & 0x7fff_ffff)
    } else {
        f32::from_bits(!b)
    }
}

/// Digit widths of the passes, lowest first, over the 32 key bits.
const PASSES: [(u32, u32); 3] = [(32, 11), (43, 11), (54, 10)];

/// `(sortable bits << 32) | index` of every weight, sorted: ascending by
/// value, ties by index.
pub fn sorted_keys(w: &[f32]) -> Vec<u64> {
    assert!(w.len() < u32::MAX as usize, "more than 2^32 - 1 weights");
    let mut keys: Vec<u64> = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (u64::from(sortable_bits(v)) << 32) | i as u64)
        .collect();
    let n = keys.len();
    if n < 2 {
        return keys;
    }
    // all three histograms in one sweep
    let mut counts: Vec<Vec<usize>> = PASSES.iter().map(|&(_, b)| vec![0; 1 << b]).collect();
    for &k in &keys {
        for (c, &(shift, bits)) in counts.iter_mut().zip(&PASSES) {
            c[((k >> shift) & ((1 << bits) - 1)) as usize] += 1;
        }
    }
    let mut buffer = vec![0u64; n];
    for (count, &(shift, bits)) in counts.iter_mut().zip(&PASSES) {
        if count.contains(&n) {
            continue; // one digit for all: the pass would change nothing
        }
        let mut offset = 0;
        for c in count.iter_mut() {
            let here = *c;
            *c = offset;
            offset += here;
        }
        let mask = (1u64 << bits) - 1;
        for &k in &keys {
            let digit = ((k >> shift) & mask) as usize;
            buffer[count[digit]] = k;
            count[digit] += 1;
        }
        std::mem::swap(&mut keys, &mut buffer);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorts_by_value_then_index() {
        let w = [3.0, -1.0, 0.0, -0.0, 3.0, f32::MIN, 1e-40, -1e-40];
        let order: Vec<u32> = sorted_keys(&w).iter().map(|&k| k as u32).collect();
        // MIN, -1, -1e-40 (denormal), -0, 0, 1e-40, 3 (index 0), 3 (index 4)
        assert_eq!(order, vec![5, 1, 7, 3, 2, 6, 0, 4]);
    }

    #[test]
    fn sortable_bits_round_trip_and_keep_the_order() {
        let vs = [f32::MIN, -2.5, -1e-40, -0.0, 0.0, 1e-40, 1.0, f32::MAX];
        for pair in vs.windows(2) {
            assert!(sortable_bits(pair[0]) < sortable_bits(pair[1]), "{pair:?}");
        }
        for v in vs {
            assert_eq!(from_sortable_bits(sortable_bits(v)).to_bits(), v.to_bits());
        }
    }

    proptest! {
        #[test]
        fn equals_a_stable_comparison_sort(w in prop::collection::vec(
            prop_oneof![-1e3f32..1e3, Just(0.0f32), Just(-0.0f32), -1e-3f32..1e-3], 0..2000)) {
            let mut want: Vec<u32> = (0..w.len() as u32).collect();
            want.sort_by(|&a, &b| sortable_bits(w[a as usize]).cmp(&sortable_bits(w[b as usize])));
            let got: Vec<u32> = sorted_keys(&w).iter().map(|&k| k as u32).collect();
            prop_assert_eq!(got, want);
        }
    }
}
