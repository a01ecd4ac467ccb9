"""A contract-v1 driver still reads its free-form options under its v1 name.

Version 1 requests carried ``provider_options`` / ``endpoint_options`` fields;
version 2 hands every driver ``options``. A v1 driver that declared
``extras="provider_options"`` and reads ``request.provider_options`` must keep
working unchanged (docs/drivers.md promises it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from sipp import (
    ChatRequest,
    Descriptor,
    EmbedRequest,
    QueryRequest,
    SippClient,
    Timeouts,
    register_driver,
    unregister_driver,
)
from sipp.driver import Call, Capabilities, EmbeddingResult, OpenContext, TextResult


class _V1Descriptor(Descriptor, frozen=True, kw_only=True):
    pass


class _V1Driver:
    capabilities = Capabilities(query=True, chat=True, embed=True, extras="provider_options")
    timeouts = Timeouts()
    retries = 0

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        await call.emit(repr(request.provider_options))
        return TextResult()

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        await call.emit(repr(request.endpoint_options))
        return TextResult()

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        return EmbeddingResult(vectors=[[float(len(request.provider_options or {}))]])

    async def aclose(self) -> None:
        pass


class _V1Factory:
    api_version: ClassVar[int] = 1
    descriptor_type: ClassVar[Any] = _V1Descriptor

    async def open(self, descriptor: Any, context: OpenContext) -> _V1Driver:
        return _V1Driver()


@pytest.fixture
def v1_kind() -> Any:
    register_driver("v1opts", _V1Factory())
    yield "v1opts"
    unregister_driver("v1opts")


@pytest.mark.anyio
async def test_v1_driver_reads_provider_options_by_its_v1_name(v1_kind: str) -> None:
    async with SippClient() as client:
        await client.add("old", {"kind": v1_kind})
        answer = await client.query("hi", provider_options={"top_k": 3})
        assert answer.text == "{'top_k': 3}"
        chat = await client.chat([{"role": "user", "content": "hi"}], options={"a": 1})
        assert chat.text == "{'a': 1}"
        assert (await client.query("hi")).text == "None"
        embedded = await client.embed("x", provider_options={"a": 1, "b": 2})
        assert embedded.vectors == [[2.0]]
