"""What ``check`` says about a Redis URL, before anything connects to it.

The forms coredis accepts, and the gateway with it:

* ``redis://[[user]:password@]host[:port][/db]`` — TCP;
* ``rediss://...`` — TCP with TLS; the query may name ``ssl_ca_certs``,
  ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs`` (``none``,
  ``optional``, ``required``) and ``ssl_check_hostname`` (``true``/``false``);
* ``unix://[[user]:password@]/path/to/redis.sock[?db=N]`` — a unix socket.

Percent-escapes in the user, password and path are decoded. Messages never
quote the URL (it may hold a password).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["check_redis_url"]

_SCHEMES = ("redis", "rediss", "unix")
_TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_TLS_OPTIONS = (*_TLS_FILES, "ssl_cert_reqs", "ssl_check_hostname")
_OPTIONS = ("db", "client_name", "connect_timeout", "stream_timeout", "max_idle_time")
_BOOLS = ("true", "false", "1", "0", "yes", "no")


def check_redis_url(url: str) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` for ``url``; both empty when it is fine."""
    errors: list[str] = []
    warnings: list[str] = []
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return [f"the Redis URL is malformed ({_safe(exc)})"], []
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        shown = f"{scheme}://" if scheme else "no scheme"
        return [f"the Redis URL must start with redis://, rediss:// or unix:// (got {shown})"], []
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        return ["the Redis URL's query string is malformed"], []
    for name, values in query.items():
        if len(values) > 1:
            errors.append(f"the Redis URL sets {name!r} more than once")
        value = values[-1]
        if name in _TLS_OPTIONS and scheme != "rediss":
            errors.append(f"{name!r} needs a rediss:// (TLS) URL")
        elif name not in _OPTIONS and name not in _TLS_OPTIONS:
            errors.append(f"unknown Redis URL parameter {name!r}")
        elif name == "db" and not value.isdigit():
            errors.append("the Redis database ('db') must be a non-negative integer")
        elif name == "ssl_cert_reqs" and value not in ("none", "optional", "required"):
            errors.append("ssl_cert_reqs must be none, optional or required")
        elif name == "ssl_check_hostname" and value.lower() not in _BOOLS:
            errors.append("ssl_check_hostname must be true or false")
        elif name in ("connect_timeout", "stream_timeout", "max_idle_time"):
            errors += _positive(name, value)
        elif name in _TLS_FILES and not Path(unquote(value)).expanduser().is_file():
            warnings.append(f"{name} file does not exist")
    if scheme == "unix":
        path = unquote(parts.path)
        if not path or path == "/":
            errors.append("a unix:// Redis URL needs the socket's path (unix:///path/to.sock)")
        elif parts.hostname:
            errors.append("a unix:// Redis URL has no host: write unix:///path/to.sock")
        elif not Path(path).exists():
            warnings.append(f"the Redis socket {path!r} does not exist (yet)")
        return errors, warnings
    if not parts.hostname:
        errors.append(f"a {scheme}:// Redis URL needs a host")
    if port is not None and not 1 <= port <= 65535:
        errors.append("the Redis port must be between 1 and 65535")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        errors.append("the Redis database (the URL's path) must be a non-negative integer")
    return errors, warnings


def _positive(name: str, value: str) -> list[str]:
    try:
        if float(value) > 0:
            return []
    except ValueError:
        pass
    return [f"{name} must be a positive number"]


def _safe(error: Exception) -> str:
    # urllib's messages name the offending part, not the whole URL; keep them short.
    return str(error).split(":")[0][:80]
