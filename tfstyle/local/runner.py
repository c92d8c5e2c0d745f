"""The library's driver: the core's stages run eagerly, in chunks of steps.

``run`` walks the coarse-to-fine plan (``RunOptions.stages``). Each stage is the core's
(``stages.prepare_stage``, over ``inputs.stage_inputs`` and the traced functions of
``tfstyle.local.compiled``), with this stage's optimiser and tiling (``memory.stage_setup``)
and, where a run resumes, a checkpoint's start (``checkpoint.resumed_start``). The
runner keeps only how it iterates: the stage's steps in chunks (about half a second
each: short enough to stop promptly, long enough that reading the losses back costs
nothing), with progress and a stop check between them, the image and optimiser state
in ``tf.Variable`` s between chunks.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

from tfstyle import image_io
from tfstyle.core import color, stages
from tfstyle.core.model import StyleModel
from tfstyle.core.optimizers import make_optimizer
from tfstyle.errors import ConfigError, Interrupted, NumericalError
from tfstyle.local import checkpoint, inputs as inputs_lib, memory
from tfstyle.options import RunOptions

log = logging.getLogger("tfstyle")


class Progress(NamedTuple):
    """What a progress callback receives between chunks of steps.

    step, steps: steps done and planned. losses: the weighted terms at the last step
    (Python floats). elapsed: seconds since optimisation started. steps_per_second and
    eta_seconds: measured rate and estimated time left. image: a callable returning
    the current image, uint8 (H, W, 3); fetching it costs a device-to-host copy.
    stage, stages, size: the coarse-to-fine stage (1-based), their number, and this
    stage's longest side in pixels. tile: the stage's tile side in pixels where it
    runs tiled (``tfstyle.core.tiling``), else 0.
    """
    step: int
    steps: int
    losses: dict
    elapsed: float
    steps_per_second: float
    eta_seconds: float
    image: Callable[[], np.ndarray]
    stage: int = 1
    stages: int = 1
    size: int = 0
    tile: int = 0


class Result(NamedTuple):
    """A finished run: the image, uint8 (H, W, 3); the final weighted loss terms; the
    seed used (draw one yourself and pass it to reproduce); and the steps run."""
    image: np.ndarray
    losses: dict
    seed: int
    steps: int


def run(model: StyleModel, compiled, inputs: inputs_lib.Inputs, options: RunOptions,
        callback=None, callback_every: int = 50, should_stop=None,
        resume: dict | None = None, temporal=None) -> Result:
    """Stylizes decoded ``inputs`` (checked by ``inputs.check_sizes``) with validated
    ``options`` on ``model``, with the tf.functions of ``compiled``
    (``compiled.Compiled``). See ``Stylizer.stylize`` for the callbacks, ``resume``
    and ``temporal``, and the errors raised."""
    plan = options.stages()
    seed = options.seed
    if seed is None:
        seed = resume["seed"] if resume is not None else draw_seed()
    job = _Job(model, compiled, inputs, options, seed, callback, callback_every, should_stop)
    if resume is not None:
        checkpoint.check_resume(resume, job.fingerprint(), job.total_steps)
    done, stage = 0, None
    for index, (size, steps) in enumerate(plan):
        end = done + steps
        last = index == len(plan) - 1
        if resume is not None and resume["step"] >= end and not last:
            done = end  # this stage finished before the interruption
            continue
        resuming = resume if resume is not None and done <= resume["step"] else None
        # The last stage's end is held only while this one is built (at a print's last
        # stage, its L-BFGS pairs alone can be a GB), and its targets not at all: they
        # need not stay beside this stage's own (0.5 GiB at 2048 px; memory.step_bytes).
        previous = stage and stage.end()
        stage = None
        stage = job.stage(index, size, steps, previous, resuming,
                          temporal if last else None)
        previous = None
        if resuming is not None:
            done = job.first = int(resume["step"])
            resume = None
        done = job.run_stage(stage, done, end)
    terms = job.terms if job.terms is not None else stage.evaluate()
    return Result(stage.current(), terms, seed, done)


def draw_seed() -> int:
    """A fresh random seed, an int in [0, 2**63): what a run without one uses (and
    reports, so that it can be repeated)."""
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))


class _Stage:
    """One stage as the runner drives it: ``stages.prepare_stage``'s, with this stage's
    optimiser and tiling, its image and optimiser state in variables between chunks."""

    def __init__(self, job, index, size, steps, previous, resume=None, temporal=None):
        model, options = job.model, job.options
        self.index, self.size = index, size
        inputs = inputs_lib.stage_inputs(job.inputs, size, options, model.layers)
        self.optimizer, self.tiling = memory.stage_setup(
            model, options, job.optimizer, *inputs.run_content.shape[:2], job.budget, steps)
        self.content = inputs.run_content[None]
        self.original, self.preserve_colors = inputs.content, options.preserve_colors
        start = None
        if resume is not None:
            start = checkpoint.resumed_start(resume, self.optimizer, self.content.shape)
        if temporal is not None:
            temporal = _temporal_arrays(temporal, self.content.shape[1:])
        stage = stages.prepare_stage(model, job.compiled.functions, options, self.optimizer,
                                     inputs, previous, last=index == len(job.plan) - 1,
                                     tiling=self.tiling, start=start, temporal=temporal)
        # The targets hold the styles' statistics; the stage's inputs (the styles'
        # pixels, style_scale² times the output's area) need not stay through it.
        self.targets, self.functions = stage.targets, stage.functions
        self.image = tf.Variable(stage.start, name="image")
        self.state = tf.nest.map_structure(tf.Variable, stage.state)

    def read_state(self):
        return tf.nest.map_structure(lambda v: v.read_value(), self.state)

    def end(self) -> stages.Previous:
        """Where this stage ended, for the next one."""
        return stages.Previous(self.image.read_value(), self.read_state(), self.content)

    def current(self) -> np.ndarray:
        """The image to keep now, uint8 (H, W, 3), colours restored."""
        result = self.optimizer.result(self.image.read_value(), self.read_state())[0]
        result = color.restore_colors(result, self.original, self.preserve_colors)
        return image_io.to_uint8(np.asarray(result))

    def chunk(self, n):
        """Runs ``n`` steps; returns (terms as floats, whether they are finite)."""
        new_image, new_state, terms = self.functions.optimize(
            self.image.read_value(), self.read_state(), self.targets, tf.constant(n))
        # On a non-finite loss the loop returned the last finite image and state.
        self.image.assign(new_image)
        tf.nest.map_structure(lambda v, t: v.assign(t), self.state, new_state)
        terms = {k: float(v) for k, v in terms._asdict().items()}
        return terms, bool(np.isfinite(terms["total"]))

    def evaluate(self) -> dict:
        terms = self.functions.evaluate(self.image.read_value(), self.targets)
        return {k: float(v) for k, v in terms._asdict().items()}


def _temporal_arrays(temporal, shape):
    """``Stylizer.stylize``'s ``temporal`` (target, weight) as float32 arrays, checked
    against the last stage's image ``shape`` (H, W, 3)."""
    target, weight = temporal
    if tuple(np.shape(target)) != tuple(shape) or tuple(np.shape(weight)) != tuple(shape[:2]):
        raise ConfigError(f"the temporal target {np.shape(target)} and weight "
                          f"{np.shape(weight)} do not fit this stage's {tuple(shape)} image")
    return np.asarray(target, np.float32), np.asarray(weight, np.float32)


