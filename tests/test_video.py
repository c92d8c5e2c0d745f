"""The video loop (``tfstyle.video.frames``): warm starts, the temporal term, and resuming.

A camera pan over a photo (``video_clips.pan_clip``) has a known flow, so a steady
result is one that pans with it. The feature model has random weights (the module's
``stylizer``), which still makes a style's texture; init=noise makes independent frames
flicker, as each settles from its own start.
"""

import dataclasses

import numpy as np
import pytest

from conftest import synthetic_image
from tfstyle import RunOptions
from tfstyle.video import flow
from tfstyle.errors import ConfigError
from tfstyle.video.frames import (Frame, VideoOptions, frame_path, frames_done, save_frame,
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
            options, stage_size=0, steps=8, init="content"), start=ws.start.astype(np.uint8),
            temporal=(ws.target, ws.weight))
        held = ws.weight > 0
        moved[weight] = np.abs(result.image.astype(float) - ws.target)[held].mean()
        if weight:
            assert result.losses["temporal"] > 0
    assert moved[1e7] < moved[0.0] / 3, moved


def test_a_clip_runs_the_style_through_the_network_once(stylizer, clip, monkeypatch):
    """Every frame computes its own content targets; the style's are computed for the
    first frame's stages and reused by the later frames (``compiled.Compiled``)."""
    from tfstyle.local import compiled

    calls = {"content_targets": 0, "style_targets": 0}
    run = compiled.AnySizeFunction.__call__

    def counting(self, *args):
        if self.function.name in calls:
            calls[self.function.name] += 1
        return run(self, *args)

    monkeypatch.setattr(compiled.AnySizeFunction, "__call__", counting)
    stylizer.compiled._styles.clear()
    options = dataclasses.replace(OPTIONS, stage_size=24, steps=8)  # two stages
    frames = list(stylize_frames(stylizer, clip, STYLE, options, VIDEO))
    assert len(frames) == len(clip)
    # Frame 0 runs both stages; later frames run the last stage only.
    assert calls == {"content_targets": len(clip) + 1, "style_targets": 2}, calls


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


def test_the_warm_start_moves_the_stylization_onto_the_new_frame(clip):
    """Where c = 1 the start is the warped result. Where c = 0 (the strip the pan brings
    in) it is frame t with the previous stylization (result minus photo) moved onto it:
    for a result that is the photo plus 20, frame t plus 20, not the bare photo (which
    a few steps leave pale)."""
    prev, cur = ((frame * 0.8).astype(np.uint8) for _, frame in clip[:2])
    result = prev + np.uint8(20)
    ws = warm_start(result, prev, cur, "medium")
    pair = flow.frame_pair(prev, cur, "medium")
    held = ws.weight > 0
    assert 0.02 < 1 - held.mean() < 0.5
    np.testing.assert_array_equal(
        ws.target, np.clip(np.round(pair.warp_previous(result.astype(np.float32))), 0, 255))
    np.testing.assert_array_equal(ws.start[held], ws.target[held])
    offset = ws.start[~held] - cur[~held].astype(np.float32)
    assert np.abs(offset - 20).max() <= 1, np.unique(offset)


def test_a_content_mask_holds_over_every_frame(stylizer, clip):
    """Black on the left half keeps the photo there, in every frame, warm-started or not;
    the style takes the right half."""
    mask = np.zeros((36, 48), np.uint8)
    mask[:, 24:] = 255
    options = dataclasses.replace(OPTIONS, init="content")
    frames = list(stylize_frames(stylizer, clip[:3], STYLE, options, VIDEO,
                                 content_mask=mask))
    for (_, raw), frame in zip(clip, frames):
        change = np.abs(frame.image.astype(float) - raw).mean(axis=(0, 2))
        assert change[:20].mean() < change[28:].mean() / 3, (frame.index, change)


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


def test_a_start_of_another_size_is_resized_a_target_is_refused(stylizer, clip):
    frame = clip[0][1]
    # No step: the result is the start, resized to the output and whatever init says.
    start = np.full((10, 10, 3), 77, np.uint8)
    result = stylizer.stylize(frame, STYLE, dataclasses.replace(OPTIONS, steps=0,
                                                                init="noise"), start=start)
    assert result.image.shape[:2] == (36, 48)
    np.testing.assert_array_equal(result.image, 77)
    with pytest.raises(ConfigError, match="temporal target"):
        stylizer.stylize(frame, STYLE, OPTIONS,
                         temporal=(np.zeros((36, 48, 3)), np.zeros((36, 40))))


# ----- the command: tfstyle --content=clip.mp4 --output=out.mp4

CLI_FLAGS = ["--weights=none", "--size=48", "--steps=6", "--frame_steps=3", "--seed=4",
             "--precision=float32", "--log_every=100"]


