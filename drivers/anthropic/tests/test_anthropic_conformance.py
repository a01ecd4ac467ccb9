"""The core's conformance kit against the anthropic driver and the loopback mock."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic_mock import ServerThread

from sipp.testing.conformance import DriverConformance


class TestAnthropicConforms(DriverConformance):
    @pytest.fixture
    def descriptor(self, anthropic_server: ServerThread) -> dict[str, Any]:
        return {
            "kind": "provider",
            "provider": "anthropic",
            "model": "tokens=12;delay=0.003",
            "base_url": anthropic_server.base_url,
            "api_key": "sk-ant-conformance",
        }

    @pytest.fixture
    def rich_descriptor(self, descriptor: dict[str, Any]) -> dict[str, Any]:
        """The kit's capability checks: a mock that answers as the request asks
        (thinks, calls the forced tool, answers JSON matching the schema)."""
        return {**descriptor, "model": "scenario=auto"}
