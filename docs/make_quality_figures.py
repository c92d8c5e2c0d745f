"""Draws the quality figures that compare tfstyle with jcjohnson/neural-style.

Two jobs, both with Pillow alone (no tfstyle import, no matplotlib):

    # contact sheets from the images that `OUT=DIR ../shared/quality/compare.sh 512` kept
    python docs/make_quality_figures.py sheets --results DIR --out docs/quality \
        [--pairs starry,scream,matisse,tubingen] [--crop_at 0.3,0.5] [--crop 192]

    # style_gain against content_keep, one point per (setting, pair) row of a TSV
    python docs/make_quality_figures.py plot --table scores.tsv --out docs/quality/tradeoff.png \
        [--title "..."]

`sheets` writes OUT/<pair>.png for each pair whose DIR/<pair>.png exists: photo, painting,
jcjohnson's published result and tfstyle's result at a common height, then a 100 % crop
(pixels as they are, no resampling) of both results from the same relative location.

`plot` reads a TSV with the header `label<TAB>pair<TAB>style_gain<TAB>content_keep`; the
label "jcjohnson" marks the reference points. Each label gets a colour, each pair a marker
shape, jcjohnson a big black star tagged with its pair.
"""

from __future__ import annotations

import argparse
import csv
import math
import pathlib
import sys

from PIL import Image, ImageDraw, ImageFont

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"

# pair -> (photo, painting, jcjohnson's published output), as in ../shared/quality/compare.sh
PAIRS = {
    "starry": ("golden_gate.jpg", "starry_night.jpg", "golden_gate_starry.png"),
    "scream": ("golden_gate.jpg", "the_scream.jpg", "golden_gate_scream.png"),
    "matisse": ("golden_gate.jpg", "woman-with-hat-matisse.jpg", "golden_gate_matisse.png"),
    "tubingen": ("tubingen.jpg", "starry_night.jpg", "tubingen_starry.png"),
}
REFERENCE = "jcjohnson"
COLUMNS = ("label", "pair", "style_gain", "content_keep")


def load_font(size: int):
    """Pillow's bundled font at `size` px; old Pillows (< 10.1) only have the small bitmap."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, OSError):
        return ImageFont.load_default()


def scalable(font) -> bool:
    """Whether the font renders at any size (so supersampled drawing keeps text readable)."""
    return isinstance(font, ImageFont.FreeTypeFont)


def text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def fractions(text: str) -> tuple[float, float]:
    """'x,y' with both in [0, 1], for argparse."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'x,y' fractions, got {text!r}")
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise argparse.ArgumentTypeError(f"fractions must lie in [0, 1], got {text!r}")
    return x, y


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


def pair_sheet(pair: str, result_path: pathlib.Path, shared: pathlib.Path, height: int,
               side: int, at: tuple[float, float]) -> Image.Image:
    photo_name, painting_name, reference_name = PAIRS[pair]
    photo = Image.open(shared / "images" / "content" / photo_name).convert("RGB")
    painting = Image.open(shared / "images" / "style" / painting_name).convert("RGB")
    reference = Image.open(shared / "quality" / "reference" / reference_name).convert("RGB")
    result = Image.open(result_path).convert("RGB")
    # one box per image: same relative place, each at its own native pixels
    ref_box = crop_box(reference.size, at, side)
    out_box = crop_box(result.size, at, side)
    top = [
        (f"photo: {photo_name}", to_height(photo, height)),
        (f"painting: {painting_name}", to_height(painting, height)),
        (f"jcjohnson ({reference.width}x{reference.height})",
         outline_crop(to_height(reference, height), reference.size, ref_box)),
        (f"tfstyle ({result.width}x{result.height})",
         outline_crop(to_height(result, height), result.size, out_box)),
    ]
    bottom = [("jcjohnson, 100 % crop", reference.crop(ref_box)),
              ("tfstyle, 100 % crop", result.crop(out_box))]
    title = f"{pair}: {photo_name} in the style of {painting_name}"
    note = ("100 % crops: each result's own pixels,\nno resampling, from the outlined box\n"
            f"around x={at[0]:.2f}, y={at[1]:.2f} of the image\n"
            "(--crop_at) in both results.")
    return contact_sheet(title, top, bottom, under=[2, 3], note=note)


