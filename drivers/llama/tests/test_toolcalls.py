"""Tool calls without the model: the parser, the grammar builder and the generic prompt."""

from __future__ import annotations

import contextlib
import json
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sipp_llama._chat import ChatTemplate
from sipp_llama._toolcalls import ToolCallFormatError, ToolCallParser
from sipp_llama._toolgrammar import schema_grammar, tool_grammar
from sipp_llama._toolprompt import generic_messages, tools_section

from sipp import ChatMessage, InvalidRequestError, Tool, ToolCall

TWO_CALLS = (
    '<tool_call>\n{"name": "weather", '
    '"arguments": {"city": "Oslo \\"N\\"", "days": [1, {"a": "}"}]}}'
    "\n</tool_call>\n"
    '<tool_call>\n{"name": "time", "arguments": {}}\n</tool_call>'
)
WEATHER_ARGS = '{"city": "Oslo \\"N\\"", "days": [1, {"a": "}"}]}'


def _run(pieces: list[str], first_id: int = 1) -> tuple[str, dict[int, dict[str, str]]]:
    parser = ToolCallParser(first_id)
    text = ""
    calls: dict[int, dict[str, str]] = {}
    for piece in pieces:
        plain, deltas = parser.feed(piece)
        text += plain
        for delta in deltas:
            call = calls.setdefault(delta.index, {"arguments": ""})
            if delta.id is not None:
                assert "id" not in call, "id and name come once, on the first delta"
                call["id"], call["name"] = delta.id, delta.name or ""
            call["arguments"] += delta.arguments
    text += parser.finish()
    return text, calls


def _cuts(text: str, positions: list[int]) -> list[str]:
    edges = [0, *sorted({p for p in positions if p <= len(text)}), len(text)]
    return [text[a:b] for a, b in pairwise(edges)]


EXPECTED = {
    0: {"id": "call_3", "name": "weather", "arguments": WEATHER_ARGS},
    1: {"id": "call_4", "name": "time", "arguments": "{}"},
}


@pytest.mark.parametrize("cut", range(len(TWO_CALLS) + 1))
def test_two_calls_split_anywhere(cut: int) -> None:
    assert _run([TWO_CALLS[:cut], TWO_CALLS[cut:]], first_id=3) == ("", EXPECTED)


@given(positions=st.lists(st.integers(min_value=0, max_value=len(TWO_CALLS)), max_size=20))
def test_two_calls_in_any_pieces(positions: list[int]) -> None:
    assert _run(_cuts(TWO_CALLS, positions), first_id=3) == ("", EXPECTED)


def test_arguments_stream_as_they_are_decoded() -> None:
    parser = ToolCallParser()
    assert parser.feed('<tool_call>\n{"name": "w", "argu') == ("", [])
    _, deltas = parser.feed('ments": {"ci')
    assert [(d.index, d.id, d.name, d.arguments) for d in deltas] == [
        (0, "call_1", "w", ""),
        (0, None, None, '{"ci'),
    ]
    _, deltas = parser.feed('ty": 1}}\n</tool_call>')
    assert [d.arguments for d in deltas] == ['ty": 1}']
    assert parser.complete


@pytest.mark.parametrize(
    "text", ["Hello there", "<b>x</b>", "4", "  spaced", "<tool_cal", " <tool"]
)
def test_an_answer_passes_through(text: str) -> None:
    assert _run([text]) == (text, {})


def test_a_cut_off_call_keeps_what_arrived() -> None:
    text, calls = _run(['<tool_call>\n{"name": "w", "arguments": {"a": "unfin'])
    assert text == ""
    assert calls == {0: {"id": "call_1", "name": "w", "arguments": '{"a": "unfin'}}


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "w", "arguments": 5}',
        '<tool_call>\n{"name": "w", "arguments": {}} extra</tool_call>',
        '<tool_call>\n{"name": "w", "arguments": {}}\n</tool_call> trailing',
        "<tool_call>" + "x" * 600,
    ],
)
def test_malformed_calls_are_errors(text: str) -> None:
    with pytest.raises(ToolCallFormatError):
        _run([text])


@given(st.text(max_size=300))
def test_hostile_text_never_crashes_otherwise(text: str) -> None:
    with contextlib.suppress(ToolCallFormatError):
        _run([text])


WEATHER = Tool(
    name="weather",
    description="Current weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
        "required": ["city"],
    },
)
CLOCK = Tool(name="clock", parameters={"type": "object", "properties": {}})


