#!/usr/bin/env bash
# `make reproduce`: the experiments that exist so far, written under results/.
# - results/quantizers/: rate-distortion of every quantizer on one vector
#   (Huffman-coded; k-means against its exact optimum);          ~30 s
# - results/lenet5/: LeNet-5 trained on Fashion-MNIST (6 epochs),  ~2 min
#   then pruned to 8.55 %, quantized, packed as .nqz and unpacked:
#   the file's size against the accounted size.
# The LeNet-5 grids (nq-exp run) join here with the runner.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "no .venv: run 'make setup' first" >&2; exit 2; }
cargo build --release -q -p nq-exp
nq=target/release/nq-exp
"$py" scripts/quantizer_study.py "$nq" results/quantizers
echo "reproduce: wrote results/quantizers/quantizer_study.{md,jsonl}"
mkdir -p results/lenet5
"$nq" train --arch lenet5 --data fashion-mnist --epochs 6 --threads "${NQ_EXP_THREADS:-2}" \
  --out results/lenet5/lenet5_fashion_mnist.safetensors > results/lenet5/train.json
summary=$(python3 -c 'import json; j = json.load(open("results/lenet5/train.json")); print("%.2f %% test top-1, %.1f s/epoch" % (100 * j["test_top1"], j["seconds_per_epoch"]))')
echo "reproduce: wrote results/lenet5/train.json ($summary)"
"$py" scripts/lenet_nqz_size.py "$nq" results/lenet5/lenet5_fashion_mnist.safetensors results/lenet5 > /dev/null
echo "reproduce: wrote results/lenet5/lenet5_nqz_size.{json,md} and lenet5.nqz"
