"""Thinking blocks kept to echo back with the tool calls they came with.

With extended thinking on, Anthropic requires the assistant turn that asked
for tools to come back *unchanged* in the next request: its thinking blocks
first, each with the ``signature`` that proves Claude wrote it (or the
encrypted ``redacted_thinking`` data), then the ``tool_use`` blocks. Sipp's
``ChatMessage`` carries text and tool calls but no signatures, so the driver
remembers a turn's thinking blocks under the id of its first tool call, and
puts them back in front when a later request holds an assistant message whose
first tool call has that id (``response.message`` does).

The memory is per opened endpoint and bounded (least recently used entries
go first): a conversation replayed in another process, or much later, is
sent without the thinking blocks, and Anthropic then answers with a clear
400. Turns without tool calls need no echo, so nothing is kept for them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

__all__ = ["ThinkingMemory", "thinking_block"]

#: Tool-call turns remembered per endpoint; each holds a few kB of thinking text.
DEFAULT_SIZE: Final = 512


def thinking_block(thinking: str, signature: str | None) -> dict[str, Any]:
    """The wire form of one signed thinking block, as Anthropic wants it back."""
    return {"type": "thinking", "thinking": thinking, "signature": signature or ""}


class ThinkingMemory:
    """Thinking blocks by the id of the first tool call of their turn."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._turns: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._turns)

    def remember(self, tool_call_id: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        self._turns[tool_call_id] = blocks
        self._turns.move_to_end(tool_call_id)
        while len(self._turns) > self._size:
            self._turns.popitem(last=False)

    def recall(self, tool_call_id: str) -> list[dict[str, Any]]:
        """The blocks to put before the turn's tool calls; empty when unknown."""
        blocks = self._turns.get(tool_call_id)
        if blocks is None:
            return []
        self._turns.move_to_end(tool_call_id)
        return blocks
