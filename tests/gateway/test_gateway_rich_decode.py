"""Decoding the rich-chat extension: every field, every refusal message, hostile input."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipp import (
    ChatMessage,
    ChatRequest,
    EmbedRequest,
    ImagePart,
    QueryRequest,
    ReasoningOptions,
    TextPart,
    Tool,
    ToolCall,
)
from sipp.gateway import (
    DecodedChat,
    DecodedEmbed,
    DecodedQuery,
    GatewayProfileError,
    decode_gateway_chat_body,
    decode_gateway_embed_body,
    decode_gateway_query_body,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x01"
B64 = base64.b64encode(PNG).decode()
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
USER = {"role": "user", "content": "hi"}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER], **fields}


def refused(decode: Any, body: object) -> str:
    with pytest.raises(GatewayProfileError) as caught:
        decode(body)
    assert (caught.value.code, caught.value.status) == ("invalid_request", 400)
    return caught.value.message


def test_every_extension_field_decodes() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in "},
                    {"type": "image", "url": "https://example.com/a.png"},
                    {"type": "image", "data": B64, "media_type": "image/png"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "name": "lookup", "arguments": '{"city":"Paris"}'}],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        ],
        "tools": [
            {"name": "lookup", "description": "Weather.", "parameters": SCHEMA},
            {"name": "clock"},
        ],
        "tool_choice": "lookup",
        "output_schema": SCHEMA,
        "reasoning": {"effort": "high", "budget_tokens": 512.0},
        "stream": True,
        "user": "u1",
    }  # fmt: skip
    decoded = decode_gateway_chat_body(body)
    assert decoded == DecodedChat(
        target="m",
        stream=True,
        request=ChatRequest(
            messages=[
                ChatMessage(role="system", content="Be brief."),
                ChatMessage(
                    role="user",
                    content=[
                        TextPart(text="What is in "),
                        ImagePart(url="https://example.com/a.png"),
                        ImagePart(data=PNG, media_type="image/png"),
                    ],
                ),
                ChatMessage(
                    role="assistant",
                    content="",
                    tool_calls=[ToolCall(id="c1", name="lookup", arguments='{"city":"Paris"}')],
                ),
                ChatMessage(role="tool", content="sunny", tool_call_id="c1"),
            ],
            tools=[
                Tool(name="lookup", description="Weather.", parameters=SCHEMA),
                Tool(name="clock"),
            ],
            tool_choice="lookup",
            output_schema=SCHEMA,
            reasoning=ReasoningOptions(effort="high", budget_tokens=512),
            options={"user": "u1"},
            emit_tokens=True,
        ),
    )


def test_query_bodies_take_the_top_level_fields_too() -> None:
    decoded = decode_gateway_query_body(
        {"model": "m", "prompt": "p", "output_schema": SCHEMA, "reasoning": {}}
    )
    assert decoded.request == QueryRequest(
        prompt="p", output_schema=SCHEMA, reasoning=ReasoningOptions()
    )


def test_embed_input_may_be_an_array() -> None:
    decoded = decode_gateway_embed_body({"model": "m", "input": ["a", "b"], "dims": 8})
    assert decoded == DecodedEmbed(
        target="m", stream=False, request=EmbedRequest(input=["a", "b"], options={"dims": 8})
    )
    assert decoded.batch
    assert not decode_gateway_embed_body({"model": "m", "input": "a"}).batch


@pytest.mark.parametrize(
    ("decode", "body", "expected"),
    [
        pytest.param(
            decode_gateway_query_body,
            {"model": "m", "prompt": "p", "max_tokens": 5.0, "seed": 3, "x": [1]},
            DecodedQuery(
                target="m",
                stream=False,
                request=QueryRequest(prompt="p", max_tokens=5, seed=3, options={"x": [1]}),
            ),
            id="query",
        ),
        pytest.param(
            decode_gateway_chat_body,
            {"model": "m", "messages": [USER, {"role": "assistant", "content": "yo", "name": "n"}]},
            DecodedChat(
                target="m",
                stream=False,
                request=ChatRequest(
                    messages=[
                        ChatMessage(role="user", content="hi"),
                        ChatMessage(role="assistant", content="yo"),
                    ]
                ),
            ),
            id="chat-unknown-message-key-ignored-as-before",
        ),
        pytest.param(
            decode_gateway_embed_body,
            {"model": "m", "input": "t", "stream": True},
            DecodedEmbed(
                target="m", stream=False, request=EmbedRequest(input="t", options={"stream": True})
            ),
            id="embed",
        ),
    ],
)
def test_a_body_without_extension_fields_decodes_as_before(
    decode: Any, body: dict[str, Any], expected: Any
) -> None:
    decoded = decode(body)
    assert decoded == expected
    request = decoded.request
    if not isinstance(request, EmbedRequest):
        assert (request.tools, request.tool_choice, request.output_schema, request.reasoning) == (
            None,
            None,
            None,
            None,
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Plain bodies keep the original messages, even for shapes the extension gives meaning to.
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]},
         "message role must be system, user, or assistant"),
        ({"model": "m", "messages": [{"role": "user", "content": []}]}, "content is required"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "content is required"),
        ({"model": "m", "messages": [{"role": "assistant", "content": None}]},
         "content is required"),
        # Parts.
        ({"model": "m", "messages": [{"role": "user", "content": ["hi"]}]},
         "content part must be a JSON object"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
         "content part type must be text or image"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]},
         "content part type must be text or image"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": ["text"]}]}]},
         "content part type must be text or image"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
         "text part text must be a string"),
        ({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x", "cache": True}]}]},
         "text part has unknown key 'cache'"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image"}]}]},
         "image part needs exactly one of url or data"),
        ({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "url": "u", "data": B64, "media_type": "image/png"}]}]},
         "image part needs exactly one of url or data"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "url": " "}]}]},
         "image url must be a non-empty string"),
        ({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "url": "u", "media_type": 3}]}]},
         "image media_type must be a string"),
        ({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "data": "not base64!", "media_type": "image/png"}]}]},
         "image data must be a base64 string"),
        ({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "data": [1], "media_type": "image/png"}]}]},
         "image data must be a base64 string"),
        ({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "data": B64}]}]},
         "image media_type is required with data"),
        # Tool turns.
        ({"model": "m", "messages": [{"role": "user", "content": "x", "tool_calls": []}]},
         "only assistant messages carry tool_calls"),
        ({"model": "m", "messages": [{"role": "assistant", "content": "x", "tool_calls": {}}]},
         "tool_calls must be an array of tool calls"),
        ({"model": "m", "messages": [{"role": "assistant", "content": "x", "tool_calls": [1]}]},
         "tool call must be a JSON object"),
        ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"name": "f"}]}]},
         "tool call id is required"),
        ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]},
         "tool call name is required"),
        ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "name": "f", "arguments": {}}]}]},
         "tool call arguments must be a string"),
        ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "name": "f", "type": "function"}]}]},
         "tool call has unknown key 'type'"),
        ({"model": "m", "messages": [{"role": "assistant", "tool_calls": []}]},
         "content is required"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x", "tool_call_id": ""}]},
         "tool message needs tool_call_id"),
        ({"model": "m", "messages": [{"role": "tool", "tool_call_id": "c"}]},
         "content is required"),
        # Top-level fields.
        (chat(tools={}), "tools must be an array of tools"),
        (chat(tools=["f"]), "tool must be a JSON object"),
        (chat(tools=[{"description": "x"}]), "tool name is required"),
        (chat(tools=[{"name": "f"}, {"name": "f"}]), "tool name 'f' is used twice"),
        (chat(tools=[{"name": "f", "description": 1}]), "tool description must be a string"),
        (chat(tools=[{"name": "f", "parameters": []}]),
         "tool parameters must be a JSON schema object"),
        (chat(tools=[{"name": "f", "parameters": {"type": "string"}}]),
         "tool parameters must be a JSON schema object"),
        (chat(tools=[{"name": "f", "parameters": {"maximum": float("inf")}}]),
         "maximum must be JSON-compatible"),
        (chat(tools=[{"name": "f", "strict": True}]), "tool has unknown key 'strict'"),
        (chat(tool_choice="lookup"),
         "tool_choice must be auto, none, required, or the name of a tool in tools"),
        (chat(tool_choice={"type": "function"}),
         "tool_choice must be auto, none, required, or the name of a tool in tools"),
        (chat(output_schema="json"), "output_schema must be a JSON schema object"),
        (chat(output_schema={"a": [float("nan")]}), "a must be JSON-compatible"),
        (chat(reasoning="high"), "reasoning must be a JSON object"),
        (chat(reasoning={"effort": "max"}), "reasoning effort must be low, medium, or high"),
        (chat(reasoning={"effort": ["low"]}), "reasoning effort must be low, medium, or high"),
        (chat(reasoning={"budget_tokens": 0}),
         "reasoning budget_tokens must be a positive u32 integer"),
        (chat(reasoning={"budget_tokens": 1.5}),
         "reasoning budget_tokens must be a positive u32 integer"),
        (chat(reasoning={"budget_tokens": True}),
         "reasoning budget_tokens must be a positive u32 integer"),
        (chat(reasoning={"budget_tokens": 2**32}),
         "reasoning budget_tokens must be a positive u32 integer"),
        (chat(reasoning={"level": 1}), "reasoning has unknown key 'level'"),
    ],
)  # fmt: skip
def test_chat_refusals(body: dict[str, Any], message: str) -> None:
    assert refused(decode_gateway_chat_body, body) == message


def test_original_fields_are_checked_before_the_extension() -> None:
    body = chat(temperature=-1, tools="nope")
    assert refused(decode_gateway_chat_body, body) == (
        "temperature must be greater than or equal to zero"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "input is required"),
        (["a", ""], "input must be a string or an array of non-empty strings"),
        (["a", 1], "input must be a string or an array of non-empty strings"),
        ([["a"]], "input must be a string or an array of non-empty strings"),
        ({"a": 1}, "input is required"),
    ],
)
def test_embed_refusals(value: object, message: str) -> None:
    assert refused(decode_gateway_embed_body, {"model": "m", "input": value}) == message


# -- hostile input --------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
# Values that are valid for some key, mixed with anything: the decoders must get past
# their first checks often, or the later ones would never meet hostile input.
words = st.sampled_from(["text", "image", B64, "image/png", "u", "low", "c1", "{}", ""])
part_keys = st.sampled_from(["type", "text", "url", "data", "media_type", "other"])
parts = st.dictionaries(part_keys, words | json_values, max_size=4)
call_keys = st.sampled_from(["id", "name", "arguments", "other"])
calls = st.lists(st.dictionaries(call_keys, words | json_values, max_size=4), max_size=2)
messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"])},
    optional={
        "content": st.lists(parts, min_size=1, max_size=3) | words | json_values,
        "tool_calls": calls | json_values,
        "tool_call_id": words | json_values,
    },
)
tool_values = st.dictionaries(
    st.sampled_from(["name", "description", "parameters", "strict"]),
    words | json_values | st.just({"type": "object"}),
)
# One extension field at a time (with a valid rest), so each meets hostile values often.
top_level = st.one_of(
    *(
        st.fixed_dictionaries({"model": st.just("m"), "messages": st.just([USER]), key: values})
        for key, values in (
            ("tools", st.lists(tool_values, max_size=3) | json_values),
            ("tool_choice", words | json_values),
            ("output_schema", json_values),
            (
                "reasoning",
                st.dictionaries(
                    st.sampled_from(["effort", "budget_tokens", "x"]), words | json_values
                )
                | json_values,
            ),
        )
    )
)


bodies = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(messages, min_size=1, max_size=2)}
)


@settings(max_examples=300, deadline=None)
@given(bodies | top_level)
def test_hostile_chat_bodies_decode_or_are_refused(body: dict[str, Any]) -> None:
    try:
        decoded = decode_gateway_chat_body(body)
    except GatewayProfileError as error:
        refusal = error
    else:
        assert isinstance(decoded, DecodedChat)
        assert len(decoded.request.messages) == len(body["messages"])
        return
    assert (refusal.code, refusal.status, bool(refusal.message)) == ("invalid_request", 400, True)


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({"model": st.just("m"), "input": st.lists(json_values) | json_values}))
def test_hostile_embed_bodies_decode_or_are_refused(body: dict[str, Any]) -> None:
    try:
        decoded = decode_gateway_embed_body(body)
    except GatewayProfileError as error:
        refusal = error
    else:
        assert decoded.request.inputs
        return
    assert (refusal.code, refusal.status) == ("invalid_request", 400)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"model": "m", "messages": [USER]}, False, id="plain"),
        pytest.param(chat(tools=[{"name": "f"}]), True, id="tools"),
        pytest.param(chat(tool_choice="none"), True, id="tool_choice"),
        pytest.param(chat(output_schema={}), True, id="output_schema"),
        pytest.param(chat(reasoning={}), True, id="reasoning"),
        pytest.param(
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
            },
            True,
            id="parts",
        ),
        pytest.param(
            {"model": "m", "messages": [{"role": "tool", "content": "x", "tool_call_id": "c"}]},
            True,
            id="tool-turn",
        ),
    ],
)
def test_which_requests_use_the_extension(body: dict[str, Any], expected: bool) -> None:
    from sipp.gateway._decode_rich import uses_extension

    assert uses_extension(decode_gateway_chat_body(body).request) is expected
    assert uses_extension(EmbedRequest(input=["a"])) is False
