"""The pool's hooks: a cooldown store shared by several pools, and the opened driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from sipp_pool import EXTENSION, MemoryCooldownStore, PoolDriver, PoolHooks

from sipp import ConfigurationError, SippClient


def member(name: str, **script: Any) -> dict[str, Any]:
    return {"name": name, "descriptor": {"kind": "scripted", **script}}


FAILING_A = [
    member("a", reply="a", fail_at=0, failure="connect", fail_times=1),
    member("b", reply="b"),
]


async def add_pool(client: SippClient, hooks: PoolHooks, *members: dict[str, Any]) -> PoolDriver:
    opened: list[PoolDriver] = []
    hooks = PoolHooks(cooldowns=hooks.cooldowns, opened=opened.append)
    descriptor = {"kind": "pool", "members": list(members), "max_failures": 1, "cooldown": 0.4}
    await client.add("shared", descriptor, extensions={EXTENSION: hooks})
    assert len(opened) == 1
    return opened[0]


@pytest.mark.anyio
async def test_a_cooldown_started_by_one_pool_keeps_the_other_pool_away() -> None:
    store = MemoryCooldownStore()
    async with SippClient() as first, SippClient() as second:
        one = await add_pool(first, PoolHooks(cooldowns=store), *FAILING_A)
        two = await add_pool(second, PoolHooks(cooldowns=store), *FAILING_A)
        assert (await first.query("x")).text == "b"  # a fails once: cooled down everywhere
        assert (await second.query("x")).text == "b"
        assert one.member_stats()[0].cooldowns == 1
        assert two.member_stats()[0].requests == 0  # the second pool never tried a
        assert two.member_stats()[0].cooling
        await anyio.sleep(0.45)
        assert (await second.query("x")).text == "b"  # its own a fails on the probe
        assert (await first.query("x")).text == "b"  # and the first pool heard of it
        assert one.member_stats()[0].requests == 1
        await anyio.sleep(0.45)
        assert (await first.query("x")).text == "a"  # recovered


@pytest.mark.anyio
async def test_without_a_store_each_pool_learns_on_its_own() -> None:
    async with SippClient() as first, SippClient() as second:
        await add_pool(first, PoolHooks(), *FAILING_A)
        two = await add_pool(second, PoolHooks(), *FAILING_A)
        assert (await first.query("x")).text == "b"
        assert (await second.query("x")).text == "b"
        assert two.member_stats()[0].requests == 1


class BrokenStore:
    """A store whose backend is down: every call raises."""

    def __init__(self) -> None:
        self.calls = 0

    async def remaining(self, pool: str, members: Sequence[str]) -> Sequence[float]:
        self.calls += 1
        raise ConnectionError("store down")

    async def start(self, pool: str, member: str, seconds: float) -> None:
        self.calls += 1
        raise ConnectionError("store down")


@pytest.mark.anyio
async def test_a_store_that_cannot_answer_leaves_the_pool_on_its_own_view() -> None:
    store = BrokenStore()
    async with SippClient() as client:
        pool = await add_pool(client, PoolHooks(cooldowns=store), *FAILING_A)
        assert [(await client.query("x")).text for _ in range(3)] == ["b", "b", "b"]
        assert pool.member_stats()[0].requests == 1  # its own cooldown still applies
        assert store.calls == 4  # three reads and the one write, each failing


@pytest.mark.anyio
async def test_a_wrong_extension_object_is_refused() -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match="PoolHooks"):
            await client.add(
                "p", {"kind": "pool", "members": [member("a")]}, extensions={EXTENSION: 1}
            )
