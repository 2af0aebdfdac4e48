//! The Slurm launcher of `nq-exp run GRID --launcher slurm`: the missing
//! work of a grid submitted as Slurm job arrays that run against the shared
//! results directory, through Slurm's own `sbatch`, `squeue` and `sacct`.
//!
//! Each task of an array runs one line of a task file
//! (`<results>/<grid>/slurm/<submission>/<phase>.tasks`: `cell 12`,
//! `search 3`, `collect`) with `nq-exp-torch run GRID --task FILE`, the
//! line picked by `SLURM_ARRAY_TASK_ID`. A submission has up to four
//! arrays, in this order:
//!
//! 1. `upstream`: for each distinct network and importance that the missing
//!    cells need, one of those cells, which computes them on its way;
//! 2. `cells`: the other missing cells, once the first array has ended;
//! 3. `searches`: each unfinished search (a bisection walks its points one
//!    after another, so one task each), once the cells have ended, since a
//!    search is measured against the grid's unquantized cells;
//! 4. `collect`: one task after everything, which writes the grid's results
//!    table from the cache (`--cached-only`) and fails when a row did.
//!
//! Dependencies are `afterany`, not `afterok`, so that a failed task does
//! not leave the rest pending forever: a cell whose upstream task failed
//! computes what it lacks itself (or fails with its own error). The stage
//! locks of the cache ([`crate::cache`]) keep two tasks from computing one
//! stage. Running the same command again submits only what is still
//! missing; while an earlier submission of the grid is queued or running,
//! it refuses. Every submission is recorded in
//! `<results>/<grid>/slurm/submissions.jsonl`, which `nq-exp status` reads.

mod queue;
pub mod status;

use std::collections::HashSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::error::bad_input;
use crate::grid::keys::cell_keys;
use crate::grid::spec::Grid;
use crate::plan::{search_state, SearchState};

pub use queue::{finished_states, queued_states, TaskId};

/// What one task of an array job does: one line of a task file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// The cell of this index in the grid.
    Cell(usize),
    /// The search of this index in the grid.
    Search(usize),
    /// The results table from the cache.
    Collect,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Cell(i) => write!(f, "cell {i}"),
            Task::Search(i) => write!(f, "search {i}"),
            Task::Collect => f.write_str("collect"),
        }
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let index = |w: Option<&str>| -> Result<usize, String> {
            w.and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("expected an index after the task's kind in {line:?}"))
        };
        let task = match words.next() {
            Some("cell") => Task::Cell(index(words.next())?),
            Some("search") => Task::Search(index(words.next())?),
            Some("collect") => Task::Collect,
            _ => {
                return Err(format!(
                    "expected `cell N`, `search N` or `collect`, got {line:?}"
                ))
            }
        };
        if words.next().is_some() {
            return Err(format!("unexpected words after the task in {line:?}"));
        }
        Ok(task)
    }
}

/// The task on line `index` (0-based) of `file`, checked against `grid`.
pub fn read_task(file: &Path, index: usize, grid: &Grid) -> Result<Task> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| bad_input(format!("cannot read the task file {}: {e}", file.display())))?;
    let line = text.lines().nth(index).ok_or_else(|| {
        bad_input(format!(
            "{}: no task {index} (the file has {} lines)",
            file.display(),
            text.lines().count()
        ))
    })?;
    let task: Task = line
        .parse()
        .map_err(|e| bad_input(format!("{}:{}: {e}", file.display(), index + 1)))?;
    let fits = match task {
        Task::Cell(i) => i < grid.cells.len(),
        Task::Search(i) => i < grid.searches.len(),
        Task::Collect => true,
    };
    if !fits {
        return Err(bad_input(format!(
            "{}:{}: `{task}` is not in grid {} ({} cells, {} searches): was the grid changed \
             after the submission?",
            file.display(),
            index + 1,
            grid.name,
            grid.cells.len(),
            grid.searches.len()
        )));
    }
    Ok(task)
}

