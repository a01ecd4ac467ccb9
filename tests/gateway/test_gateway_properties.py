"""Property-based tests: arbitrary input gives a profile error or a typed value, never a crash."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sipp import ToolCallDelta
from sipp.gateway import (
    DecodedChat,
    DecodedEmbed,
    DecodedQuery,
    GatewayEventReader,
    GatewayProfileError,
    GatewayStreamViolation,
    decode_gateway_chat_body,
    decode_gateway_embed_body,
    decode_gateway_query_body,
    done_frame,
    error_frame,
    parse_json_body,
    reasoning_frame,
    token_frame,
    tool_call_frame,
    usage_frame,
)
from sipp.http import SSEDecoder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    ["model", "prompt", "messages", "input", "max_tokens", "temperature", "top_p", "stop",
     "stream", "seed", "role", "content", "extra"]
)  # fmt: skip
bodies = st.dictionaries(keys, json_values | st.lists(st.dictionaries(keys, json_values)))


@settings(max_examples=300)
@given(st.one_of(bodies, json_values))
def test_decoders_return_a_value_or_a_profile_error(body: Any) -> None:
    for decode, kind in (
        (decode_gateway_query_body, DecodedQuery),
        (decode_gateway_chat_body, DecodedChat),
        (decode_gateway_embed_body, DecodedEmbed),
    ):
        try:
            decoded: Any = decode(body)
        except GatewayProfileError as error:
            decoded = error
        if isinstance(decoded, GatewayProfileError):
            assert (decoded.code, decoded.status) == ("invalid_request", 400)
        else:
            assert isinstance(decoded, kind)
            assert decoded.target.strip() if isinstance(decoded.target, str) else False


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_parsing_arbitrary_bytes_never_crashes(raw: bytes) -> None:
    try:
        value = parse_json_body(raw)
    except GatewayProfileError as error:
        value = error
    if isinstance(value, GatewayProfileError):
        assert value.code == "invalid_json"
        return
    with contextlib.suppress(GatewayProfileError):
        decode_gateway_query_body(value)


frames = st.lists(
    st.one_of(
        st.builds(token_frame, st.text(), st.integers(0, 10**6)),
        st.builds(reasoning_frame, st.text(), st.integers(0, 10**6)),
        st.builds(
            tool_call_frame,
            st.builds(
                ToolCallDelta,
                index=st.integers(0, 5),
                id=st.none() | st.text(max_size=5),
                name=st.none() | st.text(max_size=5),
                arguments=st.text(max_size=10),
            ),
        ),
        st.builds(usage_frame, st.fixed_dictionaries({"input_tokens": st.integers(0, 99)})),
        st.just(b": keep-alive\n\n"),
        st.just(b"data: [DONE]\n\n"),
    ),
    max_size=8,
).flatmap(
    lambda body: st.sampled_from(
        [
            done_frame("stop"),
            error_frame("execution", "x"),
            b"",
            b"event: other\ndata: {}\n\n",
            done_frame("stop") + token_frame("late", 9),  # events after done: a violation
            done_frame("tool_calls") + tool_call_frame(ToolCallDelta(index=0, arguments="}")),
        ]
    ).map(lambda tail: b"".join(body) + tail)
)


def read(chunks: list[bytes]) -> list[Any]:
    decoder, reader, out = SSEDecoder(), GatewayEventReader(), []
    try:
        for chunk in chunks:
            for event in decoder.feed(chunk):
                out.append(reader.feed(event))
        decoder.close()
        reader.close()
    except GatewayStreamViolation as violation:
        out.append(("violation", str(violation)))
    return out


@settings(max_examples=300)
@given(frames, st.data())
def test_reader_gives_the_same_events_however_the_bytes_are_split(
    stream: bytes, data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert read(chunks) == read([stream])


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_reader_on_arbitrary_bytes_gives_events_or_a_violation(raw: bytes) -> None:
    result = read([raw])
    assert all(item is None or hasattr(item, "__struct_fields__") for item in result[:-1])
