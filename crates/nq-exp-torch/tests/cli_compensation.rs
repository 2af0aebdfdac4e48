//! Compensated rounding end to end on the tiny grid: pruned, layer by layer
//! and global, k-means and ECSQ. The run checks that every `.nqz` decodes
//! to its network bit for bit; here each compensated network is compared
//! with the nearest-rounded one of the same cell: the same codebooks, so
//! its values are among theirs, the same pruned positions, and other
//! assignments; in act-order and in the sequential form, other
//! assignments again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nq_quant::nqz;
use tempfile::TempDir;

mod common;
use common::*;

/// Tensor name to its decoded values.
fn weights(results: &Path, id: &str) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(results.join("tiny/cells").join(id).join("model.nqz")).unwrap();
    nqz::decode(&bytes)
        .unwrap()
        .tensors
        .into_iter()
        .map(|t| (t.name, t.values))
        .collect()
}

fn distinct(values: &[f32]) -> BTreeSet<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn compensated_cells_round_onto_the_same_codebooks_with_other_assignments() {
    let root = TempDir::new().unwrap();
    let text = GRID
        .replace(
            "weighting = [\"none\", \"hessian\"]",
            "weighting = [\"none\"]",
        )
        .replace(
            "finetune = [true]",
            "finetune = [false]\nrounding = [\"nearest\", \"compensated\", \"compensated-act-order\", \"compensated-sequential\"]",
        )
        .replace("[grid]", "[compensation]\nsamples = 200\n\n[grid]");
    let grid = write_grid(root.path(), &text);
    let results = root.path().join("results");
    let summary = run(&grid, &results);
    assert_eq!(summary["failed"], 0, "{summary}");
    let rows = rows(&results);
    let (mut compared, mut variants_differ) = (0, BTreeSet::new());
    for cell in ["kmeans.k4", "ecsq.l0.01"] {
        for scope in ["layer", "global"] {
            for (suffix, rounding) in [
                (".comp", "compensated"),
                (".comp-act", "compensated-act-order"),
                (".comp-seq", "compensated-sequential"),
            ] {
                let id = format!("s0.half.{cell}.none.{scope}.huffman");
                let comp_id = format!("{id}{suffix}");
                let row = |id: &str| rows.iter().find(|r| r["cell"] == id).unwrap().clone();
                assert_eq!(row(&comp_id)["rounding"], rounding);
                assert!(row(&id)["rounding"].is_null());
                assert_eq!(
                    row(&comp_id)["quantized_weights"],
                    row(&id)["quantized_weights"]
                );
                let (nearest, compensated) = (weights(&results, &id), weights(&results, &comp_id));
                let all = |w: &BTreeMap<String, Vec<f32>>| -> Vec<f32> {
                    w.values().flatten().copied().collect()
                };
                let mut moved = 0;
                for (name, near) in &nearest {
                    let comp = &compensated[name];
                    // the same pruned positions
                    assert!(near
                        .iter()
                        .zip(comp)
                        .all(|(a, b)| (*a == 0.0) == (*b == 0.0)));
                    let codebook = if scope == "layer" {
                        distinct(near)
                    } else {
                        distinct(&all(&nearest))
                    };
                    assert!(
                        distinct(comp).is_subset(&codebook),
                        "{comp_id} {name}: values off the codebook"
                    );
                    moved += near.iter().zip(comp).filter(|(a, b)| a != b).count();
                }
                assert!(moved > 0, "{comp_id}: no weight moved");
                if suffix != ".comp" && compensated != weights(&results, &format!("{id}.comp")) {
                    variants_differ.insert(suffix);
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 12);
    assert_eq!(
        variants_differ,
        BTreeSet::from([".comp-act", ".comp-seq"]),
        "act-order and the sequential form each change some network"
    );

    // the report names the rounding of each setting
    let out = nq().args(["report", s(&results)]).output().unwrap();
    stdout_of(out);
    let report = std::fs::read_to_string(results.join("tiny/report.md")).unwrap();
    assert!(report.contains("| rounding |"), "{report}");
    assert!(report.contains("| compensated |"), "{report}");
    assert!(report.contains("| compensated-act-order |"), "{report}");
}
