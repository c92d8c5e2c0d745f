"""Tiled evaluation (tfstyle.core.tiling): exact against the untiled loss and gradient."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import stop_after, synthetic_image
from tfstyle import RunOptions
from tfstyle.core.features import layer_names
from tfstyle.core.tiling import TiledLoss, Tiling, default_halo, receptive_halo

# Large enough that crops are cut out of the image at a tile's every side (some tile's).
HEIGHT, WIDTH = 240, 208
TILE = 64


def untiled(stylizer, loss, image, targets):
    with tf.GradientTape() as tape:
        tape.watch(image)
        content, style = stylizer.features(image)
        terms = loss(image, content, style, targets)
    return terms, tape.gradient(terms.total, image)


def problem(stylizer, style_loss, masked, edge_powers=None):
    options = RunOptions(style_loss=style_loss)
    loss = stylizer.make_loss(options)
    if edge_powers is not None:  # the content term weighted on the photo's edges
        loss.content_edge_powers = edge_powers
    content = tf.constant(synthetic_image(1, HEIGHT, WIDTH)[None], tf.float32)
    style = tf.constant(synthetic_image(2, 150, 170)[None], tf.float32)
    # A moved, noisy content: the gradient is far from zero everywhere.
    rng = np.random.default_rng(3)
    image = tf.constant(np.clip(content.numpy() + rng.normal(0, 30, content.shape), 0, 255),
                        tf.float32)
    masks = ()
    if masked:
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
        masks = (tf.constant(((x + 0.6 * y) < 190).astype(np.float32)[None, :, :, None]),)
    targets = stylizer.compute_targets(loss, content, style, None, masks)
    return loss, content, style, image, masks, targets


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_receptive_halo_of_vgg_layers():
    # VGG19 conv5_1: 16q − 70 .. 16q + 85 (a 156 px field), so 70 px either side.
    assert receptive_halo(["block5_conv1"], "vgg19") == 70
    assert receptive_halo(["block4_conv2"], "vgg19") == 38
    assert receptive_halo(["block5_conv1"], "vgg16") == 58  # a 132 px field
    assert receptive_halo(["block1_conv1"], "vgg19") == 1
    # The deepest layer decides.
    assert receptive_halo(layer_names("vgg19")[:3] + ["block4_conv2"], "vgg19") == 38


def test_the_default_halo_is_half_the_exact_one_on_the_deepest_stride():
    # ceil(exact / 2), rounded up to a multiple of the deepest layer's stride.
    assert default_halo(["block1_conv1", "block5_conv1"], "vgg19") == 48  # 35 -> 48 (16)
    assert default_halo(["block5_conv1"], "vgg16") == 32  # 29 -> 32 (16)
    assert default_halo(["block4_conv2"], "vgg19") == 24  # 19 -> 24 (8)
    assert default_halo(["block1_conv1"], "vgg19") == 1  # 1 -> 1 (1)


def test_a_stage_tiles_with_the_default_halo_unless_told(stylizer):
    from tfstyle.core.optimizers import make_optimizer
    from tfstyle.local.memory import stage_setup
    optimizer = make_optimizer(RunOptions())
    _, tiling = stage_setup(stylizer, RunOptions(tile_size=64), optimizer, 96, 128)
    assert tiling == Tiling(64, stylizer.default_halo)
    assert 0 < stylizer.default_halo < stylizer.exact_halo == receptive_halo(stylizer.layers)
    for halo in (0, 20, stylizer.exact_halo):
        _, tiling = stage_setup(stylizer, RunOptions(tile_size=64, tile_halo=halo),
                                optimizer, 96, 128)
        assert tiling == Tiling(64, halo)


@pytest.mark.parametrize("style_loss,masked,edge_powers", [
    ("gram", False, None), ("mean_cov", False, None), ("mean_cov", True, None),
    ("gram", True, None), ("mean_cov", False, (1.0, 0.5))])
def test_tiled_loss_and_gradient_equal_the_untiled(stylizer, style_loss, masked,
                                                     edge_powers):
    loss, content, style, image, masks, targets = problem(stylizer, style_loss, masked,
                                                          edge_powers)
    # With edge powers, the weights are there, and not 1 (else the test proves nothing).
    assert bool(targets.content_weights) == (edge_powers is not None)
    for w in targets.content_weights:
        assert np.std(w.numpy()) > 0.1
    want_terms, want_grad = untiled(stylizer, loss, image, targets)
    halo = receptive_halo(stylizer.layers, stylizer.backbone)
    tiled = TiledLoss(stylizer.features, loss, stylizer.content_layers, stylizer.style_layers,
                      Tiling(TILE, halo))
    terms, grad = tf.function(tiled.value_and_gradient)(image, targets)
    for name in ("total", "content", "style", "tv"):
        assert rel(getattr(terms, name), getattr(want_terms, name)) < 1e-5, name
    assert rel(grad, want_grad) < 1e-4
    # Every tile contributes: the gradient is not zero in any tile's square.
    per_tile = np.abs(grad.numpy()[0]).reshape(HEIGHT // 16, 16, WIDTH // 16, 16, 3).sum((1, 3, 4))
    assert (per_tile > 0).all()


@pytest.mark.parametrize("edge_powers", [None, (1.0, 2.0)])
def test_tiled_targets_equal_the_untiled(stylizer, edge_powers):
    loss, content, style, image, masks, want = problem(stylizer, "mean_cov", True,
                                                       edge_powers)
    assert len(tf.nest.flatten(want.content_weights)) == (2 if edge_powers else 0)
    halo = receptive_halo(stylizer.layers, stylizer.backbone)
    # The content's 240 px exceed the tile: the library's own tiled branch runs.
    got = stylizer.compute_targets(loss, content, [style], None, masks, Tiling(TILE, halo))
    for a, b in zip(tf.nest.flatten(got), tf.nest.flatten(want)):
        assert rel(a, b) < 1e-5


def test_a_short_halo_is_not_exact(stylizer):
    """The test above would pass with a broken halo only if the halo did not matter."""
    loss, content, style, image, masks, targets = problem(stylizer, "mean_cov", False)
    _, want_grad = untiled(stylizer, loss, image, targets)
    tiled = TiledLoss(stylizer.features, loss, stylizer.content_layers, stylizer.style_layers,
                      Tiling(TILE, 16))
    _, grad = tf.function(tiled.value_and_gradient)(image, targets)
    assert rel(grad, want_grad) > 1e-3


def test_a_tiled_stage_resumes_and_matches_the_untiled_run(stylizer):
    from tfstyle.errors import Interrupted
    content, style = synthetic_image(1, 72, 96), synthetic_image(2, 64, 64)
    progress = []
    # The exact halo: the untiled run below must end at the same picture.
    options = RunOptions(size=96, steps=24, seed=0, stage_size=48, tile_size=48,
                         tile_halo=stylizer.exact_halo)
    tiled = stylizer.stylize(content, style, options, callback=progress.append,
                             callback_every=4)
    # The second stage (96 px) ran in 48 px tiles and said so; the first (48 px) did not.
    assert {(p.size, p.tile) for p in progress} == {(48, 0), (96, 48)}
    with pytest.raises(Interrupted) as info:
        stylizer.stylize(content, style, options, callback_every=1,
                         should_stop=stop_after(20))
    checkpoint = info.value.checkpoint
    assert 16 < checkpoint["step"] < 24
    # Resumed untiled or tiled, from the same checkpoint: tiling is not part of the job.
    resumed = stylizer.stylize(content, style, options, resume=checkpoint)
    np.testing.assert_array_equal(resumed.image, tiled.image)
    plain = stylizer.stylize(content, style, options, tile_size=0)
    # The tiled gradient differs from the untiled one by rounding (1e-6), which 24
    # L-BFGS steps grow into a few grey levels here and there.
    diff = np.abs(plain.image.astype(int) - tiled.image.astype(int))
    assert diff.max() <= 6 and diff.mean() < 1, (diff.max(), diff.mean())


def test_memory_limit_decides_the_tiling():
    from tfstyle.local import memory
    layers = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block4_conv2",
              "block5_conv1"]
    args = (layers, "vgg19", "float32", 10)
    need = memory.step_bytes(1536, 2048, *args)
    assert memory.plan_tiling(1536, 2048, *args, budget=need, halo=70) is None
    tile = memory.plan_tiling(1536, 2048, *args, budget=need // 3, halo=70)
    assert tile % 16 == 0 and 16 <= tile < 2048
    # The largest tile that fits: one more row of 16 px would not.
    assert memory.step_bytes(1536, 2048, *args, crop=tile + 140) <= need // 3
    assert memory.step_bytes(1536, 2048, *args, crop=tile + 16 + 140) > need // 3
    with pytest.raises(Exception, match="memory_limit"):
        memory.plan_tiling(1536, 2048, *args, budget=2**20, halo=70)
    # The content targets (conv4_2: 512 maps at 1/8 × 1/8) stay whole when tiled.
    assert memory.step_bytes(1536, 2048, *args, crop=256, content_layers=["block4_conv2"]) - \
        memory.step_bytes(1536, 2048, *args, crop=256) == 4 * 1536 * 2048 * 512 // 64
    # Bytes per pixel grow with the history, and L-BFGS keeps fewer pairs when large.
    assert memory.lbfgs_history(512 * 512, 10) == 10
    assert memory.lbfgs_history(4096 * 3072, 10) == 3
    assert memory.parse_memory("6G") == 6 * 2**30 and memory.parse_memory("512M") == 2**29
    with pytest.raises(Exception, match="memory_limit"):
        memory.parse_memory("lots")


def test_pooled_allocator_raises_the_estimate_and_tiles_sooner(monkeypatch):
    """Under TensorFlow's BFC pool the activations' estimate grows by POOLED_FACTOR and
    nothing else does; a budget that fits the malloc estimate then tiles; the default
    follows what this process asks TensorFlow for."""
    from tfstyle import allocator
    from tfstyle.local import memory
    layers = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
    args = (1536, 2048, layers, "vgg19", "float32", 10)
    activations = {None: memory.ACTIVATION_FACTOR * 4 * 1536 * 2048,
                   576: memory.TILED_ACTIVATION_FACTOR * 4 * 576 * 576}
    for crop, act in activations.items():
        act *= memory.activation_floats_per_pixel(layers, "vgg19")
        grown = (memory.step_bytes(*args, crop=crop, pooled=True)
                 - memory.step_bytes(*args, crop=crop, pooled=False))
        assert grown == pytest.approx((memory.POOLED_FACTOR - 1) * act, rel=1e-6, abs=2)
    malloc = memory.step_bytes(*args, pooled=False)
    assert memory.plan_tiling(*args, budget=malloc, halo=70, pooled=False) is None
    assert memory.plan_tiling(*args, budget=malloc, halo=70, pooled=True) is not None
    for value, pooled in (("0", False), ("1", True)):
        monkeypatch.setenv(allocator.ENV, value)
        assert memory.step_bytes(*args) == memory.step_bytes(*args, pooled=pooled)


def test_a_bound_that_needs_tiling_needs_malloc():
    """``bound_needs_malloc`` is the pooled untiled estimate of the largest stage (a
    ``size`` square) against the limit: a limit between the malloc and the pooled
    estimates needs malloc, since under the pool the run would tile; L-BFGS's pairs
    are counted as a stage would cap them."""
    from tfstyle.local import memory
    layers = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1",
              "block4_conv2", "block5_conv1"]
    content = ["block4_conv2"]
    size, history = 4096, 10
    kept = memory.lbfgs_history(size * size, history)
    assert kept < history  # the cap matters at this size

    def estimate(pooled, pairs=kept):
        return memory.step_bytes(size, size, layers, "vgg19", "float32", pairs,
                                 content_layers=content, pooled=pooled)

    def needs(limit):
        return memory.bound_needs_malloc(limit, size, layers, "vgg19", "float32", history,
                                         content)

    between = (estimate(False) + estimate(True)) // 2
    assert estimate(False) < between < estimate(True)
    assert needs(between)
    assert needs(estimate(True) - 1) and not needs(estimate(True))
    # An uncapped history would count more pairs than a stage keeps.
    assert estimate(True, history) > estimate(True)
    assert not needs(estimate(True, history) - 1)
    # Adam (history 0) keeps no pairs.
    for limit, expected in ((estimate(True, 0) - 1, True), (estimate(True, 0), False)):
        assert memory.bound_needs_malloc(limit, size, layers, "vgg19", "float32", 0,
                                         content) is expected


_HEAP_PROBE = """
import ctypes, sys
sys.path.insert(0, {repo!r})
from tfstyle.local import memory
if {fixed}:
    assert memory.return_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
def touched(n):
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    return p
libc.free(ctypes.c_void_p(touched(30 << 20)))  # glibc now heaps blocks up to 30 MiB
before = rss()
blocks = [touched(8 << 20) for _ in range(4)]
for p in blocks[:-1]:
    libc.free(ctypes.c_void_p(p))  # the last one keeps the heap from shrinking at its top
print((rss() - before) >> 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_return_freed_memory_gives_freed_blocks_back():
    """Freed 8 MiB blocks stay resident under glibc's rising mmap threshold, and are
    given back with the fixed one."""
    import pathlib
    import subprocess
    repo = str(pathlib.Path(__file__).resolve().parents[1])
    held = {fixed: int(subprocess.run([sys.executable, "-c", _HEAP_PROBE.format(
        repo=repo, fixed=fixed)], capture_output=True, text=True, check=True).stdout)
        for fixed in (False, True)}
    assert held[False] >= 24 and held[True] <= 12, held
