"""Requests built from the served-options table (``tfstyle.serving.served_options``).

The tests that send a whole request, or check one, take its options from the table's
rows here instead of spelling them out: a field added to ``options.FIELD_BOUNDS`` is
sent, checked and round-tripped by them with no test edit.
"""

from __future__ import annotations

import numpy as np

from tfstyle.options import RunOptions
from tfstyle.serving.served_options import OPTIONAL_IMAGES, SERVED_OPTIONS

# A value's type in TF Serving's JSON, by wire dtype: integer tokens for the integer
# inputs (json_tensor.cc wants them), numbers with a point or exponent for float32.
JSON_TYPES = {"int32": int, "int64": int, "float32": float, "string": str}


def option_values(options: RunOptions | None = None, **values) -> dict:
    """Every served option by name, in the table's order: ``options``' field (the
    ``RunOptions`` defaults where None; a None field as the row's ``unset``), or
    ``values``' where given. Python values, as ``RunOptions`` holds them."""
    unknown = set(values) - {row.name for row in SERVED_OPTIONS}
    assert not unknown, f"not served options: {sorted(unknown)}"
    options = RunOptions() if options is None else options
    out = {}
    for row in SERVED_OPTIONS:
        value = values[row.name] if row.name in values else getattr(options, row.name)
        out[row.name] = row.unset if value is None else value
    return out


def numpy_values(options: RunOptions | None = None, **values) -> dict:
    """``option_values`` as a session is fed them: numpy scalars of each row's dtype,
    UTF-8 bytes for a string."""
    by_name = {row.name: row for row in SERVED_OPTIONS}
    return {name: by_name[name].to_numpy(value)
            for name, value in option_values(options, **values).items()}


def json_values(options: RunOptions | None = None, **values) -> dict:
    """``option_values`` as a columnar REST request carries them (``JSON_TYPES``)."""
    types = {row.name: JSON_TYPES[row.dtype] for row in SERVED_OPTIONS}
    return {name: types[name](value)
            for name, value in option_values(options, **values).items()}


def not_sent_json() -> dict:
    """The optional images, not sent, as REST names them: every input must be."""
    return {name: {"b64": ""} for name in OPTIONAL_IMAGES}


def away_from_default(row):
    """A value ``row`` accepts other than its ``RunOptions`` default: a string field's
    first other choice, a number halfway from the default to the lower bound (or one
    above the default, where that is the bound)."""
    if row.allowed:
        return next(choice for choice in row.allowed if choice != row.run_default)
    lo, _ = row.bounds()
    default = row.default
    if row.dtype == "float32":
        value = (default + lo) / 2
        return value if value != default and (value != lo or not row.strict) else default + 1
    value = (default + lo) // 2
    return value if value != default else default + 1


def next_float32(value, toward):
    """The float32 next to ``value`` toward ``toward``; next to 0 the smallest normal
    one, since the graph's CPU kernels flush subnormals to 0."""
    if value == 0:
        return float(np.copysign(np.finfo(np.float32).tiny, toward))
    return float(np.nextafter(np.float32(value), np.float32(toward)))


def edges(row, wire=True):
    """(accepted, refused): each bound of ``row``, and the values just past it, as a
    request (``wire``) or ``RunOptions`` takes them."""
    if row.allowed:
        return list(row.allowed), ["x", row.allowed[0].upper()]
    lo, hi = row.bounds()
    if row.dtype == "float32":
        accepted = [next_float32(lo, np.inf) if row.strict else lo]
        refused = [lo if row.strict else next_float32(lo, -np.inf), float("nan"), np.inf]
        if hi is not None:
            accepted.append(hi)
            refused.append(next_float32(hi, np.inf))
        return accepted, refused
    accepted, refused = [lo, hi], [lo - 1, hi + 1]
    if wire and row.zero_means:
        accepted.append(0)
        refused = [value if value else -1 for value in refused]
    return accepted, refused
