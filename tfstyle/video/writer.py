"""Frames out: RGB arrays -> an H.264 mp4 at a given frame rate, with a source's audio
copied, written atomically (``ClipWriter``). Reading is ``tfstyle.video.reader``, whose
conventions (frames, spans, errors) apply here too.
"""

import fractions
import math
import numbers
import os
import pathlib
import tempfile
import weakref

import numpy as np

from tfstyle.atomic import fsync_dir, new_file_mode
from tfstyle.errors import ConfigError, ImageError
from tfstyle.video.media import EPS, check_file, check_fps, is_real, open_input, pyav, reason
from tfstyle.video.reader import MAX_SIDE, Clip

__all__ = ["ClipWriter"]

# Audio codecs the mp4 muxer takes as they are; anything else is re-encoded to AAC.
_MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3"}
_AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000,
              11025, 8000}
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}


def _check_target(path):
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError("cannot write a video to a %s; pass a file path"
                          % type(path).__name__)
    target = pathlib.Path(os.fsdecode(os.fspath(path))).absolute()
    if target.suffix.lower() not in _CONTAINERS:
        raise ConfigError("cannot write video '%s': the name must end in .mp4, .m4v or .mov"
                          % target)
    if target.is_dir():
        raise ImageError("'%s' is a folder; give the path of the video file to write"
                         % target)
    if not target.parent.is_dir():
        raise ImageError("cannot write '%s': the folder '%s' does not exist; create it first"
                         % (target, target.parent))
    return target


def _check_size(size, max_side):
    try:
        w, h = size
    except (TypeError, ValueError):
        w = h = None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and 1 <= v
               for v in (w, h)):
        raise ConfigError("size must be (width, height) in whole pixels >= 1, got %r"
                          % (size,))
    if max(w, h) > max_side:
        raise ConfigError("size %dx%d is larger than max_side=%d; downscale the frames"
                          % (w, h, max_side))
    return int(w), int(h)


