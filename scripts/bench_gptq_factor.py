"""GPTQ's factorisation of a block in PyTorch beside nq-quant's `Compensator::new`
(`cargo bench -p nq-quant --bench compensation`, read from target/criterion when it has run).

GPTQ (gptq.py of the authors' code) damps the block by 1 % of its mean diagonal, then runs
`torch.linalg.cholesky`, `torch.cholesky_inverse` and `torch.linalg.cholesky(upper=True)`.
Timed here on the same kind of block as the criterion bench (`B B^T / n + I`, `B` uniform on
[-0.5, 0.5)), float64 as nq-quant computes and float32 as GPTQ does, on 2 torch threads: the
median of 5 runs after one warm-up.

Usage: python scripts/bench_gptq_factor.py [--md OUT] [--criterion DIR]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

SIZES = [1000, 4000]
REPEAT = 5


def block(n, dtype):
    gen = torch.Generator().manual_seed(7)
    b = torch.rand(n, n, generator=gen, dtype=torch.float64) - 0.5
    return (b @ b.T / n + torch.eye(n, dtype=torch.float64)).to(dtype)


def gptq_factor(h):
    h = h.clone()
    damp = 0.01 * torch.mean(torch.diag(h))
    h.diagonal().add_(damp)
    h = torch.linalg.cholesky(h)
    h = torch.cholesky_inverse(h)
    return torch.linalg.cholesky(h, upper=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--md", help="write the table here too")
    parser.add_argument("--criterion", default="target/criterion/compensation",
                        help="criterion's results of the compensation bench")
    args = parser.parse_args()
    torch.set_num_threads(2)
    lines = [
        "| n | GPTQ in PyTorch, float64 (ms) | GPTQ in PyTorch, float32 (ms) | "
        "nq-quant `Compensator::new`, float64 (ms, criterion median) |",
        "|---|---|---|---|",
    ]
    for n in SIZES:
        cells = []
        for dtype in (torch.float64, torch.float32):
            h = block(n, dtype)
            gptq_factor(h)
            times = []
            for _ in range(REPEAT):
                start = time.perf_counter()
                gptq_factor(h)
                times.append(time.perf_counter() - start)
            cells.append(f"{1000 * statistics.median(times):.1f}")
        estimates = Path(args.criterion) / f"factorise_n{n}" / "new" / "estimates.json"
        if estimates.exists():
            median = json.loads(estimates.read_text())["median"]["point_estimate"]
            cells.append(f"{median / 1e6:.1f}")
        else:
            cells.append("not run")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + f"\n\ntorch {torch.__version__}, 2 threads\n"
    print(text, end="")
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(text)


if __name__ == "__main__":
    main()
