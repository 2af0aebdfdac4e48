//! `nq-exp run GRID.toml`: every cell of a grid through the stages of
//! [`stages`], each cached under its key ([`nq_exp::grid::keys`]), into one
//! result row per cell and the grid's `results.parquet` / `results.csv`.
//!
//! - A finished grid run again computes nothing: every stage is read from
//!   the cache. A run cut off at any moment (even `kill -9`) and started
//!   again redoes only the stages that had not finished, since a stage
//!   appears in the cache whole or not at all ([`Cache::store`]).
//! - `--force` recomputes every stage the grid needs, once each.
//! - `--jobs N` runs N cells at a time, each worker with its share of the
//!   torch threads; two cells needing the same stage wait for one another
//!   rather than computing it twice.
//! - A failing cell (error or panic) is recorded in its row (`status`
//!   `failed`, `error`) and the others go on; the exit status is 1 when any
//!   failed.
//!
//! Per cell, `<results>/<grid>/cells/<cell id>/` holds `config.json` (the
//! resolved cell, its grid settings and stage keys), `row.json`,
//! `log.txt` and, once it is done, `model.nqz` (the cached file, linked).

pub mod network;
mod pack;
mod prune;
mod search;
mod slurm;
mod soft_sharing;
pub mod stages;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nq_nn::data::{Dataset, InMemory, Source};
use nq_report::Row;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::Device;

use crate::train::DeviceName;
use nq_exp::cache::{Cache, Cached};
use nq_exp::error::{bad_input, print_line};
use nq_exp::grid::keys::{cell_keys, CellKeys};
use nq_exp::grid::spec::{CellSpec, EstimatorSpec, Grid, MethodSpec, ModelSpec};
use nq_exp::grid::{self};
use nq_exp::slurm::status::recorded_failure;
use nq_exp::slurm::{read_task, Task};
use stages::{Data, Estimated, Quantized, Trained, Upstream};

/// Arguments of `nq-exp run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The grid file.
    #[arg(value_name = "GRID.toml")]
    pub grid: PathBuf,
    /// Results directory: the grid's rows go to DIR/<grid name>, stage
    /// results to the cache DIR/cache shared by all grids.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Cells run at a time.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceName,
    /// Recompute every stage, cached or not.
    #[arg(long)]
    pub force: bool,
    /// Torch CPU threads in all, split between the jobs (default: the
    /// machine's cores; with --launcher slurm, each task's, default 1).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the cells run: in this process, or as Slurm job arrays
    /// against the same results directory (returns once submitted, unless
    /// --wait; `nq-exp status GRID.toml` follows them).
    #[arg(long, value_enum, default_value = "local")]
    pub launcher: Launcher,
    /// Slurm partition (--launcher slurm).
    #[arg(long)]
    pub partition: Option<String>,
    /// Tasks of one Slurm array running at a time (--launcher slurm).
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<usize>,
    /// One more argument for every sbatch (--launcher slurm), repeatable:
    /// `--sbatch-arg=--time=4:00:00`.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Block until the Slurm jobs have ended; exit 1 when a cell failed
    /// (--launcher slurm).
    #[arg(long)]
    pub wait: bool,
    /// Compute nothing: the results table from the cache, a failed row for
    /// each cell that is not there (what a Slurm submission ends with).
    #[arg(long)]
    pub cached_only: bool,
    /// Run one task of a Slurm submission: the line of FILE that
    /// `SLURM_ARRAY_TASK_ID` names (set by Slurm; 0 when unset).
    #[arg(long, value_name = "FILE", hide = true)]
    pub task: Option<PathBuf>,
}

/// Where `nq-exp run` runs the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Launcher {
    /// In this process, --jobs cells at a time.
    Local,
    /// As Slurm job arrays ([`nq_exp::slurm`]).
    Slurm,
}

/// The part of a grid one process runs.
struct Work {
    /// Indices of the cells.
    cells: Vec<usize>,
    /// Indices of the searches (their reference cells among `cells`).
    searches: Vec<usize>,
    /// Whether to write the grid's results table (when the work is all of it).
    table: bool,
    /// Whether to compute nothing, only read the cache.
    cached_only: bool,
}

