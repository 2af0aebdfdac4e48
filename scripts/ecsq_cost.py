#!/usr/bin/env python3
"""What iterative ECSQ costs (issue 12, the review's suggestion 4), measured with
`nq-exp quantize`: seconds and iterations against the number of weights N and the initial
clusters k_init on synthetic Laplacian weights (h = 1) and on LeNet-5's weights with their
Gauss-Newton diagonal; the log-log slope of time against N; the Lagrangian per iteration;
and uniform quantization with Huffman coding at about the same rate (entropy) beside it.
`make bench` runs it; it writes results/bench/ecsq_cost.{md,json}.

    .venv/bin/python scripts/ecsq_cost.py target/release/nq-exp [--lenet MODEL IMPORTANCE]

MODEL and IMPORTANCE are the `model.safetensors` of a LeNet-5 baseline and the
`importance.safetensors` of its Gauss-Newton importance stage (results/cache/baseline/KEY/,
results/cache/importance/KEY/); without them, the seed-0 baseline and Gauss-Newton importance
of the Figure 2 grid under --results (default results/) when `make reproduce` made them, else
only the synthetic rows run.
The machine's load matters: run it on an idle machine.
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

LAMBDA = 1e-4  # in units of the (unit-mean) importance's squared error per bit, as in grids


def quantize(nq, w, h, *options):
    out = subprocess.run([nq, "quantize", "--weights", str(w), "--importance", str(h), *options],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nq-exp quantize {' '.join(options)} failed: {out.stderr}")
    return json.loads(out.stdout)


def ecsq(nq, w, h, k_init, lam=LAMBDA):
    return quantize(nq, w, h, "--method", "ecsq", "--k", str(k_init), "--lambda", str(lam))


def slope(xs, ys):
    lx, ly = np.log(xs), np.log(ys)
    return float(np.polyfit(lx, ly, 1)[0])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("nq")
    parser.add_argument("--lenet", type=Path, nargs=2, metavar=("MODEL", "IMPORTANCE"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args()
    cell = args.results / "paper_fig2_lenet/cells/s0.none.kmeans.k4.ggn-1k.global.huffman/config.json"
    if args.lenet is None and cell.exists():
        keys = json.loads(cell.read_text())["keys"]
        args.lenet = (args.results / "cache/baseline" / keys["baseline"] / "model.safetensors",
                      args.results / "cache/importance" / keys["importance"] / "importance.safetensors")
    rng = np.random.default_rng(0)
    record = {"lambda": LAMBDA, "synthetic": [], "lenet": [], "history": {}, "uniform": [],
              "lambdas": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # synthetic: Laplacian weights of scale 0.05 (like LeNet-5's fc1), unit importance
        for n in (10_000, 100_000, 1_000_000, 10_000_000):
            w, h = tmp / f"w{n}.npy", tmp / f"h{n}.npy"
            np.save(w, rng.laplace(0.0, 0.05, n).astype(np.float32))
            np.save(h, np.ones(n, dtype=np.float32))
            for k in (16, 64, 256, 1024):
                if n == 10_000_000 and k == 1024:
                    continue  # minutes on 2 cores; the slope comes from the others
                j = ecsq(args.nq, w, h, k)
                record["synthetic"].append({"n": n, "k_init": k, "seconds": j["seconds"],
                                            "iterations": j["iterations"],
                                            "clusters": j["clusters_used"],
                                            "entropy": j["entropy"]})
                if n == 1_000_000 and k == 256:
                    record["history"]["synthetic 1e6, k_init 256"] = j["history"]
            if n == 1_000_000:
                for lam in (1e-5, 1e-3, 1e-2):
                    j = ecsq(args.nq, w, h, 256, lam)
                    record["lambdas"].append({"lambda": lam, "seconds": j["seconds"],
                                              "iterations": j["iterations"],
                                              "clusters": j["clusters_used"],
                                              "entropy": j["entropy"]})
        if args.lenet:
            from safetensors.numpy import load_file
            model = load_file(str(args.lenet[0]))
            importance = load_file(str(args.lenet[1]))
            layers = [n for n in model if n.endswith(".weight") and model[n].ndim >= 2]
            w = np.concatenate([model[n].ravel() for n in sorted(layers)]).astype(np.float32)
            h = np.concatenate([importance[n].ravel() for n in sorted(layers)]).astype(np.float64)
            h = (h * len(h) / h.sum()).astype(np.float32)  # unit mean, as grids scale it
            np.save(tmp / "lw.npy", w)
            np.save(tmp / "lh.npy", h)
            for k in (16, 64, 256, 1024):
                j = ecsq(args.nq, tmp / "lw.npy", tmp / "lh.npy", k)
                record["lenet"].append({"n": len(w), "k_init": k, "seconds": j["seconds"],
                                        "iterations": j["iterations"],
                                        "clusters": j["clusters_used"], "entropy": j["entropy"],
                                        "distortion_h": j["distortion_h"],
                                        "bits": j["compressed_bits"]})
                if k == 256:
                    record["history"]["LeNet-5, Gauss-Newton h, k_init 256"] = j["history"]
                    # uniform + Huffman at about the same entropy: the k whose entropy is nearest
                    best = None
                    for uk in range(2, 257):
                        u = quantize(args.nq, tmp / "lw.npy", tmp / "lh.npy", "--method", "uniform",
                                     "--k", str(uk))
                        if best is None or abs(u["entropy"] - j["entropy"]) < abs(best[1]["entropy"] - j["entropy"]):
                            best = (uk, u)
                        if u["entropy"] > j["entropy"] + 0.5:
                            break
                    uk, u = best
                    record["uniform"].append({"k": uk, "seconds": u["seconds"], "entropy": u["entropy"],
                                              "distortion_h": u["distortion_h"], "bits": u["compressed_bits"],
                                              "ecsq_entropy": j["entropy"],
                                              "ecsq_distortion_h": j["distortion_h"],
                                              "ecsq_bits": j["compressed_bits"], "ecsq_seconds": j["seconds"]})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ecsq_cost.json").write_text(json.dumps(record, indent=1))
    lines = ["# ECSQ: seconds and iterations", "",
             f"Generated by `scripts/ecsq_cost.py` (`make bench`), lambda = {LAMBDA:g}, the "
             "uniform start, `nq-exp quantize` (its own `seconds`, the quantizer alone).", "",
             "| weights | N | k_init | seconds | iterations | clusters left | entropy (bits) |",
             "|---|---|---|---|---|---|---|"]
    for r in record["synthetic"]:
        lines.append(f"| Laplacian, h = 1 | {r['n']:,} | {r['k_init']} | {r['seconds']:.3f} | "
                     f"{r['iterations']} | {r['clusters']} | {r['entropy']:.3f} |")
    for r in record["lenet"]:
        lines.append(f"| LeNet-5, Gauss-Newton h | {r['n']:,} | {r['k_init']} | {r['seconds']:.3f} | "
                     f"{r['iterations']} | {r['clusters']} | {r['entropy']:.3f} |")
    lines += ["", "Log-log slope of seconds against N (synthetic; 1 is linear):", ""]
    for k in (16, 64, 256, 1024):
        pts = [(r["n"], r["seconds"]) for r in record["synthetic"] if r["k_init"] == k]
        if len(pts) >= 2:
            lines.append(f"- k_init = {k}: {slope(*zip(*pts)):.2f} over N = "
                         f"{pts[0][0]:,} to {pts[-1][0]:,}")
    same = [r for r in record["synthetic"] if r["n"] == 1_000_000 and r["k_init"] == 256]
    lines += ["", "Against lambda at N = 1,000,000, k_init = 256 (synthetic):", "",
              "| lambda | seconds | iterations | clusters left | entropy (bits) |", "|---|---|---|---|---|"]
    for r in sorted(record["lambdas"] + [dict(same[0], **{"lambda": LAMBDA})] if same else record["lambdas"],
                    key=lambda r: r["lambda"]):
        lines.append(f"| {r['lambda']:g} | {r['seconds']:.3f} | {r['iterations']} | {r['clusters']} | "
                     f"{r['entropy']:.3f} |")
    lines += ["", "Seconds per iteration against k_init at N = 1,000,000 (synthetic):", ""]
    for r in record["synthetic"]:
        if r["n"] == 1_000_000:
            lines.append(f"- k_init = {r['k_init']}: {r['seconds'] / max(r['iterations'], 1) * 1e3:.1f} ms")
    if record["uniform"]:
        u = record["uniform"][0]
        lines += ["", "Against uniform quantization with Huffman coding at about the same entropy "
                  "(LeNet-5, Gauss-Newton h, ECSQ from k_init = 256):", "",
                  "| quantizer | entropy (bits) | D_h | accounted bits | seconds |", "|---|---|---|---|---|",
                  f"| ECSQ | {u['ecsq_entropy']:.3f} | {u['ecsq_distortion_h']:.4g} | {u['ecsq_bits']:,} | {u['ecsq_seconds']:.3f} |",
                  f"| uniform, k = {u['k']} | {u['entropy']:.3f} | {u['distortion_h']:.4g} | {u['bits']:,} | {u['seconds']:.3f} |"]
    lines += ["", "The Lagrangian J after initialisation and after each iteration:", ""]
    for name, history in record["history"].items():
        head = ", ".join(f"{v:.6g}" for v in history[:8])
        lines.append(f"- {name}: {head}{' ...' if len(history) > 8 else ''} "
                     f"({len(history) - 1} iterations; last {history[-1]:.6g})")
    (args.out / "ecsq_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
