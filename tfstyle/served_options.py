"""The options a served tfstyle model takes, each declared once.

A request to the exported model (``tfstyle.export``) carries the two images and one
scalar per row of ``SERVED_OPTIONS``: its name (the signature's input name, and the
``RunOptions`` field it sets), its dtype on the wire, its default (``RunOptions``'
own) and the values it may take. Built from these rows are the signature's inputs, their
SignatureDef defaults and in-graph checks (``tfstyle.export``), the client's keyword
arguments and their checks (``tfstyle.client``), the request of ``tfstyle --server``
(``tfstyle.remote``), and ``RunOptions.validate``'s checks of the same fields: a value
is accepted or refused alike by all of them.

These are the bounds that hold for every export. An export narrows ``steps`` and
``size`` further to its own limits (``max_steps``, ``min_side``..``max_side``), which
only the server knows and checks.

No TensorFlow here: the client imports this module.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from tfstyle.errors import ConfigError
from tfstyle.options import (INITS, MAX_STEPS, PRESERVE_COLORS, STYLE_LOSSES, RunOptions,
                             _check_float, _check_int)

__all__ = ["ServedOption", "SERVED_OPTIONS", "NAMES", "BY_NAME", "OPTIONAL_IMAGES",
           "request_values", "run_options"]

# The request's optional images, after ``content`` and ``style``: a start image, and a
# video frame's temporal target and its per-pixel weight (``tfstyle.export``).
OPTIONAL_IMAGES = ("init_image", "temporal_target", "temporal_mask")

_RUN_DEFAULTS = RunOptions()
_INT_DTYPES = ("int32", "int64")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class ServedOption:
    """One option of a served request.

    name: the signature's input name, and the name of the ``RunOptions`` field it sets
      (``request_values`` and ``run_options`` map one to the other).
    dtype: its dtype on the wire: ``int32``, ``int64``, ``float32`` or ``string``.
    lo, hi: the bounds of a number, both allowed; None: no bound but the dtype's. A
      float option's values must also be finite.
    strict: ``lo`` itself is refused (style_scale > 0).
    allowed: the values of a string option.
    zero_means: what 0 means on the wire, where ``lo`` is above it (size: the content's
      own size); ``RunOptions`` has no such value.
    unset: the wire value that stands for the field's None (seed: 0).
    range_words: the bounds in words, where their ends have a meaning (style_strength).
    note: why the values are limited on the wire, added to the client's refusal.
    """
    name: str
    dtype: str
    lo: float | None = None
    hi: float | None = None
    strict: bool = False
    allowed: tuple = ()
    zero_means: str = ""
    unset: int | None = None
    range_words: str = ""
    note: str = ""

    @property
    def run_default(self):
        """The ``RunOptions`` default (None for seed: one is drawn)."""
        return getattr(_RUN_DEFAULTS, self.name)

    @property
    def default(self):
        """The wire default: the ``RunOptions`` default, ``unset`` for its None."""
        value = self.run_default
        return self.unset if value is None else value

    def bounds(self) -> tuple:
        """(lo, hi), an integer option's open ends filled in with its dtype's limits."""
        if self.dtype not in _INT_DTYPES:
            return self.lo, self.hi
        info = np.iinfo(self.dtype)
        return (info.min if self.lo is None else self.lo,
                info.max if self.hi is None else self.hi)

    def to_numpy(self, value):
        """``value`` as a numpy scalar of the wire dtype (bytes for a string)."""
        if self.dtype == "string":
            return np.bytes_(value.encode())
        return np.dtype(self.dtype).type(value)

    def check(self, value):
        """Returns ``value`` if ``RunOptions`` accepts it for this field, else raises
        ConfigError in ``RunOptions.validate``'s words."""
        if self.allowed:
            if not isinstance(value, str) or value not in self.allowed:
                raise ConfigError(f"{self.name} must be one of {', '.join(self.allowed)}, "
                                  f"got {value!r}")
        elif self.dtype in _INT_DTYPES:
            _check_int(self.name, value, *self.bounds())
        else:
            _check_float(self.name, value, self.lo, self.strict)
            if self.hi is not None and float(value) > self.hi:
                words = self.range_words or f"between {self.lo:g} and {self.hi:g}"
                raise ConfigError(f"{self.name} must be {words}, got {value}")
        return value

    def wire_value(self, value):
        """``value`` as a request carries it: an int, a float or UTF-8 bytes.

        Raises:
          ConfigError: a value of the wrong type, outside the dtype or the bounds; the
            server would refuse it (or could not even read it).
        """
        try:
            if self.allowed:
                return self.check(value).encode()
            if self.dtype in _INT_DTYPES:
                return self._wire_int(value)
            return self._wire_float(value)
        except ConfigError as e:
            if not self.note:
                raise
            raise ConfigError(f"{e} ({self.note})") from None

    def _wire_int(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"{self.name} must be an integer, got {value!r}")
        value = int(value)
        info = np.iinfo(self.dtype)
        if not info.min <= value <= info.max:
            raise ConfigError(f"{self.name} = {value} does not fit the model's {self.dtype} "
                              f"input ({info.min}..{info.max})")
        lo, hi = self.bounds()
        if not (lo <= value <= hi or value == 0 and self.zero_means):
            zero = f"0 ({self.zero_means}) or " if self.zero_means else ""
            raise ConfigError(f"{self.name} must be {zero}between {lo} and {hi}, got {value}")
        return value

    def _wire_float(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{self.name} must be a number, got {value!r}")
        value = float(value)
        if abs(value) > _FLOAT32_MAX:
            raise ConfigError(f"{self.name} must be a finite float32 number, got {value}")
        # Checked as the server reads it: a bound is a float32, and so is the value.
        self.check(float(np.float32(value)))
        return value


SERVED_OPTIONS = (
    ServedOption("steps", "int32", lo=0, hi=MAX_STEPS),
    ServedOption("content_weight", "float32", lo=0.0),
    ServedOption("style_weight", "float32", lo=0.0),
    ServedOption("tv_weight", "float32", lo=0.0),
    ServedOption("size", "int32", lo=1, hi=16384, zero_means="keep the content's size"),
    # The seed only matters for init="noise"; a server has no None, 0 is as good as any.
    ServedOption("seed", "int64", lo=0, unset=0),
    ServedOption("init", "string", allowed=INITS,
                 note="a start image is sent as the init_image input instead"),
    ServedOption("init_blend", "float32", lo=0.0, hi=1.0,
                 range_words="between 0 (the photo) and 1 (the painting)"),
    ServedOption("style_scale", "float32", lo=0.0, strict=True),
    ServedOption("preserve_colors", "string", allowed=PRESERVE_COLORS),
    ServedOption("style_loss", "string", allowed=STYLE_LOSSES),
    ServedOption("stage_size", "int32", lo=0, hi=16384),
    ServedOption("stage_factor", "float32", lo=1.0, strict=True),
    ServedOption("stage_detail", "float32", lo=0.0, hi=1.0),
    ServedOption("style_strength", "float32", lo=0.0, hi=1.0,
                 range_words="between 0 (the photo) and 1 (the most style)"),
    # Only weighs where a request sends a temporal target and mask (a video frame).
    ServedOption("temporal_weight", "float32", lo=0.0),
)
NAMES = tuple(row.name for row in SERVED_OPTIONS)
BY_NAME = {row.name: row for row in SERVED_OPTIONS}


def request_values(options: RunOptions, seed: int | None = None) -> dict:
    """The served options of a request, by name, from validated ``RunOptions``: each
    row's field, the seed replaced by ``seed`` where given."""
    values = {row.name: getattr(options, row.name) for row in SERVED_OPTIONS}
    if seed is not None:
        values["seed"] = seed
    return values


def run_options(values: dict) -> RunOptions:
    """The other way: a request's options (``values``: name -> value for every row, in
    the exported graph scalar tensors) as the ``RunOptions`` the library runs, each
    row's field set to its value and the rest at their defaults. So the graph builds
    its loss, schedule and start from the very fields the library reads
    (``tfstyle.graph_run``); the values are not validated here (the graph checks them)."""
    return dataclasses.replace(_RUN_DEFAULTS, **{row.name: values[row.name]
                                                 for row in SERVED_OPTIONS})
