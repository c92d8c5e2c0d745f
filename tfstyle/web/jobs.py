"""Jobs: their state, the queue that runs them, and how the page hears of them.

A job is queued, then run by one of the queue's workers (one on a local CPU, where two
runs at once would only share the cores; several against a TF Serving, where the work
is the server's), then done, stopped (its image so far kept), failed or cancelled.

The page watches a job over server-sent events (``app.events``): each event is the
job's whole state, so a page that missed some is never behind. A worker changes the
state from its thread and ``update`` wakes each watcher's event loop. Whoever started a
job must keep watching it: once nobody has watched a queued or running job for
``grace`` seconds (the tab was closed, the laptop went to sleep) the queue stops it, so
a dropped client never leaves a job running for nobody.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import os
import re
import secrets
import threading
import time
from typing import Callable

log = logging.getLogger("tfstyle.web")

ID_PATTERN = re.compile(r"[0-9a-f]{16}")
QUEUED, RUNNING, DONE, STOPPED, FAILED, CANCELLED = (
    "queued", "running", "done", "stopped", "failed", "cancelled")
FINAL = (DONE, STOPPED, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING)
# What the page reads of a job besides its state: kept in one dict so that a snapshot
# is one copy.
PROGRESS_FIELDS = ("phase", "stage", "stages", "size", "step", "steps", "eta", "tile",
                   "item", "items", "item_eta", "item_name")


@dataclasses.dataclass
class Result:
    """A job's download: a file in its folder, its media type and the name offered."""
    path: str
    media_type: str
    filename: str


