"""The TF Serving client, over gRPC and REST, against the loopback server on 127.0.0.1.

The server (tests/serving_server.py) serves a real ``tfstyle.serving.export`` of a tiny
random-weight VGG16 with TF Serving's session-based loading, request checks and error
codes; max_side 32 and max_steps 3 keep every request to a fraction of a second.
"""

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

# The loopback server speaks TF Serving's API with tensorflow-serving-api's own
# servicers; without the package (pip install -e .[test]) these tests cannot run.
pytest.importorskip("tensorflow_serving", reason="needs tensorflow-serving-api")
pytest.importorskip("grpc", reason="needs grpcio")

import serving_server
from conftest import REPO, synthetic_image
from served_values import JSON_TYPES, json_values, not_sent_json, numpy_values
from serving_server import MAX_SIDE, MAX_STEPS, shared_server
from tensorflow_serving.apis import predict_pb2
from tfstyle.errors import ConfigError, ImageError
from tfstyle.options import INITS
from tfstyle.serving import client as client_module
from tfstyle.serving import grpc_transport, rest_transport, served_options
from tfstyle.serving.client import ServingError, TFServingClient, encode_image

PROTOCOLS = ["grpc", "rest"]
CONTENT = synthetic_image(1, 20, 30)
STYLE = synthetic_image(2, 24, 24)
OPTIONS = dict(steps=2, size=16, seed=5)


def encoded(pixels, fmt="PNG", **params):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    return shared_server()


def make_client(server, protocol, **kwargs):
    target = server.grpc_target if protocol == "grpc" else server.rest_target
    return TFServingClient(target, protocol=protocol, **kwargs)


def direct_predict(server, signature, values):
    """What the served session itself returns for these inputs: the reference."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tfstyle"
    request.model_spec.signature_name = signature
    for name, value in values.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return {alias: value for alias, (value, _) in server.servable.predict(request).items()}


def reference_values(content, style):
    """Every input of the client's request for ``OPTIONS`` (the other options at the
    library's defaults), sent straight to the session."""
    return {"content": content, "style": style, **numpy_values(**OPTIONS)}


# ----------------------------------------------------------------------------- results


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_result_is_an_image_of_the_requested_size_and_reports_the_seed(server, protocol):
    with make_client(server, protocol) as client:
        result = client.stylize_result(CONTENT, STYLE, steps=1, size=16)
    assert result.image.dtype == np.uint8 and result.image.shape == (11, 16, 3)
    assert np.isfinite(result.loss) and result.loss > 0
    assert 0 <= result.seed < 2**63
    decoded = np.asarray(Image.open(io.BytesIO(result.encoded)))
    np.testing.assert_array_equal(decoded, result.image)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_serving_default_equals_what_the_session_returns(server, protocol):
    content, style = encoded(CONTENT), encoded(STYLE, "JPEG", quality=90)
    with make_client(server, protocol) as client:
        result = client.stylize_result(content, style, **OPTIONS)
    expected = direct_predict(server, "serving_default", reference_values(content, style))
    assert result.encoded == expected["image_bytes"]
    # float32 survives REST's JSON: TF Serving writes enough digits to round-trip.
    assert np.float32(result.loss) == expected["loss"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stylize_tensor_signature_sends_pixels_and_matches_serving_default(server, protocol):
    with make_client(server, protocol, signature="stylize_tensor") as client:
        by_pixels = client.stylize_result(CONTENT, STYLE, **OPTIONS)
    expected = direct_predict(server, "stylize_tensor", reference_values(CONTENT, STYLE))
    np.testing.assert_array_equal(by_pixels.image, expected["image"])
    assert by_pixels.encoded is None
    with make_client(server, protocol) as client:
        by_bytes = client.stylize(CONTENT, STYLE, **OPTIONS)
    np.testing.assert_array_equal(by_pixels.image, by_bytes)


def test_typed_fields_and_tensor_content_answers_decode_alike(server):
    with make_client(server, "grpc", signature="stylize_tensor") as client:
        typed = client.stylize_result(CONTENT, STYLE, **OPTIONS)
        server.tensor_content = True
        try:
            packed = client.stylize_result(CONTENT, STYLE, **OPTIONS)
        finally:
            server.tensor_content = False
    np.testing.assert_array_equal(typed.image, packed.image)
    assert typed.loss == packed.loss


def test_stylize_bytes_is_the_servers_png(server):
    with make_client(server, "grpc") as client:
        png = client.stylize_bytes(CONTENT, STYLE, **OPTIONS)
        image = client.stylize(CONTENT, STYLE, **OPTIONS)
    assert png.startswith(b"\x89PNG")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), image)


