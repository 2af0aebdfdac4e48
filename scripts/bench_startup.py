"""Start-up of the torch-free commands: wall seconds and peak memory of whole processes.

Runs each command on a small input, five times, and keeps the fastest run (and its peak
resident memory, from wait4): `quantize` of 1,000 weights, `pack` and `unpack` of a
1,010-parameter model, `plan` of the Table 1 grid, `report` and `figures` of one grid's
reference results. The same `quantize` and `plan` through `nq-exp-torch`, which links
libtorch, show what the split saves.

Usage: python scripts/bench_startup.py TARGET_DIR [--json OUT] [--md OUT]
(TARGET_DIR holds the nq-exp and nq-exp-torch binaries, e.g. target/release.)
"""

import argparse
import json
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from measure import measured

REPEAT = 5


def run(cmd):
    """(wall seconds, peak RSS in MB) of one run of `cmd`, which must succeed."""
    wall, rss, _ = measured(cmd)
    return wall, rss


def best(cmd):
    runs = [run(cmd) for _ in range(REPEAT)]
    return min(runs)


def write_safetensors(path, tensors):
    """A float32 safetensors file, written by hand (numpy only)."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent
    nq, nq_torch = args.target / "nq-exp", args.target / "nq-exp-torch"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        w = rng.laplace(0.0, 0.05, (10, 100)).astype(np.float32)
        np.save(tmp / "w.npy", w)
        write_safetensors(tmp / "model.safetensors",
                          {"fc.weight": w, "fc.bias": np.zeros(10, np.float32)})
        grid = "sensitivity_lambda"
        shutil.copytree(repo / "results/reference/grids" / grid, tmp / "results" / grid)
        quantize = ["quantize", "--weights", tmp / "w.npy", "--method", "kmeans", "--k", "16",
                    "--out", tmp / "q.npz"]
        plan = ["plan", repo / "experiments/paper_table1_lenet.toml", "--results", tmp / "results"]
        commands = [
            ("quantize, 1,000 weights", [nq, *quantize]),
            ("pack, 1,010 parameters", [nq, "pack", tmp / "model.safetensors",
                                        "--quantized", f"fc.weight={tmp / 'q.npz'}",
                                        "--out", tmp / "m.nqz"]),
            ("unpack", [nq, "unpack", tmp / "m.nqz", "--out", tmp / "back.safetensors"]),
            ("plan, Table 1 grid", [nq, *plan]),
            (f"report, {grid}", [nq, "report", tmp / "results"]),
            (f"figures, {grid}", [nq, "figures", tmp / "results"]),
            ("quantize through nq-exp-torch", [nq_torch, *quantize]),
            ("plan through nq-exp-torch", [nq_torch, *plan]),
        ]
        for what, cmd in commands:
            seconds, mb = best(cmd)
            rows.append({"command": what, "seconds": seconds, "max_rss_mb": mb})
            print(f"{what}: {seconds * 1e3:.0f} ms, {mb:.0f} MB", file=sys.stderr)
    lines = [f"Whole processes, best of {REPEAT} (wall time, and peak resident memory of that run).",
             "", "| command | ms | MB |", "|---|---:|---:|"]
    lines += [f"| {r['command']} | {r['seconds'] * 1e3:.0f} | {r['max_rss_mb']:.0f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
