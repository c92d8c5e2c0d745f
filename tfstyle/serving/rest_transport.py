"""The REST transport: TF Serving's HTTP/JSON API, with the standard library only.

Requests use the columnar ("inputs") form of the predict API: scalars as JSON values,
binary strings as ``{"b64": ...}``, tensors as nested lists (TF Serving's api_rest.md).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from tfstyle.errors import ConfigError
from tfstyle.serving.served_options import OPTIONAL_IMAGES
from tfstyle.serving.transport import DT_STRING, Endpoint, TransportError

# The string inputs that carry encoded images: base64 on the wire.
IMAGE_INPUTS = ("content", "style") + OPTIONAL_IMAGES

__all__ = ["RestTransport"]

# TF Serving's REST server maps status codes to HTTP ones (model_servers/http_server.cc,
# ToHTTPStatusCode); this inverts it. 400 is also FAILED_PRECONDITION and OUT_OF_RANGE,
# and 500 also UNKNOWN and DATA_LOSS: REST cannot tell those apart.
_HTTP_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
               404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
               500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE",
               504: "DEADLINE_EXCEEDED"}


class RestTransport:
    """Predict and model status calls to one model over HTTP; thread-safe (each call
    opens its own connection)."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        # A proxy from the environment must not catch requests to this machine.
        proxies = {} if _is_loopback(endpoint.host) else None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))

    def predict(self, inputs: dict) -> dict:
        """See ``tfstyle.serving.transport.Transport.predict``."""
        body = json.dumps({"signature_name": self.endpoint.signature,
                           "inputs": _columns(inputs)}, allow_nan=False).encode()
        limit = self.endpoint.max_message_bytes
        if len(body) > limit:
            raise TransportError("RESOURCE_EXHAUSTED", f"the request is "
                                 f"{len(body) / 2**20:.0f} MiB, over the client's limit of "
                                 f"{limit / 2**20:.0f} MiB")
        answer = self._http("POST", self._url(":predict"), body)
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        if outputs is None:
            raise TransportError("INTERNAL", f"the REST answer has no 'outputs': "
                                 f"{_clip(json.dumps(answer))}")
        if not isinstance(outputs, dict) or _is_b64(outputs):
            # TF Serving drops the name when a signature has a single output.
            outputs = {"image_bytes" if _is_b64(outputs) else "output": outputs}
        return {alias: _output_value(alias, value) for alias, value in outputs.items()}

    def model_status(self) -> list[dict]:
        """See ``tfstyle.serving.transport.Transport.model_status``."""
        answer = self._http("GET", self._url(""), None)
        return [{"version": int(s.get("version", 0)), "state": s.get("state", "UNKNOWN"),
                 "error_code": s.get("status", {}).get("error_code", "OK"),
                 "error_message": s.get("status", {}).get("error_message", "")}
                for s in answer.get("model_version_status", [])]

    def close(self) -> None:
        """Nothing to release: every call has its own connection."""

    def _url(self, verb):
        e = self.endpoint
        path = f"/v1/models/{urllib.parse.quote(e.model_name, safe='')}"
        if e.version is not None:
            path += f"/versions/{e.version}"
        host = f"[{e.host}]" if ":" in e.host else e.host
        return f"http://{host}:{e.port}{path}{verb}"

    def _http(self, method, url, body):
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=self.endpoint.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            try:
                text = e.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                text = ""
            finally:
                e.close()
            code = _HTTP_CODES.get(e.code, "INTERNAL" if e.code >= 500 else "UNKNOWN")
            raise TransportError(code, _rest_error_message(text) or f"HTTP {e.code} {e.reason}",
                                 http_status=e.code) from None
        except (TimeoutError, socket.timeout):
            raise TransportError("DEADLINE_EXCEEDED", "timed out") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise TransportError("DEADLINE_EXCEEDED", "timed out") from None
            raise TransportError("UNAVAILABLE", str(e.reason)) from None
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise TransportError("UNAVAILABLE", f"{type(e).__name__}: {e}") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise TransportError("INTERNAL", f"the answer from {url} is not JSON: "
                                 f"{_clip(payload)!r}; is {self.endpoint.target} TF Serving's "
                                 f"REST port (8501), not gRPC's?") from None


def _columns(inputs):
    """{alias: (dtype, value)} -> the JSON values of the columnar "inputs" object."""
    columns = {}
    for alias, (dtype, value) in inputs.items():
        if isinstance(value, np.ndarray):
            columns[alias] = value.tolist()
        elif dtype == DT_STRING and alias in IMAGE_INPUTS:
            columns[alias] = {"b64": base64.b64encode(value).decode("ascii")}
        elif dtype == DT_STRING:  # text (init): a plain JSON string reads better
            try:
                columns[alias] = value.decode()
            except UnicodeDecodeError:
                raise ConfigError(f"input {alias!r} is not UTF-8 text: REST sends text "
                                  f"inputs as JSON strings; fix the value") from None
        else:
            columns[alias] = value
    return columns


def _output_value(alias, value):
    """One output of the JSON answer as bytes, a number or a numpy array."""
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise TransportError("DATA_LOSS", f"the server's {alias!r} is not valid "
                                 f"base64") from None
    if isinstance(value, list):
        return np.asarray(value)
    if isinstance(value, str):
        return value.encode()
    return value


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)


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
