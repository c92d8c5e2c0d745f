"""The exported SavedModel's driver: every stage of a run in one graph.

The same stages as the library's ``tfstyle.runner``, over the same tensor functions of
``tfstyle.core`` and ``tfstyle.inputs``; only the driving differs: the stages are a
``tf.while_loop`` around the core's ``optimize`` loop, with no progress, stop or resume
(a request is answered whole), and every limit is an in-graph check that fails the
request with INVALID_ARGUMENT before any large allocation.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import tensorflow as tf

from tfstyle import color, core, inputs, schedule
from tfstyle.features import layer_stride
from tfstyle.options import RunOptions
from tfstyle.serving_io import _check, _check_str

# The resized style image may be this multiple of max_side on its longest side: room
# for style_scale up to 2 at the largest output (the default is 1), and the style only
# runs forward, once per stage.
STYLE_SIDE_FACTOR = 2


class Given(NamedTuple):
    """A request's optional images, float32, each empty (no pixels) where not sent.

    start: (h, w, 3) in [0, 255], the image to start from (``inputs.stage_start``).
    target: (H, W, 3) in [0, 255], a video frame's temporal target at the output size.
    mask: (H, W) in [0, 1], the target's per-pixel weight (``inputs.temporal_targets``).
    """
    start: tf.Tensor
    target: tf.Tensor
    mask: tf.Tensor


def request_options(o: dict) -> RunOptions:
    """A request's loss options (``o``: option name -> scalar tensor) as ``RunOptions``
    whose weight fields are those tensors, for ``RunOptions.loss_weights``."""
    return dataclasses.replace(RunOptions(), content_weight=o["content_weight"],
                               style_weight=o["style_weight"], tv_weight=o["tv_weight"],
                               style_strength=o["style_strength"],
                               temporal_weight=o["temporal_weight"])


def stylize(model: core.StyleModel, optimizer, tiling, limits, content, style, o,
            given: Given):
    """float32 (H, W, 3) content and style in [0, 255] -> (uint8 (H', W', 3), loss).

    Args:
      model: the ``core.StyleModel``; optimizer: its optimiser, fixed at export;
      tiling: a ``tiling.Tiling`` or None; limits: the export's (``max_side``,
      ``min_side``); o: the request's options, name -> scalar tensor; given: the
      request's optional images (``Given``): a start image, as the library's ``start``,
      wins over ``init``; a temporal target and mask hold the last stage to it, as the
      library's ``temporal``.
    """
    sizes, stage_steps = _plan(content, o, limits)
    checks = (_size_checks(model, limits, content, style, sizes, o["style_scale"])
              + _given_checks(content, sizes, given))
    preserve = o["preserve_colors"]
    last = tf.size(sizes) - 1

    def stage_inputs(k):
        with tf.control_dependencies(checks):
            return inputs.stage_tensors(content, style, sizes[k], o["style_scale"], preserve)

    def stage_loss(k):
        """The loss at stage k's weights (``RunOptions.for_stage``: above the default
        strength the coarse stages keep the default's balance)."""
        stage = model.make_loss(request_options(o).for_stage(tf.equal(k, last)))
        stage.style_loss = o["style_loss"]
        return stage

    # The targets and the final evaluation do not depend on the weights but the
    # evaluation's: the last stage's loss serves them.
    loss = stage_loss(last)

    def stage_targets(k):
        """(the content as optimised against, the stage's targets)."""
        _, run_content, _, style_k = stage_inputs(k)
        targets = model.compute_targets(loss, run_content[None], style_k[None],
                                        tiling=tiling)
        return run_content, targets._replace(temporal=_temporal(
            given, tf.equal(k, last), run_content, preserve))

    start = _start(o, given.start, stage_inputs(0), preserve)

    def detail(k, run_content):  # the photo's detail between stages k - 1 and k
        _, previous = inputs.stage_content(content, sizes[k - 1], preserve)
        return core.content_detail(run_content[None], previous[None], o["stage_detail"])

    def stage_step(k):
        return model.make_step(stage_loss(k), optimizer, tiling)

    image, total, ran = _stages(stage_step, optimizer, stage_targets, detail, start,
                                stage_steps)
    content_n = stage_inputs(last)[0]

    def initial_loss():  # no step anywhere: the loss of the image as it stands
        return model.evaluate(loss, image, stage_targets(last)[1]).total

    total = tf.cond(ran, lambda: total, initial_loss)
    finite = _check(tf.math.is_finite(total),
                    "the loss became {} during the optimisation: lower the loss weights "
                    "or the steps", total)
    image = color.restore_colors(image[0], content_n, preserve)
    with tf.control_dependencies([finite]):
        pixels = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        return tf.identity(pixels), tf.identity(total)


def _start(o, given_start, first_stage, preserve):
    """The first stage's start (``core.start_image``): the given start image where one
    was sent, else what ``init`` asks for; ``first_stage``: ``inputs.stage_tensors``'s
    (content, run content, raw style, style) at the first stage's size."""
    content, run_content, raw_style, _ = first_stage
    sent = tf.size(given_start) > 0

    def image():
        return tf.cond(sent, lambda: inputs.stage_start(given_start, content, preserve),
                       lambda: inputs.painting_start(raw_style, content, preserve))

    return core.start_image(tf.where(sent, "image", o["init"]), run_content, o["seed"], image,
                            blend=o["init_blend"], strength=o["style_strength"])


