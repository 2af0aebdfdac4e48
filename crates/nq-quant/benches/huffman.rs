//! Encoding and decoding 1e6 cluster indices over 256 symbols drawn from a
//! skewed (geometric, ratio 0.97) distribution, with the canonical Huffman
//! code of their counts and with the 8-bit fixed-length code.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nq_quant::huffman::{Code, Coding};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` symbols of `0..k` with `P(s)` proportional to `ratio^s`, and their
/// counts.
pub fn skewed_symbols(n: usize, k: usize, ratio: f64, seed: u64) -> (Vec<u32>, Vec<u64>) {
    let mut cdf: Vec<f64> = (0..k)
        .scan(0.0, |acc, s| {
            *acc += ratio.powi(s as i32);
            Some(*acc)
        })
        .collect();
    let total = *cdf.last().unwrap();
    cdf.iter_mut().for_each(|c| *c /= total);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let symbols: Vec<u32> = (0..n)
        .map(|_| {
            let u: f64 = rng.random();
            cdf.partition_point(|&c| c <= u).min(k - 1) as u32
        })
        .collect();
    let mut counts = vec![0u64; k];
    symbols.iter().for_each(|&s| counts[s as usize] += 1);
    (symbols, counts)
}

fn bench_codes(c: &mut Criterion) {
    let n = 1_000_000;
    let (symbols, counts) = skewed_symbols(n, 256, 0.97, 42);
    let mut group = c.benchmark_group("huffman_1e6");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(n as u64));
    for coding in [Coding::Huffman, Coding::Fixed] {
        let code = Code::new(coding, &counts).unwrap();
        let bits = code.encode(&symbols).unwrap();
        assert_eq!(code.decode(&bits.bytes, n).unwrap(), symbols);
        group.bench_function(format!("encode/{coding}"), |b| {
            b.iter(|| code.encode(&symbols).unwrap())
        });
        group.bench_function(format!("decode/{coding}"), |b| {
            b.iter(|| code.decode(&bits.bytes, n).unwrap())
        });
    }
    group.bench_function("build/huffman", |b| {
        b.iter(|| Code::new(Coding::Huffman, &counts).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_codes);
criterion_main!(benches);
