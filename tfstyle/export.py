"""Export a ``Stylizer`` as a SavedModel that TensorFlow Serving runs as is.

    from tfstyle.export import export_model
    export_model("models/tfstyle/1", weights="imagenet", max_side=1024, max_steps=2000)

writes TF Serving's layout: ``<model_dir>/<version>/saved_model.pb``, ``variables/`` and
``assets.extra/tf_serving_warmup_requests``. The whole algorithm runs inside the graph:
decoding, limits, resizing, the optimisation loop and PNG encoding. It is the library's
code, traced (``Stylizer.compute_targets``, ``make_step``, ``optimize``, ``noise_image``,
the optimisers): nothing of the algorithm is written a second time here.

Signatures (input names are the contract the clients code against):

``serving_default``
  inputs: ``content``, ``style`` (tf.string scalars: encoded JPEG, PNG, GIF or BMP bytes),
  ``steps`` (int32), ``content_weight``, ``style_weight``, ``tv_weight`` (float32),
  ``size`` (int32, longest side of the output; 0 keeps the content's size), ``seed``
  (int64, for ``init="noise"``), ``init`` (tf.string: content | noise | style),
  ``style_scale`` (float32), ``preserve_colors`` (tf.string: none | luminance |
  histogram), ``style_loss`` (tf.string: gram | mean_cov), ``stage_size`` (int32, the
  first coarse-to-fine stage; 0 = single scale), ``stage_factor`` and
  ``style_strength`` (float32, 0..1: the weights' balance); all scalars. ``steps`` is split over the stages by ``tfstyle.schedule.stage_plan``, as
  in the library.
  outputs: ``image_bytes`` (tf.string scalar, PNG; TF Serving's REST API returns it as
  ``{"b64": ...}`` because of the ``_bytes`` suffix) and ``loss`` (float32 scalar).
``stylize_tensor``
  the same, but ``content`` and ``style`` are uint8 tensors (H, W, 3), and the outputs
  are ``image`` (uint8 (H', W', 3)) and ``loss``.

``loss`` is the total weighted loss of the last image the optimiser evaluated, exactly
what the library reports in ``Result.losses["total"]``: the image before the last
update (for L-BFGS, the last candidate, which may have been rejected), or the initial
image when ``steps`` is 0.

Every input but ``content`` and ``style`` has a default in the SignatureDef (the
``RunOptions`` defaults, clipped to this export's limits, seed 0): servers that honour
``SignatureDef.defaults`` (see export/SERVING.md) accept requests that leave them out.

Serving is stateless: image and optimiser state are ``tf.while_loop`` variables, the
only ``tf.Variable`` s are the VGG weights, and nothing is assigned while serving, so
concurrent requests on one session do not interact.

Every limit is checked in the graph before any large allocation and fails the request
with INVALID_ARGUMENT and a message naming the limit: ``steps`` in [0, max_steps];
declared and decoded image sides at most ``max_input_side``; output sides at most
``max_side`` (the resized style's at most ``STYLE_SIDE_FACTOR`` times that), and at least
``stylizer.min_side``; weights finite and ≥ 0, not all 0
once ``style_strength`` (in [0, 1]) has moved them; ``style_scale`` finite and > 0;
``init``, ``preserve_colors`` and ``style_loss`` one of theirs; ``seed`` ≥ 0;
``stage_size`` in [0, 16384], ``stage_factor`` finite and > 1, at most 16 stages; the
first stage's sides at least ``min_side``.

Where the server differs from the library: resizing is ``tf.image.resize`` with
antialiasing (Lanczos-3 for the size and style_scale resizes, bicubic for
``init="style"``), close to but not bit-identical with Pillow's; the server's result
equals the library's exactly only when no resize happens. JPEG EXIF orientation is
not applied, and transparent pixels are composited over white as the library does.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.features import layer_stride
from tfstyle import color, schedule
from tfstyle.options import (DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, INITS,
                             MAX_STEPS, PRESERVE_COLORS, STYLE_LOSSES, RunOptions)
from tfstyle.tiling import Tiling
from tfstyle.transfer import Stylizer, make_optimizer, next_stage, noise_image

__all__ = ["ExportError", "export_model", "find_unservable_ops", "INPUT_NAMES", "SIGNATURES",
           "WARMUP_FILE", "default_inputs", "run_in_session", "warmup_inputs", "warmup_request",
           "write_warmup"]

# The signature contract. Order matters only for the Python functions below.
INPUT_NAMES = ("content", "style", "steps", "content_weight", "style_weight", "tv_weight",
               "size", "seed", "init", "style_scale", "preserve_colors", "style_loss",
               "stage_size", "stage_factor", "style_strength")
OPTION_NAMES = INPUT_NAMES[2:]
_STRING_INPUTS = ("init", "preserve_colors", "style_loss")
SIGNATURES = {"serving_default": ("image_bytes", "loss"), "stylize_tensor": ("image", "loss")}
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")

# An encoded image may be larger than the output: it is resized down in the graph. Above
# this multiple of max_side a request is refused before decoding.
INPUT_SIDE_FACTOR = 4
# Padding appended before reading header fields, so that short data yields zeros (and a
# readable error) instead of an out-of-range substr.
_HEADER_PAD = 32
# The resized style image may be this multiple of max_side on its longest side: the
# default style_scale is 1.5, and the style only runs forward, once per stage.
STYLE_SIDE_FACTOR = 2

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


class ExportError(TfstyleError):
    """The model could not be exported, or the export would not be servable."""


# ----------------------------------------------------------------------------- export


def export_model(export_dir, stylizer: Stylizer | None = None, *, backbone: str = "vgg19",
                 pooling: str = "max", weights="imagenet",
                 content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                 style_layer_weights=None, max_side: int = 1024, max_steps: int = 2000,
                 max_input_side: int | None = None, optimizer: str = "lbfgs",
                 learning_rate: float | None = None, warmup: bool = True,
                 verify: bool = True, model_name: str = "tfstyle",
                 overwrite: bool = False, precision: str = "float32",
                 tile_size: int = 0, tile_halo: int = -1) -> str:
    """Writes a servable SavedModel to ``export_dir`` (the *version* directory).

    Args:
      export_dir: ``<model_base_path>/<version>``, e.g. ``models/tfstyle/1``. TF Serving
        loads the highest integer-named directory; the export is written to a hidden
        sibling first and renamed, so a server watching the base path never sees half
        of it.
      stylizer: the feature model to export. If None, one is built from ``backbone``,
        ``pooling``, ``weights``, ``content_layers``, ``style_layers`` and
        ``style_layer_weights`` (see ``Stylizer``).
      max_side: the largest output side, pixels (the resized style's: twice that).
      max_steps: the most optimisation steps one request may ask for (≤ MAX_STEPS).
      max_input_side: the largest side of a *decoded* input image; default
        ``INPUT_SIDE_FACTOR * max_side``. Checked on the encoded header before decoding.
      optimizer, learning_rate: fixed at export time (``lbfgs`` or ``adam``; the
        learning rate as in ``RunOptions``).
      warmup: write ``assets.extra/tf_serving_warmup_requests`` (needs the
        ``tensorflow-serving-api`` package).
      verify: before the version is renamed into place, load it with the session-based
        loader that TF Serving uses and run the warm-up request (a second or two).
      model_name: the name put in the warm-up request's model spec.
      overwrite: replace an existing, non-empty ``export_dir``.
      precision: the network's precision when ``stylizer`` is None (see ``Stylizer``),
        fixed in the graph: ``auto`` resolves on *this* machine, not the server's.
      tile_size: 0, or evaluate every stage whose longest side exceeds it in tiles of
        this side (``tfstyle.tiling``): a request's memory then stops
        growing with the activations of its size (SERVING.md). L-BFGS keeps fewer
        curvature pairs where ``max_side``² pixels would need more than 1 GiB of them
        (``memory.lbfgs_history``), for every request.
      tile_halo: pixels of context around each tile; -1: ``Stylizer.default_halo``
        (``RunOptions.tile_halo``).

    Returns:
      The absolute path of ``export_dir``.

    Raises:
      ConfigError: a bad limit, optimiser or layer; ``export_dir`` exists and is not
        empty (without ``overwrite``).
      WeightsError: the weights could not be loaded.
      ExportError: the SavedModel could not be written, uses an op TF Serving cannot
        run (see ``find_unservable_ops``), does not run in TF Serving's loader
        (``verify``), or the warm-up record needs a missing package.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    if stylizer is None:
        stylizer = Stylizer(backbone, pooling, weights, content_layers, style_layers,
                            style_layer_weights, precision=precision)
    limits = _Limits.make(stylizer, max_side, max_steps, max_input_side)
    options = dataclasses.replace(RunOptions(), optimizer=optimizer, learning_rate=learning_rate,
                                  tile_halo=tile_halo)
    try:
        options.validate()
    except ConfigError as e:
        raise ConfigError(f"export: {e}") from None
    if warmup:
        _serving_apis()  # fail before the slow part if the package is missing
    if os.path.isdir(export_dir) and os.listdir(export_dir) and not overwrite:
        raise ConfigError(f"{export_dir} exists and is not empty: choose a new version "
                          f"number or pass overwrite=True (--overwrite)")
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)

    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or not \
            0 <= tile_size <= 16384:
        raise ConfigError(f"tile_size must be an integer between 0 (no tiles) and 16384, "
                          f"got {tile_size!r}")
    optimizer, _ = stylizer.stage_setup(options, make_optimizer(options), limits.max_side,
                                        limits.max_side)
    tiling = Tiling(tile_size, stylizer.halo(options.tile_halo)) if tile_size else None
    servable = _Servable(stylizer, optimizer, limits, tiling)
    archive = keras.export.ExportArchive()
    # Tracking the Keras model (not a tf.Module holding it) is what lets the
    # session-based loader of TF Serving and saved_model_cli find every variable.
    archive.track(stylizer.model)
    archive.add_endpoint("serving_default", servable.bytes_fn(),
                         input_signature=servable.input_signature(tf.string, []))
    archive.add_endpoint("stylize_tensor", servable.tensor_fn(),
                         input_signature=servable.input_signature(tf.uint8, [None, None, 3]))

    # Not an integer name, so TF Serving ignores it until the rename.
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.", suffix=".tmp",
                               dir=parent)
    try:
        # mkdtemp makes it private (0700); a server running as another user must read it.
        os.chmod(staging, 0o777 & ~_umask())
        try:
            archive.write_out(staging, verbose=False)
        except Exception as e:
            raise ExportError(f"writing the SavedModel failed: {e}") from e
        problems = find_unservable_ops(staging)
        if problems:
            raise ExportError("the exported graph would not run on TF Serving: "
                              + "; ".join(problems))
        if warmup:
            write_warmup(staging, stylizer, model_name=model_name, limits=limits)
        if verify:
            _verify(staging, limits)
        if os.path.isdir(export_dir):
            shutil.rmtree(export_dir)  # empty, or overwrite was asked for (checked above)
        os.replace(staging, export_dir)
        staging = None
    except OSError as e:
        raise ExportError(f"could not write {export_dir}: {e}") from e
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return export_dir


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


