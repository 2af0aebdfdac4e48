//! The compensated rounding's factorisation (`Compensator::new`: damping,
//! one Cholesky factorisation and one triangular inverse) and one
//! compensated pass, on a random symmetric positive definite block of
//! `n` weights, onto 16 centres. The peer is GPTQ's own factorisation in
//! PyTorch (`scripts/bench_gptq_factor.py`, the same sizes).

use criterion::{criterion_group, criterion_main, Criterion};
use nq_quant::compensation::{CompensationParams, Compensator};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `B B^T / n + I` for `B` of standard normal-ish entries: row-major,
/// symmetric positive definite.
fn block(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let b: Vec<f64> = (0..n * n).map(|_| rng.random::<f64>() - 0.5).collect();
    let mut h = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = b[i * n..(i + 1) * n]
                .iter()
                .zip(&b[j * n..(j + 1) * n])
                .map(|(x, y)| x * y)
                .sum();
            let v = dot / n as f64 + if i == j { 1.0 } else { 0.0 };
            h[i * n + j] = v;
            h[j * n + i] = v;
        }
    }
    h
}

fn bench_compensation(c: &mut Criterion) {
    let mut group = c.benchmark_group("compensation");
    group.sample_size(10);
    let centres: Vec<f32> = (0..16).map(|i| -1.0 + i as f32 * 2.0 / 15.0).collect();
    for n in [1000, 4000] {
        let h = block(n, 7);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let w: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let params = CompensationParams::default();
        group.bench_function(format!("factorise_n{n}"), |b| {
            b.iter(|| Compensator::new(&h, n, &params).unwrap())
        });
        let compensator = Compensator::new(&h, n, &params).unwrap();
        group.bench_function(format!("round_n{n}"), |b| {
            b.iter(|| compensator.round(&w, &centres).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_compensation);
criterion_main!(benches);
