"""The library's entry points: ``Stylizer`` (build the model once, stylize many images)
and the one-shot ``stylize``.

The algorithm is ``tfstyle.core``; a job's images are prepared by ``tfstyle.local.inputs``
and driven stage by stage by ``tfstyle.local.runner``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from tfstyle import image_io
from tfstyle.core.model import StyleModel
from tfstyle.local import inputs as inputs_lib
from tfstyle.local import photos, runner
from tfstyle.local.compiled import Compiled
from tfstyle.local.inputs import Inputs, load_inputs
from tfstyle.local.runner import Progress, Result
from tfstyle.options import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, RunOptions

__all__ = ["Stylizer", "stylize", "Progress", "Result"]


class Stylizer(StyleModel):
    """Builds the feature model once and stylizes any number of image pairs with it.

    Args:
      backbone, pooling, weights, content_layers, style_layers, style_layer_weights,
        precision, content_edge_powers: the feature model (``core.model.StyleModel``).
        ``precision`` is ``auto`` (default), ``float32`` or ``mixed_bfloat16``: the
        network in bfloat16, the losses, Gram matrices and the image in float32;
        ``auto`` picks bfloat16 where the hardware has it (``tfstyle.core.precision``);
        ``self.precision`` is the choice.
      jit_compile: compile the optimisation loop with XLA (Adam only: TF 2.21's XLA
        fails on the L-BFGS loop). Meant for GPUs; on a CPU it is slower.
    """

    def __init__(self, backbone: str = "vgg19", pooling: str = "max", weights="imagenet",
                 content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                 style_layer_weights=None, precision: str = "auto",
                 jit_compile: bool = False, content_edge_powers=None):
        super().__init__(backbone, pooling, weights, content_layers, style_layers,
                         style_layer_weights, precision, content_edge_powers)
        self.jit_compile = bool(jit_compile)
        # The traced functions, kept so that a folder of images traces once.
        self.compiled = Compiled(self, self.jit_compile)

    def prepare(self, content, style, options: RunOptions, content_mask=None,
                style_masks=None, start=None) -> Inputs:
        """Decodes the inputs once, at their own sizes, and checks that they fit
        together and every stage's sizes fit this model (``inputs.load_inputs``,
        ``inputs.check_sizes``)."""
        inputs = load_inputs(content, style, options, content_mask, style_masks, start)
        inputs_lib.check_sizes(inputs, options, self.layers)
        return inputs

    def stylize(self, content=None, style=None, options: RunOptions | None = None,
                callback: Callable[[Progress], None] | None = None, callback_every: int = 50,
                should_stop: Callable[[], bool] | None = None, resume: dict | None = None,
                content_mask=None, style_masks=None, inputs: Inputs | None = None,
                start=None, temporal=None, **overrides) -> Result:
        """Stylizes ``content`` with ``style``.

        Args:
          content: a path, encoded bytes, a PIL image, or an array (H, W, 3) uint8 in
            [0, 255] or float in [0, 1].
          style: one such image, or a list of them (blended by
            ``options.style_blend_weights``, or placed by ``style_masks``).
          options: a ``RunOptions``; keyword ``overrides`` replace its fields
            (``steps=200, size=256, ...``).
          callback: called with a ``Progress`` every ``callback_every`` steps and at the
            end.
          should_stop: polled about twice a second; when it returns True the run stops
            with ``Interrupted`` (e.g. set by a signal handler).
          resume: a checkpoint from ``Interrupted.checkpoint`` (or
            ``tfstyle.local.checkpoint.load_checkpoint``) of this same job: the run continues
            from it and reaches the image an uninterrupted run would.
          content_mask, style_masks: spatial control, see ``inputs.load_inputs``. Masks
            are images over the content (any size of the same aspect ratio); white is
            "apply".
          inputs: instead of the images and masks, ``load_inputs``'s result (the CLI
            decodes and checks its files before building the model).
          start: None, or an image to start from (as ``content``), whatever
            ``options.init`` says: resized to the first stage's size and colour-
            controlled as an ``init`` image is (a video frame's warm start).
          temporal: None, or (target (H, W, 3) in [0, 255], weight (H, W) in [0, 1]) at
            the last stage's size: that stage's loss gains ``options.temporal_weight``
            times ``losses.temporal_loss`` (``tfstyle.video.frames``); the target is colour-
            controlled as the content is.

        With ``size`` at least ``stage_size × stage_factor`` the run is coarse-to-fine
        (``RunOptions.stages``): each stage starts from the previous one's result,
        upsampled, and the optimiser's state is carried across.

        Returns:
          ``Result`` with the image as uint8 (H, W, 3), H and W from ``options.size``.

        Raises:
          ImageError, ConfigError: bad input (or a checkpoint of another job), before any
            optimisation.
          NumericalError: the loss became non-finite; ``error.image`` holds the last
            finite image (uint8) and ``error.step`` the step.
          Interrupted: ``should_stop`` asked to stop; ``error.image`` is the image so
            far, ``error.checkpoint`` what ``resume`` takes.
        """
        options = options or RunOptions()
        if overrides:
            options = dataclasses.replace(options, **overrides)
        options = options.validate()
        runner.check_run(options, callback_every, self.jit_compile)
        if inputs is None:
            inputs = self.prepare(content, style, options, content_mask, style_masks, start)
        else:
            inputs = self._with_start(inputs, options, start)
        return runner.run(self, self.compiled, inputs, options, callback, int(callback_every),
                          should_stop, resume, temporal)

    def _with_start(self, inputs: Inputs, options: RunOptions, start) -> Inputs:
        """Decoded ``inputs`` with ``start`` (if given) as their init image, checked
        against every stage's sizes as ``prepare``'s are."""
        if start is not None:
            inputs = inputs._replace(init=image_io.open_image(start))
        inputs_lib.check_sizes(inputs, options, self.layers)
        return inputs

    def stylize_many(self, contents, style, options: RunOptions | None = None,
                     callback: Callable[[int, Progress], None] | None = None,
                     callback_every: int = 50, should_stop: Callable[[], bool] | None = None,
                     **overrides):
        """Stylizes many photos with one style, one after another, on this model:
        yields ``(index, content, Result or the photo's error)`` as each finishes.

        One seed for all (``options.seed``, or one drawn here), so each photo's result
        is the one ``stylize`` gives it alone with that seed; a photo that fails is
        yielded with its error and the others go on; ``should_stop`` ends the loop
        with ``Interrupted`` (``error.index``: the photo that did not finish).
        ``callback(index, progress)``. See ``tfstyle.local.photos.stylize_many``.
        """
        return photos.stylize_many(self, contents, style, options, callback,
                                   callback_every, should_stop, **overrides)


def stylize(content, style, *, backbone="vgg19", pooling="max", weights="imagenet",
            content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
            style_layer_weights=None, content_edge_powers=None, callback=None,
            callback_every=50, **options):
    """One-shot style transfer: builds a ``Stylizer`` and runs it once.

    Args:
      content, style: paths, encoded bytes, PIL images or arrays (H, W, 3).
      backbone, pooling, weights, content_layers, style_layers, style_layer_weights,
        content_edge_powers: the feature model (see ``Stylizer``).
      **options: fields of ``RunOptions`` (size, steps, optimizer, ...).

    Returns:
      The stylized image, uint8 (H, W, 3) with max(H, W) == size.

    To stylize many images, build one ``Stylizer`` and call its ``stylize``: the
    feature model and the compiled functions are then built only once.
    """
    stylizer = Stylizer(backbone, pooling, weights, content_layers, style_layers,
                        style_layer_weights, content_edge_powers=content_edge_powers)
    return stylizer.stylize(content, style, RunOptions(**options), callback=callback,
                            callback_every=callback_every).image
