//! The user's own network through a grid: a TorchScript MLP (scripted) and
//! a small CNN with batch norm (traced), written with the venv's PyTorch by
//! `scripts/torchscript_example.py` with their data as safetensors
//! (`dataset = "tensors"`). Every stage runs on them; the CNN used as it
//! came (`epochs = 0`) reports exactly the top-1 PyTorch measured, which
//! needs its batch-norm statistics; bad files exit 2 naming the file.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Writes the example modules and data into `dir`; PyTorch's top-1 of the
/// trained CNN.
fn example(dir: &Path) -> f64 {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make setup` (make test does)",
        python.display()
    );
    let out = std::process::Command::new(python)
        .arg(repo().join("scripts/torchscript_example.py"))
        .arg(dir)
        .output()
        .unwrap();
    let printed: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    printed["cnn_test_top1"].as_f64().unwrap()
}

const GRID: &str = r#"
name = "tiny"
description = "a TorchScript module of the user's"

[model]
arch = "torchscript"
model_file = "MODEL"
dataset = "tensors"
data_dir = "DATA"

[train]
epochs = 3
optimizer = "adam"
lr = 1e-2
batch_size = 32

[prune.half]
keep = 0.5
retrain_epochs = 1

[importance.hessian]
estimator = "gauss-newton"
samples = 16

[finetune]
epochs = 1
lr = 1e-3

[grid]
seed = [0]
prune = ["none", "half"]
method = ["kmeans"]
weighting = ["none", "hessian"]
scope = ["global"]
k = [4]
finetune = [true]
"#;

fn grid(root: &Path, model: &str, text: &str) -> PathBuf {
    let path = root.join("grid.toml");
    let text = text
        .replace("MODEL", s(&root.join(model)))
        .replace("DATA", s(&root.join("data")));
    std::fs::write(&path, text).unwrap();
    path
}

fn run_failing(grid: &Path, results: &Path) -> String {
    let out = nq()
        .args(["run", s(grid), "--results", s(results), "--threads", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_scripted_mlp_and_a_traced_cnn_go_through_every_stage() {
    let root = tempfile::tempdir().unwrap();
    let pytorch_top1 = example(root.path());

    // the MLP, trained here: pruning, Hessian weighting, fine-tuning, .nqz
    let results = root.path().join("mlp-results");
    run(&grid(root.path(), "mlp.pt", GRID), &results);
    let mlp_rows = rows(&results);
    assert_eq!(mlp_rows.len(), 4);
    for row in &mlp_rows {
        assert_eq!(row["status"], "ok", "{row}");
        assert!(row["baseline_top1"].as_f64().unwrap() > 60.0, "{row}");
        assert!(row["top1"].as_f64().unwrap() > 40.0, "{row}");
        let cell = results
            .join("tiny/cells")
            .join(row["cell"].as_str().unwrap());
        let unpacked = root.path().join("unpacked.safetensors");
        let out = nq()
            .args(["unpack", s(&cell.join("model.nqz")), "--out", s(&unpacked)])
            .output()
            .unwrap();
        let summary: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
        assert_eq!(summary["metadata"]["architecture"], "torchscript");
        assert_eq!(summary["metadata"]["input.shape"], "[1,12,12]");
    }
    let pruned = mlp_rows.iter().find(|r| r["prune"] == "half").unwrap();
    let unpruned = mlp_rows.iter().find(|r| r["prune"] != "half").unwrap();
    // fc1 144 x 32 and fc2 32 x 4 quantized; pruning keeps half of them
    assert_eq!(unpruned["quantized_weights"], 4736, "{unpruned}");
    assert_eq!(pruned["quantized_weights"], 2368, "{pruned}");

    // the CNN as it came: its top-1 is PyTorch's (batch norm in evaluation
    // mode, with the statistics it was traced with); only the conv weight
    // is quantized
    let cnn = GRID
        .replace("epochs = 3", "epochs = 0")
        .replace(
            "dataset = \"tensors\"",
            "dataset = \"tensors\"\ntensors = '^conv\\.weight$'",
        )
        .replace("prune = [\"none\", \"half\"]", "prune = [\"none\"]")
        .replace(
            "weighting = [\"none\", \"hessian\"]",
            "weighting = [\"hessian\"]",
        );
    let results = root.path().join("cnn-results");
    run(&grid(root.path(), "cnn.pt", &cnn), &results);
    let cnn_rows = rows(&results);
    assert_eq!(cnn_rows.len(), 1);
    let row = &cnn_rows[0];
    assert_eq!(row["status"], "ok", "{row}");
    assert_eq!(row["baseline_top1"].as_f64().unwrap(), pytorch_top1);
    // conv 8 x 1 x 3 x 3; the fc weight stays float
    assert_eq!(row["quantized_weights"], 72, "{row}");
}

#[test]
fn bad_modules_and_selections_exit_2_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    example(root.path());
    let results = root.path().join("results");

    std::fs::write(root.path().join("not.pt"), b"not a module").unwrap();
    let err = run_failing(&grid(root.path(), "not.pt", GRID), &results);
    assert!(
        err.contains("not.pt") && err.contains("not a TorchScript module"),
        "{err}"
    );

    let err = run_failing(&grid(root.path(), "missing.pt", GRID), &results);
    assert!(
        err.contains("model.model_file") && err.contains("missing.pt"),
        "{err}"
    );

    let nothing = GRID.replace(
        "dataset = \"tensors\"",
        "dataset = \"tensors\"\ntensors = '^decoder'",
    );
    let err = run_failing(&grid(root.path(), "mlp.pt", &nothing), &results);
    assert!(
        err.contains("mlp.pt") && err.contains("`^decoder`"),
        "{err}"
    );

    // the MLP flattens its input, the CNN does not take 1 x 144 rows
    std::fs::create_dir_all(root.path().join("flat")).unwrap();
    for split in ["train", "test"] {
        let path = root.path().join(format!("data/{split}.safetensors"));
        let mut tensors = tch::Tensor::read_safetensors(&path).unwrap();
        for (name, t) in tensors.iter_mut() {
            if name == "inputs" {
                *t = t.view([-1, 144]);
            }
        }
        tch::Tensor::write_safetensors(
            &tensors,
            root.path().join(format!("flat/{split}.safetensors")),
        )
        .unwrap();
    }
    let flat = GRID.replace("DATA", s(&root.path().join("flat")));
    let err = run_failing(&grid(root.path(), "cnn.pt", &flat), &results);
    assert!(
        err.contains("cnn.pt") && err.contains("the module fails"),
        "{err}"
    );

    let untrained_builtin = GRID.replace("arch = \"torchscript\"", "arch = \"small-conv\"");
    let err = run_failing(&grid(root.path(), "mlp.pt", &untrained_builtin), &results);
    assert!(err.contains("model.model_file"), "{err}");

    assert!(!results.join("tiny/cells").exists() || rows(&results).is_empty());
}
