//! `nq-exp run --launcher slurm` through a real Slurm: a single-node
//! cluster started by `scripts/slurm-local.sh` (Debian's slurm-wlm and
//! munge, installed by `make setup`; root, as CI runs). The tiny grid goes
//! through Slurm and must give the rows of a local run; a submission
//! cancelled half way is resumed by the same command, which submits only
//! what is missing.
//!
//! Set `NQ_EXP_SKIP_SLURM=1` to skip this test where Slurm cannot run (not
//! root); it says so on stderr.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::*;

/// A running cluster, stopped when dropped.
struct Cluster {
    script: PathBuf,
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    fn start(dir: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-local.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/slurm-local.sh start failed (set NQ_EXP_SKIP_SLURM=1 where Slurm cannot \
             run): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let conf = stdout
            .lines()
            .find_map(|l| l.strip_prefix("export SLURM_CONF="))
            .unwrap_or_else(|| panic!("no SLURM_CONF in {stdout}"))
            .to_owned();
        Self {
            script,
            dir: dir.to_owned(),
            conf,
        }
    }

    /// `program args...` against this cluster.
    fn command(&self, program: &str) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn nq(&self) -> assert_cmd::Command {
        let mut c = nq();
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// `nq-exp run GRID --results RESULTS --launcher slurm EXTRA...`,
    /// which must succeed; its stdout.
    fn submit(&self, grid: &Path, results: &Path, extra: &[&str]) -> String {
        let out = self
            .nq()
            .args([
                "run",
                s(grid),
                "--results",
                s(results),
                "--launcher",
                "slurm",
            ])
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&stdout_of(out)).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

fn results_done(results: &Path) -> usize {
    std::fs::read_dir(results.join("cache/result"))
        .map(|d| {
            d.filter(|e| e.as_ref().unwrap().path().join("manifest.json").is_file())
                .count()
        })
        .unwrap_or(0)
}

fn job_ids(submitted: &Value) -> Vec<String> {
    submitted["submission"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_grid_runs_through_slurm_like_a_local_run_and_resumes_after_a_cancel() {
    if std::env::var_os("NQ_EXP_SKIP_SLURM").is_some() {
        eprintln!("NQ_EXP_SKIP_SLURM is set: the Slurm launcher is not tested");
        return;
    }
    let tmp = TempDir::new().unwrap();
    let grid = write_grid(tmp.path(), GRID);
    let local = tmp.path().join("local");
    let summary = run(&grid, &local);
    assert_eq!(summary["failed"], 0, "{summary}");
    let local_rows = rows(&local);
    assert_eq!(local_rows.len(), 9);

    let cluster = Cluster::start(&tmp.path().join("slurm"));

    // the whole grid, waited for
    let results = tmp.path().join("through-slurm");
    let submitted: Value =
        serde_json::from_str(&cluster.submit(&grid, &results, &["--wait", "--max-parallel", "2"]))
            .unwrap();
    assert_eq!(submitted["cells"], 9, "{submitted}");
    let phases: Vec<&str> = submitted["submission"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["phase"].as_str().unwrap())
        .collect();
    // one cell per distinct network and importance first: without and with
    // the Hessian
    assert_eq!(phases, ["upstream", "cells", "collect"], "{submitted}");
    assert_eq!(
        submitted["submission"]["jobs"][0]["tasks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(rows(&results), local_rows);
    let table = std::fs::read_to_string(results.join("tiny/results.csv")).unwrap();
    assert_eq!(table.lines().count(), 10, "{table}");
    let status = cluster
        .nq()
        .args(["status", s(&grid), "--results", s(&results)])
        .output()
        .unwrap();
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && status_text.contains("cells: 9 done"),
        "{status_text}"
    );

    // nothing missing: nothing submitted, the table written from the cache
    std::fs::remove_file(results.join("tiny/results.csv")).unwrap();
    let again_stdout = cluster.submit(&grid, &results, &[]);
    let first_line = again_stdout.lines().next().unwrap().to_owned();
    let again: Value = serde_json::from_str(&first_line).unwrap();
    assert!(again["submission"].is_null(), "{again}");
    assert_eq!(again["cells"], 0, "{again}");
    assert!(results.join("tiny/results.csv").is_file());

    // cancelled half way, then the same command again
    let results = tmp.path().join("cancelled");
    let first: Value =
        serde_json::from_str(&cluster.submit(&grid, &results, &["--max-parallel", "1"])).unwrap();
    let jobs = job_ids(&first);
    let deadline = Instant::now() + Duration::from_secs(300);
    while results_done(&results) < 2 {
        assert!(
            Instant::now() < deadline,
            "no result through Slurm after 300 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cancel = cluster.command("scancel").args(&jobs).status().unwrap();
    assert!(cancel.success());
    // once Slurm has ended them all
    loop {
        let queue = cluster
            .command("squeue")
            .args(["-h", "-o", "%F", "-j", &jobs.join(",")])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&queue.stdout).trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the cancelled jobs did not end");
        std::thread::sleep(Duration::from_millis(200));
    }
    let done_before = results_done(&results);
    assert!(done_before < 9, "the cancel came too late to test anything");
    let status = cluster
        .nq()
        .args(["status", s(&grid), "--results", s(&results)])
        .output()
        .unwrap();
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status_text.contains(&format!("{done_before} done")),
        "{status_text}"
    );

    let resumed: Value =
        serde_json::from_str(&cluster.submit(&grid, &results, &["--wait"])).unwrap();
    assert_eq!(
        resumed["cells"].as_u64().unwrap() as usize,
        9 - done_before,
        "{resumed}"
    );
    assert_eq!(rows(&results), local_rows);
}
