"""Tests for tfstyle.core.losses against an independent numpy float64 implementation.

Every reference value here is computed from the formulas of Gatys et al. (CVPR 2016)
and the normalisation documented in ``tfstyle/core/losses.py``, in numpy float64, without
calling tfstyle. Inputs are float32 tensors made from float64 numpy arrays; the
reference is computed on the same float32-rounded values.

The documented normalisation (module docstring of tfstyle/core/losses.py):
  * each layer's features are divided by s = mean |target features| (the content
    image's for content layers, the style image's for style layers);
  * content, per layer: w_c · ½ Σ (F/s − P/s)² / M  (a mean over the M positions);
  * style, per layer: w_l · Σ (G(F/s) − A_norm · M)² / (4 N² M²), A_norm = G(S/s) / M_style;
  * tv: Σ squared neighbour differences of image / 255, divided by H · W;
  * each total times α, β, γ; total = content + style + tv.
"""

import numpy as np
import pytest
import tensorflow as tf

from conftest import targets_of
from tfstyle.core.losses import (
    StyleLoss,
    content_loss,
    edge_weights,
    feature_scale,
    gram_matrix,
    layer_sums,
    photo_ratio,
    stage_strength,
    style_layer_loss,
    sums_scale,
    total_variation,
)

# The rel. tolerance of every TF float32 vs numpy float64 comparison of a loss value.
RTOL = 1e-5


# ----------------------------------------------------------------------------------
# Helpers (the numpy float64 reference and random data)
# ----------------------------------------------------------------------------------

def f32(x):
    """float64 array → float32-rounded float64 array (the value TF will see)."""
    return np.asarray(x, np.float64).astype(np.float32).astype(np.float64)


def tf32(x):
    return tf.constant(np.asarray(x, np.float32))


def rel_err(actual, expected):
    """Norm-wise relative error; scalars are arrays of size 1."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def ref_gram(features):
    """G[i, j] = Σ_p F[p, i] F[p, j], F flattened to (positions, N)."""
    flat = np.asarray(features, np.float64).reshape(-1, features.shape[-1])
    return flat.T @ flat


def ref_content_loss(features, target):
    return 0.5 * np.sum((np.asarray(features, np.float64) - target) ** 2)


def ref_style_layer_loss(features, target_gram):
    n = features.shape[-1]
    m = int(np.prod(features.shape[:-1]))
    return np.sum((ref_gram(features) - target_gram) ** 2) / (4.0 * n ** 2 * m ** 2)


def ref_total_variation(image):
    image = np.asarray(image, np.float64)
    return (np.sum((image[:, 1:, :, :] - image[:, :-1, :, :]) ** 2)
            + np.sum((image[:, :, 1:, :] - image[:, :, :-1, :]) ** 2))


def ref_scale(features):
    mean = np.mean(np.abs(features))
    return mean if mean > 1e-12 else 1.0


def positions(features):
    return int(np.prod(features.shape[:-1]))


def ref_edge_weights(target, power):
    """The documented edge weights of a (1, h, w, N) target, in numpy float64: the
    channel sum of the next row's and next column's absolute differences (0 past the
    last), its mean over the valid positions of each 3 x 3 window, to the power g
    relative to its mean, then divided by the mean."""
    p = np.asarray(target, np.float64)[0]
    h, w, _ = p.shape
    energy = np.zeros((h, w))
    energy[:-1] += np.abs(p[1:] - p[:-1]).sum(-1)
    energy[:, :-1] += np.abs(p[:, 1:] - p[:, :-1]).sum(-1)
    pooled = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            pooled[y, x] = energy[max(0, y - 1):y + 2, max(0, x - 1):x + 2].mean()
    weight = (pooled / (pooled.mean() + 1e-12) + 1e-6) ** power
    return (weight / weight.mean())[None, :, :, None]


def ref_style_loss(image, image_content, image_style, content_targets, style_targets, *,
                   photo_style, content_weight, style_weight, tv_weight, content_layer_weights=None,
                   style_layer_weights=None, content_edge_powers=None):
    """The documented StyleLoss, in numpy float64, ``photo_style`` the photo's
    style-layer features. Returns {total, content, style, tv}."""
    if content_layer_weights is None:
        content_layer_weights = [1.0] * len(content_targets)
    if content_edge_powers is None:
        content_edge_powers = [0.0] * len(content_targets)
    if style_layer_weights is None:
        # The documented default: each layer a quarter of the one before, summing to 1.
        raw = [0.25 ** layer for layer in range(len(style_targets))]
        style_layer_weights = [w / sum(raw) for w in raw]
    content = 0.0
    for w, g, f, p in zip(content_layer_weights, content_edge_powers, image_content,
                          content_targets, strict=True):
        s = ref_scale(p)
        edges = ref_edge_weights(p / s, g)
        content += w * 0.5 * np.sum(edges * (f / s - p / s) ** 2) / positions(f)
    style = 0.0
    for w, f, target, photo in zip(style_layer_weights, image_style, style_targets,
                                   photo_style, strict=True):
        # The photo's scale, unless the painting's is over twice or under half of it.
        s = ref_scale(target) / np.clip(ref_scale(target) / ref_scale(photo), 0.5, 2.0)
        a_norm = ref_gram(target / s) / positions(target)
        n, m = f.shape[-1], positions(f)
        style += w * np.sum((ref_gram(f / s) - a_norm * m) ** 2) / (4.0 * n ** 2 * m ** 2)
    h, w_ = image.shape[1:3]
    tv = ref_total_variation(image / 255.0) / (h * w_)
    terms = {"content": content_weight * content, "style": style_weight * style,
             "tv": tv_weight * tv}
    terms["total"] = terms["content"] + terms["style"] + terms["tv"]
    return terms


def as_dict(terms):
    return {k: float(v) for k, v in terms._asdict().items()}


def tile2(x):
    """Tiles a (1, H, W, N) array 2 × 2 spatially: (1, 2H, 2W, N)."""
    return np.tile(x, (1, 2, 2, 1))


def relu_features(rng, shape):
    """Non-negative, ReLU-like random features (some exact zeros), float32-rounded."""
    return f32(np.maximum(rng.normal(0.3, 1.0, shape), 0.0) * rng.uniform(0.5, 3.0))


# Layer names are only keys for StyleLoss; the strides only shape the random maps.
STRIDES = {"block1_conv1": 1, "block2_conv1": 2, "block3_conv1": 4, "block4_conv2": 8}
CONTENT_LAYERS = ("block3_conv1", "block4_conv2")
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1")
CONTENT_CHANNELS = (6, 5)
STYLE_CHANNELS = (3, 4, 6)


def make_problem(seed, image_hw=(32, 24), style_hw=(20, 28)):
    """Random image, its features, the content target features (same size) and the
    style target features (another size), as float32-rounded float64 arrays."""
    rng = np.random.default_rng(seed)
    h, w = image_hw
    sh, sw = style_hw
    image = f32(rng.uniform(0.0, 255.0, (1, h, w, 3)))

    def content_shapes(hh, ww):
        return [(1, hh // STRIDES[l], ww // STRIDES[l], n)
                for l, n in zip(CONTENT_LAYERS, CONTENT_CHANNELS)]

    def style_shapes(hh, ww):
        return [(1, hh // STRIDES[l], ww // STRIDES[l], n)
                for l, n in zip(STYLE_LAYERS, STYLE_CHANNELS)]

    return {
        "image": image,
        "image_content": [relu_features(rng, s) for s in content_shapes(h, w)],
        "image_style": [relu_features(rng, s) for s in style_shapes(h, w)],
        "content": [relu_features(rng, s) for s in content_shapes(h, w)],
        "style": [relu_features(rng, s) for s in style_shapes(sh, sw)],
        "photo_style": [relu_features(rng, s) for s in style_shapes(h, w)],
    }


WEIGHTS = dict(content_weight=13.0, style_weight=250.0, tv_weight=300.0)


def make_loss(content_weight=13.0, style_weight=250.0, tv_weight=300.0,
              content_layer_weights=(0.7, 1.9), style_layer_weights=(0.5, 0.3, 1.7),
              content_edge_powers=None):
    return StyleLoss(CONTENT_LAYERS, STYLE_LAYERS, content_weight, style_weight, tv_weight,
                     style_layer_weights=style_layer_weights,
                     content_layer_weights=content_layer_weights,
                     content_edge_powers=content_edge_powers)


def features_targets(loss, content, style, photo_style):
    """The run's targets (``StyleModel.compute_targets``) of the photo's content- and
    style-layer features and one painting's style-layer features."""
    return targets_of(loss, ([tf32(f) for f in content], [tf32(f) for f in photo_style]),
                      [[tf32(f) for f in style]])


