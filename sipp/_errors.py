"""The Sipp error tree.

Every exception the SDK raises on purpose derives from :class:`SippError`.
Lower-level exceptions (httpx, msgspec, llama.cpp) are translated at the
boundary with ``raise ... from exc`` so callers never catch a bare one::

    SippError
    ├── ClientClosedError             the client is not open (also a RuntimeError)
    ├── ConfigurationError            a descriptor or option that can never work
    ├── InvalidRequestError           a request that fails validation (.field)
    ├── EndpointNotFoundError         no such endpoint, or no single candidate
    ├── UnsupportedOperationError     the endpoint cannot do this operation
    ├── DriverNotFoundError           no driver for this kind (.installed)
    ├── DriverLoadError               the driver's plugin failed to import
    ├── TransportError                the connection failed
    │   ├── ConnectError
    │   └── TimeoutError              (.phase; also builtins.TimeoutError)
    ├── ProtocolError                 malformed or truncated stream
    ├── UpstreamError                 an error reported by the upstream (.kind, ...)
    │   ├── ProviderError             ... by a hosted provider
    │   ├── GatewayError              ... by a Sipp gateway
    │   └── one subclass per kind: AuthenticationError, RateLimitedError, ...
    ├── LocalModelError               load and decode failures of a local model
    ├── OutputValidationError         output that does not match the asked-for schema (.text)
    └── RunCancelled                  the run was cancelled (.reason, .partial)

Upstream errors are classified twice: by *source* (``ProviderError`` or
``GatewayError``) and by *kind* (``RateLimitedError``, ...). The concrete
class of a raised upstream error inherits from both, so ``except
RateLimitedError`` and ``except ProviderError`` both catch a provider's 429.
Build them with :func:`upstream_error`.

Every error has a string ``code`` and an HTTP-like ``status`` so a server can
report it without knowing its class (see ``sipp.gateway``).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Final, Literal

from ._retry import is_retryable

if TYPE_CHECKING:
    from ._models import TextResponse

__all__ = [
    "UPSTREAM_ERROR_KINDS",
    "AuthenticationError",
    "AuthorizationError",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectError",
    "ContextLengthExceededError",
    "DriverLoadError",
    "DriverNotFoundError",
    "EndpointNotFoundError",
    "GatewayError",
    "InvalidRequestError",
    "LocalModelError",
    "ModelNotFoundError",
    "OutputValidationError",
    "OverloadedError",
    "ProtocolError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitedError",
    "RunCancelled",
    "SippError",
    "TimeoutError",
    "TransportError",
    "UnsupportedFeatureError",
    "UnsupportedOperationError",
    "UpstreamError",
    "UpstreamInvalidRequestError",
    "UpstreamTimeoutError",
    "upstream_error",
]

TimeoutPhase = Literal["connect", "first_token", "idle", "total"]
UpstreamKind = Literal[
    "authentication",
    "authorization",
    "rate_limited",
    "quota_exceeded",
    "model_not_found",
    "invalid_request",
    "context_length_exceeded",
    "overloaded",
    "timeout",
    "unsupported_feature",
    "provider",
]
UPSTREAM_ERROR_KINDS: Final[tuple[str, ...]] = (
    "authentication",
    "authorization",
    "rate_limited",
    "quota_exceeded",
    "model_not_found",
    "invalid_request",
    "context_length_exceeded",
    "overloaded",
    "timeout",
    "unsupported_feature",
    "provider",
)


class SippError(Exception):
    """Base of every error the SDK raises on purpose."""

    code: str = "internal"
    status: int = 500
    #: Whether the core may retry the attempt that raised it (before the first token).
    retryable: bool = False
    #: The text produced before a run failed, when there was some.
    partial: TextResponse | None = None

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> Any:
        # Pickle (Celery, multiprocessing) rebuilds the error without calling
        # ``__init__``, whose keyword-only arguments the default would not pass.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[SippError], args: tuple[Any, ...], state: dict[str, Any]) -> SippError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ClientClosedError(SippError, RuntimeError):
    """The client was used before ``async with`` entered it, or after it closed."""

    code = "internal"


class ConfigurationError(SippError):
    """A descriptor or option that can never work (bad URL, unknown key, ...)."""

    code = "configuration"
    status = 500


class InvalidRequestError(SippError):
    """A request that fails validation; ``field`` names the culprit."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EndpointNotFoundError(SippError):
    """No endpoint by that name, or no single endpoint that can serve."""

    code = "resolution"
    status = 404


