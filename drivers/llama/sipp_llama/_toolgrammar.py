"""GBNF grammars for tool calls and structured answers.

With tools, generation runs under a grammar that admits exactly two shapes of
output: a plain answer, or one to ``MAX_PARALLEL_CALLS`` call blocks (the
format ``_toolcalls`` parses), each naming one of the tools and carrying
arguments that match that tool's JSON schema. So even a tiny model produces
calls that parse and validate; which shape it picks is still the model's.

* ``tool_choice="auto"``: an answer or calls;
* ``"required"``: calls only; a tool's name: calls of that tool only;
* an ``output_schema`` makes the answer branch that schema's JSON.

The per-tool argument rules come from llama-cpp-python's JSON-schema
converter, one converter for all tools so shared rules (strings, numbers)
appear once and each tool's rules get their own names.
"""

from __future__ import annotations

import json
from typing import Any, Final

from sipp import InvalidRequestError, Tool

from ._toolcalls import CALL_CLOSE, CALL_OPEN

__all__ = ["MAX_PARALLEL_CALLS", "schema_grammar", "tool_grammar"]

#: The most calls one answer may hold (a bound keeps a tiny model from looping).
MAX_PARALLEL_CALLS: Final = 8

# An answer that is not a call: it may not begin with the call tag's "<" or with
# whitespace (so "  <tool_call>" cannot pass as text), and then anything.
_FREE_ANSWER: Final = r"[^<\x20\t\r\n] [^\x00]*"


def _converter() -> Any:
    from llama_cpp.llama_grammar import SchemaConverter

    return SchemaConverter(  # type: ignore[no-untyped-call]
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )


def _literal(text: str) -> str:
    # A GBNF string literal: JSON's escaping is a subset GBNF reads the same way.
    return json.dumps(text, ensure_ascii=False)


def _visit(converter: Any, schema: dict[str, Any], url: str, name: str, field: str) -> str:
    try:
        resolved = converter.resolve_refs(schema, url)
        return str(converter.visit(resolved, name))
    except Exception as exc:  # the converter raises bare ValueError/KeyError/TypeError
        raise InvalidRequestError(
            f"the JSON schema cannot be turned into a grammar: {exc!r}", field=field
        ) from exc


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    # Arguments the tool did not declare would only confuse the function, and a
    # small model given the freedom invents them: close the top-level object
    # unless the schema says otherwise.
    if "additionalProperties" in schema:
        return schema
    return {**schema, "additionalProperties": False}


def tool_grammar(
    tools: list[Tool],
    choice: str | None,
    output_schema: dict[str, Any] | None,
    *,
    parallel: bool = True,
) -> str:
    """The grammar for a request with ``tools`` (``choice`` is not ``"none"``)."""
    converter = _converter()
    if choice not in (None, "auto", "required"):
        tools = [tool for tool in tools if tool.name == choice]
    branches = []
    for index, tool in enumerate(tools):
        args = _visit(
            converter,
            _closed(tool.parameters),
            f"tool{index}",
            f"tool-{index}-args",
            f"tools[{index}].parameters",
        )
        head = '{"name": ' + json.dumps(tool.name, ensure_ascii=False) + ', "arguments": '
        branches.append(f"{_literal(head)} {args}")
    rules = {
        "call": f"{_literal(CALL_OPEN + chr(10))} ( {' | '.join(branches)} ) "
        + _literal("}" + chr(10) + CALL_CLOSE),
        "calls": f'call ( "\\n" call ){{0,{MAX_PARALLEL_CALLS - 1}}}' if parallel else "call",
    }
    if choice in (None, "auto"):
        if output_schema is not None:
            answer = _visit(converter, output_schema, "output", "answer-json", "output")
            rules["root"] = f"calls | {answer}"
        else:
            rules["answer"] = _FREE_ANSWER
            rules["root"] = "calls | answer"
    else:
        rules["root"] = "calls"
    own = "\n".join(f"{name} ::= {rule}" for name, rule in rules.items())
    return own + "\n" + str(converter.format_grammar())


def schema_grammar(schema: dict[str, Any], field: str) -> str:
    """The grammar of one JSON value matching ``schema`` (``output=``, ``json_schema``)."""
    converter = _converter()
    root = _visit(converter, schema, "input", "", field)
    grammar = str(converter.format_grammar())
    if root != "root":  # a top-level $ref names its own rule
        grammar += f"\nroot ::= {root}"
    return grammar
