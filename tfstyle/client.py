"""Stylize on a TensorFlow Serving that runs the exported tfstyle model.

    from tfstyle.client import TFServingClient
    client = TFServingClient("localhost:8500")                   # gRPC
    image = client.stylize("photo.jpg", "painting.jpg", steps=300, size=512)  # uint8 (H, W, 3)
    client = TFServingClient("localhost:8501", protocol="rest")  # JSON over HTTP

The SavedModel (``tfstyle.export``) has two signatures, and this client speaks both:

* ``serving_default``: ``content``/``style`` are encoded image files (tf.string scalars),
  the answer is a PNG (``image_bytes``) and the final ``loss``;
* ``stylize_tensor``: ``content``/``style`` are uint8 (H, W, 3) pixels, the answer is
  the uint8 ``image`` and the ``loss``.

Both take the run options ``steps size content_weight style_weight tv_weight seed init
style_scale preserve_colors style_loss stage_size stage_factor style_strength`` as
scalars. The export gives them defaults that TF Serving 2.21 fills in, but older
servers refuse a Predict that leaves an input out, so every request carries all of
them, filled in from ``RunOptions()``.

Dependencies: REST needs only the standard library. gRPC needs ``grpcio`` and
``protobuf`` (``pip install tfstyle[serving]``) but *not* TensorFlow: the few messages of
TF Serving's API are declared here, wire-compatible with ``tensorflow_serving.apis``
(whose modules import all of TensorFlow, seconds of start-up for a client that only
sends bytes). ``tests/test_client.py`` checks the declarations against the originals.

Value checks (steps over the server's limit, negative sizes, corrupt images) are the
server's: its limits may differ from the local ones, and it says what it refused. The
client only refuses what it cannot put into the request (a float for ``steps``, an
``init`` that is a local file path).
"""

from __future__ import annotations

import base64
import functools
import http.client
import io
import ipaddress
import json
import math
import numbers
import os
import re
import secrets
import socket
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import NamedTuple

import numpy as np
from PIL import Image

from tfstyle import image_io
from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.options import INITS, PRESERVE_COLORS, STYLE_LOSSES, RunOptions

__all__ = ["TFServingClient", "ServingError", "ServingResult", "encode_image",
           "DEFAULT_PORTS", "SIGNATURES"]

DEFAULT_PORTS = {"grpc": 8500, "rest": 8501}
SIGNATURES = ("serving_default", "stylize_tensor")
# A 12-megapixel photo sent as PNG is ~30 MB and the uint8 tensor of one 36 MB; gRPC's
# own 4 MiB default would refuse both.
MAX_MESSAGE_BYTES = 256 * 2**20

_DEFAULTS = RunOptions()
_INSTALL_HINT = "pip install 'tfstyle[serving]'"

# tensorflow/core/framework/types.proto
_DT_FLOAT, _DT_INT32, _DT_UINT8, _DT_STRING, _DT_INT64 = 1, 3, 4, 7, 9
_NUMPY_DTYPES = {_DT_FLOAT: np.float32, _DT_INT32: np.int32, _DT_UINT8: np.uint8,
                 _DT_INT64: np.int64}

# Canonical gRPC status code names by number (tensorflow/core/protobuf/error_codes.proto
# uses the same numbers).
_CODE_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
               "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
               "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
               "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")
# TF Serving's REST server maps status codes to HTTP ones (model_servers/http_server.cc,
# ToHTTPStatusCode); this inverts it. 400 is also FAILED_PRECONDITION and OUT_OF_RANGE,
# and 500 also UNKNOWN and DATA_LOSS: REST cannot tell those apart.
_HTTP_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
               404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
               500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE",
               504: "DEADLINE_EXCEEDED"}
# get_model_status.proto, ModelVersionStatus.State
_MODEL_STATES = {0: "UNKNOWN", 10: "START", 20: "LOADING", 30: "AVAILABLE", 40: "UNLOADING",
                 50: "END"}


class ServingError(TfstyleError):
    """The server refused or failed a request, or could not be reached.

    Attributes:
      code: the gRPC status code name: ``"INVALID_ARGUMENT"`` (the server's checks
        refused an option or an image), ``"UNAVAILABLE"`` (nothing listening, or the
        server is going down), ``"DEADLINE_EXCEEDED"`` (no answer within the timeout),
        ``"NOT_FOUND"`` (no such model or version), ``"RESOURCE_EXHAUSTED"``, ...
        Over REST the code is derived from the HTTP status.
      details: the server's own message (or the transport's), unedited.
    """

    def __init__(self, message: str, code: str = "UNKNOWN", details: str = ""):
        super().__init__(message)
        self.code = code
        self.details = details


