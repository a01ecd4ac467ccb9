"""A pool: one endpoint over several deployments, with fallback before the first token.

Runs with no model and no key: two ``scripted`` members stand in for real
deployments. The first refuses connections, so every request falls back to
the second; after two failures in a row the first cools down and is no longer
tried until its cooldown ends. Put provider, gateway or local descriptors in
``members`` and nothing else changes.
"""

from __future__ import annotations

import anyio

from sipp import SippClient


async def main() -> None:
    async with SippClient() as client:
        llm = await client.add(
            "llm",
            {
                "kind": "pool",
                "strategy": "ordered",  # or "weighted", "least_busy", "fastest"
                "max_failures": 2,
                "cooldown": 30.0,
                "members": [
                    {
                        "name": "primary",
                        "descriptor": {"kind": "scripted", "fail_at": 0, "failure": "connect"},
                    },
                    {
                        "name": "backup",
                        "descriptor": {"kind": "scripted", "reply": "answered by the backup"},
                    },
                ],
            },
        )
        for _ in range(3):
            print((await client.query("Hello?", endpoint=llm)).text)


anyio.run(main)
