"""Files that are either whole or absent: written to a temporary file beside the
target, flushed to disk, then renamed over it (rename is atomic within a folder), so a
crash, a full disk or Ctrl-C never leaves half a file where a whole one is expected."""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def replacing(path, mode: str = "wb", file_mode: int | None = None):
    """Yields a file object whose contents replace ``path`` when the block ends without
    an error; on an error (or an interrupt) the temporary file is removed and ``path``
    is left as it was.

    Args:
      path: the file to write; its folder must exist.
      mode: ``"wb"`` or ``"w"``.
      file_mode: permission bits for the new file; None leaves ``mkstemp``'s 0o600.
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if file_mode is not None:
            os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
