"""LeanTransport against real loopback servers: framings, keep-alive, faults, TLS."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import trustme
from h1_servers import HypercornServer, RawServer, always

from sipp.http import LeanTransport
from sipp.testing import ThreadedServer

pytestmark = pytest.mark.anyio

JSON = b'{"ok": true}'
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n" + JSON


def client(**limits: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=LeanTransport(limits=httpx.Limits(**limits)),
        timeout=httpx.Timeout(None, connect=5.0),
    )


def pool_of(http: httpx.AsyncClient) -> Any:
    transport = http._transport
    assert isinstance(transport, LeanTransport)
    return transport.pool


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        pytest.param(OK, JSON, id="content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
            b"hello world",
            id="chunked",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nx-checksum: 1\r\nx-more: 2\r\n\r\n",
            b"abc",
            id="chunked-trailers",
        ),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + OK,
            JSON,
            id="1xx-skipped",
        ),
    ],
)
async def test_body_framings_on_a_kept_alive_connection(answer: bytes, body: bytes) -> None:
    with RawServer(always(answer)) as server:
        async with client() as http:
            for _ in range(3):
                response = await http.post(server.url + "/x", content=b"{}")
                assert response.status_code == 200
                assert response.content == body
        assert server.connections == 1


async def test_close_delimited_body_is_read_to_eof_and_not_reused() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"
    with RawServer(always(answer, close=True)) as server:
        async with client() as http:
            for _ in range(2):
                response = await http.get(server.url)
                assert response.content == b"until the end"
            assert pool_of(http).connections == 0
        assert server.connections == 2


@pytest.mark.parametrize(
    ("method", "status"),
    [
        pytest.param("HEAD", 200, id="head"),
        pytest.param("GET", 204, id="204"),
        pytest.param("GET", 304, id="304"),
    ],
)
async def test_responses_without_body_ignore_their_length(method: str, status: int) -> None:
    # A HEAD answer announces the length of the GET body, 204/304 have none:
    # reading one would swallow the next response.
    answer = b"HTTP/1.1 %d X\r\ncontent-length: 12\r\n\r\n" % status
    with RawServer(lambda request, i: (answer if i == 0 else OK, False)) as server:
        async with client() as http:
            first = await http.request(method, server.url)
            second = await http.get(server.url)
        assert (first.status_code, first.content) == (status, b"")
        assert second.content == JSON
        assert server.connections == 1


async def test_connection_close_header_is_honoured() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 12\r\n\r\n" + JSON
    with RawServer(always(answer)) as server:
        async with client() as http:
            for _ in range(2):
                assert (await http.get(server.url)).content == JSON
        assert server.connections == 2


async def test_request_with_streamed_body_is_sent_chunked() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"defg"

    with RawServer(always(OK)) as server:
        async with client() as http:
            response = await http.post(server.url, content=parts())
        assert response.content == JSON
        assert server.requests[0].endswith(b"\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")


async def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    with RawServer(always(OK, close=True)) as server:
        async with client() as http:
            assert (await http.get(server.url)).content == JSON
            await anyio.sleep(0.05)  # let the server's FIN arrive (correct either way)
            assert (await http.get(server.url)).content == JSON
        assert server.connections == 2


async def test_stale_connection_is_retried_once_on_a_fresh_one() -> None:
    # The server takes the second request on a kept-alive connection and closes
    # without a byte of answer: the race of an idle timeout with a new request.
    def respond(request: bytes, index: int) -> tuple[bytes | None, bool]:
        return (OK if index == 0 else None), False

    with RawServer(respond) as server:
        async with client() as http:
            for _ in range(3):
                assert (await http.post(server.url, content=b"{}")).content == JSON
        assert server.connections == 3
        assert len(server.requests) == 5  # two were answered by silence, then resent


async def test_fresh_connection_failing_is_not_retried() -> None:
    with RawServer(lambda request, index: (None, False)) as server:
        async with client() as http:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await http.get(server.url)
        assert server.connections == 1


async def test_body_cut_short_is_a_remote_protocol_error() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this"
    with RawServer(always(answer, close=True)) as server:
        async with client() as http:
            with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
                await http.get(server.url)
            assert pool_of(http).connections == 0


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")
        assert pool_of(http).connections == 0


async def test_connect_timeout_from_the_request_timeout() -> None:
    # A listener that never accepts, with its one-entry backlog already taken:
    # the kernel drops further SYNs, so connecting hangs until the timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        try:
            async with client() as http:
                with pytest.raises(httpx.ConnectTimeout):
                    await http.get(f"http://{address[0]}:{address[1]}/", timeout=0.3)
                assert pool_of(http).connections == 0
        finally:
            for filler in fillers:
                filler.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


async def test_tls_with_a_trusted_ca_keeps_alive(ca: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    with RawServer(always(OK), tls=_server_context(ca)) as server:
        async with httpx.AsyncClient(transport=LeanTransport(verify=trusting)) as http:
            for _ in range(3):
                response = await http.get(server.url)
                assert response.content == JSON
        assert server.connections == 1


async def test_tls_with_an_untrusted_certificate_is_a_connect_error(ca: trustme.CA) -> None:
    with RawServer(always(OK), tls=_server_context(ca)) as server:
        async with httpx.AsyncClient(transport=LeanTransport()) as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(server.url)


async def test_unsupported_scheme() -> None:
    async with client() as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("ftp://127.0.0.1/")


async def test_header_injection_is_refused_before_sending() -> None:
    with RawServer(always(OK)) as server:
        async with client() as http:
            with pytest.raises(httpx.LocalProtocolError):
                await http.get(server.url, headers={"x-a": "1\r\nx-b: 2"})
        assert server.requests == []


async def _asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """JSON at /json; a 3-event SSE stream at /sse; the client port in a header."""
    if scope["type"] != "http":
        return
    port = str(scope["client"][1]).encode()
    kind = b"text/event-stream" if scope["path"] == "/sse" else b"application/json"
    headers = [(b"content-type", kind), (b"x-port", port)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/sse":
        for i in range(3):
            await send({"type": "http.response.body", "body": b"data: %d\n\n" % i,
                        "more_body": True})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.body", "body": JSON})


@pytest.mark.parametrize("server_kind", ["uvicorn", "hypercorn"])
async def test_real_servers_json_and_streams_on_one_connection(server_kind: str) -> None:
    server = ThreadedServer(_asgi) if server_kind == "uvicorn" else HypercornServer(_asgi)
    with server:
        ports = set()
        async with client() as http:
            for _ in range(3):
                response = await http.get(server.url + "/json")
                assert response.json() == {"ok": True}
                ports.add(response.headers["x-port"])
                async with http.stream("GET", server.url + "/sse") as stream:
                    text = b"".join([chunk async for chunk in stream.aiter_raw()])
                assert text == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
                ports.add(stream.headers["x-port"])
        assert len(ports) == 1


SLOW_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _slow(request: bytes, index: int) -> tuple[bytes | None, bool]:
    if b"GET /slow" in request:
        # Head and one event, then nothing: the stream stays open until the client leaves.
        return SLOW_HEAD + b"a\r\ndata: 1\n\n\r\n", False
    return OK, False


async def test_cancel_mid_stream_frees_the_slot() -> None:
    with RawServer(_slow) as server:
        async with client(max_connections=1) as http:
            with anyio.CancelScope() as scope:
                async with http.stream("GET", server.url + "/slow") as response:
                    async for _ in response.aiter_raw():
                        scope.cancel()
            assert pool_of(http).connections == 0
            assert (await http.get(server.url + "/json")).content == JSON


async def test_stream_closed_early_closes_its_connection() -> None:
    with RawServer(_slow) as server:
        async with client(max_connections=1) as http:
            async with http.stream("GET", server.url + "/slow") as response:
                await response.aiter_raw().__anext__()
            assert pool_of(http).connections == 0
            assert (await http.get(server.url + "/json")).content == JSON
        assert server.connections == 2


async def test_a_thousand_cancelled_streams_leave_the_pool_empty() -> None:
    with RawServer(_slow) as server:
        async with client(max_connections=10) as http:
            pool = pool_of(http)
            for _ in range(10):
                streaming = 0

                async def stream(all_busy: anyio.Event) -> None:
                    nonlocal streaming
                    async with http.stream("GET", server.url + "/slow") as response:
                        chunks = response.aiter_raw()
                        await chunks.__anext__()
                        streaming += 1
                        if streaming == 10:
                            all_busy.set()
                        await anyio.sleep_forever()

                all_busy = anyio.Event()
                async with anyio.create_task_group() as group:
                    for _ in range(100):  # 10 stream, 90 wait for the pool
                        group.start_soon(stream, all_busy)
                    await all_busy.wait()
                    group.cancel_scope.cancel()
            assert (pool.connections, pool.idle) == (0, 0)
            assert (await http.get(server.url + "/json")).content == JSON


async def test_callers_at_the_pool_limit_are_served_in_order() -> None:
    with RawServer(_slow) as server:
        async with client(max_connections=1) as http:
            served: list[int] = []

            async def call(i: int) -> None:
                await http.get(server.url + "/json")
                served.append(i)

            async with http.stream("GET", server.url + "/slow") as response:
                chunks = response.aiter_raw()  # kept: a dropped iterator closes the stream
                await chunks.__anext__()
                async with anyio.create_task_group() as group:
                    for i in range(5):
                        group.start_soon(call, i)
                        await anyio.wait_all_tasks_blocked()  # i is queued before i + 1
                    await response.aclose()  # the slot goes to caller 0, then 1, ...
            assert served == [0, 1, 2, 3, 4]


async def test_pool_timeout() -> None:
    with RawServer(_slow) as server:
        async with client(max_connections=1) as http:
            async with http.stream("GET", server.url + "/slow") as response:
                chunks = response.aiter_raw()  # kept: a dropped iterator closes the stream
                await chunks.__anext__()
                with pytest.raises(httpx.PoolTimeout):
                    await http.get(server.url + "/json", timeout=httpx.Timeout(None, pool=0.1))
            assert (await http.get(server.url + "/json")).content == JSON
