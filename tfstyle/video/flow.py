"""Optical flow between video frames, backward warping, and the per-pixel weights of
Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016).

numpy and OpenCV only (``pip install 'tfstyle[video]'``); TensorFlow is not imported.

Conventions
-----------
A flow is float32 ``(H, W, 2)``, the last axis ``(dx, dy)`` in pixels, x to the right and
y down, defined on the grid of the frame it starts from::

    flow(a, b)[y, x] = (dx, dy)   with   a(x, y) ~ b(x + dx, y + dy)

``warp(image, f)[y, x] = image(x + dx, y + dy)`` (backward warping, bilinear), hence
``warp(b, flow(a, b)) ~ a``. For the previous frame ``prev`` (t-1) and the current one
``cur`` (t)::

    forward  = flow(prev, cur)   on prev's grid, pointing into cur   (Ruder et al.'s w)
    backward = flow(cur, prev)   on cur's grid, pointing into prev   (their w-hat)

``warp(stylized_prev, backward)`` is the previous stylized frame moved onto the current
one, and ``consistency_weights(forward, backward)`` says, for each pixel of ``cur``,
whether that warped value can be trusted (1) or not (0). A camera panning right by s px
per frame gives ``backward = (+s, 0)`` and ``forward = (-s, 0)``.
"""

import dataclasses

import numpy as np

from tfstyle.errors import ConfigError, ImageError

__all__ = ["PRESETS", "DEFAULT_PRESET", "MIN_SIDE", "flow", "warp", "outside",
           "disocclusions", "motion_boundaries", "consistency_weights", "FramePair",
           "frame_pair", "temporal_error"]

# OpenCV's three DIS presets, and "fine": medium carried down to full resolution (DIS's
# finest scale 0; medium stops at half). Measured on pans and zooms of the sample photos
# (2 CPU cores, busy with another job; min-median of several runs): per flow at 256x192
# medium 5-13 ms, fine 23-58 ms; at 768x576 medium 73-130 ms, fine 290-740 ms. Zoom
# end-point error mean/p99, Tuebingen 768x576: medium 0.14/0.57 px, fine 0.03/0.08 px.
# Only fine finds a moving square's disocclusion: medium's half-resolution flows both
# smear the square's motion ~5 px over the background it uncovers, so the
# forward-backward check passes there. A frame of style transfer takes seconds or more,
# so the default is the accurate one.
PRESETS = ("ultrafast", "fast", "medium", "fine")
DEFAULT_PRESET = "fine"
# DIS refuses frames under its 8 px patch on one side and 12 px on the other.
MIN_SIDE = 12


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise ImageError("optical flow needs OpenCV, which is not installed; run "
                         "pip install 'tfstyle[video]'") from exc
    return cv2


# --------------------------------------------------------------------------- flow


def _grey(frame, name):
    """uint8 (H, W) luma of a uint8 or 0..255 float RGB (H, W, 3) or grey (H, W) frame."""
    array = np.asarray(frame)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ConfigError("%s must be an RGB (H, W, 3) or grey (H, W) frame, got shape %s"
                          % (name, array.shape))
    if min(array.shape[:2]) < MIN_SIDE:
        raise ConfigError("%s is %dx%d; optical flow needs frames of at least %dx%d px"
                          % (name, array.shape[1], array.shape[0], MIN_SIDE, MIN_SIDE))
    if array.dtype != np.uint8:
        if array.dtype.kind not in "fiu" or not np.isfinite(array).all():
            raise ConfigError("%s must be uint8, or finite numbers in 0..255, got %s"
                              % (name, array.dtype))
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return np.ascontiguousarray(array)
    return _cv2().cvtColor(np.ascontiguousarray(array), _cv2().COLOR_RGB2GRAY)


def _same_size(*named):
    shapes = {name: np.shape(array)[:2] for name, array in named}
    if len(set(shapes.values())) > 1:
        raise ConfigError("the frames differ in size (%s); resize them to one size first"
                          % ", ".join("%s %dx%d" % (n, s[1], s[0]) for n, s in shapes.items()))


