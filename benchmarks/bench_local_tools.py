"""Local driver: tokens/s of tool-call decoding against plain decoding, on the test model.

A tool call decodes under a grammar built from the tool schemas (see
``sipp_llama._toolgrammar``); the grammar sampler checks candidate tokens at
every step, so the question is what that costs. Both rows decode the same
number of tokens from the same prompt on one endpoint (one thread, greedy),
interleaved ``--repeats`` times so load from other processes spreads over
both; the figure is the driver's own ``stats.tokens_per_second`` (first token
to last). Results go to ``benchmarks/results/local_tools.json``.

    python benchmarks/bench_local_tools.py [--repeats 5] [--tokens 96]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import anyio

from sipp import SippClient, Tool

PROMPT = "The history of the city of Paris begins"
RESULTS = Path(__file__).parent / "results" / "local_tools.json"
# One required string argument long enough that the call fills every token asked for.
NOTE = Tool(
    name="note",
    description="Write a note.",
    parameters={
        "type": "object",
        "properties": {"text": {"type": "string", "minLength": 2000}},
        "required": ["text"],
    },
)


async def _run(repeats: int, tokens: int) -> dict[str, Any]:
    from sipp_llama.testing import test_model_path

    rows: dict[str, list[float]] = {"plain": [], "tool_call": []}
    async with SippClient() as client:
        model = await client.add(
            "m", {"kind": "local", "source": str(test_model_path()), "n_threads": 1}
        )
        for _ in range(repeats):
            plain = await client.query(PROMPT, endpoint=model, max_tokens=tokens, temperature=0)
            call = await client.query(
                PROMPT,
                endpoint=model,
                max_tokens=tokens,
                temperature=0,
                tools=[NOTE],
                tool_choice="required",
            )
            for name, response in (("plain", plain), ("tool_call", call)):
                stats = response.stats
                if stats is None or stats.generated_tokens != tokens:
                    raise RuntimeError(f"{name}: did not decode {tokens} tokens ({stats})")
                rows[name].append(stats.tokens_per_second)
            if [c.name for c in call.tool_calls] != ["note"]:
                raise RuntimeError(f"expected one call of note, got {call.tool_calls}")
    return {
        name: {
            "median_tokens_per_second": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
        for name, values in rows.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()
    results = anyio.run(_run, args.repeats, args.tokens)
    plain = results["plain"]["median_tokens_per_second"]
    call = results["tool_call"]["median_tokens_per_second"]
    results["tool_call_over_plain"] = call / plain
    print(f"{'decode':<12}{'tokens/s (median)':>20}{'min..max':>20}")
    for name in ("plain", "tool_call"):
        row = results[name]
        spread = f"{row['min']:.0f}..{row['max']:.0f}"
        print(f"{name:<12}{row['median_tokens_per_second']:>20.1f}{spread:>20}")
    print(f"tool-call decoding runs at {call / plain:.2f}x plain decoding")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({**results, "tokens": args.tokens}, indent=2) + "\n")


if __name__ == "__main__":
    main()