def test_concurrent_requests_on_one_client_agree(server):
    results, errors = [None] * 4, []
    with make_client(server, "grpc") as client:
        def run(i):
            try:
                results[i] = client.stylize(CONTENT, STYLE, **OPTIONS)
            except Exception as e:  # surfaced below, with the thread's error
                errors.append(e)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    for image in results[1:]:
        np.testing.assert_array_equal(image, results[0])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_model_status(server, protocol):
    with make_client(server, protocol) as client:
        assert client.model_status() == [{"version": 1, "state": "AVAILABLE",
                                          "error_code": "OK", "error_message": ""}]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("content, options, words", [
    (CONTENT, dict(steps=MAX_STEPS + 1), f"steps={MAX_STEPS + 1} is outside"),
    (CONTENT, dict(size=MAX_SIDE + 1), f"size={MAX_SIDE + 1} is outside"),
    (CONTENT, dict(size=1), "size=1 is outside"),  # below the deepest layer's 2 px
    (encoded(CONTENT)[:400], {}, "Invalid PNG data"),   # a truncated download
], ids=["too-many-steps", "size-over-max-side", "size-under-min-side", "corrupt-bytes"])
def test_invalid_argument_carries_the_servers_message_then_next_request_works(
        server, protocol, content, options, words):
    with make_client(server, protocol) as client:
        with pytest.raises(ServingError) as caught:
            client.stylize(content, STYLE, **{**OPTIONS, **options})
        assert caught.value.code == "INVALID_ARGUMENT"
        assert words in str(caught.value)
        assert words in caught.value.details
        assert "{{node" not in str(caught.value)  # graph annotations are cut
        assert client.stylize(CONTENT, STYLE, **OPTIONS).shape == (11, 16, 3)


def test_data_that_is_no_image_is_refused_here_without_a_request(server):
    before = server.predict_count
    with make_client(server, "grpc") as client:
        with pytest.raises(ImageError, match="not an image file"):
            client.stylize(b"certainly not an image", STYLE, **OPTIONS)
        with pytest.raises(ImageError, match="does not exist"):
            client.stylize("/nonexistent/photo.jpg", STYLE, **OPTIONS)
    assert server.predict_count == before


