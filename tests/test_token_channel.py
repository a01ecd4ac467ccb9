"""The token channel seen through ``run.tokens``: order, counts, and a reader that parks.

A reader that keeps up parks on the channel's doorbell between tokens; these
tests check what it sees then (every token once, in order, with running
totals) and that a reader cancelled while parked leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from paced_endpoint import paced_endpoint

from sipp import RunCancelled, SippClient


@pytest.fixture(autouse=True)
def _paced() -> Iterator[None]:
    with paced_endpoint():
        yield


@pytest.mark.anyio
async def test_a_reader_that_keeps_up_sees_every_token_once_in_order() -> None:
    tokens = [f"t{i} " for i in range(30)]
    async with SippClient() as client:
        await client.add("p", {"kind": "paced", "tokens": tokens, "pace": 0.005})
        run = client.query("x", emit_tokens=True)
        batches = [batch async for batch in run.tokens]
        response = await run
    assert "".join(batch.text for batch in batches) == "".join(tokens) == response.text
    frames = 0
    for number, batch in enumerate(batches, start=1):
        assert batch.sequence_start == frames
        frames += batch.frame_count
        assert batch.stats.frames_sent == frames
        assert batch.stats.batches_sent == number
    assert frames == len(tokens)


@pytest.mark.anyio
async def test_byte_counts_are_utf8_bytes() -> None:
    tokens = ["plain ", "café ", "🙂", " 東京"]
    async with SippClient() as client:
        await client.add("p", {"kind": "paced", "tokens": tokens, "pace": 0.005})
        run = client.query("x", emit_tokens=True)
        batches = [batch async for batch in run.tokens]
    for batch in batches:
        assert batch.byte_count == len(batch.text.encode("utf-8"))
    assert batches[-1].stats.bytes_sent == len("".join(tokens).encode("utf-8"))


@pytest.mark.anyio
async def test_a_reader_cancelled_while_parked_cancels_the_run_and_a_new_reader_ends() -> None:
    async with SippClient() as client:
        await client.add("p", {"kind": "paced", "tokens": ["a "], "stall": 60})
        run = client.query("x", emit_tokens=True)
        tokens = run.tokens
        assert (await tokens.__anext__()).text == "a "
        with anyio.move_on_after(0.1):
            await tokens.__anext__()  # parks: the stream stalls
        with pytest.raises(RunCancelled) as caught:
            await run
        assert caught.value.reason == "caller_cancelled"
        assert [batch.text async for batch in run.tokens] == []
    assert caught.value.partial is not None
    assert caught.value.partial.text == "a "
