"""Sipp's ``pool`` driver: one endpoint over several deployments.

Installed, it answers descriptors of kind ``pool`` through the
``sipp.drivers`` entry point (``pool = "sipp_pool:driver"``)::

    await client.add("llm", {
        "kind": "pool",
        "strategy": "ordered",          # or weighted, least_busy, fastest
        "members": [
            {"name": "main", "descriptor": {"kind": "provider", "provider": "openai", ...}},
            {"name": "backup", "descriptor": {"kind": "provider", "provider": "anthropic", ...}},
        ],
    })

A failure worth retrying before the first token moves the request to the next
member; members that keep failing cool down and are probed back. Processes
that serve the same pool share cooldowns through a :class:`CooldownStore`
handed in as ``client.add(..., extensions={"sipp_pool": PoolHooks(cooldowns=store)})``.
"""

from ._descriptor import PoolDescriptor, PoolMember, Strategy
from ._driver import PoolDriver, PoolFactory, worth_failover
from ._health import MemberStats
from ._hooks import EXTENSION, CooldownStore, MemoryCooldownStore, PoolHooks

__all__ = [
    "EXTENSION",
    "CooldownStore",
    "MemberStats",
    "MemoryCooldownStore",
    "PoolDescriptor",
    "PoolDriver",
    "PoolFactory",
    "PoolHooks",
    "PoolMember",
    "Strategy",
    "driver",
    "worth_failover",
]

#: The factory the ``pool`` entry point names.
driver = PoolFactory()
