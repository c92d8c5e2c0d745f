"""Colour control for style transfer (Gatys et al., CVPR 2017).

Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling Perceptual Factors in Neural
Style Transfer", CVPR 2017, section 5, give two ways of keeping the content image's
colours while taking the style's brushwork:

``"luminance"`` (luminance-only transfer)
    Style transfer runs on grey luminance images. The style's luminance is first
    rescaled so that its mean and standard deviation equal the content's
    (:func:`match_luminance`), because the loss would otherwise drag the result towards
    the style's brightness and contrast. The result's luminance is then combined with
    the content's chroma (:func:`combine_luminance_chroma`), in YCbCr (the paper uses
    YIQ; both separate luma from chroma the same way for this purpose).

``"histogram"`` (colour histogram matching)
    Before the run, an affine map of RGB colour makes the style image's colour mean and
    3x3 covariance equal the content's (:func:`match_color_histogram`), and the
    transfer then runs on that recoloured style.

``"none"`` leaves colours to the style loss.

All functions are TensorFlow ops only, so they run eagerly and inside an exported
SavedModel graph (TensorFlow Serving). Images are float32 RGB in [0, 255], shaped
``(H, W, 3)`` or ``(1, H, W, 3)``; H and W may be unknown while tracing. Each function
returns the rank it was given. A rank-4 input is treated as one image: mean, standard
deviation and covariance are taken over every pixel of the batch.
"""

from __future__ import annotations

import tensorflow as tf

# ITU-R BT.601 luma weights, as JPEG/JFIF uses them at full range.
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
# Chroma is (B - Y) and (R - Y) scaled into [-127.5, 127.5]; deriving both matrices from
# the same three weights (rather than the usual rounded tables) keeps them exact inverses.
_CB_SCALE, _CR_SCALE = 2.0 * (1.0 - _KB), 2.0 * (1.0 - _KR)
_RGB_TO_YCBCR = (
    (_KR, _KG, _KB),
    (-_KR / _CB_SCALE, -_KG / _CB_SCALE, (1.0 - _KB) / _CB_SCALE),
    ((1.0 - _KR) / _CR_SCALE, -_KG / _CR_SCALE, -_KB / _CR_SCALE),
)
_YCBCR_TO_RGB = (
    (1.0, 0.0, _CR_SCALE),
    (1.0, -_KB * _CB_SCALE / _KG, -_KR * _CR_SCALE / _KG),
    (1.0, _CB_SCALE, 0.0),
)
_CHROMA_OFFSET = (0.0, 128.0, 128.0)

# Below this spread (in levels) a luminance image counts as flat: dividing by its float
# rounding noise would blow that noise up to full contrast.
_FLAT_STD = 1e-3


def _as_image(image, name: str = "image") -> tf.Tensor:
    """Float32 tensor of rank 3 or 4 with 3 channels; raises ValueError otherwise."""
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    if image.shape.rank not in (3, 4):
        raise ValueError(f"{name} must have shape (H, W, 3) or (1, H, W, 3), "
                         f"got {image.shape}")
    if image.shape[-1] is not None and image.shape[-1] != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels, got shape {image.shape}")
    return image


def _color_transform(image: tf.Tensor, matrix, offset) -> tf.Tensor:
    """Applies ``matrix @ pixel + offset`` to every pixel (matrix rows = output channels)."""
    pixels = tf.reshape(image, [-1, 3])
    out = tf.matmul(pixels, tf.constant(matrix, tf.float32), transpose_b=True)
    return tf.reshape(out + tf.constant(offset, tf.float32), tf.shape(image))


def rgb_to_ycbcr(image) -> tf.Tensor:
    """RGB to full-range BT.601 (JPEG/JFIF) YCbCr.

    Args:
      image: float32 RGB, ``(H, W, 3)`` or ``(1, H, W, 3)``, values in [0, 255].

    Returns:
      float32 of the same shape: Y in [0, 255], Cb and Cr offset by 128 (in [0.5, 255.5]).
    """
    image = _as_image(image)
    return _color_transform(image, _RGB_TO_YCBCR, _CHROMA_OFFSET)


