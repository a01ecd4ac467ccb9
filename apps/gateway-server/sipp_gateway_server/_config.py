"""The gateway's TOML configuration: its schema, and a strict loader that reports every problem.

The schema is a set of frozen msgspec Structs (the key names are fixed by the
spec; more may be added, none renamed). Loading is two passes:

1. *shape*: every key of every table is checked against its Struct's fields
   one by one (unknown key, wrong type, missing required key), so one run
   reports every problem, each with its line (see :mod:`._lines`);
2. *meaning*: cross-references and values (see :mod:`._checks`): duplicate
   target names, token allowlists naming unknown targets, driver kinds that
   are not installed, descriptor fields of each target's kind, CIDRs, ...

Secrets are never in the file: a key ending in ``_env`` names the environment
variable that holds the value, and is resolved only when the server starts.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import msgspec

from ._lines import Path, line_of, locate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ConfigError",
    "GatewayConfig",
    "Problem",
    "RateLimit",
    "AdminConfig",
    "TokenLimit",
    "RoutesConfig",
    "SecurityConfig",
    "ServerConfig",
    "SigningKeyConfig",
    "StateConfig",
    "TargetConfig",
    "TokenConfig",
    "parse_config",
]


class _Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class RateLimit(_Table, frozen=True, kw_only=True):
    """A token bucket: a sustained rate and the burst allowed above it."""

    requests_per_minute: float
    burst: int = 1


class TokenLimit(_Table, frozen=True, kw_only=True):
    """Model tokens a caller may use: per minute (a leaky bucket) and per UTC day."""

    tokens_per_minute: Annotated[int, msgspec.Meta(gt=0)] | None = None
    tokens_per_day: Annotated[int, msgspec.Meta(gt=0)] | None = None
    #: Reserved before a run that sets no ``max_tokens`` (settled from usage after).
    default_reservation: Annotated[int, msgspec.Meta(gt=0)] = 1024


class ServerConfig(_Table, frozen=True, kw_only=True):
    listen: str = "127.0.0.1:8080"
    management_listen: str = "127.0.0.1:9090"
    max_request_bytes: int = 1024 * 1024
    max_concurrent_requests: int = 256
    drain_timeout: float = 10.0
    allowed_origins: list[str] = []
    server: Literal["uvicorn", "hypercorn"] = "uvicorn"
    #: One JSON line per request on stderr (logger ``sipp.gateway.access``).
    access_log: bool = True
    #: Seconds a connection has to send a request's complete headers.
    header_timeout: float = 10.0
    #: Seconds a request has to send its whole body (after its headers).
    body_timeout: float = 30.0
    #: Seconds an idle keep-alive connection is kept open between requests.
    keepalive_timeout: float = 5.0
    #: Open public connections at most; past it new ones are closed at once.
    max_connections: int = 1000


class RoutesConfig(_Table, frozen=True, kw_only=True):
    query: str = "/v1/query"
    chat: str = "/v1/chat"
    embed: str = "/v1/embed"
    models: str = "/v1/models"
    health: str = "/healthz"
    ready: str = "/readyz"
    metrics: str = "/metrics"
    status: str = "/"


class TargetConfig(_Table, frozen=True, kw_only=True):
    """One public target. Keys other than these are descriptor fields of its kind."""

    name: str
    kind: str
    max_concurrent: int | None = None
    #: A pool's deployments (``kind = "pool"``): each a table with ``name``,
    #: ``kind``, ``weight`` and that kind's descriptor fields (see ``_pool_config``).
    deployments: list[dict[str, Any]] | None = None
    #: Most tokens one answer may have: a request's ``max_tokens`` is capped
    #: at it, and a stream that goes past it (an upstream ignoring it) is cut.
    max_tokens: int | None = None
    #: Longest a run may take, retries included (the run's ``total`` timeout).
    max_seconds: float | None = 600.0


class TokenConfig(_Table, frozen=True, kw_only=True):
    caller: str
    token_env: str
    targets: list[str] | None = None
    rate_limit: RateLimit | None = None
    token_limit: TokenLimit | None = None


class SigningKeyConfig(_Table, frozen=True, kw_only=True):
    key_id: str
    secret_env: str
    audience: str = "sipp-gateway"
    #: Longest lifetime (``exp - iat``, seconds) a minted token may claim.
    max_lifetime: float = 3600.0
    #: Per-caller limit for callers holding tokens signed with this key.
    rate_limit: RateLimit | None = None
    token_limit: TokenLimit | None = None


class SecurityConfig(_Table, frozen=True, kw_only=True):
    client_ip: Literal["peer", "x_forwarded_for", "x_real_ip"] = "peer"
    trusted_proxies: list[str] = []
    ip_rate_limit: RateLimit | None = None
    blocklist: list[str] = []


class StateConfig(_Table, frozen=True, kw_only=True):
    backend: Literal["memory", "redis"] = "memory"
    #: ``redis://``, ``rediss://`` (TLS; ``?ssl_ca_certs=...``) or ``unix:///path``.
    redis_url_env: str = "SIPP_REDIS_URL"
    key_prefix: str = "sipp:gateway:"
    #: Deadline (seconds) of every call to the shared state.
    timeout: float = 0.5
    #: When the state cannot answer: ``"open"`` counts in this process, ``"closed"`` is 503.
    rate_limits_on_failure: Literal["open", "closed"] = "open"
    admission_on_failure: Literal["open", "closed"] = "open"
    #: How long an admission slot outlives its replica (renewed while the request runs).
    lease_seconds: float = 30.0


class AdminConfig(_Table, frozen=True, kw_only=True):
    """The admin console on the management listener; off unless a password is configured."""

    path: str = "/admin"
    #: The environment variable holding the console password (unset = console off).
    password_env: str | None = None
    #: Seconds a session lives after its last use.
    session_ttl: float = 3600.0
    #: Login attempts allowed per client address.
    login_rate_limit: RateLimit = RateLimit(requests_per_minute=10, burst=5)


@dataclass(frozen=True)
class GatewayConfig:
    """A loaded configuration. ``targets`` keep their descriptor fields in ``descriptors``."""

    server: ServerConfig = field(default_factory=ServerConfig)
    routes: RoutesConfig = field(default_factory=RoutesConfig)
    targets: list[TargetConfig] = field(default_factory=list)
    descriptors: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: list[TokenConfig] = field(default_factory=list)
    signing_keys: list[SigningKeyConfig] = field(default_factory=list)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    state: StateConfig = field(default_factory=StateConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    #: The directory relative paths (a target's ``source``) are resolved from.
    base_dir: FilePath = field(default_factory=FilePath.cwd)
    #: Each target's index in the file's ``[[targets]]`` array, for locations.
    positions: dict[str, int] = field(default_factory=dict)
    lines: dict[Path, int] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Problem:
    """One finding of the loader: where, what, and whether it stops the server."""

    path: Path
    message: str
    line: int | None = None
    warning: bool = False

    def format(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        label = "warning" if self.warning else "error"
        section = _describe(self.path)
        prefix = f"{section}: " if section else ""
        return f"{where}: {label}: {prefix}{self.message}"


class ConfigError(Exception):
    """The configuration has errors; ``problems`` lists all of them (and the warnings)."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        text = "\n".join(p.format(filename) for p in problems if not p.warning)
        super().__init__(f"invalid gateway configuration:\n{text}")


