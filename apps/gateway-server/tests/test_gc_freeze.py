"""``sipp gateway serve`` freezes what startup built before the first request (``_gc.py``)."""

from __future__ import annotations

import gc
import os
import signal

import pytest
from gwtest import ENV, free_port, server_for
from sipp_gateway_server import create_app
from sipp_gateway_server._checks import check_text
from sipp_gateway_server._serve import serve_gateway

pytestmark = pytest.mark.anyio

CONFIG = """
[server]
listen = "127.0.0.1:{public}"
management_listen = "127.0.0.1:{management}"
server = "{server}"
drain_timeout = 0.5

[[targets]]
name = "echo"
kind = "scripted"

[[tokens]]
caller = "web"
token_env = "GW_WEB_TOKEN"
"""


async def test_startup_objects_are_frozen_when_the_gateway_is_ready(backend: str) -> None:
    text = CONFIG.format(public=free_port(), management=free_port(), server=server_for(backend))
    config, secrets, problems = check_text(text, environ=ENV, serving=True)
    assert not [p for p in problems if not p.warning]
    frozen: list[int] = []

    def ready(public: str, management: str) -> None:
        frozen.append(gc.get_freeze_count())
        os.kill(os.getpid(), signal.SIGTERM)  # the gateway drains and returns

    gc.unfreeze()
    try:
        await serve_gateway(create_app(config, secrets), on_ready=ready)
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
    # Modules, configuration and the target: tens of thousands of objects.
    assert frozen and frozen[0] > 10_000
