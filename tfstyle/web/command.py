"""The ``tfstyle`` command that repeats a job of the page, and the PNG that carries it.

Every ``RunOptions`` field is a ``tfstyle`` flag of the same name, so a job's options
become flags directly: those that differ from the defaults, and always the seed, so
that the command repeats the very run. The server's model flags (``--backbone``,
``--weights``, ...) follow, as the server was started with them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shlex

from PIL import Image, PngImagePlugin

from tfstyle.web.library import RunOptions, VideoOptions

# The PNG text chunk keys: the settings as JSON (for programs), and the command alone
# (for people: image viewers show a Comment).
SETTINGS_KEY = "tfstyle"
COMMAND_KEY = "Comment"
_DEFAULTS = RunOptions()
_VIDEO_DEFAULTS = VideoOptions()


def flag_value(value) -> str:
    """A value as a ``tfstyle`` flag takes it: lists comma-separated, floats in their
    shortest exact form (``0.5``, ``340000``, ``1e-06``), so that they parse back to
    the same number."""
    if isinstance(value, (list, tuple)):
        return ",".join(flag_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() \
            and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def option_flags(options: RunOptions) -> list[str]:
    """``--name=value`` for each field of ``options`` that differs from its default,
    and the seed where one is set."""
    result = []
    for field in dataclasses.fields(RunOptions):
        value, default = getattr(options, field.name), getattr(_DEFAULTS, field.name)
        if value is None:
            continue
        if field.name == "seed" or (value != default and not _same_number(value, default)):
            result.append(f"--{field.name}={flag_value(value)}")
    return result


def _same_number(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def video_flags(video: VideoOptions, frames: int | None) -> list[str]:
    """The video flags of a clip's job: its frame count and what differs from the
    video defaults."""
    result = [f"--video_frames={frames}"] if frames else []
    if video.frame_steps != _VIDEO_DEFAULTS.frame_steps:
        result.append(f"--frame_steps={video.frame_steps}")
    if video.independent:
        result.append("--independent_frames")
    return result


def cli_command(options: RunOptions, content: str, styles: list[str], output: str,
                model_flags: list[str] = (), extra: list[str] = ()) -> str:
    """The ``tfstyle`` command line that repeats a run of ``options`` on the files
    named ``content`` and ``styles`` (names, as the user knows them), writing
    ``output``. ``model_flags``: the server's feature-model flags; ``extra``: more
    flags (a video's). Every word is quoted for a POSIX shell."""
    words = ["tfstyle", f"--content={content}", f"--style={','.join(styles)}",
             f"--output={output}", *option_flags(options), *extra, *model_flags]
    return " ".join(shlex.quote(word) for word in words)


def png_bytes(image, settings: dict, command: str) -> bytes:
    """``image`` (uint8 (H, W, 3) or a PIL image) as PNG, with ``settings`` as JSON
    under the text key ``tfstyle`` and ``command`` under ``Comment``."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    info = PngImagePlugin.PngInfo()
    info.add_itxt(SETTINGS_KEY, json.dumps({**settings, "command": command}, sort_keys=True))
    info.add_itxt(COMMAND_KEY, command)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_file(path: str, data: bytes):
    """Writes ``data`` to ``path`` whole or not at all (a temporary file beside it,
    then a rename)."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
