"""Draws the strength knob as one sheet: a row per pair, a column per --style_strength.

    OUT=/tmp/knob bash bench/knob.sh 512           # keeps /tmp/knob/<strength>/<pair>.png
    python docs/make_knob_sheet.py --results /tmp/knob --out docs/quality/knob_sheet.png \
        [--strengths 0.25,0.5,0.75,1] [--pairs starry,scream,...] [--height 160] [--crop 160]

Each row holds the pair's results along the knob, whole at a common height (the crop's box
outlined), then the same 100 % crop of each (the results' own pixels, from the pair's default
crop centre of make_quality_figures.py), so that how much more of the painting each step
carries can be read both coarsely and at full size. A missing result leaves its cell blank.
Pillow only.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from PIL import Image, ImageDraw

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_quality_figures import (  # noqa: E402  the pairs and drawing helpers, kept once
    CROP_AT, PAIRS, crop_box, outline_crop, parse_pairs, to_height)
from measure_plot import load_font  # noqa: E402

GAP = 8


def knob_sheet(results: pathlib.Path, pairs: list[str], strengths: list[str], height: int,
               side: int) -> Image.Image:
    """The sheet (RGB): per pair, ``len(strengths)`` whole pictures then as many crops."""
    font = load_font(16)
    label_h = 22
    whole_w = round(height * 4 / 3)
    width = GAP + len(strengths) * (whole_w + GAP) + len(strengths) * (side + GAP)
    row_h = max(height, side) + label_h + GAP
    sheet = Image.new("RGB", (width, label_h + GAP + len(pairs) * row_h), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, 2), "--style_strength along each row: whole pictures, then 100 % crops "
              "(0.5 is the default)", fill="black", font=font)
    for row, pair in enumerate(pairs):
        y = label_h + GAP + row * row_h
        at = CROP_AT[PAIRS[pair].photo]
        for col, strength in enumerate(strengths):
            path = results / strength / f"{pair}.png"
            if not path.exists():
                print(f"no {path}: cell left blank", file=sys.stderr)
                continue
            image = Image.open(path).convert("RGB")
            box = crop_box(image.size, at, side)
            whole = outline_crop(to_height(image, height), image.size, box)
            x_whole = GAP + col * (whole_w + GAP)
            x_crop = GAP + len(strengths) * (whole_w + GAP) + col * (side + GAP)
            sheet.paste(whole.crop((0, 0, min(whole.width, whole_w), height)), (x_whole, y))
            sheet.paste(image.crop(box), (x_crop, y))
            draw.text((x_whole, y + height + 2), f"{pair}, s = {strength}", fill="black",
                      font=font)
            draw.text((x_crop, y + side + 2), f"s = {strength}, 100 %", fill="black",
                      font=font)
    return sheet


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=pathlib.Path, required=True,
                        help="knob.sh's OUT: one folder per strength, <pair>.png inside")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--strengths", default="0.25,0.5,0.75,1")
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--height", type=int, default=160)
    parser.add_argument("--crop", type=int, default=160)
    args = parser.parse_args(argv)
    pairs = parse_pairs(args.pairs)
    strengths = [s.strip() for s in args.strengths.split(",") if s.strip()]
    if not args.results.is_dir():
        sys.exit(f"--results {args.results} is not a folder: give knob.sh's OUT")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    knob_sheet(args.results, pairs, strengths, args.height, args.crop).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
