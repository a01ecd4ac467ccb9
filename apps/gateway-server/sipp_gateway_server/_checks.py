"""The checks of meaning on a parsed configuration, and the two entry points.

* :func:`check_config` is ``sipp gateway check``: every problem with its
  location, without loading models, contacting providers or binding ports.
  A target's descriptor fields are validated against its driver's
  ``descriptor_type`` (importing the driver's module, never opening it).
  Unset secret variables and missing model files are warnings here.
* :func:`load_config` is what ``serve`` uses: the same checks, but an unset
  secret is an error, and the result carries the secrets (see :class:`Secrets`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import msgspec

from ._config import ConfigError, GatewayConfig, Problem, RateLimit, parse_config
from ._lines import Path, line_of
from ._pool_config import check_pool
from ._redis_url import check_redis_url
from ._targets import POOL_SIZE

#: Upstream connections of a target that does not say (``max_connections``): one full pool.
UPSTREAM_CONNECTIONS = POOL_SIZE

__all__ = ["Secrets", "check_config", "load_config", "parse_listen"]

_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
_MSGSPEC_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")


@dataclass(frozen=True)
class Secrets:
    """Values read from the environment; never printed (``repr`` hides them)."""

    tokens: dict[int, str] = field(default_factory=dict, repr=False)  # index -> token
    signing_keys: dict[str, str] = field(default_factory=dict, repr=False)  # key_id -> secret
    descriptors: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    #: Each target's decode slots as its driver's descriptor declares them
    #: (``n_parallel``, with the driver's own default); 0 when it has none.
    decode_slots: dict[str, int] = field(default_factory=dict)
    #: The admin console's password (``None``: the console is off).
    admin_password: str | None = field(default=None, repr=False)


def parse_listen(value: str) -> tuple[str, int]:
    """``"host:port"`` (``[::1]:80`` for IPv6) as ``(host, port)``; ``ValueError`` otherwise."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{value!r} is not host:port")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    return host.strip("[]"), port


