"""A job request from the page, checked and turned into a ``work.Spec``.

The page sends upload ids and a few settings as JSON. Each setting is one of a fixed
list, of a fixed type; everything else takes the library's defaults. Values are then
checked by ``RunOptions.validate``, whose message the page shows as it is. No setting
names a file: ``init`` is one of the named starts, never a path.
"""

from __future__ import annotations

import dataclasses
import math
import secrets

from tfstyle.web import library as lib
from tfstyle.web.uploads import UploadError
from tfstyle.web.work import Spec

# The knobs of ``RunOptions`` the page may set, with their types. The first four are
# on the page; the rest are its "advanced" section.
OPTION_TYPES = {"style_strength": float, "size": int, "preserve_colors": str,
                "style_blend_weights": list, "steps": int, "seed": int, "init": str,
                "init_blend": float, "style_scale": float, "style_loss": str,
                "content_weight": float, "style_weight": float, "tv_weight": float}
VIDEO_TYPES = {"frames": int, "frame_steps": int}


@dataclasses.dataclass(frozen=True)
class Rules:
    """What this server allows a job: the largest size, photos and frames at once;
    the strength strip's schedule (``configs/fast.cfg``: 256 px, 42 steps, coarse to
    fine from 128 px) and strengths; the memory a step may use."""
    max_size: int = 4096
    max_photos: int = 16
    max_frames: int = 300
    preview_size: int = 256
    preview_steps: int = 42
    preview_stage_size: int = 128
    strengths: tuple = (0.25, 0.5, 0.9)
    memory_limit: str = "0"


def _typed(name, value, kind):
    """``value`` as ``kind``, or UploadError naming the setting."""
    try:
        if kind is list:
            if not isinstance(value, list) or not value:
                raise ValueError
            return tuple(_typed(name, v, float) for v in value)
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        number = float(value)
        if not math.isfinite(number) or kind is int and not number.is_integer():
            raise ValueError
        return int(number) if kind is int else number
    except (TypeError, ValueError):
        words = {int: "a whole number", float: "a number", str: "a word",
                 list: "a list of numbers"}[kind]
        raise UploadError(f"setting {name!r} must be {words}, got {value!r}") from None


def read_settings(raw) -> tuple[dict, dict]:
    """(RunOptions fields, video fields) from the page's ``settings`` object; empty
    values (None, "") take the defaults."""
    if not isinstance(raw, dict):
        raise UploadError("settings must be an object of name: value")
    unknown = sorted(set(raw) - set(OPTION_TYPES) - set(VIDEO_TYPES))
    if unknown:
        raise UploadError(f"unknown setting {', '.join(map(repr, unknown))}: the page "
                          f"sets {', '.join(list(OPTION_TYPES) + list(VIDEO_TYPES))}")
    fields, video = {}, {}
    for name, value in raw.items():
        if value is None or value == "":
            continue
        if name in OPTION_TYPES:
            fields[name] = _typed(name, value, OPTION_TYPES[name])
        else:
            video[name] = _typed(name, value, VIDEO_TYPES[name])
    if "init" in fields and fields["init"] not in lib.INITS:
        raise UploadError(f"init must be one of {', '.join(lib.INITS)}, got {fields['init']!r}")
    return fields, video


def _uploads(store, ids, what):
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise UploadError(f"choose {what} first")
    try:
        return [store.get(i) for i in ids]
    except KeyError:
        raise UploadError(f"an upload of the {what} has expired (the server keeps the "
                          f"latest ones); add it again", 404) from None


def make_spec(body, store, rules: Rules, max_styles: int) -> tuple[str, Spec, dict]:
    """(kind, spec, settings shown) of a job request ``body``: {"strip": bool,
    "contents": [upload ids], "styles": [upload ids], "settings": {...}}.

    Raises UploadError with what to change."""
    if not isinstance(body, dict):
        raise UploadError("send the job as a JSON object")
    contents = _uploads(store, body.get("contents"), "photo")
    styles = _uploads(store, body.get("styles"), "painting")
    if any(u.kind != "image" for u in styles):
        raise UploadError("a painting must be an image, not a video")
    if len(styles) > max_styles:
        raise UploadError(f"this server takes at most {max_styles} painting"
                          f"{'s' if max_styles > 1 else ''} per job" +
                          (" (a TF Serving request carries one)" if max_styles == 1 else ""))
    kind = _kind(contents, rules, bool(body.get("strip")))
    fields, video_fields = read_settings(body.get("settings", {}))
    size = fields.get("size", lib.RunOptions.size)
    if not 16 <= size <= rules.max_size:
        raise UploadError(f"size must be between 16 and {rules.max_size} px on this server, "
                          f"got {size}")
    if kind == "strip":
        fields.update(size=min(size, rules.preview_size), steps=rules.preview_steps,
                      stage_size=rules.preview_stage_size, stage_steps=None)
    fields.setdefault("seed", secrets.randbits(63))
    try:
        options = lib.RunOptions(**fields, memory_limit=rules.memory_limit).validate()
        # Checked against the paintings now, not when the job's turn comes.
        options.blend_weights(len(styles))
        options.style_scales(len(styles))
        video = _video(kind, contents[0], video_fields, rules)
    except lib.ConfigError as e:
        raise UploadError(" ".join(str(e).split())) from None
    spec = Spec(contents, styles, options, strengths=rules.strengths if kind == "strip" else (),
                frames=video[0] if video else None, video=video[1] if video else None)
    settings = {"kind": kind, "photo": contents[0].name if len(contents) == 1 else
                [u.name for u in contents], "paintings": [u.name for u in styles],
                "options": _plain(dataclasses.asdict(options)), "tfstyle": lib.VERSION}
    if video:
        settings["video"] = {"frames": video[0], "frame_steps": video[1].frame_steps}
    return kind, spec, settings


def _kind(contents, rules, strip) -> str:
    if any(u.kind == "video" for u in contents):
        if len(contents) > 1:
            raise UploadError("one video at a time: remove the other files")
        if strip:
            raise UploadError("the strength strip previews a photo; for a video, try it "
                              "on a photo first")
        return "video"
    if len(contents) > rules.max_photos:
        raise UploadError(f"at most {rules.max_photos} photos per job; remove "
                          f"{len(contents) - rules.max_photos}")
    if strip:
        if len(contents) > 1:
            raise UploadError("the strength strip previews one photo: keep one")
        return "strip"
    return "photos" if len(contents) > 1 else "image"


def _video(kind, clip, fields, rules):
    if kind != "video":
        if fields:
            raise lib.ConfigError(f"{', '.join(fields)} apply to a video only")
        return None
    available = min(clip.frames or rules.max_frames, rules.max_frames)
    frames = fields.get("frames", available)
    if not 1 <= frames <= rules.max_frames:
        raise lib.ConfigError(f"frames must be between 1 and {rules.max_frames} on this "
                              f"server, got {frames}")
    video = lib.VideoOptions(**({"frame_steps": fields["frame_steps"]}
                                if "frame_steps" in fields else {})).validate()
    return frames, video


def _plain(value):
    """dataclasses.asdict's values as JSON has them (tuples as lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
