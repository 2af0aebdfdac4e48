#!/usr/bin/env python3
"""Use a compressed model in PyTorch: the network that `nq-exp unpack` wrote (float32
safetensors carrying nq-exp's metadata) as a torch.nn.Module, fed the test images prepared as
its metadata says, its top-1 printed as JSON.

    nq-exp unpack results/GRID/cells/CELL/model.nqz --out model.safetensors
    .venv/bin/python scripts/use_in_pytorch.py model.safetensors [--data DIR]

The metadata names the architecture (`architecture`), the input (`input.shape`, `input.mean`,
`input.std`, `input.transform`) and the labels (`classes`). The test images are read from the
IDX files in DIR (default: the dataset's directory, as nq-exp looks for it). The networks below
are nq-exp's (crates/nq-nn/src/models/), written in PyTorch with the same tensor names.
"""
import argparse
import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F


def lenet5(shape, classes):
    c, h, _ = shape
    side = ((h - 4) // 2 - 4) // 2
    return nn.ModuleDict({
        "conv1": nn.Conv2d(c, 20, 5), "conv2": nn.Conv2d(20, 50, 5),
        "fc1": nn.Linear(50 * side * side, 500), "fc2": nn.Linear(500, classes),
    }), lambda m, x: m["fc2"](F.relu(m["fc1"](
        F.max_pool2d(m["conv2"](F.max_pool2d(m["conv1"](x), 2)), 2).flatten(1))))


def lenet_300_100(shape, classes):
    c, h, w = shape
    return nn.ModuleDict({
        "fc1": nn.Linear(c * h * w, 300), "fc2": nn.Linear(300, 100),
        "fc3": nn.Linear(100, classes),
    }), lambda m, x: m["fc3"](F.relu(m["fc2"](F.relu(m["fc1"](x.flatten(1))))))


def small_conv(shape, classes):
    c = shape[0]
    return nn.ModuleDict({
        "conv1": nn.Conv2d(c, 8, 3), "conv2": nn.Conv2d(8, 16, 3),
        "fc": nn.Linear(16 * 16, classes),
    }), lambda m, x: m["fc"](F.adaptive_avg_pool2d(F.relu(m["conv2"](
        F.max_pool2d(F.relu(m["conv1"](x)), 2))), 4).flatten(1))


# builder and the name of the last layer (its rows are the classes)
ARCHITECTURES = {
    "lenet5": (lenet5, "fc2"), "lenet-300-100": (lenet_300_100, "fc3"),
    "small-conv": (small_conv, "fc"),
}
DATA_DIRS = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
    "mnist": Path(os.environ.get("NQ_EXP_CACHE", Path.home() / ".cache/nq-exp")) / "data/mnist",
}


def read_idx(path):
    """An IDX file (gzipped or not) as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(data, stem):
    for name in (stem, stem + ".gz"):
        if (data / name).exists():
            return data / name
    sys.exit(f"error: no {stem}[.gz] in {data}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="safetensors written by nq-exp unpack")
    parser.add_argument("--data", type=Path, help="directory of the IDX test files")
    args = parser.parse_args()

    with safe_open(args.model, "pt") as f:
        meta = f.metadata() or {}
    if "architecture" not in meta:
        sys.exit(f"error: {args.model} has no nq-exp metadata (made by an older nq-exp?)")
    arch = meta["architecture"]
    if arch not in ARCHITECTURES:
        sys.exit(f"error: {args.model}: architecture {arch} is not written in this script")
    shape = json.loads(meta["input.shape"])
    mean, std = json.loads(meta["input.mean"]), json.loads(meta["input.std"])
    data = args.data or DATA_DIRS.get(meta.get("dataset"))
    if data is None:
        sys.exit(f"error: give --data for dataset {meta.get('dataset')}")
    images = read_idx(find(data, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(data, "t10k-labels-idx1-ubyte"))

    weights = load_file(args.model)
    build, last = ARCHITECTURES[arch]
    classes = weights[last + ".weight"].shape[0]
    modules, forward = build(shape, classes)
    modules.load_state_dict(weights)  # strict: every tensor named as in nq-exp
    modules.eval()

    # the transform nq-exp trains with (input.transform): pixels / 255, then (x - mean) / std
    x = torch.from_numpy(images.copy()).float().div(255.0).reshape(-1, *shape)
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    y = torch.from_numpy(labels.astype(np.int64))
    with torch.no_grad():
        predicted = torch.cat([forward(modules, b).argmax(1) for b in x.split(1000)])
    top1 = 100.0 * (predicted == y).double().mean().item()
    names = json.loads(meta["classes"]) if "classes" in meta else None
    print(json.dumps({
        "model": str(args.model), "architecture": arch, "cell": meta.get("nq-exp.cell"),
        "test_images": len(y), "top1": top1,
        "first_prediction": names[predicted[0]] if names and classes == len(names) else None,
    }))


if __name__ == "__main__":
    main()
