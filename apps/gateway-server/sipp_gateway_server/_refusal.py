"""A refusal of the request path, and its JSON answer.

Every part that can refuse a request (authentication, limits, resolution)
raises :class:`Refused`; the handler turns it into one response shape, so
the status, the error code and the ``Retry-After`` header agree everywhere.
"""

from __future__ import annotations

from sipp import SippError
from sipp.gateway import GatewayJSONResponse

__all__ = ["Refused", "refusal_response", "state_unavailable"]


class Refused(SippError):
    """A refusal: ``code``, ``status``, rejection ``reason`` (a metrics label), retry hint."""

    def __init__(
        self, code: str, message: str, status: int, reason: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def state_unavailable() -> Refused:
    """The answer when the shared state cannot decide (a fail-closed limit)."""
    return Refused("unavailable", "gateway state unavailable", 503, "state", 1.0)


def refusal_response(
    refused: Refused, request_id: str, *, body_unread: bool = False
) -> GatewayJSONResponse:
    headers = {"x-request-id": request_id}
    if body_unread:
        # The request body was never read: the connection cannot safely carry the
        # next request (the server may close it while a client reuses it), so say so.
        headers["connection"] = "close"
    if refused.retry_after is not None:
        # Whole seconds, rounded up: a client that waits exactly that long is allowed.
        headers["retry-after"] = str(max(1, int(-(-refused.retry_after // 1))))
    body = {"error": {"code": refused.code, "message": refused.message}}
    return GatewayJSONResponse(body, status=refused.status, headers=headers)
