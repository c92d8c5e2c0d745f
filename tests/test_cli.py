"""The `tfstyle` command: as a real subprocess, or its ``main`` in this process where a
test is about what the flags do to a run (``main_in_process``)."""

import logging
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, synthetic_image

TINY = ["--weights=none", "--size=32", "--steps=4", "--log_every=2"]


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "tfstyle", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, timeout=300, env=env)


def main_in_process(*args):
    """The command's flag parsing and ``main`` in this process, for tests of what flags
    do to a run: a new process would add only TensorFlow's import, about 5 s a run.
    Exit codes, one-line errors, signals and the allocator go through ``run_cli``."""
    from absl import flags

    from tfstyle.cli import main
    flags.FLAGS.unparse_flags()
    try:
        main.main(flags.FLAGS(["tfstyle", *args]))
    finally:
        flags.FLAGS.unparse_flags()


@pytest.fixture()
def images(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.jpg"
    Image.fromarray(synthetic_image(1, 48, 64)).save(content)
    Image.fromarray(synthetic_image(2)).save(style, quality=95)
    return content, style


def assert_clean_failure(result, output: pathlib.Path, needle: str):
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("tfstyle: error:")]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}*"))  # no temporary file left


def test_run_writes_png_with_progress(images, tmp_path):
    content, style = images
    output = tmp_path / "out.png"
    result = run_cli(f"--content={content}", f"--style={style}", f"--output={output}", *TINY,
                     "--seed=5")
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(output))
    assert image.shape == (24, 32, 3)
    assert "step 2/4" in result.stderr and "step 4/4" in result.stderr
    assert "steps/s" in result.stderr and "left" in result.stderr
    assert "seed 5" in result.stderr


def test_a_memory_limit_that_needs_tiling_keeps_malloc(images, tmp_path):
    """Under a --memory_limit that the untiled step would pass only in BFC's pool, the
    CLI serves TensorFlow's tensors from malloc, whose peak the planner bounds; without
    a limit it keeps the pool; a user's TF_CPU_ALLOCATOR_USE_BFC wins. Which allocator
    ran is read back from TensorFlow (``allocator.in_effect``)."""
    from tfstyle import allocator
    from tfstyle.local import memory
    from tfstyle.core.features import feature_layers, resolve_layers
    from tfstyle.options import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
    content_layers = resolve_layers(DEFAULT_CONTENT_LAYERS)
    layers = feature_layers(DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS)
    malloc, pooled = (memory.step_bytes(32, 32, layers, "vgg19", "float32", 10,
                                        content_layers=content_layers, pooled=p)
                      for p in (False, True))
    limit = (malloc + pooled) // 2
    assert malloc < limit < pooled
    # This test process imported tfstyle, which set the variable: not a user's choice.
    env = {k: v for k, v in os.environ.items() if k != allocator.ENV}
    content, style = images
    for extra, user, expected in (([f"--memory_limit={limit}"], None, "malloc"),
                                  ([], None, "bfc"),
                                  ([f"--memory_limit={limit}"], "1", "bfc")):
        run_env = dict(env, **({allocator.ENV: user} if user else {}))
        # No steps: the choice is made and logged before the model is built.
        result = run_cli(f"--content={content}", f"--style={style}",
                         f"--output={tmp_path / 'out.png'}", *TINY, "--steps=0", *extra,
                         env=run_env)
        assert result.returncode == 0, result.stderr
        assert f"CPU tensors from {expected}" in result.stderr, (extra, user, result.stderr)


def test_jpeg_output_by_extension(images, tmp_path):
    content, style = images
    output = tmp_path / "out.JPG"
    result = run_cli(f"--content={content}", f"--style={style}", f"--output={output}", *TINY)
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[:3] == b"\xff\xd8\xff"


