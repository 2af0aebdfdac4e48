#!/usr/bin/env bash
# `make reference`: copies what `make reproduce` wrote under results/ over the committed
# results/reference/ (tables, figures and the small result files, not the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
ref=results/reference
[[ -f results/table1.md ]] || { echo "no results/table1.md: run 'make reproduce' first" >&2; exit 2; }
mkdir -p "$ref/grids" "$ref/quantizers" "$ref/lenet5"
cp results/quantizers/quantizer_study.{md,jsonl} "$ref/quantizers/"
cp results/lenet5/{train.json,lenet5_nqz_size.json,lenet5_nqz_size.md} "$ref/lenet5/"
cp results/table1.md "$ref/table1.md"
[[ -f results/findings.md ]] && cp results/findings.md "$ref/findings.md"
[[ -f results/adam_collapse.md ]] && cp results/adam_collapse.md "$ref/adam_collapse.md"
[[ -f results/importance_agreement.md ]] && cp results/importance_agreement.md "$ref/importance_agreement.md"
if [[ -f results/offdiag/summary.md ]]; then
  mkdir -p "$ref/offdiag"
  for f in results/offdiag/summary.md results/offdiag/*_s[0-9].{csv,json,png}; do
    [[ -f "$f" ]] && cp "$f" "$ref/offdiag/"
  done
fi
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
echo "copied results/ into $ref/"