def flow(a, b, preset=DEFAULT_PRESET):
    """Dense optical flow from frame ``a`` to frame ``b`` (OpenCV's DIS, on grey frames).

    Args:
        a, b: frames of one size, at least ``MIN_SIDE`` px a side: uint8 (or 0..255
            float) RGB ``(H, W, 3)`` or grey ``(H, W)``.
        preset: "ultrafast", "fast", "medium" (OpenCV's DIS presets) or "fine" (medium
            down to full resolution, the default: see ``PRESETS``).

    Returns:
        float32 ``(H, W, 2)`` on ``a``'s grid: ``a(x, y) ~ b(x + dx, y + dy)``.
    """
    if preset not in PRESETS:
        raise ConfigError("unknown flow preset %r; use one of %s" % (preset, ", ".join(PRESETS)))
    _same_size(("a", a), ("b", b))
    cv2 = _cv2()
    name = "medium" if preset == "fine" else preset
    dis = cv2.DISOpticalFlow_create(getattr(cv2, "DISOPTICAL_FLOW_PRESET_" + name.upper()))
    if preset == "fine":
        dis.setFinestScale(0)
    # DIS's own convention is this module's: the flow lives on its first image.
    return dis.calc(_grey(a, "a"), _grey(b, "b"), None).astype(np.float32, copy=False)


def _check_flow(field, name="flow"):
    field = np.asarray(field)
    if field.ndim != 3 or field.shape[2] != 2 or min(field.shape[:2]) < 2:
        raise ConfigError("%s must be an (H, W, 2) array of (dx, dy), H and W >= 2, got "
                          "shape %s" % (name, field.shape))
    if field.dtype.kind != "f" or not np.isfinite(field).all():
        raise ConfigError("%s must hold finite floats" % name)
    return field


# --------------------------------------------------------------------------- warping


def warp(image, flow):
    """Backward-warp ``image`` by ``flow``: ``out[y, x] = image(x + dx, y + dy)``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``, any C and real dtype (values kept as they are).
        flow: float ``(H, W, 2)`` on the output's grid.

    Returns:
        float32, ``image``'s shape, bilinear samples (OpenCV's remap, positions to 1/32
        px). Where the source lies outside the frame (see :func:`outside`) the nearest
        edge pixel is repeated: a plausible start for an optimiser, but not a value to
        trust, which is what the weights say.
    """
    cv2 = _cv2()
    field = _check_flow(flow)
    array = np.asarray(image, dtype=np.float32)
    if array.shape[:2] != field.shape[:2] or array.ndim not in (2, 3):
        raise ConfigError("image %s and flow %s differ in size; compute the flow on frames "
                          "of the image's size" % (array.shape, field.shape))
    h, w = field.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32),
                                 np.arange(h, dtype=np.float32))
    map_x, map_y = grid_x + field[..., 0], grid_y + field[..., 1]

    def remap(part):
        return cv2.remap(np.ascontiguousarray(part), map_x, map_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    if array.ndim == 2 or array.shape[2] in (1, 3, 4):
        return remap(array).reshape(array.shape)
    # OpenCV 5.1's remap mis-samples float images of 2 or more than 4 channels (by
    # several grey levels); its 1-, 3- and 4-channel paths match exact bilinear
    # sampling to 1e-3. Other counts go one channel at a time.
    return np.stack([remap(array[..., i]) for i in range(array.shape[2])], axis=2)


def _positions(field):
    """float64 source positions (x + dx, y + dy), each (H, W)."""
    h, w = field.shape[:2]
    grid_y, grid_x = np.mgrid[0:h, 0:w]
    return grid_x + field[..., 0].astype(np.float64), grid_y + field[..., 1].astype(np.float64)


def outside(flow):
    """bool ``(H, W)``: True where ``(x + dx, y + dy)`` is off the frame, that is outside
    ``[0, W-1] x [0, H-1]`` (the area bilinear sampling covers without extrapolating)."""
    field = _check_flow(flow)
    h, w = field.shape[:2]
    x, y = _positions(field)
    return (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)


def _components(field):
    """The (dx, dy) planes of a flow as contiguous float64 (H, W) arrays."""
    return [np.ascontiguousarray(field[..., i], dtype=np.float64) for i in (0, 1)]


def _sample(field, flow):
    """float64 bilinear samples of each plane of ``field`` (H, W, C) at p + flow(p),
    the positions clamped to the frame. numpy rather than remap (which rounds positions
    to 1/32 px): exact, so the weights' thresholds are met as the formulas say."""
    h, w = field.shape[:2]
    x, y = _positions(flow)
    x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.intp), y0.astype(np.intp)
    # Flat indices of the four neighbours; the +1 stays put on the last row/column.
    i00 = y0 * w + x0
    i01 = i00 + (x0 < w - 1)
    i10 = i00 + (y0 < h - 1) * w
    i11 = i10 + (i01 - i00)
    samples = []
    for i in range(field.shape[2]):
        plane = np.asarray(field[..., i], dtype=np.float64).ravel()
        top = plane.take(i00) * (1 - fx) + plane.take(i01) * fx
        bottom = plane.take(i10) * (1 - fx) + plane.take(i11) * fx
        samples.append(top * (1 - fy) + bottom * fy)
    return samples


