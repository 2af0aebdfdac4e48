//! Pruning settings end to end on the tiny grid: one shot by magnitude,
//! gradually by magnitude, gradually by OBD saliency with one global
//! ranking; each network quantized and packed with Huffman and with context
//! coding.

use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::*;

const PRUNINGS: &str = r#"
[prune.oneshot]
keep = 0.25
retrain_epochs = 2

[prune.gradual]
keep = 0.25
retrain_epochs = 2
schedule = "gradual"
steps = 2

[prune.obd]
keep = 0.25
retrain_epochs = 2
schedule = "gradual"
steps = 2
criterion = "obd"
samples = 64
scope = "global"
"#;

#[test]
fn gradual_and_obd_pruning_reach_their_keep_ratio_and_pack_with_both_codings() {
    let root = TempDir::new().unwrap();
    let text = unweighted_kmeans(GRID)
        .replace("[prune.half]\nkeep = 0.5\nretrain_epochs = 1\n", PRUNINGS)
        .replace(
            "prune = [\"half\"]",
            "prune = [\"oneshot\", \"gradual\", \"obd\"]",
        )
        .replace(
            "scope = [\"layer\", \"global\"]",
            "scope = [\"global\"]\ncoding = [\"huffman\", \"context\"]",
        )
        .replace("lambda = [0.01]\n", "")
        .replace("finetune = [true]", "finetune = [false]");
    assert!(
        text.contains("[prune.obd]") && text.contains("\"context\"]"),
        "{text}"
    );
    let grid = write_grid(root.path(), &text);
    let results = root.path().join("results");
    let summary = run(&grid, &results);
    assert_eq!(summary["failed"], 0, "{summary}");
    let rows = rows(&results);
    let row = |id: &str| -> &Value {
        rows.iter()
            .find(|r| r["cell"] == id)
            .unwrap_or_else(|| panic!("no row {id}"))
    };
    let survivors = |prune: &str| {
        let h = row(&format!("s0.{prune}.kmeans.k4.none.global.huffman"));
        let c = row(&format!("s0.{prune}.kmeans.k4.none.global.context"));
        // the same network under both codings; context coding no larger
        assert_eq!(h["quantized_weights"], c["quantized_weights"]);
        assert_eq!(h["top1"], c["top1"]);
        assert!(
            c["total_bits"].as_u64().unwrap() <= h["total_bits"].as_u64().unwrap() + 64,
            "{h} {c}"
        );
        h["quantized_weights"].as_u64().unwrap()
    };
    // per layer, one shot and gradual keep round(0.25 n) of each tensor;
    // OBD's one ranking keeps round(0.25 N) over all: within a weight per tensor
    let oneshot = survivors("oneshot");
    assert_eq!(survivors("gradual"), oneshot);
    assert!(survivors("obd").abs_diff(oneshot) <= 3, "{oneshot}");
    // gradual pruning took its steps (in the prune stage's log)
    let log = std::fs::read_to_string(results.join("tiny/cells/s0.gradual.none/log.txt")).unwrap();
    assert!(log.contains("pruning step 2 of 2"), "{log}");
    // the three networks differ (the tiny task is learnt perfectly: by
    // their test loss)
    let pruned: Vec<f64> = ["oneshot", "gradual", "obd"]
        .iter()
        .map(|p| row(&format!("s0.{p}.none"))["loss"].as_f64().unwrap())
        .collect();
    assert!(
        pruned[0] != pruned[1] || pruned[1] != pruned[2],
        "{pruned:?}"
    );
}
