"""Video frames in and out: a clip (video file, folder or glob of frames) -> RGB arrays,
and RGB arrays -> an H.264 mp4, written atomically.

PyAV (FFmpeg ships in its wheels) decodes and encodes: ``pip install 'tfstyle[video]'``.
Neither PyAV nor TensorFlow is imported with this module; PyAV is imported on first use,
so the package works without it until a video is read or written.

Conventions:

* A frame is a uint8 ``(H, W, 3)`` RGB array (0..255) in display orientation: a video's
  rotation flag (phones set one) is applied in quarter turns.
* A span is ``start`` seconds after the first frame, lasting ``duration`` seconds and/or
  ``max_frames`` frames. A frame of rate ``fps`` shown from time t belongs to the span
  when the middle of its display interval, ``t + 0.5 / fps``, does. Indices count from 0
  at the span's first frame.
* The frames of a folder or glob are its image files (``FRAME_SUFFIXES``) in natural
  order (frame_2 before frame_10; hidden files skipped), ``FRAMES_FPS`` per second unless
  ``fps`` is given.

Every failure a user can cause is a one-line ``ImageError`` (a source that cannot be
read, a target that cannot be written) or ``ConfigError`` (an option tfstyle cannot use)
that says what to do. A clip that breaks off while it is read (truncated or corrupt)
raises ``ImageError`` with the attribute ``frames_read``: the frames of the span yielded
before, all of them good, so a caller can keep the work done on them.

Writing is ``tfstyle.video.writer`` (``ClipWriter``); what the two share,
``tfstyle.video.media``.
"""

import math
import numbers
import os
import re

import numpy as np

from tfstyle.errors import ConfigError, ImageError
from tfstyle.image_io import open_image
from tfstyle.video.media import EPS, check_file, check_fps, is_real, open_input, pyav, reason

__all__ = ["FRAMES_FPS", "MAX_SIDE", "FRAME_SUFFIXES", "Clip", "open_clip"]

FRAMES_FPS = 25.0
# 8192 px is the side of image_io.MAX_PIXELS; checked on the header, before decoding.
MAX_SIDE = 8192
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# --------------------------------------------------------------------------- options


def _check_span(start, duration, max_frames):
    if not is_real(start) or not math.isfinite(start) or start < 0:
        raise ConfigError("start must be a number of seconds >= 0, got %r" % (start,))
    if duration is not None and (not is_real(duration) or not math.isfinite(duration)
                                 or duration <= 0):
        raise ConfigError("duration must be a number of seconds > 0 (or None for the "
                          "rest of the clip), got %r" % (duration,))
    if max_frames is not None and (not isinstance(max_frames, numbers.Integral)
                                   or isinstance(max_frames, bool) or max_frames < 1):
        raise ConfigError("max_frames must be a whole number >= 1 (or None for no limit), "
                          "got %r" % (max_frames,))


def _check_max_side(max_side):
    if (not isinstance(max_side, numbers.Integral) or isinstance(max_side, bool)
            or max_side < 1):
        raise ConfigError("max_side must be a whole number of pixels >= 1, got %r"
                          % (max_side,))


def _check_side(name, size, max_side):
    w, h = size
    if max(w, h) > max_side:
        raise ImageError("%s has %dx%d frames, larger than max_side=%d; downscale it first "
                         "(ffmpeg -vf scale=-2:720) or raise max_side" % (name, w, h, max_side))


# --------------------------------------------------------------------------- sources


def _video_stream(container, name):
    if container.streams.video:
        return container.streams.video[0]
    what = ("holds only audio" if container.streams.audio
            else "holds no video stream (an empty clip, or an mp4 cut off before its index)")
    raise ImageError("'%s' %s; give a video file with frames" % (name, what))


def _to_rgb(frame, turns):
    array = frame.to_ndarray(format="rgb24")
    # np.rot90 turns counterclockwise, as the display matrix's angle does.
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


