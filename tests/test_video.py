"""The video loop (``tfstyle.video``): warm starts, the temporal term, and resuming.

A camera pan over a photo (``video_clips.pan_clip``) has a known flow, so a steady
result is one that pans with it. The feature model has random weights (the module's
``stylizer``), which still makes a style's texture; init=noise makes independent frames
flicker, as each settles from its own start.
"""

import dataclasses

import numpy as np
import pytest

from conftest import synthetic_image
from tfstyle import RunOptions, flow
from tfstyle.errors import ConfigError
from tfstyle.video import (Frame, VideoOptions, frame_path, frames_done, save_frame,
                           stylize_frames, warm_start)
from video_clips import pan_clip

STYLE = synthetic_image(2)
OPTIONS = RunOptions(size=48, steps=16, seed=3, stage_size=0, init="noise")
VIDEO = VideoOptions(frame_steps=8, flow_preset="medium")


@pytest.fixture(scope="module")
def clip():
    """5 frames of 48 × 36 panning 2 px right per frame over a smooth photo-like image."""
    rng = np.random.default_rng(0)
    image = synthetic_image(1, 48, 80)
    image = np.clip(image.astype(int) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
    frames = pan_clip(image, 5, 2, (48, 36))
    return list(enumerate(frames))


def temporal_errors(frames, inputs):
    return [flow.temporal_error(frames[t - 1], frames[t], inputs[t - 1], inputs[t])
            for t in range(1, len(frames))]


def test_video_mode_is_steadier_than_independent_frames(stylizer, clip):
    video = [f.image for f in stylize_frames(stylizer, clip, STYLE, OPTIONS, VIDEO)]
    alone = [f.image for f in stylize_frames(
        stylizer, clip, STYLE, OPTIONS, dataclasses.replace(VIDEO, independent=True))]
    inputs = [frame for _, frame in clip]
    steady, flicker = np.mean(temporal_errors(video, inputs)), np.mean(
        temporal_errors(alone, inputs))
    assert steady < flicker / 2, (steady, flicker)
    assert all(image.shape == (36, 48, 3) and image.dtype == np.uint8 for image in video)


def test_the_temporal_term_holds_later_frames_to_the_warped_one(stylizer, clip):
    """With a large λ a later frame stays at its warm start where c = 1; with λ = 0 it
    moves away from it under the style term."""
    first = next(stylize_frames(stylizer, clip[:1], STYLE, OPTIONS, VIDEO)).image
    ws = warm_start(first, clip[0][1], clip[1][1], "medium")
    moved = {}
    for weight in (0.0, 1e7):
        options = dataclasses.replace(OPTIONS, temporal_weight=weight)
        result = stylizer.stylize(clip[1][1], STYLE, dataclasses.replace(
            options, stage_size=0, steps=8, init="content"), start=ws.start,
            temporal=(ws.target, ws.weight))
        held = ws.weight > 0
        moved[weight] = np.abs(result.image.astype(float) - ws.target)[held].mean()
        if weight:
            assert result.losses["temporal"] > 0
    assert moved[1e7] < moved[0.0] / 3, moved


def test_a_resumed_clip_equals_an_uninterrupted_one(stylizer, clip, tmp_path):
    whole = [f.image for f in stylize_frames(stylizer, clip, STYLE, OPTIONS, VIDEO)]
    for frame in stylize_frames(stylizer, clip[:2], STYLE, OPTIONS, VIDEO):
        save_frame(tmp_path, frame)
    done = frames_done(tmp_path)
    assert done == 2
    from tfstyle import image_io
    previous = (clip[done - 1][1], image_io.to_array(image_io.open_image(
        frame_path(tmp_path, done - 1))).astype(np.uint8))
    rest = [f.image for f in stylize_frames(stylizer, clip[done:], STYLE, OPTIONS, VIDEO,
                                            previous=previous)]
    for index, image in enumerate(rest, start=done):
        np.testing.assert_array_equal(image, whole[index])


def test_frames_done_counts_consecutive_frames(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    for index in (0, 1, 3):
        save_frame(tmp_path, Frame(index, image, 0.0))
    assert frames_done(tmp_path) == 2


def test_a_video_needs_a_seed_and_usable_video_options(stylizer, clip):
    with pytest.raises(ConfigError, match="seed"):
        next(stylize_frames(stylizer, clip, STYLE, dataclasses.replace(OPTIONS, seed=None)))
    with pytest.raises(ConfigError, match="frame_steps"):
        next(stylize_frames(stylizer, clip, STYLE, OPTIONS, VideoOptions(frame_steps=0)))
    with pytest.raises(ConfigError, match="flow_preset"):
        next(stylize_frames(stylizer, clip, STYLE, OPTIONS, VideoOptions(flow_preset="x")))


def test_a_start_or_target_of_the_wrong_size_is_refused(stylizer, clip):
    frame = clip[0][1]
    with pytest.raises(ConfigError, match="start image"):
        stylizer.stylize(frame, STYLE, OPTIONS, start=np.zeros((10, 10, 3)))
    with pytest.raises(ConfigError, match="temporal target"):
        stylizer.stylize(frame, STYLE, OPTIONS,
                         temporal=(np.zeros((36, 48, 3)), np.zeros((36, 40))))
