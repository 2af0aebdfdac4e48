//! `nq-exp run GRID --launcher slurm`: the launcher beside the local one.
//! What it submits, and how the tasks come back to this binary
//! (`run --task FILE`, `run --cached-only`), is in [`nq_exp::slurm`].

use anyhow::{Context, Result};
use nq_exp::error::print_line;
use nq_exp::grid::spec::Grid;
use nq_exp::slurm::SlurmOptions;

use super::{execute, RunArgs, Work};

/// Submits the missing work of `grid`; prints what was submitted as one
/// JSON line. When nothing is missing, writes the results table from the
/// cache instead.
pub(super) fn submit(grid: &Grid, args: &RunArgs) -> Result<()> {
    let worker = std::env::current_exe().context("cannot find this binary's own path")?;
    let options = SlurmOptions {
        partition: args.partition.clone(),
        max_parallel: args.max_parallel,
        sbatch_args: args.sbatch_args.clone(),
        threads: args.threads.unwrap_or(1),
        wait: args.wait,
    };
    let submitted = nq_exp::slurm::submit(grid, &args.results, &worker, &options)?;
    let nothing_missing = submitted.submission.is_none();
    print_line(&serde_json::to_string(&submitted)?)?;
    if nothing_missing {
        return execute(grid, args, &Work::all(grid, true));
    }
    if !args.wait {
        eprintln!(
            "submitted; `nq-exp status {}{}` follows it",
            grid.path.display(),
            if args.results.as_os_str() == "results" {
                String::new()
            } else {
                format!(" --results {}", args.results.display())
            }
        );
    }
    Ok(())
}
