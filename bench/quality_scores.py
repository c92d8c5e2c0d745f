"""The quality measures of pictures, from ``../shared/quality/score.py`` (a measure the
bench scripts read, never a loss or a dependency of the package)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys


def score_pictures(quality: pathlib.Path, photo, painting, pictures) -> list[dict[str, float]]:
    """``{measure: value}`` for each of ``pictures`` (paths), in their order, as
    ``quality``/score.py measures them against ``photo`` and ``painting``: style_gain,
    content_keep, fine_style, detail_keep and ghost. score.py prints a line per picture,
    its name and then ``measure=value`` fields."""
    lines = subprocess.run(
        [sys.executable, str(pathlib.Path(quality) / "score.py"), str(photo), str(painting),
         *map(str, pictures)],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")).stdout.splitlines()
    return [{k: float(v) for k, v in (field.split("=") for field in line.split()[1:])}
            for line in lines if "=" in line]