class UnsupportedOperationError(SippError):
    """The endpoint cannot do this operation (``embed`` without embeddings, ...)."""

    code = "unsupported_feature"
    status = 400


class DriverNotFoundError(SippError):
    """No installed driver answers to this name; ``installed`` lists the ones that do."""

    code = "configuration"

    def __init__(self, message: str, *, name: str, installed: list[str]) -> None:
        super().__init__(message)
        self.name = name
        self.installed = installed


class DriverLoadError(SippError):
    """A driver plugin failed to import or is incompatible; other drivers keep working."""

    code = "configuration"

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class TransportError(SippError):
    """The connection to the upstream failed or broke."""

    code = "execution"
    status = 502
    retryable = is_retryable("transport")


class ConnectError(TransportError):
    """The connection could not be opened."""

    retryable = is_retryable("connect")


class TimeoutError(TransportError, builtins.TimeoutError):
    """One of the four time limits ran out; ``phase`` says which."""

    code = "upstream_timeout"
    status = 504

    def __init__(self, message: str, *, phase: TimeoutPhase) -> None:
        super().__init__(message)
        self.phase: TimeoutPhase = phase
        self.retryable = is_retryable("timeout", phase=phase)


class ProtocolError(SippError):
    """A malformed or truncated answer; a stream that ended without its terminal event."""

    code = "execution"
    status = 502


class LocalModelError(SippError):
    """A local model failed to load or to decode."""

    code = "execution"
    status = 500


class OutputValidationError(SippError):
    """The model's output (or a tool call's arguments) does not validate.

    ``text`` is the raw output, never lost; ``message`` says what failed.
    """

    code = "execution"
    status = 502

    def __init__(self, message: str, *, text: str) -> None:
        super().__init__(message)
        self.text = text


class RunCancelled(SippError):
    """The run was cancelled with ``reason``; ``partial`` holds what was produced."""

    code = "cancelled"
    status = 499

    def __init__(self, reason: str, partial: TextResponse | None = None) -> None:
        super().__init__(f"run cancelled: {reason}")
        self.reason = reason
        self.partial = partial


class UpstreamError(SippError):
    """An error reported by the upstream, with what a caller needs to react.

    ``raw_body`` has secrets redacted; ``retry_after`` is in seconds.
    """

    kind: str = "provider"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        raw_body: str | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.upstream_status = status
        if code:
            self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.raw_body = raw_body
        self.retryable = is_retryable(self.kind, status)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, kind={self.kind!r}, "
            f"status={self.upstream_status!r}, code={self.code!r}, request_id={self.request_id!r})"
        )


class ProviderError(UpstreamError):
    """An error reported by a hosted provider (OpenAI, Anthropic, ...)."""

    code = "execution"


class GatewayError(UpstreamError):
    """An error reported by a Sipp gateway (the profile's error envelope)."""

    code = "execution"


class AuthenticationError(UpstreamError):
    kind = "authentication"


class AuthorizationError(UpstreamError):
    kind = "authorization"


class RateLimitedError(UpstreamError):
    kind = "rate_limited"


class QuotaExceededError(UpstreamError):
    kind = "quota_exceeded"


class ModelNotFoundError(UpstreamError):
    kind = "model_not_found"


class UpstreamInvalidRequestError(UpstreamError):
    kind = "invalid_request"


class ContextLengthExceededError(UpstreamError):
    kind = "context_length_exceeded"


class OverloadedError(UpstreamError):
    kind = "overloaded"


class UpstreamTimeoutError(UpstreamError):
    kind = "timeout"


class UnsupportedFeatureError(UpstreamError):
    kind = "unsupported_feature"


# The concrete classes ``upstream_error`` builds: one per source and kind, defined
# here (not made at run time) so pickle finds them by name in another process.


class ProviderAuthenticationError(ProviderError, AuthenticationError):
    kind = "authentication"


