#!/usr/bin/env bash
# Installs BackPACK (backpack-for-pytorch) and safetensors into the project's venv once,
# keeping torch at the 2.13.0 that tch links (BackPACK's torchvision would otherwise pull
# a newer torch into the venv, and with it a libtorch that nq-exp was not built for), then
# compares the exact Gauss-Newton diagonal of nq-exp and BackPACK on the same weights.
# Not part of `make test`: about 5 minutes. Called by `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "no .venv: run 'make setup' first" >&2; exit 2; }
if ! "$py" -c 'import backpack, safetensors' 2>/dev/null; then
  "$py" -m pip install --disable-pip-version-check -q backpack-for-pytorch safetensors \
    "torch==2.13.0" "torchvision==0.28.*"
fi
"$py" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else
  "the venv has torch " + torch.__version__ + ", tch needs 2.13.0: make setup reinstalls it")'
cargo build --release -q
mkdir -p results/bench
"$py" scripts/bench_vs_backpack.py target/release/nq-exp --full \
  --json results/bench/ggn_vs_backpack.json --md results/bench/ggn_vs_backpack.md "$@"
