"""The feature-model flags, shared by the ``tfstyle`` and ``tfstyle-export`` commands.

Both programs build the same ``Stylizer`` from the same flags; defining and reading them
in one place keeps their names, defaults and checks the same.
"""

from __future__ import annotations

from absl import flags

from tfstyle.errors import ConfigError
from tfstyle.options import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

flags.DEFINE_string("weights", "imagenet",
                    "VGG weights: imagenet (Keras download and cache), the path of a local "
                    ".h5/.weights.h5 file, or none (random; for tests only).")
flags.DEFINE_enum("backbone", "vgg19", ["vgg19", "vgg16"], "VGG variant.")
flags.DEFINE_enum("pooling", "max", ["max", "avg"], "Pooling; the paper prefers avg.")
flags.DEFINE_list("content_layers", list(DEFAULT_CONTENT_LAYERS),
                  "Content layers: conv4_2 / relu4_2 / block4_conv2 style names.")
flags.DEFINE_list("style_layers", list(DEFAULT_STYLE_LAYERS), "Style layers.")
flags.DEFINE_list("style_layer_weights", None,
                  "One weight per style layer; default each a quarter of the one before, summing to 1.")

flags.DEFINE_list("content_edge_powers", None,
                  "Per content layer (or one for all), the power g >= 0 of the content "
                  "term's weight on the photo's edges: 0 (default) weighs every position "
                  "alike, as the paper; above 0 the photo's flat regions hold the "
                  "painting less and its edges more.")

FLAGS = flags.FLAGS


def model_options() -> dict:
    """The flags as ``Stylizer`` / ``export_model`` keyword arguments.

    Raises:
      ConfigError: a --style_layer_weights or --content_edge_powers entry is not a
        number.
    """
    weights = None if FLAGS.weights.strip().lower() == "none" else FLAGS.weights
    return {"backbone": FLAGS.backbone, "pooling": FLAGS.pooling, "weights": weights,
            "content_layers": FLAGS.content_layers, "style_layers": FLAGS.style_layers,
            "style_layer_weights": _numbers("style_layer_weights"),
            "content_edge_powers": _numbers("content_edge_powers")}


def _numbers(name):
    """A list flag's entries as floats, or None where it is unset."""
    try:
        return [float(v) for v in FLAGS[name].value] if FLAGS[name].value else None
    except ValueError as e:
        raise ConfigError(f"--{name} must be numbers: {e}") from None
