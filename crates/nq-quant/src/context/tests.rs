use proptest::prelude::*;

use super::coder::rarity_for_tests as rarity;
use super::*;

/// A deterministic xorshift stream for the long tests.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[test]
fn kt_estimate_by_hand() {
    let mut bit = AdaptiveBit::default();
    // nothing seen: 1/2
    assert_eq!(bit.probability_of_zero(), 32768);
    // one zero: (1 + 1/2) / 2 = 3/4
    bit.update(false);
    assert_eq!(bit.probability_of_zero(), 49152);
    // a zero and a one: (1 + 1/2) / 3 = 1/2
    bit.update(true);
    assert_eq!(bit.probability_of_zero(), 32768);
    // never 0 or 1, however long the run
    let mut run = AdaptiveBit::default();
    for _ in 0..100_000 {
        run.update(false);
    }
    let p = run.probability_of_zero();
    assert!(p < 65536 && p > 65500, "{p}");
}

#[test]
fn rarity_by_hand() {
    // nothing seen: (2 / 1) -> 1
    assert_eq!(rarity(0, 0), 1);
    // 1 of 1 seen: 4 / 3 -> 0
    assert_eq!(rarity(1, 1), 0);
    // 0 of 5 seen: 12 / 1 -> floor(log2 12) = 3
    assert_eq!(rarity(0, 5), 3);
    // 0 of 1000: capped at 7
    assert_eq!(rarity(0, 1000), 7);
    // 10 of 100: 202 / 21 = 9.6 -> 3
    assert_eq!(rarity(10, 100), 3);
}

/// One tensor of a stream: rows, length, survivors (if pruned), k and its
/// indices.
#[derive(Debug, Clone)]
struct Tensor {
    rows: u64,
    len: u64,
    survivors: Option<Vec<u64>>,
    k: u32,
    indices: Vec<u32>,
}

fn encode(tensors: &[Tensor]) -> (Vec<u32>, Vec<u32>, f64) {
    let mut flags = ContextEncoder::new();
    let mut indices = ContextEncoder::new();
    for t in tensors {
        if let Some(s) = &t.survivors {
            flags.survivors(t.rows, t.len, s).unwrap();
        }
        indices.indices(t.k, &t.indices).unwrap();
    }
    let ideal = flags.ideal_bits() + indices.ideal_bits();
    (flags.finish(), indices.finish(), ideal)
}

fn decode(tensors: &[Tensor], flag_words: Vec<u32>, index_words: Vec<u32>) -> Vec<Tensor> {
    let mut flags = ContextDecoder::new(flag_words).unwrap();
    let mut indices = ContextDecoder::new(index_words).unwrap();
    let out = tensors
        .iter()
        .map(|t| {
            let survivors = t
                .survivors
                .as_ref()
                .map(|s| flags.survivors(t.rows, t.len, s.len() as u64).unwrap());
            let n = survivors.as_ref().map_or(t.len, |s| s.len() as u64);
            Tensor {
                survivors,
                indices: indices.indices(t.k, n).unwrap(),
                ..t.clone()
            }
        })
        .collect();
    flags.finish().unwrap();
    indices.finish().unwrap();
    out
}

fn round_trip(tensors: &[Tensor]) {
    let (f, i, _) = encode(tensors);
    let back = decode(tensors, f, i);
    for (a, b) in tensors.iter().zip(&back) {
        assert_eq!(a.survivors, b.survivors);
        assert_eq!(a.indices, b.indices);
    }
}

fn tensor_strategy() -> impl Strategy<Value = Tensor> {
    (1u64..12, 0u64..40, 1u32..300, 0u32..4, any::<u64>()).prop_map(
        |(rows, cols, k, density, seed)| {
            let mut next = xorshift(seed);
            let len = rows * cols;
            // density 0: not pruned; 1..3: keep 1 in 2^density
            let survivors = (density > 0).then(|| {
                (0..len)
                    .filter(|_| next().is_multiple_of(1 << density))
                    .collect::<Vec<_>>()
            });
            let n = survivors.as_ref().map_or(len, |s| s.len() as u64);
            // skewed indices: a few clusters carry most weights
            let indices = (0..n)
                .map(|_| {
                    let x = next();
                    if x.is_multiple_of(4) {
                        (x >> 8) as u32 % k
                    } else {
                        (x >> 8) as u32 % k.min(3)
                    }
                })
                .collect();
            Tensor {
                rows,
                len,
                survivors,
                k,
                indices,
            }
        },
    )
}