impl Work {
    /// All of `grid`.
    fn all(grid: &Grid, cached_only: bool) -> Self {
        Self {
            cells: (0..grid.cells.len()).collect(),
            searches: (0..grid.searches.len()).collect(),
            table: true,
            cached_only,
        }
    }

    /// What one task of a Slurm submission does.
    fn of_task(grid: &Grid, task: Task) -> Self {
        match task {
            Task::Collect => Self::all(grid, true),
            Task::Cell(i) => Self {
                cells: vec![i],
                searches: Vec::new(),
                table: false,
                cached_only: false,
            },
            Task::Search(i) => {
                let group = &grid.searches[i];
                let prune = &group.template.prune;
                Self {
                    // the search's reference: its seeds' unquantized cells
                    cells: grid
                        .cells
                        .iter()
                        .filter(|c| {
                            c.method == MethodSpec::None
                                && &c.prune == prune
                                && group.seeds.contains(&c.seed)
                        })
                        .map(|c| c.index)
                        .collect(),
                    searches: vec![i],
                    table: false,
                    cached_only: false,
                }
            }
        }
    }
}

/// Where the code and machine that computed a result came from.
#[derive(Debug, Clone)]
struct Provenance {
    git_revision: String,
    git_dirty: bool,
    torch_version: String,
    device: String,
}

impl Provenance {
    fn detect(device: Device) -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        Self {
            git_revision: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()),
            torch_version: nq_nn::torch_version().to_owned(),
            device: match device {
                Device::Cpu => "cpu".into(),
                _ => "cuda".into(),
            },
        }
    }

    /// The git revision, marked `+dirty` when tracked files had changes.
    fn revision(&self) -> String {
        if self.git_dirty {
            format!("{}+dirty", self.git_revision)
        } else {
            self.git_revision.clone()
        }
    }

    fn stamp(&self, row: &mut Row) {
        row.git_revision = self.git_revision.clone();
        row.git_dirty = self.git_dirty;
        row.torch_version = self.torch_version.clone();
        row.device = self.device.clone();
    }
}

/// The first `n` examples of `source`, in memory.
pub fn truncated(source: &dyn Source, n: usize) -> Result<InMemory> {
    let n = n.min(source.len());
    let indices: Vec<usize> = (0..n).collect();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let (x, y) = source.batch(&indices, false, &mut rng)?;
    Ok(InMemory::new(x, y, source.classes())?)
}

/// The grid's data, cut to `train_examples` / `test_examples`.
fn load_data(model: &ModelSpec) -> Result<Data> {
    let dataset: Dataset = model.dataset.parse()?;
    let dir = model
        .data_dir
        .clone()
        .unwrap_or_else(|| dataset.default_dir());
    let splits = nq_nn::data::load(dataset, Some(&dir)).map_err(|e| {
        bad_input(format!(
            "this grid needs {} data in {}, which is missing or unreadable ({e}); set `model.data_dir` \
             in the grid to where your copy is",
            model.dataset,
            dir.display()
        ))
    })?;
    let cut = |source: Box<dyn Source>, n: Option<usize>| -> Result<Box<dyn Source>> {
        Ok(match n {
            Some(n) => Box::new(truncated(source.as_ref(), n)?),
            None => source,
        })
    };
    Ok(Data {
        train: cut(splits.train, model.train_examples)?,
        test: cut(splits.test, model.test_examples)?,
    })
}

/// A cell's log file, mirrored in the progress bar's message.
struct CellLog {
    file: Mutex<Option<File>>,
    cell: String,
    started: Instant,
    progress: ProgressBar,
}

impl CellLog {
    fn line(&self, message: String) {
        self.progress
            .set_message(format!("{}: {}", self.cell, message));
        if let Ok(mut file) = self.file.lock() {
            if let Some(f) = file.as_mut() {
                let _ = writeln!(
                    f,
                    "[{:8.1} s] {message}",
                    self.started.elapsed().as_secs_f64()
                );
            }
        }
    }
}

