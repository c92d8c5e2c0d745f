"""What the command's three runs share (one image, many photos, a video): the flags'
feature model, progress logging, the Ctrl-C handler and small flag helpers. The flags
themselves are defined in ``tfstyle.cli.main``. Both commands, ``tfstyle`` and
``tfstyle-export``, end on an error with ``fail``.
"""

from __future__ import annotations

import math
import os
import signal
import sys

from absl import flags, logging

from tfstyle.cli.model_flags import model_options  # --weights --backbone --pooling, layers
from tfstyle.errors import ConfigError

FLAGS = flags.FLAGS


def fail(program: str, message: str):
    """Ends the command ``program`` with status 1 and ``message`` on one line of stderr."""
    print(f"{program}: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(1)


def style_paths() -> list:
    """--style split into its image paths."""
    return [p.strip() for p in FLAGS.style.split(",") if p.strip()]


def check_every():
    for name in ("log_every", "save_every"):
        if getattr(FLAGS, name) < 0:
            raise ConfigError(f"--{name} must be ≥ 0, got {getattr(FLAGS, name)}")


def stylizer():
    """The flags' ``Stylizer``: the feature model, built once per command."""
    from tfstyle import allocator
    from tfstyle.local import memory
    from tfstyle.local.stylizer import Stylizer

    # Under malloc (the user opted out of BFC) this bounds a tiled run's peak. Under BFC,
    # which pools TensorFlow's tensors itself, it would only make the blocks that still
    # go through malloc (60 MB a step) fault in anew: 0.05-0.1 s of a 128 px step.
    if not allocator.bfc_requested():
        memory.return_freed_memory()
    logging.info("CPU tensors from %s (tfstyle.allocator)", allocator.in_effect())
    return Stylizer(**model_options(), precision=FLAGS.precision,
                    jit_compile=FLAGS.jit_compile)


class StopOnSignal:
    """SIGINT/SIGTERM ask the run to stop after the current chunk of steps (it then
    writes the image so far and a checkpoint; over many photos, drops the photo in
    progress); a second signal aborts at once. ``stopping``: what the first one does,
    for the message."""

    def __init__(self, stopping: str = ("stopping after the current steps to save the "
                                        "image and a checkpoint (send it again to abort "
                                        "without saving)")):
        self.signal_number = 0
        self.signal_name = ""
        self.stopping = stopping
        self._previous = {}

    def __call__(self):
        return bool(self.signal_number)

    def _handle(self, number, frame):
        del frame
        self.signal_number = number
        self.signal_name = signal.Signals(number).name
        for sig, handler in self._previous.items():  # a second signal: the default
            signal.signal(sig, handler)
        print(f"tfstyle: {self.signal_name}: {self.stopping}", file=sys.stderr)

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def callback_every(options) -> int:
    """Steps between progress callbacks: what --log_every and --save_every both need."""
    every = [n for n in (FLAGS.log_every, FLAGS.save_every) if n > 0]
    return math.gcd(*every) if every else max(options.steps, 1)


def progress_callback(output, writer):
    """The run's progress callback: a log line every --log_every steps, the image every
    --save_every, and TensorBoard scalars and images where ``writer`` is set."""
    import tensorflow as tf

    from tfstyle import image_io

    def progress(p):
        last = p.step == p.steps
        if FLAGS.log_every and (p.step % FLAGS.log_every == 0 or last):
            tiled = f", tiled in {p.tile} px tiles" if p.tile else ""
            stage = (f"  [stage {p.stage}/{p.stages}, {p.size} px{tiled}]" if p.stages > 1
                     else f"  [tiled in {p.tile} px tiles]" if p.tile else "")
            logging.info("step %d/%d  loss %.4g (content %.4g, style %.4g, tv %.4g)  "
                         "%.2f steps/s  %s left%s", p.step, p.steps, p.losses["total"],
                         p.losses["content"], p.losses["style"], p.losses["tv"],
                         p.steps_per_second, duration(p.eta_seconds), stage)
        saving = FLAGS.save_every and p.step % FLAGS.save_every == 0 and not last
        if saving:
            image_io.save_image(p.image(), intermediate_path(output, p.step))
        if writer is not None:
            with writer.as_default(step=p.step):
                for name, value in p.losses.items():
                    tf.summary.scalar(f"loss/{name}", value)
                tf.summary.scalar("steps_per_second", p.steps_per_second)
                if saving or last:
                    tf.summary.image("image", p.image()[None], max_outputs=1)
    return progress


def duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def intermediate_path(output, step):
    root, ext = os.path.splitext(str(output))
    return f"{root}_{step:05d}{ext}"
