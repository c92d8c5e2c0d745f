"""Draws the quality figures that compare tfstyle with published neural style transfer results.

Two jobs, both with Pillow alone (no tfstyle import, no matplotlib); the plot's drawing lives
in measure_plot.py, the sheets' here:

    # contact sheets from the images that `OUT=DIR ../shared/quality/compare.sh 512` kept
    python docs/make_quality_figures.py sheets --results DIR --out docs/quality \
        [--pairs starry,scream,matisse,tubingen,shipwreck,kandinsky] [--before OLD_DIR] \
        [--crop 256] [--crop_at x,y] [--crop_at_pair tubingen=0.68,0.35 ...] \
        [--label "tfstyle --style_strength=0.75"]

    # any two measures of a TSV against each other, one panel or several side by side
    python docs/make_quality_figures.py plot --table scores.tsv --out docs/quality/knob.png \
        [--x content_keep] [--y style_gain] [--title "..."] \
        [--panels content_keep:style_gain,detail_keep:fine_style]

`sheets` writes OUT/<pair>.png for each pair whose DIR/<pair>.png exists: photo, painting,
(with --before, the earlier result OLD_DIR/<pair>.png,) tfstyle's result (its panels named
--label, so that a sheet drawn with other flags says so) and the published
result of the pair's reference implementation (jcjohnson/neural-style or cysmith/neural-style-tf)
at a common height, then a 100 % crop (pixels as they are, no resampling) of every result, each
at its own full size, from the same relative location. That location is, by priority,
--crop_at_pair for the pair, else --crop_at, else the pair's default (where the picture has
fine structure: the bridge's tower and cables, Tuebingen's spire and house fronts).

`plot` reads a TSV whose header has `label`, `pair` and the columns being plotted (any of
style_gain, content_keep, fine_style, detail_keep, or another numeric column); an optional
`strength` column is written next to its point. A row lacking a number in a panel's two
columns is left out of that panel, with a note on stderr. Labels in REFERENCES mark published
results: jcjohnson a big black star, neural-style-tf a big white star outlined in black, each
tagged with its pair and drawn last. Every other label gets a colour, each pair a marker shape;
a label with several rows for one pair (a sweep, say of --style_strength) is joined by a line
in file order, so the sweep reads as a curve.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import NamedTuple

from PIL import Image, ImageDraw

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from measure_plot import REFERENCES, load_font, run_plot, text_size  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


class Pair(NamedTuple):
    photo: str
    painting: str
    reference: str  # the published output, in quality/reference/
    author: str  # a key of REFERENCES


# as in ../shared/quality/compare.sh
PAIRS = {
    "starry": Pair("golden_gate.jpg", "starry_night.jpg", "golden_gate_starry.png", "jcjohnson"),
    "scream": Pair("golden_gate.jpg", "the_scream.jpg", "golden_gate_scream.png", "jcjohnson"),
    "matisse": Pair("golden_gate.jpg", "woman-with-hat-matisse.jpg", "golden_gate_matisse.png",
                    "jcjohnson"),
    "tubingen": Pair("tubingen.jpg", "starry_night.jpg", "tubingen_starry.png", "jcjohnson"),
    "shipwreck": Pair("tubingen.jpg", "shipwreck.jpg", "tubingen_shipwreck_nstf.png",
                      "neural-style-tf"),
    "kandinsky": Pair("tubingen.jpg", "kandinsky.jpg", "tubingen_kandinsky_nstf.png",
                      "neural-style-tf"),
}
# default crop centre per photo (x, y fractions), where the picture has fine structure: the
# bridge's near tower and cables; Tuebingen's church spire and house fronts
CROP_AT = {"golden_gate.jpg": (0.3, 0.5), "tubingen.jpg": (0.68, 0.35)}


def fractions(text: str) -> tuple[float, float]:
    """'x,y' with both in [0, 1], for argparse."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'x,y' fractions, got {text!r}")
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise argparse.ArgumentTypeError(f"fractions must lie in [0, 1], got {text!r}")
    return x, y


def pair_fractions(text: str) -> tuple[str, tuple[float, float]]:
    """'pair=x,y', for argparse (the pair name is checked against PAIRS later)."""
    pair, sep, at = text.partition("=")
    if not sep or not pair.strip():
        raise argparse.ArgumentTypeError(f"expected 'pair=x,y', got {text!r}")
    return pair.strip(), fractions(at)


def panel_list(text: str) -> list[tuple[str, str]]:
    """'x:y,x:y' column pairs, for argparse."""
    panels = []
    for item in text.split(","):
        x, sep, y = item.strip().partition(":")
        if not sep or not x.strip() or not y.strip():
            raise argparse.ArgumentTypeError(f"expected 'x:y,x:y' column names, got {text!r}")
        panels.append((x.strip(), y.strip()))
    return panels