def _describe(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_SECTIONS: dict[str, type[_Table]] = {
    "server": ServerConfig,
    "routes": RoutesConfig,
    "security": SecurityConfig,
    "state": StateConfig,
    "admin": AdminConfig,
}
_ARRAYS: dict[str, type[_Table]] = {
    "targets": TargetConfig,
    "tokens": TokenConfig,
    "signing_keys": SigningKeyConfig,
}


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}.get(
        type(value), "table" if isinstance(value, dict) else type(value).__name__
    )


def _check_table(
    data: object, schema: type[_Table], path: Path, problems: list[Problem], *, open_: bool = False
) -> dict[str, Any] | None:
    """Check ``data`` key by key against ``schema``; return it when it has no problem."""
    if not isinstance(data, dict):
        problems.append(Problem(path, f"must be a table, got {_type_name(data)}"))
        return None
    before = len(problems)
    fields = {f.name: f for f in msgspec.structs.fields(schema)}
    for key, value in data.items():
        info = fields.get(key)
        if info is None:
            if not open_:
                problems.append(Problem((*path, key), f"unknown key {key!r}"))
            continue
        if isinstance(info.type, type) and issubclass(info.type, _Table):
            _check_table(value, info.type, (*path, key), problems)
            continue
        nested = _nested_table(info.type)
        if nested is not None and isinstance(value, dict):
            _check_table(value, nested, (*path, key), problems)
            continue
        try:
            msgspec.convert(value, info.type)
        except msgspec.ValidationError as exc:
            problems.append(
                Problem((*path, key), f"{key!r} has the wrong type or value: {_explain(exc)}")
            )
    for name, info in fields.items():
        required = info.default is msgspec.NODEFAULT and info.default_factory is msgspec.NODEFAULT
        if required and name not in data:
            problems.append(Problem(path, f"missing required key {name!r}"))
    return data if len(problems) == before else None


