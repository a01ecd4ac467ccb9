"""The public listener's request path, in the spec's order, from narrow parts.

request id → body size limit → blocklist → authentication → per-IP and
per-caller rate limits → body (within ``body_timeout``, else 408) → decode →
authorize the target → resolve it → admission (global and per-target) →
run (bounded by the target's ``max_tokens`` and ``max_seconds``,
``_bounds.py``) → JSON or SSE. A request whose client left before the
answer's headers is logged with status 499 and its cancel reason.

:class:`RequestPath` is handed its parts (who is calling, the limits, the
targets, the lifecycle counter and where finished requests are counted) and
knows nothing else about the gateway. Everything that can be refused is
refused before the first byte of the answer, so its status is real; the SSE
response sends its headers only with the first token (a failure before that
is still a JSON error). An admission slot is held until the stream's
terminal event or the client's disconnect, whichever comes first (both end
the response coroutine, and the slot is released in its ``finally``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

import anyio

from sipp import Run, RunCancelled, SippError, UpstreamError
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
    run_unless_disconnected,
)
from sipp.gateway.asgi import payload_too_large

from ._auth import Authenticator, AuthError, ClientAddress, Principal
from ._bounds import BoundedRun, bound_request
from ._observe import Observer, RequestRecord
from ._refusal import Refused, refusal_response
from ._sent import Sent, stream_response

if TYPE_CHECKING:
    from sipp.gateway.asgi import Receive, Scope, Send

    from ._activity import Activity
    from ._limits import Limits
    from ._state import Lease
    from ._targets import Targets
    from ._token_limits import Reservation, TokenLimits

__all__ = ["RequestPath"]

_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "query": decode_gateway_query_body,
    "chat": decode_gateway_chat_body,
    "embed": decode_gateway_embed_body,
}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class RequestPath:
    """Answers profile requests and ``/v1/models`` with the parts it is given."""

    def __init__(
        self,
        *,
        auth: Authenticator,
        addresses: ClientAddress,
        limits: Limits,
        targets: Targets,
        activity: Activity,
        observer: Observer,
        max_request_bytes: int,
        tokens: TokenLimits | None = None,
        body_timeout: float = 30.0,
    ) -> None:
        self._tokens = tokens
        self._auth = auth
        self._addresses = addresses
        self._limits = limits
        self._targets = targets
        self._activity = activity
        self._observer = observer
        self._max_bytes = max_request_bytes
        self._body_timeout = body_timeout

    async def _caller(self, scope: Scope, record: RequestRecord) -> Principal:
        """Size, blocklist, authentication and rate limits: the checks before the body."""
        length = _header(scope, b"content-length")
        limit = self._max_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            error = payload_too_large(limit)
            raise Refused(error.code, error.message, 413, "size")
        peer = scope.get("client") or ("", 0)
        record.client = self._addresses.resolve(peer[0], scope["headers"])
        if self._addresses.blocked(record.client):
            raise Refused("blocked", "client address is blocked", 403, "blocked")
        try:
            principal = self._auth.authenticate(_header(scope, b"authorization"))
        except AuthError as exc:
            raise Refused("authentication", str(exc), 401, "auth") from exc
        record.caller = principal.caller
        await self._limits.check_rates(record.client, principal)
        return principal

    async def profile(self, operation: str, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from_scope(scope)
        record = RequestRecord(request_id, operation, time.perf_counter())
        lease: Lease | None = None
        reservation: Reservation | None = None
        body_read = False
        self._activity.started()
        sent = Sent(send, record)
        try:
            response: Any
            try:
                principal = await self._caller(scope, record)
                body = await self._body(receive)
                body_read = True
                decoded = _DECODERS[operation](body)
                record.target = target = decoded.target
                record.stream = bool(getattr(decoded, "stream", False))
                if not principal.may_use(target):
                    raise Refused(
                        "authorization", "caller is not allowed to use the target", 403, "auth"
                    )
                if target not in self._targets:
                    raise Refused("resolution", f"unknown target {target!r}", 404, "resolution")
                if self._tokens is not None:
                    max_tokens = getattr(decoded.request, "max_tokens", None)
                    reservation = await self._tokens.reserve(principal, max_tokens)
                lease = await self._limits.admit(target)
                response = await self._run(operation, decoded, record, scope, receive)
            except Refused as refused:
                record.code = refused.code
                if refused.reason != "resolution":
                    self._observer.rejected(refused.reason)
                response = refusal_response(refused, request_id, body_unread=not body_read)
            except Exception as error:
                response = _error(error, record, request_id)
            if isinstance(response, GatewayStreamResponse):
                await stream_response(response, record, scope, receive, sent, request_id)
            else:
                await response(scope, receive, sent)
        finally:
            if record.status == 0:
                # The client left before the answer's headers (nginx's 499).
                record.status = 499
                record.cancel_reason = record.cancel_reason or "client_disconnected"
            if lease is not None:
                await self._limits.release(lease)
            if reservation is not None and self._tokens is not None:
                await self._tokens.settle_record(reservation, record)
            self._activity.finished()
            self._observer.finish(record)

    async def _body(self, receive: Receive) -> Any:
        return await read_body_within(receive, self._max_bytes, self._body_timeout)

    async def _run(
        self, operation: str, decoded: Any, record: RequestRecord, scope: Scope, receive: Receive
    ) -> Any:
        target = decoded.target
        config = self._targets.configs[target]
        request = bound_request(decoded.request, config.max_tokens, config.max_seconds)
        run = self._targets.start(operation, request, target=target)
        if operation == "embed":
            result = await unless_disconnected(run, scope, receive)
            record.tokens_in = result.usage.input_tokens
            body = gateway_embedding_response_body(target, result, batch=decoded.batch)
            return GatewayJSONResponse(body, headers={"x-request-id": record.request_id})
        if decoded.stream:
            assert isinstance(run, Run)  # only embed starts an EmbedRun
            limit = request.max_tokens
            if limit is None:
                return GatewayStreamResponse(run)
            # Counted: an upstream that ignores max_tokens is cut at it.
            return GatewayStreamResponse(cast(Run, BoundedRun(run, limit)))
        response = await unless_disconnected(run, scope, receive)
        record.tokens_in = response.usage.input_tokens
        record.tokens_out = response.usage.output_tokens
        body = gateway_text_response_body(target, response)
        return GatewayJSONResponse(body, headers={"x-request-id": record.request_id})

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from_scope(scope)
        record = RequestRecord(request_id, "models", time.perf_counter())
        sent = Sent(send, record)
        try:
            response: GatewayJSONResponse
            try:
                principal = await self._caller(scope, record)
                allowed = [n for n in self._targets.configs if principal.may_use(n)]
                data = [self._targets.describe(n) for n in self._targets.available(allowed)]
                response = GatewayJSONResponse(
                    {"object": "list", "data": data}, headers={"x-request-id": request_id}
                )
            except Refused as refused:
                record.code = refused.code
                self._observer.rejected(refused.reason)
                response = refusal_response(refused, request_id)
            await response(scope, receive, sent)
        finally:
            self._observer.finish(record)


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


async def unless_disconnected(run: Any, scope: Scope, receive: Receive) -> Any:
    """Await ``run``; cancel it with ``client_disconnected`` if the client goes away first."""
    return await run_unless_disconnected(
        scope, receive, lambda: run.response, lambda: run.cancel("client_disconnected")
    )


async def read_body_within(receive: Receive, max_bytes: int, seconds: float) -> Any:
    """The JSON request body, read within ``seconds`` (a slow body holds a connection)."""
    with anyio.move_on_after(seconds):
        return await read_json_body(receive, max_bytes=max_bytes)
    message = f"the request body did not arrive within {seconds:g}s"
    raise Refused("request_timeout", message, 408, "timeout")
