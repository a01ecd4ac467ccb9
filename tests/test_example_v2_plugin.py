"""The v2 example plugin: its own options and stats travel through the core."""

from __future__ import annotations

import pytest
from sipp_example_v2 import ParrotOptions, ParrotStats

import sipp
from sipp import InvalidRequestError, SippClient


@pytest.mark.anyio
async def test_options_are_typed_and_stats_come_back() -> None:
    async with SippClient() as client:
        parrot = await client.add("parrot", {"kind": "parrot"})
        response = await client.query(
            "hello there", endpoint=parrot, options={"shout": True, "repeat": 2}
        )
        assert response.text == "HELLO THERE HELLO THERE"
        assert response.stats == ParrotStats(words=4, shouted=True)
        typed = await client.query("hi", endpoint=parrot, options=ParrotOptions(repeat=3))
        assert typed.text == "hi hi hi"


@pytest.mark.anyio
async def test_bad_options_are_refused_before_io() -> None:
    async with SippClient() as client:
        parrot = await client.add("parrot", {"kind": "parrot"})
        with pytest.raises(InvalidRequestError, match="shuot") as unknown:
            client.query("hi", endpoint=parrot, options={"shuot": True})
        assert unknown.value.field == "options.shuot"
        with pytest.raises(InvalidRequestError, match="repeat must be between 1 and 5"):
            client.query("hi", endpoint=parrot, options={"repeat": 9})
        with pytest.raises(InvalidRequestError, match="local= is not accepted"):
            client.query("hi", endpoint=parrot, local={"repeat": 2})


@pytest.mark.anyio
async def test_a_tool_loop_against_a_third_party_driver() -> None:
    @sipp.tool
    def lookup(query: str) -> str:
        """Look something up."""
        return f"found {len(query)} characters"

    async with SippClient() as client:
        parrot = await client.add("parrot", {"kind": "parrot"})
        response = await client.run_tools(
            [{"role": "user", "content": "please lookup sipp"}], tools=[lookup], endpoint=parrot
        )
        assert response.text == "The tool said: found 18 characters"
        assert [m.role for m in response.transcript] == ["assistant", "tool", "assistant"]
        assert response.transcript[0].tool_calls[0].parsed_arguments == {
            "query": "please lookup sipp"
        }