/// The Slurm settings of a submission.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// Tasks of one array running at a time (`--array=...%N`).
    pub max_parallel: Option<usize>,
    /// More arguments for every `sbatch`, as given.
    pub sbatch_args: Vec<String>,
    /// Torch threads (and `--cpus-per-task`) of each task.
    pub threads: usize,
    /// Block until the submission has ended (`sbatch --wait` on the last job).
    pub wait: bool,
}

/// One submitted array job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedJob {
    /// `upstream`, `cells`, `searches` or `collect`.
    pub phase: String,
    /// Slurm's job id of the array.
    pub job_id: String,
    /// Its tasks, by array index.
    pub tasks: Vec<String>,
}

/// One line of `submissions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Its directory under `<results>/<grid>/slurm/`.
    pub name: String,
    /// The grid file.
    pub grid_file: PathBuf,
    /// Its array jobs, in submission order.
    pub jobs: Vec<SubmittedJob>,
}

/// What `submit` did.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    /// The grid.
    pub grid: String,
    /// Cells submitted (both cell arrays).
    pub cells: usize,
    /// Searches submitted.
    pub searches: usize,
    /// The jobs, `None` when nothing was missing.
    pub submission: Option<Submission>,
}

/// `<results>/<grid>/slurm`.
pub fn slurm_dir(results: &Path, grid: &Grid) -> PathBuf {
    results.join(&grid.name).join("slurm")
}

const SUBMISSIONS: &str = "submissions.jsonl";

/// Every submission of `grid` recorded under `results`, oldest first.
pub fn submissions(results: &Path, grid: &Grid) -> Result<Vec<Submission>> {
    let path = slurm_dir(results, grid).join(SUBMISSIONS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| {
                bad_input(format!(
                    "{}:{}: not a submission record ({e})",
                    path.display(),
                    n + 1
                ))
            })
        })
        .collect()
}

/// The work of `grid` that the cache under `results` lacks: the missing
/// cells split into the first per distinct network and importance, and
/// the others; and the unfinished searches.
pub fn missing_work(grid: &Grid, results: &Path) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    let cache = Cache::new(results);
    let mut seen_upstream = HashSet::new();
    let (mut upstream, mut rest) = (Vec::new(), Vec::new());
    for cell in &grid.cells {
        let keys = cell_keys(grid, cell);
        if cache.is_done("result", &keys.result) {
            continue;
        }
        let needs = keys.importance.clone().unwrap_or(keys.network.clone());
        if seen_upstream.insert(needs) {
            upstream.push(cell.index);
        } else {
            rest.push(cell.index);
        }
    }
    let mut searches = Vec::new();
    for (i, group) in grid.searches.iter().enumerate() {
        if !matches!(
            search_state(grid, &cache, group)?,
            SearchState::Finished { .. }
        ) {
            searches.push(i);
        }
    }
    Ok((upstream, rest, searches))
}

