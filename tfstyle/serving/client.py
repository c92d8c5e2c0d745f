"""Stylize on a TensorFlow Serving that runs the exported tfstyle model.

    from tfstyle.serving.client import TFServingClient
    client = TFServingClient("localhost:8500")                   # gRPC
    image = client.stylize("photo.jpg", "painting.jpg", steps=300, size=512)  # uint8 (H, W, 3)
    client = TFServingClient("localhost:8501", protocol="rest")  # JSON over HTTP

The SavedModel (``tfstyle.serving.export``) has two signatures, and this client speaks both:

* ``serving_default``: ``content``/``style`` are encoded image files (tf.string scalars),
  the answer is a PNG (``image_bytes``) and the final ``loss``;
* ``stylize_tensor``: ``content``/``style`` are uint8 (H, W, 3) pixels, the answer is
  the uint8 ``image`` and the ``loss``.

Both take the optional images ``init_image`` (a start image), ``temporal_target`` and
``temporal_mask`` (a video frame's, see ``tfstyle.serving.export``; ``""`` or no pixels where
not given), and the run options of ``tfstyle.serving.served_options.SERVED_OPTIONS`` as scalars. The
export gives them defaults that TF Serving 2.21 fills in, but older servers refuse a
Predict that leaves an input out, so every request carries all of them, filled in from
``RunOptions()``.

Dependencies: REST needs only the standard library. gRPC needs ``grpcio`` and
``protobuf`` (``pip install tfstyle[serving]``) but *not* TensorFlow
(``tfstyle.serving.grpc_transport``).

Values are checked here against the bounds every export has (``served_options``), so
that a value no server would take fails before anything is sent. The limits of one
export (``steps`` over its ``max_steps``, a ``size`` over its ``max_side``) and the
images (corrupt, too large) are the server's to check: it says what it refused.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import re
import secrets
import urllib.parse
import warnings
from typing import NamedTuple

import numpy as np
from PIL import Image

from tfstyle import image_io
from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.serving.grpc_transport import GrpcTransport
from tfstyle.serving.rest_transport import RestTransport
from tfstyle.serving.served_options import NAMES, OPTIONAL_IMAGES, SERVED_OPTIONS
from tfstyle.serving.transport import DTYPES, DT_STRING, DT_UINT8, Endpoint, TransportError

__all__ = ["TFServingClient", "ServingError", "ServingResult", "encode_image",
           "DEFAULT_PORTS", "SIGNATURES"]

DEFAULT_PORTS = {"grpc": 8500, "rest": 8501}
SIGNATURES = ("serving_default", "stylize_tensor")
# A 12-megapixel photo sent as PNG is ~30 MB and the uint8 tensor of one 36 MB; gRPC's
# own 4 MiB default would refuse both.
MAX_MESSAGE_BYTES = 256 * 2**20
_TRANSPORTS = {"grpc": GrpcTransport, "rest": RestTransport}


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


def _mask_levels(mask) -> np.ndarray:
    """A per-pixel weight as the server takes it: uint8 (H, W) grey levels, 255 for 1.

    ``mask``: (H, W) uint8 levels, or floats in [0, 1] (rounded to the nearest level)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ConfigError(f"temporal_mask must be one weight per pixel, (H, W), got shape "
                          f"{mask.shape}")
    if mask.dtype == np.uint8:
        return mask
    if mask.dtype.kind not in "fiub" or not np.all((mask >= 0) & (mask <= 1)):
        raise ConfigError("temporal_mask must be uint8 levels or floats in [0, 1]")
    return np.round(mask.astype(np.float64) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------- options


def _option_inputs(options: dict) -> tuple[dict, int]:
    """The option inputs of a request, {name: (dtype, value)}, and the seed they carry.

    ``options``: served options by name (``served_options``); each one left out takes
    its ``RunOptions`` default, and a seed left out or None is drawn.
    """
    unknown = sorted(set(options) - set(NAMES))
    if unknown:
        raise ConfigError(f"unknown option {', '.join(map(repr, unknown))}: a served run "
                          f"takes {', '.join(NAMES)}")
    values = {row.name: options.get(row.name, row.run_default) for row in SERVED_OPTIONS}
    if values["seed"] is None:
        values["seed"] = draw_seed()
    inputs = {row.name: (DTYPES[row.dtype], row.wire_value(values[row.name]))
              for row in SERVED_OPTIONS}
    return inputs, inputs["seed"][1]


def draw_seed() -> int:
    """A random seed in 0..2**63-1, the range ``RunOptions`` accepts."""
    return secrets.randbits(63)


# --------------------------------------------------------------------------- client


class TFServingClient:
    """Sends style-transfer jobs to a TF Serving running the exported tfstyle model.

    Args:
      target: ``host:port`` of the server (``[::1]:8500`` for IPv6); the port defaults
        to TF Serving's 8500 for gRPC and 8501 for REST. ``http://host:port`` is
        accepted for REST.
      model_name: the model's name on the server (TF Serving's ``model_name``).
      protocol: ``"grpc"`` (needs ``pip install tfstyle[serving]``) or ``"rest"``.
      timeout: seconds to wait for one answer; style transfer takes seconds to minutes
        per image, so allow for the server's load.
      signature: ``"serving_default"`` (sends encoded files) or ``"stylize_tensor"``
        (sends pixels).
      version: a model version number to pin, or None for the latest.

    One client may be used from many threads at once (the CLI's remote runs send several
    requests at a time over one client). Close it, or use it as a context manager, to
    release the gRPC channel.
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
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) \
                or not 0 < timeout < math.inf:
            raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if version is not None and (isinstance(version, bool)
                                    or not isinstance(version, numbers.Integral)
                                    or not 1 <= version < 2**63):
            raise ConfigError(f"model version must be an integer ≥ 1, got {version!r}")
        self.host, self.port = _parse_target(target, protocol)
        endpoint = Endpoint(self.host, self.port, model_name, signature,
                            None if version is None else int(version), float(timeout),
                            int(max_message_bytes))
        self.target = endpoint.target
        self.model_name = model_name
        self.protocol = protocol
        self.timeout = endpoint.timeout
        self.signature = signature
        self.version = endpoint.version
        self.max_message_bytes = endpoint.max_message_bytes
        self._transport = _TRANSPORTS[protocol](endpoint)

    def __repr__(self):
        return (f"TFServingClient({self.target!r}, model_name={self.model_name!r}, "
                f"protocol={self.protocol!r}, signature={self.signature!r})")

    def close(self):
        """Releases the gRPC channel; the client cannot be used afterwards."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----- style transfer

    def stylize(self, content, style, **options) -> np.ndarray:
        """Stylizes ``content`` with ``style`` on the server.

        Args:
          content, style: a path, encoded bytes, a PIL image, or an array (H, W[, C])
            (see ``encode_image``).
          **options: the served options by name, each as in ``RunOptions`` (one style;
            ``steps`` split over the coarse-to-fine stages as there), with its default:
            ``tfstyle.serving.served_options.SERVED_OPTIONS`` lists them and their bounds.
            ``size`` 0 keeps the content's own size; ``init`` is one of blend (the
            default), content, noise, style; ``seed`` None (the default) draws one
            (``stylize_result`` reports it).
            Also the optional images, each left out by default: ``init_image`` (an
            image, as ``content``) to start from instead of ``init``;
            ``temporal_target`` (an image) and ``temporal_mask`` (its per-pixel weight,
            (H, W) float in [0, 1] or uint8 0..255), together, at the output's size:
            a video frame's (``tfstyle.video.frames.run_clip``).

        Returns:
          The stylized image, uint8 (H, W, 3) in 0..255, max(H, W) == size.

        Raises:
          ServingError: refused by the server (``code`` INVALID_ARGUMENT, with its
            message), unreachable (UNAVAILABLE), too slow (DEADLINE_EXCEEDED), ...
          ImageError, ConfigError: an input that cannot be sent: an unknown option, a
            value outside its bounds or of the wrong type, an unreadable image.
        """
        return self.stylize_result(content, style, **options).image

    def stylize_bytes(self, content, style, **options) -> bytes:
        """As ``stylize``, but returns the result as PNG file bytes (the server's own,
        from ``serving_default``; encoded here from ``stylize_tensor``'s pixels)."""
        result = self._run(content, style, options, decode=False)
        return result.encoded if result.encoded is not None else _png(
            Image.fromarray(result.image))

    def stylize_result(self, content, style, **options) -> ServingResult:
        """As ``stylize``, returning a ``ServingResult``: the image, the final loss, the
        seed used and the PNG bytes the server sent."""
        return self._run(content, style, options)

    def _run(self, content, style, options, decode=True):
        options = dict(options)
        images = dict(content=content, style=style)
        for name in OPTIONAL_IMAGES:
            if options.get(name) is not None:
                images[name] = options[name]
            options.pop(name, None)
        if "temporal_mask" in images:
            images["temporal_mask"] = _mask_levels(images["temporal_mask"])
        inputs, seed = _option_inputs(options)
        for name, image in images.items():
            if self.signature == "serving_default":
                inputs[name] = (DT_STRING, encode_image(image))
            else:
                inputs[name] = (DT_UINT8, image if name == "temporal_mask" else _pixels(image))
        # Every input is sent (TF Serving's REST API refuses fewer, older gRPC servers
        # too): "" or no pixels is "not sent".
        for name in OPTIONAL_IMAGES:
            inputs.setdefault(name, (DT_STRING, b"") if self.signature == "serving_default"
                              else (DT_UINT8, np.zeros([0], np.uint8)))
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
            f"{expected}: is it a tfstyle export, and the signature right?", "INTERNAL")

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
        try:
            return self._transport.predict(inputs)
        except TransportError as e:
            raise self._error(e) from None

    def model_status(self) -> list[dict]:
        """The model's versions on the server, as TF Serving's GetModelStatus reports
        them: [{"version": int, "state": "AVAILABLE", "error_code": "OK",
        "error_message": ""}, ...]. Raises ServingError (NOT_FOUND: no such model)."""
        try:
            return self._transport.model_status()
        except TransportError as e:
            raise self._error(e) from None

    # ----- errors

    def _error(self, failure: TransportError) -> ServingError:
        """A ServingError whose message says what happened and what to do."""
        code = failure.code
        where = f"TF Serving at {self.target} ({self.protocol})"
        model = f"model {self.model_name!r}" + (f" version {self.version}"
                                                if self.version is not None else "")
        message = _readable(failure.details)
        if code == "UNAVAILABLE":
            text = (f"no TF Serving at {self.target} ({self.protocol}: {message}): is the "
                    f"container running? (docker compose -f export/compose.yaml up); gRPC "
                    f"listens on 8500, REST on 8501")
        elif code == "DEADLINE_EXCEEDED":
            text = (f"{where} did not answer within the timeout of {self.timeout:g} s: allow "
                    f"more time, or ask for fewer steps or a smaller size (or fewer requests "
                    f"at once, if the server is busy)")
        elif code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"):
            text = message
        elif code == "NOT_FOUND":
            text = (f"{where} has no {model}: {message}; check the model name and version "
                    f"against the server's model name and the version folders under its "
                    f"model base path")
        elif code == "RESOURCE_EXHAUSTED":
            text = (f"{where} ran out of resources or the message was too large: {message}; "
                    f"ask for a smaller size or fewer requests at once, or send smaller "
                    f"images")
        elif code == "UNIMPLEMENTED" and failure.http_status is None:
            text = (f"{where} does not implement this call: {message}; is {self.target} a "
                    f"TF Serving gRPC port (8500)?")
        else:
            text = f"{where} failed: {code}: {message}"
        return ServingError(text, code, failure.details)


# --------------------------------------------------------------------------- helpers


def _parse_target(target, protocol):
    """(host, port) of ``host[:port]``, ``[v6]:port`` or, for REST, ``http://host:port``."""
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(f"server address must be host:port, got {target!r}")
    text = target.strip()
    if "://" in text:
        parsed = urllib.parse.urlsplit(text)
        if protocol != "rest" or parsed.scheme != "http" or parsed.path.strip("/"):
            raise ConfigError(f"server address {target!r}: give host:port (an http:// URL "
                              f"only for the REST protocol, without a path)")
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


def _readable(message):
    """One line of a TensorFlow error message: without the graph node annotations
    (``[[{{node assert_less_equal/Assert/Assert}}]]``) a user cannot act on."""
    message = re.sub(r"\s*\[\[\{\{node [^}]*\}\}[^\]]*\]\]", "", str(message))
    message = re.sub(r"^\s*Graph execution error:\s*", "", message)
    return " ".join(message.split()) or "(no message)"
