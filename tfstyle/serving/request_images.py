"""Image input of the exported model, in the graph: the counterpart of ``image_io``.

A request's image bytes are recognised by their magic bytes and checked against the
size their header declares, both before any decoder runs, so that neither garbage nor
a decompression bomb reaches one; then decoded to the pixels the library would read
from the same file (``image_io.open_image``). Every refusal fails the request with
INVALID_ARGUMENT and a message that says what was wrong and what to send instead.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfstyle.serving.graph_checks import check

__all__ = ["INPUT_SIDE_FACTOR", "decode_image", "check_pixels"]

# An encoded image may be larger than the output: it is resized down in the graph. Above
# this multiple of max_side a request is refused before decoding.
INPUT_SIDE_FACTOR = 4
# Padding appended before reading header fields, so that short data yields zeros (and a
# readable error) instead of an out-of-range substr.
_HEADER_PAD = 32

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


# ----------------------------------------------------------------------------- decoding


class _Format(NamedTuple):
    """What the first bytes of a request's image say: one bool scalar per format, and
    the header's first 32 bytes as int64 (zeros past the end of short data)."""
    png: tf.Tensor
    jpeg: tf.Tensor
    gif: tf.Tensor
    bmp: tf.Tensor
    head: tf.Tensor


def _sniff(data) -> _Format:
    padded = tf.strings.join([data, tf.constant(b"\0" * _HEADER_PAD)])
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 0, 32), tf.uint8), tf.int64)
    magic6 = tf.strings.substr(padded, 0, 6)
    return _Format(png=tf.strings.substr(padded, 0, 8) == _PNG_MAGIC,
                   jpeg=tf.strings.substr(padded, 0, 3) == _JPEG_MAGIC,
                   gif=(magic6 == b"GIF87a") | (magic6 == b"GIF89a"),
                   bmp=tf.strings.substr(padded, 0, 2) == b"BM", head=head)


def decode_image(what, data, max_input_side: int):
    """Encoded bytes -> float32 (H, W, 3) RGB in [0, 255], integer valued.

    Args:
      what: ``"content"`` or ``"style"``, for the messages.
      data: a tf.string scalar: JPEG, PNG, GIF or BMP file bytes.
      max_input_side: the largest side accepted, declared or decoded.
    """
    fmt = _sniff(data)
    recognised = check(fmt.png | fmt.jpeg | fmt.gif | fmt.bmp,
                       what + ": {} bytes that are not a JPEG, PNG, GIF or BMP image: send "
                       "the bytes of an image file", tf.strings.length(data))
    with tf.control_dependencies([recognised]):
        declared = _header_checks(what, data, fmt, max_input_side)
    with tf.control_dependencies(declared):
        pixels = _decode_pixels(data, fmt)
    with tf.control_dependencies(check_pixels(what, pixels, max_input_side)):
        return _to_rgb(pixels)


def _header_checks(what, data, fmt, max_input_side):
    """The checks of what the header declares: a size within the limit, and nothing
    TensorFlow's decoders would get wrong."""
    head = fmt.head

    def be32(i):
        return ((head[i] * 256 + head[i + 1]) * 256 + head[i + 2]) * 256 + head[i + 3]

    def le16(i):
        return head[i] + head[i + 1] * 256

    def le32s(i):  # signed: BMP stores top-down images with a negative height
        value = le16(i) + le16(i + 2) * 65536
        return tf.where(value >= 2 ** 31, value - 2 ** 32, value)

    bmp_core = le32s(14) == 12  # the OS/2 header keeps 16-bit sizes
    bmp_w = tf.where(bmp_core, le16(18), le32s(18))
    bmp_h = tf.abs(tf.where(bmp_core, le16(20), le32s(22)))
    jpeg_hw = tf.cond(fmt.jpeg, lambda: tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64),
                      lambda: tf.zeros([2], tf.int64))
    width = tf.case([(fmt.png, lambda: be32(16)), (fmt.gif, lambda: le16(6)),
                     (fmt.bmp, lambda: bmp_w)], default=lambda: jpeg_hw[1])
    height = tf.case([(fmt.png, lambda: be32(20)), (fmt.gif, lambda: le16(8)),
                      (fmt.bmp, lambda: bmp_h)], default=lambda: jpeg_hw[0])
    lim = max_input_side
    # TensorFlow's BMP decoder ignores a colour table and its GIF decoder drops
    # transparency: refuse those files rather than answer in wrong colours.
    bmp_bits = tf.where(bmp_core, le16(24), le16(28))
    return [
        check(~fmt.bmp | (bmp_bits > 8),
              what + ": a {}-bit paletted BMP, which this server cannot decode in its true "
              "colours: send it as PNG", bmp_bits),
        check(~fmt.gif | ~_gif_first_frame_transparent(data),
              what + ": a GIF with transparent pixels, which this server cannot composite "
              "over white: send it as PNG"),
        check((width >= 1) & (height >= 1),
              what + " image declares a size of {}x{}: it is truncated or corrupt",
              width, height),
        check((width <= lim) & (height <= lim),
              what + " image declares a size of {}x{}, above max_input_side=" + str(lim)
              + " of this model: shrink it before sending", width, height)]


