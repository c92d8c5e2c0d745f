"""Which photos a ``--content`` names, and where each result goes: the path planning
that a local run over many photos and ``tfstyle --server`` share.

``--content`` may name one file, a folder (its images, by ``IMAGE_EXTENSIONS``) or a
glob (quoted, so that the shell leaves it alone). With a folder or a glob, ``--output``
is a folder and photo ``dir/name.jpg`` is written to ``<output>/name.<output_ext>``.

No TensorFlow here: the CLI plans its outputs, and refuses a bad plan, before importing
it.
"""

from __future__ import annotations

import glob
import os

from tfstyle.errors import ConfigError

# What --content may match in a folder or glob; other files (notes, sidecars) are skipped.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def content_files(content: str):
    """(paths, folder_mode) for --content: one file ([content], False), or a folder's
    images or a glob's files, sorted ([...], True).

    Raises ConfigError for a folder without images or a glob that matches nothing."""
    content = os.path.expanduser(content)
    if os.path.isdir(content):
        paths = sorted(os.path.join(content, name) for name in os.listdir(content)
                       if name.lower().endswith(IMAGE_EXTENSIONS)
                       and os.path.isfile(os.path.join(content, name)))
        if not paths:
            raise ConfigError(f"folder {content} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        return paths, True
    if not os.path.exists(content) and any(c in content for c in "*?["):
        paths = sorted(p for p in glob.glob(content, recursive=True) if os.path.isfile(p))
        if not paths:
            raise ConfigError(f"--content={content} matches no files; check the pattern, and "
                              f"quote it so that the shell does not expand it")
        return paths, True
    return [content], False


def plan_outputs(contents, folder_mode: bool, output: str, ext: str, inputs=()):
    """[(content path, output path)], checked before any work: the outputs are
    writable, distinct, and none of them overwrites an input.

    Args:
      contents, folder_mode: ``content_files``'s answer.
      output: --output: a file, or (in folder mode, or as an existing folder or a path
        ending in ``/``) a folder, created here if missing.
      ext: the results' extension in a folder (``png``, ``jpg``), without the dot.
      inputs: the other input paths (the style images, a start image), which no
        output may replace.

    Raises ConfigError (or ``image_io.check_output_path``'s ImageError) naming the
    path to change.
    """
    from tfstyle import image_io

    out_is_dir = _output_is_folder(contents, folder_mode, output)
    planned = []
    for content in contents:
        if out_is_dir:
            stem = os.path.splitext(os.path.basename(content))[0]
            planned.append((content, os.path.join(output, f"{stem}.{ext}")))
        else:
            planned.append((content, output))
    _check_distinct(planned, list(contents) + list(inputs))
    if folder_mode:
        try:
            os.makedirs(output, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the --output folder {output}: "
                              f"{e.strerror or e}") from None
    return [(content, str(image_io.check_output_path(target))) for content, target in planned]


def _output_is_folder(contents, folder_mode, output) -> bool:
    """Whether ``output`` is the results' folder; raises ConfigError for a file where
    several photos need a folder."""
    from tfstyle import image_io

    out_is_dir = os.path.isdir(output) or output.endswith((os.sep, "/"))
    if not folder_mode:
        return out_is_dir
    if os.path.exists(output) and not os.path.isdir(output):
        raise ConfigError(f"--output={output} is a file, but --content names "
                          f"{len(contents)} images: give a folder for the results")
    if not out_is_dir and output.lower().endswith(tuple(image_io.SUPPORTED_OUTPUT)):
        raise ConfigError(f"--output={output} looks like one image file, but --content "
                          f"names {len(contents)} images: give a folder (e.g. "
                          f"{os.path.splitext(output)[0]}/) and --output_ext")
    return True


def _check_distinct(planned, inputs) -> None:
    """Raises ConfigError where a result would replace an input or another result."""
    inputs = {os.path.realpath(p): p for p in inputs}
    seen = {}
    for content, target in planned:
        target = os.path.realpath(target)
        if target in inputs:
            raise ConfigError(f"{content} would be written to {target}, which is the input "
                              f"{inputs[target]}: choose another --output")
        if target in seen:
            raise ConfigError(f"{seen[target]} and {content} would both be written to "
                              f"{target}: rename one of them, or use separate runs")
        seen[target] = content
