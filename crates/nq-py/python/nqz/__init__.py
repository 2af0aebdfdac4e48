"""Read nq-exp's `.nqz` files: quantized, possibly pruned networks.

    import nqz
    tensors = nqz.load("model.nqz")            # {name: numpy float32 array}
    metadata = nqz.metadata("model.nqz")       # architecture, input.mean, input.std, ...

The arrays are the decoded network exactly (the centres of each weight's cluster, 0 where
pruned, float32 elsewhere), bit for bit what `nq-exp unpack` writes. The decoder is nq-exp's
own (Rust, through PyO3); a damaged file raises ValueError saying what is wrong.
"""
import numpy as np

from ._nqz import FORMAT_VERSION, decode

__all__ = ["load", "metadata", "read", "FORMAT_VERSION"]


def read(path):
    """Everything in the file: (tensors, storage, metadata), where storage maps each tensor
    name to (how it was stored: "raw", "quantized" or "pruned", codebook index or None)."""
    with open(path, "rb") as f:
        data = f.read()
    decoded, meta = decode(data)
    tensors, storage = {}, {}
    for name, shape, raw, stored, codebook in decoded:
        tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
        storage[name] = (stored, codebook)
    return tensors, storage, meta


def load(path):
    """The tensors of a .nqz file as a dict of float32 numpy arrays."""
    return read(path)[0]


def metadata(path):
    """The metadata of a .nqz file (empty for files without it) as a dict of strings."""
    return read(path)[2]