def tf_targets(loss, problem):
    return features_targets(loss, problem["content"], problem["style"], problem["photo_style"])


def tf_terms(loss, image, image_content, image_style, content, style, photo_style):
    targets = features_targets(loss, content, style, photo_style)
    return as_dict(loss(tf32(image), [tf32(f) for f in image_content],
                        [tf32(f) for f in image_style], targets))


# ----------------------------------------------------------------------------------
# The paper's terms
# ----------------------------------------------------------------------------------

GRAM_SHAPES = [(1, 5, 7, 3), (1, 8, 8, 16), (1, 3, 11, 1), (1, 1, 1, 4), (1, 13, 2, 64)]


@pytest.mark.parametrize("shape", GRAM_SHAPES)
def test_gram_matrix_matches_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    features = relu_features(rng, shape) + f32(rng.uniform(0.01, 0.1, shape))  # > 0
    features = f32(features)
    got = gram_matrix(tf32(features)).numpy()
    expected = ref_gram(features)
    assert got.shape == (shape[-1], shape[-1])
    # All entries positive: an element-wise relative error is meaningful.
    assert np.max(np.abs(got - expected) / np.abs(expected)) < RTOL
    np.testing.assert_array_equal(got, got.T)


@pytest.mark.parametrize("shape", [(6, 9, 5), (1, 1, 2), (10, 3, 1)])
def test_gram_matrix_of_unbatched_features(shape):
    rng = np.random.default_rng(7)
    features = f32(rng.normal(0.0, 2.0, shape))  # mixed signs: norm-wise error
    got = gram_matrix(tf32(features)).numpy()
    assert got.shape == (shape[-1], shape[-1])
    assert rel_err(got, ref_gram(features)) < RTOL
    # The same features with a batch axis give the same Gram matrix.
    np.testing.assert_allclose(gram_matrix(tf32(features[None])).numpy(), got, rtol=1e-6)


