"""``client.add(..., extensions=)`` reaches the driver as ``OpenContext.extensions``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from sipp import SippClient, load_driver, register_driver, unregister_driver
from sipp.driver import DRIVER_API_VERSION, Driver, OpenContext


class Recording:
    """The scripted driver's factory, noting the context each open() saw."""

    api_version: ClassVar[int] = DRIVER_API_VERSION

    def __init__(self) -> None:
        self.inner = load_driver("scripted")
        self.descriptor_type = self.inner.descriptor_type
        self.contexts: list[OpenContext] = []

    async def open(self, descriptor: Any, context: OpenContext) -> Driver:
        self.contexts.append(context)
        return await self.inner.open(descriptor, context)


@pytest.fixture
def recording() -> Any:
    factory = Recording()
    register_driver("scripted", factory)
    yield factory
    unregister_driver("scripted")


@pytest.mark.anyio
async def test_extensions_reach_the_driver_and_default_to_empty(recording: Recording) -> None:
    store = object()
    async with SippClient() as client:
        await client.add("with", {"kind": "scripted"}, extensions={"example": store})
        await client.add("without", {"kind": "scripted"})
        assert (await client.query("hi", endpoint="with")).text == "hi"
    with_, without = recording.contexts
    assert with_.extensions["example"] is store
    assert without.extensions == {}
