"""Structured output: ask for a msgspec Struct and get one back, validated.

Runs against the deterministic ``scripted`` endpoint by default; pass another
endpoint as a JSON descriptor (first argument or ``SIPP_EXAMPLE_ENDPOINT``)
or a ``.gguf`` path. Each endpoint constrains the answer its own way (a
grammar on local models, ``response_format`` on OpenAI, ...); the result is
the same: ``response.parsed`` holds a ``Person``, or the run fails with
``OutputValidationError`` and the raw text.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import msgspec

from sipp import OutputValidationError, SippClient


class Person(msgspec.Struct):
    name: str
    born: int
    languages: list[str]


SCRIPTED: dict[str, Any] = {
    "kind": "scripted",
    "reply_json": {"name": "Ada Lovelace", "born": 1815, "languages": ["English", "French"]},
}


def endpoint_descriptor(argv: list[str]) -> dict[str, Any]:
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
        messages = [{"role": "user", "content": "Who wrote the first computer program?"}]
        try:
            response = await client.chat(messages, endpoint=model, output=Person, max_tokens=128)
        except OutputValidationError as exc:
            print("not a Person:", exc.message)
            print("raw text:", exc.text)
            return
        person: Person = response.parsed
        print(f"{person.name}, born {person.born}, wrote in {', '.join(person.languages)}")
        print("raw text:", response.text)


if __name__ == "__main__":
    anyio.run(main)  # or anyio.run(main, backend="trio")
