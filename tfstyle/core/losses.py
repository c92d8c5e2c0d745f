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
   activation over ImageNet is 1: one scale per layer, shared by every image. We cannot
   run ImageNet, so the photo stands in for it: at each layer, content or style, the
   features of all three images (the one being optimised, the photo, the painting)
   are divided by the photo's mean activation there, s_photo. Keras' VGG19, VGG16 and
   random weights all differ in activation scale by orders of magnitude; after this
   they agree. A shared scale keeps what the paper's fixed one kept: a painting whose
   features are stronger than the photo's at a layer (r = s_painting / s_photo > 1)
   pulls harder there, its covariance term by r⁴ and its mean term by r². (Dividing
   the painting by its own scale instead, as tfstyle did before, put every painting at
   r = 1; git show 2ab786b:BENCHMARKS.md, "The photo's feature scale".) r is clipped to
   [1/2, 2], so a dark or flat photo moves a layer's term at most 16-fold. The
   painting's statistics are kept on its own scale (``StyleTargets``, shared by a
   clip's frames) and put on the photo's in ``combine``.
2. **Image size.** E_l is already size independent (G grows like M, and is divided
   by M²), but ½ Σ (F − P)² grows with the number of positions M. The content term is
   divided by M: it becomes ½ Σ_channels mean_positions (F − P)². Total variation is
   likewise a mean over pixels.

With these, α/β = 1e-3 gives about the balance of the paper's Fig. 3 at 1e-3: the
style dominates the texture and colours, the content's layout stays recognisable.

Control (Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer", CVPR
2017): several styles blend as the weighted mix of their per-position Gram matrices;
a mask restricts a style to a region by weighting the positions of the Gram matrix
(``sums_moments``); ``style_distance`` also offers a mean-and-covariance alternative to the
Gram loss.

