//! The stage cache under damage and sharing: a cached file overwritten or
//! truncated is found, moved aside and computed again (never reused), and
//! two `nq-exp run` of one grid on one results directory at once compute
//! each stage once between them.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::*;

/// The tiny grid cut to the pruned network and one k-means cell: stages
/// baseline, prune, quantize and two results.
fn small_grid(root: &Path) -> PathBuf {
    let text = unweighted_kmeans(GRID)
        .replace("scope = [\"layer\", \"global\"]", "scope = [\"layer\"]")
        .replace("lambda = [0.01]\n", "");
    write_grid(root, &text)
}

const STAGES: u64 = 5;

/// A file named `name` under `cache/<stage>/` (the first by path).
fn cached_file(results: &Path, stage: &str, name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(results.join("cache").join(stage))
        .unwrap()
        .map(|e| e.unwrap().path().join(name))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.into_iter().next().expect("no such cached file")
}

/// `run` that also returns stderr.
fn run_noting(grid: &Path, results: &Path) -> (Value, String) {
    let out = nq()
        .args(["run", s(grid), "--results", s(results), "--threads", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn damaged_cached_files_are_computed_again_never_reused() {
    let tmp = TempDir::new().unwrap();
    let grid = small_grid(tmp.path());
    let results = tmp.path().join("results");
    let first = run(&grid, &results);
    assert_eq!(first["stages_computed"], STAGES, "{first}");
    let rows_before = rows(&results);

    // the packed file overwritten with garbage: only its result is redone
    let nqz = cached_file(&results, "result", "model.nqz");
    std::fs::write(&nqz, b"garbage").unwrap();
    let (again, stderr) = run_noting(&grid, &results);
    assert_eq!(again["stages_computed"], 1, "{again}");
    assert!(
        stderr.contains("is damaged") && stderr.contains("model.nqz has 7 bytes where"),
        "{stderr}"
    );
    assert_ne!(std::fs::read(&nqz).unwrap(), b"garbage");
    assert_eq!(rows(&results), rows_before);
    let aside = std::fs::read_dir(results.join("cache/result"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".damaged-")
        })
        .count();
    assert_eq!(aside, 1, "the damaged stage is kept aside for inspection");

    // a truncated baseline: only the baseline is trained again
    let model = cached_file(&results, "baseline", "model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let (again, stderr) = run_noting(&grid, &results);
    assert_eq!(again["stages_computed"], 1, "{again}");
    assert!(stderr.contains("model.safetensors has"), "{stderr}");
    assert_eq!(
        std::fs::read(&model).unwrap(),
        bytes,
        "training is deterministic"
    );
    assert_eq!(rows(&results), rows_before);

    // a stage record that is not JSON
    let done = cached_file(&results, "prune", "done.json");
    std::fs::write(&done, b"{").unwrap();
    let (again, stderr) = run_noting(&grid, &results);
    assert_eq!(again["stages_computed"], 1, "{again}");
    assert!(stderr.contains("done.json"), "{stderr}");

    // and then nothing is left to do
    let (again, _) = run_noting(&grid, &results);
    assert_eq!(again["stages_computed"], 0, "{again}");
}

#[test]
fn two_runs_at_once_on_one_results_directory_compute_each_stage_once() {
    let tmp = TempDir::new().unwrap();
    let grid = small_grid(tmp.path());
    let results = tmp.path().join("results");
    let start = || {
        std::process::Command::new(cargo_bin("nq-exp-torch"))
            .args(["run", s(&grid), "--results", s(&results), "--threads", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let mut computed = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["failed"], 0, "{summary}");
        computed += summary["stages_computed"].as_u64().unwrap();
    }
    assert_eq!(computed, STAGES);
    let leftovers: Vec<String> = std::fs::read_dir(results.join("cache"))
        .unwrap()
        .flat_map(|s| std::fs::read_dir(s.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp") || n.starts_with(".damaged"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let table = std::fs::read_to_string(results.join("tiny/results.csv")).unwrap();
    assert_eq!(table.lines().count(), 3, "{table}");
}
