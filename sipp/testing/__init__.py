"""Test doubles for Sipp users and driver authors.

* :data:`scripted_driver` / :class:`ScriptedDescriptor`: a deterministic
  endpoint (scripted tokens, delays, failures at a chosen point, and whole
  conversations: tool calls, reasoning, JSON replies, see :class:`ScriptedTurn`).
* :class:`ThreadedServer`: an ASGI app (a mock provider) served on loopback
  from its own thread, for real-HTTP tests on either backend.
* :mod:`sipp.testing.conformance`: the test suite a third-party driver runs
  to show it honours the driver contract, on asyncio and trio.
"""

from ._scripted import (
    ScriptedDescriptor,
    ScriptedDriver,
    ScriptedFactory,
    ScriptedToolCall,
    ScriptedTurn,
    scripted_driver,
)
from ._server import ThreadedServer

__all__ = [
    "ScriptedDescriptor",
    "ScriptedDriver",
    "ScriptedFactory",
    "ScriptedToolCall",
    "ScriptedTurn",
    "ThreadedServer",
    "scripted_driver",
]