def test_gram_matrix_hand_computed():
    # Two positions, two channels: F = [[1, 2], [3, 4]] → Fᵀ F = [[10, 14], [14, 20]].
    features = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_array_equal(gram_matrix(features).numpy(), [[10.0, 14.0], [14.0, 20.0]])


@pytest.mark.parametrize("shape", [(1, 4, 4, 8), (1, 3, 7, 5), (1, 9, 2, 1), (1, 1, 1, 3)])
def test_content_loss_matches_numpy(shape):
    rng = np.random.default_rng(shape[2] * 10 + shape[3])
    features = f32(rng.normal(1.0, 3.0, shape))
    target = f32(rng.normal(0.0, 2.0, shape))
    got = float(content_loss(tf32(features), tf32(target)))
    assert rel_err(got, ref_content_loss(features, target)) < RTOL


def test_content_loss_hand_computed():
    # ½ ((3 − 1)² + (−1 − 1)²) = 4.
    assert float(content_loss(tf.constant([[[[3.0, -1.0]]]]), tf.constant([[[[1.0, 1.0]]]]))) == 4.0


STYLE_CASES = [
    # (image features shape, style features shape)
    ((1, 6, 6, 4), (1, 6, 6, 4)),      # equal sizes: the paper's setting
    ((1, 5, 9, 3), (1, 5, 9, 3)),      # non-square
    ((1, 7, 4, 1), (1, 7, 4, 1)),      # N = 1
    ((1, 8, 6, 5), (1, 3, 11, 5)),     # style at another size: Gram rescaled by M / M_style
    ((1, 2, 3, 1), (1, 9, 9, 1)),      # N = 1 and other sizes
]


@pytest.mark.parametrize("image_shape,style_shape", STYLE_CASES)
def test_style_layer_loss_matches_numpy(image_shape, style_shape):
    rng = np.random.default_rng(image_shape[1] * 100 + style_shape[2])
    features = relu_features(rng, image_shape)
    style = relu_features(rng, style_shape)
    # A Gram matrix taken at M_style positions, rescaled to the image's M.
    target_gram = f32(ref_gram(style) * positions(features) / positions(style))
    got = float(style_layer_loss(tf32(features), tf32(target_gram)))
    expected = ref_style_layer_loss(features, target_gram)
    assert expected > 0
    assert rel_err(got, expected) < RTOL


def test_style_layer_loss_hand_computed():
    # F = [[1, 2]] (M = 1, N = 2): G = [[1, 2], [2, 4]]; A = 0 → Σ G² / (4 · 4 · 1) = 25 / 16.
    got = float(style_layer_loss(tf.constant([[[[1.0, 2.0]]]]), tf.zeros((2, 2))))
    assert got == pytest.approx(25.0 / 16.0, rel=1e-7)


@pytest.mark.parametrize("shape", [(1, 7, 4, 3), (1, 6, 6, 1), (1, 1, 5, 3), (1, 5, 1, 2),
                                   (1, 2, 2, 3)])
def test_total_variation_matches_numpy(shape):
    rng = np.random.default_rng(shape[1] * 7 + shape[2])
    image = f32(rng.uniform(0.0, 255.0, shape))
    got = float(total_variation(tf32(image)))
    expected = ref_total_variation(image)
    assert expected > 0
    assert rel_err(got, expected) < RTOL


def test_total_variation_hand_computed():
    # One lit pixel in the middle of a 3 × 3 single-channel image: four neighbour
    # differences of 2 each → 4 · 2² = 16. A constant image has no variation.
    image = np.zeros((1, 3, 3, 1), np.float32)
    image[0, 1, 1, 0] = 2.0
    assert float(total_variation(tf.constant(image))) == 16.0
    assert float(total_variation(tf.fill((1, 5, 4, 3), 77.0))) == 0.0


# ----------------------------------------------------------------------------------
# StyleLoss end to end
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("layer_weights", ["custom", "default"])
def test_style_loss_matches_numpy(seed, layer_weights):
    problem = make_problem(seed)
    if layer_weights == "custom":
        cw, sw = (0.7, 1.9), (0.5, 0.3, 1.7)
    else:
        cw, sw = None, None
    loss = make_loss(content_layer_weights=cw, style_layer_weights=sw)
    got = tf_terms(loss, **problem)
    expected = ref_style_loss(
        problem["image"], problem["image_content"], problem["image_style"],
        problem["content"], problem["style"], photo_style=problem["photo_style"], **WEIGHTS,
        content_layer_weights=cw,
        style_layer_weights=sw)
    for name in ("total", "content", "style", "tv"):
        assert expected[name] > 0
        assert rel_err(got[name], expected[name]) < RTOL, (name, got[name], expected[name])
    # Each term matters in the total (so that a dropped term would be noticed).
    for name in ("content", "style", "tv"):
        assert expected[name] > 1e-2 * expected["total"], expected


# ----------------------------------------------------------------------------------
# The content term weighted on the photo's edges
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 9, 7, 5), (1, 1, 6, 3), (1, 4, 1, 2), (1, 1, 1, 4),
                                   (1, 16, 12, 32)])
