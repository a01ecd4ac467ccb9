"""Live controls: rate limits, the blocklist, concurrency and draining, changed at runtime.

The configuration gives the starting values; the console stores *overrides*
(field -> JSON value) in :mod:`._shared` and every replica applies
"configuration overlaid with overrides" to its :class:`.._limits.Limits` and
:class:`.._auth.ClientAddress`, so the next request on the public listener
sees the change. Override fields:

* ``ip_rate_limit``, ``caller:<name>``: ``{"requests_per_minute", "burst"}``
  or ``"none"`` (no limit);
* ``global``: an integer; ``target:<name>``: an integer or ``"none"``;
* ``drain:<name>``: ``true`` while the target is drained;
* ``block:<network>``: ``true`` (added) or ``false`` (a configured entry removed).

A command is one of the tagged structs below (``{"control": ..., ...}``);
``"value": "default"`` removes an override. Every change returns an audit
entry (who, what, before, after) that the caller stores and logs.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from .._config import RateLimit

if TYPE_CHECKING:
    from .._auth import ClientAddress
    from .._config import GatewayConfig
    from .._limits import Limits
    from ._shared import Shared

__all__ = ["COMMAND", "Command", "Controls", "ControlError"]


class ControlError(Exception):
    """A command that names an unknown target or a bad address (400, the message is safe)."""


class _Limit(msgspec.Struct, forbid_unknown_fields=True):
    requests_per_minute: float
    burst: int = 1


class _Base(msgspec.Struct, forbid_unknown_fields=True, tag_field="control"):
    pass


LimitValue = _Limit | Literal["none", "default"]


class IpRateLimit(_Base, tag="ip_rate_limit"):
    value: LimitValue


class CallerRateLimit(_Base, tag="caller_rate_limit"):
    caller: str
    value: LimitValue


class BlocklistAdd(_Base, tag="blocklist_add"):
    address: str


class BlocklistRemove(_Base, tag="blocklist_remove"):
    address: str


class GlobalConcurrency(_Base, tag="max_concurrent_requests"):
    value: int | Literal["default"]


class TargetConcurrency(_Base, tag="target_max_concurrent"):
    target: str
    value: int | Literal["none", "default"]


class Drain(_Base, tag="drain"):
    target: str
    value: bool


Command = (
    IpRateLimit
    | CallerRateLimit
    | BlocklistAdd
    | BlocklistRemove
    | GlobalConcurrency
    | TargetConcurrency
    | Drain
)
COMMAND: Any = Command  # for msgspec.convert / decode


def _limit_view(limit: RateLimit | None) -> dict[str, Any] | None:
    if limit is None:
        return None
    return {"requests_per_minute": limit.requests_per_minute, "burst": limit.burst}


def _limit(value: Any, default: RateLimit | None) -> RateLimit | None:
    if value is None:
        return default
    if value == "none":
        return None
    return RateLimit(requests_per_minute=value["requests_per_minute"], burst=value["burst"])


def _network(address: str) -> str:
    try:
        return str(ipaddress.ip_network(address.strip(), strict=False))
    except ValueError:
        raise ControlError(f"{address!r} is not an IP address or CIDR") from None


def _check_limit(value: Any) -> Any:
    if isinstance(value, _Limit):
        if not 0 < value.requests_per_minute <= 1e9 or not 1 <= value.burst <= 1_000_000:
            raise ControlError("requests_per_minute must be positive and burst at least 1")
        return {"requests_per_minute": value.requests_per_minute, "burst": value.burst}
    return None if value == "default" else value


class Controls:
    """The effective live settings of this replica, and changing them through the shared store."""

    def __init__(
        self,
        config: GatewayConfig,
        limits: Limits,
        addresses: ClientAddress,
        shared: Shared,
    ) -> None:
        self._config = config
        self._limits = limits
        self._addresses = addresses
        self._shared = shared
        self._targets = {t.name: t for t in config.targets}
        self.version = -1
        self.overrides: dict[str, Any] = {}

    # -- what is in effect ------------------------------------------------------------

    def _caller_defaults(self) -> dict[str, RateLimit | None]:
        return {token.caller: token.rate_limit for token in self._config.tokens}

    def blocklist(self) -> list[str]:
        configured = [_network(n) for n in self._config.security.blocklist]
        out = [n for n in configured if self.overrides.get(f"block:{n}") is not False]
        added = [f[6:] for f, v in self.overrides.items() if f.startswith("block:") and v is True]
        return out + sorted(n for n in added if n not in out)

    def view(self) -> dict[str, Any]:
        """Every control's effective value (the console's controls page)."""
        o = self.overrides
        callers = self._caller_defaults()
        for field in o:
            if field.startswith("caller:"):  # a caller with no token of its own (a minted ``sub``)
                callers.setdefault(field[7:], None)
        return {
            "version": self.version,
            "ip_rate_limit": _limit_view(
                _limit(o.get("ip_rate_limit"), self._config.security.ip_rate_limit)
            ),
            "caller_rate_limits": {
                name: _limit_view(_limit(o.get(f"caller:{name}"), default))
                for name, default in sorted(callers.items())
            },
            "max_concurrent_requests": o.get("global", self._config.server.max_concurrent_requests),
            "targets": {
                name: {
                    "max_concurrent": self._target_limit(name),
                    "draining": bool(o.get(f"drain:{name}")),
                }
                for name in self._targets
            },
            "blocklist": self.blocklist(),
            "overridden": sorted(o),
        }

    def _target_limit(self, name: str) -> int | None:
        value = self.overrides.get(f"target:{name}", self._targets[name].max_concurrent)
        return None if value == "none" else value

    def apply(self, version: int, overrides: dict[str, Any]) -> None:
        """Make ``overrides`` the live settings of this replica (limits and blocklist)."""
        self.version = version
        self.overrides = overrides
        o = overrides
        callers = {
            name[7:]: _limit(value, None) for name, value in o.items() if name.startswith("caller:")
        }
        self._limits.set_limits(
            ip_rate_limit=_limit(o.get("ip_rate_limit"), self._config.security.ip_rate_limit),
            max_concurrent_requests=o.get("global", self._config.server.max_concurrent_requests),
            per_target={name: self._target_limit(name) for name in self._targets},
        )
        self._limits.caller_limits = callers
        self._limits.drained = frozenset(
            name[6:] for name, value in o.items() if name.startswith("drain:") and value
        )
        self._addresses.set_blocklist(self.blocklist())

    async def sync(self) -> None:
        """Re-read the shared overrides and apply them when their version moved."""
        version, overrides = await self._shared.controls()
        if version != self.version:
            self.apply(version, overrides)

    # -- changing them ----------------------------------------------------------------

    def _field(self, command: Any) -> tuple[str, Any, tuple[str, ...]]:
        """``(override field, new value, subject)`` of a validated command."""
        if isinstance(command, IpRateLimit):
            return "ip_rate_limit", _check_limit(command.value), ("ip_rate_limit",)
        if isinstance(command, CallerRateLimit):
            caller = command.caller
            if not 0 < len(caller) <= 200 or not caller.isprintable():
                raise ControlError("caller must be 1 to 200 printable characters")
            subject = ("caller_rate_limits", caller)
            return f"caller:{caller}", _check_limit(command.value), subject
        if isinstance(command, (BlocklistAdd, BlocklistRemove)):
            network = _network(command.address)
            configured = network in {_network(n) for n in self._config.security.blocklist}
            if isinstance(command, BlocklistAdd):
                return f"block:{network}", None if configured else True, ("blocklist",)
            return f"block:{network}", False if configured else None, ("blocklist",)
        if isinstance(command, GlobalConcurrency):
            value = command.value
            if value != "default" and not 1 <= value <= 1_000_000:
                raise ControlError("max_concurrent_requests must be between 1 and 1000000")
            return "global", None if value == "default" else value, ("max_concurrent_requests",)
        name = command.target
        if name not in self._targets:
            raise ControlError(f"unknown target {name!r}")
        if isinstance(command, TargetConcurrency):
            limit = command.value
            if isinstance(limit, int) and not 1 <= limit <= 1_000_000:
                raise ControlError("max_concurrent must be between 1 and 1000000")
            new = None if limit == "default" else limit
            return f"target:{name}", new, ("targets", name, "max_concurrent")
        return f"drain:{name}", True if command.value else None, ("targets", name, "draining")

    def _read(self, subject: tuple[str, ...]) -> Any:
        value: Any = self.view()
        for part in subject:
            value = value.get(part) if isinstance(value, dict) else None
        return value

    async def change(self, command: Any, who: str) -> dict[str, Any]:
        """Apply ``command`` on every replica; the audit entry (who, what, before, after)."""
        field, value, subject = self._field(command)
        await self.sync()  # start from what the other replicas see
        before = self._read(subject)
        await self._shared.set_control(field, value)
        await self.sync()
        return {
            "time": round(time.time(), 3),
            "who": who,
            "action": msgspec.to_builtins(command),
            "subject": ".".join(subject),
            "before": before,
            "after": self._read(subject),
        }
