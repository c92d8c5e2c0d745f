"""How a request reaches TF Serving: one interface, two transports.

``grpc_transport.GrpcTransport`` and ``rest_transport.RestTransport`` each carry the
calls of one client to one model (an ``Endpoint``), in plain Python values, and fail
with ``TransportError``; ``client.TFServingClient`` picks one and says what a failure
means (``ServingError``).

Neither imports TensorFlow: the few messages of TF Serving's API are declared by the
gRPC transport itself, and REST needs only the standard library.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

__all__ = ["Endpoint", "Transport", "TransportError", "DTYPES", "DT_FLOAT", "DT_INT32",
           "DT_UINT8", "DT_STRING", "DT_INT64"]

# tensorflow/core/framework/types.proto
DT_FLOAT, DT_INT32, DT_UINT8, DT_STRING, DT_INT64 = 1, 3, 4, 7, 9
# The DataType of each dtype name that tfstyle.serving.served_options uses.
DTYPES = {"float32": DT_FLOAT, "int32": DT_INT32, "uint8": DT_UINT8, "string": DT_STRING,
          "int64": DT_INT64}


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where the calls go: a server, a model on it, and how long to wait for each.

    version: a pinned model version, or None for the latest. max_message_bytes: the
    largest request or answer either side may send.
    """
    host: str
    port: int
    model_name: str
    signature: str
    version: int | None
    timeout: float
    max_message_bytes: int

    @property
    def target(self) -> str:
        """``host:port``, with an IPv6 host in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class TransportError(Exception):
    """A call failed, or its answer could not be read.

    Attributes:
      code: the gRPC status code name (``"INVALID_ARGUMENT"``, ``"UNAVAILABLE"``, ...);
        over REST derived from the HTTP status.
      details: the server's own message, or the transport's, unedited.
      http_status: the HTTP status of a REST answer; None over gRPC, or without one.
    """

    def __init__(self, code: str, details: str, http_status: int | None = None):
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details
        self.http_status = http_status


class Transport(Protocol):
    """What ``TFServingClient`` needs of a transport."""

    def predict(self, inputs: dict) -> dict:
        """One Predict call with the endpoint's model, version and signature.

        Args:
          inputs: {alias: (dtype, value)}: dtype a DataType number (``DT_*``); value a
            Python scalar, ``bytes``, or a numpy array (sent with its shape).

        Returns:
          {alias: value}: ``bytes`` for string scalars, Python numbers for numeric
          scalars, numpy arrays otherwise.
        """

    def model_status(self) -> list[dict]:
        """The model's versions: [{"version": int, "state": "AVAILABLE", "error_code":
        "OK", "error_message": ""}, ...]."""

    def close(self) -> None:
        """Releases what the transport holds (a gRPC channel, whose calls fail after)."""
