#!/usr/bin/env bash
# `make reproduce` (and `make reproduce-full` with --full): the experiments, written
# under results/, then copied into results/reference/ (committed).
#
# make reproduce, about 35 min on 2 cores with caches cold:
# - results/quantizers/: rate-distortion of every quantizer on one vector (~30 s);
# - results/lenet5/: LeNet-5 trained on Fashion-MNIST (6 epochs, ~2 min), pruned
#   to 8.55 %, quantized, packed as .nqz: the file's size against the accounted size;
# - the LeNet-5 grids of experiments/ (nq-exp run, cached under results/cache), then
#   `nq-exp report` (results/*/report.md, results/table1.md) and `nq-exp figures`
#   (results/*/figures/).
# make reproduce-full adds the full-budget LeNet-5 grids of experiments/full/ and the
# ResNet-32 / CIFAR-10 and AlexNet / ImageNet grids; a grid whose data is missing is
# skipped with the reason (nq-exp names the directory it looked in).
#
# Environment: NQ_EXP_THREADS (torch threads, default 2), NQ_EXP_JOBS (cells at a time,
# default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
full=0
[[ "${1:-}" == "--full" ]] && full=1
py=.venv/bin/python
[ -x "$py" ] || { echo "no .venv: run 'make setup' first" >&2; exit 2; }
cargo build --release -q  # nq-exp and nq-exp-torch, which runs `train` and `run`
nq=target/release/nq-exp
threads="${NQ_EXP_THREADS:-2}"
jobs="${NQ_EXP_JOBS:-1}"
started=$(date +%s)
say() { printf 'reproduce [%4d s]: %s\n' "$(( $(date +%s) - started ))" "$*"; }

"$py" scripts/quantizer_study.py "$nq" results/quantizers
say "wrote results/quantizers/quantizer_study.{md,jsonl}"
mkdir -p results/lenet5
"$nq" train --arch lenet5 --data fashion-mnist --epochs 6 --threads "$threads" \
  --out results/lenet5/lenet5_fashion_mnist.safetensors > results/lenet5/train.json
summary=$(python3 -c 'import json; j = json.load(open("results/lenet5/train.json")); print("%.2f %% test top-1, %.1f s/epoch" % (100 * j["test_top1"], j["seconds_per_epoch"]))')
say "wrote results/lenet5/train.json ($summary)"
"$py" scripts/lenet_nqz_size.py "$nq" results/lenet5/lenet5_fashion_mnist.safetensors results/lenet5 > /dev/null
say "wrote results/lenet5/lenet5_nqz_size.{json,md} and lenet5.nqz"

grids=(paper_table1_lenet paper_fig1_lenet hessian_vs_adam ablation_global sensitivity_k sensitivity_lambda)
files=()
for g in "${grids[@]}"; do files+=("experiments/$g.toml"); done
if (( full )); then
  files+=(experiments/full/*.toml experiments/resnet32_cifar10_table1.toml \
          experiments/resnet32_cifar10_fig1.toml experiments/alexnet_imagenet_table1.toml)
fi
failed=0
for f in "${files[@]}"; do
  say "running $f"
  status=0
  "$nq" run "$f" --results results --threads "$threads" --jobs "$jobs" > /dev/null || status=$?
  case $status in
    0) say "finished $f" ;;
    2) say "skipped $f (bad input or missing data: see the error above)" ;;
    *) say "$f: some cells failed (see results/*/results.csv)"; failed=1 ;;
  esac
done
"$nq" report results > /dev/null
"$nq" figures results > /dev/null
say "wrote results/table1.md, results/*/report.md and results/*/figures/"

# the committed copy: tables, figures and the small result files, not the cache
ref=results/reference
mkdir -p "$ref/grids"
cp results/quantizers/quantizer_study.{md,jsonl} "$ref/quantizers/"
cp results/lenet5/{train.json,lenet5_nqz_size.json,lenet5_nqz_size.md} "$ref/lenet5/"
[[ -f results/table1.md ]] && cp results/table1.md "$ref/table1.md"
for dir in results/*/; do
  name=$(basename "$dir")
  [[ -f "$dir/results.csv" ]] || continue
  mkdir -p "$ref/grids/$name"
  cp "$dir"/{results.csv,results.parquet,report.md} "$ref/grids/$name/"
  if [[ -d "$dir/figures" ]]; then
    rm -rf "$ref/grids/$name/figures"
    cp -r "$dir/figures" "$ref/grids/$name/figures"
  fi
done
say "copied tables and figures into $ref/ (done in $(( $(date +%s) - started )) s)"
exit $failed
