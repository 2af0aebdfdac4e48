//! `nq-exp status GRID.toml`: where each cell and search of a grid stands,
//! from the cache (done), the cells' own records (failed, with the error),
//! and, for grids submitted to Slurm, `squeue` (pending, running) and
//! `sacct` (how a task ended, where the cluster keeps accounting).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::{finished_states, queued_states, submissions, Task, TaskId};
use crate::cache::Cache;
use crate::error::{bad_input, print_line};
use crate::grid::keys::cell_keys;
use crate::grid::{self};
use crate::plan::{search_state, SearchState};

/// Arguments of `nq-exp status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The grid file.
    #[arg(value_name = "GRID.toml")]
    pub grid: PathBuf,
    /// Results directory (as given to `nq-exp run`).
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
}

/// The error of a cell's last failed run (`<grid dir>/cells/<id>/row.json`),
/// when its record is of the same result key (not of an earlier version of
/// the grid).
pub fn recorded_failure(grid_dir: &Path, cell_id: &str, result_key: &str) -> Option<String> {
    let dir = grid_dir.join("cells").join(cell_id);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).ok()?).ok()?;
    if config["keys"]["result"].as_str() != Some(result_key) {
        return None;
    }
    let row: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("row.json")).ok()?).ok()?;
    (row["status"].as_str() == Some("failed")).then(|| {
        row["error"]
            .as_str()
            .unwrap_or("no error recorded")
            .to_owned()
    })
}

/// Runs `nq-exp status`: a line per cell and search, then the counts.
pub fn run(args: &StatusArgs) -> Result<()> {
    let grid = grid::load(&args.grid).map_err(|e| bad_input(e.to_string()))?;
    let cache = Cache::new(&args.results);
    let subs = submissions(&args.results, &grid)?;
    // the latest submission of each task wins
    let mut task_ids: HashMap<Task, TaskId> = HashMap::new();
    for sub in &subs {
        for job in &sub.jobs {
            for (i, line) in job.tasks.iter().enumerate() {
                if let Ok(task) = line.parse::<Task>() {
                    let task_index = (job.phase != "collect").then_some(i);
                    task_ids.insert(
                        task,
                        TaskId {
                            job_id: job.job_id.clone(),
                            task: task_index,
                        },
                    );
                }
            }
        }
    }
    let jobs: Vec<String> = subs
        .iter()
        .flat_map(|s| s.jobs.iter().map(|j| j.job_id.clone()))
        .collect();
    let queued = queued_states(&jobs)?;
    let finished = if jobs.is_empty() {
        Some(HashMap::new())
    } else {
        finished_states(&jobs)
    };
    let slurm_state = |task: Task| -> Option<String> {
        let id = task_ids.get(&task)?;
        queued
            .get(id)
            .or_else(|| finished.as_ref().and_then(|f| f.get(id)))
            .map(|s| s.to_lowercase())
    };

    print_line(&format!(
        "{} ({}): {} cells, {} searches, results in {}",
        grid.name,
        grid.path.display(),
        grid.cells.len(),
        grid.searches.len(),
        args.results.join(&grid.name).display()
    ))?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for cell in &grid.cells {
        let key = cell_keys(&grid, cell).result;
        let (state, detail) = if cache.is_done("result", &key) {
            ("done".to_owned(), String::new())
        } else {
            match (
                slurm_state(Task::Cell(cell.index)),
                recorded_failure(&args.results.join(&grid.name), &cell.id, &key),
            ) {
                (Some(s), _) if s == "pending" || s == "running" => (s, String::new()),
                (_, Some(error)) => ("failed".to_owned(), format!(": {error}")),
                (Some(s), None) if s != "completed" => (s, String::new()),
                _ => ("missing".to_owned(), String::new()),
            }
        };
        print_line(&format!(
            "{:>5}  {:<48} {state}{detail}",
            cell.index, cell.id
        ))?;
        *counts.entry(state).or_default() += 1;
    }
    let mut search_counts: BTreeMap<String, usize> = BTreeMap::new();
    for (i, group) in grid.searches.iter().enumerate() {
        let progress = search_state(&grid, &cache, group)?;
        let state = match (&progress, slurm_state(Task::Search(i))) {
            (SearchState::Finished { .. }, _) => "done".to_owned(),
            (_, Some(s)) if s != "completed" => s,
            (SearchState::NotStarted, _) => "not started".to_owned(),
            (SearchState::Running { .. }, _) => "unfinished".to_owned(),
        };
        let points = match &progress {
            SearchState::NotStarted => 0,
            SearchState::Running { tried, .. } | SearchState::Finished { tried } => tried.len(),
        };
        print_line(&format!(
            "search {}: {state}, {points} points cached",
            group.id
        ))?;
        *search_counts.entry(state).or_default() += 1;
    }
    let list = |counts: &BTreeMap<String, usize>| {
        counts
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut summary = format!("cells: {}", list(&counts));
    if !grid.searches.is_empty() {
        summary.push_str(&format!("; searches: {}", list(&search_counts)));
    }
    if let Some(state) = slurm_state(Task::Collect) {
        summary.push_str(&format!("; results table job: {state}"));
    }
    if !jobs.is_empty() && finished.is_none() {
        summary.push_str(
            " (sacct has no accounting on this cluster: ended tasks are judged by the cache)",
        );
    }
    print_line(&summary)
}
