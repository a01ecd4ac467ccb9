"""The console's parts in-process: numbers, sessions, hostile commands, config checks."""

from __future__ import annotations

import json
from typing import Any

import anyio
import msgspec
import pytest
from admin_configs import ADMIN_PASSWORD, CONSOLE
from hypothesis import given, settings
from hypothesis import strategies as st
from sipp_gateway_server import create_app
from sipp_gateway_server._checks import check_text
from sipp_gateway_server._config import RateLimit
from sipp_gateway_server._observe import RequestRecord
from sipp_gateway_server.admin._controls import COMMAND, ControlError
from sipp_gateway_server.admin._series import (
    BOUNDS_MS,
    SLOTS,
    STEP,
    Ring,
    empty_histogram,
    merge,
    observe,
    percentile,
)
from sipp_gateway_server.admin._sessions import LoginLimited, Sessions
from sipp_gateway_server.admin._stats import MAX_CLIENTS, Stats

ENV = {"GW_ADMIN_PASSWORD": ADMIN_PASSWORD, "GW_WEB_TOKEN": "t" * 20, "GW_LIMITED_TOKEN": "u" * 20}


# -- numbers ---------------------------------------------------------------------------------


def test_percentiles_interpolate_inside_a_bucket() -> None:
    histogram = empty_histogram()
    for value in (3, 4, 4, 4, 40, 40, 40, 40, 40, 900):
        observe(histogram, value)
    assert percentile(histogram, 0.5) is not None
    assert 20 <= (percentile(histogram, 0.5) or 0) <= 50
    assert 750 <= (percentile(histogram, 0.95) or 0) <= 1000
    assert percentile(empty_histogram(), 0.5) is None
    huge = empty_histogram()
    observe(huge, 10**9)  # past the last bound: the open bucket reports its lower bound
    assert percentile(huge, 0.99) == BOUNDS_MS[-2]


def test_merge_adds_leaf_by_leaf_and_keeps_percentiles_exact() -> None:
    a, b = empty_histogram(), empty_histogram()
    for _ in range(90):
        observe(a, 5)
    for _ in range(10):
        observe(b, 5000)
    merged = merge([{"x": 1, "h": a, "n": {"k": 2}}, {"x": 2, "h": b, "n": {"j": 1}}])
    assert merged["x"] == 3 and merged["n"] == {"k": 2, "j": 1}
    # p95 of the union, not an average of the two p95s.
    assert 3000 < (percentile(merged["h"], 0.95) or 0) <= 5000
    assert merge([]) == {}


def test_ring_keeps_one_hour_in_fixed_memory() -> None:
    ring = Ring()
    start = 1_000_000.0
    ring.record(start, status=200, latency_ms=10, ttft_ms=None, tokens_out=5)
    ring.record(start, status=503, latency_ms=10, ttft_ms=2, tokens_out=0)
    snapshot = ring.snapshot(start)
    (bucket,) = snapshot.values()
    assert (bucket["requests"], bucket["errors"], bucket["tokens_out"]) == (2, 1, 5)
    # An hour later the same slot is reused, and the old bucket is gone from the window.
    later = start + SLOTS * STEP
    ring.record(later, status=200, latency_ms=1, ttft_ms=None, tokens_out=0)
    snapshot = ring.snapshot(later)
    assert len(snapshot) == 1 and next(iter(snapshot.values()))["requests"] == 1


def test_client_addresses_are_bounded() -> None:
    stats = Stats()
    for n in range(MAX_CLIENTS + 100):
        record = RequestRecord(f"r{n}", "query", 0.0, client=f"10.0.{n // 256}.{n % 256}")
        record.status = 200
        stats.record(record, {"latency_ms": 1.0}, 1_000_000.0)
    assert len(stats.clients) == MAX_CLIENTS
    assert "10.0.0.0" not in stats.clients  # the least recently seen went first


# -- sessions -----------------------------------------------------------------------------------


def test_sessions_expire_and_ids_come_only_from_login() -> None:
    sessions = Sessions(ADMIN_PASSWORD, 60.0, RateLimit(requests_per_minute=60, burst=3))
    now = [100.0]
    sessions._clock = lambda: now[0]
    assert sessions.get("planted") is None
    assert sessions.login("wrong", "1.2.3.4") is None
    session = sessions.login(ADMIN_PASSWORD, "1.2.3.4")
    assert session is not None and sessions.get(session.id) is session
    assert session.label not in session.id
    assert Sessions.csrf_ok(session, session.csrf) and not Sessions.csrf_ok(session, None)
    assert not Sessions.csrf_ok(session, session.id)
    now[0] += 61
    assert sessions.get(session.id) is None
    with pytest.raises(LoginLimited):
        for _ in range(5):
            sessions.login("wrong", "1.2.3.4")
    assert sessions.counts["failed"] >= 2 and sessions.counts["limited"] == 1