class ServingResult(NamedTuple):
    """One finished remote run.

    image: uint8 (H, W, 3), 0..255. loss: the server's final total loss (NaN when it ran
    0 steps, as locally). seed: the seed sent (drawn by the client when none was given;
    pass it again to repeat the run). encoded: the PNG bytes as the server sent them
    (``serving_default``), or None (``stylize_tensor``, which answers with pixels).
    """
    image: np.ndarray
    loss: float
    seed: int
    encoded: bytes | None


# --------------------------------------------------------------------------- images


def encode_image(source) -> bytes:
    """The bytes to send for an image: an encoded PNG or JPEG file.

    Args:
      source: a path, encoded bytes, a PIL image, or an array accepted by
        ``tfstyle.image_io.open_image`` ((H, W[, C]) uint8 / uint16 / float in [0, 1]).

    Returns:
      A file's own bytes (or ``source`` itself) when it is a plain 8-bit RGB or grey
      PNG or JPEG, which the server decodes exactly as a local run would; anything else
      (EXIF-rotated JPEGs, transparency, 16 bits, palettes, CMYK, other formats, PIL
      images, arrays) is decoded here by ``image_io`` and sent as PNG, so that the
      server sees the same pixels as ``tfstyle`` run locally.

    Raises:
      ImageError: the file is missing or unreadable, or is not an image at all. Data
        that starts like a PNG or JPEG but is corrupt further in is sent as it is: the
        server's decoder is the judge, and answers INVALID_ARGUMENT.
      ConfigError: a source of unsupported type or an unusable array.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fp:
                data = fp.read()
        except OSError:
            data = b""
        if not data:
            # image_io tells missing, folder, unreadable and empty apart, in its words.
            image_io.open_image(source)
            raise ConfigError(f"cannot read {os.fspath(source)!r}")  # not reached
        return _pass_or_transcode(data, source)
    if isinstance(source, memoryview):
        source = source.tobytes()
    if isinstance(source, (bytes, bytearray)):
        return _pass_or_transcode(bytes(source), bytes(source))
    return _png(image_io.open_image(source))


def _pass_or_transcode(data, source):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = Image.open(io.BytesIO(data))  # reads the header only
            width, height = header.size
            plain = (header.format in ("PNG", "JPEG") and header.mode in ("RGB", "L")
                     and "transparency" not in header.info
                     and not getattr(header, "is_animated", False)
                     and not _rotated(header, data))
    except Exception:
        # Not an image Pillow can even identify: let image_io say so, naming the file.
        image_io.open_image(source)
        plain = False
        width = height = 0
    if plain and width * height <= image_io.MAX_PIXELS:
        return data
    return _png(image_io.open_image(source))


def _rotated(header, data):
    """Whether an EXIF orientation asks for a rotation or flip: tf.io.decode_image
    ignores it, image_io applies it. Without decoding the pixels: a JPEG's EXIF is in
    its header; a PNG's eXIf chunk may follow the image data, so its presence is enough."""
    if header.format == "PNG":
        return b"eXIf" in data
    return header.getexif().get(0x0112, 1) != 1


def _png(image) -> bytes:
    buffer = io.BytesIO()
    # Fast compression: the bytes cross a network once, the encode is paid per request.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _pixels(source) -> np.ndarray:
    """uint8 (H, W, 3) pixels, decoded as a local run decodes them."""
    return np.asarray(image_io.open_image(source), dtype=np.uint8)


# --------------------------------------------------------------------------- options


def _int(name, value, bits):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not lo <= value <= hi:
        raise ConfigError(f"{name} = {value} does not fit the model's int{bits} input "
                          f"({lo}..{hi})")
    return value


def _float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or abs(value) > float(np.finfo(np.float32).max):
        raise ConfigError(f"{name} must be a finite float32 number, got {value}")
    return value


