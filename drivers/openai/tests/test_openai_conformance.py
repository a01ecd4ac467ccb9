"""The core's conformance kit against the openai_compatible driver and the loopback mock."""

from __future__ import annotations

from typing import Any

import pytest
from openai_mock import ServerThread

from sipp.testing.conformance import DriverConformance


class TestOpenAICompatibleConforms(DriverConformance):
    @pytest.fixture
    def descriptor(self, mock_server: ServerThread) -> dict[str, Any]:
        return {
            "kind": "provider",
            "provider": "openai_compatible",
            "model": "tokens=12;delay=0.003",
            "base_url": mock_server.base_url,
            "api_key": "sk-conformance",
        }

    @pytest.fixture
    def rich_descriptor(self, mock_server: ServerThread) -> dict[str, Any]:
        # ``auto``: the mock answers with a tool call, reasoning or JSON as asked.
        return {
            "kind": "provider",
            "provider": "openai_compatible",
            "model": "auto",
            "base_url": mock_server.base_url,
            "api_key": "sk-conformance",
        }
