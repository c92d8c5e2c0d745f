"""A loopback stand-in for TensorFlow Serving, for the client and remote-CLI tests.

A test fixture, not a product feature: TF Serving's binary cannot be installed where
the tests run, so this serves an exported SavedModel the way TF Serving does, over
real sockets on 127.0.0.1:

* gRPC ``tensorflow.serving.PredictionService/Predict`` and
  ``ModelService/GetModelStatus`` (the servicers of ``tensorflow-serving-api``);
* REST ``POST /v1/models/<name>[/versions/<n>]:predict`` (columnar ``inputs`` and row
  ``instances``) and ``GET /v1/models/<name>[/versions/<n>]``.

Like TF Serving it loads the highest integer-named version under the model base path
with the *session-based* loader (one ``tf.compat.v1.Session`` shared by every
concurrent request), runs the warm-up records of ``assets.extra`` once, maps request
aliases to the signature's tensor names, and answers errors with TF Serving's codes
and messages. Where this copies TF Serving's behaviour, the comment names the source
file of github.com/tensorflow/serving it follows.

    with LoopbackServing(base_path) as server:
        client = TFServingClient(server.grpc_target)
"""

from __future__ import annotations

import atexit
import base64
import collections
import functools
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_log_pb2,
                                     prediction_service_pb2_grpc)

# tensorflow_serving/model_servers/grpc_status_util.cc: ToGRPCStatus
GRPC_MESSAGE_LIMIT = 1024
# tensorflow_serving/model_servers/http_server.cc: ToHTTPStatusCode
HTTP_STATUS = {"OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
               "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
               "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
               "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
               "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
               "UNAUTHENTICATED": 401}
# tensorflow_serving/model_servers/http_rest_api_handler.cc
PREDICT_PATH = re.compile(r"(?i)/v1/models/([^/:]+)(?:/versions/(\d+))?:(classify|regress|predict)")
STATUS_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:/versions/(\d+))?")


