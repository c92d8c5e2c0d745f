"""The options a served tfstyle model takes, each declared once.

A request to the exported model (``tfstyle.serving.export``) carries the two images and one
scalar per row of ``SERVED_OPTIONS``: its name (the signature's input name, and the
``RunOptions`` field it sets), its dtype on the wire, its default (``RunOptions``'
own) and the values it may take. The bounds are the field's own
(``options.FIELD_BOUNDS``, which ``RunOptions.validate`` checks); a row adds what the
wire needs. Built from these rows are the signature's inputs, their SignatureDef
defaults and in-graph checks (``tfstyle.serving.export``), the client's keyword arguments and
their checks (``tfstyle.serving.client``) and the request of ``tfstyle --server``
(``tfstyle.cli.remote``): a value is accepted or refused alike by all of them and by
``RunOptions.validate``.

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
from tfstyle.options import FIELD_BOUNDS, FieldBounds, RunOptions

__all__ = ["ServedOption", "SERVED_OPTIONS", "NAMES", "BY_NAME", "OPTIONAL_IMAGES",
           "request_values", "run_options"]

# The request's optional images, after ``content`` and ``style``: a start image, and a
# video frame's temporal target and its per-pixel weight (``tfstyle.serving.export``).
OPTIONAL_IMAGES = ("init_image", "temporal_target", "temporal_mask")

_RUN_DEFAULTS = RunOptions()
_INT_DTYPES = ("int32", "int64")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class ServedOption(FieldBounds):
    """One option of a served request: a ``RunOptions`` field's bounds
    (``options.FieldBounds``: its name, which is also the signature's input name, its
    dtype on the wire, the values it may take) and what the wire adds to them.

    zero_means: what 0 means on the wire, where ``lo`` is above it (size: the content's
      own size); ``RunOptions`` has no such value.
    unset: the wire value that stands for the field's None (seed: 0).
    note: why the values are limited on the wire, added to the client's refusal.
    """
    zero_means: str = ""
    unset: int | None = None
    note: str = ""

    @classmethod
    def of(cls, name: str, **wire) -> "ServedOption":
        """The row of the field ``name``: its bounds, and ``wire``'s fields."""
        return cls(**dataclasses.asdict(FIELD_BOUNDS[name]), **wire)

    @property
    def run_default(self):
        """The ``RunOptions`` default (None for seed: one is drawn)."""
        return getattr(_RUN_DEFAULTS, self.name)

    @property
    def default(self):
        """The wire default: the ``RunOptions`` default, ``unset`` for its None."""
        value = self.run_default
        return self.unset if value is None else value

    def to_numpy(self, value):
        """``value`` as a numpy scalar of the wire dtype (bytes for a string)."""
        if self.dtype == "string":
            return np.bytes_(value.encode())
        return np.dtype(self.dtype).type(value)

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


# What the wire adds to a field's bounds, where it adds anything.
_WIRE = {
    "size": dict(zero_means="keep the content's size"),
    # The seed only matters for init="noise"; a server has no None, 0 is as good as any.
    "seed": dict(unset=0),
    "init": dict(note="a start image is sent as the init_image input instead"),
}
# Every bounded field of RunOptions is served, in the signature's order.
SERVED_OPTIONS = tuple(ServedOption.of(name, **_WIRE.get(name, {})) for name in FIELD_BOUNDS)
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
    (``tfstyle.serving.graph_run``); the values are not validated here (the graph checks them)."""
    return dataclasses.replace(_RUN_DEFAULTS, **{row.name: values[row.name]
                                                 for row in SERVED_OPTIONS})
