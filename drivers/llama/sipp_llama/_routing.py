"""Generated text to the events a caller sees: answer text, reasoning, tool-call deltas.

Sans-I/O and on the event loop's side: the worker hands over plain text (UTF-8
safe, stop strings already cut), and the router splits it, first into
reasoning and answer (``_reasoning``), then the answer into text and tool
calls (``_toolcalls``), keeping the model's order.
"""

from __future__ import annotations

from typing import Literal

from ._reasoning import ReasoningSplitter
from ._toolcalls import CallDelta, ToolCallParser

__all__ = ["Event", "OutputRouter"]

#: ``("text", str)``, ``("reasoning", str)``, or a tool-call delta.
Event = tuple[Literal["text", "reasoning"], str] | CallDelta


class OutputRouter:
    __slots__ = ("_calls", "_splitter")

    def __init__(self, splitter: ReasoningSplitter | None, calls: ToolCallParser | None) -> None:
        self._splitter = splitter
        self._calls = calls

    @property
    def in_reasoning(self) -> bool:
        return self._splitter is not None and self._splitter.in_reasoning

    @property
    def made_calls(self) -> bool:
        return self._calls is not None and self._calls.calls > 0

    def feed(self, text: str) -> list[Event]:
        if self._splitter is None:
            return self._answer(text)
        reasoning, answer = self._splitter.feed(text)
        events: list[Event] = [("reasoning", reasoning)] if reasoning else []
        if answer:
            events += self._answer(answer)
        return events

    def finish(self) -> list[Event]:
        events: list[Event] = []
        if self._splitter is not None:
            reasoning, answer = self._splitter.finish()
            if reasoning:
                events.append(("reasoning", reasoning))
            if answer:
                events += self._answer(answer)
        if self._calls is not None:
            tail = self._calls.finish()
            if tail:
                events.append(("text", tail))
        return events

    def _answer(self, text: str) -> list[Event]:
        if self._calls is None:
            return [("text", text)]
        plain, deltas = self._calls.feed(text)
        events: list[Event] = [("text", plain)] if plain else []
        events += deltas
        return events
