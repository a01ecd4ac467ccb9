"""The reasoning splitter: tags split across pieces at every position, never leaked."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sipp_llama._reasoning import ReasoningSplitter

OPEN, CLOSE = "<think>", "</think>"


def _run(pieces: list[str], *, inside: bool = False) -> tuple[str, str]:
    splitter = ReasoningSplitter(OPEN, CLOSE, inside=inside)
    reasoning = answer = ""
    for piece in pieces:
        r, a = splitter.feed(piece)
        reasoning += r
        answer += a
    r, a = splitter.finish()
    return reasoning + r, answer + a


def _cuts(text: str, positions: list[int]) -> list[str]:
    edges = [0, *sorted(set(positions)), len(text)]
    return [text[a:b] for a, b in pairwise(edges)]


OUTPUT = "<think>Two and two.\nThat is 4.</think>\n\nThe answer is 4."


@pytest.mark.parametrize("cut", range(len(OUTPUT) + 1))
def test_every_single_split_position(cut: int) -> None:
    assert _run([OUTPUT[:cut], OUTPUT[cut:]]) == ("Two and two.\nThat is 4.", "The answer is 4.")


def test_one_character_at_a_time() -> None:
    assert _run(list(OUTPUT)) == ("Two and two.\nThat is 4.", "The answer is 4.")


def test_text_is_released_as_soon_as_it_cannot_be_a_tag() -> None:
    splitter = ReasoningSplitter(OPEN, CLOSE)
    assert splitter.feed("  <th") == ("", "")
    assert splitter.feed("ink>I think") == ("I think", "")
    assert splitter.feed(" so </thi") == (" so ", "")
    assert splitter.in_reasoning
    assert splitter.feed("nk>Yes") == ("", "Yes")
    assert splitter.feed(" <think>no</think>") == ("", " <think>no</think>")


def test_output_without_the_open_tag_is_all_answer() -> None:
    assert _run(["<b>bold</b>", " text"]) == ("", "<b>bold</b> text")
    assert _run(["Hello <think>x</think>"]) == ("", "Hello <think>x</think>")
    assert _run(["  <thin"]) == ("", "  <thin")


def test_a_block_opened_by_the_prompt() -> None:
    assert _run(["hmm</th", "ink>\nok"], inside=True) == ("hmm", "ok")


def test_an_unclosed_block_is_all_reasoning() -> None:
    assert _run(["<think>still going </thi"]) == ("still going </thi", "")


def test_empty_tags_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        ReasoningSplitter("", CLOSE)


@given(
    thought=st.text().filter(lambda t: CLOSE not in t),
    answer=st.text().map(str.lstrip),
    positions=st.lists(st.integers(min_value=0, max_value=200), max_size=12),
)
def test_any_pieces_give_the_same_split(thought: str, answer: str, positions: list[int]) -> None:
    text = f"{OPEN}{thought}{CLOSE}\n{answer}"
    positions = [p for p in positions if p <= len(text)]
    assert _run(_cuts(text, positions)) == (thought, answer)


@given(text=st.text(), positions=st.lists(st.integers(min_value=0, max_value=100), max_size=8))
def test_pieces_never_change_the_split(text: str, positions: list[int]) -> None:
    positions = [p for p in positions if p <= len(text)]
    reasoning, answer = _run(_cuts(text, positions))
    assert (reasoning, answer) == _run([text])
    if not text.lstrip().startswith(OPEN):
        assert (reasoning, answer) == ("", text)