def ycbcr_to_rgb(image) -> tf.Tensor:
    """Full-range BT.601 YCbCr back to RGB; the exact inverse of :func:`rgb_to_ycbcr`.

    Args:
      image: float32 YCbCr, ``(H, W, 3)`` or ``(1, H, W, 3)``, Cb and Cr offset by 128.

    Returns:
      float32 RGB of the same shape. Not clipped: YCbCr triples that no RGB colour has
      map outside [0, 255], and the caller decides what to do with them.
    """
    image = _as_image(image)
    centred = image - tf.constant(_CHROMA_OFFSET, tf.float32)
    return _color_transform(centred, _YCBCR_TO_RGB, (0.0, 0.0, 0.0))


def _luma(image: tf.Tensor) -> tf.Tensor:
    """BT.601 Y with a trailing channel axis of 1."""
    return tf.reduce_sum(image * tf.constant((_KR, _KG, _KB), tf.float32), -1,
                         keepdims=True)


def luminance(image) -> tf.Tensor:
    """The BT.601 luminance as a grey RGB image.

    Args:
      image: float32 RGB, ``(H, W, 3)`` or ``(1, H, W, 3)``, values in [0, 255].

    Returns:
      float32 of the same shape, values in [0, 255], with all three channels equal to Y.
    """
    y = _luma(_as_image(image))
    return tf.concat([y, y, y], -1)


def match_luminance(style, content) -> tf.Tensor:
    """The style's luminance, with the content luminance's mean and standard deviation.

    The paper's preparation for luminance-only transfer: ``(Ys - mean_s) * std_c / std_s
    + mean_c``. A flat style image (std 0) is only shifted to the content's mean.

    Args:
      style: float32 RGB, ``(H, W, 3)`` or ``(1, H, W, 3)``, values in [0, 255].
      content: float32 RGB of either rank and any size, values in [0, 255].

    Returns:
      float32 grey RGB (three equal channels) shaped like ``style``, clipped to [0, 255].
    """
    # float64 moments: a float32 sum over a million pixels loses a few hundredths.
    y_style = tf.cast(_luma(_as_image(style, "style")), tf.float64)
    y_content = tf.cast(_luma(_as_image(content, "content")), tf.float64)
    mean_s, std_s = tf.reduce_mean(y_style), tf.math.reduce_std(y_style)
    mean_c, std_c = tf.reduce_mean(y_content), tf.math.reduce_std(y_content)
    scale = tf.where(std_s > _FLAT_STD, std_c / tf.maximum(std_s, _FLAT_STD),
                     tf.constant(1.0, tf.float64))
    y = tf.cast(tf.clip_by_value((y_style - mean_s) * scale + mean_c, 0.0, 255.0),
                tf.float32)
    return tf.concat([y, y, y], -1)


def combine_luminance_chroma(stylized, content) -> tf.Tensor:
    """RGB with the stylized image's luminance and the content image's chroma.

    Args:
      stylized: float32 RGB, ``(H, W, 3)`` or ``(1, H, W, 3)``, values in [0, 255]; a
        grey image from luminance-only transfer, or any RGB image (only its Y is used).
      content: float32 RGB with the same shape as ``stylized``, values in [0, 255].

    Returns:
      float32 RGB of the same shape: Y of ``stylized``, Cb and Cr of ``content``,
      clipped to [0, 255].
    """
    y = _luma(_as_image(stylized, "stylized"))
    chroma = rgb_to_ycbcr(_as_image(content, "content"))[..., 1:]
    return tf.clip_by_value(ycbcr_to_rgb(tf.concat([y, chroma], -1)), 0.0, 255.0)


def _sqrt_and_inv_sqrt(cov: tf.Tensor):
    """Symmetric square root and inverse square root of a 3x3 covariance matrix."""
    values, vectors = tf.linalg.eigh(cov)
    # Grey or flat images have (near) zero eigenvalues; flooring them relative to the
    # total variance keeps the inverse root finite without touching real colour axes.
    floor = 1e-5 * tf.linalg.trace(cov) / 3.0 + 1e-8
    values = tf.maximum(values, floor)

    def compose(diagonal):
        return tf.matmul(vectors * diagonal[tf.newaxis, :], vectors, transpose_b=True)

    return compose(tf.sqrt(values)), compose(tf.math.rsqrt(values))


