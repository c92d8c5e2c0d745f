"""What the quality measures give the painting itself: how far up each pair's scale goes.

    python bench/ceiling.py [--size 512] [--results DIR] [--out DIR] [--seed 0]

For each of compare.sh's pairs, scores with ../shared/quality/score.py, in one run:
- the painting stretched to the photo's shape at --size (its layout over the whole
  picture: ghost 1 by construction, no photo in it);
- the painting's random-phase texture at that size (``tfstyle.core.texture.random_phase``,
  the default start's texture before it is mixed with the photo: its colours and
  strokes, none of its layout, no photo);
- the pair's published reference;
- with --results, our picture DIR/<pair>.png (compare.sh's OUT=DIR keeps them).

Prints one row per pair: style/content/fine/detail and ghost of each. A style measure
near the stretched painting's is near the top of what that pair's scale can tell apart;
one above it is more than the painting (say, every crop carrying the whole painting's
statistics), which the measure cannot call better.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads (the texture)

from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "docs"))
from make_quality_figures import PAIRS, SHARED  # noqa: E402  the pair table, kept once
from quality_scores import score_pictures  # noqa: E402

KEYS = ("style_gain", "content_keep", "fine_style", "detail_keep")


def painting_pictures(pair, size, seed, out):
    """Writes the stretched painting and its random-phase texture for one pair under
    ``out``; returns their paths."""
    from tfstyle import image_io  # TensorFlow only where it is needed
    from tfstyle.core.texture import random_phase

    # The output's shape, as tfstyle sizes the photo for a run at --size.
    shape = image_io.longest_side_size(
        Image.open(SHARED / "images" / "content" / pair.photo).size, size)
    painting = Image.open(SHARED / "images" / "style" / pair.painting).convert("RGB")
    stretched = painting.resize(shape, Image.Resampling.LANCZOS)
    texture = random_phase(image_io.to_array(stretched), seed).numpy()
    stem = f"{out / pathlib.Path(pair.painting).stem}_{shape[0]}x{shape[1]}"
    paths = (f"{stem}_stretched.png", f"{stem}_texture.png")
    stretched.save(paths[0])
    Image.fromarray(image_io.to_uint8(texture)).save(paths[1])
    return paths


def score(pair, pictures):
    """{path: {measure: value}} for one pair's pictures."""
    rows = score_pictures(SHARED / "quality", SHARED / "images" / "content" / pair.photo,
                          SHARED / "images" / "style" / pair.painting, pictures)
    return dict(zip(pictures, rows))


def cell(scores):
    """One table cell: style/content/fine/detail, ghost."""
    return "/".join("%.3f" % scores[k] for k in KEYS) + ", %.2f" % scores["ghost"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0, help="the texture's random phase")
    parser.add_argument("--results", type=pathlib.Path, help="a dir with <pair>.png of ours")
    parser.add_argument("--out", type=pathlib.Path, help="keep the painting pictures here")
    parser.add_argument("--pairs", default=",".join(PAIRS))
    args = parser.parse_args(argv)
    out = args.out or pathlib.Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    print("style/content/fine/detail, ghost")
    print("| pair | the painting, stretched | its texture | reference | ours |")
    print("|---|---|---|---|---|")
    for name in args.pairs.split(","):
        pair = PAIRS[name]
        pictures = list(painting_pictures(pair, args.size, args.seed, out))
        pictures.append(SHARED / "quality" / "reference" / pair.reference)
        ours = args.results / f"{name}.png" if args.results else None
        if ours is not None and ours.exists():
            pictures.append(ours)
        scores = score(pair, pictures)
        cells = [cell(scores[p]) for p in pictures] + [""] * (4 - len(pictures))
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"pictures in {out}")


if __name__ == "__main__":
    main()
