//! What the end-to-end tests of `nq-exp run` share: a tiny grid (a small
//! net on a few hundred generated images) and reading its results.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

pub fn nq() -> Command {
    Command::cargo_bin("nq-exp-torch").unwrap()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// IDX files of `n` 12x12 images of 4 classes: class `c` is a bright
/// 4x4 square in corner `c` on noise, so a small net learns it in a few
/// epochs.
pub fn write_idx(dir: &Path, prefix: &str, n: usize, seed: u64) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let (h, w) = (12usize, 12usize);
    let mut images = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        images.extend((d as u32).to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((n as u32).to_be_bytes());
    for _ in 0..n {
        let c = (next() % 4) as usize;
        labels.push(c as u8);
        let (r0, c0) = ((c / 2) * 8, (c % 2) * 8);
        for r in 0..h {
            for col in 0..w {
                let inside = (r0..r0 + 4).contains(&r) && (c0..c0 + 4).contains(&col);
                let noise = (next() % 90) as u8;
                images.push(if inside { 160 + noise } else { noise });
            }
        }
    }
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
}

pub fn data_dir(root: &Path) -> PathBuf {
    let dir = root.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    write_idx(&dir, "train", 320, 1);
    write_idx(&dir, "t10k", 160, 2);
    dir
}

pub const GRID: &str = r#"
name = "tiny"
description = "end-to-end test grid"

[model]
arch = "small-conv"
dataset = "fashion-mnist"
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
samples = 64

[finetune]
epochs = 1
lr = 1e-3

[grid]
seed = [0]
prune = ["half"]
method = ["none", "kmeans", "ecsq"]
weighting = ["none", "hessian"]
scope = ["layer", "global"]
k = [4]
lambda = [0.01]
finetune = [true]
"#;

/// `grid` (GRID or a variant of it) with k-means as the only quantizer and
/// no importance weighting: the smallest grid that still quantizes.
pub fn unweighted_kmeans(grid: &str) -> String {
    grid.replace(
        "method = [\"none\", \"kmeans\", \"ecsq\"]",
        "method = [\"none\", \"kmeans\"]",
    )
    .replace(
        "weighting = [\"none\", \"hessian\"]",
        "weighting = [\"none\"]",
    )
}

pub fn write_grid(root: &Path, text: &str) -> PathBuf {
    let data = data_dir(root);
    let path = root.join("grid.toml");
    std::fs::write(&path, text.replace("DATA", s(&data))).unwrap();
    path
}

/// The stdout of a command that must have succeeded (its stderr if not).
pub fn stdout_of(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn run(grid: &Path, results: &Path) -> Value {
    let out = nq()
        .args(["run", s(grid), "--results", s(results), "--threads", "1"])
        .output()
        .unwrap();
    serde_json::from_slice(&stdout_of(out)).unwrap()
}

pub fn done_stages(results: &Path) -> usize {
    let Ok(stages) = std::fs::read_dir(results.join("cache")) else {
        return 0;
    };
    stages
        .flat_map(|s| std::fs::read_dir(s.unwrap().path()).unwrap())
        .map(|d| d.unwrap())
        // a stage is complete once moved into place under its key
        .filter(|d| !d.file_name().to_string_lossy().starts_with('.'))
        .filter(|d| d.path().join("manifest.json").is_file())
        .count()
}

/// The rows of a run without what differs between two runs of the same
/// code: seconds.
pub fn rows(results: &Path) -> Vec<Value> {
    let dir = results.join("tiny/cells");
    let mut ids: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    ids.sort();
    ids.iter()
        .map(|d| {
            let mut row: Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("row.json")).unwrap())
                    .unwrap();
            row.as_object_mut()
                .unwrap()
                .retain(|k, _| !k.starts_with("seconds_"));
            row
        })
        .collect()
}
