"""How much memory a step needs, how much there is, and when to tile.

A step's memory is the feature model's activations, kept for the backward pass, plus
a few image-sized buffers and the optimiser's state (L-BFGS keeps ``history`` pairs of
image-sized vectors). The activations dominate and grow with the pixel count; past a
budget, a stage runs tiled (``tfstyle.core.tiling``), whose activations are those of one
crop. The estimate is deliberately simple (floats per pixel, times a factor fitted to
peak RSS measured on this project's CPUs: BENCHMARKS.md, "tiled steps", and another for
TensorFlow's BFC pool, which tfstyle picks: "Allocator"), and errs high.

A stage's start, which computes its targets, must keep no more than its step, for the
estimate of the step is the stage's plan: so the content targets' maps are written in
place tile by tile (``tiling.TiledLoss.photo_features``) and scaled in place
(``losses.StyleLoss.content_targets``), and the stage before drops its own first
(``runner.run``). Made as they were before, they were three whole maps at once beside
the stage before's, and a 4096 px run planned at 5 GiB peaked at 6.8 GiB, with oneDNN's
pool besides (``tfstyle.allocator``; BENCHMARKS.md, "Print"). A tiled step adds each
crop's gradient into the image's in place (``tiling.TiledLoss.value_and_gradient``).
``tests/test_memory.py`` holds a tiled run to the estimate, per pixel.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import subprocess

from tfstyle import allocator
from tfstyle.core.features import layer_names, layer_stride
from tfstyle.errors import ConfigError

log = logging.getLogger("tfstyle")

# Bytes per activation float kept through a step, per activation float of the forward
# pass: the forward maps, their ReLU masks and pooling indices for the backward pass,
# and the backward's transient gradients. Fitted to peak RSS (BENCHMARKS.md).
ACTIVATION_FACTOR = 2.2
# The same for a tile's crop: twice as much per pixel, fitted to tiled peaks at 2048 and
# 4096 px (BENCHMARKS.md, "tiled steps"). Pass two keeps a crop's forward maps for its
# backward, and the owned slices, style sums and the padded gradient come on top.
TILED_ACTIVATION_FACTOR = 4.3
# Under TensorFlow's BFC pool (``tfstyle.allocator``, the default), a further factor on
# the activations: the pool keeps every freed chunk and grows in doubling regions, so
# more of the heap ends up resident than under malloc, which unmaps each large block.
# Fitted to the larger of the ratios, peak RSS to the activations' estimate, of a
# 2048 px VGG16 step untiled and in 512 px tiles (BENCHMARKS.md, "Allocator", the
# 2048 px note; the untiled step's is the larger).
POOLED_FACTOR = 1.75
# Image-sized float32 RGB buffers besides the optimiser's history: image, gradient,
# candidate, L-BFGS's accepted image, gradient and direction, the tiled gradient's sum,
# and a chunk's new image and state beside the variables they replace. 10 were too few:
# at 4096 px these buffers are a large part of a tiled step, and the print went over
# its limit (BENCHMARKS.md, "Allocator", the last note).
IMAGE_BUFFERS = 12
# The process before any image: TensorFlow, the feature model's weights.
BASE_BYTES = 900 * 2 ** 20
# L-BFGS's curvature pairs may take at most this much; larger stages keep fewer pairs.
HISTORY_BYTES = 1 << 30
# Pairs that a stage's steps cannot fill are dropped where they would hold more than
# this (1 GB at a 2-step 4096 px stage); below it they are kept, so that the stages share
# one trace of the step: another trace costs seconds, which a short stage (a 256 px
# preview's last) paid for nothing (BENCHMARKS.md, "Preview").
UNFILLED_PAIRS_BYTES = 64 << 20
# The fraction of the free memory a run budgets by default.
DEFAULT_FRACTION = 0.7


def activation_floats_per_pixel(layers, backbone: str = "vgg19") -> float:
    """Floats of the forward pass per input pixel, up to the deepest of ``layers``."""
    wanted = set(layers)
    total, area = 0.0, 1.0
    for name in layer_names(backbone):
        if not wanted:
            break
        if name.endswith("_pool"):
            area *= 4
        total += _channels(name) / area
        wanted.discard(name)
    return total


def lbfgs_pair_bytes(pixels: int) -> int:
    """Bytes of one L-BFGS curvature pair (s and y, float32 RGB) at ``pixels`` pixels."""
    return 2 * 3 * 4 * pixels


def lbfgs_history(pixels: int, history: int) -> int:
    """L-BFGS's history at a stage of ``pixels`` pixels: ``history``, or fewer where
    its pairs would take more than ``HISTORY_BYTES`` (at least 3)."""
    pair_bytes = lbfgs_pair_bytes(pixels)
    return int(max(3, min(history, HISTORY_BYTES // pair_bytes)))


def stage_history(pixels: int, history: int, steps: int | None = None) -> int:
    """L-BFGS's history at a stage of ``pixels`` pixels and ``steps`` steps:
    ``lbfgs_history``'s, cut to the ``steps - 1`` pairs (at least 1) that the steps can
    store where the pairs they cannot fill would hold more than
    ``UNFILLED_PAIRS_BYTES``. The cut changes no step (the pairs are never filled) but
    changes the optimiser's state, and so costs the stage a trace of its own."""
    kept = lbfgs_history(pixels, history)
    if steps is not None:
        fillable = max(1, steps - 1)
        if (kept - fillable) * lbfgs_pair_bytes(pixels) > UNFILLED_PAIRS_BYTES:
            kept = fillable
    return kept


