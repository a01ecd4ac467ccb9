"""The endpoint's memory of thinking blocks to echo back stays bounded."""

from __future__ import annotations

from sipp_anthropic._echo import DEFAULT_SIZE, ThinkingMemory, thinking_block


def test_memory_forgets_the_least_recently_used_turns() -> None:
    memory = ThinkingMemory(size=3)
    for n in range(3):
        memory.remember(f"toolu_{n}", [thinking_block(f"t{n}", f"s{n}")])
    # Recalling a turn makes it recent, so the next one in pushes out toolu_1.
    assert memory.recall("toolu_0") == [{"type": "thinking", "thinking": "t0", "signature": "s0"}]
    memory.remember("toolu_3", [thinking_block("t3", None)])
    assert len(memory) == 3
    assert memory.recall("toolu_1") == []
    assert memory.recall("toolu_3") == [{"type": "thinking", "thinking": "t3", "signature": ""}]


def test_turns_without_thinking_are_not_kept() -> None:
    memory = ThinkingMemory()
    for n in range(DEFAULT_SIZE + 10):
        memory.remember(f"toolu_{n}", [])
    assert len(memory) == 0
