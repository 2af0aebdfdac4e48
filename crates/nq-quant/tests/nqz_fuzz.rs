//! Fuzzing of the `.nqz` decoder: random networks are encoded, then
//! truncated, bit-flipped (with the checksum fixed up, so the parser meets
//! the damage), spliced or replaced by random bytes, and decoded. The
//! decoder must return a file or an error: a panic fails the test, and the
//! element limit keeps every allocation bounded.
//!
//! Runs for `NQZ_FUZZ_SECONDS` seconds (default 5, so `make test` stays
//! quick) from `NQZ_FUZZ_SEED` (default 0); `make fuzz` runs it for 10
//! minutes in release mode from a fresh seed. The seed is printed so that a
//! failure can be replayed.

use std::time::{Duration, Instant};

use nq_quant::dither::Dither;
use nq_quant::huffman::Coding;
use nq_quant::nqz::{
    decode, decode_with_limits, encode, CodebookIn, EntryKind, Limits, Storage, TensorIn,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PREAMBLE: usize = 24;

/// An encoded random network of up to five tensors.
fn random_file(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let k = if rng.random_bool(0.2) {
        1
    } else {
        rng.random_range(1..=256)
    };
    let coding = match rng.random_range(0..3) {
        0 => Coding::Huffman,
        1 => Coding::Fixed,
        _ => Coding::Context,
    };
    let global = rng.random_bool(0.5);
    let count = rng.random_range(1..=5);
    let books = if global { 1 } else { count };
    let centres: Vec<Vec<f32>> = (0..books)
        .map(|_| (0..k).map(|_| rng.random::<f32>() - 0.5).collect())
        .collect();
    let mut shapes = Vec::new();
    let mut kinds = Vec::new();
    let mut survivors = Vec::new();
    let mut assignments = Vec::new();
    let mut raws = Vec::new();
    for _ in 0..count {
        let shape: Vec<u64> = (0..rng.random_range(1..=3))
            .map(|_| rng.random_range(1..40))
            .collect();
        let n: u64 = shape.iter().product();
        let kind = match rng.random_range(0..3) {
            0 => EntryKind::Conv,
            1 => EntryKind::Linear,
            _ => EntryKind::Other,
        };
        let keep: f64 = rng.random();
        let pruned = kind != EntryKind::Other && rng.random_bool(0.5);
        let s: Option<Vec<u64>> = pruned.then(|| {
            (0..n)
                .filter(|_| rng.random::<f64>() < keep * 0.3)
                .collect()
        });
        let stored = s.as_ref().map_or(n as usize, Vec::len);
        assignments.push(
            (0..stored)
                .map(|_| {
                    let u: f64 = rng.random();
                    ((u * u * k as f64) as u32).min(k as u32 - 1)
                })
                .collect::<Vec<u32>>(),
        );
        raws.push((0..n).map(|_| rng.random::<f32>()).collect::<Vec<f32>>());
        shapes.push(shape);
        kinds.push(kind);
        survivors.push(s);
    }
    let names: Vec<String> = (0..count).map(|i| format!("t{i}")).collect();
    let raw_tensor: Vec<bool> = (0..count).map(|_| rng.random_bool(0.2)).collect();
    // universal quantization's dithered codebooks, now and then
    let codebooks: Vec<CodebookIn<'_>> = centres
        .iter()
        .map(|c| CodebookIn {
            centres: c,
            coding,
            dither: rng.random_bool(0.3).then(|| Dither {
                seed: rng.random(),
                step: rng.random::<f32>() + 1e-3,
            }),
        })
        .collect();
    let tensors: Vec<TensorIn<'_>> = (0..count)
        .map(|i| {
            let codebook = if global { 0 } else { i };
            let storage = match (&survivors[i], raw_tensor[i]) {
                (None, true) => Storage::Raw(&raws[i]),
                (Some(s), _) => Storage::Pruned {
                    codebook,
                    assignment: &assignments[i],
                    survivors: s,
                },
                (None, false) => Storage::Quantized {
                    codebook,
                    assignment: &assignments[i],
                },
            };
            TensorIn {
                name: &names[i],
                shape: &shapes[i],
                kind: kinds[i],
                storage,
            }
        })
        .collect();
    let file = encode(&codebooks, &tensors).expect("valid networks encode");
    assert!(decode(&file.bytes).is_ok(), "an encoded file decodes");
    file.bytes
}

fn fix_preamble(file: &mut [u8]) {
    if file.len() >= PREAMBLE {
        let body_len = (file.len() - PREAMBLE) as u64;
        file[12..20].copy_from_slice(&body_len.to_le_bytes());
        let crc = crc32c::crc32c(&file[PREAMBLE..]);
        file[20..24].copy_from_slice(&crc.to_le_bytes());
    }
}

/// One damaged version of `file`.
fn mutate(file: &[u8], other: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = file.to_vec();
    match rng.random_range(0..6) {
        0 => out.truncate(rng.random_range(0..out.len())),
        1 | 2 => {
            for _ in 0..rng.random_range(1..=8) {
                let i = rng.random_range(PREAMBLE.min(out.len() - 1)..out.len());
                out[i] ^= 1 << rng.random_range(0..8);
            }
        }
        3 => {
            let i = rng.random_range(PREAMBLE..out.len());
            let v: u64 = if rng.random_bool(0.5) {
                u64::MAX >> rng.random_range(0..64)
            } else {
                rng.random()
            };
            let end = (i + 8).min(out.len());
            out[i..end].copy_from_slice(&v.to_le_bytes()[..end - i]);
        }
        4 => {
            // the start of one file, the end of another
            let cut = rng.random_range(PREAMBLE..out.len());
            let from = rng.random_range(PREAMBLE.min(other.len())..=other.len());
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        _ => {
            let n = rng.random_range(0..200);
            out = file[..PREAMBLE].to_vec();
            out.extend((0..n).map(|_| rng.random::<u8>()));
        }
    }
    if rng.random_bool(0.8) {
        fix_preamble(&mut out);
    }
    out
}

#[test]
fn decoder_survives_damaged_files() {
    let seconds: u64 = std::env::var("NQZ_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("NQZ_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    println!("nqz fuzz: seed {seed}, {seconds} s (replay with NQZ_FUZZ_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let limits = Limits {
        max_elements: 1 << 20,
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut files, mut cases, mut decoded) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        let file = random_file(&mut rng);
        let other = random_file(&mut rng);
        files += 2;
        for _ in 0..50 {
            let damaged = mutate(&file, &other, &mut rng);
            cases += 1;
            if decode_with_limits(&damaged, limits).is_ok() {
                decoded += 1;
            }
        }
    }
    println!("nqz fuzz: {files} files, {cases} damaged versions, {decoded} still decoded");
    assert!(cases > 0);
}
