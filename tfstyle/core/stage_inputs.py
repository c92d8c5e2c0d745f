"""A job's images: decoded once, checked against the options, and prepared per stage.

``load_inputs`` decodes the content, styles, start image and masks (Pillow, through
``tfstyle.image_io``) and checks that they fit together; ``check_sizes`` checks every
stage's sizes against the deepest layer before any work starts.

A stage's inputs at its size are one tensor function, ``stage_tensors`` (over
``stage_content``, ``stage_style``, ``resize``): the library calls it eagerly on a job's
decoded images (``stage_inputs``), the exported graph traces it on a request's, so a
served run resizes exactly as a local one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
from PIL import Image

from tfstyle import image_io
from tfstyle.core import color
from tfstyle.core.features import layer_stride
from tfstyle.errors import ConfigError
from tfstyle.options import INITS, MAX_STYLES, RunOptions


class Inputs(NamedTuple):
    """A job's decoded inputs at their own sizes: RGB PIL images, and masks as
    greyscale ("L") PIL images the content's size (255 = apply the style)."""
    content: Image.Image
    styles: list
    init: Image.Image | None
    masks: list


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


def load_inputs(content, style, options: RunOptions, content_mask=None,
                style_masks=None, start=None) -> Inputs:
    """Decodes a job's images and masks and checks that they fit together: counts of
    styles, weights, scales and masks, and the masks' shapes. Needs no model, so the
    CLI runs it before building one.

    Args:
      content: the content image (anything ``image_io.open_image`` takes).
      style: one style image, or a list of them.
      content_mask: optional image over the content: the styles apply where it is
        white, the photo stays where it is black (grey is partial).
      style_masks: optional list, one image per style: style k applies where mask k
        is white. Blend weights do not apply (each style has its own region).
      start: optional image to start from, as an ``options.init`` path is, whatever
        ``options.init`` says (a video frame's warm start).
    """
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
    if start is not None:
        init_img = image_io.open_image(start)
    elif options.init not in INITS:
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


def check_sizes(inputs: Inputs, options: RunOptions, layers) -> None:
    """Raises ConfigError, naming the flag to change, if at some stage of
    ``options.stages()`` the content or a style would be smaller than the deepest of
    ``layers`` needs: before any work, not after an hour at a small stage."""
    for size, _ in options.stages():
        _check_stage(inputs, size, options, layers)


def _check_stage(inputs: Inputs, size: int, options: RunOptions, layers) -> None:
    """The sizes of one stage against the deepest layer's stride, by the rules the
    stage's resizes follow (``stage_dims``, ``longest_side_dims``), before any
    resampling."""
    width, height = inputs.content.size
    out_h, out_w, _ = stage_dims((height, width), size, 1.0)
    _check_size("content image at --size", (int(out_w), int(out_h)), layers)
    for img, scale in zip(inputs.styles, options.style_scales(len(inputs.styles))):
        _, _, side = stage_dims((height, width), size, scale)
        s_h, s_w = longest_side_dims(img.height, img.width, max(int(side), 1))
        _check_size("style image at --style_scale", (int(s_w), int(s_h)), layers)


def _check_size(what, size, layers):
    width, height = size
    deepest = max(layers, key=layer_stride)
    if min(width, height) < layer_stride(deepest):
        raise ConfigError(
            f"{what} is {width}x{height}, but the deepest layer used ({deepest}) needs at "
            f"least {layer_stride(deepest)} px on each side: raise --size / --style_scale "
            f"or use shallower layers")


def stage_inputs(inputs: Inputs, size: int, options: RunOptions, layers) -> StageInputs:
    """The ``StageInputs`` of a job's decoded ``inputs`` for an output whose longest side
    is ``size``, with the styles, blend, colour control and masks of ``options``
    (``stage_tensors``, run eagerly), after checking the stage's sizes against the
    deepest of ``layers``."""
    _check_stage(inputs, size, options, layers)
    styles = [image_io.to_array(img) for img in inputs.styles]
    return stage_tensors(
        image_io.to_array(inputs.content), styles, size, options.style_scales(len(styles)),
        options.preserve_colors, options.blend_weights(len(styles)),
        [np.asarray(m, np.float32) for m in inputs.masks],
        None if inputs.init is None else image_io.to_array(inputs.init))


def _open_mask(source, content_size, what) -> Image.Image:
    """A mask image as greyscale, resized to the content's (width, height)."""
    mask = image_io.open_image(source)
    image_io.check_mask_fits(mask.size, content_size, what)
    return mask.convert("L").resize(content_size, Image.BILINEAR)


def _multiply_masks(a: Image.Image, b: Image.Image) -> Image.Image:
    product = np.asarray(a, np.float32) * np.asarray(b, np.float32) / 255.0
    return Image.fromarray(np.round(product).astype(np.uint8), "L")


# ----------------------------------------------------------------------------- the graph


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
