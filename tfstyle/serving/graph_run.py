"""The exported SavedModel's driver: every stage of a run in one graph.

The same stages as the library's ``tfstyle.local.runner``: each is ``stages.prepare_stage``
over ``stage_inputs.stage_tensors``, with the request's options as ``RunOptions``
(``served_options.run_options``). Only the driving differs: the stages are a
``tf.while_loop`` around the core's ``optimize`` loop, with no progress, stop or resume
(a request is answered whole), and every limit is an in-graph check that fails the
request with INVALID_ARGUMENT before any large allocation.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import tensorflow as tf

from tfstyle.core import color, schedule, stages
from tfstyle.core.features import layer_stride
from tfstyle.core.model import StyleModel
from tfstyle.core.stage_inputs import longest_side_dims, stage_dims, stage_tensors
from tfstyle.serving.graph_checks import check, check_str
from tfstyle.serving.served_options import run_options

# The resized style image may be this multiple of max_side on its longest side: room
# for style_scale up to 2 at the largest output (the default is 1), and the style only
# runs forward, once per stage.
STYLE_SIDE_FACTOR = 2


class Given(NamedTuple):
    """A request's optional images, float32, each empty (no pixels) where not sent.

    start: (h, w, 3) in [0, 255], the image to start from (``stage_inputs.stage_start``).
    target: (H, W, 3) in [0, 255], a video frame's temporal target at the output size.
    mask: (H, W) in [0, 1], the target's per-pixel weight (``stage_inputs.temporal_targets``).
    """
    start: tf.Tensor
    target: tf.Tensor
    mask: tf.Tensor


def stylize(model: StyleModel, optimizer, tiling, limits, content, style, o,
            given: Given):
    """float32 (H, W, 3) content and style in [0, 255] -> (uint8 (H', W', 3), loss).

    Args:
      model: the ``StyleModel``; optimizer: its optimiser, fixed at export;
      tiling: a ``tiling.Tiling`` or None; limits: the export's (``max_side``,
      ``min_side``); o: the request's options, name -> scalar tensor; given: the
      request's optional images (``Given``): a start image, as the library's ``start``,
      wins over ``init``; a temporal target and mask hold the last stage to it, as the
      library's ``temporal``.
    """
    options = run_options(o)
    sizes, stage_steps = _plan(content, options, limits)
    checks = (_size_checks(model, limits, content, style, sizes, options.style_scale)
              + _given_checks(content, sizes, given))
    last = tf.size(sizes) - 1

    def inputs_at(k):
        with tf.control_dependencies(checks):
            return stage_tensors(content, (style,), sizes[k], (options.style_scale,),
                                 options.preserve_colors, start=given.start)

    def prepare(k, previous=None, start=None):
        """(stage k's inputs, its ``stages.prepare_stage``); ``previous``: the loop's."""
        stage_k, is_last = inputs_at(k), tf.equal(k, last)
        return stage_k, stages.prepare_stage(
            model, functools.partial(stages.stage_functions, model), options, optimizer,
            stage_k, previous, last=is_last, first=tf.equal(k, 0), tiling=tiling,
            start=start, temporal=_temporal(given, is_last, stage_k.run_content))

    image, state, total, ran = _stages(prepare, optimizer, stage_steps)
    image = optimizer.result(image, state)

    def initial_loss():  # no step anywhere: the loss of the image as it stands
        _, stage = prepare(last, start=(image, state))
        return stage.functions.evaluate(image, stage.targets).total

    total = tf.cond(ran, lambda: total, initial_loss)
    finite = check(tf.math.is_finite(total),
                   "the loss became {} during the optimisation: lower the loss weights "
                   "or the steps", total)
    image = color.restore_colors(image[0], inputs_at(last).content,
                                 options.preserve_colors)
    with tf.control_dependencies([finite]):
        pixels = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        return tf.identity(pixels), tf.identity(total)


def _temporal(given, is_last, run_content):
    """A stage's temporal (target, weight) for ``stages.prepare_stage``: the given target
    and mask at the last stage, else a zero weight, whose term adds exactly 0 to the
    loss and its gradient (so a request without them runs the still image's numbers)."""
    def free():
        return tf.zeros_like(run_content), tf.zeros(tf.shape(run_content)[:2], tf.float32)

    target, weight = tf.cond(is_last & (tf.size(given.mask) > 0),
                             lambda: (given.target, given.mask), free)
    return (tf.ensure_shape(target, [None, None, 3]), tf.ensure_shape(weight, [None, None]))


def _stages(prepare, optimizer, stage_steps):
    """The coarse-to-fine loop over ``prepare(k, previous)`` 's stages: (the last image
    and optimiser state, the last loss, whether any step ran). A non-finite loss ends
    it, keeping the last finite image. ``prepare`` is traced once, in the loop's body,
    so the stages' sizes and weights are functions of k."""
    nan = tf.constant(float("nan"))

    def cond(k, previous, total, ran):
        return (k < tf.size(stage_steps)) & (tf.math.is_finite(total) | ~ran)

    def body(k, previous, total, ran):
        stage_k, stage = prepare(k, previous)
        image, state, terms = stage.functions.optimize(stage.start, stage.state,
                                                       stage.targets, stage_steps[k])
        runs = stage_steps[k] > 0
        return (k + 1, stages.Previous(image, state, stage_k.run_content[None]),
                tf.where(runs, terms.total, total), ran | runs)

    # Stage 0 builds the run's start, so the first Previous is a stand-in with no
    # pixels. Its empty dimensions are those that change between stages: the shapes
    # of every stage's image and state leave them open (and keep the batch of 1).
    nothing = tf.zeros([1, 0, 0, 3])
    first = stages.Previous(nothing, optimizer.init(nothing), nothing)
    invariants = (tf.TensorShape([]), tf.nest.map_structure(
        lambda t: tf.TensorShape([None if d == 0 else d for d in t.shape]), first),
        tf.TensorShape([]), tf.TensorShape([]))
    _, last, total, ran = tf.while_loop(cond, body, (tf.constant(0), first, nan,
                                                     tf.constant(False)),
                                        shape_invariants=invariants)
    return last.image, last.state, total, ran


def _plan(content, options, limits):
    """The request's stage plan (``schedule.stage_plan``), after checking that the
    output's size is within the export's limits."""
    shape = tf.shape(content)
    target = tf.where(options.size > 0, options.size, tf.maximum(shape[0], shape[1]))
    size_check = check(target <= limits.max_side,
                       "content image is {}x{} and size=0 keeps that size: above max_side="
                       f"{limits.max_side} of this model; send 0 < size <= "
                       f"{limits.max_side}", shape[1], shape[0])
    with tf.control_dependencies([size_check]):
        return schedule.stage_plan(target, options.steps, options.stage_size,
                                   options.stage_factor)


def _size_checks(model, limits, content, style, sizes, style_scale):
    """Checks that the smallest stage fits the deepest layer and the largest style fits
    the export's limit: the first stage is the smallest, the last the largest."""
    deepest = max(model.layers, key=layer_stride)
    first_h, first_w, first_style = stage_dims(tf.shape(content), sizes[0], style_scale)
    _, _, last_style = stage_dims(tf.shape(content), sizes[-1], style_scale)
    checks = [check(tf.minimum(first_h, first_w) >= limits.min_side,
                    "the output would be {}x{}, but the deepest layer used "
                    f"({deepest}) needs at least {limits.min_side} px on each side: "
                    "raise size (or stage_size)", first_w, first_h),
              check(last_style <= STYLE_SIDE_FACTOR * limits.max_side,
                    "style_scale={} makes the style image {} px on its longest side, "
                    f"above {STYLE_SIDE_FACTOR} × max_side={limits.max_side} of this "
                    "model: lower style_scale", style_scale, last_style)]
    s_shape = tf.shape(style)
    with tf.control_dependencies(checks):
        st_h, st_w = longest_side_dims(s_shape[0], s_shape[1],
                                       tf.maximum(tf.cast(first_style, tf.int32), 1))
    return [check(tf.minimum(st_h, st_w) >= limits.min_side,
                  "the style image at style_scale={} would be {}x{}, but the deepest "
                  f"layer used ({deepest}) needs at least {limits.min_side} px on "
                  "each side: raise style_scale", style_scale, st_w, st_h)]


def _given_checks(content, sizes, given):
    """The temporal target and mask come together, at the output's size."""
    out_h, out_w, _ = stage_dims(tf.shape(content), sizes[-1], 1.0)
    has_target, has_mask = tf.size(given.target) > 0, tf.size(given.mask) > 0
    checks = [check_str(tf.equal(has_target, has_mask),
                        "temporal_target and temporal_mask go together: send both (for a "
                        "video frame) or neither, not only ",
                        tf.where(has_target, "temporal_target", "temporal_mask"))]
    for name, image in (("temporal_target", given.target), ("temporal_mask", given.mask)):
        shape = tf.shape(image)
        checks.append(check(~(tf.size(image) > 0) | (tf.equal(shape[0], out_h)
                                                     & tf.equal(shape[1], out_w)),
                            name + " is {}x{} but the output is {}x{}: send it at the "
                            "size of the output", shape[1], shape[0], out_w, out_h))
    return checks
