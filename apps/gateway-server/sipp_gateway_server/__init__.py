"""The standalone Sipp gateway: configuration, the ASGI app, and serving it.

``sipp-gateway serve --config gateway.toml`` runs it; ``sipp-gateway check
--config gateway.toml`` validates a configuration (``sipp gateway ...`` is the
same command through the core's CLI). In Python:

* :func:`create_app` — the gateway for a configuration file, as an ASGI app
  (the public listener; ``app.management`` is the management listener);
  targets load in its ASGI lifespan or ``async with app.running()``;
* :func:`mint_gateway_token` — for an application's own route: a
  short-lived token (a JWT) for a browser, verified by the gateway;
* :func:`check_config` / :func:`load_config` — the strict configuration loader.

This is the ``sipp-gateway-server`` distribution; it uses only the public
names of ``sipp`` and ``sipp.gateway``, and ``sipp`` itself never imports it.
"""

from ._app import GatewayServer, create_app
from ._checks import Secrets, check_config, load_config
from ._cli import main as command_main
from ._config import ConfigError, GatewayConfig, Problem
from ._jwt import mint_gateway_token
from ._serve import run_gateway, serve_gateway

__all__ = [
    "ConfigError",
    "GatewayConfig",
    "GatewayServer",
    "Problem",
    "Secrets",
    "check_config",
    "command_main",
    "create_app",
    "load_config",
    "mint_gateway_token",
    "run_gateway",
    "serve_gateway",
]
