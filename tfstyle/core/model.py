"""The feature model and the loss on it: ``StyleModel``, every tensor function of one
step (features, targets, the loss and its gradient, one optimiser update).

``tfstyle.core.stages`` runs those steps as a stage of a run.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfstyle.core.features import build_feature_model, feature_layers, layer_stride, resolve_layers
from tfstyle.core.losses import StyleLoss, Targets, feature_scale, join_targets, layer_sums
from tfstyle.core.precision import resolve_precision
from tfstyle.core.tiling import TiledLoss, Tiling, default_halo, receptive_halo
from tfstyle.errors import ConfigError
from tfstyle.options import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, RunOptions


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