class ServingStatus(Exception):
    """A non-OK status: ``code`` is the canonical code name, ``message`` TF Serving's."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# Canonical code names by number (tensorflow/core/protobuf/error_codes.proto).
CODE_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
              "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
              "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
              "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")


def _op_error_status(error: tf.errors.OpError) -> ServingStatus:
    # Python's session wrapper prefixes this; the C++ Status TF Serving sends does not.
    message = re.sub(r"^Graph execution error:\s*", "", error.message)
    code = error.error_code
    return ServingStatus(CODE_NAMES[code] if 0 <= code < len(CODE_NAMES) else "UNKNOWN",
                         message)


# ----------------------------------------------------------------------------- the model


class Servable:
    """One loaded version: a session, its MetaGraphDef and version number."""

    def __init__(self, base_path: str, warmup: bool = True):
        versions = [int(name) for name in os.listdir(base_path)
                    if name.isdigit() and os.path.isdir(os.path.join(base_path, name))]
        if not versions:
            raise FileNotFoundError(f"no version directory under {base_path}")
        self.version = max(versions)  # TF Serving's default "latest" version policy
        self.path = os.path.join(base_path, str(self.version))
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.loader.load(
                self.session, ["serve"], self.path)
        # Concurrent requests share the session; a finalized graph cannot be mutated.
        self.graph.finalize()
        if warmup:
            self._warmup()

    def _warmup(self):
        # tensorflow_serving/servables/tensorflow/saved_model_warmup.cc: every
        # PredictionLog in assets.extra/tf_serving_warmup_requests runs once at load.
        path = os.path.join(self.path, "assets.extra", "tf_serving_warmup_requests")
        if not os.path.exists(path):
            return
        for record in tf.data.TFRecordDataset(path):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.HasField("predict_log"):
                self.predict(log.predict_log.request)

    def signature(self, name):
        name = name or "serving_default"
        if name not in self.meta_graph.signature_def:
            # predict_util.cc: RunPredict
            raise ServingStatus("FAILED_PRECONDITION",
                                f'Serving signature key "{name}" not found.')
        return self.meta_graph.signature_def[name]

    def predict(self, request: predict_pb2.PredictRequest, timeout_s: float | None = None):
        """Runs a PredictRequest; returns {alias: numpy value} or raises ServingStatus."""
        signature = self.signature(request.model_spec.signature_name)
        sig_inputs, given = signature.inputs, request.inputs
        # predict_util.cc: VerifyRequestInputsSize
        if len(given) > len(sig_inputs) or (len(given) < len(sig_inputs)
                                             and not signature.defaults):
            sent, wanted = set(given), set(sig_inputs)
            raise ServingStatus(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(given)}!={len(sig_inputs)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}.")
        # tensorflow/cc/saved_model/util.cc: GetInputValues
        feeds, seen = {}, set()
        for alias, info in sorted(sig_inputs.items()):
            if alias in given:
                proto = given[alias]
                seen.add(alias)
            elif alias in signature.defaults:
                proto = signature.defaults[alias]
            else:
                raise ServingStatus(
                    "INVALID_ARGUMENT",
                    f"Signature input alias: {alias}(feed name: {info.name}) not found in "
                    f"request and no default value provided. Inputs expected to be in the "
                    f"request {{{','.join(sorted(given))}}}, or default input alias set: "
                    f"{','.join(sorted(signature.defaults))}")
            try:
                value = tf.make_ndarray(proto)
            except Exception:
                raise ServingStatus("INVALID_ARGUMENT", f"tensor parsing error: {alias}") from None
            # The C++ session refuses a feed of another dtype (Python's would cast it).
            if proto.dtype != info.dtype:
                raise ServingStatus(
                    "INVALID_ARGUMENT",
                    f"Expects arg[{len(feeds)}] to be {tf.as_dtype(info.dtype).name} but "
                    f"{tf.as_dtype(proto.dtype).name} is provided")
            expected = tf.TensorShape(info.tensor_shape)
            if not expected.is_compatible_with(value.shape):
                raise ServingStatus(
                    "INVALID_ARGUMENT",
                    f"input {alias} has shape {list(value.shape)}, the signature expects "
                    f"{expected}")
            feeds[info.name] = value
        if given and len(seen) != len(given):
            raise ServingStatus(
                "INVALID_ARGUMENT",
                f"Inputs contains invalid name. Used request inputs: "
                f"{','.join(sorted(seen))}, request input: {','.join(sorted(given))}")
        outputs = list(request.output_filter) or list(signature.outputs)
        for alias in outputs:
            if alias not in signature.outputs:
                raise ServingStatus(
                    "INVALID_ARGUMENT",
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(signature.outputs))}}}.")
        options = None
        if timeout_s is not None:
            if timeout_s <= 0:
                raise ServingStatus("DEADLINE_EXCEEDED", "Deadline Exceeded")
            # prediction_service_impl.cc: the gRPC deadline becomes the Run timeout.
            options = tf.compat.v1.RunOptions(timeout_in_ms=max(1, int(timeout_s * 1000)))
        fetches = {alias: signature.outputs[alias].name for alias in outputs}
        try:
            values = self.session.run(fetches, feeds, options=options)
        except tf.errors.OpError as e:
            raise _op_error_status(e) from None
        return {alias: (values[alias], signature.outputs[alias].dtype) for alias in outputs}

    def close(self):
        self.session.close()


def tensor_proto(value, dtype, as_content: bool = False):
    """numpy -> TensorProto the way TF Serving fills responses: the typed repeated
    fields (``Tensor::AsProtoField``, predict_util.cc's default), or tensor_content."""
    if as_content and dtype != types_pb2.DT_STRING:
        return tf.make_tensor_proto(np.asarray(value, tf.as_dtype(dtype).as_numpy_dtype))
    array = np.array(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)
    proto = empty_tensor(dtype, array.shape)
    flat = array.ravel().tolist()
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(flat)
    elif dtype == types_pb2.DT_FLOAT:
        proto.float_val.extend(flat)
    elif dtype == types_pb2.DT_DOUBLE:
        proto.double_val.extend(flat)
    elif dtype == types_pb2.DT_INT64:
        proto.int64_val.extend(flat)
    elif dtype == types_pb2.DT_BOOL:
        proto.bool_val.extend(flat)
    else:  # int32, int16, int8, uint8
        proto.int_val.extend(flat)
    return proto


def empty_tensor(dtype, shape):
    proto = tensor_pb2.TensorProto(dtype=dtype)
    proto.tensor_shape.CopyFrom(tf.TensorShape(list(shape)).as_proto())
    return proto


# ----------------------------------------------------------------------------- JSON


def _json_type(value):
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return "Number"
    return {str: "String", list: "Array", dict: "Object"}.get(type(value), "?")


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def json_to_tensor(value, dtype) -> tensor_pb2.TensorProto:
    """A JSON value -> TensorProto of ``dtype``, by tensorflow_serving/util/json_tensor.cc
    (GetDenseTensorShape, FillTensorProto, AddValueToTensor)."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    proto = empty_tensor(dtype, shape)
    type_name = tf.as_dtype(dtype).name

    def type_error(v):
        return ServingStatus("INVALID_ARGUMENT",
                             f"JSON Value: {json.dumps(v)} Type: {_json_type(v)} is not of "
                             f"expected type: {type_name}")

    def fill(v, level):
        if not isinstance(v, list):
            if level != len(shape):
                raise ServingStatus("INVALID_ARGUMENT",
                                    f"JSON Value: {json.dumps(v)} found at incorrect level: "
                                    f"{level + 1} in the JSON DOM. Expected at level: {len(shape)}")
            if isinstance(v, dict):
                if dtype != types_pb2.DT_STRING:
                    raise type_error(v)
                if not _is_b64(v):
                    raise ServingStatus("INVALID_ARGUMENT",
                                        f"JSON Value: {json.dumps(v)} not formatted correctly "
                                        f"for base64 data")
                try:
                    proto.string_val.append(base64.b64decode(v["b64"], validate=True))
                except ValueError:
                    raise ServingStatus("INVALID_ARGUMENT", "Unable to base64 decode") from None
            elif dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise type_error(v)
                (proto.float_val if dtype == types_pb2.DT_FLOAT else proto.double_val).append(v)
            elif dtype in (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8,
                           types_pb2.DT_UINT8):
                # rapidjson's IsInt(): a JSON integer token that fits int32 ("1.0" is not).
                if isinstance(v, bool) or not isinstance(v, int) or not -2**31 <= v < 2**31:
                    raise type_error(v)
                proto.int_val.append(v)
            elif dtype == types_pb2.DT_INT64:
                if isinstance(v, bool) or not isinstance(v, int) or not -2**63 <= v < 2**63:
                    raise type_error(v)
                proto.int64_val.append(v)
            elif dtype == types_pb2.DT_STRING:
                if not isinstance(v, str):
                    raise type_error(v)
                proto.string_val.append(v.encode())
            elif dtype == types_pb2.DT_BOOL:
                if not isinstance(v, bool):
                    raise type_error(v)
                proto.bool_val.append(v)
            else:
                raise ServingStatus("UNIMPLEMENTED",
                                    f"Conversion of JSON Value: {json.dumps(v)} to type: "
                                    f"{type_name}")
            return
        if level >= len(shape):
            raise ServingStatus("INVALID_ARGUMENT", f"Encountered list at unexpected level: "
                                                    f"{level} expected < {len(shape)}")
        if len(v) != shape[level]:
            raise ServingStatus("INVALID_ARGUMENT",
                                f"Encountered list at unexpected size: {len(v)} at level: "
                                f"{level} expected size: {shape[level]}")
        for item in v:
            fill(item, level + 1)

    fill(value, 0)
    return proto


def _decimal(value, dtype):
    """json_tensor.cc WriteDecimal: shortest %g form that round-trips, '.0' on whole
    numbers, NaN / Infinity tokens."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    cast = np.float32 if dtype == types_pb2.DT_FLOAT else np.float64
    text = "%g" % value
    if cast(float(text)) != cast(value):
        text = "%.9g" % value if cast is np.float32 else "%.17g" % value
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def tensor_to_json(alias, value, dtype) -> str:
    """json_tensor.cc AddTensorValues: nested lists; ``*_bytes`` strings as {"b64"}."""
    as_bytes = dtype == types_pb2.DT_STRING and alias.endswith("_bytes")

    def leaf(v):
        if dtype == types_pb2.DT_STRING:
            v = v if isinstance(v, bytes) else bytes(v)
            if as_bytes:
                return '{"b64": %s}' % json.dumps(base64.b64encode(v).decode("ascii"))
            return json.dumps(v.decode("utf-8", "replace"))
        if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF):
            return _decimal(v, dtype)
        if dtype == types_pb2.DT_BOOL:
            return "true" if v else "false"
        return str(int(v))

    def walk(v):
        if not isinstance(v, bytes):
            v = np.asarray(v)
            if v.ndim:
                return "[" + ", ".join(walk(item) for item in v) + "]"
            v = v.item()
        return leaf(v)

    return walk(value)