def _decode_pixels(data, fmt):
    """uint8 (H, W, C) as the library decodes the same file.

    JPEG with the accurate integer DCT: Pillow's choice, so the pixels are the library's
    exactly (decode_image's default DCT differs by up to ~8 levels). GIFs: the first
    frame, as the library does. PNGs via 16 bits and round(v / 257), as the library
    reduces 16-bit PNGs (8-bit ones come back exactly: decode_png widens them by 257).
    """
    return tf.case([
        (fmt.jpeg, lambda: tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE")),
        (fmt.png, lambda: tf.cast(tf.round(tf.cast(
            tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.float32) / 257.0),
            tf.uint8))],
        default=lambda: tf.io.decode_image(data, channels=0, dtype=tf.uint8,
                                           expand_animations=False))


def check_pixels(what, pixels, max_input_side: int) -> list:
    """The side checks of a decoded (H, W, C) image: at least 1, at most the limit."""
    shape = tf.shape(pixels)
    lim = max_input_side
    return [check((shape[0] >= 1) & (shape[1] >= 1),
                  what + " image is {}x{}: it has no pixels", shape[1], shape[0]),
            check((shape[0] <= lim) & (shape[1] <= lim),
                  what + " image is {}x{}, above max_input_side=" + str(lim)
                  + " of this model: shrink it before sending", shape[1], shape[0])]


def _gif_first_frame_transparent(data):
    """Whether a GIF's first graphic control extension marks a transparent colour.

    The first such extension (0x21 0xF9 0x04) after the global colour table belongs to
    the first frame, the one decoded; it comes within the first kilobyte (13 header
    bytes, at most 768 of colour table, perhaps a looping extension).
    """
    size = 1024
    head = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0" * size)]), 0, size)
    b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int32)
    packed = b[10]
    table = tf.where(packed >= 128, 3 * tf.bitwise.left_shift(2, tf.bitwise.bitwise_and(
        packed, 7)), 0)
    position = tf.range(size - 4)
    hit = ((b[:-4] == 0x21) & (b[1:-3] == 0xF9) & (b[2:-2] == 4)
           & (position >= 13 + table))
    first = tf.argmax(tf.cast(hit, tf.int32), output_type=tf.int32)
    return tf.reduce_any(hit) & (tf.bitwise.bitwise_and(tf.gather(b, first + 3), 1) == 1)


def _to_rgb(pixels):
    """uint8 (H, W, 1..4) -> float32 (H, W, 3): gray replicated, alpha composited over
    white with the library's arithmetic (``image_io._composite_over_white``)."""
    channels = tf.shape(pixels)[2]
    pixels = tf.cast(pixels, tf.float32)
    color = tf.cond(channels >= 3, lambda: pixels[:, :, :3],
                    lambda: tf.tile(pixels[:, :, :1], [1, 1, 3]))
    has_alpha = tf.equal(channels, 2) | tf.equal(channels, 4)

    def composite():
        alpha = pixels[:, :, -1:] / 255.0
        out = color * alpha + 255.0 * (1.0 - alpha)
        return tf.clip_by_value(tf.round(out), 0.0, 255.0)

    return tf.ensure_shape(tf.cond(has_alpha, composite, lambda: color), [None, None, 3])
