"""Decoding the profile's request bodies: every message of the profile, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from sipp import ChatMessage, QueryRequest
from sipp.gateway import (
    GatewayProfileError,
    decode_gateway_chat_body,
    decode_gateway_embed_body,
    decode_gateway_query_body,
    parse_json_body,
)

Q = {"model": "m", "prompt": "p"}
C = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
E = {"model": "m", "input": "text"}


def refused(decode: Any, body: object) -> GatewayProfileError:
    with pytest.raises(GatewayProfileError) as caught:
        decode(body)
    return caught.value


@pytest.mark.parametrize(
    ("decode", "body", "message"),
    [
        pytest.param(
            decode_gateway_query_body, [], "gateway request body must be a JSON object", id="array"
        ),
        pytest.param(
            decode_gateway_query_body, None, "gateway request body must be a JSON object", id="null"
        ),
        pytest.param(
            decode_gateway_query_body, {"prompt": "p"}, "model is required", id="no-model"
        ),
        pytest.param(
            decode_gateway_query_body,
            {"model": " \u3000\ufeff", "prompt": "p"},
            "model is required",
            id="blank-model-js-ws",
        ),
        pytest.param(
            decode_gateway_query_body, {"model": "m"}, "prompt is required", id="no-prompt"
        ),
        pytest.param(
            decode_gateway_query_body, {**Q, "prompt": 3}, "prompt is required", id="prompt-number"
        ),
        pytest.param(
            decode_gateway_embed_body,
            {"model": "m", "input": "\u2028"},
            "input is required",
            id="blank-input",
        ),
        pytest.param(
            decode_gateway_chat_body, {"model": "m"}, "messages are required", id="no-messages"
        ),
        pytest.param(
            decode_gateway_chat_body,
            {"model": "m", "messages": []},
            "messages are required",
            id="empty-messages",
        ),
        pytest.param(
            decode_gateway_chat_body,
            {"model": "m", "messages": ["hi"]},
            "gateway request body must be a JSON object",
            id="message-not-object",
        ),
        pytest.param(
            decode_gateway_chat_body,
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "message role must be system, user, or assistant",
            id="bad-role",
        ),
        pytest.param(
            decode_gateway_chat_body,
            {"model": "m", "messages": [{"role": "user"}]},
            "content is required",
            id="no-content",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "stream": "yes"},
            "stream must be a boolean",
            id="stream",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "max_tokens": 0},
            "max_tokens must be a positive u32 integer",
            id="max-tokens-0",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "max_tokens": 5.5},
            "max_tokens must be a positive u32 integer",
            id="max-tokens-fraction",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "max_tokens": 4294967296},
            "max_tokens must be a positive u32 integer",
            id="max-tokens-u32",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "max_tokens": True},
            "max_tokens must be a positive u32 integer",
            id="max-tokens-bool",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "temperature": "1"},
            "temperature must be finite",
            id="temperature-string",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "temperature": float("inf")},
            "temperature must be finite",
            id="temperature-inf",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "temperature": 10**400},
            "temperature must be finite",
            id="temperature-huge-int",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "temperature": -0.1},
            "temperature must be greater than or equal to zero",
            id="temperature-negative",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "top_p": float("nan")},
            "top_p must be finite",
            id="top-p-nan",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "top_p": 1.5},
            "top_p must be between 0 and 1",
            id="top-p-range",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "stop": "END"},
            "stop must be an array of strings",
            id="stop-string",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "stop": ["a", 1]},
            "stop must be an array of strings",
            id="stop-mixed",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "meta": {"a": [1, {"deep": float("inf")}]}},
            "deep must be JSON-compatible",
            id="innermost-key",
        ),
        pytest.param(
            decode_gateway_query_body,
            {**Q, "meta": [float("nan")]},
            "meta must be JSON-compatible",
            id="array-keeps-key",
        ),
        pytest.param(
            decode_gateway_embed_body,
            {**E, "x": object()},
            "x must be JSON-compatible",
            id="not-json",
        ),
    ],
)
def test_refusals_use_the_profile_messages(decode: Any, body: object, message: str) -> None:
    error = refused(decode, body)
    assert (error.code, error.status, error.message) == ("invalid_request", 400, message)


def test_fields_are_checked_in_the_original_order() -> None:
    # model before prompt, prompt before stream, stream before the options.
    assert refused(decode_gateway_query_body, {"stream": 1}).message == "model is required"
    assert refused(decode_gateway_query_body, {"model": "m", "stream": 1}).message == (
        "prompt is required"
    )
    body = {**Q, "stream": 1, "max_tokens": 0}
    assert refused(decode_gateway_query_body, body).message == "stream must be a boolean"
    # chat checks stream before messages
    assert refused(decode_gateway_chat_body, {"model": "m", "stream": 1}).message == (
        "stream must be a boolean"
    )


def test_query_decodes_typed_fields_and_pass_through_keys() -> None:
    decoded = decode_gateway_query_body(
        {
            "model": "developer-model",
            "prompt": "hello",
            "max_tokens": 12.0,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": ["END"],
            "stream": True,
            "seed": 7,
            "metadata": {"tenant": "docs"},
        }
    )
    assert decoded.target == "developer-model"
    assert decoded.stream is True
    assert decoded.request == QueryRequest(
        prompt="hello",
        max_tokens=12,
        temperature=0.5,
        top_p=0.9,
        stop=["END"],
        seed=7,
        emit_tokens=True,
        options={"metadata": {"tenant": "docs"}},
    )
    assert type(decoded.request.max_tokens) is int


def test_null_typed_fields_are_absent() -> None:
    decoded = decode_gateway_query_body({**Q, "max_tokens": None, "stream": None})
    assert decoded.stream is False
    assert decoded.request.max_tokens is None
    assert decoded.request.options is None


def test_strings_are_kept_untrimmed_and_python_only_whitespace_counts() -> None:
    # U+0085 and U+001C are whitespace to Python's str.strip, not to JavaScript's trim.
    decoded = decode_gateway_query_body({"model": "\x85", "prompt": " hi \x1c"})
    assert (decoded.target, decoded.request.prompt) == ("\x85", " hi \x1c")


def test_chat_decodes_messages() -> None:
    decoded = decode_gateway_chat_body(
        {
            **C,
            "messages": [
                {"role": "system", "content": "s", "name": "x"},
                {"role": "user", "content": "u"},
            ],
        }
    )
    assert decoded.request.messages == [
        ChatMessage(role="system", content="s"),
        ChatMessage(role="user", content="u"),
    ]
    assert decoded.request.emit_tokens is False


def test_embed_passes_stream_through() -> None:
    decoded = decode_gateway_embed_body({**E, "stream": True, "dimensions": 8})
    assert decoded.stream is False
    assert decoded.request.input == "text"
    assert decoded.request.options == {"stream": True, "dimensions": 8}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"temperature": NaN}', id="nan"),
        pytest.param(b'{"temperature": Infinity}', id="infinity"),
        pytest.param(b'{"temperature": -Infinity, "x": 1e999}', id="infinity-slow-path"),
        pytest.param(b'{"a": "\\ud800", "b": 1e999}', id="lone-surrogate-slow-path"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[" * 5000 + b"]" * 5000, id="deep"),
    ],
)
def test_bodies_that_are_not_json(raw: bytes) -> None:
    with pytest.raises(GatewayProfileError) as caught:
        parse_json_body(raw)
    assert (caught.value.code, caught.value.status) == ("invalid_json", 400)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            b'{"model":"m","prompt":"p","temperature":1e999}',
            "temperature must be finite",
            id="1e999",
        ),
        pytest.param(
            b'{"model":"m","prompt":"p","top_p":-1e999}', "top_p must be finite", id="-1e999"
        ),
        pytest.param(
            b'{"model":"m","prompt":"p","temperature":1' + b"0" * 400 + b"}",
            "temperature must be finite",
            id="400-digits",
        ),
        pytest.param(
            b'{"model":"m","prompt":"p","top_p":1' + b"0" * 5000 + b"}",
            "top_p must be finite",
            id="5000-digits",
        ),
        pytest.param(
            b'{"model":"m","prompt":"p","extra":{"k":1e999}}',
            "k must be JSON-compatible",
            id="pass-through",
        ),
    ],
)
def test_numbers_too_large_to_be_finite(raw: bytes, message: str) -> None:
    assert refused(decode_gateway_query_body, parse_json_body(raw)).message == message


def test_a_byte_order_mark_is_allowed() -> None:
    assert parse_json_body(b'\xef\xbb\xbf{"a":1}') == {"a": 1}