def _nested_table(annotation: Any) -> type[_Table] | None:
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, _Table):
            return arg
    return None


def _explain(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    return text.replace("`", "").replace("$", "value")


def parse_config(
    text: str, *, base_dir: FilePath | None = None
) -> tuple[GatewayConfig, list[Problem]]:
    """Parse and check the *shape* of ``text``; ``problems`` lists what is wrong.

    When ``problems`` holds an error the returned configuration is the default
    one and must not be served. :mod:`._checks` adds the checks of meaning.
    """
    problems: list[Problem] = []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = getattr(exc, "msg", None) or str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        return GatewayConfig(), [Problem((), f"not valid TOML: {message}", line)]
    lines = locate(text)
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            checked = _check_table(value, _SECTIONS[key], (key,), problems)
            if checked is not None:
                sections[key] = msgspec.convert(checked, _SECTIONS[key])
        elif key in _ARRAYS:
            sections[key] = _check_array(key, value, problems)
        else:
            problems.append(Problem((key,), f"unknown section {key!r}"))
    descriptors: dict[str, dict[str, Any]] = {}
    positions: dict[str, int] = {}
    targets: list[TargetConfig] = []
    for index, target in sections.pop("targets", []):
        raw = data["targets"][index]
        fields = {k: v for k, v in raw.items() if k not in TargetConfig.__struct_fields__}
        if target.name not in descriptors:
            descriptors[target.name] = {**fields, "kind": target.kind}
            positions[target.name] = index
        targets.append(target)
    for name in ("tokens", "signing_keys"):
        if name in sections:
            sections[name] = [item for _, item in sections[name]]
    for problem_index, problem in enumerate(problems):
        if problem.line is None:
            problems[problem_index] = Problem(
                problem.path, problem.message, line_of(lines, problem.path), problem.warning
            )
    config = GatewayConfig(
        **sections,
        targets=targets,
        descriptors=descriptors,
        positions=positions,
        base_dir=base_dir or FilePath.cwd(),
        lines=lines,
    )
    return config, problems


def _check_array(key: str, value: object, problems: list[Problem]) -> list[tuple[int, Any]]:
    schema = _ARRAYS[key]
    if not isinstance(value, list):
        problems.append(Problem((key,), f"must be an array of tables ([[{key}]])"))
        return []
    items = []
    for index, item in enumerate(value):
        checked = _check_table(item, schema, (key, index), problems, open_=key == "targets")
        if checked is not None:
            known = {k: v for k, v in checked.items() if k in schema.__struct_fields__}
            items.append((index, msgspec.convert(known, schema)))
    return items
