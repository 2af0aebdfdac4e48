#!/usr/bin/env python3
"""Why weighted global k-means collapses at k = 3 or 4 (Figure 2 grid): Adam's sqrt(v) at
k = 4, the Gauss-Newton diagonal at k = 3.

For each seed's LeNet-5 baseline of `paper_fig2_lenet` (from the results cache), the four
weight tensors are concatenated with the cell's importance (Adam's sqrt(v_hat), or the
Gauss-Newton diagonal from 1,000 images), as the grid's cells do, and quantized by
`nq-exp quantize`: Lloyd's k-means from the grid's seed and the exact 1-D
optimum of the same objective (`kmeans-optimal`). The table gives, per seed and k, the
objective D_h of each, the centres, how many weights the extreme clusters hold and which
layer they come from, beside the top-1 the grid measured for that cell; then, per seed and
layer, the rank correlation (Spearman) of sqrt(v) with the Gauss-Newton diagonal from 1,000
images (the grid's `ggn-1k` importance) and the ratio of their layer means to their network
means. Writes RESULTS/adam_collapse.md.

    .venv/bin/python scripts/adam_collapse.py target/release/nq-exp results
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

LAYERS = ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]


def quantize(nq, w, h, method, k, seed, out):
    result = subprocess.run(
        [nq, "quantize", "--weights", str(w), "--importance", str(h), "--method", method,
         "--k", str(k), "--out", str(out)] + (["--seed", str(seed)] if method == "kmeans" else []),
        capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"nq-exp quantize failed: {result.stderr}")
    z = np.load(out)
    return json.loads(result.stdout)["distortion_h"], z["centres"], z["assignment"]


def describe(centres, assignment, sizes, weights):
    order = np.argsort(centres)
    counts = np.bincount(assignment, minlength=len(centres))
    text = ", ".join(f"{centres[j]:+.3f} ({counts[j]})" for j in order)
    # weights of conv1 whose sign the quantization flips or zeroes: the first layer's large
    # weights left without a centre of their own
    q = centres[assignment][: sizes[0]]
    w = weights[: sizes[0]]
    big = np.abs(w) > 0.2
    lost = int(np.sum(big & (np.abs(q) < 0.5 * np.abs(w))))
    return text, f"{lost} of {int(big.sum())}"


def ranks(x):
    """Ranks 0..n-1 (ties broken by position; the importances here have almost none)."""
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    return r


def spearman(a, b):
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def correlation_lines(results, grid):
    """Per seed and layer: Spearman of sqrt(v) with the Gauss-Newton diagonal, and each
    importance's layer mean over its network mean."""
    lines = [
        "",
        "## sqrt(v) against the Gauss-Newton diagonal, per layer",
        "",
        "Spearman rank correlation over the layer's weights; 'share' is the layer's mean "
        "importance over the mean over all four layers (what decides how a global codebook "
        "weighs the layer).",
        "",
        "| seed | layer | Spearman | sqrt(v) share | Gauss-Newton share |",
        "|---|---|---|---|---|",
    ]
    for cell_dir in sorted((grid / "cells").glob("s*.none.kmeans.k4.ggn-1k.global.huffman")):
        config = json.loads((cell_dir / "config.json").read_text())
        keys = config["keys"]
        adam = load_file(str(results / "cache" / "baseline" / keys["baseline"] / "adam.safetensors"))
        ggn = load_file(str(results / "cache" / "importance" / keys["importance"] / "importance.safetensors"))
        mean_a = np.mean(np.concatenate([adam[n].ravel() for n in LAYERS]))
        mean_g = np.mean(np.concatenate([ggn[n].ravel() for n in LAYERS]))
        for n in LAYERS:
            a, g = adam[n].ravel(), ggn[n].ravel()
            lines.append(f"| {config['cell']['seed']} | {n} | {spearman(a, g):.3f} | "
                         f"{a.mean() / mean_a:.2f} | {g.mean() / mean_g:.2f} |")
    return lines


def importance_of(results, keys, weighting):
    """The importance a cell quantized with: Adam's sqrt(v_hat) saved with the baseline, or
    the cached importance stage (Gauss-Newton)."""
    if weighting == "adam":
        return load_file(str(results / "cache" / "baseline" / keys["baseline"] / "adam.safetensors"))
    return load_file(str(results / "cache" / "importance" / keys["importance"] / "importance.safetensors"))


def main():
    nq, results = sys.argv[1], Path(sys.argv[2])
    grid = results / "paper_fig2_lenet"
    rows = []
    for weighting in ("adam", "ggn-1k"):
        for cell_dir in sorted((grid / "cells").glob(f"s*.none.kmeans.k*.{weighting}.global.huffman")):
            config = json.loads((cell_dir / "config.json").read_text())
            row = json.loads((cell_dir / "row.json").read_text())
            rows.append((weighting, config["cell"]["seed"], config["cell"]["method"]["k"],
                         config["keys"], row["top1"]))
    if not rows:
        sys.exit(f"no weighted k-means cells in {grid}: run experiments/paper_fig2_lenet.toml first")
    lines = [
        "# Weighted global k-means on LeNet-5 at few clusters: Lloyd against the exact optimum",
        "",
        "Generated by `scripts/adam_collapse.py` from the `paper_fig2_lenet` cache. Importance: "
        "Adam's sqrt(v_hat) of the baseline (`adam`) or the Gauss-Newton diagonal from 1,000 "
        "images (`ggn-1k`), all four weight tensors in one codebook, as the grid's cells (which "
        "are not fine-tuned). 'conv1 large weights lost': conv1 weights above 0.2 in magnitude "
        "quantized to less than half their size. D_h is in the importance's own units.",
        "",
        "| weighting | seed | k | top-1 of the cell % | D_h Lloyd | D_h optimum | Lloyd centres "
        "(weights) | optimum centres (weights) | conv1 large weights lost (Lloyd / optimum) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for weighting, seed, k, keys, top1 in sorted(rows, key=lambda r: (r[0], r[2], r[1])):
            if k > 6:
                continue
            model = load_file(str(results / "cache" / "baseline" / keys["baseline"] / "model.safetensors"))
            importance = importance_of(results, keys, weighting)
            w = np.concatenate([model[n].ravel() for n in LAYERS]).astype(np.float32)
            h = np.concatenate([importance[n].ravel() for n in LAYERS]).astype(np.float32)
            sizes = [model[n].size for n in LAYERS]
            np.save(tmp / "w.npy", w)
            np.save(tmp / "h.npy", h)
            lloyd = quantize(nq, tmp / "w.npy", tmp / "h.npy", "kmeans", k, seed, tmp / "l.npz")
            best = quantize(nq, tmp / "w.npy", tmp / "h.npy", "kmeans-optimal", k, seed, tmp / "o.npz")
            l_text, l_lost = describe(lloyd[1], lloyd[2], sizes, w)
            o_text, o_lost = describe(best[1], best[2], sizes, w)
            lines.append(f"| {weighting} | {seed} | {k} | {top1:.2f} | {lloyd[0]:.4g} | {best[0]:.4g} | "
                         f"{l_text} | {o_text} | {l_lost.split(' of ')[0]} / {o_lost} |")
    lines += correlation_lines(results, grid)
    out = results / "adam_collapse.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
