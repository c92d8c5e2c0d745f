"""Where a job's runs happen: here on the library (``Stylizer``), or on a TF Serving
through ``TFServingClient``. Both give ``work`` the same two calls, ``still`` (one
image) and ``frames`` (a clip), and report into the job the same way, so a job does
not know which one it runs on.
"""

from __future__ import annotations

import concurrent.futures
import io
import threading
import time

import numpy as np
from PIL import Image

from tfstyle.web import library as lib

# The longest side of the images the page shows while a job runs: the page is a
# screen, not a print.
PREVIEW_SIDE = 1024


def preview_jpeg(image) -> bytes:
    """uint8 (H, W, 3) as a JPEG at most ``PREVIEW_SIDE`` px on its longer side."""
    picture = Image.fromarray(np.asarray(image, np.uint8))
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


class Reporter:
    """Turns the library's ``Progress`` into the job's progress and its current image.

    Fetching the image costs a device-to-host copy and an encode, more the larger the
    stage: it is taken at most once per four times what the last one cost, so that
    showing the picture grow never takes more than a fifth of the run's time.
    """

    def __init__(self, job, slot: str = "current"):
        self.job, self.slot = job, slot
        self._next_image = 0.0

    def __call__(self, progress):
        fields = dict(phase="optimising", stage=progress.stage, stages=progress.stages,
                      size=progress.size, step=progress.step, steps=progress.steps,
                      eta=progress.eta_seconds, tile=progress.tile)
        images = None
        now = time.monotonic()
        if now >= self._next_image or progress.step == progress.steps:
            images = {self.slot: preview_jpeg(progress.image())}
            self._next_image = now + 4 * (time.monotonic() - now)
        self.job.update(images=images, **fields)


def callback_every(steps: int) -> int:
    """Steps between progress reports: about twenty a run, at least one every ten
    steps, so that the picture refreshes every few steps."""
    return max(1, min(10, steps // 20))


class LocalEngine:
    """Runs on this machine's ``Stylizer``, built once, on first use, with ``model``
    (``Stylizer``'s keyword arguments), or on ``stylizer`` where one is given."""

    name = "local"
    max_styles = lib.MAX_STYLES

    def __init__(self, model: dict, stylizer=None):
        self.model = dict(model)
        self._stylizer = stylizer
        self._lock = threading.Lock()

    def describe(self) -> str:
        weights = self.model.get("weights") or "random weights"
        return f"{self.model.get('backbone', 'vgg19')}, {str(weights).rsplit('/', 1)[-1]}"

    def stylizer(self, job=None):
        """The model, built now if it is not yet (seconds: the VGG and TensorFlow)."""
        with self._lock:
            if self._stylizer is None:
                if job is not None:
                    job.update(phase="building the model (once per server)")
                self._stylizer = lib.make_stylizer(**self.model)
            return self._stylizer

    def still(self, job, content, styles, options, slot="current"):
        """One image, uint8 (H, W, 3). Raises ``Interrupted`` (``.image``: so far) when
        the job is asked to stop, and the library's errors."""
        stylizer = self.stylizer(job)
        job.update(phase="preparing")
        result = stylizer.stylize(content, list(styles), options, callback=Reporter(job, slot),
                                  callback_every=callback_every(options.steps),
                                  should_stop=job.should_stop)
        return result.image

    def frames(self, job, clip, styles, options, video):
        """The clip's finished frames (``video.Frame``), each as it finishes; a stop
        raises ``Interrupted`` from inside the frame in progress."""
        stylizer = self.stylizer(job)
        job.update(phase="preparing")
        return lib.stylize_frames(stylizer, clip, list(styles), options, video,
                                  should_stop=job.should_stop, callback=Reporter(job),
                                  callback_every=callback_every(options.steps))


class ServingEngine:
    """Runs each image, or each frame, on a TF Serving: the page is then a thin front,
    and many such fronts may share one serving cluster. A request in flight cannot
    be cut short there: a stop leaves its answer unread, and keeps what had finished
    before it (a clip's frames, a folder's photos)."""

    name = "serving"
    max_styles = 1  # a request carries one style image

    def __init__(self, client):
        self.client = client
        self._pool = concurrent.futures.ThreadPoolExecutor(8, "tfstyle-web-request")

    def describe(self) -> str:
        return f"TF Serving at {self.client.target} ({self.client.protocol})"

    def _wait(self, job, call, *args, **kwargs):
        """``call(*args, **kwargs)`` on a request thread, polled for the job's stop."""
        future = self._pool.submit(call, *args, **kwargs)
        while True:
            try:
                return future.result(timeout=0.2)
            except concurrent.futures.TimeoutError:
                if job.should_stop():
                    raise lib.Interrupted("stopped while the server was running the "
                                          "request; the server sends no image so far")

    def still(self, job, content, styles, options, slot="current"):
        job.update(phase="running on the server", step=0, steps=options.steps)
        image = self._wait(job, self.client.stylize, content, styles[0],
                           **lib.request_values(options))
        job.update(images={slot: preview_jpeg(image)}, step=options.steps)
        return image

    def frames(self, job, clip, styles, options, video):
        job.update(phase="running on the server")
        frames = lib.served_frames(self.client, clip, styles[0], options, video)
        while True:
            frame = self._wait(job, next, frames, None)
            if frame is None:
                return
            yield frame
            if job.should_stop():
                raise lib.Interrupted(f"stopped after frame {frame.index + 1}")

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
