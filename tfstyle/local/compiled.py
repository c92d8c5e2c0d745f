"""The library's ``tf.function`` s: the core's tensor functions, traced once per setting
and once for every image size.

Tensors in and out, not variables: a trace reused for a variable of another shape would
read the variable it was traced with. No AutoGraph: the core's loops and branches are
``tf.while_loop`` and ``tf.cond`` already (the export's endpoints, which Keras traces
without it, run the same code), and converting its Python would only slow the first
trace (BENCHMARKS.md, "Preview": tracing without AutoGraph).
"""

from __future__ import annotations

import hashlib

import numpy as np
import tensorflow as tf

from tfstyle.core import stages
from tfstyle.core.losses import Targets, join_targets
from tfstyle.core.model import StyleModel

# Style targets kept by ``Compiled._targets``: one per stage of a run, and a few more.
_STYLES_KEPT = 8
_STYLES_BYTES = 64 << 20


class Compiled:
    """The core's ``StageFunctions``, traced once per setting (what their graphs depend
    on: the loss's weights and kind, the optimiser, the tiling), so a folder of images
    with one setting traces once; and the style targets of the last few stages.

    Args:
      model: the ``StyleModel`` they run.
      jit_compile: compile the step loop with XLA.
    """

    def __init__(self, model: StyleModel, jit_compile: bool = False):
        self.model = model
        self.jit_compile = bool(jit_compile)
        self._cache = {}
        self._traced = []  # every AnySizeFunction, for traces()
        self._styles = {}  # the style targets last used, by _targets

    def functions(self, loss, optimizer, tiling=None) -> stages.StageFunctions:
        """``stages.stage_functions`` of ``loss``, ``optimizer`` and ``tiling`` as
        ``AnySizeFunction`` s, traced once for this setting (``stages.prepare_stage``
        takes this method as its ``functions``). Their ``targets`` computes the content
        part each call and keeps the style part (``_targets``)."""
        key = (loss.content_weight, loss.style_weight, loss.tv_weight, loss.temporal_weight,
               loss.style_loss, optimizer.name, optimizer.learning_rate,
               getattr(optimizer, "history", None), tiling)
        if key not in self._cache:
            self._cache[key] = self._trace(key, loss, optimizer, tiling)
        return self._cache[key]

    def traces(self) -> int:
        """How many times TensorFlow has traced these functions so far (all settings)."""
        return sum(f.function.experimental_get_tracing_count() for f in self._traced)

    def _trace(self, key, loss, optimizer, tiling) -> stages.StageFunctions:
        model = self.model
        plain = stages.stage_functions(model, loss, optimizer, tiling)

        def content_targets(content):
            return model.content_targets(loss, content, tiling)

        def style_targets(content, styles, blend_weights, masks):
            return model.style_targets(loss, content, styles, blend_weights, masks, tiling)

        # The targets in two parts, so that _targets can keep the style part.
        traced = [AnySizeFunction(tf.function(fn, jit_compile=jit, autograph=False))
                  for fn, jit in ((content_targets, False), (style_targets, False),
                                  (plain.optimize, self.jit_compile),
                                  (plain.evaluate, False))]
        self._traced += traced
        content_fn, style_fn, optimize, evaluate = traced

        def targets(content, styles, blend_weights, masks):
            return self._targets(key, content_fn, style_fn, content, styles, blend_weights,
                                 masks)

        return stages.StageFunctions(targets, optimize, evaluate)

    def _targets(self, key, content_fn, style_fn, content, styles, blend_weights,
                 masks) -> Targets:
        """The targets of one stage: the content part computed each call, the style
        part once per (setting, output's longest side, styles' and masks' pixels, blend
        weights) while it is among the last few used. So the frames of a clip, or a
        folder's photos of one size, run the styles through the network once per stage.

        content: (1, H, W, 3) float32; styles: per style (h, w, 3) float32, masks:
        (1, H, W, 1) float32; blend_weights: a float32 vector.
        """
        # The output's longest side decides whether the styles run tile by tile; the
        # masks, which have the output's shape, are in the digest.
        key = (key, max(content.shape[1:3]), _digest(styles, masks, blend_weights))
        style = self._styles.pop(key, None)
        if style is None:
            style = style_fn(content, tuple(s[None] for s in styles), blend_weights,
                             tuple(masks))
        self._styles[key] = style  # most recently used last
        # Grams are small, but masks are the output's size: the last entry always stays.
        while len(self._styles) > 1 and (len(self._styles) > _STYLES_KEPT or sum(
                _bytes(v) for v in self._styles.values()) > _STYLES_BYTES):
            self._styles.pop(next(iter(self._styles)))
        return join_targets(content_fn(content), style)


def _bytes(nest) -> int:
    return sum(int(np.prod(t.shape)) * t.dtype.size for t in tf.nest.flatten(nest))


def _digest(styles, masks, blend_weights) -> str:
    """A hash of the arrays the style targets are computed from."""
    digest = hashlib.sha256()
    for array in [*styles, *masks, np.asarray(blend_weights)]:
        array = np.ascontiguousarray(array)
        digest.update(repr((array.shape, array.dtype.str)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class AnySizeFunction:
    """Calls a ``tf.function`` through one trace for every image size.

    Each argument's height and width (and every length that follows from them) are
    left unknown in the trace. So a folder of images of different sizes costs one
    trace, and the library runs the very graph the exported SavedModel runs (whose
    inputs have unknown sizes): a trace specialised to one shape lets Grappler fold
    and fuse differently, which changes the last bits of the result.
    """

    def __init__(self, function):
        self.function = function
        self._concrete = {}

    def __call__(self, *args):
        specs = tf.nest.map_structure(_any_size_spec, args)
        key = repr(specs)
        if key not in self._concrete:
            self._concrete[key] = self.function.get_concrete_function(*specs)
        return self._concrete[key](*args)


def _any_size_spec(value):
    value = tf.convert_to_tensor(value)
    shape = value.shape
    if shape.rank == 4:  # images and feature maps: batch and channels stay known
        shape = [shape[0], None, None, shape[3]]
    else:  # Gram matrices, optimiser state vectors, scalars
        shape = [None] * shape.rank
    return tf.TensorSpec(shape, value.dtype)
