"""Quick start: one client, one endpoint, the three ways to ask.

Runs anywhere with no model and no key: it uses the deterministic ``scripted``
endpoint that ships in ``sipp.testing``. Swap the descriptor for
``{"kind": "local", "source": "model.gguf"}`` or a provider and nothing else
changes.
"""

from __future__ import annotations

import anyio

from sipp import RunCancelled, SippClient


async def main() -> None:
    async with SippClient() as client:
        bot = await client.add(
            "bot",
            {
                "kind": "scripted",
                "reply": "Sipp runs every model the same way.",
                "token_delay": 0.02,
                "embedding": [0.1, 0.2, 0.3],
            },
        )

        # 1. just the answer
        response = await client.query("Explain Sipp.", endpoint=bot, max_tokens=64)
        print(response.text, response.finish_reason, response.usage)

        # 2. streaming: iterate the run's token batches, then take the response
        run = client.chat([{"role": "user", "content": "Hi"}], endpoint=bot, emit_tokens=True)
        async for batch in run.tokens:
            print(batch.text, end="", flush=True)
        print()
        final = await run.response
        print("tokens:", final.usage.output_tokens)

        # 3. cancel from anywhere, with a reason
        run = client.query("Write a novel.", endpoint=bot, emit_tokens=True)
        async for _ in run.tokens:
            run.cancel("caller_cancelled")
        try:
            await run
        except RunCancelled as cancelled:
            print(
                "cancelled:",
                cancelled.reason,
                repr(cancelled.partial.text if cancelled.partial else ""),
            )

        vector = (await client.embed("some text", endpoint=bot)).values
        print("vector:", vector)


if __name__ == "__main__":
    anyio.run(main)  # or anyio.run(main, backend="trio")
