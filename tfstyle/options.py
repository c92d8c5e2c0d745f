"""The options of one style-transfer run, their defaults, and their validation.

One place for both, so that the Python API, the CLI and the export accept and refuse
the same things with the same words. Everything is checked before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

from tfstyle.errors import ConfigError

# The paper's style layers. Content at the paper's conv4_2 and also at conv2_2, whose maps
# at half the image's size hold the photo's fine edges: without it the shapes melt at
# 100 % (the probes that chose it: git show 2ab786b:BENCHMARKS.md, "Crisp at 100 %
# (issue 22, second step)").
DEFAULT_CONTENT_LAYERS = ("conv2_2", "conv4_2")
DEFAULT_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
INITS = ("content", "noise", "style", "blend", "texture")
PRESERVE_COLORS = ("none", "luminance", "histogram")
STYLE_LOSSES = ("gram", "mean_cov")
MAX_STEPS = 100_000
MAX_STYLES = 16
# The style strength at which --content_weight and --style_weight apply as given.
DEFAULT_STYLE_STRENGTH = 0.5
# How far --style_strength 1 moves the style/content weight ratio: this many times the
# default's (losses.strength_weights). 9 was past the top of the style measures' curve
# under the conv2_2 content term; 5 is near the least the squared form allows (over 4 at
# s0 = 0.5): git show 2ab786b:BENCHMARKS.md, "The knob at 5 times". The knob as it is
# measured now: BENCHMARKS.md, "The knob".
STRENGTH_REACH = 5.0


_INT_RANGES = {"int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1)}


@dataclasses.dataclass(frozen=True)
class FieldBounds:
    """The values one scalar ``RunOptions`` field may take.

    ``validate`` checks a field by its row, and so do the client and the exported graph
    for the fields a request carries (``served_options`` adds what the wire needs to
    these rows): a value is accepted or refused alike by all of them.

    name: the ``RunOptions`` field.
    dtype: the type its values must fit, as the exported graph takes them: ``int32``,
      ``int64``, ``float32`` or ``string``.
    lo, hi: the bounds of a number, both allowed; None: no bound but the dtype's. A
      float's values must also be finite.
    strict: ``lo`` itself is refused (style_scale > 0).
    allowed: the values of a string field.
    range_words: the bounds in words, where their ends have a meaning (style_strength).
    """
    name: str
    dtype: str
    lo: float | None = None
    hi: float | None = None
    strict: bool = False
    allowed: tuple = ()
    range_words: str = ""

    def bounds(self) -> tuple:
        """(lo, hi), an integer field's open ends filled in with its dtype's limits."""
        if self.dtype not in _INT_RANGES:
            return self.lo, self.hi
        low, high = _INT_RANGES[self.dtype]
        return (low if self.lo is None else self.lo, high if self.hi is None else self.hi)

    def check(self, value):
        """Returns ``value`` if it is one this field takes, else raises ConfigError in
        ``RunOptions.validate``'s words."""
        if self.allowed:
            if not isinstance(value, str) or value not in self.allowed:
                raise ConfigError(f"{self.name} must be one of {', '.join(self.allowed)}, "
                                  f"got {value!r}")
        elif self.dtype in _INT_RANGES:
            _check_int(self.name, value, *self.bounds())
        else:
            _check_float(self.name, value, self.lo, self.strict)
            if self.hi is not None and float(value) > self.hi:
                words = self.range_words or f"between {self.lo:g} and {self.hi:g}"
                raise ConfigError(f"{self.name} must be {words}, got {value}")
        return value


