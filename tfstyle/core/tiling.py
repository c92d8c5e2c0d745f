"""The loss and its gradient tile by tile, in memory bounded by the tile.

Why it can be exact: every term of the loss is a function of sums over the positions
of the image's feature maps (``losses.StyleLoss.combine``): the content term sums
per-position errors, and the style statistics (Gram matrices, or means and
covariances) are ``LayerSums`` Σ_p w_p F_p F_pᵀ and Σ_p w_p F_p. Sums over disjoint
sets of positions add up. So the positions are split among tiles: a tile *owns* the
positions whose cell lies in its square of the image, and it is evaluated on a crop
of the image that adds a *halo* of context on every side (clipped at the image's
border, where the whole image has the same zero padding). With a halo as wide as
the receptive field of the deepest layer used, an owned position's features in the
crop equal the whole image's; crops start on a multiple of the deepest layer's
stride, so that every pooling grid lines up.

One evaluation is then two passes over the tiles:

1. **Sums.** Run the network on each crop, and add up the owned positions' content
   errors and style sums. ``combine`` turns the totals into the loss terms, and the
   derivative of the total loss with respect to each sum (a few N×N matrices) is
   taken once, with the total variation's gradient, which needs no network.
2. **Gradient.** For each crop, backpropagate Σ_sums ⟨∂L/∂sum, the tile's sum⟩ (the
   derivatives of pass one held fixed) to the crop's pixels, and add that into the
   image's gradient. By the chain rule the total is ∂L/∂image, to rounding.

Peak memory is then a tile's forward and backward pass, plus a few image-sized
buffers, whatever the image's size. The price is a second forward pass per tile and
the halo's recomputation. A smaller halo than the receptive field trades exactness
for speed: positions near a tile's edge see zero padding instead of their
neighbours. The default (``default_halo``) is half the exact one: faster, with no
visible change in the pictures (``default_halo`` says why; the measurements:
BENCHMARKS.md, "Tiled steps").
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfstyle.core.features import layer_names, layer_stride
from tfstyle.core.losses import StyleLoss, Targets, sums_scale


class Tiling(NamedTuple):
    """tile: the side of the square of the image a tile owns, pixels, a multiple of
    the deepest layer's stride. halo: pixels of context on each side of it."""
    tile: int
    halo: int


def receptive_halo(layers, backbone: str = "vgg19") -> int:
    """The halo that makes tiles exact: the farthest an input pixel lies from the
    cell of any position it influences, over the Keras ``layers`` used, in pixels.

    A position q of a layer of stride s covers input pixels [q·s − left, q·s + right]:
    each 3×3 convolution widens that by the stride on both sides, each 2×2 pooling by
    the stride on the right, then doubles the stride. The cell of q is
    [q·s, q·s + s − 1], so the halo is max(left, right − s + 1).
    """
    wanted = set(layers)
    stride, left, right, halo = 1, 0, 0, 0
    for name in layer_names(backbone):
        if name.endswith("_pool"):
            right += stride
            stride *= 2
        else:
            left += stride
            right += stride
        if name in wanted:
            halo = max(halo, left, right - stride + 1)
            wanted.discard(name)
        if not wanted:
            break
    return halo


