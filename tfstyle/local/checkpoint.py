"""Checkpoints of an interrupted run: the image, the optimiser state, and what they belong to.

A checkpoint is one ``.npz`` file written atomically (temporary file, then rename). It
holds the optimisation variables exactly, so a resumed run continues with the very
numbers the interrupted one had and reaches the same image as a run never interrupted.
A fingerprint of the inputs and options guards against resuming a different job.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

import numpy as np

from tfstyle import atomic
from tfstyle.errors import ConfigError

FORMAT = "tfstyle-checkpoint-1"


def fingerprint(*parts) -> str:
    """A hex digest of arrays (by dtype, shape and bytes) and JSON-able values."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def default_path(output) -> pathlib.Path:
    """Where the CLI keeps the checkpoint of a run writing ``output``."""
    return pathlib.Path(f"{os.fspath(output)}.ckpt.npz")


def save_checkpoint(path, image: np.ndarray, state: list, step: int, seed: int,
                    fingerprint: str) -> pathlib.Path:
    """Writes a checkpoint atomically.

    Args:
      path: the ``.npz`` file to write.
      image: the optimisation variable, float32 (1, H, W, 3) in [0, 255].
      state: the optimiser state, a flat list of arrays.
      step: steps done; seed: the run's seed; fingerprint: the job's, see
        ``fingerprint()``. (The keywords are those of ``Interrupted.checkpoint``.)
    """
    path = pathlib.Path(path)
    arrays = {f"state_{i}": np.asarray(a) for i, a in enumerate(state)}
    meta = json.dumps({"format": FORMAT, "step": int(step), "seed": int(seed),
                       "fingerprint": fingerprint, "state_size": len(state)})
    with atomic.replacing(path) as f:
        np.savez(f, image=np.asarray(image), meta=np.array(meta), **arrays)
    return path


def load_checkpoint(path) -> dict:
    """Reads a checkpoint: {"image", "state" (list), "step", "seed", "fingerprint"}.

    Raises:
      ConfigError: no such file, or not a tfstyle checkpoint.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}: run without --resume to start afresh")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            state = [data[f"state_{i}"] for i in range(meta["state_size"])]
            return {"image": data["image"], "state": state, "step": meta["step"],
                    "seed": meta["seed"], "fingerprint": meta["fingerprint"]}
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{path} is not a readable tfstyle checkpoint ({e}): delete it and "
                          f"run without --resume") from e


# ----------------------------------------------------------------------------- resume
# What a run does with a checkpoint: check that it is this job's, and take the image and
# optimiser state it holds as the start of the stage it was stopped in.


def job_fingerprint(model, inputs, options, seed) -> str:
    """The fingerprint of a job: its decoded inputs, the options that shape its result,
    the seed and the feature model. How a stage is evaluated (tiled or not) is not the
    job: a run resumes on a machine with other free memory."""
    import dataclasses

    import tensorflow as tf

    from tfstyle import image_io

    settings = dataclasses.asdict(options)
    settings.update(steps=None, seed=seed, memory_limit=None, tile_size=None,
                    tile_halo=None)
    if len(options.stages()) > 1 and options.stage_steps is None:
        settings.update(steps=options.steps)  # the stage boundaries follow from it
    # The share shapes only the starts that mix in the painting; elsewhere it is left out,
    # so that older fingerprints hold.
    if options.init not in ("blend", "texture"):
        del settings["init_blend"]
    described = {"layers": model.layers, "content": model.content_layers,
                 "style": model.style_layers, "layer_weights": model.style_layer_weights,
                 "model": [w.shape for w in model.model.weights],
                 "weights": float(sum(float(tf.reduce_sum(w))
                                      for w in model.model.weights[:2]))}
    if any(model.content_edge_powers):  # absent at the default: older fingerprints hold
        described["content_edge_powers"] = model.content_edge_powers
    arrays = [image_io.to_array(inputs.content)]
    arrays += [image_io.to_array(s) for s in inputs.styles]
    arrays += [np.asarray(m) for m in inputs.masks]
    if inputs.init is not None:
        arrays.append(image_io.to_array(inputs.init))
    return fingerprint(*arrays, settings, described)


def check_resume(checkpoint: dict, job: str, total_steps: int) -> None:
    """Raises ConfigError unless ``checkpoint`` belongs to the job ``job`` (its
    fingerprint) of ``total_steps`` steps."""
    if checkpoint["fingerprint"] != job:
        raise ConfigError("the checkpoint belongs to another job (other images, size, "
                          "weights or options): rerun the interrupted command "
                          "unchanged with --resume, or drop --resume")
    if checkpoint["step"] > total_steps:
        raise ConfigError(f"the checkpoint is at step {checkpoint['step']}, past --steps="
                          f"{total_steps}")


def resumed_start(checkpoint: dict, optimizer, shape):
    """(image, optimiser state) as tensors from ``checkpoint``, for a stage whose image
    is of ``shape`` (1, H, W, 3); ConfigError if they do not fit it."""
    import tensorflow as tf

    start = tf.constant(checkpoint["image"])
    if start.shape != shape:
        raise ConfigError("the checkpoint's image does not fit this job's stage sizes: "
                          "drop --resume")
    fresh = optimizer.init(start)
    state = [tf.constant(v) for v in checkpoint["state"]]
    if [s.shape for s in state] != [s.shape for s in tf.nest.flatten(fresh)]:
        raise ConfigError("the checkpoint's optimiser state does not fit this version of "
                          "tfstyle: drop --resume")
    return start, tf.nest.pack_sequence_as(fresh, state)