def _color_moments(pixels: tf.Tensor):
    """Mean (3,) and population covariance (3, 3) of an (N, 3) float64 pixel matrix."""
    mean = tf.reduce_mean(pixels, 0)
    centred = pixels - mean
    count = tf.cast(tf.shape(pixels)[0], tf.float64)
    return mean, tf.matmul(centred, centred, transpose_a=True) / count


def match_color_histogram(source, target) -> tf.Tensor:
    """Recolours ``source`` so that its colour mean and covariance equal ``target``'s.

    The paper's colour histogram matching, in its Image Analogies form: every RGB pixel
    ``x`` becomes ``A x + b`` with ``A = Cov_t^(1/2) Cov_s^(-1/2)`` (symmetric matrix
    square roots) and ``b = mean_t - A mean_s``. The result is clipped, so the moments
    match only approximately where the mapped colours leave [0, 255].

    Args:
      source: float32 RGB, ``(H, W, 3)`` or ``(1, H, W, 3)``, values in [0, 255]; the
        image to recolour (the style image, in style transfer).
      target: float32 RGB of either rank and any size, values in [0, 255]; the image
        whose colours to take (the content image).

    Returns:
      float32 RGB shaped like ``source``, clipped to [0, 255].
    """
    source = _as_image(source, "source")
    # float64: the covariance's small eigenvalues lose most of their digits in float32.
    src = tf.cast(tf.reshape(source, [-1, 3]), tf.float64)
    tgt = tf.cast(tf.reshape(_as_image(target, "target"), [-1, 3]), tf.float64)
    mean_s, cov_s = _color_moments(src)
    mean_t, cov_t = _color_moments(tgt)
    _, inv_sqrt_s = _sqrt_and_inv_sqrt(cov_s)
    sqrt_t, _ = _sqrt_and_inv_sqrt(cov_t)
    transform = tf.matmul(sqrt_t, inv_sqrt_s)
    out = tf.matmul(src - mean_s, transform, transpose_b=True) + mean_t
    out = tf.cast(tf.clip_by_value(out, 0.0, 255.0), tf.float32)
    return tf.reshape(out, tf.shape(source))


# ----- the modes, as a run applies them (the library and the exported graph alike)
# ``mode`` is one of ``options.PRESERVE_COLORS``, as a Python string (the library) or a scalar string
# tensor (the exported signature's input). With a Python "none" the image comes back as
# given, not converted.


def recolor_style(style, content, mode):
    """A style image, or a start image taken from it, as the run uses it under ``mode``:
    colour-matched (``histogram``), luminance-matched grey (``luminance``) or as is."""
    if isinstance(mode, str):
        if mode == "histogram":
            return match_color_histogram(style, content)
        if mode == "luminance":
            return match_luminance(style, content)
        return style
    return tf.case([(tf.equal(mode, "histogram"), lambda: match_color_histogram(style, content)),
                    (tf.equal(mode, "luminance"), lambda: match_luminance(style, content))],
                   default=lambda: _as_image(style))


def optimised_content(image, mode):
    """The content (or a start image) as the loss sees it: its grey luminance under
    ``luminance``, else as is."""
    if isinstance(mode, str):
        return luminance(image) if mode == "luminance" else image
    return tf.cond(tf.equal(mode, "luminance"), lambda: luminance(image),
                   lambda: _as_image(image))


def restore_colors(result, content, mode):
    """The finished image under ``mode``: the content's chroma put back under
    ``luminance`` (the run saw grey images), else as is."""
    if isinstance(mode, str):
        return combine_luminance_chroma(result, content) if mode == "luminance" else result
    return tf.cond(tf.equal(mode, "luminance"),
                   lambda: combine_luminance_chroma(result, content),
                   lambda: _as_image(result))
