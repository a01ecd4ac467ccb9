"""Sipp's ``local`` driver: GGUF models in-process through llama-cpp-python.

Installed, it answers descriptors of kind ``local`` through the
``sipp.drivers`` entry point (``local = "sipp_llama:driver"``)::

    await client.add("local", {"kind": "local", "source": "model.gguf"})

Requests on one model decode together (continuous batching) on the
endpoint's own worker thread; see ``docs/local-driver.md``.
"""

from ._driver import LlamaDriver, LlamaFactory
from ._types import LocalDescriptor, LocalOptions, LocalStats

__all__ = ["LlamaDriver", "LlamaFactory", "LocalDescriptor", "LocalOptions", "LocalStats", "driver"]

#: The factory the ``local`` entry point names.
driver = LlamaFactory()