class Job:
    """One job: what to run (``kind``, ``spec``), its folder, and its state.

    ``spec`` is the kind's own (``work`` reads it); ``settings`` what the page sent,
    kept to show it and to write it into the result. Images the page shows while the
    job runs (``images``: slot name -> JPEG bytes) are in memory; the result is a file.
    """

    def __init__(self, kind: str, spec, settings: dict, folder: str,
                 job_id: str | None = None):
        self.id = job_id or secrets.token_hex(8)
        self.kind, self.spec, self.settings = kind, spec, settings
        self.folder = os.path.join(folder, self.id)
        self.created = time.time()
        self.state, self.position, self.message = QUEUED, 0, ""
        self.progress = dict.fromkeys(PROGRESS_FIELDS)
        self.images: dict[str, bytes] = {}
        self.versions: dict[str, int] = {}
        self.strip: list[dict] = []
        self.result: Result | None = None
        self.command = ""
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self.seq = 0
        self.watchers = 0
        self.unwatched_since = time.monotonic()
        # Re-entrant: Ctrl-C's handler may stop a job while its thread reads one.
        self._lock = threading.RLock()
        self._waiters: set = set()

    # ----- state

    def update(self, images: dict | None = None, **fields):
        """Sets state fields (``state``, ``message``, ``command``, ``result``, ``strip``,
        or any of ``PROGRESS_FIELDS``) and images (slot -> JPEG bytes), then wakes the
        watchers."""
        with self._lock:
            for name, value in fields.items():
                if name in PROGRESS_FIELDS:
                    self.progress[name] = value
                elif name in ("state", "message", "command", "result", "strip", "position"):
                    setattr(self, name, value)
                else:
                    raise AttributeError(f"a job has no field {name!r}")
            for slot, data in (images or {}).items():
                self.images[slot] = data
                self.versions[slot] = self.versions.get(slot, 0) + 1
            self.seq += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that watcher's loop has closed
                pass

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def snapshot(self) -> dict:
        """The job as the page reads it (JSON-ready)."""
        with self._lock:
            return {"id": self.id, "kind": self.kind, "state": self.state,
                    "position": self.position, "message": self.message,
                    "progress": dict(self.progress), "images": dict(self.versions),
                    "strip": [dict(s) for s in self.strip], "settings": self.settings,
                    "command": self.command, "seq": self.seq, "created": self.created,
                    "result": None if self.result is None else {
                        "url": f"api/jobs/{self.id}/result",
                        "filename": self.result.filename,
                        "media_type": self.result.media_type}}

    # ----- stopping

    def request_stop(self, reason: str = "stopped from the page"):
        """Asks the job to stop: a running one keeps its work so far, a queued one is
        cancelled when a worker reaches it."""
        if not self.stop_event.is_set():
            self.stop_reason = reason
            self.stop_event.set()
            self.update()

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    # ----- watchers (server-sent event streams)

    def watch(self, loop) -> asyncio.Event:
        """A new watcher on ``loop``: the returned event is set on every update."""
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((loop, event))
            self.watchers += 1
        return event

    def unwatch(self, loop, event):
        with self._lock:
            self._waiters.discard((loop, event))
            self.watchers -= 1
            if self.watchers == 0:
                self.unwatched_since = time.monotonic()

    # ----- the record kept beside the result

    def record(self) -> dict:
        snapshot = self.snapshot()
        for name in ("images", "seq", "position"):
            snapshot.pop(name)
        return snapshot

    def save_record(self):
        """Writes ``job.json`` into the job's folder: what the gallery lists after a
        restart."""
        os.makedirs(self.folder, exist_ok=True)
        record = self.record()
        if self.result is not None:
            record["result_file"] = os.path.basename(self.result.path)
        tmp = os.path.join(self.folder, ".job.json.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, os.path.join(self.folder, "job.json"))


def load_finished(folder: str) -> list[Job]:
    """The finished jobs recorded under ``folder`` (``save_record``), oldest first: a
    restarted server's gallery. Folders that are not a job's own are left alone."""
    jobs = []
    if not os.path.isdir(folder):
        return jobs
    for entry in os.scandir(folder):
        if not (entry.is_dir() and ID_PATTERN.fullmatch(entry.name)):
            continue
        try:
            with open(os.path.join(entry.path, "job.json")) as f:
                record = json.load(f)
            job = Job(record["kind"], None, record.get("settings", {}), folder, entry.name)
            job.state, job.message = record["state"], record.get("message", "")
            job.command, job.created = record.get("command", ""), record.get("created", 0)
            result = record.get("result")
            name = record.get("result_file")
            if result and name and os.path.basename(name) == name:
                job.result = Result(os.path.join(job.folder, name), result["media_type"],
                                    result["filename"])
            jobs.append(job)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a job that crashed before its record was whole
    return sorted(jobs, key=lambda j: j.created)


class JobQueue:
    """Runs jobs in order of arrival on ``workers`` threads, with ``run(job)``.

    ``run`` does the work and sets the job's result; it returns normally for a job
    done, and raises what stopped it otherwise (``work`` maps the library's errors).
    ``grace``: seconds a queued or running job may go unwatched before it is stopped.
    ``keep``: finished jobs remembered for the gallery. ``on_final(job)``: called once
    when a job ends, however it ends (run, stopped, or cancelled in the line).
    """

    def __init__(self, run: Callable, workers: int = 1, grace: float = 30.0,
                 keep: int = 48, finished: list | None = None,
                 on_final: Callable | None = None):
        self._run = run
        self._on_final = on_final
        self.grace = grace
        self._jobs: dict[str, Job] = {}
        self._waiting: collections.deque = collections.deque()
        self._finished: collections.deque = collections.deque(maxlen=keep)
        for job in finished or []:
            self._jobs[job.id] = job
            self._finished.append(job)
        self._cond = threading.Condition()
        self._closing = False
        self._threads = [threading.Thread(target=self._work, name=f"tfstyle-web-worker-{i}",
                                          daemon=True) for i in range(max(1, workers))]
        self._threads.append(threading.Thread(target=self._reap, name="tfstyle-web-reaper",
                                              daemon=True))
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> Job:
        with self._cond:
            if self._closing:
                raise RuntimeError("the server is shutting down")
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._renumber()
            self._cond.notify()
        return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; KeyError where there is none."""
        if not isinstance(job_id, str) or not ID_PATTERN.fullmatch(job_id):
            raise KeyError(job_id)
        with self._cond:
            return self._jobs[job_id]

    def finished(self) -> list[Job]:
        """The finished jobs remembered, newest first."""
        with self._cond:
            return list(reversed(self._finished))

    def _renumber(self):
        """Tells each waiting job its place in the line (1: next)."""
        for place, job in enumerate(self._waiting, 1):
            if job.position != place:
                job.update(position=place)

    def _next(self) -> Job | None:
        with self._cond:
            while not self._waiting and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            job = self._waiting.popleft()
            self._renumber()
            return job

    def _work(self):
        while (job := self._next()) is not None:
            if job.should_stop():
                self._end(job, CANCELLED, f"cancelled before it started: {job.stop_reason}")
                continue
            job.update(state=RUNNING, position=0, message="starting")
            try:
                self._run(job)
            except Exception as e:  # the job's end; the worker goes on with the next
                if job.state not in FINAL:
                    log.exception("job %s failed", job.id)
                    job.update(state=FAILED, message=f"internal error: {type(e).__name__}: {e}")
            if job.state not in FINAL:
                job.update(state=DONE, message="done")
            self.remember(job)

    def _end(self, job: Job, state: str, message: str):
        job.update(state=state, message=message, position=0)
        self.remember(job)

    def remember(self, job: Job):
        """Files a finished job for the gallery and writes its record."""
        if self._on_final is not None:
            self._on_final(job)
        try:
            job.save_record()
        except OSError:
            log.exception("could not write the record of job %s", job.id)
        with self._cond:
            if job.result is not None and job not in self._finished:
                self._finished.append(job)
            # Finished jobs the gallery does not show are forgotten, oldest first, so
            # that a long-running server's memory does not grow with its history.
            kept = set(self._finished)
            spare = [j for j in self._jobs.values() if j.state in FINAL and j not in kept]
            for old in sorted(spare, key=lambda j: j.created)[:-64]:
                del self._jobs[old.id]

    def _unqueue(self, job: Job) -> bool:
        """Takes a waiting job out of the line; False where a worker has it already."""
        with self._cond:
            if job not in self._waiting:
                return False
            self._waiting.remove(job)
            self._renumber()
            return True

    def _reap(self):
        """Stops the jobs nobody has watched for ``grace`` seconds."""
        while not self._closing:
            time.sleep(min(1.0, max(self.grace / 4, 0.05)))
            now = time.monotonic()
            with self._cond:
                active = [j for j in self._jobs.values() if j.state in ACTIVE]
            for job in active:
                if job.watchers <= 0 and now - job.unwatched_since > self.grace:
                    job.request_stop(f"nobody watched it for {self.grace:g} s (the page "
                                     f"that started it was closed)")
                    if self._unqueue(job):
                        self._end(job, CANCELLED, f"cancelled: {job.stop_reason}")

    def stop_all(self, reason: str = "the server is shutting down"):
        """Stops every job (a running one keeps its work so far) and takes no more;
        returns at once (Ctrl-C calls it from the signal handler)."""
        with self._cond:
            self._closing = True
            jobs = [j for j in self._jobs.values() if j.state in ACTIVE]
            self._cond.notify_all()
        for job in jobs:
            job.request_stop(reason)
            if self._unqueue(job):
                self._end(job, CANCELLED, f"cancelled: {reason}")

    def close(self, timeout: float = 30.0):
        """``stop_all``, then waits up to ``timeout`` seconds for the workers to file
        what the running jobs had done."""
        self.stop_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
