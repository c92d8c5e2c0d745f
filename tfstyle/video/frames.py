"""Video without flicker (Ruder, Dosovitskiy and Brox, "Artistic style transfer for
videos", GCPR 2016): a clip's frames stylized one after another, each held to the last.

Stylizing each frame on its own flickers: each settles into a different local optimum.
Here frame 0 runs as a still image (the image default, coarse to fine). Each later frame
t runs a short single-stage schedule at the output size (``VideoOptions.frame_steps``):

* its start is the stylized frame t−1 moved onto frame t by the optical flow of the
  input frames (``flow.frame_pair``); the pixels the flow cannot vouch for (disoccluded,
  at motion boundaries, come from outside the frame: weight c = 0) are frame t with the
  previous frame's stylization (result minus photo) moved onto it;
* its loss gains the temporal term λ (1/D) Σ c (x − ω(x_{t−1}))² (``losses.temporal_loss``,
  ``RunOptions.temporal_weight``), ω(x_{t−1}) that same warped frame.

The compiled step and the style's targets are built once per clip: ``Stylizer`` keeps
its traced functions and the style targets it last used (``compiled.Compiled``), and
every later frame has the same settings and size, so it runs only the frame itself
through the network for its content targets. (A server is stateless: each served frame
computes the style's targets again.)

Every frame's result is uint8, and frame t+1 starts from that uint8 result: so a run
resumed from frames written to disk (``frames_done``) gives the frames an uninterrupted
run with the same seed gives.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Iterable, NamedTuple

import numpy as np

from tfstyle import image_io
from tfstyle.errors import ConfigError
from tfstyle.options import RunOptions
from tfstyle.video import flow

FRAME_NAME = "frame_{:06d}.png"


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """How a clip's frames are run, beyond each frame's ``RunOptions``.

    frame_steps: steps of each frame after the first, at the output size (≥ 1).
    independent: run every frame as a still image, from its own start, with no temporal
      term (the flickering baseline).
    flow_preset: ``flow.flow``'s DIS preset for the input frames' flow.
    """
    frame_steps: int = 24
    independent: bool = False
    flow_preset: str = flow.DEFAULT_PRESET

    def validate(self) -> "VideoOptions":
        if isinstance(self.frame_steps, bool) or not isinstance(self.frame_steps, int) \
                or not 1 <= self.frame_steps <= 100_000:
            raise ConfigError(f"frame_steps must be an integer from 1 to 100000, got "
                              f"{self.frame_steps!r}")
        if self.flow_preset not in flow.PRESETS:
            raise ConfigError(f"flow_preset must be one of {', '.join(flow.PRESETS)}, got "
                              f"{self.flow_preset!r}")
        return self


class Frame(NamedTuple):
    """One finished frame: its index in the clip, uint8 (H, W, 3) result, and seconds."""
    index: int
    image: np.ndarray
    seconds: float


class WarmStart(NamedTuple):
    """What frame t starts from and is held to, at the output size, float32 [0, 255].

    start: (H, W, 3), the warped previous result where c = 1; where c = 0, frame t with
      the previous frame's stylization moved onto it (``warm_start``).
    target: (H, W, 3), the previous result warped onto frame t (ω(x_{t−1})).
    weight: (H, W), c in {0, 1}.
    """
    start: np.ndarray
    target: np.ndarray
    weight: np.ndarray


def warm_start(previous_result, previous_frame, frame, preset=flow.DEFAULT_PRESET) -> WarmStart:
    """Frame t's start and temporal target from frame t−1's result.

    Args:
      previous_result: uint8 (H, W, 3), the stylized frame t−1.
      previous_frame, frame: the input frames t−1 and t, uint8 (H, W, 3), at the
        result's size (the flow is taken between them, not between stylized frames).

    Where the flow vouches for a pixel (c = 1) the start is the warped result. Where it
    does not (c = 0), the start is frame t plus the previous frame's stylization (its
    result minus its photo) moved by the flow: starting those pixels from the bare photo
    leaves them pale after a later frame's few steps, and the temporal term then keeps
    the paleness (pale halos trailing whatever moves, BENCHMARKS.md "Video"); starting
    them from the warped result alone drags the moving thing's pixels along (smears).

    The results are rounded to integers: start and target are then what a uint8 image
    (a PNG sent to the server) carries, so that a served clip and a local one run on
    the same numbers.
    """
    pair = flow.frame_pair(previous_frame, frame, preset)
    target = _pixels(pair.warp_previous(np.asarray(previous_result, np.float32)))
    moved_frame = pair.warp_previous(np.asarray(previous_frame, np.float32))
    restyled = _pixels(frame.astype(np.float32) + (target - moved_frame))
    c = pair.weights.astype(np.float32)
    start = np.where(c[:, :, None] > 0, target, restyled)
    return WarmStart(start, target, c)


def _pixels(values):
    """float values rounded and clipped to what uint8 holds, as float32."""
    return np.clip(np.round(values), 0.0, 255.0).astype(np.float32)


def output_frame(frame, size: int) -> np.ndarray:
    """An input frame (uint8 (h, w, 3)) at the output's size (longest side ``size``),
    resized by Pillow's Lanczos (``image_io.resize_longest``, no TensorFlow: a client
    of a server does the same), so that the runner's own resize of it is the identity;
    uint8 (H, W, 3)."""
    from PIL import Image

    image = Image.fromarray(np.asarray(frame, np.uint8))
    return np.asarray(image_io.resize_longest(image, size), np.uint8)


def later_options(options: RunOptions, video: VideoOptions) -> RunOptions:
    """A later frame's options: one stage at the output size, ``frame_steps`` steps."""
    return dataclasses.replace(options, stage_size=0, stage_steps=None,
                               steps=video.frame_steps, init="content").validate()


