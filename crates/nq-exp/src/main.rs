//! The `nq-exp` command line (design.md, "Command line").
//!
//! Exit status: 0 on success, 2 on bad input (arguments, files, data), 1 on
//! any other failure. Errors print their whole chain on one line.

mod cache;
mod error;
mod grid;
mod npy;
mod pack;
mod plan;
mod quantize;
mod report;
mod run;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Network quantization experiments: Hessian-weighted k-means, uniform and
/// entropy-constrained scalar quantization, honest compressed sizes.
#[derive(Debug, Parser)]
#[command(name = "nq-exp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Quantize one weight vector (.npy) and print a JSON summary.
    Quantize(quantize::QuantizeArgs),
    /// Train a network and report its test accuracy and seconds per epoch.
    Train(train::TrainArgs),
    /// Run every cell of a grid (cached, resumable) into a results table.
    Run(run::RunArgs),
    /// List the cells of a grid and which are cached; runs nothing.
    Plan(plan::PlanArgs),
    /// Write markdown tables from the results of every grid in DIR.
    Report(report::ReportArgs),
    /// Draw the figures (SVG and PNG) of every grid in DIR.
    Figures(report::ReportArgs),
    /// Write a model and the quantizations of its tensors as one .nqz file.
    Pack(pack::PackArgs),
    /// Decode a .nqz file into a float32 safetensors model.
    Unpack(pack::UnpackArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Quantize(args) => quantize::run(args),
        Command::Train(args) => train::run(args),
        Command::Run(args) => run::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Report(args) => report::run_report(args),
        Command::Figures(args) => report::run_figures(args),
        Command::Pack(args) => pack::run_pack(args),
        Command::Unpack(args) => pack::run_unpack(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(error::exit_code(&e))
        }
    }
}
