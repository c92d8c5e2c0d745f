"""The web app: the page, its uploads, jobs, live events, results and gallery.

Routes (all relative, so the app also works under a path prefix):

    GET  /                            the page
    GET  /static/...                  its one HTML, CSS and JS file
    GET  /api/config                  limits, defaults, where jobs run
    POST /api/uploads                 files (multipart) -> checked uploads, thumbnails
    GET  /api/uploads/{id}/thumb      an upload's thumbnail
    POST /api/jobs                    {contents, styles, settings, strip} -> a queued job
    GET  /api/jobs/{id}               the job's state
    GET  /api/jobs/{id}/events        its state as server-sent events, on every change
    GET  /api/jobs/{id}/images/{slot} an image it shows while running (JPEG)
    POST /api/jobs/{id}/stop          stop it; the work so far is kept
    GET  /api/jobs/{id}/result        the download: PNG, zip or mp4
    GET  /api/jobs/{id}/thumb         the gallery's thumbnail
    GET  /api/gallery                 this server's recent results

Requests name uploads and jobs by the random ids the server gave them, looked up in
memory; no part of a request becomes a path. ``guard.Guard`` checks the token, the
Host header and the Origin before any route runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tfstyle.web import jobs as jobs_lib
from tfstyle.web import library as lib
from tfstyle.web import settings as settings_lib
from tfstyle.web import work
from tfstyle.web.guard import Guard
from tfstyle.web.uploads import Limits, UploadError, UploadStore, read_multipart

STATIC = os.path.join(os.path.dirname(__file__), "static")


@dataclasses.dataclass
class Config:
    """One server's settings.

    results: its folder; everything it writes is inside (``uploads/``, ``jobs/``).
    engine: ``engines.LocalEngine`` or ``engines.ServingEngine``.
    model_flags: the ``tfstyle`` flags of its model, for the commands it writes.
    token: required on every request but the static files where set ("" for none).
    loopback: whether it listens on a loopback address only: then requests must name
      a loopback Host (a page elsewhere cannot reach it by DNS rebinding).
    workers: jobs run at once (1 on a CPU). grace: seconds a job may go unwatched.
    ping: seconds between keep-alive comments of an event stream.
    """
    results: str
    engine: object
    model_flags: list = dataclasses.field(default_factory=list)
    rules: settings_lib.Rules = dataclasses.field(default_factory=settings_lib.Rules)
    limits: Limits = dataclasses.field(default_factory=Limits)
    token: str = ""
    loopback: bool = True
    workers: int = 1
    grace: float = 30.0
    ping: float = 15.0


def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Server:
    """The app's state: uploads, the job queue, and the routes over them."""

    def __init__(self, config: Config):
        self.config = config
        self.jobs_folder = os.path.join(config.results, "jobs")
        os.makedirs(self.jobs_folder, exist_ok=True)
        self.uploads = UploadStore(os.path.join(config.results, "uploads"))
        context = work.Context(config.engine, config.model_flags)
        self.queue = jobs_lib.JobQueue(
            lambda job: work.run(job, context), workers=config.workers,
            grace=config.grace, finished=jobs_lib.load_finished(self.jobs_folder),
            on_final=lambda job: self.uploads.pin(job.spec.contents + job.spec.styles, -1))

    # ----- routes

    async def index(self, request):
        return FileResponse(os.path.join(STATIC, "index.html"),
                            headers={"Cache-Control": "no-store"})

    async def show_config(self, request):
        c = self.config
        defaults = lib.RunOptions()
        return JSONResponse({
            "engine": c.engine.name, "engine_text": c.engine.describe(),
            "max_styles": c.engine.max_styles, "max_size": c.rules.max_size,
            "max_photos": c.rules.max_photos, "max_frames": c.rules.max_frames,
            "max_files": c.limits.max_files,
            "max_upload_mb": round(c.limits.max_request_bytes / 2**20, 1),
            "strengths": list(c.rules.strengths), "preview_size": c.rules.preview_size,
            "defaults": {"size": defaults.size, "steps": defaults.steps,
                         "style_strength": defaults.style_strength,
                         "preserve_colors": defaults.preserve_colors,
                         "style_loss": defaults.style_loss, "init": defaults.init,
                         "init_blend": defaults.init_blend,
                         "style_scale": defaults.style_scale,
                         "frame_steps": lib.VideoOptions().frame_steps},
            "choices": {"preserve_colors": list(lib.PRESERVE_COLORS),
                        "style_loss": list(lib.STYLE_LOSSES), "init": list(lib.INITS)},
            "version": lib.VERSION})

    async def upload(self, request):
        try:
            parts = await read_multipart(request, self.config.limits)
            files = [p for p in parts if p.filename is not None]
            if not files:
                raise UploadError("no file in the upload: choose or drop an image")
            added = []
            for part in files:
                added.append(await run_in_threadpool(self.uploads.add, part.filename,
                                                     bytes(part.data)))
        except UploadError as e:
            return error(str(e), e.status)
        return JSONResponse({"uploads": [u.describe() for u in added]})

    async def upload_thumb(self, request):
        try:
            upload = self.uploads.get(request.path_params["uid"])
        except KeyError:
            return error("no such upload (the server keeps the latest ones)", 404)
        return Response(upload.thumb, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    async def create_job(self, request):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error("send the job as JSON")
        try:
            kind, spec, settings = settings_lib.make_spec(
                body, self.uploads, self.config.rules, self.config.engine.max_styles)
        except UploadError as e:
            return error(str(e), e.status)
        job = jobs_lib.Job(kind, spec, settings, self.jobs_folder)
        self.uploads.pin(spec.contents + spec.styles, +1)
        try:
            self.queue.submit(job)
        except RuntimeError as e:
            self.uploads.pin(spec.contents + spec.styles, -1)
            return error(str(e), 503)
        return JSONResponse(job.snapshot(), status_code=201)

    def _job(self, request) -> jobs_lib.Job:
        try:
            return self.queue.get(request.path_params["jid"])
        except KeyError:
            raise HTTPException(404, "no such job on this server") from None

    async def job(self, request):
        return JSONResponse(self._job(request).snapshot())

    async def stop(self, request):
        job = self._job(request)
        job.request_stop("stopped from the page")
        return JSONResponse(job.snapshot())

    async def image(self, request):
        job = self._job(request)
        data = job.images.get(request.path_params["slot"])
        if data is None:
            return error("this job has no such image (yet)", 404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})

    async def result(self, request):
        job = self._job(request)
        if job.result is None or not os.path.isfile(job.result.path):
            return error("this job has no result (yet)", 404)
        return FileResponse(job.result.path, media_type=job.result.media_type,
                            filename=job.result.filename)

    async def thumb(self, request):
        path = os.path.join(self._job(request).folder, "thumb.jpg")
        if not os.path.isfile(path):
            return error("this job has no thumbnail", 404)
        return FileResponse(path, media_type="image/jpeg")

    async def gallery(self, request):
        return JSONResponse({"results": [
            dict(j.record(), thumb=f"api/jobs/{j.id}/thumb") for j in self.queue.finished()
            if j.result is not None and j.kind != "strip"][:24]})

    async def events(self, request):
        """The job's state now and on every change, as server-sent events, until it
        ends; a comment every ``ping`` seconds keeps proxies from closing the stream.
        While the stream is open the job counts as watched (``jobs.JobQueue``)."""
        job = self._job(request)
        loop = asyncio.get_running_loop()

        async def stream():
            changed = job.watch(loop)
            try:
                last = -1
                while True:
                    changed.clear()
                    snapshot = job.snapshot()
                    if snapshot["seq"] != last:
                        last = snapshot["seq"]
                        yield f"event: status\nid: {last}\ndata: {json.dumps(snapshot)}\n\n"
                        if snapshot["state"] in jobs_lib.FINAL:
                            return
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(changed.wait(), self.config.ping)
                        continue
                    yield ": ping\n\n"
            finally:
                job.unwatch(loop, changed)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    def routes(self) -> list:
        jid = "/api/jobs/{jid:str}"
        return [Route("/", self.index), Route("/api/config", self.show_config),
                Route("/api/uploads", self.upload, methods=["POST"]),
                Route("/api/uploads/{uid:str}/thumb", self.upload_thumb),
                Route("/api/jobs", self.create_job, methods=["POST"]),
                Route(jid, self.job), Route(jid + "/events", self.events),
                Route(jid + "/images/{slot:str}", self.image),
                Route(jid + "/stop", self.stop, methods=["POST"]),
                Route(jid + "/result", self.result), Route(jid + "/thumb", self.thumb),
                Route("/api/gallery", self.gallery),
                Mount("/static", StaticFiles(directory=STATIC), name="static")]


async def _json_http_error(request, exc):
    return error(exc.detail, exc.status_code)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (IPv4 or IPv6; port 0: a free one),
    bound before the server starts, so that its address can be printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    return sock


def create_app(config: Config) -> Starlette:
    """The ASGI app of one server; ``app.state.server`` holds its ``Server`` (close
    its queue to stop the jobs: the app's shutdown does)."""
    server = Server(config)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(server.queue.close, 10.0)

    app = Starlette(routes=server.routes(), lifespan=lifespan,
                    exception_handlers={HTTPException: _json_http_error})
    app.state.server = server
    app.add_middleware(Guard, token=config.token, loopback=config.loopback)
    return app