/// `text` as one shell word.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// Submits the missing work of `grid` (see the module docs); `worker` is
/// the `nq-exp-torch` binary the tasks run.
pub fn submit(
    grid: &Grid,
    results: &Path,
    worker: &Path,
    options: &SlurmOptions,
) -> Result<Submitted> {
    let earlier = submissions(results, grid)?;
    let ours: Vec<String> = earlier
        .iter()
        .flat_map(|s| s.jobs.iter().map(|j| j.job_id.clone()))
        .collect();
    let active: Vec<String> = queued_states(&ours)?
        .into_keys()
        .map(|t| t.job_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !active.is_empty() {
        return Err(bad_input(format!(
            "jobs of an earlier submission of grid {} are still queued or running ({}): wait for \
             them (`nq-exp status {}`) or cancel them with `scancel {}`, then run this again",
            grid.name,
            active.join(", "),
            grid.path.display(),
            active.join(" ")
        )));
    }
    let (upstream, rest, searches) = missing_work(grid, results)?;
    let mut submitted = Submitted {
        grid: grid.name.clone(),
        cells: upstream.len() + rest.len(),
        searches: searches.len(),
        submission: None,
    };
    if upstream.is_empty() && searches.is_empty() {
        return Ok(submitted);
    }
    let results = absolute(results)?;
    let grid_file = absolute(&grid.path)?;
    let worker = absolute(worker)?;
    let name = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        std::process::id()
    );
    let dir = slurm_dir(&results, grid).join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let threads = options.threads.max(1);

    let mut jobs: Vec<SubmittedJob> = Vec::new();
    let phases: [(&str, Vec<Task>, &[&str]); 4] = [
        (
            "upstream",
            upstream.iter().map(|&i| Task::Cell(i)).collect(),
            &[],
        ),
        (
            "cells",
            rest.iter().map(|&i| Task::Cell(i)).collect(),
            &["upstream"],
        ),
        (
            "searches",
            searches.iter().map(|&i| Task::Search(i)).collect(),
            &["upstream", "cells"],
        ),
        (
            "collect",
            vec![Task::Collect],
            &["upstream", "cells", "searches"],
        ),
    ];
    for (phase, tasks, after) in phases {
        if tasks.is_empty() {
            continue;
        }
        let task_file = dir.join(format!("{phase}.tasks"));
        let lines: Vec<String> = tasks.iter().map(Task::to_string).collect();
        std::fs::write(&task_file, lines.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", task_file.display()))?;
        let mut command = format!(
            "exec {} run {} --results {} --threads {threads}",
            quoted(&worker.to_string_lossy()),
            quoted(&grid_file.to_string_lossy()),
            quoted(&results.to_string_lossy()),
        );
        if phase == "collect" {
            command.push_str(" --cached-only");
        } else {
            command.push_str(&format!(" --task {}", quoted(&task_file.to_string_lossy())));
        }
        let script = dir.join(format!("{phase}.sh"));
        std::fs::write(&script, format!("#!/bin/sh\n{command}\n"))
            .with_context(|| format!("cannot write {}", script.display()))?;

        let mut args = vec![
            "--parsable".to_owned(),
            format!("--job-name=nq-{}-{phase}", grid.name),
            format!("--cpus-per-task={threads}"),
            format!("--output={}/{phase}-%A_%a.out", dir.display()),
            format!("--chdir={}", results.display()),
        ];
        if phase != "collect" {
            let mut array = format!("--array=0-{}", tasks.len() - 1);
            if let Some(n) = options.max_parallel {
                array.push_str(&format!("%{n}"));
            }
            args.push(array);
        }
        let depends: Vec<&str> = jobs
            .iter()
            .filter(|j| after.contains(&j.phase.as_str()))
            .map(|j| j.job_id.as_str())
            .collect();
        if !depends.is_empty() {
            args.push(format!("--dependency=afterany:{}", depends.join(":")));
        }
        if let Some(p) = &options.partition {
            args.push(format!("--partition={p}"));
        }
        args.extend(options.sbatch_args.iter().cloned());
        let last = phase == "collect";
        if last && options.wait {
            // record the submission before blocking: `status` can read it meanwhile
            let job_id = sbatch_then_record(&args, &script, &dir, |job_id| {
                let mut all = jobs.clone();
                all.push(SubmittedJob {
                    phase: phase.to_owned(),
                    job_id: job_id.to_owned(),
                    tasks: lines.clone(),
                });
                record(&results, grid, &name, &grid_file, all)
            })?;
            jobs.push(SubmittedJob {
                phase: phase.to_owned(),
                job_id,
                tasks: lines,
            });
        } else {
            let job_id = sbatch(&args, &script)?;
            jobs.push(SubmittedJob {
                phase: phase.to_owned(),
                job_id,
                tasks: lines,
            });
            if last {
                record(&results, grid, &name, &grid_file, jobs.clone())?;
            }
        }
    }
    submitted.submission = Some(Submission {
        name,
        grid_file,
        jobs,
    });
    Ok(submitted)
}

/// Appends a submission to `submissions.jsonl`.
fn record(
    results: &Path,
    grid: &Grid,
    name: &str,
    grid_file: &Path,
    jobs: Vec<SubmittedJob>,
) -> Result<()> {
    let path = slurm_dir(results, grid).join(SUBMISSIONS);
    let line = serde_json::to_string(&Submission {
        name: name.to_owned(),
        grid_file: grid_file.to_owned(),
        jobs,
    })?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("cannot write {}", path.display()))
}

