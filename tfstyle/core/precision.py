"""Choosing the network's precision: ``auto`` picks bfloat16 where the hardware has it.

``mixed_bfloat16`` runs the VGG in bfloat16 (the losses and the image stay float32).
That pays only on hardware with native bfloat16 matrix units; elsewhere bfloat16 is
emulated, slower than float32 and less accurate. ``auto`` therefore resolves to:

* on a GPU (the first one TensorFlow sees): ``mixed_bfloat16`` for compute capability
  8.0 or higher (Ampere and later: bfloat16 tensor cores), else ``float32``;
* on a CPU: ``mixed_bfloat16`` if ``/proc/cpuinfo`` lists ``amx_bf16`` or
  ``avx512_bf16``, else ``float32`` (also where there is no ``/proc/cpuinfo``).

What bfloat16 changes in time and quality on a CPU with ``avx512_bf16``: BENCHMARKS.md,
"Quality and time at the default, bfloat16" against "..., float32".
"""

from __future__ import annotations

import logging

from tfstyle.core.features import DTYPES
from tfstyle.errors import ConfigError

AUTO = "auto"
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)

log = logging.getLogger("tfstyle")


def resolve_precision(precision: str) -> str:
    """The precision to build the network in: ``auto`` resolved for this machine.

    Args:
      precision: ``auto``, or one of ``features.DTYPES``, which is returned unchanged.

    Returns:
      ``mixed_bfloat16`` or ``float32`` for ``auto`` (see the module docstring; the
      choice and its reason are logged at INFO), else ``precision``.

    Raises:
      ConfigError: ``precision`` is neither ``auto`` nor a known dtype.
    """
    if precision != AUTO:
        if precision not in DTYPES:
            raise ConfigError(f"unknown precision {precision!r}: use {AUTO} (bfloat16 where "
                              f"the hardware has it) or one of {', '.join(DTYPES)}")
        return precision
    choice, reason = _auto_rule(_device_features())
    log.info("precision auto -> %s (%s)", choice, reason)
    return choice


def _auto_rule(device: dict) -> tuple[str, str]:
    """(precision, reason) for the probed device; pure, so the rule is testable anywhere."""
    if device["gpu"] is not None:
        capability = device["gpu_compute_capability"]
        if capability is None:
            return "float32", f"GPU {device['gpu']} reports no compute capability"
        shown = ".".join(map(str, capability))
        if tuple(capability) >= BF16_MIN_COMPUTE_CAPABILITY:
            return "mixed_bfloat16", f"GPU {device['gpu']} has compute capability {shown}"
        return "float32", (f"GPU {device['gpu']} has compute capability {shown}, below "
                           f"8.0: no bfloat16 tensor cores")
    flags = device["cpu_flags"]
    if flags is None:
        return "float32", "no GPU, and the CPU's flags are unknown (no /proc/cpuinfo)"
    found = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if found:
        return "mixed_bfloat16", f"CPU has {', '.join(found)}"
    return "float32", f"no GPU, and the CPU has neither {' nor '.join(BF16_CPU_FLAGS)}"


def _device_features() -> dict:
    """Reads what the auto rule looks at; the only function here that touches hardware,
    so that tests can replace it.

    Returns:
      ``{"gpu": name of the first GPU TensorFlow sees, or None; "gpu_compute_capability":
      its (major, minor), or None if there is no GPU or it reports none; "cpu_flags":
      frozenset of the ``flags`` in /proc/cpuinfo, or None where that file is missing
      (not Linux)}``.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    name = capability = None
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name") or gpus[0].name
        capability = details.get("compute_capability")
        capability = tuple(capability) if capability else None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu_flags = next((line.partition(":")[2].split() for line in f
                              if line.startswith("flags")), [])
        cpu_flags = frozenset(cpu_flags)
    except OSError:
        cpu_flags = None
    return {"gpu": name, "gpu_compute_capability": capability, "cpu_flags": cpu_flags}