class _Checker:
    def __init__(self, config: GatewayConfig, environ: Mapping[str, str], serving: bool) -> None:
        self.config = config
        self.environ = environ
        self.serving = serving
        self.problems: list[Problem] = []
        self.secrets = Secrets()

    def error(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, message))

    def warn(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, message, warning=True))

    def env(self, path: Path, variable: str) -> str | None:
        value = self.environ.get(variable)
        if value:
            return value
        message = f"environment variable {variable} is not set"
        (self.error if self.serving else self.warn)(path, message)
        return None

    def rate(self, path: Path, limit: RateLimit | None) -> None:
        if limit is None:
            return
        if not limit.requests_per_minute > 0:
            self.error((*path, "requests_per_minute"), "requests_per_minute must be positive")
        if limit.burst < 1:
            self.error((*path, "burst"), "burst must be at least 1")

    def run(self) -> None:
        self.server()
        self.routes()
        names = self.targets()
        self.tokens(names)
        self.signing_keys()
        self.security()
        self.state()
        self.admin()

    def server(self) -> None:
        server = self.config.server
        listens = {}
        for key in ("listen", "management_listen"):
            try:
                listens[key] = parse_listen(getattr(server, key))
            except ValueError as exc:
                self.error(("server", key), str(exc))
        same = len(listens) == 2 and listens["listen"] == listens["management_listen"]
        if same and listens["listen"][1] != 0:
            self.error(("server", "management_listen"), "must differ from listen")
        if server.max_request_bytes < 1:
            self.error(("server", "max_request_bytes"), "must be at least 1")
        if server.max_concurrent_requests < 1:
            self.error(("server", "max_concurrent_requests"), "must be at least 1")
        if server.drain_timeout < 0:
            self.error(("server", "drain_timeout"), "must not be negative")
        for key in ("header_timeout", "body_timeout", "keepalive_timeout"):
            value = getattr(server, key)
            if not 0 < value <= 3600:
                self.error(("server", key), "must be more than 0 and at most 3600 seconds")
        if server.max_connections < 1:
            self.error(("server", "max_connections"), "must be at least 1")
        elif server.max_connections > _descriptor_room():
            self.warn(
                ("server", "max_connections"),
                f"{server.max_connections} is more than this process's open-file limit "
                f"leaves for connections ({_descriptor_room()}); raise the limit (ulimit -n)",
            )
        for origin in server.allowed_origins:
            if origin != "*" and not _ORIGIN.match(origin):
                self.error(("server", "allowed_origins"), f"{origin!r} is not an origin")

    def routes(self) -> None:
        routes = msgspec.structs.asdict(self.config.routes)
        seen: dict[str, str] = {}
        for key, path in routes.items():
            if not path.startswith("/") or "?" in path or "#" in path:
                self.error(("routes", key), f"{path!r} must be an absolute path without ? or #")
            elif path in seen:
                self.error(("routes", key), f"{path!r} is also the {seen[path]} route")
            seen.setdefault(path, key)

    def targets(self) -> set[str]:
        from sipp import installed_drivers, load_driver

        installed = {info.name for info in installed_drivers()}
        names: set[str] = set()
        for index, target in enumerate(self.config.targets):
            path: Path = ("targets", index)
            if not target.name.strip():
                self.error((*path, "name"), "name must not be empty")
            if target.name in names:
                self.error((*path, "name"), f"target {target.name!r} is defined twice")
                continue
            names.add(target.name)
            if target.max_concurrent is not None and target.max_concurrent < 1:
                self.error((*path, "max_concurrent"), "must be at least 1")
            if target.max_tokens is not None and target.max_tokens < 1:
                self.error((*path, "max_tokens"), "must be at least 1")
            if target.max_seconds is not None and not 0 < target.max_seconds <= 86400:
                self.error((*path, "max_seconds"), "must be more than 0 and at most 86400")
            raw = self.config.descriptors[target.name]
            if target.kind == "pool" or target.deployments is not None:
                self.pool(path, target, raw, installed)
                continue
            driver = _driver_name(raw)
            if driver not in installed:
                listing = ", ".join(sorted(installed)) or "none"
                self.error(
                    (*path, "kind"),
                    f"no installed driver serves kind {target.kind!r} ({driver}); "
                    f"installed: {listing}",
                )
                continue
            try:
                factory = load_driver(driver)
            except Exception as exc:  # a broken plugin is a configuration problem here
                self.error((*path, "kind"), f"driver {driver!r} failed to load: {exc}")
                continue
            checked = self.descriptor(path, raw, factory.descriptor_type)
            if checked is not None:
                self.secrets.descriptors[target.name] = checked[0]
                slots = getattr(checked[1], "n_parallel", 0)
                self.secrets.decode_slots[target.name] = slots if isinstance(slots, int) else 0
        return names

    def pool(self, path: Path, target: Any, raw: dict[str, Any], installed: set[str]) -> None:
        from sipp import load_driver

        if target.kind != "pool":
            self.error((*path, "kind"), 'a target with deployments has kind = "pool"')
            return
        if "pool" not in installed:
            self.error((*path, "kind"), "the pool driver is not installed (pip install sipp-pool)")
            return
        checked = check_pool(
            self, path, raw, target.deployments, installed=installed, load=load_driver
        )
        if checked is not None:
            self.secrets.descriptors[target.name] = checked[0]
            self.secrets.decode_slots[target.name] = 0

    def descriptor(
        self, path: Path, raw: dict[str, Any], type_: type[Any]
    ) -> tuple[dict[str, Any], Any] | None:
        """The descriptor with its secrets resolved, and as the driver's type; or ``None``."""
        secret_fields: frozenset[str] = getattr(type_, "__secret_fields__", frozenset())
        for key in raw:
            if key in secret_fields:
                self.error(
                    (*path, key), f'secrets are never in the file: use {key}_env = "VARIABLE"'
                )
        resolved = self.resolve_env(path, raw)
        source = resolved.get("source")
        if isinstance(source, str) and "://" not in source:
            file = FilePath(source).expanduser()
            if not file.is_absolute():
                file = self.config.base_dir / file
            if not file.exists():
                self.warn((*path, "source"), f"model file {str(file)!r} does not exist")
            resolved["source"] = str(file)
        fields = getattr(type_, "__struct_fields__", ())
        if "max_connections" in fields and resolved.get("max_connections") is None:
            # A driver's own default (10 for the HTTP drivers) suits one
            # application; a gateway multiplexes many callers onto the target,
            # and past 10 concurrent requests they queued for a connection.
            resolved["max_connections"] = UPSTREAM_CONNECTIONS
        try:
            typed = msgspec.convert(resolved, type_, strict=True)
        except msgspec.ValidationError as exc:
            text = str(exc)
            match = _MSGSPEC_PATH.search(text)
            key = match.group(1).split(".")[0].split("[")[0] if match else ""
            if match:
                text = text[: match.start()]
            unknown = _UNKNOWN.search(text)
            if unknown and not key:
                key = unknown.group(1)
                text = f"unknown key {key!r} for kind {raw['kind']!r}"
            self.error((*path, key) if key else path, text.replace("`", ""))
            return None
        except (TypeError, ValueError) as exc:  # a descriptor's __post_init__
            self.error(path, str(exc))
            return None
        return resolved, typed

    def resolve_env(self, path: Path, raw: dict[str, Any]) -> dict[str, Any]:
        """``x_env = "VAR"`` becomes ``x = <value of VAR>``, in nested tables too."""
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key.endswith("_env") and isinstance(value, str):
                secret = self.env((*path, key), value)
                out[key[: -len("_env")]] = secret if secret is not None else "unset"
            elif isinstance(value, dict):
                out[key] = self.resolve_env((*path, key), value)
            else:
                out[key] = value
        return out

    def tokens(self, targets: set[str]) -> None:
        variables: dict[str, int] = {}
        for index, token in enumerate(self.config.tokens):
            path: Path = ("tokens", index)
            if not token.caller.strip():
                self.error((*path, "caller"), "caller must not be empty")
            if token.token_env in variables:
                self.error(
                    (*path, "token_env"),
                    f"{token.token_env} is also the token of tokens[{variables[token.token_env]}]",
                )
            variables.setdefault(token.token_env, index)
            for name in token.targets or ():
                if name not in targets:
                    self.error((*path, "targets"), f"unknown target {name!r}")
            self.rate((*path, "rate_limit"), token.rate_limit)
            value = self.env((*path, "token_env"), token.token_env)
            if value is not None:
                self.secrets.tokens[index] = value

    def signing_keys(self) -> None:
        seen: set[str] = set()
        for index, key in enumerate(self.config.signing_keys):
            path: Path = ("signing_keys", index)
            if not key.key_id or key.key_id in seen:
                self.error((*path, "key_id"), f"key_id {key.key_id!r} is empty or repeated")
            seen.add(key.key_id)
            if not key.max_lifetime > 0:
                self.error((*path, "max_lifetime"), "must be positive")
            self.rate((*path, "rate_limit"), key.rate_limit)
            secret = self.env((*path, "secret_env"), key.secret_env)
            if secret is not None:
                if len(secret.encode()) < 32:
                    self.error((*path, "secret_env"), "the signing secret must be 32 bytes or more")
                self.secrets.signing_keys[key.key_id] = secret

    def security(self) -> None:
        security = self.config.security
        for key in ("trusted_proxies", "blocklist"):
            for value in getattr(security, key):
                try:
                    ipaddress.ip_network(value, strict=False)
                except ValueError:
                    self.error(("security", key), f"{value!r} is not an IP address or CIDR")
        if security.client_ip != "peer" and not security.trusted_proxies:
            self.warn(
                ("security", "client_ip"),
                f"client_ip = {security.client_ip!r} without trusted_proxies: the header is "
                "never trusted and the peer address is used",
            )
        self.rate(("security", "ip_rate_limit"), security.ip_rate_limit)

    def state(self) -> None:
        state = self.config.state
        if state.backend == "redis":
            url = self.env(("state", "redis_url_env"), state.redis_url_env)
            if url is not None:
                errors, warnings = check_redis_url(url)
                for message in errors:
                    self.error(("state", "redis_url_env"), message)
                for message in warnings:
                    self.warn(("state", "redis_url_env"), message)
                object.__setattr__(self.secrets, "redis_url", url)
        if not 0 < state.timeout <= 60:
            self.error(("state", "timeout"), "must be more than 0 and at most 60 seconds")
        if not 1 <= state.lease_seconds <= 3600:
            self.error(("state", "lease_seconds"), "must be between 1 and 3600 seconds")
        elif state.timeout * 4 > state.lease_seconds / 3:
            self.error(
                ("state", "lease_seconds"),
                "must be at least 12 times [state] timeout (a renewal must fit between two)",
            )

    def admin(self) -> None:
        admin = self.config.admin
        path = admin.path
        if not path.startswith("/") or path == "/" or "?" in path or "#" in path:
            self.error(
                ("admin", "path"), f"{path!r} must be an absolute path (not /) without ? or #"
            )
        elif path.endswith("/"):
            self.error(("admin", "path"), f"{path!r} must not end with /")
        else:
            routes = msgspec.structs.asdict(self.config.routes)
            for key in ("health", "ready", "metrics", "status"):
                route = routes[key]
                if route == path or route.startswith(path + "/"):
                    self.error(("admin", "path"), f"{path!r} overlaps the {key} route {route!r}")
        if not 60 <= admin.session_ttl <= 7 * 86400:
            self.error(("admin", "session_ttl"), "must be between 60 seconds and 7 days")
        self.rate(("admin", "login_rate_limit"), admin.login_rate_limit)
        if admin.password_env is None:
            return
        password = self.environ.get(admin.password_env)
        if not password:
            self.warn(
                ("admin", "password_env"),
                f"environment variable {admin.password_env} is not set: the admin console is off",
            )
            return
        if len(password) < 12:
            self.error(
                ("admin", "password_env"), "the admin password must be at least 12 characters"
            )
        object.__setattr__(self.secrets, "admin_password", password)


