//! A language model through a grid, judged by its own metric: a tiny
//! character-level GPT on a generated text, Hessian-weighted k-means
//! searched to a budget in bits per character. The search must hold the
//! mean bits per character (not next-character top-1) within its budget
//! above the unquantized network's, and the report must speak in bits.

use std::f64::consts::LN_2;
use std::path::Path;

use nq_catalog::Metric;
use nq_exp::search::{BoundarySearch, SearchSpace};
use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::*;

const GRID: &str = r#"
name = "tiny"
description = "a language model searched in bits per character"

[model]
arch = "char-gpt"
dataset = "shakespeare"
data_dir = "TEXT"

[train]
epochs = 2
optimizer = "adam"
lr = 3e-3
batch_size = 16

[importance.hessian]
estimator = "gauss-newton-mc"
samples = 16

[finetune]
epochs = 1
lr = 1e-4

[search]
budget = 0.05
k = [2, 16]

[grid]
seed = [0, 1]
method = ["none", "kmeans"]
weighting = ["hessian"]
scope = ["global"]
finetune = [true]
"#;

/// `train.txt` and `valid.txt` of sentences drawn from a few words, so that
/// a small model learns something in two epochs.
fn write_text(dir: &Path) {
    let words = [
        "the", "king", "shall", "speak", "to", "his", "lords", "and", "queen", "of", "france",
    ];
    let mut state = 7u64;
    let mut text = |n: usize| {
        let mut out = String::new();
        while out.len() < n {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let w = words[(state >> 33) as usize % words.len()];
            out.push_str(w);
            out.push(if (state >> 20).is_multiple_of(7) {
                '.'
            } else {
                ' '
            });
        }
        out
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("train.txt"), text(128 * 80)).unwrap();
    std::fs::write(dir.join("valid.txt"), text(128 * 24)).unwrap();
}

fn bits(row: &Value) -> f64 {
    row["loss"].as_f64().unwrap() / LN_2
}

#[test]
fn a_language_model_is_searched_and_reported_in_bits_per_character() {
    let tmp = TempDir::new().unwrap();
    let text = tmp.path().join("text");
    write_text(&text);
    let grid = tmp.path().join("grid.toml");
    std::fs::write(&grid, GRID.replace("TEXT", s(&text))).unwrap();
    let results = tmp.path().join("results");
    run(&grid, &results);
    let table = rows(&results);
    let unquantized: Vec<&Value> = table.iter().filter(|r| r["method"] == "none").collect();
    assert_eq!(unquantized.len(), 2);
    let reference = unquantized.iter().map(|r| bits(r)).sum::<f64>() / 2.0;
    let mut points: Vec<(u64, u64, f64)> = table
        .iter()
        .filter(|r| r["method"] == "kmeans")
        .map(|r| {
            assert_eq!(r["search_budget"].as_f64(), Some(0.05), "{r}");
            let held_to = r["search_reference"].as_f64().unwrap();
            assert!((held_to - reference).abs() < 1e-9, "{held_to} is not bits");
            assert!(r["baseline_loss"].is_number() && r["quantized_loss"].is_number());
            (
                r["search_step"].as_u64().unwrap(),
                r["k"].as_u64().unwrap(),
                bits(r),
            )
        })
        .collect();
    points.sort_by_key(|p| p.0);
    assert!(points.len() >= 4, "{points:?}");
    // replay in bits: fewer bits pass, and the search asks for the same k
    let metric = Metric::BitsPerCharacter;
    let mut replay = BoundarySearch::held_to(SearchSpace::k(2, 16), metric, reference, 0.05);
    for pair in points.chunks(2) {
        assert_eq!(pair[0].1, pair[1].1, "both seeds at one point");
        let k = pair[0].1 as f64;
        assert_eq!(replay.next(), Some(k), "{points:?}");
        replay.record(k, metric.score((pair[0].2 + pair[1].2) / 2.0));
    }
    assert_eq!(
        replay.next(),
        None,
        "the search ended where the bisection does"
    );

    let report = nq().args(["report", s(&results)]).output().unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(results.join("tiny/report.md")).unwrap();
    assert!(md.contains("| bits per character |"), "{md}");
    assert!(
        md.contains("budget 0.05 bits per character)")
            && (md.contains(" bits (in, ") || md.contains(" bits (out, ")),
        "{md}"
    );
    // the picks in Table 1's layout: the baseline and each entry in bits
    let line = md
        .lines()
        .find(|l| l.starts_with("| char-gpt on shakespeare |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(line.matches(" bits").count() >= 2, "{line}");
    let figures = nq().args(["figures", s(&results)]).output().unwrap();
    assert!(figures.status.success());
    let svg =
        std::fs::read_to_string(results.join("tiny/figures/accuracy_vs_codeword.svg")).unwrap();
    assert!(svg.contains("bits per character"), "the axis is in bits");
}
