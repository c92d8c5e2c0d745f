"""Files that are either whole or absent: written to a temporary file beside the
target, flushed to disk, then renamed over it (rename is atomic within a folder), so a
crash, a full disk or Ctrl-C never leaves half a file where a whole one is expected."""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
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


def new_file_mode(target) -> int:
    """Permission bits a replacing file should get: the old file's, else 0666 & ~umask.

    A temporary file is created 0600; without this an output would be private.
    """
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        pass
    umask = None
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
                    break
    except (OSError, ValueError):
        pass
    if umask is None:
        # os.umask can only be read by setting it; this is the portable fallback.
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def fsync_dir(folder) -> None:
    """Makes a rename in ``folder`` durable; best effort, not every OS or filesystem
    supports it."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
