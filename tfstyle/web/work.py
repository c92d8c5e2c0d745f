"""What each kind of job does, on either engine, and what it leaves in its folder.

* ``image``: one photo with one or more paintings: ``result.png``, with the settings
  and the ``tfstyle`` command that repeats it in its text chunks;
* ``strip``: the strength strip, three quick previews of one photo at three strengths
  (``configs/fast.cfg``'s schedule); the page shows them, there is no download;
* ``photos``: several photos with the same paintings and seed: ``result.zip``;
* ``video``: a clip's frames, each held to the last: ``result.mp4``.

A stop keeps what is done: the image so far, the photos or frames finished. Every file
is written inside the job's folder, under names chosen here.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import time
import zipfile

import numpy as np

from tfstyle.web import command as cmd
from tfstyle.web import jobs as jobs_lib
from tfstyle.web import library as lib
from tfstyle.web.engines import preview_jpeg


@dataclasses.dataclass
class Spec:
    """What a job runs: the uploads (``contents``: one photo, several, or one clip;
    ``styles``: the paintings), the validated options (seed set), and per kind: the
    strip's strengths, the clip's frames and video options."""
    contents: list
    styles: list
    options: lib.RunOptions
    strengths: tuple = ()
    frames: int | None = None
    video: lib.VideoOptions | None = None


class Context:
    """The server's side of a job: its engine, and the model flags the command names."""

    def __init__(self, engine, model_flags: list[str]):
        self.engine = engine
        self.model_flags = list(model_flags)


def run(job, context: Context):
    """Runs ``job`` (``JobQueue``'s ``run``): sets its result and its final state."""
    kinds = {"image": _image, "strip": _strip, "photos": _photos, "video": _video}
    try:
        kinds[job.kind](job, job.spec, context)
    except lib.TfstyleError as e:
        if job.state not in jobs_lib.FINAL:
            job.update(state=jobs_lib.FAILED, message=_one_line(e))


def _one_line(error) -> str:
    return " ".join(str(error).split())


