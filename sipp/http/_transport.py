"""The HTTP side every driver shares: base URLs, the pool, httpx errors, one exchange.

* :func:`validate_base_url` checks a configured URL once, at ``add()`` time.
* :func:`create_http_client` builds the endpoint's one pooled
  ``httpx.AsyncClient``; requests never get a client of their own.
* :func:`map_httpx_errors` translates httpx exceptions into ``sipp`` ones,
  keeping the most specific match and always chaining.
* :func:`request_timeout` is the httpx timeout of one attempt (connect only);
  :func:`build_json_post` builds one attempt's JSON POST with it.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Final, Literal

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
from .._telemetry import inject_headers as inject_trace_context
from ..driver import Call
from ._h1 import LeanTransport
from ._redact import Redactor

__all__ = [
    "HttpTransport",
    "build_json_post",
    "create_http_client",
    "inject_trace_context",
    "is_loopback_host",
    "map_httpx_errors",
    "request_timeout",
    "validate_base_url",
]

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
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
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


#: Which transport :func:`create_http_client` puts under httpx.
HttpTransport = Literal["lean", "httpx"]


def create_http_client(
    *,
    max_connections: int = 10,
    connect_timeout: float | None = 10.0,
    headers: Mapping[str, str] | None = None,
    trust_env: bool = True,
    http_transport: HttpTransport = "lean",
    http2: bool = False,
    uds: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The endpoint's one pooled client: ``max_connections`` kept alive, only ``connect`` timed.

    The read, write and pool phases have no httpx timeout: the core enforces
    first-token, idle and total limits with cancel scopes. Redirects are not
    followed (an API that redirects is misconfigured, and would leak the key).

    Under httpx runs sipp's :class:`LeanTransport` (HTTP/1.1 on anyio, an O(1)
    pool; see ``docs/http-transport.md``), unless ``http_transport="httpx"``
    or it cannot serve the case: ``http2``, a Unix socket (``uds``), or a proxy
    in the environment while ``trust_env``. Those keep httpx's own transport.
    An explicit ``transport`` is used as given.
    """
    if max_connections < 1:
        raise ConfigurationError("max_connections must be at least 1")
    if http_transport not in ("lean", "httpx"):
        raise ConfigurationError(
            f"http_transport must be 'lean' or 'httpx', not {http_transport!r}"
        )
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    if transport is None and _lean_fits(http_transport, http2, uds, trust_env):
        transport = LeanTransport(limits=limits, trust_env=trust_env)
    return httpx.AsyncClient(
        headers=dict(headers or {}),
        timeout=httpx.Timeout(None, connect=connect_timeout),
        limits=limits,
        follow_redirects=False,
        trust_env=trust_env,
        http2=http2,
        transport=transport
        if transport is not None or uds is None
        else httpx.AsyncHTTPTransport(limits=limits, trust_env=trust_env, http2=http2, uds=uds),
    )


def _lean_fits(choice: HttpTransport, http2: bool, uds: str | None, trust_env: bool) -> bool:
    if choice != "lean" or http2 or uds is not None:
        return False
    # httpx reads HTTP(S)_PROXY / ALL_PROXY (any case) when trusting the
    # environment; the lean transport speaks no proxy protocol, so step aside.
    proxies = urllib.request.getproxies() if trust_env else {}
    return not any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def request_timeout(timeouts: Timeouts) -> httpx.Timeout:
    """The httpx timeout for one attempt: only the connect phase."""
    return httpx.Timeout(None, connect=timeouts.connect)


_ACCEPT_SSE: Final = {"accept": "text/event-stream", "content-type": "application/json"}
_ACCEPT_JSON: Final = {"accept": "application/json", "content-type": "application/json"}


def build_json_post(
    client: httpx.AsyncClient,
    url: str,
    content: bytes,
    call: Call,
    *,
    stream: bool,
    request_id_header: str | None = "x-request-id",
    headers: Mapping[str, str] | None = None,
) -> httpx.Request:
    """One attempt's POST of a JSON body: the accept header for SSE or JSON, the
    run's id under ``request_id_header`` (``None`` sends none), extra ``headers``,
    and the attempt's connect timeout."""
    merged = dict(_ACCEPT_SSE if stream else _ACCEPT_JSON)
    if request_id_header:
        merged[request_id_header] = call.request_id
    if headers:
        merged.update(headers)
    inject_trace_context(merged)  # W3C traceparent of the run's span, when telemetry is on
    return client.build_request(
        "POST", url, content=content, headers=merged, timeout=request_timeout(call.timeouts)
    )