@dataclasses.dataclass(frozen=True)
class _Limits:
    max_side: int
    max_steps: int
    max_input_side: int
    min_side: int

    @classmethod
    def make(cls, stylizer, max_side, max_steps, max_input_side):
        min_side = int(stylizer.min_side)
        for name, value, lo, hi in (("max_side", max_side, min_side, 16384),
                                    ("max_steps", max_steps, 0, MAX_STEPS)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or not lo <= value <= hi:
                raise ConfigError(f"{name} must be an integer between {lo} and {hi} (the "
                                  f"deepest layer needs {min_side} px), got {value!r}")
        if max_input_side is None:
            max_input_side = INPUT_SIDE_FACTOR * int(max_side)
        if isinstance(max_input_side, bool) or not isinstance(max_input_side, (int, np.integer)) \
                or not max_side <= max_input_side <= 65535:
            raise ConfigError(f"max_input_side must be an integer between max_side={max_side} "
                              f"and 65535, got {max_input_side!r}")
        return cls(int(max_side), int(max_steps), int(max_input_side), min_side)


def default_inputs(limits=None) -> dict:
    """The option inputs' defaults as numpy scalars: the ``RunOptions`` defaults, with
    ``steps`` and ``size`` clipped to the export's limits (if given) and ``seed`` 0."""
    opts = RunOptions()
    max_steps = getattr(limits, "max_steps", MAX_STEPS)
    max_side = getattr(limits, "max_side", opts.size)
    return {
        "steps": np.int32(min(opts.steps, max_steps)),
        "content_weight": np.float32(opts.content_weight),
        "style_weight": np.float32(opts.style_weight),
        "tv_weight": np.float32(opts.tv_weight),
        "size": np.int32(min(opts.size, max_side)),
        "seed": np.int64(0),
        "init": np.bytes_(opts.init.encode()),
        "style_scale": np.float32(opts.style_scale),
        "preserve_colors": np.bytes_(opts.preserve_colors.encode()),
        "style_loss": np.bytes_(opts.style_loss.encode()),
        "stage_size": np.int32(opts.stage_size),
        "stage_factor": np.float32(opts.stage_factor),
        "style_strength": np.float32(opts.style_strength),
    }


# ----------------------------------------------------------------------------- the graph


class _Servable:
    """Builds the two endpoint functions for one stylizer, optimiser and set of limits."""

    def __init__(self, stylizer: Stylizer, optimizer, limits: _Limits, tiling=None):
        self.stylizer = stylizer
        self.optimizer = optimizer
        self.limits = limits
        self.tiling = tiling
        self.defaults = default_inputs(limits)

    def input_signature(self, image_dtype, image_shape):
        specs = [tf.TensorSpec(image_shape, image_dtype, name="content"),
                 tf.TensorSpec(image_shape, image_dtype, name="style")]
        for name in OPTION_NAMES:
            specs.append(tf.TensorSpec([], tf.as_dtype(self.defaults[name].dtype)
                                       if name not in _STRING_INPUTS else tf.string, name=name))
        return specs

    def _default_tensors(self):
        # Tensors as Python defaults become SignatureDef.defaults (TensorFlow newer than
        # 2.13), which TF Serving uses for inputs a request leaves out.
        return {name: tf.constant(value) for name, value in self.defaults.items()}

    def bytes_fn(self):
        """``serving_default``: encoded images in, a PNG out."""
        def pixels(content, style):
            return self._decode("content", content), self._decode("style", style)
        return self._endpoint(pixels, lambda image: {"image_bytes": tf.io.encode_png(image)})

    def tensor_fn(self):
        """``stylize_tensor``: uint8 (H, W, 3) tensors in and out."""
        def pixels(content, style):
            checks = self._check_pixels("content", content) + self._check_pixels("style", style)
            with tf.control_dependencies(checks):
                return tf.cast(content, tf.float32), tf.cast(style, tf.float32)
        return self._endpoint(pixels, lambda image: {"image": image})

    def _endpoint(self, pixels, outputs):
        """A signature function: ``pixels(content, style)`` turns its image inputs into
        float32 (H, W, 3) pixels after the option checks, ``outputs(image)`` the uint8
        result into its outputs (besides ``loss``)."""
        d = self._default_tensors()

        # Each option must be a Python default argument of its own: that is what puts
        # it into SignatureDef.defaults.
        def endpoint(content, style, steps=d["steps"],
                     content_weight=d["content_weight"], style_weight=d["style_weight"],
                     tv_weight=d["tv_weight"], size=d["size"], seed=d["seed"],
                     init=d["init"], style_scale=d["style_scale"],
                     preserve_colors=d["preserve_colors"], style_loss=d["style_loss"],
                     stage_size=d["stage_size"], stage_factor=d["stage_factor"],
                     style_strength=d["style_strength"]):
            options = {name: value for name, value in locals().items() if name in OPTION_NAMES}
            with tf.control_dependencies(self._check_options(options)):
                content_px, style_px = pixels(content, style)
            image, loss = self._stylize(content_px, style_px, options)
            return dict(outputs(image), loss=loss)

        return endpoint

    # ----- checks

    def _check_options(self, o):
        lim = self.limits
        checks = [
            _check((o["steps"] >= 0) & (o["steps"] <= lim.max_steps),
                   "steps={} is outside the limit of this model: send 0 <= steps <= max_steps="
                   f"{lim.max_steps}, or re-export with a larger --max_steps", o["steps"]),
            _check((o["size"] == 0) | ((o["size"] >= lim.min_side) & (o["size"] <= lim.max_side)),
                   "size={} is outside the limit of this model: send 0 (to keep the content size) "
                   f"or {lim.min_side} <= size <= max_side={lim.max_side}", o["size"]),
            _check(o["seed"] >= 0, "seed={} is negative: send a seed >= 0", o["seed"]),
            _check(tf.math.is_finite(o["style_scale"]) & (o["style_scale"] > 0),
                   "style_scale={} must be a finite number > 0", o["style_scale"]),
            _check((o["stage_size"] >= 0) & (o["stage_size"] <= 16384),
                   "stage_size={} must be between 0 and 16384", o["stage_size"]),
            _check(tf.math.is_finite(o["stage_factor"]) & (o["stage_factor"] > 1),
                   "stage_factor={} must be a finite number > 1", o["stage_factor"]),
        ]
        for name, allowed in (("init", INITS), ("preserve_colors", PRESERVE_COLORS),
                              ("style_loss", STYLE_LOSSES)):
            checks.append(_check_str(tf.reduce_any(tf.equal(o[name], list(allowed))),
                                     name + "=", _printable(o[name]),
                                     " is not one of " + ", ".join(allowed)))
        for name in ("content_weight", "style_weight", "tv_weight"):
            checks.append(_check(tf.math.is_finite(o[name]) & (o[name] >= 0),
                                 name + "={} must be a finite number >= 0", o[name]))
        checks.append(_check((o["style_strength"] >= 0) & (o["style_strength"] <= 1),
                             "style_strength={} must be between 0 (the photo) and 1 (as "
                             "painted)", o["style_strength"]))
        alpha, beta, gamma = self._options(o).loss_weights()
        checks.append(_check((alpha > 0) | (beta > 0) | (gamma > 0),
                             "all loss weights are 0: nothing to optimise; send style_weight "
                             "or content_weight above 0 (style_strength 0 zeroes the style "
                             "and TV weights, 1 the content weight)"))
        return checks

    @staticmethod
    def _options(o):
        """The request's loss options as ``RunOptions`` of scalar tensors."""
        return dataclasses.replace(RunOptions(), content_weight=o["content_weight"],
                                   style_weight=o["style_weight"], tv_weight=o["tv_weight"],
                                   style_strength=o["style_strength"])

    def _check_pixels(self, what, pixels):
        """Side checks of a decoded (H, W, C) image."""
        shape = tf.shape(pixels)
        lim = self.limits.max_input_side
        return [_check((shape[0] >= 1) & (shape[1] >= 1),
                       what + " image is {}x{}: it has no pixels", shape[1], shape[0]),
                _check((shape[0] <= lim) & (shape[1] <= lim),
                       what + " image is {}x{}, above max_input_side=" + str(lim)
                       + " of this model: shrink it before sending", shape[1], shape[0])]

    def _decode(self, what, data):
        """Encoded bytes -> float32 (H, W, 3) RGB in [0, 255], integer valued.

        The format is recognised by its magic bytes and the declared size read from the
        header, both before the decoder runs, so that neither garbage nor a
        decompression bomb reaches it.
        """
        length = tf.strings.length(data)
        padded = tf.strings.join([data, tf.constant(b"\0" * _HEADER_PAD)])
        head = tf.io.decode_raw(tf.strings.substr(padded, 0, 32), tf.uint8)
        head = tf.cast(head, tf.int64)
        is_png = tf.strings.substr(padded, 0, 8) == _PNG_MAGIC
        is_jpeg = tf.strings.substr(padded, 0, 3) == _JPEG_MAGIC
        magic6 = tf.strings.substr(padded, 0, 6)
        is_gif = (magic6 == b"GIF87a") | (magic6 == b"GIF89a")
        is_bmp = tf.strings.substr(padded, 0, 2) == b"BM"
        known = is_png | is_jpeg | is_gif | is_bmp
        recognised = _check(known, what + ": {} bytes that are not a JPEG, PNG, GIF or BMP "
                            "image: send the bytes of an image file", length)

        with tf.control_dependencies([recognised]):
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
            jpeg_hw = tf.cond(is_jpeg, lambda: tf.cast(tf.io.extract_jpeg_shape(data)[:2],
                                                       tf.int64),
                              lambda: tf.zeros([2], tf.int64))
            width = tf.case([(is_png, lambda: be32(16)), (is_gif, lambda: le16(6)),
                             (is_bmp, lambda: bmp_w)], default=lambda: jpeg_hw[1])
            height = tf.case([(is_png, lambda: be32(20)), (is_gif, lambda: le16(8)),
                              (is_bmp, lambda: bmp_h)], default=lambda: jpeg_hw[0])
            lim = self.limits.max_input_side
            # TensorFlow's BMP decoder ignores a colour table and its GIF decoder drops
            # transparency: refuse those files rather than answer in wrong colours.
            bmp_bits = tf.where(bmp_core, le16(24), le16(28))
            declared = [
                _check(~is_bmp | (bmp_bits > 8),
                       what + ": a {}-bit paletted BMP, which this server cannot decode in "
                       "its true colours: send it as PNG", bmp_bits),
                _check(~is_gif | ~_gif_first_frame_transparent(data),
                       what + ": a GIF with transparent pixels, which this server cannot "
                       "composite over white: send it as PNG"),
                _check((width >= 1) & (height >= 1),
                       what + " image declares a size of {}x{}: it is truncated or corrupt",
                       width, height),
                _check((width <= lim) & (height <= lim),
                       what + " image declares a size of {}x{}, above max_input_side="
                       + str(lim) + " of this model: shrink it before sending", width, height)]

        with tf.control_dependencies(declared):
            # JPEG with the accurate integer DCT: Pillow's choice, so the pixels are the
            # library's exactly (decode_image's default DCT differs by up to ~8 levels).
            # GIFs: the first frame, as the library does.
            # PNGs via 16 bits and round(v / 257), as the library reduces 16-bit PNGs
            # (8-bit ones come back exactly: decode_png widens them by 257).
            pixels = tf.case([
                (is_jpeg, lambda: tf.io.decode_jpeg(data, channels=0,
                                                    dct_method="INTEGER_ACCURATE")),
                (is_png, lambda: tf.cast(tf.round(tf.cast(
                    tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.float32) / 257.0),
                    tf.uint8))],
                default=lambda: tf.io.decode_image(data, channels=0, dtype=tf.uint8,
                                                   expand_animations=False))
        with tf.control_dependencies(self._check_pixels(what, pixels)):
            return _to_rgb(pixels)

    # ----- the algorithm (the library's, traced)

    def _stylize(self, content, style, o):
        """float32 (H, W, 3) content and style in [0, 255] -> (uint8 (H', W', 3), loss).

        The library's ``Stylizer.stylize`` as one graph: the coarse-to-fine stages of
        ``tfstyle.schedule.stage_plan`` are a ``tf.while_loop`` around the core's own
        ``optimize`` loop, each stage starting from the last one's result, upsampled.
        """
        st = self.stylizer
        lim = self.limits
        deepest = max(st.layers, key=layer_stride)
        shape = tf.shape(content)
        longest = tf.maximum(shape[0], shape[1])
        target = tf.where(o["size"] > 0, o["size"], longest)
        size_check = _check(target <= lim.max_side,
                            "content image is {}x{} and size=0 keeps that size: above max_side="
                            f"{lim.max_side} of this model; send 0 < size <= {lim.max_side}",
                            shape[1], shape[0])
        with tf.control_dependencies([size_check]):
            sizes, stage_steps = schedule.stage_plan(target, o["steps"], o["stage_size"],
                                                     o["stage_factor"])
        n_stages = tf.size(sizes)
        s_shape = tf.shape(style)

        def stage_dims(k):
            out_h, out_w = _longest_side_dims(shape[0], shape[1], sizes[k])
            # The library's rule: round(output longest side × style_scale), at least 1.
            style_f = tf.math.round(tf.cast(tf.maximum(out_h, out_w), tf.float64)
                                    * tf.cast(o["style_scale"], tf.float64))
            return out_h, out_w, style_f

        # The first stage is the smallest, the last the largest: check both ends.
        first_h, first_w, first_style = stage_dims(0)
        _, _, last_style = stage_dims(n_stages - 1)
        checks = [_check(tf.minimum(first_h, first_w) >= lim.min_side,
                         "the output would be {}x{}, but the deepest layer used "
                         f"({deepest}) needs at least {lim.min_side} px on each side: "
                         "raise size (or stage_size)", first_w, first_h),
                  _check(last_style <= STYLE_SIDE_FACTOR * lim.max_side,
                         "style_scale={} makes the style image {} px on its longest side, "
                         f"above {STYLE_SIDE_FACTOR} × max_side={lim.max_side} of this "
                         "model: lower style_scale", o["style_scale"], last_style)]
        with tf.control_dependencies(checks):
            st_h, st_w = _longest_side_dims(s_shape[0], s_shape[1],
                                            tf.maximum(tf.cast(first_style, tf.int32), 1))
        checks = [_check(tf.minimum(st_h, st_w) >= lim.min_side,
                         "the style image at style_scale={} would be {}x{}, but the deepest "
                         f"layer used ({deepest}) needs at least {lim.min_side} px on "
                         "each side: raise style_scale", o["style_scale"], st_w, st_h)]
        preserve = o["preserve_colors"]

        def stage_inputs(k):
            """(content, content optimised against, style) of stage k, float32 (H, W, 3)."""
            out_h, out_w, style_f = stage_dims(k)
            with tf.control_dependencies(checks):
                s_h, s_w = _longest_side_dims(s_shape[0], s_shape[1],
                                              tf.maximum(tf.cast(style_f, tf.int32), 1))
                content_k = _resize(content, out_h, out_w, "lanczos3")
                style_k = _resize(style, s_h, s_w, "lanczos3")
            return (content_k, color.optimised_content(content_k, preserve), style_k,
                    color.recolor_style(style_k, content_k, preserve))

        loss = st.make_loss(self._options(o))
        loss.style_loss = o["style_loss"]
        optimizer = self.optimizer
        step = st.make_step(loss, optimizer, self.tiling)

        content_0, run_content_0, raw_style_0, _ = stage_inputs(0)
        init = o["init"]
        start = tf.case(
            [(tf.equal(init, "noise"),
              lambda: noise_image(tf.shape(run_content_0[None]), o["seed"])),
             (tf.equal(init, "style"),
              lambda: color.recolor_style(_resize(raw_style_0, tf.shape(content_0)[0],
                                                  tf.shape(content_0)[1], "bicubic"),
                                          content_0, preserve)[None])],
            default=lambda: run_content_0[None])
        start = tf.ensure_shape(start, [1, None, None, 3])
        nan = tf.constant(float("nan"))

        def cond(k, image, state, total, ran):
            # A non-finite loss ends the run (the last finite image is kept).
            return (k < n_stages) & (tf.math.is_finite(total) | ~ran)

        def body(k, image, state, total, ran):
            _, run_content, _, style_k = stage_inputs(k)
            targets = st.compute_targets(loss, run_content[None], style_k[None],
                                         tiling=self.tiling)
            image, state = tf.cond(
                k > 0, lambda: next_stage(optimizer, image, state, tf.shape(run_content)[:2]),
                lambda: (image, optimizer.init(image)))
            image, state, terms = Stylizer.optimize(step, image, state, targets,
                                                    stage_steps[k])
            runs = stage_steps[k] > 0
            return (k + 1, image, state, tf.where(runs, terms.total, total), ran | runs)

        state0 = optimizer.init(start)
        # The start's height and width are unknown, so state0's shapes already leave
        # every size that changes between stages open (and keep the batch of 1).
        invariants = (tf.TensorShape([]), tf.TensorShape([1, None, None, 3]),
                      tf.nest.map_structure(lambda t: t.shape, state0),
                      tf.TensorShape([]), tf.TensorShape([]))
        _, image, state, total, ran = tf.while_loop(
            cond, body, (tf.constant(0), start, state0, nan, tf.constant(False)),
            shape_invariants=invariants)
        image = optimizer.result(image, state)
        content_n, run_content_n, _, style_n = stage_inputs(n_stages - 1)

        def initial_loss():  # no step anywhere: the loss of the image as it stands
            targets = st.compute_targets(loss, run_content_n[None], style_n[None])
            content_features, style_features = st.features(image)
            return loss(image, content_features, style_features, targets).total

        total = tf.cond(ran, lambda: total, initial_loss)
        finite = _check(tf.math.is_finite(total),
                        "the loss became {} during the optimisation: lower the loss weights "
                        "or the steps", total)
        image = color.restore_colors(image[0], content_n, preserve)
        with tf.control_dependencies([finite]):
            pixels = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
            return tf.identity(pixels), tf.identity(total)


def _check(condition, template, *values):
    """An assert op failing with INVALID_ARGUMENT: "assertion failed: [<message>]".

    ``template`` is a ``tf.strings.format`` template; ``values`` fill its ``{}``. The
    Assert op C-escapes the message, so templates avoid quote characters.
    """
    message = tf.strings.format(template, values) if values else tf.constant(template)
    return tf.debugging.Assert(condition, [message], summarize=1)


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


def _printable(text):
    """At most 40 characters of a request's string, as valid UTF-8 (invalid bytes
    replaced), so that echoing it in an error message cannot break the message."""
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    return tf.strings.substr(text, 0, 40, unit="UTF8_CHAR")


def _check_str(condition, *parts):
    """Like ``_check``, for a message that contains string tensors (joined, not
    formatted, so that no quotes are added around them)."""
    return tf.debugging.Assert(condition, [tf.strings.join(list(parts))], summarize=1)


def _longest_side_dims(height, width, longest):
    """(H, W) resized so that max side == longest, the library's rounding: the short
    side is round(short × longest / long), halves up, at least 1. int32 scalars."""
    h, w, n = (tf.cast(v, tf.int64) for v in (height, width, longest))
    landscape = w >= h
    short_h = tf.maximum((2 * h * n + w) // (2 * w), 1)
    short_w = tf.maximum((2 * w * n + h) // (2 * h), 1)
    new_h = tf.where(landscape, short_h, n)
    new_w = tf.where(landscape, n, short_w)
    return tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)


def _resize(pixels, height, width, method):
    """float32 (H, W, 3) -> (height, width, 3), integer valued in [0, 255], like Pillow's
    8-bit output; unchanged (no resampling at all) when the size is already right."""
    shape = tf.shape(pixels)

    def resample():
        out = tf.image.resize(pixels, tf.stack([height, width]), method=method, antialias=True)
        return tf.clip_by_value(tf.round(out), 0.0, 255.0)

    same = tf.equal(shape[0], height) & tf.equal(shape[1], width)
    return tf.ensure_shape(tf.cond(same, lambda: pixels, resample), [None, None, 3])


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


# ----------------------------------------------------------------------------- warm-up


def _serving_apis():
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    except ImportError as e:
        raise ExportError(
            f"the warm-up record needs the tensorflow-serving-api package ({e}): "
            f"pip install 'tensorflow-serving-api=={tf.__version__}', or export with "
            f"warmup=False (--nowarmup)") from None
    return predict_pb2, prediction_log_pb2


def warmup_inputs(min_side: int, limits=None, steps: int = 2) -> dict:
    """Every input of a small ``serving_default`` request: two smooth PNGs whose side is
    2 × ``min_side`` (at most ``limits.max_side``), ``steps`` steps, the other options
    at their defaults. Values are numpy scalars, or bytes for the images."""
    values = dict(default_inputs(limits))
    side = min(2 * int(min_side), getattr(limits, "max_side", 2 * int(min_side)))
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    content = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 128.0), -1)
    style = np.stack(np.broadcast_arrays(255.0 - ramp[:, None], 64.0, ramp[None, :]), -1)
    values.update(steps=np.int32(min(steps, values["steps"])), size=np.int32(side))
    for name, px in (("content", content), ("style", style)):
        values[name] = tf.io.encode_png(px.astype(np.uint8)).numpy()
    return values


