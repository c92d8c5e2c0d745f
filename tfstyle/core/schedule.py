"""The coarse-to-fine schedule: which sizes a run optimises at, and how many steps each.

One tensor function, ``stage_plan``, that the library (``RunOptions.stages`` runs it
eagerly) and the exported SavedModel (traced into its graph) both call, so the two
cannot drift apart.

The plan for an output whose longest side is ``target``: the sizes
``round(target / factor^k)`` that are still ≥ ``stage_size``, coarsest first, then
``target`` itself. ``steps`` is split so that each stage gets half the steps of the
next coarser one: most steps where a step is cheap (a step costs about the pixel count,
so at factor 2 a coarser stage's step costs a quarter), where the layout and the large
strokes form, and a few at full size to draw the fine texture. The rounding remainder
goes to the first stage.
"""

from __future__ import annotations

import tensorflow as tf

MAX_STAGES = 16


def stage_plan(target, steps, stage_size, stage_factor):
    """(sizes, steps) of the coarse-to-fine run, int32 vectors of equal length ≤ 16.

    Args:
      target: int32 scalar, the output's longest side in pixels (≥ 1).
      steps: int32 scalar ≥ 0, the steps of the whole run.
      stage_size: int32 scalar ≥ 0, the smallest stage's least longest side; 0 runs
        at ``target`` only.
      stage_factor: float scalar > 1, the size ratio between successive stages.

    Returns:
      sizes: the stages' longest sides, coarsest first, ending with ``target``.
      steps: each stage's steps, summing to ``steps``.

    Raises (as an INVALID_ARGUMENT op error): more than 16 stages.
    """
    target = tf.convert_to_tensor(target, tf.int32)
    steps = tf.convert_to_tensor(steps, tf.int32)
    stage_size = tf.convert_to_tensor(stage_size, tf.int32)
    factor = tf.cast(stage_factor, tf.float64)
    # Python's round() is half to even, and so is tf.round: the sizes are the ones a
    # user computing by hand with round() expects.
    k = tf.range(1, MAX_STAGES + 1, dtype=tf.float64)
    smaller = tf.round(tf.cast(target, tf.float64) / tf.pow(factor, k))
    keep = (stage_size > 0) & (smaller >= tf.cast(stage_size, tf.float64))
    # The sizes fall with k, so the stages are the leading run of kept ones.
    count = tf.reduce_sum(tf.math.cumprod(tf.cast(keep, tf.int32)))
    check = tf.debugging.Assert(
        count < MAX_STAGES,
        [tf.strings.format("stage_size={} and stage_factor={} make more than "
                           + str(MAX_STAGES) + " stages: raise one of them",
                           (stage_size, stage_factor))], summarize=1)
    with tf.control_dependencies([check]):
        sizes = tf.concat([tf.reverse(tf.cast(smaller[:count], tf.int32), [0]),
                           tf.reshape(target, [1])], 0)
    n = tf.size(sizes)
    shares = tf.pow(tf.constant(2.0, tf.float64), tf.cast(n - 1 - tf.range(n), tf.float64))
    split = tf.cast(tf.floor(tf.cast(steps, tf.float64) * shares / tf.reduce_sum(shares)),
                    tf.int32)
    split = split + tf.one_hot(0, n, dtype=tf.int32) * (steps - tf.reduce_sum(split))
    return sizes, split