proptest! {
    #[test]
    fn random_streams_round_trip(tensors in prop::collection::vec(tensor_strategy(), 0..6)) {
        round_trip(&tensors);
    }

    #[test]
    fn garbage_never_panics(words in prop::collection::vec(any::<u32>(), 0..64), k in 1u32..70, n in 0u64..500) {
        // any outcome but a panic: decoded symbols stay inside their alphabet
        if let Ok(mut d) = ContextDecoder::new(words.clone()) {
            if let Ok(indices) = d.indices(k, n) {
                prop_assert!(indices.iter().all(|&a| a < k));
            }
        }
        if let Ok(mut d) = ContextDecoder::new(words) {
            if let Ok(s) = d.survivors(4, 64, 10) {
                prop_assert!(s.len() == 10 && s.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}

#[test]
fn adversarial_streams_round_trip() {
    let dense = |rows: u64, len: u64, k: u32, f: &dyn Fn(u64) -> u32| Tensor {
        rows,
        len,
        survivors: None,
        k,
        indices: (0..len).map(f).collect(),
    };
    let pruned = |rows: u64, len: u64, keep: &dyn Fn(u64) -> bool| {
        let survivors: Vec<u64> = (0..len).filter(|&i| keep(i)).collect();
        let n = survivors.len() as u64;
        Tensor {
            rows,
            len,
            survivors: Some(survivors),
            k: 2,
            indices: (0..n).map(|i| (i % 2) as u32).collect(),
        }
    };
    round_trip(&[
        // one cluster: nothing coded
        dense(3, 30_000, 1, &|_| 0),
        // one symbol for a long time, then the other: the model must adapt
        dense(1, 50_000, 2, &|i| u32::from(i >= 40_000)),
        // alternating, and the largest index of a ragged tree
        dense(10, 1000, 5, &|i| if i % 2 == 0 { 4 } else { 0 }),
        dense(1, 100, 1 << 16, &|i| (i * 655) as u32 % (1 << 16)),
        // nothing, everything, a single survivor, the last element only
        pruned(5, 50, &|_| false),
        pruned(5, 50, &|_| true),
        pruned(1, 1, &|_| true),
        pruned(7, 700, &|i| i == 699),
        // a dead column and a dead row
        pruned(20, 400, &|i| i % 20 != 3 && i / 20 != 11),
        // empty tensors
        dense(1, 0, 7, &|_| 0),
        pruned(1, 0, &|_| true),
    ]);
}

#[test]
fn length_within_one_percent_of_the_ideal_code_on_long_streams() {
    for (k, skew, seed) in [(2u32, 6u64, 1u64), (4, 3, 2), (64, 2, 3), (256, 1, 4)] {
        let mut next = xorshift(seed);
        let indices: Vec<u32> = (0..1_000_000)
            .map(|_| {
                // symbol j with probability about 2^-(skew j)
                let mut j = 0;
                while j + 1 < k && next().is_multiple_of(1 << skew) {
                    j += 1;
                }
                j
            })
            .collect();
        let mut e = ContextEncoder::new();
        e.indices(k, &indices).unwrap();
        let ideal = e.ideal_bits();
        let words = e.finish();
        let bits = stream_bits(&words) as f64;
        assert!(
            bits <= ideal * 1.01 + 64.0 && bits >= ideal - 64.0,
            "k {k}: {bits} bits against an ideal {ideal}"
        );
        let mut d = ContextDecoder::new(words).unwrap();
        assert_eq!(d.indices(k, indices.len() as u64).unwrap(), indices);
        d.finish().unwrap();
    }
}

#[test]
fn a_dominant_cluster_costs_far_below_one_bit() {
    // 99 % of the weights in one of 4 clusters: Huffman takes at least 1
    // bit per weight, the entropy is 0.0968 bits
    let mut next = xorshift(7);
    let indices: Vec<u32> = (0..200_000)
        .map(|_| {
            if next().is_multiple_of(100) {
                1 + (next() % 3) as u32
            } else {
                0
            }
        })
        .collect();
    let mut e = ContextEncoder::new();
    e.indices(4, &indices).unwrap();
    let bits_per_weight = stream_bits(&e.finish()) as f64 / indices.len() as f64;
    assert!(
        bits_per_weight < 0.1 && bits_per_weight > 0.09,
        "{bits_per_weight}"
    );
}

#[test]
fn dead_columns_cost_little() {
    // a 300 x 784 layer whose inputs 0..200 are all pruned and the rest kept
    // at random with probability 1/8: the column contexts learn the dead
    // inputs, so the flags cost close to what the live columns alone need
    let (rows, cols) = (300u64, 784u64);
    let mut next = xorshift(11);
    let survivors: Vec<u64> = (0..rows * cols)
        .filter(|&i| i % cols >= 200 && next().is_multiple_of(8))
        .collect();
    let mut e = ContextEncoder::new();
    e.survivors(rows, rows * cols, &survivors).unwrap();
    let bits = stream_bits(&e.finish()) as f64;
    let h = |p: f64| -(p * p.log2() + (1.0 - p) * (1.0 - p).log2());
    let live_only = (rows * (cols - 200)) as f64 * h(1.0 / 8.0);
    let order0 = (rows * cols) as f64 * h(survivors.len() as f64 / (rows * cols) as f64);
    assert!(bits < 1.02 * live_only, "{bits} vs {live_only}");
    // the live columns alone are 0.907 of the order-0 code
    assert!(bits < 0.93 * order0, "{bits} vs order-0 {order0}");
}

#[test]
fn bad_arguments_are_errors() {
    let mut e = ContextEncoder::new();
    assert!(e.indices(3, &[0, 3]).is_err());
    assert!(e.survivors(2, 10, &[3, 3]).is_err());
    assert!(e.survivors(2, 10, &[10]).is_err());
    assert!(e.survivors(3, 10, &[1]).is_err(), "10 elements in 3 rows");
    // more survivors than elements (an arithmetic code has no redundancy
    // to tell a wrong count otherwise: the file's checksum does)
    let mut d = ContextDecoder::new(Vec::new()).unwrap();
    assert!(d.survivors(1, 10, 11).is_err());

    // flags that the count implies cost nothing: no survivor, all
    // survivors, and the zeros after the last survivor
    for survivors in [vec![], (0..1000).collect::<Vec<u64>>()] {
        let mut e = ContextEncoder::new();
        e.survivors(10, 1000, &survivors).unwrap();
        assert!(e.finish().is_empty());
    }
    let mut e = ContextEncoder::new();
    e.survivors(10, 1000, &[0]).unwrap();
    assert_eq!(e.ideal_bits(), 1.0);
}
