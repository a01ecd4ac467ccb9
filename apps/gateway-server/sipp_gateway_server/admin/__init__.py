"""The gateway's admin console: a web page and a JSON API on the management listener.

:class:`AdminConsole` counts every request (by target, caller and client
address, plus a one-hour ring of time buckets), applies live controls (rate
limits, blocklist, concurrency, draining) on every replica, and serves the
console under ``[admin] path`` once ``[admin] password_env`` names a set
variable. See ``docs/gateway-admin.md`` for the page and the API.
"""

from ._console import AdminConsole

__all__ = ["AdminConsole"]
