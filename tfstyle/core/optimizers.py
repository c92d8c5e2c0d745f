"""Image optimisers as pure functions: (image, gradient, loss, state) -> (image, state).

No ``tf.Variable`` and no Python side effects, so that one update can run in the
library loop (which keeps image and state in variables between chunks of steps) and
inside the exported SavedModel's ``tf.while_loop`` (where they are loop variables and
concurrent requests must not share anything). The state is a tuple of tensors whose
shapes depend only on the image's shape.

Pixels live in [0, 255]; every update projects back into that box.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfstyle.errors import ConfigError

PIXEL_MAX = 255.0


class Adam:
    """Adam (Kingma & Ba) on the pixels, learning rate in pixel units per step.

    Args:
      learning_rate: step size, pixels (0..255 scale).
      beta1, beta2, epsilon: the usual Adam constants.
    """

    name = "adam"

    def __init__(self, learning_rate: float = 10.0, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8):
        self.learning_rate = float(learning_rate)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.epsilon = float(epsilon)

    def init(self, image: tf.Tensor) -> tuple:
        """State for an image (1, H, W, 3): (first moment, second moment, step count)."""
        zeros = tf.zeros_like(image)
        return (zeros, zeros, tf.constant(0.0))

    def result(self, image, state):
        """The image to keep: Adam's last update."""
        del state
        return image

    def resize_state(self, state, image):
        """Carries the state to ``image`` (1, H', W', 3), the next coarse-to-fine stage.

        The moments are per-pixel running averages of smooth fields, so resizing them
        keeps the per-pixel step sizes Adam has learnt; the step count stays, which
        keeps the bias correction off (a fresh Adam's first steps are full-size).
        """
        m, v, t = state
        size = tf.shape(image)[1:3]
        m = tf.image.resize(m, size, "bilinear")
        v = tf.maximum(tf.image.resize(v, size, "bilinear"), 0.0)
        return (m, v, t)

    def update(self, image, grad, loss, state):
        """One Adam step; returns (new image in [0, 255], new state)."""
        del loss  # Adam needs only the gradient.
        m, v, t = state
        t = t + 1.0
        m = self.beta1 * m + (1.0 - self.beta1) * grad
        v = self.beta2 * v + (1.0 - self.beta2) * tf.square(grad)
        m_hat = m / (1.0 - tf.pow(self.beta1, t))
        v_hat = v / (1.0 - tf.pow(self.beta2, t))
        image = image - self.learning_rate * m_hat / (tf.sqrt(v_hat) + self.epsilon)
        return tf.clip_by_value(image, 0.0, PIXEL_MAX), (m, v, t)


