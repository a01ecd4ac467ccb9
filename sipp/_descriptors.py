"""Endpoint descriptors: what ``client.add(name, descriptor)`` accepts.

A descriptor is plain data. Each driver declares the ``Descriptor`` subclass it
takes; a dict descriptor is converted into it by msgspec, which names any
unknown or mistyped key. The provider and gateway kinds live here so users
can build them with type checking (a local model's ``LocalDescriptor`` lives
in ``sipp_llama``, the driver that owns its fields); the drivers that serve
them live in their own distributions under ``drivers/``.

Secret fields never appear in ``repr``: they print as ``[redacted]``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from ._models import Timeouts

__all__ = [
    "Authentication",
    "Descriptor",
    "GatewayDescriptor",
    "GatewayRoutes",
    "ProviderDescriptor",
]

REDACTED = "[redacted]"


class Descriptor(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every descriptor. ``kind`` selects the driver."""

    kind: str

    #: Field names whose values are secrets.
    __secret_fields__: ClassVar[frozenset[str]] = frozenset()

    @property
    def driver_name(self) -> str:
        """The ``sipp.drivers`` entry-point name that serves this descriptor."""
        return self.kind

    def __repr__(self) -> str:
        parts = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name in self.__secret_fields__ and value is not None:
                shown = REDACTED
            elif name == "headers" and isinstance(value, dict):
                shown = repr(dict.fromkeys(value, REDACTED))
            else:
                shown = repr(value)
            parts.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __rich_repr__(self) -> Any:  # rich would otherwise print raw fields
        yield repr(self)


class ProviderDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A hosted provider (``openai``, ``anthropic``, ``openai_compatible``, or a plugin's)."""

    __secret_fields__: ClassVar[frozenset[str]] = frozenset({"api_key"})

    kind: Literal["provider"] = "provider"
    provider: str
    model: str
    api_key: str | None = None
    base_url: str | None = None
    timeout: float | Timeouts | None = None
    retries: int | None = None
    max_connections: int | None = None
    headers: dict[str, str] | None = None
    organization: str | None = None
    version: str | None = None
    api_key_header: str | None = None
    #: The header that carries the run's id upstream; ``None`` sends none (some
    #: servers, llama-cpp-python's among them, refuse ids that are not UUIDs).
    request_id_header: str | None = "x-request-id"
    allow_insecure_http: bool = False
    #: The transport under httpx: sipp's lean HTTP/1.1 one, or ``"httpx"`` for
    #: httpx's own (see docs/http-transport.md). Plugin drivers may ignore it.
    http_transport: Literal["lean", "httpx"] = "lean"

    @property
    def driver_name(self) -> str:
        return f"provider.{self.provider}"


class Authentication(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a gateway endpoint authenticates: ``none``, ``bearer`` or ``header``.

    ``value`` is a static secret; ``value_provider`` a sync or async callable
    returning one, called per request (for short-lived tokens).
    """

    kind: Literal["none", "bearer", "header"] = "none"
    value: str | None = None
    # Any, because msgspec cannot describe a callable; checked in __post_init__.
    value_provider: Any = None
    header_name: str | None = None

    def __post_init__(self) -> None:
        if self.value_provider is not None and not callable(self.value_provider):
            raise ValueError("value_provider must be a callable")
        if self.kind != "none" and self.value is None and self.value_provider is None:
            raise ValueError(f"{self.kind} authentication needs value or value_provider")
        if self.kind == "header" and not self.header_name:
            raise ValueError("header authentication needs header_name")

    def __repr__(self) -> str:
        value = None if self.value is None else REDACTED
        return (
            f"Authentication(kind={self.kind!r}, value={value!r}, "
            f"value_provider={self.value_provider!r}, header_name={self.header_name!r})"
        )


class GatewayRoutes(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    query: str = "/v1/query"
    chat: str = "/v1/chat"
    embed: str = "/v1/embed"


class GatewayDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A Sipp gateway (or any server speaking the gateway profile)."""

    kind: Literal["gateway"] = "gateway"
    target: str
    base_url: str
    routes: GatewayRoutes = GatewayRoutes()
    authentication: Authentication = Authentication()
    headers: dict[str, str] | None = None
    timeout: float | Timeouts | None = None
    retries: int | None = None
    max_connections: int | None = None
    protocol_options: dict[str, Any] | None = None
    allow_insecure_http: bool = False
    #: The transport under httpx (see ProviderDescriptor.http_transport).
    http_transport: Literal["lean", "httpx"] = "lean"