Edges: the content term may weigh each position by w_p (``edge_weights``: the photo's
edge energy in that layer's features, to a power g, mean 1), ½ Σ_p w_p Σ_c (F − P)²,
so that the photo's flat regions hold the painting less and its edges more; at g = 0
(the default) w = 1, the term above.
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


def content_loss(features: tf.Tensor, target: tf.Tensor, weights=None) -> tf.Tensor:
    """The paper's content loss ½ Σ (F − P)², a scalar. Both (…, N) of equal shape;
    ``weights`` None, or (…, 1) per position (``edge_weights``): ½ Σ w (F − P)²."""
    squares = tf.square(features - target)
    return 0.5 * tf.reduce_sum(squares if weights is None else weights * squares)


def edge_weights(target: tf.Tensor, power) -> tf.Tensor:
    """Per-position weights of the content term that follow the photo's edges.

    w = (E / mean E)^g, renormalised to mean 1, with E at each position the edge energy
    of the content target P: Σ_channels (|P[y+1, x] − P[y, x]| + |P[y, x+1] − P[y, x]|),
    averaged over 3 × 3 positions. Where the photo is flat (a sky, a wall) the content
    term only holds a flat colour, and the style term is free to paint there; the
    weight moves the term's share from there to the edges, which are the shapes a
    viewer reads. g = 0 gives 1 everywhere (the paper's term). E is a ratio to its own
    mean, of features already divided by their scale, so no constant depends on a
    network's activation scale.

    Args:
      target: P, (1, h, w, N) float32, the scale-normalised content features.
      power: g ≥ 0, a float or float32 scalar tensor.

    Returns:
      (1, h, w, 1) float32, positive, mean 1.
    """
    dy = tf.pad(tf.abs(target[:, 1:] - target[:, :-1]), [[0, 0], [0, 1], [0, 0], [0, 0]])
    dx = tf.pad(tf.abs(target[:, :, 1:] - target[:, :, :-1]), [[0, 0], [0, 0], [0, 1], [0, 0]])
    energy = tf.nn.avg_pool2d(tf.reduce_sum(dx + dy, -1, keepdims=True), 3, 1, "SAME")
    # The small offsets keep a flat (all-zero) map finite: it gives 1 everywhere.
    weight = tf.pow(energy / (tf.reduce_mean(energy) + 1e-12) + 1e-6, power)
    return weight / tf.reduce_mean(weight)


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


def temporal_loss(image: tf.Tensor, target: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """Ruder et al.'s short-term consistency (1/D) Σ c (x − ω)², a scalar.

    Args:
      image: x, the frame being optimised, (1, H, W, 3) in [0, 255].
      target: ω, the previous stylized frame warped to this one, (1, H, W, 3) in [0, 255].
      weight: c, per pixel (1, H, W, 1) in [0, 1]: 0 where ω is not this frame's content
        (disoccluded, at motion boundaries, or come from outside the frame).

    The pixels are taken on [0, 1] (as total variation is) and D = H·W·3 is the number
    of values, so the term is a mean and its weight does not depend on the frame size.
    """
    x = tf.cast(image, tf.float32) / 255.0
    omega = tf.cast(target, tf.float32) / 255.0
    values = tf.cast(tf.size(x), tf.float32)
    return tf.reduce_sum(tf.cast(weight, tf.float32) * tf.square(x - omega)) / values


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


class LayerSums(NamedTuple):
    """Sums over the positions p of one (N-channel) feature map, with weights w_p
    (1 without a mask): what the style statistics are made of. Sums of disjoint sets
    of positions add up, which is what lets a large image be evaluated tile by tile
    (``tfstyle.core.tiling``).

    second: (N, N) Σ_p w_p F_p F_pᵀ. first: (N,) Σ_p w_p F_p. weight: Σ_p w_p.
    magnitude: Σ_p |F_p| summed over channels too, unweighted (for ``sums_scale``).
    count: the number of positions, unweighted.
    """
    second: tf.Tensor
    first: tf.Tensor
    weight: tf.Tensor
    magnitude: tf.Tensor
    count: tf.Tensor


def mask_weights(mask: tf.Tensor, shape) -> tf.Tensor:
    """A mask (1, H, W, 1) in [0, 1] area-resized to a feature map's (h, w): each
    position weighs by how much of its cell the mask covers. (1, h, w, 1) float32."""
    return tf.image.resize(tf.cast(mask, tf.float32), shape, "area")


def layer_sums(features: tf.Tensor, weights: tf.Tensor | None = None) -> LayerSums:
    """``LayerSums`` of a feature map (1, h, w, N), float32; ``weights`` None or
    (1, h, w, 1) (``mask_weights``)."""
    flat = tf.reshape(tf.cast(features, tf.float32), (-1, tf.shape(features)[-1]))
    count = tf.cast(tf.shape(flat)[0], tf.float32)
    magnitude = tf.reduce_sum(tf.abs(flat))
    if weights is None:
        return LayerSums(tf.matmul(flat, flat, transpose_a=True), tf.reduce_sum(flat, 0),
                         count, magnitude, count)
    weights = tf.reshape(weights, (-1, 1))
    return LayerSums(tf.matmul(flat, flat * weights, transpose_a=True),
                     tf.reduce_sum(flat * weights, 0), tf.reduce_sum(weights), magnitude, count)


def sums_moments(sums: LayerSums, scale=1.0):
    """Per-position second moment and mean of a feature map F / ``scale``, weighted by
    the mask its ``LayerSums`` were taken with (``mask_weights``), from those sums.

    Returns:
      (S, mu, area): S (N, N) = Σ_p m_p F_p F_pᵀ / Σ_p m_p (the Gram matrix divided by
      the number of positions when unmasked), mu (N,) the weighted mean, and area the
      scalar Σ_p m_p (the number of positions when unmasked).
    """
    # An empty region has no statistics; the caller drops its term (see StyleLoss).
    safe = tf.maximum(sums.weight, 1e-6)
    return sums.second / (safe * scale * scale), sums.first / (safe * scale), sums.weight


def style_distance(second, mean, target_second, target_mean, kind="gram") -> tf.Tensor:
    """Distance between two feature distributions of N channels, a scalar.

    ``gram``: the paper's Σ (S − A)² / (4 N²) between per-position Gram matrices (the
    paper's E_l, since its G and A are M times S and A at M positions).
    ``mean_cov``: Σ (C − C_t)² / (4 N²) + Σ (μ − μ_t)² / N with the centred covariances
    C = S − μμᵀ. A Gram matrix mixes the mean into the covariance, so the large mean
    activations dominate it; matching mean and covariance apart weighs the feature
    correlations that make up the texture on their own (Li et al., "Demystifying
    Neural Style Transfer", IJCAI 2017, show Gram matching is one choice of such
    statistics); it tends to smoother, less saturated textures (docs/gallery/loss.png).
    ``kind`` may be a Python string or a scalar string tensor (the exported model).
    """
    n = tf.cast(tf.shape(second)[-1], second.dtype)
    # One formula for both: with c = 0 it is the Gram distance, with c = 1 mean_cov.
    # Python string or string tensor, the same ops run (the library and the exported
    # graph then agree to the bit).
    c = tf.cast(tf.equal(kind, "mean_cov"), second.dtype)
    if isinstance(kind, str) and kind not in ("gram", "mean_cov"):
        raise ValueError(f"unknown style distance {kind!r}")
    cov = second - c * mean[:, None] * mean[None, :]
    target_cov = target_second - c * target_mean[:, None] * target_mean[None, :]
    return (tf.reduce_sum(tf.square(cov - target_cov)) / (4.0 * n * n)
            + c * tf.reduce_sum(tf.square(mean - target_mean)) / n)


def default_style_layer_weights(count: int) -> tuple:
    """w_l ∝ 4^−l over ``count`` style layers, shallowest first, summing to 1.

    The paper weighs its five layers equally. Weighing each layer a quarter of the one
    before keeps the painting's colours and brush texture (the shallow layers) strong
    against the deep layers' large-scale statistics, which at equal weights smear the
    photo's layout (the probes that chose it, at the defaults of their day: git show
    2ab786b:BENCHMARKS.md, "Quality: the default run against jcjohnson/neural-style").
    """
    raw = [4.0 ** -l for l in range(count)]
    return tuple(w / sum(raw) for w in raw)


def strength_weights(content_weight, style_weight, tv_weight, strength, default_strength,
                     reach):
    """(α, β, γ) for a style strength s in [0, 1]: one knob along the content/style trade-off.

        α = content_weight · ((1 + ε − s) / (1 + ε − s₀))²,
        β = style_weight · (s / s₀)²,   γ = tv_weight · (s / s₀)²,
        ε = (1 − s₀) / (s₀ √reach − 1)

    so the ratio β/α is the given weights' at the default s₀, 0 at s = 0 (only the content
    term is left: from the content init the photo itself comes back), and ``reach`` times
    the default's at s = 1. It rises monotonically in between (α falls, β rises). The
    ratio stops at a finite multiple because past it the picture carries *less* of the
    painting, not more: with no content term the painting's statistics are matched by a
    texture that has lost the scene's shapes, and the style measures fall (git show
    2ab786b:BENCHMARKS.md, "The strength knob" and "The knob at 5 times"; the knob now:
    BENCHMARKS.md, "The knob"). γ follows β: total variation is there to hold back the
    noise that the style term brings.

    Floats or float32 scalar tensors (the exported signature); ``default_strength`` is a
    float in (0, 1) and ``reach`` a float above 1 / default_strength².
    """
    root = default_strength * reach ** 0.5
    if root <= 1.0:
        raise ValueError(f"reach {reach} must exceed 1 / default_strength² = "
                         f"{1.0 / default_strength ** 2:g}")
    offset = (1.0 - default_strength) / (root - 1.0)
    keep = (1.0 + offset - strength) / (1.0 + offset - default_strength)
    paint = style_factor(strength, default_strength)
    return content_weight * keep * keep, style_weight * paint, tv_weight * paint


def stage_strength(strength, last, default_strength):
    """The style strength one coarse-to-fine stage runs at: s at the last (full-size)
    stage, min(s, s₀) before it.

    The coarse stages form the picture's layout; a style term stronger than the
    default's there grew the painting's layout from the blend start, then the default (a
    figure's dark ghost), instead of adding painting, and the style measures fell above
    s₀ (git show 2ab786b:BENCHMARKS.md, "The knob's top, probed"). So above the default
    the knob acts at full size only; at or below it every stage runs at s.

    ``strength``: a float, or a float32 scalar tensor (the exported signature); ``last``:
    a Python bool, or a bool scalar tensor; ``default_strength``: s₀, a float. Returns a
    float where both are Python values, else a float32 scalar tensor.
    """
    if isinstance(last, bool) and not tf.is_tensor(strength):
        return strength if last else min(strength, default_strength)
    strength = tf.cast(strength, tf.float32)
    return tf.where(last, strength, tf.minimum(strength, default_strength))


def style_factor(strength, default_strength):
    """(s / s₀)²: what β, γ and the temporal weight are multiplied by at strength s."""
    paint = strength / default_strength
    return paint * paint


class Targets(NamedTuple):
    """What the loss compares against, computed once per (content, styles) input.

    content: features P of the content image, one (1, h, w, N) tensor per content layer,
      already divided by ``content_scales``.
    style_grams: per style *group*, per style layer, the (N, N) per-position second
      moment A of the scale-normalised style features (Gram / positions), so that styles
      of any size compare with any output size. Without masks there is one group, the
      blend of all styles: Σ_k w_k A_k.
    style_means: likewise, the (N,) feature means (for ``mean_cov``).
    content_scales: the photo's feature scale (mean activation) at each content layer.
    painting_scales: the painting's feature scale at each style layer (for several
      styles, the blend of theirs), which ``style_grams`` and ``style_means`` are on.
    photo_style_scales: the photo's feature scale at each style layer, the scale the
      style term compares on (module docstring, "Feature scale").
    style_masks: () without masks; else one (1, H, W, 1) mask in [0, 1] over the output
      image per group, the region where that group's style applies.
    content_weights: () for the paper's content term; else per content layer the
      (1, h, w, 1) ``edge_weights`` of its target, mean 1 over the whole map.
    temporal: () for a still image; for a video frame (target, weight): the previous
      stylized frame warped to this one, (1, H, W, 3) in [0, 255], and the per-pixel
      weight c (1, H, W, 1) in [0, 1] of ``temporal_loss``.
    """
    content: tuple
    style_grams: tuple
    style_means: tuple
    content_scales: tuple
    painting_scales: tuple
    photo_style_scales: tuple
    style_masks: tuple = ()
    content_weights: tuple = ()
    temporal: tuple = ()


class ContentTargets(NamedTuple):
    """The content part of ``Targets`` (its content, content_scales,
    photo_style_scales and content_weights): computed once per photo or frame."""
    content: tuple
    content_scales: tuple
    photo_style_scales: tuple
    weights: tuple = ()


class StyleTargets(NamedTuple):
    """The style part of ``Targets`` (its style_grams, style_means, painting_scales and
    style_masks): computed once for a clip's frames or a folder's photos."""
    grams: tuple
    means: tuple
    painting_scales: tuple
    masks: tuple = ()


def join_targets(content: ContentTargets, style: StyleTargets) -> Targets:
    """``Targets`` from its content part (``StyleLoss.content_targets``) and its style
    part (``StyleLoss.style_targets``)."""
    return Targets(content.content, style.grams, style.means, content.content_scales,
                   style.painting_scales, content.photo_style_scales, style.masks,
                   content.weights)


class LossTerms(NamedTuple):
    """Weighted loss terms, each a float32 scalar: total = content + style + tv
    + temporal (0 for a still image)."""
    total: tf.Tensor
    content: tf.Tensor
    style: tf.Tensor
    tv: tf.Tensor
    temporal: tf.Tensor


def feature_scale(features: tf.Tensor) -> tf.Tensor:
    """Mean activation of a (rectified) feature map (1, h, w, N), guarded against dead
    layers: a float32 scalar > 0. Equal, bit for bit, to ``sums_scale`` of the map's
    ``LayerSums``, without forming their N×N second moment."""
    return _magnitudes_scale(tf.abs(tf.cast(features, tf.float32)))


def _magnitudes_scale(magnitudes: tf.Tensor) -> tf.Tensor:
    """``feature_scale`` of a map from its magnitudes |F| (float32)."""
    flat = tf.reshape(magnitudes, (-1, tf.shape(magnitudes)[-1]))
    return _mean_magnitude(tf.reduce_sum(flat), tf.cast(tf.shape(flat)[0], tf.float32),
                           tf.shape(flat)[1])


def sums_scale(sums: LayerSums) -> tf.Tensor:
    """``feature_scale`` from a feature map's ``LayerSums`` (what a tiled pass adds up)."""
    return _mean_magnitude(sums.magnitude, sums.count, tf.shape(sums.first)[0])


def _mean_magnitude(magnitude, count, channels):
    mean = magnitude / (count * tf.cast(channels, tf.float32))
    return tf.where(mean > 1e-12, mean, tf.ones_like(mean))


class StyleLoss:
    """α·content + β·style + γ·TV with the normalisations of the module docstring.

    Args:
      content_layers: Keras names of the content layers, in feature-model output order.
      style_layers: Keras names of the style layers, in feature-model output order.
      content_weight: α ≥ 0 (a float, or a float32 scalar tensor).
      style_weight: β ≥ 0 (likewise).
      tv_weight: γ ≥ 0 (likewise), on the image scaled to [0, 1].
      style_layer_weights: w_l per style layer; default ``default_style_layer_weights``
        (each a quarter of the one before; the paper's were 0.2 each).
      content_layer_weights: per content layer; default 1 each.
      content_edge_powers: per content layer, the power g ≥ 0 of ``edge_weights``, the
        content term's weight per position; default 0 each (the paper's uniform term).
      style_loss: ``gram`` (the paper's) or ``mean_cov`` (see ``style_distance``); a
        string, or a scalar string tensor.
      temporal_weight: λ ≥ 0 of ``temporal_loss``, used where the targets carry a
        temporal target (video frames after the first).
    """

    def __init__(self, content_layers: Sequence[str], style_layers: Sequence[str],
                 content_weight: float, style_weight: float, tv_weight: float,
                 style_layer_weights: Sequence[float] | None = None,
                 content_layer_weights: Sequence[float] | None = None,
                 style_loss="gram", temporal_weight=0.0,
                 content_edge_powers: Sequence[float] | None = None):
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layers)
        # Floats in the library; scalar tensors in the exported signature.
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.style_layer_weights = tuple(style_layer_weights
                                         or default_style_layer_weights(len(self.style_layers)))
        self.content_layer_weights = tuple(content_layer_weights or [1.0] * len(self.content_layers))
        self.content_edge_powers = tuple(float(g) for g in (
            content_edge_powers or [0.0] * len(self.content_layers)))
        self.style_loss = style_loss
        self.temporal_weight = temporal_weight

    def content_targets(self, content_features: Sequence[tf.Tensor],
                        photo_style_scales: Sequence[tf.Tensor]) -> ContentTargets:
        """The part of ``Targets`` that depends on the content image only, from its
        content-layer features in layer order (whole maps: a weight's mean is over all
        positions, so tiles slice the weights, never compute them) and the
        ``feature_scale`` of each of its style layers (float32 scalars, in layer order;
        a tiled pass gets them by ``sums_scale``)."""
        # Losses are float32 whatever the network computes in (bfloat16, float64).
        # Every feature map is rectified (tfstyle.core.features), so |F| is F (but for the
        # sign of a zero, which no term sees): the target is made from the magnitudes
        # its scale sums, which the graph computes in F's place. F and a copy of it
        # were two whole maps at once, 1.5 GiB at conv2_2 of a 4096 px photo
        # (BENCHMARKS.md, "Print").
        magnitudes = [tf.abs(tf.cast(f, tf.float32)) for f in content_features]
        scales = tuple(_magnitudes_scale(m) for m in magnitudes)
        photo_style_scales = tuple(photo_style_scales)
        content = tuple(m / s for m, s in zip(magnitudes, scales))
        weights = ()
        # A Python branch: at the default powers of 0 the graph has no weight maps.
        if any(self.content_edge_powers):
            weights = tuple(edge_weights(p, g)
                            for p, g in zip(content, self.content_edge_powers))
        return ContentTargets(content, scales, photo_style_scales, weights)

    def style_targets(self, style_sums, blend_weights=None, masks=()) -> StyleTargets:
        """The part of ``Targets`` that depends on the styles, their blend and the
        masks only (so a clip's frames share it).

        Args:
          style_sums: the style images' ``LayerSums``, a list per style, one per style
            layer in layer order.
          blend_weights: one weight ≥ 0 per style, summing to 1 (floats or a float32
            vector); default equal. Without masks the style target is the blend
            Σ_k w_k A_k of the styles' moments (a weight of 0 drops a style).
          masks: () for no spatial control. Else a sequence of (1, H, W, 1) masks over
            the output image, either one (all styles, blended, apply inside it) or one
            per style (style k applies inside mask k, with its own target).
        """
        if blend_weights is None:
            blend_weights = [1.0 / len(style_sums)] * len(style_sums)
        weights = [blend_weights[k] for k in range(len(style_sums))]
        # One scale per layer for all styles (the image's features are divided by it):
        # the blend of the styles' scales, exactly the style's own for one style.
        painting_scales = tuple(_blend(weights, [sums_scale(ss[layer]) for ss in style_sums])
                                for layer in range(len(self.style_layers)))
        per_style = [[sums_moments(sums, s)[:2] for sums, s in zip(ss, painting_scales)]
                     for ss in style_sums]
        masks = tuple(masks)
        if len(masks) > 1:  # one region per style, each with its own target
            if len(masks) != len(style_sums):
                raise ValueError(f"{len(masks)} masks for {len(style_sums)} styles")
            groups = per_style
        else:
            groups = [[(_blend(weights, [ps[layer][0] for ps in per_style]),
                        _blend(weights, [ps[layer][1] for ps in per_style]))
                       for layer in range(len(self.style_layers))]]
        grams = tuple(tuple(a for a, _ in g) for g in groups)
        means = tuple(tuple(mu for _, mu in g) for g in groups)
        return StyleTargets(grams, means, painting_scales, masks)

    def __call__(self, image: tf.Tensor, content_features: Sequence[tf.Tensor],
                 style_features: Sequence[tf.Tensor], targets: Targets) -> LossTerms:
        """The weighted loss terms of ``image`` (1, H, W, 3) in [0, 255], given its
        features at the content and style layers."""
        weights = self.style_weights_maps(targets, [tf.shape(f)[1:3] for f in style_features])
        return self.combine(image, self.content_sums(content_features, targets.content,
                                                     targets),
                            [tf.cast(tf.reduce_prod(tf.shape(f)[1:3]), tf.float32)
                             for f in content_features],
                            self.style_sums(style_features, weights), targets)

    # The loss as a function of sums over positions, in three pieces, so that a tiled
    # evaluation (``tfstyle.core.tiling``) adds the sums up tile by tile and runs ``combine``
    # once: ``content_sums`` and ``style_sums`` of disjoint positions add up.

    def style_weights_maps(self, targets: Targets, shapes) -> tuple:
        """Per style group, per style layer: the group's mask area-resized to that
        layer's (h, w) in ``shapes``, or (None,) per layer without masks."""
        if not targets.style_masks:
            return ((None,) * len(self.style_layers),)
        return tuple(tuple(mask_weights(m, shape) for shape in shapes)
                     for m in targets.style_masks)

    def content_sums(self, content_features, content_targets, targets: Targets,
                     content_weights=None) -> tuple:
        """Per content layer, Σ_positions ½ w Σ_channels (F / s − P)² of features F and
        targets P (both (1, h, w, N), the same positions), with w the targets'
        ``content_weights`` at those positions (``content_weights``, sliced by a tile;
        default the targets' own), or 1 without them."""
        if content_weights is None:
            content_weights = targets.content_weights
        weights = content_weights or (None,) * len(content_targets)
        return tuple(content_loss(tf.cast(f, tf.float32) / s, p, w)
                     for f, p, s, w in zip(content_features, content_targets,
                                           targets.content_scales, weights))

    def style_sums(self, style_features, weights_maps) -> tuple:
        """Per style group, per style layer, the ``LayerSums`` of the features, weighted
        by that group's ``style_weights_maps`` (sliced to the same positions)."""
        return tuple(tuple(layer_sums(f, w) for f, w in zip(style_features, maps))
                     for maps in weights_maps)

    def combine(self, image, content_sums, content_positions, style_sums,
                targets: Targets) -> LossTerms:
        """The weighted terms from the sums over all positions of the image's feature
        maps: ``content_sums`` and their maps' position counts, ``style_sums``; and the
        total variation of ``image`` (1, H, W, 3) in [0, 255]."""
        content = tf.constant(0.0)
        for w, part, positions in zip(self.content_layer_weights, content_sums,
                                      content_positions):
            content += w * part / positions
        style = tf.constant(0.0)
        masked = bool(targets.style_masks)
        for group, sums in enumerate(style_sums):
            for layer, (w, layer_sum, s, s_photo) in enumerate(zip(
                    self.style_layer_weights, sums, targets.painting_scales,
                    targets.photo_style_scales)):
                # The targets are on the painting's scale s; r puts them and the image
                # on the photo's (module docstring, "Feature scale").
                r = photo_ratio(s, s_photo)
                second, mean, area = sums_moments(layer_sum, s / r)
                term = style_distance(second, mean, targets.style_grams[group][layer] * r * r,
                                      targets.style_means[group][layer] * r, self.style_loss)
                if masked:
                    # Each region counts by its share of the image, so two regions
                    # covering it add up to one unmasked style loss.
                    term *= area / layer_sum.count
                style += w * term
        pixels = tf.cast(tf.reduce_prod(tf.shape(image)[1:3]), tf.float32)
        tv = total_variation(tf.cast(image, tf.float32) / 255.0) / pixels
        content = self.content_weight * content
        style = self.style_weight * style
        tv = self.tv_weight * tv
        total = content + style + tv
        temporal = tf.constant(0.0)
        if targets.temporal:  # a Python branch: a still image's graph has no such term
            temporal = self.temporal_weight * temporal_loss(image, *targets.temporal)
            total = total + temporal
        return LossTerms(total, content, style, tv, temporal)


PHOTO_RATIO_LIMIT = 2.0


def photo_ratio(style_scale, photo_scale) -> tf.Tensor:
    """r = s_painting / s_photo at one layer, clipped to [1 / limit, limit] with limit
    ``PHOTO_RATIO_LIMIT``: the painting's features on the photo's scale are r times
    those on its own. The clip bounds how far a dark or flat photo (small s_photo) can
    turn a layer's style term up. Float32 scalar."""
    ratio = tf.cast(style_scale, tf.float32) / tf.cast(photo_scale, tf.float32)
    return tf.clip_by_value(ratio, 1.0 / PHOTO_RATIO_LIMIT, PHOTO_RATIO_LIMIT)


def _blend(weights, values):
    """Σ_k w_k v_k, exactly v_0 for a single value of weight 1."""
    total = weights[0] * values[0]
    for w, v in zip(weights[1:], values[1:]):
        total += w * v
    return total