# The scalar fields with bounds, in the order of the exported model's inputs.
FIELD_BOUNDS = {row.name: row for row in (
    FieldBounds("steps", "int32", lo=0, hi=MAX_STEPS),
    FieldBounds("content_weight", "float32", lo=0.0),
    FieldBounds("style_weight", "float32", lo=0.0),
    FieldBounds("tv_weight", "float32", lo=0.0),
    FieldBounds("size", "int32", lo=1, hi=16384),
    FieldBounds("seed", "int64", lo=0),
    # validate takes the path of an image file too; a request sends it as an image.
    FieldBounds("init", "string", allowed=INITS),
    FieldBounds("init_blend", "float32", lo=0.0, hi=1.0,
                range_words="between 0 (the photo) and 1 (the painting)"),
    FieldBounds("style_scale", "float32", lo=0.0, strict=True),
    FieldBounds("preserve_colors", "string", allowed=PRESERVE_COLORS),
    FieldBounds("style_loss", "string", allowed=STYLE_LOSSES),
    FieldBounds("stage_size", "int32", lo=0, hi=16384),
    FieldBounds("stage_factor", "float32", lo=1.0, strict=True),
    FieldBounds("stage_detail", "float32", lo=0.0, hi=1.0),
    FieldBounds("style_strength", "float32", lo=0.0, hi=1.0,
                range_words="between 0 (the photo) and 1 (the most style)"),
    # Weighs only where a run has a temporal target and mask (a video frame).
    FieldBounds("temporal_weight", "float32", lo=0.0),
)}


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Per-run settings (the feature model's settings belong to ``Stylizer``).

    size: longest side of the output in pixels; the content image is resized to it.
    steps: optimisation steps (one loss and gradient evaluation each), ≥ 0.
    optimizer: ``lbfgs`` (default; converges in far fewer steps) or ``adam``.
    learning_rate: Adam's step in pixels (0..255), or L-BFGS's multiplier of its
      quasi-Newton step; None takes the optimiser's default.
    content_weight, style_weight: α and β of the paper, at the default style strength.
    style_strength: one knob for the balance, 0 (the photo) to 1 (the most of the
      painting); α, β and γ follow it (``tfstyle.core.losses.strength_weights``), equal to
      the three weights at ``DEFAULT_STYLE_STRENGTH``; at 1 β/α is ``STRENGTH_REACH``
      times the default's. Above the default only the full-size stage follows it; the
      coarse stages keep the default's balance (``for_stage``).
    tv_weight: γ, total variation on the [0, 1] image, to suppress high-frequency noise.
    init: where the first stage starts: ``texture`` (default): the photo mixed with the
      painting's colours and strokes, its layout scrambled by a random phase
      (``tfstyle.core.texture``); ``blend``: the photo mixed with the painting itself,
      whose large shapes the run then keeps; ``content`` (the photo), ``noise``,
      ``style`` (the first painting, stretched to the photo's shape), or the path of an
      image.
    init_blend: the painting's share r of the ``texture`` and ``blend`` starts, 0 to 1:
      (1 − r) × photo + r × painting, or its texture (``core.stages.start_image``). The
      photo's flat regions (skies, walls) then start among the painting's strokes, which
      the run keeps, where a photo start leaves them flat at 100 %; ``content`` (or 0)
      starts from the photo alone. Below the default ``style_strength`` the share falls
      with it (to the photo at 0); several paintings start as their
      ``style_blend_weights`` mix, for ``style`` too.
    seed: makes the noise (and so the run) reproducible; None draws one and reports it.
    style_scale: each style image is resized to style_scale × the output's longest
      side: one number for all styles, or a tuple with one per style. The default 1
      paints with the painting's strokes at the output's scale: finer texture at 100 %
      than 1.5 (the earlier default), whose larger strokes smeared the photo's small
      shapes (git show 2ab786b:BENCHMARKS.md, "Crisp at 100 % (issue 22, first step)").
    style_blend_weights: with several styles, one weight ≥ 0 per style (normalised to
      sum 1; default equal): the style target is that mix of the styles' Gram matrices.
    preserve_colors: ``none``; ``luminance`` (transfer on the luminance only, then put
      the content's colours back); ``histogram`` (match the styles' colour statistics
      to the content's before the run). See ``tfstyle.core.color``.
    style_loss: ``gram`` (the paper's) or ``mean_cov`` (feature means and covariances;
      see ``tfstyle.core.losses.style_distance``).
    stage_size: coarse-to-fine: the first stage's longest side. Stages grow by
      ``stage_factor`` up to ``size``; a run whose ``size`` is below
      ``stage_size × stage_factor`` is single-scale. 0 turns coarse-to-fine off.
    stage_factor: size ratio between successive stages, > 1.
    stage_detail: how much of the photo's detail between two stages' sizes is added to
      each upsampled start, 0 to 1: the content minus its previous stage, upsampled
      (``core.stages.content_detail``). 1 (default) gives each finer stage the photo's edges at
      its own scale, which its few steps could not draw from a blurred start; 0 starts
      from the last result upsampled alone.
    stage_steps: steps per stage, coarsest first; replaces ``steps``. Default: ``steps``
      split so that each stage gets half the steps of the one before.
    memory_limit: bytes a step may use (an int, or a string like ``6G``); a stage whose
      untiled step would need more runs tiled (``tfstyle.core.tiling``), in tiles that fit.
      0: ``memory.DEFAULT_FRACTION`` of the GPU's memory, or of the free RAM. Under
      TensorFlow's BFC pool (``tfstyle.allocator``) an estimate, not a hard bound:
      the CLI switches to malloc where a run keeps its budget only by tiling; in
      Python, set ``TF_CPU_ALLOCATOR_USE_BFC=0`` before importing tfstyle for that.
    tile_size: 0 tiles only stages over ``memory_limit``; N > 0 tiles every stage
      larger than N px in tiles of N px (rounded up to a multiple of 16).
    tile_halo: pixels of context around each tile; -1: the default, half the deepest
      layer's receptive field on its stride (``tiling.default_halo``: 48 px for VGG19,
      32 for VGG16); the whole field (``tiling.receptive_halo``: 70, 58) is exact to
      rounding, smaller is faster and approximate (BENCHMARKS.md, "tiled steps").
    temporal_weight: λ of the temporal term (``losses.temporal_loss``) at the default
      style strength, on a video's frames after the first (``tfstyle.video.frames``); it follows
      β along ``style_strength``, so the knob keeps its meaning on a clip. A still image
      has no such term.
    """
    size: int = 512
    steps: int = 240
    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    content_weight: float = 1.0
    style_weight: float = 3.4e5
    style_strength: float = DEFAULT_STYLE_STRENGTH
    tv_weight: float = 100.0
    init: str = "texture"
    init_blend: float = 0.45
    seed: int | None = None
    style_scale: float | tuple = 1.0
    style_blend_weights: tuple | None = None
    preserve_colors: str = "none"
    style_loss: str = "mean_cov"
    stage_size: int = 128
    stage_factor: float = 2.0
    stage_detail: float = 1.0
    stage_steps: tuple | None = None
    memory_limit: str | int = 0
    tile_size: int = 0
    tile_halo: int = -1
    # λ/β as chosen at β = 3.4e4, λ = 3e5 (BENCHMARKS.md, "Video"): λ follows β.
    temporal_weight: float = 3e6

    def style_scales(self, count: int) -> tuple:
        """One ``style_scale`` per style, for ``count`` styles: each style image's
        longest side relative to the output's (not a feature scale, which is
        ``losses.Targets``')."""
        scales = _as_tuple(self.style_scale)
        if len(scales) == 1:
            return scales * count
        if len(scales) != count:
            raise ConfigError(f"{len(scales)} style scales for {count} style images: give "
                              f"one, or one per style")
        return tuple(float(x) for x in scales)

    def blend_weights(self, count: int) -> tuple:
        """The normalised blend weights (summing to 1) for ``count`` styles."""
        if self.style_blend_weights is None:
            return (1.0 / count,) * count
        weights = [float(w) for w in self.style_blend_weights]
        if len(weights) != count:
            raise ConfigError(f"{len(weights)} style blend weights for {count} style images: "
                              f"give one per style")
        total = sum(weights)
        return tuple(w / total for w in weights)

    def stages(self) -> list:
        """The coarse-to-fine plan: [(longest side, steps), ...], coarsest first, ending
        at ``size``: ``tfstyle.core.schedule.stage_plan``, the tensor function the exported
        model runs too, evaluated here. ``stage_steps``, if set, replaces its split.
        Computed once and kept with these (frozen) options."""
        if "_plan" not in self.__dict__:
            object.__setattr__(self, "_plan", tuple(self._stage_plan()))
        return list(self.__dict__["_plan"])

    def _stage_plan(self):
        import tensorflow as tf  # on first use: the CLI checks its flags without it

        from tfstyle.core import schedule
        try:
            sizes, steps = schedule.stage_plan(self.size, self.steps, self.stage_size,
                                               self.stage_factor)
        except tf.errors.InvalidArgumentError as e:
            # The graph's assertion message, without the op's framing around it.
            raise ConfigError(re.search(r"stage_size=.*stages: raise one of them",
                                        e.message).group(0)) from None
        sizes = [int(s) for s in sizes.numpy()]
        if self.stage_steps is not None:
            if len(self.stage_steps) != len(sizes):
                raise ConfigError(
                    f"{len(self.stage_steps)} stage_steps for {len(sizes)} stages "
                    f"({', '.join(map(str, sizes))} px): give one per stage, or change "
                    f"size / stage_size")
            return list(zip(sizes, (int(n) for n in self.stage_steps)))
        return list(zip(sizes, (int(n) for n in steps.numpy())))

    def for_stage(self, last) -> "RunOptions":
        """These options with the style strength one coarse-to-fine stage runs at
        (``tfstyle.core.losses.stage_strength``: above the default, the coarse stages stay at
        the default's); ``last``: whether it is the full-size stage (a bool, or a bool
        scalar tensor in the exported graph)."""
        from tfstyle.core.losses import stage_strength  # imports TensorFlow: not at start-up

        strength = stage_strength(self.style_strength, last, DEFAULT_STYLE_STRENGTH)
        return dataclasses.replace(self, style_strength=strength)

    def loss_weights(self) -> tuple:
        """(α, β, γ): the content, style and TV weights at ``style_strength`` (floats, or
        scalar tensors where the fields are tensors, as in the exported graph)."""
        from tfstyle.core.losses import strength_weights  # imports TensorFlow: not at start-up

        return strength_weights(self.content_weight, self.style_weight, self.tv_weight,
                                self.style_strength, DEFAULT_STYLE_STRENGTH, STRENGTH_REACH)

    def temporal_loss_weight(self):
        """λ at ``style_strength``: ``temporal_weight`` scaled as β is (a float, or a
        scalar tensor where the fields are tensors)."""
        from tfstyle.core.losses import style_factor  # imports TensorFlow: not at start-up

        return self.temporal_weight * style_factor(self.style_strength, DEFAULT_STYLE_STRENGTH)

    def validate(self) -> "RunOptions":
        """Returns self if every value is usable, else raises ConfigError naming it.
        Options found usable once are not checked again (they are frozen)."""
        if self.__dict__.get("_valid"):
            return self
        # By the rows that the exported model and the client check a request by too
        # (served_options): one place, so that they cannot drift.
        bounds = FIELD_BOUNDS
        bounds["size"].check(self.size)
        bounds["steps"].check(self.steps)
        if self.optimizer.strip().lower() not in ("adam", "lbfgs", "l-bfgs"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}: use lbfgs or adam")
        for name in ("content_weight", "style_weight", "tv_weight", "style_strength"):
            bounds[name].check(getattr(self, name))
        bounds["temporal_weight"].check(self.temporal_weight)
        if self.learning_rate is not None:
            _check_float("learning_rate", self.learning_rate, minimum=0.0, strict=True)
        for scale in _as_tuple(self.style_scale):
            bounds["style_scale"].check(scale)
        if self.style_blend_weights is not None:
            for weight in self.style_blend_weights:
                _check_float("style_blend_weights", weight, minimum=0.0)
            if not sum(float(w) for w in self.style_blend_weights) > 0:
                raise ConfigError(f"style_blend_weights must not all be 0, got "
                                  f"{list(self.style_blend_weights)}")
        for name in ("preserve_colors", "style_loss", "stage_size", "stage_factor",
                     "stage_detail", "init_blend"):
            bounds[name].check(getattr(self, name))
        if self.stage_steps is not None:
            steps = tuple(self.stage_steps)
            if not steps:
                raise ConfigError("stage_steps is empty: give one step count per stage")
            for n in steps:
                _check_int("stage_steps", n, 0, MAX_STEPS)
            if sum(steps) > MAX_STEPS:
                raise ConfigError(f"stage_steps add up to {sum(steps)}, above {MAX_STEPS}")
        if all(w == 0 for w in self.loss_weights()):
            raise ConfigError("all loss weights are 0: nothing to optimise; set --style_weight "
                              "or --content_weight above 0 (--style_strength 0 zeroes the "
                              "style and TV weights)")
        if self.init not in INITS and not os.path.isfile(self.init):
            raise ConfigError(f"init {self.init!r} is neither one of {', '.join(INITS)} nor an "
                              f"existing image file")
        if self.seed is not None:
            bounds["seed"].check(self.seed)
        from tfstyle.local.memory import parse_memory
        if parse_memory(self.memory_limit) < 0:
            raise ConfigError(f"memory_limit must be ≥ 0 (0 = automatic), got "
                              f"{self.memory_limit}")
        _check_int("tile_size", self.tile_size, 0, 16384)
        _check_int("tile_halo", self.tile_halo, -1, 1024)
        self.stages()  # a stage_steps list of the wrong length fails here, up front
        object.__setattr__(self, "_valid", True)
        return self


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")


def _check_float(name, value, minimum, strict=False):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    if number < minimum or (strict and number == minimum):
        relation = ">" if strict else "≥"
        raise ConfigError(f"{name} must be {relation} {minimum:g}, got {value}")

