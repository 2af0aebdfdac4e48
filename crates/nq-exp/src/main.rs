//! The `nq-exp` command line.
fn main() {}
