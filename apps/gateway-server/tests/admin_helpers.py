"""Helpers of the admin console tests: logging in, traffic from chosen loopback addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from admin_configs import ADMIN_PASSWORD
from gwtest import TOKEN, Gateway

AUTH = {"authorization": f"Bearer {TOKEN}"}


def from_address(address: str, base_url: str, **kwargs: Any) -> httpx.AsyncClient:
    """A client whose connections come from ``address`` (any 127.x.y.z works on loopback)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=10, **kwargs)


@asynccontextmanager
async def console(
    gateway: Gateway, address: str = "127.0.0.1"
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A logged-in console client and its CSRF token."""
    async with from_address(address, gateway.management) as client:
        answer = await client.post("/admin/api/login", json={"password": ADMIN_PASSWORD})
        assert answer.status_code == 200, answer.text
        yield client, answer.json()["csrf_token"]


async def change(client: httpx.AsyncClient, csrf: str, **command: Any) -> dict[str, Any]:
    answer = await client.post("/admin/api/controls", json=command, headers={"x-csrf-token": csrf})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def query(client: httpx.AsyncClient, prompt: str = "hello", model: str = "echo") -> int:
    answer = await client.post("/v1/query", json={"model": model, "prompt": prompt}, headers=AUTH)
    return answer.status_code