# ---------------------------------------------------------------------------- contact sheets


def to_height(image: Image.Image, height: int) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.LANCZOS)


def crop_box(size: tuple[int, int], at: tuple[float, float], side: int) -> tuple[int, int, int, int]:
    """A side×side box centred at fractions `at` of an image of `size`, shifted (and shrunk
    if the image is smaller) so that it stays inside the image."""
    w, h = size
    cw, ch = min(side, w), min(side, h)
    left = min(max(0, round(at[0] * w - cw / 2)), w - cw)
    top = min(max(0, round(at[1] * h - ch / 2)), h - ch)
    return left, top, left + cw, top + ch


def outline_crop(panel: Image.Image, source_size: tuple[int, int], box) -> Image.Image:
    """The panel with the crop's area outlined, so the reader sees where the crop comes from."""
    panel = panel.copy()
    k = panel.height / source_size[1]
    # the last pixel row/column, not one past it, or an edge crop loses its outline
    scaled = [min(round(v * k), limit - 1)
              for v, limit in zip(box, (panel.width, panel.height) * 2)]
    draw = ImageDraw.Draw(panel)
    # white under red: visible on dark and on bright paintings alike
    draw.rectangle(scaled, outline="white", width=3)
    draw.rectangle(scaled, outline=(220, 20, 20), width=1)
    return panel


def contact_sheet(title: str, top: list, bottom: list, under: list[int], note: str) -> Image.Image:
    """top, bottom: lists of (label, image). Bottom image i goes under top panel under[i]
    (moved right if it would overlap its left neighbour). Labels are written below images;
    `note` goes into the empty space left of the bottom row when it fits there."""
    font, title_font = load_font(14), load_font(16)
    margin, gap, label_h, title_h = 10, 10, 22, 26
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    xs, x = [], margin
    for label, image in top:
        xs.append(x)
        # a label wider than its picture (a portrait painting) widens the slot
        x += max(image.width, text_size(probe, label, font)[0]) + gap
    bottom_xs, right = [], margin
    for (label, image), index in zip(bottom, under):
        bx = max(xs[index], right)
        bottom_xs.append(bx)
        right = bx + max(image.width, text_size(probe, label, font)[0]) + gap
    width = max(x, right) - gap + margin
    top_h = max(image.height for _, image in top)
    bottom_h = max(image.height for _, image in bottom)
    height = margin + title_h + top_h + label_h + gap + bottom_h + label_h + margin
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((margin, margin), title, fill="black", font=title_font)
    y_top = margin + title_h
    y_bottom = y_top + top_h + label_h + gap
    for (label, image), px in zip(top, xs):
        paste_labelled(sheet, draw, image, label, (px, y_top), top_h, font)
    for (label, image), px in zip(bottom, bottom_xs):
        paste_labelled(sheet, draw, image, label, (px, y_bottom), bottom_h, font)
    _, _, right, _ = draw.multiline_textbbox((margin, y_bottom), note, font=font)
    if right + gap <= bottom_xs[0]:
        draw.multiline_text((margin, y_bottom), note, fill="#444444", font=font, spacing=6)
    return sheet


def paste_labelled(sheet, draw, image, label, at, row_h, font) -> None:
    x, y = at
    sheet.paste(image, (x, y))
    draw.text((x, y + row_h + 4), label, fill="black", font=font)


def result_panels(name: str, image: Image.Image, height: int, side: int,
                  at: tuple[float, float]) -> tuple[tuple, tuple]:
    """(top panel, 100 % crop) of one result: the crop box sits at the same relative place in
    every result but is cut from each at its own native pixels, so sizes may differ."""
    box = crop_box(image.size, at, side)
    panel = outline_crop(to_height(image, height), image.size, box)
    return ((f"{name} ({image.width}x{image.height})", panel),
            (f"{name}, 100 % crop", image.crop(box)))


def pair_sheet(pair: str, result_path: pathlib.Path, before_path: pathlib.Path | None,
               shared: pathlib.Path, height: int, side: int,
               at: tuple[float, float], label: str = "tfstyle") -> Image.Image:
    spec = PAIRS[pair]
    author = REFERENCES[spec.author]
    photo, painting, reference, result = (Image.open(path).convert("RGB") for path in (
        shared / "images" / "content" / spec.photo, shared / "images" / "style" / spec.painting,
        shared / "quality" / "reference" / spec.reference, result_path))
    # (name, image) in the order before / after / reference
    results = [(label, result), (author, reference)]
    if before_path is not None:
        results = [("before", Image.open(before_path).convert("RGB")),
                   (f"{label}, after", result), (author, reference)]
    top = [(f"photo: {spec.photo}", to_height(photo, height)),
           (f"painting: {spec.painting}", to_height(painting, height))]
    bottom = []
    for name, image in results:
        panel, crop = result_panels(name, image, height, side, at)
        top.append(panel)
        bottom.append(crop)
    title = f"{pair}: {spec.photo} in the style of {spec.painting}, beside {author}"
    note = ("100 % crops: each result's own pixels,\nno resampling, from the outlined box\n"
            f"around x={at[0]:.2f}, y={at[1]:.2f} of the image\n"
            "(--crop_at_pair, --crop_at) in every result.")
    return contact_sheet(title, top, bottom, under=list(range(2, len(top))), note=note)


