"""tfstyle-web's server: uploads, jobs, live events, results, the queue, and its safety.

Each server here is the real app on uvicorn on 127.0.0.1 (tests/web_server.py), with a
tiny random-weight VGG16 (two feature levels) so that a job takes a fraction of a
second after its first trace. The browser drives the same server in
test_web_browser.py; ``--server`` mode runs against the loopback TF Serving of
tests/serving_server.py.
"""

import http.client
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="needs the web extra (pip install -e .[test])")

from conftest import REPO, synthetic_image
from tfstyle.web import app as web
from tfstyle.web import engines, settings
from tfstyle.web.command import COMMAND_KEY, SETTINGS_KEY
from tfstyle.web.uploads import Limits
from web_server import events, multipart, serve

FINAL = ("done", "stopped", "failed", "cancelled")


def png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


PHOTO = png(synthetic_image(1, 48, 64))
PAINTING = png(synthetic_image(2, 40, 40))
# A small preview schedule: fast.cfg's shape (coarse to fine from its stage size) at
# test sizes.
RULES = settings.Rules(preview_size=48, preview_steps=4, preview_stage_size=24)


def tiny_stylizer():
    import tensorflow as tf

    from tfstyle import Stylizer
    tf.keras.utils.set_random_seed(0)
    return Stylizer("vgg16", weights=None, content_layers=["conv2_1"],
                    style_layers=["conv1_1", "conv2_1"], precision="float32")


@pytest.fixture(scope="module")
def engine():
    return engines.LocalEngine({"backbone": "vgg16"}, stylizer=tiny_stylizer())


def config(tmp, engine, **fields):
    fields.setdefault("rules", RULES)
    fields.setdefault("model_flags", ["--backbone=vgg16", "--weights=none"])
    return web.Config(results=str(tmp), engine=engine, **fields)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    with serve(config(tmp_path_factory.mktemp("web"), engine, ping=0.5)) as served:
        yield served


def uploaded(server, *files):
    status, body = server.upload(list(files))
    assert status == 200, body
    return [u["id"] for u in body["uploads"]]


def start(server, settings_=None, contents=None, styles=None, strip=False):
    photo, painting = uploaded(server, ("photo.png", PHOTO), ("painting.png", PAINTING))
    status, job = server.json("api/jobs", {"contents": contents or [photo],
                                           "styles": styles or [painting],
                                           "settings": settings_ or {}, "strip": strip})
    assert status == 201, job
    return job


