"""The HTTP side every driver shares: base URLs, the pool, httpx errors, one exchange.

* :func:`validate_base_url` checks a configured URL once, at ``add()`` time.
* :func:`create_http_client` builds the endpoint's one pooled
  ``httpx.AsyncClient``; requests never get a client of their own.
* :func:`map_httpx_errors` translates httpx exceptions into ``sipp`` ones,
  keeping the most specific match and always chaining.
* :func:`open_response` sends one request and yields the response once its
  status is a success (an error status becomes a typed error); on a clean
  exit it finishes reading the body (bounded) so the connection goes back to
  the pool, on an error or a cancel it closes the stream at once.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Final

import anyio
import httpx

from .._errors import (
    ConfigurationError,
    ConnectError,
    ProtocolError,
    SippError,
    TimeoutError,
    TransportError,
)
from .._models import Timeouts
from ._classify import MAX_ERROR_BODY
from ._redact import Redactor

__all__ = [
    "DRAIN_MAX_BYTES",
    "DRAIN_MAX_SECONDS",
    "ErrorFactory",
    "create_http_client",
    "drain_response",
    "is_loopback_host",
    "map_httpx_errors",
    "open_response",
    "request_timeout",
    "validate_base_url",
]

#: After the terminal event, at most this much of the body is read to reuse the connection.
DRAIN_MAX_BYTES: Final = 64 * 1024
#: ... and for at most this long; past either bound the connection is closed instead.
DRAIN_MAX_SECONDS: Final = 1.0

#: Builds the typed error for a non-2xx answer from its status, headers and (bounded) body.
ErrorFactory = Callable[[int, httpx.Headers, bytes], SippError]

_DEFAULT_REDACTOR: Final = Redactor()


def _connect_timeout(exc: Exception, message: str) -> SippError:
    return TimeoutError(message, phase="connect")


def _read_timeout(exc: Exception, message: str) -> SippError:
    return TimeoutError(message, phase="idle")


def _config(exc: Exception, message: str) -> SippError:
    return ConfigurationError(message)


# Translation table; the most derived httpx class that matches wins.
_TRANSLATIONS: Final[list[tuple[type[Exception], Callable[[Exception, str], SippError]]]] = [
    (httpx.ConnectTimeout, _connect_timeout),
    (httpx.PoolTimeout, _connect_timeout),
    (httpx.ReadTimeout, _read_timeout),
    (httpx.WriteTimeout, _read_timeout),
    (httpx.TimeoutException, _read_timeout),
    (httpx.ConnectError, lambda exc, message: ConnectError(message)),
    (httpx.RemoteProtocolError, lambda exc, message: TransportError(message)),
    (httpx.LocalProtocolError, lambda exc, message: ProtocolError(message)),
    (httpx.DecodingError, lambda exc, message: ProtocolError(message)),
    (httpx.TooManyRedirects, lambda exc, message: ProtocolError(message)),
    (httpx.UnsupportedProtocol, _config),
    (httpx.InvalidURL, _config),
    (httpx.TransportError, lambda exc, message: TransportError(message)),
]


def _translate(exc: Exception, redactor: Redactor, upstream: str) -> SippError | None:
    best: tuple[type[Exception], Callable[[Exception, str], SippError]] | None = None
    for httpx_class, build in _TRANSLATIONS:
        if isinstance(exc, httpx_class) and (best is None or issubclass(httpx_class, best[0])):
            best = (httpx_class, build)
    if best is None:
        return None
    detail = redactor.redact(str(exc)) or type(exc).__name__
    return best[1](exc, f"{upstream}: {type(exc).__name__}: {detail}")


@contextmanager
def map_httpx_errors(
    redactor: Redactor | None = None, *, upstream: str = "upstream"
) -> Iterator[None]:
    """Re-raise httpx exceptions as ``sipp`` errors (``raise ... from exc``).

    ``ConnectTimeout`` becomes ``TimeoutError(phase="connect")``,
    ``ConnectError`` a ``ConnectError``, a read error or a broken stream a
    ``TransportError``, a URL problem a ``ConfigurationError``. Messages pass
    through ``redactor``. Other exceptions pass unchanged.
    """
    try:
        yield
    except httpx.HTTPError as exc:
        translated = _translate(exc, redactor or _DEFAULT_REDACTOR, upstream)
        if translated is None:
            raise
        raise translated from exc


_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, brackets allowed) is this machine."""
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def validate_base_url(
    url: str, *, allow_insecure_http: bool = False, field: str = "base_url"
) -> str:
    """``url`` checked and without its trailing slash, or ``ConfigurationError``.

    It must be absolute ``http``/``https`` with a host, without userinfo,
    query or fragment; plain ``http`` is refused for a non-loopback host
    unless ``allow_insecure_http``. Error messages never repeat userinfo.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ConfigurationError(f"{field} is not a valid URL") from exc
    shown = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")
    )
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(f"{field} must be an absolute http or https URL, got {shown!r}")
    if not host:
        raise ConfigurationError(f"{field} has no host: {shown!r}")
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"{field} must not contain credentials (user:password@); "
            "use the descriptor's api_key or headers"
        )
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise ConfigurationError(f"{field} must not have a query or fragment: {shown!r}")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(host):
        raise ConfigurationError(
            f"{field} {shown!r} uses plain http to a non-loopback host; use https, "
            "or set allow_insecure_http=True to accept sending secrets in clear text"
        )
    return url.rstrip("/")


def create_http_client(
    *,
    max_connections: int = 10,
    connect_timeout: float | None = 10.0,
    headers: Mapping[str, str] | None = None,
    trust_env: bool = True,
) -> httpx.AsyncClient:
    """The endpoint's one pooled client: ``max_connections`` kept alive, only ``connect`` timed.

    The read, write and pool phases have no httpx timeout: the core enforces
    first-token, idle and total limits with cancel scopes. Redirects are not
    followed (an API that redirects is misconfigured, and would leak the key).
    """
    if max_connections < 1:
        raise ConfigurationError("max_connections must be at least 1")
    return httpx.AsyncClient(
        headers=dict(headers or {}),
        timeout=httpx.Timeout(None, connect=connect_timeout),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
        trust_env=trust_env,
    )


def request_timeout(timeouts: Timeouts) -> httpx.Timeout:
    """The httpx timeout for one attempt: only the connect phase."""
    return httpx.Timeout(None, connect=timeouts.connect)


async def drain_response(
    response: httpx.Response,
    *,
    max_bytes: int = DRAIN_MAX_BYTES,
    max_seconds: float = DRAIN_MAX_SECONDS,
) -> None:
    """Read what is left of ``response`` (bounded) and close it, so its connection is reused."""
    try:
        if not response.is_stream_consumed:
            received = 0
            with anyio.move_on_after(max_seconds):
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received > max_bytes:
                        break
    except httpx.HTTPError:
        pass  # the body is not ours to report any more; the connection is just dropped
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


async def _read_error_body(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(DRAIN_MAX_SECONDS):
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
    return b"".join(chunks)[:MAX_ERROR_BODY]


@asynccontextmanager
async def open_response(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    on_error: ErrorFactory,
    redactor: Redactor | None = None,
    upstream: str = "upstream",
) -> AsyncIterator[httpx.Response]:
    """Send ``request`` streaming; yield the response if its status is 2xx.

    A non-2xx answer becomes ``on_error(status, headers, body)`` (body bounded
    to 64 KiB). A clean exit drains the rest of the body (bounded, see
    :func:`drain_response`); an exception or a cancel closes it at once.
    """
    with map_httpx_errors(redactor, upstream=upstream):
        response = await client.send(request, stream=True)
    try:
        if response.status_code >= 300:
            with map_httpx_errors(redactor, upstream=upstream):
                body = await _read_error_body(response)
            raise on_error(response.status_code, response.headers, body)
        yield response
    except BaseException:
        # Cancelled or failed mid-body: do not wait for the rest, drop the connection.
        with anyio.CancelScope(shield=True):
            await response.aclose()
        raise
    await drain_response(response)
