"""The reference: the published TensorFlow style-transfer tutorial's loop, and one evaluator.

Written here from the tutorial's published settings, independently of tfstyle's loop:
Adam (learning rate 0.02, β₁ 0.99, ε 0.1) on a ``tf.Variable`` image in [0, 1] with
``apply_gradients`` and clipping; style weight 1e-2, content weight 1e4, total
variation weight 30 (``tf.image.total_variation``); content layer block5_conv2, style
layers block1_conv1..block5_conv1; Gram matrices divided by the number of positions;
each loss a mean of squares. The network is a ``keras.applications`` VGG with its own
``preprocess_input`` and the same conv weights tfstyle uses, so both see the same
features.

The evaluator is one fixed yardstick for any image: the style distance is the relative
Gram error ‖G − A‖_F / ‖A‖_F (per-position Grams) averaged over conv1_1..conv5_1, the
content distance the relative feature error ‖F − P‖ / ‖P‖ at conv4_2.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from tfstyle.core.features import build_feature_model, read_conv_weights
from tfstyle.core.losses import gram_matrix

STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
CONTENT_LAYERS = ["block5_conv2"]
EVAL_CONTENT = "block4_conv2"


def keras_vgg(backbone: str, weights):
    """keras.applications' VGG with the given conv weights (imagenet, a path, or None)."""
    app = keras.applications.VGG19 if backbone == "vgg19" else keras.applications.VGG16
    if weights is None or weights == "imagenet":
        return app(include_top=False, weights=weights)
    vgg = app(include_top=False, weights=None)
    found = read_conv_weights(weights, backbone)
    for layer in vgg.layers:
        if layer.name in found:
            layer.set_weights(list(found[layer.name]))
    return vgg


class TutorialLoop:
    """The tutorial's extractor, loss and train step."""

    def __init__(self, backbone: str, weights, style_weight=1e-2, content_weight=1e4,
                 tv_weight=30.0):
        vgg = keras_vgg(backbone, weights)
        vgg.trainable = False
        outputs = [vgg.get_layer(n).output for n in STYLE_LAYERS + CONTENT_LAYERS]
        self.model = keras.Model(vgg.input, outputs)
        self.preprocess = (keras.applications.vgg19.preprocess_input if backbone == "vgg19"
                           else keras.applications.vgg16.preprocess_input)
        self.weights = (style_weight, content_weight, tv_weight)
        self.optimizer = keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)

    def extract(self, image01):
        outputs = self.model(self.preprocess(image01 * 255.0))
        style = [tf.einsum("bijc,bijd->bcd", o, o)
                 / tf.cast(tf.shape(o)[1] * tf.shape(o)[2], tf.float32)
                 for o in outputs[:len(STYLE_LAYERS)]]
        return style, outputs[len(STYLE_LAYERS):]

    def run(self, content01, style01, steps, callback=None, callback_every=100):
        """Optimises from the content image; returns the image in [0, 1] and seconds
        per step (median over ``callback_every``-step chunks)."""
        style_targets, _ = self.extract(style01)
        _, content_targets = self.extract(content01)
        style_weight, content_weight, tv_weight = self.weights
        image = tf.Variable(content01)

        @tf.function
        def train_step():
            with tf.GradientTape() as tape:
                style, content = self.extract(image)
                style_loss = tf.add_n([tf.reduce_mean((s - t) ** 2)
                                       for s, t in zip(style, style_targets)])
                style_loss *= style_weight / len(STYLE_LAYERS)
                content_loss = tf.add_n([tf.reduce_mean((c - t) ** 2)
                                         for c, t in zip(content, content_targets)])
                content_loss *= content_weight / len(CONTENT_LAYERS)
                loss = style_loss + content_loss + tv_weight * tf.image.total_variation(image)
            grad = tape.gradient(loss, image)
            self.optimizer.apply_gradients([(grad, image)])
            image.assign(tf.clip_by_value(image, 0.0, 1.0))

        times = []
        for step in range(1, steps + 1):
            train_step()
            if step % callback_every == 0 or step == steps:
                image.value().numpy()  # wait for the device before reading the clock
                times.append((step, time.perf_counter()))
                if callback is not None:
                    callback(step, image.numpy())
        per_step = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(times, times[1:])]
        return image.numpy(), (float(np.median(per_step)) if per_step else float("nan"))


class Evaluator:
    """Style and content distances of images in [0, 255], (1, H, W, 3)."""

    def __init__(self, backbone: str, weights, content01, style01):
        names = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1", "conv4_2"]
        self.model = build_feature_model(names, backbone, "max", weights)
        features = self.model(content01 * 255.0)
        self.content = features[-1]
        self.grams = [self._gram(f) for f in self.model(style01 * 255.0)[:5]]

    @staticmethod
    def _gram(f):
        """The per-position Gram matrix (N, N) of a (1, H, W, N) feature map."""
        return gram_matrix(f) / tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)

    def __call__(self, image255):
        features = self.model(tf.convert_to_tensor(image255, tf.float32))
        style = np.mean([float(tf.norm(self._gram(f) - a) / tf.norm(a))
                         for f, a in zip(features[:5], self.grams)])
        content = float(tf.norm(features[-1] - self.content) / tf.norm(self.content))
        return style, content
