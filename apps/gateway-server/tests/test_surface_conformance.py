"""sipp's own provider drivers pointed at the gateway's surfaces pass the conformance kit.

``sipp-openai``'s ``openai_compatible`` driver speaks to ``/v1/chat/completions``,
``/v1/completions`` and ``/v1/embeddings``; ``sipp-anthropic`` to ``/v1/messages``.
The target behind both is the ``rich`` test driver, echoing the kit's prompt
word by word every 10 ms (so cancellation has a stream to cut). asyncio runs
against uvicorn, trio against hypercorn.
"""

from __future__ import annotations

from typing import Any

import pytest
from gwtest import TOKEN, Gateway

from sipp.testing.conformance import DriverConformance


class TestOpenAICompatibleThroughTheGateway(DriverConformance):
    @pytest.fixture
    def descriptor(self, surface_gateway: Gateway) -> dict[str, Any]:
        return {
            "kind": "provider",
            "provider": "openai_compatible",
            "model": "steady",
            "base_url": f"{surface_gateway.url}/v1",
            "api_key": TOKEN,
        }


class TestAnthropicThroughTheGateway(DriverConformance):
    @pytest.fixture
    def descriptor(self, surface_gateway: Gateway) -> dict[str, Any]:
        return {
            "kind": "provider",
            "provider": "anthropic",
            "model": "steady",
            "base_url": f"{surface_gateway.url}/v1",
            "api_key": TOKEN,
        }
