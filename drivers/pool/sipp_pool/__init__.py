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
member; members that keep failing cool down and are probed back.
"""

from ._descriptor import PoolDescriptor, PoolMember, Strategy
from ._driver import PoolDriver, PoolFactory, worth_failover
from ._health import MemberStats

__all__ = [
    "MemberStats",
    "PoolDescriptor",
    "PoolDriver",
    "PoolFactory",
    "PoolMember",
    "Strategy",
    "driver",
    "worth_failover",
]

#: The factory the ``pool`` entry point names.
driver = PoolFactory()
