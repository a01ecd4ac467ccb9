"""Registered endpoints: the public ``EndpointRef`` and the core's bookkeeping."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ._descriptors import Descriptor
from ._models import EndpointInfo
from ._policy import DEFAULT_TIMEOUTS
from .driver import Capabilities, Driver

__all__ = ["Endpoint", "EndpointRef"]


class EndpointRef(msgspec.Struct, frozen=True, kw_only=True):
    """A handle to a registered endpoint, returned by ``client.add``.

    Passing it as ``endpoint=`` is the same as passing its name.
    """

    name: str
    kind: str
    #: What the endpoint can do (the core refuses the rest before any I/O).
    capabilities: Capabilities = Capabilities()


class Endpoint:
    """One opened driver with the number of runs using it.

    A replaced or removed endpoint is *retired*: new runs no longer reach it,
    runs in flight finish on it, and it is closed when the last one ends.
    """

    __slots__ = (
        "_on_idle",
        "active",
        "descriptor",
        "driver",
        "info",
        "ref",
        "retired",
        "timeouts",
    )

    def __init__(
        self,
        name: str,
        descriptor: Descriptor,
        driver: Driver,
        on_idle: Callable[[Endpoint], None],
    ) -> None:
        self.descriptor = descriptor
        self.driver = driver
        self.info = EndpointInfo(kind=descriptor.kind, name=name)
        self.ref = EndpointRef(name=name, kind=descriptor.kind, capabilities=driver.capabilities)
        #: The driver's limits with the core's defaults filling unset phases.
        self.timeouts = driver.timeouts.merged_over(DEFAULT_TIMEOUTS)
        self.active = 0
        self.retired = False
        self._on_idle = on_idle

    def acquire(self) -> None:
        self.active += 1

    def release(self) -> None:
        self.active -= 1
        if self.retired and self.active == 0:
            self._on_idle(self)

    def retire(self) -> None:
        self.retired = True
        if self.active == 0:
            self._on_idle(self)
