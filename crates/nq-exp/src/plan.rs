//! `nq-exp plan GRID.toml`: the cells of a grid and which of their stages
//! are already cached, without running anything.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cache::Cache;
use crate::error::{bad_input, print_line};
use crate::grid::spec::MethodSpec;
use crate::grid::{self, keys::cell_keys};

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
    Ok(())
}
