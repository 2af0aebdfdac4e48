#!/usr/bin/env python3
"""The Python reader against `nq-exp unpack` (scripts/test_python_reader.sh runs this): on a
pruned, globally quantized checkpoint with metadata, on a layer-quantized one without pruning,
and on a damaged file. Exits non-zero on the first difference.

    python scripts/test_python_reader.py path/to/nq-exp
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import nqz


def nq(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nq-exp {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout)


def main():
    binary = sys.argv[1]
    rng = np.random.default_rng(0)
    checked = 0
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        save_file({"conv.weight": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
                   "conv.bias": rng.standard_normal(8).astype(np.float32),
                   "fc.weight": rng.standard_normal((10, 72)).astype(np.float32)},
                  str(d / "net.safetensors"), metadata={"format": "pt"})
        runs = {
            "pruned-global": ["--method", "kmeans", "--k", "8", "--scope", "global", "--keep", "0.3"],
            "layer-fixed": ["--method", "uniform", "--k", "5", "--coding", "fixed"],
            "pruned-context": ["--method", "kmeans", "--k", "8", "--scope", "global", "--keep", "0.3",
                               "--coding", "context"],
        }
        for name, options in runs.items():
            nqz_file, unpacked = d / f"{name}.nqz", d / f"{name}.safetensors"
            nq(binary, "compress", str(d / "net.safetensors"), *options, "--out", str(nqz_file))
            nq(binary, "unpack", str(nqz_file), "--out", str(unpacked))
            expected = load_file(str(unpacked))
            with safe_open(str(unpacked), "np") as f:
                expected_meta = f.metadata() or {}
            tensors, storage, meta = nqz.read(nqz_file)
            assert sorted(tensors) == sorted(expected), (name, sorted(tensors))
            for t, values in tensors.items():
                want = expected[t]
                assert values.dtype == np.float32 and values.shape == want.shape, (name, t)
                assert values.tobytes() == want.tobytes(), f"{name}: {t} differs from unpack"
                checked += 1
            assert meta == expected_meta and meta["format"] == "pt", (name, meta)
            assert nqz.load(nqz_file).keys() == tensors.keys()
            assert storage["conv.bias"] == ("raw", None), storage
            kind = "pruned" if "--keep" in options else "quantized"
            assert storage["fc.weight"][0] == kind, storage
        damaged = bytearray((d / "layer-fixed.nqz").read_bytes())
        damaged[-1] ^= 1
        (d / "damaged.nqz").write_bytes(bytes(damaged))
        try:
            nqz.load(d / "damaged.nqz")
            sys.exit("a damaged file was read without an error")
        except ValueError as e:
            assert "checksum" in str(e), e
    print(f"python reader: {checked} tensors equal to nq-exp unpack bit for bit; "
          f"a damaged file raises ValueError; format version {nqz.FORMAT_VERSION}")


if __name__ == "__main__":
    main()
