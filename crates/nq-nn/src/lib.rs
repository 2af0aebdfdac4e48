//! Networks on libtorch for nq-exp (placeholder until the networks issue).
