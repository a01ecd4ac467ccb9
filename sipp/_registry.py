"""Finding drivers: entry points in the ``sipp.drivers`` group, by name, lazily.

Only the driver a descriptor asks for is imported, and only when an endpoint
is added (the client calls :func:`load_driver` in a worker thread so a slow
import never blocks the event loop). Built-in drivers are found exactly like
a third party's: plain ``importlib.metadata``, no plugin framework.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, NamedTuple

from ._errors import DriverLoadError, DriverNotFoundError
from .driver import SUPPORTED_API_VERSIONS, DriverFactory

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "DriverInfo",
    "installed_drivers",
    "load_driver",
    "register_driver",
    "unregister_driver",
]

ENTRY_POINT_GROUP = "sipp.drivers"

_lock = threading.Lock()
_registered: dict[str, DriverFactory] = {}
_loaded: dict[str, DriverFactory] = {}


class DriverInfo(NamedTuple):
    """One installed driver, as ``sipp drivers`` shows it."""

    name: str
    source: str  # the entry point's value, or "register_driver"
    distribution: str | None


def _check(name: str, factory: object) -> DriverFactory:
    versions = getattr(factory, "api_versions", None) or (getattr(factory, "api_version", None),)
    if not SUPPORTED_API_VERSIONS.intersection(versions):
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_API_VERSIONS))
        shown = ", ".join(repr(v) for v in versions)
        raise DriverLoadError(
            f"driver {name!r} implements driver API version {shown}; "
            f"this sipp supports versions {supported}",
            name=name,
        )
    if not isinstance(factory, DriverFactory):
        raise DriverLoadError(
            f"driver {name!r} is not a DriverFactory (needs api_version, "
            "descriptor_type and an async open())",
            name=name,
        )
    return factory


def register_driver(name: str, factory: DriverFactory) -> None:
    """Register ``factory`` under ``name`` without package metadata (tests, embedding apps).

    It takes precedence over an installed entry point of the same name.
    """
    checked = _check(name, factory)
    with _lock:
        _registered[name] = checked
        _loaded.pop(name, None)


def unregister_driver(name: str) -> None:
    """Undo :func:`register_driver`; unknown names are ignored."""
    with _lock:
        _registered.pop(name, None)
        _loaded.pop(name, None)


def _entry_points() -> list[EntryPoint]:
    # importlib.metadata costs tens of milliseconds: paid at add(), never at import.
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def installed_drivers() -> list[DriverInfo]:
    """Every driver that could be loaded, sorted by name (nothing is imported)."""
    found = {
        ep.name: DriverInfo(ep.name, ep.value, ep.dist.name if ep.dist else None)
        for ep in _entry_points()
    }
    with _lock:
        for name in _registered:
            found[name] = DriverInfo(name, "register_driver", None)
    return [found[name] for name in sorted(found)]


def load_driver(name: str) -> DriverFactory:
    """Import the driver ``name`` (blocking: call it off the event loop)."""
    with _lock:
        factory = _registered.get(name) or _loaded.get(name)
    if factory is not None:
        return factory
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        installed = [info.name for info in installed_drivers()]
        listing = ", ".join(installed) if installed else "none"
        raise DriverNotFoundError(
            f"no driver named {name!r} is installed (installed: {listing})",
            name=name,
            installed=installed,
        )
    try:
        loaded = matches[0].load()
    except Exception as exc:  # any import-time failure of a plugin is reported, not fatal
        raise DriverLoadError(
            f"driver {name!r} ({matches[0].value}) failed to load: {exc!r}", name=name
        ) from exc
    checked = _check(name, loaded)
    with _lock:
        _loaded[name] = checked
    return checked
