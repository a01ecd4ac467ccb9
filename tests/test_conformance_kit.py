"""The conformance kit, run against the scripted driver and the example third-party plugin."""

from __future__ import annotations

from typing import Any

import pytest

from sipp.testing.conformance import DriverConformance, KitAnswer


class TestThirdPartyEchoDriverConforms(DriverConformance):
    """The echo driver lives in tests/plugins as its own distribution, found by entry point only."""

    @pytest.fixture
    def descriptor(self) -> dict[str, Any]:
        return {"kind": "echo", "chars_per_token": 4}


class TestScriptedConversationsConform(DriverConformance):
    """The scripted driver declares every v2 capability; its turns script what the kit asks."""

    @pytest.fixture
    def descriptor(self) -> dict[str, Any]:
        return {"kind": "scripted", "token_delay": 0.002, "embedding": [0.5, 0.25]}

    @pytest.fixture
    def rich_descriptor(self) -> dict[str, Any]:
        return {
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

    @pytest.fixture
    def reasoning_request(self) -> dict[str, Any]:
        # One assistant turn so far: the script's second turn answers.
        return {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "Think first: what is 17 * 3?"},
            ],
            "reasoning": {"effort": "low"},
        }

    @pytest.fixture
    def structured_request(self) -> dict[str, Any]:
        return {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d"},
                {"role": "user", "content": "Answer in JSON: what is 2 + 2?"},
            ],
            "output": KitAnswer,
        }


class TestExampleV2DriverConforms(DriverConformance):
    """A v2 third-party driver (tests/plugins/sipp-example-v2): options, stats, tools, reasoning."""

    @pytest.fixture
    def descriptor(self) -> dict[str, Any]:
        return {"kind": "parrot"}
