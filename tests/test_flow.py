"""tfstyle.video.flow: optical flow, warping and Ruder et al.'s weights, on clips whose true
motion is known (tests/video_clips.py)."""

import numpy as np
import pytest

pytest.importorskip("cv2")

import video_clips
from conftest import sample_image
from tfstyle.video import flow as F
from tfstyle.errors import ConfigError

SHIFT = (3, 1)  # camera moves 3 px right and 1 px down per frame
SIZE = (160, 120)
M = 12  # the interior: this far from every edge


@pytest.fixture(scope="module")
def photo():
    return video_clips.photo(sample_image("tubingen.jpg"), 400)


@pytest.fixture(scope="module")
def pan(photo):
    prev, cur = video_clips.pan_clip(photo, 2, SHIFT, SIZE)
    return prev, cur, F.frame_pair(prev, cur)


def interior(array):
    return array[M:-M, M:-M]


def test_pan_flow_is_the_shift_within_half_a_pixel(pan):
    _, _, pair = pan
    backward_error = np.hypot(*(pair.backward - np.array(SHIFT)).transpose(2, 0, 1))
    forward_error = np.hypot(*(pair.forward + np.array(SHIFT)).transpose(2, 0, 1))
    assert interior(backward_error).max() < 0.5
    assert interior(forward_error).max() < 0.5
    assert pair.backward.dtype == np.float32 and pair.backward.shape == (120, 160, 2)


def test_warp_brings_the_previous_frame_onto_the_current(pan):
    prev, cur, pair = pan
    exact = F.warp(prev, np.broadcast_to(np.float32(SHIFT), (120, 160, 2)))
    assert np.array_equal(exact[:-1, :-3], cur[:-1, :-3].astype(np.float32))
    moved = pair.warp_previous(prev)
    assert moved.dtype == np.float32 and moved.shape == prev.shape
    assert np.abs(interior(moved) - interior(cur)).mean() < 2.0


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4, 7])
def test_warp_is_exact_bilinear_sampling_for_any_channel_count(channels):
    # OpenCV 5.1's remap gets 2 and >4 channels wrong; warp must not pass them on.
    rng = np.random.default_rng(1)
    shape = (20, 30) if channels is None else (20, 30, channels)
    image = rng.uniform(0, 255, shape)
    field = rng.uniform(-3, 3, (20, 30, 2)).astype(np.float32)
    out = F.warp(image, field)
    assert out.shape == shape and out.dtype == np.float32
    planes = image[..., None] if channels is None else image
    expected = np.stack(F._sample(planes, field), -1).reshape(shape)  # float64, clamped
    np.testing.assert_allclose(out, expected, atol=0.01)


def test_weights_zero_on_the_strip_that_entered_and_one_inside(pan):
    _, _, pair = pan
    w = pair.weights
    assert w.dtype == np.float32 and set(np.unique(w)) <= {0.0, 1.0}
    assert w[:, -SHIFT[0]:].max() == 0 and w[-SHIFT[1]:, :].max() == 0
    assert interior(w).mean() > 0.98
    assert np.array_equal(F.outside(pair.backward)[:, -SHIFT[0]:],
                          np.ones((120, SHIFT[0]), bool))


@pytest.mark.parametrize("step", [4, 8])
def test_disoccluded_background_behind_a_moving_square_gets_weight_zero(photo, step):
    background = photo[:120, :160].copy()
    square = video_clips.photo(sample_image("starry_night.jpg"), 200)[20:60, 30:70]
    prev, cur = background.copy(), background.copy()
    prev[40:80, 50:90] = square
    cur[40:80, 50 + step:90 + step] = square
    w = F.frame_pair(prev, cur).weights
    uncovered = w[40:80, 50:50 + step]
    assert uncovered.mean() < 0.05  # seen in cur, hidden behind the square in prev
    assert w[45:75, 60 + step:85 + step].mean() > 0.95  # the square itself moved along
    assert w[:30].mean() > 0.9  # the still background far from it


