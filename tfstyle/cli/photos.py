"""``tfstyle --content=photos/ --output=out/``: many photos in one local run.

Each photo is stylized on its own by one ``Stylizer`` (``Stylizer.stylize_many``: the
model and the traced step are built once) and written as soon as it finishes. A photo
that fails is reported and the others go on; Ctrl-C keeps the finished ones, and
``--resume`` skips the photos whose output exists. The flags are ``tfstyle.cli.main``'s.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from absl import flags, logging

from tfstyle.cli import common, photo_paths
from tfstyle.errors import ConfigError, Interrupted, TfstyleError
from tfstyle.options import INITS

FLAGS = flags.FLAGS


# Flags of one photo's run that a folder of photos cannot take, and why.
_ONE_PHOTO_FLAGS = {
    "content_mask": "a mask is drawn over one photo",
    "style_masks": "a mask is drawn over one photo",
    "save_every": "intermediate images are named after one --output",
    "checkpoint": "a checkpoint is one photo's (--resume skips the finished photos)",
}


def many_photos():
    """The [(photo, output path)] of a run over a folder or a glob of photos, or None
    where --content names one photo. Checked before TensorFlow is imported: the flags
    (``_refuse_one_photo_flags``), the outputs' paths (``photo_paths.plan_outputs``,
    which creates the --output folder); with --resume, the photos whose output exists
    are left out."""
    if not FLAGS.content:
        return None  # _check_paths says it is required
    contents, folder_mode = photo_paths.content_files(FLAGS.content)
    if not folder_mode:
        return None
    for name in ("style", "output"):
        if not getattr(FLAGS, name):
            raise ConfigError(f"--{name} is required")
    _refuse_one_photo_flags(len(contents))
    common.check_every()
    jobs = photo_paths.plan_outputs(contents, True, FLAGS.output, FLAGS.output_ext,
                                    common.style_paths())
    if FLAGS.resume:
        done = [output for _, output in jobs if os.path.exists(output)]
        if done:
            logging.info("--resume: %d of %d photos have their output in %s already: "
                         "skipped", len(done), len(jobs), FLAGS.output)
        jobs = [(content, output) for content, output in jobs if output not in done]
    return jobs


def _refuse_one_photo_flags(count):
    """ConfigError for the flags that make sense for one photo only."""
    refused = [f"--{name} ({why})" for name, why in _ONE_PHOTO_FLAGS.items()
               if FLAGS[name].present and getattr(FLAGS, name)]
    if FLAGS.init not in INITS:
        refused.append(f"--init={FLAGS.init} (a start image is one photo's)")
    if refused:
        raise ConfigError(f"--content names {count} photos, but {'; '.join(refused)}: drop "
                          f"{'it' if len(refused) == 1 else 'them'}, or stylize those photos "
                          f"one at a time")


def run_many(jobs, options, styles):
    """Stylizes each (photo, output) of ``jobs`` with one ``Stylizer``
    (``Stylizer.stylize_many``) and writes each result as it finishes.

    ``styles``: --style decoded (``_decode_styles``). A photo that fails is logged and
    the others go on; raises TfstyleError with the summary if any failed. Ctrl-C or
    SIGTERM drops the photo in progress, keeps the finished ones and exits 130 (143)."""
    from tfstyle.local import runner

    if not jobs:
        logging.info("nothing to do: every photo has its output (drop --resume to redo them)")
        return
    stylizer = common.stylizer()
    if options.seed is None:  # one seed for all, logged, so that any photo can be redone
        options = dataclasses.replace(options, seed=runner.draw_seed())
    plan = options.stages()
    logging.info("stylizing %d photos with %s: %s px, %s %s steps each, seed %d (pass "
                 "--seed=%d to repeat)", len(jobs), FLAGS.style,
                 " -> ".join(str(size) for size, _ in plan), "+".join(str(n) for _, n in plan),
                 options.optimizer, options.seed, options.seed)
    batch = _Batch(jobs)
    stop = common.StopOnSignal("stopping the photo in progress; the finished ones are kept (send "
                         "it again to abort at once)")
    try:
        with stop:
            for index, _, outcome in stylizer.stylize_many(
                    [content for content, _ in jobs], styles, options, callback=batch.progress,
                    callback_every=common.callback_every(options), should_stop=stop):
                batch.finished(index, outcome)
    except Interrupted as e:
        batch.close()
        print(f"tfstyle: interrupted by {stop.signal_name} {batch.where(e)}; "
              f"{batch.summary()}; to go on, run the same command with --resume, which skips "
              f"the photos whose output exists", file=sys.stderr)
        sys.exit(128 + stop.signal_number)
    finally:
        batch.close()
    if batch.failed:
        raise TfstyleError(batch.summary())
    logging.info("%s", batch.summary())


class _Batch:
    """The CLI's side of ``run_many``: each result written as it comes, a line per photo
    with the time left, each photo's step progress (and TensorBoard run under --logdir),
    and the failures for the summary."""

    def __init__(self, jobs):
        self.jobs, self.written, self.failed = jobs, [], []
        self.seconds = []  # of each photo written
        self.photo_started = time.perf_counter()
        self._current = None  # (index, progress callback, summary writer or None)

    def progress(self, index, p):
        """``stylize_many``'s callback: the step lines of ``common.progress_callback`` for this photo."""
        if self._current is None or self._current[0] != index:
            self.close()
            writer = None
            if FLAGS.logdir:
                import tensorflow as tf
                stem = os.path.splitext(os.path.basename(self.jobs[index][1]))[0]
                writer = tf.summary.create_file_writer(os.path.join(FLAGS.logdir, stem))
            self._current = (index, common.progress_callback(self.jobs[index][1], writer), writer)
        self._current[1](p)

    def finished(self, index, outcome):
        """Writes photo ``index``'s result, or logs its error (one line)."""
        content, output = self.jobs[index]
        seconds = time.perf_counter() - self.photo_started
        error = outcome if isinstance(outcome, Exception) else _write(outcome.image, output)
        if error is not None:  # the others go on
            why = f"{type(error).__name__}: {' '.join(str(error).split())}"
            self.failed.append((content, why))
            logging.error("photo %d/%d %s failed after %.1f s: %s", index + 1, len(self.jobs),
                          os.path.basename(content), seconds, why)
        else:
            self.written.append(output)
            self.seconds.append(seconds)
            # The first photo also paid for the model's tracing: leave it out once others
            # have run.
            typical = self.seconds[1:] or self.seconds
            left = sum(typical) / len(typical) * (len(self.jobs) - index - 1)
            logging.info("photo %d/%d %s: %.1f s, time left ~%s; wrote %s", index + 1,
                         len(self.jobs), os.path.basename(content), seconds, common.duration(left),
                         output)
        self.photo_started = time.perf_counter()

    def where(self, stopped: Interrupted) -> str:
        """Which photo ``stylize_many``'s ``Interrupted`` stopped: during one (it has the
        image so far), or before one."""
        index = stopped.index
        name = os.path.basename(self.jobs[index][0])
        if stopped.image is None:
            return f"before photo {index + 1}/{len(self.jobs)} ({name})"
        return f"during photo {index + 1}/{len(self.jobs)} ({name}, not written)"

    def summary(self) -> str:
        """``4 written, 1 failed: bad.jpg (ImageError: ...)``."""
        text = f"{len(self.written)} written, {len(self.failed)} failed"
        if self.failed:
            text += ": " + "; ".join(f"{os.path.basename(c)} ({why})" for c, why in self.failed)
        return text

    def close(self):
        if self._current is not None and self._current[2] is not None:
            self._current[2].close()  # flushes
        self._current = None


def _write(image, output):
    """Writes ``image`` atomically to ``output``; returns the error (disk full, a
    folder gone) instead of raising it, so that the other photos go on."""
    from tfstyle import image_io

    try:
        image_io.save_image(image, output)
    except TfstyleError as e:
        return e
    return None