def c_escape(message: str) -> str:
    """absl::CEscape, which TF Serving applies to REST error messages."""
    out = []
    for byte in message.encode("utf-8"):
        char = chr(byte)
        if char in '\n\r\t"\'\\':
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, "\\" + char))
        elif byte < 0x20 or byte >= 0x7F:
            out.append("\\%03o" % byte)
        else:
            out.append(char)
    return "".join(out)


# ----------------------------------------------------------------------------- servers


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, owner):
        self.owner = owner

    def Predict(self, request, context):
        try:
            outputs = self.owner.predict(request, context.time_remaining())
        except Exception as e:
            # A bug here should read as one in the test, not as a dropped connection.
            s = e if isinstance(e, ServingStatus) else ServingStatus("INTERNAL", repr(e))
            message = s.message
            if len(message) > GRPC_MESSAGE_LIMIT:
                message = message[:GRPC_MESSAGE_LIMIT] + "...TRUNCATED"
            context.abort(getattr(grpc.StatusCode, s.code), message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.signature_name = request.model_spec.signature_name or \
            "serving_default"
        response.model_spec.version.value = self.owner.servable.version
        for alias, (value, dtype) in outputs.items():
            response.outputs[alias].CopyFrom(
                tensor_proto(value, dtype, as_content=self.owner.tensor_content))
        return response


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, owner):
        self.owner = owner

    def GetModelStatus(self, request, context):
        try:
            return self.owner.model_status(request.model_spec)
        except ServingStatus as s:
            context.abort(getattr(grpc.StatusCode, s.code), s.message)


