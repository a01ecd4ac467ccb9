"""The public listener: the request path of every profile request, in the spec's order.

request id → body size limit → blocklist → authentication → per-IP and
per-caller rate limits → decode → authorize the target → resolve it →
admission (global and per-target) → run → JSON or SSE.

Everything that can be refused is refused before the first byte of the
answer, so its status is real; the SSE response itself sends its headers
only with the first token (a failure before that is still a JSON error).
An admission slot is held until the stream's terminal event or the client's
disconnect, whichever comes first (both end the response coroutine, and the
slot is released in its ``finally``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import anyio

from sipp import RunCancelled, SippError, UpstreamError
from sipp.gateway import (
    GatewayJSONResponse,
    GatewayStreamResponse,
    decode_gateway_chat_body,
    decode_gateway_embed_body,
    decode_gateway_query_body,
    gateway_embedding_response_body,
    gateway_error_response,
    gateway_text_response_body,
    read_json_body,
    request_id_from_scope,
)
from sipp.gateway.asgi import payload_too_large

from ._auth import AuthError, Principal
from ._observe import RequestRecord, finish
from ._state import Lease, StateUnavailable

if TYPE_CHECKING:
    from sipp.gateway.asgi import Receive, Scope, Send

    from ._app import GatewayServer

__all__ = ["Refused", "handle_models", "handle_profile"]

_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "query": decode_gateway_query_body,
    "chat": decode_gateway_chat_body,
    "embed": decode_gateway_embed_body,
}


class Refused(SippError):
    """A refusal of the request path: ``code``, ``status``, rejection ``reason``, retry hint."""

    def __init__(
        self, code: str, message: str, status: int, reason: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def _refusal_response(refused: Refused, request_id: str) -> GatewayJSONResponse:
    headers = {"x-request-id": request_id}
    if refused.retry_after is not None:
        headers["retry-after"] = str(max(1, int(-(-refused.retry_after // 1))))
    body = {"error": {"code": refused.code, "message": refused.message}}
    return GatewayJSONResponse(body, status=refused.status, headers=headers)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _admit(server: GatewayServer, scope: Scope, record: RequestRecord) -> Principal:
    """Size, blocklist, authentication and rate limits: the checks before the body."""
    length = _header(scope, b"content-length")
    limit = server.config.server.max_request_bytes
    if length is not None and length.isdigit() and int(length) > limit:
        error = payload_too_large(limit)
        raise Refused(error.code, error.message, 413, "size")
    peer = scope.get("client") or ("", 0)
    record.client = server.addresses.resolve(peer[0], scope["headers"])
    if server.addresses.blocked(record.client):
        raise Refused("blocked", "client address is blocked", 403, "blocked")
    try:
        principal = server.auth.authenticate(_header(scope, b"authorization"))
    except AuthError as exc:
        raise Refused("authentication", str(exc), 401, "auth") from exc
    record.caller = principal.caller
    limits = []
    ip_limit = server.config.security.ip_rate_limit
    if ip_limit is not None:
        limits.append((f"ip:{record.client}", ip_limit))
    if principal.rate_limit is not None:
        limits.append((f"caller:{principal.caller}", principal.rate_limit))
    if limits:
        wait = await server.state.hit(limits)
        if wait is not None:
            raise Refused("rate_limited", "rate limit exceeded", 429, "rate", wait)
    return principal


async def handle_profile(
    server: GatewayServer, operation: str, scope: Scope, receive: Receive, send: Send
) -> None:
    request_id = request_id_from_scope(scope)
    record = RequestRecord(request_id, operation, time.perf_counter())
    lease: Lease | None = None
    server.request_started()
    sent = _Sent(send, record)
    try:
        response: Any
        try:
            principal = await _admit(server, scope, record)
            max_bytes = server.config.server.max_request_bytes
            decoded = _DECODERS[operation](await read_json_body(receive, max_bytes=max_bytes))
            record.target = target = decoded.target
            record.stream = bool(getattr(decoded, "stream", False))
            if not principal.may_use(target):
                raise Refused(
                    "authorization", "caller is not allowed to use the target", 403, "auth"
                )
            if target not in server.targets:
                raise Refused("resolution", f"unknown target {target!r}", 404, "resolution")
            slots = [("global", server.config.server.max_concurrent_requests)]
            per_target = server.targets[target].max_concurrent
            if per_target is not None:
                slots.append((f"target:{target}", per_target))
            taken = await server.state.acquire(slots, request_id)
            if isinstance(taken, str):
                raise Refused("admission", "concurrency limit reached", 429, "admission", 1.0)
            lease = taken
            response = await _run(server, operation, decoded, record, scope, receive)
        except Refused as refused:
            record.code = refused.code
            if refused.reason != "resolution":
                server.metrics.rejections.labels(refused.reason).inc()
            response = _refusal_response(refused, request_id)
        except StateUnavailable:
            record.code = "unavailable"
            response = _refusal_response(
                Refused("unavailable", "gateway state unavailable", 503, "state"), request_id
            )
        except Exception as error:
            response = _error(error, record, request_id)
        if isinstance(response, GatewayStreamResponse):
            await _stream(response, record, scope, receive, sent, request_id)
        else:
            await response(scope, receive, sent)
    finally:
        if lease is not None:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(StateUnavailable):  # the lease expires by itself
                    await server.state.release(lease)
        server.request_finished()
        finish(record, server.metrics, server.recent, server.config.server.access_log)


def _error(error: BaseException, record: RequestRecord, request_id: str) -> GatewayJSONResponse:
    if isinstance(error, RunCancelled):
        record.cancel_reason = error.reason
        if error.reason == "server_shutdown":
            record.code = "server_shutdown"
            body = {"error": {"code": "server_shutdown", "message": "the gateway is shutting down"}}
            return GatewayJSONResponse(body, status=503, headers={"x-request-id": request_id})
    if isinstance(error, UpstreamError):
        record.upstream_kind = error.kind
    elif isinstance(error, SippError) and error.status >= 500:
        record.upstream_kind = type(error).__name__
    response = gateway_error_response(error)
    response.headers["x-request-id"] = request_id
    record.code = response.body["error"]["code"]
    return response


async def _run(
    server: GatewayServer,
    operation: str,
    decoded: Any,
    record: RequestRecord,
    scope: Scope,
    receive: Receive,
) -> Any:
    client = server.client
    target = decoded.target
    if operation == "embed":
        embed_run = client.embed(decoded.request, endpoint=target)
        server.track(embed_run)
        result = await _unless_disconnected(embed_run, receive)
        record.tokens_in = result.usage.input_tokens
        body = gateway_embedding_response_body(target, result)
        return GatewayJSONResponse(body, headers={"x-request-id": record.request_id})
    run = (
        client.chat(decoded.request, endpoint=target)
        if operation == "chat"
        else (client.query(decoded.request, endpoint=target))
    )
    server.track(run)
    if decoded.stream:
        return GatewayStreamResponse(run)
    response = await _unless_disconnected(run, receive)
    record.tokens_in = response.usage.input_tokens
    record.tokens_out = response.usage.output_tokens
    body = gateway_text_response_body(target, response)
    return GatewayJSONResponse(body, headers={"x-request-id": record.request_id})


async def _unless_disconnected(run: Any, receive: Receive) -> Any:
    """Await ``run``; cancel it with ``client_disconnected`` if the client goes away first."""

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                run.cancel("client_disconnected")
                return

    failure: list[Exception] = []
    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        try:
            result = await run
        except Exception as error:  # raised below, unwrapped (not in an ExceptionGroup)
            failure.append(error)
        group.cancel_scope.cancel()
    if failure:
        raise failure[0]
    return result


class _Sent:
    """Wraps ``send`` to note the status and the time of the first streamed byte."""

    __slots__ = ("record", "send")

    def __init__(self, send: Send, record: RequestRecord) -> None:
        self.send = send
        self.record = record

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.record.status = message["status"]
        elif self.record.ttft is None and self.record.stream and message.get("more_body"):
            self.record.ttft = time.perf_counter() - self.record.started
        await self.send(message)


async def _stream(
    response: GatewayStreamResponse,
    record: RequestRecord,
    scope: Scope,
    receive: Receive,
    send: _Sent,
    request_id: str,
) -> None:
    # The stream response reads the request id from the scope: give it ours.
    inner = {**scope, "headers": [(b"x-request-id", request_id.encode("latin-1"))]}
    try:
        await response(inner, receive, send)
    finally:
        run = response.run
        record.cancel_reason = run.cancel_reason
        final, error = run.final_response, run.error
        if final is not None:
            record.tokens_in = final.usage.input_tokens
            record.tokens_out = final.usage.output_tokens
        elif isinstance(error, UpstreamError):
            record.upstream_kind = error.kind
        if error is not None and not isinstance(error, RunCancelled):
            code = getattr(error, "code", "internal")
            record.code = code if isinstance(code, str) else "internal"


async def handle_models(server: GatewayServer, scope: Scope, receive: Receive, send: Send) -> None:
    request_id = request_id_from_scope(scope)
    record = RequestRecord(request_id, "models", time.perf_counter())
    sent = _Sent(send, record)
    try:
        response: GatewayJSONResponse
        try:
            principal = await _admit(server, scope, record)
            data = [
                server.describe(name)
                for name in server.targets
                if principal.may_use(name) and name in server.client.endpoints
            ]
            response = GatewayJSONResponse(
                {"object": "list", "data": data}, headers={"x-request-id": request_id}
            )
        except Refused as refused:
            record.code = refused.code
            server.metrics.rejections.labels(refused.reason).inc()
            response = _refusal_response(refused, request_id)
        except StateUnavailable:
            response = _refusal_response(
                Refused("unavailable", "gateway state unavailable", 503, "state"), request_id
            )
        await response(scope, receive, sent)
    finally:
        finish(record, server.metrics, server.recent, server.config.server.access_log)
