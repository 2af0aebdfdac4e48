#!/usr/bin/env python3
"""Your own network in nq-exp: a PyTorch model saved as TorchScript and its data saved as
safetensors, in the layout that a grid with `arch = "torchscript"` and
`dataset = "tensors"` reads.

    .venv/bin/python scripts/torchscript_example.py OUT_DIR [--train-epochs N]

writes into OUT_DIR:
- `data/train.safetensors`, `data/test.safetensors`: `inputs` (float32, N x 1 x 12 x 12)
  and `labels` (int64, N): 12 x 12 images of 4 classes, a bright 4 x 4 square in one corner
  on noise (480 training and 160 test images);
- `mlp.pt`: an MLP (flatten, 144-32-4) saved with torch.jit.script, untrained;
- `cnn.pt`: a small CNN with batch norm saved with torch.jit.trace, after N epochs of Adam
  (default 3) on the training images;
and prints as JSON the CNN's top-1 on the test images in evaluation mode, which nq-exp must
report for the CNN's baseline when it is used as it is (`epochs = 0`).

torch.jit.script and torch.jit.trace are deprecated upstream in favour of torch.export, but
still work in torch 2.13, and TorchScript is the only format that tch (libtorch from Rust)
can train.
"""
import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn


def images(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    x = torch.rand(n, 1, 12, 12, generator=g)
    for i, c in enumerate(labels.tolist()):
        r0, c0 = (c // 2) * 8, (c % 2) * 8
        x[i, 0, r0 : r0 + 4, c0 : c0 + 4] += 0.25
    return x, labels


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(144, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 6 * 6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-epochs", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    (args.out / "data").mkdir(parents=True, exist_ok=True)
    x_train, y_train = images(480, 1)
    x_test, y_test = images(160, 2)
    save_file({"inputs": x_train, "labels": y_train}, str(args.out / "data/train.safetensors"))
    save_file({"inputs": x_test, "labels": y_test}, str(args.out / "data/test.safetensors"))

    torch.jit.script(Mlp()).save(str(args.out / "mlp.pt"))

    cnn = Cnn()
    optimizer = torch.optim.Adam(cnn.parameters(), lr=1e-2)
    for _ in range(args.train_epochs):
        cnn.train()
        for i in range(0, len(x_train), 32):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(cnn(x_train[i : i + 32]), y_train[i : i + 32])
            loss.backward()
            optimizer.step()
    cnn.eval()
    with torch.no_grad():
        right = int((cnn(x_test).argmax(1) == y_test).sum())
    torch.jit.trace(cnn, x_test[:2]).save(str(args.out / "cnn.pt"))
    print(json.dumps({"cnn_test_top1": 100.0 * right / len(y_test), "test_images": len(y_test)}))


if __name__ == "__main__":
    main()