def run_sheets(args) -> None:
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    unknown = sorted(set(pairs) - set(PAIRS))
    if unknown:
        sys.exit(f"unknown pairs {unknown}: choose from {', '.join(PAIRS)}")
    results, out = pathlib.Path(args.results), pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for pair in pairs:
        result_path = results / f"{pair}.png"
        if not result_path.exists():
            print(f"{pair}: no {result_path}, skipped", file=sys.stderr)
            continue
        sheet = pair_sheet(pair, result_path, pathlib.Path(args.shared), args.height,
                           args.crop, args.crop_at)
        target = out / f"{pair}.png"
        sheet.save(target, optimize=True)
        print(f"{target}  {sheet.width}x{sheet.height}  {target.stat().st_size // 1024} KiB")
        written += 1
    if not written:
        sys.exit(f"no <pair>.png in {results}")


# -------------------------------------------------------------------------- trade-off plot

# matplotlib's tab10 without its grey, so no setting looks like the black reference
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf"]
SHAPES = ["circle", "square", "triangle", "diamond", "triangle_down", "hexagon"]


def read_table(path: pathlib.Path) -> list[dict]:
    """Rows of the TSV with numeric scores; blank and '#' lines are ignored."""
    with open(path, newline="") as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines, delimiter="\t")
    missing = set(COLUMNS) - set(reader.fieldnames or ())
    if missing:
        sys.exit(f"{path}: header lacks {sorted(missing)}; expected {' '.join(COLUMNS)}")
    rows = []
    for row in reader:
        try:
            gain, keep = float(row["style_gain"]), float(row["content_keep"])
        except (TypeError, ValueError):
            print(f"{path}: skipped row without numbers: {row}", file=sys.stderr)
            continue
        if not (math.isfinite(gain) and math.isfinite(keep)):
            print(f"{path}: skipped row with a non-finite score: {row}", file=sys.stderr)
            continue
        rows.append({"label": row["label"].strip(), "pair": row["pair"].strip(),
                     "style_gain": gain, "content_keep": keep})
    if not rows:
        sys.exit(f"{path}: no rows to plot")
    return rows


def first_seen(values) -> list:
    return list(dict.fromkeys(values))


