"""The gRPC transport: TF Serving's PredictionService and ModelService over grpcio.

Needs ``grpcio`` and ``protobuf`` (``pip install tfstyle[serving]``) but *not*
TensorFlow: the few messages of TF Serving's API are declared here, wire-compatible
with ``tensorflow_serving.apis`` (whose modules import all of TensorFlow, seconds of
start-up for a client that only sends bytes). ``tests/test_client.py`` checks the
declarations against the originals.
"""

from __future__ import annotations

import functools

import numpy as np

from tfstyle.errors import ConfigError
from tfstyle.serving.transport import (DT_FLOAT, DT_INT32, DT_INT64, DT_STRING, DT_UINT8, Endpoint,
                                       TransportError)

__all__ = ["GrpcTransport", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'tfstyle[serving]'"

_NUMPY_DTYPES = {DT_FLOAT: np.float32, DT_INT32: np.int32, DT_UINT8: np.uint8,
                 DT_INT64: np.int64}
# Canonical gRPC status code names by number (tensorflow/core/protobuf/error_codes.proto
# uses the same numbers).
_CODE_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
               "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
               "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
               "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")
# get_model_status.proto, ModelVersionStatus.State
_MODEL_STATES = {0: "UNKNOWN", 10: "START", 20: "LOADING", 30: "AVAILABLE", 40: "UNLOADING",
                 50: "END"}


class GrpcTransport:
    """Predict and GetModelStatus calls to one model over one gRPC channel, which
    many threads may share."""

    def __init__(self, endpoint: Endpoint):
        grpc = _import_grpc()
        self.endpoint = endpoint
        self._wire = _wire()
        limit = endpoint.max_message_bytes
        self._channel = grpc.insecure_channel(endpoint.target, options=[
            ("grpc.max_send_message_length", limit),
            ("grpc.max_receive_message_length", limit)])
        self._predict_rpc = self._channel.unary_unary(
            "/tensorflow.serving.PredictionService/Predict",
            request_serializer=self._wire.PredictRequest.SerializeToString,
            response_deserializer=self._wire.PredictResponse.FromString)
        self._status_rpc = self._channel.unary_unary(
            "/tensorflow.serving.ModelService/GetModelStatus",
            request_serializer=self._wire.GetModelStatusRequest.SerializeToString,
            response_deserializer=self._wire.GetModelStatusResponse.FromString)

    def predict(self, inputs: dict) -> dict:
        """See ``tfstyle.serving.transport.Transport.predict``."""
        request = self._wire.PredictRequest()
        self._fill_spec(request.model_spec)
        for alias, (dtype, value) in inputs.items():
            request.inputs[alias].CopyFrom(_tensor_proto(self._wire, dtype, value))
        response = self._call(self._predict_rpc, request)
        return {alias: _tensor_value(tensor, alias) for alias, tensor in response.outputs.items()}

    def model_status(self) -> list[dict]:
        """See ``tfstyle.serving.transport.Transport.model_status``."""
        request = self._wire.GetModelStatusRequest()
        self._fill_spec(request.model_spec, signature=False)
        response = self._call(self._status_rpc, request)
        return [{"version": int(s.version), "state": _MODEL_STATES.get(s.state, str(s.state)),
                 "error_code": _code_name(s.status.error_code),
                 "error_message": s.status.error_message}
                for s in response.model_version_status]

    def close(self) -> None:
        """Closes the channel: calls in flight are cancelled, later ones refused."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def _fill_spec(self, spec, signature=True):
        spec.name = self.endpoint.model_name
        if signature:
            spec.signature_name = self.endpoint.signature
        if self.endpoint.version is not None:
            spec.version.value = self.endpoint.version

    def _call(self, rpc, request):
        if self._channel is None:
            raise ConfigError("this TFServingClient was closed; make a new one")
        grpc = _import_grpc()
        try:
            return rpc(request, timeout=self.endpoint.timeout)
        except grpc.RpcError as e:
            code = e.code().name if hasattr(e, "code") and e.code() else "UNKNOWN"
            details = (e.details() if hasattr(e, "details") else None) or str(e)
            raise TransportError(code, details) from None


def _import_grpc():
    try:
        import grpc
    except ImportError as e:
        raise ConfigError(f"the gRPC client needs grpcio ({e}): {INSTALL_HINT}, or use REST "
                          f"(protocol \"rest\", port 8501)") from None
    return grpc


def _code_name(number):
    return _CODE_NAMES[number] if 0 <= number < len(_CODE_NAMES) else str(number)


# --------------------------------------------------------------------------- wire


@functools.lru_cache(maxsize=None)
def _wire():
    """Message classes wire-compatible with TF Serving's protos (field numbers and types
    as in tensorflow/core/framework/tensor.proto, tensorflow_serving/apis/model.proto,
    predict.proto, get_model_status.proto, status.proto), in a private descriptor pool
    so they never clash with TensorFlow's own in the same process. Enums are int32 on
    the wire; fields this client never reads are left out (parsers skip them).

    Over 60 lines on purpose: it is one declaration, a table of messages and fields,
    read against the .proto files above; split, it would be harder to check."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError as e:
        raise ConfigError(f"the gRPC client needs protobuf ({e}): {INSTALL_HINT}, "
                          f"or use REST (protocol \"rest\", port 8501)") from None

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
    elif dtype == DT_STRING:
        tensor.string_val.append(value)
    elif dtype == DT_FLOAT:
        tensor.float_val.append(value)
    elif dtype == DT_INT32:
        tensor.int_val.append(value)
    elif dtype == DT_INT64:
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
    if tensor.dtype == DT_STRING:
        values = list(tensor.string_val)
        if shape == () and len(values) == 1:
            return values[0]
        return np.array(values, dtype=object).reshape(shape)
    if tensor.dtype not in _NUMPY_DTYPES:
        raise TransportError("INTERNAL", f"the server answered output {alias!r} with dtype "
                             f"{tensor.dtype}, which this client does not read: is it the "
                             f"tfstyle model?")
    np_dtype = np.dtype(_NUMPY_DTYPES[tensor.dtype]).newbyteorder("<")
    if tensor.tensor_content:
        array = np.frombuffer(tensor.tensor_content, dtype=np_dtype)
    else:
        field = {DT_FLOAT: tensor.float_val, DT_INT64: tensor.int64_val}.get(
            tensor.dtype, tensor.int_val)
        array = np.asarray(list(field)).astype(np_dtype)
        # TensorFlow's FromProto repeats the last value when fewer are stored.
        if 0 < array.size < count:
            array = np.concatenate([array, np.full(count - array.size, array[-1], np_dtype)])
    if array.size != count:
        raise TransportError("INTERNAL", f"the server's output {alias!r} holds {array.size} "
                             f"values for shape {list(shape)}")
    array = array.reshape(shape).astype(np_dtype.newbyteorder("="))
    return array.item() if shape == () else array
