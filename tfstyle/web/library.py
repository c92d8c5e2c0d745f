"""Everything the web front takes from the rest of tfstyle, in one module.

Keeping every import of another tfstyle module here means a move is a few lines to
change in one place. The names are the public ones where the library has them
(``tfstyle.Stylizer``, ``RunOptions``, ``tfstyle.errors``, ``TFServingClient``,
``image_io``'s checks, ``tfstyle.video.frames``); the rest (video files, the served
options, the allocator choice) are what the CLI uses. The page sits beside ``cli/`` in
the layout: a front over everything else, which nothing else imports.

TensorFlow is imported only by the functions that need it, on first use: the server
answers its first page while the model is still being built.
"""

from __future__ import annotations

import tfstyle
from tfstyle import RunOptions, image_io
from tfstyle.errors import ConfigError, ImageError, Interrupted, NumericalError, TfstyleError
from tfstyle.options import (DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS,
                             DEFAULT_STYLE_STRENGTH, INITS, MAX_STYLES, PRESERVE_COLORS,
                             STYLE_LOSSES)
# No TensorFlow: frames.py imports the flow and the options only.
from tfstyle.video.frames import VideoOptions

__all__ = ["RunOptions", "VideoOptions", "ConfigError", "ImageError", "Interrupted",
           "NumericalError", "TfstyleError", "INITS", "PRESERVE_COLORS", "STYLE_LOSSES",
           "MAX_STYLES", "DEFAULT_STYLE_STRENGTH", "DEFAULT_CONTENT_LAYERS",
           "DEFAULT_STYLE_LAYERS", "VERSION", "open_image", "max_pixels", "make_stylizer",
           "make_client", "request_values", "open_clip", "clip_writer", "stylize_frames",
           "served_frames", "keep_malloc_for", "allocator_in_effect"]

VERSION = tfstyle.__version__
open_image = image_io.open_image


def max_pixels() -> int:
    """The decoder's pixel limit (``image_io.MAX_PIXELS``), read at call time as
    ``open_image`` reads it."""
    return image_io.MAX_PIXELS


def make_stylizer(**model):
    """A ``tfstyle.Stylizer`` (builds the VGG: seconds, imports TensorFlow)."""
    return tfstyle.Stylizer(**model)


def make_client(target: str, protocol: str = "grpc", model_name: str = "tfstyle",
                timeout: float = 600.0):
    """A ``tfstyle.TFServingClient`` for ``target`` (host:port)."""
    return tfstyle.TFServingClient(target, model_name=model_name, protocol=protocol,
                                   timeout=timeout)


def request_values(options: RunOptions) -> dict:
    """The served options of a request from validated ``options``."""
    from tfstyle.serving.served_options import request_values as values

    return values(options)


def open_clip(path, max_frames=None):
    """``video.reader.open_clip``: the clip's frames, probed now (needs the video extra)."""
    from tfstyle.video import reader

    return reader.open_clip(path, max_frames=max_frames)


def clip_writer(path, fps, size, audio_from=None):
    """``video.writer.ClipWriter``: an H.264 mp4 written atomically."""
    from tfstyle.video import writer

    return writer.ClipWriter(path, fps, size, audio_from=audio_from)


def stylize_frames(stylizer, frames, styles, options, video, should_stop, callback,
                   callback_every):
    """``tfstyle.video.frames.stylize_frames``: the frames here, each as it finishes."""
    from tfstyle.video import frames as frames_lib

    return frames_lib.stylize_frames(stylizer, frames, styles, options, video,
                                     should_stop=should_stop, callback=callback,
                                     callback_every=callback_every)


def served_frames(client, frames, style, options, video):
    """``tfstyle.video.frames.served_frames``: the frames on a TF Serving, each as it
    finishes."""
    from tfstyle.video import frames as frames_lib

    return frames_lib.served_frames(client, frames, style, options, video)


def keep_malloc_for(max_size: int, memory_limit, backbone: str, content_layers,
                    style_layers) -> bool:
    """Asks for TensorFlow's malloc allocator where a run of ``max_size`` px keeps the
    memory budget only by tiling, as the CLI does (``tfstyle.allocator`` says why the
    pool does not keep a bound). Call before TensorFlow's first op. Returns whether
    malloc is asked for."""
    from tfstyle import allocator
    from tfstyle.core.features import feature_layers, resolve_layers
    from tfstyle.core.optimizers import LBFGS
    from tfstyle.local import memory

    budget = memory.run_budget(memory_limit)
    content = resolve_layers(content_layers, backbone)
    layers = feature_layers(content, style_layers, backbone)
    # float32: the larger estimate, where ``auto`` may pick bfloat16.
    if budget > 0 and memory.bound_needs_malloc(budget, max_size, layers, backbone,
                                                "float32", LBFGS().history, content):
        return allocator.keep_malloc()
    return False


def allocator_in_effect() -> str:
    """``"bfc"`` or ``"malloc"``: where TensorFlow's CPU tensors come from."""
    from tfstyle import allocator

    return allocator.in_effect()
