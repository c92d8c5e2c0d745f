"""Draws the measures of a TSV against each other: the trade-off plots (``make_quality_figures.py
plot`` is its command line; the layout of the TSV is described there).

Pillow alone (no matplotlib): points, reference stars, a legend and axes, drawn at twice the
size and shrunk, since Pillow does not antialias lines and polygons.
"""

from __future__ import annotations

import csv
import math
import pathlib
import sys

from PIL import Image, ImageDraw, ImageFont

# TSV label of a reference implementation -> how figures name it
REFERENCES = {"jcjohnson": "jcjohnson/neural-style", "neural-style-tf": "cysmith/neural-style-tf"}
REQUIRED = ("label", "pair")


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


# -------------------------------------------------------------------------- trade-off plot

# matplotlib's tab10 without its grey, so no setting looks like the black reference
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf"]
SHAPES = ["circle", "square", "triangle", "diamond", "triangle_down", "hexagon"]
# reference label -> (fill, outline) of its big star: black for one, white for the other, so
# the two stay apart even in greyscale print
REFERENCE_STARS = {"jcjohnson": ("black", "white"), "neural-style-tf": ("white", "black")}


def number(text) -> float | None:
    """The cell as a finite float, or None (empty, not a number, nan or inf)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_table(path: pathlib.Path, columns: list[str]) -> list[dict]:
    """Rows of the TSV as {label, pair, strength, values: {column: float or None}} for the
    plotted `columns`; blank and '#' lines are ignored."""
    with open(path, newline="") as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines, delimiter="\t")
    header = set(reader.fieldnames or ())
    missing = [c for c in dict.fromkeys(REQUIRED + tuple(columns)) if c not in header]
    if missing:
        sys.exit(f"{path}: header lacks {missing}; it has {' '.join(reader.fieldnames or ())}")
    rows = [{"label": (row["label"] or "").strip(), "pair": (row["pair"] or "").strip(),
             "strength": (row.get("strength") or "").strip(),
             "values": {c: number(row[c]) for c in columns}}
            for row in reader]
    if not rows:
        sys.exit(f"{path}: no rows to plot")
    return rows


def panel_rows(rows: list[dict], x: str, y: str, path) -> list[dict]:
    """The rows with a number in both columns; each other row is named on stderr."""
    kept = []
    for row in rows:
        if row["values"][x] is None or row["values"][y] is None:
            print(f"{path}: {y} vs {x}: skipped row without numbers in both: "
                  f"{row['label']!r} {row['pair']!r}", file=sys.stderr)
        else:
            kept.append(row)
    if not kept:
        sys.exit(f"{path}: no row has numbers in both {x} and {y}")
    return kept


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


def draw_reference_star(draw, label: str, x: float, y: float, r: float, s: int) -> None:
    fill, outline = REFERENCE_STARS.get(label, ("black", "white"))
    # the white star needs a heavier outline to stand out from the white plot area
    draw_marker(draw, "star", x, y, r, fill, outline, 2 * s if fill == "white" else s)


def haloed_text(draw, at, text: str, font, s: int) -> None:
    """Text with a white halo, readable where it crosses a marker, a line or the grid."""
    draw.text(at, text, fill="black", font=font, stroke_width=2 * s, stroke_fill="white")


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
    paste_vertical_text(image, y_name, label_font, (left - 64 * s, (top + bottom) / 2))


def paste_vertical_text(image, text: str, font, centre) -> None:
    """Text turned 90 degrees counter-clockwise (ImageDraw writes only horizontally)."""
    probe = ImageDraw.Draw(image)
    _, _, right, bottom = probe.textbbox((0, 0), text, font=font)
    strip = Image.new("RGB", (right + 2, bottom + 2), "white")
    ImageDraw.Draw(strip).text((0, 0), text, fill="black", font=font)
    strip = strip.rotate(90, expand=True)
    image.paste(strip, (round(centre[0] - strip.width / 2), round(centre[1] - strip.height / 2)))


def legend_entries(rows: list[dict], labels: list[str], pairs: list[str]) -> list[tuple]:
    """(kind, text, colour, shape) rows: settings by colour, published results by star,
    then pairs by shape. kind "curve" is a setting drawn as a line; for "ref" the colour slot
    holds the reference's label."""
    entries = [("head", "settings", None, None)]
    for label in labels:
        if label not in REFERENCES:
            # several rows for one pair: a sweep, drawn as a line on the plot and here
            seen = [r["pair"] for r in rows if r["label"] == label]
            kind = "curve" if len(seen) > len(set(seen)) else "item"
            entries.append((kind, label, colour_of(label, labels), "circle"))
    published = [label for label in labels if label in REFERENCES]
    if published:
        entries += [("gap", "", None, None), ("head", "published", None, None)]
        entries += [("ref", REFERENCES[label], label, "star") for label in published]
    entries += [("gap", "", None, None), ("head", "pairs", None, None)]
    entries += [("item", pair, "#9a9a9a", shape_of(pair, pairs)) for pair in pairs]
    if any(r["strength"] for r in rows):
        entries += [("gap", "", None, None), ("note", "numbers at points: strength", None, None)]
    return entries


