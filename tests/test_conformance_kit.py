"""The conformance kit, run against the scripted driver and the example third-party plugin."""

from __future__ import annotations

from typing import Any

import pytest

from sipp.testing.conformance import DriverConformance


class TestScriptedDriverConforms(DriverConformance):
    @pytest.fixture
    def descriptor(self) -> dict[str, Any]:
        return {"kind": "scripted", "token_delay": 0.002, "embedding": [0.5, 0.25]}


class TestThirdPartyEchoDriverConforms(DriverConformance):
    """The echo driver lives in tests/plugins as its own distribution, found by entry point only."""

    @pytest.fixture
    def descriptor(self) -> dict[str, Any]:
        return {"kind": "echo", "chars_per_token": 4}
