"""Many photos in one local run: ``Stylizer.stylize_many`` and ``tfstyle --content=folder``.

The CLI runs go through its ``main`` in this process (``main_in_process``), so that
a test can count the models built and fake a Ctrl-C; each builds its own random VGG19.
"""

import contextlib
import dataclasses
import io
import logging
import os
import signal

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import synthetic_image
from test_cli import TINY, main_in_process
from tfstyle import ImageError, RunOptions
from tfstyle.errors import Interrupted
from tfstyle.cli.photo_paths import content_files, plan_outputs

STYLE = synthetic_image(2)
# init=noise: the seed decides the start, so "the same seed" is a real condition.
FLAGS = [*TINY, "--init=noise", "--seed=5", "--precision=float32"]


def cli(*args):
    """(exit status, stderr and log lines) of ``tfstyle *args`` run in this process."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stderr(stream):
            main_in_process(*args, "--verbosity=0")  # absl's INFO lines, as the command's
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return code, stream.getvalue()


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("tfstyle: error:")]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of three photos of three sizes, a truncated one, and a note."""
    root = tmp_path_factory.mktemp("photos")
    folder = root / "photos"
    folder.mkdir()
    Image.fromarray(synthetic_image(10, 48, 64)).save(folder / "p0.png")
    Image.fromarray(synthetic_image(11, 64, 48)).save(folder / "p1.jpg", quality=95)
    Image.fromarray(synthetic_image(12, 40, 40)).save(folder / "p2.png")
    whole = (folder / "p0.png").read_bytes()
    (folder / "p3_bad.png").write_bytes(whole[:len(whole) // 2])  # a cut download
    (folder / "notes.txt").write_text("not a photo")
    Image.fromarray(STYLE).save(root / "style.png")
    return root


@pytest.fixture(scope="module")
def glob_run(photos):
    """The CLI over a glob of the folder, with the models it built counted."""
    from tfstyle.local.stylizer import Stylizer

    built = []
    init = Stylizer.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    Stylizer.__init__ = counting
    try:
        code, text = cli(f"--content={photos / 'photos'}/p*", f"--style={photos / 'style.png'}",
                         f"--output={photos / 'out'}", *FLAGS)
    finally:
        Stylizer.__init__ = init
    return code, text, len(built)


def test_a_glob_writes_each_photo_by_its_name_and_reports_the_bad_one(photos, glob_run):
    code, text, models = glob_run
    assert code == 1, text
    out = photos / "out"
    assert sorted(os.listdir(out)) == ["p0.png", "p1.png", "p2.png"]
    assert [max(Image.open(out / n).size) for n in sorted(os.listdir(out))] == [32, 32, 32]
    assert models == 1  # one model (and its traced functions) for every photo
    assert "photo 1/4 p0.png:" in text and "time left ~" in text and "step 4/4" in text
    failed = [line for line in text.splitlines() if "p3_bad.png failed" in line]
    assert len(failed) == 1 and "photo 4/4" in failed[0], text
    line, = error_lines(text)
    assert line.startswith("tfstyle: error: 3 written, 1 failed: p3_bad.png (ImageError: ")
    assert "Traceback" not in text


def test_a_photo_in_a_folder_equals_its_own_run_bit_for_bit(photos, glob_run, tmp_path):
    """The same seed for every photo: p1's result does not depend on its place."""
    single = tmp_path / "p1.png"
    code, text = cli(f"--content={photos / 'photos' / 'p1.jpg'}",
                     f"--style={photos / 'style.png'}", f"--output={single}", *FLAGS)
    assert code == 0, text
    np.testing.assert_array_equal(np.asarray(Image.open(single)),
                                  np.asarray(Image.open(photos / "out" / "p1.png")))


def test_ctrl_c_keeps_the_finished_photos_and_resume_does_the_rest(photos, monkeypatch):
    """A stop asked for while the second photo runs: the first is kept, the second
    not written; --resume skips the first and writes the other two (as jpg)."""
    from tfstyle.cli import common as cli_common

    folder, out = photos / "photos", photos / "resumed"
    first = out / "p0.jpg"

    class CtrlCDuringThe2ndPhoto(cli_common.StopOnSignal):
        polls = 0

        def __call__(self):
            if first.exists():  # the first poll then is before photo 2, the next in it
                type(self).polls += 1
                if type(self).polls == 2:
                    self.signal_number, self.signal_name = signal.SIGINT, "SIGINT"
            return bool(self.signal_number)

    (folder / "p3_bad.png").rename(photos / "p3_bad.png")  # only good photos here
    try:
        args = [f"--content={folder}", f"--style={photos / 'style.png'}", f"--output={out}/",
                "--output_ext=jpg", *FLAGS]
        with monkeypatch.context() as patch:
            patch.setattr(cli_common, "StopOnSignal", CtrlCDuringThe2ndPhoto)
            code, text = cli(*args)
        assert code == 130, text
        assert sorted(os.listdir(out)) == ["p0.jpg"]
        assert "interrupted by SIGINT during photo 2/3 (p1.jpg, not written); 1 written" in text
        assert "--resume" in text
        kept = first.stat().st_mtime_ns
        code, text = cli(*args, "--resume")
    finally:
        (photos / "p3_bad.png").rename(folder / "p3_bad.png")
    assert code == 0, text
    assert "1 of 3 photos have their output" in text and "2 written, 0 failed" in text
    assert sorted(os.listdir(out)) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert first.stat().st_mtime_ns == kept
    assert Image.open(out / "p1.jpg").format == "JPEG"


@pytest.mark.parametrize("flag", ["--save_every=2", "--checkpoint={root}/c.npz",
                                  "--init={root}/style.png", "--content_mask={root}/style.png",
                                  "--style_masks={root}/style.png"])
def test_one_photo_flags_are_refused_with_a_folder(photos, flag):
    out = photos / "refused"
    flag = flag.format(root=photos)
    code, text = cli(f"--content={photos / 'photos'}", f"--style={photos / 'style.png'}",
                     f"--output={out}", *TINY, flag)
    assert code == 1
    line, = error_lines(text)
    assert "--content names 4 photos, but --" in line and flag.split("=")[0] in line, line
    assert "one at a time" in line
    assert not out.exists()  # refused before anything was made


def test_stylize_many_goes_on_past_a_bad_photo_with_one_seed_and_one_trace(stylizer):
    photos = [synthetic_image(10, 48, 64), b"not an image", synthetic_image(11, 64, 40),
              synthetic_image(12, 40, 40)]
    options = RunOptions(size=32, steps=4, init="noise")  # no seed: one for all
    seen = []
    run = stylizer.stylize_many(photos, STYLE, options,
                                callback=lambda i, p: seen.append((i, p.step)), callback_every=2)
    first = next(run)
    traces = stylizer.compiled.traces()
    outcomes = [first, *run]
    assert stylizer.compiled.traces() == traces  # later photos, of other sizes: no trace
    assert [index for index, _, _ in outcomes] == [0, 1, 2, 3]
    assert isinstance(outcomes[1][2], ImageError)
    results = [outcome for _, _, outcome in outcomes if not isinstance(outcome, Exception)]
    assert len({r.seed for r in results}) == 1
    assert [r.image.shape for r in results] == [(24, 32, 3), (32, 20, 3), (32, 32, 3)]
    assert seen == [(0, 2), (0, 4), (2, 2), (2, 4), (3, 2), (3, 4)]
    alone = stylizer.stylize(photos[3], STYLE, options, seed=results[0].seed)
    np.testing.assert_array_equal(alone.image, results[2].image)
    other = stylizer.stylize(photos[3], STYLE, options, seed=results[0].seed + 1)
    assert np.abs(other.image.astype(int) - alone.image).mean() > 1  # the seed matters


@pytest.mark.parametrize("change", ["style", "blend", "preserve_colors", "aspect"])
def test_reused_style_targets_are_those_of_this_run(stylizer, change):
    """A run after another with the same longest side reuses the style targets where
    the styles' pixels, their blend and the masks are the same (a photo of another
    aspect ratio), and only there: its result equals the one computed afresh."""
    photo, other = synthetic_image(13, 40, 32), synthetic_image(14, 40, 32)
    options = options_second = RunOptions(size=32, steps=4, seed=5, init="content",
                                          stage_size=0)
    first = second = [STYLE]
    if change == "style":
        second = [synthetic_image(15, 48, 48)]
    elif change == "blend":
        first = second = [STYLE, synthetic_image(15, 48, 48)]
        options_second = dataclasses.replace(options, style_blend_weights=(0.2, 0.8))
    elif change == "preserve_colors":  # the style is recoloured by each photo
        options = options_second = dataclasses.replace(options, preserve_colors="histogram")
    else:
        other = synthetic_image(14, 32, 20)
    stylizer.compiled._styles.clear()
    stylizer.stylize(other, first, options)
    reused = stylizer.stylize(photo, second, options_second)
    kept = list(stylizer.compiled._styles.values())
    assert len(kept) == (1 if change == "aspect" else 2)
    if len(kept) == 2:  # a real change: reusing the first run's would be wrong
        assert max(float(np.abs(a - b).max()) for a, b in zip(
            *(tf.nest.flatten(k.grams) for k in kept))) > 1e-3
    stylizer.compiled._styles.clear()
    afresh = stylizer.stylize(photo, second, options_second)
    np.testing.assert_array_equal(reused.image, afresh.image)


def test_stylize_many_stops_between_photos(stylizer):
    stop = []
    run = stylizer.stylize_many([synthetic_image(10, 32, 32)] * 2, STYLE, size=32, steps=2,
                                should_stop=lambda: bool(stop))
    assert next(run)[0] == 0
    stop.append(True)
    with pytest.raises(Interrupted) as info:
        next(run)
    assert info.value.index == 1 and info.value.image is None


def test_content_files_and_plan_outputs(tmp_path):
    (tmp_path / "b.jpg").write_bytes(b"")
    (tmp_path / "a.PNG").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    paths, many = content_files(str(tmp_path))
    assert many and [os.path.basename(p) for p in paths] == ["a.PNG", "b.jpg"]
    assert content_files(str(tmp_path / "b.jpg")) == ([str(tmp_path / "b.jpg")], False)
    planned = plan_outputs(paths, True, str(tmp_path / "out"), "jpg", [])
    assert [os.path.basename(o) for _, o in planned] == ["a.jpg", "b.jpg"]
    with pytest.raises(ValueError, match="matches no files"):
        content_files(str(tmp_path / "*.gif"))