def test_the_grammar_names_every_tool_and_its_own_rules() -> None:
    grammar = tool_grammar([WEATHER, CLOCK], "auto", None)
    assert grammar.startswith("call ::=")
    assert "root ::= calls | answer" in grammar
    assert '\\"weather\\"' in grammar and '\\"clock\\"' in grammar
    assert "tool-0-args ::=" in grammar and "tool-1-args ::=" in grammar


def test_required_and_named_choices_narrow_the_grammar() -> None:
    assert "root ::= calls\n" in tool_grammar([WEATHER, CLOCK], "required", None) + "\n"
    named = tool_grammar([WEATHER, CLOCK], "clock", None)
    assert '\\"clock\\"' in named and '\\"weather\\"' not in named


def test_an_output_schema_becomes_the_answer_branch() -> None:
    grammar = tool_grammar([CLOCK], "auto", {"type": "object", "properties": {"x": {}}})
    assert "root ::= calls | answer-json" in grammar


@pytest.mark.parametrize(
    "schema", [{"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}]
)
def test_schemas_that_cannot_become_grammars_are_invalid_requests(
    schema: dict[str, object],
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        tool_grammar([Tool(name="t", parameters=schema)], "auto", None)
    assert info.value.field == "tools[0].parameters"
    with pytest.raises(InvalidRequestError):
        schema_grammar(schema, "output")


def test_the_generic_format_renders_tools_calls_and_results() -> None:
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Weather in Oslo and the time?"),
        ChatMessage(
            role="assistant",
            content="",
            tool_calls=[
                ToolCall(id="call_1", name="weather", arguments='{"city": "Oslo"}'),
                ToolCall(id="call_2", name="clock", arguments="{}"),
            ],
        ),
        ChatMessage(role="tool", tool_call_id="call_1", content="12 C"),
        ChatMessage(role="tool", tool_call_id="call_2", content="09:00"),
    ]
    out = generic_messages(messages, [WEATHER, CLOCK], "auto")
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("Be brief.\n\n# Tools")
    assert (
        json.dumps({"name": "clock", "description": "", "parameters": CLOCK.parameters})
        in (out[0]["content"])
    )
    assert out[2]["content"] == (
        '<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "clock", "arguments": {}}\n</tool_call>'
    )
    assert out[3]["content"] == (
        '<tool_response name="weather">\n12 C\n</tool_response>\n'
        '<tool_response name="clock">\n09:00\n</tool_response>'
    )


def test_the_tools_section_says_what_the_choice_demands() -> None:
    assert "Call at least one function" in tools_section([CLOCK], "required")
    assert "Call the function clock" in tools_section([CLOCK], "clock")
    assert "answer directly" in tools_section([CLOCK], None)


# A tool-aware template in the Hugging Face shape (written for this test; trim_blocks
# drops the newline after a block tag, so it writes none).
TOOL_TEMPLATE = (
    "{% if tools %}<|system|>functions:{% for t in tools %} {{ t.function.name }}{% endfor %}"
    "{% endif %}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}"
    "{% for c in m.tool_calls or [] %}"
    "[{{ c.id }} {{ c.function.name }} {{ c.function.arguments | tojson }}]{% endfor %}"
    "{% if m.role == 'tool' %}({{ m.tool_call_id }} {{ m.name }}){% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_a_tool_aware_template_renders_tools_and_tool_turns_itself() -> None:
    template = ChatTemplate(TOOL_TEMPLATE, bos_token="", eos_token="")
    assert template.renders_tools
    messages = [
        ChatMessage(role="user", content="Oslo?"),
        ChatMessage(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="call_1", name="weather", arguments='{"city": "Oslo"}')],
        ),
        ChatMessage(role="tool", tool_call_id="call_1", content="12 C"),
    ]
    assert template.render(messages, [WEATHER, CLOCK], "auto") == (
        "<|system|>functions: weather clock"
        "<|user|>Oslo?"
        '<|assistant|>[call_1 weather {"city": "Oslo"}]'
        "<|tool|>12 C(call_1 weather)"
        "<|assistant|>"
    )


def test_a_plain_template_gets_the_generic_format() -> None:
    plain = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    template = ChatTemplate(plain, bos_token="", eos_token="")
    assert not template.renders_tools
    prompt = template.render([ChatMessage(role="user", content="Hi")], [CLOCK], "required")
    assert prompt.startswith("<system># Tools") and prompt.endswith("<user>Hi")
    assert "Call at least one function now." in prompt
    assert template.render([ChatMessage(role="user", content="Hi")]) == "<user>Hi"
