"""How close a preview is to the full run it previews: per pair, the mean absolute
difference (0..255) of the two pictures' layouts and colours, both box-filtered to a
small size where the preview's lower resolution and fewer steps do not count.

    python bench/preview_match.py FULL_DIR PREVIEW_DIR [PREVIEW_DIR ...] [--size=64]

Each folder holds compare.sh's outputs (PAIR.png, with OUT=dir). One row per pair in
FULL_DIR, one column per preview folder; lower is closer. A preview earns its name when
it shows where the painting's large shapes and colours will fall, so this compares at
64 px by default, not at the preview's 100 %.
"""

from __future__ import annotations

import pathlib

import numpy as np
from absl import app, flags
from PIL import Image

flags.DEFINE_integer("size", 64, "Longest side both pictures are box-filtered to.")
FLAGS = flags.FLAGS


def small(path: pathlib.Path, size: tuple) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize(size, Image.BOX), np.float64)


def main(argv):
    if len(argv) < 3:
        raise SystemExit("usage: preview_match.py FULL_DIR PREVIEW_DIR [PREVIEW_DIR ...]")
    full, previews = pathlib.Path(argv[1]), [pathlib.Path(p) for p in argv[2:]]
    print("pair       " + "  ".join(f"{p.name:>14}" for p in previews))
    for path in sorted(full.glob("*.png")):
        width, height = Image.open(path).size
        scale = FLAGS.size / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        target = small(path, size)
        row = []
        for preview in previews:
            other = preview / path.name
            row.append(f"{np.abs(small(other, size) - target).mean():14.1f}"
                       if other.exists() else f"{'-':>14}")
        print(f"{path.stem:<10} " + "  ".join(row))


if __name__ == "__main__":
    app.run(main)
