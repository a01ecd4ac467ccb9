"""The standalone Sipp gateway: configuration, the ASGI app, and serving it.

``sipp gateway serve --config gateway.toml`` runs it; ``sipp gateway check
--config gateway.toml`` validates a configuration. In Python:

* :func:`create_app` — the gateway for a configuration file, as an ASGI app
  (the public listener; ``app.management`` is the management listener);
  targets load in its ASGI lifespan or ``async with app.running()``;
* :func:`mint_gateway_token` — for an application's own route: a
  short-lived token (a JWT) for a browser, verified by the gateway;
* :func:`check_config` / :func:`load_config` — the strict configuration loader.

This package needs the ``gateway-server`` extra (prometheus-client, PyJWT,
and uvicorn or hypercorn to serve); ``import sipp`` never imports it.
"""

from ._app import GatewayServer, create_app
from ._checks import Secrets, check_config, load_config
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
    "create_app",
    "load_config",
    "mint_gateway_token",
    "run_gateway",
    "serve_gateway",
]
