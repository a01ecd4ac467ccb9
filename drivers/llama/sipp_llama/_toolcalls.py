"""Tool calls out of generated text: a sans-I/O parser of the local call format.

A local model asked to call functions writes, under a grammar that allows
nothing else (see ``_toolgrammar``), either a plain answer or one block per
call::

    <tool_call>
    {"name": "weather", "arguments": {"city": "Oslo"}}
    </tool_call>

The parser turns that text, fed in pieces of any size, into tool-call deltas
as the argument JSON is decoded: the call's ``id`` and ``name`` once its name
is complete, then each piece of the arguments as it arrives. The markup never
reaches the answer text. Output that does not start with a call block is an
answer and passes through unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Final, Literal

__all__ = ["CALL_CLOSE", "CALL_OPEN", "CallDelta", "ToolCallFormatError", "ToolCallParser"]

CALL_OPEN: Final = "<tool_call>"
CALL_CLOSE: Final = "</tool_call>"

# The head of one call, up to where its argument JSON starts.
_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:')
# A head that is this long and still does not match never will (names are short).
_MAX_HEAD = 512

_State = Literal["start", "text", "open", "head", "args", "tail"]


class ToolCallFormatError(ValueError):
    """The model wrote a call block that is not in the expected format."""


class CallDelta:
    """A piece of call ``index``: ``id``/``name`` on its first piece, then argument text."""

    __slots__ = ("arguments", "id", "index", "name")

    def __init__(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.arguments = arguments

    def __repr__(self) -> str:
        return f"CallDelta({self.index}, id={self.id!r}, name={self.name!r}, {self.arguments!r})"


class ToolCallParser:
    """Feed answer text with :meth:`feed`; it returns ``(text, deltas)`` that are now certain.

    ``first_id`` numbers the calls: their ids are ``call_<first_id>``,
    ``call_<first_id + 1>``, ... (the driver starts past the calls already in
    the conversation, so ids stay unique across the turns of a tool loop).
    """

    __slots__ = ("_buffer", "_depth", "_escape", "_in_string", "_next_id", "_state", "calls")

    def __init__(self, first_id: int = 1) -> None:
        self._state: _State = "start"
        self._buffer = ""
        self._next_id = first_id
        #: How many calls have begun.
        self.calls = 0
        self._depth = 0
        self._in_string = False
        self._escape = False

    def feed(self, text: str) -> tuple[str, list[CallDelta]]:
        if self._state == "text":
            return text, []
        self._buffer += text
        deltas: list[CallDelta] = []
        while True:
            state = self._state
            if state == "start":
                stripped = self._buffer.lstrip()
                if stripped.startswith(CALL_OPEN):
                    self._state = "open"
                elif CALL_OPEN.startswith(stripped):
                    return "", deltas  # not decided yet
                else:
                    self._state = "text"
                    text, self._buffer = self._buffer, ""
                    return text, deltas
            elif state == "open":
                stripped = self._buffer.lstrip()
                if stripped.startswith(CALL_OPEN):
                    self._buffer = stripped[len(CALL_OPEN) :]
                    self._state = "head"
                elif CALL_OPEN.startswith(stripped):
                    return "", deltas
                else:
                    raise ToolCallFormatError(
                        f"expected {CALL_OPEN} or the end after a call, got {stripped[:40]!r}"
                    )
            elif state == "head":
                match = _HEAD.match(self._buffer)
                if match is None:
                    if len(self._buffer) > _MAX_HEAD:
                        raise ToolCallFormatError(
                            f"a call does not start with its name: {self._buffer[:40]!r}"
                        )
                    return "", deltas
                name = json.loads(f'"{match.group(1)}"')
                deltas.append(CallDelta(self.calls, id=f"call_{self._next_id}", name=name))
                self._next_id += 1
                self.calls += 1
                self._buffer = self._buffer[match.end() :]
                self._state = "args"
                self._depth = 0
                self._in_string = self._escape = False
            elif state == "args":
                piece, done = self._scan_arguments()
                if piece:
                    deltas.append(CallDelta(self.calls - 1, arguments=piece))
                if not done:
                    return "", deltas
                self._state = "tail"
            else:  # tail: the object's closing brace, then the close tag
                index = self._buffer.find(CALL_CLOSE)
                if index < 0:
                    if not self._maybe_tail(self._buffer):
                        raise ToolCallFormatError(
                            f"expected }} {CALL_CLOSE} after the arguments, "
                            f"got {self._buffer[:40]!r}"
                        )
                    return "", deltas
                if self._buffer[:index].strip() != "}":
                    raise ToolCallFormatError(
                        f"expected }} {CALL_CLOSE} after the arguments, got {self._buffer[:40]!r}"
                    )
                self._buffer = self._buffer[index + len(CALL_CLOSE) :]
                self._state = "open"

    def finish(self) -> str:
        """The end of the output: answer text still held back (a call cut short stays so)."""
        if self._state in ("start", "text"):
            text, self._buffer = self._buffer, ""
            return text
        self._buffer = ""
        return ""

    @property
    def complete(self) -> bool:
        """Whether every call that began was also closed."""
        return self._state in ("open", "start", "text")

    def _scan_arguments(self) -> tuple[str, bool]:
        """Consume argument JSON from the buffer; return it and whether the value ended."""
        buffer = self._buffer
        index = 0
        if self._depth == 0:
            # Before the value: skip whitespace, then it must open an object.
            while index < len(buffer) and buffer[index] in " \t\r\n":
                index += 1
            if index == len(buffer):
                self._buffer = ""
                return "", False
            if buffer[index] != "{":
                raise ToolCallFormatError(
                    f"a call's arguments must be a JSON object, got {buffer[index:][:40]!r}"
                )
        start = index
        while index < len(buffer):
            char = buffer[index]
            index += 1
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif char == "\\":
                    self._escape = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self._buffer = buffer[index:]
                    return buffer[start:index], True
        self._buffer = ""
        return buffer[start:], False

    @staticmethod
    def _maybe_tail(text: str) -> bool:
        """Whether ``text`` may still grow into ``} </tool_call>``."""
        rest = text.lstrip()
        if rest.startswith("}"):
            rest = rest[1:].lstrip()
        return CALL_CLOSE.startswith(rest)
