"""Sipp provider driver for Anthropic's Messages API.

Registered as the ``sipp.drivers`` entry point ``provider.anthropic``::

    await client.add("claude", {"kind": "provider", "provider": "anthropic",
                                "model": "claude-sonnet-4-5", "api_key": key})

``max_tokens`` is required upstream: requests without it send
:data:`DEFAULT_MAX_TOKENS` (4096). System messages are joined into the
top-level ``system`` field; ``seed`` is not sent (Anthropic has none). Tools,
images, structured output (``output_config.format``) and extended thinking
map to their native forms; ``drivers/anthropic/README.md`` has the table.
"""

from ._body import DEFAULT_MAX_TOKENS, EFFORT_BUDGETS
from ._driver import AnthropicDriver, AnthropicFactory, anthropic_driver

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "EFFORT_BUDGETS",
    "AnthropicDriver",
    "AnthropicFactory",
    "anthropic_driver",
]
