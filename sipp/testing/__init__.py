"""Test doubles for Sipp users and driver authors.

* :data:`scripted_driver` / :class:`ScriptedDescriptor`: a deterministic
  endpoint (scripted tokens, delays, failures at a chosen point).
* :mod:`sipp.testing.conformance`: the test suite a third-party driver runs
  to show it honours the driver contract, on asyncio and trio.
"""

from ._scripted import ScriptedDescriptor, ScriptedDriver, ScriptedFactory, scripted_driver

__all__ = ["ScriptedDescriptor", "ScriptedDriver", "ScriptedFactory", "scripted_driver"]
