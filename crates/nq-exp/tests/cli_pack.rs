//! `nq-exp pack` / `unpack` end to end: a safetensors model and the
//! quantizations of two of its tensors (one pruned) into a .nqz file and
//! back, bit for bit; corrupt files exit 2 with a clear one-line error.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use npyz::WriterBuilder;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde_json::Value;
use tempfile::TempDir;

fn nq() -> Command {
    Command::cargo_bin("nq-exp").unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write_model(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, shape, v)| (n.to_string(), shape.clone(), f32_bytes(v)))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, shape, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, shape.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

fn write_npz(path: &Path, centres: &[f32], assignment: &[u32], survivors: Option<&[u64]>) {
    let mut npz = npyz::npz::NpzWriter::create(path).unwrap();
    let mut w = npz
        .array::<f32>("centres", Default::default())
        .unwrap()
        .default_dtype()
        .shape(&[centres.len() as u64])
        .begin_nd()
        .unwrap();
    w.extend(centres.iter().copied()).unwrap();
    w.finish().unwrap();
    let mut w = npz
        .array::<u32>("assignment", Default::default())
        .unwrap()
        .default_dtype()
        .shape(&[assignment.len() as u64])
        .begin_nd()
        .unwrap();
    w.extend(assignment.iter().copied()).unwrap();
    w.finish().unwrap();
    if let Some(survivors) = survivors {
        let mut w = npz
            .array::<i64>("survivors", Default::default())
            .unwrap()
            .default_dtype()
            .shape(&[survivors.len() as u64])
            .begin_nd()
            .unwrap();
        w.extend(survivors.iter().map(|&p| p as i64)).unwrap();
        w.finish().unwrap();
    }
}

fn read_model(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let values = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (n, v.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A model with a conv kernel, a pruned linear weight and a bias, packed.
fn packed(dir: &TempDir) -> (PathBuf, Value) {
    let model = dir.path().join("model.safetensors");
    let conv: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
    let fc: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) / 10.0).collect();
    write_model(
        &model,
        &[
            ("conv.weight", vec![2, 1, 2, 2], conv),
            ("fc.weight", vec![4, 10], fc),
            (
                "fc.bias",
                vec![4],
                vec![0.5, -0.25, 1e-3, f32::MIN_POSITIVE],
            ),
        ],
    );
    let qconv = dir.path().join("conv.npz");
    write_npz(&qconv, &[0.1, 0.6], &[0, 0, 0, 0, 1, 1, 1, 1], None);
    let qfc = dir.path().join("fc.npz");
    write_npz(&qfc, &[-1.5, 1.25, 9.0], &[0, 1, 1], Some(&[2, 17, 39]));
    let out = dir.path().join("model.nqz");
    let stdout = nq()
        .args(["pack", s(&model), "--out", s(&out)])
        .args(["--quantized", &format!("conv.weight={}", s(&qconv))])
        .args(["--quantized", &format!("fc.weight={}", s(&qfc))])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    (out, serde_json::from_slice(&stdout).unwrap())
}

