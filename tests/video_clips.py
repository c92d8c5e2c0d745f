"""Small test clips with a known motion, made and written with PyAV itself.

``pan_clip`` moves a camera over a photo by a constant integer shift per frame, so the
true optical flow between consecutive frames is that shift everywhere (except on the
strip that enters the frame); ``zoom_clip`` zooms into the photo about the centre, a
flow that differs at every pixel. ``write_clip`` saves frames as mp4, mov, avi, gif or a
folder of PNGs, optionally with a sine tone as the audio track.

Flow convention (the one of ``tfstyle.video.flow``): ``flow(a, b)[y, x] = (dx, dy)`` with
``a(x, y) ~ b(x + dx, y + dy)``. In a pan of ``(sx, sy)`` px per frame,
``cur(x, y) = prev(x + sx, y + sy)``, so ``flow(cur, prev) = (sx, sy)`` and
``flow(prev, cur) = (-sx, -sy)``.
"""

import fractions
import pathlib

import cv2
import numpy as np
from PIL import Image


def photo(path, longest_side=320):
    """The photo at ``path`` as uint8 (H, W, 3) RGB, its longest side ``longest_side``."""
    image = Image.open(path).convert("RGB")
    image.thumbnail((longest_side, longest_side), Image.LANCZOS)
    return np.asarray(image)


def pan_clip(image, frames, shift_px, size):
    """A camera pan over ``image``: ``frames`` crops of ``size`` (w, h).

    Args:
        image: uint8 (H, W, 3), at least ``size`` plus the whole pan.
        frames: how many frames.
        shift_px: int or (sx, sy) ints: how far the camera moves right/down per frame.
        size: (w, h) of each frame.

    Returns:
        A list of uint8 (h, w, 3) arrays, frame ``i`` the crop at ``(x0 + i sx, y0 + i sy)``,
        the pan centred in ``image``. The true ``flow(cur, prev)`` is ``(sx, sy)``.
    """
    sx, sy = (shift_px, 0) if np.isscalar(shift_px) else shift_px
    w, h = size
    span_x, span_y = abs(sx) * (frames - 1), abs(sy) * (frames - 1)
    if image.shape[1] < w + span_x or image.shape[0] < h + span_y:
        raise ValueError("the photo is too small for this pan")
    x0 = (image.shape[1] - w - span_x) // 2 + (span_x if sx < 0 else 0)
    y0 = (image.shape[0] - h - span_y) // 2 + (span_y if sy < 0 else 0)
    return [np.ascontiguousarray(image[y0 + i * sy:y0 + i * sy + h, x0 + i * sx:x0 + i * sx + w])
            for i in range(frames)]


def zoom_matrix(image_shape, size, scale):
    """The 2x3 affine map from frame pixels to ``image`` pixels of a view ``scale``
    times magnified, centred on the image: ``frame(p) = image(M @ [p, 1])``."""
    w, h = size
    cx_img, cy_img = (image_shape[1] - 1) / 2, (image_shape[0] - 1) / 2
    cx, cy = (w - 1) / 2, (h - 1) / 2
    return np.array([[1 / scale, 0, cx_img - cx / scale],
                     [0, 1 / scale, cy_img - cy / scale]])


def zoom_clip(image, frames, zoom_per_frame, size):
    """A zoom into ``image`` about its centre, ``zoom_per_frame`` times per frame.

    Returns (frames, true_flows): the list of uint8 (h, w, 3) frames, bilinear samples
    of ``image``, and ``true_flows(i)``: the exact float64 (h, w, 2) ``(forward,
    backward)`` = ``(flow(frame i-1, frame i), flow(frame i, frame i-1))``. About the
    frame's centre c, backward(p) = (p - c)(1/zoom - 1) and forward(q) = (q - c)(zoom - 1).
    """
    w, h = size
    mats = [zoom_matrix(image.shape, size, zoom_per_frame ** i) for i in range(frames)]
    out = [cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT) for m in mats]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)

    def between(src, dst):
        # src(p) = image(M_src p) = dst(M_dst^-1 M_src p); the maps are diagonal.
        px = (src[0, 0] * xx + src[0, 2] - dst[0, 2]) / dst[0, 0]
        py = (src[1, 1] * yy + src[1, 2] - dst[1, 2]) / dst[1, 1]
        return np.stack([px - xx, py - yy], -1)

    def true_flows(i):
        return between(mats[i - 1], mats[i]), between(mats[i], mats[i - 1])
    return out, true_flows


def sine_frames(codec, seconds, rate=48000, frame_size=1024, freq=440.0):
    """Mono sine frames, ``frame_size`` samples each, in the codec's sample format."""
    import av

    fmt = "fltp" if codec == "aac" else "s16"
    n = 0
    total = int(seconds * rate)
    while n < total:
        count = min(frame_size, total - n)
        wave = 0.3 * np.sin(2 * np.pi * freq * np.arange(n, n + count) / rate)
        data = (wave.astype(np.float32) if fmt == "fltp"
                else (wave * 32767).astype(np.int16))[None]
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = n
        n += count
        yield frame


_VIDEO_CODECS = {".mp4": "libx264", ".mov": "libx264", ".avi": "mpeg4", ".gif": "gif",
                 ".webm": "libvpx-vp9"}


def write_clip(frames, path, fps=25, audio=None, faststart=False):
    """Write ``frames`` (uint8 (h, w, 3) list) to ``path`` and return it as a Path.

    The suffix picks the format: .mp4/.mov (H.264), .avi (MPEG-4 part 2), .gif,
    .webm (VP9); a path without a suffix becomes a folder of ``frame_0001.png``...
    ``audio``: None, "aac" (mp4/mov) or "pcm_s16le" (mov/avi): a 440 Hz tone as long as
    the video. ``faststart``: mp4 index at the front, so a truncated copy still opens.
    """
    import av

    path = pathlib.Path(path)
    if not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(path / ("frame_%04d.png" % (i + 1)))
        return path
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream(_VIDEO_CODECS[path.suffix], rate=fractions.Fraction(fps))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "rgb8" if path.suffix == ".gif" else "yuv420p"
        audio_stream = None
        if audio:
            audio_stream = out.add_stream(audio, rate=48000, layout="mono")
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if audio_stream is not None:
            for frame in sine_frames(audio, len(frames) / fps):
                out.mux(audio_stream.encode(frame))
            out.mux(audio_stream.encode(None))
    return path