def colour_of(label: str, labels: list[str]) -> str:
    settings = [l for l in labels if l not in REFERENCES]
    return COLOURS[settings.index(label) % len(COLOURS)]


def shape_of(pair: str, pairs: list[str]) -> str:
    return SHAPES[pairs.index(pair) % len(SHAPES)]


LEGEND_STEP = {"gap": 10, "head": 22}  # px per entry before supersampling; others 20


def legend_size(draw, entries, font, head_font, s: int) -> tuple[int, int]:
    widths = [text_size(draw, text, head_font if kind == "head" else font)[0]
              for kind, text, _, _ in entries]
    return max(widths) + 30 * s, sum(LEGEND_STEP.get(kind, 20) * s for kind, *_ in entries)


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
        cx, cy = x + 8 * s, y + 8 * s
        if kind == "head":
            draw.text((x, y), text, fill="black", font=head_font)
        elif kind == "note":
            draw.text((x, y), fit_text(draw, text, font, max_width), fill="#444444", font=font)
        elif kind == "ref":
            draw_reference_star(draw, colour, cx, cy, 9 * s, s)
        elif kind in ("item", "curve"):
            if kind == "curve":  # a stroke through the marker, as on the plot
                draw.line([(cx - 9 * s, cy), (cx + 9 * s, cy)], fill=colour, width=2 * s)
            draw_marker(draw, shape, cx, cy, 5.5 * s, colour, "black", s)
        if kind in ("item", "curve", "ref"):
            draw.text((x + 22 * s, y), fit_text(draw, text, font, max_width - 22 * s),
                      fill="black", font=font)
        y += LEGEND_STEP.get(kind, 20) * s


def draw_points(draw, rows, frame: Frame, columns, labels, pairs, font, s: int) -> None:
    """Lines of the sweeps, then the settings' markers, the references last (so a reference
    star is never hidden), then the text: strengths and the references' pair tags."""
    x, y = columns
    at = [frame(r["values"][x], r["values"][y]) for r in rows]
    settings = [(r, p) for r, p in zip(rows, at) if r["label"] not in REFERENCES]
    references = [(r, p) for r, p in zip(rows, at) if r["label"] in REFERENCES]
    sweeps: dict[tuple[str, str], list] = {}
    for row, point in settings:  # file order, so a sweep is joined in the order it was run
        sweeps.setdefault((row["label"], row["pair"]), []).append(point)
    for (label, _), points in sweeps.items():
        if len(points) > 1:
            draw.line(points, fill=colour_of(label, labels), width=2 * s, joint="curve")
    for row, (px, py) in settings:
        draw_marker(draw, shape_of(row["pair"], pairs), px, py, 6 * s,
                    colour_of(row["label"], labels), "black", s)
    for row, (px, py) in references:
        draw_reference_star(draw, row["label"], px, py, 12 * s, s)
    # markers are obstacles for text; each placed text becomes one for the next
    taken = [(px - 7 * s, py - 7 * s, px + 7 * s, py + 7 * s) for _, (px, py) in settings]
    taken += [(px - 12 * s, py - 12 * s, px + 12 * s, py + 12 * s) for _, (px, py) in references]
    for points in sweeps.values():  # and so are the sweeps' lines, sampled along each segment
        for (ax, ay), (bx, by) in zip(points, points[1:]):
            taken += [(ax + (bx - ax) * k / 8 - 2 * s, ay + (by - ay) * k / 8 - 2 * s,
                       ax + (bx - ax) * k / 8 + 2 * s, ay + (by - ay) * k / 8 + 2 * s)
                      for k in range(1, 8)]
    texts = [(r["pair"], p, 13) for r, p in references]
    texts += [(r["strength"], p, 7) for r, p in settings if r["strength"]]
    for text, (px, py), gap in texts:
        origin, box = place_text(draw, text, font, (px, py), gap * s, taken, frame.box)
        taken.append(box)
        haloed_text(draw, origin, text, font, s)


