//! Weighted k-means at N = 1e6 (k = 16 and 256) next to one sort of the
//! same vector, the floor any sort-based 1-D k-means pays: the standard
//! library's comparison sort and the radix sort k-means uses.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nq_quant::kmeans::{kmeans, KmeansInit, KmeansParams};
use nq_quant::kmeans_optimal::{kmeans_optimal, OptimalParams};
use nq_quant::synthetic::laplace_weights;

fn bench_kmeans(c: &mut Criterion) {
    let n = 1_000_000;
    let (w, h) = laplace_weights(n, 42);
    let mut group = c.benchmark_group("kmeans_1e6");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(n as u64));
    group.bench_function("sort_unstable", |b| {
        b.iter(|| {
            let mut v = w.clone();
            v.sort_unstable_by(f32::total_cmp);
            v
        })
    });
    group.bench_function("radix_sorted_keys", |b| {
        b.iter(|| nq_quant::sort::sorted_keys(&w))
    });
    for k in [16, 256] {
        let params = KmeansParams {
            k,
            init: KmeansInit::PlusPlus,
            max_iter: 1000,
            seed: 0,
        };
        group.bench_with_input(BenchmarkId::new("weighted", k), &params, |b, p| {
            b.iter(|| kmeans(&w, &h, p).unwrap())
        });
    }
    group.finish();

    let n = 100_000;
    let (w, h) = laplace_weights(n, 7);
    let mut group = c.benchmark_group("kmeans_optimal_1e5");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(n as u64));
    for k in [16, 256] {
        group.bench_with_input(BenchmarkId::new("weighted", k), &k, |b, &k| {
            b.iter(|| kmeans_optimal(&w, &h, &OptimalParams { k }).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_kmeans);
criterion_main!(benches);
