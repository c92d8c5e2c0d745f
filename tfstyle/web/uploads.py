"""Uploads: a request's files read within limits, each checked as the CLI checks its
inputs, and kept under the server's results folder by a name the server chose.

A request's body is read as it streams in and refused as soon as it passes the byte
limit or names more files than allowed, so an oversized upload costs no more memory
than the limit. Each file is then an image (``open_image``: Pillow, size limit,
decompression bombs refused on the header) or a video clip (``open_clip``: PyAV probes
it and decodes its first frame); anything else is refused with a message naming the
file. The name the browser sent is kept only to show it: on disk an upload is
``<results>/uploads/<random id>.<kind>``, so no request names a path.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import secrets
import threading
import time
import unicodedata

from PIL import Image
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from tfstyle.web import library as lib

ID_PATTERN = re.compile(r"[0-9a-f]{16}")
THUMB_SIDE = 320


class UploadError(Exception):
    """A refused request: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one upload request may carry: bytes in all, files, bytes per text field."""
    max_request_bytes: int = 64 * 2**20
    max_files: int = 16
    max_field_bytes: int = 64 * 2**10


@dataclasses.dataclass
class Part:
    """One part of a multipart body: its field name, the browser's file name (None for
    a text field) and its bytes."""
    field: str
    filename: str | None
    data: bytearray


def too_large(limits: Limits) -> UploadError:
    return UploadError(f"the upload is larger than this server takes "
                       f"({limits.max_request_bytes / 2**20:.0f} MiB per request): send "
                       f"smaller or fewer files (a shorter clip, photos saved as JPEG)", 413)


async def read_multipart(request, limits: Limits) -> list[Part]:
    """The parts of ``request``'s multipart/form-data body, read within ``limits``.

    Raises:
      UploadError: not multipart (415), larger than allowed (413), more files than
        allowed (413), a text field too long (413), or a malformed body (400).
    """
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError("send the files as multipart/form-data (a form with file fields)",
                          415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_request_bytes:
        raise too_large(limits)  # before reading a byte of it
    collector = _Collector(limits)
    try:
        parser = MultipartParser(params[b"boundary"], collector.callbacks())
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limits.max_request_bytes:
                raise too_large(limits)
            parser.write(chunk)
        parser.finalize()
    except (MultipartParseError, ValueError) as e:
        raise UploadError(f"the upload is not a well-formed multipart form ({e}); send it "
                          f"again") from None
    return collector.parts


class _Collector:
    """python-multipart's callbacks, gathering parts and enforcing the per-part limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.parts: list[Part] = []
        self.files = 0
        self._headers: dict[str, str] = {}
        self._field = self._value = b""
        self._part: Part | None = None

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self):
        self._headers, self._field, self._value, self._part = {}, b"", b"", None

    def _header_field(self, data, start, end):
        self._field += data[start:end]

    def _header_value(self, data, start, end):
        self._value += data[start:end]

    def _header_end(self):
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("utf-8",
                                                                                  "replace")
        self._field = self._value = b""

    def _headers_done(self):
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            self.files += 1
            if self.files > self.limits.max_files:
                raise UploadError(f"too many files in one upload: at most "
                                  f"{self.limits.max_files}; send fewer", 413)
            filename = filename.decode("utf-8", "replace")
        self._part = Part(name, filename, bytearray())

    def _data(self, data, start, end):
        part = self._part
        part.data += data[start:end]
        if part.filename is None and len(part.data) > self.limits.max_field_bytes:
            raise UploadError(f"the form field {part.field!r} is too long", 413)

    def _end(self):
        self.parts.append(self._part)