def target_floats_per_pixel(content_layers) -> float:
    """Floats per input pixel of the content targets: the content layers' whole maps,
    which a stage keeps, tiled or not, once (module docstring)."""
    return sum(_channels(name) / layer_stride(name) ** 2 for name in content_layers)


def _channels(name: str) -> int:
    """Channels of a VGG layer ``blockB_...``: 64 doubling per block, at most 512."""
    return min(64 * 2 ** (int(name[5]) - 1), 512)


def step_bytes(height: int, width: int, layers, backbone: str, precision: str,
               history: int = 0, crop: int | None = None, content_layers=(),
               pooled: bool | None = None) -> int:
    """Estimated peak bytes of a run's step on an image of ``height`` × ``width``:
    untiled, or tiled with square crops of side ``crop``; ``content_layers`` (a subset
    of ``layers``) for the content targets' maps, which tiles do not bound; ``pooled``:
    whether TensorFlow's BFC pool serves the tensors (``POOLED_FACTOR``), by default
    whether this process asks for it (``allocator.bfc_requested()``)."""
    pixels = height * width
    act_bytes = 2 if "bfloat16" in precision else 8 if precision == "float64" else 4
    if crop is None:
        act_pixels, factor = pixels, ACTIVATION_FACTOR
    else:
        act_pixels, factor = min(pixels, crop * crop), TILED_ACTIVATION_FACTOR
    if allocator.bfc_requested() if pooled is None else pooled:
        factor *= POOLED_FACTOR
    activations = factor * act_bytes * activation_floats_per_pixel(layers, backbone) * act_pixels
    buffers = 12 * pixels * (IMAGE_BUFFERS + 2 * history)
    targets = 4 * pixels * target_floats_per_pixel(content_layers)
    return int(BASE_BYTES + activations + buffers + targets)


def plan_tiling(height: int, width: int, layers, backbone: str, precision: str,
                history: int, budget: int, halo: int, align: int = 16, content_layers=(),
                pooled: bool | None = None):
    """The tile side for a stage of ``height`` × ``width``: None where the untiled step
    fits ``budget`` bytes, else the largest multiple of ``align`` whose crops (tile plus
    a halo on each side) fit. Raises ConfigError when not even the smallest tile fits.
    ``pooled``: as ``step_bytes``."""
    def estimate(crop=None):
        return step_bytes(height, width, layers, backbone, precision, history, crop,
                          content_layers, pooled)

    if estimate() <= budget:
        return None
    tile = align
    while tile + align < max(height, width) and estimate(tile + align + 2 * halo) <= budget:
        tile += align
    if estimate(tile + 2 * halo) > budget:
        need = estimate(align + 2 * halo)
        raise ConfigError(f"a {width}x{height} stage needs about {need / 2**30:.1f} GiB even "
                          f"tiled, above --memory_limit={budget / 2**30:.1f} GiB: raise "
                          f"--memory_limit or lower --size")
    return tile


