"""A Starlette app whose routes speak the gateway profile, backed by a provider.

The Python counterpart of the seed's Next.js route handler: browsers, Node,
Rust and Python clients register a ``kind: "gateway"`` endpoint pointing at
this app, and the provider key never leaves the server. JSON and SSE both
work; a client that disconnects mid-stream cancels the provider stream.

    OPENAI_API_KEY=... python examples/gateway_provider_route.py   # serves 127.0.0.1:8000

``SIPP_ROUTE_DESCRIPTOR`` (a JSON descriptor) replaces the provider with any
endpoint, e.g. ``{"kind": "local", "source": "model.gguf"}``; the tests use
the deterministic ``scripted`` endpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sipp import SippClient
from sipp.gateway import (
    GatewayProfileError,
    decode_gateway_chat_body,
    decode_gateway_embed_body,
    decode_gateway_query_body,
    gateway_embedding_response_body,
    gateway_text_response_body,
)
from sipp.gateway.starlette import error_response, json_response, read_json, stream_response

PUBLIC_TARGET = os.environ.get("SIPP_PUBLIC_TARGET", "gpt-5-mini")


def default_descriptor() -> dict[str, Any]:
    configured = os.environ.get("SIPP_ROUTE_DESCRIPTOR")
    if configured:
        descriptor: dict[str, Any] = json.loads(configured)
        return descriptor
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise SystemExit("set OPENAI_API_KEY (or SIPP_ROUTE_DESCRIPTOR)")
    return {"kind": "provider", "provider": "openai", "model": PUBLIC_TARGET, "api_key": key}


def create_app(descriptor: Mapping[str, Any], *, target: str = PUBLIC_TARGET) -> Starlette:
    client = SippClient()

    def check_target(name: str) -> None:
        if name != target:
            raise GatewayProfileError("resolution", f"unknown target {name!r}", status=404)

    async def query(request: Request) -> Response:
        try:
            decoded = decode_gateway_query_body(await read_json(request))
            check_target(decoded.target)
            run = client.query(decoded.request, endpoint="upstream")
            if decoded.stream:
                return stream_response(run)
            return json_response(gateway_text_response_body(decoded.target, await run))
        except Exception as error:
            return error_response(error)

    async def chat(request: Request) -> Response:
        try:
            decoded = decode_gateway_chat_body(await read_json(request))
            check_target(decoded.target)
            run = client.chat(decoded.request, endpoint="upstream")
            if decoded.stream:
                return stream_response(run)
            return json_response(gateway_text_response_body(decoded.target, await run))
        except Exception as error:
            return error_response(error)

    async def embed(request: Request) -> Response:
        try:
            decoded = decode_gateway_embed_body(await read_json(request))
            check_target(decoded.target)
            response = await client.embed(decoded.request, endpoint="upstream")
            body = gateway_embedding_response_body(decoded.target, response, batch=decoded.batch)
            return json_response(body)
        except Exception as error:
            return error_response(error)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with client:
            await client.add("upstream", dict(descriptor))
            yield

    routes = [
        Route("/v1/query", query, methods=["POST"]),
        Route("/v1/chat", chat, methods=["POST"]),
        Route("/v1/embed", embed, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.client = client
    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(default_descriptor()), host="127.0.0.1", port=8000)
