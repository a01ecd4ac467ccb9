"""Two gateway replicas sharing a real Redis: a change on one console holds on both.

The rate limit, the blocklist and draining changed on replica A refuse the
next requests on replica B; the audit list and the statistics (requests,
the time series) are merged across both replicas.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator

import anyio
import pytest
from admin_configs import ADMIN_ENV, CONSOLE
from admin_helpers import change, console, from_address, query
from gwtest import Gateway, start_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture
def pair(redis_url: str, backend: str) -> Iterator[tuple[Gateway, Gateway]]:
    prefix = f"admin:{os.urandom(4).hex()}:"  # both backends share the Redis server
    config = CONSOLE + (
        f'\n[state]\nbackend = "redis"\nredis_url_env = "GW_REDIS_URL"\nkey_prefix = "{prefix}"\n'
    )
    env = {"GW_REDIS_URL": redis_url, **ADMIN_ENV}
    first = start_gateway(config, backend, env=env)
    try:
        second = start_gateway(config, backend, env=env)
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


async def _eventually(check: Callable[[], Awaitable[bool]], limit: float = 5.0) -> None:
    """Replicas re-read the shared controls once a second."""
    with anyio.fail_after(limit):
        while not await check():  # noqa: ASYNC110 (polling another process: no event to wait on)
            await anyio.sleep(0.1)


async def test_a_change_on_one_replica_holds_on_every_replica(
    pair: tuple[Gateway, Gateway],
) -> None:
    first, second = pair
    async with (
        console(first) as (admin, csrf),
        console(second) as (other_admin, _),
        from_address("127.0.0.81", second.url) as blocked,
        from_address("127.0.0.82", second.url) as api,
    ):
        assert await query(blocked) == 200
        await change(admin, csrf, control="blocklist_add", address="127.0.0.81")

        async def blocked_on_second() -> bool:
            return await query(blocked) == 403

        await _eventually(blocked_on_second)
        await change(admin, csrf, control="drain", target="echo", value=True)

        async def drained_on_second() -> bool:
            return await query(api) == 503

        await _eventually(drained_on_second)
        await change(admin, csrf, control="drain", target="echo", value=False)
        await change(admin, csrf, control="blocklist_remove", address="127.0.0.81")

        async def served_again() -> bool:
            return await query(blocked) == 200 and await query(api) == 200

        await _eventually(served_again)

        # The other replica's console shows the same controls and the same audit list.
        controls = (await other_admin.get("/admin/api/controls")).json()
        assert controls["blocklist"] == [] and controls["targets"]["echo"]["draining"] is False
        audit = (await other_admin.get("/admin/api/audit")).json()
        assert [e["subject"] for e in audit[:4]] == [
            "blocklist",
            "targets.echo.draining",
            "targets.echo.draining",
            "blocklist",
        ]
        assert (
            audit[0]["replica"] != (await other_admin.get("/admin/api/session")).json()["replica"]
        )

        # Statistics merge: A's console counts the requests served by B.
        async def merged() -> bool:
            overview = (await admin.get("/admin/api/overview?window=300")).json()
            clients = (await admin.get("/admin/api/clients")).json()["clients"]
            seen = {c["client"]: c for c in clients}
            return (
                overview["status"]["replicas"] == 2
                and "127.0.0.81" in seen
                and seen["127.0.0.81"]["refusals"]["blocked"] >= 1
                and sum(overview["series"]["rps"]) > 0
            )

        await _eventually(merged, limit=10.0)
