//! `nq-exp quantize` end to end: the JSON it prints, the .npz it writes,
//! and exit status 2 with a one-line error for every kind of bad input.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use npyz::WriterBuilder;
use serde_json::Value;
use tempfile::TempDir;

fn write_npy<T: npyz::AutoSerialize + Copy>(
    dir: &TempDir,
    name: &str,
    data: &[T],
    shape: &[u64],
) -> PathBuf {
    let path = dir.path().join(name);
    let mut out = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::new(
            std::fs::File::create(&path).unwrap(),
        ))
        .begin_nd()
        .unwrap();
    out.extend(data.iter().copied()).unwrap();
    out.finish().unwrap();
    path
}

fn nq() -> Command {
    Command::cargo_bin("nq-exp").unwrap()
}

fn quantize_json(args: &[&str]) -> Value {
    let out = nq()
        .arg("quantize")
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

fn fails_with(args: &[&str], needle: &str) {
    let out = nq()
        .arg("quantize")
        .args(args)
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(
        err.contains(needle),
        "stderr {err:?} does not mention {needle:?}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn kmeans_summary_by_hand() {
    let dir = TempDir::new().unwrap();
    let w = write_npy(&dir, "w.npy", &[0.0f32, 0.1, 1.0, 1.1], &[2, 2]);
    let j = quantize_json(&[
        "--weights",
        s(&w),
        "--method",
        "kmeans",
        "--k",
        "2",
        "--init",
        "linear",
    ]);
    assert_eq!(j["method"], "kmeans");
    assert_eq!(j["clusters_used"], 2);
    // centres .05 and 1.05: four errors of .05
    assert!((j["distortion_h"].as_f64().unwrap() - 0.01).abs() < 1e-6);
    assert_eq!(j["entropy"], 1.0);
    // Huffman: 1 bit per weight (4 bits) + 2 centres (64) + 2 code lengths (16)
    assert_eq!(j["average_codeword_length"], 1.0);
    assert_eq!(j["compressed_bits"], 84);
    assert!((j["compression_ratio"].as_f64().unwrap() - 128.0 / 84.0).abs() < 1e-9);
}

#[test]
fn out_npz_holds_centres_and_assignment() {
    let dir = TempDir::new().unwrap();
    let w = write_npy(&dir, "w.npy", &[0.0f64, 0.1, 1.0, 1.1, 5.0, 5.0], &[6]);
    let h = write_npy(&dir, "h.npy", &[1.0f32; 6], &[6]);
    let out = dir.path().join("q.npz");
    let j = quantize_json(&[
        "--weights",
        s(&w),
        "--importance",
        s(&h),
        "--method",
        "kmeans-optimal",
        "--k",
        "3",
        "--out",
        s(&out),
    ]);
    assert_eq!(j["clusters_used"], 3);
    let mut npz = npyz::npz::NpzArchive::open(&out).unwrap();
    let centres: Vec<f32> = npz.by_name("centres").unwrap().unwrap().into_vec().unwrap();
    let assignment = npz.by_name("assignment").unwrap().unwrap();
    assert_eq!(assignment.shape(), &[6]);
    let assignment: Vec<u32> = assignment.into_vec().unwrap();
    let q: Vec<f32> = assignment.iter().map(|&a| centres[a as usize]).collect();
    assert!(
        (q[0] - 0.05).abs() < 1e-6 && (q[3] - 1.05).abs() < 1e-6 && q[5] == 5.0,
        "{q:?}"
    );
}

#[test]
fn every_method_runs() {
    let dir = TempDir::new().unwrap();
    let data: Vec<f32> = (0..500)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 100.0)
        .collect();
    let w = write_npy(&dir, "w.npy", &data, &[500]);
    for args in [
        vec!["--method", "kmeans", "--k", "8"],
        vec!["--method", "kmeans-optimal", "--k", "8"],
        vec!["--method", "uniform", "--k", "8", "--coding", "fixed"],
        vec![
            "--method", "uniform", "--delta", "0.1", "--center", "midpoint",
        ],
        vec!["--method", "ecsq", "--k", "32", "--lambda", "0.0001"],
        vec!["--method", "universal", "--k", "8", "--seed", "3"],
        vec!["--method", "universal", "--delta", "0.1"],
    ] {
        let mut all = vec!["--weights", s(&w)];
        all.extend(args.iter().copied());
        let j = quantize_json(&all);
        let used = j["clusters_used"].as_u64().unwrap();
        assert!((1..=32).contains(&used), "{args:?}: {j}");
        assert!(
            j["compression_ratio"].as_f64().unwrap() > 1.0,
            "{args:?}: {j}"
        );
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = TempDir::new().unwrap();
    let w = write_npy(&dir, "w.npy", &[0.0f32, 1.0, 2.0], &[3]);
    let nan = write_npy(&dir, "nan.npy", &[0.0f32, f32::NAN, 2.0], &[3]);
    let ints = write_npy(&dir, "ints.npy", &[1i32, 2, 3], &[3]);
    let neg = write_npy(&dir, "neg.npy", &[1.0f32, -1.0, 1.0], &[3]);
    let short = write_npy(&dir, "short.npy", &[1.0f32, 1.0], &[2]);
    let corrupt = dir.path().join("corrupt.npy");
    std::fs::write(&corrupt, b"\x93NUMPY garbage").unwrap();
    let missing = dir.path().join("missing.npy");
    fails_with(
        &["--weights", s(&missing), "--method", "kmeans", "--k", "2"],
        "missing.npy",
    );
    fails_with(
        &["--weights", s(&corrupt), "--method", "kmeans", "--k", "2"],
        "corrupt.npy",
    );
    fails_with(
        &["--weights", s(&nan), "--method", "kmeans", "--k", "2"],
        "weight 1 is not finite",
    );
    fails_with(
        &["--weights", s(&ints), "--method", "kmeans", "--k", "2"],
        "ints.npy",
    );
    fails_with(
        &["--weights", s(&w), "--method", "kmeans", "--k", "0"],
        "`k`",
    );
    fails_with(
        &[
            "--weights",
            s(&w),
            "--importance",
            s(&neg),
            "--method",
            "kmeans",
            "--k",
            "2",
        ],
        "importance 1",
    );
    fails_with(
        &[
            "--weights",
            s(&w),
            "--importance",
            s(&short),
            "--method",
            "kmeans",
            "--k",
            "2",
        ],
        "shape",
    );
    fails_with(
        &[
            "--weights",
            s(&w),
            "--method",
            "kmeans",
            "--k",
            "2",
            "--lambda",
            "1",
        ],
        "--lambda",
    );
    fails_with(&["--weights", s(&w), "--method", "ecsq"], "--lambda");
    fails_with(
        &["--weights", s(&w), "--method", "ecsq", "--lambda", "-1"],
        "lambda",
    );
    fails_with(
        &[
            "--weights",
            s(&w),
            "--method",
            "uniform",
            "--k",
            "2",
            "--delta",
            "1",
        ],
        "--delta",
    );
    fails_with(
        &[
            "--weights",
            s(&w),
            "--method",
            "kmeans",
            "--k",
            "2",
            "--init",
            "random",
        ],
        "random",
    );
    fails_with(
        &[
            "--weights",
            s(&w),
            "--method",
            "kmeans",
            "--k",
            "2",
            "--coding",
            "zip",
        ],
        "zip",
    );
    // clap's own usage errors also exit 2
    nq().args(["quantize", "--weights", s(&w), "--method", "nope"])
        .assert()
        .code(2);
}
