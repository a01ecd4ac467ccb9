"""How tools and tool turns reach the prompt: the model's template, or the generic format.

A chat template that uses the ``tools`` variable knows how its model was
trained to see functions: it gets the Hugging Face shapes (``tools`` as
``{"type": "function", "function": {...}}``, assistant ``tool_calls`` with
parsed ``arguments``, ``tool`` messages with ``tool_call_id`` and ``name``).

Any other template gets the generic format, built only from the roles every
template knows:

* the tools, their JSON schemas and the call format go into a system message
  (appended to the conversation's own system message if it has one);
* an assistant turn with calls becomes its text followed by the call blocks,
  exactly as the model is asked to write them;
* tool results become a user message of ``<tool_response>`` blocks
  (consecutive results merged, so templates that insist on alternating roles
  still render).
"""

from __future__ import annotations

import json
from typing import Any

from sipp import ChatMessage, Tool, ToolCall

from ._toolcalls import CALL_CLOSE, CALL_OPEN

__all__ = [
    "call_block",
    "generic_messages",
    "template_messages",
    "template_tools",
    "tools_section",
]


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments or "{}")
    except ValueError:
        return call.arguments  # as the model wrote it; the template shows it as a string


def call_block(call: ToolCall) -> str:
    """One call as the model is asked to write it."""
    body = json.dumps({"name": call.name, "arguments": _arguments(call)}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"


def tools_section(tools: list[Tool], choice: str | None) -> str:
    """The generic system-prompt section that lists the tools and the call format."""
    lines = [
        "# Tools",
        "",
        "You can call these functions. Each line is one function with the JSON schema "
        "of its arguments:",
    ]
    for tool in tools:
        entry = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
        lines.append(json.dumps(entry, ensure_ascii=False))
    lines += [
        "",
        "To call functions, reply with one block per call and nothing else:",
        f'{CALL_OPEN}\n{{"name": "<function name>", "arguments": {{<arguments>}}}}\n{CALL_CLOSE}',
        "The results come back in <tool_response> blocks.",
    ]
    if choice == "required":
        lines.append("Call at least one function now.")
    elif choice not in (None, "auto"):
        lines.append(f"Call the function {choice} now.")
    else:
        lines.append("If no function is needed, answer directly.")
    return "\n".join(lines)


def _names_by_id(messages: list[ChatMessage]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.tool_calls or ():
            names[call.id] = call.name
    return names


def generic_messages(
    messages: list[ChatMessage], tools: list[Tool] | None, choice: str | None
) -> list[dict[str, Any]]:
    """The conversation in roles every template knows, with the tools in the system prompt."""
    names = _names_by_id(messages)
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            name = names.get(message.tool_call_id or "", "")
            block = f'<tool_response name="{name}">\n{message.text}\n</tool_response>'
            previous = out[-1] if out else None
            if previous is not None and previous.get("tool_results"):
                previous["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "tool_results": True})
            continue
        text = message.text
        if message.tool_calls:
            blocks = "\n".join(call_block(call) for call in message.tool_calls)
            text = f"{text}\n{blocks}" if text else blocks
        out.append({"role": message.role, "content": text})
    if tools:
        section = tools_section(tools, choice)
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{section}"
        else:
            out.insert(0, {"role": "system", "content": section})
    for entry in out:
        entry.pop("tool_results", None)
    return out


def template_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The conversation in the Hugging Face shapes tool-aware templates expect."""
    names = _names_by_id(messages)
    out: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role, "content": message.text}
        if message.tool_calls:
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": _arguments(call)},
                }
                for call in message.tool_calls
            ]
        if message.role == "tool":
            entry["tool_call_id"] = message.tool_call_id
            entry["name"] = names.get(message.tool_call_id or "", "")
        out.append(entry)
    return out


def template_tools(tools: list[Tool]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]
