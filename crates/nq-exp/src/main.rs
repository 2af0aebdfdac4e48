//! The `nq-exp` command line (design.md, "Command line").
//!
//! This binary does not link libtorch, so that `quantize`, `pack`,
//! `unpack`, `plan`, `report` and `figures` start at once. `run`, `train`,
//! `importance` and `offdiag` are executed by `nq-exp-torch` with the same arguments:
//! the binary beside this one, or the one `$NQ_EXP_TORCH` names.
//!
//! Exit status: 0 on success, 2 on bad input (arguments, files, data), 1 on
//! any other failure. Errors print their whole chain on one line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use nq_exp::cli;
use nq_exp::error::bad_input;

/// Network quantization experiments: Hessian-weighted k-means, uniform and
/// entropy-constrained scalar quantization, honest compressed sizes.
#[derive(Debug, Parser)]
#[command(name = "nq-exp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// parsed once per process: the size of a variant does not matter
#[allow(clippy::large_enum_variant)]
enum Command {
    #[command(flatten)]
    Light(cli::Command),
    /// Train a network and report its test accuracy and seconds per epoch.
    Train(Forwarded),
    /// Run every cell of a grid (cached, resumable) into a results table.
    Run(Forwarded),
    /// Estimate the importance (Hessian diagonal) of a model's weights.
    Importance(Forwarded),
    /// What the off-diagonal Hessian terms of one layer carry, and
    /// compensated rounding through them.
    Offdiag(Forwarded),
}

/// Arguments handed to `nq-exp-torch` as they are (`--help` included).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
struct Forwarded {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<OsString>,
}

/// The torch binary: `$NQ_EXP_TORCH`, or `nq-exp-torch` beside this one.
fn torch_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("NQ_EXP_TORCH") {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().context("cannot find the nq-exp binary's own path")?;
    let sibling = me.with_file_name(format!("nq-exp-torch{}", std::env::consts::EXE_SUFFIX));
    if sibling.is_file() {
        Ok(sibling)
    } else {
        Err(bad_input(format!(
            "{} not found: `run`, `train` and `importance` need the libtorch binary \
             (`cargo build --release` builds both; or set NQ_EXP_TORCH to its path)",
            sibling.display()
        )))
    }
}

/// Runs `nq-exp-torch SUBCOMMAND ARGS...`, in place of this process on Unix.
fn forward(subcommand: &str, args: &Forwarded) -> Result<()> {
    let binary = torch_binary()?;
    let mut command = std::process::Command::new(&binary);
    command.arg(subcommand).args(&args.args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = command.exec();
        Err(bad_input(format!(
            "cannot run {}: {error}",
            binary.display()
        )))
    }
    #[cfg(not(unix))]
    {
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Light(command) => command.run(),
        Command::Train(args) => forward("train", args),
        Command::Run(args) => forward("run", args),
        Command::Importance(args) => forward("importance", args),
        Command::Offdiag(args) => forward("offdiag", args),
    };
    cli::finish(result)
}