def stylize_frames(stylizer, frames: Iterable, style, options: RunOptions,
                   video: VideoOptions = VideoOptions(), previous: tuple | None = None,
                   should_stop: Callable[[], bool] | None = None, callback=None,
                   callback_every: int = 50, content_mask=None, style_masks=None):
    """Stylizes ``frames`` in order on ``stylizer``; yields a ``Frame`` as each finishes.

    Args:
      stylizer: a ``transfer.Stylizer``.
      frames: iterable of (index, uint8 (h, w, 3) RGB frame), consecutive.
      style: the painting (a path, bytes, PIL image or array), or a list of them.
      options: every frame's ``RunOptions`` (validated); its seed must be set, so that
        every frame, and a resumed run, draws the same.
      previous: None to start the clip, or (input frame, uint8 result) of the frame
        before the first of ``frames`` (a resumed run).
      should_stop, callback, callback_every: as ``Stylizer.stylize``, per frame.
      content_mask, style_masks: as ``Stylizer.stylize``, over every frame (images of
        the frames' aspect ratio).

    Raises ``runner.Interrupted`` from inside a frame: the frames yielded before are
    finished.
    """
    def run_frame(frame, frame_options, start=None, temporal=None):
        return stylizer.stylize(frame, style, frame_options, start=start, temporal=temporal,
                                callback=callback, callback_every=callback_every,
                                should_stop=should_stop, content_mask=content_mask,
                                style_masks=style_masks).image
    return run_clip(run_frame, frames, options, video, previous)


def served_frames(client, frames: Iterable, style, options: RunOptions,
                  video: VideoOptions = VideoOptions(), previous: tuple | None = None):
    """As ``stylize_frames``, on a TensorFlow Serving: ``client`` (a
    ``tfstyle.serving.client.TFServingClient``) runs each frame's optimisation there, and the
    flow and the warps are computed here; the server stays stateless. With the model
    and seed of a local run, the frames are that run's, bit for bit.

    ``style``: one image (a path, bytes, PIL image or array), read once. Raises
    ``client.ServingError`` where the server refuses a frame."""
    from tfstyle.serving.client import encode_image
    from tfstyle.serving.served_options import request_values

    style = encode_image(style)

    def run_frame(frame, frame_options, start=None, temporal=None):
        images = {}
        if start is not None:
            images["init_image"] = start
        if temporal is not None:  # the target is integer valued (``warm_start``)
            images.update(temporal_target=np.asarray(temporal[0], np.uint8),
                          temporal_mask=temporal[1])
        return client.stylize(frame, style, **images, **request_values(frame_options))
    return run_clip(run_frame, frames, options, video, previous)


def run_clip(run_frame: Callable, frames: Iterable, options: RunOptions,
             video: VideoOptions = VideoOptions(), previous: tuple | None = None):
    """The frame schedule, for any way of running one frame; yields a ``Frame`` as each
    finishes. No TensorFlow here: a client of a server runs it too (``tfstyle.cli.remote``).

    Args:
      run_frame: ``run_frame(frame, options, start=None, temporal=None)`` -> uint8
        (H, W, 3): ``frame`` uint8 (H, W, 3) at the output size, stylized with
        ``options``, starting from ``start`` (uint8 (H, W, 3)) where given and held to
        ``temporal`` = (target float32 (H, W, 3) in [0, 255], weight (H, W) in [0, 1])
        where given, as ``Stylizer.stylize`` takes them.
      frames, options, video, previous: as ``stylize_frames``.
    """
    if options.seed is None:
        raise ConfigError("a video needs a seed (every frame draws the same); set one")
    video = video.validate()
    later = later_options(options, video)
    for index, raw in frames:
        started = time.perf_counter()
        frame = output_frame(raw, options.size)
        if previous is None or video.independent:
            result = run_frame(frame, options)
        else:
            ws = warm_start(previous[1], previous[0], frame, video.flow_preset)
            result = run_frame(frame, later, start=ws.start.astype(np.uint8),
                               temporal=(ws.target, ws.weight))
        previous = (frame, result)
        yield Frame(index, result, time.perf_counter() - started)


def frames_done(folder) -> int:
    """How many consecutive frames (0, 1, ...) ``folder`` holds finished."""
    count = 0
    while os.path.isfile(os.path.join(folder, FRAME_NAME.format(count))):
        count += 1
    return count


def frame_path(folder, index: int) -> str:
    return os.path.join(folder, FRAME_NAME.format(index))


def save_frame(folder, frame: Frame) -> str:
    """Writes a finished frame atomically as ``folder/frame_NNNNNN.png``."""
    path = frame_path(folder, frame.index)
    image_io.save_image(frame.image, path)
    return path