class _Job:
    """What every stage of one run shares, and the chunk loop with its reporting."""

    def __init__(self, model, compiled, inputs, options, seed, callback, callback_every,
                 should_stop):
        self.model, self.compiled, self.inputs = model, compiled, inputs
        # The stages read the seed from the options, as the graph's do.
        self.options = dataclasses.replace(options, seed=seed)
        self.seed, self.callback, self.should_stop = seed, callback, should_stop
        self.plan = options.stages()
        self.total_steps = sum(n for _, n in self.plan)
        self.callback_every = callback_every
        self.optimizer = make_optimizer(options)
        # Once, before this run's own allocations lower the free memory.
        self.budget = None if options.tile_size else memory.run_budget(options.memory_limit)
        self.started = time.perf_counter()
        self.first, self.terms = 0, None

    def fingerprint(self) -> str:  # hashes the inputs: only needed to resume or to stop
        return checkpoint.job_fingerprint(self.model, self.inputs, self.options, self.seed)

    def stage(self, index, size, steps, previous, resume=None, temporal=None) -> _Stage:
        stage = _Stage(self, index, size, steps, previous, resume, temporal)
        tiling = stage.tiling
        log.info("stage %d/%d: %d px, %d steps%s", index + 1, len(self.plan), size, steps,
                 "" if tiling is None else
                 f", tiled ({tiling.tile} px tiles, {tiling.halo} px halo"
                 f"{', exact' if tiling.halo >= self.model.exact_halo else ''})")
        return stage

    def run_stage(self, stage: _Stage, done: int, end: int) -> int:
        """Runs ``stage`` from step ``done`` to ``end`` in chunks; returns ``end``."""
        chunk_steps = 1
        while done < end:
            boundary = min((done // self.callback_every + 1) * self.callback_every,
                           self.total_steps)
            n = min(chunk_steps, boundary - done, end - done)
            chunk_started = time.perf_counter()
            self.terms, ok = stage.chunk(n)
            if not ok:
                raise self._numerical_error(stage, done, n)
            done += n
            per_step = (time.perf_counter() - chunk_started) / n
            chunk_steps = max(1, min(int(0.5 / max(per_step, 1e-6)), self.callback_every))
            if self.callback is not None and done == boundary:
                self.callback(self._progress(stage, done))
            # Never at a stage's end: a checkpoint always lies inside a stage.
            if self.should_stop is not None and done < end and self.should_stop():
                raise Interrupted(f"stopped at step {done}/{self.total_steps}",
                                  stage.current(), done, self._checkpoint(stage, done))
        return done

    def _progress(self, stage, done) -> Progress:
        elapsed = time.perf_counter() - self.started
        rate = (done - self.first) / elapsed if elapsed > 0 else float("inf")
        return Progress(done, self.total_steps, self.terms, elapsed, rate,
                        (self.total_steps - done) / rate if rate > 0 else 0.0, stage.current,
                        stage.index + 1, len(self.plan), stage.size,
                        0 if stage.tiling is None else stage.tiling.tile)

    def _checkpoint(self, stage, done) -> dict:
        return {"image": stage.image.numpy(),
                "state": [v.numpy() for v in tf.nest.flatten(stage.state)],
                "step": done, "seed": self.seed, "fingerprint": self.fingerprint()}

    def _numerical_error(self, stage, done, n) -> NumericalError:
        error = NumericalError(
            f"the loss became {self.terms['total']} within steps {done + 1}..{done + n}: "
            f"lower --learning_rate (now {stage.optimizer.learning_rate:g}) or the loss "
            f"weights, or use --optimizer=lbfgs; the last finite image is kept")
        error.image, error.step = stage.current(), done
        return error


def check_run(options: RunOptions, callback_every, jit_compile) -> None:
    """Raises ConfigError for settings the runner cannot take."""
    if jit_compile and options.optimizer.strip().lower() != "adam":
        # TF 2.21's XLA aborts compiling the L-BFGS loop (RET_CHECK failure in
        # value_inference on MaxPoolGrad); Adam's loop compiles.
        raise ConfigError("--jit_compile works with --optimizer=adam only for now: XLA "
                          "fails on the L-BFGS loop in this TensorFlow")
    if int(callback_every) < 1:
        raise ConfigError(f"callback_every must be ≥ 1, got {callback_every}")
