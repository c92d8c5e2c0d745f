"""Where a run starts: the default start takes the painting's colours and strokes, and
none of its composition (the "ghost" of its layout in the picture)."""

import numpy as np
import pytest

from conftest import synthetic_image
from tfstyle import RunOptions

SIZE = 96


def _painting_with_a_dark_disc(height=72, width=96, seed=0):
    """A light field of fine strokes with one strong shape: a dark disc, off centre."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    strokes = np.sin(0.9 * x + 2.0 * np.sin(0.35 * y)) + 0.5 * rng.normal(size=(height, width))
    field = 200 + 18 * strokes
    disc = (y - 0.35 * height) ** 2 + (x - 0.7 * width) ** 2 < (0.25 * height) ** 2
    image = np.where(disc, 40 + 12 * strokes, field)
    tint = np.array([1.0, 0.9, 0.75])
    return np.clip(image[..., None] * tint, 0, 255).astype(np.uint8), disc


def _coarse_lightness(image, cells=(6, 8)):
    """Mean lightness (the mean of RGB) over a grid of cells, flattened."""
    grey = np.asarray(image, np.float64).mean(-1) if np.ndim(image) == 3 else np.asarray(
        image, np.float64)
    h, w = grey.shape
    rows, cols = cells
    return np.array([[grey[i * h // rows:(i + 1) * h // rows,
                           j * w // cols:(j + 1) * w // cols].mean()
                      for j in range(cols)] for i in range(rows)]).ravel()


def _partial_correlation(result, painting, photo):
    """Correlation of result and painting once the linear part the photo explains is
    taken out of both (as ``../shared/quality``'s ghost measure, on coarse cells)."""
    basis = np.stack([np.ones_like(photo), photo], 1)

    def residual(v):
        return v - basis @ np.linalg.lstsq(basis, v, rcond=None)[0]

    r, s = residual(result), residual(painting)
    return float(r @ s / np.sqrt((r @ r) * (s @ s)))


CELLS = (12, 16)


def _follows_the_disc(stylizer, photo, painting, disc, **options):
    """How much more a short staged run's picture follows the painting's dark disc where
    it stands than where the mirrored painting has it: the partial correlation (given
    the photo) of the picture's coarse lightness with the disc, from the painting, minus
    the same from the painting mirrored left to right. A position-free run paints both
    alike, so whatever the photo and the strokes happen to share with the disc's place
    cancels out, and only a copied layout is left."""
    disc_map = -_coarse_lightness(disc.astype(np.float64), CELLS)
    photo_map = _coarse_lightness(photo, CELLS)
    run = RunOptions(size=SIZE, steps=24, stage_size=48, seed=3, **options)
    here, mirrored = (_partial_correlation(_coarse_lightness(
        stylizer.stylize(photo, p, run).image, CELLS), disc_map, photo_map)
        for p in (painting, painting[:, ::-1]))
    return here - mirrored


def test_a_short_default_run_carries_no_layout_from_the_painting(stylizer):
    photo = synthetic_image(11, 72, 96)
    painting, disc = _painting_with_a_dark_disc()
    # The blend start lays the dark disc over the picture, and the run keeps it ...
    assert _follows_the_disc(stylizer, photo, painting, disc, init="blend") > 0.6
    # ... the default start has the painting's strokes and colours, not its disc.
    assert abs(_follows_the_disc(stylizer, photo, painting, disc)) < 0.15