def warmup_request(min_side: int, model_name: str = "tfstyle", limits=None):
    """``warmup_inputs`` as a ``tensorflow_serving.apis.predict_pb2.PredictRequest``."""
    predict_pb2, _ = _serving_apis()
    values = warmup_inputs(min_side, limits)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "serving_default"
    for name in INPUT_NAMES:
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values[name]))
    return request


def run_in_session(export_dir, inputs: dict, signature: str = "serving_default") -> dict:
    """Runs one request the way TF Serving does: the session-based SavedModel loader
    (tag ``serve``) in a fresh graph, fed by the SignatureDef's tensor names.

    Args:
      inputs: {input name: numpy value}; missing inputs take their defaults.

    Returns:
      {output name: numpy value}.
    """
    logger = tf.get_logger()
    level = logger.level
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        logger.setLevel("ERROR")  # the TF1 loader's deprecation warning is no news here
        try:
            meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], os.fspath(export_dir))
        finally:
            logger.setLevel(level)
        sig = meta.signature_def[signature]
        feed = {sig.inputs[name].name: value for name, value in inputs.items()}
        return session.run({name: info.name for name, info in sig.outputs.items()}, feed)


def _verify(export_dir, limits):
    """Loads the export like TF Serving and runs the warm-up request through it."""
    inputs = warmup_inputs(limits.min_side, limits)
    try:
        outputs = run_in_session(export_dir, inputs)
        shape = tf.io.decode_png(outputs["image_bytes"]).shape
    except (tf.errors.OpError, KeyError, ValueError) as e:
        raise ExportError(f"the export does not run in the session-based loader that TF "
                          f"Serving uses: {' '.join(str(e).split())[:2000]}") from e
    side = int(inputs["size"])
    if int(max(shape[0], shape[1])) != side or not np.isfinite(outputs["loss"]):
        raise ExportError(f"the export ran but returned a {shape[1]}x{shape[0]} image with loss "
                          f"{outputs['loss']} for a {side} px warm-up request")


