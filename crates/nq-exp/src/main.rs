//! The `nq-exp` command line (design.md, "Command line").
//!
//! Exit status: 0 on success, 2 on bad input (arguments, files, data), 1 on
//! any other failure. Errors print their whole chain on one line.

mod error;
mod npy;
mod quantize;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Quantize(args) => quantize::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(error::exit_code(&e))
        }
    }
}
