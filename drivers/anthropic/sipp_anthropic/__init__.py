"""Sipp provider driver for Anthropic's Messages API.

Registered as the ``sipp.drivers`` entry point ``provider.anthropic``::

    await client.add("claude", {"kind": "provider", "provider": "anthropic",
                                "model": "claude-sonnet-4-5", "api_key": key})

``max_tokens`` is required upstream: requests without it send
:data:`DEFAULT_MAX_TOKENS` (4096). System messages are joined into the
top-level ``system`` field; ``seed`` is not sent (Anthropic has none).
"""

from ._driver import AnthropicDriver, AnthropicFactory, anthropic_driver
from ._wire import DEFAULT_MAX_TOKENS

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicDriver", "AnthropicFactory", "anthropic_driver"]
