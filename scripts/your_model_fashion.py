#!/usr/bin/env python3
"""A model of your own, trained in PyTorch, compressed by nq-exp: the example behind
experiments/examples/torchscript_fashion.toml (`make example-torchscript`, OUT_DIR results/your_model).

    .venv/bin/python scripts/your_model_fashion.py OUT_DIR [--epochs 2] [--data DIR]

Trains a small CNN with batch norm (conv 16@5x5, BN, max-pool, conv 32@5x5, BN, max-pool,
fc 512-10: 18,474 parameters) on Fashion-MNIST for `--epochs` epochs of Adam in PyTorch,
saves it with torch.jit.script as OUT_DIR/net.pt, and writes the images as nq-exp's
`tensors` dataset: OUT_DIR/data/{train,test}.safetensors with `inputs` (float16,
N x 1 x 28 x 28, normalised with mean 0.2860 and std 0.3530) and `labels` (int64).
The network is trained and evaluated on those float16 values (as float32), so PyTorch's
top-1, printed as JSON, is what nq-exp must report for the baseline when the grid uses
the network as it came (`epochs = 0`).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from use_in_pytorch import DATA_DIRS, find, read_idx  # noqa: E402

MEAN, STD = 0.2860, 0.3530


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.flatten(1))


def split(data, prefix):
    images = read_idx(find(data, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(data, f"{prefix}-labels-idx1-ubyte"))
    x = (torch.from_numpy(images.astype(np.float32) / 255.0) - MEAN) / STD
    return x.unsqueeze(1).half(), torch.from_numpy(labels.astype(np.int64))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA_DIRS["fashion-mnist"])
    args = parser.parse_args()
    torch.manual_seed(0)
    (args.out / "data").mkdir(parents=True, exist_ok=True)
    x_train, y_train = split(args.data, "train")
    x_test, y_test = split(args.data, "t10k")
    save_file({"inputs": x_train, "labels": y_train}, str(args.out / "data/train.safetensors"))
    save_file({"inputs": x_test, "labels": y_test}, str(args.out / "data/test.safetensors"))

    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    started = time.time()
    for _ in range(args.epochs):
        net.train()
        order = torch.randperm(len(y_train))
        for i in range(0, len(order), 128):
            batch = order[i : i + 128]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(x_train[batch].float()), y_train[batch])
            loss.backward()
            optimizer.step()
    seconds = time.time() - started
    net.eval()
    with torch.no_grad():
        right = sum(
            int((net(x_test[i : i + 1000].float()).argmax(1) == y_test[i : i + 1000]).sum())
            for i in range(0, len(y_test), 1000)
        )
    torch.jit.script(net).save(str(args.out / "net.pt"))
    print(
        json.dumps(
            {
                "parameters": sum(p.numel() for p in net.parameters()),
                "epochs": args.epochs,
                "train_seconds": round(seconds, 1),
                "test_top1": 100.0 * right / len(y_test),
            }
        )
    )


if __name__ == "__main__":
    main()
