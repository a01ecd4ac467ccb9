"""Timeouts of streaming runs, whose idle deadline moves lazily (at most once per 1 % of it).

Every token reads the loop clock once and moves the attempt's deadline only
when it is due; these tests check that the limits still fire, and in the
right phase, once the deadline has moved many times.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from paced_endpoint import paced_endpoint

from sipp import SippClient, TimeoutError, Timeouts

TOKENS = [f"t{i} " for i in range(40)]


@pytest.fixture(autouse=True)
def _paced() -> Iterator[None]:
    with paced_endpoint():
        yield


@pytest.mark.parametrize(
    "piece",
    [
        pytest.param("text", id="text"),
        pytest.param("reasoning", id="reasoning"),
        pytest.param("tool_call", id="tool-call"),
    ],
)
@pytest.mark.anyio
async def test_a_stall_after_a_stream_longer_than_the_idle_limit_is_an_idle_timeout(
    piece: str,
) -> None:
    # 40 pieces 25 ms apart stream for twice the idle limit, so the deadline has
    # moved many times before the stall.
    endpoint = {"kind": "paced", "tokens": TOKENS, "piece": piece, "pace": 0.025, "stall": 60}
    async with SippClient() as client:
        await client.add("p", endpoint)
        with pytest.raises(TimeoutError) as caught:
            await client.query("x", timeout=Timeouts(idle=0.5), emit_tokens=True)
    assert caught.value.phase == "idle"
    partial: Any = caught.value.partial
    if piece == "text":
        assert partial.text == "".join(TOKENS)
    elif piece == "reasoning":
        assert partial.reasoning == "".join(TOKENS)
    else:
        assert partial.tool_calls[0].arguments == "".join(TOKENS)


@pytest.mark.anyio
async def test_a_stream_longer_than_the_idle_limit_completes() -> None:
    async with SippClient() as client:
        await client.add("p", {"kind": "paced", "tokens": TOKENS, "pace": 0.025})
        response = await client.query("x", timeout=Timeouts(idle=0.5))
    assert response.text == "".join(TOKENS)


@pytest.mark.anyio
async def test_the_total_limit_caps_an_idle_deadline_that_keeps_moving() -> None:
    tokens = [f"t{i} " for i in range(400)]
    async with SippClient() as client:
        await client.add("p", {"kind": "paced", "tokens": tokens, "pace": 0.025})
        with pytest.raises(TimeoutError) as caught:
            await client.query("x", timeout=Timeouts(idle=0.5, total=0.6))
    assert caught.value.phase == "total"
    partial: Any = caught.value.partial
    assert 0 < len(partial.text) < len("".join(tokens))


@pytest.mark.anyio
async def test_after_the_first_token_the_first_token_limit_no_longer_applies() -> None:
    # The gap after the first token is longer than the first-token limit.
    endpoint = {"kind": "paced", "tokens": ["a ", "b"], "pace": 0.6}
    async with SippClient() as client:
        await client.add("p", endpoint)
        response = await client.query("x", timeout=Timeouts(first_token=0.3))
    assert response.text == "a b"
