"""The served options, declared once in ``tfstyle.serving.served_options``: the exported
signature, its in-graph checks, the client, the CLI's remote path and
``RunOptions.validate`` take exactly the table's options, with the table's bounds.

The export is the tiny one of tests/serving_server.py (max_side 32, max_steps 3), served
on the loopback server; the client's checks are probed against a port where nothing
listens, so that a value it lets through fails UNAVAILABLE instead of being sent.
"""

import dataclasses
import os
import socket

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("tensorflow_serving", reason="needs tensorflow-serving-api")
pytest.importorskip("grpc", reason="needs grpcio")

import serving_server
from conftest import synthetic_image
from served_values import away_from_default, edges
from serving_server import MAX_SIDE, MAX_STEPS, shared_server
from tfstyle.errors import ConfigError
from tfstyle.options import RunOptions
from tfstyle.serving.client import ServingError, TFServingClient
from tfstyle.serving.served_options import (NAMES, OPTIONAL_IMAGES, SERVED_OPTIONS, request_values,
                                            run_options)
from tfstyle.serving.transport import DTYPES

CONTENT = synthetic_image(1, 20, 30)
STYLE = synthetic_image(2, 24, 24)
ROW_IDS = [row.name for row in SERVED_OPTIONS]


@pytest.fixture(scope="module")
def server():
    return shared_server()


@pytest.fixture(scope="module")
def nowhere():
    """A REST client of a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with TFServingClient(f"127.0.0.1:{port}", protocol="rest", timeout=10) as client:
        yield client


def signature_defs():
    from tensorflow.core.protobuf import saved_model_pb2
    saved_model = saved_model_pb2.SavedModel()
    path = os.path.join(serving_server.tiny_export(), "1", "saved_model.pb")
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    return saved_model.meta_graphs[0].signature_def


# ----------------------------------------------------------------------------- the signature


@pytest.mark.parametrize("signature", ["serving_default", "stylize_tensor"])
def test_signature_inputs_dtypes_and_defaults_are_the_tables(signature):
    sig = signature_defs()[signature]
    assert set(sig.inputs) - {"content", "style"} == set(NAMES) | set(OPTIONAL_IMAGES)
    assert set(sig.defaults) == set(NAMES) | set(OPTIONAL_IMAGES)
    limits = {"steps": MAX_STEPS, "size": MAX_SIDE}  # this export's, below the defaults
    for row in SERVED_OPTIONS:
        dtype = tf.as_dtype(row.dtype).as_datatype_enum
        assert sig.inputs[row.name].dtype == sig.defaults[row.name].dtype == dtype, row
        default = tf.make_ndarray(sig.defaults[row.name])
        assert default == row.to_numpy(min(row.default, limits.get(row.name, row.default))), row


@pytest.mark.parametrize("row", SERVED_OPTIONS, ids=ROW_IDS)
def test_the_graph_refuses_just_past_each_bound(server, row):
    inputs = {r.name: (DTYPES[r.dtype], r.wire_value(r.default)) for r in SERVED_OPTIONS}
    inputs.update(steps=(DTYPES["int32"], 1), size=(DTYPES["int32"], 16),
                  content=(DTYPES["uint8"], CONTENT), style=(DTYPES["uint8"], STYLE))
    info = np.iinfo(row.dtype) if row.dtype.startswith("int") else None
    refused = [v for v in edges(row)[1] if info is None or info.min <= v <= info.max]
    assert refused
    with TFServingClient(server.grpc_target, signature="stylize_tensor") as client:
        for value in refused:
            sent = value.encode() if isinstance(value, str) else value
            with pytest.raises(ServingError) as caught:
                client.predict(dict(inputs, **{row.name: (DTYPES[row.dtype], sent)}))
            assert caught.value.code == "INVALID_ARGUMENT", value
            assert f"{row.name}=" in str(caught.value), (value, str(caught.value))


# ----------------------------------------------------------------------------- the client


@pytest.mark.parametrize("row", SERVED_OPTIONS, ids=ROW_IDS)
def test_the_client_accepts_each_bound_and_refuses_just_past_it(nowhere, row):
    accepted, refused = edges(row)
    for value in accepted:
        with pytest.raises(ServingError) as caught:  # checked, then sent: nobody listens
            nowhere.stylize(CONTENT, STYLE, **{row.name: value})
        assert caught.value.code == "UNAVAILABLE", value
    for value in refused:
        with pytest.raises(ConfigError, match=row.name):
            nowhere.stylize(CONTENT, STYLE, **{row.name: value})


def test_the_client_takes_every_option_by_keyword_and_no_other(nowhere):
    every = {row.name: row.default for row in SERVED_OPTIONS}
    with pytest.raises(ServingError, match="no TF Serving at"):
        nowhere.stylize_result(CONTENT, STYLE, **every)
    with pytest.raises(ConfigError, match="unknown option 'learning_rate': a served run "
                                          "takes " + ", ".join(NAMES)):
        nowhere.stylize(CONTENT, STYLE, learning_rate=1.0)


# ----------------------------------------------------------------------------- remote, validate


def test_a_request_carries_every_served_field_of_the_run():
    # Every served field set away from its default (the seed left to the request):
    # each must reach the request. From the table, so that a new field is carried too.
    changed = {row.name: None if row.name == "seed" else away_from_default(row)
               for row in SERVED_OPTIONS}
    options = dataclasses.replace(RunOptions(), **changed).validate()
    for name, value in changed.items():
        assert name == "seed" or value != getattr(RunOptions(), name), name
    sent = request_values(options, seed=42)
    assert list(sent) == list(NAMES)
    assert sent == dict(changed, seed=42)
    for row in SERVED_OPTIONS:
        row.wire_value(sent[row.name])  # and the client takes each
    # The graph's way back: every field the request carries lands in the RunOptions
    # the graph runs, the others stay at their defaults (the optimiser is the export's).
    back = run_options(sent)
    assert back == dataclasses.replace(options, seed=42)
    assert (back.optimizer, back.memory_limit) == (RunOptions().optimizer,
                                                   RunOptions().memory_limit)


@pytest.mark.parametrize("row", SERVED_OPTIONS, ids=ROW_IDS)
def test_validate_accepts_and_refuses_what_the_table_does(row):
    base = RunOptions(stage_size=0)  # single scale: any stage_factor, size or steps plans
    accepted, refused = edges(row, wire=False)
    for value in accepted:
        dataclasses.replace(base, **{row.name: value}).validate()
    for value in refused:
        with pytest.raises(ConfigError, match=row.name):
            dataclasses.replace(base, **{row.name: value}).validate()