def stem(name: str) -> str:
    """A name safe for a download's file name: ASCII letters, digits, - and _."""
    base = os.path.splitext(name)[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-")[:40] or "image"


def _command(job, spec, context, output, extra=()) -> str:
    content = spec.contents[0].name if job.kind != "photos" else "photos/"
    return cmd.cli_command(spec.options, content, [u.name for u in spec.styles], output,
                           context.model_flags, extra)


def _finish(job, result_path, media_type, filename, state, message, thumb=None):
    """Files the result and the gallery's thumbnail, and ends the job in ``state``."""
    if thumb is not None:
        cmd.write_file(os.path.join(job.folder, "thumb.jpg"), preview_jpeg(thumb))
    job.update(result=jobs_lib.Result(result_path, media_type, filename), state=state,
               message=message)


# ------------------------------------------------------------------------------ kinds


def _image(job, spec, context):
    name = f"{stem(spec.contents[0].name)}-{stem(spec.styles[0].name)}.png"
    job.update(command=_command(job, spec, context, name))
    started = time.monotonic()
    state, message, steps = jobs_lib.DONE, None, spec.options.steps
    try:
        image = context.engine.still(job, spec.contents[0].path,
                                     [u.path for u in spec.styles], spec.options)
    except lib.Interrupted as e:
        if e.image is None:
            job.update(state=jobs_lib.STOPPED, message=f"{job.stop_reason}: {e}")
            return
        image, state, steps = e.image, jobs_lib.STOPPED, e.step
        message = (f"{job.stop_reason} at step {e.step}/{spec.options.steps}: the image so "
                   f"far is kept")
    except lib.NumericalError as e:  # the last finite image is kept, as the CLI keeps it
        image, state, steps, message = e.image, jobs_lib.FAILED, e.step, _one_line(e)
    if message is None:
        message = (f"done: {image.shape[1]}×{image.shape[0]} px, {steps} steps "
                   f"in {time.monotonic() - started:.0f} s")
    settings = dict(job.settings, finished=state, steps_done=steps)
    path = os.path.join(job.folder, "result.png")
    cmd.write_file(path, cmd.png_bytes(image, settings, job.command))
    job.update(images={"current": preview_jpeg(image)})
    _finish(job, path, "image/png", name, state, message, thumb=image)


def _strip(job, spec, context):
    strip = [{"strength": s, "slot": f"strip{i}", "done": False}
             for i, s in enumerate(spec.strengths)]
    job.update(strip=strip, items=len(strip), item=0, command=_command(job, spec, context,
                                                                        "preview.png"))
    for i, strength in enumerate(spec.strengths):
        options = dataclasses.replace(spec.options, style_strength=strength)
        job.update(item=i + 1, item_name=f"strength {strength:g}")
        try:
            context.engine.still(job, spec.contents[0].path, [u.path for u in spec.styles],
                                 options, slot=f"strip{i}")
        except lib.Interrupted:
            job.update(state=jobs_lib.STOPPED, message=f"{job.stop_reason}: the previews "
                                                       f"finished are kept")
            return
        strip[i]["done"] = True
        job.update(strip=strip)
    job.update(state=jobs_lib.DONE, message="pick a strength for the full run")


def _photos(job, spec, context):
    job.update(command=_command(job, spec, context, "stylized/"), items=len(spec.contents),
               item=0)
    done, failed, stopped = [], [], None
    for k, upload in enumerate(spec.contents):
        job.update(item=k + 1, item_name=upload.name, step=0)
        try:
            image = context.engine.still(job, upload.path, [u.path for u in spec.styles],
                                         spec.options)
        except lib.Interrupted:
            stopped = job.stop_reason
            break
        except lib.TfstyleError as e:  # one photo's failure; the others go on
            failed.append(f"{upload.name} ({_one_line(e)})")
            continue
        done.append((upload.name, image))
        job.update(images={"latest": preview_jpeg(image)})
        if job.should_stop():
            stopped = job.stop_reason
            break
    _zip_photos(job, spec, done, failed, stopped)


def _zip_photos(job, spec, done, failed, stopped):
    if not done:
        state = jobs_lib.STOPPED if stopped else jobs_lib.FAILED
        job.update(state=state, message=f"no photo finished{': ' + stopped if stopped else ''}"
                   + (f"; failed: {', '.join(failed)}" if failed else ""))
        return
    buffer, names = io.BytesIO(), set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for k, (name, image) in enumerate(done):
            member = f"{stem(name)}.png"
            if member in names:
                member = f"{stem(name)}-{k + 1}.png"
            names.add(member)
            archive.writestr(member, cmd.png_bytes(image, dict(job.settings, photo=name),
                                                   job.command))
    path = os.path.join(job.folder, "result.zip")
    cmd.write_file(path, buffer.getvalue())
    message = f"{len(done)} of {len(spec.contents)} photos finished" + (
        f" ({stopped})" if stopped else "") + (f"; failed: {', '.join(failed)}" if failed
                                               else "")
    state = jobs_lib.STOPPED if stopped else jobs_lib.DONE
    _finish(job, path, "application/zip", f"stylized-{stem(spec.styles[0].name)}.zip",
            state, message, thumb=done[-1][1])


def _video(job, spec, context):
    upload = spec.contents[0]
    name = f"{stem(upload.name)}-{stem(spec.styles[0].name)}.mp4"
    clip = lib.open_clip(upload.path, max_frames=spec.frames)
    total = clip.count or spec.frames
    job.update(command=_command(job, spec, context, name,
                                cmd.video_flags(spec.video, spec.frames)),
               items=total, item=0)
    frames_dir = os.path.join(job.folder, "frames")
    os.makedirs(frames_dir, exist_ok=True)
    done, later, stopped = [], [], None
    try:
        for frame in context.engine.frames(job, clip, [u.path for u in spec.styles],
                                           spec.options, spec.video):
            path = os.path.join(frames_dir, f"frame_{frame.index:06d}.png")
            cmd.write_file(path, cmd.png_bytes(frame.image, {}, ""))
            done.append(path)
            if frame.index > 0:
                later.append(frame.seconds)
            per_frame = float(np.mean(later)) if later else frame.seconds
            left = None if total is None else per_frame * (total - len(done))
            job.update(images={"latest": preview_jpeg(frame.image)}, item=len(done),
                       item_eta=left)
    except lib.Interrupted:
        stopped = job.stop_reason
    if not done:
        job.update(state=jobs_lib.STOPPED, message=f"{stopped}: no frame finished")
        return
    path = os.path.join(job.folder, "result.mp4")
    last = _encode(clip, done, path)
    shutil.rmtree(frames_dir, ignore_errors=True)  # the mp4 holds them now
    state = jobs_lib.STOPPED if stopped else jobs_lib.DONE
    message = f"{len(done)} frames" + (f" ({stopped}; the frames finished are kept)"
                                       if stopped else "")
    _finish(job, path, "video/mp4", name, state, message, thumb=last)


def _encode(clip, frame_paths, path):
    """The finished frames as an H.264 mp4 at the clip's rate, with its audio for as
    long as they last; returns the last frame."""
    frame = None
    with lib.clip_writer(path, clip.fps, _size(frame_paths[0]),
                         audio_from=clip if clip.audio else None) as writer:
        for frame_path in frame_paths:
            frame = np.asarray(lib.open_image(frame_path), np.uint8)
            writer.write(frame)
    return frame


def _size(frame_path):
    image = lib.open_image(frame_path)
    return image.size
