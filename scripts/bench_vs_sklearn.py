"""Weighted k-means: nq-exp against scikit-learn on the same vector, side by side.

For N = 1e6 Laplace weights (scale 0.05, like a trained layer) with
exponential importances h, runs `nq-exp quantize --method kmeans` and
scikit-learn's `KMeans(sample_weight=h)` (k-means++ init, one init, Lloyd),
and reports for each k: wall seconds of the clustering alone and of the whole
`nq-exp quantize` process (reading the .npy, writing the .npz) with its peak
memory, the objective sum h (w - q)^2, and the speed-ups. It also times numpy's
sort of the vector (best of 20), the floor any sort-based 1-D method pays.

Usage: python scripts/bench_vs_sklearn.py NQ_EXP_BINARY [--n N] [--k K ...] [--json OUT] [--md OUT]
Exit status 1 if nq-exp's objective is worse than scikit-learn's by more
than 1e-9 relative (the cross-check of issue 2).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

from measure import measured


def laplace_vector(n, seed):
    rng = np.random.default_rng(seed)
    w = rng.laplace(0.0, 0.05, n).astype(np.float32)
    h = rng.exponential(1.0, n).astype(np.float32)
    return w, h


def objective(w, h, centres, labels):
    q = np.asarray(centres, dtype=np.float64)[labels]
    return float(np.sum(h.astype(np.float64) * (w.astype(np.float64) - q) ** 2))


def run_nq(binary, w_path, h_path, k, out_path):
    """The JSON summary, with the whole process's wall seconds and peak RSS (MB) added."""
    cmd = [binary, "quantize", "--weights", str(w_path), "--importance", str(h_path),
           "--method", "kmeans", "--k", str(k), "--out", str(out_path)]
    wall, rss, out = measured(cmd)
    summary = json.loads(out)
    summary["process_seconds"] = wall
    summary["process_max_rss_mb"] = rss
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    args = parser.parse_args()

    from sklearn import __version__ as sk_version
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_info

    w, h = laplace_vector(args.n, args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "w.npy", w)
        np.save(tmp / "h.npy", h)
        t = time.perf_counter()
        np.sort(w)
        sort_first_seconds = time.perf_counter() - t
        sort_seconds = min(timeit.repeat(lambda: np.sort(w), number=1, repeat=20))
        for k in args.k:
            ours = run_nq(args.binary, tmp / "w.npy", tmp / "h.npy", k, tmp / "q.npz")
            with np.load(tmp / "q.npz") as q:
                ours_obj = objective(w, h, q["centres"], q["assignment"])
            km = KMeans(n_clusters=k, init="k-means++", n_init=1, random_state=args.seed, algorithm="lloyd")
            t = time.perf_counter()
            km.fit(w.reshape(-1, 1), sample_weight=h)
            sk_seconds = time.perf_counter() - t
            sk_obj = objective(w, h, km.cluster_centers_[:, 0], km.labels_)
            rows.append({
                "n": args.n, "k": k,
                "nq_seconds": ours["seconds"], "nq_iterations": ours["iterations"], "nq_objective": ours_obj,
                "nq_process_seconds": ours["process_seconds"],
                "nq_process_max_rss_mb": ours["process_max_rss_mb"],
                "process_speedup": sk_seconds / ours["process_seconds"],
                "sklearn_seconds": sk_seconds, "sklearn_iterations": int(km.n_iter_), "sklearn_objective": sk_obj,
                "speedup": sk_seconds / ours["seconds"],
                "objective_ratio": ours_obj / sk_obj,
                "nq_over_numpy_sort": ours["seconds"] / sort_seconds,
            })

    lines = []
    out = lines.append  # the table goes to stdout and, with --md, to a file
    out(f"scikit-learn {sk_version}, numpy {np.__version__}, "
          f"threads {[i.get('num_threads') for i in threadpool_info()]}")
    out("")
    out(f"numpy sort of the same vector: {sort_seconds * 1e3:.1f} ms (best of 20; "
          f"the first call {sort_first_seconds * 1e3:.1f} ms)")
    out("| N | k | nq-exp k-means s (iters) | / numpy sort | nq-exp process s, MB "
          "| scikit-learn s (iters) | speed-up: k-means, process | objective nq-exp "
          "| objective sklearn | nq/sklearn |")
    out("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out(f"| {r['n']:.0e} | {r['k']} | {r['nq_seconds']:.3f} ({r['nq_iterations']}) | "
              f"{r['nq_over_numpy_sort']:.1f}x | {r['nq_process_seconds']:.3f}, "
              f"{r['nq_process_max_rss_mb']:.0f} | "
              f"{r['sklearn_seconds']:.2f} ({r['sklearn_iterations']}) | "
              f"{r['speedup']:.0f}x, {r['process_speedup']:.0f}x | "
              f"{r['nq_objective']:.6g} | {r['sklearn_objective']:.6g} | {r['objective_ratio']:.4f} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.md:
        args.md.write_text(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"sort_seconds": sort_seconds,
                                         "sort_first_call_seconds": sort_first_seconds,
                                         "rows": rows}, indent=2))
    worse = [r for r in rows if r["objective_ratio"] > 1 + 1e-9]
    if worse:
        sys.stderr.write(f"nq-exp's objective is worse than scikit-learn's for k = "
                         f"{[r['k'] for r in worse]}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
