"""The request path for foreign APIs (OpenAI's, Anthropic's) over the gateway's own parts.

A *surface* is another API's wire shape for the same operations: it decodes
a body into a ``sipp`` request, encodes the answer, streams token batches as
its own SSE events and writes errors in its own envelope. Everything else is
the profile's request path, with the same parts: size limit, blocklist,
authentication (same tokens), per-IP and per-caller rate limits, target
allowlist, admission, the run, the disconnect watch, metrics and the access
log. Only the route label differs (``openai.chat``, ``anthropic.messages``),
so dashboards can tell the surfaces apart.

Refusals and failures are classified once, by the profile's own rules
(:func:`sipp.gateway.gateway_error_response`), and only then reshaped by the
surface: a 429 is a 429 with ``Retry-After`` whatever the envelope looks like.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sipp import Run, RunCancelled, SippError, UpstreamError
from sipp.gateway import GatewayJSONResponse, gateway_error_response
from sipp.gateway import request_id_from_scope as _request_id
from sipp.gateway.asgi import payload_too_large

from ._auth import AuthError
from ._handler import read_body_within, unless_disconnected
from ._observe import RequestRecord
from ._refusal import Refused
from ._sent import Sent
from ._surface_stream import StreamEncoder, SurfaceStream

if TYPE_CHECKING:
    from sipp.gateway.asgi import Receive, Scope, Send

    from ._activity import Activity
    from ._auth import Authenticator, ClientAddress, Principal
    from ._limits import Limits
    from ._observe import Observer
    from ._state import Lease
    from ._targets import Targets
    from ._token_limits import Reservation, TokenLimits

__all__ = ["Decoded", "Dialect", "Failure", "Operation", "SurfacePath", "classify"]


@dataclass(slots=True)
class Decoded:
    """A decoded body: the target, whether to stream, the sipp request, surface details."""

    target: str
    stream: bool
    request: Any
    details: Any = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A refusal or failure, classified by the profile's rules (``code`` is the profile's)."""

    status: int
    code: str
    message: str
    retry_after: str | None = None
    param: str | None = None


class Dialect(Protocol):
    """How one API writes credentials and errors."""

    def credentials(self, scope: Scope) -> bytes | None:
        """The ``Authorization`` value to check (``Bearer …``), from this API's header."""

    def error_body(self, failure: Failure) -> Any: ...

    def stream_error(self, failure: Failure) -> bytes:
        """The SSE event that ends a stream which fails after it began."""


class Operation(Protocol):
    """One route of a surface."""

    route: str  # the metrics and access-log label
    kind: str  # "query", "chat" or "embed": what the target runs

    def decode(self, body: Any) -> Decoded: ...

    def answer(self, decoded: Decoded, result: Any, request_id: str) -> Any: ...

    def encoder(self, decoded: Decoded, request_id: str) -> StreamEncoder: ...


