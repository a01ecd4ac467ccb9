"""One client, a local endpoint and a gateway endpoint, one picked per request.

The gateway endpoint points at a route that speaks the gateway profile (run
``examples/gateway_provider_route.py``, or any profile server), so the
provider key stays on that server. ``SIPP_GATEWAY_URL`` says where it is;
``SIPP_LOCAL_DESCRIPTOR`` (JSON) replaces the stand-in local endpoint, e.g.
``{"kind": "local", "source": "model.gguf"}``.

    python examples/gateway_client.py "Explain Sipp."
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio

from sipp import SippClient


def local_descriptor() -> dict[str, Any]:
    configured = os.environ.get("SIPP_LOCAL_DESCRIPTOR")
    if configured:
        descriptor: dict[str, Any] = json.loads(configured)
        return descriptor
    return {"kind": "scripted", "reply": "A local answer."}


async def main(prompt: str) -> None:
    async with SippClient() as client:
        local = await client.add("local", local_descriptor())
        cloud = await client.add(
            "cloud",
            {
                "kind": "gateway",
                "target": os.environ.get("SIPP_PUBLIC_TARGET", "gpt-5-mini"),
                "base_url": os.environ.get("SIPP_GATEWAY_URL", "http://127.0.0.1:8000"),
                "timeout": 30,
            },
        )
        for endpoint in (local, cloud):  # pick one per request
            run = client.query(prompt, endpoint=endpoint, max_tokens=64, emit_tokens=True)
            print(f"[{endpoint.name}] ", end="")
            async for batch in run.tokens:
                print(batch.text, end="", flush=True)
            response = await run
            print(f" ({response.finish_reason})")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "Explain Sipp.")
