"""tfstyle: neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) with TensorFlow and Keras.

    import tfstyle
    image = tfstyle.stylize("photo.jpg", "painting.jpg", size=512, steps=500)  # uint8 (H, W, 3)

    stylizer = tfstyle.Stylizer(weights="imagenet")   # build the VGG19 once...
    for path in paths:                                # ...and reuse it
        result = stylizer.stylize(path, "painting.jpg", steps=300)

Importing tfstyle sets ``TF_CPU_ALLOCATOR_USE_BFC=1`` unless the environment sets it:
TensorFlow's pooling allocator, which spares CPU steps from re-faulting their feature
maps' memory every step (``tfstyle.allocator`` says why; the time it saves:
BENCHMARKS.md, "Allocator"). Import tfstyle before running TensorFlow ops for it to
apply.
"""

import importlib

from tfstyle import allocator

# Before TensorFlow's first op, which fixes its CPU allocator (tfstyle.allocator says why).
allocator.prefer_bfc()

from tfstyle.errors import ConfigError, ImageError, NumericalError, TfstyleError, WeightsError
from tfstyle.options import RunOptions

__version__ = "0.1.0"

# TensorFlow takes seconds to import; the names that need it load on first use, so
# that `tfstyle.image_io` and the CLI's input checks answer at once.
_LAZY = {"stylize": "tfstyle.local.stylizer", "Stylizer": "tfstyle.local.stylizer",
         "Progress": "tfstyle.local.stylizer", "Result": "tfstyle.local.stylizer",
         "TFServingClient": "tfstyle.serving.client", "ServingError": "tfstyle.serving.client",
         "VideoOptions": "tfstyle.video.frames", "stylize_frames": "tfstyle.video.frames"}

__all__ = ["stylize", "Stylizer", "RunOptions", "Progress", "Result", "TFServingClient",
           "TfstyleError", "ImageError", "ConfigError", "WeightsError", "NumericalError",
           "ServingError", "VideoOptions", "stylize_frames"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfstyle' has no attribute {name!r}")
