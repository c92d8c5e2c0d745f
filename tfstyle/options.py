"""The options of one style-transfer run, their defaults, and their validation.

One place for both, so that the Python API, the CLI and the export accept and refuse
the same things with the same words. Everything is checked before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os

from tfstyle.errors import ConfigError

# The paper's layers and per-layer weights (w_l = 1/5 = 0.2).
DEFAULT_CONTENT_LAYERS = ("conv4_2",)
DEFAULT_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
INITS = ("content", "noise", "style")
MAX_STEPS = 100_000


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Per-run settings (the feature model's settings belong to ``Stylizer``).

    size: longest side of the output in pixels; the content image is resized to it.
    steps: optimisation steps (one loss and gradient evaluation each), ≥ 0.
    optimizer: ``lbfgs`` (default; converges in far fewer steps) or ``adam``.
    learning_rate: Adam's step in pixels (0..255), or L-BFGS's multiplier of its
      quasi-Newton step; None takes the optimiser's default.
    content_weight, style_weight: α and β of the paper (default α/β = 1e-3).
    tv_weight: γ, total variation on the [0, 1] image, to suppress high-frequency noise.
    init: ``content``, ``noise``, ``style``, or the path of an image to start from.
    seed: makes the noise (and so the run) reproducible; None draws one and reports it.
    style_scale: the style image is resized to style_scale × the output's longest side.
    """
    size: int = 512
    steps: int = 500
    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    content_weight: float = 1.0
    style_weight: float = 1e3
    tv_weight: float = 100.0
    init: str = "content"
    seed: int | None = None
    style_scale: float = 1.0

    def validate(self) -> "RunOptions":
        """Returns self if every value is usable, else raises ConfigError naming it."""
        _check_int("size", self.size, 1, 16384)
        _check_int("steps", self.steps, 0, MAX_STEPS)
        if self.optimizer.strip().lower() not in ("adam", "lbfgs", "l-bfgs"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}: use lbfgs or adam")
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_float(name, getattr(self, name), minimum=0.0)
        if self.learning_rate is not None:
            _check_float("learning_rate", self.learning_rate, minimum=0.0, strict=True)
        _check_float("style_scale", self.style_scale, minimum=0.0, strict=True)
        if self.content_weight == 0 and self.style_weight == 0 and self.tv_weight == 0:
            raise ConfigError("all loss weights are 0: nothing to optimise; set --style_weight "
                              "or --content_weight above 0")
        if self.init not in INITS and not os.path.isfile(self.init):
            raise ConfigError(f"init {self.init!r} is neither one of {', '.join(INITS)} nor an "
                              f"existing image file")
        if self.seed is not None:
            _check_int("seed", self.seed, 0, 2**63 - 1)
        return self


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")


def _check_float(name, value, minimum, strict=False):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    if number < minimum or (strict and number == minimum):
        relation = ">" if strict else "≥"
        raise ConfigError(f"{name} must be {relation} {minimum:g}, got {value}")