def _option_inputs(steps, size, content_weight, style_weight, tv_weight, seed, init,
                   style_scale, preserve_colors, style_loss, stage_size, stage_factor,
                   style_strength):
    """The option inputs as {alias: (dtype, python value)}; ``seed`` must be set."""
    if not isinstance(init, str) or init not in INITS:
        raise ConfigError(f"init must be one of {', '.join(INITS)} for a run on a server "
                          f"(it cannot read a local start image), got {init!r}")
    for name, value, allowed in (("preserve_colors", preserve_colors, PRESERVE_COLORS),
                                 ("style_loss", style_loss, STYLE_LOSSES)):
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return {
        "steps": (_DT_INT32, _int("steps", steps, 32)),
        "size": (_DT_INT32, _int("size", size, 32)),
        "content_weight": (_DT_FLOAT, _float("content_weight", content_weight)),
        "style_weight": (_DT_FLOAT, _float("style_weight", style_weight)),
        "tv_weight": (_DT_FLOAT, _float("tv_weight", tv_weight)),
        "seed": (_DT_INT64, _int("seed", seed, 64)),
        "init": (_DT_STRING, init.encode()),
        "style_scale": (_DT_FLOAT, _float("style_scale", style_scale)),
        "preserve_colors": (_DT_STRING, preserve_colors.encode()),
        "style_loss": (_DT_STRING, style_loss.encode()),
        "stage_size": (_DT_INT32, _int("stage_size", stage_size, 32)),
        "stage_factor": (_DT_FLOAT, _float("stage_factor", stage_factor)),
        "style_strength": (_DT_FLOAT, _float("style_strength", style_strength)),
    }


def draw_seed() -> int:
    """A random seed in 0..2**63-1, the range ``RunOptions`` accepts."""
    return secrets.randbits(63)


# --------------------------------------------------------------------------- gRPC wire


