"""Export a ``Stylizer`` as a SavedModel that TensorFlow Serving runs as is.

    from tfstyle.serving.export import export_model
    export_model("models/tfstyle/1", weights="imagenet", max_side=1024, max_steps=2000)

writes TF Serving's layout: ``<model_dir>/<version>/saved_model.pb``, ``variables/`` and
``assets.extra/tf_serving_warmup_requests``. The whole algorithm runs inside the graph:
decoding, limits, resizing, the optimisation loop and PNG encoding. It is the library's
code, traced: the stages of ``tfstyle.core`` and ``tfstyle.core.stage_inputs``, driven by
``tfstyle.serving.graph_run``; nothing of the algorithm is written a second time here.

Signatures (input names are the contract the clients code against):

``serving_default``
  inputs: ``content``, ``style`` (tf.string scalars: encoded JPEG, PNG, GIF or BMP bytes);
  the optional images ``init_image``, ``temporal_target`` and ``temporal_mask`` (the
  same, default ``""``: not sent); and the run options, one scalar each, as
  ``tfstyle.serving.served_options`` declares them (name, dtype, default, bounds); ``steps`` is
  split over the stages by ``tfstyle.core.schedule.stage_plan``, as in the library.

  ``init_image`` is a start image, as the library's ``start``: it wins over ``init``,
  and is resized to the first stage. ``temporal_target`` and ``temporal_mask`` come
  together, at the output's size: the previous stylized frame of a video warped onto
  this one, and its per-pixel weight (grey levels 0..255 for 0..1); the last stage's
  loss gains ``temporal_weight`` times the temporal term, as the library's
  ``temporal``. The client computes the optical flow and the warps (``tfstyle.video.frames``);
  the server stays stateless. Without them a request runs exactly as before they
  existed: the term's mask is 0, which adds exactly 0 to the loss and its gradient.
  outputs: ``image_bytes`` (tf.string scalar, PNG; TF Serving's REST API returns it as
  ``{"b64": ...}`` because of the ``_bytes`` suffix) and ``loss`` (float32 scalar).
``stylize_tensor``
  the same, but ``content``, ``style``, ``init_image`` and ``temporal_target`` are uint8
  tensors (H, W, 3), ``temporal_mask`` uint8 (H, W) (the optional ones are declared of
  any shape and default to no pixels, ``[]``: not sent), and the outputs are ``image``
  (uint8 (H', W', 3)) and ``loss``.

``loss`` is the total weighted loss of the last image the optimiser evaluated, exactly
what the library reports in ``Result.losses["total"]``: the image before the last
update (for L-BFGS, the last candidate, which may have been rejected), or the initial
image when ``steps`` is 0.

Every input but ``content`` and ``style`` has a default in the SignatureDef (no
optional image; the ``RunOptions`` defaults, clipped to this export's limits, seed 0):
servers that honour
``SignatureDef.defaults`` (see export/SERVING.md) accept requests that leave them out.

Serving is stateless: image and optimiser state are ``tf.while_loop`` variables, the
only ``tf.Variable`` s are the VGG weights, and nothing is assigned while serving, so
concurrent requests on one session do not interact.

Every limit is checked in the graph before any large allocation and fails the request
with INVALID_ARGUMENT and a message naming the limit: every option within its bounds
in ``tfstyle.serving.served_options``, and ``steps`` at most ``max_steps``; declared and decoded
image sides at most ``max_input_side`` (``tfstyle.serving.request_images``); output sides at most
``max_side`` (the resized style's at most ``graph_run.STYLE_SIDE_FACTOR`` times that), and at least
``stylizer.min_side``; the weights not all 0 once ``style_strength`` has moved them; at
most 16 stages; the first stage's sides at least ``min_side``.

Where the server differs from the library: nowhere in resizing (both run the tensor
functions of ``tfstyle.core.stage_inputs``); JPEG EXIF orientation is not applied; with
``style_loss=mean_cov`` the graph's feature means can differ in the last bit. Transparent
pixels are composited over white as the library does.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tfstyle.core.optimizers import make_optimizer
from tfstyle.core.tiling import Tiling
from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.local.memory import stage_halo, stage_setup
from tfstyle.local.stylizer import Stylizer
from tfstyle.options import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, MAX_STEPS, RunOptions
from tfstyle.serving import graph_run
from tfstyle.serving.graph_checks import check, check_str, printable
from tfstyle.serving.graph_run import Given
from tfstyle.serving.request_images import INPUT_SIDE_FACTOR, check_pixels, decode_image
from tfstyle.serving.servable_ops import find_unservable_ops
from tfstyle.serving.served_options import (NAMES as OPTION_NAMES, OPTIONAL_IMAGES, SERVED_OPTIONS,
                                            run_options)

__all__ = ["ExportError", "export_model", "find_unservable_ops", "INPUT_NAMES",
           "OPTIONAL_IMAGES", "SIGNATURES",
           "WARMUP_FILE", "default_inputs", "run_in_session", "warmup_inputs", "warmup_request",
           "write_warmup"]

# The signature contract: the two images, the optional ones, then the options
# (tfstyle.serving.served_options).
INPUT_NAMES = ("content", "style") + OPTIONAL_IMAGES + OPTION_NAMES
SIGNATURES = {"serving_default": ("image_bytes", "loss"), "stylize_tensor": ("image", "loss")}
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


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
                 tile_size: int = 0, tile_halo: int = -1,
                 content_edge_powers=None) -> str:
    """Writes a servable SavedModel to ``export_dir`` (the *version* directory).

    Args:
      export_dir: ``<model_base_path>/<version>``, e.g. ``models/tfstyle/1``. TF Serving
        loads the highest integer-named directory; the export is written to a hidden
        sibling first and renamed, so a server watching the base path never sees half
        of it. ``overwrite``: replace it where it exists and is not empty.
      stylizer: the feature model to export; None builds one from ``backbone``,
        ``pooling``, ``weights``, the layers, ``style_layer_weights``,
        ``content_edge_powers`` and ``precision`` (see ``Stylizer``; the precision is
        fixed in the graph: ``auto`` resolves on *this* machine, not the server's).
      max_side: the largest output side, pixels (the resized style's: twice that).
      max_steps: the most optimisation steps one request may ask for (≤ MAX_STEPS).
      max_input_side: the largest side of a *decoded* input image; default
        ``INPUT_SIDE_FACTOR * max_side``. Checked on the encoded header before decoding.
      optimizer, learning_rate: fixed at export time (``lbfgs`` or ``adam``; the
        learning rate as in ``RunOptions``); L-BFGS keeps fewer curvature pairs where
        ``max_side``² pixels would need more than 1 GiB of them.
      warmup: write ``assets.extra/tf_serving_warmup_requests`` (needs the
        ``tensorflow-serving-api`` package); ``model_name``: the name in its request.
      verify: before the version is renamed into place, load it with the session-based
        loader that TF Serving uses and run the warm-up request (a second or two).
      tile_size: 0, or evaluate every stage whose longest side exceeds it in tiles of
        this side (``tfstyle.core.tiling``): a request's memory then stops growing with the
        activations of its size (SERVING.md). tile_halo: pixels of context around each
        tile; -1: ``Stylizer.default_halo`` (``RunOptions.tile_halo``).

    Returns:
      The absolute path of ``export_dir``.

    Raises:
      ConfigError: a bad limit, optimiser, tile or layer; ``export_dir`` exists and is
        not empty (without ``overwrite``). WeightsError: the weights could not be loaded.
      ExportError: the SavedModel could not be written, uses an op TF Serving cannot
        run (``find_unservable_ops``), does not run in TF Serving's loader (``verify``),
        or the warm-up record needs a missing package.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    if stylizer is None:
        stylizer = Stylizer(backbone, pooling, weights, content_layers, style_layers,
                            style_layer_weights, precision=precision,
                            content_edge_powers=content_edge_powers)
    limits = _Limits.make(stylizer, max_side, max_steps, max_input_side)
    settings = _Settings.make(optimizer, learning_rate, tile_size, tile_halo)
    if warmup:
        _serving_apis()  # fail before the slow part if the package is missing
    _Staged.check_target(export_dir, overwrite)
    archive = _archive(_Servable.make(stylizer, settings, limits))
    with _Staged(export_dir) as staged:
        _write(archive, staged.path, stylizer, limits, warmup, verify, model_name)
        staged.publish()
    return export_dir


def _write(archive, path, stylizer, limits, warmup, verify, model_name):
    """Writes ``archive`` to ``path`` and checks it as ``export_model`` says."""
    try:
        archive.write_out(path, verbose=False)
    except Exception as e:
        raise ExportError(f"writing the SavedModel failed: {e}") from e
    problems = find_unservable_ops(path)
    if problems:
        raise ExportError("the exported graph would not run on TF Serving: "
                          + "; ".join(problems))
    if warmup:
        write_warmup(path, stylizer, model_name=model_name, limits=limits)
    if verify:
        _verify(path, limits)


def _archive(servable) -> keras.export.ExportArchive:
    """The Keras archive of the two endpoints."""
    archive = keras.export.ExportArchive()
    # Tracking the Keras model (not a tf.Module holding it) is what lets the
    # session-based loader of TF Serving and saved_model_cli find every variable.
    archive.track(servable.stylizer.model)
    archive.add_endpoint("serving_default", servable.bytes_fn(),
                         input_signature=servable.input_signature(tf.string, [], []))
    archive.add_endpoint("stylize_tensor", servable.tensor_fn(),
                         input_signature=servable.input_signature(tf.uint8, [None, None, 3],
                                                                  None))
    return archive


class _Staged:
    """A hidden sibling of ``export_dir`` to write into, renamed into place by
    ``publish`` and removed if the ``with`` block fails first: a server watching the
    base path never sees half an export."""

    def __init__(self, export_dir):
        self.export_dir = export_dir
        # Not an integer name, so TF Serving ignores it until the rename.
        self.path = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.",
                                     suffix=".tmp", dir=os.path.dirname(export_dir))
        try:
            # mkdtemp makes it private (0700); a server running as another user reads it.
            os.chmod(self.path, 0o777 & ~_umask())
        except OSError as e:
            shutil.rmtree(self.path, ignore_errors=True)
            raise ExportError(f"could not write {export_dir}: {e}") from e

    @staticmethod
    def check_target(export_dir, overwrite):
        """Before the slow part: ``export_dir`` may be written (empty, absent, or
        ``overwrite``), and its parent exists."""
        if os.path.isdir(export_dir) and os.listdir(export_dir) and not overwrite:
            raise ConfigError(f"{export_dir} exists and is not empty: choose a new version "
                              f"number or pass overwrite=True (--overwrite)")
        os.makedirs(os.path.dirname(export_dir), exist_ok=True)

    def publish(self):
        if os.path.isdir(self.export_dir):
            shutil.rmtree(self.export_dir)  # empty, or overwrite was asked for (checked)
        os.replace(self.path, self.export_dir)
        self.path = None

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        if isinstance(error, OSError):
            raise ExportError(f"could not write {self.export_dir}: {error}") from error
        return False


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


@dataclasses.dataclass(frozen=True)
class _Settings:
    """What an export fixes of a run besides its limits: the optimiser (``options``,
    a ``RunOptions`` whose ``optimizer``, ``learning_rate`` and ``tile_halo`` are set)
    and the tile side (0: no tiles)."""
    options: RunOptions
    tile_size: int

    @classmethod
    def make(cls, optimizer, learning_rate, tile_size, tile_halo):
        options = dataclasses.replace(RunOptions(), optimizer=optimizer,
                                      learning_rate=learning_rate, tile_halo=tile_halo)
        try:
            options.validate()
        except ConfigError as e:
            raise ConfigError(f"export: {e}") from None
        if isinstance(tile_size, bool) or not isinstance(tile_size, int) or not \
                0 <= tile_size <= 16384:
            raise ConfigError(f"tile_size must be an integer between 0 (no tiles) and "
                              f"16384, got {tile_size!r}")
        return cls(options, tile_size)


def default_inputs(limits=None) -> dict:
    """The option inputs' defaults as numpy scalars: the ``RunOptions`` defaults, with
    ``steps`` and ``size`` clipped to the export's limits (if given) and ``seed`` 0."""
    clip = {"steps": getattr(limits, "max_steps", MAX_STEPS),
            "size": getattr(limits, "max_side", None)}
    values = {}
    for row in SERVED_OPTIONS:
        value = row.default
        if clip.get(row.name) is not None:
            value = min(value, clip[row.name])
        values[row.name] = row.to_numpy(value)
    return values


# ----------------------------------------------------------------------------- the graph


class _Servable:
    """Builds the two endpoint functions for one stylizer, optimiser and set of limits."""

    def __init__(self, stylizer: Stylizer, optimizer, limits: _Limits, tiling=None):
        self.stylizer = stylizer
        self.optimizer = optimizer
        self.limits = limits
        self.tiling = tiling
        self.defaults = default_inputs(limits)

    @classmethod
    def make(cls, stylizer: Stylizer, settings: _Settings, limits: _Limits):
        """The servable of ``settings``: its optimiser as a ``max_side`` stage has it
        (``memory.stage_setup``: L-BFGS keeps fewer pairs where they would not fit), for
        every request, and its tiling."""
        options = settings.options
        optimizer, _ = stage_setup(stylizer, options, make_optimizer(options),
                                   limits.max_side, limits.max_side)
        tiling = None
        if settings.tile_size:
            tiling = Tiling(settings.tile_size, stage_halo(stylizer, options.tile_halo))
        return cls(stylizer, optimizer, limits, tiling)

    def input_signature(self, image_dtype, image_shape, optional_shape):
        """The TensorSpecs of the images, the optional images and the options, in the
        order of ``INPUT_NAMES``."""
        return ([tf.TensorSpec(image_shape, image_dtype, name=name)
                 for name in ("content", "style")]
                + [tf.TensorSpec(optional_shape, image_dtype, name=name)
                   for name in OPTIONAL_IMAGES]
                + [tf.TensorSpec([], tf.as_dtype(row.dtype), name=row.name)
                   for row in SERVED_OPTIONS])

    def bytes_fn(self):
        """``serving_default``: encoded images in, a PNG out."""
        side = self.limits.max_input_side

        def decode(name, data):
            return decode_image(_what(name), data, side)

        def optional(name, data):  # "" is not sent
            return tf.cond(tf.strings.length(data) > 0, lambda: decode(name, data),
                           lambda: tf.zeros([0, 0, 3]))

        not_sent = tf.constant(b"")
        return self._endpoint(decode, optional, dict.fromkeys(OPTIONAL_IMAGES, not_sent),
                              lambda image: {"image_bytes": tf.io.encode_png(image)})

    def tensor_fn(self):
        """``stylize_tensor``: uint8 (H, W, 3) tensors in and out. The optional images
        are declared of any shape, so that "not sent" can be an empty list in JSON (the
        REST API wants every input); one that is sent must be (H, W, 3), the mask (H, W)."""
        side = self.limits.max_input_side

        def pixels(name, image):
            with tf.control_dependencies(check_pixels(_what(name), image, side)):
                return tf.cast(image, tf.float32)

        def optional(name, image):  # no pixels is not sent
            mask = name == "temporal_mask"
            shape = [None, None] if mask else [None, None, 3]

            def sent():
                dims = tf.shape(image)
                rank = tf.equal(tf.rank(image), len(shape))
                if not mask:
                    rank &= tf.reduce_all(tf.equal(dims[2:], 3))
                shaped = check(rank, f"{name} must be uint8 {'(H, W)' if mask else '(H, W, 3)'}"
                               ", got shape {}", dims)
                with tf.control_dependencies([shaped]):
                    image_ = tf.ensure_shape(image, shape)
                return pixels(name, image_[:, :, None] if mask else image_)

            return tf.cond(tf.size(image) > 0, sent,
                           lambda: tf.zeros([0, 0, 1 if mask else 3]))

        not_sent = dict.fromkeys(OPTIONAL_IMAGES, tf.zeros([0], tf.uint8))
        return self._endpoint(pixels, optional, not_sent, lambda image: {"image": image})

    def _endpoint(self, pixels, optional, not_sent, outputs):
        """A signature function: ``pixels(name, image)`` turns an image input into
        float32 (H, W, C) pixels, ``optional`` likewise or into no pixels where it was
        not sent (``not_sent``: the input's default), after the option checks;
        ``outputs(image)`` the uint8 result into its outputs (besides ``loss``)."""
        signature = self._signature(not_sent)

        def endpoint(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            options = dict(bound.arguments)
            images = {name: options.pop(name) for name in ("content", "style")
                      + OPTIONAL_IMAGES}
            with tf.control_dependencies(self._check_options(options)):
                content = pixels("content", images["content"])
                style = pixels("style", images["style"])
                start, target, mask = (optional(name, images[name])
                                       for name in OPTIONAL_IMAGES)
            # A mask arrives as grey levels, in any channel of a decoded image.
            given = Given(start, target, mask[:, :, 0] / 255.0)
            image, loss = self._stylize(content, style, options, given)
            return dict(outputs(image), loss=loss)

        endpoint.__signature__ = signature
        return endpoint

    def _signature(self, not_sent):
        """``(content, style, <optional image>=<not sent>, ..., <option>=<default
        tensor>, ...)``: each optional input a Python default argument of its own, which
        is what puts it into SignatureDef.defaults (TensorFlow newer than 2.13); TF
        Serving uses them for inputs a request leaves out."""
        arg = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature(
            [inspect.Parameter(name, arg) for name in ("content", "style")]
            + [inspect.Parameter(name, arg, default=not_sent[name]) for name in OPTIONAL_IMAGES]
            + [inspect.Parameter(name, arg, default=tf.constant(value))
               for name, value in self.defaults.items()])

    # ----- checks

    def _check_options(self, o):
        """The checks of a request's options (``o``: name -> scalar tensor): each within
        its bounds in ``served_options``, ``steps`` and ``size`` within this export's
        limits too, and the loss weights not all 0."""
        lim = self.limits
        # A request outside the export's limit is told that limit, in these words.
        limits = {
            "steps": ((o["steps"] >= 0) & (o["steps"] <= lim.max_steps),
                      "steps={} is outside the limit of this model: send 0 <= steps <= "
                      f"max_steps={lim.max_steps}, or re-export with a larger --max_steps"),
            "size": ((o["size"] == 0) | ((o["size"] >= lim.min_side)
                                         & (o["size"] <= lim.max_side)),
                     "size={} is outside the limit of this model: send 0 (to keep the content "
                     f"size) or {lim.min_side} <= size <= max_side={lim.max_side}"),
        }
        checks = [_option_check(row, o[row.name], limits.get(row.name))
                  for row in SERVED_OPTIONS]
        alpha, beta, gamma = run_options(o).loss_weights()
        checks.append(check((alpha > 0) | (beta > 0) | (gamma > 0),
                            "all loss weights are 0: nothing to optimise; send style_weight "
                            "or content_weight above 0 (style_strength 0 zeroes the style "
                            "and TV weights)"))
        return checks

    # ----- the algorithm (the library's, traced)

    def _stylize(self, content, style, o, given):
        """float32 (H, W, 3) content and style in [0, 255] and the ``Given`` images ->
        (uint8 (H', W', 3), loss): the library's stages, driven in the graph
        (``tfstyle.serving.graph_run``)."""
        return graph_run.stylize(self.stylizer, self.optimizer, self.tiling, self.limits,
                                 content, style, o, given)


def _what(name: str) -> str:
    """An input's name as its errors say it: ``init_image`` -> ``init image``."""
    return name.replace("_", " ")


def _option_check(row, value, limit=None):
    """The in-graph check of one option against its row's bounds; ``limit``: None, or
    (condition, template) of an export limit that narrows them, whose words then say
    what was refused."""
    if row.allowed:
        return check_str(tf.reduce_any(tf.equal(value, list(row.allowed))), row.name + "=",
                         printable(value), " is not one of " + ", ".join(row.allowed))
    ok = value > row.lo if row.strict else value >= row.lo
    if row.hi is not None:  # else only the dtype bounds it
        ok &= value <= row.hi
    if row.dtype == "float32":
        ok &= tf.math.is_finite(value)
    if row.zero_means:
        ok |= tf.equal(value, 0)
    template = f"{row.name}={{}} {_rule(row)}"
    if limit is not None:
        limit_ok, template = limit
        ok &= limit_ok
    return check(ok, template, value)


def _rule(row) -> str:
    """A row's bounds in the words of the in-graph messages."""
    lo, hi = row.bounds()
    if row.dtype == "float32":
        if row.range_words:
            return f"must be {row.range_words}"
        upper = f" and <= {hi:g}" if hi is not None else ""
        return f"must be a finite number {'>' if row.strict else '>='} {lo:g}{upper}"
    if row.hi is None and lo == 0:
        return f"is negative: send a {row.name} >= 0"
    zero = f"0 ({row.zero_means}) or " if row.zero_means else ""
    return f"must be {zero}between {lo} and {hi}"


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
    values.update(dict.fromkeys(OPTIONAL_IMAGES, b""))
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