def classify(error: BaseException) -> Failure:
    """``error`` under the profile's status, code and message (and ``Retry-After``)."""
    if isinstance(error, RunCancelled) and error.reason == "server_shutdown":
        return Failure(503, "server_shutdown", "the gateway is shutting down")
    if isinstance(error, Refused):
        retry = None
        if error.retry_after is not None:
            retry = str(max(1, int(-(-error.retry_after // 1))))
        return Failure(error.status, error.code, error.message, retry)
    response = gateway_error_response(error)
    envelope = response.body["error"]
    param = getattr(error, "field", None)
    return Failure(
        response.status,
        envelope["code"],
        envelope["message"],
        response.headers.get("retry-after"),
        param if isinstance(param, str) else None,
    )


class SurfacePath:
    """Serves a surface's operations with the profile path's parts (see the module doc)."""

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
        body_timeout: float = 30.0,
        tokens: TokenLimits | None = None,
    ) -> None:
        self._body_timeout = body_timeout
        self._tokens = tokens
        # The profile path's parts, the same objects: one set of limits and counters.
        self._auth = auth
        self._addresses = addresses
        self.limits = limits
        self.targets = targets
        self.activity = activity
        self.observer = observer
        self.max_bytes = max_request_bytes

    async def serve(
        self, dialect: Dialect, operation: Operation, scope: Scope, receive: Receive, send: Send
    ) -> None:
        request_id = _request_id(scope)
        record = RequestRecord(request_id, operation.route, time.perf_counter())
        lease: Lease | None = None
        reservation: Reservation | None = None
        body_read = False
        self.activity.started()
        sent = Sent(send, record)
        try:
            try:
                principal = await self._caller(dialect, scope, record)
                body = await read_body_within(receive, self.max_bytes, self._body_timeout)
                body_read = True
                decoded = operation.decode(body)
                record.target = target = decoded.target
                record.stream = decoded.stream
                if not principal.may_use(target):
                    raise Refused(
                        "authorization", "caller is not allowed to use the target", 403, "auth"
                    )
                if target not in self.targets:
                    raise Refused("resolution", f"unknown target {target!r}", 404, "resolution")
                if self._tokens is not None:
                    max_tokens = getattr(decoded.request, "max_tokens", None)
                    reservation = await self._tokens.reserve(principal, max_tokens)
                lease = await self.limits.admit(target)
                await self._run(dialect, operation, decoded, record, scope, receive, sent)
            except Exception as error:
                if isinstance(error, Refused) and error.reason != "resolution":
                    self.observer.rejected(error.reason)
                note_error(error, record)
                failure = classify(error)
                record.code = failure.code
                response = _json_error(dialect, failure, request_id, body_unread=not body_read)
                await response(scope, receive, sent)
        finally:
            if lease is not None:
                await self.limits.release(lease)
            if reservation is not None and self._tokens is not None:
                await self._tokens.settle_record(reservation, record)
            self.activity.finished()
            self.observer.finish(record)

    async def model(
        self, dialect: Dialect, name: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """``GET /v1/models/{name}``: one entry of the model list, or a 404 in the API's shape."""
        request_id = _request_id(scope)
        record = RequestRecord(request_id, "models", time.perf_counter())
        sent = Sent(send, record)
        try:
            try:
                principal = await self._caller(dialect, scope, record)
                record.target = name
                # A target this caller may not use does not exist, as far as it can tell.
                if not principal.may_use(name) or not self.targets.available([name]):
                    raise Refused("resolution", f"unknown model {name!r}", 404, "resolution")
                body = self.targets.describe(name)
                response = GatewayJSONResponse(body, headers=_ids(request_id))
            except Exception as error:
                if isinstance(error, Refused) and error.reason != "resolution":
                    self.observer.rejected(error.reason)
                failure = classify(error)
                record.code = failure.code
                response = _json_error(dialect, failure, request_id)
            await response(scope, receive, sent)
        finally:
            self.observer.finish(record)

    async def _caller(self, dialect: Dialect, scope: Scope, record: RequestRecord) -> Principal:
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            error = payload_too_large(self.max_bytes)
            raise Refused(error.code, error.message, 413, "size")
        peer = scope.get("client") or ("", 0)
        record.client = self._addresses.resolve(peer[0], scope["headers"])
        if self._addresses.blocked(record.client):
            raise Refused("blocked", "client address is blocked", 403, "blocked")
        try:
            principal = self._auth.authenticate(dialect.credentials(scope))
        except AuthError as exc:
            raise Refused("authentication", str(exc), 401, "auth") from exc
        record.caller = principal.caller
        await self.limits.check_rates(record.client, principal)
        return principal

    async def _run(
        self,
        dialect: Dialect,
        operation: Operation,
        decoded: Decoded,
        record: RequestRecord,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        run = self.targets.start(operation.kind, decoded.request, target=decoded.target)
        request_id = record.request_id
        if decoded.stream:
            assert isinstance(run, Run)
            stream = SurfaceStream(
                run,
                operation.encoder(decoded, request_id),
                lambda error: _json_error(dialect, classify(error), request_id),
                lambda error: dialect.stream_error(classify(error)),
            )
            try:
                await stream(scope, receive, send, request_id)
            finally:
                note_run(run, record)
            return
        result = await unless_disconnected(run, scope, receive)
        usage = result.usage
        record.tokens_in = usage.input_tokens
        record.tokens_out = getattr(usage, "output_tokens", None)
        body = operation.answer(decoded, result, request_id)
        await GatewayJSONResponse(body, headers=_ids(request_id))(scope, receive, send)


def _json_error(
    dialect: Dialect, failure: Failure, request_id: str, *, body_unread: bool = False
) -> GatewayJSONResponse:
    headers = _ids(request_id)
    if body_unread:
        # As on the profile path: the unread body makes the connection unsafe to reuse.
        headers["connection"] = "close"
    if failure.retry_after is not None:
        headers["retry-after"] = failure.retry_after
    return GatewayJSONResponse(dialect.error_body(failure), status=failure.status, headers=headers)


def _ids(request_id: str) -> dict[str, str]:
    # openai-python reads x-request-id, the anthropic SDK request-id: both, always.
    return {"x-request-id": request_id, "request-id": request_id}


def note_error(error: BaseException, record: RequestRecord) -> None:
    """What the access log and metrics learn from a failure."""
    if isinstance(error, RunCancelled):
        record.cancel_reason = error.reason
    elif isinstance(error, UpstreamError):
        record.upstream_kind = error.kind
    elif isinstance(error, SippError) and not isinstance(error, Refused) and error.status >= 500:
        record.upstream_kind = type(error).__name__


def note_run(run: Run, record: RequestRecord) -> None:
    """A finished stream's tokens, cancel reason or error, in ``record``."""
    record.cancel_reason = run.cancel_reason
    final, error = run.final_response, run.error
    if final is not None:
        record.tokens_in = final.usage.input_tokens
        record.tokens_out = final.usage.output_tokens
    elif error is not None:
        note_error(error, record)
    if error is not None and not isinstance(error, RunCancelled):
        record.code = classify(error).code
