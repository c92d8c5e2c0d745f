"""The style-transfer core: targets, the pure step function, and the library loop.

Data flows one way: images → features (``features``) → losses (``losses``) →
optimiser updates (``optimizers``) → image. The pieces the exported SavedModel reuses
are pure tensor functions of ``Stylizer``:

* ``compute_targets(loss, content, style)`` — the content features and style Grams;
* ``make_step(loss, optimizer)`` — ``step(image, state, targets) -> (image, state, terms)``;
* ``optimize(step, image, state, targets, steps)`` — ``steps`` steps in a ``tf.while_loop``.

``Stylizer.stylize`` drives those over ``tf.Variable`` s in chunks, so progress can be
reported between chunks without a host round trip on every step, and stage by stage
from coarse to fine (``RunOptions.stages``): each stage's inputs are resized from the
decoded originals (``stage_inputs``, which also applies the colour control) and its
start is the previous stage's result, upsampled.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf
from PIL import Image

from tfstyle import color, image_io, memory
from tfstyle.checkpoint import fingerprint
from tfstyle.errors import ConfigError, Interrupted, NumericalError
from tfstyle.features import build_feature_model, feature_layers, layer_stride, resolve_layers
from tfstyle.losses import LossTerms, StyleLoss, Targets
from tfstyle.optimizers import LBFGS, get_optimizer
from tfstyle.options import (DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, MAX_STYLES,
                             RunOptions)
from tfstyle.precision import resolve_precision
from tfstyle.tiling import TiledLoss, Tiling, default_halo, receptive_halo

log = logging.getLogger("tfstyle")


class Progress(NamedTuple):
    """What a progress callback receives between chunks of steps.

    step, steps: steps done and planned. losses: the weighted terms at the last step
    (Python floats). elapsed: seconds since optimisation started. steps_per_second and
    eta_seconds: measured rate and estimated time left. image: a callable returning
    the current image, uint8 (H, W, 3); fetching it costs a device-to-host copy.
    stage, stages, size: the coarse-to-fine stage (1-based), their number, and this
    stage's longest side in pixels. tile: the stage's tile side in pixels where it
    runs tiled (``tfstyle.tiling``), else 0.
    """
    step: int
    steps: int
    losses: dict
    elapsed: float
    steps_per_second: float
    eta_seconds: float
    image: Callable[[], np.ndarray]
    stage: int = 1
    stages: int = 1
    size: int = 0
    tile: int = 0


class Inputs(NamedTuple):
    """A job's decoded inputs at their own sizes: RGB PIL images, and masks as
    greyscale ("L") PIL images the content's size (255 = apply the style)."""
    content: Image.Image
    styles: list
    init: Image.Image | None
    masks: list


