"""Tools: the model calls two Python functions, the loop runs them and the model answers.

By default it runs against the deterministic ``scripted`` endpoint from
``sipp.testing`` (no model, no key), whose script asks for both functions and
then answers. Pass another endpoint as a JSON descriptor, as the first
argument or in ``SIPP_EXAMPLE_ENDPOINT``, or a ``.gguf`` path for a local model::

    python examples/tools.py
    python examples/tools.py '{"kind": "gateway", "base_url": "http://127.0.0.1:8080", ...}'
    python examples/tools.py model.gguf
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Literal

import anyio
import anyio.lowlevel

import sipp
from sipp import SippClient

TEMPERATURES = {"oslo": 7.0, "rome": 21.0, "cairo": 33.0}
RATES = {("EUR", "NOK"): 11.6, ("EUR", "USD"): 1.08, ("USD", "NOK"): 10.7}


@sipp.tool
def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    """The current weather in a city.

    Args:
        city: the city's name, for example Oslo.
        unit: C for Celsius, F for Fahrenheit.
    """
    celsius = TEMPERATURES.get(city.strip().lower())
    if celsius is None:
        raise LookupError(f"no weather station in {city}")
    value = celsius if unit == "C" else celsius * 9 / 5 + 32
    return f"{value:.0f} °{unit}, light rain in {city}"


async def convert_currency(amount: float, source: str, target: str) -> dict[str, Any]:
    """Convert an amount of money between two currencies.

    Args:
        amount: how much money.
        source: the ISO code to convert from, for example EUR.
        target: the ISO code to convert to, for example NOK.
    """
    await anyio.lowlevel.checkpoint()  # a real one would await an exchange-rate API here
    rate = RATES.get((source.upper(), target.upper()))
    if rate is None:
        raise LookupError(f"no rate from {source} to {target}")
    return {"amount": round(amount * rate, 2), "currency": target.upper()}


SCRIPTED: dict[str, Any] = {
    "kind": "scripted",
    "turns": [
        {
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Oslo"}},
                {
                    "name": "convert_currency",
                    "arguments": {"amount": 20, "source": "EUR", "target": "NOK"},
                },
            ]
        },
        {"reply": "Oslo has 7 °C and light rain; 20 EUR is 232 NOK."},
    ],
}


def endpoint_descriptor(argv: list[str]) -> dict[str, Any]:
    """The endpoint to use: an argument or SIPP_EXAMPLE_ENDPOINT, else the scripted one."""
    given = argv[1] if len(argv) > 1 else os.environ.get("SIPP_EXAMPLE_ENDPOINT")
    if not given:
        return SCRIPTED
    if given.endswith(".gguf"):
        return {"kind": "local", "source": given}
    descriptor: dict[str, Any] = json.loads(given)
    return descriptor


async def main() -> None:
    async with SippClient() as client:
        model = await client.add("model", endpoint_descriptor(sys.argv))
        question = "What is the weather in Oslo, and how much is 20 EUR in NOK?"
        run = client.run_tools(
            [{"role": "user", "content": question}],
            tools=[get_weather, convert_currency],  # a sipp.tool and a plain function
            endpoint=model,
            max_turns=4,
            max_tokens=256,
        )
        response = await run
        for message in response.transcript or []:
            for call in message.tool_calls or []:
                print(f"call {call.name}({call.arguments})")
            if message.role == "tool":
                print(f"  -> {message.content}")
        print("answer:", response.text)
        print("turns:", sum(1 for m in response.transcript or [] if m.role == "assistant"))
        print("tokens:", response.usage.output_tokens)


if __name__ == "__main__":
    anyio.run(main)  # or anyio.run(main, backend="trio")
