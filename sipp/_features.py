"""What a request asks of its endpoint, checked before any I/O.

Two jobs, both done when a run starts and before the driver sees anything:

* refuse a request that needs a capability the endpoint lacks (tools, images,
  structured output, reasoning, several embedding inputs), naming it;
* turn the caller's per-request ``options`` into the driver's own options
  type, so a misspelt option fails here with the key named.

The core knows no driver's options: each driver declares ``options_type``
(and optionally ``options_keyword``, the extra keyword users may pass them
under). Drivers written for contract version 1 declared
``capabilities.extras`` instead, which is honoured the same way.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._chat import ChatMessage
from ._endpoint import Endpoint
from ._errors import InvalidRequestError, UnsupportedOperationError
from ._models import ChatRequest, EmbedRequest, QueryRequest
from ._validation import convert_request

__all__ = ["AnyRequest", "fit_request"]

AnyRequest = QueryRequest | ChatRequest | EmbedRequest

#: Keys a free-form (dict) options value may not set: they are typed fields on
#: the wire, and a driver merging options into its body would let them win.
#: (An embedding has no typed ``stream``, so there it passes through.)
_TEXT_WIRE_KEYS = frozenset(
    {"model", "prompt", "messages", "max_tokens", "temperature", "top_p", "stop", "seed"}
    | {"stream", "tools", "tool_choice", "reasoning"}
)
_EMBED_WIRE_KEYS = frozenset({"model", "input"})


def fit_request(request: AnyRequest, endpoint: Endpoint, keyword: str | None) -> AnyRequest:
    """``request`` ready for ``endpoint``'s driver, or the error that explains why not."""
    driver = endpoint.driver
    caps = driver.capabilities
    name = endpoint.info.name
    if isinstance(request, EmbedRequest):
        if isinstance(request.input, list) and not caps.embed_batch:
            _refuse(name, "embed_batch", "several inputs in one call")
    else:
        if request.tools and request.tool_choice != "none" and not caps.tools:
            _refuse(name, "tools", "tool calling")
        if request.output_schema is not None and not caps.structured_output:
            _refuse(name, "structured_output", "structured output (output=)")
        if request.reasoning is not None and not caps.reasoning:
            _refuse(name, "reasoning", "reasoning settings")
        if isinstance(request, ChatRequest):
            request = _fit_messages(request, endpoint)
    return _fit_options(request, endpoint, keyword)


def _refuse(endpoint: str, capability: str, what: str) -> None:
    raise UnsupportedOperationError(
        f"endpoint {endpoint!r} does not support {what} (capability {capability!r})"
    )


def _fit_messages(request: ChatRequest, endpoint: Endpoint) -> ChatRequest:
    caps = endpoint.driver.capabilities
    flatten = False
    for message in request.messages:
        if isinstance(message.content, str):
            if (message.tool_calls or message.role == "tool") and not caps.tools:
                _refuse(endpoint.info.name, "tools", "tool calls and tool results in messages")
            continue
        if message.has_images and not caps.vision:
            _refuse(endpoint.info.name, "vision", "image parts")
        flatten = True
    if flatten and not caps.vision and not caps.tools:
        # A driver that predates parts (contract v1) reads ``content`` as a string.
        messages = [
            m if isinstance(m.content, str) else ChatMessage(role=m.role, content=m.text)
            for m in request.messages
        ]
        return msgspec.structs.replace(request, messages=messages)
    return request


def _fit_options(request: AnyRequest, endpoint: Endpoint, keyword: str | None) -> AnyRequest:
    options = request.options
    if options is None:
        return request
    driver = endpoint.driver
    options_type: Any = getattr(driver, "options_type", None)
    accepted = getattr(driver, "options_keyword", None) or driver.capabilities.extras
    where = f"endpoint {endpoint.info.name!r} ({endpoint.info.kind})"
    if keyword is not None and keyword != accepted:
        hint = f"; it takes options= or {accepted}=" if accepted else "; it takes options="
        raise InvalidRequestError(f"{keyword}= is not accepted by {where}{hint}", field=keyword)
    field = keyword or "options"
    if options_type is None and accepted is None:
        raise InvalidRequestError(f"{where} takes no per-request options", field=field)
    if options_type is None or options_type is dict:
        if not isinstance(options, dict):
            raise InvalidRequestError(f"{field} must be a dict for {where}", field=field)
        typed = _EMBED_WIRE_KEYS if isinstance(request, EmbedRequest) else _TEXT_WIRE_KEYS
        clash = sorted(typed.intersection(options))
        if clash:
            raise InvalidRequestError(
                f"{field} may not set the typed field {clash[0]!r}; pass it as an option",
                field=f"{field}.{clash[0]}",
            )
        return request
    if isinstance(options, options_type):
        return request
    try:
        typed = convert_request(options, options_type)
    except InvalidRequestError as exc:
        inner = f"{field}.{exc.field}" if exc.field else field
        raise InvalidRequestError(f"{field}: {exc.message}", field=inner) from exc
    return msgspec.structs.replace(request, options=typed)