def write_warmup(export_dir, stylizer: Stylizer, model_name: str = "tfstyle", limits=None) -> str:
    """Writes ``assets.extra/tf_serving_warmup_requests``: a TFRecord of one
    ``PredictionLog``, which TF Serving runs once after loading, before it reports the
    version AVAILABLE, so the first real request does not pay for graph setup."""
    _, prediction_log_pb2 = _serving_apis()
    request = warmup_request(stylizer.min_side, model_name, limits)
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))
    path = os.path.join(export_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(log.SerializeToString())
    return path


# ----------------------------------------------------------------------------- op check

# Ops that must never run in a serving request: Python callbacks (TF Serving has no
# Python), and file access from the graph. The saver's own save/restore functions,
# which the loader runs once to read variables/, are the one allowed place for the I/O.
_DENIED_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
_IO_OPS = re.compile(
    r"^(ReadFile|WriteFile|MatchingFiles|Save|SaveV2|SaveSlices|Restore|RestoreV2|RestoreSlice|"
    r"MergeV2Checkpoints|PrintV2|Print|ImmutableConst|.*Reader.*|.*RecordDataset.*|"
    r"TextLineDataset.*|.*SummaryWriter.*|Write.*Summary|WriteFile)$")
# Ops only present where XLA is compiled in, and the attributes that force compilation.
_XLA_OPS = re.compile(r"^_?Xla")
_XLA_ATTRS = ("_XlaMustCompile", "_XlaCompile", "_XlaScope")


def find_unservable_ops(export_dir) -> list[str]:
    """Problems that would stop TF Serving from loading or running this SavedModel.

    Walks every node of the MetaGraph and of every function in its library (which
    includes while-loop bodies and cond branches) and reports: ops not registered by
    this TensorFlow (custom ops), Python-callback ops, XLA-only ops or forced XLA
    compilation, and file I/O anywhere but in the saver's restore/save functions
    (reached from ``saver_def``), which TF Serving itself runs to load ``variables/``.

    Returns:
      One readable string per problem; empty if the model is servable.
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    path = os.path.join(os.fspath(export_dir), "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    problems = []
    for meta in saved_model.meta_graphs:
        graph = meta.graph_def
        functions = {f.signature.name: f for f in graph.library.function}
        saver_roots = [meta.saver_def.restore_op_name, meta.saver_def.save_tensor_name,
                       meta.saver_def.filename_tensor_name]
        saver_nodes, saver_functions = _closure(graph, functions, [r for r in saver_roots if r])

        def visit(where, nodes, in_saver):
            for node in nodes:
                op = node.op
                if op not in functions and op_def_registry.get(op) is None:
                    problems.append(f"{where}: op {op} (node {node.name}) is not registered by "
                                    f"TensorFlow {tf.__version__}: a custom op TF Serving lacks")
                if op in _DENIED_OPS:
                    problems.append(f"{where}: op {op} (node {node.name}) calls Python, which "
                                    f"TF Serving does not have")
                if _XLA_OPS.match(op) or any(_true(node.attr.get(a)) for a in _XLA_ATTRS):
                    problems.append(f"{where}: node {node.name} ({op}) needs XLA compilation; "
                                    f"export without jit_compile")
                if _IO_OPS.match(op) and not in_saver(node):
                    problems.append(f"{where}: op {op} (node {node.name}) accesses files "
                                    f"outside the saver's restore graph")

        visit("graph", graph.node, lambda node: node.name in saver_nodes)
        for name, function in functions.items():
            if any(_true(function.attr.get(a)) for a in _XLA_ATTRS):
                problems.append(f"function {name} is marked for XLA compilation (jit_compile)")
            in_saver = name in saver_functions
            visit(f"function {name}", function.node_def, lambda node: in_saver)
    return problems


def _true(attr):
    return attr is not None and attr.WhichOneof("value") == "b" and attr.b


def _function_refs(node):
    for attr in node.attr.values():
        kind = attr.WhichOneof("value")
        if kind == "func":
            yield attr.func.name
        elif kind == "list":
            for func in attr.list.func:
                yield func.name


def _closure(graph, functions, roots):
    """Node names of ``graph`` reachable backwards from ``roots`` (tensor or op names),
    and the names of the functions they call, transitively."""
    by_name = {node.name: node for node in graph.node}
    seen, stack = set(), [r.lstrip("^").split(":")[0] for r in roots]
    called = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        node = by_name[name]
        stack.extend(i.lstrip("^").split(":")[0] for i in node.input)
        called.update(_function_refs(node))
        if node.op in functions:
            called.add(node.op)
    pending = list(called)
    while pending:
        function = functions.get(pending.pop())
        if function is None:
            continue
        for node in function.node_def:
            refs = set(_function_refs(node)) | ({node.op} if node.op in functions else set())
            for ref in refs - called:
                called.add(ref)
                pending.append(ref)
    return seen, called