@functools.lru_cache(maxsize=None)
def _wire():
    """Message classes wire-compatible with TF Serving's protos (field numbers and types
    as in tensorflow/core/framework/tensor.proto, tensorflow_serving/apis/model.proto,
    predict.proto, get_model_status.proto, status.proto), in a private descriptor pool
    so they never clash with TensorFlow's own in the same process. Enums are int32 on
    the wire; fields this client never reads are left out (parsers skip them)."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError as e:
        raise ConfigError(f"the gRPC client needs protobuf ({e}): {_INSTALL_HINT}, "
                          f"or use the REST API (--protocol=rest)") from None

    F = descriptor_pb2.FieldDescriptorProto
    types = {"int64": F.TYPE_INT64, "int32": F.TYPE_INT32, "bool": F.TYPE_BOOL,
             "string": F.TYPE_STRING, "bytes": F.TYPE_BYTES, "float": F.TYPE_FLOAT,
             "double": F.TYPE_DOUBLE}
    package = "tfstyle.wire"
    file = descriptor_pb2.FileDescriptorProto(name="tfstyle/serving_wire.proto",
                                              package=package, syntax="proto3")

    def message(name, fields, parent=None):
        msg = (parent.nested_type if parent else file.message_type).add(name=name)
        for field_name, number, kind in fields:
            repeated = kind.startswith("repeated ")
            kind = kind.removeprefix("repeated ")
            field = msg.field.add(name=field_name, number=number,
                                  label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if kind in types:
                field.type = types[kind]
            else:
                field.type = F.TYPE_MESSAGE
                field.type_name = f".{package}.{kind}"
        return msg

    def map_field(msg, name, number, value_type):
        entry = message(name.title().replace("_", "") + "Entry",
                        [("key", 1, "string"), ("value", 2, value_type)], parent=msg)
        entry.options.map_entry = True
        msg.field.add(name=name, number=number, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                      type_name=f".{package}.{msg.name}.{entry.name}")

    shape = message("TensorShapeProto", [("dim", 2, "repeated TensorShapeProto.Dim"),
                                         ("unknown_rank", 3, "bool")])
    message("Dim", [("size", 1, "int64"), ("name", 2, "string")], parent=shape)
    message("TensorProto", [
        ("dtype", 1, "int32"), ("tensor_shape", 2, "TensorShapeProto"),
        ("version_number", 3, "int32"), ("tensor_content", 4, "bytes"),
        ("float_val", 5, "repeated float"), ("double_val", 6, "repeated double"),
        ("int_val", 7, "repeated int32"), ("string_val", 8, "repeated bytes"),
        ("int64_val", 10, "repeated int64"), ("bool_val", 11, "repeated bool"),
        ("half_val", 13, "repeated int32")])
    message("Int64Value", [("value", 1, "int64")])  # google/protobuf/wrappers.proto
    message("ModelSpec", [("name", 1, "string"), ("version", 2, "Int64Value"),
                          ("signature_name", 3, "string"), ("version_label", 4, "string")])
    request = message("PredictRequest", [("model_spec", 1, "ModelSpec"),
                                         ("output_filter", 3, "repeated string")])
    map_field(request, "inputs", 2, "TensorProto")
    response = message("PredictResponse", [("model_spec", 2, "ModelSpec")])
    map_field(response, "outputs", 1, "TensorProto")
    message("GetModelStatusRequest", [("model_spec", 1, "ModelSpec")])
    message("StatusProto", [("error_code", 1, "int32"), ("error_message", 2, "string")])
    message("ModelVersionStatus", [("version", 1, "int64"), ("state", 2, "int32"),
                                   ("status", 3, "StatusProto")])
    message("GetModelStatusResponse",
            [("model_version_status", 1, "repeated ModelVersionStatus")])

    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    classes = {m.name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{package}.{m.name}")) for m in file.message_type}
    return type("Wire", (), classes)


def _tensor_proto(wire, dtype, value):
    """A TensorProto of a Python scalar / bytes (shape []) or a uint8 array (any shape)."""
    tensor = wire.TensorProto(dtype=dtype)
    if isinstance(value, np.ndarray):
        tensor.tensor_shape.dim.extend(wire.TensorShapeProto.Dim(size=n) for n in value.shape)
        tensor.tensor_content = np.ascontiguousarray(value).tobytes()
    elif dtype == _DT_STRING:
        tensor.string_val.append(value)
    elif dtype == _DT_FLOAT:
        tensor.float_val.append(value)
    elif dtype == _DT_INT32:
        tensor.int_val.append(value)
    elif dtype == _DT_INT64:
        tensor.int64_val.append(value)
    else:
        raise AssertionError(f"no scalar encoding for dtype {dtype}")
    return tensor


def _tensor_value(tensor, alias):
    """A response TensorProto as bytes (string scalar), a float/int (numeric scalar) or
    a numpy array, whichever way the server filled it (TF Serving fills the typed
    repeated fields; tensor_content is what other servers and options use)."""
    shape = tuple(d.size for d in tensor.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    if tensor.dtype == _DT_STRING:
        values = list(tensor.string_val)
        if shape == () and len(values) == 1:
            return values[0]
        return np.array(values, dtype=object).reshape(shape)
    if tensor.dtype not in _NUMPY_DTYPES:
        raise ServingError(f"the server answered output {alias!r} with dtype {tensor.dtype}, "
                           f"which this client does not read: is it the tfstyle model?",
                           "INTERNAL")
    np_dtype = np.dtype(_NUMPY_DTYPES[tensor.dtype]).newbyteorder("<")
    if tensor.tensor_content:
        array = np.frombuffer(tensor.tensor_content, dtype=np_dtype)
    else:
        field = {_DT_FLOAT: tensor.float_val, _DT_INT64: tensor.int64_val}.get(
            tensor.dtype, tensor.int_val)
        array = np.asarray(list(field)).astype(np_dtype)
        # TensorFlow's FromProto repeats the last value when fewer are stored.
        if 0 < array.size < count:
            array = np.concatenate([array, np.full(count - array.size, array[-1], np_dtype)])
    if array.size != count:
        raise ServingError(f"the server's output {alias!r} holds {array.size} values for "
                           f"shape {list(shape)}", "INTERNAL")
    array = array.reshape(shape).astype(np_dtype.newbyteorder("="))
    return array.item() if shape == () else array


# --------------------------------------------------------------------------- client


class TFServingClient:
    """Sends style-transfer jobs to a TF Serving running the exported tfstyle model.

    Args:
      target: ``host:port`` of the server (``[::1]:8500`` for IPv6); the port defaults
        to TF Serving's 8500 for gRPC and 8501 for REST. ``http://host:port`` is
        accepted for REST.
      model_name: the server's ``--model_name``.
      protocol: ``"grpc"`` (needs ``pip install tfstyle[serving]``) or ``"rest"``.
      timeout: seconds to wait for one answer; style transfer takes seconds to minutes
        per image, so allow for the server's load.
      signature: ``"serving_default"`` (sends encoded files) or ``"stylize_tensor"``
        (sends pixels).
      version: a model version number to pin, or None for the latest.

    One client may be used from many threads at once (the CLI sends ``--concurrency``
    requests over one client). Close it, or use it as a context manager, to release the
    gRPC channel.
    """

    def __init__(self, target: str, model_name: str = "tfstyle", protocol: str = "grpc",
                 timeout: float = 600.0, signature: str = "serving_default",
                 version: int | None = None, max_message_bytes: int = MAX_MESSAGE_BYTES):
        if protocol not in DEFAULT_PORTS:
            raise ConfigError(f"protocol must be grpc or rest, got {protocol!r}")
        if signature not in SIGNATURES:
            raise ConfigError(f"signature must be one of {', '.join(SIGNATURES)}, got "
                              f"{signature!r}")
        if not model_name or "/" in model_name or ":" in model_name:
            raise ConfigError(f"model name {model_name!r} is not a TF Serving model name")
        timeout = _float("timeout", timeout)
        if timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout:g}")
        if version is not None:
            version = _int("version", version, 64)
            if version < 1:
                raise ConfigError(f"model version must be ≥ 1, got {version}")
        self.host, self.port = _parse_target(target, protocol)
        self.target = f"[{self.host}]:{self.port}" if ":" in self.host else \
            f"{self.host}:{self.port}"
        self.model_name = model_name
        self.protocol = protocol
        self.timeout = timeout
        self.signature = signature
        self.version = version
        self.max_message_bytes = int(max_message_bytes)
        self._channel = None
        if protocol == "grpc":
            grpc = _import_grpc()
            self._wire = _wire()
            self._channel = grpc.insecure_channel(self.target, options=[
                ("grpc.max_send_message_length", self.max_message_bytes),
                ("grpc.max_receive_message_length", self.max_message_bytes)])
            self._predict_rpc = self._channel.unary_unary(
                "/tensorflow.serving.PredictionService/Predict",
                request_serializer=self._wire.PredictRequest.SerializeToString,
                response_deserializer=self._wire.PredictResponse.FromString)
            self._status_rpc = self._channel.unary_unary(
                "/tensorflow.serving.ModelService/GetModelStatus",
                request_serializer=self._wire.GetModelStatusRequest.SerializeToString,
                response_deserializer=self._wire.GetModelStatusResponse.FromString)
        else:
            # A proxy from the environment must not catch requests to this machine.
            proxies = {} if _is_loopback(self.host) else None
            self._opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))

    def __repr__(self):
        return (f"TFServingClient({self.target!r}, model_name={self.model_name!r}, "
                f"protocol={self.protocol!r}, signature={self.signature!r})")

    def close(self):
        """Releases the gRPC channel; the client cannot be used afterwards."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----- style transfer

    def stylize(self, content, style, steps: int = _DEFAULTS.steps, size: int = _DEFAULTS.size,
                content_weight: float = _DEFAULTS.content_weight,
                style_weight: float = _DEFAULTS.style_weight,
                tv_weight: float = _DEFAULTS.tv_weight, seed: int | None = None,
                init: str = _DEFAULTS.init, style_scale: float = _DEFAULTS.style_scale,
                preserve_colors: str = _DEFAULTS.preserve_colors,
                style_loss: str = _DEFAULTS.style_loss, stage_size: int = _DEFAULTS.stage_size,
                stage_factor: float = _DEFAULTS.stage_factor,
                style_strength: float = _DEFAULTS.style_strength) -> np.ndarray:
        """Stylizes ``content`` with ``style`` on the server.

        Args:
          content, style: a path, encoded bytes, a PIL image, or an array (H, W[, C])
            (see ``encode_image``).
          steps, size, content_weight, style_weight, tv_weight, init, style_scale,
            preserve_colors, style_loss, stage_size, stage_factor, style_strength: as in
            ``RunOptions``
            (one style; ``steps`` split over the coarse-to-fine stages as there); ``size``
            0 keeps the content's own size; ``init`` is one of content, noise, style.
          seed: None draws one (``stylize_result`` reports it).

        Returns:
          The stylized image, uint8 (H, W, 3) in 0..255, max(H, W) == size.

        Raises:
          ServingError: refused by the server (``code`` INVALID_ARGUMENT, with its
            message), unreachable (UNAVAILABLE), too slow (DEADLINE_EXCEEDED), ...
          ImageError, ConfigError: an input that cannot be sent.
        """
        return self.stylize_result(content, style, steps=steps, size=size,
                                   content_weight=content_weight, style_weight=style_weight,
                                   tv_weight=tv_weight, seed=seed, init=init,
                                   style_scale=style_scale, preserve_colors=preserve_colors,
                                   style_loss=style_loss, stage_size=stage_size,
                                   stage_factor=stage_factor,
                                   style_strength=style_strength).image

    def stylize_bytes(self, content, style, **options) -> bytes:
        """As ``stylize``, but returns the result as PNG file bytes (the server's own,
        from ``serving_default``; encoded here from ``stylize_tensor``'s pixels)."""
        result = self._run(content, style, decode=False, **options)
        return result.encoded if result.encoded is not None else _png(
            Image.fromarray(result.image))

    def stylize_result(self, content, style, steps: int = _DEFAULTS.steps,
                       size: int = _DEFAULTS.size,
                       content_weight: float = _DEFAULTS.content_weight,
                       style_weight: float = _DEFAULTS.style_weight,
                       tv_weight: float = _DEFAULTS.tv_weight, seed: int | None = None,
                       init: str = _DEFAULTS.init,
                       style_scale: float = _DEFAULTS.style_scale,
                       preserve_colors: str = _DEFAULTS.preserve_colors,
                       style_loss: str = _DEFAULTS.style_loss,
                       stage_size: int = _DEFAULTS.stage_size,
                       stage_factor: float = _DEFAULTS.stage_factor,
                       style_strength: float = _DEFAULTS.style_strength) -> ServingResult:
        """As ``stylize``, returning a ``ServingResult``: the image, the final loss, the
        seed used and the PNG bytes the server sent."""
        return self._run(content, style, steps=steps, size=size, content_weight=content_weight,
                         style_weight=style_weight, tv_weight=tv_weight, seed=seed, init=init,
                         style_scale=style_scale, preserve_colors=preserve_colors,
                         style_loss=style_loss, stage_size=stage_size,
                         stage_factor=stage_factor, style_strength=style_strength)

    def _run(self, content, style, decode=True, steps=_DEFAULTS.steps, size=_DEFAULTS.size,
             content_weight=_DEFAULTS.content_weight, style_weight=_DEFAULTS.style_weight,
             tv_weight=_DEFAULTS.tv_weight, seed=None, init=_DEFAULTS.init,
             style_scale=_DEFAULTS.style_scale, preserve_colors=_DEFAULTS.preserve_colors,
             style_loss=_DEFAULTS.style_loss, stage_size=_DEFAULTS.stage_size,
             stage_factor=_DEFAULTS.stage_factor, style_strength=_DEFAULTS.style_strength):
        seed = draw_seed() if seed is None else seed
        inputs = _option_inputs(steps, size, content_weight, style_weight, tv_weight, seed,
                                init, style_scale, preserve_colors, style_loss, stage_size,
                                stage_factor, style_strength)
        if self.signature == "serving_default":
            inputs["content"] = (_DT_STRING, encode_image(content))
            inputs["style"] = (_DT_STRING, encode_image(style))
        else:
            inputs["content"] = (_DT_UINT8, _pixels(content))
            inputs["style"] = (_DT_UINT8, _pixels(style))
        outputs = self.predict(inputs)
        loss = outputs.get("loss")
        if isinstance(loss, np.ndarray) and loss.size == 1:
            loss = loss.item()
        if not isinstance(loss, (int, float)):
            raise self._bad_answer(outputs, "a scalar 'loss'")
        if "image_bytes" in outputs:
            encoded = outputs["image_bytes"]
            if not isinstance(encoded, bytes):
                raise self._bad_answer(outputs, "'image_bytes' as one string")
            image = None
            if decode:
                try:
                    image = np.asarray(image_io.open_image(encoded), dtype=np.uint8)
                except TfstyleError as e:
                    raise ServingError(f"the server's image from {self.target} does not "
                                       f"decode: {e}", "DATA_LOSS", str(e)) from None
            return ServingResult(image, float(loss), int(seed), encoded)
        image = outputs.get("image")
        if (not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3):
            raise self._bad_answer(outputs, "'image_bytes' or a uint8 (H, W, 3) 'image'")
        return ServingResult(image_io.to_uint8(image), float(loss), int(seed), None)

    def _bad_answer(self, outputs, expected):
        got = ", ".join(f"{k}: {type(v).__name__}" for k, v in outputs.items()) or "nothing"
        return ServingError(
            f"model {self.model_name!r} at {self.target} answered with {{{got}}}, expected "
            f"{expected}: is it a tfstyle export, and --signature right?", "INTERNAL")

    # ----- the raw API

    def predict(self, inputs: dict) -> dict:
        """One Predict call with the client's model, version and signature.

        Args:
          inputs: {alias: (dtype, value)}: dtype a TensorFlow DataType number (1 float,
            3 int32, 4 uint8, 7 string, 9 int64); value a Python scalar, ``bytes``, or a
            numpy array (sent with its shape).

        Returns:
          {alias: value}: ``bytes`` for string scalars, Python numbers for numeric
          scalars, numpy arrays otherwise.
        """
        if self.protocol == "grpc":
            return self._predict_grpc(inputs)
        return self._predict_rest(inputs)

    def model_status(self) -> list[dict]:
        """The model's versions on the server, as TF Serving's GetModelStatus reports
        them: [{"version": int, "state": "AVAILABLE", "error_code": "OK",
        "error_message": ""}, ...]. Raises ServingError (NOT_FOUND: no such model)."""
        if self.protocol == "grpc":
            request = self._wire.GetModelStatusRequest()
            self._fill_spec(request.model_spec, signature=False)
            response = self._call_grpc(self._status_rpc, request)
            return [{"version": int(s.version),
                     "state": _MODEL_STATES.get(s.state, str(s.state)),
                     "error_code": _code_name(s.status.error_code),
                     "error_message": s.status.error_message}
                    for s in response.model_version_status]
        url = self._url("")
        answer = self._http("GET", url, None)
        return [{"version": int(s.get("version", 0)), "state": s.get("state", "UNKNOWN"),
                 "error_code": s.get("status", {}).get("error_code", "OK"),
                 "error_message": s.get("status", {}).get("error_message", "")}
                for s in answer.get("model_version_status", [])]

    # ----- gRPC

    def _fill_spec(self, spec, signature=True):
        spec.name = self.model_name
        if signature:
            spec.signature_name = self.signature
        if self.version is not None:
            spec.version.value = self.version

    def _predict_grpc(self, inputs):
        wire = self._wire
        request = wire.PredictRequest()
        self._fill_spec(request.model_spec)
        for alias, (dtype, value) in inputs.items():
            request.inputs[alias].CopyFrom(_tensor_proto(wire, dtype, value))
        response = self._call_grpc(self._predict_rpc, request)
        return {alias: _tensor_value(tensor, alias) for alias, tensor in response.outputs.items()}

    def _call_grpc(self, rpc, request):
        if self._channel is None:
            raise ConfigError("this TFServingClient was closed; make a new one")
        grpc = _import_grpc()
        try:
            return rpc(request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code().name if hasattr(e, "code") and e.code() else "UNKNOWN"
            details = (e.details() if hasattr(e, "details") else None) or str(e)
            raise self._error(code, details) from None

    # ----- REST

    def _url(self, verb):
        path = f"/v1/models/{urllib.parse.quote(self.model_name, safe='')}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}{verb}"

    def _predict_rest(self, inputs):
        # The columnar ("inputs") form of TF Serving's REST API: scalars as JSON values,
        # binary strings as {"b64": ...}, tensors as nested lists (api_rest.md).
        columns = {}
        for alias, (dtype, value) in inputs.items():
            if isinstance(value, np.ndarray):
                columns[alias] = value.tolist()
            elif dtype == _DT_STRING and alias in ("content", "style"):
                columns[alias] = {"b64": base64.b64encode(value).decode("ascii")}
            elif dtype == _DT_STRING:  # text (init): a plain JSON string reads better
                try:
                    columns[alias] = value.decode()
                except UnicodeDecodeError:
                    raise ConfigError(f"input {alias!r} is not UTF-8 text: REST sends text "
                                      f"inputs as JSON strings; fix the value") from None
            else:
                columns[alias] = value
        body = json.dumps({"signature_name": self.signature, "inputs": columns},
                          allow_nan=False).encode()
        if len(body) > self.max_message_bytes:
            raise ServingError(
                f"the request to {self.target} is {len(body) / 2**20:.0f} MiB, over the "
                f"{self.max_message_bytes / 2**20:.0f} MiB limit: send smaller images",
                "RESOURCE_EXHAUSTED")
        answer = self._http("POST", self._url(":predict"), body)
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        if outputs is None:
            raise ServingError(f"the REST answer from {self.target} has no 'outputs': "
                               f"{_clip(json.dumps(answer))}", "INTERNAL")
        if not isinstance(outputs, dict) or _is_b64(outputs):
            # TF Serving drops the name when a signature has a single output.
            outputs = {"image_bytes" if _is_b64(outputs) else "output": outputs}
        result = {}
        for alias, value in outputs.items():
            if _is_b64(value):
                try:
                    result[alias] = base64.b64decode(value["b64"], validate=True)
                except ValueError:
                    raise ServingError(f"the server's {alias!r} is not valid base64",
                                       "DATA_LOSS") from None
            elif isinstance(value, list):
                result[alias] = np.asarray(value)
            elif isinstance(value, str):
                result[alias] = value.encode()
            else:
                result[alias] = value
        return result

    def _http(self, method, url, body):
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            try:
                text = e.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                text = ""
            finally:
                e.close()
            code = _HTTP_CODES.get(e.code, "INTERNAL" if e.code >= 500 else "UNKNOWN")
            raise self._error(code, _rest_error_message(text) or f"HTTP {e.code} {e.reason}",
                              http_status=e.code) from None
        except (TimeoutError, socket.timeout):
            raise self._error("DEADLINE_EXCEEDED", "timed out") from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise self._error("DEADLINE_EXCEEDED", "timed out") from None
            raise self._error("UNAVAILABLE", str(reason)) from None
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise self._error("UNAVAILABLE", f"{type(e).__name__}: {e}") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise ServingError(f"the answer from {url} is not JSON: {_clip(payload)!r}; is "
                               f"{self.target} TF Serving's REST port (8501), not gRPC's?",
                               "INTERNAL") from None

    # ----- errors

    def _error(self, code, details, http_status=None):
        """A ServingError whose message says what happened and what to do."""
        where = f"TF Serving at {self.target} ({self.protocol})"
        model = f"model {self.model_name!r}" + (f" version {self.version}"
                                                if self.version is not None else "")
        message = _readable(details)
        if code == "UNAVAILABLE":
            text = (f"no TF Serving at {self.target} ({self.protocol}: {message}): is the "
                    f"container running? (docker compose -f export/compose.yaml up); gRPC "
                    f"listens on 8500, REST on 8501")
        elif code == "DEADLINE_EXCEEDED":
            text = (f"{where} did not answer within --timeout={self.timeout:g} s: raise "
                    f"--timeout or lower --steps / --size (or --concurrency, if the server "
                    f"is busy)")
        elif code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"):
            text = message
        elif code == "NOT_FOUND":
            text = (f"{where} has no {model}: {message}; check --model_name / "
                    f"--model_version against the server's --model_name and the version "
                    f"folders under its model base path")
        elif code == "RESOURCE_EXHAUSTED":
            text = (f"{where} ran out of resources or the message was too large: {message}; "
                    f"lower --size or --concurrency, or send smaller images")
        elif code == "UNIMPLEMENTED" and http_status is None:
            text = (f"{where} does not implement this call: {message}; is {self.target} a "
                    f"TF Serving gRPC port (8500)?")
        else:
            text = f"{where} failed: {code}: {message}"
        return ServingError(text, code, details)


# --------------------------------------------------------------------------- helpers


def _import_grpc():
    try:
        import grpc
    except ImportError as e:
        raise ConfigError(f"the gRPC client needs grpcio ({e}): {_INSTALL_HINT}, or use the "
                          f"REST API (--protocol=rest, port 8501)") from None
    return grpc


def _parse_target(target, protocol):
    """(host, port) of ``host[:port]``, ``[v6]:port`` or, for REST, ``http://host:port``."""
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(f"server address must be host:port, got {target!r}")
    text = target.strip()
    if "://" in text:
        parsed = urllib.parse.urlsplit(text)
        if protocol != "rest" or parsed.scheme != "http" or parsed.path.strip("/"):
            raise ConfigError(f"server address {target!r}: give host:port (an http:// URL "
                              f"only for --protocol=rest, without a path)")
        text = parsed.netloc
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\[\]/\s]+)(?::(\d+))?", text)
    if match is None:
        raise ConfigError(f"server address {target!r} is not host:port (e.g. localhost:8500, "
                          f"[::1]:8500)")
    host = match.group(1) or match.group(3)
    port = match.group(2) or match.group(4)
    port = int(port) if port else DEFAULT_PORTS[protocol]
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} of {target!r} is not in 1..65535")
    return host, port


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)


