"""Named endpoints for the ``sipp`` command, kept in a TOML file in the user's config dir.

The file holds descriptors, never secrets: a secret is named by the
environment variable that holds it (``api_key_env = "ANTHROPIC_API_KEY"``,
``authentication.value_env = "SIPP_TOKEN"``) and read when the endpoint is
used. A literal secret in the file, or a key where a variable name belongs,
is refused with an error that says what to do instead::

    [endpoints.claude]
    kind = "provider"
    provider = "anthropic"
    model = "claude-sonnet-4-5"
    api_key_env = "ANTHROPIC_API_KEY"

No dependency beyond the TOML reader (``tomllib``, or ``tomli`` before 3.11)
and ``tomli-w`` for writing, both in the ``cli`` extra.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_NAME",
    "EndpointsFileError",
    "config_dir",
    "endpoints_path",
    "load_endpoints",
    "resolve_descriptor",
    "save_endpoints",
    "validate_entry",
]

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: Keys that would hold a secret; the file stores ``<key>_env`` instead.
_SECRET_KEYS = frozenset({"api_key", "value", "token", "password", "secret"})
#: Header names whose values are credentials; such headers belong in an env var too.
_SECRET_HEADER = re.compile(r"authorization|api[-_]?key|token|secret|cookie", re.IGNORECASE)
_HEADER = """\
# Named endpoints for the `sipp` command (`sipp endpoints add|list|remove`).
# Secrets are never stored here: `api_key_env` and `authentication.value_env`
# name the environment variables that hold them.
"""


class EndpointsFileError(Exception):
    """The endpoints file (or an entry for it) is unusable; the message says why and where."""


def config_dir() -> Path:
    """Where the ``sipp`` command keeps its configuration.

    ``$SIPP_CONFIG_DIR`` wins; otherwise the platform's convention:
    ``$XDG_CONFIG_HOME/sipp`` (default ``~/.config/sipp``) on Linux and other
    Unixes, ``~/Library/Application Support/sipp`` on macOS, ``%APPDATA%\\sipp``
    on Windows.
    """
    explicit = os.environ.get("SIPP_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    home = Path.home()
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        return (Path(appdata) if appdata else home / "AppData" / "Roaming") / "sipp"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "sipp"
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative path is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"
    return base / "sipp"


def endpoints_path() -> Path:
    return config_dir() / "endpoints.toml"


def _check_env_name(where: str, name: object) -> None:
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
        shown = "a non-string" if not isinstance(name, str) else "that value"
        raise EndpointsFileError(
            f"{where}: must be the NAME of an environment variable (letters, digits, "
            f"underscores), and {shown} is not one; put the secret in an environment "
            "variable and give its name"
        )
    if _looks_like_a_secret(name):
        raise EndpointsFileError(
            f"{where}: this looks like a key, not an environment variable name; secrets are "
            "never stored in the endpoints file: export it (e.g. MY_API_KEY=...) and give "
            "the variable's name"
        )


def _looks_like_a_secret(name: str) -> bool:
    # Variable names are words joined by underscores; a long run of mixed-case
    # letters and digits without one is a token pasted in the wrong place.
    return "_" not in name and len(name) >= 24 and any(c.isdigit() for c in name)


def validate_entry(name: str, entry: object) -> dict[str, Any]:
    """Check one endpoint entry; returns it as a plain dict. Raises ``EndpointsFileError``."""
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name.replace("-", "_")):
        raise EndpointsFileError(
            f"endpoint name {name!r}: use letters, digits, '-' and '_' (at most 128)"
        )
    if not isinstance(entry, Mapping):
        raise EndpointsFileError(f"endpoint {name!r}: must be a table")
    kind = entry.get("kind")
    if not isinstance(kind, str) or not kind:
        raise EndpointsFileError(f"endpoint {name!r}: needs a string 'kind'")
    _check_no_secrets(f"endpoint {name!r}", entry)
    return dict(entry)


def _check_no_secrets(where: str, table: Mapping[str, Any]) -> None:
    for key, value in table.items():
        if not isinstance(key, str):
            raise EndpointsFileError(f"{where}: keys must be strings")
        path = f"{where}: {key}"
        if key in _SECRET_KEYS:
            raise EndpointsFileError(
                f"{path}: secrets are never stored in the endpoints file; "
                f'use {key}_env = "VARIABLE_NAME" and export the secret in that variable'
            )
        if key.endswith("_env"):
            _check_env_name(path, value)
        elif key == "headers" and isinstance(value, Mapping):
            for header in value:
                if _SECRET_HEADER.search(str(header)):
                    raise EndpointsFileError(
                        f"{path}.{header}: a credential header is a secret; use "
                        "api_key_env or authentication.value_env instead"
                    )
        elif isinstance(value, Mapping):
            _check_no_secrets(f"{where}: {key}", value)


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover  (3.10)
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EndpointsFileError(f"not valid TOML: {exc}") from exc


def load_endpoints(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The endpoints in ``path`` (default: the user's file); a missing file is empty."""
    path = path or endpoints_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise EndpointsFileError(f"{path}: cannot read: {exc}") from exc
    try:
        data = _toml_loads(text)
        unknown = sorted(set(data) - {"endpoints"})
        if unknown:
            raise EndpointsFileError(f"unknown top-level key {unknown[0]!r} (only [endpoints.*])")
        table = data.get("endpoints", {})
        if not isinstance(table, dict):
            raise EndpointsFileError("'endpoints' must be a table of tables")
        return {name: validate_entry(name, entry) for name, entry in table.items()}
    except EndpointsFileError as exc:
        raise EndpointsFileError(f"{path}: {exc}") from None


def save_endpoints(endpoints: Mapping[str, Mapping[str, Any]], path: Path | None = None) -> Path:
    """Write ``endpoints`` (validated again) atomically: a crash never leaves half a file."""
    import tomli_w

    path = path or endpoints_path()
    checked = {name: validate_entry(name, entry) for name, entry in endpoints.items()}
    text = _HEADER + "\n" + tomli_w.dumps({"endpoints": checked})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def resolve_descriptor(
    name: str, entry: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The descriptor to hand to ``client.add``: every ``<key>_env`` replaced by the secret."""
    environ = os.environ if environ is None else environ
    return _resolve(f"endpoint {name!r}", entry, environ)


def _resolve(where: str, table: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in table.items():
        if key.endswith("_env") and isinstance(value, str):
            secret = environ.get(value)
            if not secret:
                raise EndpointsFileError(
                    f"{where}: the environment variable {value} ({key}) is not set"
                )
            resolved[key.removesuffix("_env")] = secret
        elif isinstance(value, Mapping):
            resolved[key] = _resolve(f"{where}: {key}", value, environ)
        else:
            resolved[key] = value
    return resolved