# -- commands under hostile input --------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_commands = st.fixed_dictionaries(
    {
        "control": st.sampled_from(
            [
                "ip_rate_limit",
                "caller_rate_limit",
                "blocklist_add",
                "blocklist_remove",
                "max_concurrent_requests",
                "target_max_concurrent",
                "drain",
                "other",
            ]
        )
    },
    optional={
        "value": _json,
        "target": st.sampled_from(["echo", "nope", ""]) | st.text(max_size=5),
        "caller": st.text(max_size=8),
        "address": st.sampled_from(["10.0.0.1", "::1", "10.0.0.0/8", "1.2.3.999", ""]),
    },
)


@pytest.fixture(scope="module")
def gateway_app() -> Any:
    config, secrets, problems = check_text(CONSOLE, environ=ENV, serving=True)
    assert not [p for p in problems if not p.warning]
    return create_app(config, secrets)


@settings(max_examples=300, deadline=None)
@given(body=_commands | _json)
def test_hostile_commands_get_a_clear_error_or_a_valid_change(gateway_app: Any, body: Any) -> None:
    controls = gateway_app.admin.controls
    raw = json.dumps(body).encode()
    error: Exception | None = None
    try:
        command = msgspec.json.decode(raw, type=COMMAND)
        field, value, subject = controls._field(command)
    except (msgspec.DecodeError, ControlError) as exc:
        error = exc
    if error is not None:
        assert str(error)  # a message that says what is wrong
        return
    assert field and subject
    json.dumps(value)  # what is stored is JSON


# -- the ASGI surface in-process: console off, Secure cookie over TLS ----------------------


async def _call(
    app: Any, method: str, path: str, body: bytes = b"", *, scheme: str = "http", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "scheme": scheme,
        "query_string": b"",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    out = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], out, b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.anyio
async def test_the_cookie_is_secure_over_tls(gateway_app: Any) -> None:
    body = json.dumps({"password": ADMIN_PASSWORD}).encode()
    status, headers, _ = await _call(
        gateway_app.management, "POST", "/admin/api/login", body, scheme="https",
        content_type="application/json",
    )  # fmt: skip
    assert status == 200
    assert "; Secure" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]


@pytest.mark.anyio
async def test_the_console_is_off_without_a_password() -> None:
    environ = {k: v for k, v in ENV.items() if k != "GW_ADMIN_PASSWORD"}
    config, secrets, problems = check_text(CONSOLE, environ=environ, serving=True)
    assert [p.message for p in problems if p.warning] == [
        "environment variable GW_ADMIN_PASSWORD is not set: the admin console is off"
    ]
    app = create_app(config, secrets)
    assert not app.admin.enabled
    for path in ("/admin", "/admin/login", "/admin/api/overview", "/admin/static/app.js"):
        status, _, _ = await _call(app.management, "GET", path)
        assert status == 404, path
    body = json.dumps({"password": ""}).encode()
    status, _, _ = await _call(app.management, "POST", "/admin/api/login", body)
    assert status == 404


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('path = "admin"', "must be an absolute path"),
        ('path = "/"', "must be an absolute path"),
        ('path = "/admin/"', "must not end with /"),
        ('path = "/metrics"', "overlaps the metrics route"),
        ("session_ttl = 5", "between 60 seconds and 7 days"),
        ("login_rate_limit = { requests_per_minute = 0 }", "requests_per_minute must be positive"),
        ("colour = 1", "unknown key 'colour'"),
        ('password_env = "SHORT_PASSWORD"', "at least 12 characters"),
    ],
)
def test_admin_table_is_checked(table: str, message: str) -> None:
    text = CONSOLE.split("[admin]")[0] + "[admin]\n" + table + "\n"
    environ = {**ENV, "SHORT_PASSWORD": "short"}
    _, _, problems = check_text(text, environ=environ, serving=True)
    errors = [p for p in problems if not p.warning]
    assert any(message in p.message for p in errors), problems
    assert all(p.line is not None for p in errors)


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()),
    cookie=st.text(max_size=80).map(lambda t: t.encode("utf-8", "replace").decode("latin-1")),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; x"]),
)
def test_hostile_logins_and_cookies_get_clear_refusals(
    gateway_app: Any, body: bytes, cookie: str, content_type: str
) -> None:
    async def attempt() -> None:
        app = gateway_app.management
        status, _, answer = await _call(
            app, "POST", "/admin/api/login", body, content_type=content_type, cookie=cookie
        )
        assert status in (400, 401, 415, 429), answer
        assert json.loads(answer)["error"]["message"]
        status, _, _ = await _call(app, "GET", "/admin/api/overview", cookie=cookie)
        assert status == 401

    for backend in ("asyncio", "trio"):
        anyio.run(attempt, backend=backend)
