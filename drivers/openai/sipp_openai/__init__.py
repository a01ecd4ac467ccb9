"""Sipp provider drivers for OpenAI and any OpenAI-compatible server.

Registered as the ``sipp.drivers`` entry points ``provider.openai`` and
``provider.openai_compatible``; users never import this package, they add an
endpoint::

    await client.add("gpt", {"kind": "provider", "provider": "openai",
                             "model": "gpt-4o-mini", "api_key": key})
"""

from ._driver import OpenAIDriver, OpenAIFactory, openai_compatible_driver, openai_driver

__all__ = ["OpenAIDriver", "OpenAIFactory", "openai_compatible_driver", "openai_driver"]
