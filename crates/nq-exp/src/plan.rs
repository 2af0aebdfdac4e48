//! `nq-exp plan GRID.toml`: the cells of a grid and which of their stages
//! are already cached, without running anything; for each search, the
//! points it has tried so far (replayed from the cache) and the most it can
//! need.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cache::Cache;
use crate::error::{bad_input, print_line};
use crate::grid::spec::{Grid, MethodSpec, SearchGroup};
use crate::grid::{self, keys::cell_keys};
use crate::search::BoundarySearch;
use nq_report::Row;

/// Arguments of `nq-exp plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The grid file.
    #[arg(value_name = "GRID.toml")]
    pub grid: PathBuf,
    /// Results directory: the grid's tables go to DIR/<grid name>, stage
    /// results to the cache DIR/cache shared by all grids.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
}

/// Runs `nq-exp plan`: one line per cell on stdout.
pub fn run(args: &PlanArgs) -> Result<()> {
    let grid = grid::load(&args.grid).map_err(|e| bad_input(e.to_string()))?;
    let cache = Cache::new(&args.results);
    print_line(&format!(
        "{} ({}): {} cells, results in {}",
        grid.name,
        grid.path.display(),
        grid.cells.len(),
        args.results.join(&grid.name).display()
    ))?;
    let mut cached = 0;
    for cell in &grid.cells {
        let keys = cell_keys(&grid, cell);
        let done = cache.is_done("result", &keys.result);
        cached += usize::from(done);
        let stages = [
            ("baseline", Some(&keys.baseline)),
            ("prune", cell.prune.as_ref().map(|_| &keys.network)),
            ("importance", keys.importance.as_ref()),
            (
                "quantize",
                (cell.method != MethodSpec::None).then_some(&keys.quantized),
            ),
        ];
        let missing: Vec<&str> = stages
            .iter()
            .filter_map(|(stage, key)| key.filter(|k| !cache.is_done(stage, k)).map(|_| *stage))
            .collect();
        let status = if done {
            "cached".to_owned()
        } else if missing.is_empty() {
            "to run".to_owned()
        } else {
            format!("to run (needs {})", missing.join(", "))
        };
        print_line(&format!(
            "{:>5}  {:<48} {}  {}",
            cell.index, cell.id, keys.result, status
        ))?;
    }
    print_line(&format!("{cached} of {} cells cached", grid.cells.len()))?;
    for group in &grid.searches {
        print_line(&search_line(&grid, &cache, group)?)?;
    }
    Ok(())
}

/// `cell`'s cached result, if it finished (stored before its row is
/// marked `ok`, so its status is not looked at).
fn cached_row(grid: &Grid, cache: &Cache, cell: &grid::spec::CellSpec) -> Result<Option<Row>> {
    let key = cell_keys(grid, cell).result;
    cache.record::<Row>("result", &key)
}

/// How far a search has come, replayed from the cache.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchState {
    /// The unquantized cells it is measured against are not all cached.
    NotStarted,
    /// Some points are cached (perhaps none): the walk so far, and the
    /// next value it needs.
    Running {
        /// The points tried, in order.
        tried: Vec<crate::search::Tried>,
        /// The next value.
        next: f64,
    },
    /// It has ended: every point it tried.
    Finished {
        /// The points tried, in order.
        tried: Vec<crate::search::Tried>,
    },
}

/// `group`'s search replayed from the cached results, as far as they go.
pub fn search_state(grid: &Grid, cache: &Cache, group: &SearchGroup) -> Result<SearchState> {
    let metric = grid.model.metric();
    let mut reference = 0.0;
    if group.goal.needs_reference() {
        for &seed in &group.seeds {
            let unquantized = grid.cells.iter().find(|c| {
                c.seed == seed
                    && c.method == MethodSpec::None
                    && c.prune.as_ref().map(|p| p.name.as_str()) == group.reference_prune()
            });
            match unquantized
                .map(|c| cached_row(grid, cache, c))
                .transpose()?
                .flatten()
                .and_then(|row| metric.value(row.top1, row.loss))
            {
                Some(quality) => reference += quality / group.seeds.len() as f64,
                None => return Ok(SearchState::NotStarted),
            }
        }
    }
    let mut search = group.goal.start(group.space, metric, reference);
    'walk: while let Some(value) = search.next() {
        let mut mean = 0.0;
        for &seed in &group.seeds {
            let row = cached_row(grid, cache, &group.cell(seed, value))?;
            match row.and_then(|row| group.goal.measure(metric, &row)) {
                Some(measured) => mean += measured / group.seeds.len() as f64,
                None => break 'walk,
            }
        }
        search.record(value, group.goal.score(metric, mean));
    }
    let tried = search.tried().to_vec();
    Ok(match search.next() {
        None => SearchState::Finished { tried },
        Some(next) => SearchState::Running { tried, next },
    })
}

/// How far `group`'s search has come, as one line.
fn search_line(grid: &Grid, cache: &Cache, group: &SearchGroup) -> Result<String> {
    let most = BoundarySearch::most_evaluations(group.space);
    let head = format!(
        "search {}: {} seeds, at most {most} points",
        group.id,
        group.seeds.len()
    );
    let metric = grid.model.metric();
    let describe = |tried: &[crate::search::Tried]| -> String {
        tried
            .iter()
            .map(|t| {
                // a score is the metric oriented higher-is-better: its own inverse
                format!(
                    "{} ({:.3} {}, {})",
                    t.value,
                    metric.score(t.score),
                    metric.unit(),
                    if t.passed { "in" } else { "out" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(match search_state(grid, cache, group)? {
        SearchState::NotStarted => format!("{head}; not started (its reference cells are to run)"),
        SearchState::Finished { tried } => format!("{head}; finished: {}", describe(&tried)),
        SearchState::Running { tried, next } if tried.is_empty() => {
            format!("{head}; to run from {next}")
        }
        SearchState::Running { tried, next } => {
            format!("{head}; cached: {}; next {next}", describe(&tried))
        }
    })
}
