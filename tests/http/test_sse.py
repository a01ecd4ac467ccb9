"""The sans-I/O SSE decoder: the event-stream rules, and chunking never changes the events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipp.http import SSEDecoder, SSEError, SSEEvent


def _decode(data: bytes, cuts: list[int] | None = None) -> tuple[list[SSEEvent], bool]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in sorted(cuts or []):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events, decoder.close()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"data: a\n\n", [("message", "a")], id="lf"),
        pytest.param(b"data: a\r\n\r\n", [("message", "a")], id="crlf"),
        pytest.param(b"data: a\r\r", [("message", "a")], id="cr"),
        pytest.param(b"data:a\n\n", [("message", "a")], id="no-space"),
        pytest.param(b"data:  a\n\n", [("message", " a")], id="only-one-space-removed"),
        pytest.param(b"data: a\ndata: b\n\n", [("message", "a\nb")], id="multi-line"),
        pytest.param(b": keep-alive\n\n", [], id="comment-only"),
        pytest.param(b"event: token\ndata: {}\n\n", [("token", "{}")], id="named"),
        pytest.param(b"event: x\n\ndata: y\n\n", [("message", "y")], id="event-without-data"),
        pytest.param(b"\xef\xbb\xbfdata: bom\n\n", [("message", "bom")], id="bom"),
        pytest.param(b"data\n\n", [("message", "")], id="field-without-colon"),
        pytest.param(b"unknown: z\ndata: a\n\n", [("message", "a")], id="unknown-field"),
    ],
)
def test_event_stream_rules(data: bytes, expected: list[tuple[str, str]]) -> None:
    events, cut = _decode(data)
    assert [(e.event, e.data) for e in events] == expected
    assert not cut


def test_a_cut_off_event_is_reported() -> None:
    events, cut = _decode(b"data: done\n\ndata: trunc")
    assert [e.data for e in events] == ["done"]
    assert cut


def test_an_oversized_line_is_refused() -> None:
    decoder = SSEDecoder()
    with pytest.raises(SSEError):
        for _ in range(5):
            decoder.feed(b"x" * (1024 * 1024))


frames = st.lists(
    st.tuples(
        st.sampled_from([b"", b"event: token\n", b"event: done\n", b": ping\n", b"id: 7\n"]),
        st.lists(
            st.text(max_size=20).map(lambda s: s.replace("\n", "").replace("\r", "")),
            min_size=1,
            max_size=3,
        ),
        st.sampled_from([b"\n", b"\r\n", b"\r"]),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(frames, st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
def test_chunking_never_changes_the_events(
    stream: list[tuple[bytes, list[str], bytes]], cuts: list[int]
) -> None:
    data = b""
    for prefix, lines, end in stream:
        data += prefix.replace(b"\n", end)
        for line in lines:
            data += b"data: " + line.encode() + end
        data += end
    whole = _decode(data)
    assert _decode(data, [c for c in cuts if c <= len(data)]) == whole
    assert len(whole[0]) == len(stream)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_arbitrary_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    assert _decode(data, [c for c in cuts if c <= len(data)]) == _decode(data)
