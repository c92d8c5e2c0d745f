"""Colour control (tfstyle.core.color) against independent numpy float64 references."""

import numpy as np
import pytest
import tensorflow as tf

from tfstyle.core import color

# Full-range BT.601 (JPEG/JFIF), written out from the standard's tables.
BT601 = np.array([[0.299, 0.587, 0.114],
                  [-0.168736, -0.331264, 0.5],
                  [0.5, -0.418688, -0.081312]])
OFFSET = np.array([0.0, 128.0, 128.0])


def ycbcr_ref(rgb):
    return rgb.astype(np.float64) @ BT601.T + OFFSET


def colour_field(seed, height=48, width=40, mean=(128, 128, 128), std=25.0):
    """Smooth float32 RGB with correlated channels, kept well inside [0, 255]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    waves = [np.sin(2 * np.pi * (rng.uniform(0.5, 3) * y + rng.uniform(0.5, 3) * x)
                    + rng.uniform(0, 6.3)) for _ in range(6)]
    field = np.stack(waves, -1) @ rng.normal(size=(6, 3))
    field = (field - field.mean((0, 1))) / field.std() * std + np.asarray(mean)
    assert 0 < field.min() and field.max() < 255
    return field.astype(np.float32)


def moments(image):
    pixels = np.asarray(image, np.float64).reshape(-1, 3)
    return pixels.mean(0), np.cov(pixels, rowvar=False, bias=True)


def rel_frobenius(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_rgb_to_ycbcr_matches_bt601_and_round_trips():
    rgb = np.random.default_rng(0).uniform(0, 255, (16, 20, 3)).astype(np.float32)
    ycbcr = color.rgb_to_ycbcr(rgb).numpy()
    np.testing.assert_allclose(ycbcr, ycbcr_ref(rgb), atol=1e-3, rtol=1e-5)
    np.testing.assert_allclose(color.ycbcr_to_rgb(ycbcr).numpy(), rgb, atol=1e-3)
    assert ycbcr.dtype == np.float32


def test_known_values():
    white_red = np.array([[[255, 255, 255], [255, 0, 0]]], np.float32)
    ycbcr = color.rgb_to_ycbcr(white_red).numpy()
    np.testing.assert_allclose(ycbcr[0, 0], [255, 128, 128], atol=1e-3)
    np.testing.assert_allclose(ycbcr[0, 1, 0], 76.245, atol=1e-3)
    np.testing.assert_allclose(color.luminance(white_red).numpy()[0, 1], [76.245] * 3,
                               atol=1e-3)


def test_ycbcr_to_rgb_does_not_clip():
    # Y = 255 with saturated red chroma is no RGB colour: R comes out above 255.
    rgb = color.ycbcr_to_rgb(np.array([[[255, 128, 255]]], np.float32)).numpy()
    assert rgb[0, 0, 0] > 255 and rgb[0, 0, 1] < 255


def test_match_color_histogram_matches_target_moments():
    source = colour_field(1, mean=(90, 140, 170), std=20)
    target = colour_field(2, 40, 56, mean=(160, 110, 100), std=30)
    mean_s, cov_s = moments(source)
    mean_t, cov_t = moments(target)
    # The test means something only if the moments differed to begin with.
    assert np.abs(mean_s - mean_t).max() > 20 and rel_frobenius(cov_s, cov_t) > 0.3

    out = color.match_color_histogram(source, target).numpy()
    assert out.shape == source.shape and out.dtype == np.float32
    mean_o, cov_o = moments(out)
    assert np.abs(mean_o - mean_t).max() < 0.5
    assert rel_frobenius(cov_o, cov_t) < 0.02


def test_match_color_histogram_identity_and_flat_inputs():
    image = colour_field(3)
    same = color.match_color_histogram(image, image).numpy()
    assert np.abs(same - image).max() < 0.5

    grey = np.repeat(colour_field(4)[..., :1], 3, -1)
    to_grey = color.match_color_histogram(image, grey).numpy()
    assert np.isfinite(to_grey).all()
    # The target has no colour, so neither may the result (up to the eigenvalue floor).
    assert np.ptp(to_grey, axis=-1).max() < 1.0
    assert abs(to_grey.mean() - grey.mean()) < 0.5

    from_grey = color.match_color_histogram(grey, image).numpy()
    flat = color.match_color_histogram(np.full((8, 8, 3), 77.0, np.float32), image).numpy()
    assert np.isfinite(from_grey).all() and np.isfinite(flat).all()
    np.testing.assert_allclose(flat, np.broadcast_to(moments(image)[0], flat.shape),
                               atol=0.5)


def test_match_luminance_takes_content_mean_and_std():
    style = colour_field(5, mean=(170, 100, 110), std=30)
    content = colour_field(6, 30, 30, mean=(100, 120, 80), std=15)
    y_style = ycbcr_ref(style)[..., 0]
    y_content = ycbcr_ref(content)[..., 0]
    assert abs(y_style.std() - y_content.std()) > 5  # meaningful: std really changes

    out = color.match_luminance(style, content).numpy()
    assert out.shape == style.shape
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()
    assert abs(out[..., 0].mean() - y_content.mean()) < 0.5
    assert abs(out[..., 0].std() - y_content.std()) < 0.5
    # The pattern is the style's: a linear function of its luminance.
    assert np.corrcoef(out[..., 0].ravel(), y_style.ravel())[0, 1] > 0.999

    flat = color.match_luminance(np.full((8, 8, 3), 40.0, np.float32), content).numpy()
    np.testing.assert_allclose(flat, y_content.mean(), atol=0.5)
    # Float rounding noise in a flat image must not be stretched to full contrast.
    noise = np.random.default_rng(0).normal(0, 1e-4, (8, 8, 1))
    almost_flat = (np.full((8, 8, 3), 20.0) + noise).astype(np.float32)
    out = color.match_luminance(almost_flat, content).numpy()
    np.testing.assert_allclose(out, y_content.mean(), atol=0.5)


def test_combine_luminance_chroma():
    stylized = colour_field(7, mean=(120, 130, 125), std=12)
    content = colour_field(8, mean=(130, 120, 135), std=12)
    out = color.combine_luminance_chroma(stylized, content).numpy()
    assert 0 < out.min() and out.max() < 255  # mid-range: nothing was clipped
    ycbcr = ycbcr_ref(out)
    np.testing.assert_allclose(ycbcr[..., 0], ycbcr_ref(stylized)[..., 0], atol=1e-2)
    np.testing.assert_allclose(ycbcr[..., 1:], ycbcr_ref(content)[..., 1:], atol=1e-2)


ONE_ARG = [color.rgb_to_ycbcr, color.ycbcr_to_rgb, color.luminance]
TWO_ARG = [color.match_luminance, color.combine_luminance_chroma,
           color.match_color_histogram]
ALL = [(f, 1) for f in ONE_ARG] + [(f, 2) for f in TWO_ARG]


def inputs(arity):
    return [colour_field(10 + i, mean=(100 + 30 * i, 120, 140 - 20 * i)) for i in
            range(arity)]


@pytest.mark.parametrize("function, arity", ALL, ids=lambda v: getattr(v, "__name__", ""))
def test_rank_3_and_4_agree(function, arity):
    images = inputs(arity)
    out3 = function(*images).numpy()
    out4 = function(*[image[None] for image in images]).numpy()
    assert out3.shape == images[0].shape and out4.shape == (1,) + images[0].shape
    assert out3.dtype == out4.dtype == np.float32
    np.testing.assert_allclose(out4[0], out3, atol=1e-3)


@pytest.mark.parametrize("function, arity", ALL, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("batched", [False, True])
def test_graph_mode_with_unknown_size(function, arity, batched):
    spec = tf.TensorSpec([1, None, None, 3] if batched else [None, None, 3], tf.float32)
    graph_fn = tf.function(function, input_signature=[spec] * arity)
    images = [image[None] if batched else image for image in inputs(arity)]
    out = graph_fn(*images)
    assert out.shape == images[0].shape and out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), function(*images).numpy(), atol=1e-3)


def test_saved_model_round_trip(tmp_path):
    spec = tf.TensorSpec([None, None, 3], tf.float32)
    module = tf.Module()
    module.run = tf.function(
        lambda a, b: {f.__name__: f(a, b) for f in TWO_ARG}, input_signature=[spec] * 2)
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    a, b = inputs(2)
    outputs = loaded.run(a, b)
    for function in TWO_ARG:
        np.testing.assert_allclose(outputs[function.__name__].numpy(),
                                   function(a, b).numpy(), atol=1e-3)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        color.luminance(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError):
        color.rgb_to_ycbcr(np.zeros((4, 4, 4), np.float32))