def _rest_handler(owner):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep the test output clean
            pass

        def _reply(self, status, body):
            data = body.encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its deadline passed): nothing to answer

        def _answer(self, compute):
            try:
                status, body = 200, compute()
            except ServingStatus as s:
                status, body = HTTP_STATUS[s.code], self._error_body(s)
            except Exception as e:  # a fixture bug: say so instead of hanging up
                status, body = 500, self._error_body(ServingStatus("INTERNAL", repr(e)))
            self._reply(status, body)

        @staticmethod
        def _error_body(status: ServingStatus):
            # http_rest_api_handler.cc: FillJsonErrorMsg
            return '{ "error": "%s" }' % c_escape(status.message)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?")[0]

            def compute():
                match = PREDICT_PATH.fullmatch(path)
                if match is None:
                    raise ServingStatus("INVALID_ARGUMENT", f"Malformed request: POST {path}")
                name, version, method = match.groups()
                if method != "predict":
                    raise ServingStatus("UNIMPLEMENTED", f"{method} is not served here")
                return owner.predict_json(name, version, body)

            self._answer(compute)

        def do_GET(self):
            path = self.path.split("?")[0]

            def compute():
                match = STATUS_PATH.fullmatch(path)
                if match is None:
                    raise ServingStatus("INVALID_ARGUMENT", f"Malformed request: GET {path}")
                name, version = match.groups()
                if not name:
                    raise ServingStatus("INVALID_ARGUMENT", "Missing model name in request.")
                spec = get_model_status_pb2.GetModelStatusRequest().model_spec
                spec.name = name
                if version:
                    spec.version.value = int(version)
                status = owner.model_status(spec)
                return json.dumps({"model_version_status": [
                    {"version": str(s.version),
                     "state": get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
                     "status": {"error_code": "OK", "error_message": ""}}
                    for s in status.model_version_status]}, indent=1)

            self._answer(compute)

    return Handler


