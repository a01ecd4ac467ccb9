"""Fixtures for the OpenAI driver tests: a mock provider served by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai_mock import MockState, ServerThread, make_app


@pytest.fixture(scope="session")
def mock_state() -> MockState:
    return MockState()


@pytest.fixture(scope="session")
def mock_server(mock_state: MockState) -> Iterator[ServerThread]:
    with ServerThread(make_app(mock_state)) as server:
        yield server