def test_save_every_and_tensorboard_logdir(images, tmp_path):
    content, style = images
    output, logdir = tmp_path / "out.png", tmp_path / "logs"
    result = run_cli(f"--content={content}", f"--style={style}", f"--output={output}", *TINY,
                     "--save_every=2", f"--logdir={logdir}")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out_00002.png").exists()
    assert output.exists()
    events = list(logdir.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    import tensorflow as tf
    tags = set()
    for record in tf.compat.v1.train.summary_iterator(str(events[0])):
        tags.update(value.tag for value in record.summary.value)
    assert {"loss/total", "loss/content", "loss/style", "loss/tv", "image"} <= tags


def test_flagfile_presets_parse_and_run(images, tmp_path, caplog):
    content, style = images
    configs = REPO / "configs"
    for preset in ("fast", "paper", "hires"):
        output = tmp_path / f"{preset}.png"
        main_in_process(f"--flagfile={configs / preset}.cfg", f"--content={content}",
                        f"--style={style}", f"--output={output}", "--weights=none",
                        "--size=32", "--steps=2")
        assert np.asarray(Image.open(output)).shape == (24, 32, 3), preset
    assert "avg" in (configs / "paper.cfg").read_text()
    # The print preset, shortened to two stages, its second one tiled.
    output = tmp_path / "print.png"
    with caplog.at_level(logging.INFO):
        main_in_process(f"--flagfile={configs / 'print.cfg'}", f"--content={content}",
                        f"--style={style}", f"--output={output}", "--weights=none",
                        "--size=64", "--stage_size=32", "--stage_steps=2,2", "--tile_size=32")
    assert "stage 2/2: 64 px, 2 steps, tiled (32 px tiles" in caplog.text
    assert np.asarray(Image.open(output)).shape == (48, 64, 3)


@pytest.mark.parametrize("case", ["missing", "not_image", "truncated", "layer", "steps",
                                  "same_as_input", "missing_folder", "extension", "weights"])
def test_bad_input_exits_1_with_one_line_and_writes_nothing(case, images, tmp_path):
    content, style = images
    output = tmp_path / "out.png"
    args = [f"--content={content}", f"--style={style}", f"--output={output}", *TINY]
    needle = {
        "missing": "nowhere.jpg", "not_image": "notes.jpg", "truncated": "cut.jpg",
        "layer": "conv9_9", "steps": "steps", "same_as_input": "also an input",
        "missing_folder": "does not exist", "extension": ".gif", "weights": "none.h5",
    }[case]
    if case == "missing":
        args[0] = f"--content={tmp_path / 'nowhere.jpg'}"
    elif case == "not_image":
        (tmp_path / "notes.jpg").write_text("this is text, not a JPEG")
        args[1] = f"--style={tmp_path / 'notes.jpg'}"
    elif case == "truncated":
        full = tmp_path / "full.jpg"
        Image.fromarray(synthetic_image(3, 128, 128)).save(full, quality=95)
        (tmp_path / "cut.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        args[0] = f"--content={tmp_path / 'cut.jpg'}"
    elif case == "layer":
        args.append("--style_layers=conv1_1,conv9_9")
    elif case == "steps":
        args.append("--steps=-3")
    elif case == "same_as_input":
        output = content
        args[2] = f"--output={content}"
    elif case == "missing_folder":
        output = tmp_path / "no" / "such" / "out.png"
        args[2] = f"--output={output}"
    elif case == "extension":
        output = tmp_path / "out.gif"
        args[2] = f"--output={output}"
    elif case == "weights":
        args.append(f"--weights={tmp_path / 'none.h5'}")
    before = content.read_bytes()
    result = run_cli(*args)
    if case == "same_as_input":
        assert result.returncode == 1 and needle in result.stderr
        assert content.read_bytes() == before
        return
    assert_clean_failure(result, output, needle)


def test_a_bad_input_file_is_reported_before_tensorflow_is_imported(images, tmp_path):
    """Missing and unreadable files are found by Pillow alone, so a typo costs a
    fraction of a second rather than TensorFlow's import (4-5 s). A stand-in
    ``tensorflow`` that refuses to import shows that none was attempted."""
    fake = tmp_path / "fake"
    (fake / "tensorflow").mkdir(parents=True)
    (fake / "tensorflow" / "__init__.py").write_text("raise ImportError('imported')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(fake), os.environ.get("PYTHONPATH")])))
    content, style = images
    (tmp_path / "notes.jpg").write_text("this is text, not a JPEG")
    output = tmp_path / "out.png"
    for inputs, needle in (([f"--content={tmp_path / 'nowhere.jpg'}", f"--style={style}"],
                            "nowhere.jpg"),
                           ([f"--content={content}", f"--style={tmp_path / 'notes.jpg'}"],
                            "notes.jpg")):
        assert_clean_failure(run_cli(*inputs, f"--output={output}", env=env), output, needle)
    # The stand-in is in the way of any run that gets past the inputs.
    result = run_cli(f"--content={content}", f"--style={style}", f"--output={output}", *TINY,
                     env=env)
    assert result.returncode != 0 and "ImportError: imported" in result.stderr


def test_stray_positional_argument_is_refused(images, tmp_path):
    content, style = images
    output = tmp_path / "out.png"
    result = run_cli(f"--content={content}", f"--style={style}", f"--output={output}", *TINY,
                     "extra")
    assert_clean_failure(result, output, "unexpected arguments")


def test_non_numeric_style_layer_weights_exit_1_with_one_line(images, tmp_path):
    content, style = images
    output = tmp_path / "out.png"
    result = run_cli(f"--content={content}", f"--style={style}", f"--output={output}", *TINY,
                     "--style_layer_weights=a,b,c,d,e")
    assert_clean_failure(result, output, "--style_layer_weights must be numbers")


@pytest.mark.parametrize("value,needle", [
    ("a,1", "--content_edge_powers must be numbers"),
    ("1,2,3", "3 content edge powers for 2 content layers"),
    ("0,-1", "content edge powers must be finite and ≥ 0")])
def test_bad_content_edge_powers_exit_1_with_one_line(images, tmp_path, value, needle):
    content, style = images
    output = tmp_path / "out.png"
    result = run_cli(f"--content={content}", f"--style={style}", f"--output={output}", *TINY,
                     f"--content_edge_powers={value}")
    assert_clean_failure(result, output, needle)


def test_content_edge_powers_change_the_picture(images, tmp_path):
    content, style = images
    common = TINY + ["--seed=1", "--stage_size=0", f"--content={content}", f"--style={style}"]
    plain, edges, zeros = tmp_path / "plain.png", tmp_path / "edges.png", tmp_path / "zeros.png"
    main_in_process(*common, f"--output={plain}")
    main_in_process(*common, "--content_edge_powers=2", f"--output={edges}")
    main_in_process(*common, "--content_edge_powers=0,0", f"--output={zeros}")
    a, b, c = (np.asarray(Image.open(p), np.float64) for p in (plain, edges, zeros))
    assert (a != b).any()  # ignored, the flag would give the same picture
    assert np.array_equal(a, c)


def test_several_styles_masks_and_colours_from_the_command_line(images, tmp_path):
    content, style = images
    other = tmp_path / "other.png"
    Image.fromarray(synthetic_image(3, 40, 56)).save(other)
    mask = tmp_path / "mask.png"
    left = np.zeros((48, 64), np.uint8)
    left[:, :32] = 255
    Image.fromarray(left).save(mask)
    single, blended = tmp_path / "single.png", tmp_path / "blended.png"
    common = TINY + ["--seed=1", "--stage_size=0", f"--content={content}"]
    main_in_process(*common, f"--style={style}", f"--output={single}")
    main_in_process(*common, f"--style={style},{other}", "--style_blend_weights=1,0",
                    f"--output={blended}")
    np.testing.assert_array_equal(np.asarray(Image.open(blended)), np.asarray(Image.open(single)))
    for i, extra in enumerate((["--preserve_colors=histogram", "--style_loss=mean_cov"],
                               [f"--style={style},{other}", f"--style_masks={mask},{mask}"],
                               [f"--content_mask={mask}", "--preserve_colors=luminance"])):
        output = tmp_path / f"extra{i}.png"
        main_in_process(*common, f"--style={style}", *extra, f"--output={output}")
        image = np.asarray(Image.open(output))
        assert image.shape == (24, 32, 3), extra
        # Each set of flags reached the run: the picture is not the plain one.
        assert np.abs(image.astype(int) - np.asarray(Image.open(single))).mean() > 0.5, extra


def test_coarse_to_fine_logs_its_stages(images, tmp_path):
    content, style = images
    output = tmp_path / "out.png"
    result = run_cli("--weights=none", "--size=64", "--steps=6", "--log_every=1",
                     "--stage_size=32", f"--content={content}", f"--style={style}",
                     f"--output={output}")
    assert result.returncode == 0, result.stderr
    assert "32 -> 64 px, 4+2 lbfgs steps" in result.stderr
    assert "[stage 1/2, 32 px]" in result.stderr and "[stage 2/2, 64 px]" in result.stderr
    assert np.asarray(Image.open(output)).shape == (48, 64, 3)


@pytest.mark.parametrize("flags, needle", [
    (["--style_blend_weights=1,2,3", "--style={style},{style}"],
     "3 style blend weights for 2 style images"),
    (["--style_blend_weights=a,b"], "--style_blend_weights must be a comma-separated list"),
    (["--init_blend=1.5"], "init_blend must be between 0 (the photo) and 1 (the painting)"),
    (["--stage_steps=1,2,3", "--size=64", "--stage_size=32"], "3 stage_steps for 2 stages"),
    (["--content_mask={square}"], "aspect ratio"),
    (["--style_masks={mask}", "--style={style},{style}"], "1 style masks for 2 style images"),
    (["--style_scale=1,2", "--style={style},{style},{style}"], "2 style scales for 3 style"),
])
def test_bad_control_flags_fail_cleanly(images, tmp_path, flags, needle):
    content, style = images
    square, mask = tmp_path / "square.png", tmp_path / "mask.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(square)
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(mask)
    output = tmp_path / "out.png"
    args = [f.format(style=style, square=square, mask=mask) for f in flags]
    if not any(a.startswith("--style=") for a in args):
        args.append(f"--style={style}")
    result = run_cli(*TINY, f"--content={content}", *args, f"--output={output}")
    assert_clean_failure(result, output, needle)