class LoopbackServing:
    """TF Serving's Predict and model-status APIs over gRPC and REST on 127.0.0.1.

    Args:
      base_path: the model base path (holding ``<version>/saved_model.pb``).
      model_name: the name requests must use.
      delay: seconds every Predict waits before running (to test client deadlines);
        may be changed while running.
      tensor_content: answer numeric gRPC outputs in ``tensor_content`` instead of the
        typed fields TF Serving uses, to exercise the client's other decoding path.

    Attributes (after ``start``): ``grpc_target``, ``rest_target`` ("127.0.0.1:port"),
    ``servable`` (the loaded model), ``rest_requests`` (the parsed JSON bodies received,
    newest last), ``predict_count``.
    """

    def __init__(self, base_path, model_name="tfstyle", delay=0.0, tensor_content=False,
                 workers=8):
        self.base_path = os.fspath(base_path)
        self.model_name = model_name
        self.delay = delay
        self.tensor_content = tensor_content
        self.workers = workers
        # The last few bodies, for tests to inspect; bounded so a load test cannot grow it.
        self.rest_requests = collections.deque(maxlen=16)
        self.predict_count = 0
        self._lock = threading.Lock()
        self.servable = None
        self._grpc = self._http = None

    # ----- the shared core (one servable, as TF Serving's ServerCore)

    def _lookup(self, spec):
        version = spec.version.value if spec.HasField("version") else None
        if spec.name != self.model_name or (version is not None
                                            and version != self.servable.version):
            which = (f"Specific({spec.name}, {version})" if version is not None
                     else f"Latest({spec.name})")
            raise ServingStatus("NOT_FOUND", f"Servable not found for request: {which}")

    def predict(self, request, timeout_s=None):
        self._lookup(request.model_spec)
        with self._lock:
            self.predict_count += 1
        if self.delay:
            time.sleep(self.delay)
            if timeout_s is not None:
                timeout_s -= self.delay
        return self.servable.predict(request, timeout_s)

    def model_status(self, spec):
        self._lookup(spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = self.servable.version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response

    def predict_json(self, name, version, body: bytes) -> str:
        """http_rest_api_handler.cc ProcessPredictRequest + json_tensor.cc."""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        if version:
            request.model_spec.version.value = int(version)
        if not body:
            raise ServingStatus("INVALID_ARGUMENT", "JSON Parse error: The document is empty")
        try:
            document = json.loads(body)  # accepts NaN/Infinity, as kParseNanAndInfFlag
        except ValueError as e:
            raise ServingStatus("INVALID_ARGUMENT", f"JSON Parse error: {e}") from None
        with self._lock:
            self.rest_requests.append(document)
        if not isinstance(document, dict):
            raise ServingStatus("INVALID_ARGUMENT", f"JSON Value: {body.decode()} Is not object")
        signature_name = document.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise ServingStatus("INVALID_ARGUMENT", "'signature_name' key must be a string value.")
        request.model_spec.signature_name = signature_name
        self._lookup(request.model_spec)
        try:
            infos = self.servable.signature(signature_name).inputs
        except ServingStatus:
            # http_rest_api_handler.cc GetInfoMap words it differently from gRPC.
            raise ServingStatus("INVALID_ARGUMENT",
                                f'Serving signature name: "{signature_name or "serving_default"}"'
                                f" not found in signature def") from None
        if "instances" in document and "inputs" in document:
            raise ServingStatus("INVALID_ARGUMENT", "Not formatted correctly expecting only one "
                                                    "of 'inputs' or 'instances' keys to exist")
        if "inputs" in document:
            row = False
            columns = document["inputs"]
            if not isinstance(columns, dict) or _is_b64(columns):
                if len(infos) > 1:
                    raise ServingStatus("INVALID_ARGUMENT",
                                        "inputs is a plain value/list, but expecting an object "
                                        "as multiple input tensors required as per "
                                        "tensorinfo_map")
                columns = {next(iter(infos)): columns}
            # Only the signature's names are read; other keys are ignored, as TF Serving.
            for alias, info in infos.items():
                if alias not in columns:
                    raise ServingStatus("INVALID_ARGUMENT",
                                        f"Missing named input: {alias} in 'inputs' object.")
                request.inputs[alias].CopyFrom(json_to_tensor(columns[alias], info.dtype))
        elif "instances" in document:
            row = True
            self._fill_instances(document["instances"], infos, request)
        else:
            raise ServingStatus("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
        outputs = self.predict(request)
        if row:
            return self._row_json(outputs)
        parts = [(alias, tensor_to_json(alias, value, dtype))
                 for alias, (value, dtype) in sorted(outputs.items())]
        if len(parts) == 1:
            return '{\n    "outputs": %s\n}' % parts[0][1]
        return '{\n    "outputs": {\n%s\n    }\n}' % ",\n".join(
            f'        "{alias}": {text}' for alias, text in parts)

    @staticmethod
    def _fill_instances(instances, infos, request):
        """json_tensor.cc FillTensorMapFromInstancesList: rows stacked on a new axis 0."""
        if not isinstance(instances, list) or not instances:
            raise ServingStatus("INVALID_ARGUMENT", "Excepting 'instances' to be an list/array")
        objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
        if not objects and len(infos) > 1:
            raise ServingStatus("INVALID_ARGUMENT",
                                "instances is a plain list, but expecting list of objects as "
                                "multiple input tensors required as per tensorinfo_map")
        rows = instances if objects else [{next(iter(infos)): item} for item in instances]
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or set(row) != set(infos):
                raise ServingStatus("INVALID_ARGUMENT",
                                    f"Failed to process element: {i} of 'instances' list. JSON "
                                    f"object: {json.dumps(row)} keys must be equal to: "
                                    f"{','.join(sorted(infos))}")
        for alias, info in infos.items():
            request.inputs[alias].CopyFrom(json_to_tensor([row[alias] for row in rows],
                                                          info.dtype))

    @staticmethod
    def _row_json(outputs):
        """json_tensor.cc MakeRowFormatJsonFromTensors."""
        batch = None
        for alias, (value, _) in outputs.items():
            shape = np.shape(value)
            if not shape:
                raise ServingStatus("INVALID_ARGUMENT",
                                    f"Tensor name: {alias} has no shape information ")
            if batch is not None and shape[0] != batch:
                raise ServingStatus("INVALID_ARGUMENT",
                                    f"Tensor name: {alias} has inconsistent batch size: "
                                    f"{shape[0]} expecting: {batch}")
            batch = shape[0]
        rows = []
        for i in range(batch):
            items = [(alias, tensor_to_json(alias, np.asarray(value)[i], dtype))
                     for alias, (value, dtype) in sorted(outputs.items())]
            rows.append(items[0][1] if len(items) == 1 else
                        "{" + ", ".join(f'"{a}": {t}' for a, t in items) + "}")
        return '{\n    "predictions": [%s]\n}' % ", ".join(rows)

    # ----- lifecycle

    def start(self):
        """Loads the model (with warm-up) and starts both servers on free ports."""
        self.servable = Servable(self.base_path)
        # TF Serving lifts gRPC's message size limits (server.cc: SetMaxMessageSize).
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers),
                                 options=[("grpc.max_receive_message_length", 2**31 - 1),
                                          ("grpc.max_send_message_length", 2**31 - 1)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self),
                                                                  self._grpc)
        grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self))
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True,
                         name="loopback-rest").start()
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.rest_target = f"127.0.0.1:{self._http.server_address[1]}"
        return self

    def stop(self):
        """Stops both servers and closes the session; in-flight calls are cancelled."""
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self.servable is not None:
            self.servable.close()
            self.servable = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ----------------------------------------------------------------------------- shared model