def _to_frame(frame, size, index):
    """A written frame as uint8 (h, w, 3): uint8 as is, floats in 0..255 rounded."""
    array = np.asarray(frame)
    if array.shape != (size[1], size[0], 3):
        raise ConfigError("frame %d has shape %s, but the writer was opened for %dx%d RGB, "
                          "(%d, %d, 3); resize the frame or open the writer with its size"
                          % (index, array.shape, *size, size[1], size[0]))
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise ConfigError("frame %d must be uint8, or finite floats in 0..255, got %s"
                          % (index, "non-finite values" if array.dtype.kind == "f"
                             else array.dtype))
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def _pad_even(array):
    """yuv420p needs even sides: an odd side gets its last row/column repeated once, so
    no pixel is lost (the video is 1 px larger, never cropped)."""
    h, w = array.shape[:2]
    if h % 2 or w % 2:
        array = np.pad(array, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return array


class _Pending:
    """What a writer leaves on disk until it commits: a finalizer removes it if the
    writer is dropped without close(), so a crash leaves no stray temp file."""

    def __init__(self, tmp):
        self.tmp, self.containers, self.done = tmp, [], False

    def discard(self):
        for container in reversed(self.containers):
            try:
                container.close()
            except Exception:  # already failing; the temp file goes either way
                pass
        self.containers = []
        if not self.done:
            self.done = True
            try:
                os.unlink(self.tmp)
            except OSError:
                pass


class ClipWriter:
    """Writes frames one at a time to an H.264 mp4 (yuv420p), atomically.

    Args:
        path: the .mp4 (or .m4v, .mov) to write; its folder must exist.
        fps: frames per second (float or Fraction; 29.97 and 30000/1001 both work).
        size: ``(width, height)`` of the frames given to :meth:`write`. An odd side is
            padded by repeating the last row or column once (yuv420p needs even sides):
            the video is then 1 px wider or taller, and no pixel is cropped.
        audio_from: None, a source path, or a :class:`Clip`: its audio is copied from
            ``audio_start`` on, for as long as the video written (to within one audio
            packet, about 20 ms). AAC, MP3, ALAC, AC-3 and E-AC-3 are copied as they
            are; other codecs (PCM, Opus, Vorbis...) are re-encoded to AAC.
        codec: an FFmpeg video encoder; "h264" (libx264) is what players expect.
        audio_start: seconds into ``audio_from`` where the audio begins; default the
            Clip's ``start``, or 0 for a path. Give the span's start to keep lips in sync.
        crf: x264/x265 quality, 0 (lossless) to 51; 18 is visually near-lossless.

    Frames go to a hidden temporary file beside ``path``; :meth:`close` finalises it
    and renames it over ``path``. An exception (or :meth:`abort`, or dropping the
    writer unclosed) removes the temporary file, so ``path`` is never half-written. As
    a context manager it closes on success and aborts on an exception.

    Raises:
        ConfigError: a bad option, or a frame of the wrong shape or type.
        ImageError: the target cannot be written, ``audio_from`` has no audio, writing
            fails (disk full...), or close() comes before any frame.
    """

    def __init__(self, path, fps, size, audio_from=None, codec="h264", audio_start=None,
                 crf=18):
        av = pyav()
        self.path = _check_target(path)
        self.fps = check_fps(fps)
        self.size = _check_size(size, MAX_SIDE)
        if not is_real(crf) or not 0 <= crf <= 51:
            raise ConfigError("crf must be a number from 0 (lossless) to 51, got %r" % (crf,))
        try:
            encoder = av.codec.Codec(codec, "w")
        except (av.error.FFmpegError, ValueError, TypeError):
            encoder = None
        if encoder is None or encoder.type != "video":
            raise ConfigError("'%s' is not a video encoder FFmpeg has; use codec='h264'"
                              % (codec,))
        self.frames = 0
        try:
            fd, tmp = tempfile.mkstemp(prefix="." + self.path.name + ".", suffix=".part",
                                       dir=self.path.parent)
            os.close(fd)
        except OSError as exc:
            raise self._write_error(exc) from exc
        self._pending = _Pending(tmp)
        weakref.finalize(self, self._pending.discard)
        try:
            self._open(av, encoder.name, crf, audio_from, audio_start)
        except BaseException:
            self._pending.discard()
            raise

    def _open(self, av, encoder, crf, audio_from, audio_start):
        try:
            self._out = av.open(self._pending.tmp, "w", format=_CONTAINERS[
                self.path.suffix.lower()], options={"movflags": "+faststart"})
        except (av.error.FFmpegError, OSError) as exc:
            raise self._write_error(exc) from exc
        self._pending.containers.append(self._out)
        w, h = self.size
        stream = self._out.add_stream(encoder, rate=self.fps)
        stream.width, stream.height = w + w % 2, h + h % 2
        stream.pix_fmt = "yuv420p"
        if encoder in ("libx264", "libx265"):
            stream.options = {"crf": "%g" % crf}
        # Pixels are converted with the BT.709 matrix (below) and tagged so, so players
        # and decoders (this module's reader too) convert them back the same way.
        cc = stream.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = 1
        cc.color_range = 1
        self._video = stream
        self._audio = None
        if audio_from is not None:
            self._audio = _AudioCopy(self, audio_from, audio_start)

    def _write_error(self, exc):
        return ImageError("could not write '%s': %s; check free disk space and permissions "
                          "(nothing was saved)" % (self.path, reason(exc)))

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, frame):
        """Append one frame: uint8 (h, w, 3) RGB, or floats in 0..255 (rounded)."""
        if self._pending.done:
            raise ConfigError("the writer of '%s' is closed; open a new ClipWriter"
                              % self.path)
        array = _pad_even(_to_frame(frame, self.size, self.frames))
        av = pyav()
        try:
            video_frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            video_frame.pts = self.frames
            self._out.mux(self._video.encode(video_frame))
            self.frames += 1
            if self._audio is not None:
                self._audio.copy_until(self.frames / self.fps)
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise self._write_error(exc) from exc

    def close(self):
        """Finish the file and rename it to ``path``; returns ``path``. Idempotent."""
        if self._pending.done:
            return self.path
        if self.frames == 0:
            self.abort()
            raise ImageError("no frames were written to '%s', so nothing was saved; write "
                             "at least one frame before close()" % self.path)
        av = pyav()
        try:
            self._out.mux(self._video.encode(None))
            if self._audio is not None:
                self._audio.finish(self.frames / self.fps)
            self._out.close()
            self._pending.containers.remove(self._out)
            os.chmod(self._pending.tmp, new_file_mode(self.path))
            os.replace(self._pending.tmp, self.path)
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise self._write_error(exc) from exc
        self._pending.done = True
        self._pending.discard()
        fsync_dir(self.path.parent)
        return self.path

    def abort(self):
        """Drop everything written; ``path`` is left as it was. Idempotent."""
        self._pending.discard()


