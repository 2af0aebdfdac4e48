//! `nq-exp compress` on checkpoints as PyTorch writes them: the venv's
//! PyTorch saves a small network in float16 with a BatchNorm (an int64
//! counter) and its Adam state; the command prunes, quantizes with Adam's
//! sqrt(v) as importance and writes a `.nqz` whose unpacked tensors PyTorch
//! loads back. Bad checkpoints, regexes and importances exit 2 naming the
//! file and the tensor.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::Value;

fn nq() -> Command {
    Command::cargo_bin("nq-exp").unwrap()
}

fn python() -> PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make setup` (make test does)",
        py.display()
    );
    py
}

/// The stdout of a command that must have succeeded (its stderr if not).
fn stdout_of(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn run_python(code: &str, dir: &Path) -> String {
    let out = Process::new(python())
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(stdout_of(out)).unwrap()
}

/// A float16 checkpoint of a small MLP with a BatchNorm, and Adam's state
/// after a few steps as `exp_avg_sq` per parameter name.
const WRITE_CHECKPOINT: &str = r#"
import torch
from safetensors.torch import save_file
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                          torch.nn.Linear(16, 4))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for _ in range(5):
    x, y = torch.randn(32, 20), torch.randint(0, 4, (32,))
    opt.zero_grad(); torch.nn.functional.cross_entropy(net(x), y).backward(); opt.step()
state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
save_file(state, "net.safetensors", metadata={"format": "pt"})
names = dict(net.named_parameters())
save_file({n: opt.state[p]["exp_avg_sq"] for n, p in names.items()}, "adam.safetensors")
"#;

#[test]
fn a_pytorch_float16_checkpoint_compresses_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    run_python(WRITE_CHECKPOINT, dir.path());
    let out = nq()
        .current_dir(dir.path())
        .args([
            "compress",
            "net.safetensors",
            "--method",
            "kmeans",
            "--k",
            "4",
            "--scope",
            "global",
            "--keep",
            "0.5",
            "--importance",
            "adam.safetensors",
            "--sqrt-importance",
            "--out",
            "net.nqz",
        ])
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    let quantized: Vec<&str> = summary["quantized"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // the two weight matrices; biases and the BatchNorm stay float32
    assert_eq!(quantized, ["0.weight", "3.weight"]);
    let kept: u64 = summary["quantized"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kept"].as_u64().unwrap())
        .sum();
    assert_eq!(kept, (20 * 16 + 16 * 4) / 2);
    assert_eq!(summary["quantized"][0]["stored_as"], "F16");
    assert!(summary["unquantized"]
        .as_array()
        .unwrap()
        .contains(&Value::from("1.num_batches_tracked")));
    let bytes = summary["bytes"].as_u64().unwrap();
    assert_eq!(
        bytes,
        std::fs::metadata(dir.path().join("net.nqz")).unwrap().len()
    );
    assert!(summary["compression_ratio"].as_f64().unwrap() > 1.0);

    let out = nq()
        .current_dir(dir.path())
        .args(["unpack", "net.nqz", "--out", "q.safetensors"])
        .output()
        .unwrap();
    stdout_of(out);
    // PyTorch: the unpacked model loads into the network (after casting back
    // as the metadata says), keeps the checkpoint's metadata, shares four
    // values over both weights, zero where pruned, untouched elsewhere
    let checked = run_python(
        r#"
import json, torch
from safetensors import safe_open
from safetensors.torch import load_file
original, q = load_file("net.safetensors"), load_file("q.safetensors")
with safe_open("q.safetensors", "pt") as f:
    meta = f.metadata()
assert meta["format"] == "pt", meta
settings = json.loads(meta["nq-exp.compress"])
assert settings["method"] == "kmeans" and settings["keep"] == 0.5, settings
stored = json.loads(meta["nq-exp.stored-as"])
assert stored["0.weight"] == "F16" and stored["1.num_batches_tracked"] == "I64", stored
weights = torch.cat([q["0.weight"].flatten(), q["3.weight"].flatten()])
distinct = torch.unique(weights[weights != 0])
assert len(distinct) <= 4, distinct
assert (weights == 0).sum().item() == weights.numel() // 2
for name in ["0.bias", "1.weight", "1.running_var", "3.bias", "1.num_batches_tracked"]:
    assert torch.equal(q[name], original[name].float()), name
net = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                          torch.nn.Linear(16, 4))
net.load_state_dict({k: v.to(original[k].dtype) if k in stored and stored[k].startswith("I") else v
                     for k, v in q.items()})
print(len(distinct))
"#,
        dir.path(),
    );
    assert!(checked.trim().parse::<usize>().unwrap() >= 2, "{checked}");
}

fn write(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.to_string(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

fn fails_with(dir: &Path, args: &[&str], needles: &[&str]) {
    let out = nq()
        .current_dir(dir)
        .arg("compress")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr} lacks {needle:?}"
        );
    }
    assert!(!dir.join("out.nqz").exists(), "{args:?} left a file");
}

#[test]
fn bad_checkpoints_regexes_and_importances_exit_2_naming_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w: Vec<f32> = (0..12).map(|i| i as f32 / 10.0).collect();
    write(
        &d.join("ok.safetensors"),
        &[
            ("fc.weight", vec![3, 4], w.clone()),
            ("fc.bias", vec![3], vec![0.0; 3]),
        ],
    );
    let mut nan = w.clone();
    nan[5] = f32::NAN;
    write(
        &d.join("nan.safetensors"),
        &[("fc.weight", vec![3, 4], nan)],
    );
    write(
        &d.join("h_missing.safetensors"),
        &[("other", vec![3, 4], vec![1.0; 12])],
    );
    write(
        &d.join("h_shape.safetensors"),
        &[("fc.weight", vec![4, 3], vec![1.0; 12])],
    );
    std::fs::write(
        d.join("garbage.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}",
    )
    .unwrap();
    let k4 = ["--method", "kmeans", "--k", "4", "--out", "out.nqz"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = extra.to_vec();
        v.extend(k4);
        v
    };
    fails_with(
        d,
        &with(&["garbage.safetensors"]),
        &["garbage.safetensors", "not a safetensors file"],
    );
    fails_with(
        d,
        &with(&["missing.safetensors"]),
        &["cannot read missing.safetensors"],
    );
    fails_with(
        d,
        &with(&["nan.safetensors"]),
        &["nan.safetensors", "`fc.weight`", "NaN"],
    );
    fails_with(
        d,
        &with(&["ok.safetensors", "--tensors", "^conv"]),
        &["--tensors ^conv matches no tensor", "fc.weight"],
    );
    fails_with(
        d,
        &with(&["ok.safetensors", "--importance", "h_missing.safetensors"]),
        &["h_missing.safetensors", "`fc.weight`", "missing"],
    );
    fails_with(
        d,
        &with(&["ok.safetensors", "--importance", "h_shape.safetensors"]),
        &["h_shape.safetensors", "`fc.weight`", "shape [4, 3]"],
    );
    fails_with(d, &with(&["ok.safetensors", "--keep", "0"]), &["--keep 0"]);
    // and the good one works, storing the bias as float32
    let out = nq()
        .current_dir(d)
        .arg("compress")
        .arg("ok.safetensors")
        .args(k4)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    assert_eq!(summary["unquantized"], serde_json::json!(["fc.bias"]));
    assert_eq!(summary["quantized"][0]["clusters"], 4);
}

#[test]
fn context_coding_is_smaller_where_one_cluster_dominates_and_decodes_alike() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a 64 x 64 matrix of which 95 % is one value: Huffman cannot go below
    // one bit per weight, context coding can
    let w: Vec<f32> = (0..64 * 64)
        .map(|i| {
            if i % 20 == 0 {
                1.0 + (i % 7) as f32
            } else {
                0.01
            }
        })
        .collect();
    write(&d.join("m.safetensors"), &[("fc.weight", vec![64, 64], w)]);
    let compress = |coding: &str, keep: Option<&str>| -> Value {
        let mut args = vec![
            "compress",
            "m.safetensors",
            "--method",
            "kmeans",
            "--k",
            "8",
            "--coding",
            coding,
            "--out",
        ];
        let out_name = format!("{coding}{}.nqz", keep.map_or("", |_| "-pruned"));
        args.push(&out_name);
        if let Some(keep) = keep {
            args.extend(["--keep", keep]);
        }
        let out = nq().current_dir(d).args(&args).output().unwrap();
        serde_json::from_slice(&stdout_of(out)).unwrap()
    };
    let unpacked = |name: &str| {
        let out = nq()
            .current_dir(d)
            .args(["unpack", name, "--out", "u.safetensors"])
            .output()
            .unwrap();
        stdout_of(out);
        let bytes = std::fs::read(d.join("u.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        st.tensor("fc.weight").unwrap().data().to_vec()
    };
    for keep in [None, Some("0.3")] {
        let huffman = compress("huffman", keep);
        let context = compress("context", keep);
        let bits = |s: &Value| s["size"]["index_bits"].as_u64().unwrap();
        // Huffman's floor: a bit per stored weight
        let stored = huffman["size"]["quantized_weights"].as_u64().unwrap();
        assert!(bits(&huffman) >= stored, "{huffman}");
        // unpruned, 95 % of the weights in one cluster (entropy 0.43 bits):
        // under half of it; pruned to 30 %, 83 % in one: below it
        let factor = if keep.is_none() { 2 } else { 1 };
        assert!(
            bits(&context) * factor < bits(&huffman),
            "{context} vs {huffman}"
        );
        assert_eq!(context["size"]["code_table_bits"], 0);
        let suffix = keep.map_or("", |_| "-pruned");
        // the same network in both files (the metadata names the coding)
        let same =
            unpacked(&format!("huffman{suffix}.nqz")) == unpacked(&format!("context{suffix}.nqz"));
        assert!(same, "the two codings decode to different weights");
    }
}

#[test]
fn universal_quantization_keeps_its_dither_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w: Vec<f32> = (0..40 * 30)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let v: Vec<f32> = (0..20 * 10).map(|i| (i % 13) as f32 / 20.0 - 0.3).collect();
    write(
        &d.join("m.safetensors"),
        &[
            ("a.weight", vec![40, 30], w.clone()),
            ("b.weight", vec![20, 10], v.clone()),
        ],
    );
    let args = [
        "compress",
        "m.safetensors",
        "--method",
        "universal",
        "--k",
        "8",
        "--scope",
        "global",
        "--keep",
        "0.5",
        "--seed",
        "7",
        "--out",
        "u.nqz",
    ];
    let summary: Value =
        serde_json::from_slice(&stdout_of(nq().current_dir(d).args(args).output().unwrap()))
            .unwrap();
    assert_eq!(summary["method"], "universal", "{summary}");
    let bytes = std::fs::read(d.join("u.nqz")).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 4);
    let file = nq_quant::nqz::decode(&bytes).unwrap();
    let dither = file.dithers[0].expect("a dithered codebook");
    assert_eq!(dither.seed, 7);
    // every survivor within half a step of its weight (midpoint centres),
    // and far more distinct values than the codebook's 8 or so centres
    for (name, original) in [("a.weight", &w), ("b.weight", &v)] {
        let t = file.tensors.iter().find(|t| t.name == name).unwrap();
        let mut distinct = std::collections::HashSet::new();
        for (&q, &x) in t.values.iter().zip(original.iter()) {
            if q != 0.0 {
                assert!(
                    (q - x).abs() <= dither.step / 2.0 + 1e-6,
                    "{name}: {x} -> {q}"
                );
                distinct.insert(q.to_bits());
            }
        }
        assert!(distinct.len() > 50, "{name}: {} values", distinct.len());
    }
    // a .npz of `quantize --out` cannot hold the dither: refused, exit 2
    let out = nq()
        .current_dir(d)
        .args([
            "quantize",
            "--weights",
            "w.npy",
            "--method",
            "universal",
            "--k",
            "8",
            "--out",
            "q.npz",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--out does not apply to --method universal")
    );
}
