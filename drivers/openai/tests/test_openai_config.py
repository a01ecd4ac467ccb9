"""Configuration rules of the OpenAI drivers, checked at add() time, before any I/O."""

from __future__ import annotations

import pytest

from sipp import ConfigurationError, SippClient

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        pytest.param("http://api.example.com/v1", "plain http", id="insecure-http"),
        pytest.param("https://user:pw@api.example.com/v1", "credentials", id="userinfo"),
        pytest.param("https://api.example.com/v1?key=1", "query", id="query"),
        pytest.param("https://api.example.com/v1#top", "fragment", id="fragment"),
        pytest.param("/v1", "absolute", id="relative"),
        pytest.param("ftp://api.example.com", "absolute", id="scheme"),
    ],
)
async def test_bad_base_url_is_refused(base_url: str, message: str) -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match=message) as caught:
            await client.add(
                "m",
                {
                    "kind": "provider",
                    "provider": "openai_compatible",
                    "model": "x",
                    "base_url": base_url,
                },
            )
    assert "pw" not in str(caught.value)


async def test_insecure_http_needs_opt_in() -> None:
    async with SippClient() as client:
        ref = await client.add(
            "m",
            {
                "kind": "provider",
                "provider": "openai_compatible",
                "model": "x",
                "base_url": "http://inference.internal:8000/v1",
                "allow_insecure_http": True,
            },
        )
        assert ref.kind == "provider"


async def test_compatible_needs_a_base_url() -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match="base_url"):
            await client.add(
                "m", {"kind": "provider", "provider": "openai_compatible", "model": "x"}
            )


async def test_openai_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match="api_key"):
            await client.add("m", {"kind": "provider", "provider": "openai", "model": "x"})
