"""The console's HTTP surface under ``[admin] path`` (``P``): pages, assets and the JSON API.

* ``GET P`` — the console (a session is required; without one, a redirect
  to ``P/login``); ``GET P/login`` — the login form; ``GET P/static/<file>``
  — the page's own CSS and JavaScript (no data in them).
* ``POST P/api/login`` ``{"password": ...}`` — sets the session cookie and
  returns the CSRF token; ``POST P/api/logout``.
* ``GET P/api/session|overview|targets|clients|recent|controls|audit``.
* ``POST P/api/controls`` — one live change (see :mod:`._controls`).

Every API answer but the login needs a session (401 otherwise); every
``POST`` but the login needs the session's ``X-CSRF-Token`` header (403),
and a request whose ``Origin`` is not this listener's is refused (403).
Everything else goes to the management app as before.
"""

from __future__ import annotations

import html
import importlib.resources
import json
import math
import time
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

import msgspec

from .._state import StateUnavailable
from . import _views
from ._controls import COMMAND, ControlError
from ._sessions import LoginLimited, Session, Sessions

if TYPE_CHECKING:
    from sipp.gateway.asgi import ASGIApp, Receive, Scope, Send

    from ._console import AdminConsole

__all__ = ["COOKIE", "console_app"]

COOKIE: Final = "sipp_admin"
_MAX_BODY: Final = 16 * 1024
_ASSETS: Final = {
    "app.js": b"text/javascript; charset=utf-8",
    "login.js": b"text/javascript; charset=utf-8",
    "app.css": b"text/css; charset=utf-8",
}
_SECURITY_HEADERS: Final = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
]


def _asset(name: str) -> bytes:
    return (importlib.resources.files(__package__) / "static" / name).read_bytes()


