"""The worker-to-loop hand-off (``_handoff.Mailbox``), on asyncio and trio.

The worker side runs on real threads (``anyio.to_thread``), as the engine's
worker does; the clock is replaced where a test needs the stream interval to
pass, so no test depends on how fast this machine is.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from sipp_llama import _handoff
from sipp_llama._handoff import Mailbox

from sipp import ConfigurationError, SippClient

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(_handoff, "time", fake)
    return fake


async def drain(mailbox: Mailbox[str]) -> tuple[list[str], int]:
    texts: list[str] = []
    frames = 0
    finished = False
    while not finished:
        text, more, finished = await mailbox.take()
        frames += more
        if text:
            texts.append(text)
    return texts, frames


def produce(mailbox: Mailbox[str], count: int) -> None:
    for index in range(count):
        mailbox.put(f"{index},", 1)
    mailbox.finish(result="done")


@pytest.mark.parametrize(
    "interval",
    [pytest.param(0.0, id="every-token"), pytest.param(3600.0, id="coalesced")],
)
async def test_text_arrives_whole_and_in_order(interval: float) -> None:
    mailbox: Mailbox[str] = Mailbox(interval)
    async with anyio.create_task_group() as group:
        group.start_soon(anyio.to_thread.run_sync, produce, mailbox, 2000)
        texts, frames = await drain(mailbox)
    assert "".join(texts) == "".join(f"{index}," for index in range(2000))
    assert frames == 2000
    assert mailbox.outcome() == "done"


async def test_after_the_first_text_the_interval_holds_the_rest_until_the_end() -> None:
    mailbox: Mailbox[str] = Mailbox(3600.0)
    async with anyio.create_task_group() as group:
        group.start_soon(anyio.to_thread.run_sync, produce, mailbox, 500)
        texts, _ = await drain(mailbox)
    # One wake-up for the first text (later text may join it before the reader
    # runs), one for the end: never one per token.
    assert 1 <= len(texts) <= 2
    assert texts[0].startswith("0,")


async def test_held_text_goes_with_the_first_flush_after_the_interval(clock: FakeClock) -> None:
    mailbox: Mailbox[str] = Mailbox(1.0)
    await anyio.to_thread.run_sync(mailbox.put, "a", 1)
    assert await mailbox.take() == ("a", 1, False)
    clock.now += 0.5
    await anyio.to_thread.run_sync(mailbox.put, "b", 2)
    await anyio.to_thread.run_sync(mailbox.flush)
    assert mailbox.holding
    clock.now += 0.6
    await anyio.to_thread.run_sync(mailbox.flush)
    assert not mailbox.holding
    assert await mailbox.take() == ("b", 2, False)


async def test_a_put_after_the_interval_carries_the_held_text(clock: FakeClock) -> None:
    mailbox: Mailbox[str] = Mailbox(1.0)
    await anyio.to_thread.run_sync(mailbox.put, "a", 1)
    assert await mailbox.take() == ("a", 1, False)
    await anyio.to_thread.run_sync(mailbox.put, "b", 1)
    await anyio.to_thread.run_sync(mailbox.put, "c", 1)
    clock.now += 1.0
    await anyio.to_thread.run_sync(mailbox.put, "d", 1)
    assert await mailbox.take() == ("bcd", 3, False)


async def test_the_end_is_never_held(clock: FakeClock) -> None:
    mailbox: Mailbox[str] = Mailbox(1.0)
    await anyio.to_thread.run_sync(mailbox.put, "a", 1)
    assert await mailbox.take() == ("a", 1, False)
    await anyio.to_thread.run_sync(mailbox.put, "b", 1)
    await anyio.to_thread.run_sync(lambda: mailbox.finish(error=ValueError("boom")))
    assert await mailbox.take() == ("b", 1, True)
    with pytest.raises(ValueError, match="boom"):
        mailbox.outcome()


# -- through the driver -------------------------------------------------------------


async def stream(client: SippClient, model: Any) -> tuple[list[str], str]:
    run = client.query(
        "The history of the city of Paris begins",
        endpoint=model,
        max_tokens=48,
        temperature=0,
        emit_tokens=True,
    )
    batches = [batch.text async for batch in run.tokens]
    response = await run
    return batches, response.text


async def test_a_long_stream_interval_changes_the_batches_not_the_text(
    descriptor: dict[str, Any],
) -> None:
    async with SippClient() as client:
        each = await client.add("each", {**descriptor, "stream_interval": 0})
        held = await client.add("held", {**descriptor, "stream_interval": 3600})
        each_batches, each_text = await stream(client, each)
        held_batches, held_text = await stream(client, held)
    assert held_text == each_text
    assert "".join(held_batches) == held_text
    # The first text at once, the rest with the end.
    assert len(held_batches) <= 2 < len(each_batches)


async def test_a_negative_stream_interval_is_refused(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match="stream_interval"):
            await client.add("m", {**descriptor, "stream_interval": -1})


@pytest.mark.parametrize("flash_attn", [pytest.param(True, id="on"), pytest.param(False, id="off")])
async def test_flash_attention_can_be_set_either_way(
    descriptor: dict[str, Any], flash_attn: bool
) -> None:
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "flash_attn": flash_attn})
        response = await client.query(
            "The capital of France is", endpoint=model, max_tokens=8, temperature=0
        )
    assert response.finish_reason == "length"
    assert "Paris" in response.text
