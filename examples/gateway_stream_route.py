"""A plain streaming route that sends text: framework-free ASGI, no profile.

The counterpart of the seed's simplest Next.js streaming route: the server
runs the model and streams raw UTF-8 text to a browser ``fetch`` reader. When
the client goes away the run is cancelled with ``client_disconnected``.

    python examples/gateway_stream_route.py   # serves 127.0.0.1:8001; POST a prompt as the body
"""

from __future__ import annotations

from typing import Any

import anyio

from sipp import SippClient
from sipp.gateway.asgi import Receive, Scope, Send

DESCRIPTOR: dict[str, Any] = {
    "kind": "scripted",
    "reply": "Streaming plain text.",
    "token_delay": 0.02,
}


def create_app(client: SippClient, endpoint: str = "model") -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the client's lifetime is the caller's business
            while True:
                phase = (await receive())["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        prompt = b""
        while True:
            message = await receive()
            prompt += message.get("body", b"")
            if not message.get("more_body"):
                break
        run = client.query(prompt.decode() or "Hello", endpoint=endpoint, emit_tokens=True)
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                run.cancel("client_disconnected")
                group.cancel_scope.cancel()

            group.start_soon(watch)
            async for batch in run.tokens:
                await send(
                    {"type": "http.response.body", "body": batch.text.encode(), "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
            group.cancel_scope.cancel()

    return app


async def main() -> None:
    import uvicorn

    async with SippClient() as client:
        await client.add("model", DESCRIPTOR)
        config = uvicorn.Config(create_app(client), host="127.0.0.1", port=8001)
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    anyio.run(main)