def bound_needs_malloc(limit: int, size: int, layers, backbone: str, precision: str,
                       history: int, content_layers=()) -> bool:
    """Whether a memory budget of ``limit`` bytes (> 0) on a run of longest side ``size``
    px needs TensorFlow's tensors from malloc rather than its BFC pool: where the run's
    largest stage (at most a ``size`` square) would pass ``limit`` untiled in the pool,
    the run must tile to keep it, and the pool's peak over a tiled, multi-stage run is
    not one the estimate bounds (``tfstyle.allocator`` says why). ``history``: L-BFGS's
    pairs (``lbfgs_history`` caps them here as a stage would); the rest as
    ``step_bytes``. Pure arithmetic, so that a program can decide before TensorFlow's
    first op fixes its allocator."""
    history = lbfgs_history(size * size, history) if history else 0
    return step_bytes(size, size, layers, backbone, precision, history,
                      content_layers=content_layers, pooled=True) > limit


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Makes glibc's malloc map every block over ``threshold`` bytes on its own, so that
    freeing it returns it to the system at once. Returns whether it could (glibc).

    Why: glibc serves blocks under its mmap threshold, which rises after large frees up
    to 32 MiB, from heaps that it seldom trims. A tiled step allocates and frees many
    blocks of a few MiB (a tile's feature maps), and the freed ones stayed in the
    resident set: a fixed threshold lowers a tiled step's peak RSS at the same speed
    (BENCHMARKS.md, "Tiled steps", "What changed"). It changes the
    whole process's allocator, so the CLI calls it, and only where TensorFlow's tensors
    come from malloc (``TF_CPU_ALLOCATOR_USE_BFC=0``; ``tfstyle.allocator``); library
    users decide for theirs.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)) and
                    libc.mallopt(_M_TRIM_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):  # not glibc
        return False


_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_memory(text) -> int:
    """Bytes from ``6G``, ``512M``, ``1.5g``, ``2e9`` or a number of bytes; 0 = auto."""
    if isinstance(text, (int, float)):
        return int(text)
    m = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not m:
        raise ConfigError(f"memory_limit must be a size like 6G or 512M (0 = automatic), "
                          f"got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def run_budget(memory_limit) -> int:
    """The bytes a run may use: ``memory_limit`` (see ``parse_memory``), or where that
    is 0, ``default_budget()``."""
    return parse_memory(memory_limit) or default_budget()


def default_budget() -> int:
    """``DEFAULT_FRACTION`` of the memory a step can use: the GPU's, where TensorFlow
    has one, else the RAM available now."""
    gpu = _gpu_memory()
    if gpu:
        return int(DEFAULT_FRACTION * gpu)
    return int(DEFAULT_FRACTION * available_ram())


def available_ram() -> int:
    """MemAvailable from /proc/meminfo (Linux), else the physical memory size."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gpu_memory() -> int:
    """The first visible GPU's total memory in bytes, or 0 without one."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return 0
    try:  # TensorFlow reports no total; the driver does.
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,"
                              "nounits", "-i", "0"], capture_output=True, text=True, timeout=10)
        return int(out.stdout.split()[0]) * 2**20
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        log.warning("cannot read the GPU's memory size (nvidia-smi): budgeting 8 GiB; "
                    "set --memory_limit")
        return 8 * 2**30


def stage_setup(model, options, optimizer, height: int, width: int, budget: int | None = None,
                steps: int | None = None):
    """(optimizer, tiling) for a stage of ``height`` × ``width`` px of ``model``
    (a ``core.StyleModel``): tiled where ``options.tile_size`` says so or the untiled
    step would pass ``budget`` bytes (default ``run_budget(options.memory_limit)``);
    L-BFGS with a history short enough to fit, and where it matters no longer than the
    ``steps - 1`` pairs a stage of ``steps`` steps can store (the same steps, less
    memory; ``stage_history``). Nothing changes for stages that fit."""
    from tfstyle.core.optimizers import LBFGS
    from tfstyle.core.tiling import Tiling

    if isinstance(optimizer, LBFGS):
        history = stage_history(height * width, optimizer.history, steps)
        if history != optimizer.history:
            optimizer = LBFGS(history, optimizer.learning_rate, optimizer.first_step,
                              optimizer.armijo)
    history = getattr(optimizer, "history", 1)
    halo = stage_halo(model, options.tile_halo)
    if options.tile_size:
        tile = options.tile_size if max(height, width) > options.tile_size else None
    else:
        budget = budget or run_budget(options.memory_limit)
        tile = plan_tiling(height, width, model.layers, model.backbone, model.precision,
                           history, budget, halo, model.min_side, model.content_layers)
    return optimizer, (None if tile is None else Tiling(tile, halo))


def stage_halo(model, tile_halo: int = -1) -> int:
    """The halo of a tiled stage, px: ``tile_halo``, or ``model.default_halo`` where it
    is -1 (``RunOptions.tile_halo``)."""
    return int(tile_halo) if tile_halo >= 0 else model.default_halo
