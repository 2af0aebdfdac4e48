//! `.nqz` tests: a file written out by hand, round trips of random
//! networks, agreement with the size accounting, and hostile input.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::dither::Dither;
use crate::error::QuantError;
use crate::huffman::Coding;
use crate::size::{compressed_size, PrunedTensor, SizeInput};

fn is_corrupt(r: Result<Decoded, QuantError>, needle: &str) {
    match r {
        Err(QuantError::Corrupt(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected a corrupt-file error with {needle:?}, got {other:?}"),
    }
}

/// Replaces the body and fixes length and checksum, so that the parser,
/// not the checksum, meets the damage.
fn with_body(file: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = file[..PREAMBLE_BYTES as usize].to_vec();
    out[12..20].copy_from_slice(&(body.len() as u64).to_le_bytes());
    out[20..24].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn tiny() -> Encoded {
    let centres = [-1.0f32, 1.0];
    let codebooks = [CodebookIn {
        centres: &centres,
        coding: Coding::Fixed,
        dither: None,
    }];
    let tensors = [
        TensorIn {
            name: "w",
            shape: &[2, 2],
            kind: EntryKind::Linear,
            storage: Storage::Quantized {
                codebook: 0,
                assignment: &[0, 1, 1, 0],
            },
        },
        TensorIn {
            name: "b",
            shape: &[1],
            kind: EntryKind::Other,
            storage: Storage::Raw(&[0.5]),
        },
    ];
    encode(&codebooks, &tensors).unwrap()
}

#[test]
fn a_tiny_file_by_hand() {
    let e = tiny();
    let f = &e.bytes;
    // body: tensor table 4 + "w" (2 + 1 + 3 + 16 + 4) + "b" (2 + 1 + 3 + 8) = 44;
    // codebooks 4 + 1 + 4 + 8 = 17; mask 1; index stream 8 + 1; floats 4: 75
    assert_eq!(f.len(), 24 + 75);
    assert_eq!(&f[..8], b"\x89NQZ\r\n\x1a\n");
    assert_eq!(&f[8..12], &[1, 0, 0, 0]);
    assert_eq!(u64::from_le_bytes(f[12..20].try_into().unwrap()), 75);
    // the index stream: length 4 bits, then 0110 padded with zeros
    let stream_at = 24 + 44 + 17 + 1;
    assert_eq!(
        u64::from_le_bytes(f[stream_at..stream_at + 8].try_into().unwrap()),
        4
    );
    assert_eq!(f[stream_at + 8], 0b0110_0000);
    assert_eq!(&f[f.len() - 4..], &0.5f32.to_le_bytes());
    // payload: 2 centres (8 bytes) + 1 float (4) + 4 index bits (1 byte)
    assert_eq!(e.streams.index_bits, 4);
    assert_eq!(e.streams.codebook_bits, 64);
    assert_eq!(e.streams.float_bits, 32);
    assert_eq!(e.streams.payload_bytes, 13);
    assert_eq!(e.streams.header_bytes, 86);

    let d = decode(f).unwrap();
    assert_eq!(d.tensors[0].values, vec![-1.0, 1.0, 1.0, -1.0]);
    assert_eq!(d.tensors[0].shape, vec![2, 2]);
    assert_eq!(d.tensors[1].values, vec![0.5]);
    assert_eq!(d.tensors[1].stored, StoredAs::Raw);
    assert_eq!(d.streams, e.streams);
}

#[test]
fn a_pruned_tensor_with_a_filler() {
    // linear, 40 elements, survivors 2 and 39: gaps 3 and 37 = [3], [0, 6]
    let centres = [0.25f32, 7.0, -3.0];
    let codebooks = [CodebookIn {
        centres: &centres,
        coding: Coding::Huffman,
        dither: None,
    }];
    let tensors = [TensorIn {
        name: "fc",
        shape: &[40],
        kind: EntryKind::Linear,
        storage: Storage::Pruned {
            codebook: 0,
            assignment: &[2, 0],
            survivors: &[2, 39],
        },
    }];
    let e = encode(&codebooks, &tensors).unwrap();
    // cluster 1 is unused and dropped: two clusters, one bit each
    assert_eq!(e.codebook_counts, vec![vec![1, 1]]);
    assert_eq!(e.streams.index_bits, 2);
    assert_eq!(e.streams.code_table_bits, 16);
    // fields 3, 0, 6: three symbols of a 3-symbol Huffman code, 1 + 2 + 2 bits
    assert_eq!(e.streams.position_bits, 5);
    assert_eq!(e.streams.position_table_bits, 32 * 8);
    let d = decode(&e.bytes).unwrap();
    let mut want = vec![0f32; 40];
    want[2] = -3.0;
    want[39] = 0.25;
    assert_eq!(d.tensors[0].values, want);
    assert_eq!(d.codebooks[0].0, vec![0.25, -3.0]);
    match &d.tensors[0].stored {
        StoredAs::Pruned {
            survivors,
            assignment,
            ..
        } => {
            assert_eq!(survivors, &vec![2, 39]);
            assert_eq!(assignment, &vec![1, 0]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_input_to_the_encoder_names_the_tensor() {
    let centres = [0.0f32, 1.0];
    let cb = [CodebookIn {
        centres: &centres,
        coding: Coding::Fixed,
        dither: None,
    }];
    let cases: [(TensorIn<'_>, &str); 4] = [
        (
            TensorIn {
                name: "a",
                shape: &[3],
                kind: EntryKind::Conv,
                storage: Storage::Quantized {
                    codebook: 0,
                    assignment: &[0, 1],
                },
            },
            "2 values for shape [3]",
        ),
        (
            TensorIn {
                name: "a",
                shape: &[2],
                kind: EntryKind::Conv,
                storage: Storage::Quantized {
                    codebook: 0,
                    assignment: &[0, 2],
                },
            },
            "outside codebook 0",
        ),
        (
            TensorIn {
                name: "a",
                shape: &[4],
                kind: EntryKind::Conv,
                storage: Storage::Pruned {
                    codebook: 0,
                    assignment: &[0, 1],
                    survivors: &[3, 1],
                },
            },
            "increasing",
        ),
        (
            TensorIn {
                name: "a",
                shape: &[4],
                kind: EntryKind::Other,
                storage: Storage::Pruned {
                    codebook: 0,
                    assignment: &[0],
                    survivors: &[1],
                },
            },
            "conv or linear",
        ),
    ];
    for (t, needle) in cases {
        let err = encode(&cb, &[t]).unwrap_err();
        let text = format!(
            "{err}: {}",
            std::error::Error::source(&err).map_or(String::new(), |s| s.to_string())
        );
        assert!(text.contains("`a`") && text.contains(needle), "{text}");
    }
}

#[test]
fn corrupt_files_get_clear_errors() {
    let good = tiny().bytes;
    let mut bad = good.clone();
    bad[1] = b'X';
    is_corrupt(decode(&bad), "bad magic");
    let mut bad = good.clone();
    bad[8] = 5;
    is_corrupt(decode(&bad), "unsupported version 5");
    // version 2 promises a metadata section that this version 1 body lacks
    let mut bad = good.clone();
    bad[8] = 2;
    is_corrupt(decode(&bad), "the metadata count");
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    is_corrupt(decode(&bad), "checksum mismatch");
    is_corrupt(decode(&good[..good.len() - 1]), "truncated");
    is_corrupt(decode(&good[..5]), "bad magic");
    let mut long = good.clone();
    long.push(0);
    is_corrupt(decode(&long), "after the end of the body");
    // a lying tensor count, with a valid checksum
    let mut body = good[24..].to_vec();
    body[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    is_corrupt(decode(&with_body(&good, &body)), "do not fit");
}

#[test]
fn every_prefix_and_every_bit_flip_is_an_error_or_a_file() {
    let good = tiny().bytes;
    for cut in 0..good.len() {
        assert!(decode(&good[..cut]).is_err());
    }
    let body = &good[24..];
    for bit in 0..body.len() * 8 {
        let mut b = body.to_vec();
        b[bit / 8] ^= 1 << (bit % 8);
        // must not panic; a flip in a centre or a float is still a file
        let _ = decode(&with_body(&good, &b));
    }
}

#[test]
fn a_one_cluster_codebook_cannot_claim_unbounded_weights() {
    let centres = [3.0f32];
    let cb = [CodebookIn {
        centres: &centres,
        coding: Coding::Huffman,
        dither: None,
    }];
    let assignment = vec![0u32; 1000];
    let t = [TensorIn {
        name: "w",
        shape: &[10, 100],
        kind: EntryKind::Conv,
        storage: Storage::Quantized {
            codebook: 0,
            assignment: &assignment,
        },
    }];
    let e = encode(&cb, &t).unwrap();
    assert_eq!(e.streams.index_bits, 0);
    assert!(decode(&e.bytes).unwrap().tensors[0]
        .values
        .iter()
        .all(|&v| v == 3.0));
    let limits = Limits { max_elements: 999 };
    is_corrupt(
        decode_with_limits(&e.bytes, limits),
        "above the limit of 999",
    );
    // the same file claiming 2^62 elements
    let mut body = e.bytes[24..].to_vec();
    let dims_at = 4 + 2 + 1 + 3;
    body[dims_at..dims_at + 8].copy_from_slice(&(1u64 << 31).to_le_bytes());
    body[dims_at + 8..dims_at + 16].copy_from_slice(&(1u64 << 31).to_le_bytes());
    is_corrupt(decode(&with_body(&e.bytes, &body)), "above the limit");
}

/// Shape, kind, stored raw or not, survivors when pruned.
type RandomTensor = (Vec<u64>, EntryKind, bool, Option<Vec<u64>>);

/// A random network: per tensor a shape, a kind, raw or quantized, pruned
/// or not; codebooks per tensor (layer) or one for all (global).
#[derive(Debug, Clone)]
struct Net {
    global: bool,
    coding: Coding,
    k: usize,
    tensors: Vec<RandomTensor>,
    seed: u64,
    /// Whether every other codebook is dithered (universal quantization).
    dithered: bool,
}

fn nets() -> impl Strategy<Value = Net> {
    let tensor = (
        prop::collection::vec(1u64..12, 1..4),
        prop_oneof![Just(EntryKind::Conv), Just(EntryKind::Linear)],
        any::<bool>(),
        0.0f64..1.0,
        any::<u64>(),
    )
        .prop_map(|(shape, kind, raw, keep, seed)| {
            let n: u64 = shape.iter().product();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // raw tensors may be pruned too: stored as survivors' floats
            let survivors = (keep < 0.5).then(|| {
                (0..n)
                    .filter(|_| rng.random::<f64>() < keep)
                    .collect::<Vec<u64>>()
            });
            (shape, kind, raw, survivors)
        });
    (
        any::<bool>(),
        prop_oneof![
            Just(Coding::Fixed),
            Just(Coding::Huffman),
            Just(Coding::Context)
        ],
        prop_oneof![Just(1usize), 1usize..=256],
        prop::collection::vec(tensor, 1..6),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(global, coding, k, tensors, seed, dithered)| Net {
            global,
            coding,
            k,
            tensors,
            seed,
            dithered,
        })
}

struct Built {
    centres: Vec<Vec<f32>>,
    assignments: Vec<Vec<u32>>,
    raws: Vec<Vec<f32>>,
}

fn build(net: &Net) -> Built {
    let mut rng = ChaCha8Rng::seed_from_u64(net.seed);
    let books = if net.global { 1 } else { net.tensors.len() };
    let centres = (0..books)
        .map(|_| (0..net.k).map(|_| rng.random::<f32>() - 0.5).collect())
        .collect();
    // skewed indices so that Huffman codes vary and some clusters stay empty
    let mut assignments = Vec::new();
    let mut raws = Vec::new();
    for (shape, _, _, survivors) in &net.tensors {
        let n = survivors
            .as_ref()
            .map_or(shape.iter().product::<u64>() as usize, Vec::len);
        assignments.push(
            (0..n)
                .map(|_| {
                    let u: f64 = rng.random();
                    ((u * u * net.k as f64) as u32).min(net.k as u32 - 1)
                })
                .collect(),
        );
        raws.push((0..n).map(|_| rng.random::<f32>() * 10.0 - 5.0).collect());
    }
    Built {
        centres,
        assignments,
        raws,
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("layer{i}.weight")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip_and_accounting(net in nets()) {
        let b = build(&net);
        let names = names(net.tensors.len());
        let dithers: Vec<Option<Dither>> = (0..b.centres.len())
            .map(|i| (net.dithered && i % 2 == 0).then_some(Dither { seed: net.seed ^ i as u64, step: 0.25 }))
            .collect();
        let codebooks: Vec<CodebookIn<'_>> = b
            .centres
            .iter()
            .zip(&dithers)
            .map(|(c, &dither)| CodebookIn { centres: c, coding: net.coding, dither })
            .collect();
        let tensors: Vec<TensorIn<'_>> = net
            .tensors
            .iter()
            .enumerate()
            .map(|(i, (shape, kind, raw, survivors))| {
                let codebook = if net.global { 0 } else { i };
                let storage = match (raw, survivors) {
                    (true, Some(s)) => Storage::PrunedRaw { values: &b.raws[i], survivors: s },
                    (true, None) => Storage::Raw(&b.raws[i]),
                    (false, Some(s)) => Storage::Pruned { codebook, assignment: &b.assignments[i], survivors: s },
                    (false, None) => Storage::Quantized { codebook, assignment: &b.assignments[i] },
                };
                TensorIn { name: &names[i], shape, kind: *kind, storage }
            })
            .collect();
        let e = encode(&codebooks, &tensors).unwrap();
        let d = decode(&e.bytes).unwrap();
        prop_assert_eq!(d.streams, e.streams);
        prop_assert_eq!(d.tensors.len(), tensors.len());
        let version = u16::from_le_bytes([e.bytes[8], e.bytes[9]]);
        let any_dither = tensors.iter().any(|t| match t.storage {
            Storage::Quantized { codebook, .. } | Storage::Pruned { codebook, .. } => dithers[codebook].is_some(),
            _ => false,
        });
        prop_assert_eq!(version == 4, any_dither);
        // a dithered codebook's offsets run on over its tensors in table order
        let mut offsets = vec![0u64; codebooks.len()];
        let mut value = |codebook: usize, assignment: &[u32]| -> Vec<f32> {
            let start = offsets[codebook];
            offsets[codebook] += assignment.len() as u64;
            assignment
                .iter()
                .enumerate()
                .map(|(j, &a)| {
                    let u = dithers[codebook].map_or(0.0, |d| d.at(start + j as u64));
                    b.centres[codebook][a as usize] - u
                })
                .collect()
        };
        for (t, got) in tensors.iter().zip(&d.tensors) {
            prop_assert_eq!(&got.name, t.name);
            prop_assert_eq!(&got.shape[..], t.shape);
            let numel = t.shape.iter().product::<u64>() as usize;
            let want: Vec<f32> = match t.storage {
                Storage::Raw(v) => v.to_vec(),
                Storage::Quantized { codebook, assignment } => value(codebook, assignment),
                Storage::Pruned { codebook, assignment, survivors } => {
                    let mut v = vec![0f32; numel];
                    for (&p, x) in survivors.iter().zip(value(codebook, assignment)) {
                        v[p as usize] = x;
                    }
                    v
                }
                Storage::PrunedRaw { values, survivors } => {
                    let mut v = vec![0f32; numel];
                    for (&p, &x) in survivors.iter().zip(values) {
                        v[p as usize] = x;
                    }
                    v
                }
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got.values), bits(&want));
        }
        // every stored cluster has members
        prop_assert!(e.codebook_counts.iter().flatten().all(|&c| c > 0));

        // the payload is the accounting, stream by stream
        // (under context coding, the quantized tensors' positions are in
        // the context streams, not in gap fields)
        let gap_coded = |t: &TensorIn<'_>| {
            net.coding != Coding::Context || matches!(t.storage, Storage::PrunedRaw { .. })
        };
        let pruned: Vec<PrunedTensor> = tensors
            .iter()
            .filter(|t| gap_coded(t))
            .filter_map(|t| match t.storage {
                Storage::Pruned { survivors, .. } | Storage::PrunedRaw { survivors, .. } => Some(PrunedTensor {
                    kind: t.kind.tensor_kind().unwrap(),
                    len: t.shape.iter().product(),
                    survivors: survivors.to_vec(),
                }),
                _ => None,
            })
            .collect();
        let floats: u64 = tensors
            .iter()
            .map(|t| match t.storage {
                Storage::Raw(v) | Storage::PrunedRaw { values: v, .. } => v.len() as u64,
                _ => 0,
            })
            .sum();
        let params: u64 = tensors.iter().map(|t| t.shape.iter().product::<u64>()).sum();
        if !e.codebook_counts.is_empty() {
            let report = compressed_size(&SizeInput {
                codebooks: e.codebook_counts.clone(),
                coding: net.coding,
                context: e.context_bits.clone(),
                pruned,
                unquantized_floats: floats,
                params,
            })
            .unwrap();
            prop_assert_eq!(e.streams.index_bits, report.index_bits);
            prop_assert_eq!(e.streams.codebook_bits, report.codebook_bits);
            prop_assert_eq!(e.streams.code_table_bits, report.code_table_bits);
            prop_assert_eq!(e.streams.position_bits, report.position_bits);
            prop_assert_eq!(e.streams.position_table_bits, report.position_table_bits);
            prop_assert_eq!(e.streams.float_bits, report.float_bits);
            prop_assert_eq!(e.streams.total_bits(), report.total_bits);
            // rounding each coded stream up costs under a byte per stream
            let coded_streams = (2 * e.codebook_counts.len() + 2) as u64;
            prop_assert!(e.streams.payload_bytes * 8 >= report.total_bits);
            prop_assert!(e.streams.payload_bytes * 8 < report.total_bits + 8 * coded_streams);
        }
        prop_assert_eq!(e.streams.payload_bytes + e.streams.header_bytes, e.bytes.len() as u64);
    }

    #[test]
    fn damaged_files_never_panic(net in nets(), flips in prop::collection::vec(any::<u64>(), 1..8), cut in any::<u64>(), fix_crc in any::<bool>()) {
        let b = build(&net);
        let centres = &b.centres[0];
        let assignment = &b.assignments[0];
        let (shape, kind, _, survivors) = &net.tensors[0];
        let storage = match survivors {
            Some(s) => Storage::Pruned { codebook: 0, assignment, survivors: s },
            None => Storage::Quantized { codebook: 0, assignment },
        };
        let t = [TensorIn { name: "t", shape, kind: *kind, storage }];
        let e = encode(&[CodebookIn { centres, coding: net.coding, dither: None }], &t).unwrap();
        let mut body = e.bytes[24..].to_vec();
        for f in flips {
            let bit = (f % (body.len() as u64 * 8)) as usize;
            body[bit / 8] ^= 1 << (bit % 8);
        }
        let mut file = if fix_crc { with_body(&e.bytes, &body) } else {
            let mut f = e.bytes[..24].to_vec();
            f.extend_from_slice(&body);
            f
        };
        if cut % 3 == 0 {
            file.truncate((cut / 3 % file.len() as u64) as usize);
        }
        let limits = Limits { max_elements: 1 << 20 };
        let _ = decode_with_limits(&file, limits);
    }
}

fn tiny_with_metadata(metadata: &Metadata) -> Encoded {
    let centres = [-1.0f32, 1.0];
    let codebooks = [CodebookIn {
        centres: &centres,
        coding: Coding::Fixed,
        dither: None,
    }];
    let tensors = [TensorIn {
        name: "w",
        shape: &[2],
        kind: EntryKind::Linear,
        storage: Storage::Quantized {
            codebook: 0,
            assignment: &[0, 1],
        },
    }];
    encode_with_metadata(&codebooks, &tensors, metadata).unwrap()
}

#[test]
fn metadata_is_a_version_2_section_after_the_floats() {
    let metadata = Metadata::from([
        ("arch".to_owned(), "lenet5".to_owned()),
        ("input.mean".to_owned(), "0.286".to_owned()),
    ]);
    let with = tiny_with_metadata(&metadata);
    let without = tiny_with_metadata(&Metadata::new());
    assert_eq!(u16::from_le_bytes([without.bytes[8], without.bytes[9]]), 1);
    assert_eq!(u16::from_le_bytes([with.bytes[8], with.bytes[9]]), 2);
    // count 4, then (2 + 4 + 4 + 6) and (2 + 10 + 4 + 5) bytes, all header
    let section = 4 + (2 + 4 + 4 + 6) + (2 + 10 + 4 + 5);
    assert_eq!(with.bytes.len(), without.bytes.len() + section);
    assert_eq!(with.streams.payload_bytes, without.streams.payload_bytes);
    assert_eq!(
        with.streams.header_bytes,
        without.streams.header_bytes + section as u64
    );
    let tail = &with.bytes[with.bytes.len() - section..];
    assert_eq!(&tail[..8], &[2, 0, 0, 0, 4, 0, b'a', b'r']);
    let d = decode(&with.bytes).unwrap();
    assert_eq!(d.metadata, metadata);
    assert_eq!(d.streams, with.streams);
    assert_eq!(d.tensors, decode(&without.bytes).unwrap().tensors);
    assert!(decode(&without.bytes).unwrap().metadata.is_empty());
}

#[test]
fn damaged_metadata_is_named() {
    let good = tiny_with_metadata(&Metadata::from([
        ("a".to_owned(), "x".to_owned()),
        ("b".to_owned(), "y".to_owned()),
    ]))
    .bytes;
    let body = &good[24..];
    let at = body.len() - (4 + 2 * (2 + 1 + 4 + 1));
    // keys out of order: swap "a" and "b"
    let mut b = body.to_vec();
    b[at + 6] = b'b';
    b[at + 6 + 8] = b'a';
    is_corrupt(decode(&with_body(&good, &b)), "unique and in order");
    // a value that is not UTF-8
    let mut b = body.to_vec();
    b[at + 4 + 7] = 0xFF;
    is_corrupt(
        decode(&with_body(&good, &b)),
        "metadata `a`: value is not UTF-8",
    );
    // a lying count
    let mut b = body.to_vec();
    b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    is_corrupt(decode(&with_body(&good, &b)), "do not fit");
    for cut in 24..good.len() {
        assert!(decode(&with_body(&good, &body[..cut - 24])).is_err());
    }
}

#[test]
fn a_pruned_float_tensor_stores_its_survivors_and_their_positions() {
    // linear 2 x 4, survivors 1 and 6: gap fields 2 and 5 (5-bit fields)
    let survivors = [1u64, 6];
    let values = [0.5f32, -2.0];
    let tensors = [TensorIn {
        name: "fc.weight",
        shape: &[2, 4],
        kind: EntryKind::Linear,
        storage: Storage::PrunedRaw {
            values: &values,
            survivors: &survivors,
        },
    }];
    let e = encode(&[], &tensors).unwrap();
    assert_eq!(u16::from_le_bytes([e.bytes[8], e.bytes[9]]), 2);
    assert_eq!(e.streams.float_bits, 64);
    assert_eq!(e.streams.position_table_bits, 8 * 32);
    let d = decode(&e.bytes).unwrap();
    assert_eq!(
        d.tensors[0].values,
        [0.0, 0.5, 0.0, 0.0, 0.0, 0.0, -2.0, 0.0]
    );
    assert_eq!(
        d.tensors[0].stored,
        StoredAs::PrunedRaw {
            survivors: survivors.to_vec()
        }
    );
    assert!(d.metadata.is_empty());
    // storage 3 in a version 1 file is refused
    let mut v1 = e.bytes.clone();
    v1[8] = 1;
    assert!(decode(&v1).is_err());
    // the kind must give the gap fields their width
    let other = [TensorIn {
        kind: EntryKind::Other,
        ..tensors[0]
    }];
    assert!(encode(&[], &other).is_err());
}

#[test]
fn a_dithered_codebook_by_hand() {
    // two tensors share a dithered codebook: the second one's offsets
    // continue where the first one's stop, and only its survivors have any
    let centres = [-1.0f32, 1.0];
    let dither = Dither {
        seed: 99,
        step: 2.0,
    };
    let codebooks = [CodebookIn {
        centres: &centres,
        coding: Coding::Huffman,
        dither: Some(dither),
    }];
    let tensors = [
        TensorIn {
            name: "a",
            shape: &[3],
            kind: EntryKind::Linear,
            storage: Storage::Quantized {
                codebook: 0,
                assignment: &[0, 1, 1],
            },
        },
        TensorIn {
            name: "b",
            shape: &[2, 2],
            kind: EntryKind::Linear,
            storage: Storage::Pruned {
                codebook: 0,
                assignment: &[1, 0],
                survivors: &[1, 2],
            },
        },
    ];
    let e = encode(&codebooks, &tensors).unwrap();
    assert_eq!(u16::from_le_bytes([e.bytes[8], e.bytes[9]]), 4);
    let without = encode(
        &[CodebookIn {
            dither: None,
            ..codebooks[0]
        }],
        &tensors,
    )
    .unwrap();
    // seed and step are header: 12 bytes more, the payload unchanged (and
    // 4 for the metadata count, which version 1 leaves out)
    assert_eq!(e.streams.payload_bytes, without.streams.payload_bytes);
    assert_eq!(e.bytes.len(), without.bytes.len() + 12 + 4);
    let d = decode(&e.bytes).unwrap();
    let u = dither.range(0, 5);
    assert_eq!(d.tensors[0].values, [-1.0 - u[0], 1.0 - u[1], 1.0 - u[2]]);
    assert_eq!(d.tensors[1].values, [0.0, 1.0 - u[3], -1.0 - u[4], 0.0]);
    assert_eq!(d.dithers, [Some(dither)]);
    assert!(u.iter().all(|&x| x != 0.0 && x.abs() <= 1.0));
    // a dithered codebook in an older version is refused
    let mut v3 = e.bytes.clone();
    v3[8] = 3;
    is_corrupt(decode(&v3), "in a version 3 file");
    // and a step that is not positive and finite, on either side
    let bad = Dither { seed: 0, step: 0.0 };
    assert!(encode(
        &[CodebookIn {
            dither: Some(bad),
            ..codebooks[0]
        }],
        &tensors
    )
    .is_err());
    let at = e
        .bytes
        .windows(4)
        .rposition(|w| w == 2.0f32.to_le_bytes())
        .unwrap();
    let mut body = e.bytes[PREAMBLE_BYTES as usize..].to_vec();
    body[at - PREAMBLE_BYTES as usize..][..4].copy_from_slice(&f32::NAN.to_le_bytes());
    is_corrupt(decode(&with_body(&e.bytes, &body)), "dither step NaN");
}
