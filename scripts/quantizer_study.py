"""Rate-distortion of the four quantizers on one weight vector.

Quantizes a vector (by default 1e5 Laplace weights of scale 0.05 with
exponential importances, seeded) with every method of paper.md section 4
through `nq-exp quantize`, Huffman-coded, and writes a markdown table and a
JSON lines file: for each method and k (or lambda), the clusters used, the
average codeword length, the entropy, D_h = sum h (w - q)^2, and for k-means
how far Lloyd stops from the exact optimum.

Usage: python scripts/quantizer_study.py NQ_EXP_BINARY OUT_DIR [--weights W.npy --importance H.npy]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

KS = [2, 4, 8, 16, 32, 64]
LAMBDAS = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4]


def quantize(binary, w, h, args):
    cmd = [binary, "quantize", "--weights", str(w), "--importance", str(h), "--coding", "huffman", *args]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("out", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--importance", type=Path)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        w_path, h_path = args.weights, args.importance
        if w_path is None:
            rng = np.random.default_rng(0)
            w_path, h_path = Path(tmp) / "w.npy", Path(tmp) / "h.npy"
            np.save(w_path, rng.laplace(0.0, 0.05, args.n).astype(np.float32))
            np.save(h_path, rng.exponential(1.0, args.n).astype(np.float32))
        rows = []
        for k in KS:
            for method in ["kmeans", "kmeans-optimal", "uniform"]:
                rows.append(quantize(args.binary, w_path, h_path, ["--method", method, "--k", str(k)]))
        for lam in LAMBDAS:
            rows.append(quantize(args.binary, w_path, h_path, ["--method", "ecsq", "--k", "256", "--lambda", str(lam)]))

    optimum = {r["k"]: r["distortion_h"] for r in rows if r["method"] == "kmeans-optimal"}
    with open(args.out / "quantizer_study.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    lines = [
        "| method | k / lambda | clusters | avg. codeword bits | entropy | D_h | D_h / optimal k-means D_h | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        param = f"lambda {r['lambda']:g}" if r["method"] == "ecsq" else f"k {r['k']}"
        gap = f"{r['distortion_h'] / optimum[r['k']]:.4f}" if r["method"] != "ecsq" and optimum.get(r["k"]) else ""
        lines.append(
            f"| {r['method']} | {param} | {r['clusters_used']} | {r['average_codeword_length']:.3f} | "
            f"{r['entropy']:.3f} | {r['distortion_h']:.5g} | {gap} | {r['seconds']:.3f} |"
        )
    table = "\n".join(lines) + "\n"
    (args.out / "quantizer_study.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