@pytest.mark.parametrize("options, words", [
    (dict(steps=1.5), "steps must be an integer"),
    (dict(size=2**31), "does not fit the model's int32"),
    (dict(style_weight=float("nan")), "finite"),
    (dict(init="start.png"), "init must be one of " + ", ".join(INITS)),
    # Outside the bounds of every export: refused before anything is sent.
    (dict(steps=-1), "steps must be between 0 and 100000, got -1"),
    (dict(size=-5), r"size must be 0 \(keep the content's size\) or between 1 and 16384"),
    (dict(stpes=2), "unknown option 'stpes': a served run takes steps, content_weight"),
])
def test_values_that_cannot_be_put_in_a_request_are_config_errors(server, options, words):
    before = server.predict_count
    with make_client(server, "rest") as client:
        with pytest.raises(ConfigError, match=words):
            client.stylize(CONTENT, STYLE, **{**OPTIONS, **options})
    assert server.predict_count == before


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unavailable_when_nothing_listens(protocol):
    with TFServingClient(f"127.0.0.1:{free_port()}", protocol=protocol, timeout=10) as client:
        with pytest.raises(ServingError) as caught:
            client.stylize(CONTENT, STYLE, **OPTIONS)
    assert caught.value.code == "UNAVAILABLE"
    assert "no TF Serving at 127.0.0.1:" in str(caught.value)
    assert "docker compose -f export/compose.yaml up" in str(caught.value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deadline_exceeded_against_a_slow_server(server, protocol):
    server.delay = 1.0
    try:
        with make_client(server, protocol, timeout=0.2) as client:
            with pytest.raises(ServingError) as caught:
                client.stylize(CONTENT, STYLE, **OPTIONS)
    finally:
        server.delay = 0.0
    assert caught.value.code == "DEADLINE_EXCEEDED"
    assert "did not answer within the timeout of 0.2 s: allow more time" in str(caught.value)
    assert "--" not in str(caught.value)  # the CLI names its flags (test_remote_cli.py)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kwargs, words", [
    (dict(model_name="nope"), "Servable not found for request: Latest(nope)"),
    (dict(version=7), "Servable not found for request: Specific(tfstyle, 7)"),
])
def test_unknown_model_or_version_is_not_found(server, protocol, kwargs, words):
    with make_client(server, protocol, **kwargs) as client:
        with pytest.raises(ServingError) as caught:
            client.stylize(CONTENT, STYLE, **OPTIONS)
    assert caught.value.code == "NOT_FOUND"
    assert words in str(caught.value) and "check the model name and version" in str(
        caught.value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_extra_or_missing_inputs_are_refused_as_tf_serving_does(server, protocol):
    full, _ = client_module._option_inputs(dict(steps=2, size=16, seed=5, style_weight=1e3,
                                                style_scale=1.0, style_loss="gram",
                                                stage_size=256))
    full["content"] = full["style"] = (7, encoded(CONTENT))
    full.update(dict.fromkeys(served_options.OPTIONAL_IMAGES, (7, b"")))
    missing = dict(full)
    del missing["content"]
    with make_client(server, protocol) as client:
        with pytest.raises(ServingError) as absent:
            client.predict(missing)
        assert absent.value.code == "INVALID_ARGUMENT"
        if protocol == "rest":
            # REST reads only the signature's names from "inputs" (json_tensor.cc
            # FillTensorMapFromInputsMap): an extra key is ignored, a missing one refused.
            assert "Missing named input: content in 'inputs' object." in str(absent.value)
            assert set(client.predict({**full, "bogus": (3, 1)})) == {"image_bytes", "loss"}
            return
        # gRPC: predict_util.cc VerifyRequestInputsSize, cc/saved_model/util.cc
        assert "Signature input alias: content" in str(absent.value)
        with pytest.raises(ServingError) as extra:
            client.predict({**full, "bogus": (3, 1)})
        assert extra.value.code == "INVALID_ARGUMENT"
        # The images, the optional ones and the served options, plus the extra one.
        n = 2 + len(served_options.OPTIONAL_IMAGES) + len(served_options.NAMES)
        assert f"input size does not match signature: {n + 1}!={n}" in str(extra.value)
        assert "Sent extra: {bogus}" in str(extra.value)


def test_rest_row_form_is_refused_for_the_scalar_signature(server):
    # "instances" batches every input on a new axis 0; this model's inputs are scalars.
    import urllib.error
    import urllib.request
    row = {"content": {"b64": base64.b64encode(encoded(CONTENT)).decode()},
           "style": {"b64": base64.b64encode(encoded(STYLE)).decode()},
           **json_values(steps=1, size=16, seed=1), **not_sent_json()}
    request = urllib.request.Request(f"http://{server.rest_target}/v1/models/tfstyle:predict",
                                     data=json.dumps({"instances": [row]}).encode(),
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 400
    assert "shape" in rest_transport._rest_error_message(caught.value.read().decode())


def test_message_over_the_size_limit_is_resource_exhausted(server):
    with make_client(server, "grpc", max_message_bytes=1000) as client:
        with pytest.raises(ServingError) as caught:
            client.stylize(synthetic_image(3, 64, 64), STYLE, **OPTIONS)
    assert caught.value.code == "RESOURCE_EXHAUSTED"
    assert "smaller images" in str(caught.value)


def test_pinned_version_is_sent(server):
    with make_client(server, "rest", version=1) as client:
        assert client.stylize(CONTENT, STYLE, **OPTIONS).shape == (11, 16, 3)


# ----------------------------------------------------------------------------- the wire


def test_rest_request_is_tf_servings_documented_columnar_json(server):
    content, style = encoded(CONTENT), encoded(STYLE)
    given = dict(steps=2, size=16, seed=7, content_weight=2, init="noise", style_scale=0.5)
    with make_client(server, "rest") as client:
        client.stylize(content, style, **given)
    body = server.rest_requests[-1]
    # Every option of the table, the given ones and the library's defaults.
    assert body == {
        "signature_name": "serving_default",
        "inputs": {
            "content": {"b64": base64.b64encode(content).decode()},
            "style": {"b64": base64.b64encode(style).decode()},
            **json_values(**given), **not_sent_json()}}
    inputs = body["inputs"]
    # TF Serving's JSON parser wants integer tokens for int32/int64 inputs (json_tensor.cc).
    for row in served_options.SERVED_OPTIONS:
        assert type(inputs[row.name]) is JSON_TYPES[row.dtype], row.name


def test_rest_answer_is_parsed_from_tf_servings_output_json(server):
    # The server's own words, read raw: {"outputs": {"image_bytes": {"b64": ...},
    # "loss": <number>}} for a columnar request (api_rest.md, "_bytes" suffix).
    body = json.dumps({"signature_name": "serving_default", "inputs": {
        "content": {"b64": base64.b64encode(encoded(CONTENT)).decode()},
        "style": {"b64": base64.b64encode(encoded(STYLE)).decode()},
        # The optional images not sent: "" (the REST API wants every input named).
        **json_values(**OPTIONS), **not_sent_json()}}).encode()
    import urllib.request
    request = urllib.request.Request(f"http://{server.rest_target}/v1/models/tfstyle:predict",
                                     data=body, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert set(answer) == {"outputs"} and set(answer["outputs"]) == {"image_bytes", "loss"}
    png = base64.b64decode(answer["outputs"]["image_bytes"]["b64"])
    with make_client(server, "rest") as client:
        assert client.stylize_bytes(CONTENT, STYLE, **OPTIONS) == png


def test_grpc_request_parses_with_tensorflow_servings_own_protos():
    wire = grpc_transport._wire()
    request = wire.PredictRequest()
    request.model_spec.name = "tfstyle"
    request.model_spec.signature_name = "stylize_tensor"
    request.model_spec.version.value = 3
    values = {"steps": (3, 7), "size": (3, 16), "seed": (9, 2**62 + 1), "init": (7, b"noise"),
              "tv_weight": (1, 0.25), "content": (4, CONTENT)}
    for alias, (dtype, value) in values.items():
        request.inputs[alias].CopyFrom(grpc_transport._tensor_proto(wire, dtype, value))
    official = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert official.model_spec.version.value == 3
    assert official.model_spec.signature_name == "stylize_tensor"
    for alias, (dtype, value) in values.items():
        assert official.inputs[alias].dtype == dtype
        np.testing.assert_array_equal(tf.make_ndarray(official.inputs[alias]), value)


@pytest.mark.parametrize("value", [np.float32(1.5), np.int64(-3), b"\x89PNG...",
                                   np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
                                   np.full((2, 3, 3), 7, np.uint8)])
def test_grpc_answers_decode_from_tensorflow_servings_protos(value):
    wire = grpc_transport._wire()
    dtype = tf.as_dtype(np.asarray(value).dtype if not isinstance(value, bytes)
                        else tf.string).as_datatype_enum
    protos = [serving_server.tensor_proto(value, dtype),  # typed fields, as TF Serving
              tf.make_tensor_proto(value)]                # tensor_content / compressed
    for proto in protos:
        mine = wire.TensorProto.FromString(proto.SerializeToString())
        np.testing.assert_array_equal(grpc_transport._tensor_value(mine, "x"), value)


def test_wire_messages_have_tensorflow_servings_field_numbers_and_types():
    from google.protobuf.descriptor import FieldDescriptor
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
    from tensorflow_serving.apis import get_model_status_pb2, model_pb2, status_pb2

    wire = grpc_transport._wire()
    originals = {"TensorProto": tensor_pb2.TensorProto,
                 "TensorShapeProto": tensor_shape_pb2.TensorShapeProto,
                 "ModelSpec": model_pb2.ModelSpec,
                 "PredictRequest": predict_pb2.PredictRequest,
                 "PredictResponse": predict_pb2.PredictResponse,
                 "GetModelStatusRequest": get_model_status_pb2.GetModelStatusRequest,
                 "GetModelStatusResponse": get_model_status_pb2.GetModelStatusResponse,
                 "ModelVersionStatus": get_model_status_pb2.ModelVersionStatus,
                 "StatusProto": status_pb2.StatusProto}

    def same_wire(mine, theirs):
        enum_as_int = (mine.type == FieldDescriptor.TYPE_INT32
                       and theirs.type == FieldDescriptor.TYPE_ENUM)
        return ((mine.type == theirs.type or enum_as_int)
                and mine.is_repeated == theirs.is_repeated)

    for name, original in originals.items():
        descriptor = getattr(wire, name).DESCRIPTOR
        theirs = {f.number: f for f in original.DESCRIPTOR.fields}
        for field in descriptor.fields:
            assert field.number in theirs, (name, field.name)
            assert field.name == theirs[field.number].name, (name, field.name)
            assert same_wire(field, theirs[field.number]), (name, field.name)


def test_rest_error_body_escaped_by_tf_serving_is_read_back():
    message = "init='x\u00e9' is not one of content, noise, style\n\t[[{{node Assert}}]]"
    body = '{ "error": "%s" }' % serving_server.c_escape(message)
    with pytest.raises(ValueError):
        json.loads(body)  # CEscape's \' and octal bytes are not JSON
    assert rest_transport._rest_error_message(body) == message


# ----------------------------------------------------------------------------- images


def test_plain_png_and_jpeg_files_are_sent_as_they_are(tmp_path):
    for name, data in (("a.png", encoded(CONTENT)), ("a.jpg", encoded(CONTENT, "JPEG"))):
        (tmp_path / name).write_bytes(data)
        assert encode_image(tmp_path / name) == data
        assert encode_image(data) == data


def test_images_the_server_would_decode_differently_are_sent_as_png(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: image_io applies it, tf.io.decode_image would not
    rotated = io.BytesIO()
    Image.fromarray(CONTENT).save(rotated, format="JPEG", exif=exif.tobytes())
    rgba = np.dstack([CONTENT, np.full(CONTENT.shape[:2], 128, np.uint8)])
    for source, shape in ((rotated.getvalue(), (30, 20, 3)),
                          (encoded(rgba), (20, 30, 3)),
                          (Image.fromarray(CONTENT), (20, 30, 3)),
                          (CONTENT.astype(np.float32) / 255, (20, 30, 3))):
        data = encode_image(source)
        assert data.startswith(b"\x89PNG")
        assert np.asarray(Image.open(io.BytesIO(data))).shape == shape


def test_bad_arguments_to_the_client_are_config_errors():
    for kwargs in (dict(protocol="http"), dict(signature="nope"), dict(timeout=0),
                   dict(version=0), dict(model_name="a/b")):
        with pytest.raises(ConfigError):
            TFServingClient("localhost:8500", **{"protocol": "rest", **kwargs})
    for target in ("", "host:port", "http://h:1/path", "h:70000"):
        with pytest.raises(ConfigError):
            TFServingClient(target, protocol="rest")
    client = TFServingClient("http://[::1]", protocol="rest")
    assert (client.host, client.port, client.target) == ("::1", 8501, "[::1]:8501")


def test_the_client_does_not_import_tensorflow(server):
    code = (
        "import sys, numpy as np\n"
        "from tfstyle.serving.client import TFServingClient\n"
        "pixels = np.zeros((20, 20, 3), np.uint8)\n"
        f"for protocol, target in (('grpc', {server.grpc_target!r}), "
        f"('rest', {server.rest_target!r})):\n"
        "    image = TFServingClient(target, protocol=protocol).stylize(\n"
        "        pixels, pixels, steps=1, size=16, seed=1)\n"
        "    assert image.shape == (16, 16, 3), image.shape\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