#[test]
fn pack_then_unpack_gives_the_quantized_model() {
    let dir = TempDir::new().unwrap();
    let (file, summary) = packed(&dir);
    let bytes = std::fs::metadata(&file).unwrap().len();
    assert_eq!(summary["bytes"], bytes);
    assert_eq!(
        summary["payload_bytes"].as_u64().unwrap() + summary["header_bytes"].as_u64().unwrap(),
        bytes
    );
    // payload: conv 8 indices of 1 bit (1 byte) + 2 centres + 2 table bytes;
    // fc 3 indices (1 + 2 + 2 bits: 1 byte), 2 used centres + 2 table bytes,
    // gap fields 3, 15, 22 (3 symbols, 5 bits: 1 byte) + a 32-byte table;
    // bias 4 floats
    assert_eq!(summary["streams"]["float_bits"], 128);
    assert_eq!(summary["streams"]["codebook_bits"], 4 * 32);
    assert_eq!(summary["streams"]["position_table_bits"], 32 * 8);
    assert_eq!(
        summary["payload_bytes"],
        1 + 8 + 2 + 1 + 8 + 2 + 1 + 32 + 16
    );
    assert_eq!(summary["original_bytes"], (8 + 40 + 4) * 4);

    let out = dir.path().join("back.safetensors");
    nq().args(["unpack", s(&file), "--out", s(&out)])
        .assert()
        .success();
    let got = read_model(&out);
    assert_eq!(got[0].0, "conv.weight");
    assert_eq!(got[0].1, vec![2, 1, 2, 2]);
    assert_eq!(got[0].2, vec![0.1, 0.1, 0.1, 0.1, 0.6, 0.6, 0.6, 0.6]);
    assert_eq!(got[1].0, "fc.bias");
    assert_eq!(got[1].2, vec![0.5, -0.25, 1e-3, f32::MIN_POSITIVE]);
    let mut fc = vec![0f32; 40];
    fc[2] = -1.5;
    fc[17] = 1.25;
    fc[39] = 1.25;
    assert_eq!(got[2], ("fc.weight".to_owned(), vec![4, 10], fc));
}