def place_text(draw, text: str, font, point, gap: float, taken: list, area) -> tuple:
    """(where to draw, box covered) for a text beside `point` (right, left, above or below it,
    `gap` away) that overlaps the fewest pixels of the `taken` boxes, preferring one inside
    the plot `area`."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top
    px, py = point
    spots = [(px + gap, py - h - gap / 2), (px + gap, py + gap / 2),
             (px - gap - w, py - h - gap / 2), (px - gap - w, py + gap / 2),
             (px - w / 2, py - gap - h - 2), (px - w / 2, py + gap)]

    def cost(spot):
        x0, y0, x1, y1 = spot[0], spot[1], spot[0] + w, spot[1] + h
        overlap = sum(max(0, min(x1, b[2]) - max(x0, b[0]))
                      * max(0, min(y1, b[3]) - max(y0, b[1])) for b in taken)
        outside = x0 < area[0] or y0 < area[1] or x1 > area[2] or y1 > area[3]
        return overlap + (w * h if outside else 0)

    x, y = min(spots, key=cost)  # the first of equals: right and above, as before
    return (x - left, y - top), (x, y, x + w, y + h)


def draw_panel(image, draw, rows, columns, slot, fonts, labels, pairs, s: int) -> None:
    """One scatter of columns = (x, y) inside slot = (left, top, right, bottom)."""
    font, small, big = fonts
    x, y = columns
    box = (slot[0] + 78 * s, slot[1] + 30 * s, slot[2] - 20 * s, slot[3] - 62 * s)
    frame = Frame(box, padded_range([r["values"][x] for r in rows]),
                  padded_range([r["values"][y] for r in rows]))
    title = fit_text(draw, f"{y} vs {x} (higher is better on both)", big, slot[2] - slot[0])
    w, _ = text_size(draw, title, big)
    draw.text(((box[0] + box[2]) / 2 - w / 2, slot[1] + 4 * s), title, fill="black", font=big)
    draw_axes(image, draw, frame, (font, big), s, x, y)
    draw_points(draw, rows, frame, columns, labels, pairs, small, s)


def tradeoff_plot(rows: list[dict], panels: list[tuple[list[dict], tuple[str, str]]],
                  title: str, size: tuple[int, int]) -> Image.Image:
    """panels: (rows, (x, y)) each, drawn left to right, with one legend at the right for
    `rows`, those of all panels."""
    probe = load_font(14)
    # draw at twice the size and shrink: Pillow does not antialias lines and polygons
    s = 2 if scalable(probe) else 1
    font, small, big = load_font(13 * s), load_font(12 * s), load_font(15 * s)
    labels, pairs = first_seen(r["label"] for r in rows), first_seen(r["pair"] for r in rows)
    probe_draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    entries = legend_entries(rows, labels, pairs)
    legend_w, legend_h = legend_size(probe_draw, entries, font, big, s)
    legend_w = min(legend_w, size[0] * s // 3)
    top = (40 if title else 14) * s
    # a long legend makes the image taller rather than running off its bottom
    width, height = size[0] * s, max(size[1] * s, top + 30 * s + legend_h + 10 * s)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    if title:
        w, _ = text_size(draw, title, big)
        draw.text((max(8 * s, (width - w) / 2), 12 * s), title, fill="black", font=big)
    plots_right = width - legend_w - 24 * s
    slot_w = plots_right / len(panels)
    for i, (panel, columns) in enumerate(panels):
        slot = (i * slot_w, top, (i + 1) * slot_w, height)
        draw_panel(image, draw, panel, columns, slot, (font, small, big), labels, pairs, s)
    draw_legend(draw, entries, (plots_right + 12 * s, top + 30 * s), (font, big), s,
                max_width=width - plots_right - 20 * s)
    image = image.resize((size[0], height // s), Image.LANCZOS) if s > 1 else image
    return image


def run_plot(args) -> None:
    panels = args.panels or [(args.x, args.y)]
    path = pathlib.Path(args.table)
    rows = read_table(path, first_seen(c for pair in panels for c in pair))
    plotted = [(panel_rows(rows, x, y, path), (x, y)) for x, y in panels]
    shown = {id(r) for kept, _ in plotted for r in kept}
    rows = [r for r in rows if id(r) in shown]  # the legend names only what is drawn
    width = args.width or 900 + 600 * (len(panels) - 1)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tradeoff_plot(rows, plotted, args.title, (width, args.height)).save(out, optimize=True)
    counts = ", ".join(f"{len(r)} in {y} vs {x}" for r, (x, y) in plotted)
    print(f"{out}  points: {counts}  {out.stat().st_size // 1024} KiB")


# --------------------------------------------------------------------------------- CLI
