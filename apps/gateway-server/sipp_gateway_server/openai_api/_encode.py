"""sipp answers as OpenAI's JSON bodies and stream chunks (sans-I/O).

* ``chat.completion`` / ``chat.completion.chunk``: the text as ``content``,
  tool calls as ``tool_calls`` (streamed as OpenAI streams them: the first
  piece of a call carries ``id``, ``type`` and ``function.name``; later pieces
  only ``function.arguments``), reasoning as ``reasoning_content`` (the field
  OpenAI-compatible servers use: OpenAI's own chat API returns no reasoning
  text), usage with ``completion_tokens_details.reasoning_tokens`` and
  ``prompt_tokens_details.cached_tokens`` when known;
* ``text_completion`` for ``/v1/completions``;
* an embedding list, each vector as floats or as base64 of little-endian
  float32 (what openai-python asks for by default and decodes);
* the error envelope ``{"error": {"message", "type", "param", "code"}}``; the
  status is the profile's, which is what openai-python maps to its exception
  classes (400 ``BadRequestError``, 401 ``AuthenticationError``, 403
  ``PermissionDeniedError``, 404 ``NotFoundError``, 429 ``RateLimitError``,
  5xx ``InternalServerError``); ``code`` is the profile's code.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Any, Final

from sipp import EmbeddingResponse, TextResponse, TokenBatch, Usage
from sipp.gateway import encode_json

from .._surface import Failure
from .._surface_stream import sse
from ._decode import ChatDetails, EmbedDetails

__all__ = [
    "ChatChunks",
    "CompletionChunks",
    "chat_body",
    "completion_body",
    "embeddings_body",
    "error_body",
    "error_event",
]

_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_FINISH: Final = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def error_body(failure: Failure) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(failure.status, "server_error" if failure.status >= 500 else "error")
    return {
        "error": {
            "message": failure.message,
            "type": kind,
            "param": failure.param,
            "code": failure.code,
        }
    }


def error_event(failure: Failure) -> bytes:
    """A failure after the stream began: openai-python raises ``APIError`` on it."""
    return sse(encode_json(error_body(failure)))


def _usage(usage: Usage) -> dict[str, Any]:
    prompt = usage.input_tokens or 0
    completion = usage.output_tokens or 0
    body: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.total_tokens
        if usage.total_tokens is not None
        else prompt + completion,
    }
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.cache_read_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    return body


def _id(prefix: str, request_id: str) -> str:
    return f"{prefix}-{request_id}"


def chat_body(details: ChatDetails, response: TextResponse, request_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.text}
    if response.tool_calls:
        message["content"] = response.text or None
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in response.tool_calls
        ]
    if response.reasoning is not None:
        message["reasoning_content"] = response.reasoning
    return {
        "id": _id("chatcmpl", request_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": details.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _FINISH.get(response.finish_reason, "stop"),
            }
        ],
        "usage": _usage(response.usage),
    }


def completion_body(
    details: ChatDetails, response: TextResponse, request_id: str
) -> dict[str, Any]:
    return {
        "id": _id("cmpl", request_id),
        "object": "text_completion",
        "created": int(time.time()),
        "model": details.model,
        "choices": [
            {
                "index": 0,
                "text": response.text,
                "logprobs": None,
                "finish_reason": _FINISH.get(response.finish_reason, "stop"),
            }
        ],
        "usage": _usage(response.usage),
    }


def _vector(values: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
    return values


def embeddings_body(details: EmbedDetails, response: EmbeddingResponse) -> dict[str, Any]:
    vectors = response.vectors or [response.values]
    prompt = response.usage.input_tokens or 0
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _vector(v, details.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": details.model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }


class _Chunks:
    """Shared by both chunk encoders: the id, the time, and usage at the end."""

    object_name = ""

    def __init__(self, details: ChatDetails, request_id: str, prefix: str) -> None:
        self._details = details
        self._id = _id(prefix, request_id)
        self._created = int(time.time())

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": self.object_name,
            "created": self._created,
            "model": self._details.model,
            "choices": choices,
        }
        if self._details.include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return sse(encode_json(chunk))

    def _close(self, last_choice: dict[str, Any], response: TextResponse) -> bytes:
        frames = self._chunk([last_choice])
        if self._details.include_usage:
            frames += self._chunk([], usage=_usage(response.usage))
        return frames + sse(b"[DONE]")


class ChatChunks(_Chunks):
    """A chat run as ``chat.completion.chunk`` events, then ``[DONE]``."""

    object_name = "chat.completion.chunk"

    def __init__(self, details: ChatDetails, request_id: str) -> None:
        super().__init__(details, request_id, "chatcmpl")

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])

    def begin(self) -> bytes:
        return self._delta({"role": "assistant", "content": ""})

    def batch(self, batch: TokenBatch) -> bytes:
        frames = b""
        if batch.reasoning:
            frames += self._delta({"reasoning_content": batch.reasoning})
        if batch.text:
            frames += self._delta({"content": batch.text})
        for piece in batch.tool_calls:
            call: dict[str, Any] = {"index": piece.index}
            function: dict[str, Any] = {}
            if piece.id is not None:
                call["id"] = piece.id
                call["type"] = "function"
            if piece.name is not None:
                function["name"] = piece.name
            function["arguments"] = piece.arguments
            call["function"] = function
            frames += self._delta({"tool_calls": [call]})
        return frames

    def end(self, response: TextResponse) -> bytes:
        reason = _FINISH.get(response.finish_reason, "stop")
        last = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        return self._close(last, response)


class CompletionChunks(_Chunks):
    """A query run as ``text_completion`` chunks, then ``[DONE]``."""

    object_name = "text_completion"

    def __init__(self, details: ChatDetails, request_id: str) -> None:
        super().__init__(details, request_id, "cmpl")

    def _text(self, text: str, finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}

    def begin(self) -> bytes:
        return b""

    def batch(self, batch: TokenBatch) -> bytes:
        return self._chunk([self._text(batch.text)]) if batch.text else b""

    def end(self, response: TextResponse) -> bytes:
        return self._close(self._text("", _FINISH.get(response.finish_reason, "stop")), response)
