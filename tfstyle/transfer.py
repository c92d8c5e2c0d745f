"""The style-transfer core: targets, the pure step function, and the library loop.

Data flows one way: images → features (``features``) → losses (``losses``) →
optimiser updates (``optimizers``) → image. The pieces the exported SavedModel reuses
are pure tensor functions of ``Stylizer``:

* ``compute_targets(loss, content, style)`` — the content features and style Grams;
* ``make_step(loss, optimizer)`` — ``step(image, state, targets) -> (image, state, terms)``;
* ``optimize(step, image, state, targets, steps)`` — ``steps`` steps in a ``tf.while_loop``.

``Stylizer.stylize`` drives those over ``tf.Variable`` s in chunks, so progress can be
reported between chunks without a host round trip on every step.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

from tfstyle import image_io
from tfstyle.checkpoint import fingerprint
from tfstyle.errors import ConfigError, Interrupted, NumericalError
from tfstyle.features import build_feature_model, layer_stride, resolve_layers
from tfstyle.losses import LossTerms, StyleLoss, Targets
from tfstyle.optimizers import get_optimizer
from tfstyle.options import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, RunOptions

log = logging.getLogger("tfstyle")


class Progress(NamedTuple):
    """What a progress callback receives between chunks of steps.

    step, steps: steps done and planned. losses: the weighted terms at the last step
    (Python floats). elapsed: seconds since optimisation started. steps_per_second and
    eta_seconds: measured rate and estimated time left. image: a callable returning
    the current image, uint8 (H, W, 3); fetching it costs a device-to-host copy.
    """
    step: int
    steps: int
    losses: dict
    elapsed: float
    steps_per_second: float
    eta_seconds: float
    image: Callable[[], np.ndarray]


class Result(NamedTuple):
    """A finished run: the image, uint8 (H, W, 3); the final weighted loss terms; the
    seed used (draw one yourself and pass it to reproduce); and the steps run."""
    image: np.ndarray
    losses: dict
    seed: int
    steps: int


class Stylizer:
    """Builds the feature model once and stylizes any number of image pairs with it.

    Args:
      backbone: ``vgg19`` (default, the paper's) or ``vgg16``.
      pooling: ``max`` or ``avg`` (the paper's preference).
      weights: ``"imagenet"`` (Keras download and cache), a local ``.h5`` path, or None
        (random; for tests).
      content_layers, style_layers: layer names (``conv4_2`` or ``block4_conv2`` style),
        as a sequence or a comma-separated string.
      style_layer_weights: w_l per style layer; default equal weights summing to 1.
      precision: ``float32`` (default) or ``mixed_bfloat16``: the network in bfloat16
        (about half the memory traffic; fast on GPUs and on CPUs with AVX512-BF16),
        the losses, Gram matrices and the image in float32.
      jit_compile: compile the optimisation loop with XLA (Adam only: TF 2.21's XLA
        fails on the L-BFGS loop). Meant for GPUs; on a CPU it is slower.
    """

    def __init__(self, backbone: str = "vgg19", pooling: str = "max", weights="imagenet",
                 content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                 style_layer_weights=None, precision: str = "float32",
                 jit_compile: bool = False):
        self.backbone = backbone
        self.content_layers = resolve_layers(content_layers, backbone)
        self.style_layers = resolve_layers(style_layers, backbone)
        if style_layer_weights is not None:
            style_layer_weights = [float(w) for w in style_layer_weights]
            if len(style_layer_weights) != len(self.style_layers):
                raise ConfigError(f"{len(style_layer_weights)} style layer weights for "
                                  f"{len(self.style_layers)} style layers: give one per layer")
            if any(not np.isfinite(w) or w < 0 for w in style_layer_weights):
                raise ConfigError(f"style layer weights must be finite and ≥ 0, got "
                                  f"{style_layer_weights}")
        self.style_layer_weights = style_layer_weights
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.model = build_feature_model(self.layers, backbone, pooling, weights,
                                         dtype=precision)
        self.jit_compile = bool(jit_compile)
        # The smallest image whose deepest feature map still has one position.
        self.min_side = max(layer_stride(name) for name in self.layers)
        self._compiled = {}

    # ----- pure tensor functions (shared with the SavedModel export) -----

    def features(self, image: tf.Tensor):
        """(content-layer features, style-layer features) of an RGB (1, H, W, 3) image
        in [0, 255], each a tuple of (1, h, w, N) tensors in the layers' order."""
        outputs = self.model(image, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        by_name = dict(zip(self.layers, outputs))
        return (tuple(by_name[n] for n in self.content_layers),
                tuple(by_name[n] for n in self.style_layers))

    def make_loss(self, options: RunOptions) -> StyleLoss:
        """The weighted loss of ``options`` for this feature model's layers."""
        return StyleLoss(self.content_layers, self.style_layers, options.content_weight,
                         options.style_weight, options.tv_weight,
                         style_layer_weights=self.style_layer_weights)

    def compute_targets(self, loss: StyleLoss, content: tf.Tensor, style: tf.Tensor) -> Targets:
        """Targets from the content and style images, each (1, H, W, 3) in [0, 255]."""
        content_features, _ = self.features(content)
        _, style_features = self.features(style)
        return loss.targets(content_features, style_features)

    def make_step(self, loss: StyleLoss, optimizer):
        """The pure update: ``step(image, state, targets) -> (image, state, LossTerms)``.

        One forward and backward pass through the feature model and one optimiser
        update. ``image`` is (1, H, W, 3) float32 in [0, 255]; the returned terms are
        those of the image passed in (before the update).
        """
        def step(image, state, targets):
            with tf.GradientTape() as tape:
                tape.watch(image)
                content_features, style_features = self.features(image)
                terms = loss(image, content_features, style_features, targets)
            grad = tape.gradient(terms.total, image)
            new_image, new_state = optimizer.update(image, grad, terms.total, state)
            return new_image, new_state, terms
        return step

    @staticmethod
    def optimize(step, image, state, targets, steps):
        """Runs ``steps`` (an int32 scalar tensor ≥ 0) steps in a ``tf.while_loop``.

        Returns (image, state, terms): the terms are those of the last image evaluated
        (before the last update); NaN terms mean ``steps`` was 0. The image to keep is
        ``optimizer.result(image, state)`` (L-BFGS's last accepted image).

        The loop stops early, keeping the last finite image, if a loss becomes
        non-finite; the terms returned are then non-finite too.
        """
        nan = tf.constant(float("nan"))
        terms0 = LossTerms(nan, nan, nan, nan)

        def cond(i, image, state, terms, ok):
            return (i < steps) & ok

        def body(i, image, state, terms, ok):
            new_image, new_state, new_terms = step(image, state, targets)
            finite = tf.math.is_finite(new_terms.total)
            # Keep the last good image and state if this evaluation blew up.
            new_image = tf.cond(finite, lambda: new_image, lambda: image)
            new_state = tf.nest.map_structure(lambda a, b: tf.cond(finite, lambda: a, lambda: b),
                                              new_state, state)
            return i + 1, new_image, new_state, LossTerms(*new_terms), finite

        shape_invariants = (tf.TensorShape([]), image.shape,
                            tf.nest.map_structure(lambda t: t.shape, state),
                            LossTerms(*[tf.TensorShape([])] * 4), tf.TensorShape([]))
        _, image, state, terms, _ = tf.while_loop(
            cond, body, (tf.constant(0), image, state, terms0, tf.constant(True)),
            shape_invariants=shape_invariants)
        return image, state, terms

    # ----- the library path -----

    def prepare(self, content, style, options: RunOptions):
        """Loads and sizes the images. Returns (content, style, init) float32 arrays,
        (H, W, 3) in [0, 255]; ``init`` is None for ``init="content"``."""
        content_img = image_io.resize_longest(image_io.open_image(content), options.size)
        self._check_size("content image at --size", content_img.size)
        longest = max(content_img.size)
        style_img = image_io.open_image(style)
        style_img = image_io.resize_longest(style_img, max(1, round(longest * options.style_scale)))
        self._check_size("style image at --style_scale", style_img.size)
        content_arr = image_io.to_array(content_img)
        init = None
        if options.init == "style":
            init = image_io.to_array(style_img.resize(content_img.size))
        elif options.init not in ("content", "noise"):
            init = image_io.to_array(image_io.open_image(options.init).resize(content_img.size))
        return content_arr, image_io.to_array(style_img), init

    def stylize(self, content, style, options: RunOptions | None = None,
                callback: Callable[[Progress], None] | None = None, callback_every: int = 50,
                should_stop: Callable[[], bool] | None = None, resume: dict | None = None,
                **overrides) -> Result:
        """Stylizes ``content`` with ``style``.

        Args:
          content, style: a path, encoded bytes, a PIL image, or an array (H, W, 3)
            uint8 in [0, 255] or float in [0, 1].
          options: a ``RunOptions``; keyword ``overrides`` replace its fields
            (``steps=200, size=256, ...``).
          callback: called with a ``Progress`` every ``callback_every`` steps and at the
            end.
          should_stop: polled about twice a second; when it returns True the run stops
            with ``Interrupted`` (e.g. set by a signal handler).
          resume: a checkpoint from ``Interrupted.checkpoint`` (or
            ``tfstyle.checkpoint.load_checkpoint``) of this same job: the run continues
            from it and reaches the image an uninterrupted run would.

        Returns:
          ``Result`` with the image as uint8 (H, W, 3), H and W from ``options.size``.

        Raises:
          ImageError, ConfigError: bad input (or a checkpoint of another job), before any
            optimisation.
          NumericalError: the loss became non-finite; ``error.image`` holds the last
            finite image (uint8) and ``error.step`` the step.
          Interrupted: ``should_stop`` asked to stop; ``error.image`` is the image so
            far, ``error.checkpoint`` what ``resume`` takes.
        """
        options = dataclasses.replace(options or RunOptions(), **overrides).validate()
        if self.jit_compile and options.optimizer.strip().lower() != "adam":
            # TF 2.21's XLA aborts compiling the L-BFGS loop (RET_CHECK failure in
            # value_inference on MaxPoolGrad); Adam's loop compiles.
            raise ConfigError("--jit_compile works with --optimizer=adam only for now: XLA "
                              "fails on the L-BFGS loop in this TensorFlow")
        if int(callback_every) < 1:
            raise ConfigError(f"callback_every must be ≥ 1, got {callback_every}")
        content_arr, style_arr, init_arr = self.prepare(content, style, options)
        seed = options.seed
        if seed is None:
            seed = resume["seed"] if resume is not None else int(
                np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
        def job():  # hashes the inputs: only needed to resume or to stop
            return self._fingerprint(content_arr, style_arr, init_arr, options, seed)

        if resume is not None:
            if resume["fingerprint"] != job():
                raise ConfigError("the checkpoint belongs to another job (other images, size, "
                                  "weights or options): rerun the interrupted command "
                                  "unchanged with --resume, or drop --resume")
            if resume["step"] > options.steps:
                raise ConfigError(f"the checkpoint is at step {resume['step']}, past --steps="
                                  f"{options.steps}")
        content_t = tf.constant(content_arr[None])
        style_t = tf.constant(style_arr[None])

        loss = self.make_loss(options)
        optimizer = make_optimizer(options)
        fns = self._functions(loss, optimizer, options)
        targets = fns["targets"](content_t, style_t)

        if init_arr is not None:
            start = tf.constant(init_arr[None])
        elif options.init == "noise":
            start = noise_image(tf.shape(content_t), seed)
        else:
            start = content_t
        image = tf.Variable(start, name="image")
        state = tf.nest.map_structure(lambda t: tf.Variable(t), optimizer.init(image))
        done = 0
        if resume is not None:
            image.assign(resume["image"])
            for variable, value in zip(tf.nest.flatten(state), resume["state"]):
                variable.assign(value)
            done = int(resume["step"])

        def current():
            state_now = tf.nest.map_structure(lambda v: v.read_value(), state)
            return image_io.to_uint8(optimizer.result(image.read_value(), state_now).numpy())

        def checkpoint():
            return {"image": image.numpy(), "state": [v.numpy() for v in tf.nest.flatten(state)],
                    "step": done, "seed": seed, "fingerprint": job()}

        terms, first = None, done
        # Chunks of about half a second: short enough to stop promptly, long enough
        # that reading the losses back costs nothing (no host round trip per step).
        chunk_steps = 1
        started = time.perf_counter()
        while done < options.steps:
            boundary = min((done // callback_every + 1) * callback_every, options.steps)
            n = min(chunk_steps, boundary - done)
            chunk_started = time.perf_counter()
            new_image, new_state, terms, ok = fns["chunk"](
                image.read_value(), tf.nest.map_structure(lambda v: v.read_value(), state),
                targets, tf.constant(n))
            # On a non-finite loss the loop returned the last finite image and state.
            image.assign(new_image)
            tf.nest.map_structure(lambda v, t: v.assign(t), state, new_state)
            terms = {k: float(v) for k, v in terms._asdict().items()}
            if not bool(ok):
                error = NumericalError(
                    f"the loss became {terms['total']} within steps {done + 1}..{done + n}: "
                    f"lower --learning_rate (now {optimizer.learning_rate:g}) or the loss "
                    f"weights, or use --optimizer=lbfgs; the last finite image is kept")
                error.image, error.step = current(), done
                raise error
            done += n
            per_step = (time.perf_counter() - chunk_started) / n
            chunk_steps = max(1, min(int(0.5 / max(per_step, 1e-6)), callback_every))
            if callback is not None and (done == boundary):
                elapsed = time.perf_counter() - started
                rate = (done - first) / elapsed if elapsed > 0 else float("inf")
                callback(Progress(done, options.steps, terms, elapsed, rate,
                                  (options.steps - done) / rate if rate > 0 else 0.0, current))
            if should_stop is not None and done < options.steps and should_stop():
                raise Interrupted(f"stopped at step {done}/{options.steps}", current(), done,
                                  checkpoint())
        if terms is None:  # no step run: report the losses of the current image
            terms = {k: float(v) for k, v in fns["evaluate"](image, targets)._asdict().items()}
        return Result(current(), terms, seed, done)

    def _fingerprint(self, content_arr, style_arr, init_arr, options, seed):
        settings = dataclasses.asdict(options)
        settings.update(steps=None, seed=seed)
        model = {"layers": self.layers, "content": self.content_layers,
                 "style": self.style_layers, "layer_weights": self.style_layer_weights,
                 "model": [w.shape for w in self.model.weights],
                 "weights": float(sum(float(tf.reduce_sum(w)) for w in self.model.weights[:2]))}
        return fingerprint(content_arr, style_arr,
                           init_arr if init_arr is not None else np.zeros(0), settings, model)

    def _functions(self, loss, optimizer, options):
        """tf.functions for one loss/optimiser setting, cached so that a folder of
        images with the same settings pays for tracing once."""
        key = (options.content_weight, options.style_weight, options.tv_weight, optimizer.name,
               optimizer.learning_rate)
        if key in self._compiled:
            return self._compiled[key]
        step = self.make_step(loss, optimizer)

        # Tensors in and out, not variables: a trace reused for a variable of another
        # shape would read the variable it was traced with.
        @tf.function(jit_compile=self.jit_compile)
        def chunk(image, state, targets, n):
            new_image, new_state, terms = self.optimize(step, image, state, targets, n)
            return new_image, new_state, terms, tf.math.is_finite(terms.total)

        @tf.function
        def targets_fn(content, style):
            return self.compute_targets(loss, content, style)

        @tf.function
        def evaluate(image, targets):
            content_features, style_features = self.features(image)
            return loss(image, content_features, style_features, targets)

        self._compiled[key] = {"chunk": AnySizeFunction(chunk),
                               "targets": AnySizeFunction(targets_fn),
                               "evaluate": AnySizeFunction(evaluate)}
        return self._compiled[key]

    def _check_size(self, what, size):
        width, height = size
        if min(width, height) < self.min_side:
            raise ConfigError(
                f"{what} is {width}x{height}, but the deepest layer used "
                f"({max(self.layers, key=layer_stride)}) needs at least {self.min_side} px "
                f"on each side: raise --size / --style_scale or use shallower layers")


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


def noise_image(shape, seed) -> tf.Tensor:
    """The ``init="noise"`` start image: Gaussian noise around mid-grey, N(127.5, 40²)
    clipped to [0, 255], float32 of ``shape`` (1, H, W, 3).

    Stateless in ``seed`` (an int or int64 scalar tensor), so that the library and the
    exported SavedModel draw the same pixels from the same seed.
    """
    seed = tf.cast(seed, tf.int64)
    pair = tf.stack([seed % (2 ** 31), seed // (2 ** 31)])
    noise = tf.random.stateless_normal(shape, pair, mean=127.5, stddev=40.0)
    return tf.clip_by_value(noise, 0.0, 255.0)


def make_optimizer(options: RunOptions):
    """The optimiser ``options`` asks for, with its learning rate if one is set."""
    kwargs = {}
    if options.learning_rate is not None:
        kwargs["learning_rate"] = options.learning_rate
    return get_optimizer(options.optimizer, **kwargs)


def stylize(content, style, *, backbone="vgg19", pooling="max", weights="imagenet",
            content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
            style_layer_weights=None, callback=None, callback_every=50, **options) -> np.ndarray:
    """One-shot style transfer: builds a ``Stylizer`` and runs it once.

    Args:
      content, style: paths, encoded bytes, PIL images or arrays (H, W, 3).
      backbone, pooling, weights, content_layers, style_layers, style_layer_weights:
        the feature model (see ``Stylizer``).
      **options: fields of ``RunOptions`` (size, steps, optimizer, ...).

    Returns:
      The stylized image, uint8 (H, W, 3) with max(H, W) == size.

    To stylize many images, build one ``Stylizer`` and call its ``stylize``: the
    feature model and the compiled functions are then built only once.
    """
    stylizer = Stylizer(backbone, pooling, weights, content_layers, style_layers,
                        style_layer_weights)
    return stylizer.stylize(content, style, RunOptions(**options), callback=callback,
                            callback_every=callback_every).image
