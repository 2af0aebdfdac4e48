//! `nq-exp offdiag` on a small net trained on generated images: the rows
//! of every quantization under both roundings, a summary whose predictors
//! are measured against the real loss change, with the exact Hessian
//! block and the Gauss-Newton one, of one layer and of two together, and a
//! bad layer named.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn offdiag_measures_both_predictors_and_both_roundings() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let model = root.path().join("small.safetensors");
    let out = nq()
        .args([
            "train",
            "--arch",
            "small-conv",
            "--data-dir",
            s(&data),
            "--epochs",
            "2",
        ])
        .args(["--lr", "1e-2", "--threads", "1", "--out", s(&model)])
        .output()
        .unwrap();
    stdout_of(out);
    let rows = root.path().join("rows.csv");
    // conv1 over 64 images in 2 batches, k = 2 and 4, 2 k-means seeds
    let conv1 = |extra: &[&str]| {
        nq().args(["offdiag", "--arch", "small-conv", "--model", s(&model)])
            .args(["--data-dir", s(&data), "--layer", "conv1.weight"])
            .args([
                "--samples",
                "64",
                "--batch-size",
                "32",
                "--k",
                "2,4",
                "--seeds",
                "2",
            ])
            .args(["--threads", "1", "--out", s(&rows)])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = conv1(&[]);
    let summary: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    assert_eq!(summary["weights"], 72);
    assert_eq!(summary["examples"], 64);
    // 72 rows of the block, 2 batches
    assert_eq!(summary["hessian_vector_products"], 144);
    let text = std::fs::read_to_string(&rows).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "method,k,seed,rounding,clusters,diagonal,layerwise,full,measured,gradient"
    );
    // the trained weights are not a minimum of the loss on these images
    let gradient_norm = summary["gradient_norm"].as_f64().unwrap();
    assert!(
        gradient_norm.is_finite() && gradient_norm > 0.0,
        "{summary}"
    );
    // per k: k-means and Hessian-weighted k-means for 2 seeds, uniform once; 2 roundings
    assert_eq!(lines.len() - 1, 2 * (2 * 2 + 1) * 2);
    for rounding in summary["roundings"].as_array().unwrap() {
        let full = rounding["full"]["correlation"].as_f64().unwrap();
        assert!(full.is_finite() && full > 0.0, "{rounding}");
        let with_gradient = rounding["full_with_gradient"]["correlation"]
            .as_f64()
            .unwrap();
        assert!(with_gradient.is_finite(), "{rounding}");
    }
    // the Gauss-Newton block: one backward pass per example and class, and
    // positive semi-definite, so no quadratic form below 0
    let figure = root.path().join("fig/conv1");
    let out = conv1(&["--block", "gauss-newton", "--figure", s(&figure)]);
    let summary: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    assert_eq!(summary["block"], "gauss-newton");
    for ext in ["svg", "png"] {
        let drawn = root.path().join(format!("fig/conv1.{ext}"));
        assert!(
            std::fs::metadata(&drawn).unwrap().len() > 1000,
            "{}",
            drawn.display()
        );
    }
    assert_eq!(summary["hessian_vector_products"], 0);
    assert_eq!(summary["backward_passes"], 64 * 10);
    let text = std::fs::read_to_string(&rows).unwrap();
    for line in text.lines().skip(1) {
        let full: f64 = line.split(',').nth(7).unwrap().parse().unwrap();
        assert!(full >= 0.0, "{line}");
    }
    // two layers with one codebook: the layer-by-layer form leaves out the
    // cross-layer terms, with either block
    let two = |block: &str, layers: &str, extra: &[&str]| {
        nq().args(["offdiag", "--arch", "small-conv", "--model", s(&model)])
            .args(["--data-dir", s(&data), "--layer", layers])
            .args(["--block", block, "--samples", "32", "--batch-size", "32"])
            .args(["--k", "4", "--seeds", "1", "--threads", "1"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = two("gauss-newton", "conv1.weight,fc.weight", &[]);
    let summary: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    assert_eq!(
        summary["layers"],
        serde_json::json!(["conv1.weight", "fc.weight"])
    );
    let plain = &summary["roundings"][0];
    let cross = plain["median_cross_layer_share"].as_f64().unwrap();
    assert!(cross.is_finite() && cross != 0.0, "{plain}");
    // the exact block of conv1 (72 weights) and conv2 (1,152): one
    // Hessian-vector product per weight of either; across layers it is
    // indefinite here, so the compensator has no Cholesky factor and only
    // plain rounding is measured
    let out = two(
        "hessian",
        "conv1.weight,conv2.weight",
        &["--no-compensation"],
    );
    let summary: Value = serde_json::from_slice(&stdout_of(out)).unwrap();
    assert_eq!(summary["weights"], 72 + 1152);
    assert_eq!(summary["hessian_vector_products"], 72 + 1152);
    assert_eq!(summary["roundings"].as_array().unwrap().len(), 1);
    assert!(summary["compensation_lowered"].is_null(), "{summary}");
    let plain = &summary["roundings"][0];
    let cross = plain["median_cross_layer_share"].as_f64().unwrap();
    assert!(cross.is_finite() && cross != 0.0, "{plain}");
    let out = nq()
        .args([
            "offdiag",
            "--arch",
            "small-conv",
            "--model",
            s(&model),
            "--data-dir",
            s(&data),
        ])
        .args(["--layer", "conv9.weight"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conv9.weight") && err.contains("conv1.weight"),
        "{err}"
    );
}
