"""The losses of Gatys et al. (CVPR 2016), and the normalisation that makes their weights portable.

The paper's terms, for a layer with N feature maps of M positions each, features F of
the image being optimised, P of the content image, Gram matrices G = F Fᵀ and A of the
style image:

    content   L_c = ½ Σ (F − P)²
    style     E_l = 1 / (4 N² M²) Σ (G − A)²,   L_s = Σ_l w_l E_l
    total     L = α L_c + β L_s (+ γ TV, not in the paper)

``content_loss``, ``style_layer_loss``, ``gram_matrix`` and ``total_variation`` compute
exactly these. ``StyleLoss`` combines them, after two normalisations (this is what lets
one set of weights, the paper's α/β = 1e-3, work across image sizes and backbones):

1. **Feature scale.** Gatys et al. rescaled their VGG so that each filter's mean
   activation over ImageNet is 1. We cannot run ImageNet, so each layer's features are
   divided by the mean activation of that layer's *target* (the content image for
   content layers, the style image for style layers). Keras' VGG19, VGG16 and random
   weights all differ in activation scale by orders of magnitude; after this they agree.
2. **Image size.** E_l is already size independent (G grows like M, and is divided
   by M²), but ½ Σ (F − P)² grows with the number of positions M. The content term is
   divided by M: it becomes ½ Σ_channels mean_positions (F − P)². Total variation is
   likewise a mean over pixels.

With these, α/β = 1e-3 gives about the balance of the paper's Fig. 3 at 1e-3: the
style dominates the texture and colours, the content's layout stays recognisable.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import tensorflow as tf

def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """Unnormalised Gram matrix G = Fᵀ F of one feature map.

    Args:
      features: (1, H, W, N) or (H, W, N).

    Returns:
      (N, N) float tensor, G[i, j] = Σ_positions F[p, i] F[p, j].
    """
    flat = tf.reshape(features, (-1, tf.shape(features)[-1]))
    return tf.matmul(flat, flat, transpose_a=True)


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """The paper's content loss ½ Σ (F − P)², a scalar. Both (…, N) of equal shape."""
    return 0.5 * tf.reduce_sum(tf.square(features - target))


def style_layer_loss(features: tf.Tensor, target_gram: tf.Tensor) -> tf.Tensor:
    """The paper's E_l = Σ (G − A)² / (4 N² M²), a scalar.

    Args:
      features: (1, H, W, N) features of the image being optimised; M = H·W.
      target_gram: (N, N) Gram matrix A of the style image's features at M positions.
        The paper takes both images at one size; ``StyleLoss`` rescales a style Gram
        taken at another size by M / M_style, which keeps the per-position statistics.
    """
    shape = tf.shape(features)
    n = tf.cast(shape[-1], features.dtype)
    m = tf.cast(tf.reduce_prod(shape[:-1]), features.dtype)
    g = gram_matrix(features)
    return tf.reduce_sum(tf.square(g - target_gram)) / (4.0 * n * n * m * m)


def total_variation(image: tf.Tensor) -> tf.Tensor:
    """Σ of squared differences between vertically and horizontally adjacent pixels.

    Args:
      image: (1, H, W, C), any value range.

    Returns:
      A scalar: Σ (x[i+1, j] − x[i, j])² + Σ (x[i, j+1] − x[i, j])² over all channels.
    """
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_sum(tf.square(dy)) + tf.reduce_sum(tf.square(dx))


class Targets(NamedTuple):
    """What the loss compares against, computed once per (content, style) pair.

    content: features P of the content image, one (1, h, w, N) tensor per content layer,
      already divided by ``content_scales``.
    style_grams: Gram matrices A / M of the style image, one (N, N) per style layer, of
      the scale-normalised features, divided by the style image's M so that styles of
      any size compare with any output size.
    content_scales, style_scales: the per-layer feature scale (mean target activation).
    """
    content: tuple
    style_grams: tuple
    content_scales: tuple
    style_scales: tuple


