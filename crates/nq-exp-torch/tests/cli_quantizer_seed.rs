//! Quantizer seeds end to end on the tiny grid: k-means runs once per
//! training and quantizer seed, its k-means++ draws change with the
//! quantizer seed alone, ECSQ (which draws nothing) runs once per training
//! seed, and the report splits the spread by source.

use tempfile::TempDir;

mod common;
use common::*;

#[test]
fn kmeans_runs_per_quantizer_seed_and_the_report_splits_the_spread() {
    let root = TempDir::new().unwrap();
    let text = GRID
        .replace("seed = [0]", "seed = [0, 1]\nquantizer_seed = [5, 6]")
        .replace("prune = [\"half\"]", "prune = [\"none\"]")
        .replace(
            "weighting = [\"none\", \"hessian\"]",
            "weighting = [\"none\"]",
        )
        .replace("scope = [\"layer\", \"global\"]", "scope = [\"global\"]")
        .replace("finetune = [true]", "finetune = [false]");
    let grid = write_grid(root.path(), &text);
    let results = root.path().join("results");
    let summary = run(&grid, &results);
    // per training seed: none, k-means under 2 quantizer seeds, ECSQ once
    assert_eq!(summary["cells"], 2 * (1 + 2 + 1), "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let rows = rows(&results);
    let row = |id: &str| rows.iter().find(|r| r["cell"] == id).unwrap().clone();
    for seed in [0, 1] {
        let kmeans = |q: u64| row(&format!("s{seed}.none.kmeans.k4.none.global.huffman.q{q}"));
        assert_eq!(
            (
                kmeans(5)["seed"].as_u64(),
                kmeans(5)["quantizer_seed"].as_u64()
            ),
            (Some(seed), Some(5))
        );
        assert_eq!(kmeans(6)["quantizer_seed"], 6);
        assert!(
            row(&format!("s{seed}.none.ecsq.l0.01.none.global.huffman"))["quantizer_seed"]
                .is_null()
        );
    }
    // the same network, other k-means++ draws: other codebooks (a 4-centre
    // codebook of a few thousand weights from two draws is not the same)
    let nqz =
        |id: &str| std::fs::read(results.join("tiny/cells").join(id).join("model.nqz")).unwrap();
    assert_ne!(
        nqz("s0.none.kmeans.k4.none.global.huffman.q5"),
        nqz("s0.none.kmeans.k4.none.global.huffman.q6")
    );
    stdout_of(nq().args(["report", s(&results)]).output().unwrap());
    let report = std::fs::read_to_string(results.join("tiny/report.md")).unwrap();
    assert!(report.contains("## Spread by source"), "{report}");
    assert!(
        report.contains("| k-means | global | k=4 | 2 × 2 |"),
        "{report}"
    );
}
