"""The .nqz file of a pruned LeNet-5 against its accounted size (issue 5).

Takes a trained LeNet-5 (safetensors, from `nq-exp train --out`), prunes its
weights with one global magnitude threshold to the paper's 8.55 %, quantizes
the survivors of each layer with `nq-exp quantize --method kmeans --k 32`,
packs everything with `nq-exp pack` (Huffman; biases stay float32), unpacks it
and checks that every tensor came back exactly. The network is not retrained:
this measures sizes, not accuracy.

Usage: python scripts/lenet_nqz_size.py NQ_EXP MODEL.safetensors OUT_DIR
Writes OUT_DIR/lenet5_nqz_size.{json,md}.
"""

import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

KEEP = 0.0855
K = 32


def read_safetensors(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    return {name: np.frombuffer(raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]],
                                np.float32).reshape(v["shape"])
            for name, v in header.items() if name != "__metadata__"}


def run(*cmd):
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    nq, model, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    tensors = read_safetensors(model)
    weights = sorted(k for k in tensors if k.endswith(".weight"))
    magnitudes = np.concatenate([np.abs(tensors[k]).ravel() for k in weights])
    keep = round(KEEP * magnitudes.size)
    threshold = np.sort(magnitudes)[::-1][keep - 1]
    expected = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        args = []
        for k in weights:
            flat = tensors[k].ravel()
            survivors = np.nonzero(np.abs(flat) >= threshold)[0]
            np.save(tmp / f"{k}.npy", flat[survivors])
            run(nq, "quantize", "--weights", str(tmp / f"{k}.npy"), "--method", "kmeans",
                "--k", str(K), "--out", str(tmp / f"{k}.npz"))
            with np.load(tmp / f"{k}.npz") as z:
                q = dict(z)
            q["survivors"] = survivors.astype(np.int64)
            np.savez(tmp / f"{k}.npz", **q)
            full = np.zeros_like(flat)
            full[survivors] = q["centres"][q["assignment"]]
            expected[k] = full
            args += ["--quantized", f"{k}={tmp / f'{k}.npz'}"]
        packed = run(nq, "pack", str(model), "--out", str(out / "lenet5.nqz"), *args)
        run(nq, "unpack", str(out / "lenet5.nqz"), "--out", str(tmp / "back.safetensors"))
        back = read_safetensors(tmp / "back.safetensors")
    for k, v in tensors.items():
        want = expected.get(k, v.ravel())
        if not np.array_equal(back[k].ravel(), want):
            sys.exit(f"{k} did not come back exactly")
    s = packed["streams"]
    accounted_bits = sum(s[p] for p in ["index_bits", "codebook_bits", "code_table_bits",
                                        "position_bits", "position_table_bits", "float_bits"])
    summary = {
        "kept": int(keep), "weights": int(magnitudes.size), "k": K,
        "accounted_bits": accounted_bits, "accounted_bytes": accounted_bits / 8,
        "file_bytes": packed["bytes"], "payload_bytes": packed["payload_bytes"],
        "header_bytes": packed["header_bytes"], "original_bytes": packed["original_bytes"],
        "ratio_accounted": packed["original_bytes"] * 8 / accounted_bits,
        "ratio_file": packed["compression_ratio"], "streams": s,
    }
    (out / "lenet5_nqz_size.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = (f"Pruned LeNet-5 ({keep:,} of {magnitudes.size:,} weights kept, k-means k = {K} per layer, "
          f"Huffman, biases float32), unpacked back exactly:\n\n"
          "| part | bits |\n|---|---|\n"
          + "".join(f"| {p} | {s[p]:,} |\n" for p in ["index_bits", "codebook_bits", "code_table_bits",
                                                       "position_bits", "position_table_bits", "float_bits"])
          + f"| accounted total | {accounted_bits:,} ({accounted_bits / 8:,.1f} bytes) |\n\n"
          f"| file | bytes |\n|---|---|\n| payload (streams rounded up) | {packed['payload_bytes']:,} |\n"
          f"| header | {packed['header_bytes']:,} |\n| .nqz file | {packed['bytes']:,} |\n\n"
          f"Ratio {summary['ratio_accounted']:.2f}x accounted, {summary['ratio_file']:.2f}x from the file.\n")
    (out / "lenet5_nqz_size.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
