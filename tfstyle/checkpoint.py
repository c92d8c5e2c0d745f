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
import tempfile

import numpy as np

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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, image=np.asarray(image), meta=np.array(meta), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
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
