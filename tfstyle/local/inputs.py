"""A job's images: decoded once, checked against the options, and prepared per stage.

``load_inputs`` decodes the content, styles, start image and masks (Pillow, through
``tfstyle.image_io``) and checks that they fit together; ``check_sizes`` checks every
stage's sizes against the deepest layer before any work starts; ``stage_inputs`` runs
the core's ``stage_tensors`` on them, eagerly, for one stage.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

from tfstyle import image_io
from tfstyle.core.features import layer_stride
from tfstyle.core.stage_inputs import StageInputs, longest_side_dims, stage_dims, stage_tensors
from tfstyle.errors import ConfigError
from tfstyle.options import INITS, MAX_STYLES, RunOptions


class Inputs(NamedTuple):
    """A job's decoded inputs at their own sizes: RGB PIL images, and masks as
    greyscale ("L") PIL images the content's size (255 = apply the style)."""
    content: Image.Image
    styles: list
    init: Image.Image | None
    masks: list



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