/// What the workers share.
struct Runner<'a> {
    grid: &'a Grid,
    cache: Cache,
    device: Device,
    force: bool,
    /// Compute nothing: a stage not in the cache is an error.
    cached_only: bool,
    provenance: Provenance,
    /// Stages recomputed in this run (with `--force`, each once).
    fresh: Mutex<HashSet<String>>,
    /// Cached stages whose files were checked in this run.
    intact: Mutex<HashSet<String>>,
    computed: AtomicUsize,
    cached: AtomicUsize,
    progress: ProgressBar,
    out: PathBuf,
}

impl Runner<'_> {
    /// The record of stage `stage` under `key`: from the cache, or computed
    /// by `compute` into a fresh stage directory.
    fn stage<T: Serialize + DeserializeOwned>(
        &self,
        stage: &str,
        key: &str,
        log: &CellLog,
        compute: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let id = format!("{stage}/{key}");
        let _held = self.cache.lock(stage, key)?;
        let stale = self.force
            && !self
                .fresh
                .lock()
                .map_err(|_| anyhow!("lock poisoned"))?
                .contains(&id);
        if !stale {
            if let Some(record) = self.intact(stage, key, &id, log)? {
                log.line(format!("{stage} {key}: cached"));
                self.cached.fetch_add(1, Ordering::Relaxed);
                return Ok(record);
            }
        }
        if self.cached_only {
            return Err(anyhow!(
                "not computed: stage {stage} {key} is not in the cache (see this cell's log.txt \
                 and the Slurm task's output)"
            ));
        }
        log.line(format!("{stage} {key}: computing"));
        let started = Instant::now();
        let record = self
            .cache
            .store(stage, key, compute)
            .with_context(|| format!("stage {stage}"))?;
        log.line(format!(
            "{stage} {key}: done in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        self.intact
            .lock()
            .map_err(|_| anyhow!("lock poisoned"))?
            .insert(id.clone());
        self.fresh
            .lock()
            .map_err(|_| anyhow!("lock poisoned"))?
            .insert(id);
        self.computed.fetch_add(1, Ordering::Relaxed);
        Ok(record)
    }

    /// The record of a cached stage whose files are as they were written
    /// (checked once a run); `None` when it is missing, or damaged: then it
    /// is moved aside, with a warning naming the damage, to be computed
    /// again. The caller holds the stage's lock.
    fn intact<T: DeserializeOwned>(
        &self,
        stage: &str,
        key: &str,
        id: &str,
        log: &CellLog,
    ) -> Result<Option<T>> {
        let checked = self
            .intact
            .lock()
            .map_err(|_| anyhow!("lock poisoned"))?
            .contains(id);
        if checked {
            return self.cache.record(stage, key);
        }
        match self.cache.lookup(stage, key) {
            Cached::Missing => Ok(None),
            Cached::Done(record) => {
                self.intact
                    .lock()
                    .map_err(|_| anyhow!("lock poisoned"))?
                    .insert(id.to_owned());
                Ok(Some(record))
            }
            Cached::Damaged(damage) => {
                let aside = self.cache.quarantine(stage, key)?;
                let warning = format!(
                    "warning: cached stage {id} is damaged ({damage}); moved to {} and computing it again",
                    aside.display()
                );
                log.line(warning.clone());
                self.progress.suspend(|| eprintln!("{warning}"));
                Ok(None)
            }
        }
    }

    /// The result row of `cell`, computing the stages it lacks.
    fn cell_row(
        &self,
        cell: &CellSpec,
        keys: &CellKeys,
        data: &Data,
        log: &CellLog,
    ) -> Result<Row> {
        let (grid, device) = (self.grid, self.device);
        let baseline: Trained = self.stage("baseline", &keys.baseline, log, |dir| {
            stages::baseline(grid, cell.seed, data, device, dir, &mut |m| log.line(m))
        })?;
        let baseline_dir = self.cache.dir("baseline", &keys.baseline);
        let pruned: Option<Trained> = match &cell.prune {
            None => None,
            Some(p) => Some(self.stage("prune", &keys.network, log, |dir| {
                prune::prune(
                    grid,
                    &p.settings,
                    cell.seed,
                    data,
                    device,
                    &baseline_dir,
                    dir,
                    &mut |m| log.line(m),
                )
            })?),
        };
        let network_dir = match &cell.prune {
            None => baseline_dir.clone(),
            Some(_) => self.cache.dir("prune", &keys.network),
        };
        let importance: Option<Estimated> = match (&cell.weighting, &keys.importance) {
            (Some(w), Some(key)) => Some(self.stage("importance", key, log, |dir| {
                stages::importance(
                    grid,
                    &w.estimator,
                    cell.seed,
                    data,
                    device,
                    &network_dir,
                    dir,
                    &mut |m| log.line(m),
                )
            })?),
            _ => None,
        };
        let importance_dir = keys
            .importance
            .as_ref()
            .map(|k| self.cache.dir("importance", k));
        let quantized: Option<Quantized> = match cell.method {
            MethodSpec::None => None,
            _ => Some(self.stage("quantize", &keys.quantized, log, |dir| {
                stages::quantize(
                    grid,
                    cell,
                    data,
                    device,
                    &network_dir,
                    importance_dir.as_deref(),
                    dir,
                    &mut |m| log.line(m),
                )
            })?),
        };
        let model_dir = match cell.method {
            MethodSpec::None => network_dir.clone(),
            _ => self.cache.dir("quantize", &keys.quantized),
        };
        let up = Upstream {
            baseline: &baseline,
            pruned: pruned.as_ref(),
            importance: importance.as_ref(),
            quantized: quantized.as_ref(),
            network_dir: &network_dir,
            model_dir: &model_dir,
        };
        let mut row: Row = self.stage("result", &keys.result, log, |dir| {
            let input = data.input();
            let metadata = nq_exp::metadata::for_cell(
                grid,
                cell,
                input.image.map(|d| d as usize),
                input.classes as usize,
                &self.provenance.revision(),
            );
            let mut row =
                stages::result(grid, cell, data, device, &up, &metadata, dir, &mut |m| {
                    log.line(m)
                })?;
            self.provenance.stamp(&mut row);
            Ok(row)
        })?;
        let metric = grid.model.metric();
        log.line(format!(
            "row: {}, ratio {:.2}x",
            metric.show(metric.value(row.top1, row.loss).unwrap_or(f64::NAN)),
            row.compression_ratio.unwrap_or(f64::NAN)
        ));
        describe(self.grid, cell, &mut row);
        row.status = "ok".into();
        Ok(row)
    }

    /// Runs one cell to its row, recording a failure as a row; `mark`
    /// adds what the cell's place in the grid says (a search's fields).
    fn run_cell(&self, cell: &CellSpec, data: &Result<Data>, mark: &dyn Fn(&mut Row)) -> Row {
        let keys = cell_keys(self.grid, cell);
        let cell_dir = self.out.join("cells").join(&cell.id);
        // a run that computes nothing leaves the cell's records (those of
        // the task that ran it) as they are
        let records = !self.cached_only;
        let log = CellLog {
            // appended to, so that a rerun does not hide how a stage was computed
            file: Mutex::new(
                std::fs::create_dir_all(&cell_dir)
                    .ok()
                    .filter(|_| records)
                    .and_then(|_| {
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(cell_dir.join("log.txt"))
                            .ok()
                    }),
            ),
            cell: cell.id.clone(),
            started: Instant::now(),
            progress: self.progress.clone(),
        };
        log.line(format!(
            "run of {} (git {}{})",
            self.grid.path.display(),
            self.provenance.git_revision,
            if self.provenance.git_dirty {
                ", dirty"
            } else {
                ""
            }
        ));
        let config = serde_json::json!({
            "grid": self.grid.name,
            "grid_file": self.grid.path,
            "model": self.grid.model,
            "train": self.grid.train,
            "cell": cell,
            "keys": keys,
        });
        if records {
            let _ = std::fs::write(
                cell_dir.join("config.json"),
                serde_json::to_string_pretty(&config).unwrap_or_default(),
            );
        }
        let outcome = match data {
            Ok(data) => catch_unwind(AssertUnwindSafe(|| self.cell_row(cell, &keys, data, &log)))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(anyhow!("panicked: {message}"))
                }),
            Err(e) => Err(anyhow!("cannot load the data: {e:#}")),
        };
        let row = outcome.unwrap_or_else(|e| {
            let recorded = (!records)
                .then(|| recorded_failure(&self.out, &cell.id, &keys.result))
                .flatten();
            let message = recorded.unwrap_or_else(|| format!("{e:#}"));
            log.line(format!("FAILED: {message}"));
            let mut row = Row {
                status: "failed".into(),
                error: Some(message),
                ..Row::default()
            };
            describe(self.grid, cell, &mut row);
            self.provenance.stamp(&mut row);
            row
        });
        let mut row = row;
        mark(&mut row);
        if records {
            let _ = std::fs::write(
                cell_dir.join("row.json"),
                serde_json::to_string_pretty(&row).unwrap_or_default(),
            );
            if row.status == "ok" {
                let nqz = self
                    .cache
                    .dir("result", &keys.result)
                    .join(stages::NQZ_FILE);
                link_or_copy(&nqz, &cell_dir.join(stages::NQZ_FILE));
            }
        }
        row
    }
}

