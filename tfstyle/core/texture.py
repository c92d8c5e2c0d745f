"""A painting's texture without its layout: random phase noise.

The ``texture`` start (``stages.start_image``) mixes the photo with the painting's colours
and strokes, but not with its composition: a start that carries the painting's layout
(its moon, its figure, its shoreline) keeps it through the run, because the style term
cannot see where a shape is and the content term is too weak at the coarse stage to
remove what the photo does not have.

Random phase noise (Galerne, Gousseau & Morel, "Random Phase Textures: Theory and
Synthesis", IEEE TIP 2011) keeps an image's colour mean and the amplitude of its Fourier
spectrum, so its power spectrum (the strength of its strokes at each scale and
orientation, and the colour correlations at each frequency), and replaces the phase,
where the layout lives, by the phase of white noise:

    u = m + p,  p the periodic component of the image (mean removed, per channel)
    v = m + F⁻¹( F(p) · e^{iθ} ),   θ = arg F(w),  w white noise (one field for all channels)

One θ for the three channels keeps their phase differences, so the colours stay the
painting's. θ of real noise is odd (θ(−k) = −θ(k)), so v is real. ``F`` of an image that
is not periodic has a bright cross along the axes (the jumps between opposite borders);
random phase would turn it into horizontal and vertical streaks. So p is Moisan's
periodic component ("Periodic plus smooth image decomposition", JMIV 2011): the image
minus the smooth image s whose Laplacian equals the border jumps,

    ŝ(q, r) = v̂(q, r) / (2 cos(2πq/H) + 2 cos(2πr/W) − 4),   ŝ(0, 0) = 0,

with v the jumps across opposite borders (last row minus first row on the first row,
its negative on the last; likewise for the columns).

Random phase moves the painting's shapes to random places, but keeps their sizes: its
large masses (a dark figure, a bright moon) come back as large blobs, wherever the phase
puts them, and a blob the size of the picture's regions still reads as a composition.
So the amplitude is also weighed down below ``LAYOUT_CYCLES`` cycles across the
picture's longest side, by 1 − exp(−(n / LAYOUT_CYCLES)²) at n cycles: the scales at
which a picture's layout is read are left to the photo, the strokes are the painting's.

Only TensorFlow ops, so the exported SavedModel draws the same pixels from the same seed.
"""

from __future__ import annotations

import math

import tensorflow as tf

# Below this many cycles across the longest side, a texture's waves are the picture's
# layout, not its strokes: at 8, wavelengths of an eighth of the picture and longer
# (16 px and more at the first, 128 px stage) are weighed down. With the whole spectrum
# kept, the texture's random blobs made the painting's layout show by chance (the
# quality instrument's ghost measure saw it on Tübingen × Shipwreck); at 8 they do not.
# The ghost at the default: BENCHMARKS.md, "Quality and time at the default".
LAYOUT_CYCLES = 8.0


