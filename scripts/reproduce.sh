#!/usr/bin/env bash
# `make reproduce`: the experiments that exist so far, written under results/.
# - results/quantizers/: rate-distortion of every quantizer on one vector
#   (Huffman-coded; k-means against its exact optimum).
# The LeNet-5 grids on Fashion-MNIST join here with the grids issue.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "no .venv: run 'make setup' first" >&2; exit 2; }
cargo build --release -q -p nq-exp
"$py" scripts/quantizer_study.py target/release/nq-exp results/quantizers
echo "reproduce: wrote results/quantizers/quantizer_study.{md,jsonl}"
