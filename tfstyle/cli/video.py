"""``tfstyle --content=clip.mp4 --style=painting.jpg --output=out.mp4``: a video.

The frames run as ``tfstyle.video.frames`` describes (frame 0 as a still image, each later one
warm-started from the last and held to it). Each finished frame is written at once,
atomically, to a frames folder (``out.frames/`` beside a video output, or the --output
folder itself); the video is encoded from those frames at the end, at the source's
frame rate, with its audio copied. Ctrl-C stops after the frame in progress is dropped,
keeping every finished frame; the same command with ``--resume`` goes on from the last
one and ends with the video an uninterrupted run gives (the seed is kept in the frames
folder's ``job.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import NamedTuple

from absl import flags, logging

from tfstyle.cli import common
from tfstyle.errors import ConfigError, ImageError, Interrupted, TfstyleError
from tfstyle.options import RunOptions
from tfstyle.video.flow import PRESETS
from tfstyle.video.frames import VideoOptions

_VIDEO = VideoOptions()

flags.DEFINE_bool("video", False,
                  "Treat --content as one clip even where it is a folder or a glob of frames "
                  "(a video file is always one).")
flags.DEFINE_float("video_start", 0.0, "With a video: seconds into the clip to start at.")
flags.DEFINE_float("video_duration", None, "With a video: seconds to take (default: to the end).")
flags.DEFINE_integer("video_frames", None, "With a video: at most this many frames.")
flags.DEFINE_integer("frame_steps", _VIDEO.frame_steps,
                     "With a video: steps of each frame after the first, at the output size.")
flags.DEFINE_float("temporal_weight", RunOptions().temporal_weight,
                   "With a video: weight of the temporal term that holds each frame to the "
                   "last one warped by the optical flow, at the default --style_strength; 0 "
                   "keeps only the warm start.")
flags.DEFINE_bool("independent_frames", False,
                  "With a video: stylize every frame on its own (flickers; a baseline).")
flags.DEFINE_enum("flow_preset", _VIDEO.flow_preset, list(PRESETS),
                  "With a video: OpenCV DIS optical flow preset (fine: most accurate).")

FLAGS = flags.FLAGS

# What makes --content a video without --video.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv", ".mpg", ".mpeg", ".wmv")
VIDEO_OUTPUTS = (".mp4", ".m4v", ".mov")


def is_video() -> bool:
    """Whether --content names a clip."""
    return bool(FLAGS.content) and (
        FLAGS.video or os.path.splitext(FLAGS.content)[1].lower() in VIDEO_SUFFIXES)


class Job(NamedTuple):
    """A video run's plan: the clip, the output video path (None: frames only), the
    frames folder, and the masks decoded (``Stylizer.stylize``'s ``content_mask`` and
    ``style_masks``: PIL images, or None), one for every frame."""
    clip: object
    output: str | None
    frames: str
    masks: dict


def plan() -> Job:
    """The video run's ``Job``, checked before TensorFlow is imported: the clip opens
    and its first frame decodes, the masks decode and fit its frames. The frames folder
    is made once the options are checked too (``run_video``)."""
    from tfstyle.video import reader as video_io

    for name in ("style", "output"):
        if not getattr(FLAGS, name):
            raise ConfigError(f"--{name} is required")
    for name in ("save_every", "checkpoint"):
        if FLAGS[name].present and getattr(FLAGS, name):
            raise ConfigError(f"--{name} is not available for a video: drop it")
    clip = video_io.open_clip(FLAGS.content, start=FLAGS.video_start,
                              duration=FLAGS.video_duration, max_frames=FLAGS.video_frames)
    masks = _masks(clip.size)
    output = FLAGS.output
    if os.path.splitext(output)[1].lower() in VIDEO_OUTPUTS:
        frames = os.path.splitext(output)[0] + ".frames"
    elif os.path.splitext(output)[1]:
        raise ConfigError(f"--output={output}: a video is written as "
                          f"{', '.join(VIDEO_OUTPUTS)}, or as frames into a folder (no suffix)")
    else:
        output, frames = None, output
    return Job(clip, output, frames, masks)


def _masks(frame_size) -> dict:
    """--content_mask and --style_masks decoded, each checked to fit the clip's frames
    (``frame_size``: width, height): a mask is drawn over every frame."""
    from tfstyle import image_io

    def load(path, what):
        mask = image_io.open_image(path)
        image_io.check_mask_fits(mask.size, frame_size, what, "the clip's frames are")
        return mask

    return dict(content_mask=load(FLAGS.content_mask, f"--content_mask={FLAGS.content_mask}")
                if FLAGS.content_mask else None,
                style_masks=[load(p, f"--style_masks={p}") for p in FLAGS.style_masks]
                if FLAGS.style_masks else None)


def _job_record(options, video_options, clip) -> dict:
    """What a resumed run must share with the run it continues."""
    masks = [FLAGS.content_mask] + list(FLAGS.style_masks or [])
    return {"content": os.path.abspath(FLAGS.content), "style": common.style_paths(),
            "masks": [os.path.abspath(m) if m else None for m in masks],
            "span": [clip.start, clip.duration, clip.max_frames],
            "options": repr(dataclasses.replace(options, seed=None)),
            "video": repr(video_options), "seed": options.seed}


def _start_or_resume(frames, options, video_options, clip):
    """(options with the job's seed, frames already done): a fresh job refuses a frames
    folder that holds frames; --resume checks it is this job's and takes its seed."""
    from tfstyle.local import runner
    from tfstyle.video import frames as video

    try:  # only now that the options are known good: a refused run leaves nothing
        os.makedirs(frames, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the frames folder {frames}: {e.strerror or e}") from None
    path = os.path.join(frames, "job.json")
    done = video.frames_done(frames)
    if not FLAGS.resume:
        if done:
            raise ConfigError(f"{frames} already holds {done} frames of an earlier run: run "
                              f"the same command with --resume to continue it, or remove "
                              f"the folder")
        if options.seed is None:
            options = dataclasses.replace(options, seed=runner.draw_seed())
        record = _job_record(options, video_options, clip)
        _write_json(path, record)
        return options, 0
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        raise ConfigError(f"--resume: {path} is missing or unreadable, so the frames in "
                          f"{frames} cannot be continued; run without --resume") from None
    options = dataclasses.replace(options, seed=saved["seed"])
    if saved != _job_record(options, video_options, clip):
        raise ConfigError(f"--resume: the frames in {frames} come from another job (other "
                          f"inputs or options); run that command, or remove the folder")
    return options, done


def _write_json(path, record):
    """Writes ``record`` as JSON, whole or not at all (``atomic.replacing``)."""
    from tfstyle import atomic

    with atomic.replacing(path, "w") as f:
        json.dump(record, f)


def run_video(job, options, styles=None):
    """Stylizes the clip of --content frame by frame; writes frames, then the video.

    ``job``: ``plan()``'s ``Job``; ``styles``: --style decoded for
    a local run, None with --server (the server runs each frame's optimisation; the
    flow and the warps are computed here)."""
    from tfstyle.video import frames as video

    clip, output, frames, masks = job
    video_options = VideoOptions(frame_steps=FLAGS.frame_steps,
                                 independent=FLAGS.independent_frames,
                                 flow_preset=FLAGS.flow_preset).validate()
    if FLAGS.server:
        from tfstyle.cli import remote
        remote.check_flags(options, clip=True)
    options, done = _start_or_resume(frames, options, video_options, clip)
    total = clip.count
    logging.info("stylizing %s (%s frames at %.3g fps) with %s%s: %d px, seed %d%s",
                 FLAGS.content, total if total is not None else "?", clip.fps, FLAGS.style,
                 f" on {FLAGS.server}" if FLAGS.server else "", options.size, options.seed,
                 f", resuming at frame {done}" if done else "")
    stop = common.StopOnSignal(
        "stopping: " + ("the frame on the server is finished and kept" if FLAGS.server else
                        "the frame in progress is dropped") + ", the finished ones are kept")
    progress = _FrameProgress(total, done)
    try:
        with stop:
            later, previous = _resumed(clip, done, frames, options.size)
            for frame in _stylized(later, styles, masks, options, video_options, previous,
                                   stop):
                video.save_frame(frames, frame)
                progress.finished(frame)
                if stop():  # a request in flight is not cut short: stop between frames
                    raise Interrupted(f"stopped after frame {frame.index + 1}")
    except Interrupted:
        print(f"tfstyle: interrupted by {stop.signal_name}: {progress.done} frames are in "
              f"{frames}; to go on, run the same command with --resume", file=sys.stderr)
        sys.exit(128 + stop.signal_number)
    except TfstyleError as e:
        if progress.done == done and not isinstance(e, ImageError):
            raise
        whole = " once the clip is whole" if isinstance(e, ImageError) else ""
        # In place, so that a ServingError keeps its code.
        e.args = (f"{e}; the {progress.done} frames finished are kept in {frames} "
                  f"(--resume continues after them{whole})",) + e.args[1:]
        raise
    if output is not None:
        _encode(clip, frames, output)


def _stylized(frames, styles, masks, options, video_options, previous, stop):
    """The clip's ``video.Frame`` s as they finish: here, or on --server (which
    refuses masks: ``remote.check_flags``)."""
    from tfstyle.video import frames as video

    if not FLAGS.server:
        yield from video.stylize_frames(common.stylizer(), frames, styles, options,
                                        video_options, previous=previous, should_stop=stop,
                                        **masks)
        return
    from tfstyle.cli import remote

    with remote.make_client() as client, remote.hinted_errors():
        yield from video.served_frames(client, frames, FLAGS.style, options, video_options,
                                       previous)


def _resumed(clip, done, frames, size):
    """(the clip's frames from ``done`` on, as an iterator, and (input frame done − 1 at
    the output size, its finished result) or None): one decoding pass over the clip."""
    frames_left = iter(clip)
    if not done:
        return frames_left, None
    from tfstyle.video import frames as video

    for index, frame in frames_left:
        if index == done - 1:
            return frames_left, (video.output_frame(frame, size), _read_frame(frames, index))
    raise ConfigError(f"--resume: the clip has no frame {done - 1}; it is not the clip of "
                      f"the frames in {frames}")


def _encode(clip, frames, output):
    """The frames folder as an H.264 video at the clip's rate, with its audio."""
    from tfstyle.video import frames as video
    from tfstyle.video.writer import ClipWriter

    count = video.frames_done(frames)
    first = _read_frame(frames, 0)
    with ClipWriter(output, clip.fps, (first.shape[1], first.shape[0]),
                    audio_from=clip if clip.audio else None) as writer:
        for index in range(count):
            writer.write(_read_frame(frames, index))
    logging.info("wrote %s: %d frames at %.3g fps%s (the frames stay in %s)", output, count,
                 clip.fps, ", with the source's audio" if clip.audio else "", frames)


def _read_frame(frames, index):
    """Finished frame ``index`` of the frames folder, uint8 (H, W, 3)."""
    from tfstyle import image_io
    from tfstyle.video import frames as video

    path = video.frame_path(frames, index)
    return image_io.to_uint8(image_io.to_array(image_io.open_image(path)))


class _FrameProgress:
    """A log line per finished frame: k/N, seconds, the later frames' mean, time left."""

    def __init__(self, total, done):
        self.total, self.done, self.later = total, done, []
        self.started = time.perf_counter()

    def finished(self, frame):
        self.done = frame.index + 1
        if frame.index > 0:
            self.later.append(frame.seconds)
        per_frame = sum(self.later) / len(self.later) if self.later else frame.seconds
        left = "" if self.total is None else (
            f", time left ~{common.duration(per_frame * (self.total - self.done))}")
        logging.info("frame %d/%s: %.1f s (later frames %.1f s each)%s", self.done,
                     self.total if self.total is not None else "?", frame.seconds,
                     per_frame, left)