def periodic_component(image) -> tf.Tensor:
    """Moisan's periodic component of an image.

    Args:
      image: float32 (H, W, C), any value range; H, W ≥ 1.

    Returns:
      float32 (H, W, C): the image minus its smooth component; the same mean, and no
      jump between opposite borders to leak into the spectrum.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    rows = image[-1:] - image[:1]          # (1, W, C): last row minus first row
    columns = image[:, -1:] - image[:, :1]  # (H, 1, C)
    # The border jumps, as an image: +jump on the first row (column), −jump on the last.
    # Where H (W) is 1 the two cancel, and so does the jump.
    row_edges = tf.tensor_scatter_nd_add(
        tf.zeros_like(image), [[0], [height - 1]], tf.concat([rows, -rows], 0))
    column_edges = tf.transpose(tf.tensor_scatter_nd_add(
        tf.zeros_like(tf.transpose(image, [1, 0, 2])), [[0], [width - 1]],
        tf.concat([tf.transpose(columns, [1, 0, 2]), -tf.transpose(columns, [1, 0, 2])], 0)),
        [1, 0, 2])
    jumps = _spectrum(row_edges + column_edges)
    q = tf.cast(tf.range(height), tf.float32)[:, None]
    r = tf.cast(tf.range(width), tf.float32)[None, :]
    laplacian = (2.0 * tf.cos(2.0 * math.pi * q / tf.cast(height, tf.float32))
                 + 2.0 * tf.cos(2.0 * math.pi * r / tf.cast(width, tf.float32)) - 4.0)
    # The DC term of the Laplacian is 0; the smooth part has mean 0 there, by definition.
    dc = tf.equal(laplacian, 0.0)
    smooth = tf.where(dc, tf.zeros_like(jumps), jumps / tf.cast(
        tf.where(dc, tf.ones_like(laplacian), laplacian), tf.complex64))
    return image - _image(smooth)


def random_phase(image, seed, cycles=LAYOUT_CYCLES) -> tf.Tensor:
    """Random phase noise of an image: its colours and strokes, none of its layout.

    Args:
      image: float32 (H, W, 3) in [0, 255].
      seed: int or int64 scalar tensor; the same seed gives the same pixels (stateless).
      cycles: the amplitude is weighed by 1 − exp(−(n / cycles)²) at n cycles across
        the longest side (the layout's scales, module docstring); 0 keeps it whole.

    Returns:
      float32 (H, W, 3) in [0, 255] (clipped): the image's mean colour and (above
      ``cycles``) power spectrum, with the phase of white noise.
    """
    return _random_phase(tf.convert_to_tensor(image, tf.float32), tf.cast(seed, tf.int64),
                         tf.constant(cycles, tf.float32))


# One graph, traced once for any size, whether the library calls it eagerly or the
# exported model calls it inside its own: TensorFlow's eager kernels and the graph's
# rewrites of the same ops (the DFT's cosines, the divisions) differ in the last bits,
# and a served run must be the library's to the bit.
@tf.function(input_signature=(tf.TensorSpec([None, None, 3], tf.float32),
                              tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.float32)),
             autograph=False)
def _random_phase(image, seed, cycles):
    mean = tf.reduce_mean(image, [0, 1], keepdims=True)
    spectrum = _spectrum(periodic_component(image) - mean)
    weights = tf.cast(_high_pass(tf.shape(image)[:2], cycles), tf.complex64)
    spectrum = spectrum * weights[None]
    # Not the noise start's stream (stages.noise_image): the two must not be one draw.
    pair = tf.stack([seed % (2 ** 31), seed // (2 ** 31) + 1])
    noise = tf.random.stateless_normal(tf.shape(image)[:2], pair)
    phase = tf.math.angle(tf.signal.fft2d(tf.cast(noise, tf.complex64)))
    rotation = tf.exp(tf.complex(tf.zeros_like(phase), phase))
    return tf.clip_by_value(_image(spectrum * rotation[None]) + mean, 0.0, 255.0)


def _spectrum(image):
    """(H, W, C) float32 -> (C, H, W) complex64: the 2-D DFT of each channel."""
    return tf.signal.fft2d(tf.cast(tf.transpose(image, [2, 0, 1]), tf.complex64))


def _image(spectrum):
    """(C, H, W) complex64 -> (H, W, C) float32: the real part of the inverse DFT."""
    return tf.transpose(tf.math.real(tf.signal.ifft2d(spectrum)), [1, 2, 0])


def _high_pass(shape, cycles):
    """1 − exp(−(n / cycles)²) at each frequency of an (H, W) DFT, n its number of
    cycles across the image's longest side: 0 at the mean, ~1 above ``cycles``; 1
    everywhere for ``cycles`` 0 (a float32 scalar tensor)."""
    height, width = shape[0], shape[1]
    longest = tf.cast(tf.maximum(height, width), tf.float32)

    def folded(n):  # DFT index -> signed frequency in cycles per pixel
        k = tf.cast(tf.range(n), tf.float32)
        n = tf.cast(n, tf.float32)
        return tf.where(k > n / 2.0, k - n, k) / n

    fy, fx = folded(height)[:, None], folded(width)[None, :]
    n2 = (fy * fy + fx * fx) * longest * longest
    whole = tf.ones_like(n2)
    safe = tf.where(cycles > 0, cycles, 1.0)
    return tf.where(cycles > 0, 1.0 - tf.exp(-n2 / (safe * safe)), whole)
