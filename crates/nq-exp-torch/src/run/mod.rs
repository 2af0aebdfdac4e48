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
//! resolved cell, its grid settings and stage keys), `row.json` and
//! `log.txt`.

mod search;
pub mod stages;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
use nq_exp::cache::Cache;
use nq_exp::error::{bad_input, print_line};
use nq_exp::grid::keys::{cell_keys, CellKeys};
use nq_exp::grid::spec::{CellSpec, EstimatorSpec, Grid, MethodSpec, ModelSpec};
use nq_exp::grid::{self};
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
    /// machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
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
    provenance: Provenance,
    /// Stages recomputed in this run (with `--force`, each once).
    fresh: Mutex<HashSet<String>>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
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
        let lock = self
            .locks
            .lock()
            .map_err(|_| anyhow!("stage lock poisoned"))?
            .entry(id.clone())
            .or_default()
            .clone();
        let _held = lock.lock().map_err(|_| anyhow!("stage lock poisoned"))?;
        let stale = self.force
            && !self
                .fresh
                .lock()
                .map_err(|_| anyhow!("lock poisoned"))?
                .contains(&id);
        if !stale {
            if let Some(record) = self.cache.record(stage, key)? {
                log.line(format!("{stage} {key}: cached"));
                self.cached.fetch_add(1, Ordering::Relaxed);
                return Ok(record);
            }
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
        self.fresh
            .lock()
            .map_err(|_| anyhow!("lock poisoned"))?
            .insert(id);
        self.computed.fetch_add(1, Ordering::Relaxed);
        Ok(record)
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
                stages::prune(
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
            let mut row = stages::result(grid, cell, data, device, &up, dir, &mut |m| log.line(m))?;
            self.provenance.stamp(&mut row);
            Ok(row)
        })?;
        log.line(format!(
            "row: top-1 {:.2} %, ratio {:.2}x",
            row.top1.unwrap_or(f64::NAN),
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
        let log = CellLog {
            // appended to, so that a rerun does not hide how a stage was computed
            file: Mutex::new(std::fs::create_dir_all(&cell_dir).ok().and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(cell_dir.join("log.txt"))
                    .ok()
            })),
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
        let _ = std::fs::write(
            cell_dir.join("config.json"),
            serde_json::to_string_pretty(&config).unwrap_or_default(),
        );
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
            let message = format!("{e:#}");
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
        let _ = std::fs::write(
            cell_dir.join("row.json"),
            serde_json::to_string_pretty(&row).unwrap_or_default(),
        );
        row
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
    row.finetuned = cell.finetune.is_some();
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

/// Runs `nq-exp run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let started = Instant::now();
    let grid = grid::load(&args.grid).map_err(|e| bad_input(e.to_string()))?;
    if args.jobs == 0 {
        return Err(bad_input("--jobs: expected at least 1"));
    }
    if args.threads == Some(0) {
        return Err(bad_input("--threads: expected at least 1"));
    }
    let device = args.device.resolve()?;
    // the data is checked before any work; each worker has its own copy
    // because sources are not shared between threads
    let first_data = load_data(&grid.model)?;
    let out = args.results.join(&grid.name);
    std::fs::create_dir_all(out.join("cells"))
        .map_err(|e| bad_input(format!("cannot create {}: {e}", out.display())))?;
    let jobs = args.jobs.min(grid.cells.len() + grid.searches.len()).max(1);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let per_job = (threads / jobs).max(1);

    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(grid.cells.len() as u64);
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
        grid: &grid,
        cache,
        device,
        force: args.force,
        provenance: Provenance::detect(device),
        fresh: Mutex::new(HashSet::new()),
        locks: Mutex::new(HashMap::new()),
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
    let announce = |row: &Row| {
        let line = format!(
            "{} {}: {}",
            row.status,
            row.cell,
            match (&row.error, row.top1) {
                (Some(e), _) => e.clone(),
                (None, Some(t)) => format!(
                    "top-1 {t:.2} %, ratio {:.2}x",
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
    let rows: Mutex<Vec<Row>> = Mutex::new(Vec::with_capacity(grid.cells.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                with_data(&|data| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cell) = grid.cells.get(i) else { break };
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
    if rows.len() != grid.cells.len() {
        return Err(anyhow!(
            "{} of {} cells produced no row",
            grid.cells.len() - rows.len(),
            grid.cells.len()
        ));
    }
    if !grid.searches.is_empty() {
        let references = search::references(&rows);
        let next = AtomicUsize::new(0);
        let searched: Mutex<Vec<(usize, Vec<Row>)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(grid.searches.len()) {
                scope.spawn(|| {
                    with_data(&|data| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(group) = grid.searches.get(i) else {
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
        if searched.len() != grid.searches.len() {
            return Err(anyhow!(
                "{} searches produced no row",
                grid.searches.len() - searched.len()
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
    nq_report::table::write_results(&out, &rows)?;
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
