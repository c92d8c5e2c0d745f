"""The web app served by uvicorn on 127.0.0.1 in a thread, for the page's tests.

    with serve(config) as server:
        urllib.request.urlopen(server.url + "api/config")

A real server on a real socket, as ``tfstyle-web`` runs it: event streams, dropped
connections and the Host and token checks behave as they do for a browser.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import uvicorn

from tfstyle.web.app import create_app
from tfstyle.web.app import listen


class Served:
    """A started server: ``url`` (ends in /), ``app``, ``queue`` (its ``JobQueue``)."""

    def __init__(self, config):
        self.config = config
        self.app = create_app(config)
        self.queue = self.app.state.server.queue
        sock = listen("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning",
                                                    timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True, name="web-test-server")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self):
        self.queue.stop_all("the test is over")
        self.server.should_exit = True
        self.thread.join(20)

    # ----- requests

    def request(self, path, data=None, headers=None, method=None, token=None):
        """(status, headers, body bytes) of a request to ``path``."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"token {token}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, path, body=None, method=None, token=None):
        """(status, decoded JSON) of a GET, or of a POST of ``body`` as JSON."""
        data = None if body is None else json.dumps(body).encode()
        headers = {} if body is None else {"Content-Type": "application/json"}
        status, _, content = self.request(path, data, headers, method, token)
        return status, json.loads(content or b"null")

    def upload(self, files, token=None):
        """(status, JSON) of POST api/uploads with ``files``: [(name, bytes)]."""
        data, content_type = multipart(files)
        status, _, content = self.request("api/uploads", data, {"Content-Type": content_type},
                                          token=token)
        return status, json.loads(content)


def multipart(files, field="files"):
    """(body, content type) of a multipart/form-data body with ``files``."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, content in files:
        chunks += [f"--{boundary}\r\n".encode(),
                   f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                   .encode(), b"Content-Type: application/octet-stream\r\n\r\n", content,
                   b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def events(served, job_id, until=("done", "stopped", "failed", "cancelled"), timeout=120,
           on_event=None):
    """The job's status events, read from its event stream until its state is one of
    ``until``; ``on_event(snapshot)`` is called on each as it arrives."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=timeout)
    connection.request("GET", f"/api/jobs/{job_id}/events")
    response = connection.getresponse()
    assert response.status == 200, response.read()
    snapshots = []
    try:
        data = []
        while True:
            line = response.fp.readline().decode()
            if not line:
                break
            if line.startswith("data: "):
                data.append(line[6:])
            elif line == "\n" and data:
                snapshot = json.loads("".join(data))
                data = []
                snapshots.append(snapshot)
                if on_event is not None:
                    on_event(snapshot)
                if snapshot["state"] in until:
                    break
    finally:
        connection.close()
    return snapshots


@contextlib.contextmanager
def serve(config):
    served = Served(config)
    try:
        yield served
    finally:
        served.stop()
