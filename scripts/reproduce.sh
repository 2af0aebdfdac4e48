#!/usr/bin/env bash
# `make reproduce` (and `make reproduce-full` with --full): the experiments, written under
# results/ (not committed), then compared with the committed results/reference/
# (results/reference_comparison.md). `make reference` copies results/ over the reference.
#
# make reproduce, the paper's LeNet-5 experiments on Fashion-MNIST, 3 seeds:
# - results/quantizers/: rate-distortion of every quantizer on one vector (~1 s);
# - results/lenet5/: LeNet-5 trained on Fashion-MNIST (6 epochs, ~2 min), pruned
#   to 8.55 %, quantized, packed as .nqz: the file's size against the accounted size;
# - Table 1 (both scopes, searched to 0.1 point), Figure 1 and Figure 2 (nq-exp run, cached
#   under results/cache), then `nq-exp report` (results/*/report.md, results/table1.md,
#   results/findings.md) and `nq-exp figures` (results/*/figures/).
# make reproduce-full adds the review's grids on one seed (importance, layer vs global) and on
# 3 (sensitivity to k and lambda, with 3 k-means++ seeds each; compensated rounding; layer vs
# global at one rate; Adam against the Hessian at one rate), the grids of experiments/full/ (Table 1 for LeNet-5 on the MNIST subset and
# LeNet-300-100 on both data sets, LeNet-5 at full budget, Table 1 and Figure 1 for resnet20
# (with fine-tuning's batch-norm control) and for the ViT on Fashion-MNIST and for the
# character-level GPT on Shakespeare), and the
# ResNet-32 / CIFAR-10 and AlexNet / ImageNet grids; a grid whose data is missing is skipped
# with the reason (nq-exp names the directory it looked in).
#
# Environment: NQ_EXP_THREADS (torch threads in all, split between the jobs; default 2),
# NQ_EXP_JOBS (cells at a time, default 2: two one-thread cells keep 2 cores busier than one
# two-thread cell on these small networks).
set -euo pipefail
cd "$(dirname "$0")/.."
full=0
[[ "${1:-}" == "--full" ]] && full=1
py=.venv/bin/python
[ -x "$py" ] || { echo "no .venv: run 'make setup' first" >&2; exit 2; }
cargo build --release -q  # nq-exp and nq-exp-torch, which runs `train` and `run`
nq=target/release/nq-exp
threads="${NQ_EXP_THREADS:-2}"
jobs="${NQ_EXP_JOBS:-2}"
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

grids=(paper_table1_lenet paper_fig1_lenet paper_fig2_lenet)
files=()
for g in "${grids[@]}"; do files+=("experiments/$g.toml"); done
if (( full )); then
  files+=(experiments/hessian_vs_adam.toml experiments/ablation_global.toml \
          experiments/sensitivity_k.toml experiments/sensitivity_lambda.toml \
          experiments/review_compensation_lenet.toml experiments/review_compensation_order_lenet.toml \
          experiments/review_scope_rate_lenet.toml \
          experiments/review_adam_*.toml \
          experiments/full/*.toml experiments/resnet32_cifar10_table1.toml \
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
if [[ -d results/paper_fig2_lenet/cells ]]; then
  "$py" scripts/adam_collapse.py "$nq" results > /dev/null
  say "wrote results/adam_collapse.md (Adam-weighted k-means at k = 3 to 6: Lloyd against the optimum)"
fi
if (( full )); then
  # issue 15's comparison: every method and pruning on LeNet-5 / Fashion-MNIST in one table
  # and one figure (the grids' shared cells once)
  compared=()
  for g in sparser_quantized_lenet universal_lenet soft_sharing_lenet paper_table1_lenet; do
    [[ -f results/$g/results.parquet ]] && compared+=("results/$g")
  done
  if (( ${#compared[@]} > 1 )); then
    "$nq" merge --out results/compare_lenet5_fashion "${compared[@]}" > /dev/null
    say "wrote results/compare_lenet5_fashion (merged: ${compared[*]})"
  fi
  if compgen -G "results/review_adam_*/cells" > /dev/null; then
    "$py" scripts/importance_agreement.py results > /dev/null
    say "wrote results/importance_agreement.md (sqrt(v) against the Gauss-Newton diagonal per layer)"
  fi
  # issue 12 item 1 over training seeds: Gauss-Newton blocks of conv1, fc2 and both, the
  # exact Hessian block of conv1 (about 45 min in all on one thread)
  scripts/offdiag_seeds.sh --exact results/offdiag > /dev/null
  say "wrote results/offdiag/summary.md (off-diagonal curvature terms over 3 training seeds)"
  # the same nearer a minimum: 20 epochs per network (20 s an epoch here, so 20 min of training)
  scripts/offdiag_seeds.sh --converged results/offdiag_converged > /dev/null
  say "wrote results/offdiag_converged/summary.md (the same after 20 epochs)"
  # conv2 alone, the largest dense block here (25,000 weights, 15.5 GB of memory at the peak)
  scripts/offdiag_seeds.sh --conv2 results/offdiag_conv2 > /dev/null
  say "wrote results/offdiag_conv2/summary.md (conv2's Gauss-Newton block)"
  # the whole small conv net with the exact Hessian block and the Gauss-Newton one
  scripts/offdiag_seeds.sh --small-conv results/offdiag_small_conv > /dev/null
  say "wrote results/offdiag_small_conv/summary.md (exact against Gauss-Newton across layers)"
fi
"$nq" report results --reference results/reference/grids > /dev/null
"$nq" figures results > /dev/null
say "wrote results/table1.md, results/findings.md, results/*/report.md and results/*/figures/"
say "Table 1 against the committed reference (results/reference_comparison.md):"
sed -n '/^| /p' results/reference_comparison.md
say "done in $(( $(date +%s) - started )) s; 'make reference' copies these results over results/reference/"
exit $failed
