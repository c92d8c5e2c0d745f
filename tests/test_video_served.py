"""A clip stylized against a TF Serving (the loopback server of ``serving_server``, on
the tiny export): the client computes the flow and the warps, the server runs each
frame with the signature's optional inputs (``init_image``, ``temporal_target``,
``temporal_mask``). The frames must be the library's, bit for bit."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow_serving", reason="needs tensorflow-serving-api")
pytest.importorskip("grpc", reason="needs grpcio")
pytest.importorskip("cv2", reason="needs opencv-python-headless (the video extra)")

from conftest import REPO, synthetic_image
from serving_server import MAX_SIDE, MAX_STEPS, shared_server, tiny_stylizer
from video_clips import pan_clip
from tfstyle import RunOptions
from tfstyle.video import frames as video
from tfstyle.serving.client import ServingError, TFServingClient
from tfstyle.video.frames import VideoOptions

STYLE = synthetic_image(7, 24, 24)
OPTIONS = RunOptions(size=MAX_SIDE, steps=MAX_STEPS, seed=11)
VIDEO = VideoOptions(frame_steps=2, flow_preset="medium")


@pytest.fixture(scope="module")
def server():
    return shared_server()


@pytest.fixture(scope="module")
def clip():
    """4 frames of 40 × 30 panning 2 px per frame: the output is 32 × 24."""
    rng = np.random.default_rng(1)
    image = synthetic_image(3, 30, 60)
    image = np.clip(image.astype(int) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
    return list(enumerate(pan_clip(image, 4, 2, (40, 30))))


@pytest.fixture(scope="module")
def library_frames(clip):
    return [f.image for f in video.stylize_frames(tiny_stylizer(), clip, STYLE, OPTIONS,
                                                  VIDEO)]


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_served_frames_are_the_library_frames(server, clip, library_frames, protocol):
    target = server.grpc_target if protocol == "grpc" else server.rest_target
    with TFServingClient(target, protocol=protocol) as client:
        served = [f.image for f in video.served_frames(client, clip, STYLE, OPTIONS, VIDEO)]
    assert len(served) == len(library_frames) == 4
    for index, (got, expected) in enumerate(zip(served, library_frames)):
        assert np.array_equal(got, expected), (index, np.abs(got.astype(int) - expected).max())
    # The later frames moved from their warm start: the server ran them, held to it.
    assert not np.array_equal(served[1], served[2])


def test_the_temporal_inputs_change_the_served_frame(server, clip, library_frames):
    """A frame with a temporal target held by a full mask and a large weight lands
    nearer the target than the same request with an empty mask."""
    frame = video.output_frame(clip[1][1], MAX_SIDE)
    target = np.full_like(frame, 200)
    # Large against the style term: thirty times β.
    options = dict(steps=MAX_STEPS, size=MAX_SIDE, seed=1,
                   temporal_weight=30 * RunOptions().style_weight)
    with TFServingClient(server.grpc_target) as client:
        images = {}
        for mask in (np.zeros(frame.shape[:2]), np.ones(frame.shape[:2])):
            images[float(mask.mean())] = client.stylize(
                frame, STYLE, temporal_target=target, temporal_mask=mask, **options)
        free = client.stylize(frame, STYLE, **options)
    near = {k: np.abs(image.astype(float) - 200).mean() for k, image in images.items()}
    assert near[1.0] < near[0.0] / 2, near
    # A zero mask weighs nothing: the request runs as one without the temporal inputs.
    np.testing.assert_array_equal(images[0.0], free)


@pytest.mark.parametrize("images, words", [
    (dict(temporal_target=np.zeros((24, 32, 3), np.uint8)), "go together"),
    (dict(temporal_mask=np.ones((24, 32))), "go together"),
    (dict(temporal_target=np.zeros((20, 32, 3), np.uint8), temporal_mask=np.ones((20, 32))),
     "temporal_target is 32x20 but the output is 32x24"),
    (dict(temporal_target=np.zeros((24, 32, 3), np.uint8), temporal_mask=np.ones((24, 30))),
     "temporal_mask is 30x24 but the output is 32x24"),
])
@pytest.mark.parametrize("signature", ["serving_default", "stylize_tensor"])
def test_bad_temporal_inputs_are_invalid_argument(server, clip, images, words, signature):
    frame = video.output_frame(clip[0][1], MAX_SIDE)
    with TFServingClient(server.grpc_target, signature=signature) as client:
        with pytest.raises(ServingError, match=words) as error:
            client.stylize(frame, STYLE, steps=1, size=MAX_SIDE, **images)
    assert error.value.code == "INVALID_ARGUMENT"


def test_an_init_image_is_where_a_served_run_starts(server, clip):
    """With no step the answer is the start: the init image, resized to the output."""
    frame = video.output_frame(clip[0][1], MAX_SIDE)
    with TFServingClient(server.grpc_target) as client:
        image = client.stylize(frame, STYLE, steps=0, size=MAX_SIDE,
                               init_image=np.full((9, 12, 3), 90, np.uint8))
    np.testing.assert_array_equal(image, 90)


def test_the_cli_stylizes_a_clip_on_the_server(server, clip, library_frames, tmp_path):
    """``tfstyle --server=... --content=frames/ --video``: the frames folder it writes
    holds the library's frames."""
    source = tmp_path / "clip"
    source.mkdir()
    for index, frame in clip:
        Image.fromarray(frame).save(source / f"f{index:02d}.png")
    Image.fromarray(STYLE).save(tmp_path / "style.png")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "tfstyle", f"--server={server.grpc_target}", "--video",
         f"--content={source}", f"--style={tmp_path / 'style.png'}", f"--output={out}",
         f"--size={MAX_SIDE}", f"--steps={MAX_STEPS}", "--frame_steps=2", "--seed=11",
         "--flow_preset=medium"], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr
    for index, expected in enumerate(library_frames):
        got = np.asarray(Image.open(video.frame_path(out, index)))
        assert np.array_equal(got, expected), index
