"""``tfstyle --server=...``: the CLI's remote path, run as ``python -m tfstyle`` in a
subprocess against the loopback TF Serving started in this test process."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

# The loopback server speaks TF Serving's API with tensorflow-serving-api's own
# servicers; without the package (pip install -e .[test]) these tests cannot run.
pytest.importorskip("tensorflow_serving", reason="needs tensorflow-serving-api")
pytest.importorskip("grpc", reason="needs grpcio")

from conftest import REPO, synthetic_image
from serving_server import MAX_STEPS, shared_server
from tfstyle.serving.client import TFServingClient


@pytest.fixture(scope="module")
def server():
    return shared_server()


def tfstyle(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "tfstyle", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def save(path, pixels, **params):
    Image.fromarray(pixels).save(path, **params)
    return str(path)


@pytest.fixture()
def style(tmp_path):
    return save(tmp_path / "painting.png", synthetic_image(9, 24, 24))


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_one_image(server, tmp_path, style, protocol):
    content = save(tmp_path / "photo.jpg", synthetic_image(1, 20, 30), quality=95)
    target = server.grpc_target if protocol == "grpc" else server.rest_target
    output = tmp_path / "out.png"
    done = tfstyle(f"--server={target}", f"--protocol={protocol}", f"--content={content}",
                   f"--style={style}", f"--output={output}", "--steps=2", "--size=16",
                   "--seed=4", "--optimizer=adam")
    assert done.returncode == 0, done.stderr
    assert "ignored with --server" in done.stderr and "--optimizer" in done.stderr
    with TFServingClient(target, protocol=protocol) as client:
        expected = client.stylize(content, style, steps=2, size=16, seed=4)
    np.testing.assert_array_equal(np.asarray(Image.open(output)), expected)


def test_a_start_image_file_is_sent_as_init_image(server, tmp_path, style):
    content = save(tmp_path / "photo.png", synthetic_image(1, 20, 30))
    start = save(tmp_path / "start.png", synthetic_image(5, 20, 30))
    output = tmp_path / "out.png"
    done = tfstyle(f"--server={server.grpc_target}", f"--content={content}",
                   f"--style={style}", f"--output={output}", "--steps=2", "--size=16",
                   "--seed=4", f"--init={start}")
    assert done.returncode == 0, done.stderr
    with TFServingClient(server.grpc_target) as client:
        expected = client.stylize(content, style, steps=2, size=16, seed=4, init_image=start)
        without = client.stylize(content, style, steps=2, size=16, seed=4)
    got = np.asarray(Image.open(output))
    np.testing.assert_array_equal(got, expected)
    assert np.abs(got.astype(int) - without).mean() > 1  # the start image was used


def test_folder_with_a_corrupt_file_writes_the_others_and_fails(server, tmp_path, style):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        save(photos / f"p{i}.png", synthetic_image(10 + i, 20, 26))
    good = (photos / "p0.png").read_bytes()
    (photos / "bad.png").write_bytes(good[:len(good) // 2])  # a truncated download
    (photos / "notes.txt").write_text("not an image, not sent")
    out = tmp_path / "results"  # created by the run
    done = tfstyle(f"--server={server.grpc_target}", f"--content={photos}/*.png",
                   f"--style={style}", f"--output={out}", "--steps=1", "--size=16",
                   "--concurrency=3")
    assert done.returncode == 1, done.stderr
    assert sorted(os.listdir(out)) == ["p0.png", "p1.png", "p2.png", "p3.png"]
    for name in os.listdir(out):
        assert max(Image.open(out / name).size) == 16
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tfstyle: error: 4 written, 1 failed: bad.png (INVALID_ARGUMENT: ")
    assert "Invalid PNG data" in last


def test_folder_by_directory_with_jpeg_output_over_rest(server, tmp_path, style):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        save(photos / f"q{i}.jpg", synthetic_image(20 + i, 18, 18), quality=95)
    out = tmp_path / "out"
    out.mkdir()
    done = tfstyle(f"--server={server.rest_target}", "--protocol=rest", f"--content={photos}",
                   f"--style={style}", f"--output={out}/", "--output_ext=jpg", "--steps=1",
                   "--size=16", "--concurrency=2")
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["q0.jpg", "q1.jpg"]
    assert "2 written, 0 failed" in done.stderr


def error_lines(done):
    return [line for line in done.stderr.splitlines() if line.startswith("tfstyle: error")]


def test_a_refused_request_is_one_error_line_and_exit_1(server, tmp_path, style):
    # The server's INVALID_ARGUMENT comes back as a ServingError, which the CLI reports
    # as it does every TfstyleError: the server's words on one line, no traceback.
    content = save(tmp_path / "photo.png", synthetic_image(1, 20, 30))
    output = tmp_path / "out.png"
    done = tfstyle(f"--server={server.grpc_target}", f"--content={content}",
                   f"--style={style}", f"--output={output}", f"--steps={MAX_STEPS + 1}",
                   "--size=16")
    assert done.returncode == 1
    line, = error_lines(done)
    assert (f"steps={MAX_STEPS + 1} is outside the limit of this model: send 0 <= steps <= "
            f"max_steps={MAX_STEPS}, or re-export with a larger --max_steps") in line, line
    assert "Traceback" not in done.stderr
    assert not output.exists()


@pytest.mark.parametrize("flags, delay, words, hint", [
    (["--timeout=0.3"], 2.0, "(grpc) did not answer within the timeout of 0.3 s",
     "raise --timeout or lower --steps / --size (or --concurrency, if the server is busy)"),
    (["--model_name=nope"], 0.0, "(grpc) has no model 'nope': Servable not found",
     "check --model_name / --model_version"),
], ids=["deadline", "no-such-model"])
def test_a_failed_request_names_the_flags_to_change(server, tmp_path, style, flags, delay,
                                                    words, hint):
    # The client's message says what went wrong (test_client.py); the CLI adds which of
    # its flags to change.
    content = save(tmp_path / "photo.png", synthetic_image(1, 20, 30))
    server.delay = delay
    try:
        done = tfstyle(f"--server={server.grpc_target}", f"--content={content}",
                       f"--style={style}", f"--output={tmp_path / 'out.png'}", "--steps=1",
                       "--size=16", *flags)
    finally:
        server.delay = 0.0
    assert done.returncode == 1
    line, = error_lines(done)
    assert words in line and line.endswith("; " + hint), line


def test_unreachable_server_is_one_clear_error(tmp_path, style):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        save(photos / f"p{i}.png", synthetic_image(i, 16, 16))
    done = tfstyle("--server=127.0.0.1:1", f"--content={photos}", f"--style={style}",
                   f"--output={tmp_path / 'out'}", "--steps=1", "--size=16")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("tfstyle: error")]
    assert len(errors) == 1 and "no TF Serving at 127.0.0.1:1" in errors[0], done.stderr
    assert "docker compose" in errors[0]


@pytest.mark.parametrize("make_args, words", [
    (lambda d, s: [f"--content={d}/*.gif", f"--output={d}/out"], "matches no files"),
    (lambda d, s: [f"--content={s}", f"--output={s}"], "which is the input"),
    (lambda d, s: [f"--content={d}/*.jpg", f"--output={d}/out", "--init=" + s],
     "a start image is one photo's"),
    (lambda d, s: [f"--content={d}/*.jpg", f"--output={d}/one.png"], "looks like one image"),
    (lambda d, s: [f"--content={d}/*.jpg", f"--output={d}/out", "--concurrency=0"],
     "--concurrency must be"),
], ids=["empty-glob", "overwrites-input", "init-file", "file-output", "concurrency"])
def test_bad_flags_fail_before_anything_is_sent(tmp_path, style, make_args, words):
    save(tmp_path / "a.jpg", synthetic_image(1, 16, 16))
    done = tfstyle("--server=127.0.0.1:1", f"--style={style}", *make_args(tmp_path, style))
    assert done.returncode == 1
    assert words in done.stderr, done.stderr
    assert "no TF Serving" not in done.stderr  # refused before any request


def test_two_inputs_with_one_output_name_are_refused(tmp_path, style):
    save(tmp_path / "a.jpg", synthetic_image(1, 16, 16))
    save(tmp_path / "a.png", synthetic_image(2, 16, 16))
    done = tfstyle("--server=127.0.0.1:1", f"--content={tmp_path}/a.*", f"--style={style}",
                   f"--output={tmp_path}/out")
    assert done.returncode == 1
    assert "would both be written to" in done.stderr
    assert not os.path.exists(tmp_path / "out")  # nothing created for a refused run
