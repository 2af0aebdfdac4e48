//! The torch-free subcommands (design.md, "Command line"), shared by the
//! `nq-exp` and `nq-exp-torch` binaries.

use std::process::ExitCode;

use clap::Subcommand;

use crate::error;

/// The subcommands that need no libtorch.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Quantize one weight vector (.npy) and print a JSON summary.
    Quantize(crate::quantize::QuantizeArgs),
    /// List the cells of a grid and which are cached; runs nothing.
    Plan(crate::plan::PlanArgs),
    /// Where each cell and search of a grid stands: done, pending, running
    /// or failed (from the cache, and from Slurm for submitted grids).
    Status(crate::slurm::status::StatusArgs),
    /// Write markdown tables from the results of every grid in DIR.
    Report(crate::report::ReportCommandArgs),
    /// Draw the figures (SVG and PNG) of every grid in DIR.
    Figures(crate::report::ReportArgs),
    /// Merge several grids' results (one network and data set) into one
    /// table, which report and figures then treat as a grid.
    Merge(crate::report::MergeArgs),
    /// Quantize a safetensors checkpoint (no model code, no data) into a
    /// .nqz file and print its size report.
    Compress(crate::compress::CompressArgs),
    /// Write a model and the quantizations of its tensors as one .nqz file.
    Pack(crate::pack::PackArgs),
    /// Decode a .nqz file into a float32 safetensors model.
    Unpack(crate::pack::UnpackArgs),
    /// Write a .nqz file again with another coding (huffman, fixed,
    /// context); the network is unchanged.
    Recode(crate::recode::RecodeArgs),
}

impl Command {
    /// Runs the subcommand.
    pub fn run(&self) -> anyhow::Result<()> {
        match self {
            Command::Quantize(args) => crate::quantize::run(args),
            Command::Plan(args) => crate::plan::run(args),
            Command::Status(args) => crate::slurm::status::run(args),
            Command::Report(args) => crate::report::run_report(args),
            Command::Figures(args) => crate::report::run_figures(args),
            Command::Merge(args) => crate::report::run_merge(args),
            Command::Compress(args) => crate::compress::run(args),
            Command::Pack(args) => crate::pack::run_pack(args),
            Command::Unpack(args) => crate::pack::run_unpack(args),
            Command::Recode(args) => crate::recode::run(args),
        }
    }
}

/// The exit status of a command's result, printing its error chain on one
/// line: 0, 2 for bad input, 1 for other failures (stdout closed is 0).
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(error::exit_code(&e))
        }
    }
}