def _temporal(given, is_last, run_content, preserve):
    """A stage's ``Targets.temporal``: the given target and mask at the last stage, else
    a zero mask, whose term adds exactly 0 to the loss and its gradient (so a request
    without them runs the still image's numbers)."""
    def held():
        return inputs.temporal_targets(given.target, given.mask, preserve)

    def free():
        shape = tf.shape(run_content)
        return (tf.zeros_like(run_content)[None],
                tf.zeros(tf.stack([1, shape[0], shape[1], 1]), tf.float32))

    target, mask = tf.cond(is_last & (tf.size(given.mask) > 0), held, free)
    return (tf.ensure_shape(target, [1, None, None, 3]),
            tf.ensure_shape(mask, [1, None, None, 1]))


def _stages(stage_step, optimizer, stage_targets, detail, start, stage_steps):
    """The coarse-to-fine loop: (the result image (1, H, W, 3), the last loss, whether
    any step ran). A non-finite loss ends it, keeping the last finite image.
    ``stage_step(k)``: stage k's step function (``StyleModel.make_step``), built inside
    the loop's body, so traced once with its weights a function of k."""
    nan = tf.constant(float("nan"))

    def cond(k, image, state, total, ran):
        return (k < tf.size(stage_steps)) & (tf.math.is_finite(total) | ~ran)

    def body(k, image, state, total, ran):
        run_content, targets = stage_targets(k)
        image, state = tf.cond(
            k > 0, lambda: core.next_stage(optimizer, image, state, tf.shape(run_content)[:2],
                                           detail(k, run_content)),
            lambda: (image, optimizer.init(image)))
        image, state, terms = core.optimize(stage_step(k), image, state, targets,
                                            stage_steps[k])
        runs = stage_steps[k] > 0
        return k + 1, image, state, tf.where(runs, terms.total, total), ran | runs

    state0 = optimizer.init(start)
    # The start's height and width are unknown, so state0's shapes already leave every
    # size that changes between stages open (and keep the batch of 1).
    invariants = (tf.TensorShape([]), tf.TensorShape([1, None, None, 3]),
                  tf.nest.map_structure(lambda t: t.shape, state0),
                  tf.TensorShape([]), tf.TensorShape([]))
    _, image, state, total, ran = tf.while_loop(
        cond, body, (tf.constant(0), start, state0, nan, tf.constant(False)),
        shape_invariants=invariants)
    return optimizer.result(image, state), total, ran


def _plan(content, o, limits):
    """The request's stage plan (``schedule.stage_plan``), after checking that the
    output's size is within the export's limits."""
    shape = tf.shape(content)
    target = tf.where(o["size"] > 0, o["size"], tf.maximum(shape[0], shape[1]))
    size_check = _check(target <= limits.max_side,
                        "content image is {}x{} and size=0 keeps that size: above max_side="
                        f"{limits.max_side} of this model; send 0 < size <= "
                        f"{limits.max_side}", shape[1], shape[0])
    with tf.control_dependencies([size_check]):
        return schedule.stage_plan(target, o["steps"], o["stage_size"], o["stage_factor"])


def _size_checks(model, limits, content, style, sizes, style_scale):
    """Checks that the smallest stage fits the deepest layer and the largest style fits
    the export's limit: the first stage is the smallest, the last the largest."""
    deepest = max(model.layers, key=layer_stride)
    first_h, first_w, first_style = inputs.stage_dims(tf.shape(content), sizes[0], style_scale)
    _, _, last_style = inputs.stage_dims(tf.shape(content), sizes[-1], style_scale)
    checks = [_check(tf.minimum(first_h, first_w) >= limits.min_side,
                     "the output would be {}x{}, but the deepest layer used "
                     f"({deepest}) needs at least {limits.min_side} px on each side: "
                     "raise size (or stage_size)", first_w, first_h),
              _check(last_style <= STYLE_SIDE_FACTOR * limits.max_side,
                     "style_scale={} makes the style image {} px on its longest side, "
                     f"above {STYLE_SIDE_FACTOR} × max_side={limits.max_side} of this "
                     "model: lower style_scale", style_scale, last_style)]
    s_shape = tf.shape(style)
    with tf.control_dependencies(checks):
        st_h, st_w = inputs.longest_side_dims(s_shape[0], s_shape[1],
                                              tf.maximum(tf.cast(first_style, tf.int32), 1))
    return [_check(tf.minimum(st_h, st_w) >= limits.min_side,
                   "the style image at style_scale={} would be {}x{}, but the deepest "
                   f"layer used ({deepest}) needs at least {limits.min_side} px on "
                   "each side: raise style_scale", style_scale, st_w, st_h)]


def _given_checks(content, sizes, given):
    """The temporal target and mask come together, at the output's size."""
    out_h, out_w, _ = inputs.stage_dims(tf.shape(content), sizes[-1], 1.0)
    has_target, has_mask = tf.size(given.target) > 0, tf.size(given.mask) > 0
    checks = [_check_str(tf.equal(has_target, has_mask),
                         "temporal_target and temporal_mask go together: send both (for a "
                         "video frame) or neither, not only ",
                         tf.where(has_target, "temporal_target", "temporal_mask"))]
    for name, image in (("temporal_target", given.target), ("temporal_mask", given.mask)):
        shape = tf.shape(image)
        checks.append(_check(~(tf.size(image) > 0) | (tf.equal(shape[0], out_h)
                                                      & tf.equal(shape[1], out_w)),
                             name + " is {}x{} but the output is {}x{}: send it at the "
                             "size of the output", shape[1], shape[0], out_w, out_h))
    return checks