def wait_final(server, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, job = server.json(f"api/jobs/{job_id}")
        if job["state"] in FINAL:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


def result_png(server, job):
    status, headers, body = server.request(job["result"]["url"])
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert job["result"]["filename"] in headers["Content-Disposition"]
    image = Image.open(io.BytesIO(body))
    return image, json.loads(image.text[SETTINGS_KEY])


# ----------------------------------------------------------------------------- the page


def test_the_page_its_files_and_its_config_are_served(server):
    status, _, page = server.request("")
    assert status == 200 and b'src="static/app.js"' in page
    for name in ("app.js", "style.css"):
        assert server.request(f"static/{name}")[0] == 200
    status, config_ = server.json("api/config")
    assert status == 200
    assert config_["engine"] == "local" and config_["strengths"] == [0.25, 0.5, 0.9]
    assert config_["defaults"]["size"] == 512 and config_["max_size"] == 4096


def test_the_strips_default_schedule_is_fast_cfgs():
    flags = dict(line.strip().lstrip("-").split("=", 1)
                 for line in (REPO / "configs" / "fast.cfg").read_text().splitlines()
                 if line.startswith("--"))
    rules = settings.Rules()
    assert (rules.preview_size, rules.preview_steps, rules.preview_stage_size) == (
        int(flags["size"]), int(flags["steps"]), int(flags["stage_size"]))


# ----------------------------------------------------------------------------- one image


def test_a_job_streams_its_progress_and_ends_in_a_png_carrying_its_settings(server):
    job = start(server, {"size": 64, "steps": 30, "style_strength": 0.7,
                         "preserve_colors": "luminance"})
    snapshots = events(server, job["id"])
    running = [s for s in snapshots if s["state"] == "running" and s["progress"]["step"]]
    steps = [s["progress"]["step"] for s in running]
    # A snapshot is the state when the stream wakes: the last steps may come folded
    # into the final one, which still carries the step count reached.
    assert len(set(steps)) >= 5 and steps == sorted(steps) and steps[-1] <= 30
    versions = [s["images"].get("current") for s in running if s["images"]]
    assert len(set(versions)) >= 3, "the current image was refreshed only once"
    final = snapshots[-1]
    assert final["state"] == "done" and final["message"].startswith("done: 64×48 px, 30 steps")
    assert final["progress"]["step"] == 30

    image, saved = result_png(server, final)
    assert image.size == (64, 48)
    assert saved["options"]["style_strength"] == 0.7
    assert saved["options"]["preserve_colors"] == "luminance"
    assert saved["photo"] == "photo.png" and saved["paintings"] == ["painting.png"]
    assert saved["finished"] == "done" and saved["steps_done"] == 30
    command = image.text[COMMAND_KEY]
    assert command == saved["command"] == final["command"]
    assert "--style_strength=0.7" in command and "--preserve_colors=luminance" in command
    assert f"--seed={saved['options']['seed']}" in command
    # The image the page showed last is the result's.
    status, _, shown = server.request(f"api/jobs/{final['id']}/images/current")
    assert status == 200
    assert shown == engines.preview_jpeg(np.asarray(image))


def test_the_command_parses_back_to_the_jobs_options(server):
    job = start(server, {"size": 48, "steps": 3, "style_strength": 0.3, "init": "content",
                         "tv_weight": 50, "style_scale": 1.25})
    final = wait_final(server, job["id"])
    words = shlex.split(final["command"])
    assert words[:4] == ["tfstyle", "--content=photo.png", "--style=painting.png",
                         f"--output={final['result']['filename']}"]
    program = ("import dataclasses, json, sys\n"
               "from absl import flags\n"
               "from tfstyle.cli import main as cli\n"
               "flags.FLAGS(['tfstyle'] + sys.argv[1:])\n"
               "options = dataclasses.asdict(cli.options_from_flags())\n"
               "print(json.dumps({k: v for k, v in options.items() if not k.startswith('_')}))\n"
               "print(flags.FLAGS.backbone, flags.FLAGS.weights)\n")
    done = subprocess.run([sys.executable, "-c", program, *words[1:]], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    parsed, model = done.stdout.strip().splitlines()[-2:]
    expected = final["settings"]["options"]
    assert json.loads(parsed) == {k: (list(v) if isinstance(v, tuple) else v)
                                  for k, v in expected.items()}
    assert model == "vgg16 none"


def test_stop_keeps_the_image_so_far(server):
    job = start(server, {"size": 64, "steps": 5000})

    def stop_once_running(snapshot):
        if snapshot["progress"]["step"] and not stop_once_running.sent:
            stop_once_running.sent = True
            assert server.json(f"api/jobs/{job['id']}/stop", {})[0] == 200
    stop_once_running.sent = False
    final = events(server, job["id"], on_event=stop_once_running)[-1]
    assert final["state"] == "stopped" and "image so far is kept" in final["message"]
    image, saved = result_png(server, final)
    assert image.size == (64, 48)
    assert saved["finished"] == "stopped" and 0 < saved["steps_done"] < 5000
    assert final["result"]["filename"].endswith(".png")


def test_the_strength_strip_previews_three_strengths(server):
    job = start(server, {"size": 512, "style_strength": 0.5}, strip=True)
    final = events(server, job["id"])[-1]
    assert final["state"] == "done" and final["result"] is None
    assert [s["strength"] for s in final["strip"]] == [0.25, 0.5, 0.9]
    assert all(s["done"] for s in final["strip"])
    previews = []
    for item in final["strip"]:
        status, _, data = server.request(f"api/jobs/{job['id']}/images/{item['slot']}")
        assert status == 200
        previews.append(np.asarray(Image.open(io.BytesIO(data)), float))
    assert previews[0].shape[:2] == (36, 48)  # the preview size, not the job's 512
    assert np.abs(previews[0] - previews[2]).mean() > 1, "the strengths made no difference"
    assert final["settings"]["options"]["steps"] == 4


def test_several_paintings_blend_by_the_weights_given(server):
    photo, first, second = uploaded(server, ("photo.png", PHOTO), ("a.png", PAINTING),
                                    ("b.png", png(synthetic_image(6, 32, 32))))
    status, job = server.json("api/jobs", {"contents": [photo], "styles": [first, second],
                                           "settings": {"size": 48, "steps": 2,
                                                        "style_blend_weights": [3, 1]}})
    assert status == 201, job
    final = wait_final(server, job["id"])
    assert final["state"] == "done"
    assert final["settings"]["options"]["style_blend_weights"] == [3.0, 1.0]
    assert "--style=a.png,b.png" in final["command"]
    assert "--style_blend_weights=3,1" in final["command"]
    status, job = server.json("api/jobs", {"contents": [photo], "styles": [first, second],
                                           "settings": {"style_blend_weights": [1]}})
    assert status == 400 and "1 style blend weights for 2 style images" in job["error"]


def test_jobs_wait_in_line_and_know_their_place(server):
    first = start(server, {"size": 64, "steps": 5000})
    second = start(server, {"size": 48, "steps": 2})
    third = start(server, {"size": 48, "steps": 2})
    try:
        deadline = time.monotonic() + 30
        while server.json(f"api/jobs/{first['id']}")[1]["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert server.json(f"api/jobs/{second['id']}")[1]["position"] == 1
        assert server.json(f"api/jobs/{third['id']}")[1]["position"] == 2
        server.json(f"api/jobs/{second['id']}/stop", {})
    finally:
        server.json(f"api/jobs/{first['id']}/stop", {})
    assert wait_final(server, first["id"])["state"] == "stopped"
    assert wait_final(server, second["id"])["state"] == "cancelled"
    assert wait_final(server, third["id"])["state"] == "done"


def test_several_photos_run_one_by_one_into_a_zip(server):
    photos = uploaded(server, ("a.png", PHOTO), ("b.png", png(synthetic_image(3, 40, 40))))
    painting = uploaded(server, ("p.png", PAINTING))
    _, job = server.json("api/jobs", {"contents": photos, "styles": painting,
                                      "settings": {"size": 48, "steps": 3}})
    snapshots = events(server, job["id"])
    assert {s["progress"]["item"] for s in snapshots if s["state"] == "running"} >= {1, 2}
    final = snapshots[-1]
    assert final["state"] == "done" and final["kind"] == "photos"
    status, _, data = server.request(final["result"]["url"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["a.png", "b.png"]
        b = Image.open(io.BytesIO(archive.read("b.png")))
        assert b.size == (48, 48) and json.loads(b.text[SETTINGS_KEY])["photo"] == "b.png"


def test_a_clip_runs_frame_by_frame_into_an_mp4(server, tmp_path):
    pytest.importorskip("av", reason="needs the video extra")
    pytest.importorskip("cv2", reason="needs the video extra")
    from video_clips import pan_clip, write_clip

    frames = pan_clip(synthetic_image(4, 64, 96), 5, 4, (48, 32))
    clip = write_clip(frames, tmp_path / "clip.mp4", fps=10)
    ids = uploaded(server, ("clip.mp4", clip.read_bytes()))
    painting = uploaded(server, ("p.png", PAINTING))
    _, job = server.json("api/jobs", {"contents": ids, "styles": painting, "settings": {
        "size": 48, "steps": 3, "frames": 3, "frame_steps": 2}})
    assert job["kind"] == "video"
    snapshots = events(server, job["id"])
    items = [s["progress"]["item"] for s in snapshots
             if s["state"] == "running" and s["progress"]["item"]]
    assert sorted(set(items)) == [1, 2, 3] and items == sorted(items)
    final = snapshots[-1]
    assert final["state"] == "done" and final["progress"]["items"] == 3
    assert "--video_frames=3" in final["command"] and "--frame_steps=2" in final["command"]
    status, headers, data = server.request(final["result"]["url"])
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(data)
    from tfstyle.video import reader
    out = reader.open_clip(tmp_path / "out.mp4")
    assert out.count == 3 and out.size == (48, 32)


def test_a_print_size_run_tiles_within_the_memory_limit_with_the_same_progress(
        engine, tmp_path):
    rules = settings.Rules(memory_limit="1G")
    with serve(config(tmp_path, engine, rules=rules)) as served:
        job = start(served, {"size": 256, "steps": 4})
        snapshots = events(served, job["id"])
    assert snapshots[-1]["state"] == "done"
    tiles = {s["progress"]["stage"]: s["progress"]["tile"] for s in snapshots
             if s["state"] == "running" and s["progress"]["step"]}
    assert tiles[1] == 0 and tiles[2] > 0, tiles  # the 256 px stage runs in tiles
    assert "--memory_limit=1G" in snapshots[-1]["command"]


def test_the_gallery_lists_results_newest_first_and_outlives_a_restart(engine, tmp_path):
    with serve(config(tmp_path, engine)) as served:
        first = start(served, {"size": 32, "steps": 1})
        wait_final(served, first["id"])
        second = start(served, {"size": 32, "steps": 1})
        wait_final(served, second["id"])
        ids = [r["id"] for r in served.json("api/gallery")[1]["results"]]
        assert ids[:2] == [second["id"], first["id"]]
    with serve(config(tmp_path, engine)) as served:
        results = served.json("api/gallery")[1]["results"]
        assert [r["id"] for r in results][:2] == [second["id"], first["id"]]
        assert served.request(results[0]["thumb"])[0] == 200
        status, _, data = served.request(results[0]["result"]["url"])
        assert status == 200 and data.startswith(b"\x89PNG")


# ----------------------------------------------------------------------------- requests refused


@pytest.mark.parametrize("body, words", [
    ({"settings": {"size": 99999}}, "size must be between 16 and 4096"),
    ({"settings": {"colour": 1}}, "unknown setting 'colour'"),
    ({"settings": {"init": "/etc/passwd"}}, "init must be one of"),
    ({"settings": {"steps": "many"}}, "'steps' must be a whole number"),
    ({"settings": {"style_strength": 3}}, "style_strength must be between 0"),
    ({"contents": ["0123456789abcdef"]}, "has expired"),
    ({"contents": ["../../etc/passwd"]}, "has expired"),
    ({"styles": []}, "choose painting first"),
])
def test_bad_job_requests_are_refused_with_what_to_change(server, body, words):
    photo, painting = uploaded(server, ("photo.png", PHOTO), ("p.png", PAINTING))
    request = {"contents": [photo], "styles": [painting], "settings": {}}
    request.update(body)
    status, answer = server.json("api/jobs", request)
    assert status in (400, 404) and words in answer["error"], answer


def test_a_file_that_is_not_an_image_is_refused_by_name(server):
    status, body = server.upload([("notes.txt", b"these are notes, not pixels")])
    assert status == 400
    assert "'notes.txt'" in body["error"] and "not an image" in body["error"]


def test_a_decompression_bomb_is_refused_before_decoding(server):
    # A 1x1 PNG whose header declares 30000 x 30000 px (900 Mpx): 69 bytes.
    import struct
    import zlib
    bomb = bytearray(png(np.zeros((1, 1, 3), np.uint8)))
    bomb[16:24] = struct.pack(">II", 30000, 30000)
    bomb[29:33] = struct.pack(">I", zlib.crc32(bytes(bomb[12:29])) & 0xFFFFFFFF)
    status, body = server.upload([("huge.png", bytes(bomb))])
    assert status == 400 and "decompression bomb" in body["error"]
    assert "'huge.png'" in body["error"] and "900000000 pixels" in body["error"]


def test_uploads_past_the_limits_are_refused(engine, tmp_path):
    limits = Limits(max_request_bytes=100_000, max_files=3)
    with serve(config(tmp_path / "results", engine, limits=limits)) as served:
        big = png(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8))
        status, body = served.upload([("big.png", big)])
        assert status == 413 and "larger than this server takes" in body["error"]
        # Without a Content-Length (chunked), refused as the body streams in.
        data, content_type = multipart([("big.png", big)])
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        connection.request("POST", "/api/uploads", body=iter([data[i:i + 8192] for i in
                                                              range(0, len(data), 8192)]),
                           headers={"Content-Type": content_type}, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413 and b"larger than" in response.read()
        connection.close()
        status, body = served.upload([(f"{k}.png", PHOTO) for k in range(4)])
        assert status == 413 and "too many files" in body["error"]
        status, body = served.upload([(f"{k}.png", PHOTO) for k in range(3)])
        assert status == 200 and len(body["uploads"]) == 3


def test_names_from_requests_never_become_paths(server, tmp_path):
    status, body = server.upload([("../../../../tmp/evil.png", PHOTO)])
    assert status == 200 and body["uploads"][0]["name"] == "evil.png"
    results = server.config.results
    assert not os.path.exists("/tmp/evil.png") or os.path.getmtime("/tmp/evil.png") < \
        time.time() - 60
    stored = os.listdir(os.path.join(results, "uploads"))
    assert f"{body['uploads'][0]['id']}.image" in stored
    for path in ("api/jobs/..%2F..%2Fetc", "api/jobs/0123456789abcdef/result",
                 "api/uploads/..%2Fx/thumb", "api/jobs/0123456789abcdef/images/..%2Fjob.json"):
        assert server.request(path)[0] == 404, path


def test_everything_is_written_inside_the_results_folder(engine, tmp_path):
    results = tmp_path / "results"
    with serve(config(results, engine)) as served:
        final = wait_final(served, start(served, {"size": 32, "steps": 1})["id"])
        assert final["state"] == "done"
    assert sorted(os.listdir(tmp_path)) == ["results"]
    assert sorted(os.listdir(results)) == ["jobs", "uploads"]


# ----------------------------------------------------------------------------- who may ask


def test_an_exposed_server_refuses_requests_without_its_token(engine, tmp_path):
    with serve(config(tmp_path, engine, token="s3cret-token", loopback=False)) as served:
        status, _, page = served.request("")
        assert status == 403 and b"needs its token" in page
        assert served.json("api/config")[0] == 403
        assert served.json("api/config", token="wrong")[0] == 403
        assert served.upload([("p.png", PHOTO)])[0] == 403
        assert served.request("static/app.js")[0] == 200  # the page's code, not a user's
        status, headers, _ = served.request("?token=s3cret-token")
        assert status == 200
        cookie = headers["Set-Cookie"]
        assert "s3cret-token" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        jar = cookie.split(";", 1)[0]
        assert served.request("api/config", headers={"Cookie": jar})[0] == 200
        assert served.json("api/config", token="s3cret-token")[0] == 200


def test_a_loopback_server_answers_loopback_host_names_only(server):
    assert server.request("api/config", headers={"Host": "localhost"})[0] == 200
    status, _, body = server.request("api/config", headers={"Host": "evil.example:8000"})
    assert status == 403 and b"localhost only" in body


def test_another_sites_page_cannot_start_jobs(server):
    data, content_type = multipart([("p.png", PHOTO)])
    status, _, body = server.request("api/uploads", data, {
        "Content-Type": content_type, "Origin": "http://evil.example"})
    assert status == 403 and b"another site" in body
    same = {"Content-Type": content_type, "Origin": server.url.rstrip("/")}
    assert server.request("api/uploads", data, same)[0] == 200


def test_a_dropped_clients_job_is_stopped(engine, tmp_path):
    with serve(config(tmp_path, engine, grace=1.0, ping=0.2)) as served:
        job = start(served, {"size": 64, "steps": 100000})
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        connection.request("GET", f"/api/jobs/{job['id']}/events")
        response = connection.getresponse()
        deadline = time.monotonic() + 30
        while served.json(f"api/jobs/{job['id']}")[1]["progress"]["step"] in (None, 0):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        response.fp.readline()
        connection.sock.shutdown(2)
        connection.close()  # the tab is closed
        final = wait_final(served, job["id"], timeout=30)
        assert final["state"] == "stopped" and "nobody watched it" in final["message"]
        assert final["progress"]["step"] < 100000
        # A job nobody ever watched is cancelled in the line, or stopped if it started.
        orphan = start(served, {"size": 48, "steps": 100000})
        assert wait_final(served, orphan["id"], timeout=30)["state"] in ("stopped", "cancelled")


# ----------------------------------------------------------------------------- TF Serving


def test_server_mode_runs_jobs_on_tf_serving(tmp_path):
    pytest.importorskip("tensorflow_serving", reason="needs tensorflow-serving-api")
    from serving_server import shared_server

    from tfstyle import TFServingClient
    from tfstyle.serving import served_options
    loopback = shared_server()
    client = TFServingClient(loopback.grpc_target)
    rules = settings.Rules(preview_size=24, preview_steps=3, preview_stage_size=128)
    with serve(config(tmp_path, engines.ServingEngine(client), rules=rules,
                      workers=2)) as served:
        status, config_ = served.json("api/config")
        assert config_["engine"] == "serving" and config_["max_styles"] == 1
        before = loopback.predict_count
        job = start(served, {"size": 24, "steps": 3, "style_strength": 0.8})
        final = events(served, job["id"])[-1]
        assert final["state"] == "done" and loopback.predict_count == before + 1
        image, saved = result_png(served, final)
        options = served_options.request_values(
            __import__("tfstyle").RunOptions(**{k: (tuple(v) if isinstance(v, list) else v)
                                                for k, v in saved["options"].items()}))
        expected = client.stylize(PHOTO, PAINTING, **options)
        np.testing.assert_array_equal(np.asarray(image), expected)
        strip = events(served, start(served, {"size": 24}, strip=True)["id"])[-1]
        assert strip["state"] == "done" and all(s["done"] for s in strip["strip"])
        two = uploaded(served, ("a.png", PAINTING), ("b.png", PAINTING))
        photo = uploaded(served, ("photo.png", PHOTO))
        status, body = served.json("api/jobs", {"contents": photo, "styles": two})
        assert status == 400 and "a TF Serving request carries one" in body["error"]
        # A request the server refuses (over its export's max_steps): the job's message.
        failed = events(served, start(served, {"size": 24, "steps": 50})["id"])[-1]
        assert failed["state"] == "failed" and "steps" in failed["message"]


# ----------------------------------------------------------------------------- the command


def test_tfstyle_web_prints_its_address_with_a_token_when_exposed_and_stops_on_ctrl_c(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "tfstyle.web.main", "--host=0.0.0.0", "--port=0",
         f"--results={tmp_path / 'results'}", "--weights=none", "--max_size=512"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = process.stdout.readline()
        assert line.startswith("tfstyle-web: serving on http://127.0.0.1:"), line
        url = line.split()[3]
        assert "?token=" in url
        base, token = url.split("?token=")
        import urllib.error
        import urllib.request
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "api/config", timeout=30)
        assert refused.value.code == 403
        with urllib.request.urlopen(f"{base}api/config?token={token}", timeout=30) as answer:
            assert json.load(answer)["max_size"] == 512
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "tfstyle-web: stopped" in out and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["results"]
