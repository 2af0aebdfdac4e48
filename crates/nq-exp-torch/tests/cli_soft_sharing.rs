//! Soft weight-sharing end to end on the tiny grid, from the unpruned and
//! from a pruned network, fine-tuned, with Huffman and with context coding.
//! The run itself checks that every `.nqz` decodes to the network bit for
//! bit; here the files are read again for what soft-sharing promises: one
//! codebook of at most `components - 1` nonzero means over all layers,
//! more weights pruned than before, and no pruned weight revived.

use nq_quant::nqz;
use tempfile::TempDir;

mod common;
use common::*;

const SOFT: &str = r#"
[soft_sharing]
epochs = 2
components = 5
pi_zero = 0.9
init_sigma = 0.05
lr_precisions = 3e-2
lr_means = 1e-3

[finetune]"#;

fn decoded(results: &std::path::Path, id: &str) -> nqz::Decoded {
    let bytes = std::fs::read(results.join("tiny/cells").join(id).join("model.nqz")).unwrap();
    nqz::decode(&bytes).unwrap()
}

#[test]
fn soft_sharing_cells_prune_further_and_share_few_values() {
    let root = TempDir::new().unwrap();
    let text = GRID
        .replace(
            "method = [\"none\", \"kmeans\", \"ecsq\"]",
            "method = [\"none\", \"soft-sharing\"]",
        )
        .replace(
            "weighting = [\"none\", \"hessian\"]",
            "weighting = [\"none\"]",
        )
        .replace(
            "scope = [\"layer\", \"global\"]",
            "scope = [\"global\"]\ncoding = [\"huffman\", \"context\"]",
        )
        .replace("prune = [\"half\"]", "prune = [\"none\", \"half\"]")
        .replace("k = [4]\n", "")
        .replace("lambda = [0.01]", "lambda = [2.0]")
        .replace("\n[finetune]", SOFT);
    let grid = write_grid(root.path(), &text);
    let results = root.path().join("results");
    let summary = run(&grid, &results);
    assert_eq!(summary["failed"], 0, "{summary}");
    let rows = rows(&results);
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["cell"] == id)
            .unwrap_or_else(|| panic!("no row {id}"))
            .clone()
    };
    let mut seen = 0;
    for prune in ["none", "half"] {
        let network_file = decoded(&results, &format!("s0.{prune}.none"));
        for coding in ["huffman", "context"] {
            let id = format!("s0.{prune}.soft-sharing.l2.none.global.{coding}.ft");
            let r = row(&id);
            assert_eq!(r["lambda"], 2.0, "{r}");
            // one codebook of at most 4 nonzero means
            let clusters = r["clusters"].as_u64().unwrap();
            assert!((1..=4).contains(&clusters), "{id}: {clusters}");
            let file = decoded(&results, &id);
            assert_eq!(file.codebooks.len(), 1, "{id}");
            assert!(file.codebooks[0].0.iter().all(|&c| c != 0.0), "{id}");
            // the file stores its nonzero weights, fewer than the network
            // it started from had
            let nonzero = |f: &nqz::Decoded| -> usize {
                f.tensors
                    .iter()
                    .filter(|t| t.name.ends_with("weight"))
                    .map(|t| t.values.iter().filter(|v| **v != 0.0).count())
                    .sum()
            };
            let stored = r["quantized_weights"].as_u64().unwrap() as usize;
            assert_eq!(stored, nonzero(&file), "{id}");
            assert!(stored < nonzero(&network_file), "{id}: {stored}");
            for (t, start) in file.tensors.iter().zip(&network_file.tensors) {
                assert_eq!(t.name, start.name);
                if t.name.ends_with("weight") {
                    let survivors = t.values.iter().filter(|v| **v != 0.0).count();
                    assert!(
                        survivors >= 1,
                        "{id} {}: every tensor keeps a weight",
                        t.name
                    );
                    // a weight pruned before stays pruned
                    for (v, w) in t.values.iter().zip(&start.values) {
                        if *w == 0.0 {
                            assert_eq!(*v, 0.0, "{id} {}", t.name);
                        }
                    }
                }
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 4);
}
