"""The sans-I/O text pipeline: UTF-8 across tokens, stop strings held back and cut."""

from __future__ import annotations

import pytest
from sipp_llama._text import TextAssembler


def _run(pieces: list[bytes], stops: list[str] | None) -> tuple[list[str], bool]:
    assembler = TextAssembler(stops)
    out = [assembler.feed(piece) for piece in pieces]
    out.append(assembler.finish())
    return out, assembler.stopped


def test_a_character_split_across_tokens_is_released_whole() -> None:
    euro = "€".encode()
    out, _ = _run([b"a" + euro[:1], euro[1:2], euro[2:] + b"b"], None)
    assert out == ["a", "", "€b", ""]


@pytest.mark.parametrize(
    ("pieces", "stops", "released"),
    [
        pytest.param([b"Hello", b" wor", b"ld"], [" world"], "Hello", id="across-tokens"),
        pytest.param([b"ab", b"cSTO", b"P!"], ["STOP"], "abc", id="inside-a-token"),
        pytest.param([b"one ", b"END", b"two"], ["END", "one"], "", id="earliest-wins"),
        pytest.param([b"x<", b"<y"], ["<<<"], "x<<y", id="partial-then-not"),
        pytest.param([b"tail<"], ["<<"], "tail<", id="held-text-released-at-end"),
    ],
)
def test_stop_strings_are_cut_and_never_leaked(
    pieces: list[bytes], stops: list[str], released: str
) -> None:
    out, _ = _run(pieces, stops)
    assert "".join(out) == released
    for stop in stops:
        for index in range(len(out)):
            assert stop not in "".join(out[: index + 1])


def test_text_that_may_begin_a_stop_string_is_held_back() -> None:
    assembler = TextAssembler(["\n\nUser:"])
    assert assembler.feed(b"Answer.\n") == "Answer."
    assert assembler.feed(b"\nUs") == ""
    assert assembler.feed(b"ually") == "\n\nUsually"
    assert not assembler.stopped


def test_nothing_after_a_stop() -> None:
    assembler = TextAssembler(["."])
    assert assembler.feed(b"Hi. There") == "Hi"
    assert assembler.stopped
    assert assembler.feed(b"more") == ""
    assert assembler.finish() == ""
