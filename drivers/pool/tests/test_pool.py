"""The pool driver over scripted members: order, failover, balance, cooldown."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from sipp_pool import MemberStats, PoolDriver

from sipp import (
    ConfigurationError,
    ConnectError,
    OverloadedError,
    RateLimitedError,
    SippClient,
    UnsupportedOperationError,
)


def member(name: str, weight: float = 1.0, **script: Any) -> dict[str, Any]:
    return {"name": name, "weight": weight, "descriptor": {"kind": "scripted", **script}}


async def open_pool(client: SippClient, *members: dict[str, Any], **options: Any) -> PoolDriver:
    await client.add("pool", {"kind": "pool", "members": list(members), **options})
    driver = client._endpoints["pool"].driver  # the opened driver, to read member_stats()
    assert isinstance(driver, PoolDriver)
    return driver


def stats(pool: PoolDriver) -> dict[str, MemberStats]:
    return {s.name: s for s in pool.member_stats()}


@pytest.mark.anyio
async def test_a_failure_before_the_first_token_falls_back_to_the_next_member() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member("a", reply="from a", fail_at=0, failure="connect"),
            member("b", reply="from b"),
        )
        response = await client.query("hi")
        assert response.text == "from b"
        seen = stats(pool)
        assert (seen["a"].requests, seen["a"].failures, seen["a"].fallbacks) == (1, 1, 1)
        assert (seen["b"].requests, seen["b"].failures) == (1, 0)


@pytest.mark.anyio
async def test_no_member_is_tried_after_the_first_token_reached_the_caller() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member("a", reply="one two three", fail_at=2, failure="overloaded"),
            member("b", reply="from b"),
        )
        run = client.query("hi", emit_tokens=True)
        with pytest.raises(OverloadedError) as caught:
            await run
        assert caught.value.partial is not None
        assert caught.value.partial.text == "one two "
        assert stats(pool)["b"].requests == 0


@pytest.mark.anyio
async def test_an_error_about_the_request_itself_is_not_retried_elsewhere() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client, member("a", fail_at=0, failure="protocol"), member("b", reply="b")
        )
        with pytest.raises(Exception, match="scripted stream ended"):
            await client.query("hi")
        assert stats(pool)["b"].requests == 0


@pytest.mark.anyio
async def test_when_every_member_fails_the_last_error_is_raised() -> None:
    async with SippClient() as client:
        await open_pool(
            client,
            member("a", fail_at=0, failure="connect"),
            member("b", fail_at=0, failure="rate_limited"),
        )
        with pytest.raises(RateLimitedError):
            await client.query("hi")


@pytest.mark.anyio
async def test_weighted_shares_follow_the_weights_exactly() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member("a", 3, reply="a"),
            member("b", 1, reply="b"),
            member("c", 1, reply="c"),
            strategy="weighted",
        )
        answers = [(await client.query("x")).text for _ in range(500)]
        # Smooth weighted round-robin: every window of 5 holds exactly 3 a, 1 b, 1 c,
        # interleaved rather than in bursts.
        assert {name: s.requests for name, s in stats(pool).items()} == {
            "a": 300,
            "b": 100,
            "c": 100,
        }
        assert all(sorted(answers[i : i + 5]) == ["a", "a", "a", "b", "c"] for i in (0, 5, 495))
        assert "aaa" not in "".join(answers)


@pytest.mark.anyio
async def test_least_busy_spreads_concurrent_requests() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member("a", reply="a", first_token_delay=0.2),
            member("b", reply="b", first_token_delay=0.2),
            strategy="least_busy",
        )
        runs = []
        for _ in range(6):
            runs.append(client.query("x"))
            await anyio.sleep(0.01)
        for run in runs:
            await run
        seen = stats(pool)
        assert (seen["a"].requests, seen["b"].requests) == (3, 3)


@pytest.mark.anyio
async def test_fastest_prefers_the_member_with_the_lower_time_to_first_token() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member("slow", reply="s", first_token_delay=0.05),
            member("fast", reply="f"),
            strategy="fastest",
        )
        answers = [(await client.query("x")).text for _ in range(12)]
        # Both are measured once, then the fast one takes every request.
        assert answers[2:] == ["f"] * 10
        seen = stats(pool)
        assert seen["slow"].ttft_average is not None and seen["fast"].ttft_average is not None
        assert seen["fast"].ttft_average < seen["slow"].ttft_average


@pytest.mark.anyio
async def test_a_member_that_keeps_failing_cools_down_and_is_probed_back() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member("a", reply="a", fail_at=0, failure="connect", fail_times=3),
            member("b", reply="b"),
            max_failures=2,
            cooldown=0.3,
        )
        assert [(await client.query("x")).text for _ in range(4)] == ["b"] * 4
        seen = stats(pool)["a"]
        assert (seen.requests, seen.cooldowns, seen.cooling) == (2, 1, True)
        await anyio.sleep(0.35)
        # The probe fails once more (third scripted failure): cooled down again at once.
        assert (await client.query("x")).text == "b"
        assert stats(pool)["a"].cooldowns == 2
        await anyio.sleep(0.35)
        assert (await client.query("x")).text == "a"  # recovered
        assert not stats(pool)["a"].cooling


@pytest.mark.anyio
async def test_a_retry_after_hint_keeps_requests_away_for_that_long() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member(
                "a", reply="a", fail_at=0, failure="rate_limited", fail_times=1, retry_after=0.3
            ),
            member("b", reply="b"),
            max_failures=5,
        )
        assert (await client.query("x")).text == "b"
        assert (await client.query("x")).text == "b"  # a is still inside its hint
        assert stats(pool)["a"].requests == 1
        await anyio.sleep(0.35)
        assert (await client.query("x")).text == "a"


@pytest.mark.anyio
async def test_a_member_that_stalls_before_its_first_token_is_left_behind() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member("a", reply="a", first_token_delay=5),
            member("b", reply="b"),
            member_first_token_timeout=0.1,
        )
        with anyio.fail_after(2):
            assert (await client.query("x")).text == "b"
        assert stats(pool)["a"].failures == 1


@pytest.mark.anyio
async def test_requests_go_only_to_members_that_can_serve_them() -> None:
    async with SippClient() as client:
        pool = await open_pool(
            client,
            member("text-only", reply="t", chat=False),
            member("chatty", reply="c"),
        )
        assert (await client.chat([{"role": "user", "content": "x"}])).text == "c"
        assert (await client.query("x")).text == "t"
        assert stats(pool)["text-only"].requests == 1
        with pytest.raises(UnsupportedOperationError):
            client.embed("x", endpoint="pool")


@pytest.mark.anyio
async def test_cancelling_a_run_stops_the_member_in_flight() -> None:
    async with SippClient() as client:
        pool = await open_pool(client, member("a", reply="a b c d", token_delay=1.0))
        run = client.query("x", emit_tokens=True)
        async for _ in run.tokens:
            run.cancel("caller_cancelled")
        assert stats(pool)["a"].in_flight == 0
        assert run.cancel_reason == "caller_cancelled"


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        pytest.param({"members": []}, "at least one member", id="no-members"),
        pytest.param(
            {"members": [member("a"), member("a")]}, "distinct names", id="duplicate-names"
        ),
        pytest.param({"members": [member("a", weight=0)]}, "weight", id="zero-weight"),
        pytest.param(
            {"members": [{"name": "a", "descriptor": {"kind": "scripted", "bogus": 1}}]},
            "member 'a'",
            id="bad-member-descriptor",
        ),
        pytest.param(
            {"members": [{"name": "a", "descriptor": {"kind": "pool", "members": []}}]},
            "may not itself be a pool",
            id="nested-pool",
        ),
        pytest.param({"members": [member("a")], "strategy": "random"}, "strategy", id="strategy"),
    ],
)
@pytest.mark.anyio
async def test_bad_pool_descriptors_are_refused_with_the_reason(
    descriptor: dict[str, Any], message: str
) -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match=message):
            await client.add("pool", {"kind": "pool", **descriptor})


@pytest.mark.anyio
async def test_a_member_at_a_closed_port_falls_back_over_real_http() -> None:
    pytest.importorskip("sipp_openai")
    from sipp.testing import ThreadedServer

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b'{"id":"c1","choices":[{"index":0,"text":"over http","finish_reason":"stop"}]}'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    closed = _closed_port()
    provider = {
        "kind": "provider",
        "provider": "openai_compatible",
        "model": "m",
        "allow_insecure_http": True,
        "retries": 0,
    }
    with ThreadedServer(app, lifespan="off") as server:
        async with SippClient() as client:
            pool = await open_pool(
                client,
                {
                    "name": "down",
                    "descriptor": {**provider, "base_url": f"http://127.0.0.1:{closed}/v1"},
                },
                {"name": "up", "descriptor": {**provider, "base_url": server.url + "/v1"}},
            )
            assert (await client.query("x")).text == "over http"
            assert stats(pool)["down"].failures == 1


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connect_errors_are_worth_a_failover() -> None:
    from sipp_pool import worth_failover

    assert worth_failover(ConnectError("refused"))