fn sbatch_failed(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        bad_input("sbatch not found: --launcher slurm needs Slurm's commands on the PATH")
    } else {
        anyhow!("cannot run sbatch: {e}")
    }
}

/// The job id `sbatch --parsable` printed (`ID` or `ID;CLUSTER`).
fn job_id_of(stdout: &[u8]) -> Result<String> {
    let text = String::from_utf8_lossy(stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_owned();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(anyhow!("sbatch printed no job id: {text:?}"));
    }
    Ok(id)
}

/// Submits `script`; the job id.
fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .args(args)
        .arg(script)
        .output()
        .map_err(sbatch_failed)?;
    if !out.status.success() {
        return Err(anyhow!(
            "sbatch {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    job_id_of(&out.stdout)
}

/// Submits `script` with `--wait`: `on_id` gets the job id as soon as
/// sbatch prints it; returns once the job has ended, an error when it
/// failed.
fn sbatch_then_record(
    args: &[String],
    script: &Path,
    dir: &Path,
    on_id: impl FnOnce(&str) -> Result<()>,
) -> Result<String> {
    use std::io::BufRead;
    // `--wait` is an option of sbatch's, so it goes before the script
    let mut command = Command::new("sbatch");
    command
        .args(args)
        .arg("--wait")
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().map_err(sbatch_failed)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("sbatch: no stdout"))?;
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .context("cannot read sbatch's output")?;
    let job_id = job_id_of(first.as_bytes());
    let recorded = job_id.as_ref().map(|id| on_id(id));
    let out = child.wait_with_output().context("cannot wait for sbatch")?;
    recorded.map_err(|e| anyhow!("{e:#}"))??;
    let job_id = job_id?;
    if !out.status.success() {
        return Err(anyhow!(
            "the collecting job {job_id} ended with status {}: some cells failed or were not \
             computed; `nq-exp status` lists them, and {} has the tasks' output",
            out.status
                .code()
                .map_or("unknown".into(), |c| c.to_string()),
            dir.display()
        ));
    }
    Ok(job_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_read_back_as_written_and_malformed_lines_are_named() {
        for task in [
            Task::Cell(0),
            Task::Cell(17),
            Task::Search(3),
            Task::Collect,
        ] {
            assert_eq!(task.to_string().parse::<Task>(), Ok(task));
        }
        assert!("cell"
            .parse::<Task>()
            .unwrap_err()
            .contains("expected an index"));
        assert!("cell x"
            .parse::<Task>()
            .unwrap_err()
            .contains("expected an index"));
        assert!("train 3"
            .parse::<Task>()
            .unwrap_err()
            .contains("expected `cell N`"));
        assert!("cell 3 4"
            .parse::<Task>()
            .unwrap_err()
            .contains("unexpected words"));
    }

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(quoted("/a b/c"), "'/a b/c'");
        assert_eq!(quoted("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_job_id_is_read_with_or_without_a_cluster() {
        assert_eq!(job_id_of(b"1234\n").unwrap(), "1234");
        assert_eq!(job_id_of(b"1234;cluster\n").unwrap(), "1234");
        assert!(job_id_of(b"Submitted batch job 12").is_err());
        assert!(job_id_of(b"").is_err());
    }
}