MAX_STEPS = 3  # the tiny export's limit, so that "too many steps" is cheap to ask for
MAX_SIDE = 32


def tiny_stylizer():
    """The tiny export's ``Stylizer``: the same random weights on every call (seeded), so
    that a test can run the library on the model the server runs."""
    from tfstyle.local.stylizer import Stylizer

    tf.keras.utils.set_random_seed(0)
    return Stylizer("vgg16", weights=None, content_layers=["conv2_1"],
                    style_layers=["conv1_1", "conv2_1"], precision="float32")


@functools.lru_cache(maxsize=None)
def tiny_export() -> str:
    """A real ``tfstyle.serving.export`` of a tiny random-weight VGG16 (conv1_1..conv2_1: two
    feature levels, min side 2 px), max_side 32, max_steps 3, exported once per
    process. Returns the model base path (the export is version 1 under it)."""
    from tfstyle.serving.export import export_model

    stylizer = tiny_stylizer()
    root = tempfile.mkdtemp(prefix="tfstyle-serving-")
    atexit.register(shutil.rmtree, root, True)
    base_path = os.path.join(root, "tfstyle")
    export_model(os.path.join(base_path, "1"), stylizer, max_side=MAX_SIDE,
                 max_steps=MAX_STEPS)
    return base_path


@functools.lru_cache(maxsize=None)
def shared_server() -> LoopbackServing:
    """One started server on the tiny export, shared by every test in this process
    (loading and warm-up cost seconds); stopped when the process exits. Tests that
    change ``delay`` must restore it."""
    server = LoopbackServing(tiny_export()).start()
    atexit.register(server.stop)
    return server