/// Puts the cell's `.nqz` beside its row: a hard link to the cached file
/// (so that a later sweep or quarantine of the cache leaves it whole), a
/// copy across file systems. Best effort, like the other cell records.
fn link_or_copy(from: &Path, to: &Path) {
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        let _ = std::fs::copy(from, to);
    }
}

/// Fills the fields of `row` that say which cell it is.
fn describe(grid: &Grid, cell: &CellSpec, row: &mut Row) {
    row.experiment = grid.name.clone();
    row.cell = cell.id.clone();
    row.index = cell.index as u64;
    row.model = grid.model.arch.clone();
    row.dataset = grid.model.dataset.clone();
    row.seed = cell.seed;
    row.prune = cell.prune.as_ref().map(|p| p.name.clone());
    row.keep = cell.prune.as_ref().map(|p| p.settings.keep);
    row.weighting = cell.weighting.as_ref().map(|w| w.name.clone());
    let (estimator, samples) = match cell.weighting.as_ref().map(|w| &w.estimator) {
        None => (None, None),
        Some(EstimatorSpec::Hutchinson { samples, .. }) => (Some("hutchinson"), Some(*samples)),
        Some(EstimatorSpec::GaussNewton { samples }) => (Some("gauss-newton"), Some(*samples)),
        Some(EstimatorSpec::GaussNewtonMc { samples, .. }) => {
            (Some("gauss-newton-mc"), Some(*samples))
        }
        Some(EstimatorSpec::Exact { samples }) => (Some("exact"), Some(*samples)),
        Some(EstimatorSpec::Adam { .. }) => (Some("adam"), None),
    };
    row.estimator = estimator.map(str::to_owned);
    row.samples = samples.map(|s| s as u64);
    row.method = cell.method.name().to_owned();
    row.scope = cell.scope.map(|s| s.to_string());
    row.k = cell.method.k().map(|k| k as u64);
    row.lambda = cell.method.lambda();
    row.coding = cell.coding.map(|c| c.to_string());
    row.rounding = cell.rounding.map(|r| r.name().to_owned());
    row.quantizer_seed = cell.quantizer_seed;
    row.finetuned = cell.finetune.is_some();
    row.finetune_trains = cell.finetune.as_ref().map(|f| f.trains().name().to_owned());
}

