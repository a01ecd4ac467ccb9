"""The limits part alone, in process, over MemoryState and a real Redis (asyncio and trio)."""

from __future__ import annotations

import time

import anyio
import pytest
from redistest import RedisServer
from sipp_gateway_server._auth import Principal
from sipp_gateway_server._config import RateLimit
from sipp_gateway_server._limits import Limits
from sipp_gateway_server._redis import RedisState
from sipp_gateway_server._refusal import Refused
from sipp_gateway_server._state import MemoryState, State

pytestmark = pytest.mark.anyio

CALLER = Principal("c", None, RateLimit(requests_per_minute=60, burst=2))


def _limits(state: State, policy: str = "open", timeout: float = 0.2) -> Limits:
    return Limits(
        state,
        ip_rate_limit=None,
        max_concurrent_requests=10,
        per_target={"t": 2},
        timeout=timeout,
        rate_limits_on_failure=policy,  # type: ignore[arg-type]
        admission_on_failure=policy,  # type: ignore[arg-type]
    )


async def test_memory_limits_count_and_refuse() -> None:
    limits = _limits(MemoryState())
    first, second = await limits.admit("t"), await limits.admit("t")
    assert first.member != second.member  # generated here, unique
    with pytest.raises(Refused) as refused:
        await limits.admit("t")
    assert (refused.value.status, refused.value.code) == (429, "admission")
    await limits.release(first)
    await limits.release(first)  # twice is harmless
    assert limits.in_flight("target:t") == 1
    await limits.check_rates("1.2.3.4", CALLER)
    await limits.check_rates("1.2.3.4", CALLER)
    with pytest.raises(Refused) as limited:
        await limits.check_rates("1.2.3.4", CALLER)
    assert limited.value.status == 429 and limited.value.retry_after is not None


async def test_redis_limits_follow_their_policy_when_redis_freezes(
    redis_server: RedisServer,
) -> None:
    state = RedisState(redis_server.url, f"unit:{time.monotonic_ns()}:", lease_seconds=3)
    async with state.open():
        open_, closed = _limits(state), _limits(state, "closed")
        shared = await open_.admit("t")
        assert not shared.local
        redis_server.freeze()
        try:
            began = time.monotonic()
            fallback = await open_.admit("t")  # decided by this process's counters
            assert fallback.local and not open_.state_healthy
            with pytest.raises(Refused) as refused:
                await closed.admit("t")
            assert (refused.value.status, refused.value.code) == (503, "unavailable")
            with pytest.raises(Refused):
                await closed.check_rates("1.2.3.4", CALLER)
            await open_.release(shared)  # cannot reach Redis: forgotten here, expires there
            await open_.release(fallback)
            assert time.monotonic() - began < 2.0  # every call bounded by its deadline
            assert open_.in_flight("target:t") == 0
        finally:
            redis_server.thaw()


async def test_watch_survives_redis_restarts_and_renews_leases(redis_server: RedisServer) -> None:
    state = RedisState(redis_server.url, f"unit:{time.monotonic_ns()}:", lease_seconds=1.5)
    limits = _limits(state, timeout=0.1)
    async with state.open(), anyio.create_task_group() as group:
        group.start_soon(limits.watch)
        held = [await limits.admit("t"), await limits.admit("t")]
        await anyio.sleep(2.0)  # past the lease: only renewals keep both slots taken
        with pytest.raises(Refused):
            await limits.admit("t")
        await anyio.to_thread.run_sync(redis_server.stop)
        await anyio.sleep(1.2)
        await anyio.to_thread.run_sync(redis_server.start)
        for _ in range(100):  # the watch notices Redis is back within a second or two
            if limits.state_healthy:
                break
            await anyio.sleep(0.05)
        assert limits.state_healthy
        for lease in held:
            await limits.release(lease)
        assert limits.in_flight("target:t") == 0
        group.cancel_scope.cancel()  # the watch was still running: it survived
