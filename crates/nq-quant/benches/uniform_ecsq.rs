//! Uniform quantization and iterative ECSQ at N = 1e6 (paper.md 4.2, 4.3).
//!
//! Weights are Laplace with standard deviation 0.05 (a trained layer's
//! shape), importances exponential with mean 1. Uniform runs at k = 16 and
//! 256 cells with midpoint and h-weighted-mean centres; ECSQ starts from
//! k_init = 256 (uniform and k-means++ starts) with lambda = 2e-4, which
//! leaves about 30 clusters (about 1.9 bits per weight) after 35 to 45
//! iterations.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nq_quant::ecsq::{ecsq, EcsqInit, EcsqParams};
use nq_quant::synthetic::laplace_weights;
use nq_quant::uniform::{uniform, UniformCentre, UniformParams};

fn bench_uniform_ecsq(c: &mut Criterion) {
    let n = 1_000_000;
    let (w, h) = laplace_weights(n, 42);

    let mut group = c.benchmark_group("uniform_1e6");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(n as u64));
    for k in [16, 256] {
        for centre in [UniformCentre::Midpoint, UniformCentre::WeightedMean] {
            let params = UniformParams {
                centre,
                ..UniformParams::cells(k)
            };
            group.bench_with_input(BenchmarkId::new(centre.as_str(), k), &params, |b, p| {
                b.iter(|| uniform(&w, &h, p).unwrap())
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("ecsq_1e6");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(n as u64));
    for init in [EcsqInit::Uniform, EcsqInit::KmeansPlusPlus] {
        let params = EcsqParams {
            lambda: 2e-4,
            k_init: 256,
            init,
            ..EcsqParams::default()
        };
        group.bench_with_input(
            BenchmarkId::new("k_init_256", init.as_str()),
            &params,
            |b, p| b.iter(|| ecsq(&w, &h, p).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_uniform_ecsq);
criterion_main!(benches);