class ProviderAuthorizationError(ProviderError, AuthorizationError):
    kind = "authorization"


class ProviderRateLimitedError(ProviderError, RateLimitedError):
    kind = "rate_limited"


class ProviderQuotaExceededError(ProviderError, QuotaExceededError):
    kind = "quota_exceeded"


class ProviderModelNotFoundError(ProviderError, ModelNotFoundError):
    kind = "model_not_found"


class ProviderUpstreamInvalidRequestError(ProviderError, UpstreamInvalidRequestError):
    kind = "invalid_request"


class ProviderContextLengthExceededError(ProviderError, ContextLengthExceededError):
    kind = "context_length_exceeded"


class ProviderOverloadedError(ProviderError, OverloadedError):
    kind = "overloaded"


class ProviderUpstreamTimeoutError(ProviderError, UpstreamTimeoutError):
    kind = "timeout"


class ProviderUnsupportedFeatureError(ProviderError, UnsupportedFeatureError):
    kind = "unsupported_feature"


class GatewayAuthenticationError(GatewayError, AuthenticationError):
    kind = "authentication"


class GatewayAuthorizationError(GatewayError, AuthorizationError):
    kind = "authorization"


class GatewayRateLimitedError(GatewayError, RateLimitedError):
    kind = "rate_limited"


class GatewayQuotaExceededError(GatewayError, QuotaExceededError):
    kind = "quota_exceeded"


class GatewayModelNotFoundError(GatewayError, ModelNotFoundError):
    kind = "model_not_found"


class GatewayUpstreamInvalidRequestError(GatewayError, UpstreamInvalidRequestError):
    kind = "invalid_request"


class GatewayContextLengthExceededError(GatewayError, ContextLengthExceededError):
    kind = "context_length_exceeded"


class GatewayOverloadedError(GatewayError, OverloadedError):
    kind = "overloaded"


class GatewayUpstreamTimeoutError(GatewayError, UpstreamTimeoutError):
    kind = "timeout"


class GatewayUnsupportedFeatureError(GatewayError, UnsupportedFeatureError):
    kind = "unsupported_feature"


_COMBINED: Final[dict[tuple[str, str], type[UpstreamError]]] = {
    ("provider", "authentication"): ProviderAuthenticationError,
    ("provider", "authorization"): ProviderAuthorizationError,
    ("provider", "rate_limited"): ProviderRateLimitedError,
    ("provider", "quota_exceeded"): ProviderQuotaExceededError,
    ("provider", "model_not_found"): ProviderModelNotFoundError,
    ("provider", "invalid_request"): ProviderUpstreamInvalidRequestError,
    ("provider", "context_length_exceeded"): ProviderContextLengthExceededError,
    ("provider", "overloaded"): ProviderOverloadedError,
    ("provider", "timeout"): ProviderUpstreamTimeoutError,
    ("provider", "unsupported_feature"): ProviderUnsupportedFeatureError,
    ("gateway", "authentication"): GatewayAuthenticationError,
    ("gateway", "authorization"): GatewayAuthorizationError,
    ("gateway", "rate_limited"): GatewayRateLimitedError,
    ("gateway", "quota_exceeded"): GatewayQuotaExceededError,
    ("gateway", "model_not_found"): GatewayModelNotFoundError,
    ("gateway", "invalid_request"): GatewayUpstreamInvalidRequestError,
    ("gateway", "context_length_exceeded"): GatewayContextLengthExceededError,
    ("gateway", "overloaded"): GatewayOverloadedError,
    ("gateway", "timeout"): GatewayUpstreamTimeoutError,
    ("gateway", "unsupported_feature"): GatewayUnsupportedFeatureError,
    ("provider", "provider"): ProviderError,
    ("gateway", "provider"): GatewayError,
}


def upstream_error(
    source: Literal["provider", "gateway"],
    kind: str,
    message: str,
    **details: Any,
) -> UpstreamError:
    """Build the upstream error of ``source`` and ``kind`` (unknown kinds become ``provider``).

    ``details`` are the keyword arguments of :class:`UpstreamError`.
    """
    if kind not in UPSTREAM_ERROR_KINDS:
        kind = "provider"
    return _COMBINED["provider" if source == "provider" else "gateway", kind](message, **details)