def known_pairs(names, what: str = ""):
    """``names`` (an iterable of pair keys), or exit naming the ones PAIRS lacks."""
    unknown = sorted(set(names) - set(PAIRS))
    if unknown:
        sys.exit(f"{what}unknown pairs {unknown}: choose from {', '.join(PAIRS)}")
    return names


def parse_pairs(text: str) -> list[str]:
    """A --pairs value, 'a,b,...', as known pair keys in its order."""
    return known_pairs([p.strip() for p in text.split(",") if p.strip()])


def crop_centres(pairs: list[str], args) -> dict[str, tuple[float, float]]:
    """Crop centre per pair: --crop_at_pair, else --crop_at, else the pair's default."""
    own = dict(args.crop_at_pair or [])
    known_pairs(own, "--crop_at_pair: ")
    return {pair: own.get(pair) or args.crop_at or CROP_AT[PAIRS[pair].photo]
            for pair in pairs}


def run_sheets(args) -> None:
    pairs = parse_pairs(args.pairs)
    centres = crop_centres(pairs, args)
    results, out = pathlib.Path(args.results), pathlib.Path(args.out)
    before = pathlib.Path(args.before) if args.before else None
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for pair in pairs:
        result_path = results / f"{pair}.png"
        if not result_path.exists():
            print(f"{pair}: no {result_path}, skipped", file=sys.stderr)
            continue
        before_path = before / f"{pair}.png" if before else None
        if before_path is not None and not before_path.exists():
            print(f"{pair}: no {before_path}, sheet without 'before'", file=sys.stderr)
            before_path = None
        sheet = pair_sheet(pair, result_path, before_path, pathlib.Path(args.shared),
                           args.height, args.crop, centres[pair], args.label)
        target = out / f"{pair}.png"
        sheet.save(target, optimize=True)
        print(f"{target}  {sheet.width}x{sheet.height}  {target.stat().st_size // 1024} KiB")
        written += 1
    if not written:
        sys.exit(f"no <pair>.png in {results}")



def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    jobs = parser.add_subparsers(dest="job", required=True)
    sheets = jobs.add_parser("sheets", help="one contact sheet per pair")
    sheets.add_argument("--results", required=True, help="folder with <pair>.png from compare.sh")
    sheets.add_argument("--before", help="folder with earlier <pair>.png results to show too")
    sheets.add_argument("--out", default="docs/quality", help="folder for <pair>.png sheets")
    sheets.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated pair keys")
    sheets.add_argument("--label", default="tfstyle",
                        help="name of the results' panels: say which settings drew them")
    sheets.add_argument("--height", type=int, default=256, help="height of the top-row panels")
    sheets.add_argument("--crop", type=int, default=256, help="side of the 100 %% crops in px")
    sheets.add_argument("--crop_at", type=fractions, default=None,
                        help="centre of the crops as x,y fractions of width and height, for "
                             "every pair (default: each pair's own, see --crop_at_pair)")
    sheets.add_argument("--crop_at_pair", type=pair_fractions, action="append",
                        metavar="PAIR=X,Y",
                        help="crop centre for one pair, repeatable; wins over --crop_at "
                             "(defaults: golden_gate pairs 0.3,0.5, tubingen pairs 0.68,0.35)")
    sheets.add_argument("--shared", default=str(SHARED),
                        help="the shared folder holding images/ and quality/reference/")
    sheets.set_defaults(run=run_sheets)
    plot = jobs.add_parser("plot", help="scatter plots of two measures, one or more panels")
    plot.add_argument("--table", required=True,
                      help="TSV: label, pair, the plotted columns, optionally strength")
    plot.add_argument("--out", required=True, help="the PNG to write")
    plot.add_argument("--x", default="content_keep", help="column on the horizontal axis")
    plot.add_argument("--y", default="style_gain", help="column on the vertical axis")
    plot.add_argument("--panels", type=panel_list, default=None, metavar="X:Y,X:Y",
                      help="several panels side by side sharing a legend, e.g. "
                           "content_keep:style_gain,detail_keep:fine_style (default: --x:--y)")
    plot.add_argument("--title", default="", help="heading above the panels (default: none)")
    plot.add_argument("--width", type=int, default=0,
                      help="image width (default: 900, plus 600 per extra panel)")
    plot.add_argument("--height", type=int, default=650, help="least image height")
    plot.set_defaults(run=run_plot)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    arguments.run(arguments)
