"""Timeouts and retries: four limits, each its own error phase; retries before the first token."""

from __future__ import annotations

import anyio

import sipp
from sipp import SippClient


async def main() -> None:
    async with SippClient() as client:
        # An endpoint that answers 429 twice (with a retry-after hint), then succeeds.
        flaky = await client.add(
            "flaky",
            {
                "kind": "scripted",
                "reply": "third time lucky",
                "fail_at": 0,
                "fail_times": 2,
                "failure": "rate_limited",
                "retry_after": 0.05,
                "retries": 3,
            },
        )
        print((await client.query("hello", endpoint=flaky)).text)

        # An endpoint that is slow to start: the first_token limit trips.
        slow = await client.add("slow", {"kind": "scripted", "first_token_delay": 5})
        try:
            await client.query("hello", endpoint=slow, timeout={"first_token": 0.1})
        except sipp.TimeoutError as error:
            print("timed out in phase:", error.phase)

        # Outside cancellation stays native (and stops the run too).
        with anyio.move_on_after(0.1):
            await client.query("hello", endpoint=slow)
        print("moved on")


if __name__ == "__main__":
    anyio.run(main)