def _code_name(number):
    return _CODE_NAMES[number] if 0 <= number < len(_CODE_NAMES) else str(number)


def _clip(text, limit=200):
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def _rest_error_message(text):
    """The message of TF Serving's REST error body ``{ "error": "..." }``.

    TF Serving escapes the message with absl::CEscape (http_rest_api_handler.cc,
    FillJsonErrorMsg), which is not JSON escaping: a quote in the message comes out as
    \\' and a non-ASCII byte as \\ooo octal, and json.loads then fails. Undo CEscape then.
    """
    try:
        answer = json.loads(text)
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            return answer["error"]
    except ValueError:
        pass
    match = re.search(r'"error"\s*:\s*"(.*)"\s*}\s*$', text, re.S)
    if match is None:
        return text.strip()
    return _c_unescape(match.group(1))


_C_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", '"': b'"', "'": b"'", "\\": b"\\"}


def _c_unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _C_ESCAPES:
                out += _C_ESCAPES[nxt]
                i += 2
                continue
            octal = re.match(r"[0-7]{1,3}", text[i + 1:i + 4])
            if octal:
                out.append(int(octal.group(0), 8) & 0xFF)
                i += 1 + len(octal.group(0))
                continue
        out += char.encode()
        i += 1
    return out.decode("utf-8", "replace")


def _readable(message):
    """One line of a TensorFlow error message: without the graph node annotations
    (``[[{{node assert_less_equal/Assert/Assert}}]]``) a user cannot act on."""
    message = re.sub(r"\s*\[\[\{\{node [^}]*\}\}[^\]]*\]\]", "", str(message))
    message = re.sub(r"^\s*Graph execution error:\s*", "", message)
    return " ".join(message.split()) or "(no message)"
