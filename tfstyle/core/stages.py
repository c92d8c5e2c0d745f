"""A run's stages, as tensor functions: a stage's steps in one loop (``optimize``), its
functions (``stage_functions``), and one coarse-to-fine stage ready to run from its
inputs and where the last one ended (``prepare_stage``: its targets, its start, the
functions that run its steps). ``tfstyle.core`` shows the run they make.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import tensorflow as tf

from tfstyle.core import stage_inputs
from tfstyle.core.losses import LossTerms, StyleLoss, Targets
from tfstyle.core.model import StyleModel
from tfstyle.core.texture import random_phase
from tfstyle.core.tiling import Tiling
from tfstyle.options import DEFAULT_STYLE_STRENGTH, RunOptions


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
                  inputs: stage_inputs.StageInputs, previous: Previous | None = None, *,
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
      inputs: the stage's ``stage_inputs.StageInputs``.
      previous: None at the run's first stage, else where the last stage ended.
      last: whether this is the full-size stage, a bool or a bool scalar tensor
        (``RunOptions.for_stage``: above the default strength the coarse stages keep
        the default's balance).
      first: whether this is the run's first stage, by default ``previous is None``; the
        graph, whose loop carries a ``Previous`` into every stage, passes a bool tensor.
      start: None, or (image, state) to start from as they are (a checkpoint's): no
        start is built.
      temporal: None, or (target (H, W, 3) in [0, 255], weight (H, W) in [0, 1]) holding
        the stage to a video frame's warped result (``stage_inputs.temporal_targets``).
    """
    fns = functions(model.make_loss(options.for_stage(last)), optimizer, tiling)
    targets = fns.targets(inputs.run_content[None], inputs.styles, inputs.blend_weights,
                          inputs.masks)
    if temporal is not None:
        targets = targets._replace(temporal=stage_inputs.temporal_targets(
            *temporal, options.preserve_colors))
    if start is None:
        start = stage_start(optimizer, options, inputs, previous, first)
    return Stage(targets, *start, fns)


def stage_start(optimizer, options: RunOptions, inputs: stage_inputs.StageInputs,
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
