"""Streamed chat shapes as real servers send them, replayed by the mock (``reply=<name>``).

Each replay is the list of ``delta`` objects a server streams, its
``finish_reason`` and its usage; the mock sends them as chunks, or merges
them into one ``message`` for a non-streamed request, as the server would.

* ``tools``: OpenAI's parallel tool calls, arguments split mid-token across
  chunks, the first piece of each call carrying ``id``, ``type`` and ``name``;
* ``text_then_tool``: some text, then one call (the order must survive);
* ``reasoning``: vLLM / llama.cpp ``reasoning_content`` deltas, then the answer,
  with OpenAI's usage details (reasoning and cached tokens);
* ``reasoning_field``: the same under ``reasoning`` (OpenRouter, newer vLLM);
* ``llamacpp_tools``: llama-cpp-python's server: every piece repeats ``id`` and
  ``name`` and carries the legacy ``function_call`` too;
* ``legacy``: ``function_call`` only, finish ``function_call``;
* ``stop_with_tools``: a server that calls a tool but says ``stop``;
* ``no_index``: tool-call pieces without ``index`` (whole calls in one chunk);
* ``json``: a JSON answer split across chunks (structured output).

``model=auto`` answers as the request asks (:func:`auto_replay`), which is what
the conformance kit's capability checks need.
"""

from __future__ import annotations

import json
from typing import Any

Replay = tuple[list[dict[str, Any]], str, dict[str, Any]]

_USAGE = {"prompt_tokens": 80, "completion_tokens": 40, "total_tokens": 120}


def _piece(index: int, arguments: str, **first: Any) -> dict[str, Any]:
    piece: dict[str, Any] = {"index": index}
    if first:
        piece.update(id=first["id"], type="function")
        piece["function"] = {"name": first["name"], "arguments": arguments}
    else:
        piece["function"] = {"arguments": arguments}
    return {"tool_calls": [piece]}


def _llamacpp(arguments: str) -> dict[str, Any]:
    function = {"name": "weather", "arguments": arguments}
    call = {"index": 0, "id": "call__0_weather_cmpl-1", "type": "function", "function": function}
    return {"role": None, "content": None, "function_call": function, "tool_calls": [call]}


REPLAYS: dict[str, Replay] = {
    "tools": (
        [
            {"role": "assistant", "content": None, "refusal": None}
            | _piece(0, "", id="call_oslo", name="weather"),
            _piece(0, '{"ci'),
            _piece(0, 'ty": "Os'),
            _piece(0, 'lo"}'),
            _piece(1, "", id="call_time", name="local_time"),
            _piece(1, '{"zone": "Europe/'),
            _piece(1, 'Oslo"}'),
        ],
        "tool_calls",
        _USAGE
        | {
            "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    ),
    "text_then_tool": (
        [
            {"role": "assistant", "content": "Let me check."},
            _piece(0, "", id="call_1", name="weather"),
            _piece(0, '{"city": "Bergen"}'),
        ],
        "tool_calls",
        _USAGE,
    ),
    "reasoning": (
        [
            {"role": "assistant", "reasoning_content": "The user "},
            {"reasoning_content": "greets me."},
            {"content": "Hello"},
            {"content": " there!"},
        ],
        "stop",
        _USAGE
        | {
            "completion_tokens_details": {"reasoning_tokens": 30},
            "prompt_tokens_details": {"cached_tokens": 16},
        },
    ),
    "reasoning_field": (
        [{"reasoning": "Think."}, {"content": "Done."}],
        "stop",
        _USAGE,
    ),
    "llamacpp_tools": (
        [_llamacpp('{"city": '), _llamacpp('"Tromsø"'), _llamacpp("}")],
        "tool_calls",
        _USAGE,
    ),
    "legacy": (
        [
            {"role": "assistant", "function_call": {"name": "weather", "arguments": ""}},
            {"function_call": {"arguments": '{"city": "Oslo"}'}},
        ],
        "function_call",
        _USAGE,
    ),
    "stop_with_tools": (
        [_piece(0, '{"city": "Oslo"}', id="call_x", name="weather")],
        "stop",
        _USAGE,
    ),
    "no_index": (
        [
            {
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "g", "arguments": "[]"}},
                ]
            }
        ],
        "tool_calls",
        _USAGE,
    ),
    "json": (
        [{"content": '{"name": "A'}, {"content": 'da", "age'}, {"content": '": 36}'}],
        "stop",
        _USAGE,
    ),
}


def whole_message(deltas: list[dict[str, Any]]) -> dict[str, Any]:
    """The deltas merged into the ``message`` of a non-streamed answer."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        for key in ("content", "reasoning_content", "reasoning"):
            if delta.get(key):
                message[key] = (message.get(key) or "") + delta[key]
        for position, piece in enumerate(delta.get("tool_calls") or ()):
            index = piece.get("index", position)
            call = calls.setdefault(
                index, {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
            )
            call["id"] = call["id"] or piece.get("id")
            function = piece.get("function") or {}
            call["function"]["name"] = call["function"]["name"] or function.get("name")
            call["function"]["arguments"] += function.get("arguments") or ""
        if delta.get("function_call"):
            legacy = message.setdefault("function_call", {"name": None, "arguments": ""})
            legacy["name"] = legacy["name"] or delta["function_call"].get("name")
            legacy["arguments"] += delta["function_call"].get("arguments") or ""
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return message


def _sample(schema: dict[str, Any]) -> Any:
    """A value that validates against a small JSON schema (what the auto replies need)."""
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _sample(properties[name]) for name in schema.get("required", properties)}
    if kind == "array":
        return [_sample(schema.get("items", {}))]
    return {"integer": 4, "number": 4.0, "boolean": True}.get(str(kind), "Oslo")


def auto_replay(body: dict[str, Any]) -> Replay:
    """The answer a request asks for (``model=auto``): a tool call, reasoning, or JSON.

    Tools offered and no tool result in the conversation yet: call the chosen
    (or first) tool with arguments that fit its schema. Otherwise reason first
    when ``reasoning_effort`` is set, then answer JSON for a ``json_schema``
    response format, or plain text.
    """
    messages = body.get("messages", [])
    tools = [tool["function"] for tool in body.get("tools") or []]
    choice = body.get("tool_choice")
    answered = any(message.get("role") == "tool" for message in messages)
    if tools and not answered and choice != "none":
        if isinstance(choice, dict):
            tools = [t for t in tools if t["name"] == choice["function"]["name"]] or tools
        arguments = json.dumps(_sample(tools[0].get("parameters", {"type": "object"})))
        first = _piece(0, arguments[:5], id="call_auto", name=tools[0]["name"])
        return [first, _piece(0, arguments[5:])], "tool_calls", _USAGE
    deltas: list[dict[str, Any]] = []
    if body.get("reasoning_effort"):
        deltas += [{"reasoning_content": "Thinking "}, {"reasoning_content": "it over."}]
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        answer = json.dumps(_sample(response_format["json_schema"]["schema"]))
    else:
        answer = "Done."
    deltas += [{"content": answer[:3]}, {"content": answer[3:]}]
    return deltas, "stop", _USAGE