class _VideoSource:
    """A video file read with PyAV; positions are in frames since the stream's start."""

    def __init__(self, name, max_side):
        self.name = name
        check_file(name)
        self.errors = (pyav().error.FFmpegError, OSError, _CorruptPacket, ImageError)
        with open_input(name) as container:
            stream = _video_stream(container, name)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not rate:
                raise ImageError("'%s' does not say its frame rate; re-encode it with "
                                 "ffmpeg -r 25" % name)
            self.fps = float(rate)
            self.audio = bool(container.streams.audio)
            self.frames = stream.frames or None
            self._tb, self._t0 = stream.time_base, stream.start_time
            self.end = (float(stream.duration * stream.time_base) * self.fps
                        if stream.duration else self.frames)
            coded = (stream.codec_context.width, stream.codec_context.height)
            _check_side("video '%s'" % name, coded, max_side)
            first = self._first(container, stream)
        self._turns = round((first.rotation or 0) / 90) % 4
        w, h = first.width, first.height
        self.size = (h, w) if self._turns % 2 else (w, h)
        _check_side("video '%s'" % name, self.size, max_side)

    def _first(self, container, stream):
        try:
            for frame in self._decoded(container, stream):
                return frame
        except self.errors as exc:
            raise ImageError("'%s' has no frame that decodes (%s); the file is corrupt, "
                             "re-export it" % (self.name, reason(exc))) from exc
        raise ImageError("'%s' holds no video frames; give a clip with frames" % self.name)

    def _decoded(self, container, stream):
        """Frames in presentation order. At a broken packet (a file cut short or
        corrupt) the frames the decoder still holds are flushed out before the error
        is raised, so every decodable frame is delivered."""
        try:
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    raise _CorruptPacket("packet at %.3g s is incomplete" % float(
                        (packet.pts or 0) * stream.time_base))
                yield from stream.decode(packet)
        except self.errors:
            try:
                yield from stream.decode(None)
            except self.errors:
                pass
            raise

    def _pos(self, frame, origin):
        return float((frame.pts - origin) * self._tb) * self.fps

    def positions(self, lo):
        """Yields (position, frame) from about position ``lo`` (frames) on."""
        with open_input(self.name) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            origin = self._t0
            # Seeking lands on a keyframe a second before the span, at least; the frames
            # before the span are skipped by the caller.
            seek = origin is not None and lo > 2 * self.fps
            if seek:
                target = origin + int((lo - self.fps) / self.fps / self._tb)
                container.seek(target, stream=stream, backward=True)
            for frame in self._decoded(container, stream):
                origin = frame.pts if origin is None else origin
                pos = self._pos(frame, origin)
                if seek and pos > lo - 1:
                    # The seek overshot (frames of the span may be behind): restart.
                    yield from self.positions(0)
                    return
                seek = False
                yield pos, self._checked(frame)

    def _checked(self, frame):
        array = _to_rgb(frame, self._turns)
        if (array.shape[1], array.shape[0]) != self.size:
            raise ImageError("'%s' changes its frame size from %dx%d to %dx%d mid-clip; "
                             "re-encode it at one size (ffmpeg -vf scale)" % (
                                 self.name, *self.size, array.shape[1], array.shape[0]))
        return array


class _CorruptPacket(Exception):
    """FFmpeg read a packet only in part: the file ends or breaks inside it."""


def _natural_key(path):
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", os.path.basename(path))]


def _frame_files(paths):
    files = [p for p in paths if os.path.splitext(p)[1].lower() in FRAME_SUFFIXES
             and not os.path.basename(p).startswith(".") and os.path.isfile(p)]
    return sorted(files, key=_natural_key)


class _FramesSource:
    """Image files as frames; a position is the file's index."""

    def __init__(self, name, files, fps, max_side):
        self.name = name
        self.files = files
        self.errors = (ImageError,)
        self.fps = float(check_fps(FRAMES_FPS if fps is None else fps))
        self.audio = False
        self.frames = self.end = len(files)
        first = open_image(files[0])
        self.size = first.size
        _check_side("frame '%s'" % files[0], self.size, max_side)

    def positions(self, lo):
        for i in range(max(0, math.ceil(lo - 0.5 - EPS)), len(self.files)):
            image = open_image(self.files[i])
            if image.size != self.size:
                raise ImageError("frame '%s' is %dx%d but the first frame is %dx%d; all "
                                 "frames must have one size" % (self.files[i], *image.size,
                                                                *self.size))
            yield i, np.array(image)


def _frames_source(name, fps, max_side):
    if os.path.isdir(name):
        files = _frame_files(os.path.join(name, f) for f in os.listdir(name))
        if not files:
            raise ImageError("folder '%s' has no image files (%s); put the frames there or "
                             "give a video file" % (name, ", ".join(FRAME_SUFFIXES)))
    else:
        import glob
        files = _frame_files(glob.glob(name))
        if not files:
            raise ImageError("no image files match '%s'; check the pattern (quote it so "
                             "the shell does not expand it)" % name)
    return _FramesSource(name, files, fps, max_side)


# --------------------------------------------------------------------------- reading


