//! `nq-exp-torch`: the commands of `nq-exp` that need libtorch (`run`,
//! `train`, `importance`), and every other command of `nq-exp` too, so that
//! one binary can do everything. Users call `nq-exp`, which hands these
//! three commands over to this binary (see the `nq-exp` crate).
//!
//! Exit status: 0 on success, 2 on bad input (arguments, files, data), 1 on
//! any other failure. Errors print their whole chain on one line.

mod importance;
mod offdiag;
mod run;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nq_exp::cli;

/// Network quantization experiments: Hessian-weighted k-means, uniform and
/// entropy-constrained scalar quantization, honest compressed sizes.
#[derive(Debug, Parser)]
#[command(name = "nq-exp", bin_name = "nq-exp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Light(cli::Command),
    /// Train a network and report its test accuracy and seconds per epoch.
    Train(train::TrainArgs),
    /// Run every cell of a grid (cached, resumable) into a results table.
    Run(run::RunArgs),
    /// Estimate the importance (Hessian diagonal) of a model's weights.
    Importance(importance::ImportanceArgs),
    /// What the off-diagonal Hessian terms of one layer carry, and
    /// compensated rounding through them.
    Offdiag(offdiag::OffdiagArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Light(command) => command.run(),
        Command::Train(args) => train::run(args),
        Command::Run(args) => run::run(args),
        Command::Importance(args) => importance::run(args),
        Command::Offdiag(args) => offdiag::run(args),
    };
    cli::finish(result)
}
