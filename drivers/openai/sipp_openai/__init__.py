"""Sipp provider drivers for OpenAI and any OpenAI-compatible server.

Registered as the ``sipp.drivers`` entry points ``provider.openai`` and
``provider.openai_compatible``; users never import this package, they add an
endpoint::

    await client.add("gpt", {"kind": "provider", "provider": "openai",
                             "model": "gpt-4o-mini", "api_key": key})

``OpenAIDescriptor`` (a ``ProviderDescriptor`` with ``capabilities`` and
``schema_format``) lets a compatible endpoint say what its server lacks.
"""

from ._driver import OpenAIDriver, OpenAIFactory, openai_compatible_driver, openai_driver
from ._types import OpenAIDescriptor

__all__ = [
    "OpenAIDescriptor",
    "OpenAIDriver",
    "OpenAIFactory",
    "openai_compatible_driver",
    "openai_driver",
]