def default_halo(layers, backbone: str = "vgg19") -> int:
    """The halo of a tiled stage unless one is asked for: half the exact one
    (``receptive_halo``), rounded up to the deepest layer's stride, so that crops stay
    on its grid. VGG16 to conv5_1: 32 px of 58; VGG19: 48 of 70.

    Why not the exact halo: a position's features depend mostly on the middle of its
    receptive field, so cutting the outer half of the context changes little, and the
    crops shrink, so an evaluation costs less. The gradient's error is then confined to
    the tiles' borders, and whole runs showed no seam, differed from the untiled run as
    much at the tiles' borders as elsewhere, and scored as it did (BENCHMARKS.md,
    "Tiled steps": the halo table, "Picture" and "Picture by halo").
    ``receptive_halo`` gives tiles that equal the untiled step to rounding.
    """
    stride = max(layer_stride(name) for name in layers)
    half = -(-receptive_halo(layers, backbone) // 2)
    return -(-half // stride) * stride


class TiledLoss:
    """Tiled evaluation of a ``StyleLoss`` on a feature model.

    Args:
      features: ``image (1, h, w, 3) -> (content features, style features)``, each a
        tuple of (1, h/s, w/s, N) maps (``Stylizer.features``).
      loss: the ``StyleLoss``.
      content_layers, style_layers: Keras layer names, in the order ``features``
        returns them (their strides slice the maps).
      tiling: the tile side and halo (``Tiling``); the tile is rounded up to a multiple
        of the deepest layer's stride.
    """

    def __init__(self, features, loss: StyleLoss, content_layers, style_layers,
                 tiling: Tiling):
        self.features = features
        self.loss = loss
        self.content_strides = [layer_stride(n) for n in content_layers]
        self.style_strides = [layer_stride(n) for n in style_layers]
        self.align = max(self.content_strides + self.style_strides)
        self.tile = -(-int(tiling.tile) // self.align) * self.align
        self.halo = int(tiling.halo)
        # The weights maps of one group without masks (``StyleLoss.style_weights_maps``).
        self._unmasked = ((None,) * len(self.style_strides),)

    # ----- the grid -----

    def _grid(self, image):
        """(height, width, tiles across, number of tiles) of an image, int32 scalars."""
        shape = tf.shape(image)
        height, width = shape[1], shape[2]
        across = (width + self.tile - 1) // self.tile
        down = (height + self.tile - 1) // self.tile
        return height, width, across, across * down

    def _bounds(self, k, height, width, across):
        """Tile k's owned square (y0, y1, x0, x1) and its crop (cy0, cy1, cx0, cx1)."""
        y0 = (k // across) * self.tile
        x0 = (k % across) * self.tile
        y1 = tf.minimum(y0 + self.tile, height)
        x1 = tf.minimum(x0 + self.tile, width)
        # Crops start on the deepest stride's grid, so that pooling windows line up.
        cy0 = tf.maximum(0, (y0 - self.halo) // self.align * self.align)
        cx0 = tf.maximum(0, (x0 - self.halo) // self.align * self.align)
        cy1 = tf.minimum(height, y1 + self.halo)
        cx1 = tf.minimum(width, x1 + self.halo)
        return (y0, y1, x0, x1), (cy0, cy1, cx0, cx1)

    @staticmethod
    def _owned(feature_map, stride, owned, origin=(0, 0)):
        """The positions of ``owned`` (y0, y1, x0, x1) in pixels of a map of ``stride``
        whose first row and column lie at pixel ``origin``."""
        y0, y1, x0, x1 = owned
        oy, ox = origin[0] // stride, origin[1] // stride
        return feature_map[:, y0 // stride - oy:y1 // stride - oy,
                           x0 // stride - ox:x1 // stride - ox, :]

    def _tile_sums(self, image, k, grid, targets, weights_maps, content_errors=True):
        """One tile's crop, its bounds, and ``sums(crop)``: the owned positions' content
        errors (or, without ``content_errors``, their content feature maps, for the
        targets) and style ``LayerSums``."""
        height, width, across, _ = grid
        owned, (cy0, cy1, cx0, cx1) = self._bounds(k, height, width, across)
        crop = image[:, cy0:cy1, cx0:cx1, :]

        def sums(crop):
            content_features, style_features = self.features(crop)
            origin = (cy0, cx0)
            content = tuple(self._owned(f, s, owned, origin)
                            for f, s in zip(content_features, self.content_strides))
            style = tuple(self._owned(f, s, owned, origin)
                          for f, s in zip(style_features, self.style_strides))
            maps = tuple(tuple(None if w is None else self._owned(w, s, owned)
                               for w, s in zip(group, self.style_strides))
                         for group in weights_maps)
            style_sums = self.loss.style_sums(style, maps)
            if not content_errors:
                return content, style_sums
            goals = tuple(self._owned(p, s, owned)
                          for p, s in zip(targets.content, self.content_strides))
            weights = tuple(self._owned(w, s, owned)
                            for w, s in zip(targets.content_weights, self.content_strides))
            return self.loss.content_sums(content, goals, targets, weights), style_sums

        return crop, (cy0, cy1, cx0, cx1), sums

    def _accumulate(self, image, fn):
        """Σ over the tiles of ``fn(k, grid)`` (a nest of tensors of fixed shapes)."""
        grid = self._grid(image)
        first = fn(tf.constant(0), grid)

        def body(k, total):
            return k + 1, tf.nest.map_structure(tf.add, total, fn(k, grid))

        # One tile at a time: the default runs up to ten iterations at once, and so
        # holds ten tiles' activations.
        _, total = tf.while_loop(lambda k, total: k < grid[3], body, (tf.constant(1), first),
                                 parallel_iterations=1)
        return total

    # ----- the loss and its gradient -----

    def value_and_gradient(self, image, targets: Targets):
        """(``LossTerms``, ∂total/∂image (1, H, W, 3) float32) of ``image`` (1, H, W, 3)
        in [0, 255]: the same as one untiled evaluation, to rounding when the halo is
        ``receptive_halo``."""
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        shapes = [tf.stack([height // s, width // s]) for s in self.style_strides]
        weights_maps = self.loss.style_weights_maps(targets, shapes)

        def pass_one(k, grid):
            crop, _, sums = self._tile_sums(image, k, grid, targets, weights_maps)
            return sums(crop)

        content_sums, style_sums = self._accumulate(image, pass_one)
        positions = [tf.cast((height // s) * (width // s), tf.float32)
                     for s in self.content_strides]
        with tf.GradientTape() as tape:
            tape.watch([image, content_sums, _differentiable(style_sums)])
            terms = self.loss.combine(image, content_sums, positions, style_sums, targets)
        d_image, d_content, d_style = tape.gradient(
            terms.total, [image, content_sums, _differentiable(style_sums)],
            unconnected_gradients=tf.UnconnectedGradients.ZERO)

        grid = self._grid(image)

        def pass_two(k, grad):
            crop, bounds, sums = self._tile_sums(image, k, grid, targets, weights_maps)
            with tf.GradientTape() as tape:
                tape.watch(crop)
                tile_content, tile_style = sums(crop)
                # The tile's share of the loss, linearised at the whole image's sums.
                surrogate = tf.add_n([tf.reduce_sum(d * t) for d, t in zip(
                    tf.nest.flatten([d_content, d_style]),
                    tf.nest.flatten([tile_content, _differentiable(tile_style)]))]
                    + [tf.constant(0.0)])
            crop_grad = tape.gradient(surrogate, crop,
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return k + 1, _add_into(grad, crop_grad, bounds)

        # Each crop's gradient is added into the image's in place: a sum of each crop's
        # padded to the whole image's held three image-sized gradients at once and
        # cost a pass over them per tile (memory.IMAGE_BUFFERS counts one).
        _, grad = tf.while_loop(lambda k, _: k < grid[3], pass_two,
                                (tf.constant(0), tf.zeros_like(image, tf.float32)),
                                parallel_iterations=1)
        return terms, tf.cast(d_image, tf.float32) + grad

    # ----- targets -----

    # What ``StyleModel.content_targets`` and ``style_targets`` evaluate tile by tile.

    def photo_features(self, content) -> tuple:
        """(maps, scales) of ``content`` (1, H, W, 3): its content layers' maps,
        assembled from the tiles' owned positions (one (1, H / stride, W / stride, N)
        float32 per layer), and its style layers' ``feature_scale`` s, from their
        magnitudes added up over the tiles; one pass, what
        ``StyleLoss.content_targets`` takes."""
        height, width = tf.shape(content)[1], tf.shape(content)[2]
        grid = self._grid(content)

        def content_tile(k):
            crop, _, sums = self._tile_sums(content, k, grid, None, self._unmasked,
                                            content_errors=False)
            owned, _ = self._bounds(k, *grid[:3])
            maps, style_sums = sums(crop)
            return owned, maps, style_sums[0]

        def body(k, maps, total):
            owned, tile_maps, style_sums = content_tile(k)
            maps = tuple(_write(m, tf.cast(f, tf.float32), s, owned)
                         for m, f, s in zip(maps, tile_maps, self.content_strides))
            return k + 1, maps, tf.nest.map_structure(tf.add, total, style_sums)

        # The maps are written in place, tile by tile: a sum of each tile's map padded
        # to the whole image's held three whole maps at once and cost a pass over them
        # per tile (BENCHMARKS.md, "Print"). The style sums add up as ``_accumulate``'s.
        owned, first_maps, first_sums = content_tile(tf.constant(0))
        maps = tuple(_write(tf.zeros(tf.stack([1, height // s, width // s, f.shape[-1]])),
                            tf.cast(f, tf.float32), s, owned)
                     for f, s in zip(first_maps, self.content_strides))
        _, maps, style_sums = tf.while_loop(lambda k, *_: k < grid[3], body,
                                            (tf.constant(1), maps, first_sums),
                                            parallel_iterations=1)
        return maps, [sums_scale(sums) for sums in style_sums]

    def style_sums(self, styles) -> list:
        """Per style image (1, h, w, 3), its style layers' ``LayerSums``, added up over
        its tiles."""
        def style_tile(image):
            def fn(k, grid):
                crop, _, sums = self._tile_sums(image, k, grid, None, self._unmasked,
                                                content_errors=False)
                return sums(crop)[1][0]
            return list(self._accumulate(image, fn))

        return [style_tile(s) for s in styles]


def _differentiable(style_sums):
    """The parts of nested ``LayerSums`` that depend on the image: (second, first)."""
    return [[(s.second, s.first) for s in group] for group in style_sums]


def _write(whole_map, owned_map, stride, owned):
    """``whole_map`` (1, height // stride, width // stride, N) with a tile's owned
    positions of a map of ``stride`` written in (``_update``)."""
    y0, y1, x0, x1 = owned
    return _update(whole_map, (y0 // stride, y1 // stride, x0 // stride, x1 // stride),
                   owned_map)


def _add_into(whole, crop_values, bounds):
    """``whole`` (1, H, W, N) with ``crop_values`` added to its crop ``bounds`` (cy0, cy1,
    cx0, cx1) (``_update``)."""
    cy0, cy1, cx0, cx1 = bounds
    return _update(whole, bounds, whole[:, cy0:cy1, cx0:cx1, :] + crop_values)


def _update(whole, bounds, values):
    """``whole`` (1, H, W, N) with its box ``bounds`` (y0, y1, x0, x1) replaced by
    ``values``: in place where the op holds its only reference (a loop variable), so no
    second whole tensor is made."""
    y0, y1, x0, x1 = bounds
    return tf.raw_ops.TensorStridedSliceUpdate(
        input=whole, begin=tf.stack([0, y0, x0, 0]),
        end=tf.stack([1, y1, x1, tf.shape(whole)[3]]), strides=[1, 1, 1, 1], value=values)