class LBFGS:
    """Limited-memory BFGS with a backtracking line search, one loss evaluation per step.

    The classic choice for style transfer (Gatys et al., jcjohnson/neural-style): the
    same cost per step as Adam, far fewer steps. Each step evaluates the loss at a
    *candidate* image. If the candidate lowers the loss enough (Armijo's condition on
    the projected move), it is accepted: the curvature pair (s, y) is stored and a new
    quasi-Newton direction d = −H g is taken from the last ``history`` pairs by the
    two-loop recursion, and the next candidate is clip(x + lr · d). If not, the step
    along d is halved and the next candidate is tried from the last accepted image. So
    a rejected step costs one evaluation, like any other step, and the loop stays a
    fixed-shape ``tf.while_loop``.

    Pairs with sᵀy ≤ 0 (non-convex regions) are skipped. With no curvature yet (the
    first step, or after the direction stopped being one of descent) the step is the
    gradient scaled to move ``first_step`` pixels at most.

    The image to keep is the last accepted one: ``result(image, state)``.

    Args:
      history: number of (s, y) pairs kept (memory: 2 · history · image size floats).
      learning_rate: multiplier of the quasi-Newton step tried first; 1 is natural.
      first_step: largest pixel change of a step taken without curvature information.
      armijo: the sufficient-decrease constant c₁.
    """

    name = "lbfgs"

    def __init__(self, history: int = 10, learning_rate: float = 1.0, first_step: float = 8.0,
                 armijo: float = 1e-4):
        if history < 1:
            raise ConfigError(f"L-BFGS history must be at least 1, got {history}")
        self.history = int(history)
        self.learning_rate = float(learning_rate)
        self.first_step = float(first_step)
        self.armijo = float(armijo)

    def init(self, image: tf.Tensor) -> "LBFGSState":
        """The state for an image (1, H, W, 3): ``LBFGSState``, no pairs stored."""
        n = tf.size(image)
        zeros_n = tf.zeros(tf.reshape(n, [1]), image.dtype)
        # One tensor per pair (all the same zeros until written): storing a pair then
        # shifts references instead of copying a (history, n) block, which at 4096 px
        # is hundreds of MB.
        pairs = (zeros_n,) * self.history
        return LBFGSState(pairs, pairs, tf.zeros([self.history], image.dtype), tf.constant(0),
                          zeros_n, zeros_n, tf.constant(float("inf"), image.dtype), zeros_n,
                          tf.constant(0.0, image.dtype), tf.constant(0))

    def resize_state(self, state, image):
        """A fresh state for ``image``, the next coarse-to-fine stage: curvature pairs
        (s, y) measured on other pixels say nothing about these, so L-BFGS restarts."""
        del state
        return self.init(image)

    def result(self, image, state):
        """The last accepted image, (1, H, W, 3) in [0, 255] (``image`` before any step)."""
        return tf.cond(state.steps > 0, lambda: tf.reshape(state.x, tf.shape(image)),
                       lambda: image)

    def update(self, image, grad, loss, state):
        """Evaluates a candidate; returns (next candidate in [0, 255], new state)."""
        s_mem, y_mem, rho, count, x_acc, g_acc, f_acc, d, t, steps = state
        x = tf.reshape(image, [-1])
        g = tf.reshape(grad, [-1])
        loss = tf.cast(loss, x.dtype)

        # Armijo on the projected move: f(x) ≤ f(x_acc) + c₁ g_accᵀ (x − x_acc).
        s = x - x_acc
        accept = (steps == 0) | (loss <= f_acc + self.armijo * tf.tensordot(g_acc, s, 1))

        # On acceptance, store the curvature pair of the move, if positive: it becomes
        # pair 0, the others move one place older, the oldest is dropped.
        y = g - g_acc
        sy = tf.tensordot(s, y, 1)
        store = accept & (steps > 0) & (sy > 1e-10 * tf.maximum(tf.tensordot(y, y, 1), 1e-30))
        s_mem, y_mem, rho = tf.cond(
            store, lambda: ((s,) + s_mem[:-1], (y,) + y_mem[:-1],
                            tf.concat([tf.reshape(1.0 / sy, [1]), rho[:-1]], 0)),
            lambda: (s_mem, y_mem, rho))
        count = tf.where(store, tf.minimum(count + 1, self.history), count)

        x_acc = tf.where(accept, x, x_acc)
        g_acc = tf.where(accept, g, g_acc)
        f_acc = tf.where(accept, loss, f_acc)

        new_d, new_t, count = self._direction(g_acc, s_mem, y_mem, rho, count)
        d = tf.where(accept, new_d, d)
        t = tf.where(accept, new_t, 0.5 * t)
        candidate = tf.clip_by_value(x_acc + t * d, 0.0, PIXEL_MAX)
        state = LBFGSState(s_mem, y_mem, rho, count, x_acc, g_acc, f_acc, d, t, steps + 1)
        return tf.reshape(candidate, tf.shape(image)), state

    def _direction(self, g, s_mem, y_mem, rho, count):
        """d = −H g by the two-loop recursion, with its first step length; falls back
        to the scaled gradient (and forgets the memory) if d is no descent direction."""
        # Pairs beyond `count` are masked out, which keeps the loop static for graph mode.
        q = g
        alphas = []
        for i in range(self.history):  # newest first
            valid = tf.cast(i < count, g.dtype)
            alpha = valid * rho[i] * tf.tensordot(s_mem[i], q, 1)
            q = q - alpha * y_mem[i]
            alphas.append((i, valid, alpha))
        gamma = tf.tensordot(s_mem[0], y_mem[0], 1) / tf.maximum(
            tf.tensordot(y_mem[0], y_mem[0], 1), 1e-30)
        r = gamma * q
        for i, valid, alpha in reversed(alphas):
            beta = valid * rho[i] * tf.tensordot(y_mem[i], r, 1)
            r = r + s_mem[i] * (alpha - beta)
        quasi_newton = (count > 0) & (tf.tensordot(g, r, 1) > 0)
        gradient_step = self.first_step / tf.maximum(tf.reduce_max(tf.abs(g)), 1e-30)
        d = tf.where(quasi_newton, -r, -g)
        t = tf.where(quasi_newton, tf.constant(self.learning_rate, g.dtype), gradient_step)
        return d, t, tf.where(quasi_newton, count, 0)


class LBFGSState(NamedTuple):
    """L-BFGS's state, tensors whose shapes depend only on the image's n pixels × 3.

    s, y: ``history`` tensors (n,) each, the curvature pairs, newest first; rho (history,):
    1 / sᵀy of each; count: pairs stored; x, g, f: the last accepted image (n,), its
    gradient and loss; d (n,), t: the direction and step length of the next candidate;
    steps: updates so far.
    """
    s: tuple
    y: tuple
    rho: tf.Tensor
    count: tf.Tensor
    x: tf.Tensor
    g: tf.Tensor
    f: tf.Tensor
    d: tf.Tensor
    t: tf.Tensor
    steps: tf.Tensor


OPTIMIZERS = {"adam": Adam, "lbfgs": LBFGS}


def get_optimizer(name: str, **kwargs):
    """An optimiser by name (``adam`` or ``lbfgs``), with its keyword options."""
    key = name.strip().lower().replace("-", "")
    if key not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[key](**kwargs)


def make_optimizer(options):
    """The optimiser ``options`` (``RunOptions``) asks for, with its learning rate if
    one is set."""
    kwargs = {}
    if options.learning_rate is not None:
        kwargs["learning_rate"] = options.learning_rate
    return get_optimizer(options.optimizer, **kwargs)