/// The line `run` prints on stdout when it finishes.
#[derive(Debug, Serialize)]
struct Summary {
    grid: String,
    cells: usize,
    failed: usize,
    stages_computed: usize,
    stages_cached: usize,
    seconds: f64,
    results: PathBuf,
}

/// Runs `nq-exp run`: the grid here, its submission to Slurm, or one
/// task of such a submission.
pub fn run(args: &RunArgs) -> Result<()> {
    let grid = grid::load(&args.grid).map_err(|e| bad_input(e.to_string()))?;
    if args.jobs == 0 {
        return Err(bad_input("--jobs: expected at least 1"));
    }
    if args.threads == Some(0) {
        return Err(bad_input("--threads: expected at least 1"));
    }
    if args.max_parallel == Some(0) {
        return Err(bad_input("--max-parallel: expected at least 1"));
    }
    if args.cached_only && args.force {
        return Err(bad_input(
            "--cached-only computes nothing: it cannot be --force",
        ));
    }
    if args.launcher == Launcher::Local {
        let slurm_only = [
            ("--partition", args.partition.is_some()),
            ("--max-parallel", args.max_parallel.is_some()),
            ("--sbatch-arg", !args.sbatch_args.is_empty()),
            ("--wait", args.wait),
        ];
        if let Some((flag, _)) = slurm_only.iter().find(|(_, given)| *given) {
            return Err(bad_input(format!("{flag} needs --launcher slurm")));
        }
    }
    if args.launcher == Launcher::Slurm {
        return slurm::submit(&grid, args);
    }
    let work = match &args.task {
        None => Work::all(&grid, args.cached_only),
        Some(file) => {
            let index = match std::env::var("SLURM_ARRAY_TASK_ID") {
                Err(_) => 0,
                Ok(v) => v.parse().map_err(|_| {
                    bad_input(format!("SLURM_ARRAY_TASK_ID: expected an index, got {v:?}"))
                })?,
            };
            Work::of_task(&grid, read_task(file, index, &grid)?)
        }
    };
    execute(&grid, args, &work)
}

