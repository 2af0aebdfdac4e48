"""One LeNet-5 training epoch on Fashion-MNIST in PyTorch, from Python, with the
libtorch of the project's venv: the reference for `nq-exp train`'s seconds per
epoch. Same network (Caffe's LeNet-5), data (IDX files, normalised by the
training mean and std), batch size, Adam at lr 1e-3, example order shuffled per
epoch, and thread count.

Usage: .venv/bin/python scripts/pytorch_epoch.py [--epochs 2] [--threads 2]
       [--batch-size 128] [--data /usr/share/datasets/fashion-mnist]
Prints one JSON line: seconds per epoch, and test accuracy after the epochs.
"""

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    dims = data[3]
    sizes = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(sizes)


def load(root, name):
    for suffix in [".gz", ""]:
        p = root / f"{name}{suffix}"
        if p.exists():
            return idx(p)
    raise SystemExit(f"{root}: no {name}")


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.max_pool2d(self.conv2(x), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.tensor(load(args.data, "train-images-idx3-ubyte"), dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(load(args.data, "train-labels-idx1-ubyte").astype(np.int64))
    xt = torch.tensor(load(args.data, "t10k-images-idx3-ubyte"), dtype=torch.float32).unsqueeze(1) / 255
    yt = torch.tensor(load(args.data, "t10k-labels-idx1-ubyte").astype(np.int64))
    mean, std = 0.2860, 0.3530
    x, xt = (x - mean) / std, (xt - mean) / std
    net = LeNet5()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x))
        for i in range(0, len(x), args.batch_size):
            b = order[i:i + args.batch_size]
            opt.zero_grad()
            F.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "epochs": args.epochs, "seconds_per_epoch": sum(seconds) / len(seconds),
                      "epoch_seconds": seconds, "test_top1": acc}))


if __name__ == "__main__":
    main()
