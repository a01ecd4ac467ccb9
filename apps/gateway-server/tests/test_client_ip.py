"""Client-IP rules (issue 11, item 6): no path around the blocklist and the per-IP limits.

Three ways used to work: uvicorn's own proxy-header handling trusted
``X-Forwarded-For`` from loopback even with ``client_ip = "peer"``; only the
first ``X-Forwarded-For`` line was read behind a trusted proxy; and an IPv4
client of a ``[::]`` listener (``::ffff:a.b.c.d``) escaped IPv4 entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from gw_configs import MAIN
from gwtest import TOKEN, Gateway, start_gateway
from sipp_gateway_server._auth import ClientAddress

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {TOKEN}"}
QUERY = {"model": "echo", "prompt": "x"}

PEER_ONLY = """
[[targets]]
name = "echo"
kind = "scripted"

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"

[security]
client_ip = "peer"
blocklist = ["203.0.113.0/24"]
"""

#: Blocks the loopback network itself: an IPv4 client of a [::] listener must match it.
LOOPBACK_BLOCKED = """
[[targets]]
name = "echo"
kind = "scripted"

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"

[security]
blocklist = ["127.0.0.0/8"]
ip_rate_limit = { requests_per_minute = 60, burst = 1000 }
"""


async def test_forwarded_header_is_ignored_when_client_ip_is_peer(
    gateways: Callable[[str, str], Gateway], backend: str
) -> None:
    gateway = gateways(PEER_ONLY, backend)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        # A blocked address in the header must not become the client (uvicorn's
        # proxy_headers used to rewrite the peer from it), nor hide the peer.
        for header in ("x-forwarded-for", "forwarded", "x-real-ip"):
            value = "for=203.0.113.7" if header == "forwarded" else "203.0.113.7"
            headers = {**AUTH, header: value, "x-request-id": f"peer-{header}"}
            response = await http.post("/v1/query", json=QUERY, headers=headers)
            assert response.status_code == 200, header
            logs = gateway.wait_log(f"peer-{header}")
            line = next(x for x in logs.splitlines() if f'"peer-{header}"' in x)
            assert '"client":"127.0.0.1"' in line


async def test_every_forwarded_for_line_is_read_from_the_right(
    gateways: Callable[[str, str], Gateway], backend: str
) -> None:
    gateway = gateways(MAIN, backend)  # trusts 127.0.0.1, blocks 203.0.113.0/24
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        # The client wrote the first line; our proxy appended the second with
        # the address it saw: that one (blocked) must win.
        headers = [
            ("authorization", f"Bearer {TOKEN}"),
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "203.0.113.9"),
        ]
        response = await http.post("/v1/query", json=QUERY, headers=headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "blocked"
        headers[1:] = [("x-forwarded-for", "203.0.113.9"), ("x-forwarded-for", "198.51.100.7")]
        assert (await http.post("/v1/query", json=QUERY, headers=headers)).status_code == 200


@pytest.fixture
def dual_stack(backend: str) -> Iterator[Gateway]:
    gateway = start_gateway(LOOPBACK_BLOCKED, backend, listen_host="[::]")
    yield gateway
    gateway.stop()


async def test_ipv4_client_of_a_dual_stack_listener_matches_ipv4_rules(
    dual_stack: Gateway,
) -> None:
    async with httpx.AsyncClient(base_url=dual_stack.url, timeout=10) as http:
        response = await http.post("/v1/query", json=QUERY, headers=AUTH)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "blocked"
    assert '"client":"127.0.0.1"' in dual_stack.wait_log('"status":403')


@pytest.mark.parametrize(
    ("peer", "lines", "expected"),
    [
        ("::ffff:10.0.0.1", [], "10.0.0.1"),
        ("127.0.0.1", [b"1.1.1.1", b"2.2.2.2, 127.0.0.1"], "2.2.2.2"),
        ("::ffff:127.0.0.1", [b"::ffff:3.3.3.3"], "3.3.3.3"),
        ("127.0.0.1", [b"1.1.1.1", b"not-an-ip"], "127.0.0.1"),
        ("127.0.0.1", [b"127.0.0.1", b"127.0.0.1"], "127.0.0.1"),
        ("192.0.2.1", [b"1.1.1.1"], "192.0.2.1"),  # untrusted peer: header ignored
        ("2001:db8::1", [], "2001:db8::1"),
    ],
)
def test_resolve_rules(peer: str, lines: list[bytes], expected: str) -> None:
    addresses = ClientAddress("x_forwarded_for", ["127.0.0.1/32"], ["10.0.0.0/8"])
    headers = [(b"x-forwarded-for", line) for line in lines]
    assert addresses.resolve(peer, headers) == expected


def test_two_real_ip_lines_are_not_trusted() -> None:
    addresses = ClientAddress("x_real_ip", ["127.0.0.1/32"], [])
    one = [(b"x-real-ip", b"1.1.1.1")]
    assert addresses.resolve("127.0.0.1", one) == "1.1.1.1"
    assert addresses.resolve("127.0.0.1", [*one, (b"x-real-ip", b"2.2.2.2")]) == "127.0.0.1"


def test_a_changed_blocklist_applies_to_an_address_seen_before() -> None:
    # Verdicts are remembered per address; the admin console's change must not be shadowed.
    addresses = ClientAddress("peer", [], ["203.0.113.0/24"])
    assert addresses.blocked("203.0.113.7")
    assert not addresses.blocked("198.51.100.1")
    addresses.set_blocklist(["198.51.100.0/24"])
    assert not addresses.blocked("203.0.113.7")
    assert addresses.blocked("198.51.100.1")
    addresses.set_blocklist([])
    assert not addresses.blocked("198.51.100.1")


def test_a_remembered_peer_resolves_the_same_every_time() -> None:
    addresses = ClientAddress("peer", [], [])
    for _ in range(3):
        assert addresses.resolve("::ffff:192.0.2.1", []) == "192.0.2.1"
        assert addresses.resolve("2001:db8::0:1", []) == "2001:db8::1"