class StageInputs(NamedTuple):
    """One stage's float32 arrays in [0, 255], (H, W, 3): the content as given (for
    colour recombination) and as optimised against (its luminance with
    ``preserve_colors=luminance``), the colour-controlled styles, the start image or
    None, and the masks (1, H, W, 1) in [0, 1]."""
    content: np.ndarray
    run_content: np.ndarray
    styles: list
    init: np.ndarray | None
    masks: tuple


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
      style_layer_weights: w_l per style layer; default each a quarter of the one before,
        summing to 1 (``losses.default_style_layer_weights``).
      precision: ``auto`` (default), ``float32`` or ``mixed_bfloat16``: the network in
        bfloat16 (about half the memory traffic; fast on GPUs and on CPUs with AVX512-BF16),
        the losses, Gram matrices and the image in float32. ``auto`` picks bfloat16 where
        the hardware has it (see ``tfstyle.precision``); ``self.precision`` is the choice.
      jit_compile: compile the optimisation loop with XLA (Adam only: TF 2.21's XLA
        fails on the L-BFGS loop). Meant for GPUs; on a CPU it is slower.
    """

    def __init__(self, backbone: str = "vgg19", pooling: str = "max", weights="imagenet",
                 content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                 style_layer_weights=None, precision: str = "auto",
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
        self.layers = feature_layers(self.content_layers, self.style_layers, backbone)
        self.precision = resolve_precision(precision)
        self.model = build_feature_model(self.layers, backbone, pooling, weights,
                                         dtype=self.precision)
        self.jit_compile = bool(jit_compile)
        # The smallest image whose deepest feature map still has one position.
        self.min_side = max(layer_stride(name) for name in self.layers)
        # Tiles' context (tfstyle.tiling): exact is the deepest layer's receptive
        # field; the default is half of it.
        self.exact_halo = receptive_halo(self.layers, backbone)
        self.default_halo = default_halo(self.layers, backbone)
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
        content_weight, style_weight, tv_weight = options.loss_weights()
        return StyleLoss(self.content_layers, self.style_layers, content_weight,
                         style_weight, tv_weight,
                         style_layer_weights=self.style_layer_weights,
                         style_loss=options.style_loss)

    def compute_targets(self, loss: StyleLoss, content: tf.Tensor, style,
                        blend_weights=None, masks=(), tiling: Tiling | None = None) -> Targets:
        """Targets from the content image and one or more style images.

        Args:
          content: (1, H, W, 3) in [0, 255].
          style: one (1, h, w, 3) image in [0, 255], or a sequence of them (any sizes).
          blend_weights, masks: see ``StyleLoss.targets``.
          tiling: None, or evaluate the images tile by tile (``tfstyle.tiling``) where
            the content's longest side exceeds ``tiling.tile``.
        """
        styles = style if isinstance(style, (list, tuple)) else (style,)

        def untiled():
            content_features, _ = self.features(content)
            style_features = [self.features(s)[1] for s in styles]
            return loss.targets(content_features, style_features, blend_weights, masks)

        if tiling is None:
            return untiled()
        tiled = self.tiled_loss(loss, tiling)
        return tf.cond(_larger_than(content, tiling.tile),
                       lambda: tiled.targets(content, styles, blend_weights, masks), untiled)

    def tiled_loss(self, loss: StyleLoss, tiling: Tiling) -> TiledLoss:
        """``loss`` on this feature model, evaluated tile by tile (``tfstyle.tiling``)."""
        return TiledLoss(self.features, loss, self.content_layers, self.style_layers, tiling)

    def make_step(self, loss: StyleLoss, optimizer, tiling: Tiling | None = None):
        """The pure update: ``step(image, state, targets) -> (image, state, LossTerms)``.

        One forward and backward pass through the feature model (tile by tile with
        ``tiling`` where the image's longest side exceeds ``tiling.tile``: the same
        loss and gradient, in the memory of a tile) and one optimiser update.
        ``image`` is (1, H, W, 3) float32 in [0, 255]; the returned terms are those
        of the image passed in (before the update).
        """
        def value_and_gradient(image, targets):
            with tf.GradientTape() as tape:
                tape.watch(image)
                content_features, style_features = self.features(image)
                terms = loss(image, content_features, style_features, targets)
            return terms, tape.gradient(terms.total, image)

        if tiling is None:
            evaluate = value_and_gradient
        else:
            tiled = self.tiled_loss(loss, tiling).value_and_gradient

            def evaluate(image, targets):
                return tf.cond(_larger_than(image, tiling.tile), lambda: tiled(image, targets),
                               lambda: value_and_gradient(image, targets))

        def step(image, state, targets):
            terms, grad = evaluate(image, targets)
            new_image, new_state = optimizer.update(image, grad, terms.total, state)
            return new_image, new_state, terms
        return step

    def halo(self, tile_halo: int = -1) -> int:
        """The halo of a tiled stage, px: ``tile_halo``, or ``default_halo`` where it is
        -1 (``RunOptions.tile_halo``)."""
        return int(tile_halo) if tile_halo >= 0 else self.default_halo

    def stage_setup(self, options: RunOptions, optimizer, height: int, width: int,
                    budget: int | None = None, steps: int | None = None):
        """(optimizer, tiling) for a stage of ``height`` × ``width``: tiled where
        ``options.tile_size`` says so or the untiled step would pass ``budget`` bytes
        (default ``memory.run_budget(options.memory_limit)``); L-BFGS with a
        history short enough to fit, and where it matters no longer than the
        ``steps - 1`` pairs a stage of ``steps`` steps can store (the same steps, less
        memory; ``memory.stage_history``). Nothing changes for stages that fit."""
        if isinstance(optimizer, LBFGS):
            history = memory.stage_history(height * width, optimizer.history, steps)
            if history != optimizer.history:
                optimizer = LBFGS(history, optimizer.learning_rate, optimizer.first_step,
                                  optimizer.armijo)
        history = getattr(optimizer, "history", 1)
        halo = self.halo(options.tile_halo)
        if options.tile_size:
            tile = options.tile_size if max(height, width) > options.tile_size else None
        else:
            budget = budget or memory.run_budget(options.memory_limit)
            tile = memory.plan_tiling(height, width, self.layers, self.backbone,
                                      self.precision, history, budget, halo, self.min_side,
                                      self.content_layers)
        return optimizer, (None if tile is None else Tiling(tile, halo))

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

    def prepare(self, content, style, options: RunOptions, content_mask=None,
                style_masks=None) -> "Inputs":
        """Decodes the inputs once, at their own sizes, and checks that they fit
        together; each coarse-to-fine stage resizes from these (``stage_inputs``).

        Args:
          content: the content image (anything ``image_io.open_image`` takes).
          style: one style image, or a list of them.
          content_mask: optional image over the content: the styles apply where it is
            white, the photo stays where it is black (grey is partial).
          style_masks: optional list, one image per style: style k applies where mask k
            is white. Blend weights do not apply (each style has its own region).
        """
        inputs = load_inputs(content, style, options, content_mask, style_masks)
        for size, _ in options.stages():  # fail now, not after an hour at a small stage
            self._style_sides(inputs, size, options)
        return inputs

    def _style_sides(self, inputs: "Inputs", size: int, options: RunOptions) -> list:
        """Each style's longest side at the stage of ``size``, after checking that the
        content and the styles at that stage fit the deepest layer's stride (arithmetic
        only, no resampling)."""
        content_size = image_io.longest_side_size(inputs.content.size, size)
        self._check_size("content image at --size", content_size)
        sides = [max(1, round(max(content_size) * scale))
                 for scale in options.style_scales(len(inputs.styles))]
        for img, side in zip(inputs.styles, sides):
            self._check_size("style image at --style_scale",
                             image_io.longest_side_size(img.size, side))
        return sides

    def stage_inputs(self, inputs: "Inputs", size: int, options: RunOptions) -> "StageInputs":
        """The arrays of one stage: every image resized for an output whose longest side
        is ``size``, and the colour control of ``options.preserve_colors`` applied."""
        style_sides = self._style_sides(inputs, size, options)
        content_img = image_io.resize_longest(inputs.content, size)
        style_imgs = [image_io.resize_longest(img, side)
                      for img, side in zip(inputs.styles, style_sides)]
        content_arr = image_io.to_array(content_img)
        styles = [image_io.to_array(img) for img in style_imgs]
        init = None
        if options.init == "style":
            init = image_io.to_array(style_imgs[0].resize(content_img.size))
        elif inputs.init is not None:
            init = image_io.to_array(inputs.init.resize(content_img.size))
        masks = tuple(np.asarray(m.resize(content_img.size, Image.BILINEAR), np.float32)
                      [None, :, :, None] / 255.0 for m in inputs.masks)
        mode = options.preserve_colors
        styles = [np.asarray(color.recolor_style(s, content_arr, mode)) for s in styles]
        if options.init == "style":
            init = np.asarray(color.recolor_style(init, content_arr, mode))
        elif init is not None:
            init = np.asarray(color.optimised_content(init, mode))
        run_content = np.asarray(color.optimised_content(content_arr, mode))
        return StageInputs(content_arr, run_content, styles, init, masks)

    def stylize(self, content, style, options: RunOptions | None = None,
                callback: Callable[[Progress], None] | None = None, callback_every: int = 50,
                should_stop: Callable[[], bool] | None = None, resume: dict | None = None,
                content_mask=None, style_masks=None, **overrides) -> Result:
        """Stylizes ``content`` with ``style``.

        Args:
          content: a path, encoded bytes, a PIL image, or an array (H, W, 3) uint8 in
            [0, 255] or float in [0, 1].
          style: one such image, or a list of them (blended by
            ``options.style_blend_weights``, or placed by ``style_masks``).
          options: a ``RunOptions``; keyword ``overrides`` replace its fields
            (``steps=200, size=256, ...``).
          callback: called with a ``Progress`` every ``callback_every`` steps and at the
            end.
          should_stop: polled about twice a second; when it returns True the run stops
            with ``Interrupted`` (e.g. set by a signal handler).
          resume: a checkpoint from ``Interrupted.checkpoint`` (or
            ``tfstyle.checkpoint.load_checkpoint``) of this same job: the run continues
            from it and reaches the image an uninterrupted run would.
          content_mask, style_masks: spatial control, see ``prepare``. Masks are images
            over the content (any size of the same aspect ratio); white is "apply".

        With ``size`` at least ``stage_size × stage_factor`` the run is coarse-to-fine
        (``RunOptions.stages``): each stage starts from the previous one's result,
        upsampled, and Adam's moments are carried across.

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
        inputs = self.prepare(content, style, options, content_mask, style_masks)
        plan = options.stages()
        total_steps = sum(n for _, n in plan)
        seed = options.seed
        if seed is None:
            seed = resume["seed"] if resume is not None else int(
                np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
        def job():  # hashes the inputs: only needed to resume or to stop
            return self._fingerprint(inputs, options, seed)

        if resume is not None:
            if resume["fingerprint"] != job():
                raise ConfigError("the checkpoint belongs to another job (other images, size, "
                                  "weights or options): rerun the interrupted command "
                                  "unchanged with --resume, or drop --resume")
            if resume["step"] > total_steps:
                raise ConfigError(f"the checkpoint is at step {resume['step']}, past --steps="
                                  f"{total_steps}")

        loss = self.make_loss(options)
        run_optimizer = make_optimizer(options)
        # Once, before this run's own allocations lower the free memory.
        budget = None if options.tile_size else memory.run_budget(options.memory_limit)
        weights = tf.constant(options.blend_weights(len(inputs.styles)), tf.float32)
        started = time.perf_counter()
        done, first, terms = 0, 0, None
        image = state = None
        for index, (size, stage_steps) in enumerate(plan):
            end = done + stage_steps
            if resume is not None and resume["step"] >= end and index < len(plan) - 1:
                done = end  # this stage finished before the interruption
                continue
            arrays = self.stage_inputs(inputs, size, options)
            optimizer, tiling = self.stage_setup(options, run_optimizer,
                                                 *arrays.run_content.shape[:2], budget,
                                                 stage_steps)
            fns = self._functions(loss, optimizer, options, tiling)
            content_t = tf.constant(arrays.run_content[None])
            targets = fns["targets"](content_t, tuple(tf.constant(s[None]) for s in arrays.styles),
                                     weights, tuple(tf.constant(m) for m in arrays.masks))
            # The targets hold the styles' statistics; their pixels (style_scale² times
            # the output's area: 360 MB at 4096 px) need not stay through the stage.
            arrays = arrays._replace(styles=())
            if resume is not None and done <= resume["step"]:
                start = tf.constant(resume["image"])
                if start.shape != content_t.shape:
                    raise ConfigError("the checkpoint's image does not fit this job's stage "
                                      "sizes: drop --resume")
                fresh = optimizer.init(start)
                stage_state = [tf.constant(v) for v in resume["state"]]
                if [s.shape for s in stage_state] != [s.shape for s in tf.nest.flatten(fresh)]:
                    raise ConfigError("the checkpoint's optimiser state does not fit this "
                                      "version of tfstyle: drop --resume")
                stage_state = tf.nest.pack_sequence_as(fresh, stage_state)
                done, first = int(resume["step"]), int(resume["step"])
                resume = None
            elif image is None:
                start = (tf.constant(arrays.init[None]) if arrays.init is not None
                         else noise_image(tf.shape(content_t), seed) if options.init == "noise"
                         else content_t)
                stage_state = optimizer.init(start)
            else:  # the previous stage's result, upsampled
                start, stage_state = next_stage(optimizer, image.read_value(), _read(state),
                                                tf.shape(content_t)[1:3])
            log.info("stage %d/%d: %d px, %d steps%s", index + 1, len(plan), size, stage_steps,
                     "" if tiling is None else
                     f", tiled ({tiling.tile} px tiles, {tiling.halo} px halo"
                     f"{', exact' if tiling.halo >= self.exact_halo else ''})")
            image = tf.Variable(start, name="image")
            state = tf.nest.map_structure(tf.Variable, stage_state)

            def current(arrays=arrays, image=image, state=state):
                result = optimizer.result(image.read_value(), _read(state))[0]
                result = color.restore_colors(result, arrays.content, options.preserve_colors)
                return image_io.to_uint8(np.asarray(result))

            def checkpoint(image=image, state=state):
                return {"image": image.numpy(),
                        "state": [v.numpy() for v in tf.nest.flatten(state)],
                        "step": done, "seed": seed, "fingerprint": job()}

            # Chunks of about half a second: short enough to stop promptly, long enough
            # that reading the losses back costs nothing (no host round trip per step).
            chunk_steps = 1
            while done < end:
                boundary = min((done // callback_every + 1) * callback_every, total_steps)
                n = min(chunk_steps, boundary - done, end - done)
                chunk_started = time.perf_counter()
                new_image, new_state, chunk_terms, ok = fns["chunk"](
                    image.read_value(), _read(state), targets, tf.constant(n))
                # On a non-finite loss the loop returned the last finite image and state.
                image.assign(new_image)
                tf.nest.map_structure(lambda v, t: v.assign(t), state, new_state)
                terms = {k: float(v) for k, v in chunk_terms._asdict().items()}
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
                if callback is not None and done == boundary:
                    elapsed = time.perf_counter() - started
                    rate = (done - first) / elapsed if elapsed > 0 else float("inf")
                    callback(Progress(done, total_steps, terms, elapsed, rate,
                                      (total_steps - done) / rate if rate > 0 else 0.0, current,
                                      index + 1, len(plan), size,
                                      0 if tiling is None else tiling.tile))
                # Never at a stage's end: a checkpoint always lies inside a stage.
                if should_stop is not None and done < end and should_stop():
                    raise Interrupted(f"stopped at step {done}/{total_steps}", current(), done,
                                      checkpoint())
        if terms is None:  # no step run: report the losses of the current image
            terms = {k: float(v) for k, v in fns["evaluate"](image, targets)._asdict().items()}
        return Result(current(), terms, seed, done)

    def _fingerprint(self, inputs, options, seed):
        settings = dataclasses.asdict(options)
        # How a stage is evaluated (tiled or not) is not the job: a run resumes on
        # a machine with other free memory.
        settings.update(steps=None, seed=seed, memory_limit=None, tile_size=None,
                        tile_halo=None)
        if len(options.stages()) > 1 and options.stage_steps is None:
            settings.update(steps=options.steps)  # the stage boundaries follow from it
        model = {"layers": self.layers, "content": self.content_layers,
                 "style": self.style_layers, "layer_weights": self.style_layer_weights,
                 "model": [w.shape for w in self.model.weights],
                 "weights": float(sum(float(tf.reduce_sum(w)) for w in self.model.weights[:2]))}
        arrays = [image_io.to_array(inputs.content)]
        arrays += [image_io.to_array(s) for s in inputs.styles]
        arrays += [np.asarray(m) for m in inputs.masks]
        if inputs.init is not None:
            arrays.append(image_io.to_array(inputs.init))
        return fingerprint(*arrays, settings, model)

    def _functions(self, loss, optimizer, options, tiling=None):
        """tf.functions for one loss/optimiser/tiling setting, cached so that a folder
        of images with the same settings pays for tracing once."""
        key = (options.loss_weights(), optimizer.name, optimizer.learning_rate,
               getattr(optimizer, "history", None), options.style_loss, tiling)
        if key in self._compiled:
            return self._compiled[key]
        step = self.make_step(loss, optimizer, tiling)

        # Tensors in and out, not variables: a trace reused for a variable of another
        # shape would read the variable it was traced with. No AutoGraph: the core's
        # loops and branches are tf.while_loop and tf.cond already (the export's
        # endpoints, which Keras traces without it, run the same code), and converting
        # its Python was 3 s of a 2-core CPU's first trace.
        @tf.function(jit_compile=self.jit_compile, autograph=False)
        def chunk(image, state, targets, n):
            new_image, new_state, terms = self.optimize(step, image, state, targets, n)
            return new_image, new_state, terms, tf.math.is_finite(terms.total)

        @tf.function(autograph=False)
        def targets_fn(content, styles, blend_weights, masks):
            return self.compute_targets(loss, content, styles, blend_weights, masks, tiling)

        @tf.function(autograph=False)
        def evaluate(image, targets):
            if tiling is not None:  # no stage is both tiled and run for 0 steps: rare
                return self.tiled_loss(loss, tiling).value_and_gradient(image, targets)[0]
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


def load_inputs(content, style, options: RunOptions, content_mask=None,
                style_masks=None) -> Inputs:
    """Decodes a job's images and masks (see ``Stylizer.prepare``) and checks that they
    fit together: counts of styles, weights, scales and masks, and the masks' shapes.
    Needs no model, so the CLI runs it before building one."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise ConfigError("no style image: give at least one")
    if len(styles) > MAX_STYLES:
        raise ConfigError(f"{len(styles)} style images: at most {MAX_STYLES} are supported")
    options.style_scales(len(styles))  # raise now on a count mismatch
    options.blend_weights(len(styles))
    content_img = image_io.open_image(content)
    style_imgs = [image_io.open_image(s) for s in styles]
    init_img = None
    if options.init not in ("content", "noise", "style"):
        init_img = image_io.open_image(options.init)
    masks = []
    if style_masks is not None:
        style_masks = list(style_masks)
        if len(style_masks) != len(styles):
            raise ConfigError(f"{len(style_masks)} style masks for {len(styles)} style "
                              f"images: give one mask per style")
        if options.style_blend_weights is not None and len(styles) > 1:
            raise ConfigError("style blend weights mix styles within one region; with "
                              "style masks each style has its own region: drop one of "
                              "the two")
        masks = [_open_mask(m, content_img.size, f"style mask {i + 1}")
                 for i, m in enumerate(style_masks)]
    if content_mask is not None:
        mask = _open_mask(content_mask, content_img.size, "content mask")
        # Restricting every style region to the content mask.
        masks = [_multiply_masks(m, mask) for m in masks] if masks else [mask]
    return Inputs(content_img, style_imgs, init_img, masks)


def _larger_than(image, side):
    """Whether an image (1, H, W, C)'s longest side exceeds ``side``: a bool tensor."""
    return tf.reduce_max(tf.shape(image)[1:3]) > side


def _read(variables):
    """The current values of a nest of ``tf.Variable`` s, as tensors."""
    return tf.nest.map_structure(lambda v: v.read_value(), variables)


def next_stage(optimizer, image, state, size):
    """The start of the next coarse-to-fine stage, from where the last one ended.

    Args:
      optimizer: the run's optimiser.
      image, state: the last stage's image (1, h, w, 3) in [0, 255] and optimiser state.
      size: the next stage's (H, W), an int32 vector.

    Returns:
      (start, state): the optimiser's result upsampled (bicubic, clipped to [0, 255])
      and its state carried over (``optimizer.resize_state``). One function for the
      library's stage loop and the exported graph's.
    """
    previous = optimizer.result(image, state)
    start = tf.clip_by_value(tf.image.resize(previous, size, "bicubic"), 0.0, 255.0)
    return start, optimizer.resize_state(state, start)


def _open_mask(source, content_size, what) -> Image.Image:
    """A mask image as greyscale, resized to the content's (width, height)."""
    mask = image_io.open_image(source)
    width, height = content_size
    if abs(mask.width / mask.height - width / height) > 0.02 * width / height:
        raise ConfigError(f"{what} is {mask.width}x{mask.height} but the content image is "
                          f"{width}x{height}: a mask is drawn over the content, so give it "
                          f"the content's aspect ratio")
    return mask.convert("L").resize(content_size, Image.BILINEAR)


def _multiply_masks(a: Image.Image, b: Image.Image) -> Image.Image:
    product = np.asarray(a, np.float32) * np.asarray(b, np.float32) / 255.0
    return Image.fromarray(np.round(product).astype(np.uint8), "L")


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
