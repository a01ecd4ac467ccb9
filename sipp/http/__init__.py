"""Helpers that HTTP drivers share: SSE decoding, error classification, redaction.

Public for third-party drivers. Importing this package imports httpx, so the
core never imports it; drivers do, at ``add()`` time.
"""

from ._sse import MAX_EVENT_BYTES, SSEDecoder, SSEError, SSEEvent

__all__ = ["MAX_EVENT_BYTES", "SSEDecoder", "SSEError", "SSEEvent"]
