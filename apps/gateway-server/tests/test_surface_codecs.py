"""The surfaces' sans-I/O codecs: exact mappings, every refusal, hostile bodies.

Whatever JSON arrives, a decoder either returns a request or raises
``InvalidRequestError`` (a 400 in the API's own envelope), never anything
else; the encoders' bytes are checked against the APIs' shapes.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sipp_gateway_server._surface import Failure
from sipp_gateway_server.anthropic_api._decode import decode_messages
from sipp_gateway_server.anthropic_api._encode import MessageEvents, error_body
from sipp_gateway_server.openai_api._decode import (
    decode_chat,
    decode_completion,
    decode_embeddings,
)
from sipp_gateway_server.openai_api._encode import ChatChunks
from sipp_gateway_server.openai_api._encode import error_body as openai_error

from sipp import (
    ChatRequest,
    EndpointInfo,
    ImagePart,
    InvalidRequestError,
    TextResponse,
    ToolCall,
    Usage,
)

USER = [{"role": "user", "content": "hi"}]


def test_openai_chat_maps_every_field() -> None:
    decoded = decode_chat(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "rules"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAEC"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "done"},
            ],
            "max_tokens": 5,
            "max_completion_tokens": 7,
            "stop": "END",
            "seed": 3,
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_object"},
            "reasoning_effort": "minimal",
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "ignored",
        }
    )
    request = decoded.request
    assert isinstance(request, ChatRequest)
    assert decoded.target == "m" and decoded.stream and decoded.details.include_usage
    assert [m.role for m in request.messages] == ["system", "user", "assistant", "tool"]
    image = request.messages[1].content[1]
    assert isinstance(image, ImagePart) and image.data == b"\x00\x01\x02"
    assert image.media_type == "image/png"
    assert request.messages[2].tool_calls == [ToolCall(id="c1", name="f", arguments="{}")]
    assert request.max_tokens == 7 and request.stop == ["END"] and request.seed == 3
    assert request.tool_choice == "f" and request.output_schema == {"type": "object"}
    assert request.reasoning is not None and request.reasoning.effort == "low"
    assert request.emit_tokens


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": USER, "n": 2}, "n"),
        ({"model": "m", "messages": USER, "logprobs": True}, "logprobs"),
        ({"model": "m", "messages": USER, "temperature": 3}, "temperature"),
        ({"model": "m", "messages": USER, "tool_choice": "weather"}, "tool_choice"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0]",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ],
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {"model": "m", "messages": USER, "response_format": {"type": "json_schema"}},
            "response_format",
        ),
    ],
)
def test_openai_chat_refusals_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        decode_chat(body)
    assert refused.value.field == field


def test_openai_completion_and_embedding_refusals() -> None:
    for body in (
        {"model": "m", "prompt": ["a", "b"]},
        {"model": "m", "prompt": "a", "echo": True},
        {"model": "m", "prompt": "a", "best_of": 2},
        {"model": "m", "prompt": [1, 2]},
    ):
        with pytest.raises(InvalidRequestError):
            decode_completion(body)
    for body in (
        {"model": "m", "input": []},
        {"model": "m", "input": "a", "dimensions": 8},
        {"model": "m", "input": [[1, 2]]},
        {"model": "m", "input": "a", "encoding_format": "hex"},
    ):
        with pytest.raises(InvalidRequestError):
            decode_embeddings(body)
    assert decode_embeddings({"model": "m", "input": ["one"]}).request.input == "one"
    assert decode_embeddings({"model": "m", "input": ["a", "b"]}).request.input == ["a", "b"]


def test_anthropic_messages_map_tool_turns_and_thinking() -> None:
    decoded = decode_messages(
        {
            "model": "m",
            "max_tokens": 9,
            "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": "bad",
                            "is_error": True,
                        },
                        {"type": "text", "text": "and?"},
                    ],
                },
            ],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"},
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "metadata": {"user_id": "ignored"},
        }
    )
    request = decoded.request
    roles = [(m.role, m.text) for m in request.messages]
    assert roles == [
        ("system", "a\n\nb"),
        ("user", "q"),
        ("assistant", "calling"),
        ("tool", "error: bad"),
        ("user", "and?"),
    ]
    assert request.messages[2].tool_calls == [ToolCall(id="t1", name="f", arguments='{"x":1}')]
    assert request.tool_choice == "required" and request.max_tokens == 9
    assert request.reasoning.budget_tokens == 2000
    assert request.output_schema == {"type": "object"}


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": USER},  # no max_tokens
        {"model": "m", "max_tokens": 0, "messages": USER},
        {"model": "m", "max_tokens": 5, "messages": USER, "top_k": 3},
        {"model": "m", "max_tokens": 5, "messages": USER, "thinking": {"type": "enabled"}},
        {
            "model": "m",
            "max_tokens": 5,
            "messages": USER,
            "tools": [{"name": "s", "type": "web_search_20250305", "input_schema": {}}],
        },
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}
            ],
        },
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "", "data": "AA=="},
                        }
                    ],
                }
            ],
        },
    ],
)
def test_anthropic_refusals(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        decode_messages(body)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "model",
                    "messages",
                    "role",
                    "content",
                    "type",
                    "text",
                    "tools",
                    "input",
                    "prompt",
                    "max_tokens",
                    "tool_choice",
                    "image_url",
                    "url",
                    "source",
                    "function",
                    "name",
                    "tool_calls",
                    "system",
                    "thinking",
                    "stream",
                    "response_format",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_json)
def test_hostile_bodies_are_400s_or_requests(body: Any) -> None:
    for decode in (decode_chat, decode_completion, decode_embeddings, decode_messages):
        with contextlib.suppress(InvalidRequestError):
            decode(body)


def _response(**fields: Any) -> TextResponse:
    return TextResponse(
        endpoint=EndpointInfo(kind="scripted", name="t"),
        finish_reason=fields.pop("finish_reason", "stop"),
        usage=Usage(input_tokens=2, output_tokens=3),
        **fields,
    )


def test_error_envelopes() -> None:
    failure = Failure(429, "rate_limited", "slow down", "3", None)
    assert openai_error(failure) == {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limited",
        }
    }
    assert error_body(Failure(529, "execution", "busy")) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    assert error_body(Failure(502, "execution", "x"))["error"]["type"] == "api_error"


def test_empty_answers_still_have_a_block_and_a_final_chunk() -> None:
    from sipp_gateway_server.anthropic_api._decode import MessagesDetails
    from sipp_gateway_server.openai_api._decode import ChatDetails

    events = MessageEvents(MessagesDetails("m"), "r1")
    tail = events.begin() + events.end(_response(text=""))
    names = [line[7:] for line in tail.decode().splitlines() if line.startswith("event: ")]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    chunks = ChatChunks(ChatDetails("m", True), "r1")
    frames = (chunks.begin() + chunks.end(_response(text=""))).decode().split("\n\n")
    bodies = [msgspec.json.decode(f[6:]) for f in frames if f.startswith("data: {")]
    assert bodies[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert bodies[-2]["choices"][0]["finish_reason"] == "stop"
    assert frames[-2] == "data: [DONE]"


def test_failures_are_classified_by_the_profile_rules() -> None:
    from sipp_gateway_server._refusal import Refused
    from sipp_gateway_server._surface import classify

    from sipp import RunCancelled, upstream_error

    assert classify(RunCancelled("server_shutdown")) == Failure(
        503, "server_shutdown", "the gateway is shutting down"
    )
    assert classify(RunCancelled("client_disconnected")).status == 499
    limited = classify(Refused("rate_limited", "slow", 429, "rate", 2.2))
    assert (limited.status, limited.retry_after) == (429, "3")
    upstream = classify(
        upstream_error("provider", "rate_limited", "busy", status=429, retry_after=4)
    )
    assert (upstream.status, upstream.code, upstream.retry_after) == (429, "rate_limited", "4")
    bad = classify(InvalidRequestError("nope", field="messages[0]"))
    assert (bad.status, bad.code, bad.param) == (400, "invalid_request", "messages[0]")
    bug = classify(KeyError("secret internals"))
    assert (bug.status, bug.code, bug.message) == (500, "internal", "gateway request failed")
