"""Who may use the server: the token, the Host header and the Origin, checked before
any route runs.

* **Token** (Jupyter's rule). A server that listens beyond this machine requires a
  token, which it prints in its address (``/?token=...``). The page's first request
  carries it in the URL; the answer sets it as a cookie, so the page's own requests
  (images, the event stream, downloads) carry it from then on. A request without it
  is refused with 403 and a message that says where to find it. The static files
  (the page's code, nothing of a user's) are served without it.
* **Host.** A server on a loopback address answers only requests for a loopback host
  name, so a web page elsewhere cannot reach it through a DNS name that points at
  127.0.0.1 (DNS rebinding).
* **Origin.** A request that changes something (POST) from a page of another origin is
  refused, so another site cannot start or stop jobs in a browser that holds the
  cookie (cross-site request forgery).
"""

from __future__ import annotations

import http.cookies
import secrets
import urllib.parse

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name to listen on) is reachable from this
    machine only."""
    host = host.strip("[]")
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def cookie_name(port) -> str:
    # Cookies are shared by every port of a host: one name per port keeps two servers
    # on one machine from overwriting each other's token.
    return f"tfstyle_web_token_{port}"


class Guard:
    """ASGI middleware: the checks above. ``token`` "" requires none."""

    def __init__(self, app, token: str = "", loopback: bool = True):
        self.app = app
        self.token = token
        self.loopback = loopback

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            return await refusal(scope, receive, send)
        port = (scope.get("server") or ("", 0))[1]
        given = request.query_params.get("token")
        if self.token and given and request.method == "GET":
            send = _with_cookie(send, cookie_name(port), self.token)
        return await self.app(scope, receive, send)

    def _refusal(self, request):
        host = (request.url.hostname or "").lower()
        if self.loopback and not is_loopback(host):
            return _refuse(request, 403, f"this server answers on localhost only, not as "
                                         f"{host!r}; open http://127.0.0.1:"
                                         f"{request.url.port or 80}/")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            if origin and urllib.parse.urlsplit(origin).netloc != request.headers.get("host"):
                return _refuse(request, 403, "requests from another site's page are refused")
        if not self.token or request.url.path.startswith("/static/"):
            return None
        port = (request.scope.get("server") or ("", 0))[1]
        given = (request.query_params.get("token")
                 or request.cookies.get(cookie_name(port))
                 or _authorization(request.headers.get("authorization", "")))
        if given and secrets.compare_digest(given.encode(), self.token.encode()):
            return None
        return _refuse(request, 403, "this server needs its token: open the address that "
                                     "tfstyle-web printed when it started (it ends in "
                                     "?token=...)")


def _authorization(value: str) -> str:
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() in ("token", "bearer") else ""


def _refuse(request, status, message):
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    page = ("<!doctype html><meta charset=utf-8><title>tfstyle</title>"
            "<body style='font:16px system-ui;max-width:36rem;margin:4rem auto;padding:0 1rem'>"
            f"<h1>tfstyle</h1><p>{_escape(message)}</p>")
    return HTMLResponse(page, status_code=status)


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&#39;").replace('"', "&quot;"))


def _with_cookie(send, name, value):
    """``send`` that adds the token cookie to the response's headers."""
    morsel = http.cookies.SimpleCookie()
    morsel[name] = value
    morsel[name]["path"] = "/"
    morsel[name]["httponly"] = True
    morsel[name]["samesite"] = "Strict"
    header = morsel.output(header="").strip().encode("latin-1")

    async def sending(message):
        if message["type"] == "http.response.start":
            message = dict(message, headers=list(message.get("headers", []))
                           + [(b"set-cookie", header)])
        await send(message)
    return sending
