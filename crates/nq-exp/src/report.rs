//! `nq-exp report DIR` and `nq-exp figures DIR`: markdown tables and
//! figures from the results of every grid under a results directory
//! ([`nq_report`]); `nq-exp merge`: several grids' results as one.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nq_report::ReportError;

use crate::error::{bad_input, print_line};

/// Arguments of `nq-exp report` and `nq-exp figures`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results directory of `nq-exp run` (holding one folder per grid).
    #[arg(value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
}

/// Arguments of `nq-exp report`.
#[derive(Debug, Args)]
pub struct ReportCommandArgs {
    #[command(flatten)]
    /// The results directory.
    pub dir: ReportArgs,
    /// A reference results directory (for example the committed
    /// `results/reference/grids`): writes `DIR/reference_comparison.md`,
    /// its Table 1 beside this one.
    #[arg(long, value_name = "REF")]
    pub reference: Option<PathBuf>,
}

fn edge(e: ReportError) -> anyhow::Error {
    match e {
        // a results directory that is missing or not ours is the user's input
        ReportError::BadResults { .. } | ReportError::Io { .. } => bad_input(e.to_string()),
        other => other.into(),
    }
}

fn list(files: &[PathBuf]) -> Result<()> {
    for f in files {
        print_line(&f.display().to_string())?;
    }
    Ok(())
}

/// Runs `nq-exp report`: prints the files written.
pub fn run_report(args: &ReportCommandArgs) -> Result<()> {
    list(&nq_report::write_reports(&args.dir.results, args.reference.as_deref()).map_err(edge)?)
}

/// Runs `nq-exp figures`: prints the files written.
pub fn run_figures(args: &ReportArgs) -> Result<()> {
    list(&nq_report::write_figures(&args.results).map_err(edge)?)
}

/// Arguments of `nq-exp merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Results directories of the grids to merge (each holding a
    /// `results.parquet`), of one network and data set.
    #[arg(value_name = "GRID_DIR", required = true)]
    pub grids: Vec<PathBuf>,
    /// Where the merged table goes; under a results directory, `nq-exp
    /// report` and `nq-exp figures` treat it as one more grid.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The merged rows' experiment name (default: the name of `--out`).
    #[arg(long)]
    pub name: Option<String>,
}

/// Runs `nq-exp merge`: prints the files written.
pub fn run_merge(args: &MergeArgs) -> Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                bad_input(format!(
                    "{}: no name to give the merged rows",
                    args.out.display()
                ))
            })?,
    };
    list(&nq_report::merge::merge_grids(&args.grids, &name, &args.out).map_err(edge)?)
}
