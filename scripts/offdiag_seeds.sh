#!/usr/bin/env bash
# Issue 12 item 1 over training seeds: LeNet-5 trained for 3 epochs on Fashion-MNIST with seeds
# 0, 1 and 2, and for each network `nq-exp offdiag` on
# - conv1 (500 weights) with the Gauss-Newton block,
# - fc2 (5,000 weights) with the Gauss-Newton block (its exact block would take hours here),
# - conv1 and fc2 together, one codebook, with the cross-layer Gauss-Newton block,
# - with --exact also conv1 with the exact Hessian block (about 13 min per network on one thread),
# then scripts/offdiag_summary.py writes results/offdiag/summary.md (mean ± std over the seeds).
# With --converged the networks train for 20 epochs under a cosine schedule instead (nearer a
# minimum, where the quadratic model leaves out less: the gradient term), into
# results/offdiag_converged by default.
# With --conv2 the run is conv2 alone (25,000 weights: a 5 GB block, 15.5 GB of memory at the
# peak while the compensator factorises it, about 15 min per network here) with the
# Gauss-Newton block, into results/offdiag_conv2 by default.
# With --small-conv the network is the small conv net (3,784 weights), trained for 3 epochs, and
# all its layers are quantized together with one codebook under the exact Hessian block and the
# Gauss-Newton block of the whole network (cross-layer terms included), into
# results/offdiag_small_conv by default: where the two blocks differ. The exact block across
# layers is not positive definite, so it has no compensated rounding (its Cholesky fails).
# Usage: scripts/offdiag_seeds.sh [--exact] [--converged] [--conv2 | --small-conv] [RESULTS_DIR]
# (default results/offdiag; NQ_EXP names the nq-exp binary, default target/release/nq-exp)
set -euo pipefail
cd "$(dirname "$0")/.."
exact=0
conv2=0
arch=lenet5
training=(--epochs 3)
default_out=results/offdiag
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --exact) exact=1 ;;
    --converged) training=(--epochs 20 --schedule cosine); default_out=results/offdiag_converged ;;
    --conv2) conv2=1; default_out=results/offdiag_conv2 ;;
    --small-conv) arch=small-conv; default_out=results/offdiag_small_conv ;;
    *) echo "offdiag_seeds.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out="${1:-$default_out}"
nq=${NQ_EXP:-target/release/nq-exp}
mkdir -p "$out"
for seed in 0 1 2; do
  model="$out/${arch}_s$seed.safetensors"
  if [[ ! -f "$model" ]]; then
    "$nq" train --arch "$arch" "${training[@]}" --optimizer adam --threads 1 --seed "$seed" \
      --out "$model" > "$out/train_s$seed.json"
  fi
  if [[ $arch == small-conv ]]; then
    runs=("gauss-newton conv1.weight,conv2.weight,fc.weight all"
          "hessian conv1.weight,conv2.weight,fc.weight all --no-compensation")
  elif (( conv2 )); then
    runs=("gauss-newton conv2.weight conv2")
  else
    runs=("gauss-newton conv1.weight conv1" "gauss-newton fc2.weight fc2"
          "gauss-newton conv1.weight,fc2.weight conv1_fc2")
    (( exact )) && runs+=("hessian conv1.weight conv1")
  fi
  for run in "${runs[@]}"; do
    read -r block layers name flags <<< "$run"
    stem="$out/${name}_${block}_s$seed"
    [[ -f "$stem.json" ]] && continue
    # shellcheck disable=SC2086  # flags: none, or words to pass as they are
    "$nq" offdiag --arch "$arch" --model "$model" --layer "$layers" --block "$block" $flags \
      --threads 1 --out "$stem.csv" --figure "$stem" > "$stem.json.tmp"
    mv "$stem.json.tmp" "$stem.json"
    echo "offdiag: wrote $stem.{csv,json}"
  done
done
python3 scripts/offdiag_summary.py "$out" > "$out/summary.md"
echo "offdiag: wrote $out/summary.md"