def display_name(filename: str | None) -> str:
    """The browser's file name, for showing only: its last path component, without
    control characters, at most 80 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return (name or "upload")[:80]


@dataclasses.dataclass
class Upload:
    """A checked upload. ``kind``: "image" or "video"; ``size``: (width, height);
    ``frames``: a clip's frame count where its header says; ``pins``: active jobs
    using it (an upload in use is never evicted)."""
    id: str
    name: str
    kind: str
    path: str
    size: tuple
    thumb: bytes
    frames: int | None = None
    size_bytes: int = 0
    created: float = dataclasses.field(default_factory=time.time)
    pins: int = 0

    def describe(self) -> dict:
        return {"id": self.id, "name": self.name, "kind": self.kind,
                "width": self.size[0], "height": self.size[1], "frames": self.frames,
                "thumb": f"api/uploads/{self.id}/thumb"}


def _looks_like_video(data: bytes) -> bool:
    """The containers a phone or camera writes, by their magic bytes: ISO BMFF (mp4,
    mov, m4v, 3gp), Matroska/WebM, AVI. Images are left to Pillow."""
    return (data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3"
            or (data[:4] == b"RIFF" and data[8:12] == b"AVI "))


def thumbnail(image: Image.Image) -> bytes:
    """A JPEG of ``image`` at most ``THUMB_SIDE`` px on its longer side."""
    image = image.copy()
    image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


class UploadStore:
    """The checked uploads of this server, by id, in ``folder`` (emptied at start:
    uploads do not outlive the server that took them). At most ``max_uploads`` files
    and ``max_bytes`` in all are kept; the oldest unused go first."""

    def __init__(self, folder, max_uploads: int = 256, max_bytes: int = 2 * 2**30):
        self.folder = os.fspath(folder)
        os.makedirs(self.folder, exist_ok=True)
        for entry in os.scandir(self.folder):
            if entry.is_file() and ID_PATTERN.fullmatch(entry.name.split(".")[0]):
                os.unlink(entry.path)
        self.max_uploads, self.max_bytes = max_uploads, max_bytes
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def add(self, filename: str | None, data: bytes) -> Upload:
        """Checks ``data`` and keeps it. Raises UploadError naming the file where it is
        neither an image nor a clip tfstyle reads (the library's own message)."""
        name = display_name(filename)
        if not data:
            raise UploadError(f"{name!r} is empty (0 bytes); choose the image file itself")
        uid = secrets.token_hex(8)
        if _looks_like_video(data):
            upload = self._add_video(uid, name, data)
        else:
            upload = self._add_image(uid, name, data)
        with self._lock:
            self._uploads[uid] = upload
            self._evict()
        return upload

    def _add_image(self, uid, name, data) -> Upload:
        try:
            image = lib.open_image(bytes(data))
        except lib.TfstyleError as e:
            raise UploadError(_named(str(e), name, len(data))) from None
        path = os.path.join(self.folder, f"{uid}.image")
        with open(path, "wb") as f:
            f.write(data)
        return Upload(uid, name, "image", path, image.size, thumbnail(image),
                      size_bytes=len(data))

    def _add_video(self, uid, name, data) -> Upload:
        path = os.path.join(self.folder, f"{uid}.video")
        with open(path, "wb") as f:
            f.write(data)
        try:
            clip = lib.open_clip(path)
            first = next(iter(clip))[1]
        except (lib.TfstyleError, StopIteration) as e:
            os.unlink(path)
            raise UploadError(f"{name!r} looks like a video but cannot be read: "
                              f"{_named(str(e), name, len(data), path)}") from None
        return Upload(uid, name, "video", path, clip.size, thumbnail(Image.fromarray(first)),
                      frames=clip.count, size_bytes=len(data))

    def get(self, uid: str) -> Upload:
        """The upload ``uid``; KeyError where there is none (or the id is malformed)."""
        if not isinstance(uid, str) or not ID_PATTERN.fullmatch(uid):
            raise KeyError(uid)
        with self._lock:
            return self._uploads[uid]

    def pin(self, uploads, delta: int):
        """Marks ``uploads`` in use (+1) by a job, or no longer (-1)."""
        with self._lock:
            for upload in uploads:
                upload.pins += delta

    def _evict(self):
        unused = sorted((u for u in self._uploads.values() if u.pins <= 0),
                        key=lambda u: u.created)
        total = sum(u.size_bytes for u in self._uploads.values())
        while unused and (len(self._uploads) > self.max_uploads or total > self.max_bytes):
            old = unused.pop(0)
            del self._uploads[old.id]
            total -= old.size_bytes
            try:
                os.unlink(old.path)
            except OSError:
                pass


def _named(message: str, name: str, length: int, path: str | None = None) -> str:
    """The library's message about a buffer or a file of ours, naming the upload
    instead: the user knows their file by its name."""
    for placeholder in (f"<{length} bytes of image data>", f"'{path}'" if path else None):
        if placeholder and placeholder in message:
            message = message.replace(placeholder, repr(name))
    if path and path in message:
        message = message.replace(path, name)
    if repr(name) not in message and name not in message:
        message = f"{name!r}: {message}"
    return message
