"""The algorithm, as tensor functions: features → loss → one step → one stage → a run.

Gatys et al. optimise an image x so that its VGG features match a photo's content and a
painting's style. Read top to bottom:

* ``StyleModel.features(x)``: the content and style layers' activations;
* ``StyleModel.compute_targets``: the photo's content features and the paintings'
  style statistics (``content_targets`` and ``style_targets``);
* ``StyleModel.make_step``: ``step(x, state, targets) -> (x, state, terms)``: one loss
  and gradient (``tfstyle.core.losses``, tile by tile with ``tfstyle.core.tiling``) and one
  optimiser update (``tfstyle.core.optimizers``);
* ``optimize``: a stage's steps in a ``tf.while_loop``;
* ``stage_functions``: those three for one loss, optimiser and tiling
  (``StageFunctions``);
* ``prepare_stage``: one coarse-to-fine stage, from its inputs and where the last
  one ended: its targets, its start (``start_image`` at the first stage, else
  ``next_stage``: the last result upsampled, the optimiser's state carried over) and
  the functions that run its steps;
* ``StyleModel.evaluate``: the loss of an image as it stands (a stage run for 0 steps).

A run is then (as ``tfstyle.graph_run`` writes it; ``tfstyle.runner`` the same, in
chunks of steps)::

    previous = None
    for k, (size, steps) in enumerate(stage_plan(...)):   # tfstyle.core.schedule
        inputs = stage_tensors(content, styles, size, ...)  # tfstyle.core.stage_inputs
        stage = prepare_stage(model, functions, options, optimizer, inputs, previous,
                              last=(k == last))
        x, state, terms = stage.functions.optimize(stage.start, stage.state,
                                                   stage.targets, steps)
        previous = Previous(x, state, inputs.run_content[None])
    result = optimizer.result(x, state)

Two drivers run that loop over these same functions: the library's eager runner
(``tfstyle.runner``: chunks of steps with progress, stop and resume; its functions
traced once per setting by ``tfstyle.compiled``) and the exported SavedModel's graph
(``tfstyle.graph_run``: one ``tf.while_loop`` over the stages, every function traced
inline). Nothing here holds a ``tf.Variable`` but the network's weights, so the same
functions serve concurrent requests.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

from tfstyle.core import stage_inputs as inputs_lib
from tfstyle.core.features import build_feature_model, feature_layers, layer_stride, resolve_layers
from tfstyle.core.losses import (LossTerms, StyleLoss, Targets, feature_scale, join_targets,
                                 layer_sums)
from tfstyle.core.optimizers import get_optimizer
from tfstyle.core.precision import resolve_precision
from tfstyle.core.texture import random_phase
from tfstyle.core.tiling import TiledLoss, Tiling, default_halo, receptive_halo
from tfstyle.errors import ConfigError
from tfstyle.options import (DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS,
                             DEFAULT_STYLE_STRENGTH, RunOptions)


class StyleModel:
    """The feature model and the loss on it: every tensor function a stage needs.

    Args:
      backbone: ``vgg19`` (default, the paper's) or ``vgg16``.
      pooling: ``max`` or ``avg`` (the paper's preference).
      weights: ``"imagenet"`` (Keras download and cache), a local ``.h5`` path, or None
        (random; for tests).
      content_layers, style_layers: layer names (``conv4_2`` or ``block4_conv2`` style),
        as a sequence or a comma-separated string.
      style_layer_weights: w_l per style layer; default each a quarter of the one before,
        summing to 1 (``losses.default_style_layer_weights``).
      precision: ``auto``, ``float32`` or ``mixed_bfloat16`` (``tfstyle.core.precision``);
        ``self.precision`` is the choice.
      content_edge_powers: per content layer, the power g ≥ 0 of the content term's
        weight on the photo's edges (``losses.edge_weights``); default 0 each, the
        paper's uniform term.
    """

    def __init__(self, backbone: str = "vgg19", pooling: str = "max", weights="imagenet",
                 content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                 style_layer_weights=None, precision: str = "auto",
                 content_edge_powers=None):
        self.backbone = backbone
        self.content_layers = resolve_layers(content_layers, backbone)
        self.style_layers = resolve_layers(style_layers, backbone)
        self.style_layer_weights = _per_layer(style_layer_weights, len(self.style_layers),
                                              "style layer weights", "style")
        # One power may stand for every content layer; none is the paper's uniform term.
        if content_edge_powers is not None and len(content_edge_powers) == 1:
            content_edge_powers = list(content_edge_powers) * len(self.content_layers)
        self.content_edge_powers = tuple(_per_layer(
            content_edge_powers, len(self.content_layers), "content edge powers", "content",
            " one, or") or (0.0,) * len(self.content_layers))
        self.layers = feature_layers(self.content_layers, self.style_layers, backbone)
        self.precision = resolve_precision(precision)
        self.model = build_feature_model(self.layers, backbone, pooling, weights,
                                         dtype=self.precision)
        # The smallest image whose deepest feature map still has one position.
        self.min_side = max(layer_stride(name) for name in self.layers)
        # Tiles' context (tfstyle.core.tiling): exact is the deepest layer's receptive
        # field; the default is half of it.
        self.exact_halo = receptive_halo(self.layers, backbone)
        self.default_halo = default_halo(self.layers, backbone)

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
        """The weighted loss of ``options`` for this feature model's layers (the weights
        may be floats or, in the exported graph, scalar tensors)."""
        content_weight, style_weight, tv_weight = options.loss_weights()
        return StyleLoss(self.content_layers, self.style_layers, content_weight,
                         style_weight, tv_weight,
                         style_layer_weights=self.style_layer_weights,
                         content_edge_powers=self.content_edge_powers,
                         style_loss=options.style_loss,
                         temporal_weight=options.temporal_loss_weight())

    def tiled_loss(self, loss: StyleLoss, tiling: Tiling) -> TiledLoss:
        """``loss`` on this feature model, evaluated tile by tile (``tfstyle.core.tiling``)."""
        return TiledLoss(self.features, loss, self.content_layers, self.style_layers, tiling)

    def compute_targets(self, loss: StyleLoss, content: tf.Tensor, style,
                        blend_weights=None, masks=(), tiling: Tiling | None = None) -> Targets:
        """Targets from the content image and one or more style images: the join of
        ``content_targets`` and ``style_targets``.

        Args:
          content: (1, H, W, 3) in [0, 255].
          style: one (1, h, w, 3) image in [0, 255], or a sequence of them (any sizes).
          blend_weights, masks: see ``StyleLoss.style_targets``.
          tiling: None, or evaluate the images tile by tile where the content's longest
            side exceeds ``tiling.tile``.
        """
        styles = style if isinstance(style, (list, tuple)) else (style,)
        return join_targets(self.content_targets(loss, content, tiling),
                            self.style_targets(loss, content, styles, blend_weights, masks,
                                               tiling))

    def content_targets(self, loss: StyleLoss, content: tf.Tensor,
                        tiling: Tiling | None = None):
        """The ``ContentTargets`` (``StyleLoss.content_targets``) of
        ``content`` (1, H, W, 3) in [0, 255]."""
        def untiled():
            content_features, style_features = self.features(content)
            return loss.content_targets(content_features,
                                        [feature_scale(f) for f in style_features])

        if tiling is None:
            return untiled()
        tiled = self.tiled_loss(loss, tiling)
        return tf.cond(larger_than(content, tiling.tile),
                       lambda: loss.content_targets(*tiled.photo_features(content)),
                       untiled)

    def style_targets(self, loss: StyleLoss, content: tf.Tensor, styles,
                      blend_weights=None, masks=(), tiling: Tiling | None = None):
        """The style part of the targets (``StyleLoss.style_targets``) of the style
        images ``styles`` (a sequence of (1, h, w, 3) in [0, 255]) for an output the
        size of ``content`` (1, H, W, 3), whose size alone decides whether they are
        evaluated tile by tile."""
        def untiled():
            return loss.style_targets([[layer_sums(f) for f in self.features(s)[1]]
                                       for s in styles], blend_weights, masks)

        if tiling is None:
            return untiled()
        tiled = self.tiled_loss(loss, tiling)
        return tf.cond(larger_than(content, tiling.tile),
                       lambda: loss.style_targets(tiled.style_sums(styles), blend_weights,
                                                  masks),
                       untiled)

    def evaluate(self, loss: StyleLoss, image, targets, tiling: Tiling | None = None):
        """The ``LossTerms`` of ``image`` (1, H, W, 3) as it stands: what a stage run
        for 0 steps reports."""
        if tiling is not None:
            return self.tiled_loss(loss, tiling).value_and_gradient(image, targets)[0]
        content_features, style_features = self.features(image)
        return loss(image, content_features, style_features, targets)

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
                return tf.cond(larger_than(image, tiling.tile), lambda: tiled(image, targets),
                               lambda: value_and_gradient(image, targets))

        def step(image, state, targets):
            terms, grad = evaluate(image, targets)
            new_image, new_state = optimizer.update(image, grad, terms.total, state)
            return new_image, new_state, terms
        return step


def optimize(step, image, state, targets, steps):
    """Runs ``steps`` (an int32 scalar tensor ≥ 0) steps in a ``tf.while_loop``.

    Returns (image, state, terms): the terms are those of the last image evaluated
    (before the last update); NaN terms mean ``steps`` was 0. The image to keep is
    ``optimizer.result(image, state)`` (L-BFGS's last accepted image).

    The loop stops early, keeping the last finite image and state, if a loss becomes
    non-finite; the terms returned are then non-finite too.
    """
    nan = tf.constant(float("nan"))

    def cond(i, image, state, terms, ok):
        return (i < steps) & ok

    def body(i, image, state, terms, ok):
        new_image, new_state, new_terms = step(image, state, targets)
        finite = tf.math.is_finite(new_terms.total)
        new_image = tf.cond(finite, lambda: new_image, lambda: image)
        new_state = tf.nest.map_structure(lambda a, b: tf.cond(finite, lambda: a, lambda: b),
                                          new_state, state)
        return i + 1, new_image, new_state, LossTerms(*new_terms), finite

    scalars = len(LossTerms._fields)
    shape_invariants = (tf.TensorShape([]), image.shape,
                        tf.nest.map_structure(lambda t: t.shape, state),
                        LossTerms(*[tf.TensorShape([])] * scalars), tf.TensorShape([]))
    _, image, state, terms, _ = tf.while_loop(
        cond, body, (tf.constant(0), image, state, LossTerms(*[nan] * scalars),
                     tf.constant(True)),
        shape_invariants=shape_invariants)
    return image, state, terms


class StageFunctions(NamedTuple):
    """A stage's tensor functions for one loss, optimiser and tiling.

    targets(content, styles, blend_weights, masks) -> Targets: ``content`` (1, H, W, 3)
      and ``styles`` (per style (h, w, 3)) in [0, 255], the ``StageInputs``' blend
      weights and masks (``StyleModel.compute_targets``).
    optimize(image, state, targets, steps) -> (image, state, LossTerms): ``steps`` (an
      int32 scalar tensor) steps of ``optimize`` over ``StyleModel.make_step``.
    evaluate(image, targets) -> LossTerms of ``image`` as it stands.

    ``stage_functions`` makes them for the exported graph, which traces them inline;
    ``compiled.Compiled.functions`` traces them once per setting for the library.
    """
    targets: Callable
    optimize: Callable
    evaluate: Callable


def stage_functions(model: StyleModel, loss: StyleLoss, optimizer,
                    tiling: Tiling | None = None) -> StageFunctions:
    """The ``StageFunctions`` of ``loss``, ``optimizer`` and ``tiling`` on ``model``."""
    step = model.make_step(loss, optimizer, tiling)

    def targets(content, styles, blend_weights, masks):
        return model.compute_targets(loss, content, [s[None] for s in styles],
                                     blend_weights, masks, tiling)

    def run_steps(image, state, stage_targets, steps):
        return optimize(step, image, state, stage_targets, steps)

    def evaluate(image, stage_targets):
        return model.evaluate(loss, image, stage_targets, tiling)

    return StageFunctions(targets, run_steps, evaluate)


class Previous(NamedTuple):
    """Where the last stage ended: its ``image`` (1, h, w, 3) and optimiser ``state``
    as ``optimize`` left them, and the ``content`` (1, h, w, 3) it was optimised
    against."""
    image: tf.Tensor
    state: object
    content: tf.Tensor


class Stage(NamedTuple):
    """One coarse-to-fine stage, ready to run: ``functions.optimize(start, state,
    targets, steps)``. ``targets``: its ``Targets``; ``start``: (1, H, W, 3) float32
    in [0, 255]; ``state``: the optimiser's state there; ``functions``: its
    ``StageFunctions``."""
    targets: Targets
    start: tf.Tensor
    state: object
    functions: StageFunctions


def prepare_stage(model: StyleModel, functions, options: RunOptions, optimizer,
                  inputs: inputs_lib.StageInputs, previous: Previous | None = None, *,
                  last, first=None, tiling: Tiling | None = None, start=None,
                  temporal=None) -> Stage:
    """One coarse-to-fine stage: (its inputs, where the last one ended) -> (targets,
    start, optimiser state, the functions that run its steps). Both drivers call it,
    the library eagerly, the exported graph inside its loop over the stages.

    Args:
      model: the ``StyleModel``.
      functions: ``functions(loss, optimizer, tiling) -> StageFunctions``:
        ``stage_functions`` on ``model`` in the graph, ``Compiled.functions`` in the
        library.
      options: the run's ``RunOptions``, its seed set; in the graph their fields are
        the request's scalar tensors (``served_options.run_options``).
      optimizer, tiling: this stage's (``memory.stage_setup``'s in the library, the
        export's in the graph).
      inputs: the stage's ``inputs.StageInputs``.
      previous: None at the run's first stage, else where the last stage ended.
      last: whether this is the full-size stage, a bool or a bool scalar tensor
        (``RunOptions.for_stage``: above the default strength the coarse stages keep
        the default's balance).
      first: whether this is the run's first stage, by default ``previous is None``; the
        graph, whose loop carries a ``Previous`` into every stage, passes a bool tensor.
      start: None, or (image, state) to start from as they are (a checkpoint's): no
        start is built.
      temporal: None, or (target (H, W, 3) in [0, 255], weight (H, W) in [0, 1]) holding
        the stage to a video frame's warped result (``inputs.temporal_targets``).
    """
    fns = functions(model.make_loss(options.for_stage(last)), optimizer, tiling)
    targets = fns.targets(inputs.run_content[None], inputs.styles, inputs.blend_weights,
                          inputs.masks)
    if temporal is not None:
        targets = targets._replace(temporal=inputs_lib.temporal_targets(
            *temporal, options.preserve_colors))
    if start is None:
        start = stage_start(optimizer, options, inputs, previous, first)
    return Stage(targets, *start, fns)


def stage_start(optimizer, options: RunOptions, inputs: inputs_lib.StageInputs,
                previous: Previous | None = None, first=None):
    """(start (1, H, W, 3) in [0, 255], optimiser state) of a stage: the run's start
    (``start_image``, what ``options.init`` asks for, or the given start image) at its
    first stage; after it, the last stage's result upsampled with the photo's detail
    between the two sizes (``next_stage``, ``content_detail``). ``first`` as
    ``prepare_stage``'s."""
    run_content = inputs.run_content

    def run_start():
        init = options.init
        if inputs.given_start is True:  # a given start image wins over init
            init = "image"
        elif inputs.given_start is not False:
            init = tf.where(inputs.given_start, "image", init)
        image = start_image(init, run_content, options.seed, inputs.start,
                            blend=options.init_blend, strength=options.style_strength)
        return image, optimizer.init(image)

    def carried():
        detail = None
        if tf.is_tensor(options.stage_detail) or options.stage_detail:  # no op for none
            detail = content_detail(run_content[None], previous.content,
                                    options.stage_detail)
        return next_stage(optimizer, previous.image, previous.state,
                          tf.shape(run_content)[:2], detail)

    if first is None:
        first = previous is None
    if isinstance(first, bool):
        return run_start() if first else carried()
    return tf.cond(first, run_start, carried)


def start_image(init, run_content, seed, init_image=None, *, blend, strength):
    """The first stage's start, (1, H, W, 3) float32 in [0, 255].

    Args:
      init: ``texture``, ``content``, ``noise``, ``blend``, or anything else for
        ``init_image``; a
        Python string or a scalar string tensor (the exported graph's input).
      run_content: the stage's content as optimised against, (H, W, 3).
      seed: int or int64 scalar tensor, for the noise.
      init_image: None, or a function returning the (H, W, 3) start where ``init`` is
        neither content nor noise (the style, or a given image, at the stage's size
        and colour-controlled); called only where it is the start. For ``texture`` and
        ``blend`` it gives the painting; without it they and the rest start from the
        content.
      blend, strength: r in [0, 1] and the style strength s in [0, 1], floats or
        float32 scalar tensors: ``texture`` starts from (1 − r') × content + r' ×
        ``random_phase(init_image())``, ``blend`` from (1 − r') × content + r' ×
        ``init_image()``, r' = r × min(1, s / ``DEFAULT_STYLE_STRENGTH``). Below the
        default strength the share falls with the knob, so that at 0 the start, and so
        the run, is the photo.

    ``texture`` (the default) gives the photo's flat regions (skies, water, walls) the
    painting's colours and strokes to keep, which a ``content`` start leaves flat at
    100 %, and none of the painting's composition: ``tfstyle.core.texture`` scrambles its
    layout. ``blend`` lays the painting itself over the photo, and the run keeps its
    large shapes (its moon in a sky, its figure across a landscape): the style term
    cannot see where a shape is, so nothing takes them out again.
    """
    content = run_content[None]
    choices = {"content": lambda: content,
               "noise": lambda: noise_image(tf.shape(content), seed)}
    if init_image is None:
        other = choices["content"]
        choices["blend"] = choices["texture"] = other
    else:
        def other():
            return tf.convert_to_tensor(init_image())[None]

        def mixed():
            r = tf.cast(blend, tf.float32) * tf.minimum(
                1.0, tf.cast(strength, tf.float32) / DEFAULT_STYLE_STRENGTH)
            return (1.0 - r) * content + r * other()

        choices["blend"] = mixed

        def texture():
            r = tf.cast(blend, tf.float32) * tf.minimum(
                1.0, tf.cast(strength, tf.float32) / DEFAULT_STYLE_STRENGTH)
            return (1.0 - r) * content + r * random_phase(other()[0], seed)[None]

        choices["texture"] = texture
    if isinstance(init, str):
        return choices.get(init, other)()
    start = tf.case([(tf.equal(init, name), fn) for name, fn in choices.items()],
                    default=other)
    return tf.ensure_shape(start, [1, None, None, 3])


def next_stage(optimizer, image, state, size, detail=None):
    """The start of the next coarse-to-fine stage, from where the last one ended.

    Args:
      optimizer: the run's optimiser.
      image, state: the last stage's image (1, h, w, 3) in [0, 255] and optimiser state.
      size: the next stage's (H, W), an int32 vector.
      detail: None, or (1, H, W, 3) added to the upsampled result (``content_detail``).

    Returns:
      (start, state): the optimiser's result upsampled (bicubic), plus ``detail``,
      clipped to [0, 255], and its state carried over (``optimizer.resize_state``).
    """
    previous = optimizer.result(image, state)
    start = tf.image.resize(previous, size, "bicubic")
    if detail is not None:
        start = start + detail
    start = tf.clip_by_value(start, 0.0, 255.0)
    return start, optimizer.resize_state(state, start)


def content_detail(content, previous_content, gain):
    """``gain`` × the photo's detail between two stages' sizes: the stage's content
    (1, H, W, 3) minus the previous stage's content (1, h, w, 3) upsampled as
    ``next_stage`` upsamples the result. Added to that upsampled result, it puts the
    photo's edges at this scale into the start, which a finer stage's few steps would
    otherwise have to draw from a blurred image (the softness at 100 %)."""
    coarse = tf.image.resize(previous_content, tf.shape(content)[1:3], "bicubic")
    return tf.cast(gain, tf.float32) * (content - coarse)


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


def larger_than(image, side):
    """Whether an image (1, H, W, C)'s longest side exceeds ``side``: a bool tensor."""
    return tf.reduce_max(tf.shape(image)[1:3]) > side


def _per_layer(values, count, what, kind, also=""):
    """``values`` (None, or one number per layer) as a list of ``count`` finite floats
    ≥ 0, or None; ``what`` names them and ``kind`` the layers in the errors."""
    if values is None:
        return None
    values = [float(v) for v in values]
    if len(values) != count:
        raise ConfigError(f"{len(values)} {what} for {count} {kind} layers: "
                          f"give{also} one per layer")
    if any(not np.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"{what} must be finite and ≥ 0, got {values}")
    return values
