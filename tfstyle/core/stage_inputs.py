"""A stage's inputs at its size, as one tensor function: ``stage_tensors`` (over
``stage_content``, ``stage_style``, ``resize``). The library calls it eagerly on a job's
decoded images (``tfstyle.local.inputs.stage_inputs``), the exported graph traces it on a
request's, so a served run resizes exactly as a local one. The sizes follow the
library's rounding (``stage_dims``, ``longest_side_dims``), which both drivers check
a job's sizes by.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfstyle.core import color


class StageInputs(NamedTuple):
    """One stage's inputs at its size (``stage_tensors``), float32 tensors.

    content: (H, W, 3) in [0, 255], the content as given (for colour recombination).
    run_content: (H, W, 3) in [0, 255], as optimised against (its luminance with
      ``preserve_colors=luminance``).
    styles: per style (h, w, 3) in [0, 255], resized and colour-controlled.
    blend_weights: (K,) the styles' blend weights, summing to 1.
    masks: per mask (1, H, W, 1) in [0, 1]; () without masks.
    given_start: whether the run starts from a given image: a bool, or in the graph a
      bool scalar tensor.
    start: ``start() -> (H, W, 3)`` in [0, 255], what ``init`` starts from where it is
      neither ``content`` nor ``noise`` (``stages.start_image``): the given start image
      where there is one, else the paintings in their blend, stretched to the stage;
      colour-controlled; computed only when called.
    """
    content: tf.Tensor
    run_content: tf.Tensor
    styles: tuple
    blend_weights: tf.Tensor
    masks: tuple
    given_start: object
    start: object


def longest_side_dims(height, width, longest):
    """(H, W) resized so that max side == longest, the library's rounding
    (``image_io.longest_side_size``): the short side is round(short × longest / long),
    halves up, at least 1. int32 scalar tensors."""
    h, w, n = (tf.cast(v, tf.int64) for v in (height, width, longest))
    landscape = w >= h
    short_h = tf.maximum((2 * h * n + w) // (2 * w), 1)
    short_w = tf.maximum((2 * w * n + h) // (2 * h), 1)
    new_h = tf.where(landscape, short_h, n)
    new_w = tf.where(landscape, n, short_w)
    return tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)


def resize(pixels, height, width, method):
    """float32 (H, W, C) -> (height, width, C), integer valued in [0, 255], like Pillow's
    8-bit output; unchanged (no resampling at all) when the size is already right."""
    shape = tf.shape(pixels)

    def resample():
        out = tf.image.resize(pixels, tf.stack([height, width]), method=method, antialias=True)
        return tf.clip_by_value(tf.round(out), 0.0, 255.0)

    same = tf.equal(shape[0], height) & tf.equal(shape[1], width)
    return tf.ensure_shape(tf.cond(same, lambda: pixels, resample),
                           [None, None, pixels.shape[-1]])


def resize_like(pixels, like, method):
    """``pixels`` (H, W, C) resized to the height and width of ``like`` (H', W', 3)."""
    shape = tf.shape(like)
    return resize(tf.convert_to_tensor(pixels, tf.float32), shape[0], shape[1], method)


def stage_dims(content_shape, size, style_scale):
    """(H, W, style side) of a stage whose output's longest side is ``size``: the
    content's dims and the style's longest side, round(longest × style_scale) as a
    float64 tensor (not yet clipped to ≥ 1)."""
    out_h, out_w = longest_side_dims(content_shape[0], content_shape[1], size)
    style_side = tf.math.round(tf.cast(tf.maximum(out_h, out_w), tf.float64)
                               * tf.cast(style_scale, tf.float64))
    return out_h, out_w, style_side


def stage_content(content, size, preserve_colors):
    """(the content at the stage, the content as optimised against): float32 (H, W, 3)
    in [0, 255], Lanczos-3 resized (as Pillow's ``LANCZOS``) so that its longest side
    is ``size``."""
    content = tf.convert_to_tensor(content, tf.float32)
    out_h, out_w, _ = stage_dims(tf.shape(content), size, 1.0)
    content = resize(content, out_h, out_w, "lanczos3")
    return content, color.optimised_content(content, preserve_colors)


def stage_start(image, content, preserve_colors):
    """A given start image (h, w, 3) in [0, 255] as the first stage starts from it:
    resized (bicubic) to the stage's ``content`` (H, W, 3), unchanged where it is that
    size already, and colour-controlled as the content is. float32 (H, W, 3)."""
    return color.optimised_content(resize_like(image, content, "bicubic"), preserve_colors)


def painting_start(style, content, preserve_colors):
    """A painting as the ``style`` and ``blend`` starts take it: the raw style (h, w, 3)
    in [0, 255] stretched (bicubic) to the stage's ``content`` (H, W, 3) and
    colour-controlled as the style target is. float32 (H, W, 3)."""
    return color.recolor_style(resize_like(style, content, "bicubic"), content,
                               preserve_colors)


def temporal_targets(target, weight, preserve_colors):
    """A video frame's temporal target (H, W, 3) in [0, 255], colour-controlled as the
    content is, and its per-pixel weight (H, W) in [0, 1], shaped as
    ``losses.Targets.temporal`` holds them: ((1, H, W, 3), (1, H, W, 1)) float32."""
    target = color.optimised_content(tf.convert_to_tensor(target, tf.float32),
                                     preserve_colors)
    return target[None], tf.convert_to_tensor(weight, tf.float32)[None, :, :, None]


def stage_style(style, content, style_scale, preserve_colors):
    """(the style at the stage, and colour-controlled): float32 (h, w, 3), Lanczos-3
    resized so that its longest side is ``style_scale`` × the stage content's."""
    style = tf.convert_to_tensor(style, tf.float32)
    _, _, side = stage_dims(tf.shape(content), tf.reduce_max(tf.shape(content)[:2]),
                            style_scale)
    s_shape = tf.shape(style)
    s_h, s_w = longest_side_dims(s_shape[0], s_shape[1], tf.maximum(tf.cast(side, tf.int32), 1))
    style = resize(style, s_h, s_w, "lanczos3")
    return style, color.recolor_style(style, content, preserve_colors)


def stage_tensors(content, styles, size, style_scales, preserve_colors,
                  blend_weights=(1.0,), masks=(), start=None) -> StageInputs:
    """One stage's inputs, for the library (eagerly, ``stage_inputs``) and the exported
    graph (traced) alike: every image resized for an output whose longest side is
    ``size`` and colour-controlled by ``preserve_colors``.

    Args:
      content: (H0, W0, 3) in [0, 255], the photo at its own size.
      styles: per style (h0, w0, 3) in [0, 255]; style_scales: one scale per style
        (``stage_style``); blend_weights: one Python float per style, summing to 1.
      masks: per mask (H0, W0) in [0, 255] over the photo (255 = apply).
      start: None, or (h0, w0, 3) in [0, 255], an image to start from whatever
        ``init`` says; in the graph a tensor with no pixels stands for none (the
        request's input not sent).
    """
    content, run_content = stage_content(content, size, preserve_colors)
    resized = [stage_style(s, content, scale, preserve_colors)
               for s, scale in zip(styles, style_scales)]
    masks = tuple(resize_like(m[:, :, None], content, "bilinear")[None] / 255.0
                  for m in masks)

    def paintings():
        # Several paintings start as their blend-weighted mix, as the style target is.
        return sum(w * painting_start(raw, content, preserve_colors)
                   for (raw, _), w in zip(resized, blend_weights) if w > 0)

    def given():
        return stage_start(start, content, preserve_colors)

    if start is None or not tf.is_tensor(start):  # the library's: known in Python
        given_start = start is not None
        start_image = given if given_start else paintings
    else:  # the graph's: sent or not
        given_start = tf.size(start) > 0

        def start_image():
            return tf.cond(given_start, given, paintings)
    return StageInputs(content, run_content, tuple(style for _, style in resized),
                       tf.constant(blend_weights, tf.float32), masks, given_start,
                       start_image)
