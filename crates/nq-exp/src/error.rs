//! Errors at the binary's edge: which ones are the user's input (exit 2)
//! and which are failures of ours or of the machine (exit 1).

use std::fmt;

/// Input the user can fix: a missing or malformed file, a bad argument.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// An `anyhow::Error` marked as bad input.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(message.into()))
}

/// Exit status of an error: 2 when any cause is bad input (ours, or a
/// quantizer rejecting its parameters or data), 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let is_input = error
        .chain()
        .any(|cause| cause.is::<BadInput>() || cause.is::<nq_quant::QuantError>());
    if is_input {
        2
    } else {
        1
    }
}

/// Whether the error is stdout closed under us (`nq-exp plan G | head`):
/// not a failure, so the command exits 0 without a message.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes one line to stdout, returning an error (instead of panicking
/// like `println!`) when stdout is closed.
pub fn print_line(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}
