//! `nq-exp run` end to end on a tiny grid: a small net on a few hundred
//! generated images, two methods, both scopes, with and without Hessian
//! weighting, pruned and fine-tuned. The run is killed part way, run
//! again, and must finish from the cache with the rows of an uninterrupted
//! run; then `plan`, `report` and `figures` read its results.

use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::*;

#[test]
fn killed_run_resumes_from_the_cache_with_the_same_rows() {
    let tmp = TempDir::new().unwrap();
    let grid = write_grid(tmp.path(), GRID);
    let results = tmp.path().join("results");
    // 1 baseline, 1 pruned network, 1 importance, 8 quantized networks
    // (kmeans and ecsq by 2 weightings by 2 scopes) and 9 results (those
    // and the pruned network unquantized)
    let all_stages = 20;

    // kill -9 once the first result is in
    let mut child = std::process::Command::new(cargo_bin("nq-exp-torch"))
        .args(["run", s(&grid), "--results", s(&results), "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let first_result = results.join("cache/result");
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        let results_done = std::fs::read_dir(&first_result)
            .map(|d| {
                d.map(|e| e.unwrap())
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .filter(|e| e.path().join("manifest.json").is_file())
                    .count()
            })
            .unwrap_or(0);
        if results_done >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no result after 300 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished_before = done_stages(&results);
    assert!(
        finished_before >= 3 && finished_before < all_stages,
        "{finished_before}"
    );

    // the rerun computes only what was missing
    let rerun = run(&grid, &results);
    assert_eq!(rerun["failed"], 0, "{rerun}");
    assert_eq!(rerun["cells"], 9, "{rerun}");
    assert_eq!(
        rerun["stages_computed"].as_u64().unwrap() as usize,
        all_stages - finished_before,
        "{rerun}"
    );
    assert_eq!(done_stages(&results), all_stages);
    let leftovers: Vec<_> = std::fs::read_dir(results.join("cache"))
        .unwrap()
        .flat_map(|s| std::fs::read_dir(s.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let resumed_rows = rows(&results);
    let csv = std::fs::read_to_string(results.join("tiny/results.csv")).unwrap();

    // a finished grid run again computes nothing and writes the same table
    let again = run(&grid, &results);
    assert_eq!(again["stages_computed"], 0, "{again}");
    assert_eq!(
        std::fs::read_to_string(results.join("tiny/results.csv")).unwrap(),
        csv
    );

    // an uninterrupted run elsewhere gives the same rows
    let fresh = tmp.path().join("fresh");
    let clean = run(&grid, &fresh);
    assert_eq!(clean["stages_computed"], all_stages as u64, "{clean}");
    let fresh_rows = rows(&fresh);
    for (a, b) in fresh_rows.iter().zip(&resumed_rows) {
        let differ: Vec<String> = a
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| b.get(k.as_str()) != Some(*v))
            .map(|(k, v)| format!("{k}: {v} != {}", b[k.as_str()]))
            .collect();
        assert!(differ.is_empty(), "{}: {differ:?}", a["cell"]);
    }

    // the rows are complete and consistent
    for row in &resumed_rows {
        assert_eq!(row["status"], "ok", "{row}");
        // 4 classes: chance is 25 %
        assert!(row["baseline_top1"].as_f64().unwrap() > 80.0, "{row}");
        assert!(row["top1"].as_f64().unwrap() > 40.0, "{row}");
        assert!(row["nqz_bytes"].as_u64().unwrap() > 0, "{row}");
        let ratio = row["compression_ratio"].as_f64().unwrap();
        assert!(ratio > 1.0, "{row}");
        if row["method"] != "none" {
            assert!(
                row["quantized_top1"].is_number() && row["finetuned_top1"].is_number(),
                "{row}"
            );
            assert_eq!(row["finetune_trains"], "centres", "{row}");
        }
        // the file is the accounted payload plus its header, the pruned
        // network kept in float32 included (survivors and positions)
        let payload = row["nqz_payload_bytes"].as_u64().unwrap();
        let header = row["nqz_header_bytes"].as_u64().unwrap();
        assert_eq!(
            row["nqz_bytes"].as_u64().unwrap(),
            payload + header,
            "{row}"
        );
        let total_bits = row["total_bits"].as_u64().unwrap();
        assert!(
            payload * 8 >= total_bits && payload * 8 < total_bits + 8 * 64,
            "{row}"
        );
        let cell = row["cell"].as_str().unwrap();
        let config = results.join("tiny/cells").join(cell).join("config.json");
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
        assert_eq!(config["cell"]["id"], cell);
    }
    let scopes: Vec<&Value> = resumed_rows.iter().map(|r| &r["scope"]).collect();
    assert!(scopes.contains(&&Value::from("layer")) && scopes.contains(&&Value::from("global")));

    // plan sees every cell cached
    let plan = nq()
        .args(["plan", s(&grid), "--results", s(&results)])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&plan.stdout).contains("9 of 9 cells cached"));

    // report and figures from the results alone
    let report = nq().args(["report", s(&results)]).output().unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(results.join("tiny/report.md")).unwrap();
    assert!(md.contains("| top-1 % |") || md.contains("top-1 %"), "{md}");
    let figures = nq().args(["figures", s(&results)]).output().unwrap();
    assert!(
        figures.status.success(),
        "{}",
        String::from_utf8_lossy(&figures.stderr)
    );
    for name in [
        "accuracy_vs_codeword",
        "layer_vs_global",
        "importance",
        "accuracy_vs_ratio",
    ] {
        for ext in ["svg", "png"] {
            let f = results.join(format!("tiny/figures/{name}.{ext}"));
            assert!(f.is_file(), "{}", f.display());
        }
    }
}

#[test]
fn a_failing_cell_is_recorded_and_the_others_finish() {
    let tmp = TempDir::new().unwrap();
    // Adam's training statistics do not exist for an SGD-trained network
    let grid = GRID
        .replace(
            "optimizer = \"adam\"\nlr = 1e-2",
            "optimizer = \"sgd\"\nlr = 0.05",
        )
        .replace(
            "estimator = \"gauss-newton\"\nsamples = 64",
            "estimator = \"adam\"",
        )
        .replace("prune = [\"half\"]", "prune = [\"none\"]")
        .replace(
            "method = [\"none\", \"kmeans\", \"ecsq\"]",
            "method = [\"kmeans\"]",
        )
        .replace("scope = [\"layer\", \"global\"]", "scope = [\"layer\"]")
        .replace("lambda = [0.01]\n", "");
    let grid = write_grid(tmp.path(), &grid);
    let results = tmp.path().join("results");
    let out = nq()
        .args([
            "run",
            s(&grid),
            "--results",
            s(&results),
            "--threads",
            "1",
            "--jobs",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 of 2 cells failed"), "{stderr}");
    let csv = std::fs::read_to_string(results.join("tiny/results.csv")).unwrap();
    assert!(csv.contains(",ok,") && csv.contains(",failed,"), "{csv}");
    assert!(csv.contains("trained (or retrained) by Adam"), "{csv}");
    let report = nq().args(["report", s(&results)]).output().unwrap();
    assert!(report.status.success());
    let md = std::fs::read_to_string(results.join("tiny/report.md")).unwrap();
    assert!(md.contains("## Failed cells"), "{md}");
}

#[test]
fn missing_data_and_bad_grids_exit_2_before_any_work() {
    let tmp = TempDir::new().unwrap();
    let grid = tmp.path().join("grid.toml");
    std::fs::write(&grid, GRID.replace("DATA", "/nonexistent/fmnist")).unwrap();
    let results = tmp.path().join("results");
    let out = nq()
        .args(["run", s(&grid), "--results", s(&results)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/fmnist") && stderr.contains("model.data_dir"),
        "{stderr}"
    );
    assert!(!results.join("cache").exists());

    std::fs::write(&grid, GRID.replace("epochs = 3", "epochs = \"three\"")).unwrap();
    let out = nq().args(["run", s(&grid)]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("grid.toml:") && stderr.contains("epochs"),
        "{stderr}"
    );

    let out = nq()
        .args(["report", s(&tmp.path().join("nothing"))])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A search over k: every point tried is a row per seed, in the order the
/// bisection asks for them given the mean top-1 it was told, and a second
/// run walks the same points from the cache.
#[test]
fn a_search_walks_its_bisection_over_seeds_and_resumes_from_the_cache() {
    use nq_exp::search::{BoundarySearch, SearchSpace};
    let tmp = TempDir::new().unwrap();
    let grid = unweighted_kmeans(GRID)
        .replace("[grid]", "[search]\nbudget = 1.0\nk = [2, 16]\n\n[grid]")
        .replace("seed = [0]", "seed = [0, 1]")
        .replace("prune = [\"half\"]", "prune = [\"none\"]")
        .replace("scope = [\"layer\", \"global\"]", "scope = [\"global\"]")
        .replace("k = [4]\nlambda = [0.01]\nfinetune = [true]\n", "");
    let grid = write_grid(tmp.path(), &grid);
    let results = tmp.path().join("results");
    let first = run(&grid, &results);
    let table = rows(&results);
    let reference: f64 = table
        .iter()
        .filter(|r| r["method"] == "none")
        .map(|r| r["top1"].as_f64().unwrap())
        .sum::<f64>()
        / 2.0;
    let mut points: Vec<(u64, u64, f64)> = table
        .iter()
        .filter(|r| r["method"] == "kmeans")
        .map(|r| {
            assert_eq!(r["search"], "none.kmeans.none.global.huffman", "{r}");
            assert_eq!(r["search_budget"].as_f64(), Some(1.0));
            assert!((r["search_reference"].as_f64().unwrap() - reference).abs() < 1e-9);
            (
                r["search_step"].as_u64().unwrap(),
                r["k"].as_u64().unwrap(),
                r["top1"].as_f64().unwrap(),
            )
        })
        .collect();
    points.sort_by_key(|p| p.0);
    assert!(
        points.len() >= 4 && points.len().is_multiple_of(2),
        "{points:?}"
    );
    // replay: the search given the same means asks for the same k, step by step
    let mut replay = BoundarySearch::new(SearchSpace::k(2, 16), reference - 1.0);
    for pair in points.chunks(2) {
        assert_eq!(pair[0].0, pair[1].0);
        assert_eq!(pair[0].1, pair[1].1, "both seeds at one point");
        let k = pair[0].1 as f64;
        assert_eq!(replay.next(), Some(k), "{points:?}");
        replay.record(k, (pair[0].2 + pair[1].2) / 2.0);
    }
    assert_eq!(
        replay.next(),
        None,
        "the search ended where the bisection does"
    );
    assert_eq!(first["cells"].as_u64(), Some(2 + points.len() as u64));
    let plan = nq()
        .args(["plan", s(&grid), "--results", s(&results)])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    let walked: Vec<String> = points.chunks(2).map(|p| format!("{} (", p[0].1)).collect();
    let line = plan
        .lines()
        .find(|l| l.starts_with("search none.kmeans.none.global.huffman: 2 seeds, at most"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(line.contains("; finished: "), "{line}");
    assert!(
        walked.iter().all(|w| line.contains(w.as_str())),
        "{line} lacks {walked:?}"
    );
    let second = run(&grid, &results);
    assert_eq!(second["stages_computed"].as_u64(), Some(0), "{second}");
    let report = nq().args(["report", s(&results)]).output().unwrap();
    assert!(report.status.success());
    let md = std::fs::read_to_string(results.join("tiny/report.md")).unwrap();
    assert!(
        md.contains("## Searches") && md.contains("- `none.kmeans.none.global.huffman` (k-means"),
        "{md}"
    );
    assert_eq!(rows(&results), table);
    let csv = std::fs::read_to_string(results.join("tiny/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 + points.len());
}

/// A search for a rate: the points walk toward the target rate (not the
/// accuracy), end with it bracketed, carry `search_rate`, replay in `plan`,
/// and the report compares the scopes at the target.
#[test]
fn a_rate_search_brackets_its_target_and_the_report_compares_scopes_there() {
    use nq_exp::search::{BoundarySearch, SearchSpace};
    let tmp = TempDir::new().unwrap();
    let grid = unweighted_kmeans(GRID)
        .replace("[grid]", "[search]\nrate = 1.5\nk = [2, 16]\n\n[grid]")
        .replace("prune = [\"half\"]", "prune = [\"none\"]")
        .replace("method = [\"none\", ", "method = [")
        .replace("k = [4]\nlambda = [0.01]\nfinetune = [true]\n", "");
    assert!(!grid.contains("\"none\", \"kmeans\""), "{grid}");
    let grid = write_grid(tmp.path(), &grid);
    let results = tmp.path().join("results");
    run(&grid, &results);
    let table = rows(&results);
    for scope in ["layer", "global"] {
        let mut points: Vec<(u64, u64, f64)> = table
            .iter()
            .filter(|r| r["scope"] == scope)
            .map(|r| {
                assert_eq!(r["search_rate"].as_f64(), Some(1.5), "{r}");
                assert!(r["search_budget"].is_null() && r["search_reference"].is_null());
                (
                    r["search_step"].as_u64().unwrap(),
                    r["k"].as_u64().unwrap(),
                    r["avg_codeword_bits"].as_f64().unwrap(),
                )
            })
            .collect();
        points.sort_by_key(|p| p.0);
        let mut replay = BoundarySearch::new(SearchSpace::k(2, 16), 1.5);
        for &(_, k, bits) in &points {
            assert_eq!(replay.next(), Some(k as f64), "{points:?}");
            replay.record(k as f64, bits);
        }
        assert_eq!(replay.next(), None, "{points:?}");
        assert!(points.iter().any(|p| p.2 >= 1.5), "{points:?}");
        assert!(points.iter().any(|p| p.2 < 1.5), "{points:?}");
    }
    let plan = nq()
        .args(["plan", s(&grid), "--results", s(&results)])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    let line = plan
        .lines()
        .find(|l| l.starts_with("search none.kmeans.none.global.huffman: 1 seeds"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(line.contains("; finished: "), "{line}");
    let report = nq().args(["report", s(&results)]).output().unwrap();
    assert!(report.status.success());
    let md = std::fs::read_to_string(results.join("tiny/report.md")).unwrap();
    assert!(
        md.contains("## At one rate") && md.contains("### Global against layer-by-layer"),
        "{md}"
    );
    assert!(!md.contains("## Searches"), "{md}");
}
