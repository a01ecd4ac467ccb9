"""What an opened gateway endpoint knows: URLs, static headers, authentication, body rules.

All checks happen in ``open()`` (``client.add``), before any request, and fail
with ``ConfigurationError``. Secrets never reach a message or a ``repr``.
"""

from __future__ import annotations

import base64
import inspect
from collections.abc import Mapping
from typing import Any, Final

from sipp import (
    Authentication,
    ChatMessage,
    ChatRequest,
    ConfigurationError,
    EmbedRequest,
    GatewayDescriptor,
    ImagePart,
    InvalidRequestError,
    QueryRequest,
    upstream_error,
)
from sipp.http import validate_base_url

__all__ = ["TYPED_BODY_KEYS", "Auth", "build_body", "check_options", "route_urls"]

#: Keys the driver writes itself; options may never override them.
TYPED_BODY_KEYS: Final = frozenset(
    {
        "model",
        "prompt",
        "messages",
        "input",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "stream",
        # The rich-chat extension.
        "tools",
        "tool_choice",
        "output_schema",
        "reasoning",
    }
)


def route_urls(descriptor: GatewayDescriptor, where: str) -> dict[str, str]:
    """Base URL (its path kept, no trailing ``/``) joined with each route."""
    try:
        base = validate_base_url(
            descriptor.base_url, allow_insecure_http=descriptor.allow_insecure_http
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc.message}") from None
    urls = {}
    for operation in ("query", "chat", "embed"):
        route = getattr(descriptor.routes, operation)
        if not route.startswith("/") or "?" in route or "#" in route or "//" in route[:2]:
            raise ConfigurationError(
                f"{where}: route {operation!r} must be an absolute path without '?' or '#'"
            )
        urls[operation] = base + route
    return urls


def check_options(options: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """``protocol_options``: top-level body keys, never a typed one."""
    if not options:
        return {}
    clash = sorted(TYPED_BODY_KEYS.intersection(options))
    if clash:
        raise ConfigurationError(
            f"{where}: protocol_options may not set the typed field {clash[0]!r}"
        )
    return dict(options)


class Auth:
    """Produces the authentication header for each request."""

    __slots__ = ("_header", "_kind", "_provider", "_value")

    def __init__(self, auth: Authentication, where: str) -> None:
        self._kind = auth.kind
        self._value = auth.value
        self._provider = auth.value_provider
        if auth.kind == "header":
            assert auth.header_name is not None
            self._header = auth.header_name.strip().lower()
            if not self._header or any(c in self._header for c in " :\r\n\t"):
                raise ConfigurationError(f"{where}: header_name is not a valid header name")
        else:
            self._header = "authorization"
        if self._value is not None:
            _check_value(self._value, where)

    @property
    def secrets(self) -> list[str]:
        return [self._value] if self._value else []

    async def header(self) -> tuple[str, str] | None:
        if self._kind == "none":
            return None
        if self._provider is not None:
            value = await self._call_provider()
        else:
            assert self._value is not None  # Authentication checks value or provider
            value = self._value
        if self._kind == "bearer":
            return ("authorization", f"Bearer {value}")
        return (self._header, value)

    async def _call_provider(self) -> str:
        try:
            value = self._provider()
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            raise _auth_error(
                f"authentication value_provider failed ({type(exc).__name__})"
            ) from exc
        if not isinstance(value, str) or not value:
            raise _auth_error("authentication value_provider must return a non-empty string")
        if any(c in value for c in "\r\n\x00"):
            raise _auth_error("authentication value_provider returned an invalid header value")
        return value


def _auth_error(message: str) -> Exception:
    error = upstream_error("gateway", "authentication", message, code="authentication")
    error.retryable = False
    return error


def _check_value(value: str, where: str) -> None:
    if not value or any(c in value for c in "\r\n\x00"):
        raise ConfigurationError(f"{where}: the authentication value is not a valid header value")


def build_body(
    target: str,
    request: QueryRequest | ChatRequest | EmbedRequest,
    stream: bool,
    protocol_options: dict[str, Any],
) -> dict[str, Any]:
    """The profile body: typed snake_case fields, then the options as top-level keys."""
    body: dict[str, Any] = {"model": target}
    if isinstance(request, EmbedRequest):
        body["input"] = request.input
    else:
        if isinstance(request, QueryRequest):
            body["prompt"] = request.prompt
        else:
            body["messages"] = [_message(m) for m in request.messages]
        for name in ("max_tokens", "temperature", "top_p", "stop", "seed"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        _rich_fields(body, request)
        if stream:
            body["stream"] = True
    extras = request.options
    if extras:
        clash = sorted(TYPED_BODY_KEYS.intersection(extras))
        if clash:
            raise InvalidRequestError(
                f"endpoint_options may not set the typed field {clash[0]!r}",
                field=f"endpoint_options.{clash[0]}",
            )
    # Per-request options win over the endpoint's; neither may hold a typed key.
    if protocol_options:
        body.update(protocol_options)
    if extras:
        body.update(extras)
    return body


def _part(part: object) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        if part.data is not None:
            data = base64.b64encode(part.data).decode("ascii")
            return {"type": "image", "data": data, "media_type": part.media_type}
        image: dict[str, Any] = {"type": "image", "url": part.url}
        if part.media_type is not None:
            image["media_type"] = part.media_type
        return image
    return {"type": "text", "text": part.text}  # type: ignore[attr-defined]


def _message(message: ChatMessage) -> dict[str, Any]:
    """A message on the wire; a plain ``{role, content}`` one exactly as the original sends it."""
    content = message.content
    body: dict[str, Any] = {
        "role": message.role,
        "content": content if isinstance(content, str) else [_part(p) for p in content],
    }
    if message.tool_calls:
        body["tool_calls"] = [
            {"id": call.id, "name": call.name, "arguments": call.arguments}
            for call in message.tool_calls
        ]
    if message.role == "tool":
        body["tool_call_id"] = message.tool_call_id
    return body


def _rich_fields(body: dict[str, Any], request: QueryRequest | ChatRequest) -> None:
    """The extension's top-level fields, each only when the request uses it."""
    if request.tools:
        body["tools"] = [
            {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    if request.output_schema is not None:
        body["output_schema"] = request.output_schema
    reasoning = request.reasoning
    if reasoning is not None:
        body["reasoning"] = {
            key: value
            for key, value in (
                ("effort", reasoning.effort),
                ("budget_tokens", reasoning.budget_tokens),
            )
            if value is not None
        }
