#!/usr/bin/env bash
# Installs scikit-learn into the project's venv (once) and compares weighted
# k-means of nq-exp and scikit-learn on the same 1e6-element vector.
# Not part of `make test`: it takes about a minute. Called by `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "no .venv: run 'make setup' first" >&2; exit 2; }
"$py" -c 'import sklearn' 2>/dev/null || "$py" -m pip install --disable-pip-version-check -q scikit-learn
cargo build --release -q -p nq-exp
mkdir -p results/bench
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow a current numpy on this machine;
# unset them for the comparison only, so scikit-learn runs at its best.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" scripts/bench_vs_sklearn.py target/release/nq-exp \
  --json results/bench/kmeans_vs_sklearn.json --md results/bench/kmeans_vs_sklearn.md "$@"
