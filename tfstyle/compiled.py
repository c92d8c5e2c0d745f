"""The library's ``tf.function`` s: the core's tensor functions, traced once per setting
and once for every image size.

Tensors in and out, not variables: a trace reused for a variable of another shape would
read the variable it was traced with. No AutoGraph: the core's loops and branches are
``tf.while_loop`` and ``tf.cond`` already (the export's endpoints, which Keras traces
without it, run the same code), and converting its Python would only slow the first
trace (BENCHMARKS.md, "Tracing").
"""

from __future__ import annotations

import hashlib

import numpy as np
import tensorflow as tf

from tfstyle import core
from tfstyle.losses import Targets, join_targets

# Style targets kept by ``Compiled.targets``: one per stage of a run, and a few more.
_STYLES_KEPT = 8
_STYLES_BYTES = 64 << 20


class Compiled:
    """A cache of the step chunk, the style targets and the evaluation, keyed by what
    their graphs depend on: so a folder of images with one setting traces once.

    Args:
      model: the ``core.StyleModel`` they run.
      jit_compile: compile the step chunk with XLA.
    """

    def __init__(self, model: core.StyleModel, jit_compile: bool = False):
        self.model = model
        self.jit_compile = bool(jit_compile)
        self._cache = {}
        self._styles = {}  # the style targets last used, by Compiled.targets

    def functions(self, loss, optimizer, options, tiling=None) -> dict:
        """{"chunk", "content_targets", "style_targets", "evaluate"}: ``AnySizeFunction`` s
        for one setting.

        chunk(image, state, targets, n) -> (image, state, terms, finite): ``n`` steps of
        ``core.optimize``. content_targets(content) -> ContentTargets and
        style_targets(content, styles, blend_weights, masks) -> StyleTargets: the two
        parts of the targets (``Compiled.targets`` joins them). evaluate(image, targets) ->
        LossTerms of the image as it stands.
        """
        key = (options.loss_weights(), options.temporal_loss_weight(), optimizer.name,
               optimizer.learning_rate,
               getattr(optimizer, "history", None), options.style_loss, tiling)
        if key not in self._cache:
            self._cache[key] = self._trace(loss, optimizer, tiling)
        return self._cache[key]

    def traces(self) -> int:
        """How many times TensorFlow has traced these functions so far (all settings)."""
        return sum(f.function.experimental_get_tracing_count()
                   for fns in self._cache.values() for f in fns.values())

    def _trace(self, loss, optimizer, tiling):
        model = self.model
        step = model.make_step(loss, optimizer, tiling)

        @tf.function(jit_compile=self.jit_compile, autograph=False)
        def chunk(image, state, targets, n):
            new_image, new_state, terms = core.optimize(step, image, state, targets, n)
            return new_image, new_state, terms, tf.math.is_finite(terms.total)

        @tf.function(autograph=False)
        def content_targets(content):
            return model.content_targets(loss, content, tiling)

        @tf.function(autograph=False)
        def style_targets(content, styles, blend_weights, masks):
            return model.style_targets(loss, content, styles, blend_weights, masks, tiling)

        @tf.function(autograph=False)
        def evaluate(image, targets):
            return model.evaluate(loss, image, targets, tiling)

        return {"chunk": AnySizeFunction(chunk),
                "content_targets": AnySizeFunction(content_targets),
                "style_targets": AnySizeFunction(style_targets),
                "evaluate": AnySizeFunction(evaluate)}

    def targets(self, functions: dict, content, styles, blend_weights, masks) -> Targets:
        """The targets of one stage, with ``functions`` (what ``functions()`` gave): the
        content part computed each call, the style part once per (setting, output's
        longest side, styles' and masks' pixels, blend weights) while it is among the
        last few used. So the frames of a clip, or a folder's photos of one size, run
        the styles through the network once per stage.

        content: (1, H, W, 3) float32 tensor; styles: (h, w, 3) float32 arrays, masks:
        (1, H, W, 1) float32 arrays; blend_weights: a float32 vector tensor.
        """
        # The output's longest side decides whether the styles run tile by tile; the
        # masks, which have the output's shape, are in the digest.
        key = (id(functions), max(content.shape[1:3]), _digest(styles, masks, blend_weights))
        style = self._styles.pop(key, None)
        if style is None:
            style = functions["style_targets"](
                content, tuple(tf.constant(s[None]) for s in styles), blend_weights,
                tuple(tf.constant(m) for m in masks))
        self._styles[key] = style  # most recently used last
        # Grams are small, but masks are the output's size: the last entry always stays.
        while len(self._styles) > 1 and (len(self._styles) > _STYLES_KEPT or sum(
                _bytes(v) for v in self._styles.values()) > _STYLES_BYTES):
            self._styles.pop(next(iter(self._styles)))
        return join_targets(functions["content_targets"](content), style)


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
