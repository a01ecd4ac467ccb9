"""The Run lifecycle: one terminal state, cancellation from anywhere, nothing left behind."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from sipp import (
    EndpointRef,
    ProtocolError,
    RateLimitedError,
    RunCancelled,
    SippClient,
    TimeoutError,
    TransportError,
)
from sipp.testing import ScriptedDriver, scripted_driver
from sipp.testing.conformance import leftover_threads, settle

SLOW = {"kind": "scripted", "reply": "a b c d e f g h i j", "token_delay": 0.02}


@pytest.fixture
async def slow() -> AsyncIterator[tuple[SippClient, EndpointRef, ScriptedDriver]]:
    async with SippClient() as client:
        ref = await client.add("slow", SLOW)
        yield client, ref, scripted_driver.opened[-1]


async def _expect_cancelled(run: Any, reason: str) -> RunCancelled:
    with pytest.raises(RunCancelled) as caught:
        await run
    assert caught.value.reason == reason
    assert run.status == "cancelled"
    return caught.value


@pytest.mark.anyio
async def test_work_starts_at_once_and_await_twice_gives_the_same_response(slow: Any) -> None:
    client, ref, driver = slow
    run = client.query("x", endpoint=ref)
    await anyio.sleep(0.01)
    assert driver.active_calls == 1
    first = await run
    assert await run.response is first
    assert run.status == "completed"


@pytest.mark.anyio
async def test_cancel_before_the_task_starts(slow: Any) -> None:
    client, ref, driver = slow
    run = client.query("x", endpoint=ref, emit_tokens=True)
    run.cancel("early")
    error = await _expect_cancelled(run, "early")
    assert error.partial is not None and error.partial.text == ""
    assert driver.attempts == 0


@pytest.mark.anyio
async def test_cancel_before_the_first_token() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "first_token_delay": 5})
        run = client.query("x", emit_tokens=True)
        await anyio.sleep(0.02)
        started = time.perf_counter()
        run.cancel("waited_enough")
        await _expect_cancelled(run, "waited_enough")
        assert time.perf_counter() - started < 1
        assert scripted_driver.opened[-1].active_calls == 0


@pytest.mark.anyio
async def test_cancel_mid_stream_keeps_the_partial_text_and_ends_the_iterator(slow: Any) -> None:
    client, ref, driver = slow
    run = client.query("x", endpoint=ref, emit_tokens=True)
    seen = []
    async for batch in run.tokens:
        seen.append(batch.text)
        if len(seen) == 3:
            run.cancel()
    error = await _expect_cancelled(run, "caller_cancelled")
    assert error.partial is not None
    assert error.partial.finish_reason == "cancelled"
    assert error.partial.text == "".join(seen)
    assert driver.active_calls == 0


@pytest.mark.anyio
async def test_cancel_from_another_task(slow: Any) -> None:
    client, ref, _ = slow
    run = client.query("x", endpoint=ref, emit_tokens=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _cancel_later(run))
        texts = [b.text async for b in run.tokens]
    await _expect_cancelled(run, "other_task")
    assert 0 < len(texts) < 10


async def _cancel_later(run: Any) -> None:
    await anyio.sleep(0.05)
    run.cancel("other_task")


@pytest.mark.anyio
async def test_cancel_from_a_plain_thread_while_the_loop_waits(slow: Any) -> None:
    client, ref, driver = slow
    run = client.query("x", endpoint=ref, emit_tokens=True)
    thread = threading.Thread(target=lambda: (time.sleep(0.05), run.cancel("thread")))
    thread.start()
    await _expect_cancelled(run, "thread")
    thread.join()
    assert driver.active_calls == 0


@pytest.mark.anyio
async def test_cancel_is_idempotent_and_a_no_op_after_the_end(slow: Any) -> None:
    client, ref, _ = slow
    run = client.query("x", endpoint=ref)
    response = await run
    run.cancel("too_late")
    assert run.status == "completed"
    assert await run is response
    with pytest.raises(ValueError, match="non-empty"):
        run.cancel("")


@pytest.mark.anyio
async def test_outside_cancellation_is_native_and_stops_the_run(slow: Any) -> None:
    client, ref, driver = slow
    run = client.query("x", endpoint=ref)
    with anyio.move_on_after(0.03) as scope:
        await run
    assert scope.cancelled_caught
    await settle(lambda: run.status != "running")
    assert run.status == "cancelled"
    assert driver.active_calls == 0


@pytest.mark.anyio
async def test_fail_after_around_await_raises_the_backend_timeout_not_run_cancelled(
    slow: Any,
) -> None:
    client, ref, _ = slow
    with pytest.raises(builtins_timeout()), anyio.fail_after(0.03):
        await client.query("x", endpoint=ref)


def builtins_timeout() -> type[BaseException]:
    import builtins

    return builtins.TimeoutError


@pytest.mark.anyio
async def test_a_reader_that_never_reads_loses_nothing_and_stays_bounded() -> None:
    tokens = [f"t{i} " for i in range(500)]
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "tokens": tokens})
        run = client.query("x", emit_tokens=True)
        response = await run
        batches = [b async for b in run.tokens]
    assert response.text == "".join(tokens)
    assert "".join(b.text for b in batches) == response.text
    assert len(batches) <= 8  # merged into a bounded number of queued items
    assert sum(b.frame_count for b in batches) == 500
    assert batches[-1].stats.frames_sent == 500


@pytest.mark.anyio
async def test_a_reader_that_breaks_early(slow: Any) -> None:
    client, ref, _ = slow
    run = client.query("x", endpoint=ref, emit_tokens=True)
    async for _ in run.tokens:
        break
    assert (await run).text == "a b c d e f g h i j"


@pytest.mark.anyio
async def test_failure_yields_the_text_first_then_raises_the_same_error() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "reply": "a b c d", "fail_at": 2})
        run = client.query("x", emit_tokens=True)
        texts = []
        with pytest.raises(TransportError) as from_iterator:
            async for batch in run.tokens:
                texts.append(batch.text)
        assert "".join(texts) == "a b "
        with pytest.raises(TransportError) as from_response:
            await run
    assert from_iterator.value is from_response.value
    assert run.status == "failed"
    partial = from_response.value.partial
    assert partial is not None and partial.text == "a b " and partial.finish_reason == "error"


@pytest.mark.anyio
async def test_failure_without_streaming_still_yields_the_text_before_the_error() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "reply": "a b c", "fail_at": 1})
        run = client.query("x")
        texts = []
        with pytest.raises(TransportError):
            async for batch in run.tokens:
                texts.append(batch.text)
        assert texts == ["a "]


@pytest.mark.anyio
async def test_closing_the_client_cancels_runs_in_flight_and_leaves_nothing() -> None:
    baseline = set(threading.enumerate())
    tasks = len(anyio.get_running_tasks())
    async with SippClient() as client:
        await client.add("s", SLOW)
        driver = scripted_driver.opened[-1]
        runs = [client.query("x", emit_tokens=True) for _ in range(5)]
        await anyio.sleep(0.03)
    for run in runs:
        assert run.status == "cancelled"
        assert run.cancel_reason == "client_closed"
        with pytest.raises(RunCancelled):
            await run
    assert driver.active_calls == 0 and driver.closed
    assert len(anyio.get_running_tasks()) == tasks
    assert leftover_threads(baseline) == []


@pytest.mark.anyio
async def test_an_exception_in_the_client_body_cancels_runs_and_propagates() -> None:
    with pytest.raises(KeyError):
        async with SippClient() as client:
            await client.add("s", SLOW)
            run = client.query("x")
            raise KeyError("boom")
    assert run.status == "cancelled"


@pytest.mark.anyio
async def test_a_dropped_run_is_cancelled_and_releases_everything(slow: Any) -> None:
    client, ref, driver = slow
    tasks = len(anyio.get_running_tasks())
    client.query("x", endpoint=ref, emit_tokens=True)  # never awaited, never kept
    gc.collect()
    await settle(lambda: len(anyio.get_running_tasks()) <= tasks)
    assert driver.active_calls == 0
    assert (await client.query("next", endpoint=ref)).text == "a b c d e f g h i j"


@pytest.mark.anyio
async def test_exactly_one_terminal_state_when_cancel_races_completion() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "reply": "done"})
        for _ in range(50):
            run = client.query("x")
            await anyio.lowlevel.checkpoint()
            run.cancel("race")
            try:
                response = await run
            except RunCancelled:
                assert run.status == "cancelled"
            else:
                assert run.status == "completed" and response.text == "done"


# -- timeouts and retries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("descriptor", "options", "phase"),
    [
        pytest.param(
            {"first_token_delay": 2},
            {"timeout": {"first_token": 0.05}},
            "first_token",
            id="first_token",
        ),
        pytest.param(
            {"token_delay": 2, "reply": "a b"}, {"timeout": {"idle": 0.05}}, "idle", id="idle"
        ),
        pytest.param(
            {"token_delay": 0.02, "tokens": ["t"] * 100},
            {"timeout": {"total": 0.1}},
            "total",
            id="total",
        ),
    ],
)
@pytest.mark.anyio
async def test_each_timeout_phase_has_its_own_error(
    descriptor: dict[str, Any], options: dict[str, Any], phase: str
) -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", **descriptor})
        started = time.perf_counter()
        with pytest.raises(TimeoutError) as caught:
            await client.query("x", **options)
        assert caught.value.phase == phase
        assert time.perf_counter() - started < 1.5
        assert isinstance(caught.value, builtins_timeout())


@pytest.mark.anyio
async def test_a_steady_stream_never_hits_the_idle_timeout() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "tokens": ["t"] * 30, "token_delay": 0.01})
        response = await client.query("x", timeout={"idle": 0.2})
        assert response.text == "t" * 30


@pytest.mark.anyio
async def test_endpoint_timeout_number_sets_connect_first_token_and_idle() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "first_token_delay": 1, "timeout": 0.05})
        with pytest.raises(TimeoutError) as caught:
            await client.query("x")
        assert caught.value.phase == "first_token"


@pytest.mark.anyio
async def test_retries_honour_the_server_hint_before_the_first_token() -> None:
    async with SippClient() as client:
        await client.add(
            "s",
            {
                "kind": "scripted",
                "reply": "ok",
                "fail_at": 0,
                "fail_times": 2,
                "failure": "rate_limited",
                "retry_after": 0.05,
                "retries": 3,
            },
        )
        started = time.perf_counter()
        assert (await client.query("x")).text == "ok"
        assert scripted_driver.opened[-1].attempts == 3
        assert time.perf_counter() - started >= 0.1


@pytest.mark.anyio
async def test_retries_run_out() -> None:
    async with SippClient() as client:
        await client.add(
            "s", {"kind": "scripted", "fail_at": 0, "failure": "overloaded", "retries": 1}
        )
        with pytest.raises(Exception, match="scripted overloaded"):
            await client.query("x", retries=1)
        assert scripted_driver.opened[-1].attempts == 2


@pytest.mark.anyio
async def test_no_retry_after_the_first_token_and_the_error_carries_the_text() -> None:
    async with SippClient() as client:
        await client.add(
            "s",
            {
                "kind": "scripted",
                "reply": "a b c",
                "fail_at": 1,
                "failure": "rate_limited",
                "retries": 5,
            },
        )
        with pytest.raises(RateLimitedError) as caught:
            await client.query("x")
        assert scripted_driver.opened[-1].attempts == 1
        assert caught.value.partial is not None and caught.value.partial.text == "a "


@pytest.mark.anyio
async def test_errors_that_are_not_retryable_are_not_retried() -> None:
    async with SippClient() as client:
        await client.add(
            "s", {"kind": "scripted", "fail_at": 0, "failure": "protocol", "retries": 3}
        )
        with pytest.raises(ProtocolError):
            await client.query("x")
        assert scripted_driver.opened[-1].attempts == 1


@pytest.mark.anyio
async def test_a_long_server_hint_is_not_waited_for() -> None:
    async with SippClient() as client:
        await client.add(
            "s",
            {
                "kind": "scripted",
                "fail_at": 0,
                "failure": "rate_limited",
                "retry_after": 3600,
                "retries": 3,
            },
        )
        with pytest.raises(RateLimitedError) as caught:
            await client.query("x")
        assert caught.value.retry_after == 3600
        assert scripted_driver.opened[-1].attempts == 1


@pytest.mark.anyio
async def test_response_timings_are_filled() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "tokens": ["a", "b", "c"], "token_delay": 0.01})
        response = await client.query("x")
    assert response.timings.time_to_first_token is not None
    assert response.timings.total is not None
    assert response.timings.total >= response.timings.time_to_first_token
    assert response.timings.tokens_per_second is not None
    assert response.usage.output_tokens == 3


@pytest.mark.anyio
async def test_final_response_and_error_never_wait_or_raise() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "reply": "fine"})
        await client.add("f", {"kind": "scripted", "fail_at": 0, "failure": "protocol"})
        ok = client.query("x", endpoint="s")
        assert ok.final_response is None
        assert ok.error is None
        response = await ok
        assert ok.final_response is response
        bad = client.query("x", endpoint="f")
        with pytest.raises(ProtocolError) as caught:
            await bad
        assert bad.error is caught.value
        assert bad.final_response is None
