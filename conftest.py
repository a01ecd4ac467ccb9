"""Shared by tests/ and drivers/*/tests: every async test runs on asyncio and trio."""

from __future__ import annotations

import pytest

pytest_plugins = ["anyio"]


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    backend: tuple[str, dict[str, object]] = request.param
    if backend[0] == "trio":
        import trio  # noqa: F401  (a missing trio is a failure, never a skip)
    return backend
