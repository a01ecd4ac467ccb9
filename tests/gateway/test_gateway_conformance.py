"""The core's conformance kit against the gateway driver.

The server (the provider-route example, backed by a scripted endpoint) runs in
a ``ThreadedServer``, so the kit's task and thread accounting sees only the
client side.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sipp.testing import ThreadedServer
from sipp.testing.conformance import DriverConformance, KitAnswer

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from gateway_provider_route import create_app

UPSTREAM = {
    "kind": "scripted",
    "tokens": [f"word{i} " for i in range(12)],
    "token_delay": 0.003,
    "embedding": [0.5, -0.25],
}


#: A scripted upstream whose turns (by the number of assistant messages so far)
#: give the kit's rich checks what they look for, through the gateway wire.
RICH_UPSTREAM = {
    "kind": "scripted",
    "embedding": [0.5, 0.25],
    "turns": [
        {
            "reply": "Let me look that up.",
            "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
        },
        {"reasoning": "Three times seventeen is fifty-one.", "reply": "It is 51."},
        {"reply_json": {"answer": "4"}},
    ],
}


@pytest.fixture(scope="module")
def route_server() -> Iterator[str]:
    with ThreadedServer(create_app(UPSTREAM)) as server:
        yield server.url


@pytest.fixture(scope="module")
def rich_route_server() -> Iterator[str]:
    with ThreadedServer(create_app(RICH_UPSTREAM)) as server:
        yield server.url


def _turns(before: int, question: str) -> list[dict[str, str]]:
    """A conversation with ``before`` assistant turns: the script answers with that turn."""
    messages = []
    for _ in range(before):
        messages += [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    return [*messages, {"role": "user", "content": question}]


class TestGatewayDriverConforms(DriverConformance):
    @pytest.fixture
    def descriptor(self, route_server: str) -> dict[str, Any]:
        return {"kind": "gateway", "target": "gpt-5-mini", "base_url": route_server}

    @pytest.fixture
    def rich_descriptor(self, rich_route_server: str) -> dict[str, Any]:
        return {"kind": "gateway", "target": "gpt-5-mini", "base_url": rich_route_server}

    @pytest.fixture
    def reasoning_request(self) -> dict[str, Any]:
        return {
            "messages": _turns(1, "Think first: what is 17 * 3?"),
            "reasoning": {"effort": "low"},
        }

    @pytest.fixture
    def structured_request(self) -> dict[str, Any]:
        return {"messages": _turns(2, "Answer in JSON: what is 2 + 2?"), "output": KitAnswer}