class _AudioCopy:
    """Copies a source's audio into a writer's file, interleaved with the video: after
    each frame, up to the frame's time (output seconds)."""

    def __init__(self, writer, source, start):
        if isinstance(source, Clip):
            source, start = source.path, source.start if start is None else start
        start = 0.0 if start is None else start
        if not is_real(start) or not math.isfinite(start) or start < 0:
            raise ConfigError("audio_start must be a number of seconds >= 0, got %r"
                              % (start,))
        name = os.fsdecode(os.fspath(source))
        if os.path.isdir(name):
            raise ImageError("'%s' is a folder of frames, which has no audio to copy; leave "
                             "audio_from unset or give the source video" % name)
        check_file(name)
        self._input = open_input(name)
        writer._pending.containers.append(self._input)
        if not self._input.streams.audio:
            raise ImageError("'%s' has no audio to copy; leave audio_from unset, or give "
                             "the source video that has the sound" % name)
        self._in = self._input.streams.audio[0]
        videos = self._input.streams.video
        # Output time 0 is the span's first frame: the source's video start + start.
        video_t0 = (float(videos[0].start_time * videos[0].time_base)
                    if videos and videos[0].start_time is not None else 0.0)
        self._origin = video_t0 + start
        self._out = writer._out
        if self._in.codec_context.name in _MP4_AUDIO:
            self._stream = self._out.add_stream_from_template(self._in)
            self._encode = None
        else:
            self._stream, self._encode = self._aac_encoder()
        if self._origin > 1.0:
            self._input.seek(int((self._origin - 1.0) * 1_000_000), backward=True)
        self._packets = self._input.demux(self._in)
        self._pending, self._samples = None, 0

    def _aac_encoder(self):
        av = pyav()
        rate = self._in.rate if self._in.rate in _AAC_RATES else 48000
        layout = "mono" if self._in.channels == 1 else "stereo"
        stream = self._out.add_stream("aac", rate=rate, layout=layout)
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self._fifo = av.AudioFifo()
        return stream, True

    def _next(self):
        """The next packet inside the span (output seconds, packet), or None at the end."""
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                return None
            if packet.pts is None or packet.size == 0:
                continue
            t = float(packet.pts * packet.time_base) - self._origin
            if t >= -EPS:  # packets starting before the span are dropped whole
                return t, packet

    def copy_until(self, until):
        """Copy the packets that start before ``until`` output seconds."""
        while True:
            item = self._next()
            if item is None:
                return
            t, packet = item
            if t >= until:
                self._pending = packet
                return
            if self._encode:
                self._reencode(packet)
            else:
                shift = int(round(self._origin / packet.time_base))
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
                packet.stream = self._stream
                self._out.mux(packet)

    def _reencode(self, packet):
        for frame in self._in.decode(packet):
            self._push(self._resampler.resample(frame))

    def _push(self, frames, flush=False):
        for frame in frames:
            frame.pts = None  # the FIFO checks timestamps; the output's are counted anew
            self._fifo.write(frame)
        size = self._stream.codec_context.frame_size or 1024
        while self._fifo.samples >= size or (flush and self._fifo.samples):
            out = self._fifo.read(min(size, self._fifo.samples))
            out.pts, out.time_base = self._samples, fractions.Fraction(1, out.sample_rate)
            self._samples += out.samples
            self._out.mux(self._stream.encode(out))

    def finish(self, until):
        self.copy_until(until)
        if self._encode:
            self._push(self._resampler.resample(None), flush=True)
            self._out.mux(self._stream.encode(None))