def reference_weights(forward, backward):
    """Ruder et al.'s three tests written out pixel by pixel in float64."""
    fw, bw = forward.astype(np.float64), backward.astype(np.float64)
    h, w = bw.shape[:2]

    def gradient(f, y, x):  # central differences, one-sided at the edges
        gx = ((f[y, x + 1] - f[y, x - 1]) / 2 if 0 < x < w - 1
              else f[y, 1] - f[y, 0] if x == 0 else f[y, w - 1] - f[y, w - 2])
        gy = ((f[y + 1, x] - f[y - 1, x]) / 2 if 0 < y < h - 1
              else f[1, x] - f[0, x] if y == 0 else f[h - 1, x] - f[h - 2, x])
        return gx * gx + gy * gy

    out = np.ones((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            u, v = bw[y, x]
            sx, sy = x + u, y + v
            if not (0 <= sx <= w - 1 and 0 <= sy <= h - 1):
                out[y, x] = 0
                continue
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
            ax, ay = sx - x0, sy - y0
            wt = ((fw[y0, x0] * (1 - ax) + fw[y0, x1] * ax) * (1 - ay)
                  + (fw[y1, x0] * (1 - ax) + fw[y1, x1] * ax) * ay)
            if ((wt[0] + u) ** 2 + (wt[1] + v) ** 2
                    > 0.01 * (wt[0] ** 2 + wt[1] ** 2 + u * u + v * v) + 0.5):
                out[y, x] = 0
            elif (gradient(bw[..., 0], y, x) + gradient(bw[..., 1], y, x)
                  > 0.01 * (u * u + v * v) + 0.002):
                out[y, x] = 0
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_equal_a_float64_reference_of_the_formulas(seed):
    rng = np.random.default_rng(seed)
    h, w = 9, 11
    # A gentle flow leaving the frame on the right and top, spikes in 10 % of the
    # backward flow (motion boundaries around them) and a forward flow that is its
    # inverse except in 30 % of pixels (disocclusions there).
    yy, xx = np.mgrid[0:h, 0:w]
    backward = np.stack([0.8 + 0.02 * xx, -0.5 + 0.01 * yy], -1)
    backward += rng.normal(0, 0.5, (h, w, 2)) * (rng.uniform(size=(h, w, 1)) < 0.1)
    forward = -backward + rng.normal(0, 1.5, (h, w, 2)) * (rng.uniform(size=(h, w, 1)) < 0.3)
    forward, backward = forward.astype(np.float32), backward.astype(np.float32)
    expected = reference_weights(forward, backward)
    np.testing.assert_array_equal(F.consistency_weights(forward, backward), expected)
    # Each of the three tests alone zeroes some pixel, so each is checked above.
    out = F.outside(backward)
    occluded = F.disocclusions(forward, backward)
    boundary = F.motion_boundaries(backward)
    assert out.any() and (occluded & ~boundary & ~out).any()
    assert (boundary & ~occluded & ~out).any()
    assert 0.2 < expected.mean() < 0.8


def test_swapping_forward_and_backward_changes_the_answer(photo):
    # A 2 % zoom in: the current frame's pixels all come from inside the previous one,
    # while the previous frame's border ring leaves the current one.
    frames, true_flows = video_clips.zoom_clip(photo, 2, 1.02, SIZE)
    forward, backward = (f.astype(np.float32) for f in true_flows(1))
    right = F.consistency_weights(forward, backward)
    swapped = F.consistency_weights(backward, forward)
    assert right.min() == 1
    assert swapped[:, 0].max() == 0 and swapped[0, :].max() == 0
    # The estimated flows have the roles of the true ones.
    pair = F.frame_pair(*frames)
    assert np.hypot(*interior(pair.backward - backward).transpose(2, 0, 1)).max() < 0.5
    assert np.hypot(*interior(pair.forward - forward).transpose(2, 0, 1)).max() < 0.5
    assert np.abs(pair.backward - forward)[:M, :M].min() > 1.0


def test_temporal_error_small_on_the_clip_itself_large_on_unrelated_frames(pan):
    prev, cur, _ = pan
    assert F.temporal_error(prev, cur, prev, cur) < 3
    a = video_clips.photo(sample_image("starry_night.jpg"), 400)[:120, :160]
    b = np.ascontiguousarray(a[::-1, ::-1])
    assert F.temporal_error(a, b, prev, cur) > 20


def test_temporal_error_is_nan_when_no_pixel_is_visible_in_both(monkeypatch):
    # A scene cut: no pixel of the current frame has a trustworthy source.
    cut = F.FramePair(np.zeros((20, 20, 2), np.float32), np.zeros((20, 20, 2), np.float32),
                      np.zeros((20, 20), np.float32))
    monkeypatch.setattr(F, "frame_pair", lambda *args, **kwargs: cut)
    frame = np.full((20, 20, 3), 128, np.uint8)
    assert np.isnan(F.temporal_error(frame, frame, frame, frame))


@pytest.mark.parametrize("call, words", [
    (lambda: F.flow(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 30, 3), np.uint8)),
     "differ in size"),
    (lambda: F.flow(np.zeros((8, 40, 3), np.uint8), np.zeros((8, 40, 3), np.uint8)),
     "at least 12x12"),
    (lambda: F.flow(np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20, 4), np.uint8)),
     "RGB (H, W, 3)"),
    (lambda: F.flow(np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8), "slow"),
     "unknown flow preset"),
    (lambda: F.warp(np.zeros((20, 20, 3)), np.zeros((20, 21, 2), np.float32)),
     "differ in size"),
    (lambda: F.warp(np.zeros((20, 20, 3)), np.zeros((20, 20, 3), np.float32)),
     "(H, W, 2)"),
    (lambda: F.consistency_weights(np.zeros((5, 5, 2)), np.full((5, 5, 2), np.nan)),
     "finite"),
])
def test_bad_input_is_a_one_line_config_error(call, words):
    with pytest.raises(ConfigError) as info:
        call()
    assert words in str(info.value) and "\n" not in str(info.value)
