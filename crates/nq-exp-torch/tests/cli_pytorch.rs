//! A compressed model used outside nq-exp: a cell's `.nqz`, unpacked to
//! safetensors, carries its architecture and input normalisation, and
//! PyTorch (the venv's, through `scripts/use_in_pytorch.py`, the script the
//! README shows) gets from it exactly the top-1 that the cell's row reports.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let py = repo().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make setup` (make test does)",
        py.display()
    );
    py
}

#[test]
fn an_unpacked_cell_gives_its_reported_top1_in_pytorch() {
    let root = tempfile::tempdir().unwrap();
    let grid = GRID
        .replace(
            "method = [\"none\", \"kmeans\", \"ecsq\"]",
            "method = [\"kmeans\"]",
        )
        .replace(
            "weighting = [\"none\", \"hessian\"]",
            "weighting = [\"none\"]",
        )
        .replace("scope = [\"layer\", \"global\"]", "scope = [\"global\"]")
        .replace("lambda = [0.01]\n", "");
    let grid = write_grid(root.path(), &grid);
    let results = root.path().join("results");
    run(&grid, &results);
    let rows = rows(&results);
    assert_eq!(rows.len(), 1);
    let cell = rows[0]["cell"].as_str().unwrap();
    let cell_dir = results.join("tiny/cells").join(cell);

    let unpacked = root.path().join("model.safetensors");
    let out = nq()
        .args([
            "unpack",
            s(&cell_dir.join("model.nqz")),
            "--out",
            s(&unpacked),
        ])
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    let metadata = &summary["metadata"];
    assert_eq!(metadata["architecture"], "small-conv");
    assert_eq!(metadata["dataset"], "fashion-mnist");
    assert_eq!(metadata["input.shape"], "[1,12,12]");
    assert_eq!(metadata["input.mean"], "[0.286]");
    assert_eq!(metadata["nq-exp.cell"], cell);
    assert_eq!(metadata["nq-exp.experiment"], "tiny");

    let out = std::process::Command::new(python())
        .arg(repo().join("scripts/use_in_pytorch.py"))
        .arg(&unpacked)
        .arg("--data")
        .arg(root.path().join("data"))
        .output()
        .unwrap();
    let used: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    assert_eq!(used["test_images"], 160);
    assert_eq!(used["cell"], cell);
    let reported = rows[0]["top1"].as_f64().unwrap();
    let in_pytorch = used["top1"].as_f64().unwrap();
    // the same 160 images: equal counts of right answers
    assert!(
        (reported - in_pytorch).abs() < 1e-9,
        "row {reported} %, PyTorch {in_pytorch} %"
    );
    // not a constant guess: the tiny net learns its four corners
    assert!(reported > 50.0, "{reported}");
}
