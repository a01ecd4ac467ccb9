"""The admin console's JSON API against a real gateway process (uvicorn/asyncio, hypercorn/trio).

Live controls are checked by their effect on the public listener: the next
request is refused (429, 403, 503) or admitted again. Security: every answer
without a session, CSRF and fixation attempts, login limits, and no prompt,
token, key or password in anything the console serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from admin_configs import ADMIN_ENV, ADMIN_PASSWORD, CONSOLE
from admin_helpers import AUTH, change, console, from_address, query
from gwtest import LIMITED_TOKEN, SIGNING_KEY, TOKEN, Gateway, start_gateway

pytestmark = pytest.mark.anyio

READS = ("session", "overview", "targets", "clients", "recent", "controls", "audit")


@pytest.fixture(scope="module")
def started() -> Iterator[dict[str, Gateway]]:
    running: dict[str, Gateway] = {}
    yield running
    for gateway in running.values():
        gateway.stop()


@pytest.fixture
def gateway(started: dict[str, Gateway], backend: str) -> Gateway:
    if backend not in started or started[backend].process.poll() is not None:
        started[backend] = start_gateway(CONSOLE, backend, env=ADMIN_ENV)
    return started[backend]


async def test_nothing_is_answered_without_a_session(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.management, timeout=10) as client:
        for name in READS:
            answer = await client.get(f"/admin/api/{name}")
            assert answer.status_code == 401, name
            assert answer.json() == {"error": {"code": "authentication", "message": "log in first"}}
        command = {"control": "ip_rate_limit", "value": "none"}
        answer = await client.post("/admin/api/controls", json=command)
        assert answer.status_code == 401
        page = await client.get("/admin")
        assert page.status_code == 303
        assert page.headers["location"] == "/admin/login"
        assert page.content == b""
        # A forged or stale cookie is no session either.
        client.cookies.set("sipp_admin", "x" * 43, path="/admin")
        assert (await client.get("/admin/api/overview")).status_code == 401
        # The login form and the page's code are public: they hold no data.
        login = await client.get("/admin/login")
        assert login.status_code == 200
        assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
        for asset in ("app.js", "login.js", "app.css"):
            assert (await client.get(f"/admin/static/{asset}")).status_code == 200
        assert (await client.get("/admin/static/../_http.py")).status_code == 404
        # The rest of the management listener is unchanged.
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_login_sets_a_strict_httponly_cookie_and_a_new_session_id(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.management, timeout=10) as client:
        planted = "attacker-chosen-session-id-0123456789abcdef"
        client.cookies.set("sipp_admin", planted, path="/admin")
        answer = await client.post("/admin/api/login", json={"password": ADMIN_PASSWORD})
        assert answer.status_code == 200
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
        assert "Secure" not in cookie  # plain HTTP here; see test_admin_unit for TLS
        issued = cookie.split(";")[0].split("=", 1)[1]
        assert issued != planted and len(issued) >= 40
        # The planted id never became a session (session fixation).
        async with httpx.AsyncClient(base_url=gateway.management, timeout=10) as attacker:
            attacker.cookies.set("sipp_admin", planted, path="/admin")
            assert (await attacker.get("/admin/api/session")).status_code == 401
        session = await client.get("/admin/api/session")
        assert session.status_code == 200
        assert session.json()["csrf_token"] == answer.json()["csrf_token"]
        # Logging out ends the session.
        csrf = answer.json()["csrf_token"]
        out = await client.post("/admin/api/logout", headers={"x-csrf-token": csrf})
        assert out.status_code == 200
        client.cookies.set("sipp_admin", issued, path="/admin")
        assert (await client.get("/admin/api/session")).status_code == 401


async def test_wrong_password_is_refused_and_counted(gateway: Gateway) -> None:
    async with console(gateway) as (admin, _):
        before = (await admin.get("/admin/api/overview")).json()["logins"]["failed"]
        async with from_address("127.0.0.21", gateway.management) as client:
            answer = await client.post("/admin/api/login", json={"password": "not the password"})
            assert answer.status_code == 401
            assert "set-cookie" not in answer.headers
            wrong_type = await client.post("/admin/api/login", content=f"password={ADMIN_PASSWORD}")
            assert wrong_type.status_code == 415  # a cross-site form post cannot log in
        after = (await admin.get("/admin/api/overview")).json()["logins"]["failed"]
        assert after == before + 1


async def test_login_attempts_are_rate_limited_per_address(gateway: Gateway) -> None:
    async with from_address("127.0.0.22", gateway.management) as client:
        statuses = []
        for _ in range(22):
            answer = await client.post("/admin/api/login", json={"password": "guess"})
            statuses.append(answer.status_code)
        assert statuses[:20] == [401] * 20  # the burst
        assert statuses[20:] == [429, 429]
        assert int(answer.headers["retry-after"]) >= 1
        # Even the right password waits now; another address is not affected.
        right = await client.post("/admin/api/login", json={"password": ADMIN_PASSWORD})
        assert right.status_code == 429
    async with console(gateway, "127.0.0.23"):
        pass


async def test_writes_need_the_sessions_csrf_token(gateway: Gateway) -> None:
    command = {"control": "ip_rate_limit", "value": {"requests_per_minute": 1, "burst": 1}}
    async with console(gateway) as (client, csrf), console(gateway) as (_, other_csrf):
        version = (await client.get("/admin/api/controls")).json()["version"]
        for headers in (
            {},
            {"x-csrf-token": "wrong"},
            {"x-csrf-token": other_csrf},  # another session's token
            {"x-csrf-token": csrf, "origin": "https://evil.example"},
        ):
            answer = await client.post("/admin/api/controls", json=command, headers=headers)
            assert answer.status_code == 403, headers
            assert answer.json()["error"]["code"] == "csrf"
        logout = await client.post("/admin/api/logout")
        assert logout.status_code == 403
        assert (await client.get("/admin/api/controls")).json()["version"] == version
        async with from_address("127.0.0.24", gateway.url) as public:
            assert await query(public) == 200


async def test_rate_limit_change_refuses_the_next_requests(gateway: Gateway) -> None:
    async with console(gateway) as (admin, csrf), from_address("127.0.0.31", gateway.url) as api:
        assert await query(api) == 200
        limit = {"requests_per_minute": 6, "burst": 2}
        result = await change(admin, csrf, control="ip_rate_limit", value=limit)
        assert result["change"]["after"] == {"requests_per_minute": 6.0, "burst": 2}
        try:
            statuses = [await query(api) for _ in range(4)]
            assert statuses[-1] == 429 and statuses.count(429) >= 2
        finally:
            await change(admin, csrf, control="ip_rate_limit", value="default")
        async with from_address("127.0.0.32", gateway.url) as fresh:
            assert await query(fresh) == 200
        refused = statuses.count(429)
        with anyio.fail_after(5):  # counted just after each answer is sent
            while (await _client_row(admin, "127.0.0.31"))["refusals"]["rate"] < refused:  # noqa: ASYNC110
                await anyio.sleep(0.05)


async def test_caller_rate_limit_change(gateway: Gateway) -> None:
    batch = {"authorization": f"Bearer {LIMITED_TOKEN}"}
    async with console(gateway) as (admin, csrf), from_address("127.0.0.33", gateway.url) as api:
        limit = {"requests_per_minute": 6, "burst": 1}
        await change(admin, csrf, control="caller_rate_limit", caller="batch", value=limit)
        try:
            body = {"model": "echo", "prompt": "x"}
            first = await api.post("/v1/query", json=body, headers=batch)
            second = await api.post("/v1/query", json=body, headers=batch)
            assert (first.status_code, second.status_code) == (200, 429)
            assert await query(api) == 200  # another caller is not limited
        finally:
            await change(admin, csrf, control="caller_rate_limit", caller="batch", value="default")
        controls = (await admin.get("/admin/api/controls")).json()
        assert controls["caller_rate_limits"]["batch"] == {
            "requests_per_minute": 6000.0,
            "burst": 100,
        }


async def test_block_a_client_then_unblock_it(gateway: Gateway) -> None:
    async with (
        console(gateway) as (admin, csrf),
        from_address("127.0.0.41", gateway.url) as blocked,
        from_address("127.0.0.42", gateway.url) as other,
    ):
        await change(admin, csrf, control="blocklist_add", address="127.0.0.41")
        try:
            assert await query(blocked) == 403
            assert await query(other) == 200
        finally:
            result = await change(admin, csrf, control="blocklist_remove", address="127.0.0.41")
        assert result["change"]["before"] == ["127.0.0.41/32"]
        assert result["change"]["after"] == []
        assert await query(blocked) == 200
        # A request is counted just after its answer is sent: wait for the last one.
        with anyio.fail_after(5):
            while (row := await _client_row(admin, "127.0.0.41"))["requests"] < 2:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        assert row["refusals"]["blocked"] == 1 and row["requests"] == 2


async def _client_row(admin: httpx.AsyncClient, address: str) -> dict[str, Any]:
    clients = (await admin.get("/admin/api/clients")).json()["clients"]
    row: dict[str, Any] = next(c for c in clients if c["client"] == address)
    return row


async def test_drain_a_target_and_change_its_concurrency(gateway: Gateway) -> None:
    async with console(gateway) as (admin, csrf), from_address("127.0.0.43", gateway.url) as api:
        await change(admin, csrf, control="drain", target="echo", value=True)
        try:
            assert await query(api) == 503
            targets = (await admin.get("/admin/api/targets")).json()
            assert next(t for t in targets if t["name"] == "echo")["health"] == "draining"
        finally:
            await change(admin, csrf, control="drain", target="echo", value=False)
        assert await query(api) == 200

        await change(admin, csrf, control="target_max_concurrent", target="slow", value=1)
        try:
            statuses: list[int] = []

            async def one() -> None:
                statuses.append(await query(api, model="slow"))

            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(one)
            assert sorted(statuses) == [200, 429, 429]
        finally:
            await change(
                admin, csrf, control="target_max_concurrent", target="slow", value="default"
            )
        controls = (await admin.get("/admin/api/controls")).json()
        assert controls["targets"]["slow"]["max_concurrent"] == 2


async def test_every_change_is_in_the_audit_list_and_the_log(gateway: Gateway) -> None:
    async with console(gateway) as (admin, csrf):
        await change(admin, csrf, control="max_concurrent_requests", value=32)
        await change(admin, csrf, control="max_concurrent_requests", value="default")
        audit = (await admin.get("/admin/api/audit")).json()
        newest, previous = audit[0], audit[1]
        assert newest["subject"] == "max_concurrent_requests"
        assert (previous["before"], previous["after"]) == (64, 32)
        assert (newest["before"], newest["after"]) == (32, 64)
        assert newest["who"].startswith("admin@127.0.0.1#")
        assert newest["action"] == {"control": "max_concurrent_requests", "value": "default"}
    logs = gateway.wait_log('"subject":"max_concurrent_requests","before":32')
    line = next(x for x in logs.splitlines() if '"before":32' in x)
    assert json.loads(line)["after"] == 64


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ({"control": "explode"}, "Invalid value 'explode'"),
        ({"control": "drain", "target": "nope", "value": True}, "unknown target 'nope'"),
        ({"control": "blocklist_add", "address": "300.1.1.1"}, "not an IP address or CIDR"),
        (
            {"control": "ip_rate_limit", "value": {"requests_per_minute": -1, "burst": 1}},
            "must be positive",
        ),
        ({"control": "max_concurrent_requests", "value": 0}, "between 1 and"),
        ({"control": "ip_rate_limit", "value": "none", "extra": 1}, "unknown field"),
        ({"control": "caller_rate_limit", "caller": "", "value": "none"}, "caller must be"),
    ],
)
async def test_bad_commands_get_clear_errors(
    gateway: Gateway, command: dict[str, object], message: str
) -> None:
    async with console(gateway) as (admin, csrf):
        answer = await admin.post(
            "/admin/api/controls", json=command, headers={"x-csrf-token": csrf}
        )
        assert answer.status_code == 400
        assert message in answer.json()["error"]["message"]


async def test_no_prompt_token_key_or_password_in_any_answer(gateway: Gateway) -> None:
    canary = "PROMPT-CANARY-7f3a9"
    async with from_address("127.0.0.51", gateway.url) as api:
        await query(api, prompt=f"{canary} tell me")
        body = {"model": "words", "messages": [{"role": "user", "content": canary}], "stream": True}
        assert (await api.post("/v1/chat", json=body, headers=AUTH)).status_code == 200
        bad = {"authorization": "Bearer not-a-token-CANARY"}
        assert (
            await api.post("/v1/query", json={"model": "echo", "prompt": canary}, headers=bad)
        ).status_code == 401
    captured: list[str] = []
    async with console(gateway) as (admin, csrf):
        await change(admin, csrf, control="blocklist_add", address="10.9.9.0/24")
        await change(admin, csrf, control="blocklist_remove", address="10.9.9.0/24")
        session_id = admin.cookies["sipp_admin"]
        for name in (*READS, "overview?window=300"):
            captured.append((await admin.get(f"/admin/api/{name}")).text)
        for page in ("/admin", "/admin/login", "/admin/static/app.js", "/admin/static/app.css"):
            captured.append((await admin.get(page)).text)
    captured.append(gateway.logs())
    text = "\n".join(captured)
    assert "127.0.0.51" in text and "words" in text  # the answers were captured
    for secret in (canary, TOKEN, LIMITED_TOKEN, SIGNING_KEY, ADMIN_PASSWORD, session_id, "CANARY"):
        assert secret not in text
