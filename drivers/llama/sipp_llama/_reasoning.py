"""Reasoning text apart from the answer: a sans-I/O splitter for ``<think>…</think>`` output.

Models that think write their thoughts first, inside an open and a close tag,
then the answer. Text arrives in pieces of any size, so a tag may be split
across pieces (``"<thi"`` then ``"nk>"``): the splitter holds back exactly the
text that could still become a tag, and releases the rest at once.

Only a block at the very start of the output (after optional whitespace)
counts as reasoning: a model that mentions ``<think>`` later in its answer is
writing about the tag, not thinking. Some chat templates open the block in
the prompt itself (the generation prompt ends with ``<think>``); then the
splitter starts inside it (``inside=True``) and waits for the close tag.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ReasoningSplitter"]

_State = Literal["start", "reasoning", "after", "answer"]


class ReasoningSplitter:
    """Feed answer-and-reasoning text with :meth:`feed`; get ``(reasoning, answer)`` back."""

    __slots__ = ("_close", "_held", "_open", "_state")

    def __init__(self, open_tag: str, close_tag: str, *, inside: bool = False) -> None:
        if not open_tag or not close_tag:
            raise ValueError("reasoning tags must not be empty")
        self._open = open_tag
        self._close = close_tag
        self._state: _State = "reasoning" if inside else "start"
        self._held = ""

    @property
    def in_reasoning(self) -> bool:
        return self._state == "reasoning"

    def feed(self, text: str) -> tuple[str, str]:
        """Add text; return the reasoning and the answer text that are now certain."""
        state = self._state
        if state == "answer":
            return "", text
        text = self._held + text
        self._held = ""
        if state == "after":
            # The newlines models put between the block and the answer belong to neither.
            text = text.lstrip()
            if text:
                self._state = "answer"
            return "", text
        if state == "start":
            stripped = text.lstrip()
            if stripped.startswith(self._open):
                self._state = "reasoning"
                text = stripped[len(self._open) :]
            elif self._open.startswith(stripped):
                # Whitespace, or the beginning of the open tag: not decided yet.
                self._held = text
                return "", ""
            else:
                self._state = "answer"
                return "", text
        # In the reasoning block: release all but a possible start of the close tag.
        index = text.find(self._close)
        if index >= 0:
            self._state = "after"
            _, answer = self.feed(text[index + len(self._close) :])
            return text[:index], answer
        keep = _partial_suffix(text, self._close)
        if keep:
            self._held = text[-keep:]
            text = text[:-keep]
        return text, ""

    def finish(self) -> tuple[str, str]:
        """The end of the output: whatever was held back is released as what it was."""
        held, self._held = self._held, ""
        if self._state == "reasoning":
            return held, ""
        return "", held


def _partial_suffix(text: str, tag: str) -> int:
    """The length of the longest end of ``text`` that is a proper beginning of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0