def open_clip(path, start=0.0, duration=None, max_frames=None, fps=None, max_side=MAX_SIDE):
    """Open a span of a video file, a folder of frames or a glob of frames.

    Args:
        path: a video file FFmpeg reads (mp4, mov, avi, webm, mkv, animated gif...), a
            folder of image files, or a glob pattern of image files (``"shots/*.png"``).
        start: seconds after the first frame where the span begins (>= 0).
        duration: seconds the span lasts, or None for the rest of the clip.
        max_frames: at most this many frames, or None; with ``duration``, the shorter.
        fps: the frame rate of a folder or glob (default ``FRAMES_FPS``); a video file
            has its own, so giving one there is a ConfigError.
        max_side: refuse frames whose longer side exceeds this many pixels (checked on
            the header, before any frame is decoded).

    Returns:
        A :class:`Clip`. The source is probed (its first frame decoded) here, so a bad
        file fails now rather than mid-run; frames are decoded while iterating.

    Raises:
        ImageError: missing, empty, unreadable or non-video file; no video stream or no
            frames; a folder or glob without images; frames over ``max_side``; a span
            that holds no frames.
        ConfigError: a bad ``start``, ``duration``, ``max_frames``, ``fps`` or
            ``max_side``.
    """
    _check_span(start, duration, max_frames)
    _check_max_side(max_side)
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError("cannot open a clip from a %s; pass a file, folder or glob path"
                          % type(path).__name__)
    name = os.fsdecode(os.fspath(path))
    if os.path.isdir(name) or (not os.path.exists(name) and re.search(r"[*?[]", name)):
        source = _frames_source(name, fps, max_side)
    elif fps is not None:
        raise ConfigError("fps applies to a folder or glob of frames; the video '%s' has "
                          "its own frame rate, so leave fps unset" % name)
    else:
        source = _VideoSource(name, max_side)
    return Clip(source, start, duration, max_frames)


class Clip:
    """A span of frames, decoded lazily; iterate it for ``(index, frame)``.

    Attributes:
        path: the source, as given (str).
        fps: frames per second (float).
        size: ``(width, height)`` of every frame, in display orientation.
        count: frames in the span if the header says (every folder or glob, and videos
            whose container counts frames: mp4, mov, avi), else None (gif, webm). For a
            video it assumes a constant frame rate; a variable-rate one may yield a
            frame or so fewer.
        audio: True when the source has an audio stream (never for frames).
        start, duration, max_frames: the span, as given.

    Iterating yields ``(index, frame)``: index from 0 at the span's first frame, frame
    a fresh uint8 ``(H, W, 3)`` RGB array. A clip can be iterated again (the source is
    re-read). When the source breaks off before the span's end (a truncated or corrupt
    file, an unreadable frame file), iteration raises ImageError after the good frames,
    with ``frames_read`` set to how many were yielded.
    """

    def __init__(self, source, start, duration, max_frames):
        self._source = source
        self.path = source.name
        self.fps, self.size, self.audio = source.fps, source.size, source.audio
        self.start, self.duration, self.max_frames = float(start), duration, max_frames
        self._lo = self.start * self.fps
        self._hi = math.inf if duration is None else (self.start + duration) * self.fps
        self.count = self._count(source.frames)
        if self.count == 0:
            raise self._empty()

    def __repr__(self):
        return "Clip(%r, fps=%g, size=%dx%d, count=%s)" % (self.path, self.fps, *self.size,
                                                          self.count)

    def _count(self, frames):
        if frames is None:
            return None
        first = max(0, math.ceil(self._lo - 0.5 - EPS))
        stop = frames if self._hi == math.inf else min(frames, math.ceil(self._hi - 0.5 - EPS))
        count = max(0, stop - first)
        return count if self.max_frames is None else min(count, self.max_frames)

    def _empty(self):
        span = "from %g s" % self.start + ("" if self.duration is None
                                           else " for %g s" % self.duration)
        length = ("%.3g s long" % (self._source.end / self.fps) if self._source.end
                  else "shorter")
        return ImageError("the span %s of '%s' holds no frames (the clip is %s); start "
                          "earlier" % (span, self.path, length))

    def __iter__(self):
        n, last, stopped = 0, None, False
        frames = self._source.positions(self._lo)
        try:
            for pos, array in frames:
                if pos + 0.5 < self._lo - EPS:
                    continue
                if pos + 0.5 >= self._hi - EPS:
                    stopped = True
                    break
                yield n, array
                n, last = n + 1, pos
                if n == self.max_frames:
                    stopped = True
                    break
        except self._source.errors as exc:
            raise self._broken(n, exc) from exc
        finally:
            frames.close()
        if n == 0:
            raise self._empty()
        if not stopped:
            self._check_complete(n, last)

    def _broken(self, n, exc):
        if isinstance(exc, ImageError):
            error = ImageError("%s; the %d frames of the span before it are good "
                               "(frames_read)" % (exc, n))
        else:
            error = ImageError("'%s' breaks off after %d frames of the span (%s): it is "
                               "truncated or corrupt; those frames are good (frames_read), "
                               "keep them or re-export the file" % (self.path, n,
                                                                   reason(exc)))
        error.frames_read = n
        return error

    def _check_complete(self, n, last):
        """The decoder ran out before the span's end: a file cut short (its header still
        declares the whole clip). More than 1.5 frames missing: not rounding."""
        declared = self._source.end
        if declared is None:
            return
        expected = min(self._hi, declared)
        if last + 1 < expected - 1.5:
            error = ImageError(
                "'%s' ends after %d frames of the span, at %.3g s, but its header says "
                "%.3g s: it is truncated; those frames are good (frames_read), keep them "
                "or re-export the file" % (self.path, n, (last + 1) / self.fps,
                                           declared / self.fps))
            error.frames_read = n
            raise error

