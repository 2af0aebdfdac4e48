//! Writing and reading a `.nqz` file of a LeNet-5-sized network: 431,080
//! weights in four tensors sharing one 32-cluster Huffman codebook, the two
//! fully connected ones pruned to 10 % (the other two kept dense). Throughput
//! is in bytes of the float32 model, so MB/s compares with reading or
//! writing the uncompressed weights.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nq_quant::huffman::Coding;
use nq_quant::nqz::{decode, encode, CodebookIn, EntryKind, Storage, TensorIn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SHAPES: [(&str, &[u64], EntryKind, bool); 4] = [
    ("conv1.weight", &[20, 1, 5, 5], EntryKind::Conv, false),
    ("conv2.weight", &[50, 20, 5, 5], EntryKind::Conv, false),
    ("fc1.weight", &[500, 800], EntryKind::Linear, true),
    ("fc2.weight", &[10, 500], EntryKind::Linear, true),
];

fn bench_nqz(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let k = 32;
    let centres: Vec<f32> = (0..k).map(|j| (j as f32 - 16.0) / 100.0).collect();
    let mut parts = Vec::new();
    let mut weights = 0u64;
    for (_, shape, _, pruned) in SHAPES {
        let n: u64 = shape.iter().product();
        weights += n;
        let survivors: Option<Vec<u64>> =
            pruned.then(|| (0..n).filter(|_| rng.random::<f64>() < 0.1).collect());
        let stored = survivors.as_ref().map_or(n as usize, Vec::len);
        let assignment: Vec<u32> = (0..stored)
            .map(|_| {
                // a peaked distribution, as trained weights give
                let u: f64 = rng.random();
                ((u * u * k as f64) as u32).min(k as u32 - 1)
            })
            .collect();
        parts.push((assignment, survivors));
    }
    let codebooks = [CodebookIn {
        centres: &centres,
        coding: Coding::Huffman,
        dither: None,
    }];
    let tensors: Vec<TensorIn<'_>> = SHAPES
        .iter()
        .zip(&parts)
        .map(
            |(&(name, shape, kind, _), (assignment, survivors))| TensorIn {
                name,
                shape,
                kind,
                storage: match survivors {
                    Some(s) => Storage::Pruned {
                        codebook: 0,
                        assignment,
                        survivors: s,
                    },
                    None => Storage::Quantized {
                        codebook: 0,
                        assignment,
                    },
                },
            },
        )
        .collect();
    let file = encode(&codebooks, &tensors).unwrap();
    decode(&file.bytes).unwrap();

    let mut group = c.benchmark_group("nqz_lenet5");
    group
        .sample_size(20)
        .throughput(Throughput::Bytes(4 * weights));
    group.bench_function("encode", |b| {
        b.iter(|| encode(&codebooks, &tensors).unwrap())
    });
    group.bench_function("decode", |b| b.iter(|| decode(&file.bytes).unwrap()));
    group.finish();
}

criterion_group!(benches, bench_nqz);
criterion_main!(benches);
