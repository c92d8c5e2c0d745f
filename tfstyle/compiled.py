"""The library's ``tf.function`` s: the core's tensor functions, traced once per setting
and once for every image size.

Tensors in and out, not variables: a trace reused for a variable of another shape would
read the variable it was traced with. No AutoGraph: the core's loops and branches are
``tf.while_loop`` and ``tf.cond`` already (the export's endpoints, which Keras traces
without it, run the same code), and converting its Python would only slow the first
trace (BENCHMARKS.md, "Tracing").
"""

from __future__ import annotations

import tensorflow as tf

from tfstyle import core


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

    def functions(self, loss, optimizer, options, tiling=None) -> dict:
        """{"chunk", "targets", "evaluate"}: ``AnySizeFunction`` s for one setting.

        chunk(image, state, targets, n) -> (image, state, terms, finite): ``n`` steps of
        ``core.optimize``. targets(content, styles, blend_weights, masks) -> Targets.
        evaluate(image, targets) -> LossTerms of the image as it stands.
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
        def targets(content, styles, blend_weights, masks):
            return model.compute_targets(loss, content, styles, blend_weights, masks, tiling)

        @tf.function(autograph=False)
        def evaluate(image, targets):
            return model.evaluate(loss, image, targets, tiling)

        return {"chunk": AnySizeFunction(chunk), "targets": AnySizeFunction(targets),
                "evaluate": AnySizeFunction(evaluate)}


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
