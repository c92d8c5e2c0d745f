"""What the video reader and writer share: PyAV, imported on first use (``pyav``), a media
file checked and opened for reading with FFmpeg's failures in one line (``check_file``,
``open_input``, ``reason``), frame rates as exact fractions (``check_fps``), and the
tolerance frame positions are compared with (``EPS``).
"""

import fractions
import math
import numbers
import os

from tfstyle.errors import ConfigError, ImageError, one_line

__all__ = ["EPS", "pyav", "is_real", "check_fps", "check_file", "open_input", "reason"]

# Frame positions are compared in frames; this absorbs timestamp rounding (1/30 s in a
# 1/15360 time base) without ever moving a boundary by a visible amount.
EPS = 1e-6


def pyav():
    """The ``av`` module (PyAV), or an ImageError that says how to install it."""
    try:
        import av
    except ImportError as exc:
        raise ImageError("reading or writing video needs PyAV, which is not installed; "
                         "run pip install 'tfstyle[video]'") from exc
    return av


def is_real(value):
    """Whether ``value`` is a real number (a bool is not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_fps(fps):
    """A frame rate as an exact fraction (30000/1001 stays NTSC)."""
    if not is_real(fps) or not math.isfinite(fps) or not 0 < fps <= 1000:
        raise ConfigError("fps must be a number of frames per second in (0, 1000], got %r"
                          % (fps,))
    exact = fps if isinstance(fps, fractions.Fraction) else fractions.Fraction(float(fps))
    return exact.limit_denominator(100000)


def check_file(name):
    """The usual mistakes told apart before FFmpeg gives its generic message."""
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise ImageError("video file '%s' does not exist; check the path" % name) from None
    except OSError as exc:
        raise ImageError("cannot read video file '%s': %s" % (name, one_line(exc))) from None
    if st.st_size == 0:
        raise ImageError("video file '%s' is empty (0 bytes); re-download or re-export it"
                         % name)


def open_input(name):
    av = pyav()
    try:
        return av.open(name, metadata_errors="ignore")
    except PermissionError:
        raise ImageError("cannot read video file '%s': permission denied; fix its "
                         "permissions" % name) from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise ImageError("'%s' is not a video FFmpeg can read (%s): another kind of file, "
                         "or a video cut short; convert or re-export it to mp4 (H.264), or "
                         "give a folder of frames" % (name, reason(exc))) from exc


def reason(exc):
    """FFmpeg's own words, without the errno and file name PyAV adds around them."""
    return one_line(getattr(exc, "strerror", None) or exc)
