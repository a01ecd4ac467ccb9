"""The pool's descriptor: its members (each a full descriptor of any kind) and a strategy."""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec

from sipp import Descriptor, Timeouts

__all__ = ["PoolDescriptor", "PoolMember", "Strategy"]

Strategy = Literal["ordered", "weighted", "least_busy", "fastest"]


class PoolMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One deployment: a descriptor of any installed kind, with a name and a weight."""

    name: str
    descriptor: dict[str, Any]
    #: Share of requests under the ``weighted`` strategy (relative to the others).
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a pool member needs a name")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError("a pool member's weight must be a positive number")
        if self.descriptor.get("kind") == "pool":
            raise ValueError("a pool member may not itself be a pool")


class PoolDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Several deployments behind one endpoint.

    ``strategy`` picks the order members are tried in: ``ordered`` (fallback
    in the order given), ``weighted`` (shares by ``weight``), ``least_busy``
    (fewest requests in flight) or ``fastest`` (lowest moving average of time
    to first token). A failure worth retrying before the first token moves the
    request to the next member; ``max_failures`` failures in a row cool a
    member down for ``cooldown`` seconds, after which one request probes it.
    """

    kind: Literal["pool"] = "pool"
    members: list[PoolMember]
    strategy: Strategy = "ordered"
    #: Seconds a member that keeps failing is left out.
    cooldown: float = 30.0
    #: Consecutive failures that start a cooldown.
    max_failures: int = 3
    #: Seconds a member may take to its first token before the next one is tried
    #: (``None``: only the endpoint's own first-token limit applies).
    member_first_token_timeout: float | None = None
    timeout: float | Timeouts | None = None
    retries: int = 0

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a pool needs at least one member")
        names = [member.name for member in self.members]
        if len(set(names)) != len(names):
            raise ValueError("pool members need distinct names")
        if not (math.isfinite(self.cooldown) and self.cooldown >= 0):
            raise ValueError("cooldown must be a number of seconds >= 0")
        if self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        timeout = self.member_first_token_timeout
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise ValueError("member_first_token_timeout must be a positive number of seconds")
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
