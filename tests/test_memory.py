"""The memory planner's estimate (tfstyle.local.memory.step_bytes) against what a tiled run
really keeps alive: a --memory_limit is a promise only while the estimate covers it."""

import os
import pathlib
import subprocess
import sys

import pytest

# A tiled run of two stages (the first as the start of the second, as in every print)
# at two sizes, in one process, with TensorFlow's tensors from malloc as in the CLI's
# bounded runs (tfstyle.allocator, memory.return_freed_memory), so that freed memory
# leaves the resident set. Each run's growth of the peak RSS over the RSS before it;
# the first traces and is not counted. The network is a stand-in with VGG's
# default layers' shapes (channels, strides, rectified) at a fraction of its cost: the
# memory under test is the image-sized kind, which VGG's compute would otherwise bury
# under a tile's activations at any size a test can afford.
_RUNS = """
import ctypes, sys
sys.path.insert(0, {repo!r})
from tfstyle.local import memory
memory.return_freed_memory()
import keras
import numpy as np
import tensorflow as tf
# One op at a time: see the test's docstring.
tf.config.threading.set_inter_op_parallelism_threads(1)
from tfstyle import RunOptions, Stylizer
from tfstyle.core.optimizers import make_optimizer
from tfstyle.core.features import layer_stride

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) << 10

model = Stylizer(weights=None, precision="float32")
image = keras.Input((None, None, 3))
model.model = keras.Model(image, [
    keras.layers.Conv2D(out.shape[-1], 1, activation="relu")(
        keras.layers.AveragePooling2D(layer_stride(name))(image))
    for name, out in zip(model.layers, model.model.outputs)])
rng = np.random.default_rng(0)
libc = ctypes.CDLL("libc.so.6")

def options(height, width):
    side = max(height, width)
    return RunOptions(size=side, stage_size=side // 2, stage_steps=(0, 1), optimizer="adam",
                      tile_size=128, tile_halo=0, seed=0)

def grown(height, width):
    content = rng.integers(0, 256, (height, width, 3), np.uint8)
    libc.malloc_trim(0)  # the heap's free pages, which the run would reuse unseen
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
    before = status("VmRSS")
    model.stylize(content, content[::-1], options(height, width))
    return status("VmHWM") - before

def estimate(height, width):
    run = options(height, width)
    optimizer, tiling = memory.stage_setup(model, run, make_optimizer(run), height, width, steps=1)
    return memory.step_bytes(height, width, model.layers, model.backbone, model.precision,
                             getattr(optimizer, "history", 1), tiling.tile + 2 * tiling.halo,
                             model.content_layers, pooled=False)

sizes = {sizes!r}
grown(*sizes[0])
print(*(grown(*s) for s in sizes), *(estimate(*s) for s in sizes))
"""

SMALL, LARGE = (256, 384), (1024, 1536)


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="needs Linux's /proc/self/clear_refs to reset the peak RSS")
def test_a_tiled_runs_memory_per_pixel_stays_within_the_plan():
    """What a larger image adds to a tiled run's peak, per pixel, against what the
    estimate adds: the tile's activations and TensorFlow's own memory are the same at
    both sizes and cancel, so the difference is the image-sized memory: the stage's
    content targets, its image buffers and optimiser state, the stage before's
    leftovers and whatever the targets' computation holds at once. Adam's state is two
    images at any size, so one trace serves both runs (L-BFGS keeps ten pairs at the
    smaller size and one at the larger: memory.stage_history).

    The run executes one op at a time (one inter-op thread): TensorFlow's default
    runs independent ops at once, and which transient buffers then overlap changes
    from run to run: 314 to 333 bytes per pixel in six runs of this code on 2 loaded
    cores, against 293 to 297 in four with one thread. The test is about what the
    code keeps alive, which one thread measures to a few bytes; the overlap is the
    real runs' own, which the whole print's peak checks (BENCHMARKS.md, "Print").

    Measured (2 shared cores, one thread): before the content targets were made in
    place and the stage before's dropped, 378 and 382 bytes per pixel against 328
    planned; since, 293 to 297. So the bound is kept with 30 bytes per pixel to spare,
    ten times the spread, and the old code fails it by 50."""
    repo = str(pathlib.Path(__file__).resolve().parents[1])
    # malloc, as allocator.keep_malloc asks for it (this process's import of tfstyle
    # asked for BFC).
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CPU_ALLOCATOR_USE_BFC="0",
               TF_ONEDNN_USE_SYSTEM_ALLOCATOR="1")
    out = subprocess.run([sys.executable, "-c", _RUNS.format(repo=repo, sizes=[SMALL, LARGE])],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_small, grown_large, estimate_small, estimate_large = map(
        int, out.stdout.split()[-4:])
    pixels = LARGE[0] * LARGE[1] - SMALL[0] * SMALL[1]
    real, planned = (grown_large - grown_small) / pixels, (estimate_large - estimate_small) / pixels
    assert real <= planned, (
        f"a tiled run keeps {real:.0f} bytes per pixel alive, the planner budgets "
        f"{planned:.0f} (memory.step_bytes): count the new image-sized memory in the "
        f"estimate, or keep it from being alive at once (peak RSS grew by "
        f"{grown_small >> 20} and {grown_large >> 20} MiB at {SMALL} and {LARGE})")
