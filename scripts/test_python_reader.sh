#!/usr/bin/env bash
# Part of `make test`: builds the Python reader (crates/nq-py, PyO3 + maturin) as a wheel,
# installs it into the venv, and checks it against `nq-exp unpack` on files nq-exp writes
# (scripts/test_python_reader.py). Needs `make setup` (the venv, with maturin).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "no .venv: run 'make setup' first" >&2; exit 2; }
# the nq-exp that `cargo test --workspace` just built (building it alone with -p would
# resolve its dependencies' features apart and rebuild polars)
nq=target/debug/nq-exp
[ -x "$nq" ] || { echo "no $nq: run 'cargo test --workspace' first (make test does)" >&2; exit 2; }
rm -rf target/wheels/nqz-*.whl
"$py" -m maturin build --quiet -m crates/nq-py/Cargo.toml --interpreter "$py" -o target/wheels
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/nqz-*.whl
"$py" scripts/test_python_reader.py "$nq"
