"""What one L-BFGS step of the sliced-Wasserstein probe spends in its sorts, per style layer.

For each default style layer of VGG at a 512 x 384 output (positions x channels), the
median of 5 timings of: the sort alone of the (directions, positions) projections, and
the loss's sort with its gradient (sorted over positions, as the probe does: axis 0 of
(positions, directions), and along the last axis of the transpose). Random features;
the sort's cost depends on the shape only. (bench/probes/sliced_wasserstein.patch,
BENCHMARKS.md "Levers for Tübingen × Kandinsky".)

Usage: python bench/probes/sort_cost.py
"""
import time

import tensorflow as tf

SHAPES = {"conv1_1": (384 * 512, 64), "conv2_1": (192 * 256, 128),
          "conv3_1": (96 * 128, 256), "conv4_1": (48 * 64, 512), "conv5_1": (24 * 32, 512)}


def sorted_over_positions(x, d):
    """The probe's sort: (positions, directions) projections sorted over the positions."""
    return tf.sort(tf.matmul(x, d), axis=0)


def sorted_last_axis(x, d):
    """The same values transposed, (directions, positions), sorted along the last axis."""
    return tf.sort(tf.matmul(d, x, transpose_a=True, transpose_b=True), axis=-1)


def with_gradient(sort):
    """A traced function of (x, d): the gradient in x of the mean square of ``sort``."""
    @tf.function(autograph=False)
    def gradient(x, d):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_mean(tf.square(sort(x, d)))
        return tape.gradient(y, x)
    return gradient


sort_only = tf.function(sorted_last_axis, autograph=False)
with_gradient_axis0 = with_gradient(sorted_over_positions)
with_gradient_last = with_gradient(sorted_last_axis)


def median_ms(fn, *args, rounds=5):
    fn(*args)  # trace
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(*args).numpy()
        times.append(time.perf_counter() - start)
    return sorted(times)[rounds // 2] * 1000.0


def main():
    print("| layer | positions x directions | sort | sort and gradient (axis 0) | (last axis) |")
    print("|---|---|---|---|---|")
    for name, (m, n) in SHAPES.items():
        x, d = tf.random.normal((m, n), seed=1), tf.random.normal((n, n), seed=2)
        cells = [median_ms(fn, x, d) for fn in (sort_only, with_gradient_axis0,
                                                 with_gradient_last)]
        print(f"| {name} | {m} x {n} | " + " | ".join(f"{c:.0f} ms" for c in cells) + " |")


if __name__ == "__main__":
    main()