def _descriptor_room() -> int:
    """File descriptors left for public connections under the hard limit.

    ``serve`` raises the soft limit towards the hard one for
    ``max_connections`` (``_serve.py``); only the hard limit is a bound.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return 1 << 30
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Keep room for the management listener, upstream connections, Redis, logs.
    return (1 << 30) if hard == resource.RLIM_INFINITY else max(0, hard - 256)


def _driver_name(raw: Mapping[str, Any]) -> str:
    kind = str(raw.get("kind"))
    if kind == "provider":
        return f"provider.{raw.get('provider')}"
    return kind


def _located(config: GatewayConfig, problems: list[Problem]) -> list[Problem]:
    out = []
    for p in problems:
        line = p.line if p.line is not None else line_of(config.lines, p.path)
        out.append(Problem(p.path, p.message, line, p.warning))
    return out


def check_text(
    text: str,
    *,
    base_dir: FilePath | None = None,
    environ: Mapping[str, str] | None = None,
    serving: bool = False,
) -> tuple[GatewayConfig, Secrets, list[Problem]]:
    """Every problem of a configuration given as text (warnings included)."""
    config, problems = parse_config(text, base_dir=base_dir)
    checker = _Checker(config, os.environ if environ is None else environ, serving)
    if not (problems and not config.lines):  # TOML syntax errors stop here
        checker.run()
    problems = _located(config, problems + checker.problems)
    problems.sort(key=lambda p: (p.line or 0, p.warning))
    return config, checker.secrets, problems


def check_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> list[Problem]:
    """``sipp gateway check``: every error and warning of the file at ``path``."""
    file = FilePath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem((), f"cannot read the configuration: {exc}")]
    return check_text(text, base_dir=file.resolve().parent, environ=environ)[2]


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> tuple[GatewayConfig, Secrets]:
    """The configuration and its secrets, for serving; :class:`ConfigError` lists any error."""
    file = FilePath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem((), f"cannot read the configuration: {exc}")
        raise ConfigError(str(file), [problem]) from exc
    config, secrets, problems = check_text(
        text, base_dir=file.resolve().parent, environ=environ, serving=True
    )
    if any(not p.warning for p in problems):
        raise ConfigError(str(file), problems)
    return config, secrets