def _page(name: str, base: str) -> bytes:
    """An HTML page with the console's path put in (it is configuration)."""
    return _asset(name).replace(b"{{base}}", html.escape(base).encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _cookie(scope: Scope) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    headers += _SECURITY_HEADERS + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


async def _json(
    send: Send, status: int, value: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send(send, status, _json_bytes(value), b"application/json", extra)


async def _error(
    send: Send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _json(send, status, {"error": {"code": code, "message": message}}, extra)


async def _body(receive: Receive) -> bytes | None:
    """The request body, or ``None`` past :data:`_MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Login(msgspec.Struct, forbid_unknown_fields=True):
    password: str


def console_app(console: AdminConsole, sessions: Sessions, management: ASGIApp) -> ASGIApp:
    """``management`` with the console's routes under ``console.path`` in front of it."""
    prefix = console.path

    def cookie_header(scope: Scope, value: str, max_age: float) -> tuple[bytes, bytes]:
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        text = (
            f"{COOKIE}={value}; Path={prefix}; Max-Age={int(max_age)}; HttpOnly; "
            f"SameSite=Strict{secure}"
        )
        return (b"set-cookie", text.encode())

    def client_of(scope: Scope) -> str:
        return (scope.get("client") or ("-", 0))[0]

    def same_origin(scope: Scope) -> bool:
        origin = _header(scope, b"origin")
        if origin is None:
            return True  # curl and same-origin GETs send none; the CSRF token still applies
        host = _header(scope, b"host") or ""
        return origin in (f"http://{host}", f"https://{host}")

    async def login(scope: Scope, receive: Receive, send: Send) -> None:
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip()
        if content_type != "application/json":
            # A cross-site form cannot send JSON without a preflight the listener never allows.
            await _error(send, 415, "unsupported_media_type", "send the password as JSON")
            return
        raw = await _body(receive)
        try:
            attempt = msgspec.json.decode(raw or b"", type=_Login)
        except msgspec.DecodeError as exc:
            await _error(send, 400, "invalid_request", f"invalid login body: {exc}")
            return
        try:
            session = sessions.login(attempt.password, client_of(scope))
        except LoginLimited as limited:
            retry = str(max(1, math.ceil(limited.retry_after)))
            await _error(
                send,
                429,
                "rate_limited",
                "too many login attempts",
                [(b"retry-after", retry.encode())],
            )
            return
        if session is None:
            await _error(send, 401, "authentication", "wrong password")
            return
        body = {"csrf_token": session.csrf, "expires_in": sessions.ttl}
        await _json(send, 200, body, [cookie_header(scope, session.id, sessions.ttl)])

    async def controls_write(session: Session, receive: Receive, send: Send) -> None:
        raw = await _body(receive)
        if raw is None:
            await _error(send, 413, "payload_too_large", "the body is too large")
            return
        try:
            command = msgspec.json.decode(raw, type=COMMAND)
            entry = await console.controls.change(command, f"admin@{session.who}#{session.label}")
        except (msgspec.DecodeError, ControlError) as exc:
            await _error(send, 400, "invalid_request", str(exc))
            return
        await console.record_change(entry)
        await _json(send, 200, {"change": entry, "controls": console.controls.view()})

    async def read(name: str, scope: Scope, session: Session, send: Send) -> None:
        now = time.time()
        if name == "session":
            body: Any = {"csrf_token": session.csrf, "who": session.who, "replica": console.replica}
        elif name in ("overview", "targets", "clients"):
            merged = await console.merged(now)
            if name == "overview":
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                window = _window(query.get("window", ["3600"])[0])
                body = _views.overview(merged, console.live(merged), now, window)
            elif name == "targets":
                body = _views.targets(merged, console.target_live(), console.descriptors())
            else:
                body = _views.clients(merged)
        elif name == "recent":
            body = _views.recent(list(console.recent.items))
        elif name == "controls":
            body = console.controls.view()
        elif name == "audit":
            body = await console.shared.audit(200)
        else:
            await _error(send, 404, "not_found", "no such console API")
            return
        await _json(send, 200, body)

    async def api(name: str, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if name == "login" and method == "POST":
            await login(scope, receive, send)
            return
        session = sessions.get(_cookie(scope))
        if session is None:
            await _error(send, 401, "authentication", "log in first")
            return
        if method == "GET":
            await read(name, scope, session, send)
            return
        if method != "POST":
            await _error(send, 405, "method_not_allowed", f"{method} is not allowed here")
            return
        if not same_origin(scope) or not sessions.csrf_ok(session, _header(scope, b"x-csrf-token")):
            await _error(send, 403, "csrf", "missing or wrong X-CSRF-Token header")
            return
        if name == "logout":
            sessions.logout(session)
            await _json(send, 200, {"logged_out": True}, [cookie_header(scope, "", 0)])
        elif name == "controls":
            await controls_write(session, receive, send)
        else:
            await _error(send, 404, "not_found", "no such console API")

    async def page(rest: str, scope: Scope, send: Send) -> None:
        if rest == "":
            if sessions.get(_cookie(scope)) is None:
                await _send(
                    send, 303, b"", b"text/plain", [(b"location", f"{prefix}/login".encode())]
                )
            else:
                await _send(send, 200, _page("index.html", prefix), b"text/html; charset=utf-8")
        elif rest == "/login":
            await _send(send, 200, _page("login.html", prefix), b"text/html; charset=utf-8")
        elif rest.startswith("/static/") and rest[8:] in _ASSETS:
            await _send(send, 200, _asset(rest[8:]), _ASSETS[rest[8:]])
        else:
            await _error(send, 404, "not_found", "no such console page")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == prefix or path.startswith(prefix + "/")):
            await management(scope, receive, send)
            return
        rest = path[len(prefix) :]
        try:
            if rest.startswith("/api/"):
                await api(rest[5:], scope, receive, send)
            elif scope["method"] in ("GET", "HEAD"):
                await page(rest, scope, send)
            else:
                await _error(send, 405, "method_not_allowed", "pages are read with GET")
        except StateUnavailable as exc:
            await _error(send, 503, "unavailable", f"gateway state unavailable: {exc}")

    handler: Callable[[Scope, Receive, Send], Awaitable[None]] = app
    return handler


def _window(text: str) -> int:
    """The chart window in seconds (60 s to one hour), from ``?window=``."""
    try:
        value = int(text)
    except ValueError:
        return 3600
    return max(60, min(3600, value))