#[test]
fn quantize_then_pack_round_trips() {
    let dir = TempDir::new().unwrap();
    let values: Vec<f32> = (0..300)
        .map(|i| ((i * 7919 % 211) as f32 - 105.0) / 50.0)
        .collect();
    let w = dir.path().join("w.npy");
    let mut out = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[30, 10])
        .writer(std::io::BufWriter::new(std::fs::File::create(&w).unwrap()))
        .begin_nd()
        .unwrap();
    out.extend(values.iter().copied()).unwrap();
    out.finish().unwrap();
    let q = dir.path().join("q.npz");
    let summary: Value = serde_json::from_slice(
        &nq()
            .args([
                "quantize",
                "--weights",
                s(&w),
                "--method",
                "kmeans",
                "--k",
                "8",
                "--out",
                s(&q),
            ])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    let model = dir.path().join("m.safetensors");
    write_model(&model, &[("fc.weight", vec![30, 10], values)]);
    let file = dir.path().join("m.nqz");
    let packed: Value = serde_json::from_slice(
        &nq()
            .args(["pack", s(&model), "--out", s(&file)])
            .args(["--quantized", &format!("fc.weight={}", s(&q))])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    // the file's streams are the accounting of `quantize`
    assert_eq!(
        packed["streams"]["index_bits"],
        summary["size"]["index_bits"]
    );
    assert_eq!(
        packed["streams"]["codebook_bits"],
        summary["size"]["codebook_bits"]
    );
    assert_eq!(
        packed["streams"]["code_table_bits"],
        summary["size"]["code_table_bits"]
    );
    let total = summary["compressed_bits"].as_u64().unwrap();
    let payload = packed["payload_bytes"].as_u64().unwrap();
    assert!(
        payload * 8 >= total && payload * 8 < total + 8,
        "{payload} bytes for {total} bits"
    );

    let back = dir.path().join("back.safetensors");
    nq().args(["unpack", s(&file), "--out", s(&back)])
        .assert()
        .success();
    let mut npz = npyz::npz::NpzArchive::open(&q).unwrap();
    let centres: Vec<f32> = npz.by_name("centres").unwrap().unwrap().into_vec().unwrap();
    let assignment: Vec<u32> = npz
        .by_name("assignment")
        .unwrap()
        .unwrap()
        .into_vec()
        .unwrap();
    let want: Vec<f32> = assignment.iter().map(|&a| centres[a as usize]).collect();
    assert_eq!(read_model(&back)[0].2, want);
}

fn fails_with(args: &[&str], needle: &str) {
    let err = nq().args(args).assert().code(2).get_output().stderr.clone();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
}

#[test]
fn corrupt_files_and_bad_arguments_exit_2() {
    let dir = TempDir::new().unwrap();
    let (file, _) = packed(&dir);
    let good = std::fs::read(&file).unwrap();
    let out = dir.path().join("x.safetensors");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut flipped = good.clone();
    flipped[40] ^= 4;
    let mut version = good.clone();
    version[8] = 9;
    let cases = [
        (write("flipped.nqz", &flipped), "checksum mismatch"),
        (write("short.nqz", &good[..good.len() - 3]), "truncated"),
        (
            write("magic.nqz", b"PK\x03\x04 not an nqz file at all"),
            "bad magic",
        ),
        (write("version.nqz", &version), "unsupported version 9"),
        (dir.path().join("missing.nqz"), "missing.nqz"),
    ];
    for (path, needle) in &cases {
        fails_with(&["unpack", s(path), "--out", s(&out)], needle);
        assert!(!out.exists(), "no output for a corrupt file");
    }
    let model = dir.path().join("model.safetensors");
    let q = dir.path().join("conv.npz");
    let nqz = dir.path().join("y.nqz");
    fails_with(
        &[
            "pack",
            s(&model),
            "--out",
            s(&nqz),
            "--quantized",
            &format!("nope={}", s(&q)),
        ],
        "no such tensor",
    );
    fails_with(
        &[
            "pack",
            s(&model),
            "--out",
            s(&nqz),
            "--quantized",
            &format!("fc.weight={}", s(&q)),
        ],
        "8 cluster indices for tensor `fc.weight` of 40 elements",
    );
    fails_with(
        &[
            "pack",
            s(&model),
            "--out",
            s(&nqz),
            "--quantized",
            "conv.weight",
        ],
        "NAME=Q.npz",
    );
    fails_with(&["pack", s(&q), "--out", s(&nqz)], "not a safetensors file");
}

#[test]
fn recode_changes_the_coding_and_not_the_network() {
    let dir = TempDir::new().unwrap();
    let (file, _) = packed(&dir);
    let unpacked = |nqz: &Path, name: &str| {
        let out = dir.path().join(name);
        nq().args(["unpack", s(nqz), "--out", s(&out)])
            .assert()
            .success();
        read_model(&out)
    };
    let before = unpacked(&file, "before.safetensors");
    let mut sizes = Vec::new();
    for coding in ["context", "fixed", "huffman"] {
        let out = dir.path().join(format!("{coding}.nqz"));
        let stdout = nq()
            .args(["recode", s(&file), "--coding", coding, "--out", s(&out)])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let summary: Value = serde_json::from_slice(&stdout).unwrap();
        assert_eq!(
            summary["bytes_after"],
            std::fs::metadata(&out).unwrap().len()
        );
        assert_eq!(unpacked(&out, &format!("{coding}.safetensors")), before);
        // the file's version: 3 with context coding, 1 otherwise
        let version = u16::from_le_bytes(std::fs::read(&out).unwrap()[8..10].try_into().unwrap());
        assert_eq!(version, if coding == "context" { 3 } else { 1 }, "{coding}");
        sizes.push(summary);
    }
    // context: no code tables and no gap-field table; the flags of fc's 3
    // survivors and both index streams in whole 32-bit words
    let context = &sizes[0]["streams_after"];
    assert_eq!(context["code_table_bits"], 0);
    assert_eq!(context["position_table_bits"], 0);
    assert_eq!(context["index_bits"].as_u64().unwrap() % 32, 0);
    // huffman again is the original file, byte for byte
    assert_eq!(
        std::fs::read(dir.path().join("huffman.nqz")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    fails_with(
        &[
            "recode",
            s(&file),
            "--coding",
            "zip",
            "--out",
            s(&dir.path().join("z.nqz")),
        ],
        "coding",
    );
    let missing = dir.path().join("missing.nqz");
    fails_with(
        &[
            "recode",
            s(&missing),
            "--coding",
            "context",
            "--out",
            s(&dir.path().join("z.nqz")),
        ],
        "missing.nqz",
    );
}
