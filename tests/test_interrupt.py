"""Interruption and resume: Ctrl-C or SIGTERM keeps the work, --resume finishes it."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, stop_after, synthetic_image
from tfstyle import ConfigError, RunOptions
from tfstyle.local.checkpoint import load_checkpoint, save_checkpoint
from tfstyle.errors import Interrupted

CONTENT = synthetic_image(1)
STYLE = synthetic_image(2)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_resume_reaches_the_uninterrupted_result(stylizer, optimizer, tmp_path):
    options = RunOptions(size=48, steps=30, optimizer=optimizer, init="noise", seed=4)
    whole = stylizer.stylize(CONTENT, STYLE, options)
    with pytest.raises(Interrupted) as info:
        stylizer.stylize(CONTENT, STYLE, options, should_stop=stop_after(2))
    stopped = info.value
    assert 0 < stopped.step < options.steps
    assert stopped.image.shape == (48, 48, 3) and stopped.image.dtype == np.uint8
    # Through a file, as the CLI does.
    path = save_checkpoint(tmp_path / "run.ckpt.npz", **stopped.checkpoint)
    resumed = stylizer.stylize(CONTENT, STYLE, options, resume=load_checkpoint(path))
    assert resumed.steps == options.steps
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert resumed.losses == whole.losses


def test_a_checkpoint_of_another_job_is_refused(stylizer):
    options = RunOptions(size=48, steps=20, init="noise", seed=4)
    with pytest.raises(Interrupted) as info:
        stylizer.stylize(CONTENT, STYLE, options, should_stop=stop_after(1))
    checkpoint = info.value.checkpoint
    with pytest.raises(ConfigError, match="another job"):
        stylizer.stylize(STYLE, CONTENT, options, resume=checkpoint)
    with pytest.raises(ConfigError, match="another job"):
        stylizer.stylize(CONTENT, STYLE, options, resume=checkpoint, style_weight=5.0)
    # A feature model whose content term weighs the photo's edges is another job too.
    saved = stylizer.content_edge_powers
    stylizer.content_edge_powers = (1.0,) * len(saved)
    try:
        with pytest.raises(ConfigError, match="another job"):
            stylizer.stylize(CONTENT, STYLE, options, resume=checkpoint)
    finally:
        stylizer.content_edge_powers = saved
    with pytest.raises(ConfigError, match="past --steps"):
        stylizer.stylize(CONTENT, STYLE, options, resume=checkpoint, steps=checkpoint["step"] - 1)


def test_the_blend_share_is_part_of_a_blend_job_only(stylizer):
    blend = RunOptions(size=48, steps=20, init="blend", init_blend=0.5, seed=4)
    with pytest.raises(Interrupted) as info:
        stylizer.stylize(CONTENT, STYLE, blend, should_stop=stop_after(1))
    with pytest.raises(ConfigError, match="another job"):
        stylizer.stylize(CONTENT, STYLE, blend, resume=info.value.checkpoint, init_blend=0.25)
    # Under another start the share shapes nothing: a photo-start job resumes whatever it.
    photo = RunOptions(size=48, steps=6, init="content", seed=4)
    with pytest.raises(Interrupted) as info:
        stylizer.stylize(CONTENT, STYLE, photo, should_stop=stop_after(1))
    resumed = stylizer.stylize(CONTENT, STYLE, photo, resume=info.value.checkpoint,
                               init_blend=0.25)
    assert resumed.steps == 6


def test_unreadable_checkpoint_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt.npz")
    bad = tmp_path / "bad.ckpt.npz"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable tfstyle checkpoint"):
        load_checkpoint(bad)


def cli(*args):
    return [sys.executable, "-m", "tfstyle", *args]


@pytest.fixture()
def job(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(synthetic_image(1, 48, 64)).save(content)
    Image.fromarray(synthetic_image(2)).save(style)
    return [f"--content={content}", f"--style={style}", "--weights=none", "--size=64",
            "--steps=150", "--seed=9", "--log_every=10"]


def interrupt_when_running(args, sig):
    """Starts the CLI, sends ``sig`` once it reports progress, returns (process, stderr)."""
    proc = subprocess.Popen(cli(*args), cwd=REPO, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:
        lines.append(line)
        if "step 10/" in line:
            proc.send_signal(sig)
            break
        assert time.monotonic() < deadline, "".join(lines)
    lines.extend(proc.stderr)
    proc.wait(timeout=240)
    return proc, "".join(lines)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_signal_writes_image_and_checkpoint_then_resume_matches(job, tmp_path, sig):
    output = tmp_path / "out.png"
    checkpoint = tmp_path / "out.png.ckpt.npz"
    proc, stderr = interrupt_when_running(job + [f"--output={output}"], sig)
    assert proc.returncode == 128 + sig, stderr
    assert "interrupted by" in stderr and "--resume" in stderr, stderr
    assert "Traceback" not in stderr
    assert checkpoint.exists()
    partial = np.asarray(Image.open(output))
    assert partial.shape == (48, 64, 3)
    step = load_checkpoint(checkpoint)["step"]
    assert 10 <= step < 150
    if sig == signal.SIGTERM:
        return  # the same path as SIGINT from here on; resume once, below

    resumed = subprocess.run(cli(*job, f"--output={output}", "--resume"), cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at step {step}" in resumed.stderr
    assert not checkpoint.exists()  # consumed

    whole = tmp_path / "whole.png"
    straight = subprocess.run(cli(*job, f"--output={whole}"), cwd=REPO, capture_output=True,
                              text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(output)), np.asarray(Image.open(whole)))


def test_cli_resume_without_checkpoint_says_so(job, tmp_path):
    output = tmp_path / "out.png"
    result = subprocess.run(cli(*job, f"--output={output}", "--resume"), cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "no checkpoint" in result.stderr and not output.exists()