@pytest.fixture(scope="module")
def movie(tmp_path_factory, clip):
    """The pan as an H.264 mp4 with a tone, and the style as a PNG."""
    from PIL import Image

    from video_clips import write_clip
    root = tmp_path_factory.mktemp("movie")
    write_clip([frame for _, frame in clip], root / "pan.mp4", fps=10, audio="aac")
    Image.fromarray(STYLE).save(root / "style.png")
    return root


def video_cli(movie, output, *extra):
    from test_photos import cli
    return cli(f"--content={movie / 'pan.mp4'}", f"--style={movie / 'style.png'}",
               f"--output={output}", *CLI_FLAGS, *extra)


def test_the_command_writes_every_frame_and_the_video_with_its_audio(movie):
    import av

    code, text = video_cli(movie, movie / "out.mp4")
    assert code == 0, text
    assert frames_done(movie / "out.frames") == 5
    with av.open(str(movie / "out.mp4")) as container:
        kinds = sorted(s.type for s in container.streams)
        frames = sum(1 for _ in container.decode(video=0))
    assert kinds == ["audio", "video"] and frames == 5
    assert "frame 5/5" in text


def test_ctrl_c_keeps_the_finished_frames_and_resume_ends_as_a_whole_run(movie, monkeypatch):
    from PIL import Image

    from tfstyle.cli import common as cli_common
    whole, parts = movie / "whole", movie / "parts"
    assert video_cli(movie, whole)[0] == 0

    class CtrlCInFrame3(cli_common.StopOnSignal):
        def __call__(self):
            if frames_done(parts) >= 2:
                self.signal_number, self.signal_name = 2, "SIGINT"
            return bool(self.signal_number)

    with monkeypatch.context() as patch:
        patch.setattr(cli_common, "StopOnSignal", CtrlCInFrame3)
        code, text = video_cli(movie, parts)
    assert code == 130 and "--resume" in text, text
    assert frames_done(parts) == 2
    code, text = video_cli(movie, parts)  # without --resume: refused, nothing touched
    assert code == 1 and "already holds 2 frames" in text
    code, text = video_cli(movie, parts, "--resume")
    assert code == 0, text
    for index in range(5):
        np.testing.assert_array_equal(np.asarray(Image.open(frame_path(parts, index))),
                                      np.asarray(Image.open(frame_path(whole, index))))
    code, text = video_cli(movie, parts, "--resume", "--frame_steps=2")
    assert code == 1 and "another job" in text


@pytest.mark.parametrize("case, words", [
    ("not_a_video", "is not a video FFmpeg can read"),
    ("empty_span", "holds no frames"),
    ("mask", "but the clip's frames are 48x36: a mask is drawn over the content"),
    ("image_output", "a video is written as"),
    ("bad_option", "got -5"),
])
def test_bad_video_input_is_one_line_and_writes_nothing(movie, tmp_path, case, words):
    from test_photos import cli, error_lines
    content, extra, output = movie / "pan.mp4", [], tmp_path / "out.mp4"
    if case == "not_a_video":
        content = tmp_path / "notes.mp4"
        content.write_text("not a video")
    elif case == "empty_span":
        extra = ["--video_start=60"]
    elif case == "mask":
        extra = [f"--content_mask={movie / 'style.png'}"]
    elif case == "bad_option":
        extra = ["--frame_steps=-5"]
    else:
        output = tmp_path / "out.png"
    code, text = cli(f"--content={content}", f"--style={movie / 'style.png'}",
                     f"--output={output}", *CLI_FLAGS, *extra)
    lines = error_lines(text)
    assert code == 1 and len(lines) == 1 and words in lines[0], text
    assert not output.exists() and not list(tmp_path.glob("*.frames"))


def test_a_video_to_a_server_that_is_down_fails_in_one_line(movie, tmp_path):
    from test_photos import cli, error_lines
    code, text = cli(f"--content={movie / 'pan.mp4'}", f"--style={movie / 'style.png'}",
                     f"--output={tmp_path / 'out.mp4'}", "--server=localhost:1", "--size=32")
    lines = error_lines(text)
    assert code == 1 and len(lines) == 1 and "no TF Serving at localhost:1" in lines[0], text
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob("*/frame_*"))

def test_a_start_image_file_with_a_clip_on_a_server_is_refused(movie, tmp_path):
    from test_photos import cli, error_lines
    code, text = cli(f"--content={movie / 'pan.mp4'}", f"--style={movie / 'style.png'}",
                     f"--output={tmp_path / 'out.mp4'}", "--server=localhost:1", "--size=32",
                     f"--init={movie / 'style.png'}")
    lines = error_lines(text)
    assert code == 1 and len(lines) == 1, text
    assert "a clip's frames on --server start from their own" in lines[0], text
    assert not list(tmp_path.iterdir())