@pytest.mark.parametrize("power", [0.0, 0.5, 1.0, 2.0])
def test_edge_weights_match_numpy(shape, power):
    rng = np.random.default_rng(sum(shape))
    target = relu_features(rng, shape)
    got = edge_weights(tf32(target), power).numpy()
    want = ref_edge_weights(target, power)
    assert got.shape == shape[:3] + (1,)
    assert rel_err(got, want) < RTOL
    assert abs(got.mean() - 1.0) < 1e-5 and (got > 0).all()


def test_edge_weights_follow_the_edges():
    """A step edge down the middle of a flat map: the weight peaks on the step and is
    the same small value everywhere flat; at power 0, or on a flat map, it is 1."""
    target = np.zeros((1, 8, 12, 3), np.float32)
    target[:, :, 6:] = 2.0
    w = edge_weights(tf32(target), 1.0).numpy()[0, :, :, 0]
    assert (w[:, 5] > 3.0).all() and (w[:, :3] < 1e-3).all() and (w[:, 9:] < 1e-3).all()
    assert np.array_equal(edge_weights(tf32(target), 0.0).numpy(), np.ones((1, 8, 12, 1)))
    flat = edge_weights(tf.fill((1, 5, 5, 4), 3.0), 2.0).numpy()
    np.testing.assert_allclose(flat, 1.0, rtol=1e-6)


@pytest.mark.parametrize("powers", [(1.0, 0.5), (0.0, 2.0)])
def test_edge_weighted_style_loss_matches_numpy(powers):
    problem = make_problem(4)
    loss = make_loss(content_edge_powers=powers)
    got = tf_terms(loss, **problem)
    expected = ref_style_loss(
        problem["image"], problem["image_content"], problem["image_style"],
        problem["content"], problem["style"], photo_style=problem["photo_style"], **WEIGHTS,
        content_layer_weights=(0.7, 1.9), style_layer_weights=(0.5, 0.3, 1.7),
        content_edge_powers=powers)
    for name in ("total", "content", "style", "tv"):
        assert rel_err(got[name], expected[name]) < RTOL, (name, got[name], expected[name])
    # The weights change the content term (else this test could not fail).
    plain = tf_terms(make_loss(), **problem)
    assert rel_err(plain["content"], expected["content"]) > 1e-2


def test_zero_edge_powers_are_the_papers_term_with_no_weight_maps():
    problem = make_problem(5)
    for powers in (None, (0.0, 0.0)):
        loss = make_loss(content_edge_powers=powers)
        targets = tf_targets(loss, problem)
        assert targets.content_weights == ()
        assert tf_terms(loss, **problem) == tf_terms(make_loss(), **problem)


def test_style_loss_targets_match_numpy():
    problem = make_problem(3)
    loss = make_loss()
    targets = tf_targets(loss, problem)
    assert len(targets.content) == len(CONTENT_LAYERS)
    assert len(targets.style_grams) == 1 and targets.style_masks == ()  # one blended group
    assert len(targets.style_grams[0]) == len(STYLE_LAYERS)
    for got, got_scale, p in zip(targets.content, targets.content_scales, problem["content"]):
        assert rel_err(float(got_scale), np.mean(np.abs(p))) < RTOL
        assert rel_err(got.numpy(), p / np.mean(np.abs(p))) < RTOL
    for got, mean, got_scale, s in zip(targets.style_grams[0], targets.style_means[0],
                                       targets.painting_scales, problem["style"]):
        scale = np.mean(np.abs(s))
        assert rel_err(float(got_scale), scale) < RTOL
        assert got.shape == (s.shape[-1], s.shape[-1])
        assert rel_err(got.numpy(), ref_gram(s / scale) / positions(s)) < RTOL
        assert rel_err(mean.numpy(), (s / scale).reshape(-1, s.shape[-1]).mean(0)) < RTOL
    for got_scale, f in zip(targets.photo_style_scales, problem["photo_style"], strict=True):
        assert rel_err(float(got_scale), np.mean(np.abs(f))) < RTOL


def test_style_loss_with_a_dead_style_layer_uses_scale_one():
    # A layer whose target is all zeros (a dead ReLU layer) must not divide by zero.
    problem = make_problem(4)
    problem["style"][1] = np.zeros_like(problem["style"][1])
    loss = make_loss()
    got = tf_terms(loss, **problem)
    expected = ref_style_loss(
        problem["image"], problem["image_content"], problem["image_style"],
        problem["content"], problem["style"], photo_style=problem["photo_style"], **WEIGHTS,
        content_layer_weights=(0.7, 1.9),
        style_layer_weights=(0.5, 0.3, 1.7))
    assert all(np.isfinite(v) for v in got.values())
    for name in ("total", "content", "style", "tv"):
        assert rel_err(got[name], expected[name]) < RTOL, name


@pytest.mark.parametrize("shape", [(1, 5, 7, 3), (1, 64, 48, 64), (1, 1, 1, 2)])
def test_feature_scale_is_the_mean_magnitude_and_equals_the_sums_scale(shape):
    # The untiled targets take the photo's scale from the map, a tiled pass from its
    # LayerSums: the two must agree to the bit, or tiling would move the picture.
    f = np.random.default_rng(len(shape) + shape[1]).normal(size=shape)
    got = feature_scale(tf.constant(f, tf.float32)).numpy()
    assert rel_err(got, ref_scale(f32(f))) < RTOL
    assert got == sums_scale(layer_sums(tf.constant(f, tf.float32))).numpy()
    assert feature_scale(tf.zeros(shape)).numpy() == 1.0


