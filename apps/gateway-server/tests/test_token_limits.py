"""Per-caller token limits: reserved from max_tokens, settled from usage, shared through Redis.

The ``rich`` target's usage is exact (one token per word in and out), so
every number below is known: "hello there" costs 2 + 2 = 4 tokens.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from gwtest import ADMIN_TOKEN, LIMITED_TOKEN, TOKEN, Gateway, start_gateway
from sipp_gateway_server import check_config
from surfaces import LAUNCHER

pytestmark = pytest.mark.anyio

CONFIG = """
[[targets]]
name = "rich"
kind = "rich"

[[targets]]
name = "slowrich"
kind = "rich"
token_delay = 0.2

[[tokens]]
caller = "minute"
token_env = "GW_WEB_TOKEN"
token_limit = { tokens_per_minute = 60 }

[[tokens]]
caller = "daily"
token_env = "GW_LIMITED_TOKEN"
token_limit = { tokens_per_day = 30 }

[[tokens]]
caller = "admin"
token_env = "GW_ADMIN_TOKEN"
"""
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def limited(backend: str) -> Iterator[Gateway]:
    gateway = start_gateway(CONFIG, backend, launcher=LAUNCHER)
    yield gateway
    gateway.stop()


def sdk(gateway: Gateway, token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)


async def test_minute_limit_reserves_then_settles(limited: Gateway) -> None:
    body = {
        "model": "slowrich",
        "stream": True,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "a b c d e f"}],
    }
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=limited.url, timeout=10) as http:
        async with http.stream("POST", "/v1/chat/completions", json=body, headers=auth) as held:
            chunks = held.aiter_bytes()
            assert b"chat.completion.chunk" in await chunks.__anext__()
            # 50 reserved; 20 more would pass the minute's 60: refused, on the profile route too.
            refused = await http.post(
                "/v1/chat",
                json={"model": "rich", "messages": HELLO, "max_tokens": 20},
                headers=auth,
            )
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert 5 <= int(refused.headers["retry-after"]) <= 11
            async for _ in chunks:
                pass
        # Settled to the real 12 tokens (6 in, 6 out): 40 more fit now.
        allowed = await http.post(
            "/v1/chat", json={"model": "rich", "messages": HELLO, "max_tokens": 40}, headers=auth
        )
        assert allowed.status_code == 200, allowed.text
        metrics = (await http.get(f"{limited.management}/metrics")).text
    assert 'sipp_gateway_rejections_total{reason="tokens"} 1.0' in metrics


async def test_daily_budget_counts_real_usage(limited: Gateway) -> None:
    async with sdk(limited, LIMITED_TOKEN) as oa:
        await oa.chat.completions.create(model="rich", messages=HELLO, max_tokens=10)  # 4 used
        await oa.chat.completions.create(model="rich", messages=HELLO, max_tokens=20)  # 8 used
        with pytest.raises(openai.RateLimitError) as refused:
            await oa.chat.completions.create(model="rich", messages=HELLO, max_tokens=25)
        await oa.chat.completions.create(model="rich", messages=HELLO, max_tokens=20)  # 12 used
    # The budget comes back at the next UTC midnight.
    assert 0 < int(refused.value.response.headers["retry-after"]) <= 86400
    assert refused.value.code == "rate_limited"
    async with sdk(limited, ADMIN_TOKEN) as oa:  # callers without a token limit are not counted
        for _ in range(3):
            await oa.chat.completions.create(model="rich", messages=HELLO, max_tokens=1000)


@pytest.fixture
def pair(redis_url: str, backend: str) -> Iterator[tuple[Gateway, Gateway]]:
    config = CONFIG + (
        '\n[state]\nbackend = "redis"\nredis_url_env = "GW_REDIS_URL"\n'
        f'key_prefix = "tokens-test:{os.urandom(4).hex()}:"\n'
    )
    env = {"GW_REDIS_URL": redis_url}
    first = start_gateway(config, backend, env=env, launcher=LAUNCHER)
    try:
        second = start_gateway(config, backend, env=env, launcher=LAUNCHER)
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


async def test_replicas_share_the_daily_budget_through_redis(
    pair: tuple[Gateway, Gateway],
) -> None:
    first, second = pair
    async with sdk(first, LIMITED_TOKEN) as one, sdk(second, LIMITED_TOKEN) as two:
        await one.chat.completions.create(model="rich", messages=HELLO, max_tokens=20)  # 4 used
        await two.chat.completions.create(model="rich", messages=HELLO, max_tokens=25)  # 8 used
        with pytest.raises(openai.RateLimitError):
            await one.chat.completions.create(model="rich", messages=HELLO, max_tokens=25)
        with pytest.raises(openai.RateLimitError):
            await two.chat.completions.create(model="rich", messages=HELLO, max_tokens=25)
        await two.chat.completions.create(model="rich", messages=HELLO, max_tokens=22)  # 12 used


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("{ tokens_per_minute = 0 }", "tokens_per_minute"),
        ("{ tokens_per_day = -5 }", "tokens_per_day"),
        ('{ tokens_per_day = "many" }', "tokens_per_day"),
        ("{ tokens_per_hour = 5 }", "tokens_per_hour"),
    ],
)
def test_bad_token_limits_are_named_by_check(tmp_path: Path, limit: str, message: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[[targets]]\nname = "echo"\nkind = "scripted"\n\n'
        f'[[tokens]]\ncaller = "web"\ntoken_env = "CHECK_TOKEN"\ntoken_limit = {limit}\n'
    )
    problems = [p.format("gateway.toml") for p in check_config(path, environ={"CHECK_TOKEN": "t"})]
    assert any("error" in p and message in p and "token_limit" in p for p in problems), problems
