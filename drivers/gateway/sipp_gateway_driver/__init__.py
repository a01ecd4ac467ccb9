"""The Sipp gateway driver: ``kind: "gateway"`` endpoints, the client side of the profile.

Found through the ``sipp.drivers`` entry point ``gateway``; nothing imports it
by name. It talks to any server that speaks the gateway profile (see
``docs/gateway-profile.md``): a Python route built with :mod:`sipp.gateway`,
the standalone Sipp gateway, or the original Sipp's Rust gateway.
"""

from ._driver import GatewayDriver, GatewayFactory, gateway_driver

__all__ = ["GatewayDriver", "GatewayFactory", "gateway_driver"]
