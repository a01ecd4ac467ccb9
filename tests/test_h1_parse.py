"""The lean transport's sans-I/O response parser, and hostile responses over a socket."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from h1_servers import RawServer, always
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipp.http import LeanTransport
from sipp.http._h1._parse import (
    MAX_HEAD,
    MAX_LINE,
    ChunkedReader,
    LengthReader,
    find_head_end,
    parse_head,
    reader_for,
)


def parse(
    data: bytes, pieces: list[int] | None = None, method: bytes = b"GET"
) -> tuple[int, bytes]:
    """Status and body of one whole response in ``data``, fed in pieces; EOF at the end."""
    end = find_head_end(data)
    if end < 0:
        raise httpx.RemoteProtocolError("incomplete head")
    head = parse_head(data[:end])
    reader = reader_for(head, method)
    rest = data[end:]
    cuts = [*sorted({min(max(p, 0), len(rest)) for p in pieces or []}), len(rest)]
    body = b""
    start = 0
    for cut in cuts:
        if reader.done:
            break
        got, _ = reader.feed(rest[start:cut])
        body += got
        start = cut
    if not reader.done:
        reader.end()
    return head.status, body


@pytest.mark.parametrize(
    ("data", "status", "body"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 200, b"abc", id="length"),
        pytest.param(b"HTTP/1.0 404\r\n\r\nnot here", 404, b"not here", id="no-reason-close"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n"
            b"2\r\nab\r\n0\r\n\r\n",
            200,
            b"ab",
            id="chunked-wins-over-length",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", 200, b"abc", id="same-lengths"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"A;name=v\r\n0123456789\r\n0\r\n\r\n",
            200,
            b"0123456789",
            id="hex-size-with-extension",
        ),
    ],
)
@pytest.mark.parametrize("pieces", [None, [1, 2, 3, 5, 8, 13, 21]], ids=["whole", "split"])
def test_valid_responses(data: bytes, status: int, body: bytes, pieces: list[int] | None) -> None:
    assert parse(data, pieces) == (status, body)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"HTTP/1.1 20 OK\r\n\r\n", id="short-status"),
        pytest.param(b"HTTP/2 200 OK\r\n\r\n", id="version"),
        pytest.param(b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", id="no-colon"),
        pytest.param(b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", id="obs-fold"),
        pytest.param(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", id="space-in-name"),
        pytest.param(b"HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n", id="nul-in-value"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", id="two-lengths"
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", id="te-gzip"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", id="body-cut"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-size"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
            id="no-crlf-after-data",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", id="no-last-chunk"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
            id="bad-trailer",
        ),
    ],
)
def test_malformed_responses_are_remote_protocol_errors(data: bytes) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        parse(data)


def test_head_size_is_bounded() -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="larger than"):
        find_head_end(b"HTTP/1.1 200 OK\r\nx: " + b"a" * MAX_HEAD)


def test_chunk_size_line_is_bounded() -> None:
    reader = ChunkedReader()
    with pytest.raises(httpx.RemoteProtocolError, match="longer than"):
        for _ in range(
            MAX_LINE + 2
        ):  # one byte at a time: the pending line must not grow unbounded
            reader.feed(b"1")


def test_chunks_of_one_read_come_back_as_one_piece() -> None:
    reader = ChunkedReader()
    body, rest = reader.feed(b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\nNEXT")
    assert (body, rest, reader.done) == (b"abcdef", b"NEXT", True)


def test_length_reader_returns_what_follows_the_body() -> None:
    reader = LengthReader(3)
    assert reader.feed(b"abcdef") == (b"abc", b"def")
    assert reader.done


_PREFIXES = [
    b"",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
]
_hostile = st.tuples(
    st.sampled_from(_PREFIXES),
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"\r\n", b"\r\n\r\n", b":", b" ", b"0", b"ff", b";", b"\n", b"\x00"]),
        ),
        max_size=20,
    ),
).map(lambda parts: parts[0] + b"".join(parts[1]))


@given(data=_hostile, pieces=st.lists(st.integers(0, 200), max_size=6))
@settings(max_examples=400)
def test_hostile_bytes_parse_or_raise_remote_protocol_error(data: bytes, pieces: list[int]) -> None:
    with contextlib.suppress(httpx.RemoteProtocolError):
        parse(data, pieces)


@pytest.mark.anyio
@given(data=_hostile)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_hostile_responses_over_a_socket(data: bytes) -> None:
    # The server sends the bytes and closes, so every case ends: a response or
    # RemoteProtocolError, never a hang and never another exception.
    with RawServer(always(data, close=True)) as server:
        async with httpx.AsyncClient(transport=LeanTransport()) as http:
            try:
                response = await http.get(server.url)
            except httpx.RemoteProtocolError:
                return
            assert 100 <= response.status_code <= 999