@pytest.mark.parametrize("strength", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_stage_strength_caps_the_coarse_stages_at_the_default(strength):
    for last, expected in ((True, strength), (False, min(strength, 0.5))):
        assert stage_strength(strength, last, 0.5) == expected
        got = stage_strength(tf.constant(strength), tf.constant(last), 0.5)
        assert got.dtype == tf.float32 and got.numpy() == np.float32(expected)


def photo_at_ratio(problem, ratio):
    """``problem`` with the photo's style-layer features rescaled so that at every layer
    the painting's scale is ``ratio`` times the photo's."""
    photo = [f * (ref_scale(s) / ref_scale(f)) / ratio
             for f, s in zip(problem["photo_style"], problem["style"])]
    return dict(problem, photo_style=photo)


def test_style_term_is_on_the_photos_scale():
    # The image's and the painting's features on the photo's scale: with the photo
    # fixed, both c times stronger give a Gram term c⁴ times larger (by the
    # painting's own scale, as before, it would not move).
    problem = photo_at_ratio(make_problem(14), 1.0)
    loss = make_loss()
    c = 1.5
    before = tf_terms(loss, **problem)
    stronger = dict(problem, image_style=[c * f for f in problem["image_style"]],
                    style=[c * f for f in problem["style"]])
    after = tf_terms(loss, **stronger)
    assert rel_err(after["style"], c ** 4 * before["style"]) < RTOL
    expected = ref_style_loss(
        stronger["image"], stronger["image_content"], stronger["image_style"],
        stronger["content"], stronger["style"], photo_style=stronger["photo_style"],
        **WEIGHTS, content_layer_weights=(0.7, 1.9), style_layer_weights=(0.5, 0.3, 1.7))
    assert rel_err(after["style"], expected["style"]) < RTOL


@pytest.mark.parametrize("ratio,clipped", [(40.0, 2.0), (1 / 40.0, 0.5)])
def test_photo_ratio_is_clipped_at_two(ratio, clipped):
    # A flat or dark photo (tiny features) turns the style term up 16-fold at most.
    problem = make_problem(15)
    loss = make_loss()
    got = tf_terms(loss, **photo_at_ratio(problem, ratio))
    assert rel_err(got["style"], tf_terms(loss, **photo_at_ratio(problem, clipped))["style"]) \
        < RTOL
    assert rel_err(got["style"], tf_terms(loss, **photo_at_ratio(problem, 1.0))["style"]) > 0.5
    assert float(photo_ratio(tf.constant(ratio * 3.0), tf.constant(3.0))) == clipped


def test_default_style_layer_weights_fall_by_four_and_sum_to_one():
    loss = StyleLoss(CONTENT_LAYERS, STYLE_LAYERS, 1.0, 1.0, 0.0)
    assert loss.style_layer_weights == pytest.approx((16 / 21, 4 / 21, 1 / 21), rel=1e-12)
    assert loss.content_layer_weights == (1.0, 1.0)


# ----------------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------------

def test_style_loss_is_zero_when_the_image_is_the_style_image():
    problem = make_problem(5, image_hw=(20, 28), style_hw=(20, 28))
    loss = make_loss()
    baseline = tf_terms(loss, **problem)["style"]
    problem["image_style"] = [f.copy() for f in problem["style"]]
    same = tf_terms(loss, **problem)["style"]
    assert baseline > 1.0
    assert 0.0 <= same < 1e-7 * baseline, (same, baseline)


def test_content_loss_is_zero_when_the_image_is_the_content_image():
    problem = make_problem(6)
    loss = make_loss()
    baseline = tf_terms(loss, **problem)["content"]
    problem["image_content"] = [f.copy() for f in problem["content"]]
    same = tf_terms(loss, **problem)["content"]
    assert baseline > 1.0
    assert 0.0 <= same < 1e-9 * baseline, (same, baseline)


def test_style_loss_is_invariant_to_permuting_positions():
    problem = make_problem(7)
    loss = make_loss()
    before = tf_terms(loss, **problem)
    rng = np.random.default_rng(70)

    def permuted(f):
        flat = f.reshape(-1, f.shape[-1])
        return flat[rng.permutation(flat.shape[0])].reshape(f.shape)

    problem["image_style"] = [permuted(f) for f in problem["image_style"]]
    problem["style"] = [permuted(f) for f in problem["style"]]
    problem["image_content"] = [permuted(f) for f in problem["image_content"]]
    after = tf_terms(loss, **problem)
    assert rel_err(after["style"], before["style"]) < RTOL
    # The content loss compares positions one to one: shuffling the image's
    # positions (and not the target's) changes it.
    assert rel_err(after["content"], before["content"]) > 1e-2


def test_style_loss_ignores_tiling_the_style_or_the_image():
    problem = make_problem(8, image_hw=(16, 12), style_hw=(16, 12))
    loss = make_loss()
    base = tf_terms(loss, **problem)

    # A 2 × 2 tiled style has the same per-position Gram: same loss for any image...
    tiled_style = dict(problem, style=[tile2(f) for f in problem["style"]])
    assert rel_err(tf_terms(loss, **tiled_style)["style"], base["style"]) < RTOL
    # ...and ~0 for the untiled style image itself.
    own = dict(tiled_style, image_style=[f.copy() for f in problem["style"]])
    assert tf_terms(loss, **own)["style"] < 1e-7 * base["style"]

    # Tiling the optimised image's features 2 × 2 (a larger output) keeps E_l too.
    tiled_image = dict(problem, image_style=[tile2(f) for f in problem["image_style"]])
    assert rel_err(tf_terms(loss, **tiled_image)["style"], base["style"]) < RTOL


def test_weighted_loss_is_invariant_to_the_feature_scale():
    problem = make_problem(9)
    loss = make_loss()
    before = tf_terms(loss, **problem)
    c = 37.0
    scaled = {key: ([f32(c * f) for f in value] if key != "image" else value)
              for key, value in problem.items()}
    after = tf_terms(loss, **scaled)
    for name in ("total", "content", "style", "tv"):
        assert rel_err(after[name], before[name]) < RTOL, name
    # Not a trivial property: the paper's raw terms do scale, by c² and c⁴.
    f, p = problem["image_content"][0], problem["content"][0]
    assert float(content_loss(tf32(c * f), tf32(c * p))) == pytest.approx(
        c ** 2 * ref_content_loss(f, p), rel=RTOL)


def test_content_term_does_not_grow_with_the_map_size():
    problem = make_problem(10)
    loss = make_loss()
    before = tf_terms(loss, **problem)
    # The same per-position error on a map 2 × 2 larger gives the same content term.
    bigger = dict(problem, image_content=[tile2(f) for f in problem["image_content"]],
                  content=[tile2(f) for f in problem["content"]])
    after = tf_terms(loss, **bigger)
    assert rel_err(after["content"], before["content"]) < RTOL
    # Whereas the paper's unnormalised sum grows 4 ×.
    f, p = problem["image_content"][0], problem["content"][0]
    assert float(content_loss(tf32(tile2(f)), tf32(tile2(p)))) == pytest.approx(
        4 * ref_content_loss(f, p), rel=RTOL)


@pytest.mark.parametrize("hw", [(3, 5), (12, 7), (40, 40)])
def test_content_term_is_a_mean_over_positions(hw):
    # A uniform error δ (after the feature scaling) at every position and channel:
    # α · w · ½ Σ δ² / M = α · w · ½ N δ², whatever the map size.
    n, delta = 3, 0.25
    target = np.ones((1, *hw, n))          # s = 1
    features = target + delta
    loss = StyleLoss(["c"], [], content_weight=0.8, style_weight=0.0, tv_weight=0.0,
                     content_layer_weights=[1.5])
    targets = features_targets(loss, [target], [], [])
    got = as_dict(loss(tf.zeros((1, 4, 4, 3)), [tf32(features)], [], targets))
    assert rel_err(got["content"], 0.8 * 1.5 * 0.5 * n * delta ** 2) < RTOL
    assert got["style"] == 0.0 and got["tv"] == 0.0
    assert rel_err(got["total"], got["content"]) < 1e-7


@pytest.mark.parametrize("h,w", [(10, 6), (4, 31)])
def test_tv_term_is_a_mean_over_pixels(h, w):
    # A horizontal ramp 0 → 255 in every channel: h (w − 1) steps of 1 / (w − 1) each
    # on the [0, 1] image, no vertical steps; divided by the h · w pixels.
    ramp = np.tile(np.linspace(0.0, 255.0, w), (h, 1))
    image = f32(np.repeat(ramp[None, :, :, None], 3, axis=3))
    loss = StyleLoss([], [], 1.0, 1.0, 2.5)
    got = as_dict(loss(tf32(image), [], [], features_targets(loss, [], [], [])))
    expected = 2.5 * 3 * h * (w - 1) * (1.0 / (w - 1)) ** 2 / (h * w)
    assert rel_err(got["tv"], expected) < RTOL
    assert got["content"] == 0.0 and got["style"] == 0.0


def test_tensor_weights_give_the_same_terms_as_floats():
    # The exported signature passes α, β, γ as float32 scalar tensors.
    problem = make_problem(13)
    floats = tf_terms(make_loss(), **problem)
    tensor_weights = {k: tf.constant(v, tf.float32) for k, v in WEIGHTS.items()}
    tensors = tf_terms(make_loss(**tensor_weights), **problem)
    for name in ("total", "content", "style", "tv"):
        assert rel_err(tensors[name], floats[name]) < 1e-6, name


# ----------------------------------------------------------------------------------
# Gradients through a real (random-weight) VGG
# ----------------------------------------------------------------------------------

GRAD_CONTENT = ["conv2_1"]
GRAD_STYLE = ["conv1_1", "conv2_1"]
GRAD_EPS = 0.1  # float32 central-difference step, in pixels on [0, 255]; |direction| ≤ 1


def smooth_image(rng, hw=(16, 16), low=4):
    """A smooth random RGB image in [0, 255]: bicubic upsampling of low × low noise."""
    coarse = rng.uniform(0.0, 255.0, (1, low, low, 3))
    return f32(np.clip(tf.image.resize(coarse, hw, method="bicubic").numpy(), 0.0, 255.0))


def smooth_direction(rng, hw=(16, 16)):
    d = smooth_image(rng, hw) - 127.5
    return f32(d / np.max(np.abs(d)))


class _GradientRecorder:
    """An 'optimiser' whose update returns the gradient, to read make_step's gradient."""

    def init(self, image):
        return ()

    def update(self, image, grad, loss, state):
        return grad, state


@pytest.fixture(scope="module")
def grad_setup():
    import keras

    from tfstyle.options import RunOptions
    from tfstyle.local.stylizer import Stylizer

    keras.utils.set_random_seed(0)
    # float32 whatever the machine: bfloat16 features are too coarse for these checks.
    stylizer = Stylizer(weights=None, content_layers=GRAD_CONTENT, style_layers=GRAD_STYLE,
                        precision="float32")
    rng = np.random.default_rng(2024)
    content = smooth_image(rng)
    style = smooth_image(rng, (20, 12))
    image = smooth_image(rng)
    directions = [smooth_direction(rng) for _ in range(5)]

    # Weights that give content, style and TV equal RMS directional derivatives
    # (measured by finite differences at unit weights), so that each term carries an
    # O(1) share of the gradient whatever the terms' normalisation constants.
    # The Gram loss: the one the numpy reference implements.
    unit = stylizer.make_loss(RunOptions(content_weight=1.0, style_weight=1.0, tv_weight=1.0,
                                         style_loss="gram"))
    unit_targets = stylizer.compute_targets(unit, tf32(content), tf32(style))
    derivatives = directional_fd(stylizer, unit, unit_targets, image, directions)
    weights = {f"{name}_weight": 1.0 / float(np.sqrt(np.mean(derivatives[name] ** 2)))
               for name in ("content", "style", "tv")}

    loss = stylizer.make_loss(RunOptions(**weights, style_loss="gram"))
    targets = stylizer.compute_targets(loss, tf32(content), tf32(style))
    return dict(stylizer=stylizer, loss=loss, targets=targets, image=image, weights=weights,
                content=content, style=style, directions=directions)


def terms_at(stylizer, loss, targets, x):
    """The loss terms of image x, computed as Stylizer.make_step does."""
    content_features, style_features = stylizer.features(tf32(x))
    return as_dict(loss(tf32(x), content_features, style_features, targets))


def directional_fd(stylizer, loss, targets, image, directions, eps=GRAD_EPS):
    """{term: central differences along each direction} of the float32 loss."""
    out = {"total": [], "content": [], "style": [], "tv": []}
    for d in directions:
        plus = terms_at(stylizer, loss, targets, image + eps * d)
        minus = terms_at(stylizer, loss, targets, image - eps * d)
        for name in out:
            out[name].append((plus[name] - minus[name]) / (2 * eps))
    return {name: np.array(values) for name, values in out.items()}


def test_step_gradient_matches_finite_differences(grad_setup):
    """make_step's gradient vs central differences of the same float32 loss, along 5
    smooth random directions. Errors are measured against the RMS directional
    derivative so that a direction nearly orthogonal to the gradient does not make
    the check flaky; ReLU and max-pool kinks limit the FD accuracy to ~1e-3 here."""
    stylizer, loss, targets = grad_setup["stylizer"], grad_setup["loss"], grad_setup["targets"]
    image = grad_setup["image"]
    step = stylizer.make_step(loss, _GradientRecorder())
    grad, _, terms = step(tf32(image), (), targets)
    grad = grad.numpy().astype(np.float64)
    assert grad.shape == image.shape and np.all(np.isfinite(grad))

    assert float(terms.total) == pytest.approx(
        terms_at(stylizer, loss, targets, image)["total"], rel=1e-6)
    directions = grad_setup["directions"]
    derivatives = directional_fd(stylizer, loss, targets, image, directions)
    fd = derivatives["total"]
    analytic = np.array([np.sum(grad * d) for d in directions])
    scale = np.sqrt(np.mean(fd ** 2))
    errors = np.abs(analytic - fd) / scale
    assert np.all(errors < 2e-2), (analytic, fd, errors)

    # The check has power: each term's share of the directional derivatives is far
    # above the tolerance, so a gradient missing any one term (e.g. TV) or scaled by
    # 2 would fail it.
    for name in ("content", "style", "tv"):
        assert np.max(np.abs(derivatives[name])) / scale > 0.2, (name, derivatives, scale)
    assert np.max(np.abs(2 * analytic - fd)) / scale > 0.5


def test_gradient_matches_float64_reference_differences(grad_setup):
    """The tape gradient (through a float64 copy of the VGG and StyleLoss) vs central
    differences, with a tiny step, of the numpy float64 reference loss on the same
    float64 features: agreement to ~1e-7 of the RMS directional derivative."""
    from tfstyle.core.features import build_feature_model

    stylizer, loss = grad_setup["stylizer"], grad_setup["loss"]
    layers = stylizer.layers
    model64 = build_feature_model(layers, "vgg19", "max", None, dtype="float64")
    model64.set_weights([w.astype(np.float64) for w in stylizer.model.get_weights()])

    def features64(x):
        outputs = model64(x, training=False)
        by_name = dict(zip(layers, outputs))
        return ([by_name[n] for n in stylizer.content_layers],
                [by_name[n] for n in stylizer.style_layers])

    content_targets = [f.numpy() for f in features64(tf.constant(grad_setup["content"]))[0]]
    style_targets = [f.numpy() for f in features64(tf.constant(grad_setup["style"]))[1]]
    photo_style = [f.numpy() for f in features64(tf.constant(grad_setup["content"]))[1]]
    targets = features_targets(loss, content_targets, style_targets, photo_style)

    def reference(x):
        content_features, style_features = features64(tf.constant(x))
        return ref_style_loss(
            x, [f.numpy() for f in content_features], [f.numpy() for f in style_features],
            content_targets, style_targets, photo_style=photo_style, **grad_setup["weights"])

    image = grad_setup["image"]
    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        content_features, style_features = features64(x)
        terms = loss(tf.cast(x, tf.float32), content_features, style_features, targets)
    grad = tape.gradient(terms.total, x).numpy()
    assert rel_err(float(terms.total), reference(image)["total"]) < 1e-5

    eps = 1e-5  # in float64 the FD error is ~1e-7 here; at 1e-3 ReLU kinks show (~1e-3)
    analytic = np.array([np.sum(grad * d) for d in grad_setup["directions"]])
    fd = np.array([(reference(image + eps * d)["total"] - reference(image - eps * d)["total"])
                   / (2 * eps) for d in grad_setup["directions"]])
    errors = np.abs(analytic - fd) / np.sqrt(np.mean(fd ** 2))
    assert np.all(errors < 2e-5), (analytic, fd, errors)


def test_style_loss_accepts_float64_features():
    """A float64 (or bfloat16) feature model still gives a float32 loss."""
    problem = make_problem(12)
    loss = make_loss()
    as64 = {key: ([tf.constant(f) for f in value] if key != "image" else tf.constant(value))
            for key, value in problem.items()}
    targets = targets_of(loss, (as64["content"], as64["photo_style"]), [as64["style"]])
    terms = loss(as64["image"], as64["image_content"], as64["image_style"], targets)
    expected = tf_terms(loss, **problem)
    assert rel_err(float(terms.total), expected["total"]) < RTOL


# ----------------------------------------------------------------------------------
# Temporal consistency (Ruder et al. 2016), for video frames
# ----------------------------------------------------------------------------------

def ref_temporal(image, target, weight):
    """(1/D) Σ c (x − ω)² on the [0, 1] image, c per pixel and broadcast over the three
    channels, D = H · W · 3: numpy float64."""
    x, omega = image / 255.0, target / 255.0
    c = np.broadcast_to(weight, x.shape)
    return float(np.sum(c * (x - omega) ** 2) / x.size)


def temporal_problem(seed, h=9, w=13):
    rng = np.random.default_rng(seed)
    image = f32(rng.uniform(0.0, 255.0, (1, h, w, 3)))
    target = f32(rng.uniform(0.0, 255.0, (1, h, w, 3)))
    # Per-pixel weights with exact zeros (occluded) and values in between.
    weight = f32(np.where(rng.uniform(size=(1, h, w, 1)) < 0.3, 0.0,
                          rng.uniform(0.2, 1.0, (1, h, w, 1))))
    return image, target, weight


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temporal_loss_matches_numpy_with_per_pixel_weights(seed):
    from tfstyle.core.losses import temporal_loss
    image, target, weight = temporal_problem(seed)
    got = float(temporal_loss(tf32(image), tf32(target), tf32(weight)))
    expected = ref_temporal(image, target, weight)
    assert rel_err(got, expected) < RTOL
    # A scalar c (the mean weight) gives another value: the per-pixel c matters.
    scalar = ref_temporal(image, target, np.full_like(weight, weight.mean()))
    assert abs(scalar - expected) > 100 * RTOL * expected


def test_temporal_gradient_pulls_each_pixel_to_its_warped_target():
    """d/dx of (1/D) Σ c (x/255 − ω/255)² is 2 c (x − ω) / (255² D): zero where c is 0,
    pointing from the target to the image elsewhere. A swapped or shifted target, or a
    weight not applied per pixel, fails this."""
    from tfstyle.core.losses import temporal_loss
    image, target, weight = temporal_problem(3)
    x = tf32(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = temporal_loss(x, tf32(target), tf32(weight))
    grad = tape.gradient(value, x).numpy().astype(np.float64)
    expected = 2.0 * weight * (image - target) / (255.0 ** 2 * image.size)
    assert rel_err(grad, expected) < RTOL
    assert np.all(grad[np.broadcast_to(weight, grad.shape) == 0] == 0)
    # At the target the term and its gradient vanish.
    assert float(temporal_loss(tf32(target), tf32(target), tf32(weight))) == 0.0


def test_temporal_term_joins_the_total_with_its_weight():
    from tfstyle.core.losses import Targets
    problem = make_problem(4)
    image = problem["image"]
    _, target, weight = temporal_problem(4, *image.shape[1:3])
    loss = make_loss()
    loss.temporal_weight = 7.5
    still = tf_targets(loss, problem)
    frame = Targets(*still[:-1], temporal=(tf32(target), tf32(weight)))
    args = (tf32(image), [tf32(f) for f in problem["image_content"]],
            [tf32(f) for f in problem["image_style"]])
    plain, video = as_dict(loss(*args, still)), as_dict(loss(*args, frame))
    assert plain["temporal"] == 0.0
    # A still image's total is the three terms' float32 sum, nothing added.
    assert np.float32(plain["total"]) == (np.float32(plain["content"]) + np.float32(plain["style"])
                                          + np.float32(plain["tv"]))
    assert rel_err(video["temporal"], 7.5 * ref_temporal(image, target, weight)) < RTOL
    for name in ("content", "style", "tv"):
        assert video[name] == plain[name]
    assert rel_err(video["total"], plain["total"] + video["temporal"]) < RTOL