def padded_range(values: list[float], margin: float = 0.08) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    span = max(hi - lo, 0.02)  # a lone point or a flat column still gets a readable axis
    return lo - margin * span, hi + margin * span


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) inside [lo, hi]."""
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    ticks, k = [], 0
    while first + k * step <= hi + 1e-12:
        ticks.append(round(first + k * step, 10))
        k += 1
    return ticks


def tick_label(value: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def marker_points(shape: str, x: float, y: float, r: float) -> list[tuple[float, float]]:
    """Polygon of a marker centred at (x, y), about 2r across."""
    if shape == "square":
        r *= 0.85
        return [(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)]
    if shape == "diamond":
        r *= 1.2
        return [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
    if shape == "star":
        return [(x + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                 y - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5))
                for i in range(10)]
    corners = {"triangle": (3, 0.0), "triangle_down": (3, math.pi), "hexagon": (6, 0.0)}
    n, turn = corners.get(shape, (24, 0.0))  # anything else: a circle
    r *= 1.15 if n == 3 else 1.0
    return [(x + r * math.sin(turn + 2 * math.pi * i / n), y - r * math.cos(turn + 2 * math.pi * i / n))
            for i in range(n)]


def draw_marker(draw, shape: str, x: float, y: float, r: float, fill, outline, width: int) -> None:
    draw.polygon(marker_points(shape, x, y, r), fill=fill, outline=outline, width=width)


class Frame:
    """Maps data coordinates to pixels of the plot area (left, top, right, bottom)."""

    def __init__(self, box, x_range, y_range):
        self.box, self.x_range, self.y_range = box, x_range, y_range

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        left, top, right, bottom = self.box
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return (left + (x - x0) / (x1 - x0) * (right - left),
                bottom - (y - y0) / (y1 - y0) * (bottom - top))


def draw_axes(image, draw, frame: Frame, fonts, s: int, x_name: str, y_name: str) -> None:
    left, top, right, bottom = frame.box
    font, label_font = fonts
    x_ticks, y_ticks = nice_ticks(*frame.x_range), nice_ticks(*frame.y_range)
    for t in x_ticks:
        px, _ = frame(t, frame.y_range[0])
        draw.line([(px, top), (px, bottom)], fill="#e4e4e4", width=s)
        draw.line([(px, bottom), (px, bottom + 5 * s)], fill="black", width=s)
        text = tick_label(t, x_ticks)
        w, _ = text_size(draw, text, font)
        draw.text((px - w / 2, bottom + 8 * s), text, fill="black", font=font)
    for t in y_ticks:
        _, py = frame(frame.x_range[0], t)
        draw.line([(left, py), (right, py)], fill="#e4e4e4", width=s)
        draw.line([(left - 5 * s, py), (left, py)], fill="black", width=s)
        text = tick_label(t, y_ticks)
        w, h = text_size(draw, text, font)
        draw.text((left - 9 * s - w, py - h / 2 - 3 * s), text, fill="black", font=font)
    draw.rectangle([left, top, right, bottom], outline="black", width=s)
    w, _ = text_size(draw, x_name, label_font)
    draw.text(((left + right) / 2 - w / 2, bottom + 32 * s), x_name, fill="black", font=label_font)
    paste_vertical_text(image, y_name, label_font, (14 * s, (top + bottom) / 2))


def paste_vertical_text(image, text: str, font, centre) -> None:
    """Text turned 90 degrees counter-clockwise (ImageDraw writes only horizontally)."""
    probe = ImageDraw.Draw(image)
    _, _, right, bottom = probe.textbbox((0, 0), text, font=font)
    strip = Image.new("RGB", (right + 2, bottom + 2), "white")
    ImageDraw.Draw(strip).text((0, 0), text, fill="black", font=font)
    strip = strip.rotate(90, expand=True)
    image.paste(strip, (round(centre[0] - strip.width / 2), round(centre[1] - strip.height / 2)))


def legend_entries(labels: list[str], pairs: list[str]) -> list[tuple]:
    """(kind, text, colour, shape) rows: settings by colour, then pairs by shape."""
    entries = [("head", "settings", None, None)]
    for label in labels:
        if label == REFERENCE:
            entries.append(("item", "jcjohnson/neural-style", "black", "star"))
        else:
            entries.append(("item", label, colour_of(label, labels), "circle"))
    entries.append(("gap", "", None, None))
    entries.append(("head", "pairs", None, None))
    for pair in pairs:
        entries.append(("item", pair, "#9a9a9a", shape_of(pair, pairs)))
    return entries


def colour_of(label: str, labels: list[str]) -> str:
    settings = [l for l in labels if l != REFERENCE]
    return COLOURS[settings.index(label) % len(COLOURS)]


def shape_of(pair: str, pairs: list[str]) -> str:
    return SHAPES[pairs.index(pair) % len(SHAPES)]


def legend_width(draw, entries, font, head_font, s: int) -> int:
    widths = [text_size(draw, text, head_font if kind == "head" else font)[0]
              for kind, text, _, _ in entries]
    return max(widths) + 30 * s


def fit_text(draw, text: str, font, max_width: float) -> str:
    """The text, shortened with an ellipsis if wider than max_width (a long flag list)."""
    if text_size(draw, text, font)[0] <= max_width:
        return text
    while text and text_size(draw, text + "...", font)[0] > max_width:
        text = text[:-1]
    return text + "..."


def draw_legend(draw, entries, at, fonts, s: int, max_width: float) -> None:
    font, head_font = fonts
    x, y = at
    for kind, text, colour, shape in entries:
        if kind == "head":
            draw.text((x, y), text, fill="black", font=head_font)
        elif kind == "item":
            big = shape == "star"
            draw_marker(draw, shape, x + 8 * s, y + 8 * s, (8 if big else 5.5) * s, colour,
                        "white" if big else "black", s)
            draw.text((x + 22 * s, y), fit_text(draw, text, font, max_width - 22 * s),
                      fill="black", font=font)
        y += (10 if kind == "gap" else 22) * s


def draw_points(draw, rows, frame: Frame, labels, pairs, font, s: int) -> None:
    # settings first, jcjohnson last, so the reference stars are never hidden
    for row in sorted(rows, key=lambda r: r["label"] == REFERENCE):
        px, py = frame(row["content_keep"], row["style_gain"])
        if row["label"] == REFERENCE:
            draw_marker(draw, "star", px, py, 12 * s, "black", "white", s)
            draw.text((px + 12 * s, py - 18 * s), row["pair"], fill="black", font=font)
        else:
            draw_marker(draw, shape_of(row["pair"], pairs), px, py, 6 * s,
                        colour_of(row["label"], labels), "black", s)


def tradeoff_plot(rows: list[dict], title: str, size: tuple[int, int]) -> Image.Image:
    probe = load_font(14)
    # draw at twice the size and shrink: Pillow does not antialias lines and polygons
    s = 2 if scalable(probe) else 1
    font, small, big = load_font(13 * s), load_font(12 * s), load_font(15 * s)
    width, height = size[0] * s, size[1] * s
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    labels = first_seen(r["label"] for r in rows)
    pairs = first_seen(r["pair"] for r in rows)
    entries = legend_entries(labels, pairs)
    legend_w = min(legend_width(draw, entries, font, big, s), width // 3)
    box = (78 * s, 48 * s, width - legend_w - 34 * s, height - 62 * s)
    frame = Frame(box, padded_range([r["content_keep"] for r in rows]),
                  padded_range([r["style_gain"] for r in rows]))
    w, _ = text_size(draw, title, big)
    draw.text((max(8 * s, (width - w) / 2), 14 * s), title, fill="black", font=big)
    draw_axes(image, draw, frame, (font, big), s, "content_keep", "style_gain")
    draw_points(draw, rows, frame, labels, pairs, small, s)
    draw_legend(draw, entries, (box[2] + 20 * s, box[1]), (font, big), s,
                max_width=width - box[2] - 28 * s)
    return image.resize(size, Image.LANCZOS) if s > 1 else image


def run_plot(args) -> None:
    rows = read_table(pathlib.Path(args.table))
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tradeoff_plot(rows, args.title, (args.width, args.height)).save(out, optimize=True)
    print(f"{out}  {len(rows)} points  {out.stat().st_size // 1024} KiB")


# --------------------------------------------------------------------------------- CLI


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    jobs = parser.add_subparsers(dest="job", required=True)
    sheets = jobs.add_parser("sheets", help="one contact sheet per pair")
    sheets.add_argument("--results", required=True, help="folder with <pair>.png from compare.sh")
    sheets.add_argument("--out", default="docs/quality", help="folder for <pair>.png sheets")
    sheets.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated pair keys")
    sheets.add_argument("--height", type=int, default=256, help="height of the top-row panels")
    sheets.add_argument("--crop", type=int, default=192, help="side of the 100 %% crops in px")
    sheets.add_argument("--crop_at", type=fractions, default=(0.3, 0.5),
                        help="centre of the crops as x,y fractions of width and height")
    sheets.add_argument("--shared", default=str(SHARED),
                        help="the shared folder holding images/ and quality/reference/")
    sheets.set_defaults(run=run_sheets)
    plot = jobs.add_parser("plot", help="style_gain vs content_keep scatter plot")
    plot.add_argument("--table", required=True, help="TSV: label pair style_gain content_keep")
    plot.add_argument("--out", default="docs/quality/tradeoff.png")
    plot.add_argument("--title",
                      default="style_gain vs content_keep at 512 px (higher is better on both)")
    plot.add_argument("--width", type=int, default=900)
    plot.add_argument("--height", type=int, default=650)
    plot.set_defaults(run=run_plot)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    arguments.run(arguments)
