"""Many photos, one style: ``Stylizer.stylize_many``.

Each photo is a run of its own (``runner.run``, as ``Stylizer.stylize`` runs one), on
one feature model and one set of traced functions: a folder of any sizes traces once.
The style images are decoded once; each photo is decoded just before its run, so a
folder never sits in memory whole. Every photo gets the same seed, so a photo's result
does not depend on where it stands in the list: it is the one ``stylize`` gives with
that seed.

A photo that cannot be read, fails its checks, or whose loss becomes non-finite is
yielded with its error and the others go on; a stop request (``should_stop``) ends the
whole loop with ``Interrupted``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import tensorflow as tf

from tfstyle import image_io
from tfstyle.errors import Interrupted, TfstyleError
from tfstyle.local import runner
from tfstyle.options import RunOptions

# What a photo may fail with while the others go on: the errors tfstyle raises on
# purpose for one input (ImageError, ConfigError, NumericalError), and running out of
# memory on a photo larger than the rest.
PHOTO_ERRORS = (TfstyleError, tf.errors.ResourceExhaustedError)


def stylize_many(stylizer, contents: Iterable, style, options: RunOptions | None = None,
                 callback: Callable | None = None, callback_every: int = 50,
                 should_stop: Callable[[], bool] | None = None,
                 **overrides) -> Iterator[tuple]:
    """Stylizes each of ``contents`` with ``style``, one photo after another.

    Args:
      stylizer: the ``Stylizer`` that runs them all.
      contents: photos, each anything ``Stylizer.stylize`` takes as ``content`` (a
        path, encoded bytes, a PIL image, an array (H, W, 3)); any iterable.
      style: one style image or a list of them, decoded once here. Its targets are
        computed once for each stage size: photos whose stages have an earlier photo's
        sizes (a folder of one camera's photos) reuse them (``compiled.Compiled``).
      options, overrides: as for ``stylize``. Without ``options.seed`` one seed is
        drawn here and used for every photo (``Result.seed`` reports it).
      callback: called as ``callback(index, progress)`` with the photo's index in
        ``contents`` and a ``Progress``, every ``callback_every`` steps and at the end.
      should_stop: polled between chunks of steps and before each photo.

    Yields:
      ``(index, content, outcome)`` per photo as it finishes, in order: ``outcome`` a
      ``Result`` (image uint8 (H, W, 3)), or the error that photo met (an instance of
      ``PHOTO_ERRORS``).

    Raises:
      ImageError, ConfigError: a style image or an option is bad (every photo would
        fail), at the first ``next``.
      Interrupted: ``should_stop`` asked to stop; ``error.index`` is the photo that did
        not finish (``error.image`` its image so far, None between photos).
    """
    options = _options(stylizer, options, overrides, callback_every)
    styles = [image_io.open_image(s) for s in (style if isinstance(style, (list, tuple))
                                                else [style])]
    for index, content in enumerate(contents):
        if should_stop is not None and should_stop():
            raise _stopped(Interrupted(f"stopped before photo {index + 1}"), index)
        yield index, content, _one(stylizer, content, styles, options,
                                   _for_photo(callback, index), callback_every,
                                   should_stop, index)


def _options(stylizer, options, overrides, callback_every) -> RunOptions:
    """The validated options of every photo, with one seed for all of them."""
    options = options or RunOptions()
    if overrides:
        options = dataclasses.replace(options, **overrides)
    options = options.validate()
    runner.check_run(options, callback_every, stylizer.jit_compile)
    if options.seed is None:
        options = dataclasses.replace(options, seed=runner.draw_seed())
    return options


def _one(stylizer, content, styles, options, callback, callback_every, should_stop, index):
    """One photo's ``Result``, or the error it met (``PHOTO_ERRORS``)."""
    try:
        inputs = stylizer.prepare(content, styles, options)
        return runner.run(stylizer, stylizer.compiled, inputs, options, callback,
                          int(callback_every), should_stop)
    except Interrupted as e:  # a TfstyleError too, but it ends the whole loop
        raise _stopped(e, index) from None
    except PHOTO_ERRORS as e:
        return e


def _for_photo(callback, index):
    """``callback`` of one photo, as ``runner.run`` calls it: with a ``Progress``."""
    if callback is None:
        return None
    return lambda progress: callback(index, progress)


def _stopped(error: Interrupted, index: int) -> Interrupted:
    error.index = index
    return error
