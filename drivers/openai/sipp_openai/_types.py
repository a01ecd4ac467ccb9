"""The descriptor both OpenAI flavors take: ``ProviderDescriptor`` plus two knobs.

OpenAI-compatible servers differ in what they implement of the chat API, so an
endpoint may say what its server lacks (``capabilities``) and how it wants a
JSON schema for ``output=`` (``schema_format``). A plain ``ProviderDescriptor``
(or a dict without these keys) keeps the defaults: everything supported, the
schema sent the way OpenAI takes it.
"""

from __future__ import annotations

from typing import Literal

from sipp import ProviderDescriptor

__all__ = ["CapabilityName", "OpenAIDescriptor", "SchemaFormat"]

#: The contract-v2 capabilities an endpoint may switch off (or back on).
CapabilityName = Literal["tools", "structured_output", "vision", "reasoning", "embed_batch"]

#: ``json_schema``: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``
#: (OpenAI, vLLM, llama.cpp's ``llama-server``). ``json_object``: ``{"type":
#: "json_object", "schema": ...}`` (llama-cpp-python's server, whose request
#: model refuses the ``json_schema`` type).
SchemaFormat = Literal["json_schema", "json_object"]


class OpenAIDescriptor(ProviderDescriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ``provider.openai`` or ``provider.openai_compatible`` endpoint.

    ``capabilities`` overrides what the endpoint declares, for example
    ``{"vision": False, "reasoning": False}`` for a text-only server: requests
    that need a capability switched off are then refused before any I/O
    instead of failing upstream.
    """

    capabilities: dict[CapabilityName, bool] | None = None
    schema_format: SchemaFormat = "json_schema"
