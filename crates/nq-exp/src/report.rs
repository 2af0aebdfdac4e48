//! `nq-exp report DIR` and `nq-exp figures DIR`: markdown tables and
//! figures from the results of every grid under a results directory
//! ([`nq_report`]).

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