/// `cells` in the order the workers take them: first each cell that is
/// the first of its quantized network (or, unquantized, of its network),
/// then the second of each, and so on, in grid order within a round. Cells
/// sharing a quantized network (they differ only in the coding) are
/// neighbours in the grid, and a worker taking the second while another
/// computes the first would only wait for it.
fn parallel_order(grid: &Grid, cells: &[usize]) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut ranked: Vec<(usize, usize)> = cells
        .iter()
        .map(|&i| {
            let cell = &grid.cells[i];
            let keys = cell_keys(grid, cell);
            let shared = match cell.method {
                MethodSpec::None => keys.network,
                _ => keys.quantized,
            };
            let rank = seen.entry(shared).or_default();
            *rank += 1;
            (*rank, i)
        })
        .collect();
    ranked.sort_by_key(|&(rank, _)| rank);
    ranked.into_iter().map(|(_, i)| i).collect()
}

/// Runs `work` of `grid` in this process, `--jobs` cells at a time.
fn execute(grid: &Grid, args: &RunArgs, work: &Work) -> Result<()> {
    let order = parallel_order(grid, &work.cells);
    let started = Instant::now();
    let device = args.device.resolve()?;
    // the data is checked before any work; each worker has its own copy
    // because sources are not shared between threads
    let first_data = load_data(&grid.model)?;
    if grid.model.model_file.is_some() {
        // the user's module is checked on the data before any work
        network::new_model(grid, &first_data, Device::Cpu)
            .map_err(|e| bad_input(format!("{e:#}")))?;
    }
    let out = args.results.join(&grid.name);
    std::fs::create_dir_all(out.join("cells"))
        .map_err(|e| bad_input(format!("cannot create {}: {e}", out.display())))?;
    let jobs = args.jobs.min(work.cells.len() + work.searches.len()).max(1);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let per_job = (threads / jobs).max(1);

    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(work.cells.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} cells, {eta} left  {wide_msg}",
            )
            .map_err(|e| anyhow!("progress bar template: {e}"))?
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(500));
        bar
    } else {
        ProgressBar::hidden()
    };
    let cache = Cache::new(&args.results);
    cache.sweep();
    let runner = Runner {
        grid,
        cache,
        device,
        force: args.force,
        cached_only: work.cached_only,
        provenance: Provenance::detect(device),
        fresh: Mutex::new(HashSet::new()),
        intact: Mutex::new(HashSet::new()),
        computed: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        progress: progress.clone(),
        out: out.clone(),
    };
    // each worker has its own copy of the data (sources are not shared
    // between threads), kept from the cells to the searches
    let data_pool: Mutex<Vec<Data>> = Mutex::new(vec![first_data]);
    let with_data = |work: &dyn Fn(&Result<Data>)| {
        tch::set_num_threads(per_job as i32);
        let data = match data_pool.lock().ok().and_then(|mut pool| pool.pop()) {
            Some(d) => Ok(d),
            None => load_data(&grid.model),
        };
        work(&data);
        if let (Ok(d), Ok(mut pool)) = (data, data_pool.lock()) {
            pool.push(d);
        }
    };
    let metric = grid.model.metric();
    let announce = |row: &Row| {
        let line = format!(
            "{} {}: {}",
            row.status,
            row.cell,
            match (&row.error, nq_exp::search::quality(metric, row)) {
                (Some(e), _) => e.clone(),
                (None, Some(q)) => format!(
                    "{}, ratio {:.2}x",
                    metric.show(q),
                    row.compression_ratio.unwrap_or(f64::NAN)
                ),
                (None, None) => String::new(),
            }
        );
        if progress.is_hidden() {
            eprintln!("{line}");
        } else {
            progress.println(line);
        }
        progress.inc(1);
    };
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Row>> = Mutex::new(Vec::with_capacity(work.cells.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                with_data(&|data| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cell) = order.get(i).map(|&c| &grid.cells[c]) else {
                        break;
                    };
                    let row = runner.run_cell(cell, data, &|_| {});
                    announce(&row);
                    if let Ok(mut rows) = rows.lock() {
                        rows.push(row);
                    }
                })
            });
        }
    });
    let mut rows = rows
        .into_inner()
        .map_err(|_| anyhow!("a worker panicked"))?;
    rows.sort_by_key(|r| r.index);
    if rows.len() != work.cells.len() {
        return Err(anyhow!(
            "{} of {} cells produced no row",
            work.cells.len() - rows.len(),
            work.cells.len()
        ));
    }
    if !work.searches.is_empty() {
        let references = search::references(&rows, grid.model.metric());
        let next = AtomicUsize::new(0);
        let searched: Mutex<Vec<(usize, Vec<Row>)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(work.searches.len()) {
                scope.spawn(|| {
                    with_data(&|data| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(group) = work.searches.get(i).map(|&g| &grid.searches[g]) else {
                            break;
                        };
                        let found = runner.run_search(group, &references, data, &announce);
                        if let Ok(mut searched) = searched.lock() {
                            searched.push((i, found));
                        }
                    })
                });
            }
        });
        let mut searched = searched
            .into_inner()
            .map_err(|_| anyhow!("a worker panicked"))?;
        if searched.len() != work.searches.len() {
            return Err(anyhow!(
                "{} searches produced no row",
                work.searches.len() - searched.len()
            ));
        }
        searched.sort_by_key(|(i, _)| *i);
        for (_, found) in searched {
            for mut row in found {
                row.index = rows.len() as u64;
                rows.push(row);
            }
        }
    }
    progress.finish_and_clear();
    if work.table {
        nq_report::table::write_results(&out, &rows)?;
    }
    let failed = rows.iter().filter(|r| r.status != "ok").count();
    print_line(&serde_json::to_string(&Summary {
        grid: grid.name.clone(),
        cells: rows.len(),
        failed,
        stages_computed: runner.computed.load(Ordering::Relaxed),
        stages_cached: runner.cached.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        results: out.clone(),
    })?)?;
    if failed > 0 {
        return Err(anyhow!(
            "{failed} of {} cells failed; their errors are in {} and cells/<id>/log.txt",
            rows.len(),
            out.join(nq_report::table::CSV).display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_take_one_cell_of_each_quantized_network_before_the_second() {
        let grid = grid::parse(
            r#"
name = "order"
description = "two codings share each quantized network"
[model]
arch = "lenet5"
dataset = "fashion-mnist"
[train]
epochs = 1
optimizer = "adam"
lr = 1e-3
batch_size = 64
[grid]
seed = [0]
method = ["none", "kmeans"]
k = [4, 8]
coding = ["huffman", "fixed"]
"#,
            Path::new("order.toml"),
        )
        .unwrap();
        let ids = |order: Vec<usize>| -> Vec<String> {
            order.iter().map(|&i| grid.cells[i].id.clone()).collect()
        };
        let all: Vec<usize> = (0..grid.cells.len()).collect();
        assert_eq!(
            ids(parallel_order(&grid, &all)),
            [
                "s0.none.none",
                "s0.none.kmeans.k4.none.layer.huffman",
                "s0.none.kmeans.k8.none.layer.huffman",
                "s0.none.kmeans.k4.none.layer.fixed",
                "s0.none.kmeans.k8.none.layer.fixed",
            ]
        );
        // the grid's own order keeps the codings of one network together
        assert_eq!(grid.cells[2].id, "s0.none.kmeans.k4.none.layer.fixed");
    }
}