# --------------------------------------------------------------------------- weights


def disocclusions(forward, backward):
    """bool ``(H, W)`` on cur's grid: Ruder et al.'s forward-backward check fails.

    With ``w~ = forward`` sampled at ``p + backward(p)`` (the forward flow brought onto
    cur's grid) and ``w^ = backward``, a pixel is disoccluded (it was hidden in prev)
    where ``|w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5``: moving back then forth again
    does not return to it. Computed in float64.
    """
    forward, backward = _check_flow(forward, "forward"), _check_flow(backward, "backward")
    _same_size(("forward", forward), ("backward", backward))
    tu, tv = _sample(forward, backward)  # w~
    u, v = _components(backward)  # w^
    return ((tu + u) ** 2 + (tv + v) ** 2
            > 0.01 * ((tu * tu + tv * tv) + (u * u + v * v)) + 0.5)


def motion_boundaries(backward):
    """bool ``(H, W)``: where ``|grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002`` for the
    backward flow ``w^ = (u^, v^)`` (Ruder et al.). Gradients are central differences,
    one-sided at the frame's edges (``np.gradient``), in float64."""
    u, v = _components(_check_flow(backward, "backward"))
    du_dy, du_dx = np.gradient(u)
    dv_dy, dv_dx = np.gradient(v)
    grad = (du_dx * du_dx + du_dy * du_dy) + (dv_dx * dv_dx + dv_dy * dv_dy)
    return grad > 0.01 * (u * u + v * v) + 0.002


def consistency_weights(forward, backward):
    """Ruder et al.'s per-pixel weights ``c`` of the current frame's temporal loss.

    Args:
        forward: ``flow(prev, cur)``, float (H, W, 2) on prev's grid.
        backward: ``flow(cur, prev)``, float (H, W, 2) on cur's grid.

    Returns:
        float32 ``(H, W)`` on cur's grid, 0 where the previous frame says nothing
        trustworthy about the pixel, 1 elsewhere. 0 marks (a) disocclusions
        (:func:`disocclusions`), (b) motion boundaries (:func:`motion_boundaries`),
        (c) pixels whose source ``p + backward(p)`` lies off the frame (:func:`outside`:
        the strip a pan brings in).
    """
    bad = disocclusions(forward, backward) | motion_boundaries(backward) | outside(backward)
    return (~bad).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class FramePair:
    """What the temporal loss of frame t needs from frames t-1 and t.

    Attributes:
        forward: ``flow(prev, cur)``, float32 (H, W, 2) on prev's grid.
        backward: ``flow(cur, prev)``, float32 (H, W, 2) on cur's grid: the flow that
            warps the previous stylized frame into the current one.
        weights: ``consistency_weights(forward, backward)``, float32 (H, W) in {0, 1}.
    """

    forward: np.ndarray
    backward: np.ndarray
    weights: np.ndarray

    def warp_previous(self, image):
        """``image`` of frame t-1 (any channels) moved onto frame t; float32."""
        return warp(image, self.backward)


def frame_pair(prev, cur, preset=DEFAULT_PRESET):
    """Both flows between input frames ``prev`` (t-1) and ``cur`` (t), and the weights.

    ``prev``, ``cur``: frames of one size, uint8 (or 0..255 float) RGB (H, W, 3).
    """
    forward = flow(prev, cur, preset)
    backward = flow(cur, prev, preset)
    return FramePair(forward, backward, consistency_weights(forward, backward))


def temporal_error(stylized_prev, stylized_cur, input_prev, input_cur,
                   preset=DEFAULT_PRESET):
    """Flicker between two stylized frames, on the 0..255 scale.

    The stylized frame t-1 is warped onto frame t with the flow of the INPUT frames
    (the motion the video has), and the mean absolute difference to stylized frame t,
    over pixels and channels, is taken where the weights are 1 (visible in both).

    Args:
        stylized_prev, stylized_cur: RGB (H, W, 3), uint8 or float in 0..255.
        input_prev, input_cur: the input frames they were made from, the same size.

    Returns:
        float >= 0; nan when no pixel is visible in both (a scene cut), so a mean over
        a clip should use ``np.nanmean``.
    """
    _same_size(("stylized_prev", stylized_prev), ("stylized_cur", stylized_cur),
               ("input_prev", input_prev), ("input_cur", input_cur))
    pair = frame_pair(input_prev, input_cur, preset)
    moved = pair.warp_previous(stylized_prev).astype(np.float64)
    diff = np.abs(moved - np.asarray(stylized_cur, dtype=np.float64))
    visible = pair.weights == 1
    if not visible.any():
        return float("nan")
    return float(diff[visible].mean())
