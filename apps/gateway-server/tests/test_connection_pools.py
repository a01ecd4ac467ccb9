"""Connection pools per target (issue 11, item 7): never one pool of thousands.

httpcore scans its whole pool on every request start and end; one pool of
2,000 connections made a stream cost three times as much at 1,000 clients
as at 100. A target asking for more than ``POOL_SIZE`` connections is served
by several client endpoints of at most that many each, taken in turn.
The CPU figures are ``benchmarks/bench_gateway_concurrency.py``.
"""

from __future__ import annotations

import pytest
from sipp_gateway_server._config import TargetConfig
from sipp_gateway_server._targets import POOL_SIZE, Targets, shard_descriptors

from sipp import SippClient

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("wanted", "pools", "each"),
    [(None, 1, None), (10, 1, 10), (POOL_SIZE, 1, POOL_SIZE), (POOL_SIZE + 1, 2, 33),
     (2000, 32, 63), (1000, 16, 63)],
)  # fmt: skip
def test_large_pools_are_split(wanted: int | None, pools: int, each: int | None) -> None:
    descriptor = {"kind": "provider", "provider": "openai_compatible"}
    if wanted is not None:
        descriptor["max_connections"] = wanted  # type: ignore[assignment]
    shards = shard_descriptors(descriptor)
    assert len(shards) == pools
    assert all(s.get("max_connections") == each for s in shards)
    assert all(s["provider"] == "openai_compatible" for s in shards)
    if wanted is not None:
        assert sum(s["max_connections"] for s in shards) >= wanted  # never fewer in total
        assert max(s["max_connections"] for s in shards) <= POOL_SIZE


async def test_runs_go_to_every_pool_in_turn() -> None:
    descriptor = {
        "kind": "provider",
        "provider": "openai_compatible",
        "model": "m",
        "base_url": "http://127.0.0.1:9/v1",
        "max_connections": 200,
    }
    targets = Targets([TargetConfig(name="up", kind="provider")], {"up": descriptor}, {})
    async with SippClient() as client, targets.serve(client):
        assert targets.pools("up") == 4
        assert {n for n in client.endpoints if n.startswith("up")} == {
            "up",
            "up#pool1",
            "up#pool2",
            "up#pool3",
        }
        assert targets.available(["up"]) == ["up"]
        from sipp import QueryRequest

        runs = [targets.start("query", QueryRequest(prompt="x"), target="up") for _ in range(8)]
        names = [run.endpoint.name for run in runs]
        assert sorted(set(names)) == ["up", "up#pool1", "up#pool2", "up#pool3"]
        assert names[:4] == names[4:]
        targets.cancel_all("test_over")
