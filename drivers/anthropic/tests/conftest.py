"""Fixtures for the Anthropic driver tests: a mock Messages API on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anthropic_mock import MockState, ServerThread, make_app


@pytest.fixture(scope="session")
def anthropic_state() -> MockState:
    return MockState()


@pytest.fixture(scope="session")
def anthropic_server(anthropic_state: MockState) -> Iterator[ServerThread]:
    with ServerThread(make_app(anthropic_state)) as server:
        yield server