class LossTerms(NamedTuple):
    """Weighted loss terms, each a float32 scalar: total = content + style + tv."""
    total: tf.Tensor
    content: tf.Tensor
    style: tf.Tensor
    tv: tf.Tensor


def feature_scale(features: tf.Tensor) -> tf.Tensor:
    """Mean activation of a (rectified) feature map, guarded against dead layers."""
    mean = tf.reduce_mean(tf.abs(features))
    return tf.where(mean > 1e-12, mean, tf.ones_like(mean))


class StyleLoss:
    """α·content + β·style + γ·TV with the normalisations of the module docstring.

    Args:
      content_layers: Keras names of the content layers, in feature-model output order.
      style_layers: Keras names of the style layers, in feature-model output order.
      content_weight: α ≥ 0 (a float, or a float32 scalar tensor).
      style_weight: β ≥ 0 (likewise).
      tv_weight: γ ≥ 0 (likewise), on the image scaled to [0, 1].
      style_layer_weights: w_l per style layer; default 1 / (number of style layers),
        the paper's 0.2 for its five layers.
      content_layer_weights: per content layer; default 1 each.
    """

    def __init__(self, content_layers: Sequence[str], style_layers: Sequence[str],
                 content_weight: float, style_weight: float, tv_weight: float,
                 style_layer_weights: Sequence[float] | None = None,
                 content_layer_weights: Sequence[float] | None = None):
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layers)
        # Floats in the library; scalar tensors in the exported signature.
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        n_style = max(len(self.style_layers), 1)
        self.style_layer_weights = tuple(style_layer_weights or [1.0 / n_style] * n_style)
        self.content_layer_weights = tuple(content_layer_weights or [1.0] * len(self.content_layers))

    def targets(self, content_features: Sequence[tf.Tensor],
                style_features: Sequence[tf.Tensor]) -> Targets:
        """Targets from the content image's content-layer features and the style
        image's style-layer features (both in this loss's layer order)."""
        # Losses are float32 whatever the network computes in (bfloat16, float64).
        content_features = [tf.cast(f, tf.float32) for f in content_features]
        style_features = [tf.cast(f, tf.float32) for f in style_features]
        c_scales = tuple(feature_scale(f) for f in content_features)
        s_scales = tuple(feature_scale(f) for f in style_features)
        content = tuple(f / s for f, s in zip(content_features, c_scales))
        grams = []
        for f, s in zip(style_features, s_scales):
            m = tf.cast(tf.reduce_prod(tf.shape(f)[:-1]), f.dtype)
            grams.append(gram_matrix(f / s) / m)
        return Targets(content, tuple(grams), c_scales, s_scales)

    def __call__(self, image: tf.Tensor, content_features: Sequence[tf.Tensor],
                 style_features: Sequence[tf.Tensor], targets: Targets) -> LossTerms:
        """The weighted loss terms of ``image`` (1, H, W, 3) in [0, 255], given its
        features at the content and style layers."""
        content = tf.constant(0.0)
        for w, f, p, s in zip(self.content_layer_weights, content_features, targets.content,
                              targets.content_scales):
            f = tf.cast(f, tf.float32) / s
            positions = tf.cast(tf.reduce_prod(tf.shape(f)[:-1]), tf.float32)
            content += w * content_loss(f, p) / positions
        style = tf.constant(0.0)
        for w, f, a, s in zip(self.style_layer_weights, style_features, targets.style_grams,
                              targets.style_scales):
            f = tf.cast(f, tf.float32) / s
            m = tf.cast(tf.reduce_prod(tf.shape(f)[:-1]), tf.float32)
            style += w * style_layer_loss(f, a * m)
        pixels = tf.cast(tf.reduce_prod(tf.shape(image)[1:3]), tf.float32)
        tv = total_variation(tf.cast(image, tf.float32) / 255.0) / pixels
        content = self.content_weight * content
        style = self.style_weight * style
        tv = self.tv_weight * tv
        return LossTerms(content + style + tv, content, style, tv)
